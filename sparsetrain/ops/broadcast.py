"""Broadcasting binary operators (numpy broadcasting rules)."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError
from ..ndarray.ndarray import CSRNDArray
from .elemwise import BINARY_FUSED, COMPARISONS
from .registry import FusedForm, Op, merge_shape, register

D, CSR = "default", "csr"


def _broadcast_shape(in_shapes, out_shapes, p, name):
    a, b = in_shapes
    if a is None or b is None or not all(a) or not all(b):
        return in_shapes, out_shapes
    try:
        shape = np.broadcast_shapes(a, b)
    except ValueError:
        raise ShapeError(f"{name}: shapes {a} and {b} cannot be broadcast together") from None
    return in_shapes, [merge_shape(out_shapes[0], tuple(shape), name)]


def sum_to_shape(x: np.ndarray, shape) -> np.ndarray:
    """Sum ``x`` over the axes along which ``shape`` was broadcast to ``x.shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if x.ndim == len(shape) + 1 and x.shape[1:] == shape:  # the common bias case: sum over the batch
        return x.sum(axis=0)
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and x.shape[i + lead] != 1)
    return x.sum(axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)


def _csr_broadcast(f):
    def kernel(x, p):
        a, b = x
        if b.ndim > 2 or np.broadcast_shapes(a.shape, b.shape) != a.shape:
            dense = f(a.asnumpy(), b._data)
            from ..ndarray.ndarray import NDArray, cast_storage

            return [cast_storage(NDArray(dense), CSR)]
        rows = np.repeat(np.arange(a.shape[0]), np.diff(a._indptr))
        values = f(a._data, np.broadcast_to(b._data, a.shape)[rows, a._indices])
        return [CSRNDArray(values.astype(a.dtype, copy=False), a._indices.copy(), a._indptr.copy(), a.shape)]

    return kernel


_FUNCS = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide}


def _gradient(kind):
    def reduce_like(g, grad, like):
        out_shape, like_shape = g.shape(g.outputs[0]), g.shape(like)
        if out_shape is not None and out_shape == like_shape:  # not broadcast: nothing to sum
            return grad
        return g.apply("_reduce_like", grad, like)

    def grad(g):
        a, b = g.inputs
        if kind == "add":
            return [reduce_like(g, g.og, a), reduce_like(g, g.og, b)]
        if kind == "sub":
            return [reduce_like(g, g.og, a), reduce_like(g, g.apply("negative", g.og), b)]
        ga, gb = g.apply("_backward_broadcast_" + kind, g.og, a, b)
        return [ga, gb]

    return grad


for _kind, _f in _FUNCS.items():
    _name = "broadcast_" + _kind
    register(Op(
        name=_name, input_names=("lhs", "rhs"),
        dense=lambda x, p, f=_f: [f(x[0], x[1])],
        kernels={(CSR, D): ((CSR,), _csr_broadcast(_f))} if _kind in ("mul", "div") else {},
        infer_shape=lambda i, o, p, n=_name: _broadcast_shape(i, o, p, n),
        gradient=_gradient(_kind),
        doc="numpy broadcasting" + ("; csr with a dense row/column vector -> csr" if _kind in ("mul", "div") else ""),
        fused=FusedForm("broadcast", *BINARY_FUSED[_kind]),
    ))


def _backward_mul(x, p):
    og, a, b = x
    return [sum_to_shape(og * b, a.shape), sum_to_shape(og * a, b.shape)]


def _backward_div(x, p):
    og, a, b = x
    with np.errstate(divide="ignore", invalid="ignore"):
        return [sum_to_shape(og / b, a.shape), sum_to_shape(-og * a / (b * b), b.shape)]


def _pass_shapes(i, o, p):
    return i, [i[1], i[2]]


register(Op(name="_backward_broadcast_mul", input_names=("ograd", "lhs", "rhs"), num_outputs=2, hidden=True,
            dense=_backward_mul, infer_shape=_pass_shapes))
register(Op(name="_backward_broadcast_div", input_names=("ograd", "lhs", "rhs"), num_outputs=2, hidden=True,
            dense=_backward_div, infer_shape=_pass_shapes))
register(Op(name="_reduce_like", input_names=("data", "like"), hidden=True,
            dense=lambda x, p: [sum_to_shape(x[0], x[1].shape)],
            infer_shape=lambda i, o, p: (i, [i[1]]),
            doc="sum data over the axes along which `like` was broadcast"))


# -- power and comparisons (numpy broadcasting; sparse inputs fall back, as in MXNet) -----------

def _backward_power(x, p):
    og, a, b = x
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.power(a, b)
        ga = og * b * np.power(a, b - 1)
        gb = og * out * np.log(np.where(a > 0, a, 1))
    return [sum_to_shape(ga, a.shape).astype(a.dtype, copy=False),
            sum_to_shape(gb, b.shape).astype(b.dtype, copy=False)]


def _power_gradient(g):
    ga, gb = g.apply("_backward_broadcast_power", g.og, *g.inputs)
    return [ga, gb]


register(Op(
    name="broadcast_power", input_names=("lhs", "rhs"),
    dense=lambda x, p: [np.power(x[0], x[1]).astype(np.result_type(x[0], x[1]), copy=False)],
    infer_shape=lambda i, o, p: _broadcast_shape(i, o, p, "broadcast_power"),
    gradient=_power_gradient, doc="lhs ** rhs with numpy broadcasting",
))
register(Op(name="_backward_broadcast_power", input_names=("ograd", "lhs", "rhs"), num_outputs=2, hidden=True,
            dense=_backward_power, infer_shape=_pass_shapes))

def _zero_gradients(g):
    return [g.apply("zeros_like", x) for x in g.inputs]


for _kind, _f in COMPARISONS.items():
    _name = "broadcast_" + _kind
    register(Op(
        name=_name, input_names=("lhs", "rhs"),
        dense=lambda x, p, f=_f: [f(x[0], x[1]).astype(np.result_type(x[0], x[1]), copy=False)],
        infer_shape=lambda i, o, p, n=_name: _broadcast_shape(i, o, p, n),
        gradient=_zero_gradients, doc=f"lhs {_kind} rhs as 1/0 (numpy broadcasting)",
    ))


# -- broadcast_to ----------------------------------------------------------------------------

def _target_shape(data, shape):
    """MXNet's rule: a 0 in ``shape`` keeps that dimension of ``data``; others must be 1 in ``data``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != len(data):
        raise ShapeError(f"broadcast_to: shape {shape} has {len(shape)} dimensions, the input {data} has {len(data)}")
    out = tuple(d if s == 0 else s for d, s in zip(data, shape))
    for d, s in zip(data, out):
        if d != s and d != 1:
            raise ShapeError(f"broadcast_to: cannot broadcast shape {data} to {shape}")
    return out


def _broadcast_to_infer(i, o, p):
    if i[0] is None or not all(i[0]):
        return i, o
    return i, [merge_shape(o[0], _target_shape(i[0], p["shape"]), "broadcast_to")]


register(Op(
    name="broadcast_to", input_names=("data",), params={"shape": ()},
    dense=lambda x, p: [np.ascontiguousarray(np.broadcast_to(x[0], _target_shape(x[0].shape, p["shape"])))],
    infer_shape=_broadcast_to_infer,
    gradient=lambda g: [g.apply("_reduce_like", g.og, g.inputs[0])],
    doc="repeat size-1 dimensions up to shape (0 keeps a dimension)",
))
