"""``DistKVStore``: the client side of ``kvstore.create('dist_sync' | 'dist_async')``.

The store knows the servers (Ray actor handles) and the layout of every key: a row_sparse
value is split by row range over all servers (:func:`~.server.shard_bounds`), a dense one lives on
server 0. ``push`` sends each server only the gradient rows in its range (one call per server
for all keys), ``row_sparse_pull`` asks each server only for the requested rows in its range.

Roles: the *driver* (``role='driver'``) initializes the servers' values and optimizer; a
*worker* store records the layout in ``init`` and leaves ``set_optimizer`` to the driver, as
MXNet's workers other than rank 0 do. ``create('dist_sync')`` with no servers starts a local Ray
(if none is running), ``num_servers`` servers and acts as driver and the only worker (rank 0 of 1).
"""
from __future__ import annotations

import contextlib
import pickle

import numpy as np

from ..base import ConfigError, SparseTrainError, StorageTypeError
from ..kvstore import KVStore, keys_values, sum_values, to_numpy_full, unique_rows, write_rows
from ..ndarray import INDEX_DTYPE, BaseArray, RowSparseNDArray
from ..optimizer_states import merge_progress
from . import require_ray
from .server import ParamServer, shard_bounds

DEFAULT_OBJECT_STORE = 200 * 2**20


class ServerDied(SparseTrainError):
    """A parameter-server actor died while a worker or the driver was talking to it."""


def _first_line(e) -> str:
    text = str(e).strip().splitlines()
    return text[0][:200] if text else type(e).__name__


def ensure_ray(address=None, num_cpus=None, object_store_memory=None) -> bool:
    """Connect to ``address`` or start a local Ray; True when this call started/connected it."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    import logging
    import os

    # Ray's own start-up chatter (INFO lines, the token-auth notice) is not the user's concern;
    # its warnings about dead actors are turned into one-line errors by the driver
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
    logging.getLogger("ray").setLevel(logging.ERROR)
    if address:
        check_address(address)
        try:
            with _quiet_stderr():  # Ray's C++ client logs every failed attempt there
                ray.init(address=address, **quiet)
        except (ConnectionError, TimeoutError, RuntimeError, ValueError) as e:
            raise SparseTrainError(f"--address {address}: cannot join the Ray cluster ({_first_line(e)})") from None
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1,
                 object_store_memory=object_store_memory or DEFAULT_OBJECT_STORE,
                 _system_config={"max_direct_call_object_size": DIRECT_CALL_BYTES}, **quiet)
    return True


def quiet_raylet_notices():
    """Keep the raylet's notices (``(raylet) A worker died or was killed ...``, one long line in colour)
    off stdout, where Ray's driver prints them whatever ``log_to_driver`` says, until the returned function
    is called: a distributed ``fit`` (the driver) holds them off while it runs, as a dead actor is one
    ``error:`` line from the driver (or a restart), and ``fit``'s stdout holds the epoch lines. Before and
    after, and in a program's own use of Ray, Ray prints them as it does."""
    from ray._private import worker

    show = getattr(worker, "print_to_stdstream", None)
    if show is None or getattr(show, "keeps_raylet_quiet", False):  # (not this Ray's, or quiet already)
        return lambda: None

    def print_to_stdstream(data, *args, **kwargs):
        if data.get("pid") != "raylet":
            show(data, *args, **kwargs)

    def restore():
        if worker.print_to_stdstream is print_to_stdstream:
            worker.print_to_stdstream = show

    print_to_stdstream.keeps_raylet_quiet = True
    worker.print_to_stdstream = print_to_stdstream
    return restore


#: A local Ray passes call arguments and results up to this size straight between the processes instead of
#: through the object store (Ray's default: 100 KiB): a block's rows and changes (a few MB on the large workload)
#: then cost the raylet no work — measured on the large workload, 2 workers: Ray's daemons' CPU per epoch
#: 0.14 s -> 0.06 s, the epoch 0.23 s -> 0.17 s. A cluster (``--address``) keeps its own setting.
DIRECT_CALL_BYTES = 4 * 2**20


#: How long ``--address host:port`` may take to accept a connection.
CONNECT_SECONDS = 5.0


