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

from ..base import did_you_mean

ENGINES = {"compiled": "sparsetrain.engines.compiled"}


def get(name: str):
    """The engine module called ``name``."""
    path = ENGINES.get(name)
    if path is None:
        raise ValueError(f"unknown engine {name!r}{did_you_mean(name, ENGINES)}; known: graph, {', '.join(ENGINES)}")
    return importlib.import_module(path)
