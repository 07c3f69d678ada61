"""Blocks of batches: the unit a distributed worker trains between two exchanges with the servers.

A block is ``train.sync_every`` consecutive batches of the worker's part, cut from the streamed
epoch's pieces (``LibSVMIter.epoch_pieces``: runs of whole batches over one parsed chunk). It is
kept as a list of :class:`Segment` s — views of the pieces, never copies — each of which is an
in-memory epoch for :meth:`sparsetrain.module.Module.run_epoch`: the compiled engine runs it with
the same fused epoch kernels or generated plan as a single process (``epoch_rows``), the graph
engine iterates its batches. :func:`rows_needed` says which rows of each row-sparse weight a
block touches (the columns of the csr input it is multiplied by), and :class:`LocalRows` moves
pulled rows into the worker's parameter arrays and optimizer states and reads back what the
block changed.
"""
from __future__ import annotations

import queue
import threading

import numpy as np

from ..io.base import DataBatch
from ..ndarray import INDEX_DTYPE, CSRNDArray, NDArray
from ..optimizer_buffers import weight_buffer

#: ``train.sync_every: auto``: blocks of about this many rows (a few tens of milliseconds of compiled
#: training, against a round trip of a few milliseconds) ...
AUTO_BLOCK_ROWS = 65536
#: ... but at least this many blocks per worker and epoch (on small files, so that the workers' changes
#: meet often enough: one block per epoch is model averaging once per epoch)
AUTO_MIN_BLOCKS = 8

__all__ = ["AUTO_BLOCK_ROWS", "batches_per_block", "Segment", "blocks", "ahead", "rows_needed", "LocalRows", "with_changes"]