@contextlib.contextmanager
def _quiet_stderr():
    """File descriptor 2 to /dev/null for the duration (native libraries write there directly)."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def check_address(address: str) -> None:
    """A one-line :class:`SparseTrainError` at once when ``host:port`` does not accept a connection
    (``ray.init`` would retry for minutes); ``auto``, ``local`` and ``ray://`` addresses are left to Ray."""
    import socket

    if address in ("auto", "local") or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"--address {address}: expected host:port (e.g. head-node:6379), auto or ray://...")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as e:
        why = "timed out" if isinstance(e, socket.timeout) else (e.strerror or type(e).__name__).lower()
        raise SparseTrainError(f"--address {address}: cannot reach a Ray cluster there ({why}); start one with "
                               "`ray start --head` or check the host and port") from None


def start_server(index: int, num_servers: int, num_workers: int, mode: str, cpus: float = 0):
    """A new :class:`~.server.ParamServer` actor, server ``index`` of ``num_servers``."""
    ray = require_ray()
    return ray.remote(ParamServer).options(num_cpus=cpus, max_concurrency=1000).remote(index, num_servers,
                                                                                       num_workers, mode)


def start_servers(num_servers: int, num_workers: int, mode: str, cpus: float = 0):
    return [start_server(s, num_servers, num_workers, mode, cpus) for s in range(num_servers)]


def _nbytes(*arrays) -> int:
    return int(sum(a.nbytes for a in arrays if a is not None))


def _wire_rows(shard_rows: int):
    """The dtype of a block's local row ids on the wire for a shard of ``shard_rows`` rows."""
    return np.int32 if shard_rows <= np.iinfo(np.int32).max else INDEX_DTYPE


