"""Errors, warnings and the device context shared by every layer."""
from __future__ import annotations


class SparseTrainError(Exception):
    """Base class of every error sparsetrain raises on purpose."""


MXNetError = SparseTrainError  # MXNet's name for it (``mx.base.MXNetError``, ``mx.MXNetError``)


class DataFormatError(SparseTrainError, ValueError):
    """Malformed input data; the message names the file and line."""


class ConfigError(SparseTrainError, ValueError):
    """An invalid configuration; the message names the key path."""


class ArgumentError(SparseTrainError, TypeError):
    """An operator called with an argument it does not take, or one given twice (MXNet: MXNetError)."""


class StorageTypeError(SparseTrainError, TypeError):
    """An unknown storage type, or a storage fallback in strict mode."""


class UnknownStorageTypeError(StorageTypeError, ValueError):
    """A storage type name that does not exist (MXNet raises ValueError for it)."""


class ShapeError(SparseTrainError, ValueError):
    """Shapes that cannot work together; the message names the node or argument."""


def quoted(text: str) -> str:
    """Text of a data file (:func:`sparsetrain.io.base.token_text`) in quotes, as messages show it: as
    ``repr`` but for backslashes, which stay single (a byte that is not UTF-8 shows ``'x\\xff2'``, not
    ``'x\\\\xff2'``); control characters escaped."""
    body = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    q = '"' if "'" in body and '"' not in body else "'"
    return q + body + q


class OutputError(SparseTrainError, OSError):
    """A file could not be written (missing directory, disk full, no permission). An OSError
    with the cause's ``errno``; ``filename`` is the path the caller asked for."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


class StorageFallbackWarning(UserWarning):
    """An operator had no kernel for its input storage types and ran densely."""


class Context:
    """A device context. Only the CPU exists; ``ctx`` arguments are accepted and ignored."""

    __slots__ = ("device_type", "device_id")

    def __init__(self, device_type: str = "cpu", device_id: int = 0):
        self.device_type = device_type
        self.device_id = device_id

    def __repr__(self) -> str:
        return f"{self.device_type}({self.device_id})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Context) and (self.device_type, self.device_id) == (
            other.device_type,
            other.device_id,
        )

    def __hash__(self) -> int:
        return hash((self.device_type, self.device_id))


def cpu(device_id: int = 0) -> Context:
    return Context("cpu", device_id)


def current_context() -> Context:
    return cpu()


Context.default_ctx = cpu()  # MXNet's class-level default context (always the CPU here)


def did_you_mean(name, choices) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``name`` (one that differs in case only first:
    a column ``Y`` for ``y``, which difflib does not find close), or ``""`` when none is close."""
    import difflib

    texts = [str(c) for c in choices]
    close = [c for c in texts if c.lower() == str(name).lower()] or difflib.get_close_matches(str(name), texts, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


STYPES = ("default", "csr", "row_sparse")

#: The variable attributes that carry a parameter's learning-rate / weight-decay multipliers (MXNet's
#: names): ``sym.Variable(lr_mult=..., wd_mult=...)`` writes them; an optimizer given the symbol reads them.
LR_MULT_ATTR, WD_MULT_ATTR = "__lr_mult__", "__wd_mult__"


def check_stype(stype: str) -> str:
    if stype not in STYPES:
        raise UnknownStorageTypeError(
            f"unknown storage type {stype!r}; expected one of 'default', 'csr', 'row_sparse'"
        )
    return stype


class NonFiniteError(SparseTrainError, FloatingPointError):
    """The loss or a prediction became NaN/inf; ``epoch`` and ``batch`` say where (0-based)."""

    def __init__(self, message: str, epoch: int | None = None, batch: int | None = None):
        super().__init__(message)
        self.epoch = epoch
        self.batch = batch

    def __reduce__(self):  # keep epoch and batch across pickling (e.g. from a Ray worker)
        return type(self), (str(self), self.epoch, self.batch)
