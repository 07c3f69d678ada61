"""Read CSV/TSV files with a schema into hashed CSR rows: the public API.

:class:`CSVSchema` (``csv_schema``, importable without the kernels) says what each column is (the label, numeric columns, categorical columns
hashed into ``2**hash_bits`` buckets, hashed crosses; see ``_csv_kernels`` for the grammar and
the feature ids). :class:`CSVReader` streams a file, or one of ``num_parts`` byte-range parts,
as :class:`~sparsetrain.io.libsvm_parse.LibSVMBlock` s (ordinary CSR rows: every iterator and
engine takes them); :func:`load_csv` reads a whole file into a ``CSRNDArray`` and labels.
Compression, parts and the line bound come from ``chunks.ChunkSource``; the compiled kernel
runs on the parser threads. Malformed input is a ``DataFormatError`` naming file:line, e.g.
``clicks.tsv:12: column 'i3': 'abc' is not a number``.

The feature space has ``num_features = 2**hash_bits + len(numeric)`` columns: hashed ids in
``[0, 2**hash_bits)`` (``hashing.feature_id("c=v", hash_bits)``), numeric column ``k`` at
``2**hash_bits + k``.
"""
from __future__ import annotations

import csv
import io
import math
import os
import stat

import numpy as np

from .. import labels as L
from ..base import ConfigError, DataFormatError, quoted
from . import _csv_kernels as CK
from . import _hash_kernels as HK
from .base import STDIN_PATH, display_name, token_text
from .chunks import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LINE_BYTES, UTF8_BOM, opened_data, refuse_unread_pipe
from .csv_schema import CSVSchema
from .hashing import HASH_SEED
from .text_pipeline import (HashedTextReader, TextJob, count_newlines, finite_limit, keep_parsed, line_of, load_blocks)

__all__ = ["CSVSchema", "CSVReader", "load_csv", "read_header", "scored_columns"]

_SLOW_ROWS = 64


def _header_fields(text: str, delimiter: str, quote: str, sniff: bool, where: str):
    if sniff and "\t" in text and "," not in text:
        delimiter = "\t"
    fields = next(csv.reader(io.StringIO(text.rstrip("\r\n"), newline=""), delimiter=delimiter, quotechar=quote), [])
    if not fields or not any(fields):
        raise DataFormatError(f"{where}:1: the header line is empty")
    return fields, delimiter


def read_header(path, delimiter: str, quote: str = '"', sniff: bool = False) -> tuple[list[str], str]:
    """The column names on the first line of ``path`` (as the ``csv`` module splits it), and the
    delimiter (``sniff``: tab when the line has tabs and no comma)."""
    with opened_data(path) as f:
        line = f.readline(DEFAULT_MAX_LINE_BYTES)
    return _header_fields(line.decode("utf-8", "replace"), delimiter, quote, sniff, display_name(path))


