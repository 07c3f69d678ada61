"""The compiled engine: whole epochs of the linear family in fused numba kernels.

``match_module`` decides whether a bound Module can run here (and says why not);
``run_epoch`` runs one epoch through :class:`~.kernels.LinearEpochRunner`, sharing the Module's
parameter arrays and optimizer states with the graph engine, so engines can be switched between
epochs and checkpoints see one set of states.
"""
from __future__ import annotations

import time

import numpy as np

from ...base import NonFiniteError
from ...metric import info_of
from ..base import EpochStats, batch_not_finite, metric_leaves
from .kernels import FUSED_METRICS, LinearEpochRunner, optimizer_fusable
from .matcher import Match, match_optimizer, match_symbol

# Rows handed to the kernel per call: bounds the progress-report interval, not the speed.
CHUNK_ROWS = 65536


def _fused_metric_names(metric):
    """Kernel metric names for ``metric`` (a metric or composite), or the reason there are none."""
    names = []
    for leaf in metric_leaves(metric):
        record = info_of(leaf)
        if record is None or record.fused not in FUSED_METRICS:
            return None, f"metric {getattr(leaf, 'name', type(leaf).__name__)!r} has no fused implementation"
        name = record.name
        if record.fused == "accuracy" and getattr(leaf, "axis", 1) != 1:
            return None, "accuracy with axis != 1"
        names.append(name)
    return names, ""


def _iterator_reason(train_data, match: Match) -> str | None:
    if train_data is None:
        return None
    if not hasattr(train_data, "epoch_rows"):
        return f"the data iterator {type(train_data).__name__} cannot hand over whole epochs (use NDArrayIter)"
    names = dict(getattr(train_data, "data", []))
    for x, _ in match.terms:
        if x not in names or names[x].stype != "csr":
            return f"the iterator does not hold data {x!r} as csr"
    return None


def match_module(mod, train_data=None, metric=None) -> Match:
    """Whether ``mod`` (bound, with an optimizer) can train on the compiled engine, and why."""
    ex = mod._exec
    if ex is None:
        return Match(False, "the module is not bound")
    stypes = {n.name: ex.plan.stypes[(n.uid, 0)] for n in ex.plan.args}
    match = match_symbol(mod.symbol, mod.data_names, mod.label_names, mod._param_names, stypes)
    if not match.ok:
        return match
    if mod.optimizer is not None:
        why = match_optimizer(mod.optimizer)
        if why is None:
            rsp = [ex.grad_dict[w].stype == "row_sparse" for _, w in match.terms]
            idx = [mod._param_names.index(w) for _, w in match.terms]
            ok, why = optimizer_fusable(mod.optimizer, rsp, idx)
            why = None if ok else why
        if why:
            return Match(False, why)
    why = _iterator_reason(train_data, match)
    if why:
        return Match(False, why)
    if metric is not None:
        names, why = _fused_metric_names(metric)
        if names is None:
            return Match(False, why)
        k = ex.arg_dict[match.terms[0][1]].shape[1]
        # a K-output LogisticRegressionOutput is K independent binary outputs (multi-label); the
        # kernel's accuracy / log_loss / ce read K > 1 as K classes, so only elementwise metrics fuse
        class_metrics = [n for n in names if n not in ("mse", "mae", "rmse")]
        if match.output == "logistic" and k > 1 and class_metrics:
            return Match(False, f"metric {class_metrics[0]!r} on a {k}-output (multi-label) "
                                "LogisticRegressionOutput has no fused implementation")
    return match


def _runner(mod, match: Match) -> LinearEpochRunner:
    cached = getattr(mod, "_compiled_runner", None)
    if cached is not None and cached[0] == match.reason:
        return cached[1]
    args = mod._exec.arg_dict
    first_w = args[match.terms[0][1]]
    params = match.loss_params
    runner = LinearEpochRunner(
        {"linear": "LinearRegressionOutput", "logistic": "LogisticRegressionOutput",
         "mae": "MAERegressionOutput", "softmax": "SoftmaxOutput"}[match.output],
        [args[w].shape[0] for _, w in match.terms], first_w.shape[1],
        has_bias=match.bias is not None, grad_scale=float(params.get("grad_scale", 1.0)),
        normalization=params.get("normalization", "null"), dtype=first_w.dtype)
    mod._compiled_runner = (match.reason, runner)
    return runner


def run_epoch(mod, train_data, metric, batch_end_callback=None, epoch=0):
    """One training epoch of ``mod`` over ``train_data`` (an iterator with ``epoch_rows``)."""
    match = match_module(mod, train_data, metric)
    if not match.ok:
        raise ValueError(f"the compiled engine cannot run this module: {match.reason}")
    runner = _runner(mod, match)
    names, _ = _fused_metric_names(metric)
    start = time.perf_counter()
    train_data.reset()
    order, batch_ptr, pad = train_data.epoch_rows()
    data_seconds = time.perf_counter() - start
    sources = dict(train_data.data)
    terms = [sources[x] for x, _ in match.terms]
    labels = dict(train_data.label)
    label = labels.get(match.label)
    args = mod._exec.arg_dict
    weights = [args[w] for _, w in match.terms]
    bias = args[match.bias] if match.bias else None
    indices = [mod._param_names.index(w) for _, w in match.terms]
    if match.bias:
        indices.append(mod._param_names.index(match.bias))
    batch_size = int(batch_ptr[1] - batch_ptr[0]) if len(batch_ptr) > 1 else 1
    per_call = max(1, CHUNK_ROWS // max(batch_size, 1))
    num_batches = len(batch_ptr) - 1
    results = []
    done = 0
    for b0 in range(0, num_batches, per_call):
        b1 = min(num_batches, b0 + per_call)
        lo, hi = int(batch_ptr[b0]), int(batch_ptr[b1])
        res = runner.fit_epoch(terms, label, order[lo:hi], batch_ptr[b0:b1 + 1] - lo, weights, bias,
                               mod._updater, indices, metrics=names, check_params=(b1 == num_batches))
        results.append(res)
        if res.nonfinite_batch is not None:
            raise batch_not_finite(epoch, b0 + res.nonfinite_batch)
        if res.nonfinite_params:
            bad = [mod._param_names[i] for i in res.nonfinite_params]
            raise NonFiniteError(f"parameters {bad} became non-finite during epoch {epoch}", epoch=epoch,
                                 batch=num_batches - 1)
        done = hi - (pad if b1 == num_batches else 0)
        if batch_end_callback is not None:
            batch_end_callback(done)
    for leaf, s, c in zip(metric_leaves(metric), sum(r.metric_sums for r in results),
                          sum(r.metric_counts for r in results)):
        leaf.sum_metric += float(s)
        leaf.num_inst += int(c)
    samples = len(order) - pad
    return EpochStats(samples, num_batches, time.perf_counter() - start, data_seconds, "compiled")


__all__ = ["match_module", "run_epoch", "Match", "LinearEpochRunner"]
