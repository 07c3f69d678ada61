"""Blocks of batches: the unit a distributed worker trains between two exchanges with the servers.

A block is ``train.sync_every`` consecutive batches of the worker's part, cut from the streamed
epoch's pieces (``LibSVMIter.epoch_pieces``: runs of whole batches over one parsed chunk). It is
kept as a list of :class:`Segment` s — views of the pieces, never copies — each of which is an
in-memory epoch for :meth:`sparsetrain.module.Module.run_epoch`: the compiled engine runs it with
the same fused epoch kernels or generated plan as a single process (``epoch_rows``), the graph
engine iterates its batches. :func:`needs` says which rows of each row-sparse weight a
block touches (the columns of the csr input it is multiplied by), and :class:`LocalRows` moves
pulled rows into the worker's parameter arrays and optimizer states and reads back what the
block changed.
"""
from __future__ import annotations

import queue
import threading

import numpy as np
from numba import njit

from ..io.base import DataBatch
from ..io.chunks import estimate_rows
from ..ndarray import INDEX_DTYPE, CSRNDArray, NDArray
from ..optimizer_buffers import weight_buffer

#: ``train.sync_every: auto``: blocks of about this many rows (a few tens of milliseconds of compiled
#: training, against a round trip of a few milliseconds) ...
AUTO_BLOCK_ROWS = 65536
#: ... but a worker's part of at most :data:`AUTO_SMALL_PART` rows gets at least this many blocks per epoch (so
#: that on small files the workers' changes meet often enough: one block per epoch is model averaging once per
#: epoch) ...
AUTO_MIN_BLOCKS = 8
#: ... and a larger part blocks of ``part / AUTO_MIN_BLOCKS * part / AUTO_SMALL_PART`` rows (up to
#: :data:`AUTO_BLOCK_ROWS`): a large part needs fewer meetings per epoch (each block is many steps) and every
#: exchange costs calls and rows a smaller block does not halve (on the 500k-row benchmark, 2 workers: 4 blocks
#: of 244 batches each instead of 8 of 122)
AUTO_SMALL_PART = 65536

#: A row's saturation is measured where the block's batches touched it at least this many times in each half
#: (fewer touches: a few small steps, which add up; their half-block changes are mostly noise)
MIN_TOUCHES = 256
#: A measured saturation below this is pushed (above it the row's change is taken as additive)
SATURATED_BELOW = 0.99

__all__ = ["AUTO_BLOCK_ROWS", "MIN_TOUCHES", "batches_per_block", "auto_batches", "Segment", "blocks", "halves", "ahead", "Needs",
           "needs", "RowCounter", "in_order", "saturation", "LocalRows", "moved", "find_sorted", "select",
           "with_changes", "join", "take_rows", "write_rows"]


def batches_per_block(sync_every, batch_size: int, path: str | None = None, num_workers: int = 1) -> int:
    """``train.sync_every`` as a number of batches; ``auto``: :func:`auto_batches` for a worker's part of
    ``path`` (rows estimated from the file size and its first lines, so every worker of a run computes the
    same number)."""
    if sync_every != "auto":
        return int(sync_every)
    rows = estimate_rows(path) if path else None
    return auto_batches(None if rows is None else rows / max(1, num_workers), batch_size)


