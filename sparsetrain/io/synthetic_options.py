"""The options of synthetic data (``gen-data``): one schema for their defaults, ranges and meaning.

``sparsetrain gen-data``'s command-line options are generated from :class:`SyntheticOptions`,
``data.generate`` in a config extends it with ``path``, and :func:`~sparsetrain.io.synthetic.generate`
(``generate_libsvm``, ``synthetic_csv.generate_csv``) checks its arguments with :func:`check_options`:
nothing else writes a default or a range down.
What both generators share lives here too: :func:`check_call`, ``BLOCK_ROWS``, :class:`SyntheticResult`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from ..base import ConfigError
from ..validation import NumbersNotBools, check_fits_memory, format_validation_error

# bytes per element of the true weights, held whole while the rows are streamed
_WEIGHT_BYTES = 8
#: The options only the csv format reads (and only it; the rest are libsvm's, shared: rows, task, noise, seed, zipf_a).
CSV_ONLY = ("numeric", "categorical", "cardinality", "vocabulary", "missing")
#: The largest label noise: labels are float32 numbers (at most 3.4e38), and a Gaussian draw of a larger
#: standard deviation can overflow to inf (1e39 wrote -inf labels); 340 standard deviations of 1e36 do not.
MAX_NOISE = 1e36
LIBSVM_ONLY = ("features", "density", "nnz_per_row", "classes", "target", "columns", "zero_based")


class SyntheticOptions(NumbersNotBools):
    """Synthetic data: LibSVM (the seed's ``y = X · [1..D]`` and friends) or a Criteo-like TSV."""

    # a number is finite (--noise inf wrote -inf labels, which no reader takes; --zipf-a inf: an internal error)
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    format: Literal["libsvm", "csv"] = Field("libsvm", description="`libsvm` rows, or a Criteo-like TSV "
                                             "(label, `numeric` integer and `categorical` string columns, "
                                             "a header line) with a planted model: logistic for a binary `task`, "
                                             "its score plus `noise` for regression.")
    rows: int = Field(gt=0, description="Number of rows.")
    features: int | None = Field(None, gt=0, description="libsvm: number of features (columns); required.")
    density: float | None = Field(None, gt=0, le=1, description="libsvm: fraction of non-zeros per row "
                                  "(give this or `nnz_per_row`).")
    nnz_per_row: int | None = Field(None, gt=0, description="libsvm: non-zeros per row (instead of `density`).")
    task: Literal["regression", "binary", "multiclass"] = Field("regression", description="Label type "
                                                                  "(csv: binary or regression).")
    classes: int = Field(2, ge=2, description="libsvm: number of classes for `multiclass`.")
    target: Literal["arange", "random"] = Field("arange", description="libsvm: true weights: `arange` is the "
                                                "seed's [1..D]; `random` draws them.")
    noise: float = Field(0.0, ge=0, description=f"Standard deviation of Gaussian label noise (at most {MAX_NOISE:g}).")
    columns: Literal["uniform", "zipf"] = Field("uniform", description="libsvm: column distribution of the "
                                                 "non-zeros.")
    zipf_a: float = Field(1.2, gt=1, description="Zipf exponent when `columns` (libsvm) or `cardinality` (csv) "
                          "is zipf.")
    seed: int = Field(0, ge=0, description="Random seed of the generator.")
    zero_based: bool = Field(True, description="libsvm: write zero-based feature indices.")
    numeric: int = Field(13, ge=0, description="csv: integer-count columns `i1`, `i2`, ... (empty when missing).")
    categorical: int = Field(26, ge=0, description="csv: string columns `c1`, `c2`, ... (8 hex digits).")
    cardinality: Literal["uniform", "zipf"] = Field("uniform", description="csv: distribution of the values "
                                                    "of a categorical column over its `vocabulary` (zipf: "
                                                    "exponent `zipf_a`).")
    vocabulary: int = Field(1000, gt=0, description="csv: distinct values per categorical column.")
    missing: float = Field(0.1, ge=0, lt=1, description="csv: fraction of empty numeric and categorical fields.")

    @field_validator("noise")
    @classmethod
    def _noise_fits_float32(cls, v):
        if v > MAX_NOISE:
            raise ValueError(f"must be at most {MAX_NOISE:g}: labels are float32 numbers, and "
                             "noise this large makes some of them inf")
        return v

    @model_validator(mode="after")
    def _consistent(self):
        if self.format == "csv":
            given = [f"`{k}`" for k in ("features", "density", "nnz_per_row") if getattr(self, k) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: not for csv data (use `numeric`, `categorical`)")
            if self.task == "multiclass":
                raise ValueError("`task` multiclass: csv data is binary or regression")
            if self.numeric + self.categorical == 0:
                raise ValueError("csv data needs at least one `numeric` or `categorical` column")
            return self
        if self.features is None:
            raise ValueError("`features` is required for libsvm data")
        if (self.density is None) == (self.nnz_per_row is None):
            raise ValueError("give exactly one of `density` and `nnz_per_row`")
        if self.nnz_per_row is not None and self.nnz_per_row > self.features:
            raise ValueError(f"`nnz_per_row` ({self.nnz_per_row}) exceeds `features` ({self.features})")
        width = self.classes if self.task == "multiclass" else 1
        check_fits_memory(self.features * width * _WEIGHT_BYTES,
                          f"`features` ({self.features}): the true weights ({self.features} x {width} float64)")
        return self

    def generator_kwargs(self) -> dict:
        """Keyword arguments of :func:`~sparsetrain.io.synthetic.generate` (besides ``path``)."""
        return self.model_dump(include=set(SyntheticOptions.model_fields))


def not_read(fmt: str | None = None, task: str | None = None) -> tuple[str, ...]:
    """The options data of format ``fmt`` for ``task`` (None: the default) does not read: the other format's,
    and `classes` unless `task` is multiclass."""
    fields = SyntheticOptions.model_fields
    fmt, task = fmt or fields["format"].default, task or fields["task"].default
    other = LIBSVM_ONLY if fmt == "csv" else CSV_ONLY
    if task != "multiclass" and "classes" not in other:
        other += ("classes",)
    return other


def check_given(opts: SyntheticOptions, given) -> None:
    """A ``ConfigError`` for an option in ``given`` (the names the user set) that ``opts`` does not read:
    one of the other format's, or `classes` without `task` multiclass (they were ignored without a word)."""
    wrong = next((k for k in not_read(opts.format, opts.task) if k in given), None)
    if wrong == "classes" and opts.format != "csv":
        raise ConfigError("`classes`: only for `task` multiclass")
    if wrong is not None:
        fmt = "libsvm" if opts.format == "csv" else "csv"
        raise ConfigError(f"`{wrong}`: only for `format` {fmt} data")


def check_options(**values) -> SyntheticOptions:
    """The options validated; a ``ConfigError`` naming the option and the offending value otherwise."""
    try:
        return SyntheticOptions.model_validate(values)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, SyntheticOptions)) from None


#: Rows drawn from one random stream.
BLOCK_ROWS = 8192


@dataclass
class SyntheticResult:
    """What :func:`~sparsetrain.io.synthetic.generate_libsvm` (or ``synthetic_csv.generate_csv``) wrote."""

    path: str
    rows: int
    features: int | None  # libsvm columns (None for csv)
    nnz: int  # libsvm non-zeros; csv non-empty fields besides the label
    bytes: int  # size of the data file
    weights_path: str  # the true weights (libsvm) or the planted model (csv)
    task: str = "regression"
    threshold: float | None = None  # binary labels: 1 when the score exceeds it
    format: str = "libsvm"
    numeric: int = 0  # csv columns
    categorical: int = 0
    planted_log_loss: float | None = None  # csv binary: the planted model's log-loss on the rows written


def check_call(chunk_rows, dtype, **options):
    """A generator's arguments: ``options`` checked against their one schema (:func:`check_options`),
    then ``chunk_rows`` and ``dtype``; returns ``(options, dtype)``."""
    opts = check_options(**options)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return opts, dt
