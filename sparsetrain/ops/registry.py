"""The operator registry: one ``Op`` record per operator, read by every pass.

As in MXNet/NNVM, an operator is a bundle of named attributes:

- ``infer_shape(in_shapes, out_shapes, params)`` -> ``(in_shapes, out_shapes)``: fills what it can
  (forward and backward); unknown shapes are ``None``, unknown dimensions ``0``.
- ``storage(in_stypes, params)`` -> key into ``kernels`` (default: the tuple of input stypes).
- ``kernels[key] = (out_stypes, fn)``: a kernel for that stype combination, ``fn(inputs, params)``
  over sparsetrain arrays returning a list of arrays.
- ``dense(inputs, params)``: the dense kernel over numpy arrays, returning a list of numpy arrays.
  It serves all-dense inputs and every storage fallback.
- ``gradient(g)``: builds the backward graph through ``g.apply(op_name, *inputs, **params)``; see
  ``GradientContext``.
- ``gradient_shapes(in_shapes, params)`` -> ``(input index, why)`` or ``None``: input shapes the forward
  takes but the gradient cannot (dot's N-D forward; its gradient is 2-D dots), refused when the gradient
  is built, naming the input (a variable: its declared shape) before any training.
- ``default_metrics`` (loss operators): the metrics a run reports when it names none (names from
  :mod:`sparsetrain.metric`'s catalogue).
- ``fused`` (a :class:`FusedForm`): how the compiled engine's plan compiler
  (``engines/compiled/plan.py``) generates this op's forward and backward inside one numba
  function; ``None``: a graph using the op runs on the graph engine.

Passes (shape and storage-type inference, the executor, ``nd.*``) know nothing else about an op.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from ..base import ShapeError, StorageFallbackWarning, StorageTypeError, did_you_mean

Shape = tuple[int, ...] | None

DISPATCH_DENSE = "dense"
DISPATCH_SPARSE = "sparse"
DISPATCH_FALLBACK = "fallback"


@dataclass(frozen=True)
class FusedForm:
    """An op's fused form: what the plan compiler needs to generate its forward and backward.

    ``kind`` names the loop the compiler lowers it to: ``unary`` and ``binary`` (element-wise,
    same shapes), ``broadcast`` (element-wise with broadcasting), ``dot``, ``reduce`` (over the
    feature axis), ``embedding`` (rows of a table gathered by the batch's ids) or ``output`` (a
    loss layer). ``forward`` is a numba expression of the inputs
    ``a`` (and ``b``); ``partials`` the derivative by each input, an expression of ``a``, ``b``
    and the output ``y`` (``reduce``: ``forward`` is ``sum`` or ``mean``). ``check(params)``
    returns why these params cannot be fused, or ``None``. ``epoch_kernels`` (an output layer):
    hand-fused epoch kernels for whole models ending in it (names of
    ``sparsetrain.engines.compiled.EPOCH_KERNEL_PATTERNS``), which the compiled engine's compile step
    tries before generating a plan.
    """

    kind: str
    forward: str = ""
    partials: tuple = ()
    check: Callable | None = None
    epoch_kernels: tuple = ()

    def refuses(self, params) -> str | None:
        return self.check(params) if self.check else None


@dataclass
class Op:
    name: str
    input_names: tuple[str, ...]
    dense: Callable
    infer_shape: Callable
    params: dict[str, Any] = field(default_factory=dict)
    kernels: dict = field(default_factory=dict)
    storage: Callable | None = None
    gradient: Callable | None = None
    # in_shapes, params -> (input index, why) when the gradient cannot take these shapes, else None
    gradient_shapes: Callable | None = None
    num_outputs: int = 1
    variadic: bool = False
    is_loss: bool = False
    default_metrics: tuple[str, ...] = ()
    hidden: bool = False
    doc: str = ""
    # params -> output stypes every dispatch must produce, or None (dot's ``forward_stype``)
    forced_stypes: Callable | None = None
    # params -> input names a call leaves out (FullyConnected's ``bias`` with ``no_bias=True``)
    omitted_inputs: Callable | None = None
    # how the compiled engine fuses the op (None: graph engine only); see FusedForm
    fused: FusedForm | None = None
    # a loss's backward whose output row i is the gradient of sample i's loss alone: the executor
    # multiplies row i by the batch's sample weight i (``Executor.backward(sample_weight=...)``)
    row_gradient: bool = False

    def inputs_for(self, params) -> tuple[str, ...]:
        """The input names of a call with these params (all of ``input_names`` unless omitted)."""
        if self.omitted_inputs is None:
            return self.input_names
        omitted = set(self.omitted_inputs({**self.params, **params}))
        return tuple(n for n in self.input_names if n not in omitted)

    def output_names(self) -> list[str]:
        return ["output"] if self.num_outputs == 1 else [f"output{i}" for i in range(self.num_outputs)]


@dataclass(frozen=True)
class Dispatch:
    """What storage-type inference decided for one node."""

    out_stypes: tuple[str, ...]
    mode: str
    kernel: Callable | None  # None: run ``op.dense`` (dense inputs or fallback)


_REGISTRY: dict[str, Op] = {}


def register(op: Op) -> Op:
    if op.name in _REGISTRY:
        raise ValueError(f"operator {op.name!r} registered twice")
    _REGISTRY[op.name] = op
    return op


def get(name: str) -> Op:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown operator {name!r}{did_you_mean(name, _REGISTRY)}") from None


def exists(name: str) -> bool:
    return name in _REGISTRY


def all_ops() -> dict[str, Op]:
    return dict(_REGISTRY)


def infer_storage(op: Op, in_stypes, params) -> Dispatch:
    """Output stypes and dispatch mode of ``op`` for these input stypes (one source of truth)."""
    in_stypes = tuple(in_stypes)
    key = op.storage(in_stypes, params) if op.storage else in_stypes
    forced = tuple(op.forced_stypes(params) or ()) if op.forced_stypes else ()
    if key in op.kernels:
        out_stypes, fn = op.kernels[key]
        if forced and forced != tuple(out_stypes):
            out_stypes, fn = forced, _cast_outputs(fn, forced)
        sparse = any(s != "default" for s in in_stypes + tuple(out_stypes))
        return Dispatch(tuple(out_stypes), DISPATCH_SPARSE if sparse else DISPATCH_DENSE, fn)
    if all(s == "default" for s in in_stypes):
        if forced and any(s != "default" for s in forced):
            return Dispatch(forced, DISPATCH_SPARSE, _cast_outputs(_dense_kernel(op), forced))
        return Dispatch(("default",) * op.num_outputs, DISPATCH_DENSE, None)
    return Dispatch(forced or ("default",) * op.num_outputs, DISPATCH_FALLBACK, None)


def _cast_outputs(fn, stypes):
    return lambda inputs, params: [o.tostype(s) for o, s in zip(fn(inputs, params), stypes)]


def _dense_kernel(op):
    from ..ndarray.ndarray import NDArray

    return lambda inputs, params: [NDArray(o) for o in op.dense([x._data for x in inputs], params)]


# -- storage fallback policy ------------------------------------------------------------------

_strict = False
_warned: set = set()


def set_strict_stypes(flag: bool) -> bool:
    """Make every storage fallback an error (``StorageTypeError``); returns the previous setting."""
    global _strict
    previous, _strict = _strict, bool(flag)
    return previous


def strict_stypes() -> bool:
    return _strict


def fallback_message(op_name: str, node_name: str | None, in_stypes, out_stypes, gradient_of=None) -> str:
    """``gradient_of``: ``(name, op)`` of the node whose gradient this (internal) node computes."""
    where = f"node {node_name!r} ({op_name})" if node_name else f"operator {op_name}"
    if gradient_of:
        where = f"the gradient of node {gradient_of[0]!r} ({gradient_of[1]}), {op_name}"
    return (
        f"storage fallback at {where}: no kernel for input stypes ({', '.join(in_stypes)}); "
        f"inputs converted to dense, output stypes ({', '.join(out_stypes)})"
    )


def report_fallback(key, op_name: str, node_name: str | None, in_stypes, out_stypes, strict: bool | None = None,
                    gradient_of=None):
    """Raise in strict mode; otherwise warn once per ``key`` (a graph node + stype combination)."""
    message = fallback_message(op_name, node_name, in_stypes, out_stypes, gradient_of)
    if _strict if strict is None else strict:
        raise StorageTypeError(message + " (strict storage types)")
    if os.environ.get("SPARSETRAIN_STORAGE_FALLBACK_LOG_VERBOSE", "1") == "0":
        return
    key = (key, tuple(in_stypes), tuple(out_stypes))
    if key in _warned:
        return
    _warned.add(key)
    warnings.warn(message, StorageFallbackWarning, stacklevel=4)


# -- shape helpers shared by the op families ---------------------------------------------------

def merge_shape(a: Shape, b: Shape, what: str) -> Shape:
    """Unify two partially known shapes (``None`` or dims of 0 are unknown)."""
    if a is None:
        return b
    if b is None:
        return a
    if len(a) != len(b):
        raise ShapeError(f"{what}: shapes {a} and {b} are incompatible")
    out = []
    for x, y in zip(a, b):
        if x and y and x != y:
            raise ShapeError(f"{what}: shapes {a} and {b} are incompatible")
        out.append(x or y)
    return tuple(out)


def known(shape: Shape) -> bool:
    return shape is not None and all(d > 0 for d in shape)


class GradientContext:
    """What an op's ``gradient`` sees: its input/output handles, head gradients and params.

    ``apply(op_name, *inputs, **params)`` adds a node to the backward graph and returns a handle
    (or a list of handles for multi-output ops). The symbol layer supplies the implementation.
    """

    def __init__(self, inputs, outputs, out_grads, params, apply, name, shape_of=None):
        self.inputs = inputs
        self.outputs = outputs
        self.out_grads = out_grads
        self.params = params
        self.apply = apply
        self.name = name
        self._shape_of = shape_of

    def shape(self, entry):
        """The inferred shape of a forward entry (``None`` when unknown)."""
        return self._shape_of(entry) if self._shape_of else None

    @property
    def og(self):
        return self.out_grads[0]
