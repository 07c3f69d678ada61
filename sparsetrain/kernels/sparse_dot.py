"""Compiled kernels of the sparse ``dot`` family over raw CSR / row-sparse buffers."""
from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def csr_dense_dot(data, indices, indptr, weight):
    """``X · W`` for CSR ``X`` (n, D) and dense ``W`` (D, K) -> dense (n, K)."""
    n = indptr.shape[0] - 1
    k = weight.shape[1]
    out = np.zeros((n, k), dtype=weight.dtype)
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            v = data[p]
            row = weight[indices[p]]
            for j in range(k):
                out[i, j] += v * row[j]
    return out


@njit(cache=True, nogil=True)
def csr_rsp_dot(data, indices, indptr, rsp_data, rsp_indices, num_rows):
    """``X · W`` for row-sparse ``W`` given as (rows, data); absent rows are zero."""
    n = indptr.shape[0] - 1
    k = rsp_data.shape[1]
    out = np.zeros((n, k), dtype=rsp_data.dtype)
    if rsp_indices.shape[0] == num_rows:  # a full row-sparse weight: row r is stored at r
        return csr_dense_dot(data, indices, indptr, rsp_data)
    pos = np.full(num_rows, -1, dtype=np.int64)
    for r in range(rsp_indices.shape[0]):
        pos[rsp_indices[r]] = r
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            r = pos[indices[p]]
            if r >= 0:
                v = data[p]
                for j in range(k):
                    out[i, j] += v * rsp_data[r, j]
    return out


@njit(cache=True, nogil=True)
def unique_columns(indices, num_cols):
    """Sorted unique column ids of a CSR structure (explicit zeros count)."""
    nnz = indices.shape[0]
    if nnz * 8 < num_cols:
        return np.unique(indices).astype(np.int64)  # one return type whatever the index dtype
    seen = np.zeros(num_cols, dtype=np.bool_)
    count = 0
    for p in range(nnz):
        c = indices[p]
        if not seen[c]:
            seen[c] = True
            count += 1
    out = np.empty(count, dtype=np.int64)
    q = 0
    for c in range(num_cols):
        if seen[c]:
            out[q] = c
            q += 1
    return out


@njit(cache=True, nogil=True)
def csr_t_dense_dot_rsp(data, indices, indptr, grad, num_cols):
    """``Xᵀ · G`` as row-sparse (rows, values): rows are exactly the columns present in ``X``."""
    rows = unique_columns(indices, num_cols)
    k = grad.shape[1]
    values = np.zeros((rows.shape[0], k), dtype=grad.dtype)
    n = indptr.shape[0] - 1
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            r = np.searchsorted(rows, indices[p])
            v = data[p]
            for j in range(k):
                values[r, j] += v * grad[i, j]
    return rows, values


def csr_dense_dot_reference(data, indices, indptr, weight, num_cols):
    import scipy.sparse as sp

    x = sp.csr_matrix((data, indices, indptr), shape=(len(indptr) - 1, num_cols))
    return np.asarray(x @ weight)
