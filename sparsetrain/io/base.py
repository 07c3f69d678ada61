"""Batches, data descriptors and the iterator protocol shared by every data iterator."""
from __future__ import annotations

import os
from collections import namedtuple

import numpy as np

# The text readers' limits (chunks.py reads by them; the config schema's defaults are these, and it
# imports them from here, a module without numba).
#: Bytes read (and parsed) at a time.
DEFAULT_CHUNK_SIZE = 16 << 20
#: The longest line accepted, in bytes (a bound on the memory one line can take).
DEFAULT_MAX_LINE_BYTES = 256 << 20

#: What a reader opens for the data path ``-`` (stdin), and the name every message gives it.
STDIN_PATH = "/dev/stdin"
STDIN_NAME = "<stdin>"
#: The error of a second pass over stdin.
STDIN_READ_ONCE = f"{STDIN_NAME}: a stream can be read once (train for one epoch, or save it to a file)"
#: What training or eval data whose every row has importance weight 0 is, after its name (every weighted
#: metric would be 0/0): said of data read into memory and of a streamed pass alike.
ALL_WEIGHTS_ZERO = "every row has importance weight 0 (nothing to learn from or to measure)"


def plain_name(path) -> str:
    """A data file's name as its format and delimiter are read from it: lower-cased, without ``.gz``/``.bz2``."""
    name = os.fspath(path).lower()
    for ext in (".gz", ".bz2"):
        name = name.removesuffix(ext)
    return name


def named_format(path: str) -> str | None:
    """The format a data file's extension names: ``csv`` (``.csv``/``.tsv``), ``vw`` (``.vw``), ``libsvm``
    (``.libsvm``/``.svm``), else None; ``.gz``/``.bz2`` looked through."""
    name = plain_name(path)
    return next((fmt for fmt, exts in (("csv", (".csv", ".tsv")), ("vw", (".vw",)), ("libsvm", (".libsvm", ".svm")))
                 if name.endswith(exts)), None)


def display_name(path) -> str:
    """A data file as messages name it: stdin (``-``, opened as :data:`STDIN_PATH`) is :data:`STDIN_NAME`."""
    path = os.fspath(path)
    return STDIN_NAME if path in ("-", STDIN_PATH) else path


def token_text(buf, start: int, end: int, limit: int = 60) -> str:
    """Bytes ``start:end`` of a data file's buffer as text: UTF-8, a byte that is not UTF-8 as ``\\xNN``
    (text label values are read this way too; messages show it :func:`~sparsetrain.base.quoted`), cut to
    ``limit`` characters (``...`` at the end)."""
    text = bytes(buf[start:end]).decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DataDesc(namedtuple("DataDesc", ["name", "shape"])):
    """Name and shape of one input, as MXNet's ``DataDesc`` (dtype and layout are extra fields)."""

    def __new__(cls, name, shape, dtype=np.float32, layout="NCHW"):
        ret = super().__new__(cls, name, tuple(shape))
        ret.dtype = np.dtype(dtype)
        ret.layout = layout
        return ret

    def __repr__(self) -> str:
        return f"DataDesc[{self.name},{self.shape},{self.dtype},{self.layout}]"


class DataBatch:
    """One mini-batch: lists of arrays for ``data`` and ``label``, and how many rows are padding.

    ``sample_weight``: ``None`` (every row counts once) or a float64 numpy array with one
    importance weight per row: a row's loss gradient and its share of the loss metrics are
    multiplied by it (weight 2 counts as the row twice; see ``Module.backward``).
    """

    __slots__ = ("data", "label", "pad", "index", "provide_data", "provide_label", "sample_weight")

    def __init__(self, data, label=None, pad=0, index=None, provide_data=None, provide_label=None,
                 sample_weight=None):
        self.data = list(data)
        self.label = list(label) if label is not None else None
        self.pad = pad
        self.index = index
        self.provide_data = provide_data
        self.provide_label = provide_label
        self.sample_weight = sample_weight

    def __repr__(self) -> str:
        shapes = [d.shape for d in self.data]
        lshapes = [lb.shape for lb in self.label] if self.label else None
        return f"DataBatch: data shapes: {shapes} label shapes: {lshapes} pad: {self.pad}"


class DataIter:
    """Iterator protocol: ``reset()``, ``next()`` raising ``StopIteration``, ``provide_data/label``.

    MXNet's pull-style protocol too: ``iter_next()`` advances, then ``getdata()``, ``getlabel()``,
    ``getpad()`` read the current batch (the one ``next()`` returned last). Subclasses set
    ``self._current_batch`` to each batch they return (``None`` after ``reset()``).
    """

    def __init__(self, batch_size: int = 0):
        self.batch_size = batch_size
        self._current_batch = None

    def __iter__(self):
        return self

    def __next__(self) -> DataBatch:
        return self.next()

    def reset(self) -> None:
        raise NotImplementedError

    def next(self) -> DataBatch:
        raise NotImplementedError

    @property
    def provide_data(self) -> list[DataDesc]:
        raise NotImplementedError

    @property
    def provide_label(self) -> list[DataDesc]:
        raise NotImplementedError

    def iter_next(self) -> bool:
        """Advance to the next batch; False at the end of the epoch."""
        try:
            self.next()
        except StopIteration:
            return False
        return True

    def _require_current(self) -> DataBatch:
        if self._current_batch is None:
            raise RuntimeError(f"{type(self).__name__}: no current batch; call next() or iter_next() first")
        return self._current_batch

    def getdata(self) -> list:
        return self._require_current().data

    def getlabel(self) -> list:
        return self._require_current().label

    def getpad(self) -> int:
        """Padding rows in the current batch (non-zero only for a padded last batch)."""
        return self._require_current().pad

    def getindex(self):
        return None
