"""Symbols (``sparsetrain.sym``): variables, operator functions from the registry, Group, JSON."""
from ..ops import all_ops as _all_ops
from ..ops.namespaces import fill_namespaces
from .executor import Executor
from .graph import BindError, Plan, build_plan
from .symbol import Group, Symbol, Variable, load, load_json, make_op_function, var

sparse, _internal, contrib = fill_namespaces(globals(), make_op_function)

__all__ = ["Symbol", "Variable", "var", "Group", "load", "load_json", "Executor", "Plan", "build_plan",
           "BindError", "sparse", "contrib"]
