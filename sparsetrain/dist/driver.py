"""``train_distributed``: the run driver for ``train.kvstore: dist_sync | dist_async``.

The driver initializes the parameters exactly as the single-process trainer does (same seed),
starts ``servers`` :class:`~.server.ParamServer` actors holding them, then ``workers``
:class:`~.worker.Worker` actors, and hands the trainer's one epoch loop
(:func:`sparsetrain.trainer.run_epochs`) an epoch executor, ``_ClusterEpochs``: every worker
trains on its part of the file while the driver polls their progress for the display; then it
combines their metrics into one ``metrics.jsonl`` record and gathers the sharded weights and
optimizer states into the driver's module. The loop does the rest as for one machine: NaN stop,
``data.eval`` scored locally, the ordinary checkpoint files and ``checkpoint.json`` through the
run directory (a run that one machine can resume or evaluate).

A worker or server whose process dies fails the run with a message naming it and the last
complete checkpoint; with ``max_restarts=K`` the driver instead tears every actor down and
restarts from that checkpoint, up to K times.
"""
from __future__ import annotations

import os
import time

from ..base import ConfigError, SparseTrainError
from .. import optimizer_states
from . import require_ray
from .kvstore import _first_line

POLL_SECONDS = 0.2
START_SECONDS = 600  # workers load their part's first chunk and compile/load kernels when they start


class ActorFailure(SparseTrainError):
    """A worker or server actor died."""


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _layout(module) -> dict:
    view = module.view()
    return {i: (tuple(view.arrays[n].shape), view.arrays[n].stype == "row_sparse")
            for i, n in enumerate(view.param_names)}


def _combine_metrics(cfg, results):
    from ..trainer import make_metric, metric_values
    from ..engines.base import metric_leaves

    metric = make_metric(cfg.metrics)
    for leaf_idx, leaf in enumerate(metric_leaves(metric)):
        leaf.sum_metric = sum(r["metric"][leaf_idx][0] for r in results)
        leaf.num_inst = sum(r["metric"][leaf_idx][1] for r in results)
    return metric_values(cfg.metrics, metric)


def _wait_all(refs, what: list[str], poll=None, deadline: float | None = None):
    """``ray.get(refs)`` in order, calling ``poll()`` every POLL_SECONDS while waiting; a dead
    actor becomes an :class:`ActorFailure` naming it (``what[i]``), a worker's own error is re-raised.
    ``deadline`` (seconds): an :class:`ActorFailure` when the results are not all there by then."""
    ray = require_ray()
    from .kvstore import ServerDied

    owner = {ref: i for i, ref in enumerate(refs)}
    results = [None] * len(refs)
    pending = list(refs)
    give_up = time.monotonic() + deadline if deadline else None
    while pending:
        if give_up is not None and time.monotonic() > give_up:
            late = ", ".join(what[owner[r]] for r in pending)
            raise ActorFailure(f"{late} did not start within {deadline:.0f} s (is the Ray cluster short of CPUs or "
                               "memory? see `ray status`)")
        wait = POLL_SECONDS if (poll or give_up) else None
        done, pending = ray.wait(pending, num_returns=1, timeout=wait)
        for ref in done:
            try:
                results[owner[ref]] = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorDiedError) as e:
                raise ActorFailure(f"{what[owner[ref]]} died ({_first_line(e)})") from None
            except ray.exceptions.RayTaskError as e:
                cause = getattr(e, "cause", None)
                if isinstance(cause, ServerDied):
                    raise ActorFailure(f"{what[owner[ref]]}: {cause}") from None
                if isinstance(cause, Exception):
                    raise cause from None
                raise
        if poll and pending:
            poll()
    return results


def _to_params(module, values_by_key) -> dict:
    import numpy as np

    from ..ndarray import NDArray, RowSparseNDArray

    out = {}
    view = module.view()
    args = view.arrays
    for i, name in enumerate(view.param_names):
        v = np.ascontiguousarray(values_by_key[i])
        if args[name].stype == "row_sparse":
            out[name] = RowSparseNDArray(v, np.arange(v.shape[0], dtype=np.int64), v.shape)
        else:
            out[name] = NDArray(v)
    return out


