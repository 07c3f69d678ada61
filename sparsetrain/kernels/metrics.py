"""The fused forms of the metrics: plain numba kernels a compiled training step calls per batch.

A metric's catalogue record (:class:`sparsetrain.metric.MetricInfo`, ``fused=``) names its id here
(a key of :data:`FUSED_METRICS`); nothing else decides which metrics fuse. The kernels compute what
the metric classes of :mod:`sparsetrain.metric` compute from a batch's outputs (the numpy
reference the tests compare against), per batch as MXNet does, summed over the batches:

* ``mse`` / ``mae``: the batch's mean squared / absolute error over its elements (``num_inst``
  += 1); ``rmse``: the square root of the batch's mean squared error (``num_inst`` += 1).
* ``accuracy``: correct samples (``num_inst`` += samples); binary (K = 1): ``out > 0.5`` against the
  label, K > 1: ``argmax(out)`` against the class index.
* ``log_loss`` / ``ce``: ``Σ -log(p_true + 1e-12)`` (``num_inst`` += samples): K > 1,
  ``p_true = out[label]``; K = 1, ``-(y log(p + 1e-12) + (1-y) log(1 - p + 1e-12))``.
* ``auc`` (an *epoch* metric, :data:`EPOCH_METRICS`): no per-batch sum; the kernel writes each
  sample's score (the probability of class 1: ``out[i, K - 1]`` for K = 1 or 2) to ``scores`` at the sample's position
  in the epoch order, and the caller hands labels and scores to the metric's own ``update``, so the
  AUC (ties counted half) is computed by :func:`sparsetrain.metric.roc_auc` — one definition.

Metric sums are float64 whatever the weights' dtype. The kernels are ``@njit(cache=True)``; the
one-element formulas are ``inline="always"`` for the single-sample loops.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

M_MSE = 1
M_RMSE = 2
M_MAE = 3
M_ACCURACY = 4
M_LOG_LOSS = 5
M_AUC = 6
NUM_CODES = M_AUC + 1  # size of a scratch vector indexed by code
# The metric formulas by fused id; a metric's catalogue record (``MetricInfo.fused``) names its id.
FUSED_METRICS = {"mse": M_MSE, "rmse": M_RMSE, "mae": M_MAE, "accuracy": M_ACCURACY, "log_loss": M_LOG_LOSS,
                 "auc": M_AUC}
# Fused metrics computed from every score of the epoch (the kernel collects scores), not per-batch sums.
EPOCH_METRICS = frozenset({"auc"})
LOG_EPS = 1e-12

__all__ = ["FUSED_METRICS", "EPOCH_METRICS", "NUM_CODES", "M_MSE", "M_RMSE", "M_MAE", "M_ACCURACY", "M_LOG_LOSS",
           "M_AUC", "metric_elem", "metric_value", "metric_inst", "metric_inst_weighted", "batch_metrics",
           "batch_metrics_weighted"]


@njit(cache=True, inline="always")
def metric_elem(code, out, label):
    """One element's (regression metrics) or one binary sample's contribution to a metric sum.

    In float64 whatever the weights' dtype, as the metric classes compute (numba's ``float()``
    keeps float32: a float32 ``d * d`` overflows where the graph engine's metric does not).
    """
    if code == M_MSE or code == M_RMSE:
        d = np.float64(label) - np.float64(out)
        return d * d
    if code == M_MAE:
        return abs(np.float64(label) - np.float64(out))
    if code == M_ACCURACY:
        pred_class = 1.0 if out > 0.5 else 0.0
        return 1.0 if pred_class == label else 0.0
    if code == M_AUC:
        return 0.0
    y = np.float64(label)
    p = np.float64(out)
    return -(y * math.log(p + LOG_EPS) + (1.0 - y) * math.log(1.0 - p + LOG_EPS))


@njit(cache=True, inline="always")
def metric_value(code, total, n, k_out):
    """A batch's metric from its element sum: MXNet's per-batch mean (sqrt for rmse) or the sum."""
    if code == M_MSE or code == M_MAE:
        return total / (n * k_out)
    if code == M_RMSE:
        return math.sqrt(total / (n * k_out))
    return total


@njit(cache=True, inline="always")
def metric_inst(code, n):
    """``num_inst`` a batch of ``n`` samples adds: 1 for the per-batch means, ``n`` for sample counts,
    0 for an epoch metric (its own ``update`` counts)."""
    if code == M_AUC:
        return 0
    return n if (code == M_ACCURACY or code == M_LOG_LOSS) else 1


@njit(cache=True, inline="always")
def _argmax(out, i, k_out):
    """The class of row ``i``'s largest output (the first of equal ones)."""
    best = 0
    for k in range(1, k_out):
        if out[i, k] > out[i, best]:
            best = k
    return best


