"""The training and inference loops of a Module (MXNet's ``BaseModule``): ``fit``, ``run_epoch``,
``score``, ``predict``, and the choice of engine an epoch runs on.

:class:`~sparsetrain.module.Module` binds, owns the parameters and the optimizer, and runs one
batch (``forward``/``backward``/``update``); these loops drive it over a data iterator. An epoch
runs on the engine :meth:`BaseModule.choose_engine` picks from :mod:`sparsetrain.engines` (the
engine sees the module only through ``Module.view()``), else batch by batch on the graph executor.
"""
from __future__ import annotations

import logging
import time

import numpy as np

from . import engines
from . import metric as metric_mod
from .engines.base import EpochStats, check_metric, check_outputs
from .metric import update_metric
from .ndarray.ndarray import NDArray

__all__ = ["BaseModule", "BatchEndParam"]

log = logging.getLogger("sparsetrain.module")


class BaseModule:
    """The loops over data of :class:`~sparsetrain.module.Module`, its only subclass, whose binding,
    parameters, optimizer and per-batch steps they call."""

    def choose_engine(self, engine="auto", train_data=None, eval_metric=None, progressive=False):
        """Which engine ``run_epoch`` will use with this data and metric, and why: ``(name, reason)``
        (see :func:`sparsetrain.engines.choose`; an engine asked for by name that cannot run the
        model raises :class:`~sparsetrain.base.ConfigError` naming the op, metric or optimizer)."""
        name, reason, _ = engines.choose(engine, self.view(), train_data, eval_metric, progressive)
        self._engine_choice = (name, reason)
        return self._engine_choice

    def run_epoch(self, train_data, eval_metric, engine="auto", batch_end_callback=None, epoch=0,
                  progressive=None, threads: int = 1, deterministic: bool = False) -> EpochStats:
        """One pass over ``train_data`` (reset first): forward, metric, backward, update per batch.

        ``progressive``: an object whose ``update(labels, outputs)`` receives each batch's labels and
        outputs (numpy, padding rows removed) before the batch's update (progressive validation).
        ``threads``: threads training on the compiled engine (Hogwild, or ``deterministic``; see
        :mod:`sparsetrain.engines.compiled.threads`); the graph engine runs one."""
        self._require("binded", "params_initialized", "optimizer_initialized")
        if self._kvstore is not None:  # the fused loops update locally; with a kvstore, the graph
            self._engine_choice = name, _ = ("graph", "a kvstore holds the parameters")
        else:
            name, _ = self.choose_engine(engine, train_data, eval_metric, progressive is not None)
        if name != "graph":
            extra = {"progressive": progressive} if progressive is not None else {}
            if threads > 1:
                extra.update(threads=threads, deterministic=deterministic)
            return engines.get(name).run_epoch(self.view(), train_data, eval_metric,
                                               batch_end_callback=batch_end_callback, epoch=epoch, **extra)
        train_data.reset()
        samples = batches = 0
        data_seconds = 0.0
        start = time.perf_counter()
        it = iter(train_data)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                data_seconds += time.perf_counter() - t0
                break
            data_seconds += time.perf_counter() - t0
            if self._kvstore is not None:
                self.prepare(batch)
            self.forward(batch, is_train=True)
            outputs = self._exec.outputs
            check_outputs(outputs, epoch, batches)  # what the compiled engine checks, batch by batch
            weight = self._sample_weight
            update_metric(eval_metric, batch.label, outputs, weight)
            check_metric(eval_metric, epoch, batches)
            n = batch.data[0].shape[0] - (batch.pad or 0)
            if progressive is not None:
                progressive.update(batch.label[0].asnumpy()[:n], outputs[0].asnumpy()[:n],
                                   None if weight is None else weight[:n])
            self._exec.backward(sample_weight=weight)
            self.update()
            samples += n
            batches += 1
            if batch_end_callback is not None:
                batch_end_callback(samples)
        return EpochStats(samples, batches, time.perf_counter() - start, data_seconds, "graph")

    def fit(self, train_data, eval_data=None, eval_metric="acc", epoch_end_callback=None,
            batch_end_callback=None, kvstore="local", optimizer="sgd", optimizer_params=(("learning_rate", 0.01),),
            eval_end_callback=None, eval_batch_end_callback=None, initializer=None, arg_params=None,
            aux_params=None, allow_missing=False, force_rebind=False, force_init=False, begin_epoch=0,
            num_epoch=None, validation_metric=None, monitor=None, engine="auto"):
        if num_epoch is None:
            raise ValueError("fit() needs num_epoch")
        self.bind(train_data.provide_data, train_data.provide_label, for_training=True, force_rebind=force_rebind)
        self.init_params(initializer=initializer, arg_params=arg_params, aux_params=aux_params,
                         allow_missing=allow_missing, force_init=force_init)
        self.init_optimizer(kvstore=kvstore, optimizer=optimizer, optimizer_params=optimizer_params)
        metric = eval_metric if isinstance(eval_metric, metric_mod.EvalMetric) else metric_mod.create(eval_metric)
        validation_metric = validation_metric or metric
        for epoch in range(begin_epoch, num_epoch):
            metric.reset()
            callback = _batch_callback(batch_end_callback, epoch, metric)
            stats = self.run_epoch(train_data, metric, engine=engine, batch_end_callback=callback, epoch=epoch)
            for name, value in metric.get_name_value():
                log.info("Epoch[%d] Train-%s=%f", epoch, name, value)
            log.info("Epoch[%d] Time cost=%.3f", epoch, stats.seconds)
            if epoch_end_callback is not None:
                arg, aux = self.get_params()
                for cb in epoch_end_callback if isinstance(epoch_end_callback, list) else [epoch_end_callback]:
                    cb(epoch, self._symbol, arg, aux)
            if eval_data is not None:
                for name, value in self.score(eval_data, validation_metric, epoch=epoch):
                    log.info("Epoch[%d] Validation-%s=%f", epoch, name, value)

    def score(self, eval_data, eval_metric, num_batch=None, batch_end_callback=None, score_end_callback=None,
              reset=True, epoch=0, sparse_row_id_fn=None):
        self._require("binded", "params_initialized")
        metric = eval_metric if isinstance(eval_metric, metric_mod.EvalMetric) else metric_mod.create(eval_metric)
        if reset:
            eval_data.reset()
        metric.reset()
        for i, batch in enumerate(eval_data):
            if num_batch is not None and i == num_batch:
                break
            self.forward(batch, is_train=False)
            outputs = self._exec.outputs
            weight = self._sample_weight
            if batch.pad:
                keep = batch.data[0].shape[0] - batch.pad
                outputs = [NDArray(o._data[:keep]) for o in outputs]
                labels = [NDArray(lb._data[:keep]) for lb in batch.label]
                weight = None if weight is None else weight[:keep]
            else:
                labels = batch.label
            update_metric(metric, labels, outputs, weight)
        return metric.get_name_value()

    def iter_predict(self, eval_data, num_batch=None, reset=True):
        self._require("binded", "params_initialized")
        if reset:
            eval_data.reset()
        for i, batch in enumerate(eval_data):
            if num_batch is not None and i == num_batch:
                break
            self.forward(batch, is_train=False)
            keep = batch.data[0].shape[0] - (batch.pad or 0)
            yield [NDArray(o._data[:keep].copy()) for o in self._exec.outputs], i, batch

    def predict(self, eval_data, num_batch=None, merge_batches=True, reset=True, always_output_list=False):
        outs = [o for o, _, _ in self.iter_predict(eval_data, num_batch, reset)]
        if not outs:
            return []
        if not merge_batches:
            return outs
        merged = [NDArray(np.concatenate([o[k]._data for o in outs])) for k in range(len(outs[0]))]
        return merged if (always_output_list or len(merged) > 1) else merged[0]


class BatchEndParam:
    """What a ``batch_end_callback`` receives (MXNet's ``BatchEndParam``)."""

    __slots__ = ("epoch", "nbatch", "eval_metric", "locals")

    def __init__(self, epoch, nbatch, eval_metric):
        self.epoch = epoch
        self.nbatch = nbatch
        self.eval_metric = eval_metric
        self.locals = None


def _batch_callback(batch_end_callback, epoch, metric):
    """``run_epoch``'s progress callback, calling MXNet-style callbacks with a ``BatchEndParam``."""
    if batch_end_callback is None:
        return None
    callbacks = batch_end_callback if isinstance(batch_end_callback, list) else [batch_end_callback]

    def callback(samples):
        for cb in callbacks:
            cb(BatchEndParam(epoch, samples, metric))

    return callback
