"""``ParamServer``: one shard of the parameters, updated server-side (a Ray actor).

Each server holds rows ``[lo, hi)`` of every row_sparse weight (the layout is in
:func:`shard_bounds`) and, on server 0, the dense parameters. Pushed gradients arrive with
rows local to the shard; the optimizer (an ordinary :mod:`sparsetrain.optimizer` object,
pickled from the driver) is applied through an :class:`~sparsetrain.optimizer.Updater`, so a
row-sparse gradient touches only its rows (lazy update) exactly as on one machine.

``dist_sync``: a push for step ``(epoch, step)`` waits until every worker still in the epoch
has pushed that step; the gradients are then summed in rank order (deterministic) and applied
once, and all the waiting pushes return. A worker that has run out of batches calls
``finish_epoch`` so the others do not wait for it. ``dist_async``: every push is applied when it
arrives.

Blocks (what ``fit`` workers use, see :mod:`.worker`): a worker pulls the weights *and optimizer
states* of the rows a block of batches needs (:meth:`ParamServer.pull_block`), trains the block
locally with the one optimizer implementation (the compiled engine's kernels), and pushes the
change of those rows (:meth:`ParamServer.push_block`), with the saturation the block measured on
the rows it touched most (:func:`~.blocks.saturation`). ``dist_sync`` waits for every worker's
block of the round and applies them together (:func:`add_round`: the workers' changes of a row
add up where its steps add, and are averaged where each block brought the row to where its data
puts it); ``dist_async`` applies each change when it arrives as if its block had been trained from
the row's current value (:func:`apply_push`: a stale change of a saturated row does not add to the
other workers' changes of it), and server 0 keeps the block clock of the bounded staleness
(``train.max_staleness``).
"""
from __future__ import annotations

import asyncio
import pickle

import numpy as np

from ..ndarray import INDEX_DTYPE, NDArray, RowSparseNDArray
from ..ndarray.sparse import sum_rows
from . import ReusableActor
from .blocks import find_sorted, moved, take_rows, write_rows


def add_round(target: np.ndarray, parts, mean_rows: bool = False, saturated=None) -> None:
    """Add the change a round of blocks makes to one key into ``target`` (in place): ``parts`` is
    ``[(rows | None, delta), ...]`` in worker order (rows sorted and unique; ``None``: a dense value);
    ``saturated``: per part, the rows the worker measured as saturated, ``(positions in its rows | None for a
    dense value's every element, s, start)`` (:func:`~.blocks.saturation`), or None.

    The round's blocks trained from the same values are combined as if trained one after the other: a value
    the workers ``w = 1..k`` changed by ``d_w`` moves by ``phi(s, k) * sum(d_w)``, ``s`` the mean of their
    measured saturations (1 where not measured), ``phi = (1 - s**k) / ((1 - s) k)``: when every block contracts
    a row toward its optimum by ``s``, k blocks in a row move it ``(1 + s + ... + s**(k-1))`` times as far as
    one. So the workers' changes **add up** on a row whose steps add (``s = 1``: a row mostly touched a few
    times per block) and are **averaged** on one each block brings to where its data puts it (``s = 0``: the
    hottest rows, a bias).

    * a dense value's block that measured nothing (one batch) counts as saturated: every batch moves a dense
      value, so the workers' changes of it are **averaged** (model averaging);
    * ``mean_rows`` (optimizer states): the **mean** over the workers that touched a row (a state stays a
      state some worker reached: never a negative second moment).

    Rows are added in place, without sorting their union (O(rows pushed), the servers' whole cost of a round).
    """
    k = len(parts)
    if parts[0][0] is None:
        total = parts[0][1]
        if k > 1:
            total = np.array(total, copy=True)
            for _, d in parts[1:]:
                total += d
            # not measured (a block of one batch): taken as saturated, which makes the mean
            s = sum(np.zeros_like(total) if x is None else x[1].reshape(total.shape) for x in (saturated or [None] * k))
            total *= _phi(s / k, k)
        target += total.reshape(target.shape)
        return
    if not mean_rows or k == 1:
        for rows, d in parts:
            write_rows(target, rows, d, add=True)
        if k > 1 and saturated is not None and any(x is not None for x in saturated):
            _contract(target, parts, saturated)
        return
    count = np.zeros(len(target), dtype=target.dtype)
    for rows, _ in parts:
        count[rows] += 1
    for rows, d in parts:
        target[rows] += d / count[rows].reshape((-1,) + (1,) * (d.ndim - 1))


