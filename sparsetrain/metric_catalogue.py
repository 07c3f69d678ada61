"""The metric catalogue: one :class:`MetricInfo` record per metric, and every fact read from it.

Config defaults, ``train.target``'s direction, the CLI's "best" column and the compiled engine's
fused metrics all come from these records; :mod:`sparsetrain.metric` registers its classes here
(``@register``-style, in the metric's own class definition) and re-exports this module's API.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .base import did_you_mean

__all__ = [
    "REGRESSION", "BINARY", "MULTICLASS", "ANY_OUTPUT", "MetricInfo", "register", "entry", "catalogue",
    "names", "info", "info_of", "lower_is_better", "best", "target_relation", "target_met", "unreachable",
    "not_applicable", "fused_not_applicable", "default_metrics",
]

# The loss output layers (operator names) a metric can be asked for, by the kind of prediction they make.
REGRESSION = frozenset({"LinearRegressionOutput", "MAERegressionOutput"})
BINARY = frozenset({"LogisticRegressionOutput"})
MULTICLASS = frozenset({"SoftmaxOutput"})
ANY_OUTPUT = REGRESSION | BINARY | MULTICLASS


@dataclass(frozen=True)
class MetricInfo:
    """The one record of a metric: every other table (config defaults, target directions, the
    compiled engine's fused metrics, the CLI's "best" column) is read from these.

    ``name``: the canonical name (the metric's default ``name``); ``aliases``: every other name
    :func:`create` accepts (all lower-case, the class name included); ``lower_is_better``: the
    direction of ``train.target`` and of "best"; ``outputs``: the loss operators whose predictions
    it can score; ``binary``: it needs a binary prediction ((n,), (n, 1) or (n, 2)); ``fused``:
    the compiled engine's kernel formula for it (a key of
    ``sparsetrain.kernels.metrics.FUSED_METRICS``), ``None`` when only the graph engine computes it;
    ``at_most``: its largest value (every metric here is at least 0).
    """

    name: str
    klass: type
    aliases: tuple[str, ...] = ()
    lower_is_better: bool = False
    outputs: frozenset = ANY_OUTPUT
    binary: bool = False
    fused: str | None = None
    at_most: float = math.inf

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


_REGISTRY: dict[str, MetricInfo] = {}  # every lower-cased name and alias -> its record
_BY_CLASS: dict[type, MetricInfo] = {}


def register(klass, *aliases, name=None, lower_is_better=False, outputs=ANY_OUTPUT, binary=False, fused=None,
             at_most=math.inf):
    """Make ``klass`` available to :func:`create` under ``name`` (default: its lower-cased class
    name), its lower-cased class name and ``aliases``, with the facts of :class:`MetricInfo`.
    """
    canonical = (name or klass.__name__).lower()
    names = dict.fromkeys(n.lower() for n in (canonical, klass.__name__, *aliases))
    record = MetricInfo(canonical, klass, tuple(n for n in names if n != canonical), bool(lower_is_better),
                        frozenset(outputs), bool(binary), fused, float(at_most))
    for n in names:
        known = _REGISTRY.get(n)
        if known is not None and known.klass is not klass:
            raise ValueError(f"metric name {n!r} is already taken by {known.klass.__name__}")
        _REGISTRY[n] = record
    _BY_CLASS[klass] = record
    return klass


def entry(name, *aliases, **facts):
    """A class decorator: :func:`register` with these facts."""
    def deco(klass):
        return register(klass, *aliases, name=name, **facts)

    return deco


def names() -> list[str]:
    """Every name and alias :func:`info` accepts, sorted."""
    return sorted(_REGISTRY)


def catalogue() -> list[MetricInfo]:
    """Every registered metric's record, once each."""
    return list(dict.fromkeys(_REGISTRY.values()))


def info(name: str) -> MetricInfo:
    """The record of the metric called ``name`` (any alias, case-insensitive). ``ValueError`` when unknown."""
    key = str(name).lower()
    record = _REGISTRY.get(key)
    if record is None:
        raise ValueError(f"unknown metric {name!r}{did_you_mean(key, _REGISTRY)}; known: {known_text()}")
    return record


#: The metric that holds others (MXNet's ``create('composite')``): no metric of a config or of ``evaluate``.
_HOLDER = "composite"


def scoring_info(name: str) -> MetricInfo:
    """:func:`info` of a metric that scores predictions, as ``train.metrics`` and ``evaluate --metric`` name them:
    ``composite`` (a holder of other metrics, which scored nothing) is a ``ValueError`` too."""
    record = info(name)
    if record.name == _HOLDER:
        raise ValueError(f"{name!r} holds other metrics and scores nothing: list the metrics; known: {known_text()}")
    return record


