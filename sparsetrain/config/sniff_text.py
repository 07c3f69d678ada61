"""What ``sparsetrain init`` reads from the first lines of a CSV/TSV or Vowpal Wabbit file.

:func:`sniff_csv` looks at a sample (the first :data:`SAMPLE_BYTES`, whole lines) and decides the
delimiter (the one among tab, comma, semicolon and ``|`` that splits the first line into the most
fields, more than one, and no later line into more — missing trailing fields are empty; the file
name's default on a tie; a line with more fields is an error naming it), the header (the first line
has no number, distinct fields, and a column has numbers below or no field is a value of its column
below; a file of one such line is a header and no rows, an error; a line whose non-empty fields are
no values of their columns below, with a name empty or repeated, is an error naming it), the label
column (a header name such as ``label``/``click``/``target``, else the first column), a row id column
(a header name such as ``id``: ``predict``'s ids, no feature), and each other column's type: numeric
when every non-empty sample value is a number, else categorical (hashed); count-like numeric columns
(integers >= 0 reaching 100) get ``log1p``; a file of no such column is an error. :func:`sniff_vw_namespaces` lists the named namespaces
of a Vowpal Wabbit sample. Fields are split by Python's ``csv`` module, as the CSV reader does.
"""
from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field

from ..base import DataFormatError
from ..io.csv_schema import default_delimiter

SAMPLE_BYTES = 1 << 20
SAMPLE_LINES = 2000
DELIMITERS = ("\t", ",", ";", "|")
_SHOWN = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "'|'"}
LABEL_NAMES = ("label", "labels", "click", "clicked", "clicks", "is_click", "target", "y", "class", "outcome")
ID_NAMES = ("id", "row_id", "rowid", "example_id", "record_id", "uid")  # a header name of a row id column
DEFAULT_HASH_BITS = 18
_NUMBER = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*\Z")


@dataclass
class CSVLayout:
    """The ``data.*`` CSV keys :func:`sniff_csv` decided."""

    delimiter: str
    header: bool
    columns: list[str]
    label: str
    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    log1p: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # columns empty in the whole sample
    id_column: str | None = None  # a header column named as a row id (ID_NAMES): predict's ids, no feature
    hash_bits: int = DEFAULT_HASH_BITS
    distinct: int = 0  # distinct categorical values in the sample

    def schema(self):
        """The layout as an ``io.csv_schema.CSVSchema``."""
        from ..io.csv_schema import CSVSchema

        return CSVSchema(columns=None if self.header else self.columns, label=self.label, numeric=self.numeric,
                         categorical=self.categorical, hash_bits=self.hash_bits, log1p=self.log1p,
                         delimiter=self.delimiter, header=self.header, id_column=self.id_column, key="data")


def read_sample(path: str) -> list[str]:
    """The first whole lines of ``path`` (at most :data:`SAMPLE_LINES`, about :data:`SAMPLE_BYTES`;
    ``.gz``/``.bz2`` decompressed), blank lines dropped."""
    return [text for _, text in read_numbered_sample(path)]


def read_numbered_sample(path: str) -> list[tuple[int, str]]:
    """:func:`read_sample`'s lines with their line numbers in the file (1-based)."""
    from ..io.chunks import opened_data

    with opened_data(path) as f:
        raw = f.read(SAMPLE_BYTES)
        more = bool(f.read(1))
    text = raw.decode("utf-8", "replace")  # (open_data skipped a byte order mark)
    lines = text.split("\n")
    if more and len(lines) > 1:
        lines = lines[:-1]  # a partial last line
    numbered = [(n, ln.rstrip("\r")) for n, ln in enumerate(lines, 1) if ln.strip()]
    if not numbered:
        raise DataFormatError(f"{path}: no data rows (the file is empty)")
    return numbered[:SAMPLE_LINES]


def _is_number(value: str) -> bool:
    return bool(_NUMBER.match(value))


