"""The model section as a graph: dependency order, the ``Symbol`` it builds, and its shape/stype plan.

Functions take a validated :class:`~sparsetrain.config.schema.Config`; every failure is a
``ConfigError`` naming the ``model...`` key path of the node at fault.
"""
from __future__ import annotations

import itertools
import re

from ..base import ConfigError, ShapeError, SparseTrainError
from ..validation import join_path, message, refuse_bools, refuse_unknown_keywords


def canonical_op(name: str) -> str:
    """The registry name of an operator (``sparse.dot`` and ``dot`` are the same)."""
    return name[len("sparse."):] if name.startswith("sparse.") else name


def op_params(params: dict) -> dict:
    """Operator parameters as the symbol API takes them (YAML lists become tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def op_order(cfg) -> list[int]:
    """Indices of ``model.ops`` in dependency order; raises ``ConfigError`` on a cycle.

    An explicit stack, not recursion: a long chain listed in reverse is as fine as any other order."""
    ops = cfg.model.ops
    index = {spec.name: i for i, spec in enumerate(ops)}
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    order: list[int] = []
    for root in range(len(ops)):
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(ops[root].inputs))]
        while stack:
            i, inputs = stack[-1]
            for x in inputs:
                j = index.get(x)
                if j is None or state.get(j) == 2:
                    continue
                if state.get(j) == 1:
                    trail = [k for k, _ in stack]
                    cycle = trail[trail.index(j):] + [j]
                    names = [ops[k].name for k in cycle]
                    if len(names) > 10:  # one readable line, however long the cycle
                        names = names[:4] + [f"... ({len(names) - 8} more)"] + names[-4:]
                    names = " -> ".join(names)
                    raise ConfigError(f"model.ops[{cycle[0]}]: cycle: {names}")
                state[j] = 1
                stack.append((j, iter(ops[j].inputs)))
                break
            else:
                stack.pop()
                state[i] = 2
                order.append(i)
    return order


def make_initializer(spec, path: str):
    """The initializer ``spec`` names (``zero``, ``{normal: {sigma: 0.01}}``, ...); errors name ``path``."""
    from .. import initializer as init_mod

    refuse_bools(spec, path)  # (no initializer parameter is a switch)
    try:
        if isinstance(spec, dict) and len(spec) == 1:
            ((name, params),) = spec.items()
            refuse_unknown_keywords(init_mod.registered(str(name)), params, join_path([name], path),
                                    f"initializer {name!r}")
        return init_mod.create(spec)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, SparseTrainError) as e:
        raise ConfigError(f"{path}: {message(e)}") from None


def multiplier_keywords(v) -> dict:
    """A variable's ``lr_mult`` / ``wd_mult`` that differ from the schema's default (1: none), as
    ``sym.Variable`` keywords: the graph carries the multipliers a config sets, as the Python API's."""
    fields = type(v).model_fields
    return {k: getattr(v, k) for k in ("lr_mult", "wd_mult") if getattr(v, k) != fields[k].default}


def build_symbol(cfg):
    """The model as a ``Symbol``, built through the public ``sparsetrain.sym`` API."""
    from .. import symbol as sym

    m = cfg.model
    handles = {}
    for name, v in m.variables.items():
        init = None if v.init is None else make_initializer(v.init, join_path(["model", "variables", name, "init"]))
        handles[name] = sym.Variable(name, stype=v.stype, shape=tuple(v.shape) if v.shape else None,
                                     init=init, dtype=v.dtype, **multiplier_keywords(v))
    for i in op_order(cfg):
        spec = m.ops[i]
        fn = getattr(sym, canonical_op(spec.op))
        try:
            handles[spec.name] = fn(*[handles[x] for x in spec.inputs], name=spec.name, **op_params(spec.params))
        except (TypeError, ValueError, SparseTrainError) as e:
            raise ConfigError(f"model.ops[{i}]: {message(e)}") from None
    loss = m.loss
    try:
        return getattr(sym, canonical_op(loss.op))(handles[loss.data], handles[loss.label], name=loss.name,
                                                   **op_params(loss.params))
    except (TypeError, ValueError, SparseTrainError) as e:
        raise ConfigError(f"model.loss: {message(e)}") from None


def plan(cfg, batch_size: int | None = None, for_training: bool = True):
    """Shape + storage-type inference of the whole graph (forward and backward), without data."""
    from ..symbol import build_plan
    from ..symbol.graph import BindError

    symbol = build_symbol(cfg)
    b = batch_size or cfg.data.batch_size
    shapes = {cfg.data_name: (b, cfg.num_features), cfg.label_name: (b,)}
    grad_req = {n: ("write" if for_training and n in cfg.param_names else "null") for n in symbol.list_arguments()}
    try:
        return build_plan(symbol, shapes, {}, grad_req)
    except (ShapeError, SparseTrainError) as e:
        if isinstance(e, BindError):
            _missing_shape(cfg, symbol, shapes, grad_req)
        raise ConfigError(locate_shape_error(cfg, message(e))) from None


