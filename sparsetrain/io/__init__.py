"""Data input: LibSVM reading/writing, data iterators and synthetic data."""
from . import synthetic
from .base import DataBatch, DataDesc, DataIter
from .libsvm import LibSVMBlock, LibSVMReader, dump_libsvm, load_libsvm
from .libsvm_iter import LibSVMIter
from .ndarray_iter import NDArrayIter  # owned by the core iterator work (sparsetrain/io/ndarray_iter.py)

__all__ = [
    "DataDesc", "DataBatch", "DataIter", "NDArrayIter", "LibSVMIter", "LibSVMReader", "LibSVMBlock",
    "load_libsvm", "dump_libsvm", "synthetic",
]