def _phi(s: np.ndarray, k) -> np.ndarray:
    """``(1 - s**k) / ((1 - s) k)``: how far k blocks in a row move a value of saturation ``s``, per block
    and in units of one block's move (1 at s = 1, 1/k at s = 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s < 1, (1 - s ** k) / ((1 - s) * k), 1.0).astype(s.dtype, copy=False)


def _contract(target: np.ndarray, parts, saturated) -> None:
    """The rows several workers changed and some measured as saturated: from the sum of the changes (already
    added) to ``phi(s, k)`` times it (see :func:`add_round`)."""
    hot = np.unique(np.concatenate([rows[x[0]] for (rows, _), x in zip(parts, saturated) if x is not None]))
    shape = (len(hot),) + target.shape[1:]
    count = np.zeros(len(hot), dtype=target.dtype)
    s = np.zeros(shape, dtype=target.dtype)
    total = np.zeros(shape, dtype=target.dtype)
    for (rows, d), x in zip(parts, saturated):
        at, ok = find_sorted(rows, hot)
        sel, src = np.flatnonzero(ok), at[ok]  # the hot rows this worker changed, and where in its rows
        count[sel] += 1
        total[sel] += d[src]
        mine = np.ones((len(src),) + target.shape[1:], dtype=target.dtype)  # not measured: additive
        if x is not None:
            pos, found = find_sorted(src, x[0])  # src is sorted (rows and hot are)
            mine[pos[found]] = x[1][found]
        s[sel] += mine
    several = count > 1
    c = count[several].reshape((-1,) + (1,) * (target.ndim - 1))
    phi = _phi(s[several] / c, c)
    target[hot[several]] += (phi - 1) * total[several]


def apply_push(target: np.ndarray, rows, change: np.ndarray, saturated) -> None:
    """One ``dist_async`` block's change applied to ``target`` (in place) as :func:`~.blocks.moved` says: added,
    and at the saturated rows measured against the value the block started from."""
    if rows is None:
        target[...] = moved(target.reshape(change.shape), change, saturated).reshape(target.shape)
        return
    if saturated is not None:  # the saturated rows' values before the change (only those are read)
        pos, s, start = saturated
        hot = rows[pos]
        current = take_rows(target, hot)
    write_rows(target, rows, change, add=True)
    if saturated is not None:
        write_rows(target, hot, moved(current, change[pos], (None, s, start)))


def shard_bounds(num_rows: int, num_servers: int) -> np.ndarray:
    """Row boundaries ``b`` with server ``s`` holding rows ``[b[s], b[s+1])``."""
    return np.array([s * num_rows // num_servers for s in range(num_servers + 1)], dtype=np.int64)


class _BlockPush:
    __slots__ = ("deltas", "steps")

    def __init__(self, deltas: dict, steps: int):
        self.deltas, self.steps = deltas, steps


class ParamServer(ReusableActor):
    """Holds a shard of every parameter and applies the optimizer to it."""

    def __init__(self, index: int, num_servers: int, num_workers: int, mode: str):
        self.index = index
        self.num_servers = num_servers
        self.num_workers = num_workers
        self.mode = mode
        self.weights: dict = {}   # key -> NDArray (this shard's rows)
        self.offsets: dict = {}   # key -> first global row of the shard (0 for dense)
        self.sparse: dict = {}    # key -> bool
        self.updater = None
        self._pending: dict = {}  # (epoch, step) -> {rank: grads}
        self._events: dict = {}
        self._finished: dict = {}  # epoch -> set of ranks done with it
        self.updates = 0
        self._applied: dict = {}  # (epoch, rank) -> blocks of that worker applied
        self._sent: dict = {}  # (epoch, rank, block) -> {key: local rows} read for that block: its push's rows
        self._tick = None  # an asyncio.Condition, made on the actor's event loop

    def ping(self) -> int:
        return self.index

    def cpu_seconds(self) -> float:
        """CPU seconds this server's process has used (all its threads)."""
        import time

        return time.process_time()

    def init(self, key, value: np.ndarray, offset: int, sparse: bool) -> None:
        self.weights[key] = NDArray(np.array(value, copy=True))
        self.offsets[key] = int(offset)
        self.sparse[key] = bool(sparse)

    def set_optimizer(self, blob: bytes) -> None:
        from ..optimizer import get_updater

        self.updater = get_updater(pickle.loads(blob))

    def set_states(self, states: dict, progress: dict | None = None) -> None:
        """Optimizer states of this shard, ``{key: numpy state (or tuple / None)}``, and the
        optimizer's update counts and scheduler position (``optimizer_states.optimizer_progress``)."""
        from ..optimizer import state_from_numpy
        from ..optimizer_states import restore_progress

        if progress is not None:
            restore_progress(self.updater.optimizer, progress, "optimizer states")

        def writable(v):  # arrays arriving through Ray's object store are read-only views
            if v is None:
                return None
            return tuple(writable(x) for x in v) if isinstance(v, tuple) else np.array(v, copy=True)

        for key, value in states.items():
            self.updater.states[key] = state_from_numpy(writable(value))

    def keys(self) -> list:
        return list(self.weights)

    # -- updates ----------------------------------------------------------------------------------
    def _apply(self, pushes: list) -> None:
        """Sum the pushes (in the order given) per key and update each weight once."""
        keys = sorted({k for p in pushes for k in p}, key=repr)
        for key in keys:
            parts = [p[key] for p in pushes if key in p]
            weight = self.weights[key]
            if parts[0][0] is not None:  # row-sparse: (local rows, values)
                rows, vals = sum_rows([(np.asarray(r, dtype=INDEX_DTYPE), np.asarray(v)) for r, v in parts])
                grad = RowSparseNDArray(np.ascontiguousarray(vals), np.asarray(rows, dtype=INDEX_DTYPE),
                                        weight.shape)
            else:
                total = np.array(parts[0][1], copy=True)
                for _, v in parts[1:]:
                    total += v
                grad = NDArray(total)
            if self.updater is None:  # no optimizer: the pushed sum replaces the value
                if isinstance(grad, RowSparseNDArray):
                    weight._data[grad._indices] = grad._data
                else:
                    weight._data[...] = grad._data
            else:
                self.updater(key, grad, weight)
        self.updates += 1

    async def push(self, rank: int, tag: tuple, grads: dict) -> None:
        """Gradients of worker ``rank`` for step ``tag = (epoch, step)``: ``{key: (rows|None, values)}``."""
        if self.mode == "dist_async":
            self._apply([grads])
            return
        self._pending.setdefault(tag, {})[rank] = grads
        event = self._events.setdefault(tag, asyncio.Event())
        self._complete(tag)
        await event.wait()

    def _complete(self, tag) -> None:
        pending = self._pending.get(tag)
        if pending is None:
            return
        expected = self.num_workers - len(self._finished.get(tag[0], ()))
        if len(pending) >= expected:
            pushes = [pending[r] for r in sorted(pending)]
            if isinstance(pushes[0], _BlockPush):
                self._apply_blocks(pushes)
            else:
                self._apply(pushes)
            del self._pending[tag]
            self._events.pop(tag).set()

    async def push_pull(self, rank: int, tag: tuple, grads: dict, request: dict) -> dict:
        """:meth:`push`, then :meth:`pull` of ``request`` (one round trip per worker step)."""
        await self.push(rank, tag, grads)
        return self.pull(request)

    async def finish_epoch(self, rank: int, epoch: int) -> None:
        self._finished.setdefault(epoch, set()).add(rank)
        for tag in sorted(t for t in self._pending if t[0] == epoch):
            self._complete(tag)
        await self._notify()

    # -- blocks -----------------------------------------------------------------------------------
    def _state_buffers(self, key) -> tuple:
        return () if self.updater is None else self.updater.state_buffers(key, self.weights[key])

    def pull_block(self, request: dict, progress: bool = False, rank: int = 0, epoch: int = 0, block: int = 0):
        """``{key: local rows or None (all)}`` -> ``({key: (values, (state values, ...))}, progress, n)``:
        the weights and optimizer states of those rows, (when asked) the optimizer's update counts and
        scheduler position (:func:`~sparsetrain.optimizer_states.optimizer_progress`), and how many blocks
        of worker ``rank`` in ``epoch`` the values include. The rows are kept as those of block ``block``'s
        push (which then carries no row ids)."""
        return self._read(request, progress, rank, epoch, block)

    def _read(self, request: dict, progress: bool, rank: int, epoch: int, block: int):
        from ..optimizer_states import optimizer_progress

        self._sent[(epoch, rank, block)] = {key: rows for key, rows in request.items() if rows is not None}
        out = {}
        for key, rows in request.items():
            w = self.weights[key]._data
            bufs = self._state_buffers(key)
            if rows is None:
                out[key] = (w.copy(), tuple(b.copy() for b in bufs))
            else:
                out[key] = (take_rows(w, rows), tuple(take_rows(b.reshape(w.shape), rows) for b in bufs))
        told = optimizer_progress(self.updater.optimizer) if progress and self.updater is not None else None
        return out, told, self._applied.get((epoch, rank), 0)

    def _apply_blocks(self, pushes: list) -> None:
        """A round of blocks (in worker order): per key :func:`add_round` of the values' changes and of
        each optimizer state's, then the update counts advanced by all the round's batches. One
        ``dist_async`` push: its value changes added, its optimizer states written (the last writer's
        states win, as in lock-free Hogwild; adding the changes of decaying states such as momentum
        from blocks that started from the same state would count their decay twice)."""
        for key in sorted({k for p in pushes for k in p.deltas}, key=repr):
            parts = [p.deltas[key] for p in pushes if key in p.deltas]
            w = self.weights[key]._data
            if self.mode == "dist_async":  # one push
                (rows, delta, states, saturated), = parts
                apply_push(w, rows, delta, saturated)
            else:
                add_round(w, [(r, d) for r, d, _, _ in parts], saturated=[x for _, _, _, x in parts])
            for i, b in enumerate(self._state_buffers(key)):
                b = b.reshape(w.shape)
                if self.mode == "dist_async":  # its states' values are written
                    if rows is None:
                        b[...] = states[i].reshape(b.shape)
                    else:
                        write_rows(b, rows, states[i])
                else:
                    add_round(b, [(r, s[i]) for r, _, s, _ in parts], mean_rows=True)
        if self.updater is not None:  # every batch of the round counts once, as in one process
            self.updater.optimizer.advance_update_counts(list(self.weights), sum(p.steps for p in pushes))
        self.updates += 1

    def _received(self, deltas: dict, sent: dict, tag: tuple) -> dict:
        """Pushed changes in the weights' dtype (a ``train.push_dtype: float16`` push arrives as float16), with
        the rows of each row-sparse key: ``sent``, those this server read for the block (:meth:`pull_block`)."""
        out = {}
        for key, (_, delta, states, saturated) in deltas.items():
            dtype = self.weights[key]._data.dtype
            rows = None
            if self.sparse[key]:
                rows = sent.get(key)
                if rows is None:
                    raise ValueError(f"server {self.index}: block {tag} pushes key {key!r} without having read its "
                                     "rows (pull_block of that block first)")
            if saturated is not None:
                pos, s, start = saturated
                saturated = (pos, np.asarray(s, dtype=dtype), np.asarray(start, dtype=dtype))
            out[key] = (rows, np.asarray(delta, dtype=dtype), tuple(np.asarray(s, dtype=dtype) for s in states),
                        saturated)
        return out

    async def push_block(self, rank: int, tag: tuple, deltas: dict, steps: int, request: dict | None = None,
                         staleness: int | None = None, request_block: int | None = None):
        """Worker ``rank``'s block ``tag = (epoch, block)``: ``deltas`` ``{key: (None, change of the values,
        (change of each optimizer state, ...), saturated rows)}`` over ``steps`` batches, of the rows this server
        read for the block (in that order: the push carries no row ids).

        ``dist_sync``: returns when every worker still in the epoch has pushed its block of the round
        and their mean change is applied, with :meth:`pull_block` of ``request`` (the next block's rows,
        read after the round). ``dist_async``: applied at once; with ``staleness`` (server 0) returns
        when worker ``rank`` may start its next block: when no worker still in the epoch has pushed
        fewer than ``tag[1] + 1 - staleness`` blocks; with ``request``, :meth:`pull_block` of it for block
        ``request_block``, read then (a later block's rows: the worker makes one call per server and block)."""
        epoch = tag[0]
        sent = self._sent.pop((epoch, rank, tag[1]), {})
        # dist_async: states as values (see _apply_blocks)
        push = _BlockPush(self._received(deltas, sent, tag), int(steps))
        if self.mode == "dist_async":
            self._apply_blocks([push])
        else:
            self._pending.setdefault(tag, {})[rank] = push
            event = self._events.setdefault(tag, asyncio.Event())
            self._complete(tag)
            await event.wait()
        if self._applied and min(e for e, _ in self._applied) < epoch:
            self._applied = {k: v for k, v in self._applied.items() if k[0] >= epoch}
            self._sent = {k: v for k, v in self._sent.items() if k[0] >= epoch}  # (a failed epoch's)
        self._applied[(epoch, rank)] = tag[1] + 1
        await self._notify()
        if staleness is not None:
            await self._notify(lambda: self._may_start(rank, epoch, tag[1] + 1, staleness))
        return self._read(request, True, rank, epoch, request_block) if request is not None else None

    def _may_start(self, rank: int, epoch: int, done: int, staleness: int) -> bool:
        """Whether worker ``rank``, with ``done`` blocks applied, may start its next block: no worker
        still in the epoch has fewer than ``done - staleness`` blocks applied."""
        gone = self._finished.get(epoch, set())
        others = [self._applied.get((epoch, r), 0) for r in range(self.num_workers) if r != rank and r not in gone]
        return not others or done - min(others) <= staleness

    async def _notify(self, until=None) -> None:
        """Wake every waiter; with ``until``: then wait until ``until()`` holds (checked at each wake-up)."""
        if self._tick is None:
            self._tick = asyncio.Condition()
        async with self._tick:
            self._tick.notify_all()
            if until is not None:
                await self._tick.wait_for(until)

    # -- reads ----------------------------------------------------------------------------------
    def pull(self, request: dict) -> dict:
        """``{key: local rows or None (all)}`` -> ``{key: values}``."""
        out = {}
        for key, rows in request.items():
            data = self.weights[key]._data
            out[key] = data.copy() if rows is None else data[np.asarray(rows, dtype=INDEX_DTYPE)]
        return out

    def state(self) -> dict:
        """Weights, offsets, optimizer states and progress of this shard (for checkpoints)."""
        from ..optimizer import state_to_numpy
        from ..optimizer_states import optimizer_progress

        states, progress = {}, None
        if self.updater is not None:
            states = {k: state_to_numpy(v) for k, v in self.updater.states.items()}
            progress = optimizer_progress(self.updater.optimizer)
        return {"weights": {k: w._data.copy() for k, w in self.weights.items()},
                "offsets": dict(self.offsets), "sparse": dict(self.sparse), "states": states,
                "progress": progress, "updates": self.updates}
