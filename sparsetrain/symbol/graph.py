"""Graph passes: gradient graph construction, shape inference and storage-type inference.

``build_plan`` runs them once (at bind) and returns a ``Plan``: the joint forward + backward node
list with every entry's shape and stype and every node's dispatch. The executor and the
``infer-stypes`` report both read the plan; nothing is inferred again per step.

Every pass takes a ``Symbol`` as ``sym`` and reads only its output entries over :mod:`.node`'s nodes
(``symbol.py`` builds on this module, so nothing here imports it).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..base import (LR_MULT_ATTR, WD_MULT_ATTR, ShapeError, SparseTrainError, UnknownStorageTypeError, check_stype,
                    did_you_mean)
from ..ops import registry
from ..ops.registry import GradientContext, infer_storage, merge_shape
from .node import Node, topo_order


class BindError(SparseTrainError, ValueError):
    """Arguments given at bind that the symbol does not have, or shapes that cannot be inferred."""


def _check_names(sym, given: dict, what: str):
    args = sym.list_arguments()
    for name in given:
        if name not in args:
            raise BindError(f"unknown argument {name!r} in {what}{did_you_mean(name, args)}; "
                            f"the symbol's arguments are {args}")


def _declared_shape(node: Node, given: dict):
    shape = given.get(node.name)
    declared = node.attrs.get("shape")
    if shape is not None:
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        if declared is not None:
            shape = merge_shape(tuple(declared), shape, f"argument {node.name!r}")
        return shape
    return tuple(declared) if declared is not None else None


def _run_shape_pass(nodes, shapes, backward_too=True):
    """Fixpoint of forward (and backward) shape inference over ``nodes``; ``shapes[(uid, i)]``."""
    for _ in range(len(nodes) + 2):
        changed = False
        sweep = nodes + (nodes[::-1] if backward_too else [])
        for node in sweep:
            if node.op is None:
                continue
            ins = [shapes.get((c.uid, i)) for c, i in node.inputs]
            outs = [shapes.get((node.uid, i)) for i in range(node.op.num_outputs)]
            try:
                new_in, new_out = node.op.infer_shape(ins, outs, node.params)
            except ShapeError as e:
                forward = node.attrs.get("forward")  # a gradient node: named by the node it differentiates
                raise ShapeError(f"node {node.name!r} ({node.op.name}): {e}" if forward is None else
                                 f"node {forward[0]!r} ({forward[1]}): in its gradient: {e}") from None
            edges = [("input", (c.uid, i), old, new) for (c, i), old, new in zip(node.inputs, ins, new_in)]
            edges += [("output", (node.uid, i), old, new) for i, (old, new) in enumerate(zip(outs, new_out))]
            for side, key, old, new in edges:
                if new is not None and new != old:
                    merged = merge_shape(old, tuple(new), f"{side} of node {node.name!r} ({node.op.name})")
                    if merged != old:
                        shapes[key] = merged
                        changed = True
        if not changed or not backward_too:
            return shapes
    return shapes


def infer_graph_shapes(sym, given: dict, complete=False):
    _check_names(sym, given, "infer_shape")
    nodes = topo_order(sym._outputs)
    shapes = {}
    for n in nodes:
        if n.is_variable:
            s = _declared_shape(n, given)
            if s is not None:
                shapes[(n.uid, 0)] = s
    _run_shape_pass(nodes, shapes)
    arg_shapes = [shapes.get((n.uid, 0)) for n in nodes if n.is_variable]
    out_shapes = [shapes.get((n.uid, i)) for n, i in sym._outputs]
    return arg_shapes, out_shapes, []


def _var_stype(node: Node, given: dict) -> str:
    return check_stype(given.get(node.name) or node.attrs.get("stype") or "default")


def infer_graph_stypes(sym, given: dict):
    _check_names(sym, given, "infer_storage_type")
    nodes = topo_order(sym._outputs)
    stypes = {}
    for n in nodes:
        if n.is_variable:
            stypes[(n.uid, 0)] = _var_stype(n, given)
        else:
            d = infer_storage(n.op, [stypes[(c.uid, i)] for c, i in n.inputs], n.params)
            for i, s in enumerate(d.out_stypes):
                stypes[(n.uid, i)] = s
    return ([stypes[(n.uid, 0)] for n in nodes if n.is_variable], [stypes[e] for e in
            ((n.uid, i) for n, i in sym._outputs)], [])


# -- the gradient graph ---------------------------------------------------------------------------

def grad_stype(arg_stype: str) -> str:
    """Storage type of an argument's gradient array: row_sparse stays row_sparse, else dense."""
    return "row_sparse" if arg_stype == "row_sparse" else "default"


