"""The epoch loop both compiled runners share (the hand kernels' :class:`~.runner.LinearEpochRunner` and the
generated plans' :mod:`.plan_runner`): :func:`run_in_chunks` makes an epoch's kernel calls of :data:`CHUNK_ROWS`
rows, each returning an :class:`EpochResult`, whose metrics and non-finite batch :func:`account` takes in,
and scans the trained parameters for NaN/inf once at the epoch's end (:func:`check_params`, also a streamed
epoch's end); :func:`row_weights` checks the sample weights every runner takes."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...base import NonFiniteError, ShapeError
from ...kernels.metrics import EPOCH_METRICS, FUSED_METRICS, M_AUC
from ...metric import info as metric_info
from ...metric import info_of, roc_auc, update_metric
from ...optimizer_buffers import weight_buffer
from ..base import EpochStats, batch_not_finite, metric_leaves

# Rows handed to a kernel per call (both runners: hand kernels and generated plans): bounds the
# progress-report interval, not the speed.
CHUNK_ROWS = 65536


def _metric_means(names, sums, counts, labels=None, scores=None, weights=None) -> dict:
    """``{name: sum / count}`` (NaN where nothing was counted); an epoch metric (``auc``) from the
    collected ``labels`` and ``scores`` (and sample ``weights``)."""
    out = {}
    for name, s, c in zip(names, sums, counts):
        if FUSED_METRICS.get(metric_info(name).fused) == M_AUC:
            out[name] = roc_auc(labels, scores, weights) if labels is not None and labels.size else float("nan")
        else:
            out[name] = float(s / c) if c else float("nan")
    return out


@dataclass
class EpochResult:
    """What one :meth:`~.runner.LinearEpochRunner.fit_epoch` / ``score`` call did.

    ``metrics`` maps each requested metric name to ``sum / num_inst`` over the batches run;
    ``nonfinite_batch`` is the index (in ``batch_ptr``) of the batch whose prediction or loss was
    NaN/inf — training stopped there, before applying it (the parameters are scanned once an epoch,
    by :func:`check_params`).
    """

    metric_names: list
    metric_sums: np.ndarray
    metric_counts: np.ndarray
    num_batches: int
    num_samples: int
    nonfinite_batch: int | None = None
    labels: np.ndarray | None = None  # with an epoch metric (auc): the label and score of every sample run
    scores: np.ndarray | None = None
    weights: np.ndarray | None = None  # and its sample weight (None: unweighted)

    @property
    def metrics(self) -> dict:
        return _metric_means(self.metric_names, self.metric_sums, self.metric_counts, self.labels, self.scores,
                             self.weights)

    @property
    def ok(self) -> bool:
        return self.nonfinite_batch is None

    @classmethod
    def combine(cls, results: Sequence["EpochResult"]) -> "EpochResult":
        """One result for consecutive calls over parts of an epoch (e.g. streamed chunks)."""
        first = results[0]
        out = cls(list(first.metric_names), sum(r.metric_sums for r in results),
                  sum(r.metric_counts for r in results), 0, 0)
        for r in results:
            out.num_batches += r.num_batches
            out.num_samples += r.num_samples
            if r.nonfinite_batch is not None and out.nonfinite_batch is None:
                out.nonfinite_batch = r.nonfinite_batch
        if first.scores is not None:
            out.labels = np.concatenate([r.labels for r in results])
            out.scores = np.concatenate([r.scores for r in results])
            if any(r.weights is not None for r in results):
                out.weights = np.concatenate([np.ones(r.labels.size) if r.weights is None else r.weights
                                              for r in results])
        return out


def row_weights(sample_weight, nrows: int):
    """``sample_weight`` as every compiled runner takes it: float64, one per row, C-contiguous (None: unweighted).
    Raises :class:`~sparsetrain.base.ShapeError` when the count is not one per row."""
    if sample_weight is None:
        return None
    sw = np.ascontiguousarray(sample_weight, dtype=np.float64).reshape(-1)
    if sw.shape[0] != nrows:
        raise ShapeError(f"sample_weight has {sw.shape[0]} values for {nrows} rows")
    return sw


def account(leaves, res: EpochResult, epoch: int, first_batch: int) -> None:
    """Add a kernel call's metrics to the metric ``leaves`` (sums; an epoch metric — auc — updates
    from the collected labels and scores); raise where a batch went non-finite (``first_batch``: the
    call's first batch in the epoch). Both compiled runners account here."""
    for leaf, s, c in zip(leaves, res.metric_sums, res.metric_counts):  # the batches that ran
        if info_of(leaf).fused in EPOCH_METRICS:
            update_metric(leaf, [res.labels], [res.scores], res.weights)
            continue
        leaf.sum_metric += float(s)
        leaf.num_inst += int(c) if float(c).is_integer() else float(c)  # a weight sum may be fractional
    if res.nonfinite_batch is not None:
        raise batch_not_finite(epoch, first_batch + res.nonfinite_batch)


def check_params(view, indices, epoch: int, batches: int) -> None:
    """The compiled engine's one parameter scan, at the end of an epoch of ``batches`` batches (in memory,
    a generated plan's, a streamed one's after its last piece): raise :class:`~sparsetrain.base.NonFiniteError`
    naming those of the trained parameters ``indices`` (optimizer indices of ``view``) that hold a NaN or
    inf. O(size of the parameters); an epoch without batches changed nothing and is not scanned."""
    if not batches:
        return
    bad = nonfinite(indices, [weight_buffer(view.arrays[view.param_names[i]]) for i in indices])
    if bad:
        names = [view.param_names[i] for i in bad]
        raise NonFiniteError(f"parameters {names} became non-finite during epoch {epoch}", epoch=epoch,
                             batch=batches - 1)


def nonfinite(indices, bufs) -> list:
    """Those of ``indices`` whose buffer (``bufs``, in the same order) holds a NaN or inf."""
    return [i for i, buf in zip(indices, bufs) if not np.isfinite(buf).all()]


def run_in_chunks(view, train_data, metric, fit_chunk, batch_end_callback=None, epoch=0, params=None) -> EpochStats:
    """One epoch of ``train_data`` (an iterator with ``epoch_rows``: in memory, or a streamed piece) through
    a compiled runner, in calls of about :data:`CHUNK_ROWS` rows — the one epoch loop of both runners.

    ``fit_chunk(order, batch_ptr, real) -> EpochResult`` trains one call's batches: ``order`` their
    rows, ``batch_ptr`` their boundaries within it, ``real`` its rows that are not padding. Each result's
    metrics go to ``metric``'s leaves (:func:`account`, which raises for a non-finite batch);
    ``batch_end_callback`` gets the rows done so far. ``params``: the optimizer indices of the trained
    parameters, scanned at the end (:func:`check_params`), or None (a streamed piece: its epoch's end scans)."""
    start = time.perf_counter()
    train_data.reset()
    order, batch_ptr, pad = train_data.epoch_rows()
    data_seconds = time.perf_counter() - start
    leaves = metric_leaves(metric)
    batch_size = int(batch_ptr[1] - batch_ptr[0]) if len(batch_ptr) > 1 else 1
    per_call = max(1, CHUNK_ROWS // max(batch_size, 1))
    num_batches = len(batch_ptr) - 1
    for b0 in range(0, num_batches, per_call):
        b1 = min(num_batches, b0 + per_call)
        lo, hi = int(batch_ptr[b0]), int(batch_ptr[b1])
        real = hi - (pad if b1 == num_batches else 0)
        bounds = batch_ptr[b0:b1 + 1]
        res = fit_chunk(order[lo:hi], bounds - lo if lo else bounds, real - lo)
        account(leaves, res, epoch, b0)
        if batch_end_callback is not None:
            batch_end_callback(real)
    if params is not None:
        check_params(view, params, epoch, num_batches)
    return EpochStats(len(order) - pad, num_batches, time.perf_counter() - start, data_seconds, "compiled")
