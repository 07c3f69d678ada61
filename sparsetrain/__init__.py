"""sparsetrain: train sparse models with MXNet-style sparse symbols, from Python or the command line.

``import sparsetrain as mx`` runs MXNet 1.x sparse tutorials almost unchanged.
"""
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

MXNetError = SparseTrainError  # MXNet's base error class, for ``except mx.MXNetError``

__version__ = "0.1.0"


def gpu(device_id: int = 0):
    raise SparseTrainError("sparsetrain runs on the CPU only; use sparsetrain.cpu()")


# Every submodule loads on first use (``sparsetrain.nd``, ``sparsetrain.sym``, ``sparsetrain.mod``, ...):
# ``import sparsetrain`` and the CLI's start-up (``sparsetrain --help``) import neither numba nor scipy
# nor the operator registry until something needs them (tests/test_import_hygiene.py checks it).
_LAZY = {
    "ndarray": "ndarray", "nd": "nd", "ops": "ops", "random": "random", "test_utils": "test_utils",
    "symbol": "symbol", "sym": "symbol",
    "mod": "module", "module": "module", "io": "io", "metric": "metric", "optimizer": "optimizer",
    "initializer": "initializer", "init": "initializer", "lr_scheduler": "lr_scheduler",
    "kvstore": "kvstore", "kv": "kvstore", "config": "config", "engines": "engines",
}


def __getattr__(name):
    if name == "set_strict_stypes":
        from .ops import set_strict_stypes

        return set_strict_stypes
    if name in _LAZY:
        import importlib

        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module 'sparsetrain' has no attribute {name!r}")