def build_backward(outputs, nodes, needs_grad_args: set, head_grads: dict, shapes: dict | None = None):
    """Append the backward graph; returns ``(grad_entries, backward_nodes)``.

    ``grad_entries[arg_name]`` is the entry holding that argument's total gradient.
    ``head_grads[(uid, i)]`` gives the head-gradient variable node of each non-loss output.
    """
    needs = {}
    for n in nodes:
        needs[n.uid] = (n.name in needs_grad_args) if n.is_variable else any(needs[c.uid] for c, _ in n.inputs)
    created: list[Node] = []
    shapes = shapes or {}

    def shape_of(entry):
        node, i = entry
        return shapes.get((node.uid, i))

    differentiating = [None]  # (name, op) of the forward node whose gradient apply() is building

    def apply(op_name, *inputs, **params):
        op = registry.get(op_name)
        node = Node(op, f"_backward_{op_name}{len(created)}", inputs, {**op.params, **params},
                    {"backward": True, "forward": differentiating[0]})
        created.append(node)
        return [(node, i) for i in range(op.num_outputs)] if op.num_outputs > 1 else (node, 0)

    def total(entries):
        if len(entries) == 1:
            return entries[0]
        return apply("add_n", *entries)

    pending: dict = {}
    for n, i in outputs:
        if n.op is not None and not n.op.is_loss:
            pending.setdefault((n.uid, i), []).append((head_grads[(n.uid, i)], 0))
    for node in reversed(nodes):
        if node.is_variable or not needs[node.uid]:
            continue
        ogs = [pending.get((node.uid, i)) for i in range(node.op.num_outputs)]
        if not node.op.is_loss and all(g is None for g in ogs):
            continue
        if node.op.gradient is None:
            raise SparseTrainError(f"operator {node.op.name} (node {node.name!r}) has no gradient")
        _check_gradient_shapes(node, shape_of)
        differentiating[0] = (node.name, node.op.name)
        ogs = [total(g) if g else None for g in ogs]
        ctx = GradientContext(list(node.inputs), [(node, i) for i in range(node.op.num_outputs)], ogs,
                              node.params, apply, node.name, shape_of)
        for (child, ci), g in zip(node.inputs, node.op.gradient(ctx)):
            if g is not None and needs[child.uid]:
                pending.setdefault((child.uid, ci), []).append(g)
    grad_entries = {}
    for n in nodes:
        if n.is_variable and n.name in needs_grad_args and (n.uid, 0) in pending:
            grad_entries[n.name] = total(pending[(n.uid, 0)])
    # keep only what the gradients need, in an order that respects dependencies
    backward_nodes = [n for n in topo_order(list(grad_entries.values())) if n.attrs.get("backward")]
    return grad_entries, backward_nodes


def _check_gradient_shapes(node: Node, shape_of) -> None:
    """The op's ``gradient_shapes`` rule, as a ``ShapeError`` on the input it refuses: a variable as
    ``argument 'NAME': ...`` (a config's ``model.variables.NAME.shape``), else the node."""
    if node.op.gradient_shapes is None:
        return
    refused = node.op.gradient_shapes([shape_of(entry) for entry in node.inputs], node.params)
    if refused is None:
        return
    k, why = refused
    child, i = node.inputs[k]
    shape = list(shape_of((child, i)))
    if child.is_variable:
        raise ShapeError(f"argument {child.name!r}: {shape} {why}; it is input {k} of node {node.name!r} "
                         f"({node.op.name})")
    raise ShapeError(f"node {node.name!r} ({node.op.name}): input {k} ({child.output_name(i)}) {shape} {why}")


# -- the plan ----------------------------------------------------------------------------------

