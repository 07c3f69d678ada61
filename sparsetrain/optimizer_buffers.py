"""The arrays an optimizer update reads and writes: weight, gradient and state buffers.

An update works on plain numpy buffers, in place: a dense or full row-sparse weight's buffer
(:func:`weight_buffer`; a row-sparse weight missing rows is made full first), a dense or
row-sparse gradient as ``(rows, values)`` (:func:`grad_parts`), and the state arrays of a rule
as the two buffers the kernels take (:func:`rule_state_buffers`; an absent state is an empty
array). :mod:`sparsetrain.optimizer` and the engines use these; the optimizer's own module doc
says how storage types are treated.
"""
from __future__ import annotations

from typing import NoReturn

import numpy as np

from .base import StorageTypeError
from .ndarray import BaseArray, NDArray, RowSparseNDArray

__all__ = ["weight_buffer", "grad_parts", "state_buffer", "state_parts", "rule_state_buffers", "densify",
           "zeros_like_weight", "KERNEL_DTYPES", "refuse_update"]


def _make_full(weight: RowSparseNDArray) -> None:
    """Give a row-sparse weight every row (absent rows become zeros), in place."""
    full = np.zeros(weight.shape, dtype=weight._data.dtype)
    full[weight._indices] = weight._data
    weight._data = full
    weight._indices = None  # every row


def weight_buffer(weight) -> np.ndarray:
    """The dense numpy buffer behind ``weight`` that an update writes into (in place); a
    row-sparse weight missing rows is made full first (absent rows are zeros)."""
    if type(weight) is NDArray:
        return weight._data
    if isinstance(weight, RowSparseNDArray):
        if weight._data.shape[0] != weight._shape[0]:
            _make_full(weight)
        return weight._data
    if isinstance(weight, np.ndarray):
        return weight
    if isinstance(weight, BaseArray) and weight.stype == "default":
        return weight._data
    raise StorageTypeError(
        f"cannot update a weight of storage type {getattr(weight, 'stype', type(weight).__name__)!r}; "
        "expected 'default' or 'row_sparse'"
    )


def grad_parts(grad):
    """``(rows, values)`` of a row-sparse gradient, or ``(None, values)`` of a dense one."""
    cls = type(grad)
    if cls is RowSparseNDArray:
        return grad._indices, grad._data
    if cls is NDArray:
        return None, grad._data
    if isinstance(grad, np.ndarray):
        return None, grad
    if isinstance(grad, BaseArray) and grad.stype in ("default", "row_sparse"):
        return (grad._indices if grad.stype == "row_sparse" else None), grad._data
    raise StorageTypeError(
        f"cannot apply a gradient of storage type {getattr(grad, 'stype', type(grad).__name__)!r}; "
        "expected 'default' or 'row_sparse'"
    )


def state_buffer(state) -> np.ndarray:
    """The numpy buffer of one state array (an ``NDArray`` or a full row-sparse array), written in place."""
    return state._data if type(state) is NDArray else weight_buffer(state)


def state_parts(state) -> tuple:
    """The state arrays of one parameter as a tuple: ``()`` for ``None``, one for a single array."""
    if state is None:
        return ()
    return tuple(state) if isinstance(state, (tuple, list)) else (state,)


def state_arrays(state) -> list:
    """Every array of one parameter's state: a tuple inside it (a float16 weight's master copy beside the rule's
    states) taken apart, ``None`` parts left out."""
    if state is None:
        return []
    if isinstance(state, (tuple, list)):
        return [a for part in state for a in state_arrays(part)]
    return [state]


_EMPTY = {"f": np.empty(0, np.float32), "d": np.empty(0, np.float64)}  # by dtype.char: "no such state"


def rule_state_buffers(rule, state, w: np.ndarray):
    """``(s1, s2)`` for the kernels: the state buffers of ``rule``, an empty array where it has fewer."""
    n = len(rule.states)
    empty = _EMPTY.get(w.dtype.char) if n < 2 else None
    # the common layouts first (this runs per parameter and step)
    cls = type(state)
    if cls is NDArray:
        if n == 1 and state._data.size == w.size and empty is not None:
            return state._data, empty
    elif state is None:
        if n == 0 and empty is not None:
            return empty, empty
    elif (n == 2 and cls is tuple and len(state) == 2 and type(state[0]) is NDArray
            and type(state[1]) is NDArray and state[0]._data.size == w.size == state[1]._data.size):
        return state[0]._data, state[1]._data
    if empty is None:
        empty = np.empty(0, w.dtype)
    parts = state_parts(state)
    if len(parts) != n:
        raise StorageTypeError(f"the {rule.name} rule keeps {n} state arrays {rule.states}, got {len(parts)}")
    bufs = [state_buffer(p) for p in parts]
    for buf in bufs:
        if buf.size != w.size:
            raise StorageTypeError(f"optimizer state of shape {buf.shape} does not match its weight {w.shape}")
    bufs += [empty] * (2 - len(bufs))
    return bufs[0], bufs[1]


def densify(shape, rows, values) -> np.ndarray:
    """A dense array of ``shape`` holding ``values`` at ``rows`` (zeros elsewhere)."""
    dense = np.zeros(shape, dtype=values.dtype)
    dense[rows] = values
    return dense


def zeros_like_weight(weight) -> NDArray:
    """A zero state array shaped like ``weight``, of its dtype."""
    dtype = weight.dtype if getattr(weight, "stype", None) == "csr" else weight_buffer(weight).dtype
    return NDArray(np.zeros(weight.shape, dtype=dtype))


KERNEL_DTYPES = "fd"  # numpy dtype chars of float32 and float64: the update kernels take these, nothing else


def refuse_update(name: str, w: np.ndarray, values: np.ndarray) -> NoReturn:
    """The one-line error for a weight buffer ``w`` or gradient ``values`` of parameter ``name`` that the update
    kernels do not take: a strided weight (they write in place), or an element type not in ``KERNEL_DTYPES``
    (numba would compile an integer update, truncating an integer weight, and cannot type float16)."""
    if not w.flags.c_contiguous:
        raise StorageTypeError(f"optimizer update of {name}: its weight's buffer is strided (a view of another "
                               "array); updates write into a C-contiguous buffer")
    hint = ("; a float16 weight trains through a float32 master copy with multi_precision=True"
            if w.dtype == np.float16 else "")
    raise StorageTypeError(f"optimizer update of {name}: the update kernels take float32 or float64 weights and "
                           f"gradients, got weight {w.dtype}, gradient {values.dtype}{hint}")