class _Cluster:
    """The actors of one attempt: servers holding the parameters, workers training."""

    def __init__(self, ray, cfg, cfg_yaml, source, mode, workers, servers, layout, sync_every, names, arg, opt_states,
                 engine, actor_cpus, opt_progress=None, reuse=False):
        from ..config import make_optimizer
        from .kvstore import DistKVStore, ServerDied, start_server
        from .worker import Worker

        self.ray = ray
        self.workers = []
        self._asked = None  # (epoch, progress requests in flight): see samples_done
        if actor_cpus:  # on a cluster each worker reserves a CPU: too few would leave workers waiting forever
            have = ray.cluster_resources().get("CPU", 0)
            if have < workers * actor_cpus:
                raise SparseTrainError(f"--workers {workers}: the Ray cluster has {have:g} CPUs and each worker "
                                       "needs one; use fewer workers or add nodes")
        # a local run reuses the actors of this process's earlier runs in the same Ray session (see _Idle)
        self.idle = _Idle.of(ray) if reuse and not actor_cpus else None
        self.servers = self._actors("servers", [(s, servers, workers, mode) for s in range(servers)],
                                    lambda args: start_server(*args))
        self.ok = False
        try:  # a failure while starting leaves no actor behind
            # the workers' processes start while the servers take the values
            cls = ray.remote(Worker)
            self.workers = self._actors(
                "workers", [(cfg_yaml, source, r, workers, self.servers, mode, layout, sync_every, engine)
                            for r in range(workers)],
                lambda args: cls.options(num_cpus=actor_cpus, max_restarts=0, max_concurrency=2).remote(*args))
            self.what = [f"worker {r}" for r in range(workers)]
            self.kv = DistKVStore(mode, self.servers, 0, workers, role="driver")
            opt = make_optimizer(cfg, sync_workers=workers if mode == "dist_sync" else 1)
            try:
                self.kv.init(list(range(len(names))), [arg[n] for n in names])
                self.kv.set_optimizer(opt)
                if opt_states or opt_progress:
                    self.kv.set_states(opt_states or {}, opt_progress)
            except ServerDied as e:
                raise ActorFailure(str(e)) from None
            self.info = _wait_all([w.ping.remote() for w in self.workers], self.what, deadline=START_SECONDS)
        except BaseException:
            self.close()
            raise

    def samples_done(self, epoch: int) -> int:
        """Samples the workers have trained in ``epoch`` (-1: not known yet). One progress request per worker is
        in flight: a poll waits up to POLL_SECONDS for the answers and, when they are late (a loaded machine),
        reads the same requests at the next poll instead of asking again, so late answers are never lost."""
        if self._asked is None or self._asked[0] != epoch:
            self._asked = (epoch, [w.progress.remote() for w in self.workers])
        try:
            done = self.ray.get(self._asked[1], timeout=POLL_SECONDS)
        except self.ray.exceptions.GetTimeoutError:
            return -1
        except Exception:  # noqa: BLE001 - a dead worker: the epoch's own result will say
            self._asked = None
            return -1
        self._asked = None
        return sum(s for e, s, _ in done if e == epoch)

    def server_cpu(self) -> float:
        """CPU seconds the servers' processes have used, summed."""
        return sum(_wait_all([s.cpu_seconds.remote() for s in self.servers], [f"server {i}" for i in
                                                                            range(len(self.servers))]))

    def gather(self):
        from .kvstore import ServerDied

        try:
            return self.kv.gather()
        except ServerDied as e:
            raise ActorFailure(str(e)) from None

    def _actors(self, kind: str, args: list, make) -> list:
        """One actor per ``args``: an idle one re-initialized with them (one that died meanwhile is replaced), else
        ``make(args)``, a new process."""
        reused = self.idle.take(kind, len(args)) if self.idle is not None else []
        refs = [a.reset.remote(*x) for a, x in zip(reused, args)]
        actors = []
        for i, x in enumerate(args):
            if i < len(refs):
                try:
                    self.ray.get(refs[i])
                    actors.append(reused[i])
                    continue
                except self.ray.exceptions.RayActorError:
                    pass
                except self.ray.exceptions.RayTaskError as e:  # the constructor's own error, as a new actor's
                    raise (e.cause if isinstance(getattr(e, "cause", None), Exception) else e) from None
            actors.append(make(x))
        return actors

    def close(self):
        """The actors back to the idle ones after a run that ended well; killed otherwise (a dead one is in a failed
        attempt's cluster, and the others may be waiting in the middle of a round)."""
        if self.ok and self.idle is not None:
            # waited for: a worker runs its calls on two threads, in no set order, so a release still pending
            # could run after the next run's reset
            released = [a.release.remote() for a in self.workers + self.servers]
            for kind, actors, refs in (("workers", self.workers, released[:len(self.workers)]),
                                       ("servers", self.servers, released[len(self.workers):])):
                for a, ref in zip(actors, refs):
                    try:
                        self.ray.get(ref)
                    except self.ray.exceptions.RayActorError:  # died meanwhile: not kept
                        continue
                    self.idle.give(kind, [a])
            return
        for a in self.workers + self.servers:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001 - already dead
                pass