def _missing_shape(cfg, symbol, shapes, grad_req) -> None:
    """A variable whose shape inference cannot find, as a ``ConfigError`` on its ``shape`` key."""
    from ..symbol import build_plan

    partial = build_plan(symbol, shapes, {}, grad_req, require_shapes=False)
    for node in partial.args:
        shape = partial.shapes.get((node.uid, 0))
        if not shape or not all(shape):
            uses = [f"{spec.name} ({canonical_op(spec.op)})" for spec in cfg.model.ops if node.name in spec.inputs]
            used = f"; it feeds {', '.join(uses)}" if uses else ""
            raise ConfigError(f"{join_path(['model', 'variables', node.name, 'shape'])}: required: the graph does not "
                              f"determine it{used} (e.g. shape: [{cfg.num_features}, 1] for a weight multiplied "
                              f"with the {cfg.num_features}-feature data)")


def describe(cfg, batch_size: int | None = None, backward: bool = False):
    """What ``infer-stypes`` prints: ``(plan, rows, gradients, parameters)`` (see ``Config.describe``)."""
    import warnings

    from .factories import make_optimizer

    the_plan = plan(cfg, batch_size=batch_size, for_training=True)
    params = {n.name: n.params for n in the_plan.forward + the_plan.backward if n.op is not None}
    variables = {n.name for n in the_plan.args}
    rows = the_plan.describe(with_backward=backward)
    for row in rows:
        row["hint"] = (fallback_hint(row["op"], params.get(row["name"], {}), row["inputs"], variables)
                       if row["dispatch"] == "fallback" else None)
    grads = []
    if backward:
        for arg, (node, i) in the_plan.grad_entries.items():
            grads.append({"argument": arg, "stype": the_plan.stypes[(node.uid, i)],
                          "shape": list(the_plan.shapes.get((node.uid, i)) or ()),
                          "node": node.name if node.op is not None else None})
    names = set(cfg.param_names)
    with warnings.catch_warnings():  # built to ask it (validation built it): its warnings come when training builds it
        warnings.simplefilter("ignore")
        optimizer = make_optimizer(cfg)  # the multipliers a parameter trains with are the optimizer's
    parameters = [{"name": n.name, "stype": the_plan.stypes[(n.uid, 0)],
                   "shape": list(the_plan.shapes.get((n.uid, 0)) or ()),
                   **dict(zip(("lr_mult", "wd_mult"), optimizer.multipliers(n.name)))}
                  for n in the_plan.args if n.name in names]
    return the_plan, rows, grads, parameters


def fallback_hint(op_name: str, params: dict, inputs: list[dict], variables=()) -> str:
    """For a fallback node: the fewest input stype changes that give it a kernel (from the registry),
    preferring inputs that are ``variables`` (their stype is declared in the config) and sparse kernels."""
    from ..ops import registry

    op = registry.get(op_name)
    current = [e["stype"] for e in inputs]
    best = None
    for combo in itertools.product(("default", "csr", "row_sparse"), repeat=len(current)):
        changes = [k for k, (a, b) in enumerate(zip(current, combo)) if a != b]
        if not changes:
            continue
        d = registry.infer_storage(op, combo, params)
        if d.mode == "fallback":
            continue
        declared = all(inputs[k].get("name") in variables for k in changes)
        key = (len(changes), not declared, d.mode != "sparse")
        if best is None or key < best[0]:
            best = (key, changes, combo, d.mode)
    if best is None:
        return f"{op_name} has no kernel for ({', '.join(current)})"
    _, changes, combo, mode = best
    parts = [f"input {k} ({inputs[k].get('name', k)}) from {current[k]} to {combo[k]}" for k in changes]
    return f"change {' and '.join(parts)} to use a {mode} kernel"


def locate_shape_error(cfg, text: str) -> str:
    """A shape/stype inference error re-addressed to the config key of the node it names."""
    argument = re.match(r"^argument '([^']*)': ", text)  # a declared shape (against the batch's, an op's rule)
    if argument and argument[1] in cfg.model.variables:
        return f"{join_path(['model', 'variables', argument[1], 'shape'])}: {text[argument.end():]}"
    for i, spec in enumerate(cfg.model.ops):
        if f"node {spec.name!r}" in text:
            text = re.sub(rf"^node {re.escape(repr(spec.name))} \([^)]*\): ", "", text)
            return f"model.ops[{i}] ({spec.name}, {canonical_op(spec.op)}): {text}"
    if f"node {cfg.model.loss.name!r}" in text:
        text = re.sub(rf"^node {re.escape(repr(cfg.model.loss.name))} \([^)]*\): ", "", text)
        return f"model.loss ({cfg.model.loss.name}): {text}"
    return f"model: {text}"
