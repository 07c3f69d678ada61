"""The ``.params`` file: a Module's parameters as data-only npz, written atomically.

Entries ``{arg|aux}:NAME:{stype,shape,data}`` and, for sparse arrays, ``:indices`` (row ids of a
row-sparse array, column ids of a csr one) and ``:indptr`` (csr). Row-sparse and csr arrays stay
sparse; ids are stored as int32 when the dimension they index fits in it, and a row-sparse array
holding every row (a trained weight) stores no row ids at all: they are ``0 .. rows - 1``. Files
of earlier versions (int64 ids, always present) load the same. :func:`load_params` checks every
entry (shape, dtype, sorted unique in-range ids) before building an array and never unpickles; a
damaged file is one ``SparseTrainError`` naming it. ``Module.save_params``/``load_params`` and the
run directory's checkpoints use these two functions.
"""
from __future__ import annotations

import numpy as np

from .base import SparseTrainError
from .fileio import DAMAGED_NPZ_ERRORS, write_npz
from .ndarray.ndarray import INDEX_DTYPE, BaseArray, CSRNDArray, NDArray, RowSparseNDArray

__all__ = ["save_params", "load_params"]


def save_params(path: str, arg_params: dict, aux_params: dict | None = None) -> None:
    """Write parameters atomically (npz); row-sparse and csr arrays stay sparse."""
    arrays = {}
    for prefix, params in (("arg", arg_params), ("aux", aux_params or {})):
        for name, arr in params.items():
            key = f"{prefix}:{name}"
            arrays[key + ":stype"] = np.array(arr.stype)
            arrays[key + ":shape"] = np.array(arr.shape, dtype=np.int64)
            arrays[key + ":data"] = arr._data
            if arr.stype == "row_sparse" and not arr._every_row:
                arrays[key + ":indices"] = _narrow(arr._indices, arr.shape[0])
            if arr.stype == "csr":
                arrays[key + ":indices"] = _narrow(arr._indices, arr.shape[1])
                arrays[key + ":indptr"] = arr._indptr
    write_npz(path, arrays)


def _narrow(ids: np.ndarray, bound: int) -> np.ndarray:
    """Ids below ``bound`` as int32 when it fits (half the bytes of int64)."""
    return ids.astype(np.int32) if bound <= np.iinfo(np.int32).max + 1 else ids


def load_params(path: str) -> tuple[dict, dict]:
    """Read a parameter file written by :func:`save_params`.

    A file that is not one (truncated, empty, damaged, or with sparse row/column ids out of
    order, repeated or out of range) raises one ``SparseTrainError`` naming the file; nothing is
    read by position from an inconsistent file. No file content is ever unpickled."""
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except DAMAGED_NPZ_ERRORS as e:
        raise SparseTrainError(f"{path}: not a sparsetrain parameter file ({e or type(e).__name__})") from None
    out = {"arg": {}, "aux": {}}
    try:
        with z:
            for key in z.files:
                if not key.endswith(":stype"):
                    continue
                prefix, name, _ = key.split(":")
                if prefix not in out:
                    raise ValueError(f"unknown entry {key!r}")
                base = f"{prefix}:{name}"
                parts = {k: np.array(z[f"{base}:{k}"]) for k in ("indices", "indptr") if f"{base}:{k}" in z.files}
                out[prefix][name] = _checked_array(name, str(z[key]), z[base + ":shape"], np.array(z[base + ":data"]),
                                                   **parts)
    except (KeyError, TypeError, IndexError) + DAMAGED_NPZ_ERRORS as e:
        raise SparseTrainError(f"{path}: damaged parameter file ({e or type(e).__name__})") from None
    return out["arg"], out["aux"]


def _checked_array(name, stype, shape, data, indices=None, indptr=None) -> BaseArray:
    """The array one ``save_params`` entry holds, after checking that its parts agree."""
    shape = tuple(int(s) for s in np.atleast_1d(shape))
    if any(s < 0 for s in shape) or data.dtype.kind not in "fiu":
        raise ValueError(f"parameter {name!r}: bad shape {shape} or dtype {data.dtype}")
    if stype == "default":
        if data.shape != shape:
            raise ValueError(f"parameter {name!r}: {data.shape} values for shape {shape}")
        return NDArray(data)
    if indices is None and stype == "row_sparse":  # every row (see the module docstring); no ids are made
        if not shape or data.shape != shape:
            raise ValueError(f"parameter {name!r}: {data.shape} values for every row of shape {shape}")
        return RowSparseNDArray(data, None, shape)
    if indices is None or indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise ValueError(f"parameter {name!r}: missing or bad indices")
    indices = indices.astype(INDEX_DTYPE, copy=False)
    if stype == "row_sparse":
        if data.shape != (len(indices),) + shape[1:]:
            raise ValueError(f"parameter {name!r}: {data.shape} values for {len(indices)} rows of shape {shape}")
        _check_ids(name, "row", indices, shape[0])
        return RowSparseNDArray(data, indices, shape)
    if stype == "csr":
        if (len(shape) != 2 or indptr is None or indptr.shape != (shape[0] + 1,) or data.shape != indices.shape
                or indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0)):
            raise ValueError(f"parameter {name!r}: inconsistent csr indptr/indices/data")
        ascending = np.diff(indices) > 0
        starts = indptr[1:-1]
        ascending[starts[(starts > 0) & (starts < len(indices))] - 1] = True  # a new row may start lower
        if len(indices) and (indices.min() < 0 or indices.max() >= shape[1] or not ascending.all()):
            raise ValueError(f"parameter {name!r}: column ids must be sorted, unique and in [0, {shape[1]}) per row")
        return CSRNDArray(data, indices, indptr, shape)
    raise ValueError(f"parameter {name!r}: unknown storage type {stype!r}")


def _check_ids(name, what, ids, bound) -> None:
    if len(ids) and (ids[0] < 0 or ids[-1] >= bound or np.any(np.diff(ids) <= 0)):
        raise ValueError(f"parameter {name!r}: {what} ids must be sorted, unique and in [0, {bound})")
