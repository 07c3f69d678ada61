"""The options of synthetic data (``gen-data``): one schema for their defaults, ranges and meaning.

``sparsetrain gen-data``'s command-line options are generated from :class:`SyntheticOptions`,
``data.generate`` in a config extends it with ``path``, and :func:`~sparsetrain.io.synthetic.generate_libsvm`
checks its arguments with :func:`check_options`: nothing else writes a default or a range down.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from ..base import ConfigError
from ..validation import check_fits_memory, format_validation_error



def _not_bool(v):
    if isinstance(v, bool):
        raise ValueError("must be an integer, not a boolean")
    return v


Int = Annotated[int, BeforeValidator(_not_bool)]

# bytes per element of the true weights, held whole while the rows are streamed
_WEIGHT_BYTES = 8


class SyntheticOptions(BaseModel):
    """Synthetic LibSVM data: the seed's ``y = X · [1..D]`` and friends."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    rows: Int = Field(gt=0, description="Number of rows.")
    features: Int = Field(gt=0, description="Number of features (columns).")
    density: float | None = Field(None, gt=0, le=1, description="Fraction of non-zeros per row "
                                  "(give this or `nnz_per_row`).")
    nnz_per_row: Int | None = Field(None, gt=0, description="Non-zeros per row (instead of `density`).")
    task: Literal["regression", "binary", "multiclass"] = Field("regression", description="Label type.")
    classes: Int = Field(2, ge=2, description="Number of classes for `multiclass`.")
    target: Literal["arange", "random"] = Field("arange", description="True weights: `arange` is the seed's "
                                                "[1..D]; `random` draws them.")
    noise: float = Field(0.0, ge=0, description="Standard deviation of Gaussian label noise.")
    columns: Literal["uniform", "zipf"] = Field("uniform", description="Column distribution of the non-zeros.")
    zipf_a: float = Field(1.2, gt=1, description="Zipf exponent when `columns` is zipf.")
    seed: Int = Field(0, ge=0, description="Random seed of the generator.")
    zero_based: bool = Field(True, description="Write zero-based feature indices.")

    @model_validator(mode="after")
    def _consistent(self):
        if (self.density is None) == (self.nnz_per_row is None):
            raise ValueError("give exactly one of `density` and `nnz_per_row`")
        if self.nnz_per_row is not None and self.nnz_per_row > self.features:
            raise ValueError(f"`nnz_per_row` ({self.nnz_per_row}) exceeds `features` ({self.features})")
        width = self.classes if self.task == "multiclass" else 1
        check_fits_memory(self.features * width * _WEIGHT_BYTES,
                          f"`features` ({self.features}): the true weights ({self.features} x {width} float64)")
        return self

    def generator_kwargs(self) -> dict:
        """Keyword arguments of :func:`~sparsetrain.io.synthetic.generate_libsvm` (besides ``path``)."""
        return self.model_dump(include=set(SyntheticOptions.model_fields))


def check_options(**values) -> SyntheticOptions:
    """The options validated; a ``ConfigError`` naming the option and the offending value otherwise."""
    try:
        return SyntheticOptions.model_validate(values)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, SyntheticOptions)) from None
