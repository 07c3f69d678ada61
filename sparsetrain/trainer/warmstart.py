"""Warm start (``fit --init-from RUN|PARAMS [--init-states]``): a new run that starts from trained
parameters (and, when asked, the optimizer states and update counts saved beside them)."""
from __future__ import annotations

import os

from ..base import ConfigError
from ..optimizer_buffers import state_parts
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


def warm_start(module, source: str, with_states: bool = False) -> tuple[str, str | None]:
    """Load the parameters of ``source`` into the bound, initialized ``module``: every parameter must
    be there with the model's shape and storage type (else one ``ConfigError`` naming it). Returns
    ``(params path, states path or None)``; with ``with_states``, call
    ``module.load_optimizer_states(states path)`` after ``init_optimizer``."""
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
    if not with_states:
        return params, None
    if not os.path.exists(states):
        raise ConfigError(f"--init-states: {states} not found (the optimizer states saved with {params})")
    with open(states, "rb") as f:
        loaded = loads(f.read(), states)[0]  # a damaged or pickled file is one clean error before training starts
    for name in names:  # here, as the update would refuse them at the first batch naming no file
        want = view.arrays[name]
        for part in state_parts(loaded.get(view.index(name))):
            if part.dtype != want.dtype or part.size != want.size:
                raise ConfigError(f"--init-states {states}: the optimizer states of parameter {name!r} are "
                                  f"{part.dtype} {part.shape}; the model's parameter is {want.dtype} "
                                  f"{tuple(want.shape)}")
    return params, states
