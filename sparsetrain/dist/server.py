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
"""
from __future__ import annotations

import asyncio
import pickle

import numpy as np

from ..ndarray import INDEX_DTYPE, NDArray, RowSparseNDArray
from ..ndarray.sparse import sum_rows


def shard_bounds(num_rows: int, num_servers: int) -> np.ndarray:
    """Row boundaries ``b`` with server ``s`` holding rows ``[b[s], b[s+1])``."""
    return np.array([s * num_rows // num_servers for s in range(num_servers + 1)], dtype=np.int64)


class ParamServer:
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

    def ping(self) -> int:
        return self.index

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
            self._apply([pending[r] for r in sorted(pending)])
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
