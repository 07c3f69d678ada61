"""Warm start (``fit --init-from RUN|PARAMS [--init-states]``): a new run that starts from trained
parameters (and, when asked, the optimizer states and update counts saved beside them)."""
from __future__ import annotations

import copy
import os
from typing import NamedTuple

from ..base import ConfigError
from ..optimizer_buffers import state_arrays
from .runfiles import checked_params, load_state


def init_files(source: str) -> tuple[str, str]:
    """``(.params, .states)`` paths of ``source``: a run directory (its best checkpoint, else its
    last) or a ``model-NNNN.params`` file (the ``.states`` file beside it)."""
    from .predict import run_checkpoint

    where = f"--init-from {source}"
    if os.path.isdir(source):
        state = load_state(source)
        if state is None:
            raise ConfigError(f"{where}: the run directory has no complete checkpoint (checkpoint.json missing)")
        prefix = os.path.join(source, state.get("prefix", "checkpoints/model"))
        epoch = run_checkpoint(source, state)
        params = f"{prefix}-{epoch:04d}.params"
    elif source.endswith(".params"):
        params = source
    else:
        raise ConfigError(f"{where}: expected a run directory or a .params file")
    if not os.path.exists(params):
        raise ConfigError(f"{where}: {params} not found")
    return params, params[: -len(".params")] + ".states"


class WarmStart(NamedTuple):
    """What :func:`warm_start` loaded: the ``.params`` path and, with an optimizer, the ``.states`` path beside
    it with its checked states (``{index: numpy state}``) and progress (update counts, scheduler position)."""

    params: str
    states_path: str | None = None
    states: dict | None = None
    progress: dict | None = None


def warm_start(module, source: str, optimizer=None) -> WarmStart:
    """Load the parameters of ``source`` into the bound, initialized ``module``: every parameter must
    be there with the model's shape and storage type (else one ``ConfigError`` naming it). With
    ``optimizer`` (``--init-states``: the run's optimizer), also the optimizer states saved beside them,
    checked by :func:`check_states` before anything trains; the local trainer then calls
    ``module.load_optimizer_states(states_path)`` after ``init_optimizer``, the distributed driver hands
    ``states`` and ``progress`` to the servers."""
    from ..optimizer_states import loads

    params, states = init_files(source)
    view = module.view()
    names = list(view.param_names)
    arg, aux = checked_params(params, [])  # (readable, finite); a model that does not match is a usage error:
    for name in names:
        if name not in arg:
            raise ConfigError(f"--init-from {params}: this model's parameter {name!r} is not in it (its "
                              f"parameters: {', '.join(arg)})")
    for name in arg:
        if name not in names:
            raise ConfigError(f"--init-from {params}: parameter {name!r} is not in this model "
                              f"(its parameters: {', '.join(names)})")
    for name in names:
        want, got = view.arrays[name], arg[name]
        if tuple(got.shape) != tuple(want.shape):
            raise ConfigError(f"--init-from {params}: parameter {name!r} has shape {tuple(got.shape)}, "
                              f"the model's is {tuple(want.shape)}")
        if got.stype != want.stype:
            raise ConfigError(f"--init-from {params}: parameter {name!r} is {got.stype}, the model's is {want.stype}")
    module.set_params(arg, aux)
    if optimizer is None:
        return WarmStart(params)
    if not os.path.exists(states):
        raise ConfigError(f"--init-states: {states} not found (the optimizer states saved with {params})")
    with open(states, "rb") as f:
        loaded, progress, _ = loads(f.read(), states)  # a damaged or pickled file: one clean error, before training
    check_states(optimizer, module, loaded, progress, states)
    return WarmStart(params, states, loaded, progress)


def check_states(optimizer, module, states: dict, progress: dict | None, source: str) -> None:
    """The one check of the optimizer states a run starts from (``--init-states``, on one machine and on the
    distributed driver alike), against the run's ``optimizer`` and ``module``'s parameters: saved by the same
    update rule, as many arrays per parameter as the rule keeps (:func:`sparsetrain.optimizer_states.check_states`),
    each array of its parameter's size and of the dtype the optimizer keeps its states in
    (``Optimizer.state_dtype``: the parameter's, float32 for a float16 weight under ``multi_precision``).
    Otherwise the first update refuses them naming no file (a dtype), or a compiled kernel writes past their
    end (a count). One line naming ``source`` and the parameter."""
    from ..optimizer_states import check_states as check_rule

    view = module.view()
    names = list(view.param_names)
    if getattr(optimizer, "idx2name", None) is not None and not optimizer.idx2name:
        optimizer = copy.copy(optimizer)  # (the driver's has no names yet: its errors name the parameter too)
        optimizer.idx2name = {view.index(name): name for name in names}
    check_rule(optimizer, states, progress, source)
    for name in names:
        want = view.arrays[name]
        dtype = optimizer.state_dtype(want.dtype) if hasattr(optimizer, "state_dtype") else want.dtype
        for part in state_arrays(states.get(view.index(name))):
            if part.dtype != dtype or part.size != want.size:
                kept = "" if dtype == want.dtype else f" (its states {dtype}: the optimizer's multi_precision)"
                raise ConfigError(f"--init-states {source}: the optimizer states of parameter {name!r} are "
                                  f"{part.dtype} {part.shape}; the model's parameter is {want.dtype} "
                                  f"{tuple(want.shape)}{kept}")
