"""Write LibSVM text: :func:`dump_libsvm`, the inverse of ``load_libsvm``."""
from __future__ import annotations

import numpy as np

from ..fileio import open_atomic
from ._libsvm_format import format_rows_strings

__all__ = ["dump_libsvm"]


def _as_scipy_csr(X):
    import scipy.sparse as sp  # here, not at import: reading data (io/__init__) needs no scipy

    from ..ndarray import BaseArray

    if isinstance(X, BaseArray):
        if X.stype == "csr":
            m = X.asscipy()
        else:
            m = sp.csr_matrix(np.atleast_2d(X.asnumpy()))
    elif sp.issparse(X):
        m = sp.csr_matrix(X)
    else:
        arr = np.asarray(X)
        if arr.ndim != 2:
            raise ValueError(f"X must be 2-D, got shape {arr.shape}")
        m = sp.csr_matrix(arr)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
    return m


def _as_strings(a: np.ndarray) -> np.ndarray:
    """Shortest round-trip text of each number, as a (len, width) uint8 array padded with NULs."""
    if a.dtype.kind == "b":
        a = a.astype(np.int64)
    elif a.dtype.kind == "f" and a.dtype not in (np.float32, np.float64):
        # float16 widens exactly to float32; longdouble is written at float64 precision
        a = a.astype(np.float32 if a.dtype.itemsize < 4 else np.float64)
    s = np.ascontiguousarray(a.astype("S"))
    return s.view(np.uint8).reshape(len(a), s.dtype.itemsize)


def dump_libsvm(X, y, path, zero_based: bool = True, *, chunk_rows: int = 65536) -> None:
    """Write ``X`` (CSRNDArray, scipy sparse matrix or dense 2-D array) and labels ``y``
    (1-D, or 2-D ``(rows, k)`` written as ``k`` comma-separated labels) as LibSVM text.

    Every stored entry of a sparse ``X`` is written (explicit zeros included); a dense ``X``
    writes its non-zeros. Numbers are written in their shortest round-trip form, so
    :func:`~sparsetrain.io.load_libsvm` with the same dtype reads back exactly the same values. The file is
    written to a temporary name and renamed into place (``fileio.open_atomic``: a missing
    directory or a full disk is an ``OutputError`` naming ``path``, and no partial file is
    left); a name ending in ``.gz`` or ``.bz2`` is compressed.
    """
    if not isinstance(zero_based, (bool, np.bool_)):
        raise ValueError(f"zero_based must be True or False, got {zero_based!r}")
    m = _as_scipy_csr(X)
    y = y.asnumpy() if hasattr(y, "asnumpy") else np.asarray(y)
    if y.ndim == 1:
        y2 = y.reshape(-1, 1)
    elif y.ndim == 2 and y.shape[1] >= 1:
        y2 = y
    else:
        raise ValueError(f"y must be 1-D, or 2-D with at least one column, got shape {y.shape}")
    if y2.dtype.kind not in "biuf":
        y2 = y2.astype(np.float64)
    if y2.shape[0] != m.shape[0]:
        raise ValueError(f"X has {m.shape[0]} rows but y has {y2.shape[0]}")
    if m.data.dtype.kind not in "biuf":
        raise ValueError(f"X must hold numbers, got dtype {m.data.dtype}")
    if m.data.dtype.kind == "f" and not np.isfinite(m.data).all():
        raise ValueError("X holds nan or inf, which LibSVM readers reject")
    if y2.dtype.kind == "f" and not np.isfinite(y2).all():
        raise ValueError("y holds nan or inf, which LibSVM readers reject")
    indptr = m.indptr.astype(np.int64, copy=False)
    indices = m.indices.astype(np.int64, copy=False)
    offset = 0 if zero_based else 1
    k = y2.shape[1]
    with open_atomic(path) as f:
        for r0 in range(0, m.shape[0], chunk_rows):
            r1 = min(m.shape[0], r0 + chunk_rows)
            lo, hi = indptr[r0], indptr[r1]
            text = format_rows_strings(
                _as_strings(np.ascontiguousarray(y2[r0:r1]).reshape(-1)),
                k,
                indptr[r0 : r1 + 1] - lo,
                indices[lo:hi],
                _as_strings(m.data[lo:hi]),
                offset,
            )
            f.write(memoryview(text))
