"""Data input: LibSVM reading/writing, data iterators and synthetic data.

The names below load on first use, so that importing one light submodule (``io.base``,
``io.synthetic_options``, as the config schema does) imports neither numba nor scipy.
"""
import importlib

_LAZY = {
    "DataDesc": "base", "DataBatch": "base", "DataIter": "base",
    "LibSVMReader": "libsvm", "LibSVMBlock": "libsvm", "load_libsvm": "libsvm", "dump_libsvm": "libsvm",
    "LibSVMIter": "libsvm_iter", "ChainedReader": "stream_rows",
    "NDArrayIter": "ndarray_iter",  # owned by the core iterator work (sparsetrain/io/ndarray_iter.py)
}

__all__ = [
    "DataDesc", "DataBatch", "DataIter", "NDArrayIter", "LibSVMIter", "ChainedReader", "LibSVMReader", "LibSVMBlock",
    "load_libsvm", "dump_libsvm", "synthetic",
]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name == "synthetic":
        value = importlib.import_module(".synthetic", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