class DistKVStore(KVStore):
    """A kvstore whose values live on :class:`~.server.ParamServer` actors."""

    def __init__(self, mode: str, servers, rank: int = 0, num_workers: int = 1, role: str = "worker",
                 owns_servers: bool = False):
        if mode not in ("dist_sync", "dist_async"):
            raise ValueError(f"mode must be dist_sync or dist_async, got {mode!r}")
        if not servers:
            raise SparseTrainError("a distributed kvstore needs at least one server")
        self.type = mode
        self._servers = list(servers)
        self._rank = int(rank)
        self._num_workers = int(num_workers)
        self._role = role
        self._owns = owns_servers
        self._layout: dict = {}  # key -> (sparse, shape, bounds)
        self._epoch = 0
        self._step = 0
        self.bytes_pushed = 0
        self.bytes_pulled = 0

    # -- MXNet properties ----------------------------------------------------------------------
    @property
    def rank(self) -> int:
        return self._rank

    @property
    def num_workers(self) -> int:
        return self._num_workers

    @property
    def num_servers(self) -> int:
        return len(self._servers)

    @property
    def servers(self) -> list:
        return list(self._servers)

    def _get(self, refs):
        ray = require_ray()
        try:
            return ray.get(refs)
        except (ray.exceptions.RayActorError, ray.exceptions.ActorDiedError) as e:
            raise ServerDied(f"a parameter server died ({_first_line(e)})") from None

    def _check(self, k):
        if k not in self._layout:
            raise SparseTrainError(f"kvstore key {k!r} was not initialized; call init({k!r}, value) first")

    # -- init / optimizer ------------------------------------------------------------------------
    def init(self, key, value):
        refs = []
        for k, v in zip(*keys_values(key, value)):
            if k in self._layout:
                raise SparseTrainError(f"kvstore key {k!r} is already initialized")
            sparse = getattr(v, "stype", "default") == "row_sparse"
            shape = tuple(v.shape)
            bounds = shard_bounds(shape[0], len(self._servers)) if sparse else None
            self._layout[k] = (sparse, shape, bounds)
            if self._role != "driver":
                continue
            full = to_numpy_full(v)
            if sparse:
                for s, srv in enumerate(self._servers):
                    lo, hi = bounds[s], bounds[s + 1]
                    refs.append(srv.init.remote(k, full[lo:hi], int(lo), True))
            else:
                refs.append(self._servers[0].init.remote(k, full, 0, False))
        self._get(refs)

    def declare(self, key, shape, sparse: bool):
        """Record the layout of a key the servers already hold (a worker joining a run)."""
        self._layout[key] = (sparse, tuple(shape), shard_bounds(shape[0], len(self._servers)) if sparse else None)

    def set_optimizer(self, optimizer):
        if self._role != "driver":
            return  # the driver (MXNet: rank 0) sends the optimizer once
        blob = pickle.dumps(optimizer)
        self._get([srv.set_optimizer.remote(blob) for srv in self._servers])

    def set_states(self, states: dict, progress: dict | None = None):
        """Full optimizer states ``{key: numpy state}``, split over the servers like the weights, and
        the optimizer's progress (update counts, scheduler position), the same on every server."""
        per = [dict() for _ in self._servers]
        for k, st in states.items():
            self._check(k)
            sparse, shape, bounds = self._layout[k]
            if not sparse:
                per[0][k] = st
                continue
            for s in range(len(self._servers)):
                per[s][k] = _slice_state(st, bounds[s], bounds[s + 1])
        self._get([srv.set_states.remote(p, progress) for srv, p in zip(self._servers, per)])

    # -- push / pull -----------------------------------------------------------------------------
    def begin_epoch(self, epoch: int):
        self._epoch, self._step = int(epoch), 0

    def finish_epoch(self):
        if self.type == "dist_sync":
            self._get([srv.finish_epoch.remote(self._rank, self._epoch) for srv in self._servers])

    def _split_push(self, key, value) -> list[dict]:
        """Per server, ``{key: (local rows | None, values)}``: each server gets its row range."""
        per = [dict() for _ in self._servers]
        for k, v in zip(*keys_values(key, value)):
            self._check(k)
            if isinstance(v, (list, tuple)):
                v = sum_values(list(v))
            sparse, shape, bounds = self._layout[k]
            if sparse:
                if isinstance(v, RowSparseNDArray):
                    rows, vals = np.asarray(v._indices, dtype=INDEX_DTYPE), v._data
                    if len(rows) > 1 and np.any(rows[1:] <= rows[:-1]):
                        order = np.argsort(rows, kind="stable")
                        rows, vals = rows[order], vals[order]
                else:  # a dense gradient of a row-sparse weight: every row
                    vals = to_numpy_full(v)
                    rows = np.arange(shape[0], dtype=INDEX_DTYPE)
                cuts = np.searchsorted(rows, bounds)
                for s in range(len(self._servers)):
                    a, b = cuts[s], cuts[s + 1]
                    r, x = rows[a:b] - bounds[s], vals[a:b]
                    per[s][k] = (r, x)
                    self.bytes_pushed += _nbytes(r, x)
            else:
                x = to_numpy_full(v) if not isinstance(v, np.ndarray) else v
                per[0][k] = (None, x)
                self.bytes_pushed += _nbytes(x)
        return per

    def _next_tag(self) -> tuple:
        tag = (self._epoch, self._step)
        self._step += 1
        return tag

    def push(self, key, value, priority=0):
        per = self._split_push(key, value)
        tag = self._next_tag()
        # every server gets a call each step (maybe empty): the sync barrier counts workers per server
        self._get([srv.push.remote(self._rank, tag, p) for srv, p in zip(self._servers, per)])

    def push_pull(self, key, value, pull) -> dict:
        """Push gradients and, in the same round trip per server, pull values after the update.

        ``pull``: ``{key: sorted unique global rows, or None for the whole value}``. Returns
        ``{key: values}`` (the requested rows in order). In ``dist_sync`` the pulled values are
        those after the step's aggregated update; in ``dist_async``, after this worker's push.
        """
        per = self._split_push(key, value)
        requests, plan = self._plan_fetch(list(pull.items()))
        tag = self._next_tag()
        answers = self._get([srv.push_pull.remote(self._rank, tag, p, r)
                             for srv, p, r in zip(self._servers, per, requests)])
        return self._assemble(plan, dict(enumerate(answers)))

    def _plan_fetch(self, requests):
        """Per-server requests ``{key: local rows | None}`` and the plan to reassemble the answers."""
        per = [dict() for _ in self._servers]
        plan = []
        for k, rows in requests:
            self._check(k)
            sparse, shape, bounds = self._layout[k]
            if not sparse:
                per[0][k] = None
                plan.append((k, None))
                continue
            if rows is None:
                rows = np.arange(shape[0], dtype=INDEX_DTYPE)
            if len(rows) and (rows[0] < 0 or rows[-1] >= shape[0]):
                raise IndexError(f"row_sparse_pull {k!r}: row ids must be in [0, {shape[0]})")
            cuts = np.searchsorted(rows, bounds)
            used = []
            for s in range(len(self._servers)):
                a, b = cuts[s], cuts[s + 1]
                if b > a:
                    per[s][k] = rows[a:b] - bounds[s]
                    self.bytes_pulled += _nbytes(per[s][k])
                    used.append(s)
            plan.append((k, used))
        return per, plan

    def _assemble(self, plan, answers: dict) -> dict:
        out = {}
        for k, used in plan:
            if used is None:
                out[k] = answers[0][k]
            else:
                shape = self._layout[k][1]
                parts = [answers[s][k] for s in used]
                out[k] = (np.concatenate(parts) if parts
                          else np.zeros((0,) + tuple(shape[1:]), dtype=np.float32))
            self.bytes_pulled += _nbytes(out[k])
        return out

    def _fetch(self, requests):
        """``[(key, global rows or None)]`` -> ``{key: values}`` with one call per server."""
        per, plan = self._plan_fetch(requests)
        targets = [s for s in range(len(self._servers)) if per[s]]
        answers = dict(zip(targets, self._get([self._servers[s].pull.remote(per[s]) for s in targets])))
        return self._assemble(plan, answers)

    def pull(self, key, out=None, priority=0, ignore_sparse=True):
        if out is None:
            raise ValueError("pull needs out")
        keys, outs = keys_values(key, out)
        wanted = []
        for k, o in zip(keys, outs):
            targets = o if isinstance(o, (list, tuple)) else [o]
            if ignore_sparse and all(isinstance(t, RowSparseNDArray) for t in targets):
                continue
            wanted.append((k, targets))
        got = self._fetch([(k, None) for k, _ in wanted])
        for k, targets in wanted:
            for t in targets:
                if isinstance(t, RowSparseNDArray):
                    write_rows(t, np.arange(t.shape[0], dtype=INDEX_DTYPE), got[k])
                elif isinstance(t, BaseArray):
                    t._data[...] = got[k].reshape(t.shape)
                else:
                    raise StorageTypeError(f"pull: unsupported out {type(t).__name__}")

    def row_sparse_pull(self, key, out=None, priority=0, row_ids=None):
        if out is None or row_ids is None:
            raise ValueError("row_sparse_pull needs out and row_ids")
        keys, outs = keys_values(key, out)
        ids = row_ids if isinstance(key, (list, tuple)) else [row_ids]
        if len(ids) != len(keys):
            raise ValueError("row_sparse_pull: one row_ids per key")
        rows = [unique_rows(r) for r in ids]
        for k in keys:
            self._check(k)
            if not self._layout[k][0]:
                raise StorageTypeError(f"row_sparse_pull: key {k!r} holds a dense value; use pull")
        got = self._fetch(list(zip(keys, rows)))
        for k, o, r in zip(keys, outs, rows):
            for t in (o if isinstance(o, (list, tuple)) else [o]):
                write_rows(t, r, got[k])

    # -- blocks (bulk pull / push; see server.push_block) ------------------------------------------
    def _cuts(self, key, rows):
        """``[(server, a, b)]``: the part ``rows[a:b]`` of sorted global ``rows`` on each server (that has some)."""
        cuts = np.searchsorted(rows, self._layout[key][2])
        return [(s, int(cuts[s]), int(cuts[s + 1])) for s in range(len(self._servers)) if cuts[s + 1] > cuts[s]]

    def _split(self, key, rows):
        """``[(server, local rows, a, b)]``: :meth:`_cuts` with each part's rows local to its server's shard, as
        int32 where the shard allows (half the bytes of a block's row ids on the wire)."""
        bounds = self._layout[key][2]
        return [(s, (rows[a:b] - bounds[s]).astype(_wire_rows(bounds[s + 1] - bounds[s]), copy=False), a, b)
                for s, a, b in self._cuts(key, rows)]

    def _block_requests(self, rows: dict) -> list[dict]:
        """Per server ``{key: local rows | None}`` for ``rows`` (``{key: sorted global rows | None}``)."""
        per = [dict() for _ in self._servers]
        for k, r in rows.items():
            self._check(k)
            sparse, shape, _ = self._layout[k]
            if not sparse:
                per[0][k] = None
                continue
            if r is None:
                r = np.arange(shape[0], dtype=INDEX_DTYPE)
            parts = self._split(k, r)
            for s, local, _, _ in parts:
                per[s][k] = local
                self.bytes_pulled += _nbytes(local)
            if not parts:  # no rows: an empty answer (with the right number of states) from server 0
                per[0][k] = r[:0]
        return per

    def pull_block(self, rows: dict, block: int) -> "PendingBlock":
        """Ask every server for the values and optimizer states of ``rows`` (``{key: sorted unique global
        rows | None for all}``), those of block ``block`` of the epoch, and the optimizer's progress, without
        waiting: one call per server."""
        per = self._block_requests(rows)
        return PendingBlock([srv.pull_block.remote(p, s == 0, self._rank, self._epoch, int(block)) for s, (srv, p)
                             in enumerate(zip(self._servers, per))], rows)

    def push_block(self, block: int, changes: dict, steps: int, rows: dict | None = None,
                   staleness: int | None = None, dtype=None, rows_block: int | None = None) -> "PendingBlock":
        """Push a block's ``changes`` (``{key: (sorted global rows | None, change of the values, (change
        of each optimizer state, ...), saturated rows)}``, :meth:`.blocks.LocalRows.changes`, from ``steps``
        batches) to every server, one call and one object-store buffer per server: the values only, in the
        order of the rows each server read for the block (:meth:`pull_block` or an earlier push's ``rows``),
        which are the block's rows; ``rows``: block ``rows_block``'s rows, returned after the round
        (``dist_sync``) or once the push is applied; ``staleness``: ``train.max_staleness`` (``dist_async``: the
        result arrives when this worker may start its next block). ``dtype``: the values' type on the wire
        (float16)."""
        per = [dict() for _ in self._servers]
        for k, (r, dv, ds, sat) in changes.items():
            if dtype is not None:
                dv, ds = dv.astype(dtype), tuple(d.astype(dtype) for d in ds)
            sparse, shape, _ = self._layout[k]
            if r is None and sparse:  # a row_sparse value pulled whole (_block_requests): all its rows, sharded
                r = np.arange(shape[0])
                if sat is not None and sat[0] is None:
                    sat = (np.arange(shape[0], dtype=np.int32),) + tuple(sat[1:])
            if r is None:
                per[0][k] = (None, dv, ds, sat)
                self.bytes_pushed += _nbytes(dv, *ds, *(sat or ()))
                continue
            for s, a, b in self._cuts(k, r):
                mine = None
                if sat is not None:  # the saturated rows in this server's range, positions into its rows
                    pos, x, start = sat
                    lo, hi = np.searchsorted(pos, (a, b))
                    mine = (pos[lo:hi] - a, x[lo:hi], start[lo:hi]) if hi > lo else None
                per[s][k] = (None, dv[a:b], tuple(d[a:b] for d in ds), mine)
                self.bytes_pushed += _nbytes(dv[a:b], *[d[a:b] for d in ds], *(mine or ()))
        asks = self._block_requests(rows) if rows is not None else [None] * len(self._servers)
        if rows is not None:
            asks = [a if (a or s == 0) else None for s, a in enumerate(asks)]
        tag = (self._epoch, int(block))
        # one buffer per server, inline or through the object store as Ray's max_direct_call_object_size says
        refs = [srv.push_block.remote(self._rank, tag, p, int(steps), a, staleness if s == 0 else None, rows_block)
                for s, (srv, p, a) in enumerate(zip(self._servers, per, asks))]
        return PendingBlock(refs, rows)

    def receive(self, pending: "PendingBlock"):
        """Wait for ``pending``; for a pull (or a push that asked for rows): ``({key: (values, (state
        values, ...))}, progress, included)`` assembled in global row order — ``included[s]``: how many of
        this worker's blocks of the epoch server ``s``'s values include —, else ``(None, None, None)``.
        The answer is kept: receiving it again returns it."""
        if pending.answer is None:
            pending.answer = self._assemble_block(self._get(pending.refs), pending.rows)
            pending.refs = None
        return pending.answer

    def _assemble_block(self, answers: list, rows: dict | None):
        if rows is None:
            return None, None, None
        out = {}
        for k, r in rows.items():
            sparse = self._layout[k][0]
            if not sparse:
                out[k] = answers[0][0][k]
            else:
                parts = [answers[s][0][k] for s in range(len(self._servers))
                         if answers[s] is not None and k in answers[s][0]]
                if len(parts) == 1:
                    out[k] = parts[0]
                else:
                    out[k] = (np.concatenate([v for v, _ in parts]),
                              tuple(np.concatenate([p[1][i] for p in parts]) for i in range(len(parts[0][1]))))
            self.bytes_pulled += _nbytes(out[k][0], *out[k][1])
        return out, answers[0][1], [a[2] if a is not None else None for a in answers]

    def owners(self, key, rows) -> np.ndarray:
        """The server holding each of ``rows`` (global ids) of ``key``; ``rows=None``: a dense value (server 0)."""
        self._check(key)
        sparse, _, bounds = self._layout[key]
        if rows is None or not sparse or len(self._servers) == 1:
            return np.zeros(1 if rows is None else len(rows), dtype=np.int64)
        return np.searchsorted(bounds, rows, side="right") - 1

    def finish_blocks(self):
        """This worker is done with the epoch's blocks (the others stop waiting for it)."""
        self._get([srv.finish_epoch.remote(self._rank, self._epoch) for srv in self._servers])

    # -- gathering (checkpoints) -----------------------------------------------------------------
    def gather(self) -> tuple[dict, dict, dict | None]:
        """``({key: full numpy value}, {key: full optimizer state}, optimizer progress)`` assembled
        from every server (progress: ``optimizer_states.merge_progress`` of the servers')."""
        states = self._get([srv.state.remote() for srv in self._servers])
        values, opt_states = {}, {}
        for k, (sparse, shape, bounds) in self._layout.items():
            if not sparse:
                values[k] = states[0]["weights"][k]
                if k in states[0]["states"]:
                    opt_states[k] = states[0]["states"][k]
                continue
            values[k] = np.concatenate([st["weights"][k] for st in states]).reshape(shape)
            if all(k in st["states"] for st in states):
                opt_states[k] = _concat_state([st["states"][k] for st in states])
        return values, opt_states, merge_progress([st["progress"] for st in states])

    def close(self):
        if self._owns:
            ray = require_ray()
            for srv in self._servers:
                ray.kill(srv)
            self._servers = []