def known_text() -> str:
    """The metrics a config or ``evaluate`` names, each with its short aliases: ``accuracy (acc), ...``."""
    out = []
    for record in catalogue():
        if record.name != _HOLDER:
            aliases = [a for a in record.aliases if a != record.klass.__name__.lower()]
            out.append(record.name + (f" ({', '.join(aliases)})" if aliases else ""))
    return ", ".join(out)


def info_of(metric) -> MetricInfo | None:
    """The record of a metric instance's class (``None`` for classes never registered)."""
    return _BY_CLASS.get(type(metric))


#: The prefixes of ``metrics.jsonl`` keys (and ``train.target``/``early_stopping`` keys) before a metric's name.
RECORD_PREFIXES = ("eval_", "progressive_")


def _record_info(name: str) -> MetricInfo:
    """:func:`info` of a ``metrics.jsonl`` key: a metric's name, maybe after a prefix (``eval_``, ``progressive_``)."""
    key = str(name)
    prefix = next((p for p in RECORD_PREFIXES if key.lower().startswith(p)), None)
    if key.lower() not in _REGISTRY and prefix is not None:
        key = key[len(prefix):]
    return info(key)


def lower_is_better(name: str) -> bool:
    """The metric's direction. ``name`` may carry a prefix of ``metrics.jsonl`` keys (``eval_``,
    ``progressive_``), as may the ``name`` of :func:`best`, :func:`target_met`, :func:`target_relation`,
    :func:`unreachable`."""
    return _record_info(name).lower_is_better


def unreachable(name: str, target: float) -> str | None:
    """Why no final value of metric ``name`` can meet ``target`` (:func:`target_met`), or ``None``."""
    record = _record_info(name)
    if record.lower_is_better and target <= 0:
        return f"the final value must be below it; {record.name} is never below 0"
    if not record.lower_is_better and target > record.at_most:
        return f"{record.name} is at most {record.at_most:g}"
    return None


def best(name: str, values):
    """The best of ``values`` (e.g. one metric's value per epoch) in the metric's direction;
    non-finite values are skipped (``nan`` when there is no finite one)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return float("nan")
    return min(finite) if lower_is_better(name) else max(finite)


def target_relation(name: str) -> str:
    """How ``train.target`` compares the final value with the target: ``<`` or ``>=``."""
    return "<" if lower_is_better(name) else ">="


def target_met(name: str, value, target: float) -> bool:
    """Whether a final ``value`` of metric ``name`` reaches ``target`` (below it for metrics where
    lower is better, at least it for the others); a missing or non-finite value never does."""
    if value is None or not math.isfinite(value):
        return False
    return value < target if lower_is_better(name) else value >= target


def not_applicable(name: str, loss_op: str, num_outputs: int | None = None) -> str | None:
    """Why metric ``name`` cannot score the predictions of the loss operator ``loss_op`` with
    ``num_outputs`` columns (``None``: unknown), or ``None`` when it can."""
    record = info(name)
    if loss_op in ANY_OUTPUT and loss_op not in record.outputs:
        allowed = ", ".join(sorted(record.outputs))
        return f"metric {name!r} does not apply to a {loss_op} model (it scores {allowed})"
    if record.binary and num_outputs is not None and num_outputs > 2:
        return f"metric {name!r} needs a binary prediction; this {loss_op} model has {num_outputs} outputs"
    return None


def fused_not_applicable(fused: str, output: str, k: int) -> str | None:
    """Why the compiled engine's kernel formula ``fused`` (a record's ``fused``; the hand kernels and generated
    plans share it, :mod:`sparsetrain.kernels.metrics`) cannot score the output layer ``output`` with ``k``
    outputs, though the metric itself may (:func:`not_applicable`); ``None`` when it can."""
    if output == "LogisticRegressionOutput" and k > 1 and fused in ("accuracy", "log_loss", "auc"):
        # K independent binary outputs (multi-label): the kernels' accuracy / log_loss / auc read K > 1 as K classes
        return f"on a {k}-output (multi-label) LogisticRegressionOutput has no fused form"
    if fused == "auc" and output != "LogisticRegressionOutput" and not (output == "SoftmaxOutput" and k == 2):
        return f"needs a binary output, not {output} with {k} outputs"
    if fused == "log_loss" and output not in ("LogisticRegressionOutput", "SoftmaxOutput"):
        return "needs probabilities (LogisticRegressionOutput or SoftmaxOutput)"
    if fused == "accuracy" and output != "SoftmaxOutput" and k != 1:
        return f"with {output} needs a single output"
    return None


def default_metrics(loss_op: str) -> list[str]:
    """The metrics reported when none are asked for: the loss operator's ``default_metrics``."""
    from .ops import registry

    op = registry.get(loss_op) if registry.exists(loss_op) else None
    return list(op.default_metrics) if op is not None and op.default_metrics else ["mse"]
