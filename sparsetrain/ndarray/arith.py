"""Binary operators on arrays and scalars: which registered op ``x + y``, ``x == 1``, ``nd.add``...
run (MXNet's ``_ufunc_helper``), shared by ``NDArray``'s operators, ``nd.*`` and ``Symbol``."""
from __future__ import annotations

import numbers

import numpy as np

from .creation import array
from .ndarray import BaseArray

# kind -> (op for two arrays of one shape, op that broadcasts, op(x, scalar), op(scalar, x))
BINARY_OPS = {
    "add": ("elemwise_add", "broadcast_add", "_plus_scalar", "_plus_scalar"),
    "sub": ("elemwise_sub", "broadcast_sub", "_minus_scalar", "_rminus_scalar"),
    "mul": ("elemwise_mul", "broadcast_mul", "_mul_scalar", "_mul_scalar"),
    "div": ("elemwise_div", "broadcast_div", "_div_scalar", "_rdiv_scalar"),
    "pow": ("broadcast_power", "broadcast_power", "_power_scalar", "_rpower_scalar"),
    "eq": ("broadcast_equal", "broadcast_equal", "_equal_scalar", "_equal_scalar"),
    "ne": ("broadcast_not_equal", "broadcast_not_equal", "_not_equal_scalar", "_not_equal_scalar"),
    "gt": ("broadcast_greater", "broadcast_greater", "_greater_scalar", "_lesser_scalar"),
    "ge": ("broadcast_greater_equal", "broadcast_greater_equal", "_greater_equal_scalar", "_lesser_equal_scalar"),
    "lt": ("broadcast_lesser", "broadcast_lesser", "_lesser_scalar", "_greater_scalar"),
    "le": ("broadcast_lesser_equal", "broadcast_lesser_equal", "_lesser_equal_scalar", "_greater_equal_scalar"),
}
_PY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
       "div": lambda a, b: a / b, "pow": lambda a, b: a ** b, "eq": lambda a, b: float(a == b),
       "ne": lambda a, b: float(a != b), "gt": lambda a, b: float(a > b), "ge": lambda a, b: float(a >= b),
       "lt": lambda a, b: float(a < b), "le": lambda a, b: float(a <= b)}


def _is_scalar(x) -> bool:
    return isinstance(x, numbers.Number) or (isinstance(x, np.ndarray) and x.ndim == 0)


def apply_binary(lhs, rhs, kind: str):
    """``lhs <kind> rhs`` for arrays and scalars: the scalar op when one side is a number, the
    same-shape op for equal shapes, else the broadcasting op (``nd.add``, ``x + y``, ``x == 1``...)."""
    from ..ops.imperative import invoke

    same, broadcast, scalar, rscalar = BINARY_OPS[kind]
    if _is_scalar(lhs) and _is_scalar(rhs):
        return _PY[kind](lhs, rhs)
    if _is_scalar(rhs) and isinstance(lhs, BaseArray):
        return invoke(scalar, [lhs], {"scalar": float(rhs)})[0]
    if _is_scalar(lhs) and isinstance(rhs, BaseArray):
        return invoke(rscalar, [rhs], {"scalar": float(lhs)})[0]
    like = lhs if isinstance(lhs, BaseArray) else rhs
    lhs, rhs = (array(x, dtype=like.dtype) if isinstance(x, np.ndarray) else x for x in (lhs, rhs))
    if not (isinstance(lhs, BaseArray) and isinstance(rhs, BaseArray)):
        return NotImplemented
    return invoke(same if lhs.shape == rhs.shape else broadcast, [lhs, rhs], {})[0]
