"""Symbols: immutable DAGs of variables and operator nodes, composed through the op registry."""
from __future__ import annotations

import json
import numbers

from ..base import LR_MULT_ATTR, WD_MULT_ATTR, ShapeError, SparseTrainError, check_stype
from ..ndarray.arith import BINARY_OPS
from ..ops import registry
from ..ops.signature import parse_call
from .executor import Executor
from .graph import infer_graph_shapes, infer_graph_stypes
from .node import Node, topo_order


class NameManager:
    """Automatic names with a counter per op: ``elemwise_add0``, ``negative0``, ``elemwise_add1``."""

    def __init__(self):
        self.counters: dict[str, int] = {}

    def get(self, name, hint):
        if name is not None:
            return name
        hint = hint.lower()
        n = self.counters.get(hint, 0)
        self.counters[hint] = n + 1
        return f"{hint}{n}"


_names = NameManager()


class Symbol:
    """A list of output entries of a graph; immutable, composed with op functions."""

    __slots__ = ("_outputs",)

    def __init__(self, outputs):
        self._outputs = tuple(outputs)

    # -- description ------------------------------------------------------------------------
    @property
    def name(self):
        if len(self._outputs) != 1:
            return None
        return self._outputs[0][0].name

    def __repr__(self) -> str:
        if len(self._outputs) == 1:
            return f"<Symbol {self.name}>"
        return f"<Symbol group [{', '.join(n.name for n, _ in self._outputs)}]>"

    def _nodes(self) -> list[Node]:
        return topo_order(self._outputs)

    def list_arguments(self) -> list[str]:
        return [n.name for n in self._nodes() if n.is_variable]

    def list_inputs(self) -> list[str]:
        return self.list_arguments()

    def list_outputs(self) -> list[str]:
        return [n.output_name(i) for n, i in self._outputs]

    def list_auxiliary_states(self) -> list[str]:
        return []

    def attr(self, key):
        node = self._outputs[0][0]
        return node.attrs.get(key, node.params.get(key))

    def list_attr(self) -> dict:
        node = self._outputs[0][0]
        return {k: str(v) for k, v in {**node.params, **node.attrs}.items()}

    def attr_dict(self) -> dict:
        return {n.name: {k: str(v) for k, v in {**n.params, **n.attrs}.items()} for n in self._nodes()}

    def get_internals(self) -> "Symbol":
        return Symbol([(n, i) for n in self._nodes() for i in range(n.num_outputs)])

    def get_children(self):
        node = self._outputs[0][0]
        return Symbol(node.inputs) if node.inputs else None

    def __getitem__(self, index):
        if isinstance(index, str):
            names = self.list_outputs()
            if index not in names:
                raise KeyError(f"no output named {index!r}; outputs are {names}")
            index = names.index(index)
        return Symbol([self._outputs[index]])

    def __iter__(self):
        return (Symbol([e]) for e in self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    # -- composition through operators (the same table as NDArray's operators) ----------------
    def _binary(self, lhs, rhs, kind):
        same, broadcast, scalar, rscalar = BINARY_OPS[kind]
        if isinstance(rhs, numbers.Number):
            return _apply(scalar, [lhs], {"scalar": float(rhs)})
        if isinstance(lhs, numbers.Number):
            return _apply(rscalar, [rhs], {"scalar": float(lhs)})
        if not (isinstance(lhs, Symbol) and isinstance(rhs, Symbol)):
            return NotImplemented
        return _apply(same, [lhs, rhs], {})

    def __add__(self, o):
        return self._binary(self, o, "add")

    def __radd__(self, o):
        return self._binary(o, self, "add")

    def __sub__(self, o):
        return self._binary(self, o, "sub")

    def __rsub__(self, o):
        return self._binary(o, self, "sub")

    def __mul__(self, o):
        return self._binary(self, o, "mul")

    def __rmul__(self, o):
        return self._binary(o, self, "mul")

    def __truediv__(self, o):
        return self._binary(self, o, "div")

    def __rtruediv__(self, o):
        return self._binary(o, self, "div")

    def __pow__(self, o):
        return self._binary(self, o, "pow")

    def __rpow__(self, o):
        return self._binary(o, self, "pow")

    def __neg__(self):
        return _apply("negative", [self], {})

    def reshape(self, *shape, **kwargs):
        """``sym.Reshape(self, shape=...)``."""
        shape = kwargs.pop("shape", shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)
        return _apply("Reshape", [self], {"shape": tuple(shape)}, kwargs.pop("name", None))

    # -- inference ------------------------------------------------------------------------------
    def infer_shape_partial(self, *args, **kwargs):
        shapes = _positional(self, args, kwargs, "shape")
        return infer_graph_shapes(self, shapes, complete=False)

    def infer_shape(self, *args, **kwargs):
        """``(arg_shapes, out_shapes, aux_shapes)``; ``(None, None, None)`` if some shape stays unknown."""
        shapes = _positional(self, args, kwargs, "shape")
        arg_shapes, out_shapes, aux = infer_graph_shapes(self, shapes, complete=False)
        if not all(s is not None and all(s) for s in arg_shapes + out_shapes):
            return None, None, None
        return arg_shapes, out_shapes, aux

    def infer_storage_type(self, *args, **kwargs):
        stypes = _positional(self, args, kwargs, "stype")
        return infer_graph_stypes(self, stypes)

    # -- binding ------------------------------------------------------------------------------
    def simple_bind(self, ctx=None, grad_req="write", type_dict=None, stype_dict=None,
                    strict_stypes=None, verbose_stypes=None, **shapes):
        return Executor.simple_bind(self, grad_req=grad_req, type_dict=type_dict, stype_dict=stype_dict,
                                    strict_stypes=strict_stypes, verbose_stypes=verbose_stypes, shapes=shapes)

    def bind(self, ctx=None, args=None, args_grad=None, grad_req="write", aux_states=None, **kwargs):
        return Executor.bind(self, args=args, args_grad=args_grad, grad_req=grad_req)

    # -- serialisation ------------------------------------------------------------------------
    def tojson(self) -> str:
        nodes = self._nodes()
        index = {n.uid: i for i, n in enumerate(nodes)}
        out = []
        for n in nodes:
            entry = {"op": "null" if n.op is None else n.op.name, "name": n.name,
                     "inputs": [[index[c.uid], i] for c, i in n.inputs]}
            if n.params:
                entry["params"] = {k: _jsonable(v) for k, v in n.params.items()}
            if n.attrs:
                entry["attrs"] = {k: _jsonable(v) for k, v in n.attrs.items()}
            out.append(entry)
        heads = [[index[n.uid], i] for n, i in self._outputs]
        return json.dumps({"nodes": out, "heads": heads, "format": "sparsetrain-symbol-1"}, indent=2)

    def save(self, fname: str) -> None:
        with open(fname, "w") as f:
            f.write(self.tojson())


def _jsonable(v):
    if hasattr(v, "dumps"):
        return {"__initializer__": json.loads(v.dumps())}
    if isinstance(v, tuple):
        return list(v)
    return v


def _from_json_value(key, v):
    if isinstance(v, dict) and "__initializer__" in v:
        from .. import initializer

        return initializer.load_spec(v["__initializer__"])
    if isinstance(v, list) and key in ("shape", "begin", "end", "axis"):
        return tuple(v)
    return v


def load_json(json_str: str) -> Symbol:
    try:
        doc = json.loads(json_str)
        nodes = []
        for entry in doc["nodes"]:
            op = None if entry["op"] == "null" else registry.get(entry["op"])
            inputs = [(nodes[i], j) for i, j in entry["inputs"]]
            params = {k: _from_json_value(k, v) for k, v in entry.get("params", {}).items()}
            attrs = {k: _from_json_value(k, v) for k, v in entry.get("attrs", {}).items()}
            nodes.append(Node(op, entry["name"], inputs, params, attrs))
        return Symbol([(nodes[i], j) for i, j in doc["heads"]])
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise SparseTrainError(f"not a sparsetrain symbol JSON document: {e}") from None


def load(fname: str) -> Symbol:
    """The symbol saved in ``fname``; a damaged file is a ``SparseTrainError`` naming it."""
    try:
        with open(fname, encoding="utf-8") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise SparseTrainError(f"{fname}: not a sparsetrain symbol JSON document ({e.reason})") from None
    try:
        return load_json(text)
    except SparseTrainError as e:
        raise SparseTrainError(f"{fname}: {e}") from None


def _positional(sym, args, kwargs, what):
    if args:
        names = sym.list_arguments()
        if len(args) > len(names):
            raise ShapeError(f"{len(args)} positional {what}s given for {len(names)} arguments")
        kwargs = {**dict(zip(names, args)), **kwargs}
    return kwargs


# -- constructors ---------------------------------------------------------------------------------

def Variable(name, attr=None, shape=None, lr_mult=None, wd_mult=None, dtype=None, init=None, stype=None, **kwargs):
    """A placeholder for an array: ``stype`` ('default', 'csr', 'row_sparse'), ``shape``, ``init``;
    ``lr_mult`` / ``wd_mult`` scale a parameter's learning rate / weight decay (the ``__lr_mult__`` /
    ``__wd_mult__`` attributes an optimizer given the symbol reads, as MXNet's)."""
    if not isinstance(name, str):
        raise TypeError("Variable name must be a string")
    attrs = dict(attr or {})
    if shape is not None:
        attrs["shape"] = (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)
    if stype is not None:
        attrs["stype"] = check_stype(stype)
    if dtype is not None:
        import numpy as np

        attrs["dtype"] = np.dtype(dtype).name
    if init is not None:
        if isinstance(init, str):
            from .. import initializer

            init = initializer.create(init)
        attrs["init"] = init
    if lr_mult is not None:  # MXNet's attribute names, which the optimizer reads (``sym=``)
        attrs[LR_MULT_ATTR] = float(lr_mult)
    if wd_mult is not None:
        attrs[WD_MULT_ATTR] = float(wd_mult)
    attrs.update(kwargs)
    return Symbol([(Node(None, name, attrs=attrs), 0)])


var = Variable


def Group(symbols) -> Symbol:
    return Symbol([e for s in symbols for e in s._outputs])


def _apply(op_name, inputs, params, name=None, attrs=None) -> Symbol:
    op = registry.get(op_name)
    entries = []
    for s in inputs:
        if len(s._outputs) != 1:
            raise SparseTrainError(f"{op_name}: an input is a group of {len(s._outputs)} outputs; pick one")
        entries.append(s._outputs[0])
    node = Node(op, _names.get(name, op.name), entries, {**op.params, **params}, attrs)
    return Symbol([(node, i) for i in range(op.num_outputs)])


def make_op_function(op):
    """The ``sym.<op>`` function: inputs by position or by name, params by keyword (``out`` is
    accepted and ignored, as MXNet's generated symbol functions do)."""

    def fn(*args, name=None, attr=None, out=None, **kwargs):
        inputs, params = parse_call(op, args, kwargs)
        for s in inputs:
            if s is not None and not isinstance(s, Symbol):
                raise TypeError(f"{op.name}: inputs must be Symbols, got {type(s).__name__}")
        if op.variadic:
            if not inputs:
                raise TypeError(f"{op.name} needs at least one input")
            return _apply(op.name, inputs, params, name, attr)
        node_name = _names.get(name, op.name)
        for i, input_name in enumerate(op.inputs_for(params)):
            if inputs[i] is None:  # MXNet creates the missing argument, e.g. ``softmax_label``
                inputs[i] = Variable(f"{node_name}_{input_name}")
        return _apply(op.name, inputs, params, node_name, attr)

    fn.__name__ = op.name
    fn.__doc__ = op.doc or f"The {op.name} operator."
    return fn
