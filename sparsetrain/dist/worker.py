"""``Worker``: trains on part ``rank`` of ``num_workers`` of the LibSVM file (a Ray actor).

The worker trains in **blocks** of ``train.sync_every`` batches (:mod:`.blocks`): before a block
it has the weights and optimizer states of every row the block touches (one call per server),
trains the block locally — :meth:`sparsetrain.module.Module.run_epoch` over the block's batches,
so the compiled engine's fused epoch kernels or generated plan (or the graph engine) run exactly
as in a single process, with the configured optimizer — and pushes what the block changed in
those rows (values and optimizer states) with the number of batches it trained.

The worker notes the values of the rows its block touches most (and of the dense values) at the
middle of the block, so that the push says how saturated each is (``blocks.saturation``: how much
less the second half moved it than the first).

* ``dist_sync``: the push waits for the round (every worker's block), the servers apply the
  workers' changes together, and the same call returns the next block's rows read after it.
  With one worker this is single-process training; with N, each round is N blocks trained from the
  same parameters, whose changes add up on additive rows and are averaged on saturated ones
  (``server.add_round``).
* ``dist_async``: the next block's rows arrive, and the last block's push is answered, while this block
  trains — one call per server and block: push k asks for the rows of block k + 2, read after the push is
  applied (with ``train.max_staleness`` 0 the worker waits for push k's answer, which brings block k + 1's
  rows); the servers apply each change when it arrives, a saturated row's as if trained from its current
  value (``server.apply_push``).
  What this worker pulled before its own last push gets that push applied locally the same way
  (``blocks.with_changes``), so only the other workers' updates are stale, by at most
  ``train.max_staleness`` blocks: server 0 holds a worker that would get further ahead of the slowest.

Metrics are returned as ``(sum_metric, num_inst)`` per metric so that the driver combines them
exactly; ``progress()`` may be called while an epoch runs (the actor has two threads).
"""
from __future__ import annotations

import itertools
import os
import time
from collections import deque

import numpy as np

from ..base import NonFiniteError
from ..engines.base import batch_not_finite, metric_leaves
from . import ReusableActor
from . import blocks as blk


