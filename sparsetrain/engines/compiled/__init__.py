"""The compiled engine: whole epochs in fused numba kernels.

One compile step, :func:`compile_model`, decides what runs a bound graph: a hand-fused epoch kernel
that the output layer's fused form names (``FusedForm.epoch_kernels`` on the op's registration;
today the linear family ``Σ dot(csr, row_sparse) [+ bias]``, :mod:`.kernels`, its pattern in
:mod:`.matcher`) when the graph is that kernel's pattern, else the generated plan of the graph
(:mod:`.plan`, :mod:`.plan_runner`). Both are run through one runner interface
(``prepare(view, found).run_epoch(...)`` and ``.trained_indices(view)``: :class:`LinearKernel`,
:class:`~.plan_runner.PlanRunner`).
:func:`why_not_fused` names what keeps a model off.

An engine of :mod:`sparsetrain.engines`: ``match(view, train_data, metric)`` decides whether a
bound Module (seen through its :class:`~sparsetrain.engines.base.ModuleView`) can run here and
says why not; ``run_epoch(view, ...)`` runs one epoch, sharing the Module's parameter arrays and
optimizer states with the graph engine, so engines can be switched between epochs and checkpoints
see one set of states. ``prepare(view, match)`` and ``fused_metric_names(metric)`` serve callers
that drive the runner themselves.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ...metric import info_of
from ...metric_catalogue import fused_not_applicable
from ..base import EpochStats, ModuleView, Unsupported, describe_unsupported, metric_leaves
from ...kernels.metrics import FUSED_METRICS
from ...symbol.graph import format_parameter, multipliers
from . import plan_runner, stream
from .matcher import Match, match_optimizer, match_symbol
from .plan import NotFused, lower, not_trained
from .epoch_loop import run_in_chunks
from .runner import LinearEpochRunner, optimizer_fusable
from .threads import team_for

def unsupported_metrics(metric, output: str | None = None, k: int = 1) -> list:
    """What in ``metric`` (a metric or composite) the fused kernels — hand kernels and generated plans, which
    share their metric code — cannot compute: a list of :class:`~..base.Unsupported`, empty when every leaf
    has a fused formula and, given the output layer ``output`` with ``k`` outputs, applies to it
    (the catalogue's :func:`~sparsetrain.metric_catalogue.fused_not_applicable`)."""
    items = []
    for leaf in metric_leaves(metric):
        record = info_of(leaf)
        name = record.name if record is not None else getattr(leaf, "name", type(leaf).__name__)
        fused = record.fused if record is not None else None
        item = None
        if fused not in FUSED_METRICS:
            item = Unsupported("metric", name)
        elif fused == "accuracy" and getattr(leaf, "axis", 1) != 1:
            item = Unsupported("metric", name, "with axis != 1 has no fused form")
        elif output is not None:
            why = fused_not_applicable(fused, output, k)
            item = Unsupported("metric", name, why) if why else None
        if item is not None:
            items.append(item)
    return items


def fused_metric_names(metric):
    """``(names, "")``: the catalogue names of ``metric``'s leaves (a metric or composite), all with a
    fused kernel formula; or ``(None, reason)`` (see :func:`unsupported_metrics`)."""
    items = unsupported_metrics(metric)
    if items:
        return None, describe_unsupported(items)
    return plan_runner.metric_names(metric), ""


def match_view(view: ModuleView) -> Match:
    """Whether the bound model's graph has the linear pattern (optimizer, data and metric aside) with every
    parameter trained: the kernels update each parameter they take, so a fixed one (``grad_req`` null,
    ``fixed_param_names``) keeps the model off them, as it keeps it off a plan (:func:`.plan.lower`)."""
    found = match_symbol(view.symbol, view.data_names, view.label_names, view.param_names, view.arg_stypes,
                         {name: view.arrays[name].dtype for name in view.param_names})
    fixed = [p for p in view.param_names if view.grad_stypes.get(p) is None]
    if found.ok and fixed:
        item = Unsupported("graph", "", not_trained(fixed[0]))
        return Match(False, str(item), unsupported=[item])
    return found


def parameter_label(view: ModuleView, name: str) -> str:
    """Parameter ``name`` as the engine line names it: with the multipliers other than 1 it trains with
    (the optimizer's :meth:`~sparsetrain.optimizer.Optimizer.multipliers`, MXNet's name rule for wd_mult
    included; before an optimizer is set, those the symbol gives)."""
    opt = view.optimizer
    if opt is not None and hasattr(opt, "multipliers"):
        return format_parameter(name, *opt.multipliers(view.index(name)))
    return format_parameter(name, *multipliers(view.symbol.attr_dict().get(name, {})))


# The hand-fused epoch kernels an output layer's fused form can name (``FusedForm.epoch_kernels``, on
# the op's registration): name -> the recogniser of the model pattern the kernel implements (a
# :class:`Match` for the bound graph). Today one: the linear family (:mod:`.matcher`, :mod:`.kernels`).
EPOCH_KERNEL_PATTERNS = {"linear": lambda view: _linear_target(view)}


def _linear_target(view: ModuleView) -> Match:
    """:func:`match_view` of the bound graph, matched once per binding (the compile step and
    :func:`match_linear` both ask)."""
    found = view.engine_state.get("linear_match")
    if found is None:
        found = view.engine_state["linear_match"] = match_view(view)
    return found


def compile_model(view: ModuleView) -> Match:
    """The compile step, the engine's one entry point: what trains the bound graph (optimizer, data and
    metrics aside). A hand-fused epoch kernel that the loss's fused form names (``epoch_kernels``) when
    the graph is the kernel's pattern; else the generated plan of the graph (:func:`.plan.lower`); else
    a :class:`Match` naming what has no fused form. Kept in ``view.engine_state`` (the graph, its stypes
    and shapes decide it; its ``reason`` names the parameters plainly, :func:`match` as the engine line does)."""
    cached = view.engine_state.get("compiled_model")
    if cached is not None:
        return cached
    outputs = view.symbol._outputs
    loss = outputs[0][0] if len(outputs) == 1 else None
    form = loss.op.fused if loss is not None and loss.op is not None else None
    found = None
    for name in (form.epoch_kernels if form is not None else ()):
        candidate = EPOCH_KERNEL_PATTERNS[name](view)
        if candidate.ok:
            found = candidate
            break
    if found is None:
        found = _plan_target(view)
    view.engine_state["compiled_model"] = found
    return found


def _plan_target(view: ModuleView) -> Match:
    """The generated plan of the bound graph (lowered once per binding), or why there is none."""
    spec = view.engine_state.get("plan_spec")
    if spec is None:
        try:
            spec = lower(view)
        except NotFused as e:
            spec = str(e)
        view.engine_state["plan_spec"] = spec
    if isinstance(spec, str):
        return Match(False, spec, unsupported=[Unsupported("op" if spec.startswith("op ") else "graph", "", spec)])
    return Match(True, output=spec.output, label=spec.label, loss_params=spec.loss_params, plan=spec)


def match(view: ModuleView, train_data=None, metric=None, progressive: bool = False) -> Match:
    """Whether the bound model (with its optimizer, data and metric) can train on the compiled engine.

    :func:`compile_model` chooses what runs the graph (a hand kernel or a generated plan); then that
    target's optimizer, data and metric checks. When it cannot run, ``unsupported`` lists every op,
    output, optimizer, metric or data property in the way, and ``reason`` says them in one line; when it
    can, ``reason`` says what runs, each parameter with the multipliers it trains with (:func:`parameter_label`).
    """
    target = compile_model(view)
    if not target.ok:
        return target
    if target.plan is None:
        found = match_linear(view, train_data, metric)
    else:
        found = match_plan(view, train_data, metric)
        if found.ok and progressive:
            item = Unsupported("option", "train.progressive", "is not computed by generated plans")
            return Match(False, describe_unsupported([item]), unsupported=[item])
    if found.ok:
        shown = found.describe(lambda p: parameter_label(view, p))
        found = dataclasses.replace(found, reason=f"{shown}; {stream.HEADER}" if stream.streams(train_data) else shown)
    return found


def why_not_fused(view: ModuleView, train_data=None, metric=None, progressive: bool = False) -> str:
    """``""`` when the compiled engine can train this model; else one line naming what stops it."""
    found = match(view, train_data, metric, progressive)
    return "" if found.ok else found.reason


def optimizer_unsupported(view: ModuleView, weights) -> Unsupported | None:
    """What keeps the bound optimizer off the fused kernels that train the row-sparse parameters ``weights``
    (names) lazily: a rule they lack (:func:`.matcher.match_optimizer`) or a dense update of every row
    (:func:`.runner.optimizer_fusable`); None when they reproduce its update, or before an optimizer is set."""
    opt = view.optimizer
    if opt is None:
        return None
    item = match_optimizer(opt)
    if item is not None:
        return item
    ok, why = optimizer_fusable(opt, [view.grad_stypes.get(w) == "row_sparse" for w in weights],
                                [view.index(w) for w in weights])
    return None if ok else Unsupported("optimizer", type(opt).__name__, why)


def match_plan(view: ModuleView, train_data=None, metric=None) -> Match:
    """Whether a generated plan can train the bound model (see :mod:`.plan`), and why not (also for a
    model the compile step gives a hand kernel: benchmarks compare the two)."""
    target = _plan_target(view)
    if not target.ok:
        return target
    spec = target.plan
    items = [optimizer_unsupported(view, [p.name for p in spec.params if p.row_sparse]),
             stream.iterator_unsupported(train_data, [spec.data], ids=spec.ids)]
    items = [item for item in items if item is not None]
    if metric is not None:
        items.extend(unsupported_metrics(metric, spec.output, spec.out_width))
    if items:
        return Match(False, describe_unsupported(items), unsupported=items)
    return target


def match_linear(view: ModuleView, train_data=None, metric=None) -> Match:
    """Whether the linear family's hand kernels can train the bound model, and why not."""
    found = _linear_target(view)
    items = list(found.unsupported)
    item = optimizer_unsupported(view, [w for _, w in found.terms])
    if item is not None:
        items.append(item)
    if found.ok:
        item = stream.iterator_unsupported(train_data, [x for x, _ in found.terms])
        if item is not None:
            items.append(item)
    if metric is not None:
        output = (found.output, view.arrays[found.terms[0][1]].shape[1]) if found.ok else (None, 1)
        items.extend(unsupported_metrics(metric, *output))
    if items:
        return Match(False, describe_unsupported(items), unsupported=items)
    return found


class LinearKernel:
    """The linear family's hand kernels (:class:`~.runner.LinearEpochRunner`) behind the runner interface
    every compile target has: ``run_epoch(view, train_data, metric, ...)`` and ``trained_indices(view)`` (as
    :class:`~.plan_runner.PlanRunner`)."""

    def __init__(self, view: ModuleView, found: Match):
        self.found = found
        first_w = view.arrays[found.terms[0][1]]
        params = found.loss_params
        self.runner = LinearEpochRunner(
            found.output, [view.arrays[w].shape[0] for _, w in found.terms], first_w.shape[1],
            has_bias=found.bias is not None, grad_scale=float(params.get("grad_scale", 1.0)),
            normalization=params.get("normalization", "null"), dtype=first_w.dtype)

    def run_epoch(self, view: ModuleView, train_data, metric, batch_end_callback=None, epoch=0, progressive=None,
                  check_params=True, parallel=None, remember=True) -> EpochStats:
        """One epoch of an in-memory ``train_data`` (or a streamed piece) through :func:`~.epoch_loop.run_in_chunks`;
        see :func:`run_found`."""
        found, runner = self.found, self.runner
        names = plan_runner.metric_names(metric)
        indices = self.trained_indices(view)
        sample_weight = getattr(train_data, "sample_weight", None)
        checked = getattr(train_data, "checked_csr", False)
        labels = None

        def fit_chunk(order, batch_ptr, real):
            nonlocal labels
            sources = dict(train_data.data)
            label = dict(train_data.label).get(found.label)
            weights = [view.arrays[w] for _, w in found.terms]
            outputs = None if progressive is None else np.empty((len(order), weights[0].shape[1]), weights[0].dtype)
            res = runner.fit_epoch([sources[x] for x, _ in found.terms], label, order, batch_ptr, weights,
                                   view.arrays[found.bias] if found.bias else None, view.updater, indices,
                                   metrics=names, predictions=outputs, parallel=parallel, remember=remember,
                                   sample_weight=sample_weight, checked_csr=checked)
            if progressive is not None and res.nonfinite_batch is None:
                labels = label.asnumpy() if labels is None else labels
                rows = order[:real]
                progressive.update(labels[rows], outputs[:real], None if sample_weight is None else sample_weight[rows])
            return res

        return run_in_chunks(view, train_data, metric, fit_chunk, batch_end_callback, epoch,
                             indices if check_params else None)

    def trained_indices(self, view: ModuleView) -> list:
        """The optimizer indices of the parameters the kernels train, in the order they take them: the
        weights, then the bias (the runner interface, as :meth:`~.plan_runner.PlanRunner.trained_indices`)."""
        found = self.found
        return [view.index(w) for _, w in found.terms] + ([view.index(found.bias)] if found.bias else [])


def prepare(view: ModuleView, found: Match):
    """The runner of ``found`` (a successful :func:`match`: a :class:`LinearKernel` or a loaded
    :class:`~.plan_runner.PlanRunner`, one interface), kept in ``view.engine_state``."""
    if found.plan is not None:
        return prepare_plan(view, found)
    key = found.describe()  # the kernel's pattern, its parameters plainly named (not the engine line's labels)
    cached = view.engine_state.get("compiled")
    if cached is not None and cached[0] == key:
        return cached[1]
    runner = LinearKernel(view, found)
    view.engine_state["compiled"] = (key, runner)
    return runner


def prepare_plan(view: ModuleView, found: Match) -> plan_runner.PlanRunner:
    """The loaded plan of ``found`` (a successful plan :func:`match`), kept in ``view.engine_state``."""
    cached = view.engine_state.get("plan")
    if cached is None or cached.spec is not found.plan:
        cached = view.engine_state["plan"] = plan_runner.PlanRunner(found.plan)
    return cached


def run_epoch(view: ModuleView, train_data, metric, batch_end_callback=None, epoch=0, progressive=None,
              threads: int = 1, deterministic: bool = False) -> EpochStats:
    """One training epoch over ``train_data`` (an iterator with ``epoch_rows``); ``progressive``: as
    :meth:`sparsetrain.module.Module.run_epoch` (the kernel writes each batch's outputs before its update);
    ``threads``/``deterministic``: ``train.threads``/``train.deterministic`` (see :mod:`.threads`)."""
    team = team_for(view, threads, deterministic)
    found = match(view, train_data, metric, progressive is not None)
    if not found.ok:
        raise ValueError(f"the compiled engine cannot run this module: {found.reason}")
    if stream.streams(train_data):
        return stream.run_epoch(view, train_data, lambda piece, callback: run_found(
            view, found, piece, metric, callback, epoch, progressive, check_params=False, team=team, remember=False),
            prepare(view, found).trained_indices(view), batch_end_callback, epoch,
            threads=1 if team is None else team.threads)
    return run_found(view, found, train_data, metric, batch_end_callback, epoch, progressive, team=team)


def run_found(view: ModuleView, found: Match, train_data, metric, batch_end_callback=None, epoch=0,
              progressive=None, check_params=True, team=None, remember=True) -> EpochStats:
    """One epoch of an in-memory ``train_data`` (or a streamed epoch's piece) on the kernels ``found``
    (a successful :func:`match`); ``check_params``: scan the parameters for NaN/inf at the end; ``team``:
    a :class:`~.threads.ThreadTeam` (``train.threads``) or None; ``remember=False``: the data is seen once
    (a streamed piece), the kernels keep no reference to it."""
    return prepare(view, found).run_epoch(view, train_data, metric, batch_end_callback, epoch, progressive,
                                          check_params=check_params, parallel=team, remember=remember)


__all__ = ["compile_model", "match", "match_linear", "match_plan", "why_not_fused", "prepare_plan", "match_view",
           "prepare", "run_epoch", "fused_metric_names", "unsupported_metrics", "Match", "LinearKernel",
           "LinearEpochRunner"]
