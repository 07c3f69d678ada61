"""The operator registry and the operator families registered in it."""
from . import broadcast, dot, elemwise, embedding, layout, misc, nn, output, reduce  # noqa: F401  (registration)
from .imperative import invoke
from .signature import parse_call
from .registry import (
    Dispatch,
    GradientContext,
    Op,
    all_ops,
    exists,
    get,
    infer_storage,
    register,
    set_strict_stypes,
    strict_stypes,
)

__all__ = ["Op", "Dispatch", "GradientContext", "register", "get", "exists", "all_ops", "infer_storage",
           "invoke", "parse_call", "set_strict_stypes", "strict_stypes"]
