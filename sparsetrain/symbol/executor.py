"""The executor: runs a ``Plan`` as a flat list of kernel calls over preallocated slots."""
from __future__ import annotations

import logging
import os

import numpy as np

from ..base import ShapeError, StorageTypeError
from ..ndarray.creation import zeros
from ..ndarray.ndarray import BaseArray, NDArray, cast_storage
from ..ops.imperative import make_runner
from ..ops.registry import DISPATCH_FALLBACK, fallback_message, strict_stypes
from .graph import BindError, Plan, build_plan, grad_stype

log = logging.getLogger("sparsetrain.stypes")

GRAD_REQS = ("write", "add", "null")


def verbose_stypes_enabled() -> bool:
    for var in ("SPARSETRAIN_INFER_STORAGE_TYPE_VERBOSE_LOGGING", "MXNET_INFER_STORAGE_TYPE_VERBOSE_LOGGING"):
        if os.environ.get(var, "0") not in ("", "0"):
            return True
    return False


def _emit_verbose_log(plan: Plan):
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    for line in plan.log_lines():
        log.info(line)


def _normalize_grad_req(grad_req, names):
    if isinstance(grad_req, str):
        reqs = {n: grad_req for n in names}
    elif isinstance(grad_req, (list, tuple)):
        reqs = dict(zip(names, grad_req))
    else:
        reqs = {n: grad_req.get(n, "null") for n in names}
    for n, r in reqs.items():
        if r not in GRAD_REQS:
            raise BindError(f"grad_req for {n!r} is {r!r}; expected one of {', '.join(GRAD_REQS)}")
    return reqs


