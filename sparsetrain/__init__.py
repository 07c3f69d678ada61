"""sparsetrain: train sparse models with MXNet-style sparse symbols, from Python or the command line.

``import sparsetrain as mx`` runs MXNet 1.x sparse tutorials almost unchanged.
"""
from . import base, ndarray, ops, random, test_utils
from . import nd
from . import symbol
from .base import (
    ConfigError,
    Context,
    DataFormatError,
    ShapeError,
    SparseTrainError,
    StorageFallbackWarning,
    StorageTypeError,
    cpu,
    current_context,
)
from .ops import set_strict_stypes

sym = symbol
MXNetError = SparseTrainError  # MXNet's base error class, for ``except mx.MXNetError``

__version__ = "0.1.0"


def gpu(device_id: int = 0):
    raise SparseTrainError("sparsetrain runs on the CPU only; use sparsetrain.cpu()")


# Submodules above the symbol layer load on first use (``sparsetrain.mod``, ``sparsetrain.io``, ...),
# which keeps ``import sparsetrain`` and the CLI's start-up fast.
_LAZY = {
    "mod": "module", "module": "module", "io": "io", "metric": "metric", "optimizer": "optimizer",
    "initializer": "initializer", "init": "initializer", "lr_scheduler": "lr_scheduler",
    "kvstore": "kvstore", "kv": "kvstore", "config": "config", "engines": "engines",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'sparsetrain' has no attribute {name!r}")
