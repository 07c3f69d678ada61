"""Symbols (``sparsetrain.sym``): variables, operator functions from the registry, Group, JSON."""
from ..ops import all_ops as _all_ops
from .executor import Executor
from .graph import BindError, Plan, build_plan
from .symbol import Group, Symbol, Variable, load, load_json, make_op_function, var


class _SparseNamespace:
    """``sym.sparse.*``: the same operators (MXNet keeps a separate namespace for them)."""


sparse = _SparseNamespace()
for _name, _op in _all_ops().items():
    if not _op.hidden:
        _fn = make_op_function(_op)
        globals()[_name] = _fn
        setattr(sparse, _name, _fn)

__all__ = ["Symbol", "Variable", "var", "Group", "load", "load_json", "Executor", "Plan", "build_plan",
           "BindError", "sparse"]
