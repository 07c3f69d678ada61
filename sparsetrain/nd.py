"""``sparsetrain.nd``: the storage types, their constructors, and every operator as a function.

The operator functions run through the same registry as symbols (``sparsetrain.ops``).
"""
from __future__ import annotations

import types

from .base import did_you_mean
from .ndarray import sparse as _sparse_constructors
from .ndarray import *  # noqa: F401,F403
from .ndarray import BaseArray, CSRNDArray, NDArray, RowSparseNDArray  # noqa: F401
from .ops import all_ops as _all_ops
from .ops.imperative import invoke as _invoke


def _split_positional(op, args):
    """As MXNet's generated functions: inputs first, then the op's parameters in order."""
    if op.variadic:
        return list(args), {}
    n = len(op.input_names)
    extra = args[n:]
    names = list(op.params)
    if len(extra) > len(names):
        raise TypeError(f"{op.name} takes inputs {', '.join(op.input_names)} and parameters "
                        f"{', '.join(names) or '(none)'}; got {len(args)} positional arguments")
    return list(args[:n]), dict(zip(names, extra))


def _make_function(op):
    def fn(*args, out=None, name=None, **kwargs):
        inputs, params = _split_positional(op, args)
        for k, v in kwargs.items():
            if k in op.input_names and not op.variadic:
                pos = op.input_names.index(k)
                while len(inputs) <= pos:
                    inputs.append(None)
                inputs[pos] = v
            elif k in op.params:
                if k in params:
                    raise TypeError(f"{op.name}: argument {k!r} given twice")
                params[k] = v
            else:
                allowed = list(op.input_names) + list(op.params)
                raise TypeError(f"{op.name}: unknown argument {k!r}{did_you_mean(k, allowed)}; allowed: {', '.join(allowed)}")
        if not op.variadic and (len(inputs) != len(op.input_names) or any(x is None for x in inputs)):
            raise TypeError(f"{op.name} needs inputs {', '.join(op.input_names)}")
        outs = _invoke(op.name, inputs, params, out=out)
        return outs[0] if len(outs) == 1 else outs

    fn.__name__ = op.name
    fn.__doc__ = op.doc or f"The {op.name} operator."
    return fn


sparse = types.SimpleNamespace(
    csr_matrix=_sparse_constructors.csr_matrix,
    row_sparse_array=_sparse_constructors.row_sparse_array,
    zeros=_sparse_constructors.zeros,
    array=_sparse_constructors.array,
    CSRNDArray=CSRNDArray,
    RowSparseNDArray=RowSparseNDArray,
)
for _name, _op in _all_ops().items():
    if not _op.hidden:
        _fn = _make_function(_op)
        globals()[_name] = _fn
        setattr(sparse, _name, _fn)