@njit(cache=True, inline="always")
def metric_inst_weighted(code, weight_sum, batches_counted):
    """``num_inst`` of weighted samples: their weight sum for the sample counts, the batches of
    positive total weight for the per-batch means, 0 for an epoch metric (as :mod:`sparsetrain.metric`)."""
    if code == M_AUC:
        return 0.0
    return weight_sum if (code == M_ACCURACY or code == M_LOG_LOSS) else batches_counted


@njit(cache=True)
def batch_metrics_weighted(out, label, order, lo, n, metric_codes, values, insts, scores, sample_weight):
    """:func:`batch_metrics` with row weights ``sample_weight[order[lo + i]]`` (as the metric classes'
    ``update(..., sample_weight=)``): a sample count adds ``Σ w·value`` (``insts[m]``: ``Σ w``); mse /
    mae / rmse take the batch's weighted mean of each row's mean error (``insts[m]`` 1, or 0 and
    value 0 for a batch of total weight 0). Returns False if a value is non-finite."""
    k_out = out.shape[1]
    wsum = 0.0
    for i in range(n):
        wsum += sample_weight[order[lo + i]]
    for m in range(metric_codes.shape[0]):
        code = metric_codes[m]
        total = 0.0
        if code == M_AUC:
            for i in range(n):
                scores[lo + i] = out[i, k_out - 1]
        elif k_out > 1 and code == M_ACCURACY:
            for i in range(n):
                if _argmax(out, i, k_out) == int(label[order[lo + i], 0]):
                    total += sample_weight[order[lo + i]]
        elif k_out > 1 and code == M_LOG_LOSS:
            for i in range(n):
                r = order[lo + i]
                total -= sample_weight[r] * math.log(np.float64(out[i, int(label[r, 0])]) + LOG_EPS)
        else:
            for i in range(n):
                r = order[lo + i]
                row = 0.0
                for k in range(k_out):
                    row += metric_elem(code, out[i, k], label[r, k])
                total += sample_weight[r] * (row / k_out if code == M_MSE or code == M_RMSE or code == M_MAE
                                             else row)
        per_batch = code == M_MSE or code == M_RMSE or code == M_MAE
        if per_batch and wsum == 0.0:
            values[m] = 0.0
        elif per_batch:
            values[m] = math.sqrt(total / wsum) if code == M_RMSE else total / wsum
        else:
            values[m] = total
        insts[m] = metric_inst_weighted(code, wsum, 1.0 if wsum > 0.0 else 0.0)
        if not math.isfinite(values[m]):
            return False
    return True


@njit(cache=True)
def batch_metrics(out, label, order, lo, n, metric_codes, values, scores):
    """Each metric's contribution of the batch ``order[lo:lo+n]`` (outputs ``out[:n]``, labels
    ``label[order[lo + i]]``) into ``values[m]``; an epoch metric (``auc``) writes the batch's
    scores to ``scores[lo:lo+n]`` instead (``values[m] = 0``). Returns False if a value is non-finite."""
    k_out = out.shape[1]
    for m in range(metric_codes.shape[0]):
        code = metric_codes[m]
        total = 0.0
        if code == M_AUC:  # the probability of class 1: out[:, 0] (K = 1) or out[:, 1] (softmax, K = 2)
            for i in range(n):
                scores[lo + i] = out[i, k_out - 1]
        elif k_out > 1 and code == M_ACCURACY:
            for i in range(n):
                if _argmax(out, i, k_out) == int(label[order[lo + i], 0]):
                    total += 1.0
        elif k_out > 1 and code == M_LOG_LOSS:
            for i in range(n):
                total -= math.log(np.float64(out[i, int(label[order[lo + i], 0])]) + LOG_EPS)
        else:
            for i in range(n):
                r = order[lo + i]
                for k in range(k_out):
                    total += metric_elem(code, out[i, k], label[r, k])
        values[m] = metric_value(code, total, n, k_out)
        if not math.isfinite(values[m]):
            return False
    return True