class _Idle:
    """The worker and server actors of this process's finished local runs, kept for its next run while the Ray
    session lasts. A caller that started Ray itself (a notebook, a test module, the benchmark) and trains several
    times reuses them: re-initializing an actor takes milliseconds, starting its process about a CPU second
    (Ray's and sparsetrain's imports, the kernels loaded from numba's cache). A run that starts its own Ray
    (the CLI) shuts it down at the end, and an actor on a cluster (``--address``) reserves a CPU: neither keeps
    any."""

    _session = None
    _idle: dict = {}

    @classmethod
    def of(cls, ray) -> "_Idle":
        session = ray.get_runtime_context().get_node_id()  # a new local Ray, a new node id
        if cls._session != session:  # the actors of an earlier session are gone with it
            cls._session, cls._idle = session, {}
        return cls()

    def take(self, kind: str, n: int) -> list:
        idle = self._idle.setdefault(kind, [])
        taken, idle[:] = idle[:n], idle[n:]
        return taken

    def give(self, kind: str, actors: list) -> None:
        self._idle.setdefault(kind, []).extend(actors)


def train_distributed(config, output_dir: str | None = None, resume: bool = False, workers: int = 2,
                      servers: int = 1, address: str | None = None, max_restarts: int = 0, reporter=None,
                      engine: str | None = None, num_cpus: int | None = None,
                      object_store_memory: int | None = None, overwrite: bool = False, init_from: str | None = None,
                      init_states: bool = False, _fault: dict | None = None):
    """Train ``config`` with ``workers`` Ray workers and ``servers`` parameter servers.

    ``address``: join that Ray cluster (``ray.init(address=...)``) instead of starting a local one
    with ``num_cpus`` (default: this machine's cores). ``engine``: ``auto``/``compiled``/``graph``
    for the workers' forward/backward (default ``train.engine``). ``max_restarts``: how many times
    a dead actor is answered by restarting from the last checkpoint instead of failing.
    ``output_dir``, ``resume``, ``overwrite``, ``init_from``, ``init_states``: as :func:`sparsetrain.trainer.train`.
    ``_fault``: ``{"worker": r, "epoch": e, "batch": b[, "kill": "server"]}`` makes worker r kill
    itself (or server 0) there, once (for tests). Returns a :class:`sparsetrain.trainer.TrainResult`.
    """
    from .. import random as st_random
    from ..config import make_optimizer
    from ..io import LibSVMIter
    from ..module import Module, load_params
    from ..trainer import (CONFIG_FILE, Reporter, RunDir, TrainResult, ensure_generated, label_transform, make_iter,
                           run_epochs, run_info, target_misses)
    from ..trainer.loop import check_init_from, checkpoint_hint
    from ..trainer.warmstart import warm_start
    from . import blocks as blk
    from .kvstore import ensure_ray, quiet_raylet_notices

    ray = require_ray()
    cfg = config
    mode = cfg.train.kvstore
    if address:
        from .kvstore import check_address

        check_address(address)  # before anything is written: an unreachable cluster fails at once
    engine = engine or cfg.train.engine
    if mode not in ("dist_sync", "dist_async"):
        raise ConfigError(f"train.kvstore: {mode!r} is not distributed; use dist_sync or dist_async "
                          "(or the single-process trainer)")
    if cfg.train.progressive:
        raise ConfigError("train.progressive: progressive validation runs with kvstore local only; turn it off "
                          "for distributed training")
    if workers < 1 or servers < 1:
        raise ConfigError("--workers and --servers must be at least 1")
    if max_restarts < 0:
        raise ConfigError("--max-restarts must be at least 0")
    reporter = reporter or Reporter()
    check_init_from(resume, init_from, init_states)
    with RunDir.open(cfg, output_dir, resume=resume, overwrite=overwrite) as run:
        for text in cfg.notes:
            reporter.note(text)
        if cfg.data.generate is not None:
            ensure_generated(cfg, reporter)
        files = cfg.train_files()
        if len(files) != 1:
            raise ConfigError(f"data.train: distributed training splits one LibSVM file into parts, got {len(files)} "
                              "files; concatenate them")

        # the driver's module: initial values (same seed as one machine), checkpoints and eval
        st_random.seed(cfg.train.seed)
        label_transform(cfg, files[0], note=reporter.note)  # fixes a binary model's label values for everyone
        shapes_iter = LibSVMIter(data_libsvm=files[0], data_shape=(cfg.num_features,),
                                 batch_size=cfg.data.batch_size, data_name=cfg.data_name, label_name=cfg.label_name,
                                 zero_based=cfg.data.zero_based, chunk_size=1 << 16)
        module = Module(cfg.build_symbol(), data_names=[cfg.data_name], label_names=[cfg.label_name])
        module.bind(shapes_iter.provide_data, shapes_iter.provide_label, for_training=True)
        del shapes_iter
        module.init_params(initializer=cfg.initializer())
        initial_states, initial_progress = {}, None
        if init_from and run.state is None:
            # the parameters' and the states' one check, as on one machine (before anything is written)
            warm = warm_start(module, init_from, make_optimizer(cfg) if init_states else None)
            initial_states, initial_progress = warm.states or {}, warm.progress
        initial, _ = module.get_params()
        layout = _layout(module)
        # train.sync_every in batches, once a run (auto estimates the file's rows: a compressed file's first
        # chunk decompressed): every worker, and every restart, trains with this number
        sync_every = blk.batches_per_block(cfg.train.sync_every, cfg.data.batch_size, files[0], workers)
        names = list(module.view().param_names)
        eval_files = cfg.eval_files()
        eval_iter = make_iter(cfg, eval_files, for_training=False)[0] if eval_files else None
        cfg_yaml = cfg.to_yaml(run.path)
        run.begin(cfg_yaml)
        run.wait_for_writes()  # the workers read the config from the run directory
        source = os.path.join(run.path, CONFIG_FILE)

        started = ensure_ray(address, num_cpus, object_store_memory)
        unquiet = quiet_raylet_notices()  # while this run's actors may die
        actor_cpus = 1 if address else 0  # a local run shares the machine's cores; a cluster gets one each
        restarts = 0
        fault = dict(_fault) if _fault else None
        resumed_from = run.start_epoch if run.state is not None else None
        history: list[dict] = []
        announced = False
        try:
            while True:
                # (re)start: parameters and optimizer states from the last complete checkpoint, or the initial values
                if run.state is not None:
                    epoch0 = run.start_epoch
                    arg, _ = load_params(run.params_path(epoch0))
                    with open(run.states_path(epoch0), "rb") as f:
                        opt_states, opt_progress, _ = optimizer_states.loads(f.read(), run.states_path(epoch0))
                    history = run.read_metrics(epoch0)
                else:
                    arg, opt_states, opt_progress, history = initial, initial_states, initial_progress, []
                cluster = None
                try:
                    cluster = _Cluster(ray, cfg, cfg_yaml, source, mode, workers, servers, layout, sync_every, names,
                                       arg, opt_states, engine, actor_cpus, opt_progress, reuse=not started)
                    if not announced:
                        w0 = cluster.info[0]
                        staleness = f", max_staleness {cfg.train.max_staleness}" if mode == "dist_async" else ""
                        data = "in memory after the first epoch" if w0["data"] == "memory" else "streamed every epoch"
                        engine_line = (f"{w0['engine']}, {mode}, {_count(workers, 'worker')}, "
                                       f"{_count(servers, 'server')}, sync_every {w0['sync_every']} batches"
                                       f"{staleness}, workers' parts {data}")
                        info = run_info(cfg, run, engine_line, w0["reason"])
                        reporter.run_start({**info, "resumed_from": resumed_from})
                        announced = True
                    run_epochs(cfg, run, _ClusterEpochs(cluster, cfg, module, fault), reporter, history, eval_iter)
                    cluster.ok = True
                    break
                except ActorFailure as e:
                    if restarts >= max_restarts:
                        hint = "" if max_restarts else "; --max-restarts N recovers automatically"
                        raise ActorFailure(f"distributed run failed: {e}; {checkpoint_hint(run, resume=True)}{hint}"
                                           ) from None
                    restarts += 1
                    fault = None
                    reporter.note(f"{e}; restarting from {run.checkpoint or 'the initial parameters'} "
                                  f"(restart {restarts} of {max_restarts})")
                    run.reload()
                finally:
                    if cluster is not None:
                        cluster.close()
        finally:
            if started:
                import gc

                gc.collect()  # what still holds Ray's buffers lets go of them while Ray is up
                ray.shutdown()
            unquiet()
    missed = target_misses(cfg.train.target, history[-1]) if history else []
    return TrainResult(run.path, history, missed, mode, f"{_count(workers, 'worker')}, {_count(servers, 'server')}",
                       resumed_from, run.checkpoint, dict(cfg.train.target), restarts,
                       best_epoch=run.best.epoch if run.best else None, stopped_early=bool(run.best and run.best.stop))


