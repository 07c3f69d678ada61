"""Loss output layers: forward is a prediction, backward ignores the head gradient (MXNet semantics).

A sample weight ``w`` (``Executor.backward(sample_weight=...)``) multiplies each row's gradient
below by ``w[row]`` (the backward ops are ``row_gradient``); the normalisations are unchanged.

Regression layers: gradient ``grad_scale / num_output * (out - label)`` (``sign(out - label)`` for
MAE), with ``num_output = out.size / out.shape[0]`` and the label reshaped to the output's shape.
``SoftmaxOutput``: softmax over the last axis; gradient ``grad_scale * (out - one_hot(label))``,
divided by the batch size for ``normalization='batch'`` or by the valid count for ``'valid'``.
"""
from __future__ import annotations

import numpy as np

from ..base import ShapeError
from .elemwise import sigmoid
from .registry import FusedForm, Op, merge_shape, register


def _regression_infer(name):
    def infer(i, o, p):
        data, label = i
        data = merge_shape(data, o[0], name)
        if label is None and data is not None:
            label = data
        elif label is not None and data is not None and all(label) and all(data):
            if int(np.prod(label)) != int(np.prod(data)):
                raise ShapeError(f"{name}: label shape {label} does not fit the output shape {data}")
        return [data, label], [data]

    return infer


def _regression_backward(kind):
    def f(x, p):
        out, label = x
        diff = out - label.reshape(out.shape)
        if kind == "mae":
            diff = np.sign(diff)
        num_output = out.size // out.shape[0] if out.ndim and out.shape[0] else 1
        scale = p["grad_scale"] / num_output
        if scale != 1.0:
            diff *= scale
        return [diff if diff.dtype == out.dtype else diff.astype(out.dtype)]

    return f


# the compiled engine's hand kernels for Σ dot(csr, row_sparse) [+ bias] into these layers (engines/compiled)
LINEAR_KERNEL = ("linear",)

_REGRESSION = {  # forward, gradient kind, the metrics reported by default
    "LinearRegressionOutput": (lambda x: x.copy(), "linear", ("mse",)),
    "MAERegressionOutput": (lambda x: x.copy(), "mae", ("mae",)),
    "LogisticRegressionOutput": (sigmoid, "logistic", ("log_loss",)),
}

for _name, (_f, _kind, _metrics) in _REGRESSION.items():
    register(Op(
        name=_name, input_names=("data", "label"), params={"grad_scale": 1.0}, is_loss=True, default_metrics=_metrics,
        dense=lambda x, p, f=_f: [np.asarray(f(x[0]), dtype=x[0].dtype)],
        infer_shape=_regression_infer(_name),
        gradient=lambda g, n=_name: [g.apply("_backward_" + n, g.outputs[0], g.inputs[1],
                                             grad_scale=g.params["grad_scale"]), None],
        doc="regression output layer", fused=FusedForm("output", _name, epoch_kernels=LINEAR_KERNEL),
    ))
    register(Op(
        name="_backward_" + _name, input_names=("output", "label"), params={"grad_scale": 1.0}, hidden=True,
        dense=_regression_backward(_kind), infer_shape=lambda i, o, p: (i, [i[0]]), row_gradient=True,
    ))


def softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_infer(i, o, p):
    """The label holds class ids (the output's shape without the last axis) or, with the output's
    own shape, a probability per class (as in MXNet)."""
    data, label = i
    data = merge_shape(data, o[0], "SoftmaxOutput")
    if data is not None and label is None:
        label = tuple(data[:-1])
    elif data is not None and label is not None and all(data) and all(label):
        if tuple(label) != tuple(data) and int(np.prod(label)) != int(np.prod(data[:-1])):
            raise ShapeError(f"SoftmaxOutput: label shape {label} does not fit the output shape {data}")
    return [data, label], [data]


def _softmax_backward(x, p):
    out, label = x
    if label.shape == out.shape and out.ndim > 1:  # probability labels: out - label
        scale = p["grad_scale"] / (out.shape[0] if p["normalization"] in ("batch", "valid") else 1)
        return [(scale * (out - label)).astype(out.dtype, copy=False)]
    k = out.shape[-1]
    probs = out.reshape(-1, k)
    lab = label.reshape(-1).astype(np.int64)
    grad = probs.copy()
    valid = np.ones(len(lab), dtype=bool)
    if p["use_ignore"]:
        valid = lab != int(p["ignore_label"])
    rows = np.flatnonzero(valid)
    if np.any((lab[rows] < 0) | (lab[rows] >= k)):
        raise ShapeError(f"SoftmaxOutput: labels must be class ids in [0, {k})")
    grad[rows, lab[rows]] -= 1.0
    grad[~valid] = 0.0
    scale = p["grad_scale"]
    if p["normalization"] == "batch":
        scale = scale / out.shape[0]
    elif p["normalization"] == "valid":  # MXNet counts labels != ignore_label even without use_ignore
        scale = scale / max(int(np.sum(lab != int(p["ignore_label"]))), 1)
    return [(scale * grad).reshape(out.shape).astype(out.dtype, copy=False)]


def _softmax_fused_check(p):
    if p["use_ignore"] or p["multi_output"] or p["preserve_shape"] or p["normalization"] == "valid":
        return "use_ignore, multi_output, preserve_shape or normalization 'valid'"
    return None


_SOFTMAX_PARAMS = {"grad_scale": 1.0, "ignore_label": -1.0, "use_ignore": False, "normalization": "null",
                   "multi_output": False, "preserve_shape": False}
register(Op(
    name="SoftmaxOutput", input_names=("data", "label"), params=dict(_SOFTMAX_PARAMS), is_loss=True,
    default_metrics=("accuracy",),
    dense=lambda x, p: [softmax(x[0]).astype(x[0].dtype, copy=False)],
    infer_shape=_softmax_infer,
    gradient=lambda g: [g.apply("_backward_SoftmaxOutput", g.outputs[0], g.inputs[1], **g.params), None],
    doc="softmax over the last axis; label holds class ids, or probabilities of the output's shape",
    fused=FusedForm("output", "SoftmaxOutput", check=_softmax_fused_check, epoch_kernels=LINEAR_KERNEL),
))
register(Op(
    name="_backward_SoftmaxOutput", input_names=("output", "label"), params=dict(_SOFTMAX_PARAMS), hidden=True,
    dense=_softmax_backward, infer_shape=lambda i, o, p: (i, [i[0]]), row_gradient=True,
))
