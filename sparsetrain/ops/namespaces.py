"""Where MXNet puts each operator function: ``nd.*``/``sym.*``, ``.sparse``, ``._internal``, ``.contrib``."""
from __future__ import annotations

import types

from .registry import all_ops

# MXNet's second names for some operators
ALIASES = {"reshape": "Reshape", "concat": "Concat", "retain": "_sparse_retain", "crop": "slice"}
CONTRIB = ("SparseEmbedding", "getnnz")
# operators MXNet's NDArray also has as methods (``x.sum(axis=0)`` is ``nd.sum(x, axis=0)``)
FLUENT = ("zeros_like", "ones_like", "slice", "slice_axis", "abs", "sign", "sum", "mean", "norm",
          "round", "rint", "fix", "floor", "ceil", "trunc", "exp", "expm1", "log", "log1p", "sqrt",
          "square", "relu", "sigmoid", "tanh", "broadcast_to", "clip")


def fill_namespaces(module_globals: dict, make_function):
    """Put ``make_function(op)`` for every registered op where MXNet has it.

    Public ops go in the module and its ``sparse`` namespace; every op (hidden ones too, e.g.
    ``_square_sum``, ``_mul_scalar``) in ``_internal``; ``CONTRIB`` ops also in ``contrib``.
    Returns ``(sparse, _internal, contrib)``.
    """
    sparse, internal, contrib = (types.SimpleNamespace() for _ in range(3))
    functions = {}
    for name, op in all_ops().items():
        fn = functions[name] = make_function(op)
        setattr(internal, name, fn)
        if not op.hidden:
            module_globals[name] = fn
            setattr(sparse, name, fn)
    for alias, name in ALIASES.items():
        module_globals.setdefault(alias, functions[name])
        setattr(sparse, alias, functions[name])
    for name in CONTRIB:
        setattr(contrib, name, functions[name])
    return sparse, internal, contrib
