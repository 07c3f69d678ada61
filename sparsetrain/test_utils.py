"""Helpers for tests and tutorials, as ``mxnet.test_utils``."""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .base import check_stype
from .ndarray import NDArray, cast_storage
from .ndarray.sparse import csr_matrix
from .random import generator


def rand_ndarray(shape, stype="default", density=None, dtype=None, distribution=None):
    """A random array of ``stype``; sparse ones have about ``density`` non-zeros (uniform [0, 1))."""
    check_stype(stype)
    rng = generator()
    dtype = np.dtype(dtype or np.float32)
    density = rng.random() if density is None else float(density)
    shape = tuple(shape)
    if stype == "default":
        return NDArray(rng.uniform(-1.0, 1.0, size=shape).astype(dtype))
    if stype == "csr":
        if len(shape) != 2:
            raise ValueError(f"csr needs a 2-D shape, got {shape}")
        if distribution == "powerlaw":
            return _powerlaw_csr(shape, density, dtype, rng)
        m = sp.random(shape[0], shape[1], density=density, format="csr", dtype=np.float64, rng=rng)
        m.data = rng.uniform(0.0, 1.0, size=m.nnz)
        m.sort_indices()
        return csr_matrix(m, dtype=dtype)
    rows = rng.random(shape[0]) < density
    data = np.zeros(shape, dtype=dtype)
    data[rows] = rng.uniform(0.0, 1.0, size=(int(rows.sum()),) + shape[1:]).astype(dtype)
    return cast_storage(NDArray(data), "row_sparse")


def _powerlaw_csr(shape, density, dtype, rng):
    """Row ``i`` gets about twice the non-zeros of row ``i-1`` until the budget is spent (MXNet's rule)."""
    n, m = shape
    budget = int(round(density * n * m))
    dense = np.zeros(shape, dtype=dtype)
    per_row = 1
    for i in range(n):
        take = min(per_row, m, budget)
        if take <= 0:
            break
        cols = rng.choice(m, size=take, replace=False)
        dense[i, cols] = rng.uniform(0.0, 1.0, size=take)
        budget -= take
        per_row *= 2
    return csr_matrix(dense)


def assert_almost_equal(a, b, rtol=1e-5, atol=1e-7):
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    b = b.asnumpy() if hasattr(b, "asnumpy") else np.asarray(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def default_context():
    """The context MXNet's tests run in (always the CPU here)."""
    from .base import cpu

    return cpu()


def rand_shape_2d(dim0=10, dim1=10):
    """A random 2-D shape with each dimension in ``[1, dim]``, as ``mxnet.test_utils``."""
    rng = generator()
    return int(rng.integers(1, dim0 + 1)), int(rng.integers(1, dim1 + 1))


def rand_shape_3d(dim0=10, dim1=10, dim2=10):
    rng = generator()
    return tuple(int(rng.integers(1, d + 1)) for d in (dim0, dim1, dim2))


def rand_shape_nd(num_dim, dim=10):
    rng = generator()
    return tuple(int(x) for x in rng.integers(1, dim + 1, size=num_dim))


def same(a, b) -> bool:
    """Exact equality of two arrays (any storage type, numpy or sparsetrain)."""
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    b = b.asnumpy() if hasattr(b, "asnumpy") else np.asarray(b)
    return bool(np.array_equal(a, b))


def almost_equal(a, b, rtol=1e-5, atol=1e-7) -> bool:
    a = a.asnumpy() if hasattr(a, "asnumpy") else np.asarray(a)
    b = b.asnumpy() if hasattr(b, "asnumpy") else np.asarray(b)
    return bool(np.allclose(a, b, rtol=rtol, atol=atol))