@dataclass
class Plan:
    symbol: object  # the Symbol planned
    forward: list  # op and variable nodes of the forward graph, topological
    backward: list  # op nodes of the backward graph, topological
    shapes: dict  # (uid, i) -> shape
    stypes: dict  # (uid, i) -> stype
    dispatch: dict  # uid -> registry.Dispatch
    args: list  # variable nodes, in list_arguments order
    grad_entries: dict  # arg name -> entry of its gradient
    head_grads: dict = field(default_factory=dict)  # output entry -> head-gradient variable node
    node_index: dict = field(default_factory=dict)  # uid -> number in the log

    def describe(self, with_backward=True) -> list[dict]:
        """One record per op node: what ``infer-stypes`` and the verbose log print."""
        rows = []
        nodes = self.forward + (self.backward if with_backward else [])
        for node in nodes:
            if node.op is None:
                continue
            d = self.dispatch[node.uid]
            rows.append({
                "index": self.node_index[node.uid], "name": node.name, "op": node.op.name,
                "dispatch": d.mode, "backward": bool(node.attrs.get("backward")),
                "inputs": [{"stype": self.stypes[(c.uid, i)], "shape": self.shapes.get((c.uid, i)),
                            "name": c.output_name(i)} for c, i in node.inputs],
                "outputs": [{"stype": self.stypes[(node.uid, i)], "shape": self.shapes.get((node.uid, i))}
                            for i in range(node.op.num_outputs)],
            })
        return rows

    def log_lines(self, with_backward=True) -> list[str]:
        """The verbose storage-type log (MXNet's ``MXNET_INFER_STORAGE_TYPE_VERBOSE_LOGGING``)."""
        return format_log(self.describe(with_backward))

    def to_dot(self, with_backward: bool = False, hints: dict | None = None, mults: dict | None = None) -> str:
        """The graph in Graphviz: op boxes coloured by dispatch (fallbacks red), edges labelled with
        stype and shape. ``hints``: ``{node name: how to avoid its fallback}``, written as comments;
        ``mults``: ``{parameter: (lr_mult, wd_mult)}`` to label it with (those its optimizer applies:
        :meth:`~sparsetrain.optimizer.Optimizer.multipliers`); a variable not in it is named plainly."""
        lines = ["digraph sparsetrain {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
        forward = {n.uid for n in self.forward}
        shown = {r["name"] for r in self.describe(with_backward)}
        for node in self.forward + (self.backward if with_backward else []):
            uid = f"n{node.uid}"
            if node.op is None:
                name = format_parameter(node.name, *(mults or {}).get(node.name, ()))
                lines.append(f'  {uid} [label="{name}\\n{self.stypes[(node.uid, 0)]}", shape=ellipse];')
                continue
            if node.name not in shown:
                continue
            d = self.dispatch[node.uid].mode
            style = {"fallback": 'style=filled, fillcolor="#ff9999", color=red, penwidth=2',
                     "sparse": 'style=filled, fillcolor="#cce5ff"', "dense": 'style=filled, fillcolor="#eeeeee"'}[d]
            lines.append(f'  {uid} [label="{node.name}\\n{node.op.name}\\n{d}", shape=box, {style}];')
            for child, i in node.inputs:
                if child.op is not None or child.uid in forward:
                    edge = f"{self.stypes[(child.uid, i)]} {format_shape(self.shapes.get((child.uid, i)))}"
                    attrs = ", style=dashed" if node.attrs.get("backward") else ""
                    lines.append(f'  n{child.uid} -> {uid} [label="{edge}"{attrs}];')
                else:
                    lines.append(f'  n{child.uid} [label="{child.name}", shape=plaintext];')
                    lines.append(f'  n{child.uid} -> {uid} [label="{self.stypes[(child.uid, i)]}", style=dashed];')
        for name, hint in (hints or {}).items():
            if hint and name in shown:
                lines.append(f"  // fallback at {name}: {hint}")
        lines.append("}")
        return "\n".join(lines)


def format_shape(shape) -> str:
    """``(32, 100)``; unknown dimensions as ``?``."""
    if shape is None:
        return "(?)"
    shape = tuple(shape)
    return "(" + ", ".join(str(d) if d else "?" for d in shape) + (",)" if len(shape) == 1 else ")")


def multipliers(attrs: dict) -> tuple[float, float]:
    """``(lr_mult, wd_mult)`` given on a variable whose attributes are ``attrs`` (a node's, or its entry of
    ``Symbol.attr_dict()``): ``Variable(lr_mult=...)``, a config's ``model.variables.NAME.lr_mult``, the
    ``__lr_mult__`` / ``__wd_mult__`` attributes an optimizer given the symbol reads; 1 where none is given."""
    return tuple(float(attrs.get(key, 1.0)) for key in (LR_MULT_ATTR, WD_MULT_ATTR))


def format_parameter(name: str, lr_mult: float = 1.0, wd_mult: float = 1.0) -> str:
    """A parameter as ``infer-stypes`` and fit's engine line name it, with its multipliers other than 1:
    ``factors (lr_mult 0.1, wd_mult 0)``."""
    shown = [f"{key} {value:g}" for key, value in (("lr_mult", lr_mult), ("wd_mult", wd_mult)) if value != 1.0]
    return f"{name} ({', '.join(shown)})" if shown else name


def format_log(rows: list[dict], gradients: list[dict] = ()) -> list[str]:
    """The verbose log of ``Plan.describe`` rows: per node its dispatch, input and output stypes and
    shapes (and ``fallback: <hint>`` when a row carries a ``hint``), then each gradient's stype."""
    lines = []
    for row in rows:
        lines.append(f"node {row['index']} {row['op']}: {row['dispatch']}")
        for k, e in enumerate(row["inputs"]):
            lines.append(f"    input {k}: {e['stype']} {format_shape(e['shape'])}")
        for k, e in enumerate(row["outputs"]):
            lines.append(f"    output {k}: {e['stype']} {format_shape(e['shape'])}")
        if row.get("hint"):
            lines.append(f"    fallback: {row['hint']}")
    for g in gradients:
        lines.append(f"gradient {g['argument']}: {g['stype']} {format_shape(g['shape'])}")
    return lines


def build_plan(sym, shapes: dict, stypes: dict | None = None, grad_req: dict | None = None,
               require_shapes=True) -> Plan:
    stypes = stypes or {}
    grad_req = grad_req or {}
    _check_names(sym, shapes, "the given shapes")
    _check_names(sym, stypes, "the given stypes")
    nodes = topo_order(sym._outputs)
    args = [n for n in nodes if n.is_variable]
    shape_of, stype_of = {}, {}
    for n in args:
        s = _declared_shape(n, shapes)
        if s is not None:
            shape_of[(n.uid, 0)] = s
        stype_of[(n.uid, 0)] = _var_stype(n, stypes)
    _run_shape_pass(nodes, shape_of)
    if require_shapes:
        missing = [n.name for n in args if not _known(shape_of.get((n.uid, 0)))]
        if missing:
            raise BindError(
                f"cannot infer the shape of argument(s) {missing}; give them at bind "
                f"(e.g. simple_bind({missing[0]}=(...)) or declare shape= on the Variable)"
            )
    head_grads = {}
    for n, i in sym._outputs:
        if n.op is not None and not n.op.is_loss:
            head = Node(None, f"_head_grad_{n.output_name(i)}", attrs={"backward": True})
            head_grads[(n.uid, i)] = head
            shape_of[(head.uid, 0)] = shape_of.get((n.uid, i))
    needs = {name for name, req in grad_req.items() if req != "null"}
    grad_entries, backward = build_backward(list(sym._outputs), nodes, needs, head_grads, shape_of)
    dispatch = {}
    for node in nodes:
        if node.op is not None:
            _infer_node_stype(node, stype_of, dispatch)
    for (uid, i), head in head_grads.items():
        stype_of[(head.uid, 0)] = stype_of[(uid, i)] if stype_of[(uid, i)] != "csr" else "default"
    _run_shape_pass(backward, shape_of, backward_too=False)
    for node in backward:
        if node.op is not None:
            _infer_node_stype(node, stype_of, dispatch)
    index = {n.uid: i for i, n in enumerate(nodes)}
    for n in backward:
        index[n.uid] = len(index)
    return Plan(sym, nodes, backward, shape_of, stype_of, dispatch, args, grad_entries, head_grads, index)


def _known(shape) -> bool:
    return shape is not None and all(d > 0 for d in shape)


def _infer_node_stype(node, stype_of, dispatch):
    try:
        d = infer_storage(node.op, [stype_of[(c.uid, i)] for c, i in node.inputs], node.params)
    except UnknownStorageTypeError as e:  # a parameter naming one (dot's forward_stype): which node's, as for shapes
        forward = node.attrs.get("forward")
        raise UnknownStorageTypeError(f"node {node.name!r} ({node.op.name}): {e}" if forward is None else
                                      f"node {forward[0]!r} ({forward[1]}): in its gradient: {e}") from None
    dispatch[node.uid] = d
    for i, s in enumerate(d.out_stypes):
        stype_of[(node.uid, i)] = s