def _split(lines: list[str], delimiter: str) -> list[list[str]]:
    """Each line's fields (one row per line: a quoted field cannot span lines, as in the reader)."""
    return [next(csv.reader([ln], delimiter=delimiter, quotechar='"'), []) for ln in lines]


def _pick_delimiter(path: str, numbered: list[tuple[int, str]]) -> tuple[str, list[list[str]]]:
    """The delimiter and the rows it splits the lines into, each padded to the first line's width
    (missing trailing fields are empty). A line wider than the first is a ``DataFormatError`` naming
    it, for the delimiter that fits the most lines."""
    default = default_delimiter(path)
    lines = [text for _, text in numbered]
    fits, wider = None, None
    for d in sorted(DELIMITERS, key=lambda d: d != default):  # the name's default wins a tie
        rows = _split(lines, d)
        width = len(rows[0])
        if width < 2:
            continue
        over = next(((n, len(r)) for (n, _), r in zip(numbered, rows) if len(r) > width), None)
        if over is None:
            if fits is None or width > len(fits[1][0]):
                fits = (d, rows)
        else:
            good = sum(len(r) == width for r in rows)
            if wider is None or good > wider[0]:
                wider = (good, d, width, over)
    if fits is not None:
        d, rows = fits
        width = len(rows[0])
        return d, [r + [""] * (width - len(r)) for r in rows]
    if wider is not None:
        _, d, width, (n, k) = wider
        raise DataFormatError(f"{path}:{n}: {k} {_SHOWN[d]}-separated fields, more than the {width} of line "
                              f"{numbered[0][0]} (quote a field that holds the delimiter)")
    raise DataFormatError(f"{path}: cannot tell the delimiter: none of {', '.join(_SHOWN[d] for d in DELIMITERS)} "
                          f"splits line {numbered[0][0]} into fields (give data.csv.delimiter and columns by hand)")


def _check_names(path: str, line: int, names: list[str]) -> None:
    """A header line's names: each given once (a ``DataFormatError`` naming the line otherwise)."""
    for i, name in enumerate(names):
        if not name:
            raise DataFormatError(f"{path}:{line}: the header line has no name for column {i + 1}; name it")
        if name in names[:i]:
            raise DataFormatError(f"{path}:{line}: the header line names column {name!r} twice (columns "
                                  f"{names.index(name) + 1} and {i + 1}); rename one")