class _Plan:
    """The schema compiled for the kernel, for one file (column order known)."""

    def __init__(self, schema: CSVSchema, columns: list[str], delimiter: str, labelled: bool = True):
        self.columns = columns
        self.delimiter = delimiter
        index = {c: i for i, c in enumerate(columns)}
        ncols = len(columns)
        self.roles = np.zeros(ncols, np.int8)
        # -1: the file has no label column (rows scored without labels: NaN)
        self.label_col = -1 if not labelled else index[schema.label] if schema.label is not None else 0
        if labelled:
            self.roles[self.label_col] = CK.ROLE_LABEL
        self.num_cols = np.array([index[c] for c in schema.numeric], np.int64)
        self.roles[self.num_cols] = CK.ROLE_NUMERIC
        logs = set(schema.numeric) if schema.log1p is True else set(schema.log1p or ())
        self.log1p = np.array([c in logs for c in schema.numeric], np.bool_)
        self.cat_cols = np.array([index[c] for c in schema.categorical], np.int64)
        self.roles[self.cat_cols] = CK.ROLE_CATEGORICAL
        self.prefix_states = np.zeros((ncols, 4), np.int64)
        for c in self.cat_cols:
            key = np.frombuffer(f"{columns[c]}=".encode("utf-8"), np.uint8)
            h, cr, nc, ln = HK.mm_start(HASH_SEED)
            self.prefix_states[c] = HK.mm_feed(h, cr, nc, ln, key, 0, len(key))
        self.cross_a = np.array([index[a] for a, _ in schema.crosses], np.int64)
        self.cross_b = np.array([index[b] for _, b in schema.crosses], np.int64)
        mids = [f"^{b}=".encode("utf-8") for _, b in schema.crosses]
        self.cross_mid = np.frombuffer(b"".join(mids) or b"\0", np.uint8)
        self.cross_mid_off = np.zeros(len(mids) + 1, np.int64)
        np.cumsum([len(m) for m in mids], out=self.cross_mid_off[1:])
        self.weight_col = index[schema.weight_column] if schema.weight_column is not None else -1
        if self.weight_col >= 0:
            self.roles[self.weight_col] = CK.ROLE_WEIGHT
        self.per_row = len(self.num_cols) + len(self.cat_cols) + len(self.cross_a)