class Worker(ReusableActor):
    def __init__(self, config_yaml: str, source: str, rank: int, num_workers: int, servers, mode: str,
                 layout: dict, sync_every: int, engine: str = "auto"):
        """``sync_every``: the run's batches per block (``train.sync_every`` resolved once by the driver:
        :func:`~.blocks.batches_per_block`, whose ``auto`` estimates the file's rows)."""
        import yaml

        from ..config import config_from_dict, make_optimizer
        from ..io import LibSVMIter
        from ..module import Module
        from ..trainer import label_transform, make_metric
        from .kvstore import DistKVStore

        cfg = config_from_dict(yaml.safe_load(config_yaml), source=source)
        self.cfg = cfg
        self.rank = rank
        self.iter = LibSVMIter(data_libsvm=cfg.train_files()[0], data_shape=(cfg.num_features,),
                               batch_size=cfg.data.batch_size, num_parts=num_workers, part_index=rank,
                               data_name=cfg.data_name, label_name=cfg.label_name, zero_based=cfg.data.zero_based,
                               last_batch_handle=cfg.data.last_batch, max_line_bytes=cfg.data.max_line_bytes,
                               label_transform=label_transform(cfg, cfg.train_files()[0], for_training=False))
        self.module = Module(cfg.build_symbol(), data_names=[cfg.data_name], label_names=[cfg.label_name])
        self.module.bind(self.iter.provide_data, self.iter.provide_label, for_training=True)
        self.module.init_params(initializer=cfg.initializer())  # every value is pulled before use
        # the optimizer of one process: it runs here, on the block's batches; the servers keep its states
        self.module.init_optimizer(optimizer=make_optimizer(cfg))
        view = self.module.view()
        self.names = list(view.param_names)
        self.kv = DistKVStore(mode, servers, rank, num_workers, role="worker")
        for key, (shape, sparse) in layout.items():
            self.kv.declare(key, shape, sparse)
        self.keys = {key: (self.names[key], shape, sparse) for key, (shape, sparse) in layout.items()}
        self.table = blk.LocalRows(view.arrays, view.updater, self.keys)
        self.sync_every = int(sync_every)
        # the part in memory after the first pass (cut into blocks, with the rows each needs), or streamed
        # every epoch (data.cache: stream / disk, a part over the memory budget, last_batch: roll_over)
        from ..trainer import cache_mode

        keep = cache_mode(cfg, cfg.train_files(), parts=num_workers) == "memory" and cfg.data.last_batch != "roll_over"
        self.data_mode = "memory" if keep else "stream"
        self._kept = None
        self.staleness = cfg.train.max_staleness if mode == "dist_async" else None
        self.push_dtype = np.float16 if cfg.train.push_dtype == "float16" else None
        self.metric = make_metric(cfg.metrics)
        self._choose_engine(engine)
        self._progress = (-1, 0, 0)  # epoch, samples, batches

    def _choose_engine(self, engine: str) -> None:
        from ..engines import compiled

        view = self.module.view()
        self.engine, self.engine_reason = self.module.choose_engine(engine, None, self.metric)
        # the csr input whose columns are the rows a block needs, per row_sparse weight
        sources = {}
        if self.engine == "compiled":
            found = compiled.match(view, None, self.metric)
            if found.plan is not None:
                sources = {p.name: found.plan.data for p in found.plan.params if p.row_sparse}
            else:
                sources = {w: x for x, w in found.terms}
        else:
            found = compiled.match_view(view)
            sources = {w: x for x, w in found.terms} if found.ok else {}
        self.sources = sources

    def ping(self) -> dict:
        return {"rank": self.rank, "engine": self.engine, "reason": self.engine_reason, "pid": os.getpid(),
                "sync_every": self.sync_every, "data": self.data_mode}

    def progress(self) -> tuple:
        return getattr(self, "_progress", (-1, 0, 0))  # (a poll may arrive after release)

    def _blocks(self):
        """This epoch's ``(block, blocks.Needs)`` in order, cut and computed on a thread ahead of
        training; with the part in memory, the first complete pass is kept and the later epochs reuse it."""
        if self._kept is not None:
            return iter(self._kept)
        self.iter.reset()
        counter = blk.RowCounter()  # this pass's thread's scratch
        cut = blk.in_order((b, blk.needs(b, self.keys, self.sources, counter))
                           for b in map(blk.join, blk.blocks(self.iter.epoch_pieces(), self.sync_every)))
        if self.data_mode != "memory":
            return blk.ahead(cut)

        def keep():
            kept = []
            for item in cut:
                kept.append(item)
                yield item
            self._kept = kept  # only a whole pass: a failed epoch leaves nothing half kept

        return blk.ahead(keep())

    # -- one block --------------------------------------------------------------------------------
    def _train(self, block, epoch: int, batches_before: int) -> int:
        """Train ``block`` locally (its segments in order), the measured rows' values noted at its middle
        (:meth:`.blocks.LocalRows.snapshot`); the batches it ran."""
        done = 0
        first, second = blk.halves(block)
        for half in (first, second):
            if half is second and first:
                self.table.snapshot()
            for seg in half:
                try:
                    self.module.run_epoch(seg, self.metric, engine=self.engine, epoch=epoch)
                except NonFiniteError as e:
                    batch = batches_before + done + (e.batch or 0)
                    raise batch_not_finite(epoch, batch, who=f"worker {self.rank}: ") from None
                done += seg.batches
        return done

    # -- one epoch --------------------------------------------------------------------------------
    def run_epoch(self, epoch: int, fault: dict | None = None) -> dict:
        """One pass over this worker's part, block by block; ``fault`` (tests) kills this process or a
        server after the pull of the block holding batch ``fault["batch"]``."""
        kv, metric, sync = self.kv, self.metric, self.kv.type == "dist_sync"
        kv.begin_epoch(epoch)
        pushed0, pulled0 = kv.bytes_pushed, kv.bytes_pulled
        metric.reset()
        samples = batches = 0
        self._progress = (epoch, 0, 0)
        start, cpu0 = time.perf_counter(), time.process_time()
        waited = trained = 0.0
        stream = self._blocks()
        # the next blocks and, for each, the call whose answer holds its rows: a block's push asks the servers for
        # the rows of the block ``lead + 1`` after it (one call per server and block); only the first ``lead + 1``
        # blocks are pulled on their own. dist_sync and max_staleness 0: lead 0 (a push's answer, the round or the
        # push applied, is the next block's start); dist_async: lead 1 (block k + 1's rows are on their way while
        # block k trains, and push k's answer, awaited before push k + 1, brings block k + 2's)
        lead = 1 if not sync and self.staleness else 0
        upcoming, answers = deque(), deque()
        for b, item in enumerate(itertools.islice(stream, lead + 1)):
            upcoming.append(item)
            answers.append(kv.pull_block(item[1].rows, b))
        pushed, previous = None, {}
        k = 0
        while upcoming:
            block, need = upcoming.popleft()
            t0 = time.perf_counter()
            got, progress, included = kv.receive(answers.popleft())
            if previous and any(n is not None and n < k - 1 for n in included):
                # a server read the rows before it applied an earlier push than the last one (Ray runs an async
                # actor's calls in no set order), which the last push's changes cannot make up for: read them
                # again, now that the server has answered that push (so the new read follows it)
                got, progress, included = kv.receive(kv.pull_block(need.rows, k))
            waited += time.perf_counter() - t0
            if previous:  # dist_async: a server that answered before it applied this worker's last block
                stale = np.array([n is not None and n < k for n in included])
                got = blk.with_changes(need.rows, got, previous, lambda key, r: stale[kv.owners(key, r)], need.after)
            self.table.load(need.rows, got, progress, need.measured)
            upcoming.extend(itertools.islice(stream, lead + 1 - len(upcoming)))
            steps = sum(seg.batches for seg in block)
            if fault and batches <= fault.get("batch", -1) < batches + steps:
                self._inject(fault)
            t0 = time.perf_counter()
            self._train(block, epoch, batches)
            trained += time.perf_counter() - t0
            changes = self.table.changes(state_values=not sync)
            ask = upcoming[lead][1].rows if len(upcoming) > lead else None
            if sync:
                pushed = kv.push_block(k, changes, steps, rows=ask, dtype=self.push_dtype, rows_block=k + lead + 1)
            else:
                t0 = time.perf_counter()
                if pushed is not None:
                    kv.receive(pushed)  # (its answer, kept, is a later block's rows)
                waited += time.perf_counter() - t0
                staleness = None if self.staleness is None else self.staleness - lead
                pushed = kv.push_block(k, changes, steps, rows=ask, staleness=staleness, dtype=self.push_dtype,
                                       rows_block=k + lead + 1)
                previous = changes
            if ask is not None:
                answers.append(pushed)
            samples += sum(seg.samples for seg in block)
            batches += steps
            self._progress = (epoch, samples, batches)
            k += 1
        if pushed is not None:
            kv.receive(pushed)
        kv.finish_blocks()
        return {"rank": self.rank, "samples": samples, "batches": batches, "blocks": k,
                "seconds": time.perf_counter() - start, "wait_seconds": waited, "train_seconds": trained,
                "cpu_seconds": time.process_time() - cpu0,
                "metric": [(float(m.sum_metric), int(m.num_inst)) for m in metric_leaves(metric)],
                "bytes_pushed": kv.bytes_pushed - pushed0, "bytes_pulled": kv.bytes_pulled - pulled0}

    def _inject(self, fault: dict) -> None:
        if fault.get("kill") == "server":
            import ray

            ray.kill(self.kv.servers[int(fault.get("server", 0))])
            return
        os._exit(1)  # this actor's process dies, as a crashed or preempted node would