def sniff_csv(path: str, label: str | None = None) -> CSVLayout:
    """The CSV layout of ``path`` from its first lines (see the module docstring); ``label``: the
    label column's name (header files) or ``None`` to decide. ``DataFormatError`` when no
    layout fits."""
    numbered = read_numbered_sample(path)
    delimiter, rows = _pick_delimiter(path, numbered)
    width = len(rows[0])
    first = rows[0]
    body = rows[1:]
    body_lines = [n for n, _ in numbered[1:]]
    numeric_below = [bool(body) and all(_is_number(r[i]) for r in body if r[i].strip())
                     and any(r[i].strip() for r in body) for i in range(width)]
    # names over text columns (every value text): no name is a value of its column below
    names_not_values = bool(body) and all(first[i].strip() not in {r[i].strip() for r in body}
                                          for i in range(width) if first[i].strip())
    named = len(set(first)) == width and all(f.strip() for f in first)  # (else a header only by its names)
    header = not any(_is_number(f) for f in first) and (
        (any(numeric_below) or names_not_values or not body) if named else names_not_values)
    if header:  # (names alone: a header, no rows)
        _check_names(path, numbered[0][0], [f.strip() for f in first])
        columns = [f.strip() for f in first]
        if not body:
            raise DataFormatError(f"{path}: no data rows (only the header line {', '.join(columns)})")
    else:
        columns = ["label"] + [f"col{i}" for i in range(1, width)]
        body = rows
        body_lines = [n for n, _ in numbered]
    if label is None:
        lower = [c.lower() for c in columns]
        label = next((columns[lower.index(n)] for n in LABEL_NAMES if n in lower), columns[0])
    elif label not in columns:
        from ..base import ConfigError, did_you_mean

        raise ConfigError(f"--label: no column {label!r} in {path}{did_you_mean(label, columns)}")
    li = columns.index(label)
    bad = next(((n, r[li]) for n, r in zip(body_lines, body) if not _is_number(r[li])), None)
    if bad is not None and not bad[1].strip():
        raise DataFormatError(f"{path}:{bad[0]}: the label column {label!r} is empty (every row needs a label)")
    if bad is not None and len({r[li].strip(" \t") for r in body}) > 2:  # two texts: a binary model's labels
        raise DataFormatError(f"{path}:{bad[0]}: the label column {label!r} holds {bad[1]!r}, not a number (labels "
                              "are numbers, or two texts for a binary model; pick another column with --label)")
    layout = CSVLayout(delimiter, header, columns, label)
    if header:  # a row id (a Kaggle `id`) is no feature: hashed, each value would be a feature of one row
        layout.id_column = next((c for c in columns if c.lower() in ID_NAMES and c != label), None)
    values: set = set()
    for i, name in enumerate(columns):
        if i == li or name == layout.id_column:
            continue
        seen = [r[i].strip() for r in body if r[i].strip()]
        if not seen:
            layout.ignored.append(name)
        elif all(_is_number(v) for v in seen):
            layout.numeric.append(name)
            nums = [float(v) for v in seen]
            if all(v >= 0 and v.is_integer() for v in nums) and max(nums) >= 100:
                layout.log1p.append(name)
        else:
            layout.categorical.append(name)
            values.update((i, v) for v in seen)
    if not layout.numeric and not layout.categorical:  # a config of no feature trains its bias alone
        ids = f" and the row ids {layout.id_column!r} (no feature)" if layout.id_column else ""
        why = (f": {', '.join(map(repr, layout.ignored))} {'is' if len(layout.ignored) == 1 else 'are'} empty in "
               f"the first {len(body)} rows" if layout.ignored else "")
        raise DataFormatError(f"{path}: no feature column besides the label {label!r}{ids}{why}")
    layout.distinct = len(values)
    # about 4 buckets per distinct value seen (more values come after the sample), at least 2**18
    layout.hash_bits = min(24, max(DEFAULT_HASH_BITS, math.ceil(math.log2(max(1, 4 * len(values))))))
    return layout


def sniff_vw_namespaces(path: str) -> list[str]:
    """The named namespaces of the first lines of a Vowpal Wabbit file, in order of appearance."""
    names: list[str] = []
    for line in read_sample(path):
        for seg in line.split("|")[1:]:
            name = re.split(r"[\s:]", seg, maxsplit=1)[0]
            if name and name not in names:
                names.append(name)
    return names


def hashed_summary(path: str, fmt: str, layout: CSVLayout | None, hash_bits: int):
    """Read the whole file with the compiled reader of its format: ``(rows, nnz, label blocks,
    importance-weighted rows)`` (a label block: ``(labels, names)``, ``names`` the CSV reader's
    hash -> text of its text labels, see :class:`~sparsetrain.labels.TextLabels`); errors are the
    reader's (file:line)."""
    if fmt == "csv":
        from ..io.csv_reader import CSVReader

        from ..labels import TextLabels

        reader = CSVReader(path, layout.schema(), labels=TextLabels("binary"))  # text labels kept, named
    else:
        from ..io.vw_reader import VWReader

        reader = VWReader(path, hash_bits)
    rows = nnz = weighted = 0
    labels = []
    for block in reader:
        rows += block.num_rows
        nnz += block.nnz
        labels.append((block.labels.ravel(), getattr(reader, "label_names", None)))
        w = getattr(block, "weights", None)
        if w is not None:
            weighted += int((w != 1).sum())
    return rows, nnz, labels, weighted


def display_delimiter(d: str) -> str:
    return _SHOWN[d]


__all__ = ["CSVLayout", "sniff_csv", "sniff_vw_namespaces", "hashed_summary", "read_sample", "read_numbered_sample",
           "display_delimiter", "SAMPLE_BYTES", "SAMPLE_LINES"]
