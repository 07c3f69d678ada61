"""Storage types: dense ``NDArray``, ``CSRNDArray`` and ``RowSparseNDArray``."""
from . import sparse
from .creation import arange, array, concat, empty, full, ones, ones_like, waitall, zeros, zeros_like
from .ndarray import DEFAULT_DTYPE, INDEX_DTYPE, BaseArray, BaseSparseNDArray, CSRNDArray, NDArray, RowSparseNDArray
from .storage import cast_storage

__all__ = [
    "BaseArray", "BaseSparseNDArray", "NDArray", "CSRNDArray", "RowSparseNDArray", "sparse", "array", "zeros", "ones",
    "full", "empty", "arange", "cast_storage", "zeros_like", "ones_like", "concat", "waitall",
    "DEFAULT_DTYPE", "INDEX_DTYPE",
]
