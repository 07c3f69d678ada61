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

__version__ = "0.1.0"


def gpu(device_id: int = 0):
    raise SparseTrainError("sparsetrain runs on the CPU only; use sparsetrain.cpu()")
