"""The pattern of the linear family's hand kernels (:mod:`.kernels`): the recogniser the compile step
(:func:`sparsetrain.engines.compiled.compile_model`) calls when the output layer's fused form names the
``linear`` epoch kernel; any other graph goes to the plan compiler.

The pattern: ``sum_k dot(X_k, W_k) [+ bias]`` into one of the four output layers, where each
``X_k`` is a csr data input, each ``W_k`` a row_sparse parameter of shape ``(D_k, K)``, ``bias`` a
dense parameter of ``K`` elements, and the optimizer one with an update rule
(``kernels.optim.RULES``). Anything else runs on the graph engine; ``reason`` says why.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..base import Unsupported
from .kernels import OUTPUTS  # the output layers the kernels implement


@dataclass
class Match:
    """What the compile step found: a target (``ok``; a linear kernel's ``terms``/``bias``, or a generated
    ``plan``) or what keeps the graph off (``unsupported``). ``reason``: that in one line; a target's
    names its parameters plainly — what the compiled code depends on — and :meth:`describe` names them
    as the engine line shows them (with the multipliers they train with)."""
    ok: bool
    reason: str = ""
    output: str = ""  # the output layer (loss operator) name, one of OUTPUTS
    terms: list = field(default_factory=list)  # [(data name, weight name)]
    bias: str | None = None
    label: str | None = None
    loss_params: dict = field(default_factory=dict)
    unsupported: list = field(default_factory=list)  # [Unsupported]: what keeps the model off the engine
    plan: object = None  # a generated plan's PlanSpec (engines/compiled/plan.py) when not the linear family

    def __post_init__(self):
        if self.ok and not self.reason:
            self.reason = self.describe()

    def describe(self, named=str) -> str:
        """What this target runs, in one line, each parameter ``p`` as ``named(p)`` says it."""
        if self.plan is not None:
            return f"generated plan: {self.output}, parameters {', '.join(named(p.name) for p in self.plan.params)}"
        terms = " + ".join(f"dot({x}, {named(w)})" for x, w in self.terms)
        return f"{self.output}({terms}{f' + {named(self.bias)}' if self.bias else ''})"


def _no(kind: str, name: str, why: str = "has no fused form") -> Match:
    item = Unsupported(kind, name, why)
    return Match(False, str(item), unsupported=[item])


_PATTERN = "the compiled engine runs sum(dot(csr, row_sparse)) [+ bias] into one output"


def match_symbol(symbol, data_names, label_names, param_names, stypes: dict, dtypes: dict) -> Match:
    """Match the graph of ``symbol``; ``stypes`` maps argument names to their storage types, ``dtypes`` the
    parameters to their dtypes: the kernels take one dtype for them all."""
    outputs = symbol._outputs
    if len(outputs) != 1:
        return _no("graph", "", f"the model has {len(outputs)} outputs; the compiled engine handles one loss")
    loss, _ = outputs[0]
    if loss.op is None or loss.op.name not in OUTPUTS:
        if loss.op is None:
            return _no("graph", "", f"the output is the variable {loss.name!r}, not a loss layer")
        return _no("output", loss.op.name, f"has no fused form (fused outputs: {', '.join(OUTPUTS)})")
    if loss.op.name == "SoftmaxOutput" and (loss.params.get("use_ignore") or loss.params.get("multi_output")
                                            or loss.params.get("normalization", "null") not in ("null", "batch")):
        return _no("output", "SoftmaxOutput", "with use_ignore, multi_output or normalization 'valid' has no "
                   "fused form")
    (pred, _), (label, _) = loss.inputs
    if label.op is not None or label.name not in label_names:
        return _no("graph", "", "the loss label is not a label input")
    bias = None
    if pred.op is not None and pred.op.name == "broadcast_add":
        (lhs, _), (rhs, _) = pred.inputs
        if rhs.op is None and rhs.name in param_names:
            pred, bias = lhs, rhs.name
        elif lhs.op is None and lhs.name in param_names:
            pred, bias = rhs, lhs.name
        else:
            return _no("op", "broadcast_add", f"has a fused form only to add a bias parameter ({_PATTERN})")
        if stypes.get(bias, "default") != "default":
            return _no("graph", "", f"bias {bias!r} is not dense")
    terms = []
    stack = [pred]
    while stack:
        node = stack.pop()
        if node.op is None:
            return _no("graph", "", f"{node.name!r} is summed into the prediction directly; expected dot(data, "
                       "weight) terms")
        if node.op.name in ("elemwise_add", "add_n"):
            stack.extend(child for child, _ in reversed(node.inputs))
            continue
        if node.op.name != "dot":
            return _no("op", node.op.name, f"has no fused form (node {node.name!r}; {_PATTERN})")
        if node.params.get("transpose_a") or node.params.get("transpose_b"):
            return _no("op", "dot", f"with a transposed input has no fused form (node {node.name!r})")
        (x, _), (w, _) = node.inputs
        if x.op is not None or x.name not in data_names or stypes.get(x.name) != "csr":
            return _no("op", "dot", f"has a fused form for a csr data input on the left only (node {node.name!r})")
        if w.op is not None or w.name not in param_names:
            return _no("op", "dot", f"has a fused form for a weight parameter on the right only (node {node.name!r})")
        if stypes.get(w.name) != "row_sparse":
            return _no("graph", "", f"weight {w.name!r} is {stypes.get(w.name, 'default')}; the compiled engine "
                       "makes lazy row-sparse updates, declare it stype: row_sparse")
        terms.append((x.name, w.name))
    if not terms:
        return _no("graph", "", "no dot(data, weight) term")
    weights = [w for _, w in terms]
    if len(set(weights)) != len(weights):
        return _no("graph", "", "a weight appears in more than one dot")
    used = set(weights) | ({bias} if bias else set())
    extra = [p for p in param_names if p not in used]
    if extra:
        return _no("graph", "", f"parameters {extra} are outside the linear pattern")
    # the runner's buffers all have the model's one dtype: a float64 weight beside a float32 bias would stop the
    # first batch
    kinds = sorted({str(dtypes[p]) for p in weights + ([bias] if bias else [])})
    if len(kinds) > 1:
        return _no("graph", "", f"parameters of dtypes {kinds} (one of float32, float64 is fused)")  # (a plan's words)
    return Match(True, output=loss.op.name, terms=terms, bias=bias, label=label.name, loss_params=dict(loss.params))


def match_optimizer(optimizer) -> Unsupported | None:
    """None when the fused kernels implement ``optimizer`` (it names a rule of
    ``kernels.optim.RULES`` and keeps the base class's update); otherwise what they lack."""
    from ...kernels.optim import RULES
    from ...optimizer import Optimizer

    name = type(optimizer).__name__
    if getattr(optimizer, "rule_name", None) not in RULES:
        return Unsupported("optimizer", name,
                           f"has no update rule the fused kernel can run (rules: {', '.join(RULES)})")
    for method in ("update", "update_multi_precision"):
        if getattr(type(optimizer), method, None) is not getattr(Optimizer, method):
            return Unsupported("optimizer", name, f"overrides {method}(); the fused kernel runs only its rule")
    return None