def auto_batches(part_rows: float | None, batch_size: int) -> int:
    """``train.sync_every: auto`` for a worker's part of ``part_rows`` rows (None: unknown): blocks of about
    :data:`AUTO_BLOCK_ROWS` rows; a part of up to :data:`AUTO_SMALL_PART` rows cut into at least
    :data:`AUTO_MIN_BLOCKS` blocks, a larger one into fewer (blocks of ``part / 8 * part / AUTO_SMALL_PART``
    rows), the part's batches shared evenly among the blocks (no short block at the end)."""
    bs = max(1, int(batch_size))
    batches = -(-AUTO_BLOCK_ROWS // bs)
    if part_rows is None:
        return batches
    if part_rows <= AUTO_SMALL_PART:
        return max(1, min(batches, int(part_rows) // (bs * AUTO_MIN_BLOCKS)))
    rows = part_rows / AUTO_MIN_BLOCKS * part_rows / AUTO_SMALL_PART
    batches = max(1, min(batches, int(rows) // bs))
    part_batches = -(-int(part_rows) // bs)
    return -(-part_batches // -(-part_batches // batches))


class Segment:
    """Batches ``b0 .. b1`` of a streamed epoch's piece, as an in-memory epoch: ``data``/``label``
    (``[(name, array)]``), ``epoch_rows()`` and, for the graph engine, iteration over its batches."""

    def __init__(self, piece, b0: int, b1: int):
        ptr = piece.batch_ptr
        lo, hi = int(ptr[b0]), int(ptr[b1])
        self._set(piece.data, piece.label, piece.order[lo:hi], ptr[b0:b1 + 1] - lo,
                  piece.pad if b1 == len(ptr) - 1 else 0,
                  getattr(piece, "checked_csr", False))  # the parser's rows: the engine need not check them again

    def _set(self, data, label, order, batch_ptr, pad: int, checked_csr: bool) -> None:
        self.data, self.label, self.order, self.batch_ptr, self.pad = data, label, order, batch_ptr, pad
        self.batches = len(batch_ptr) - 1
        self.samples = int(batch_ptr[-1] - batch_ptr[0]) - pad
        self.checked_csr = checked_csr

    def part(self, b0: int, b1: int) -> "Segment":
        """Batches ``b0 .. b1`` of this segment (a view, like the segment itself)."""
        out = object.__new__(Segment)
        lo, hi = int(self.batch_ptr[b0]), int(self.batch_ptr[b1])
        out._set(self.data, self.label, self.order[lo:hi], self.batch_ptr[b0:b1 + 1] - lo,
                 self.pad if b1 == self.batches else 0, self.checked_csr)
        return out

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


def join(block) -> list:
    """``block`` (a list of :class:`Segment` s) as one segment of its rows copied in batch order: the engine then
    trains a half-block in one call (a streamed epoch's pieces cut a block into about ten segments, each a call
    with its own set-up and parameter check)."""
    if len(block) < 2:
        return list(block)
    (name, _), = block[0].data
    xs, ys, ptrs, seen = [], [[] for _ in block[0].label], [], 0
    for seg in block:
        x = dict(seg.data)[name]
        indptr, order = x._indptr, seg.order
        first, last = int(order[0]), int(order[-1])
        if last - first + 1 == len(order):  # the usual case: consecutive rows
            lo, hi = int(indptr[first]), int(indptr[last + 1])
            xs.append((x._data[lo:hi], x._indices[lo:hi], indptr[first:last + 2] - lo))
        else:
            starts, lens = indptr[order], indptr[order + 1] - indptr[order]
            ptr = np.zeros(len(order) + 1, dtype=indptr.dtype)
            np.cumsum(lens, out=ptr[1:])
            take = np.repeat(starts - ptr[:-1], lens) + np.arange(ptr[-1], dtype=starts.dtype)
            xs.append((x._data[take], x._indices[take], ptr))
        for acc, (_, y) in zip(ys, seg.label):
            acc.append(y.asnumpy()[order])
        ptrs.append(seg.batch_ptr[1:] - seg.batch_ptr[0] + seen)
        seen += len(order)
    nnz = np.cumsum([0] + [len(v) for v, _, _ in xs])
    indptr = np.concatenate([xs[0][2][:1]] + [p[1:] + off for (_, _, p), off in zip(xs, nnz)])
    width = dict(block[0].data)[name].shape[1]
    data = [(name, CSRNDArray(np.concatenate([v for v, _, _ in xs]), np.concatenate([i for _, i, _ in xs]), indptr,
                              (seen, width)))]
    label = [(lname, NDArray(np.concatenate(acc))) for (lname, _), acc in zip(block[0].label, ys)]
    out = object.__new__(Segment)
    out._set(data, label, np.arange(seen, dtype=INDEX_DTYPE), np.concatenate([np.zeros(1, np.int64)] + ptrs),
             block[-1].pad, all(seg.checked_csr for seg in block))
    return [out]


def halves(block) -> tuple[list, list]:
    """A block's segments cut at its middle batch (``batches // 2``): the first half and the second."""
    mid = sum(seg.batches for seg in block) // 2
    first, second, seen = [], [], 0
    for seg in block:
        if seen + seg.batches <= mid:
            first.append(seg)
        elif seen >= mid:
            second.append(seg)
        else:
            first.append(seg.part(0, mid - seen))
            second.append(seg.part(mid - seen, seg.batches))
        seen += seg.batches
    return first, second


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


class Needs:
    """What a block needs and measures, per key: ``rows`` (sorted unique global rows, or None for the whole
    value) and ``measured`` (positions in ``rows`` of the rows whose saturation the block measures: touched at
    least :data:`MIN_TOUCHES` times in each half; None: every element, a value pulled whole)."""

    __slots__ = ("rows", "measured", "after")

    def __init__(self, rows: dict, measured: dict):
        self.rows, self.measured = rows, measured
        self.after: dict = {}  # key -> find_sorted(rows, the previous block's rows): see in_order


def in_order(items):
    """``(block, Needs)`` items with each :attr:`Needs.after` set: where the previous block's rows are in this
    block's (:func:`find_sorted`, what :func:`with_changes` needs), found here — ahead of training, or once for a
    part kept in memory — rather than between two blocks."""
    prev = None
    for block, need in items:
        if prev is not None:
            need.after = {k: find_sorted(r, prev.rows[k]) for k, r in need.rows.items()
                          if r is not None and prev.rows.get(k) is not None}
        prev = need
        yield block, need


@njit(cache=True, nogil=True)
def _count_half(cols, half, counts, seen):
    """Count ``cols`` into ``counts[:, half]`` and mark them in ``seen``: how many were not marked before."""
    new = 0
    for p in range(cols.shape[0]):
        c = cols[p]
        counts[c, half] += 1
        if seen[c] == 0:
            seen[c] = 1
            new += 1
    return new


@njit(cache=True, nogil=True)
def _count_rows(first, second, counts, seen, min_touches):
    """The sorted distinct values of ``first`` and ``second`` (a block's halves' column ids) and the positions
    among them of those at least ``min_touches`` times in each half: ``(rows, measured)``. ``counts`` (int32,
    ``(n, 2)``) and ``seen`` (uint8, ``n``): all 0, left all 0 — the caller keeps them for the next block, so a
    block costs its entries and a byte-scan of ``seen``, not fresh ``n``-long arrays."""
    distinct = _count_half(first, 0, counts, seen) + _count_half(second, 1, counts, seen)
    rows = np.empty(distinct, dtype=np.int64)
    keep = np.empty(distinct, dtype=np.int64)
    k = 0
    m = 0
    for c in range(seen.shape[0]):
        if seen[c]:
            rows[k] = c
            if min(counts[c, 0], counts[c, 1]) >= min_touches:
                keep[m] = k
                m += 1
            seen[c] = 0
            counts[c, 0] = 0
            counts[c, 1] = 0
            k += 1
            if k == distinct:
                break
    return rows, keep[:m].copy()


class RowCounter:
    """Scratch for :func:`needs`, one per thread that computes blocks' needs (the ``n``-long count arrays of a
    row-sparse weight, reused from block to block)."""

    def __init__(self):
        self._scratch: dict = {}

    def count(self, first: np.ndarray, second: np.ndarray, num_rows: int) -> tuple[np.ndarray, np.ndarray]:
        scratch = self._scratch.get(num_rows)
        if scratch is None:
            scratch = self._scratch[num_rows] = (np.zeros((num_rows, 2), np.int32), np.zeros(num_rows, np.uint8))
        return _count_rows(first, second, scratch[0], scratch[1], MIN_TOUCHES)


def needs(block, keys: dict, sources: dict, counter: RowCounter | None = None) -> Needs:
    """The rows of each row-sparse weight a block touches and those it measures (:class:`Needs`).

    ``keys``: ``{key: (name, shape, row_sparse)}``; ``sources``: ``{weight name: csr input name}``
    for the row-sparse weights that are reached through ``dot(csr, weight)`` (their gradient lives
    on the batch's columns). Any other row-sparse weight is pulled whole, dense ones always are.
    ``counter``: the scratch of the thread's earlier calls (a new one otherwise)."""
    counter = counter or RowCounter()
    first, second = halves(block)
    rows, measured = {}, {}
    for key, (name, shape, sparse) in keys.items():
        source = sources.get(name) if sparse else None
        if source is None:
            rows[key] = measured[key] = None
            continue
        cols = [_concat([seg.columns(source) for seg in half]) for half in (first, second)]
        if cols[0].dtype != cols[1].dtype:  # an empty half
            cols = [c.astype(INDEX_DTYPE, copy=False) for c in cols]
        r, measured[key] = counter.count(cols[0], cols[1], shape[0])
        rows[key] = r.astype(INDEX_DTYPE, copy=False)
    return Needs(rows, measured)


def _concat(arrays: list) -> np.ndarray:
    if len(arrays) == 1:
        return arrays[0]
    return np.concatenate(arrays) if arrays else np.zeros(0, dtype=INDEX_DTYPE)


def saturation(start: np.ndarray, mid: np.ndarray, end: np.ndarray) -> np.ndarray:
    """How much of a perturbation of a row's starting value is left at the end of the block, estimated from
    its trajectory: ``((end - mid) / (mid - start))**2`` per element, in [0, 1] (1: the two halves moved it
    alike — its steps add up; 0: the second half did not move it — it reached where the block's data puts it).

    For a row that each touch contracts by the same factor toward its optimum, the second half's change is
    the first half's times the contraction of a half, exactly; a row whose first half did not move it counts
    as additive."""
    d1, d2 = mid - start, end - mid
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(d1 != 0, d2 / d1, 1.0)
    return np.square(np.clip(ratio, 0.0, 1.0)).astype(start.dtype, copy=False)


@njit(cache=True, nogil=True)
def _rows_write(dst, rows, values, add):
    """``dst[rows[i]] = values[i]`` (``add``: ``+=``) for every ``i``: the scatter of a block's rows, one pass (numpy's
    fancy assignment walks a ``(n, 1)`` weight element by element through its general index machinery)."""
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(dst.shape[1]):
            if add:
                dst[r, j] += values[i, j]
            else:
                dst[r, j] = values[i, j]


def write_rows(dst: np.ndarray, rows: np.ndarray, values: np.ndarray, add: bool = False) -> None:
    """Rows ``rows`` (unique) of ``dst`` set to ``values`` (``add``: increased by them), in place; any shape
    ``(n, ...)``, ``values`` in ``dst``'s dtype."""
    flat = dst.reshape(dst.shape[0], -1)
    _rows_write(flat, rows, values.reshape(len(rows), flat.shape[1]), add)


def take_rows(src: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``src[rows]`` (a new array): numpy's ``take``, twice as fast as fancy indexing on a ``(n, 1)`` weight."""
    return np.take(src, rows, axis=0)


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
        self.measured: dict | None = None
        self.mid: dict | None = None  # key -> the measured rows' values at the middle of the block

    def _states(self, key) -> tuple:
        return () if self.updater is None else self.updater.state_buffers(key, self.arrays[key])

    def load(self, rows: dict, got: dict, progress: dict | None, measured: dict | None = None) -> None:
        """Write the pulled ``got`` (``{key: (values, (state values, ...))}`` of ``rows``) into the
        arrays and states, and the servers' optimizer ``progress`` into the local optimizer; ``measured``
        (:attr:`Needs.measured`): the rows whose saturation :meth:`changes` reports."""
        from ..optimizer_states import restore_progress

        if progress is not None:
            restore_progress(self.updater.optimizer, progress, "the parameter servers")
        self.rows, self.start, self.measured, self.mid = rows, got, measured, None
        for key, (values, states) in got.items():
            w, r = self.weights[key], rows[key]
            bufs = self._states(key)
            if r is None:
                w[...] = values.reshape(w.shape)
                for b, s in zip(bufs, states):
                    b[...] = s.reshape(b.shape)
            else:
                write_rows(w, r, values)
                for b, s in zip(bufs, states):
                    write_rows(b.reshape(w.shape), r, s)

    def _measured_values(self, key) -> np.ndarray:
        w, r, pos = self.weights[key], self.rows[key], self.measured[key]
        values = self.start[key][0]
        return w.reshape(values.shape).copy() if r is None else take_rows(w, r[pos])

    def snapshot(self) -> None:
        """Remember the measured rows' values at the middle of the block (see :func:`saturation`)."""
        if self.measured is not None:
            self.mid = {key: self._measured_values(key) for key in self.start}

    def _saturation(self, key, change: np.ndarray):
        """``(positions in the rows, saturation, starting values)`` of the block's saturated rows of ``key``
        (positions None: a whole value), or None."""
        if self.mid is None:
            return None
        values, pos = self.start[key][0], self.measured[key]
        if pos is not None and not len(pos):
            return None
        start = values if pos is None else values[pos]
        end = start + (change if pos is None else change[pos])
        sat = saturation(start, self.mid[key], end)
        if pos is None:
            return None, sat, start
        keep = (sat < SATURATED_BELOW).reshape(len(pos), -1).any(axis=1)
        if not keep.any():
            return None
        return pos[keep].astype(np.int32), sat[keep], start[keep]

    def changes(self, state_values: bool = False) -> dict:
        """``{key: (rows | None, change of the values, (change of each state, ...), saturated)}`` since :meth:`load`;
        ``state_values``: the states' values instead of their changes; ``saturated``: ``(positions in the rows
        (None: every element), saturation, starting values)`` of the rows the block measured below
        :data:`SATURATED_BELOW` (:func:`saturation`; None: none, or no :meth:`snapshot`)."""
        out = {}
        for key, (values, states) in self.start.items():
            w, r = self.weights[key], self.rows[key]
            bufs = self._states(key)
            if r is None:
                now = [b.reshape(s.shape) for b, s in zip(bufs, states)]
                change = w.reshape(values.shape) - values
                out[key] = (None, change, tuple(n.copy() if state_values else n - s for n, s in zip(now, states)),
                            self._saturation(key, change))
            else:
                now = [take_rows(b.reshape(w.shape), r) for b in bufs]
                change = take_rows(w, r)
                change -= values
                out[key] = (r, change, tuple(n if state_values else n - s for n, s in zip(now, states)),
                            self._saturation(key, change))
        return out


def moved(current: np.ndarray, change: np.ndarray, saturated) -> np.ndarray:
    """Where a row goes when a block's ``change`` is applied to its ``current`` value (rows in order; not
    written): ``current + change``, except at the ``saturated`` rows ``(positions | None for all, s, start)``:
    ``s * current + (1 - s) * start + change`` — the block as if trained from ``current``, to the row's measured
    saturation ``s``: all of ``current``'s difference from the block's start survives an additive row (s = 1),
    none of it a row the block brought to where its data puts it (s = 0: the block's end value)."""
    out = current + change
    if saturated is not None:
        pos, s, start = saturated
        if pos is None:
            out = s * current + (1 - s) * start + change
        else:
            out[pos] = s * current[pos] + (1 - s) * start + change[pos]
    return out


def find_sorted(haystack: np.ndarray, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``needles`` is in the sorted, unique ``haystack``: ``(positions, found)``, the positions
    meaningful where ``found``."""
    at = np.searchsorted(haystack, needles)
    found = at < len(haystack)
    found[found] = haystack[at[found]] == needles[found]
    return at, found


def select(saturated, idx: np.ndarray):
    """``saturated`` (``(positions, s, start)`` into some rows, or None) restricted to the rows at sorted
    positions ``idx`` of them, with positions into ``idx``; None when none of them is saturated."""
    if saturated is None:
        return None
    pos, s, start = saturated
    at, ok = find_sorted(idx, pos)
    if not ok.any():
        return None
    return at[ok].astype(np.int32), s[ok], start[ok]


def with_changes(rows: dict, got: dict, prev: dict, lacking, where: dict | None = None) -> dict:
    """``got`` (values pulled for ``rows``) with this worker's last ``dist_async`` push ``prev`` (changes of
    the values, values of the states, saturated rows) applied as the servers apply it (:func:`moved`) where they
    had not applied it yet when they answered: ``lacking(key, prev_rows)`` says, per pushed row (``None``: a
    dense value), whether its server's answer predates that push. So the block starts from what the servers
    hold after this worker's own pushes. ``where``: :attr:`Needs.after` (found when absent)."""
    out = {}
    for key, (values, states) in got.items():
        if key not in prev:
            out[key] = (values, states)
            continue
        prows, dv, ds, sat = prev[key]
        r = rows[key]
        if r is None or prows is None:  # a dense value (pulled whole every block)
            if lacking(key, None)[0]:
                values = moved(values, dv.reshape(values.shape), sat)
                states = tuple(d.reshape(s.shape) for s, d in zip(states, ds))
            out[key] = (values, states)
            continue
        pos, hit = where[key] if where and key in where else find_sorted(r, prows)
        hit = hit & lacking(key, prows)
        at, src = pos[hit], np.flatnonzero(hit)
        if not len(at):
            out[key] = (values, states)
            continue
        v = np.array(values, copy=True)
        v[at] = moved(v[at], dv[src], select(sat, src))
        new_states = []
        for s, d in zip(states, ds):
            s = np.array(s, copy=True)
            s[at] = d[src]
            new_states.append(s)
        out[key] = (v, tuple(new_states))
    return out