class CSVReader(HashedTextReader):
    """Stream a CSV/TSV file (or one byte-range part of it) as :class:`LibSVMBlock` s of hashed rows.

    schema: a :class:`CSVSchema`; num_parts / part_index: as ``LibSVMReader`` (the parts hold
    every line exactly once; the header line is no data). Each iteration reads the file again,
    except for a pipe (``path`` ``-`` reads stdin, once). Labels are float64 (rows, 1); with a
    ``weight_column`` the blocks carry each row's ``weights`` (float64).
    """

    def __init__(self, path, schema: CSVSchema, dtype="float32", *, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 num_parts: int = 1, part_index: int = 0, workers: int | None = None,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, labels=None, unlabeled: bool = False):
        schema.check()
        self.schema = schema
        # a file without the (named) label column is read with labels NaN (rows scored by predict):
        # a header that lacks it, or a first data line one field short of ``columns`` (them minus the label)
        self.unlabeled = unlabeled
        self.labels = labels if labels is not None else L.TextLabels()
        # hash -> text of the text labels read (and of the label values)
        self.label_names: dict[int, str] = self.labels.names if self.labels.names is not None else {}
        for v in self.labels.values or ():
            if isinstance(v, str):
                self._name_text(v, lambda: "data.label_values")
        self._open(path, dtype, chunk_size, max_line_bytes, num_parts, part_index, workers)
        self._plan: _Plan | None = None
        self._header_consumed = False

    @property
    def num_features(self) -> int:
        return self.schema.num_features

    @property
    def importance_weights(self) -> bool:
        """Whether the blocks carry per-row weights (the schema has a ``weight_column``)."""
        return self.schema.weight_column is not None

    def plan(self) -> _Plan:
        if self._plan is None:
            s = self.schema
            delim = s.delimiter_for(self.display)
            if s.columns is not None:
                s.check_columns(list(s.columns), f"{s.key}.csv.columns")
                columns = scored_columns(s, self.path, delim, self.source.max_line_bytes) if self.unlabeled else list(
                    s.columns)
            elif s.header:
                # stdin has no name to tell a TSV: a header line with tabs and no comma is one
                sniff = self.path == STDIN_PATH and s.delimiter is None
                if self.path == STDIN_PATH and not stat.S_ISREG(os.stat(self.path).st_mode):
                    columns, delim = self._consume_pipe_header(delim, sniff)
                else:
                    columns, delim = read_header(self.path, delim, s.quote, sniff)
                labelled = not (self.unlabeled and s.label is not None and s.label not in columns)
                s.check_columns(columns if labelled else columns + [s.label], f"the header of {self.display}", delim)
            else:
                raise ConfigError(f"{s.key}.csv: give `columns` (the names in file order) or `header: true`")
            self._plan = _Plan(s, columns, delim, s.label is None or s.label in columns)
        return self._plan

    def _consume_pipe_header(self, delim: str, sniff: bool) -> tuple[list[str], str]:
        """The header line of a pipe, read byte by byte so that the chunks start on the next line."""
        fd = os.open(self.path, os.O_RDONLY)
        line = bytearray()
        try:
            while len(line) <= self.source.max_line_bytes:
                b = os.read(fd, 1)
                if not b or b == b"\n":
                    break
                line += b
        finally:
            os.close(fd)
        # as the chunks' pipe: gzip read as names said "no column 'y' in the header of <stdin> (columns: \x1f..."
        refuse_unread_pipe(self.path, bytes(line[:6]))
        self._header_consumed = True
        line = bytes(line).removeprefix(UTF8_BOM)  # (open_data skips it; these bytes are read here)
        return _header_fields(line.decode("utf-8", "replace"), delim, self.schema.quote, sniff, self.display)

    def _run(self, job: TextJob) -> TextJob:
        plan, s = self.plan(), self.schema
        buf = job.buf
        rows = int(count_newlines(buf))
        weighted = plan.weight_col >= 0
        # (scratch: where the kernel unquotes a line with a quoted field, and copies the lines ending within
        # PAD bytes of the buffer's end (its field hash reads PAD bytes past a field); pooled with the output,
        # as it is chunk-sized: a fresh array a chunk would be a fresh 4 MiB of a streamed epoch's address space)
        job.data, job.indices, indptr, job.labels, job.weights, scratch = self._room(
            ((rows * plan.per_row, self.dtype), (rows * plan.per_row, np.int64), (rows + 1, np.int64),
             (rows, np.float64), (rows if weighted else 0, np.float64), (len(buf) + CK.PAD, np.uint8)))
        indptr[0] = 0
        # the header line (names from it or from csv.columns), unless already read from a pipe
        skip = bool(job.first and s.header and not self._header_consumed)
        args = (buf, ord(plan.delimiter), ord(s.quote), skip, self.source.max_line_bytes, finite_limit(self.dtype),
                plan.roles, plan.label_col, plan.num_cols, plan.log1p, plan.cat_cols, plan.prefix_states,
                plan.cross_a, plan.cross_b, plan.cross_mid, plan.cross_mid_off, s.hash_bits, scratch,
                job.data, job.indices, indptr[1:], job.labels, 0)
        slow = np.empty((_SLOW_ROWS, 4), np.int64)
        info = CK.parse_csv_chunk(*args, slow, plan.weight_col, job.weights)
        if info[CK.I_NSLOW] > len(slow):
            slow = np.empty((int(info[CK.I_NSLOW]), 4), np.int64)
            info = CK.parse_csv_chunk(*args, slow, plan.weight_col, job.weights)
        job.info, job.slow = info, slow
        job.lines = int(info[CK.I_LINES])
        if not weighted:
            job.weights = None
        if info[CK.I_ERR] == CK.OK:
            keep_parsed(job, indptr, int(info[CK.I_ROWS]), int(info[CK.I_NNZ]))
        else:
            job.indptr = indptr
        return job

    def _name_text(self, text: str, where) -> None:
        """Record the text label ``text``; two texts of one hash cannot be told apart: an error."""
        from .hashing import murmurhash3_32

        h = murmurhash3_32(text)
        other = self.label_names.setdefault(h, text)
        if other != text:
            raise DataFormatError(f"{where()}: the labels {quoted(other)} and {quoted(text)} have the same hash "
                                  "(MurmurHash3), so they cannot be told apart; rename one of them")

    def _text_labels(self, job: TextJob, texts: dict, begin: int, cache: dict) -> None:
        """Text labels of the chunk (``texts``: row -> (text, raw start) of the rows the kernel listed) as
        :class:`~sparsetrain.labels.TextLabels` says: an error, kept, or every label mapped to 0/1."""
        spec, y = self.labels, job.labels[: int(job.info[CK.I_ROWS])]
        at = lambda start: line_of(self.source, begin, job, start, cache)  # noqa: E731
        where = lambda start: f"{self.display}:{at(start)}"  # noqa: E731
        if self.plan().label_col < 0:  # no labels: the NaNs are no text
            return
        col = self.plan().columns[self.plan().label_col]
        if texts and spec.task not in ("binary", "any"):
            row = min(texts)
            text, start = texts[row]
            raise DataFormatError(f"{where(start)}: label column {col!r}: {quoted(text)} is not a number "
                                  f"({spec.why_not_text()}){self._header_hint(at(start))}")
        if spec.task != "binary" or spec.values is None:
            return
        if not spec.maps:
            if texts:
                text, start = texts[min(texts)]
                raise DataFormatError(f"{where(start)}: {L.third_value(text, spec.values)}"
                                      f"{self._header_hint(at(start))}")
            return
        out = spec.apply(y)
        bad = np.flatnonzero(out < 0)
        if len(bad):
            r = int(bad[0])
            if r in texts:
                text, start = texts[r]
                raise DataFormatError(f"{where(start)}: {L.third_value(text, spec.values)}"
                                      f"{self._header_hint(at(start))}")
            line = line_of(self.source, begin, job, _row_start(job.buf, r, job.first and self.schema.header
                                                                and not self._header_consumed), cache)
            raise DataFormatError(f"{self.display}:{line}: {L.third_value(float(y[r]), spec.values)}")
        y[:] = out

    def _check(self, job: TextJob, begin: int, cache: dict) -> None:
        info, buf, plan = job.info, job.buf, self.plan()
        if self._header_consumed:  # a pipe's header, read before its chunks: their lines count from line 2
            cache.setdefault("before", 1)
        texts = {}
        for kind, pos, start, end in job.slow[: int(info[CK.I_NSLOW])]:
            raw = _unquote(token_text(buf, int(start), int(end), 10**6), plan.delimiter, self.schema.quote)
            if kind == CK.SLOW_LABEL_TEXT:
                texts[int(pos)] = raw, int(start)
                self._name_text(raw, lambda: f"{self.display}:{line_of(self.source, begin, job, int(start), cache)}")
                continue
            v = float(raw)
            if not math.isfinite(v) or abs(v) >= finite_limit(self.dtype):
                line = line_of(self.source, begin, job, int(start), cache)
                raise DataFormatError(f"{self.display}:{line}: value {quoted(raw)} is out of range for "
                                      f"{self.dtype.name}")
            if kind == CK.SLOW_LABEL:
                job.labels[pos] = v
            elif kind == CK.SLOW_WEIGHT:
                if v < 0:
                    line = line_of(self.source, begin, job, int(start), cache)
                    raise DataFormatError(f"{self.display}:{line}: weight column {plan.columns[plan.weight_col]!r}: "
                                          f"{quoted(raw)} is not a finite number >= 0")
                job.weights[pos] = v
            else:
                k = int(job.indices[pos]) - self.schema.hash_size
                job.data[pos] = math.copysign(math.log1p(abs(v)), v) if plan.log1p[k] else v
        if texts or self.labels.maps:
            self._text_labels(job, texts, begin, cache)
        code = int(info[CK.I_ERR])
        if code == CK.OK:
            return
        start, end, aux = int(info[CK.I_ERR_START]), int(info[CK.I_ERR_END]), int(info[CK.I_ERR_AUX])
        line = line_of(self.source, begin, job, start, cache)
        hint = self._header_hint(line) if code in (CK.E_VALUE, CK.E_LABEL, CK.E_FIELDS) else ""
        raise DataFormatError(f"{self.display}:{line}: {self._message(code, buf, start, end, aux)}{hint}")

    def _header_hint(self, line: int) -> str:
        """What to add to an error on line 1 of a file read without a header line: ``csv.columns`` given
        for a file whose first line names them read it as data."""
        if line != 1 or self.schema.header:
            return ""
        return f" (if line 1 holds the column names, set {self.schema.key}.csv.header: true)"

    def _message(self, code, buf, start, end, aux) -> str:
        cols = self.plan().columns
        tok = quoted(token_text(buf, start, end))
        if code == CK.E_QUOTE:
            return f"column {cols[aux]!r}: unterminated quoted field {tok} (a quoted field cannot span lines)"
        if code == CK.E_FIELDS:
            return f"more than the {aux} columns of the schema ({', '.join(cols[:6])}{', ...' if len(cols) > 6 else ''})"
        if code == CK.E_LABEL_MISSING:
            return f"label column {cols[aux]!r} is empty or missing"
        if code == CK.E_LABEL:
            return (f"label column {cols[aux]!r}: {tok} is not a number (labels are read as numbers: map string "
                    "labels to numbers first, e.g. 0 and 1)")
        if code in (CK.E_LABEL_NONFINITE, CK.E_VALUE_NONFINITE):
            return f"column {cols[aux]!r}: {tok} is not finite"
        if code in (CK.E_LABEL_RANGE, CK.E_VALUE_RANGE):
            return f"column {cols[aux]!r}: {tok} is too large for {self.dtype.name}"
        if code == CK.E_VALUE:
            return f"column {cols[aux]!r}: {tok} is not a number"
        if code in (CK.E_WEIGHT, CK.E_WEIGHT_NEGATIVE):
            return f"weight column {cols[aux]!r}: {tok} is not a finite number >= 0"
        if code == CK.E_LINE_TOO_LONG:
            return f"line is longer than max_line_bytes={aux}"
        return f"malformed line (error {code})"

    @property
    def _header_lines(self) -> int:
        return 1 if self.schema.header else 0

    def _prepare(self) -> None:
        self.plan()


