"""The compiled engine: whole epochs of the linear family in fused numba kernels.

An engine of :mod:`sparsetrain.engines`: ``match(view, train_data, metric)`` decides whether a
bound Module (seen through its :class:`~sparsetrain.engines.base.ModuleView`) can run here and
says why not; ``run_epoch(view, ...)`` runs one epoch through :class:`~.runner.LinearEpochRunner`,
sharing the Module's parameter arrays and optimizer states with the graph engine, so engines can
be switched between epochs and checkpoints see one set of states. ``prepare(view, match)`` and
``fused_metric_names(metric)`` serve callers that drive the runner themselves (distributed
workers push ``LinearEpochRunner.batch_gradients``).
"""
from __future__ import annotations

import time

from ...base import NonFiniteError
from ...metric import info_of
from ..base import EpochStats, ModuleView, batch_not_finite, metric_leaves
from .kernels import FUSED_METRICS
from .matcher import Match, match_optimizer, match_symbol
from .runner import LinearEpochRunner, optimizer_fusable

# Rows handed to the kernel per call: bounds the progress-report interval, not the speed.
CHUNK_ROWS = 65536


def fused_metric_names(metric):
    """``(names, "")``: the catalogue names of ``metric``'s leaves (a metric or composite), all with a
    fused kernel formula; or ``(None, reason)``."""
    names = []
    for leaf in metric_leaves(metric):
        record = info_of(leaf)
        if record is None or record.fused not in FUSED_METRICS:
            return None, f"metric {getattr(leaf, 'name', type(leaf).__name__)!r} has no fused implementation"
        if record.fused == "accuracy" and getattr(leaf, "axis", 1) != 1:
            return None, "accuracy with axis != 1"
        names.append(record.name)
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


def match_view(view: ModuleView) -> Match:
    """Whether the bound model's graph has the linear pattern (optimizer, data and metric aside)."""
    return match_symbol(view.symbol, view.data_names, view.label_names, view.param_names, view.arg_stypes)


def match(view: ModuleView, train_data=None, metric=None) -> Match:
    """Whether the bound model (with its optimizer) can train on the compiled engine, and why."""
    found = match_view(view)
    if not found.ok:
        return found
    if view.optimizer is not None:
        why = match_optimizer(view.optimizer)
        if why is None:
            rsp = [view.grad_stypes.get(w) == "row_sparse" for _, w in found.terms]
            ok, why = optimizer_fusable(view.optimizer, rsp, [view.index(w) for _, w in found.terms])
            why = None if ok else why
        if why:
            return Match(False, why)
    why = _iterator_reason(train_data, found)
    if why:
        return Match(False, why)
    if metric is not None:
        names, why = fused_metric_names(metric)
        if names is None:
            return Match(False, why)
        k = view.arrays[found.terms[0][1]].shape[1]
        # a K-output LogisticRegressionOutput is K independent binary outputs (multi-label); the
        # kernel's accuracy / log_loss / ce read K > 1 as K classes, so only elementwise metrics fuse
        per_class = [leaf.name for leaf in metric_leaves(metric) if info_of(leaf).fused in ("accuracy", "log_loss")]
        if found.output == "LogisticRegressionOutput" and k > 1 and per_class:
            return Match(False, f"metric {per_class[0]!r} on a {k}-output (multi-label) "
                                "LogisticRegressionOutput has no fused implementation")
    return found


def prepare(view: ModuleView, found: Match) -> LinearEpochRunner:
    """The runner for ``found`` (a successful :func:`match`), kept in ``view.engine_state``."""
    cached = view.engine_state.get("compiled")
    if cached is not None and cached[0] == found.reason:
        return cached[1]
    first_w = view.arrays[found.terms[0][1]]
    params = found.loss_params
    runner = LinearEpochRunner(
        found.output, [view.arrays[w].shape[0] for _, w in found.terms], first_w.shape[1],
        has_bias=found.bias is not None, grad_scale=float(params.get("grad_scale", 1.0)),
        normalization=params.get("normalization", "null"), dtype=first_w.dtype)
    view.engine_state["compiled"] = (found.reason, runner)
    return runner


def run_epoch(view: ModuleView, train_data, metric, batch_end_callback=None, epoch=0) -> EpochStats:
    """One training epoch over ``train_data`` (an iterator with ``epoch_rows``)."""
    found = match(view, train_data, metric)
    if not found.ok:
        raise ValueError(f"the compiled engine cannot run this module: {found.reason}")
    runner = prepare(view, found)
    names, _ = fused_metric_names(metric)
    start = time.perf_counter()
    train_data.reset()
    order, batch_ptr, pad = train_data.epoch_rows()
    data_seconds = time.perf_counter() - start
    sources = dict(train_data.data)
    terms = [sources[x] for x, _ in found.terms]
    label = dict(train_data.label).get(found.label)
    weights = [view.arrays[w] for _, w in found.terms]
    bias = view.arrays[found.bias] if found.bias else None
    indices = [view.index(w) for _, w in found.terms] + ([view.index(found.bias)] if found.bias else [])
    batch_size = int(batch_ptr[1] - batch_ptr[0]) if len(batch_ptr) > 1 else 1
    per_call = max(1, CHUNK_ROWS // max(batch_size, 1))
    num_batches = len(batch_ptr) - 1
    leaves = metric_leaves(metric)
    for b0 in range(0, num_batches, per_call):
        b1 = min(num_batches, b0 + per_call)
        lo, hi = int(batch_ptr[b0]), int(batch_ptr[b1])
        res = runner.fit_epoch(terms, label, order[lo:hi], batch_ptr[b0:b1 + 1] - lo, weights, bias,
                               view.updater, indices, metrics=names, check_params=(b1 == num_batches))
        for leaf, s, c in zip(leaves, res.metric_sums, res.metric_counts):  # the batches that ran
            leaf.sum_metric += float(s)
            leaf.num_inst += int(c)
        if res.nonfinite_batch is not None:
            raise batch_not_finite(epoch, b0 + res.nonfinite_batch)
        if res.nonfinite_params:
            bad = [view.param_names[i] for i in res.nonfinite_params]
            raise NonFiniteError(f"parameters {bad} became non-finite during epoch {epoch}", epoch=epoch,
                                 batch=num_batches - 1)
        if batch_end_callback is not None:
            batch_end_callback(hi - (pad if b1 == num_batches else 0))
    return EpochStats(len(order) - pad, num_batches, time.perf_counter() - start, data_seconds, "compiled")


__all__ = ["match", "match_view", "prepare", "run_epoch", "fused_metric_names", "Match", "LinearEpochRunner"]
