"""``data.cache: disk``: a text data file parsed once into binary CSR files, memory-mapped after.

The cache of a file lives in ``$SPARSETRAIN_CACHE_DIR`` (default ``~/.cache/sparsetrain``), in a
directory named by a hash of its key: the file's absolute path, size and modification time (ns)
and the parse options (format, ``zero_based``, ``num_features``, dtype, hashing options...). It
holds ``data.bin``, ``indices.bin``, ``indptr.bin``, ``labels.bin``, ``weights.bin`` (each row's
importance weight: 1 for a format without them; raw little-endian arrays) and
``manifest.json`` (the key, each array's dtype, length and CRC-32). It is built by streaming the
file's parsed chunks to disk (memory stays bounded by a few chunks), in a temporary directory
renamed into place once complete, so a crash or a full disk never leaves a cache that looks
valid. A cache whose manifest does not match the key, whose files have the wrong size, or whose
checksums fail is rebuilt, never read.

stdin (``data.train: "-"``) has no path, size or time to key a cache by, and the next run's stdin may
hold other bytes: its cache (:class:`StdinCache`) is private to the run. It is written the same way
(a temporary directory renamed into place once complete) to ``stdin-<pid>-<random>`` under the cache
directory, never looked up by a key, and removed when the run ends (when its arrays are released or
the process exits); a run killed before that leaves a directory that the next stdin cache removes
once no process of that pid lives. An interrupted read (a malformed line, Ctrl-C, a first epoch
that trains on the blocks as they are written and stops) removes the temporary directory, so no half
cache remains.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import tempfile
import warnings
import weakref
import zlib

import numpy as np

__all__ = ["CACHE_ENV", "StdinCache", "cache_dir", "cache_path", "load_cached", "stdin_cached"]

CACHE_ENV = "SPARSETRAIN_CACHE_DIR"
_VERSION = 2  # 2: weights.bin
_ARRAYS = ("data", "indices", "indptr", "labels", "weights")


def cache_dir() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "sparsetrain")


def _key(path, options: dict) -> dict:
    st = os.stat(path)
    return {"version": _VERSION, "path": os.path.abspath(os.fspath(path)), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "options": options}


def cache_path(path, options: dict) -> str:
    """The cache directory of ``path`` parsed with ``options`` (a JSON-able dict)."""
    text = json.dumps(_key(path, options), sort_keys=True)
    return os.path.join(cache_dir(), "csr-" + hashlib.sha256(text.encode()).hexdigest()[:32])


def _crc(path: str) -> int:
    crc = 0
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            crc = zlib.crc32(block, crc)
    return crc


def _read(where: str, key: dict):
    """The cached arrays (memory-mapped, a tuple in the order of ``_ARRAYS``), or None when the cache is
    missing, stale or damaged."""
    try:
        with open(os.path.join(where, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        if manifest.get("key") != key:
            return None
        out = {}
        for name in _ARRAYS:
            info = manifest["arrays"][name]
            file = os.path.join(where, f"{name}.bin")
            dtype = np.dtype(info["dtype"])
            if os.path.getsize(file) != info["length"] * dtype.itemsize or _crc(file) != info["crc32"]:
                return None
            # copy-on-write: writable arrays (the kernels take the same array types as in memory); nothing writes
            out[name] = (np.memmap(file, dtype=dtype, mode="c", shape=(info["length"],)) if info["length"]
                         else np.zeros(0, dtype))
        return tuple(out[name] for name in _ARRAYS)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_back(where: str, key: dict) -> tuple:
    """The arrays of the cache just written at ``where``."""
    found = _read(where, key)
    if found is None:
        raise OSError(f"{where}: the cache just written does not read back")
    return found


def _shift_indices(file: str, shift: int) -> int:
    """Subtract ``shift`` from the int64 ids of ``file`` in place, a slice at a time; their new CRC-32."""
    ids = np.memmap(file, dtype=np.int64, mode="r+")
    crc = 0
    for start in range(0, len(ids), 1 << 20):
        part = ids[start:start + (1 << 20)]
        part -= shift
        crc = zlib.crc32(part.tobytes(), crc)
    ids.flush()
    del ids
    return crc


class _Writer:
    """A cache written block by block into a temporary directory beside ``where``: :meth:`finish`
    renames it into place once complete, :meth:`abort` removes it (nothing half written is ever found
    at ``where``)."""

    def __init__(self, where: str, key: dict, dtype, num_features):
        self.where, self.key, self.dtype, self.num_features = where, key, np.dtype(dtype), num_features
        parent = os.path.dirname(where)
        os.makedirs(parent, exist_ok=True)
        self.tmp = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
        self.crcs = dict.fromkeys(_ARRAYS, 0)
        self.lengths = dict.fromkeys(_ARRAYS, 0)
        self.nnz = 0
        # an ExitStack closes every file even when closing one fails (a full disk fails at the flush)
        self._files = contextlib.ExitStack()
        try:
            self.files = {name: self._files.enter_context(open(os.path.join(self.tmp, f"{name}.bin"), "wb"))
                          for name in _ARRAYS}
            self._put("indptr", np.zeros(1, np.int64))
        except BaseException:
            self.abort()
            raise

    def _put(self, name, arr) -> None:
        raw = np.ascontiguousarray(arr).tobytes()
        self.files[name].write(raw)
        self.crcs[name] = zlib.crc32(raw, self.crcs[name])
        self.lengths[name] += len(arr)

    def add(self, block) -> None:
        self._put("data", np.asarray(block.data, self.dtype))
        self._put("indices", np.asarray(block.indices, np.int64))
        self._put("indptr", np.asarray(block.indptr[1:], np.int64) + self.nnz)
        self._put("labels", np.asarray(block.labels, np.float64).reshape(block.num_rows, -1)[:, 0])
        w = getattr(block, "weights", None)
        self._put("weights", np.ones(block.num_rows) if w is None else np.asarray(w, np.float64))
        self.nnz += block.nnz

    def finish(self, index_shift=None) -> None:
        """Close the files, write the manifest and rename the directory into place; ``index_shift``: see
        :func:`_write`."""
        self._files.close()
        shift = index_shift() if index_shift is not None else 0
        if shift and self.lengths["indices"]:
            self.crcs["indices"] = _shift_indices(os.path.join(self.tmp, "indices.bin"), shift)
        arrays = {name: {"dtype": np.dtype(self.dtype if name == "data" else np.float64
                                           if name in ("labels", "weights") else np.int64).str,
                         "length": self.lengths[name], "crc32": self.crcs[name]} for name in _ARRAYS}
        with open(os.path.join(self.tmp, "manifest.json"), "w", encoding="utf-8") as f:
            json.dump({"key": self.key, "arrays": arrays, "num_features": self.num_features}, f)
        if os.path.exists(self.where):
            shutil.rmtree(self.where, ignore_errors=True)
        os.replace(self.tmp, self.where)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._files.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def _write(where: str, key: dict, blocks, dtype, num_features, index_shift=None) -> None:
    """Stream ``blocks`` to a temporary directory beside ``where``, then rename it into place;
    ``index_shift()`` (called once the blocks are all read; it may raise to refuse them): an amount to
    subtract from every column id first (a one-based stream read before its base was known)."""
    writer = _Writer(where, key, dtype, num_features)
    try:
        for block in blocks:
            writer.add(block)
        writer.finish(index_shift)
    except BaseException:
        writer.abort()
        raise


def load_cached(path, options: dict, read_blocks, dtype, num_features):
    """``(data, indices, indptr, labels, weights)`` of ``path``: memory-mapped from its cache, built
    first when missing, stale or damaged (``weights``: the rows' importance weights, float64, 1 where
    a block had none). ``read_blocks()`` iterates the file's parsed chunks (blocks with ``data``,
    ``indices``, ``indptr``, ``labels``, and ``weights`` or None). When the cache
    cannot be written (full disk, no permission) a one-line warning says so and the blocks are kept
    in memory instead."""
    key = _key(path, options)
    where = cache_path(path, options)
    found = _read(where, key)
    if found is not None:
        return found
    try:
        _write(where, key, read_blocks(), dtype, num_features)
    except OSError as e:
        warnings.warn(f"data.cache: disk: cannot write the cache of {os.fspath(path)} under {cache_dir()} "
                      f"({e.strerror or e}); keeping the data in memory this run", stacklevel=2)
        from .text_pipeline import concat_blocks

        data, indices, indptr, labels, weights = concat_blocks(read_blocks(), num_features, np.dtype(dtype))
        weights = np.ones(len(labels)) if weights is None else weights
        return data, indices, indptr, labels, weights
    return _read_back(where, key)


_STDIN_PREFIX = "stdin-"


def _remove_orphans(parent: str) -> None:
    """Remove the stdin caches of runs that ended without removing theirs (killed: no process of that pid)."""
    try:
        names = os.listdir(parent)
    except OSError:
        return
    for name in names:
        pid = name[len(_STDIN_PREFIX):].split("-", 1)[0]
        if not name.startswith(_STDIN_PREFIX) or not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
        except OSError:  # alive under another user
            pass


class StdinCache:
    """stdin's cache, private to the run (see the module doc), written as its parsed blocks pass:
    :meth:`tee` yields the blocks of ``blocks`` as it writes them (a first epoch can train on them
    meanwhile); once the last has passed, the cache is renamed into place (``done``) and :meth:`arrays`
    memory-maps it. A pass that stops early (an error, Ctrl-C, a consumer that drops the blocks) removes
    what was written. A cache that cannot be written is an error naming the directory (stdin cannot be
    read again to keep it in memory instead). ``index_shift``: see :func:`_write`."""

    def __init__(self, dtype, num_features, index_shift=None):
        self.dtype, self.num_features, self.index_shift = dtype, num_features, index_shift
        self.parent = cache_dir()
        _remove_orphans(self.parent)
        self.where = os.path.join(self.parent, f"{_STDIN_PREFIX}{os.getpid()}-{secrets.token_hex(6)}")
        self.key = {"version": _VERSION, "stdin": self.where}
        self.done = False
        weakref.finalize(self, shutil.rmtree, self.where, True)  # also at exit; a mapped file outlives its name

    def _failed(self, e: OSError):
        from ..base import SparseTrainError

        return SparseTrainError(f"data.cache: disk: cannot write the cache of stdin under {self.parent} "
                                f"({e.strerror or e}); set {CACHE_ENV} to another directory, or data.cache: "
                                "stream (one epoch)")

    def tee(self, blocks):
        try:
            writer = _Writer(self.where, self.key, self.dtype, self.num_features)
        except OSError as e:  # stdin is gone: no second read to keep it in memory
            raise self._failed(e) from None
        try:
            for block in blocks:
                writer.add(block)
                yield block
            writer.finish(self.index_shift)
        except OSError as e:
            writer.abort()
            raise self._failed(e) from None
        except BaseException:
            writer.abort()
            raise
        self.done = True

    def arrays(self) -> tuple:
        """The arrays of the complete cache, memory-mapped (as :func:`load_cached` returns a file's)."""
        try:
            out = _read_back(self.where, self.key)
        except OSError:
            shutil.rmtree(self.where, ignore_errors=True)
            raise
        weakref.finalize(out[0], shutil.rmtree, self.where, True)
        return out


def stdin_cached(read_blocks, dtype, num_features, index_shift=None):
    """stdin's parsed rows as :func:`load_cached` returns a file's, through a :class:`StdinCache`:
    ``read_blocks()`` is iterated once, its blocks written to disk, then the arrays are memory-mapped;
    the cache is removed when they are released or the process exits."""
    cache = StdinCache(dtype, num_features, index_shift)
    for _ in cache.tee(read_blocks()):
        pass
    return cache.arrays()
