"""Key-value parameter stores, following MXNet 1.x's ``mx.kvstore``.

``create('local')`` is an in-process store: ``push`` sums the pushed values and, when an optimizer
was set with :meth:`KVStore.set_optimizer`, applies it to the stored weight (MXNet's local
kvstore with ``update_on_kvstore``); otherwise the sum replaces the stored value. ``pull`` copies
the stored value out; ``row_sparse_pull`` gives ``out`` exactly the requested rows.

``create('dist_sync' | 'dist_async', ...)`` returns the Ray-backed store of
:mod:`sparsetrain.dist` (imported only then; Ray is the optional ``sparsetrain[dist]`` extra).
Keys are ints (the parameter index, which the optimizer uses for ``idx2name``) or strings.
"""
from __future__ import annotations

import numpy as np

from .base import SparseTrainError, StorageTypeError
from .ndarray import INDEX_DTYPE, BaseArray, NDArray, RowSparseNDArray
from .ndarray.sparse import sum_rows

__all__ = ["KVStore", "LocalKVStore", "create", "sum_values", "DIST_EXTRA_HINT"]

DIST_EXTRA_HINT = "distributed training needs Ray: install sparsetrain[dist] (pip install 'ray>=2.9')"


def keys_values(key, value):
    """``(keys, values)`` as two equally long lists, from one key and value or two lists."""
    if isinstance(key, (list, tuple)):
        if not isinstance(value, (list, tuple)) or len(value) != len(key):
            raise ValueError("a list of keys needs a list of values of the same length")
        return list(key), list(value)
    return [key], [value]


def to_numpy_full(value) -> np.ndarray:
    """The dense contents of ``value`` (row-sparse arrays are densified)."""
    if isinstance(value, np.ndarray):
        return np.array(value)
    if isinstance(value, RowSparseNDArray):
        return value.asnumpy()  # a copy; one holding every row reads no row ids
    if isinstance(value, BaseArray) and value.stype == "default":
        return np.array(value._data)
    raise StorageTypeError(f"kvstore values must be dense or row_sparse, got {getattr(value, 'stype', type(value))}")


def sum_values(values):
    """Sum of a list of pushed values: row-sparse if all are, else dense."""
    if len(values) == 1:
        return values[0]
    if all(isinstance(v, RowSparseNDArray) for v in values):
        rows, data = sum_rows([(v._indices, v._data) for v in values])
        return RowSparseNDArray(data, rows, values[0].shape)
    return NDArray(sum(to_numpy_full(v) for v in values))


def unique_rows(row_ids) -> np.ndarray:
    """Sorted unique int64 row ids from an array / NDArray / list."""
    if isinstance(row_ids, BaseArray):
        row_ids = row_ids.asnumpy()
    return np.unique(np.asarray(row_ids).astype(INDEX_DTYPE).ravel())


def write_rows(out, rows: np.ndarray, values: np.ndarray) -> None:
    """Make ``out`` (a RowSparseNDArray) hold exactly ``rows`` with ``values``."""
    if not isinstance(out, RowSparseNDArray):
        raise StorageTypeError(f"row_sparse_pull needs a row_sparse out array, got {getattr(out, 'stype', out)!r}")
    out._data = np.ascontiguousarray(values, dtype=out._data.dtype)
    out._indices = np.asarray(rows, dtype=INDEX_DTYPE)


class KVStore:
    """Base class: the MXNet kvstore API (``init``, ``push``, ``pull``, ``row_sparse_pull``...)."""

    type = "base"

    @property
    def rank(self) -> int:
        return 0

    @property
    def num_workers(self) -> int:
        return 1

    def init(self, key, value):
        raise NotImplementedError

    def push(self, key, value, priority=0):
        raise NotImplementedError

    def pull(self, key, out=None, priority=0, ignore_sparse=True):
        raise NotImplementedError

    def row_sparse_pull(self, key, out=None, priority=0, row_ids=None):
        raise NotImplementedError

    def set_optimizer(self, optimizer):
        raise NotImplementedError

    def barrier(self):
        """Wait for every worker (a no-op with one worker)."""

    def close(self):
        """Release what the store holds (actors of a distributed store)."""