class _ClusterEpochs:
    """The epoch executor of a distributed run (see :mod:`sparsetrain.trainer.loop`): every worker
    trains on its part; the driver gathers the sharded weights and optimizer states into ``module``."""

    def __init__(self, cluster: _Cluster, cfg, module, fault):
        self.cluster = cluster
        self.cfg = cfg
        self.module = module
        self.fault = fault
        self.epoch_rows = None
        self.batches = 0
        self.batch_rows = f"workers x data.batch_size ({len(cluster.workers)} x {cfg.data.batch_size})"
        self._params = self._states = self._progress = None

    def run_epoch(self, epoch: int, reporter) -> dict:
        record = _run_epoch(self.cluster, self.cfg, epoch, self.fault, reporter)
        self.epoch_rows, self.batches = record["samples"], record["steps"]
        # gather everything before writing anything: a failure here leaves no partial checkpoint
        values_by_key, self._states, self._progress = self.cluster.gather()
        self._params = _to_params(self.module, values_by_key)
        self.module.set_params(self._params)
        return record

    def save(self, prefix: str, epoch: int) -> None:
        from ..fileio import write_changed
        from ..module import save_params

        write_changed(f"{prefix}-symbol.json", self.module.symbol.tojson().encode())
        save_params(f"{prefix}-{epoch:04d}.params", self._params, {})
        optimizer_states.save(f"{prefix}-{epoch:04d}.states", self._states, self._progress)

    def checkpoint_fields(self) -> dict:
        from .. import random as st_random
        from ..trainer.runfiles import checkpoint_state

        return checkpoint_state(st_random.get_state(), kvstore=self.cluster.kv.type, workers=len(self.cluster.workers),
                                servers=len(self.cluster.servers))


