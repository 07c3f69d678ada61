"""``sparsetrain.nd``: the storage types, their constructors, and every operator as a function.

The operator functions run through the same registry as symbols (``sparsetrain.ops``).
"""
from __future__ import annotations

from . import random  # noqa: F401  (``nd.random.uniform(..., out=)``, as MXNet)
from .ndarray import sparse as _sparse_constructors
from .ndarray import *  # noqa: F401,F403
from .ndarray import BaseArray, CSRNDArray, NDArray, RowSparseNDArray  # noqa: F401
from .ndarray.arith import apply_binary as _apply_binary
from .ndarray.serialize import load, save  # noqa: F401
from .ops.imperative import invoke as _invoke
from .ops.namespaces import FLUENT as _FLUENT
from .ops.namespaces import fill_namespaces as _fill_namespaces
from .ops.signature import parse_call as _parse_call


def _make_function(op):
    def fn(*args, out=None, name=None, **kwargs):
        inputs, params = _parse_call(op, args, kwargs)
        if not inputs or any(x is None for x in inputs):
            raise TypeError(f"{op.name} needs inputs {', '.join(op.input_names)}")
        outs = _invoke(op.name, inputs, params, out=out)
        return outs[0] if len(outs) == 1 else outs

    fn.__name__ = op.name
    fn.__doc__ = op.doc or f"The {op.name} operator."
    return fn


def _binary_function(kind, name):
    def fn(lhs, rhs):
        return _apply_binary(lhs, rhs, kind)

    fn.__name__ = name
    fn.__doc__ = (f"``lhs {name} rhs`` for arrays of any storage type or scalars: the same-shape, "
                  "broadcasting or scalar operator, as MXNet's ``nd.{name}``.")
    return fn


def _fluent_method(fn):
    def method(self, *args, **kwargs):
        return fn(self, *args, **kwargs)

    method.__name__ = fn.__name__
    method.__doc__ = fn.__doc__
    return method


def broadcast_like(lhs, rhs, lhs_axes=None, rhs_axes=None):
    """``lhs`` broadcast to ``rhs``'s shape, or only along ``lhs_axes`` to the sizes of ``rhs_axes``."""
    if (lhs_axes is None) != (rhs_axes is None):
        raise TypeError("broadcast_like: give both lhs_axes and rhs_axes, or neither")
    shape = list(rhs.shape)
    if lhs_axes is not None:
        lhs_axes, rhs_axes = tuple(lhs_axes), tuple(rhs_axes)
        if len(lhs_axes) != len(rhs_axes):
            raise TypeError(f"broadcast_like: lhs_axes {lhs_axes} and rhs_axes {rhs_axes} differ in length")
        shape = list(lhs.shape)
        for la, ra in zip(lhs_axes, rhs_axes):
            shape[la] = rhs.shape[ra]
    return broadcast_to(lhs, shape=tuple(shape))  # noqa: F821  (filled in from the registry)


sparse, _internal, contrib = _fill_namespaces(globals(), _make_function)
sparse.broadcast_like = broadcast_like
for _name in _FLUENT:
    setattr(BaseArray, _name, _fluent_method(globals()[_name]))
BaseArray.broadcast_like = _fluent_method(broadcast_like)
for _kind, _name in (("add", "add"), ("sub", "subtract"), ("mul", "multiply"), ("div", "divide"),
                     ("pow", "power"), ("eq", "equal"), ("ne", "not_equal"), ("gt", "greater"),
                     ("ge", "greater_equal"), ("lt", "lesser"), ("le", "lesser_equal")):
    globals()[_name] = _binary_function(_kind, _name)
    setattr(sparse, _name, globals()[_name])
for _name in ("csr_matrix", "row_sparse_array", "zeros", "empty", "array"):
    setattr(sparse, _name, getattr(_sparse_constructors, _name))
sparse.CSRNDArray, sparse.RowSparseNDArray = CSRNDArray, RowSparseNDArray
sparse.BaseSparseNDArray = _sparse_constructors.BaseSparseNDArray
sparse.SparseFormatError = _sparse_constructors.SparseFormatError  # what check_format raises