class Executor:
    """Bound symbol: ``arg_dict``, ``grad_dict``, ``outputs``, ``forward()``, ``backward()``."""

    def __init__(self, plan: Plan, arg_arrays: dict, grad_arrays: dict, grad_req: dict, strict=None):
        self._plan = plan
        self.arg_dict = arg_arrays
        self.grad_dict = grad_arrays
        self.aux_dict = {}
        self._grad_req = grad_req
        self._strict = strict_stypes() if strict is None else strict
        self._slot = {}
        self._arg_slot = {}
        self._values: list = []
        for node in plan.args:
            self._slot[(node.uid, 0)] = self._arg_slot[node.name] = len(self._values)
            self._values.append(arg_arrays[node.name])
        self._head_slots = []
        for head in plan.head_grads.values():
            self._slot[(head.uid, 0)] = len(self._values)
            self._head_slots.append(len(self._values))
            self._values.append(None)
        self._forward_steps = self._compile([n for n in plan.forward if n.op is not None])
        backward_nodes = [n for n in plan.backward if n.op is not None]
        self._backward_steps = self._compile(backward_nodes)
        # the same steps with each loss gradient scaled by the sample weights (see backward)
        self._sample_weight = None
        self._weighted_steps = [(_row_weighted(runner, self) if node.op.row_gradient else runner, ins, outs)
                                for node, (runner, ins, outs) in zip(backward_nodes, self._backward_steps)]
        self._output_slots = [self._slot[(n.uid, i)] for n, i in plan.symbol._outputs]
        self._grad_targets = [(self._slot[(e[0].uid, e[1])], grad_arrays[name], grad_req[name])
                              for name, e in plan.grad_entries.items() if grad_req.get(name, "null") != "null"]
        self._train_forward_done = False
        # as MXNet, outputs exist (zeros of the planned shape and stype) before the first forward
        dtype = next((a.dtype for a in arg_arrays.values()), np.float32)
        self.outputs = [zeros(plan.shapes[(n.uid, i)], dtype=dtype, stype=plan.stypes[(n.uid, i)])
                        if _known_shape(plan.shapes.get((n.uid, i))) else None
                        for n, i in plan.symbol._outputs]

    def _compile(self, nodes):
        steps = []
        for node in nodes:
            d = self._plan.dispatch[node.uid]
            gradient_of = node.attrs.get("forward")  # (a gradient node: named by the node it differentiates)
            if d.mode == DISPATCH_FALLBACK and self._strict:
                raise StorageTypeError(fallback_message(
                    node.op.name, node.name, [self._plan.stypes[(c.uid, i)] for c, i in node.inputs],
                    d.out_stypes, gradient_of) + " (strict storage types)")
            ins = [self._slot[(c.uid, i)] for c, i in node.inputs]
            outs = []
            for i in range(node.op.num_outputs):
                self._slot[(node.uid, i)] = len(self._values)
                outs.append(len(self._values))
                self._values.append(None)
            runner = make_runner(node.op, d, node.params, node.uid, node.name, self._strict, gradient_of)
            steps.append((runner, ins, outs))
        return steps

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def simple_bind(cls, sym, grad_req="write", type_dict=None, stype_dict=None, strict_stypes=None,
                    verbose_stypes=None, shapes=None):
        names = sym.list_arguments()
        reqs = _normalize_grad_req(grad_req, names)
        plan = build_plan(sym, shapes or {}, stype_dict or {}, reqs)
        type_dict = type_dict or {}
        args, grads = {}, {}
        for node in plan.args:
            shape = plan.shapes[(node.uid, 0)]
            dtype = type_dict.get(node.name, node.attrs.get("dtype", "float32"))
            stype = plan.stypes[(node.uid, 0)]
            args[node.name] = zeros(shape, dtype=dtype, stype=stype)
            if reqs[node.name] != "null":
                grads[node.name] = zeros(shape, dtype=dtype, stype=grad_stype(stype))
        if verbose_stypes or (verbose_stypes is None and verbose_stypes_enabled()):
            _emit_verbose_log(plan)
        return cls(plan, args, grads, reqs, strict_stypes)

    @classmethod
    def bind(cls, sym, args, args_grad=None, grad_req="write"):
        names = sym.list_arguments()
        if isinstance(args, (list, tuple)):
            args = dict(zip(names, args))
        missing = [n for n in names if n not in args]
        if missing:
            raise BindError(f"bind: no array given for argument(s) {missing}")
        reqs = _normalize_grad_req(grad_req, names)
        if args_grad is None:
            reqs = {n: "null" for n in names}
            args_grad = {}
        elif isinstance(args_grad, (list, tuple)):
            args_grad = dict(zip(names, args_grad))
        reqs = {n: (r if n in args_grad else "null") for n, r in reqs.items()}
        plan = build_plan(sym, {n: a.shape for n, a in args.items() if n in names},
                          {n: a.stype for n, a in args.items() if n in names}, reqs)
        if verbose_stypes_enabled():
            _emit_verbose_log(plan)
        return cls(plan, {n: args[n] for n in names}, {n: args_grad[n] for n in names if n in args_grad}, reqs)

    @property
    def plan(self) -> Plan:
        return self._plan

    @property
    def arg_arrays(self):
        return [self.arg_dict[n.name] for n in self._plan.args]

    @property
    def grad_arrays(self):
        return [self.grad_dict.get(n.name) for n in self._plan.args]

    def set_input(self, name: str, value: BaseArray):
        """Point argument ``name`` at ``value`` without copying (same shape and stype required)."""
        current = self.arg_dict[name]
        if value.shape != current.shape or value.stype != current.stype:
            raise ShapeError(
                f"argument {name!r} is bound as {current.stype} {current.shape}, got {value.stype} {value.shape}"
            )
        self.arg_dict[name] = value
        self._values[self._arg_slot[name]] = value

    # -- running ----------------------------------------------------------------------------------
    def forward(self, is_train=False, **kwargs):
        for name, value in kwargs.items():
            if name not in self.arg_dict:
                raise BindError(f"forward: unknown argument {name!r}")
            self.arg_dict[name][:] = value
        values = self._values
        _run_steps(self._forward_steps, values)
        self._train_forward_done = bool(is_train)
        self.outputs = [values[i] for i in self._output_slots]
        return self.outputs

    def backward(self, out_grads=None, is_train=True, sample_weight=None):
        """Gradients of the last ``forward(is_train=True)``. ``sample_weight``: ``None`` or one
        weight per row of the batch; each loss output's row-``i`` gradient is multiplied by weight
        ``i`` (the loss ops' ``row_gradient``), so weight 2 gives the gradient of the row twice."""
        if not self._train_forward_done:
            raise RuntimeError("backward() needs a forward(is_train=True) first")
        values = self._values
        if self._head_slots:
            if out_grads is None:
                out_grads = [None] * len(self._head_slots)
            elif isinstance(out_grads, BaseArray):
                out_grads = [out_grads]
            heads = list(self._plan.head_grads.items())
            for slot, ((uid, i), head), g in zip(self._head_slots, heads, out_grads):
                shape = tuple(self._plan.shapes[(uid, i)])
                if g is None:  # ones in the output's dtype, so float64 graphs stay float64
                    g = NDArray(np.ones(shape, dtype=values[self._slot[(uid, i)]].dtype))
                elif tuple(g.shape) != shape:
                    raise ShapeError(f"backward: out_grad for {head.name[len('_head_grad_'):]!r} has shape "
                                     f"{tuple(g.shape)}, the output has shape {shape}")
                # backward kernels were chosen for the planned head-gradient stype
                values[slot] = cast_storage(g, self._plan.stypes[(head.uid, 0)])
        if sample_weight is None:
            _run_steps(self._backward_steps, values)
        else:
            self._sample_weight = np.asarray(sample_weight, dtype=np.float64)
            try:
                _run_steps(self._weighted_steps, values)
            finally:
                self._sample_weight = None
        for slot, target, req in self._grad_targets:
            _store_grad(target, values[slot], req)

    def debug_str(self) -> str:
        return "\n".join(self._plan.log_lines())


def _known_shape(shape) -> bool:
    return shape is not None and all(d > 0 for d in shape)


def _row_weighted(runner, executor):
    """``runner`` (a loss's backward) with output rows scaled by ``executor._sample_weight``."""
    def run(inputs):
        w = executor._sample_weight
        out = []
        for g in runner(inputs):
            x = g._data if g.stype == "default" else g.asnumpy()
            if x.shape[0] != w.shape[0]:
                raise ShapeError(f"backward: {w.shape[0]} sample weights for a batch of {x.shape[0]} rows")
            out.append(NDArray((x * w.reshape((-1,) + (1,) * (x.ndim - 1))).astype(x.dtype, copy=False)))
        return out

    return run


def _run_steps(steps, values):
    for runner, ins, outs in steps:
        res = runner([values[i] for i in ins])
        if len(outs) == 1:
            values[outs[0]] = res[0]
        else:
            for slot, r in zip(outs, res):
                values[slot] = r


def _store_grad(target: BaseArray, value: BaseArray, req: str):
    if value.stype != target.stype:
        value = cast_storage(value, target.stype)
    if req == "add":
        target[:] = target + value
        return
    if target.stype == "default":
        np.copyto(target._data, value._data, casting="unsafe")
    elif target.stype == "row_sparse":
        target._data = value._data if value._data.dtype == target.dtype else value._data.astype(target.dtype)
        target._indices = value._ids
    else:
        target[:] = value
