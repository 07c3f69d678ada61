"""The epoch loop both compiled runners share (the hand kernels' :class:`~.runner.LinearEpochRunner` and the
generated plans' :mod:`.plan_runner`): :func:`run_in_chunks` makes an epoch's kernel calls of :data:`CHUNK_ROWS`
rows, each returning an :class:`EpochResult`, whose metrics and non-finite batches or parameters :func:`account`
takes in; :func:`row_weights` checks the sample weights every runner takes."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ...base import NonFiniteError, ShapeError
from ...kernels.metrics import EPOCH_METRICS, FUSED_METRICS, M_AUC
from ...metric import info as metric_info
from ...metric import info_of, roc_auc, update_metric
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
    NaN/inf — training stopped there, before applying it; ``nonfinite_params`` names parameters
    (by optimizer index) that hold NaN/inf after the last batch.
    """

    metric_names: list
    metric_sums: np.ndarray
    metric_counts: np.ndarray
    num_batches: int
    num_samples: int
    nonfinite_batch: int | None = None
    nonfinite_params: list = field(default_factory=list)
    labels: np.ndarray | None = None  # with an epoch metric (auc): the label and score of every sample run
    scores: np.ndarray | None = None
    weights: np.ndarray | None = None  # and its sample weight (None: unweighted)

    @property
    def metrics(self) -> dict:
        return _metric_means(self.metric_names, self.metric_sums, self.metric_counts, self.labels, self.scores,
                             self.weights)

    @property
    def ok(self) -> bool:
        return self.nonfinite_batch is None and not self.nonfinite_params

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
            out.nonfinite_params.extend(p for p in r.nonfinite_params if p not in out.nonfinite_params)
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


def account(view, leaves, res: EpochResult, epoch: int, first_batch: int, num_batches: int) -> None:
    """Add a kernel call's metrics to the metric ``leaves`` (sums; an epoch metric — auc — updates
    from the collected labels and scores); raise where a batch or a parameter went non-finite
    (``first_batch``: the call's first batch in the epoch). Both compiled runners account here."""
    for leaf, s, c in zip(leaves, res.metric_sums, res.metric_counts):  # the batches that ran
        if info_of(leaf).fused in EPOCH_METRICS:
            update_metric(leaf, [res.labels], [res.scores], res.weights)
            continue
        leaf.sum_metric += float(s)
        leaf.num_inst += int(c) if float(c).is_integer() else float(c)  # a weight sum may be fractional
    if res.nonfinite_batch is not None:
        raise batch_not_finite(epoch, first_batch + res.nonfinite_batch)
    if res.nonfinite_params:
        raise params_not_finite(view, res.nonfinite_params, epoch, num_batches - 1)


def params_not_finite(view, indices, epoch: int, batch: int) -> NonFiniteError:
    """The error for the parameters ``indices`` (optimizer indices) found NaN/inf after ``batch``, the
    epoch's last (the compiled runners scan the parameters they train once an epoch, at its end)."""
    bad = [view.param_names[i] for i in indices]
    return NonFiniteError(f"parameters {bad} became non-finite during epoch {epoch}", epoch=epoch, batch=batch)


def nonfinite(indices, bufs) -> list:
    """Those of ``indices`` whose buffer (``bufs``, in the same order) holds a NaN or inf: the one
    parameter scan of the compiled runners (an in-memory epoch's, a plan's, a streamed epoch's)."""
    return [i for i, buf in zip(indices, bufs) if not np.isfinite(buf).all()]


def run_in_chunks(view, train_data, metric, fit_chunk, batch_end_callback=None, epoch=0) -> EpochStats:
    """One epoch of ``train_data`` (an iterator with ``epoch_rows``: in memory, or a streamed piece) through
    a compiled runner, in calls of about :data:`CHUNK_ROWS` rows — the one epoch loop of both runners.

    ``fit_chunk(order, batch_ptr, real, last) -> EpochResult`` trains one call's batches: ``order`` their
    rows, ``batch_ptr`` their boundaries within it, ``real`` its rows that are not padding, ``last``
    whether it is the epoch's last call. Each result's metrics go to ``metric``'s leaves
    (:func:`account`, which raises for a non-finite batch or parameter); ``batch_end_callback`` gets the
    rows done so far."""
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
        last = b1 == num_batches
        real = hi - (pad if last else 0)
        res = fit_chunk(order[lo:hi], batch_ptr[b0:b1 + 1] - lo, real - lo, last)
        account(view, leaves, res, epoch, b0, num_batches)
        if batch_end_callback is not None:
            batch_end_callback(real)
    return EpochStats(len(order) - pad, num_batches, time.perf_counter() - start, data_seconds, "compiled")