def batches_per_block(sync_every, batch_size: int, path: str | None = None, num_workers: int = 1) -> int:
    """``train.sync_every`` as a number of batches. ``auto``: about :data:`AUTO_BLOCK_ROWS` rows, and at
    least :data:`AUTO_MIN_BLOCKS` blocks in a worker's part of ``path`` (rows estimated from the file
    size and its first lines), so every worker of a run computes the same number."""
    if sync_every != "auto":
        return int(sync_every)
    bs = max(1, int(batch_size))
    batches = -(-AUTO_BLOCK_ROWS // bs)
    rows = estimate_rows(path) if path else None
    if rows is not None:
        batches = min(batches, rows // (max(1, num_workers) * bs * AUTO_MIN_BLOCKS))
    return max(1, batches)


def estimate_rows(path: str, sample: int = 1 << 16) -> int | None:
    """About how many lines ``path`` has (its size over the mean length of its first lines);
    None for a compressed or unreadable file."""
    import os

    if path.endswith((".gz", ".bz2")):
        return None
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(sample)
    except OSError:
        return None
    lines = head.count(b"\n")
    if size <= len(head):
        return lines + (1 if head and not head.endswith(b"\n") else 0)
    return int(size * max(lines, 1) / max(len(head), 1))


class Segment:
    """Batches ``b0 .. b1`` of a streamed epoch's piece, as an in-memory epoch: ``data``/``label``
    (``[(name, array)]``), ``epoch_rows()`` and, for the graph engine, iteration over its batches."""

    def __init__(self, piece, b0: int, b1: int):
        ptr = piece.batch_ptr
        lo, hi = int(ptr[b0]), int(ptr[b1])
        self.data, self.label = piece.data, piece.label
        self.order = piece.order[lo:hi]
        self.batch_ptr = ptr[b0:b1 + 1] - lo
        self.pad = piece.pad if b1 == len(ptr) - 1 else 0
        self.batches = b1 - b0
        self.samples = (hi - lo) - self.pad
        self.checked_csr = getattr(piece, "checked_csr", False)  # the parser's rows: the engine need not check them again

    def reset(self) -> None:
        pass

    def epoch_rows(self):
        return self.order, self.batch_ptr, self.pad

    def __iter__(self):
        (xname, x), = self.data
        ys = [y.asnumpy() for _, y in self.label]
        indptr, indices, values = x._indptr, x._indices, x._data
        for b in range(self.batches):
            rows = self.order[self.batch_ptr[b]:self.batch_ptr[b + 1]]
            starts, ends = indptr[rows], indptr[rows + 1]
            lens = ends - starts
            ptr = np.zeros(len(rows) + 1, dtype=indptr.dtype)
            np.cumsum(lens, out=ptr[1:])
            take = np.repeat(starts - ptr[:-1], lens) + np.arange(ptr[-1], dtype=starts.dtype)
            xb = CSRNDArray(values[take], indices[take], ptr, (len(rows), x.shape[1]))
            pad = self.pad if b == self.batches - 1 else 0
            yield DataBatch([xb], [NDArray(np.ascontiguousarray(y[rows])) for y in ys], pad=pad)

    def columns(self, name: str) -> np.ndarray:
        """The column ids (unsorted, repeated) of csr input ``name`` over this segment's rows."""
        x = dict(self.data)[name]
        indptr = x._indptr
        first, last = int(self.order[0]), int(self.order[-1])
        if last - first + 1 == len(self.order):  # the usual case: consecutive rows
            return x._indices[indptr[first]:indptr[last + 1]]
        starts, ends = indptr[self.order], indptr[self.order + 1]
        return np.concatenate([x._indices[a:b] for a, b in zip(starts, ends)]) if len(starts) else x._indices[:0]


def blocks(pieces, per_block: int):
    """Lists of :class:`Segment` s of ``per_block`` batches each (the epoch's last block may have
    fewer), in epoch order, from an iterable of epoch pieces."""
    block, have = [], 0
    for piece in pieces:
        b, n = 0, len(piece.batch_ptr) - 1
        while b < n:
            take = min(per_block - have, n - b)
            block.append(Segment(piece, b, b + take))
            b += take
            have += take
            if have == per_block:
                yield block
                block, have = [], 0
    if block:
        yield block


def ahead(items, depth: int = 2):
    """Iterate ``items`` on a daemon thread, ``depth`` items ahead (the next blocks' data parse and
    cut while this block trains); an error arrives where it happened."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    end = object()

    def produce():
        try:
            for item in items:
                q.put((True, item))
            q.put((True, end))
        except BaseException as e:  # handed to the consumer
            q.put((False, e))

    threading.Thread(target=produce, name="sparsetrain-blocks", daemon=True).start()
    while True:
        ok, item = q.get()
        if not ok:
            raise item
        if item is end:
            return
        yield item


def rows_needed(block, keys: dict, sources: dict) -> dict:
    """``{key: sorted unique global rows, or None for the whole value}`` a block touches.

    ``keys``: ``{key: (name, shape, row_sparse)}``; ``sources``: ``{weight name: csr input name}``
    for the row-sparse weights that are reached through ``dot(csr, weight)`` (their gradient lives
    on the batch's columns). Any other row-sparse weight is pulled whole, dense ones always are."""
    out = {}
    for key, (name, shape, sparse) in keys.items():
        source = sources.get(name) if sparse else None
        if source is None:
            out[key] = None
            continue
        mark = np.zeros(shape[0], dtype=bool)  # a mark per row: O(nnz + rows), not a sort of the block's nnz
        for seg in block:
            mark[seg.columns(source)] = True
        out[key] = np.flatnonzero(mark).astype(INDEX_DTYPE, copy=False)
    return out


class LocalRows:
    """The worker's local row table: its parameter arrays and optimizer states hold the pulled rows
    of the current block (other rows are stale and never read by the block's batches)."""

    def __init__(self, arrays: dict, updater, keys: dict):
        self.keys = keys
        self.arrays = {k: arrays[name] for k, (name, _, _) in keys.items()}
        self.weights = {k: weight_buffer(a) for k, a in self.arrays.items()}
        self.updater = updater
        self.rows: dict = {}
        self.start: dict = {}  # key -> (values, state values) as loaded: the block's change is against these

    def _states(self, key) -> tuple:
        return () if self.updater is None else self.updater.state_buffers(key, self.arrays[key])

    def load(self, rows: dict, got: dict, progress: dict | None) -> None:
        """Write the pulled ``got`` (``{key: (values, (state values, ...))}`` of ``rows``) into the
        arrays and states, and the servers' optimizer ``progress`` into the local optimizer."""
        from ..optimizer_states import restore_progress

        if progress is not None:
            restore_progress(self.updater.optimizer, progress, "the parameter servers")
        self.rows, self.start = rows, got
        for key, (values, states) in got.items():
            w, r = self.weights[key], rows[key]
            bufs = self._states(key)
            if r is None:
                w[...] = values.reshape(w.shape)
                for b, s in zip(bufs, states):
                    b[...] = s.reshape(b.shape)
            else:
                w[r] = values
                for b, s in zip(bufs, states):
                    b.reshape(w.shape)[r] = s

    def changes(self, state_values: bool = False) -> dict:
        """``{key: (rows | None, change of the values, (change of each state, ...))}`` since :meth:`load`;
        ``state_values``: the states' values instead of their changes."""
        out = {}
        for key, (values, states) in self.start.items():
            w, r = self.weights[key], self.rows[key]
            bufs = self._states(key)
            if r is None:
                now = [b.reshape(s.shape) for b, s in zip(bufs, states)]
                out[key] = (None, w.reshape(values.shape) - values,
                            tuple(n.copy() if state_values else n - s for n, s in zip(now, states)))
            else:
                now = [b.reshape(w.shape)[r] for b in bufs]
                out[key] = (r, w[r] - values, tuple(n if state_values else n - s for n, s in zip(now, states)))
        return out


def with_changes(rows: dict, got: dict, prev: dict, lacking) -> dict:
    """``got`` (values pulled for ``rows``) with this worker's last ``dist_async`` push ``prev`` (changes of
    the values, values of the states) applied where the servers had not applied it yet when they
    answered: ``lacking(key, prev_rows)`` says, per pushed row (``None``: a dense value), whether its
    server's answer predates that push. So the block starts from what the servers hold after this
    worker's own pushes."""
    out = {}
    for key, (values, states) in got.items():
        if key not in prev:
            out[key] = (values, states)
            continue
        prows, dv, ds = prev[key]
        r = rows[key]
        if r is None or prows is None:  # a dense value (pulled whole every block)
            if lacking(key, None)[0]:
                values = values + dv.reshape(values.shape)
                states = tuple(d.reshape(s.shape) for s, d in zip(states, ds))
            out[key] = (values, states)
            continue
        pos = np.searchsorted(r, prows)
        hit = pos < len(r)
        hit[hit] = r[pos[hit]] == prows[hit]
        hit &= lacking(key, prows)
        at, src = pos[hit], np.flatnonzero(hit)
        if not len(at):
            out[key] = (values, states)
            continue
        v = np.array(values, copy=True)
        v[at] += dv[src]
        new_states = []
        for s, d in zip(states, ds):
            s = np.array(s, copy=True)
            s[at] = d[src]
            new_states.append(s)
        out[key] = (v, tuple(new_states))
    return out
