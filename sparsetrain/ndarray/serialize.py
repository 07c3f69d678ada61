"""``nd.save`` / ``nd.load``: arrays of every storage type in one data-only file (no pickle).

The file is a numpy ``.npz`` archive: entry ``__header__`` is a JSON string (format tag, the
names for a dict or ``null`` for a list, each array's stype and shape); array ``i`` stores its
buffers as ``i.data`` plus ``i.indices`` / ``i.indptr`` for the sparse types. Loading uses
``allow_pickle=False``, so a file can never run code.
"""
from __future__ import annotations

import io
import json
import zipfile

import numpy as np

from ..base import DataFormatError
from .ndarray import INDEX_DTYPE, BaseArray, CSRNDArray, NDArray, RowSparseNDArray

FORMAT = "sparsetrain-ndarrays-1"


def save(fname: str, data) -> None:
    """Save an array, a list of arrays or a ``{name: array}`` dict; sparse arrays stay sparse."""
    from ..fileio import write_atomic

    if isinstance(data, BaseArray):
        data = [data]
    if isinstance(data, dict):
        names, arrays = list(data), list(data.values())
        if not all(isinstance(k, str) for k in names):
            raise TypeError("nd.save: dict keys must be strings")
    elif isinstance(data, (list, tuple)):
        names, arrays = None, list(data)
    else:
        raise TypeError(f"nd.save takes an NDArray, a list or a dict of them, got {type(data).__name__}")
    entries, described = {}, []
    for i, a in enumerate(arrays):
        if not isinstance(a, BaseArray):
            raise TypeError(f"nd.save: item {names[i] if names else i} is a {type(a).__name__}, not an array")
        described.append({"stype": a.stype, "shape": list(a.shape)})
        entries[f"{i}.data"] = a._data
        if a.stype != "default":
            entries[f"{i}.indices"] = a._indices
        if a.stype == "csr":
            entries[f"{i}.indptr"] = a._indptr
    header = json.dumps({"format": FORMAT, "names": names, "arrays": described})
    buf = io.BytesIO()
    np.savez(buf, __header__=np.array(header), **entries)
    write_atomic(fname, buf.getvalue())


def load(fname: str):
    """What :func:`save` wrote: a list of arrays, or a dict when a dict was saved."""
    try:
        with np.load(fname, allow_pickle=False) as z:
            header = json.loads(str(z["__header__"]))
            if header.get("format") != FORMAT:
                raise DataFormatError(f"{fname}: not a sparsetrain array file (format {header.get('format')!r})")
            arrays = [_rebuild(z, i, d) for i, d in enumerate(header["arrays"])]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        if isinstance(e, DataFormatError):
            raise
        raise DataFormatError(f"{fname}: not a readable sparsetrain array file ({e})") from None
    names = header["names"]
    return arrays if names is None else dict(zip(names, arrays))


def _rebuild(z, i: int, desc: dict):
    shape = tuple(desc["shape"])
    data = z[f"{i}.data"]
    if desc["stype"] == "default":
        return NDArray(data.reshape(shape))
    indices = z[f"{i}.indices"].astype(INDEX_DTYPE, copy=False)
    if desc["stype"] == "csr":
        out = CSRNDArray(data, indices, z[f"{i}.indptr"].astype(INDEX_DTYPE, copy=False), shape)
    else:
        out = RowSparseNDArray(data, indices, shape)
    out.check_format()
    return out
