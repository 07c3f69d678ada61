"""Execution engines beyond the graph interpreter, found by name.

``Module.run_epoch(..., engine=...)`` runs its own graph interpreter or asks :func:`get` for an
engine. An engine is a module (imported on first use) with

* ``match(view, train_data=None, metric=None)`` -> an object with ``ok`` and ``reason``: whether
  it can train this bound model (a :class:`~.base.ModuleView`) on this data with this metric,
  and why not;
* ``run_epoch(view, train_data, metric, batch_end_callback=None, epoch=0)`` ->
  :class:`~.base.EpochStats`: one epoch, updating the view's arrays and optimizer states in place,
  adding to ``metric``, and raising :func:`~.base.batch_not_finite` where a batch diverges.

Engines see a Module only through :class:`~.base.ModuleView` and never import
:mod:`sparsetrain.module`; Module imports no engine. A new engine (e.g. generated plans) is one
entry in ``ENGINES``.
"""
from __future__ import annotations

import importlib

from ..base import ConfigError, did_you_mean
from .base import describe_unsupported

ENGINES = {"compiled": "sparsetrain.engines.compiled"}


def get(name: str):
    """The engine module called ``name``."""
    path = ENGINES.get(name)
    if path is None:
        raise ValueError(f"unknown engine {name!r}{did_you_mean(name, ENGINES)}; known: graph, {', '.join(ENGINES)}")
    return importlib.import_module(path)


def choose(requested: str, view, train_data=None, metric=None, progressive: bool = False) -> tuple[str, str, list]:
    """The engine that will train this bound model: ``(name, reason, unsupported)``.

    ``requested``: ``auto`` (the first engine of ``ENGINES`` whose ``match`` accepts the model, else
    the graph interpreter), ``graph``, or an engine's name. ``reason``: what the engine runs, or, on
    the graph engine, what kept the model off the compiled engine in one line; ``unsupported``:
    those things as a list of :class:`~.base.Unsupported`. ``progressive``: the run asks for
    progressive metrics (``train.progressive``). An engine asked for by name that cannot
    run the model is a :class:`~sparsetrain.base.ConfigError` naming them.
    """
    if requested == "graph":
        return "graph", "requested", []
    if requested != "auto" and requested not in ENGINES:
        raise ConfigError(f"engine must be auto, graph or one of {', '.join(ENGINES)}, got {requested!r}"
                          f"{did_you_mean(requested, ['auto', 'graph', *ENGINES])}")
    first = None
    for name in ([requested] if requested != "auto" else list(ENGINES)):
        found = get(name).match(view, train_data, metric, progressive)
        if found.ok:
            return name, found.reason, []
        first = first or (name, list(found.unsupported) or [found.reason])
    name, items = first
    reason = describe_unsupported(items)
    if requested != "auto":
        raise ConfigError(f"engine {name!r} cannot run this model: {reason}")
    return "graph", f"{name} engine: {reason}", items
