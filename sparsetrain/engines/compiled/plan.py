"""The plan compiler: a bound graph whose ops all have a fused form becomes one numba function.

:func:`lower` walks the forward graph of a bound Module (seen through its
:class:`~sparsetrain.engines.base.ModuleView`) and reads each op's ``fused`` attribute
(:class:`~sparsetrain.ops.registry.FusedForm`, registered in the op's own file) into a
:class:`PlanSpec`; :func:`.plan_source.generate` writes the Python source of one ``@njit(cache=True)``
function that trains many batches per call: forward, output layer, metrics, backward, and the
optimizer's update — lazy on the rows a batch touches for a row-sparse parameter — through
:func:`sparsetrain.kernels.optim.apply_rows`, the rules every engine uses. :mod:`.plan_runner` caches
the source on disk and runs it.

Every value of the graph is one of three things, decided by what it depends on:

* a **csr expression**: the csr data input, or a zero-preserving unary op of one (``square(X)``);
  an expression of the stored entry ``xd[p]``, sharing the input's structure;
* **ids**: a dense data input of integer ids ``(batch,)`` or ``(batch, F)``, read by ``Embedding``
  only; the runner hands it over as the columns of a csr batch (``F`` per row, clipped to the table
  as the graph engine clips), so a row-sparse table's gradient rows are the batch's ids;
* a **parameter expression**: a parameter, or a unary op of one (``square(V)``); an expression
  of the element ``P[r, j]``, with its derivative by that element;
* an **activation**: a ``(batch rows, width)`` buffer (``dot`` of a csr or activation with a
  parameter expression, element-wise and broadcast ops, ``sum``/``mean`` over axis 1); an
  ``Embedding`` of ``(batch, F)`` ids is a ``(batch, F, k)`` activation held as width ``F·k``
  (``fields`` = F), which element-wise ops keep and ``sum``/``mean`` over axis 1 or 2 reduce.

A parameter with a row-sparse gradient (reached through ``dot(csr expression, ...)`` or an
``Embedding`` with ``sparse_grad``) gets its gradient on the batch's columns (or ids) only (the rows
of the graph engine's row-sparse gradient) and a lazy update; a dense parameter a dense gradient and
a dense update, as on the graph engine.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...ops.registry import infer_storage
from ...symbol.node import topo_order

# bump when the generated code changes in a way its source text does not show
FORMAT = 5


class NotFused(Exception):
    """Why a graph has no fused plan (one line, naming the op, metric or optimizer)."""


def not_trained(name: str) -> str:
    """Why a fixed parameter (``grad_req`` null, ``fixed_param_names``) keeps a graph off the compiled engine,
    a plan and a hand kernel alike: they update every parameter they take."""
    return f"parameter {name!r} is not trained (fixed parameters are not fused)"


@dataclass
class Param:
    name: str
    rows: int
    cols: int
    row_sparse: bool  # a row_sparse gradient: on the batch's columns (or ids) only, lazy update


@dataclass
class Value:
    kind: str  # "csr", "ids", "param" or "act"
    expr: str = ""  # csr: of xd[p]; param: of {r}, {j}
    deriv: str = "1.0"  # param: d expr / d P[r, j]
    param: int = -1  # param: index into PlanSpec.params
    width: int = 1  # act: columns; param: columns
    rows: int = 1  # param: rows
    buf: str = ""  # act: buffer name
    fields: int = 0  # act: F of a (batch, F, width / F) value; ids: F of (batch, F) ids (0: (batch,))


@dataclass
class CsrDot:
    """``out = dot(csr expression, parameter expression)``: ``x`` of ``xd[p]``, ``w``/``dw`` (the
    parameter expression and its derivative) of ``c`` and ``j``."""

    out: str
    width: int
    x: str
    w: str
    dw: str
    param: int


@dataclass
class PlanSpec:
    """What :func:`generate` needs: the parameters (optimizer order), the lowered code, the output."""

    params: list
    forward: list = field(default_factory=list)  # code lines, inside the batch loop
    backward: list = field(default_factory=list)  # blocks of code lines, in forward order
    acts: list = field(default_factory=list)  # (buffer name, width)
    csr_dots: list = field(default_factory=list)  # CsrDot, in forward order: one pass over each row
    pred: str = ""
    out_width: int = 1
    output: str = ""
    dtype: str = "float32"
    data: str = ""
    ids: bool = False  # the data input is dense integer ids (Embedding's), handed over as csr columns
    id_space: int = 0  # ids: the rows of the tables they select (ids are clipped to [0, id_space))
    label: str = ""
    loss_params: dict = field(default_factory=dict)


_TOKEN = re.compile(r"\b([aby])\b")


def fill(template: str, **values) -> str:
    """``template`` with the variables ``a``, ``b``, ``y`` replaced by ``values`` (parenthesised)."""
    return _TOKEN.sub(lambda m: f"({values[m.group(1)]})" if m.group(1) in values else m.group(1), template)


def _param_at(v: Value, r: str, j: str) -> tuple[str, str]:
    return v.expr.replace("{r}", r).replace("{j}", j), v.deriv.replace("{r}", r).replace("{j}", j)


def _act_at(v: Value, i: str, j: str) -> str:
    return f"{v.buf}[{i}, {j if v.width > 1 else '0'}]"


class _Lowering:
    def __init__(self, view, shapes: dict, dtype: str):
        self.view = view
        self.shapes = shapes
        self.spec = PlanSpec(params=[], dtype=dtype)
        self.values: dict = {}
        self.param_index: dict = {}

    # -- helpers ---------------------------------------------------------------------------
    def act(self, node, width: int, fields: int = 0) -> Value:
        name = f"a{len(self.spec.acts)}"
        self.spec.acts.append((name, width))
        return Value("act", width=width, buf=name, fields=fields)

    def width_of(self, node) -> int:
        shape = self.shapes.get(node.uid)
        if shape is None or len(shape) not in (1, 2) or shape[0] != BATCH:
            raise NotFused(f"node {node.name!r} ({node.op.name}) has shape {shape}; fused values are "
                           "(batch,) or (batch, width)")
        return shape[1] if len(shape) == 2 else 1

    def layout_of(self, node) -> tuple[int, int]:
        """``(width, fields)`` of a node's value: ``(batch, w)`` -> ``(w, 0)``, ``(batch, F, k)`` -> ``(F·k, F)``."""
        shape = self.shapes.get(node.uid)
        if shape is not None and len(shape) == 3 and shape[0] == BATCH:
            return shape[1] * shape[2], shape[1]
        return self.width_of(node), 0

    def param_value(self, name: str) -> Value:
        if name not in self.param_index:
            array = self.view.arrays[name]
            shape = array.shape
            if len(shape) not in (1, 2):
                raise NotFused(f"parameter {name!r} has {len(shape)} dimensions (1 or 2 are fused)")
            rows, cols = (1, shape[0]) if len(shape) == 1 else shape
            # the gradient's stype decides, as on the graph engine: a row_sparse one updates lazily
            stype = self.view.grad_stypes.get(name) or "default"
            self.param_index[name] = len(self.spec.params)
            self.spec.params.append(Param(name, rows, cols, stype == "row_sparse"))
        t = self.param_index[name]
        p = self.spec.params[t]
        return Value("param", expr=f"p{t}[{{r}}, {{j}}]", param=t, width=p.cols, rows=p.rows)

    # -- the walk --------------------------------------------------------------------------
    def variable(self, node) -> Value:
        view = self.view
        if node.name in view.data_names:
            stype = view.arg_stypes.get(node.name)
            if stype not in ("csr", "default"):
                raise NotFused(f"data input {node.name!r} is {stype}; fused plans read csr data or dense ids")
            if self.spec.data and self.spec.data != node.name:
                raise NotFused("more than one data input")
            self.spec.data = node.name
            if stype == "csr":
                return Value("csr", expr="xd[p]")
            shape = view.arrays[node.name].shape
            if len(shape) not in (1, 2):
                raise NotFused(f"data input {node.name!r} has {len(shape)} dimensions; fused ids are (batch,) "
                               "or (batch, fields)")
            self.spec.ids = True
            return Value("ids", width=shape[1] if len(shape) == 2 else 1, fields=shape[1] if len(shape) == 2 else 0)
        if node.name in view.label_names:
            return Value("label")
        if node.name in view.param_names:
            if view.grad_stypes.get(node.name) is None:
                raise NotFused(not_trained(node.name))
            return self.param_value(node.name)
        raise NotFused(f"variable {node.name!r} is neither data, label nor a parameter")

    def node(self, node) -> Value:
        op = node.op
        form = op.fused
        if form is None:
            raise NotFused(f"op {op.name!r} has no fused form (node {node.name!r})")
        why = form.refuses({**op.params, **node.params})
        if why:
            raise NotFused(f"op {op.name!r} with {why} has no fused form (node {node.name!r})")
        ins = [self.values[(c.uid, i)] for c, i in node.inputs]
        if form.kind != "embedding" and any(v.kind == "ids" for v in ins):
            raise NotFused(f"operator {op.name} (node {node.name!r}) of the dense data input "
                           f"{self.spec.data!r}: fused plans read dense data as Embedding ids only")
        lower = getattr(self, "lower_" + form.kind)
        return lower(node, form, ins)

    def lower_unary(self, node, form, ins):
        (x,) = ins
        grad = form.partials[0]
        if x.kind == "csr":
            if infer_storage(node.op, ("csr",), node.params).out_stypes[0] != "csr":
                raise NotFused(f"operator {node.op.name} (node {node.name!r}) of csr data is dense (f(0) != 0)")
            return Value("csr", expr=fill(form.forward, a=x.expr))
        if x.kind == "param":
            y = fill(form.forward, a=x.expr)
            return Value("param", expr=y, deriv=f"({fill(grad, a=x.expr, y=y)}) * {x.deriv}", param=x.param,
                         width=x.width, rows=x.rows)
        out = self.act(node, x.width, x.fields)
        ai, oi = _act_at(x, "i", "j"), _act_at(out, "i", "j")
        self.loop(self.spec.forward, out.width, [f"{oi} = {fill(form.forward, a=ai)}"])
        block = []
        self.loop(block, out.width, [f"{_grad(x, 'i', 'j')} += g{out.buf[1:]}[i, j] * ({fill(grad, a=ai, y=oi)})"])
        self.spec.backward.append(block)
        return out

    def lower_binary(self, node, form, ins):
        a, b = ins
        if a.kind != "act" or b.kind != "act" or a.width != b.width or a.fields != b.fields:
            raise NotFused(f"operator {node.op.name} (node {node.name!r}) of {a.kind} and {b.kind} values")
        if a.fields:  # (batch, F, k) values of one layout: element by element, as (batch, F·k)
            return self.elementwise(node, form, ins, a.width, a.fields)
        return self.lower_broadcast(node, form, ins)

    def lower_broadcast(self, node, form, ins):
        for v in ins:
            if v.fields:
                raise NotFused(f"operator {node.op.name} (node {node.name!r}) of a (batch, fields, width) value")
        return self.elementwise(node, form, ins, self.width_of(node), 0)

    def elementwise(self, node, form, ins, width, fields):
        for v in ins:
            if v.kind == "csr" or v.kind == "label":
                raise NotFused(f"operator {node.op.name} (node {node.name!r}) of csr data")
            if v.kind == "param" and (v.rows != 1 or v.width not in (1, width)
                                      or self.spec.params[v.param].row_sparse):
                raise NotFused(f"operator {node.op.name} (node {node.name!r}): parameter of shape "
                               f"({v.rows}, {v.width}) against a batch of width {width}")
            if v.kind == "act" and v.width not in (1, width):
                raise NotFused(f"operator {node.op.name} (node {node.name!r}): widths {v.width} and {width}")
        if all(v.kind == "param" for v in ins):
            raise NotFused(f"operator {node.op.name} (node {node.name!r}) of parameters only")
        out = self.act(node, width, fields)
        at = [_act_at(v, "i", "j") if v.kind == "act" else _param_at(v, "0", "j" if v.width > 1 else "0")[0]
              for v in ins]
        oi = _act_at(out, "i", "j")
        self.loop(self.spec.forward, width, [f"{oi} = {fill(form.forward, a=at[0], b=at[1])}"])
        block = []
        body = []
        for v, partial in zip(ins, form.partials):
            d = f"({fill(partial, a=at[0], b=at[1], y=oi)})"
            if v.kind == "act":
                body.append(f"{_grad(v, 'i', 'j')} += g{out.buf[1:]}[i, j] * {d}")
            else:
                jj = "j" if v.width > 1 else "0"
                deriv = _param_at(v, "0", jj)[1]
                body.append(f"gp{v.param}[0, {jj}] += g{out.buf[1:]}[i, j] * {d} * {deriv}")
        self.loop(block, width, body)
        self.spec.backward.append(block)
        return out

    def lower_dot(self, node, form, ins):
        a, w = ins
        if w.kind != "param":
            raise NotFused(f"dot node {node.name!r}: the right input must be a parameter (or a unary op of one)")
        out = self.act(node, w.width)
        g = f"g{out.buf[1:]}"
        wv, wd = _param_at(w, "c", "j")
        if a.kind == "csr":
            if w.rows != self.view.arrays[self.spec.data].shape[1]:
                raise NotFused(f"dot node {node.name!r}: weight rows {w.rows} != data columns")
            # a csr dot reads data and parameters only: every one of them runs in one pass over
            # each row before the rest of the forward, its gradient in one pass after the rest
            self.spec.csr_dots.append(CsrDot(out.buf, w.width, a.expr, wv, wd, w.param))
            return out
        if a.kind != "act" or a.width != w.rows or a.fields:
            raise NotFused(f"dot node {node.name!r}: a {a.kind} value of width {a.width} times a "
                           f"({w.rows}, {w.width}) parameter")
        if self.spec.params[w.param].row_sparse:
            raise NotFused(f"dot node {node.name!r}: a row_sparse weight under a dense input")
        self.spec.forward += [
            "for i in range(n):",
            f"    for j in range({w.width}):",
            "        acc = zero",
            f"        for c in range({w.rows}):",
            f"            acc += {_act_at(a, 'i', 'c')} * {wv}",
            f"        {out.buf}[i, j] = acc",
        ]
        self.spec.backward.append([
            "for i in range(n):",
            f"    for c in range({w.rows}):",
            "        acc = zero",
            f"        for j in range({w.width}):",
            f"            acc += {g}[i, j] * {wv}",
            f"            gp{w.param}[c, j] += {_act_at(a, 'i', 'c')} * {g}[i, j] * {wd}",
            f"        {_grad(a, 'i', 'c')} += acc",
        ])
        return out

    def lower_reduce(self, node, form, ins):
        (x,) = ins
        if x.kind != "act":
            raise NotFused(f"operator {node.op.name} (node {node.name!r}) of a {x.kind} value")
        if x.fields:
            return self.reduce_fields(node, form, x)
        out = self.act(node, 1)
        scale = f" * {1.0 / x.width!r}" if form.forward == "mean" else ""
        self.spec.forward += [
            "for i in range(n):",
            "    acc = zero",
            f"    for j in range({x.width}):",
            f"        acc += {_act_at(x, 'i', 'j')}",
            f"    {out.buf}[i, 0] = acc{scale}",
        ]
        self.spec.backward.append([
            "for i in range(n):",
            f"    for j in range({x.width}):",
            f"        {_grad(x, 'i', 'j')} += g{out.buf[1:]}[i, 0]{scale}",
        ])
        return out

    def reduce_fields(self, node, form, x):
        """``sum``/``mean`` of a ``(batch, F, k)`` value over its axis 1 (the fields) or 2."""
        axis = node.params.get("axis")
        axis = axis[0] if isinstance(axis, (list, tuple)) else axis
        fields, k = x.fields, x.width // x.fields
        over_fields = axis == 1
        width, out_fields = self.layout_of(node)
        out = self.act(node, width, out_fields)
        n_out, n_in = (k, fields) if over_fields else (fields, k)
        at = "{}[i, f * {} + j]".format if over_fields else "{}[i, j * {} + f]".format
        scale = f" * {1.0 / n_in!r}" if form.forward == "mean" else ""
        self.spec.forward += [
            "for i in range(n):",
            f"    for j in range({n_out}):",
            "        acc = zero",
            f"        for f in range({n_in}):",
            f"            acc += {at(x.buf, k)}",
            f"        {_act_at(out, 'i', 'j')} = acc{scale}",
        ]
        self.spec.backward.append([
            "for i in range(n):",
            f"    for j in range({n_out}):",
            f"        for f in range({n_in}):",
            f"            {at('g' + x.buf[1:], k)} += {_grad(out, 'i', 'j')}{scale}",
        ])
        return out

    def lower_embedding(self, node, form, ins):
        ids, w = ins
        if ids.kind != "ids":
            raise NotFused(f"Embedding node {node.name!r}: the ids must be a dense data input, not a {ids.kind} value")
        if w.kind != "param":
            raise NotFused(f"Embedding node {node.name!r}: the weight must be a parameter (or a unary op of one)")
        if self.spec.id_space and self.spec.id_space != w.rows:
            raise NotFused(f"Embedding node {node.name!r}: tables of {self.spec.id_space} and {w.rows} rows "
                           "select by the same ids")
        self.spec.id_space = w.rows
        fields = max(ids.fields, 1)
        out = self.act(node, fields * w.width, ids.fields)
        wv, wd = _param_at(w, "ce", "j")
        at = f"{out.buf}[i, f * {w.width} + j]"
        self.spec.forward += [
            "for i in range(n):",
            "    r = order[lo + i]",
            f"    for f in range({fields}):",
            "        ce = np.uint64(xi[xp[r] + f])",
            f"        for j in range({w.width}):",
            f"            {at} = {wv}",
        ]
        # a row-sparse gradient's row is the id's position among the batch's ids (entry: F per row)
        row = f"entry[i * {fields} + f]" if self.spec.params[w.param].row_sparse else "ce"
        self.spec.backward.append([
            "for i in range(n):",
            "    r = order[lo + i]",
            f"    for f in range({fields}):",
            "        ce = np.uint64(xi[xp[r] + f])",
            f"        for j in range({w.width}):",
            f"            gp{w.param}[{row}, j] += g{at[1:]} * {wd}",
        ])
        return out

    def lower_output(self, node, form, ins):
        raise NotFused(f"loss {node.op.name} (node {node.name!r}) inside the graph")

    @staticmethod
    def loop(lines, width, body):
        lines += ["for i in range(n):", f"    for j in range({width}):"] + [f"        {s}" for s in body]


