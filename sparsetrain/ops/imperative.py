"""Imperative execution of registered ops on arrays (the ``nd.*`` functions and NDArray operators)."""
from __future__ import annotations

from ..base import ShapeError
from ..ndarray.ndarray import BaseArray, NDArray, cast_storage
from .registry import DISPATCH_FALLBACK, get, infer_storage, report_fallback


def make_runner(op, dispatch, params, node_key=None, node_name=None, strict=None, gradient_of=None):
    """A function ``inputs -> outputs`` running ``op`` as ``dispatch`` decided (built once per node).

    Dense kernels see numpy arrays, sparse kernels see sparsetrain arrays. On a fallback the
    inputs go dense and the outputs are converted to the planned stypes; ``strict`` (default: the
    global setting) makes a fallback an error; ``gradient_of``: the ``(name, op)`` a gradient node's
    fallback is named by.
    """
    kernel, dense = dispatch.kernel, op.dense
    if kernel is not None:
        return lambda inputs: kernel(inputs, params)
    if dispatch.mode != DISPATCH_FALLBACK:
        return lambda inputs: [NDArray(o) for o in dense([x._data for x in inputs], params)]
    key = node_key if node_key is not None else op.name
    out_stypes = dispatch.out_stypes

    def fallback(inputs):
        report_fallback(key, op.name, node_name, [x.stype for x in inputs], out_stypes, strict=strict,
                        gradient_of=gradient_of)
        arrays = [x._data if x.stype == "default" else x.asnumpy() for x in inputs]
        outs = [NDArray(o) for o in dense(arrays, params)]
        return [o if s == "default" else cast_storage(o, s) for o, s in zip(outs, out_stypes)]

    return fallback


def run_kernel(op, dispatch, inputs, params, node_key=None, node_name=None, strict=None):
    """Run ``op`` on ``inputs`` as ``dispatch`` decided (see ``make_runner``)."""
    return make_runner(op, dispatch, params, node_key, node_name, strict)(inputs)


def invoke(op_name: str, inputs, params, out=None):
    """Run ``op_name`` on ``inputs`` now; returns the list of outputs (or writes into ``out``)."""
    op = get(op_name)
    for i, x in enumerate(inputs):
        if not isinstance(x, BaseArray):
            raise TypeError(f"{op_name}: input {i} is a {type(x).__name__}, not a sparsetrain array")
    p = {**op.params, **params}
    in_shapes, _ = op.infer_shape([x.shape for x in inputs], [None] * op.num_outputs, p)
    for x, s in zip(inputs, in_shapes):
        if s is not None and tuple(s) != tuple(x.shape):
            raise ShapeError(f"{op_name}: input shape {x.shape} does not fit (expected {tuple(s)})")
    dispatch = infer_storage(op, [x.stype for x in inputs], p)
    outputs = run_kernel(op, dispatch, list(inputs), p)
    if out is not None:
        targets = out if isinstance(out, (list, tuple)) else [out]
        for t, o in zip(targets, outputs):
            t[:] = o
        return list(targets)
    return outputs