def _run_epoch(cluster, cfg, epoch, fault, reporter) -> dict:
    """Every worker's pass over its part; the combined ``metrics.jsonl`` record."""
    poll = None
    if getattr(reporter, "wants_batches", False):
        def poll():
            done = cluster.samples_done(epoch)
            if done >= 0:
                reporter.batch_end(done)

    server_cpu = cluster.server_cpu()
    t0 = time.perf_counter()
    inject = fault if (fault and fault.get("epoch") == epoch) else None
    refs = [w.run_epoch.remote(epoch, inject if inject and inject.get("worker") == r else None)
            for r, w in enumerate(cluster.workers)]
    results = _wait_all(refs, cluster.what, poll)
    seconds = time.perf_counter() - t0
    server_cpu = cluster.server_cpu() - server_cpu
    values = _combine_metrics(cfg, results)
    samples = sum(r["samples"] for r in results)
    steps = max(1, max(r["batches"] for r in results))
    moved = sum(r["bytes_pushed"] + r["bytes_pulled"] for r in results)
    blocks = sum(r["blocks"] for r in results)
    return {"epoch": epoch, **values, "samples": samples, "seconds": round(seconds, 6), "data_seconds": 0.0,
            "engine": cluster.info[0]["engine"], "kvstore": cluster.kv.type, "workers": len(cluster.workers),
            "servers": len(cluster.servers), "steps": steps, "bytes": int(moved), "bytes_per_step": int(moved / steps),
            "sync_every": cluster.info[0]["sync_every"], "blocks": blocks, "batches": sum(r["batches"] for r in results),
            "bytes_per_block": int(moved / max(blocks, 1)),
            # per worker, on average: the epoch's seconds on the worker and the part spent waiting for servers
            "worker_seconds": round(sum(r["seconds"] for r in results) / len(results), 6),
            "wait_seconds": round(sum(r["wait_seconds"] for r in results) / len(results), 6),
            # ... and the part spent in the engine training its blocks (the rest: its side of the exchanges)
            "train_seconds": round(sum(r["train_seconds"] for r in results) / len(results), 6),
            # CPU seconds of the epoch: all workers' processes (training and parser threads), all servers'
            "worker_cpu_seconds": round(sum(r["cpu_seconds"] for r in results), 6),
            "server_cpu_seconds": round(server_cpu, 6)}