def _grad(v: Value, i: str, j: str) -> str:
    return f"g{v.buf[1:]}[{i}, {j if v.width > 1 else '0'}]"


# a batch size no shape of a model's parameters is likely to share: tells batch axes apart
BATCH = 7919


def lower(view) -> PlanSpec:
    """The plan of ``view``'s graph, or :class:`NotFused` naming what has no fused form."""
    symbol = view.symbol
    outputs = symbol._outputs
    if len(outputs) != 1:
        raise NotFused(f"the model has {len(outputs)} outputs; a fused plan trains one loss")
    loss, _ = outputs[0]
    if loss.op is None or loss.op.fused is None or loss.op.fused.kind != "output":
        raise NotFused(f"the output {loss.name!r} is not one of the four output layers")
    why = loss.op.fused.refuses({**loss.op.params, **loss.params})
    if why:
        raise NotFused(f"{loss.op.name}: {why} is not fused")
    shapes = batch_shapes(view)
    params = [view.arrays[p] for p in view.param_names]
    dtypes = {str(a.dtype) for a in params}
    if len(dtypes) != 1 or next(iter(dtypes)) not in ("float32", "float64"):
        raise NotFused(f"parameters of dtypes {sorted(dtypes)} (one of float32, float64 is fused)")
    low = _Lowering(view, shapes, next(iter(dtypes)))
    for node in topo_order([outputs[0][0].inputs[0]]):
        if node.op is None:
            low.values[(node.uid, 0)] = low.variable(node)
        else:
            if node.op.num_outputs != 1:
                raise NotFused(f"operator {node.op.name} (node {node.name!r}) has several outputs")
            low.values[(node.uid, 0)] = low.node(node)
    (pred_node, pi), (label_node, _) = loss.inputs
    pred = low.values[(pred_node.uid, pi)]
    if pred.kind != "act" or pred.fields:
        raise NotFused(f"the prediction {pred_node.name!r} is a {pred.kind} value, not a batch of outputs")
    if label_node.op is not None or label_node.name not in view.label_names:
        raise NotFused("the loss label is not a label input")
    unused = [p for p in view.param_names if p not in low.param_index]
    if unused:
        raise NotFused(f"parameters {unused} do not reach the loss")
    spec = low.spec
    spec.pred, spec.out_width, spec.output = pred.buf, pred.width, loss.op.name
    spec.label, spec.loss_params = label_node.name, dict(loss.params)
    if spec.output == "SoftmaxOutput" and spec.out_width < 2:
        raise NotFused("SoftmaxOutput needs at least 2 classes")
    return spec


def batch_shapes(view) -> dict:
    """Forward shapes by node uid with the data's batch axis set to :data:`BATCH`."""
    from ...symbol.graph import infer_graph_shapes

    given = {}
    for name in view.data_names:
        given[name] = (BATCH,) + tuple(view.arrays[name].shape[1:])
    for name in view.label_names:
        given[name] = (BATCH,) + tuple(view.arrays[name].shape[1:])
    for name in view.param_names:
        given[name] = tuple(view.arrays[name].shape)
    return node_shapes(view.symbol, given, infer_graph_shapes)


def node_shapes(symbol, given, infer) -> dict:
    """uid -> the shape of the node's first output (by running the shape pass on ``given``)."""
    internals = symbol.get_internals()
    _, out_shapes, _ = infer(internals, given)
    return {node.uid: shape for (node, _), shape in zip(internals._outputs, out_shapes)}


# -- code generation ----------------------------------------------------------------------------
