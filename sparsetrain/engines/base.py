"""What an execution engine sees of a Module, and what it gives back.

An engine trains a bound :class:`~sparsetrain.module.Module` through :class:`ModuleView`, a
small public record, never through the Module's private attributes; it returns
:class:`EpochStats`. Module finds engines by name in :mod:`sparsetrain.engines` (so Module does not
import any engine, and no engine imports Module).

Array buffers: sparsetrain arrays keep their storage in ``_data`` (every stype), ``_indices``
(csr, row_sparse) and ``_indptr`` (csr). These three attributes are the package's buffer
protocol: any layer inside ``sparsetrain`` may read them, and write into them in place (an engine
updates weights through ``_data``), without going through the MXNet-style public accessors
(``.data``, ``.indices``, ``.indptr`` return arrays, ``asnumpy()`` copies). Only
``sparsetrain.ndarray`` may *replace* them (change a storage's shape or row set); user code uses
the public accessors.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..base import NonFiniteError


@dataclass(frozen=True)
class Unsupported:
    """One thing that keeps a model off an engine: ``kind`` is ``op``, ``metric``, ``optimizer``,
    ``output``, ``data`` or ``graph`` (the shape of the graph itself); ``name`` the operator, metric or
    optimizer (or node/argument) it is about; ``why`` the rest of the sentence."""

    kind: str
    name: str
    why: str = "has no fused form"

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} {self.why}" if self.name else self.why


def describe_unsupported(items) -> str:
    """The one line a header or an error shows for ``items`` (a list of :class:`Unsupported`)."""
    return "; ".join(str(item) for item in items)


@dataclass
class EpochStats:
    """What one training epoch did (returned by every engine's ``run_epoch``)."""

    samples: int
    batches: int
    seconds: float
    data_seconds: float
    engine: str = "graph"


@dataclass(frozen=True)
class ModuleView:
    """What an engine needs of a bound Module (``Module.view()``); arrays are shared, not copied.

    ``param_names``: the trained parameters; a parameter's optimizer index (the key of
    ``updater.states``) is its position here. ``arrays``: every argument's array by name
    (parameters, data, labels) of the current executor — an engine updates parameters in place.
    ``arg_stypes``: every argument's storage type in the bound plan; ``grad_stypes``: each
    parameter's gradient stype (``None``: no gradient); ``grads``: the current executor's gradient
    arrays (after ``Module.backward``). ``engine_state``: a dict the Module keeps for engines
    between calls (e.g. a prepared kernel runner), keyed by engine; a new binding starts it empty.
    """

    symbol: object
    data_names: tuple
    label_names: tuple
    param_names: tuple
    arrays: dict
    arg_stypes: dict
    grad_stypes: dict
    grads: dict
    optimizer: object = None
    updater: object = None
    engine_state: dict = field(default_factory=dict)

    def index(self, param: str) -> int:
        """The optimizer index of parameter ``param``."""
        return self.param_names.index(param)


def metric_leaves(metric) -> list:
    """The metrics a (possibly nested) composite metric updates, in order."""
    children = getattr(metric, "metrics", None)
    if children is not None and type(metric).__name__ == "CompositeEvalMetric":
        return [leaf for child in children for leaf in metric_leaves(child)]
    return [metric]


def batch_not_finite(epoch: int, batch: int, detail: str = "", who: str = "") -> NonFiniteError:
    """The error every engine raises when a batch's prediction or metric value is NaN/inf.

    Every engine checks the same things after each batch's forward pass, before its update: the
    outputs (:func:`check_outputs`), then, after the metric update, the metrics
    (:func:`check_metric`: a float64 overflow of a metric included), so a diverging run stops at
    the same epoch and batch on every engine, and that batch is not applied.
    """
    what = f" ({detail})" if detail else ""
    return NonFiniteError(f"{who}the loss became non-finite at epoch {epoch} batch {batch}{what}; "
                          "lower the learning rate (optimizer.learning_rate) or clip gradients "
                          "(optimizer.clip_gradient)", epoch=epoch, batch=batch)


def check_outputs(outputs, epoch: int, batch: int, who: str = "") -> None:
    """Raise :func:`batch_not_finite` when an output array holds NaN/inf."""
    for out in outputs:
        if not np.isfinite(out._data).all():
            raise batch_not_finite(epoch, batch, f"output {out.shape} contains NaN/inf", who)


def check_metric(metric, epoch: int, batch: int, who: str = "") -> None:
    """Raise :func:`batch_not_finite` when a metric's running sum became NaN/inf with this batch."""
    for leaf in metric_leaves(metric):
        if not math.isfinite(leaf.sum_metric):
            raise batch_not_finite(epoch, batch, f"metric {leaf.name} is {leaf.sum_metric}", who)
