"""``Worker``: trains on part ``rank`` of ``num_workers`` of the LibSVM file (a Ray actor).

Per step, one round trip per server: the gradients of this batch are pushed and, in the same
call (:meth:`~.kvstore.DistKVStore.push_pull`), the rows the *next* batch needs are pulled —
only the ``row_sparse`` rows whose columns occur in that batch, plus the (small) dense
parameters. In ``dist_sync`` the pull returns after every worker's gradient for the step was
applied, so all workers see the same parameters at every step.

The forward/backward of a batch runs either on the compiled engine — the fused linear-family
kernel :meth:`~sparsetrain.engines.compiled.runner.LinearEpochRunner.batch_gradients`, when
the model matches its pattern — or on the graph engine (``Module.forward``/``backward``).
Metrics are returned as ``(sum_metric, num_inst)`` per metric so that the driver combines them
exactly; ``progress()`` may be called while an epoch runs (the actor has two threads).
"""
from __future__ import annotations

import math
import os
import time

import numpy as np

from ..engines.base import batch_not_finite, metric_leaves
from ..metric import update_metric
from ..ndarray import INDEX_DTYPE, NDArray, RowSparseNDArray


class Worker:
    def __init__(self, config_yaml: str, source: str, rank: int, num_workers: int, servers, mode: str,
                 layout: dict, engine: str = "auto"):
        import yaml

        from ..config import config_from_dict
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
        view = self.module.view()
        self.names = list(view.param_names)
        self.args = view.arrays
        self.kv = DistKVStore(mode, servers, rank, num_workers, role="worker")
        for key, (shape, sparse) in layout.items():
            self.kv.declare(key, shape, sparse)
        self.metric = make_metric(cfg.metrics)
        self._choose_engine(engine)
        self._progress = (-1, 0, 0)  # epoch, samples, batches

    def _choose_engine(self, engine: str) -> None:
        from ..engines import compiled

        self.runner = None
        view = self.module.view()
        match = compiled.match_linear(view, None, self.metric)  # workers push the linear kernels' gradients
        names, why = compiled.fused_metric_names(self.metric, per_batch=True)
        if engine == "graph":
            self.engine, self.engine_reason = "graph", "asked for"
        elif match.ok and names is not None:
            self.runner, self.match, self.fused_metrics = compiled.prepare(view, match), match, names
            self.engine, self.engine_reason = "compiled", match.reason
        elif engine == "compiled":
            from ..base import ConfigError

            raise ConfigError(f"train.engine: the compiled engine cannot run this model on a worker: "
                              f"{match.reason if not match.ok else why}")
        else:
            self.engine, self.engine_reason = "graph", match.reason if not match.ok else why
        # the rows of each row_sparse weight a batch needs: the columns of the csr input it multiplies
        terms = self.match.terms if self.runner is not None else []
        if not terms:
            found = compiled.match_view(view)
            terms = found.terms if found.ok else []
        self.row_source = {w: x for x, w in terms}

    def ping(self) -> dict:
        return {"rank": self.rank, "engine": self.engine, "reason": self.engine_reason, "pid": os.getpid()}

    def progress(self) -> tuple:
        return self._progress

    # -- one step ---------------------------------------------------------------------------------
    def _request(self, batch) -> dict:
        """``{key: rows}`` to pull for ``batch``: its csr columns for each row_sparse weight
        (every row when the weight is not multiplied by a csr input), ``None`` (all) for dense ones."""
        inputs = dict(zip(self.module.data_names, batch.data))
        request = {}
        for key, name in enumerate(self.names):
            w = self.args[name]
            if w.stype != "row_sparse":
                request[key] = None
                continue
            x = inputs.get(self.row_source.get(name))
            if x is not None and x.stype == "csr":
                request[key] = np.unique(x._indices).astype(INDEX_DTYPE, copy=False)
            else:
                request[key] = np.arange(w.shape[0], dtype=INDEX_DTYPE)
        return request

    def _write(self, request: dict, values: dict) -> None:
        from ..optimizer import weight_buffer

        for key, got in values.items():
            buf = weight_buffer(self.args[self.names[key]])
            rows = request[key]
            if rows is None:
                buf[...] = got.reshape(buf.shape)
            else:
                buf[rows] = got

    def _gradients(self, batch):
        """``(keys, gradients, finite)`` of one batch; updates the metric. A batch with importance
        weights runs on the graph engine (the fused kernels do not apply them)."""
        weight = getattr(batch, "sample_weight", None)
        if self.runner is not None and weight is None:
            return self._compiled_gradients(batch)
        mod = self.module
        mod.forward(batch, is_train=True)
        outputs = mod.get_outputs()
        if not all(np.isfinite(out._data).all() for out in outputs):
            return [], [], False
        update_metric(self.metric, batch.label, outputs, weight)
        if not all(math.isfinite(leaf.sum_metric) for leaf in metric_leaves(self.metric)):
            return [], [], False  # as the compiled kernels and Module.run_epoch: a metric overflow stops too
        mod.backward()
        grads = mod.view().grads
        keys = [k for k, n in enumerate(self.names) if grads.get(n) is not None]
        return keys, [grads[self.names[k]] for k in keys], True

    def _compiled_gradients(self, batch):
        match = self.match
        inputs = dict(zip(self.module.data_names, batch.data))
        labels = dict(zip(self.module.label_names, batch.label))
        weights = [self.args[w] for _, w in match.terms]
        bias = self.args[match.bias] if match.bias else None
        g = self.runner.batch_gradients([inputs[x] for x, _ in match.terms], labels[match.label], weights, bias,
                                        metrics=self.fused_metrics)
        if not g.finite:
            return [], [], False
        for leaf, s, c in zip(metric_leaves(self.metric), g.metric_sums, g.metric_counts):
            leaf.sum_metric += float(s)
            leaf.num_inst += int(c)
        keys, values = [], []
        for (_, w), rows, vals in zip(match.terms, g.rows, g.values):
            keys.append(self.names.index(w))
            values.append(RowSparseNDArray(vals, rows, self.args[w].shape))
        if match.bias:
            keys.append(self.names.index(match.bias))
            values.append(NDArray(g.bias))
        return keys, values, True

    # -- one epoch --------------------------------------------------------------------------------
    def run_epoch(self, epoch: int, fault: dict | None = None) -> dict:
        """One pass over this worker's part; ``fault`` (tests) kills this process or a server."""
        kv, metric = self.kv, self.metric
        kv.begin_epoch(epoch)
        pushed0, pulled0 = kv.bytes_pushed, kv.bytes_pulled
        metric.reset()
        self.iter.reset()
        samples = batches = 0
        self._progress = (epoch, 0, 0)
        start = time.perf_counter()
        batch = next(self.iter, None)
        if batch is not None:  # the first batch's rows (later ones come back with each push)
            request = self._request(batch)
            self._write(request, kv._fetch(list(request.items())))
        while batch is not None:
            if fault and fault.get("batch") == batches:
                self._inject(fault)
            keys, grads, finite = self._gradients(batch)
            if not finite:
                raise batch_not_finite(epoch, batches, who=f"worker {self.rank}: ")
            following = next(self.iter, None)
            request = self._request(following) if following is not None else {}
            self._write(request, kv.push_pull(keys, grads, request))
            samples += batch.data[0].shape[0] - (batch.pad or 0)
            batches += 1
            self._progress = (epoch, samples, batches)
            batch = following
        kv.finish_epoch()
        return {"rank": self.rank, "samples": samples, "batches": batches,
                "seconds": time.perf_counter() - start,
                "metric": [(float(m.sum_metric), int(m.num_inst)) for m in metric_leaves(metric)],
                "bytes_pushed": kv.bytes_pushed - pushed0, "bytes_pulled": kv.bytes_pulled - pulled0}

    def _inject(self, fault: dict) -> None:
        if fault.get("kill") == "server":
            import ray

            ray.kill(self.kv.servers[int(fault.get("server", 0))])
            return
        os._exit(1)  # this actor's process dies, as a crashed or preempted node would