class LocalKVStore(KVStore):
    """In-process store (``create('local')``)."""

    def __init__(self, name="local"):
        self.type = name  # the name it was created with, as MXNet reports it
        self._store: dict = {}
        self._stype: dict = {}
        self._updater = None
        self._raw_keys = False  # True: the updater gets keys as given (_set_updater)
        self._index: dict = {}

    def _check(self, k):
        if k not in self._store:
            raise SparseTrainError(f"kvstore key {k!r} was not initialized; call init({k!r}, value) first")

    def _update_index(self, k) -> int:
        if isinstance(k, (int, np.integer)):
            return int(k)
        return self._index.setdefault(k, len(self._index) + 1_000_000)

    def init(self, key, value):
        for k, v in zip(*keys_values(key, value)):
            if k in self._store:
                raise SparseTrainError(f"kvstore key {k!r} is already initialized")
            stype = getattr(v, "stype", "default")
            self._stype[k] = stype
            full = to_numpy_full(v)
            if stype == "row_sparse":
                self._store[k] = RowSparseNDArray(full, np.arange(full.shape[0], dtype=INDEX_DTYPE), full.shape)
            else:
                self._store[k] = NDArray(full)

    def push(self, key, value, priority=0):
        for k, v in zip(*keys_values(key, value)):
            self._check(k)
            merged = sum_values(list(v) if isinstance(v, (list, tuple)) else [v])
            if self._updater is not None:
                self._updater(k if self._raw_keys else self._update_index(k), merged, self._store[k])
            else:
                stored = self._store[k]
                if isinstance(merged, RowSparseNDArray):
                    stored._data[merged._indices] = merged._data
                else:
                    stored._data[...] = to_numpy_full(merged)

    def pull(self, key, out=None, priority=0, ignore_sparse=True):
        if out is None:
            raise ValueError("pull needs out")
        for k, o in zip(*keys_values(key, out)):
            self._check(k)
            for target in (o if isinstance(o, (list, tuple)) else [o]):
                src = self._store[k]._data
                if isinstance(target, RowSparseNDArray):
                    if ignore_sparse:  # as MXNet: row_sparse outs are filled by row_sparse_pull
                        continue
                    write_rows(target, np.arange(src.shape[0], dtype=INDEX_DTYPE), src.copy())
                else:
                    target._data[...] = src

    def row_sparse_pull(self, key, out=None, priority=0, row_ids=None):
        """Give each row_sparse ``out`` exactly the stored rows ``row_ids`` (any order, repeats
        allowed). As MXNet: one ``row_ids`` per key for a list of keys, and one per output
        array (or one shared by all) when a key has a list of outputs."""
        if out is None or row_ids is None:
            raise ValueError("row_sparse_pull needs out and row_ids")
        keys, outs = keys_values(key, out)
        per_key = isinstance(key, (list, tuple)) and isinstance(row_ids, (list, tuple))
        for k, o, r in zip(keys, outs, row_ids if per_key else [row_ids] * len(keys)):
            self._check(k)
            targets = list(o) if isinstance(o, (list, tuple)) else [o]
            ids = list(r) if isinstance(r, (list, tuple)) else [r] * len(targets)
            if len(ids) != len(targets):
                raise ValueError(f"row_sparse_pull {k!r}: {len(ids)} row_ids for {len(targets)} outputs")
            src = self._store[k]._data
            for target, rid in zip(targets, ids):
                rows = unique_rows(rid)
                if len(rows) and (rows[0] < 0 or rows[-1] >= src.shape[0]):
                    raise IndexError(f"row_sparse_pull {k!r}: row ids must be in [0, {src.shape[0]})")
                write_rows(target, rows, src[rows])

    def _set_updater(self, updater):
        """MXNet's hook: ``updater(key, merged_push, stored)`` replaces the optimizer on push;
        ``key`` is passed as the caller gave it (int or str)."""
        self._updater = updater
        self._raw_keys = True

    def set_optimizer(self, optimizer):
        from .optimizer import get_updater

        self._updater = get_updater(optimizer)
        self._raw_keys = False

    # states, as Module.save_optimizer_states
    def save_optimizer_states(self, fname, dump_optimizer=False):
        if self._updater is None:
            raise SparseTrainError("no optimizer set on the kvstore")
        self._updater.save_states(fname, dump_optimizer)

    def load_optimizer_states(self, fname):
        if self._updater is None:
            raise SparseTrainError("no optimizer set on the kvstore")
        with open(fname, "rb") as f:
            self._updater.set_states(f.read(), source=fname)


def create(name="local", **kwargs) -> KVStore:
    """A kvstore: ``'local'`` (also ``'device'``), ``'dist_sync'`` or ``'dist_async'``.

    The distributed types take :func:`sparsetrain.dist.kvstore.create_dist` keyword arguments
    (``num_servers``, ``address``; or ``servers``/``rank``/``num_workers`` inside a worker).
    """
    if isinstance(name, KVStore):
        return name
    if not isinstance(name, str):
        raise TypeError(f"kvstore name must be a string, got {name!r}")
    if name in ("local", "device", "local_allreduce_cpu", "local_update_cpu"):
        if kwargs:
            raise TypeError(f"create('local') takes no options, got {sorted(kwargs)}")
        return LocalKVStore(name)
    if name in ("dist_sync", "dist_async", "dist_device_sync", "dist"):
        try:
            import ray  # noqa: F401
        except ImportError:
            raise SparseTrainError(DIST_EXTRA_HINT) from None
        from .dist.kvstore import create_dist

        mode = "dist_async" if name == "dist_async" else "dist_sync"
        return create_dist(mode, **kwargs)
    raise ValueError(f"unknown kvstore type {name!r}; use 'local', 'dist_sync' or 'dist_async'")