class PendingBlock:
    """Calls in flight to every server (see :meth:`DistKVStore.pull_block` / ``push_block``), the
    global rows they answer for (None: nothing to assemble) and, once received, the answer."""

    __slots__ = ("refs", "rows", "answer")

    def __init__(self, refs, rows):
        self.refs, self.rows, self.answer = refs, rows, None


def _slice_state(state, lo, hi):
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(_slice_state(s, lo, hi) for s in state)
    return np.ascontiguousarray(np.asarray(state)[lo:hi])


def _concat_state(parts):
    if parts[0] is None:
        return None
    if isinstance(parts[0], tuple):
        return tuple(_concat_state([p[i] for p in parts]) for i in range(len(parts[0])))
    return np.concatenate(parts)


def create_dist(mode: str, servers=None, rank: int = 0, num_workers: int = 1, num_servers: int = 1,
                address=None, role=None) -> DistKVStore:
    """``kvstore.create('dist_sync'|'dist_async', ...)``.

    With ``servers`` (actor handles): a worker's store (``role='worker'`` unless given). Without:
    start Ray if needed and ``num_servers`` servers, and act as driver and single worker.
    """
    if servers is not None:
        return DistKVStore(mode, servers, rank, num_workers, role or "worker")
    ensure_ray(address)
    srv = start_servers(num_servers, num_workers, mode)
    return DistKVStore(mode, srv, rank, num_workers, role or "driver", owns_servers=True)


__all__ = ["DistKVStore", "ServerDied", "create_dist", "ensure_ray", "start_servers"]
