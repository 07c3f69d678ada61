"""Shape-changing operators: ``Reshape``, ``Concat``, ``slice_axis``."""
from __future__ import annotations

import numpy as np

from ..base import ShapeError
from .registry import Op, register


# -- Reshape ------------------------------------------------------------------------------------

def reshape_target(shape, target) -> tuple:
    """MXNet's special values: 0 copies the input dimension, -1 is inferred (at most one)."""
    target = (int(target),) if np.isscalar(target) else tuple(int(s) for s in target)
    out = [shape[i] if d == 0 and i < len(shape) else d for i, d in enumerate(target)]
    size = int(np.prod(shape, dtype=np.int64))
    if out.count(-1) > 1 or any(d < -1 for d in out):
        raise ShapeError(f"reshape: invalid target shape {target}")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1], dtype=np.int64))
        if known == 0 or size % known:
            raise ShapeError(f"reshape: cannot infer -1 in {target} for an input of shape {tuple(shape)}")
        out[out.index(-1)] = size // known
    if int(np.prod(out, dtype=np.int64)) != size:
        raise ShapeError(f"reshape: cannot reshape {tuple(shape)} to {target}")
    return tuple(out)


def _reshape_infer(i, o, p):
    if i[0] is None or not all(i[0]):
        return i, o
    return i, [reshape_target(i[0], p["shape"])]


register(Op(
    name="Reshape", input_names=("data",), params={"shape": ()},
    dense=lambda x, p: [x[0].reshape(reshape_target(x[0].shape, p["shape"]))],
    infer_shape=_reshape_infer,
    gradient=lambda g: [g.apply("_reshape_like", g.og, g.inputs[0])],
    doc="same values in a new shape (0 copies a dimension, -1 is inferred); dense",
))
register(Op(name="_reshape_like", input_names=("data", "like"), hidden=True,
            dense=lambda x, p: [x[0].reshape(x[1].shape)], infer_shape=lambda i, o, p: (i, [i[1]])))


# -- Concat -------------------------------------------------------------------------------------

def _concat_infer(i, o, p):
    dim = int(p["dim"])
    if any(s is None for s in i):
        return i, o
    ndim = len(i[0])
    d = dim % ndim
    for s in i:
        if len(s) != ndim or any(a != b for k, (a, b) in enumerate(zip(s, i[0])) if k != d and a and b):
            raise ShapeError(f"Concat: shapes {list(i)} differ outside dimension {dim}")
    if not all(s[d] for s in i):
        return i, o
    out = list(i[0])
    out[d] = sum(s[d] for s in i)
    return i, [tuple(out)]


def _concat_gradient(g):
    dim = int(g.params["dim"])
    grads, start = [], 0
    for x in g.inputs:
        shape = g.shape(x)
        if shape is None:
            raise ShapeError(f"Concat {g.name!r}: the gradient needs the input shapes")
        size = shape[dim % len(shape)]
        grads.append(g.apply("slice_axis", g.og, axis=dim, begin=start, end=start + size))
        start += size
    return grads


_CONCAT = Op(
    name="Concat", input_names=("data",), params={"dim": 1, "num_args": None}, variadic=True,
    dense=lambda x, p: [np.concatenate(x, axis=int(p["dim"]))],
    infer_shape=_concat_infer, gradient=_concat_gradient,
    doc="join the inputs along dim (dense)",
)
register(_CONCAT)


# -- slice_axis ---------------------------------------------------------------------------------

def _axis_slice(shape, p):
    axis = int(p["axis"]) % len(shape)
    size = shape[axis]
    b = int(p["begin"])
    e = size if p["end"] is None else int(p["end"])
    b, e = (b + size if b < 0 else b), (e + size if e < 0 else e)
    if not 0 <= b < e <= size:
        raise ShapeError(f"slice_axis: [{p['begin']}, {p['end']}) is out of range for axis {axis} of {shape}")
    return axis, b, e


def _slice_axis(a, p):
    axis, b, e = _axis_slice(a.shape, p)
    index = [slice(None)] * a.ndim
    index[axis] = slice(b, e)
    return np.ascontiguousarray(a[tuple(index)])


def _slice_axis_infer(i, o, p):
    if i[0] is None or not all(i[0]):
        return i, o
    axis, b, e = _axis_slice(i[0], p)
    out = list(i[0])
    out[axis] = e - b
    return i, [tuple(out)]


def _backward_slice_axis(x, p):
    og, data = x
    axis, b, e = _axis_slice(data.shape, p)
    g = np.zeros(data.shape, dtype=og.dtype)
    index = [slice(None)] * data.ndim
    index[axis] = slice(b, e)
    g[tuple(index)] = og
    return [g]


_SLICE_AXIS_PARAMS = {"axis": 0, "begin": 0, "end": None}
register(Op(
    name="slice_axis", input_names=("data",), params=dict(_SLICE_AXIS_PARAMS),
    dense=lambda x, p: [_slice_axis(x[0], p)], infer_shape=_slice_axis_infer,
    gradient=lambda g: [g.apply("_backward_slice_axis", g.og, g.inputs[0], **g.params)],
    doc="data[begin:end] along one axis (dense)",
))
register(Op(name="_backward_slice_axis", input_names=("ograd", "data"), params=dict(_SLICE_AXIS_PARAMS),
            hidden=True, dense=_backward_slice_axis, infer_shape=lambda i, o, p: (i, [i[1]])))
