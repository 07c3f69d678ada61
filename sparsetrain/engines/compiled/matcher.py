"""Recognise the linear-model family in a bound Module, so it can run as fused numba epochs.

The pattern: ``sum_k dot(X_k, W_k) [+ bias]`` into one of the four output layers, where each
``X_k`` is a csr data input, each ``W_k`` a row_sparse parameter of shape ``(D_k, K)``, ``bias`` a
dense parameter of ``K`` elements, and the optimizer one the fused kernels implement. Anything
else runs on the graph engine; ``reason`` says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .kernels import OUTPUTS  # the output layers the kernels implement

OPTIMIZERS = ("SGD", "AdaGrad", "Adam", "FTRL")


@dataclass
class Match:
    ok: bool
    reason: str
    output: str = ""  # the output layer (loss operator) name, one of OUTPUTS
    terms: list = field(default_factory=list)  # [(data name, weight name)]
    bias: str | None = None
    label: str | None = None
    loss_params: dict = field(default_factory=dict)


def _no(reason: str) -> Match:
    return Match(False, reason)


def match_symbol(symbol, data_names, label_names, param_names, stypes: dict) -> Match:
    """Match the graph of ``symbol``; ``stypes`` maps argument names to their storage types."""
    outputs = symbol._outputs
    if len(outputs) != 1:
        return _no(f"the model has {len(outputs)} outputs; the compiled engine handles one loss")
    loss, _ = outputs[0]
    if loss.op is None or loss.op.name not in OUTPUTS:
        name = "a variable" if loss.op is None else loss.op.name
        return _no(f"the output is {name}, not one of {', '.join(OUTPUTS)}")
    if loss.op.name == "SoftmaxOutput" and (loss.params.get("use_ignore") or loss.params.get("multi_output")
                                            or loss.params.get("normalization", "null") not in ("null", "batch")):
        return _no("SoftmaxOutput with use_ignore, multi_output or normalization 'valid'")
    (pred, _), (label, _) = loss.inputs
    if label.op is not None or label.name not in label_names:
        return _no("the loss label is not a label input")
    bias = None
    if pred.op is not None and pred.op.name == "broadcast_add":
        (lhs, _), (rhs, _) = pred.inputs
        if rhs.op is None and rhs.name in param_names:
            pred, bias = lhs, rhs.name
        elif lhs.op is None and lhs.name in param_names:
            pred, bias = rhs, lhs.name
        else:
            return _no("broadcast_add does not add a bias parameter")
        if stypes.get(bias, "default") != "default":
            return _no(f"bias {bias!r} is not dense")
    terms = []
    stack = [pred]
    while stack:
        node = stack.pop()
        if node.op is None:
            return _no(f"{node.name!r} is summed into the prediction directly; expected dot(data, weight) terms")
        if node.op.name in ("elemwise_add", "add_n"):
            stack.extend(child for child, _ in reversed(node.inputs))
            continue
        if node.op.name != "dot":
            return _no(f"operator {node.op.name} (node {node.name!r}) is outside the linear pattern "
                       "sum(dot(csr, row_sparse)) [+ bias]")
        if node.params.get("transpose_a") or node.params.get("transpose_b"):
            return _no(f"dot node {node.name!r} transposes an input")
        (x, _), (w, _) = node.inputs
        if x.op is not None or x.name not in data_names or stypes.get(x.name) != "csr":
            return _no(f"dot node {node.name!r}: the left input must be a csr data input")
        if w.op is not None or w.name not in param_names:
            return _no(f"dot node {node.name!r}: the right input must be a weight parameter")
        if stypes.get(w.name) != "row_sparse":
            return _no(f"weight {w.name!r} is {stypes.get(w.name, 'default')}; the compiled engine makes lazy "
                       "row-sparse updates, declare it stype: row_sparse")
        terms.append((x.name, w.name))
    if not terms:
        return _no("no dot(data, weight) term")
    weights = [w for _, w in terms]
    if len(set(weights)) != len(weights):
        return _no("a weight appears in more than one dot")
    used = set(weights) | ({bias} if bias else set())
    extra = [p for p in param_names if p not in used]
    if extra:
        return _no(f"parameters {extra} are outside the linear pattern")
    out = loss.op.name
    desc = " + ".join(f"dot({x}, {w})" for x, w in terms) + (f" + {bias}" if bias else "")
    return Match(True, f"{loss.op.name}({desc})", out, terms, bias, label.name, dict(loss.params))


def match_optimizer(optimizer) -> str | None:
    """None when the fused kernels implement ``optimizer``; otherwise the reason they don't."""
    name = type(optimizer).__name__
    if name not in OPTIMIZERS:
        return f"optimizer {name} has no fused kernel (supported: {', '.join(OPTIMIZERS)})"
    return None
