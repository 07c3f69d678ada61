"""What the columns of a CSV/TSV file are: :class:`CSVSchema`, apart from the reader so that a
config naming CSV data validates without loading the parser's compiled kernels
(``io/csv_reader.py`` reads files with it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..base import ConfigError
from .base import plain_name

__all__ = ["CSVSchema", "default_delimiter"]

# A header that splits into one column holding one of these was split by the wrong delimiter.
_OTHER_DELIMITERS = {"\t": "tabs", ",": "commas", ";": "semicolons", "|": "'|'s"}


def default_delimiter(path) -> str:
    """The delimiter of a CSV/TSV file by its name: tab for ``.tsv`` (``.gz``/``.bz2`` looked through), else comma."""
    return "\t" if plain_name(path).endswith(".tsv") else ","


def _yaml_char(c: str) -> str:
    return '"\\t"' if c == "\t" else repr(c)


def _number(text: str) -> bool:
    """Whether a header field is a number (a data line read as the header)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class CSVSchema:
    """What the columns of a CSV/TSV file are.

    columns: the names in file order; None reads them from the header line (``header=True``).
    label: the label column (default: the first column).
    numeric: value columns, one feature each; ``log1p``: those of them (or True: all) that
        become ``sign(x) * log(1 + |x|)``.
    categorical: string columns hashed into ``2**hash_bits`` buckets (key ``column=value``).
    crosses: pairs of categorical columns hashed as ``a=va^b=vb``.
    delimiter: one character (None: tab for ``.tsv`` files, else comma); quote: one character.
    header: the first line holds the column names (and is no data).
    weight_column: a column of per-row importance weights (numbers >= 0, empty: 1), applied as
        Vowpal Wabbit's importance (each row's gradient and metrics scaled by it).
    id_column: a column of row ids, no feature: ``predict`` writes it instead of the row number.
    Columns not named in label/numeric/categorical are ignored; at least one of numeric and
    categorical names a column (:meth:`check`).
    """

    columns: Sequence[str] | None = None
    label: str | None = None
    numeric: Sequence[str] = ()
    categorical: Sequence[str] = ()
    crosses: Sequence[Sequence[str]] = ()
    hash_bits: int = 18
    log1p: bool | Sequence[str] = ()
    delimiter: str | None = None
    quote: str = '"'
    header: bool = False
    weight_column: str | None = None
    id_column: str | None = None
    key: str = field(default="data", repr=False)  # the config key path named in errors

    @property
    def hash_size(self) -> int:
        return 1 << self.hash_bits

    @property
    def num_features(self) -> int:
        return self.hash_size + len(self.numeric)

    def delimiter_for(self, path) -> str:
        return self.delimiter if self.delimiter is not None else default_delimiter(path)

    def check(self) -> None:
        """Raise ConfigError (naming ``key.*``) for an inconsistent schema (columns not needed)."""
        k = self.key
        if not isinstance(self.hash_bits, int) or not 1 <= self.hash_bits <= 31:
            raise ConfigError(f"{k}.hash_bits: must be an integer in [1, 31], got {self.hash_bits!r}")
        for name, ch in (("csv.delimiter", self.delimiter), ("csv.quote", self.quote)):
            if ch is not None and (len(ch) != 1 or len(ch.encode("utf-8")) != 1 or ch in "\r\n"):
                raise ConfigError(f"{k}.{name}: must be one ASCII character other than a newline, got {ch!r}")
        if self.delimiter is not None and self.delimiter == self.quote:
            raise ConfigError(f"{k}.csv.quote: the same character as csv.delimiter ({self.quote!r})")
        seen = {} if self.weight_column is None else {self.weight_column: "weight_column"}
        if self.weight_column is not None and self.weight_column == self.label:
            raise ConfigError(f"{k}.weight_column: column {self.weight_column!r} is the label")
        if self.id_column is not None and self.id_column in (self.label, self.weight_column):
            role = "the label" if self.id_column == self.label else "the weight_column"
            raise ConfigError(f"{k}.id_column: column {self.id_column!r} is {role}")
        if self.id_column is not None:
            seen[self.id_column] = "id_column"
        for role, names in (("numeric", self.numeric), ("categorical", self.categorical)):
            for n in names:
                if n in seen:
                    raise ConfigError(f"{k}.{role}: column {n!r} is already in {k}.{seen[n]}")
                if n == self.label:
                    raise ConfigError(f"{k}.{role}: column {n!r} is the label")
                seen[n] = role
        if not self.numeric and not self.categorical:  # (rows of no feature: a model of its bias alone)
            raise ConfigError(f"{k}.numeric, {k}.categorical: both empty, so the rows would have no features; name "
                              f"the feature columns (numbers in {k}.numeric, strings to hash in {k}.categorical; "
                              "`sparsetrain init DATA` writes them)")
        for i, pair in enumerate(self.crosses):
            if len(pair) != 2:
                raise ConfigError(f"{k}.crosses[{i}]: a cross is a pair of columns, got {list(pair)}")
            for n in pair:
                if seen.get(n) != "categorical":
                    raise ConfigError(f"{k}.crosses[{i}]: {n!r} is not one of {k}.categorical")
        if not isinstance(self.log1p, bool):
            for n in self.log1p:
                if n not in self.numeric:
                    raise ConfigError(f"{k}.log1p: {n!r} is not one of {k}.numeric")

    def check_columns(self, columns: Sequence[str], where: str, delimiter: str | None = None) -> None:
        """Every named column exists in ``columns`` (from ``where``: the config or a header split by
        ``delimiter``)."""
        from ..base import did_you_mean

        k = self.key
        if len(set(columns)) != len(columns):
            dup = next(c for c in columns if list(columns).count(c) > 1)
            raise ConfigError(f"{k}.csv.columns: column {dup!r} appears twice ({where})")
        names = [("label", self.label)] if self.label is not None else []
        for role, n in (("weight_column", self.weight_column), ("id_column", self.id_column)):
            if n is not None:
                names.append((role, n))
        names += [("numeric", n) for n in self.numeric] + [("categorical", n) for n in self.categorical]
        for role, n in names:
            if n not in columns:
                hint = did_you_mean(n, columns) or f" (columns: {', '.join(columns[:12])}{', ...' if len(columns) > 12 else ''})"
                other = next((d for d in _OTHER_DELIMITERS if d != delimiter and d in columns[0]), None)
                if delimiter is not None and len(columns) == 1 and other:  # (a TSV named .csv, say)
                    hint = (f" (it reads as one column, split by {k}.csv.delimiter {delimiter!r}; it holds "
                            f"{_OTHER_DELIMITERS[other]}: set {k}.csv.delimiter: {_yaml_char(other)})")
                elif delimiter is not None and not did_you_mean(n, columns) and any(map(_number, columns)):
                    hint = (f" (columns: {', '.join(columns[:6])}{', ...' if len(columns) > 6 else ''}: the first "
                            f"line looks like data; a file without a header needs {k}.csv.header: false and "
                            f"{k}.csv.columns: [...])")
                raise ConfigError(f"{k}.{role}: no column {n!r} in {where}{hint}")
