"""The output layers of the linear family's epoch kernels: their codes and formulas, written once for
the batch loop (:mod:`.kernels`), the batch-1 loop (:mod:`.batch1`) and the generated plans
(:mod:`.plan_kernels`).

==========================  =====================================  ===============================================
output                      forward ``out``                        gradient w.r.t. ``pred``
==========================  =====================================  ===============================================
LinearRegressionOutput      ``pred``                               ``grad_scale/K * (out - label)``
MAERegressionOutput         ``pred``                               ``grad_scale/K * sign(out - label)``
LogisticRegressionOutput    ``sigmoid(pred)``                      ``grad_scale/K * (out - label)``
SoftmaxOutput               ``softmax(pred)`` over the K classes   ``grad_scale * (out - onehot(label))``
==========================  =====================================  ===============================================

(MXNet's ``num_output`` is the label's size per sample, ``K``; ``SoftmaxOutput`` with
``normalization='null'`` does not divide by the batch, with ``'batch'``/``'valid'`` it does.)
"""
from __future__ import annotations

import math

from numba import njit

__all__ = ["OUTPUTS", "OUT_LINEAR", "OUT_MAE", "OUT_LOGISTIC", "OUT_SOFTMAX", "STATUS_OK", "activation", "elem_grad",
           "output_grad"]

OUT_LINEAR = 0
OUT_MAE = 1
OUT_LOGISTIC = 2
OUT_SOFTMAX = 3
OUTPUTS = {
    "LinearRegressionOutput": OUT_LINEAR,
    "MAERegressionOutput": OUT_MAE,
    "LogisticRegressionOutput": OUT_LOGISTIC,
    "SoftmaxOutput": OUT_SOFTMAX,
}

# an epoch loop's status when every batch ran; else it is the index of the batch whose output (or
# metric) was not finite
STATUS_OK = -1


@njit(cache=True, inline="always")
def activation(output_kind, x):
    """The output layer on one element (SoftmaxOutput is handled over the row)."""
    if output_kind == OUT_LOGISTIC:
        return 1.0 / (1.0 + math.exp(-float(x)))
    return x


@njit(cache=True, inline="always")
def elem_grad(output_kind, out, label, scale):
    """``scale * (out - label)`` (``sign(out - label)`` for MAERegressionOutput)."""
    d = float(out) - float(label)
    if output_kind == OUT_MAE:
        d = 1.0 if d > 0.0 else (-1.0 if d < 0.0 else 0.0)
    return scale * d


@njit(cache=True)
def output_grad(out, label, order, lo, n, output_kind, grad_scale, softmax_batch_norm, grad):
    """``grad[:n]``: the output layer's gradient w.r.t. its input, for the batch ``order[lo:lo+n]``."""
    k_out = out.shape[1]
    if output_kind == OUT_SOFTMAX:
        scale = grad_scale / n if softmax_batch_norm else grad_scale
        for i in range(n):
            cls = int(label[order[lo + i], 0])
            for k in range(k_out):
                grad[i, k] = elem_grad(output_kind, out[i, k], 1.0 if k == cls else 0.0, scale)
        return
    scale = grad_scale / k_out
    for i in range(n):
        r = order[lo + i]
        for k in range(k_out):
            grad[i, k] = elem_grad(output_kind, out[i, k], label[r, k], scale)