def scored_columns(schema: CSVSchema, path, delimiter: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> list[str]:
    """The columns of a file read under ``csv.columns`` that may lack labels (rows ``predict`` scores):
    ``columns`` without the label when the first data line of ``path`` has one field fewer, else
    ``columns`` (also for a pipe, which is read once)."""
    columns = list(schema.columns)
    if schema.label is None or (os.fspath(path) == STDIN_PATH and not stat.S_ISREG(os.stat(path).st_mode)):
        return columns
    with opened_data(path) as f:
        lines = iter(lambda: f.readline(max_line_bytes), b"")
        if schema.header:
            next(lines, None)
        text = next((t for t in (raw.decode("utf-8", "replace").rstrip("\r\n") for raw in lines) if t), None)
    if text is not None and len(next(csv.reader([text], delimiter=delimiter, quotechar=schema.quote))) == len(
            columns) - 1:
        columns.remove(schema.label)
    return columns


def _row_start(buf, row: int, header: bool) -> int:
    """The byte offset in ``buf`` of data row ``row`` (blank lines are no rows, as the kernel reads)."""
    pos, n = 0, -1
    for i, line in enumerate(bytes(buf).split(b"\n")):
        if not (header and i == 0) and line not in (b"", b"\r"):
            n += 1
            if n == row:
                return pos
        pos += len(line) + 1
    return pos


def _unquote(raw: str, delimiter: str, quote: str) -> str:
    return next(csv.reader([raw], delimiter=delimiter, quotechar=quote), [""])[0].strip(" \t")


def load_csv(path, schema: CSVSchema, dtype="float32", **kwargs):
    """The whole file as ``(CSRNDArray, labels, weights)`` (labels a float array of the ``dtype``;
    weights float64, None without a ``weight_column``). Text labels kept as they are (``labels=TextLabels("any")``)
    stay float64: float32 would drop the hash they carry."""
    reader = CSVReader(path, schema, dtype, **kwargs)
    return load_blocks(reader, dtype, np.float64 if reader.labels.task == "any" else None)
