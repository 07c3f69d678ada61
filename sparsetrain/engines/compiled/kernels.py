"""Fused whole-epoch kernels for the linear family (the compiled engine's inner loop).

The model is ``pred = dot(X_1, W_1) + ... + dot(X_T, W_T) [+ b]`` with every ``X_t`` a CSR
matrix over the same rows, ``W_t`` of shape ``(D_t, K)`` (stored in full), ``b`` of shape
``(K,)``, followed by one output layer:

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

Per batch the kernel runs forward, accumulates the metrics on the forward output (before the
update), then back-propagates: ``grad_W_t = X_tᵀ · grad`` restricted to the rows of ``W_t`` whose
column occurs in the batch's CSR structure — explicit zeros included, exactly the row set of the
graph engine's row-sparse gradient — and ``grad_b = Σ_batch grad``; then the optimizer's *lazy*
update on those rows of ``W_t`` and the dense update of ``b``, with the update rules of
:mod:`sparsetrain.kernels.optim` that the :mod:`sparsetrain.optimizer` classes run too
(``apply_rows``/``apply_flat``; for one-sample batches with K = 1, the ``*_outer_rows`` loops over
the same step functions, without materialising the gradient).

The distinct gradient rows of a batch are found with a small open-addressing table sized by the
largest batch (it stays in cache); no scratch grows with the number of features.

The caller decides the epoch: ``order`` (int64 row ids; repeated ids for ``pad``; leftovers for
``roll_over``) and ``batch_ptr`` (batch boundaries into ``order``). Batching logic therefore stays
in the data iterators.

Metrics, per batch as MXNet's metric classes compute them, then summed over batches:

* ``mse`` / ``mae``: mean squared / absolute error over the batch's elements (``num_inst`` += 1);
  ``rmse``: the square root of the batch's mean squared error (``num_inst`` += 1).
* ``accuracy``: correct samples (``num_inst`` += samples); binary (K = 1): ``out > 0.5`` against
  the label, K > 1: ``argmax(out)`` against the class index.
* ``log_loss`` / ``ce``: ``Σ -log(p_true + 1e-12)`` (``num_inst`` += samples): K > 1,
  ``p_true = out[label]``; K = 1 (binary), ``-(y log(p + 1e-12) + (1-y) log(1 - p + 1e-12))``,
  which is the same for labels in {0, 1}.

The epoch value of a metric is ``sum / num_inst``. A non-finite prediction or batch metric stops
the kernel at once, before that batch's update, and is reported with its batch index.

For distributed workers, :meth:`LinearEpochRunner.batch_gradients` runs the forward, metrics and
backward of one mini-batch without any update (:func:`linear_batch_gradients`) and returns the
row-sparse gradients (rows sorted ascending, an LSD radix sort over the batch's distinct rows) and
the bias gradient to push to the parameter servers.

Use :class:`LinearEpochRunner` from Python: it validates inputs once, keeps the scratch
buffers between calls, takes the optimizer's states from an :class:`~sparsetrain.optimizer.Updater`
(shared with the graph engine, so checkpoints and engine switches see one set of states) and keeps
the optimizer's update counts and learning-rate schedule in step.
"""
from __future__ import annotations

import math
import os
import weakref
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from numba import njit

from ...base import ShapeError, StorageTypeError
from ...metric import catalogue
from ...metric import info as metric_info
from ...kernels import optim as _optim_kernels
from ...kernels.optim import (
    H_BETA,
    H_BETA1,
    H_BETA2,
    H_CLIP,
    H_EPS,
    H_LAMDA1,
    H_MOMENTUM,
    H_RESCALE,
    KIND_ADAGRAD,
    KIND_ADAM,
    KIND_SGD,
    KIND_SGD_MOM,
    adagrad_flat,
    adagrad_outer_rows,
    adam_bias_corrected_lr,
    adam_flat,
    adam_outer_rows,
    apply_flat,
    apply_rows,
    ftrl_flat,
    ftrl_outer_rows,
    sgd_flat,
    sgd_mom_flat,
    sgd_mom_outer_rows,
    sgd_outer_rows,
)
from ...ndarray import INDEX_DTYPE, BaseArray, CSRNDArray, NDArray, RowSparseNDArray

__all__ = [
    "OUTPUTS", "FUSED_METRICS", "BatchGradients", "EpochResult", "LinearEpochRunner", "linear_epoch",
    "linear_batch_gradients",
    "optimizer_fusable",
]

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

M_MSE = 1
M_RMSE = 2
M_MAE = 3
M_ACCURACY = 4
M_LOG_LOSS = 5
# The kernel's metric formulas by id; a metric's catalogue record (``MetricInfo.fused``) names its id.
FUSED_METRICS = {"mse": M_MSE, "rmse": M_RMSE, "mae": M_MAE, "accuracy": M_ACCURACY, "log_loss": M_LOG_LOSS}
_LOG_EPS = 1e-12

# kernel status codes
_OK = -1


# -- numba kernels ------------------------------------------------------------------------------

@njit(cache=True)
def _csr_check(indices, indptr, num_cols, num_rows):
    """0: inconsistent structure or a column id out of range; 1: valid; 2: valid and canonical
    (strictly increasing column ids within every row)."""
    if indptr.shape[0] != num_rows + 1 or indptr[0] != 0 or indptr[num_rows] > indices.shape[0]:
        return 0
    canonical = True
    for i in range(num_rows):
        if indptr[i + 1] < indptr[i]:
            return 0
        for p in range(indptr[i], indptr[i + 1]):
            c = indices[p]
            if c < 0 or c >= num_cols:
                return 0
            if p > indptr[i] and c <= indices[p - 1]:
                canonical = False
    return 2 if canonical else 1


# One definition of each element-wise formula, shared by the batch path and the single-sample path.

@njit(cache=True, inline="always")
def _activation(output_kind, x):
    """The output layer on one element (SoftmaxOutput is handled over the row)."""
    if output_kind == OUT_LOGISTIC:
        return 1.0 / (1.0 + math.exp(-float(x)))
    return x


@njit(cache=True, inline="always")
def _elem_grad(output_kind, out, label, scale):
    """``scale * (out - label)`` (``sign(out - label)`` for MAERegressionOutput)."""
    d = float(out) - float(label)
    if output_kind == OUT_MAE:
        d = 1.0 if d > 0.0 else (-1.0 if d < 0.0 else 0.0)
    return scale * d


@njit(cache=True, inline="always")
def _metric_elem(code, out, label):
    """One element's (regression metrics) or one binary sample's contribution to a metric sum.

    In float64 whatever the weights' dtype, as the metric classes compute (numba's ``float()``
    keeps float32: a float32 ``d * d`` overflows where the graph engine's metric does not).
    """
    if code == M_MSE or code == M_RMSE:
        d = np.float64(label) - np.float64(out)
        return d * d
    if code == M_MAE:
        return abs(np.float64(label) - np.float64(out))
    if code == M_ACCURACY:
        pred_class = 1.0 if out > 0.5 else 0.0
        return 1.0 if pred_class == label else 0.0
    y = np.float64(label)
    p = np.float64(out)
    return -(y * math.log(p + _LOG_EPS) + (1.0 - y) * math.log(1.0 - p + _LOG_EPS))


@njit(cache=True, inline="always")
def _metric_value(code, total, n, k_out):
    """A batch's metric from its element sum: MXNet's per-batch mean (sqrt for rmse) or the sum."""
    if code == M_MSE or code == M_MAE:
        return total / (n * k_out)
    if code == M_RMSE:
        return math.sqrt(total / (n * k_out))
    return total


@njit(cache=True, inline="always")
def _metric_inst(code, n):
    """``num_inst`` a batch of ``n`` samples adds: 1 for the per-batch means, ``n`` for the rest."""
    return n if (code == M_ACCURACY or code == M_LOG_LOSS) else 1


@njit(cache=True)
def _forward_batch(x_data, x_indices, x_indptr, weights, bias, has_bias, order, lo, n, output_kind,
                   out, tmp):
    """``out[:n] = output_layer(Σ_t X_t[rows] · W_t + b)`` for the batch ``order[lo:lo+n]``."""
    k_out = out.shape[1]
    n_terms = len(weights)
    tmp[0] = 0
    zero = tmp[0]  # a zero of the weights' dtype: sums round as the graph engine's dot does
    for t in range(n_terms):
        w = weights[t]
        data = x_data[t]
        ind = x_indices[t]
        ptr = x_indptr[t]
        for i in range(n):
            r = order[lo + i]
            if k_out == 1:  # keep the running sum in a register
                acc = zero
                for p in range(ptr[r], ptr[r + 1]):
                    acc += data[p] * w[np.uint64(ind[p]), 0]  # unsigned: no wrap-around check
                tmp[0] = acc
            else:
                for k in range(k_out):
                    tmp[k] = 0
                for p in range(ptr[r], ptr[r + 1]):
                    v = data[p]
                    c = ind[p]
                    for k in range(k_out):
                        tmp[k] += v * w[c, k]
            if t == 0:
                for k in range(k_out):
                    out[i, k] = tmp[k]
            else:  # dot_1 + dot_2 (+ ...), in the graph's order
                for k in range(k_out):
                    out[i, k] = out[i, k] + tmp[k]
    for i in range(n):
        if has_bias:
            for k in range(k_out):
                out[i, k] = out[i, k] + bias[k]
        if output_kind == OUT_SOFTMAX:
            m = float(out[i, 0])
            for k in range(1, k_out):
                if out[i, k] > m:
                    m = float(out[i, k])
            s = 0.0
            for k in range(k_out):
                s += math.exp(float(out[i, k]) - m)
            for k in range(k_out):
                out[i, k] = math.exp(float(out[i, k]) - m) / s
        elif output_kind == OUT_LOGISTIC:
            for k in range(k_out):
                out[i, k] = _activation(output_kind, out[i, k])


@njit(cache=True)
def _batch_metrics(out, label, order, lo, n, metric_codes, values):
    """Per-batch metric contributions into ``values[m]``; returns False if any is non-finite."""
    k_out = out.shape[1]
    for m in range(metric_codes.shape[0]):
        code = metric_codes[m]
        total = 0.0
        if k_out > 1 and code == M_ACCURACY:
            for i in range(n):
                best = 0
                for k in range(1, k_out):
                    if out[i, k] > out[i, best]:
                        best = k
                if best == int(label[order[lo + i], 0]):
                    total += 1.0
        elif k_out > 1 and code == M_LOG_LOSS:
            for i in range(n):
                total -= math.log(np.float64(out[i, int(label[order[lo + i], 0])]) + _LOG_EPS)
        else:
            for i in range(n):
                r = order[lo + i]
                for k in range(k_out):
                    total += _metric_elem(code, out[i, k], label[r, k])
        values[m] = _metric_value(code, total, n, k_out)
        if not math.isfinite(values[m]):
            return False
    return True


@njit(cache=True, inline="always")
def _bias_grad(grad, n, out):
    """``out = Σ_{i<n} grad[i, :]``: the bias gradient of a batch."""
    for k in range(out.shape[0]):
        out[k] = 0
    for i in range(n):
        for k in range(out.shape[0]):
            out[k] += grad[i, k]


@njit(cache=True)
def _output_grad(out, label, order, lo, n, output_kind, grad_scale, softmax_batch_norm, grad):
    """``grad[:n]``: the output layer's gradient w.r.t. its input."""
    k_out = out.shape[1]
    if output_kind == OUT_SOFTMAX:
        scale = grad_scale / n if softmax_batch_norm else grad_scale
        for i in range(n):
            cls = int(label[order[lo + i], 0])
            for k in range(k_out):
                grad[i, k] = _elem_grad(output_kind, out[i, k], 1.0 if k == cls else 0.0, scale)
        return
    scale = grad_scale / k_out
    for i in range(n):
        r = order[lo + i]
        for k in range(k_out):
            grad[i, k] = _elem_grad(output_kind, out[i, k], label[r, k], scale)


_FIB = np.uint64(11400714819323198485)  # 2**64 / golden ratio: Fibonacci hashing


@njit(cache=True, inline="always")
def _slot(c, mask, shift):
    return np.int64((np.uint64(c) * _FIB) >> shift) & mask


@njit(cache=True)
def _gather_grad_rows(data, ind, ptr, canonical, order, lo, n, grad, htable, slots, rows, acc):
    """``Xᵀ·grad`` of one batch and term as (rows, acc[:nq]); returns ``nq``.

    The rows are the distinct column ids stored in the batch (explicit zeros included), in order
    of first appearance; each row's sum accumulates in sample order, as the graph engine's
    ``dot(csrᵀ, grad)`` does. Distinct ids are found with a small open-addressing table that stays
    in cache, unlike a map over all ``D`` rows (``htable``: all -1, a power of two of at least
    twice the batch's stored entries; left all -1; ``slots``: scratch like ``rows``).
    """
    k_out = grad.shape[1]
    if n == 1 and canonical:  # one sample with sorted unique columns: they are the gradient's rows
        r = order[lo]
        p0 = ptr[r]
        nq = ptr[r + 1] - p0
        for q in range(nq):
            rows[q] = ind[p0 + q]
            v = data[p0 + q]
            for k in range(k_out):
                acc[q, k] = v * grad[0, k]
        return nq
    mask = htable.shape[0] - 1
    bits = 0
    while (1 << bits) < htable.shape[0]:
        bits += 1
    shift = np.uint64(64 - bits)
    nq = 0
    for i in range(n):
        r = order[lo + i]
        g0 = grad[i, 0]
        for p in range(ptr[r], ptr[r + 1]):
            c = ind[p]
            h = _slot(c, mask, shift)
            # a slot holds (column << 32 | position), -1 when empty: 8 bytes, one load per probe
            e = htable[h]
            while e != -1 and (e >> 32) != c:
                h = (h + 1) & mask
                e = htable[h]
            if e == -1:
                htable[h] = (c << 32) | nq
                slots[nq] = h
                rows[nq] = c
                for k in range(k_out):
                    acc[nq, k] = 0
                q = nq
                nq += 1
            else:
                q = e & 0xFFFFFFFF
            v = data[p]
            if k_out == 1:
                acc[q, 0] += v * g0
            else:
                for k in range(k_out):
                    acc[q, k] += v * grad[i, k]
    for q in range(nq):  # empty the table again: only the slots this batch used
        htable[slots[q]] = -1
    return nq


@njit(cache=True)
def _single_sample_run(data, ind, ptr, canonical, w, s1, s2, bias, bias_s1, bias_s2, has_bias, label, order,
                       batch_ptr, b_begin, b_end, output_kind, grad_scale, train, opt_kind, hyper, lrs, wds,
                       counts, metric_codes, metric_sums, metric_counts, values, scalar, g_row, grad_buf, htable,
                       slots_buf, rows_buf, acc_buf):
    """Batches ``b_begin..b_end-1`` of one sample each, one dot term, K = 1: ``(status, samples)``.

    The same formulas as the batch path of :func:`linear_epoch`, with the running values in
    registers; ``scalar`` (1 element of the weights' dtype) rounds them as the batch path's
    buffers do, ``g_row`` holds the sample's output gradient, ``values`` (≥ 6 float64) is scratch.
    On a non-finite output or metric, returns that batch's index with the metrics and updates of
    the batches before it applied.
    """
    n_metrics = metric_codes.shape[0]
    lr_step = 1 if lrs.shape[0] > 1 else 0  # one row of rates when they do not change
    rescale = hyper[H_RESCALE]
    clip = hyper[H_CLIP]
    momentum = hyper[H_MOMENTUM]
    eps = hyper[H_EPS]
    beta1 = hyper[H_BETA1]
    beta2 = hyper[H_BETA2]
    lamda1 = hyper[H_LAMDA1]
    beta = hyper[H_BETA]
    scalar[0] = 0
    zero = scalar[0]
    # Literal constants passed to other kernels make numba compile extra specialisations of them.
    one = b_end - b_end + 1
    # Metric sums are kept in registers (per code) and added to ``metric_sums`` when the run ends.
    for m in range(M_LOG_LOSS + 1):
        values[m] = 0.0
    for m in range(n_metrics):
        values[metric_codes[m]] = 1.0
    want_mse = values[M_MSE] > 0.0
    want_rmse = values[M_RMSE] > 0.0
    want_mae = values[M_MAE] > 0.0
    want_acc = values[M_ACCURACY] > 0.0
    want_ll = values[M_LOG_LOSS] > 0.0
    s_mse = 0.0
    s_rmse = 0.0
    s_mae = 0.0
    s_acc = 0.0
    s_ll = 0.0
    status = _OK
    b = b_begin
    while b < b_end:
        lo = batch_ptr[b]
        r = order[lo]
        acc = zero
        for p in range(ptr[r], ptr[r + 1]):
            acc += data[p] * w[np.uint64(ind[p]), 0]  # unsigned: no wrap-around check
        if has_bias:
            acc = acc + bias[0]
        scalar[0] = _activation(output_kind, acc)
        out = scalar[0]
        y = label[r, 0]
        # a batch of one element: the batch path's per-batch values, e.g. mse = d*d / (1*1)
        v_mse = _metric_value(M_MSE, _metric_elem(M_MSE, out, y), 1, 1) if want_mse else 0.0
        v_rmse = _metric_value(M_RMSE, _metric_elem(M_RMSE, out, y), 1, 1) if want_rmse else 0.0
        v_mae = _metric_value(M_MAE, _metric_elem(M_MAE, out, y), 1, 1) if want_mae else 0.0
        v_acc = _metric_elem(M_ACCURACY, out, y) if want_acc else 0.0
        v_ll = _metric_elem(M_LOG_LOSS, out, y) if want_ll else 0.0
        if not (math.isfinite(out) and math.isfinite(v_mse) and math.isfinite(v_rmse) and math.isfinite(v_mae)
                and math.isfinite(v_acc) and math.isfinite(v_ll)):
            status = b
            break
        s_mse += v_mse
        s_rmse += v_rmse
        s_mae += v_mae
        s_acc += v_acc
        s_ll += v_ll
        b += 1
        if not train:
            continue
        bb = b - 1  # this batch
        g_row[0] = _elem_grad(output_kind, out, y, grad_scale)
        counts[0] += 1
        lo_p = ptr[r]
        hi_p = ptr[r + 1]
        lr = lrs[bb * lr_step, 0]
        if canonical:  # the row's columns are the gradient's rows: no need to build them
            # apply_outer_rows's dispatch, calling each optimizer's loop directly: passing the kind
            # through one more call costs ~30-40% more time per sample here.
            wd = wds[0]
            if opt_kind == KIND_SGD:
                sgd_outer_rows(w, ind, data, lo_p, hi_p, g_row, lr, wd, rescale, clip)
            elif opt_kind == KIND_SGD_MOM:
                sgd_mom_outer_rows(w, s1, ind, data, lo_p, hi_p, g_row, lr, wd, momentum, rescale, clip)
            elif opt_kind == KIND_ADAGRAD:
                adagrad_outer_rows(w, s1, ind, data, lo_p, hi_p, g_row, lr, wd, eps, rescale, clip)
            elif opt_kind == KIND_ADAM:
                adam_outer_rows(w, s1, s2, ind, data, lo_p, hi_p, g_row,
                                adam_bias_corrected_lr(lr, beta1, beta2, counts[0]), wd, beta1, beta2, eps, rescale,
                                clip)
            else:
                ftrl_outer_rows(w, s1, s2, ind, data, lo_p, hi_p, g_row, lr, wd, lamda1, beta, rescale, clip)
        else:
            grad_buf[0, 0] = g_row[0]
            nq = _gather_grad_rows(data, ind, ptr, canonical, order, lo, one, grad_buf, htable, slots_buf, rows_buf,
                                   acc_buf)
            apply_rows(opt_kind, w, s1, s2, rows_buf[:nq], acc_buf[:nq], lr, wds[0], counts[0], hyper)
        if has_bias:
            counts[1] += 1
            lr = lrs[bb * lr_step, 1]
            wd = wds[1]
            if opt_kind == KIND_SGD:
                sgd_flat(bias, g_row, lr, wd, rescale, clip)
            elif opt_kind == KIND_SGD_MOM:
                sgd_mom_flat(bias, bias_s1, g_row, lr, wd, momentum, rescale, clip)
            elif opt_kind == KIND_ADAGRAD:
                adagrad_flat(bias, bias_s1, g_row, lr, wd, eps, rescale, clip)
            elif opt_kind == KIND_ADAM:
                adam_flat(bias, bias_s1, bias_s2, g_row, adam_bias_corrected_lr(lr, beta1, beta2, counts[1]), wd,
                          beta1, beta2, eps, rescale, clip)
            else:
                ftrl_flat(bias, bias_s1, bias_s2, g_row, lr, wd, lamda1, beta, rescale, clip)
    done = b - b_begin
    values[M_MSE] = s_mse
    values[M_RMSE] = s_rmse
    values[M_MAE] = s_mae
    values[M_ACCURACY] = s_acc
    values[M_LOG_LOSS] = s_ll
    for m in range(n_metrics):
        metric_sums[m] += values[metric_codes[m]]
        metric_counts[m] += done
    return status, done


@njit(cache=True)
def linear_epoch(x_data, x_indices, x_indptr, canonical, weights, states1, states2, bias, bias_s1, bias_s2,
                 has_bias, label, order, batch_ptr, output_kind, grad_scale, softmax_batch_norm,
                 train, opt_kind, hyper, lrs, wds, counts, metric_codes, metric_sums, metric_counts,
                 htable, slots_buf, rows_buf, acc_buf, out_buf, grad_buf, tmp_buf, gb_buf,
                 predictions):
    """Run the batches ``batch_ptr`` over ``order``; returns ``(status, samples_done)``.

    ``status`` is -1 when every batch ran, else the index of the batch whose prediction or metric
    was non-finite (that batch was not applied). Tuples hold one entry per dot term:
    ``x_data``/``x_indices``/``x_indptr`` (CSR over the same rows), ``weights`` (2-D), their
    optimizer states ``states1``/``states2`` (shaped like the weight, or empty when unused).
    ``canonical[t]``: term ``t``'s rows have strictly increasing column ids. ``lrs[b, p]`` is the
    learning rate of batch ``b`` for parameter ``p`` (weights in term order, then the bias; a
    single row when the rates are the same for every batch),
    ``wds[p]`` its weight decay, ``counts[p]`` its update count (incremented per batch; Adam's
    ``t``). ``metric_sums`` and ``metric_counts`` accumulate. With ``train=False`` nothing is
    updated; when ``predictions`` has rows, the outputs are written there by position in
    ``order``. Scratch: ``htable`` (int64, all -1, a power of two of at least twice the largest
    batch's stored entries; left all -1), ``slots_buf``/``rows_buf``/``acc_buf`` (at
    least the largest batch's stored entries), ``out_buf``/``grad_buf`` (largest batch × K),
    ``tmp_buf``/``gb_buf`` (K).
    """
    n_terms = len(weights)
    k_out = out_buf.shape[1]
    n_metrics = metric_codes.shape[0]
    values = np.empty(max(n_metrics, M_LOG_LOSS + 1), dtype=np.float64)
    write_pred = predictions.shape[0] > 0
    check = train or n_metrics > 0  # a pure prediction pass reports NaN/inf outputs as they are
    scalar_path = n_terms == 1 and k_out == 1 and output_kind != OUT_SOFTMAX and check and not write_pred
    n_batches = batch_ptr.shape[0] - 1
    lr_step = 1 if lrs.shape[0] > 1 else 0  # one row of rates when they do not change
    samples = 0
    b = n_batches - n_batches  # a run-time 0: a literal would compile _single_sample_run twice
    while b < n_batches:
        lo = batch_ptr[b]
        n = batch_ptr[b + 1] - lo
        if scalar_path and n == 1:
            # a run of one-sample batches: the lean loop below, on this term's arrays directly
            b_end = b + 1
            while b_end < n_batches and batch_ptr[b_end + 1] - batch_ptr[b_end] == 1:
                b_end += 1
            status, done = _single_sample_run(
                x_data[0], x_indices[0], x_indptr[0], canonical[0], weights[0], states1[0], states2[0], bias,
                bias_s1, bias_s2, has_bias, label, order, batch_ptr, b, b_end, output_kind, grad_scale, train,
                opt_kind, hyper, lrs, wds, counts, metric_codes, metric_sums, metric_counts, values, tmp_buf,
                gb_buf, grad_buf, htable, slots_buf, rows_buf, acc_buf)
            samples += done
            if status != _OK:
                return status, samples
            b = b_end
            continue
        _forward_batch(x_data, x_indices, x_indptr, weights, bias, has_bias, order, lo, n, output_kind,
                       out_buf, tmp_buf)
        if check:
            finite = True
            for i in range(n):
                for k in range(k_out):
                    if not math.isfinite(out_buf[i, k]):
                        finite = False
            if finite:
                finite = _batch_metrics(out_buf, label, order, lo, n, metric_codes, values)
            if not finite:
                return b, samples
        for m in range(n_metrics):
            metric_sums[m] += values[m]
            metric_counts[m] += _metric_inst(metric_codes[m], n)
        if write_pred:
            for i in range(n):
                for k in range(k_out):
                    predictions[lo + i, k] = out_buf[i, k]
        samples += n
        b += 1
        if not train:
            continue

        bb = b - 1  # this batch
        _output_grad(out_buf, label, order, lo, n, output_kind, grad_scale, softmax_batch_norm, grad_buf)
        for t in range(n_terms):
            nq = _gather_grad_rows(x_data[t], x_indices[t], x_indptr[t], canonical[t], order, lo, n, grad_buf,
                                   htable, slots_buf, rows_buf, acc_buf)
            counts[t] += 1
            apply_rows(opt_kind, weights[t], states1[t], states2[t], rows_buf[:nq], acc_buf[:nq],
                       lrs[bb * lr_step, t], wds[t], counts[t], hyper)
        if has_bias:
            _bias_grad(grad_buf, n, gb_buf)
            counts[n_terms] += 1
            apply_flat(opt_kind, bias, bias_s1, bias_s2, gb_buf, lrs[bb * lr_step, n_terms], wds[n_terms],
                       counts[n_terms], hyper)
    return _OK, samples


@njit(cache=True)
def _max_batch_nnz(indptr, order, batch_ptr):
    best = 0
    for b in range(batch_ptr.shape[0] - 1):
        total = 0
        for i in range(batch_ptr[b], batch_ptr[b + 1]):
            r = order[i]
            total += indptr[r + 1] - indptr[r]
        if total > best:
            best = total
    return best


_RADIX_BITS = 11  # digits of an LSD radix sort: 2048 buckets stay in L1


@njit(cache=True)
def _sort_positions(keys, nq):
    """Positions ``0..nq-1`` ordered by ``keys[:nq]`` (distinct, non-negative, < 2**31)."""
    pos = np.empty(nq, dtype=np.int64)
    for q in range(nq):
        pos[q] = q
    if nq <= 32:  # insertion sort
        for j in range(1, nq):
            q = pos[j]
            key = keys[q]
            i = j - 1
            while i >= 0 and keys[pos[i]] > key:
                pos[i + 1] = pos[i]
                i -= 1
            pos[i + 1] = q
        return pos
    # LSD radix sort of (key, position) pairs: O(nq) per pass, as few passes as the largest key needs
    top = 0
    for q in range(nq):
        if keys[q] > top:
            top = keys[q]
    bits = 1
    while (1 << bits) <= top:
        bits += 1
    passes = (bits + _RADIX_BITS - 1) // _RADIX_BITS
    width = (bits + passes - 1) // passes
    mask = (1 << width) - 1
    k_in = keys[:nq].copy()
    k_out = np.empty(nq, dtype=np.int64)
    p_out = np.empty(nq, dtype=np.int64)
    count = np.empty(mask + 2, dtype=np.int64)
    for d in range(passes):
        shift = d * width
        count[:] = 0
        for q in range(nq):
            count[((k_in[q] >> shift) & mask) + 1] += 1
        for c in range(1, mask + 2):
            count[c] += count[c - 1]
        for q in range(nq):  # stable scatter
            c = (k_in[q] >> shift) & mask
            j = count[c]
            count[c] = j + 1
            k_out[j] = k_in[q]
            p_out[j] = pos[q]
        k_in, k_out = k_out, k_in
        pos, p_out = p_out, pos
    return pos


@njit(cache=True)
def _sorted_grad_rows(rows_buf, acc_buf, nq):
    """Fresh ``(rows, values)`` from the gathered ``rows_buf[:nq]``/``acc_buf[:nq]``, rows ascending."""
    k_out = acc_buf.shape[1]
    rows = np.empty(nq, dtype=rows_buf.dtype)
    values = np.empty((nq, k_out), dtype=acc_buf.dtype)
    ascending = True
    for q in range(1, nq):
        if rows_buf[q] < rows_buf[q - 1]:
            ascending = False
            break
    if ascending:  # e.g. one sample with sorted columns: a plain copy
        for q in range(nq):
            rows[q] = rows_buf[q]
            for k in range(k_out):
                values[q, k] = acc_buf[q, k]
    else:
        pos = _sort_positions(rows_buf, nq)
        for j in range(nq):
            q = pos[j]
            rows[j] = rows_buf[q]
            for k in range(k_out):
                values[j, k] = acc_buf[q, k]
    return rows, values


@njit(cache=True)
def linear_batch_gradients(x_data, x_indices, x_indptr, canonical, weights, bias, has_bias, label, order, n,
                           output_kind, grad_scale, softmax_batch_norm, metric_codes, metric_values,
                           htable, slots_buf, rows_buf, acc_buf, out_buf, grad_buf, tmp_buf, grad_bias):
    """Forward, metrics and backward of the one batch ``order[:n]``, nothing updated.

    Returns ``(finite, rows, values)``: ``finite`` is False when an output or a batch metric is
    NaN/inf (then nothing is back-propagated and the lists are empty); else ``rows[t]`` (int64,
    ascending) and ``values[t]`` (``(len(rows[t]), K)``) are term ``t``'s row-sparse gradient
    ``X_tᵀ · grad`` — freshly allocated — and ``grad_bias`` holds ``Σ_batch grad`` when
    ``has_bias``. ``metric_values[m]``: the batch's value of metric ``m`` (as :func:`linear_epoch`
    adds it to ``metric_sums``). Scratch as :func:`linear_epoch`'s, for a batch of ``n`` rows.
    """
    n_terms = len(weights)
    k_out = out_buf.shape[1]
    rows_out = [rows_buf[:0].copy() for _ in range(0)]
    values_out = [acc_buf[:0].copy() for _ in range(0)]
    _forward_batch(x_data, x_indices, x_indptr, weights, bias, has_bias, order, 0, n, output_kind, out_buf, tmp_buf)
    for i in range(n):
        for k in range(k_out):
            if not math.isfinite(out_buf[i, k]):
                return False, rows_out, values_out
    if not _batch_metrics(out_buf, label, order, 0, n, metric_codes, metric_values):
        return False, rows_out, values_out
    _output_grad(out_buf, label, order, 0, n, output_kind, grad_scale, softmax_batch_norm, grad_buf)
    for t in range(n_terms):
        nq = _gather_grad_rows(x_data[t], x_indices[t], x_indptr[t], canonical[t], order, 0, n, grad_buf,
                               htable, slots_buf, rows_buf, acc_buf)
        rows, values = _sorted_grad_rows(rows_buf, acc_buf, nq)
        rows_out.append(rows)
        values_out.append(values)
    if has_bias:
        _bias_grad(grad_buf, n, grad_bias)
    return True, rows_out, values_out


def _drop_stale_cache(dispatchers, dependencies) -> None:
    """Delete the on-disk cache index of ``dispatchers`` when a module they call is newer.

    numba invalidates a cached kernel when its own source file changes, not when a kernel it
    calls (here the optimizer rules) changes; without this, editing ``kernels/optim.py`` would
    leave the fused loop running the old rules. Best effort: any failure leaves the cache alone.
    """
    try:
        newest = max(os.path.getmtime(m.__file__) for m in dependencies)
        for d in dispatchers:
            index = d._cache._cache_file._index_path
            if os.path.exists(index) and os.path.getmtime(index) < newest:
                os.remove(index)
    except (AttributeError, OSError, ValueError):
        pass


_drop_stale_cache([linear_epoch, _single_sample_run], [_optim_kernels])


# -- Python driver -----------------------------------------------------------------------------

def _metric_means(names, sums, counts) -> dict:
    """``{name: sum / count}`` (NaN where nothing was counted)."""
    return {name: (float(s / c) if c else float("nan")) for name, s, c in zip(names, sums, counts)}


@dataclass
class EpochResult:
    """What one :meth:`LinearEpochRunner.fit_epoch` / ``score`` call did.

    ``metrics`` maps each requested metric name to ``sum / num_inst`` over the batches run;
    ``nonfinite_batch`` is the index (in ``batch_ptr``) of the batch whose prediction or loss was
    NaN/inf — training stopped there, before applying it; ``nonfinite_params`` names parameters
    (by optimizer index) that hold NaN/inf after the last batch.
    """

    metric_names: list
    metric_sums: np.ndarray
    metric_counts: np.ndarray
    num_batches: int
    num_samples: int
    nonfinite_batch: int | None = None
    nonfinite_params: list = field(default_factory=list)

    @property
    def metrics(self) -> dict:
        return _metric_means(self.metric_names, self.metric_sums, self.metric_counts)

    @property
    def ok(self) -> bool:
        return self.nonfinite_batch is None and not self.nonfinite_params

    @classmethod
    def combine(cls, results: Sequence["EpochResult"]) -> "EpochResult":
        """One result for consecutive calls over parts of an epoch (e.g. streamed chunks)."""
        first = results[0]
        out = cls(list(first.metric_names), sum(r.metric_sums for r in results),
                  sum(r.metric_counts for r in results), 0, 0)
        for r in results:
            out.num_batches += r.num_batches
            out.num_samples += r.num_samples
            if r.nonfinite_batch is not None and out.nonfinite_batch is None:
                out.nonfinite_batch = r.nonfinite_batch
            out.nonfinite_params.extend(p for p in r.nonfinite_params if p not in out.nonfinite_params)
        return out


@dataclass
class BatchGradients:
    """What one :meth:`LinearEpochRunner.batch_gradients` call computed (nothing was updated).

    ``rows[t]``: int64 row ids of weight ``t``'s gradient, ascending and unique — the columns
    stored in term ``t``'s CSR input (explicit zeros included), the row set of the graph engine's
    row-sparse gradient. ``values[t]``: ``(len(rows[t]), K)`` gradient rows in that order, in the
    weights' dtype. ``bias``: the ``(K,)`` bias gradient, ``None`` when the model has no bias. These
    are the raw gradients of ``Executor.grad_dict`` (no ``rescale_grad``, weight decay or clipping)
    and freshly allocated: later calls do not overwrite them.

    ``metric_names``/``metric_sums``/``metric_counts``: the batch's contribution to each metric's
    ``sum_metric``/``num_inst``, as :class:`EpochResult`. ``finite`` is False when an output or a
    metric value was NaN/inf; then nothing was back-propagated: ``rows``/``values`` are empty
    lists, ``bias`` is ``None`` and the metric sums are unspecified (raise
    :class:`~sparsetrain.base.NonFiniteError`).
    """

    rows: list
    values: list
    bias: np.ndarray | None
    metric_names: list
    metric_sums: np.ndarray
    metric_counts: np.ndarray
    num_samples: int
    finite: bool = True

    @property
    def metrics(self) -> dict:
        return _metric_means(self.metric_names, self.metric_sums, self.metric_counts)

    @property
    def ok(self) -> bool:
        return self.finite

    def epoch_result(self) -> EpochResult:
        """This batch as a one-batch :class:`EpochResult` (e.g. for :meth:`EpochResult.combine`)."""
        return EpochResult(list(self.metric_names), self.metric_sums.copy(), self.metric_counts.copy(),
                           1 if self.finite else 0, self.num_samples if self.finite else 0,
                           None if self.finite else 0)


def optimizer_fusable(optimizer, grad_row_sparse: Sequence[bool], weight_indices: Sequence[int]):
    """``(True, "")`` if the fused kernel reproduces ``optimizer.update`` for the dot-term weights.

    ``grad_row_sparse[t]``: whether the graph engine hands weight ``t`` (optimizer index
    ``weight_indices[t]``) a row-sparse gradient. The fused kernel updates only the rows a batch
    touches; that equals the graph engine's update when the gradient is row-sparse and the
    optimizer lazy, or when a zero gradient leaves a row untouched anyway
    (:meth:`~sparsetrain.optimizer.Optimizer.lazy_equals_dense`). The bias gets a dense update in
    both engines and needs no check.
    """
    from ...optimizer import SGD, AdaGrad, Adam, FTRL

    if type(optimizer) not in (SGD, AdaGrad, Adam, FTRL):
        return False, f"optimizer {type(optimizer).__name__} has no fused kernel"
    lazy = getattr(optimizer, "lazy_update", True)
    for rsp, index in zip(grad_row_sparse, weight_indices):
        if rsp and lazy:
            continue
        if not optimizer.lazy_equals_dense(index):
            why = "lazy_update=False" if rsp else "its gradient is dense (declare the weight row_sparse)"
            return False, (f"{type(optimizer).__name__} updates every row of parameter {index} "
                           f"because {why}; the fused kernel updates only the batch's rows")
    return True, ""


def _csr_parts(x):
    if isinstance(x, CSRNDArray):
        return x._data, x._indices, x._indptr, x.shape
    if hasattr(x, "indptr") and hasattr(x, "tocsr"):  # scipy sparse
        x = x.tocsr()
        return x.data, x.indices, x.indptr, x.shape
    if isinstance(x, tuple) and len(x) in (3, 4):
        data, indices, indptr = x[:3]
        shape = x[3] if len(x) == 4 else (len(indptr) - 1, None)
        return np.asarray(data), np.asarray(indices), np.asarray(indptr), shape
    raise StorageTypeError(f"expected a CSR input (CSRNDArray, scipy csr or (data, indices, indptr)), got {type(x).__name__}")


def _dense_buffer(x, what):
    if isinstance(x, RowSparseNDArray):
        from ...optimizer import weight_buffer

        return weight_buffer(x)  # made full first when rows are missing
    if isinstance(x, NDArray) and x.stype == "default":
        return x._data
    if isinstance(x, np.ndarray):
        return x
    if isinstance(x, BaseArray):
        raise StorageTypeError(f"{what} must be dense or row_sparse, got {x.stype}")
    raise TypeError(f"{what} must be an array, got {type(x).__name__}")


def _state_arrays(state, weight_buf, empty):
    """(s1, s2) numpy buffers of an optimizer state, shaped like the weight (``empty`` if absent)."""
    from ...optimizer import state_buffer

    if state is None:
        return empty, empty
    parts = state if isinstance(state, tuple) else (state,)
    bufs = []
    for part in parts:
        buf = state_buffer(part)
        if buf.size != weight_buf.size or buf.dtype != weight_buf.dtype or not buf.flags.c_contiguous:
            raise StorageTypeError(
                f"optimizer state of shape {buf.shape} and dtype {buf.dtype} does not match its weight "
                f"{weight_buf.shape} {weight_buf.dtype} (a C-contiguous array of the same size and dtype is needed)"
            )
        bufs.append(buf.reshape(weight_buf.shape))  # a view: updates land in the state itself
    return bufs[0], (bufs[1] if len(bufs) > 1 else empty)


class LinearEpochRunner:
    """Runs fused epochs of ``Σ_t dot(X_t, W_t) [+ b]`` into one output layer.

    Parameters
    ----------
    output : str
        ``LinearRegressionOutput``, ``MAERegressionOutput``, ``LogisticRegressionOutput`` or
        ``SoftmaxOutput``.
    num_features : sequence of int
        ``D_t`` of each dot term (rows of ``W_t``).
    num_outputs : int
        ``K``, the columns of every ``W_t`` (classes for ``SoftmaxOutput``).
    has_bias : bool
        Whether a ``(K,)`` bias is added.
    grad_scale : float
        The output layer's ``grad_scale``.
    normalization : 'null' | 'batch' | 'valid'
        ``SoftmaxOutput``'s gradient normalisation (no ``ignore_label``, so 'valid' = 'batch').
    dtype : float32 | float64
        The dtype of weights, inputs and labels (inputs of another dtype are converted once).

    Input buffers (CSR arrays, labels) are validated — and converted when their dtype differs —
    once per buffer object, and treated as immutable afterwards. A runner owns scratch buffers
    sized by the largest batch seen; use one runner per thread.
    """

    def __init__(self, output: str, num_features: Sequence[int], num_outputs: int, *, has_bias: bool = True,
                 grad_scale: float = 1.0, normalization: str = "null", dtype=np.float32):
        if output not in OUTPUTS:
            raise ValueError(f"unknown output layer {output!r}; expected one of {', '.join(OUTPUTS)}")
        if normalization not in ("null", "batch", "valid"):
            raise ValueError(f"normalization must be 'null', 'batch' or 'valid', got {normalization!r}")
        if len(num_features) < 1:
            raise ValueError("at least one dot term is needed")
        self.output = output
        self.output_kind = OUTPUTS[output]
        self.num_features = [int(d) for d in num_features]
        if any(d < 1 or d >= 1 << 31 for d in self.num_features):
            raise ShapeError(f"every dot term needs 1 to 2**31-1 weight rows, got {self.num_features}")
        self.num_outputs = int(num_outputs)
        if output == "SoftmaxOutput" and self.num_outputs < 2:
            raise ShapeError("SoftmaxOutput needs at least 2 classes")
        self.has_bias = bool(has_bias)
        self.grad_scale = float(grad_scale)
        self.softmax_batch_norm = normalization != "null"
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {self.dtype}")
        k = self.num_outputs
        self._htable = np.full(0, -1, INDEX_DTYPE)
        self._slots_buf = np.empty(0, INDEX_DTYPE)
        self._rows_buf = np.empty(0, INDEX_DTYPE)
        self._acc_buf = np.empty((0, k), self.dtype)
        self._out = np.empty((0, k), self.dtype)
        self._grad = np.empty((0, k), self.dtype)
        self._tmp = np.empty(k, self.dtype)
        self._gb = np.empty(k, self.dtype)
        self._empty2 = np.empty((0, k), self.dtype)
        self._empty1 = np.empty(0, self.dtype)
        self._no_pred = np.empty((0, k), self.dtype)
        self._order = np.empty(0, INDEX_DTYPE)  # 0, 1, 2, ...: the rows of a batch_gradients call
        self._checked: dict = {}  # id(buffer) -> weakref, for inputs validated/converted once
        self._metric_cache: dict = {}  # metric names -> (names, codes, per-batch flags), batch_gradients

    # -- input preparation -------------------------------------------------------------------
    def _remember(self, key, source, value):
        try:
            ref = weakref.ref(source, lambda _, key=key, cache=self._checked: cache.pop(key, None))
        except TypeError:
            return
        self._checked[key] = (ref, value)

    def _recall(self, key, source):
        hit = self._checked.get(key)
        if hit is not None and hit[0]() is source:
            return hit[1]
        return None

    def _prepare_terms(self, terms, cache=True):
        if len(terms) != len(self.num_features):
            raise ValueError(f"expected {len(self.num_features)} CSR inputs, got {len(terms)}")
        datas, indices, indptrs, canonical, nrows = [], [], [], [], None
        for t, x in enumerate(terms):
            data, ind, ptr, shape = _csr_parts(x)
            if shape[1] is not None and shape[1] != self.num_features[t]:
                raise ShapeError(f"input {t} has {shape[1]} columns, the weight has {self.num_features[t]} rows")
            # Validated (and converted, when a dtype differs) once per buffer object: inputs are
            # treated as immutable between calls (with ``cache=False``: on every call).
            key = ("csr", t, id(data), id(ind), id(ptr))
            prepared = self._recall(key, ind) if cache else None
            if prepared is None:
                data_c = np.ascontiguousarray(data, dtype=self.dtype)
                ind_c = np.ascontiguousarray(ind, dtype=INDEX_DTYPE)
                ptr_c = np.ascontiguousarray(ptr, dtype=INDEX_DTYPE)
                n = len(ptr_c) - 1
                status = _csr_check(ind_c, ptr_c, self.num_features[t], n) if len(data_c) == len(ind_c) else 0
                if status == 0:
                    raise ShapeError(
                        f"input {t}: inconsistent CSR structure or a column index outside [0, {self.num_features[t]})"
                    )
                prepared = (data_c, ind_c, ptr_c, status == 2)
                if cache:
                    self._remember(key, ind, prepared)
            canonical.append(prepared[3])
            if nrows is None:
                nrows = len(prepared[2]) - 1
            elif len(prepared[2]) - 1 != nrows:
                raise ShapeError("all CSR inputs must have the same number of rows")
            datas.append(prepared[0])
            indices.append(prepared[1])
            indptrs.append(prepared[2])
        return tuple(datas), tuple(indices), tuple(indptrs), np.array(canonical, dtype=np.bool_), nrows

    def _prepare_label(self, label, nrows, cache=True):
        if label is None:
            return np.zeros((nrows, 1 if self.output_kind == OUT_SOFTMAX else self.num_outputs), self.dtype)
        src = label._data if isinstance(label, NDArray) and label.stype == "default" else label
        key = ("label", id(src))
        prepared = self._recall(key, src) if cache else None
        if prepared is not None:
            return prepared
        lab = np.asarray(src)
        if lab.ndim == 1:
            lab = lab.reshape(-1, 1)
        want = 1 if self.output_kind == OUT_SOFTMAX else self.num_outputs
        if lab.ndim != 2 or lab.shape[1] != want or lab.shape[0] != nrows:
            raise ShapeError(
                f"label of shape {np.shape(src)} does not fit {nrows} rows and {self.output} with K={self.num_outputs}"
            )
        lab = np.ascontiguousarray(lab, dtype=self.dtype)
        if self.output_kind == OUT_SOFTMAX and lab.size:
            if not np.all((lab >= 0) & (lab < self.num_outputs) & (lab == np.floor(lab))):
                raise ShapeError(f"SoftmaxOutput labels must be class indices in [0, {self.num_outputs})")
        if cache:
            self._remember(key, src, lab)
        return lab

    def _prepare_schedule(self, order, batch_ptr, nrows):
        order = np.ascontiguousarray(order, dtype=INDEX_DTYPE)
        batch_ptr = np.ascontiguousarray(batch_ptr, dtype=INDEX_DTYPE)
        if batch_ptr.ndim != 1 or batch_ptr.shape[0] < 1:
            raise ValueError("batch_ptr must be a 1-D array of at least one boundary")
        if batch_ptr[0] < 0 or batch_ptr[-1] > order.shape[0] or np.any(np.diff(batch_ptr) <= 0):
            raise ValueError("batch_ptr must be increasing boundaries within order (no empty batch)")
        used = order[batch_ptr[0]:batch_ptr[-1]]
        if used.size and (used.min() < 0 or used.max() >= nrows):
            raise ValueError(f"order holds row ids outside [0, {nrows})")
        return order, batch_ptr

    def _prepare_weights(self, weights, bias):
        if len(weights) != len(self.num_features):
            raise ValueError(f"expected {len(self.num_features)} weights, got {len(weights)}")
        bufs = []
        for t, w in enumerate(weights):
            buf = _dense_buffer(w, f"weight {t}")
            if buf.shape != (self.num_features[t], self.num_outputs):
                raise ShapeError(f"weight {t} has shape {buf.shape}, expected {(self.num_features[t], self.num_outputs)}")
            if buf.dtype != self.dtype or not buf.flags.c_contiguous:
                raise StorageTypeError(f"weight {t} must be a C-contiguous {self.dtype} array, got {buf.dtype}")
            bufs.append(buf)
        if self.has_bias:
            if bias is None:
                raise ValueError("this model has a bias; pass it")
            b = _dense_buffer(bias, "bias")
            if b.shape != (self.num_outputs,) or b.dtype != self.dtype or not b.flags.c_contiguous:
                raise ShapeError(f"bias must be a C-contiguous {self.dtype} array of shape ({self.num_outputs},)")
        else:
            b = self._empty1
        return tuple(bufs), b

    def _ensure_scratch(self, indptrs, order, batch_ptr):
        max_bs = int(np.diff(batch_ptr).max()) if batch_ptr.shape[0] > 1 else 0
        # stored entries of the largest batch: bounds the distinct gradient rows of one term
        need = max((int(_max_batch_nnz(ptr, order, batch_ptr)) for ptr in indptrs), default=0)
        self._grow_scratch(max_bs, need)

    def _grow_scratch(self, max_bs, need):
        """Scratch for batches of up to ``max_bs`` rows and ``need`` stored entries per term."""
        k = self.num_outputs
        if self._out.shape[0] < max_bs:
            self._out = np.empty((max_bs, k), self.dtype)
            self._grad = np.empty((max_bs, k), self.dtype)
        if self._acc_buf.shape[0] < need:
            self._rows_buf = np.empty(need, INDEX_DTYPE)
            self._slots_buf = np.empty(need, INDEX_DTYPE)
            self._acc_buf = np.empty((need, k), self.dtype)
        size = 16
        while size < 2 * need:
            size *= 2
        if self._htable.shape[0] < size:
            self._htable = np.full(size, -1, INDEX_DTYPE)

    def _metric_codes(self, metrics):
        names = list(metrics)
        codes = []
        for name in names:
            code = FUSED_METRICS.get(metric_info(name).fused)
            if code is None:
                fused = [r.name for r in catalogue() if r.fused in FUSED_METRICS]
                raise ValueError(f"metric {name!r} has no fused implementation; expected one of {', '.join(fused)}")
            if code == M_LOG_LOSS and self.output_kind not in (OUT_LOGISTIC, OUT_SOFTMAX):
                raise ValueError(f"metric {name!r} needs probabilities (LogisticRegressionOutput or SoftmaxOutput)")
            if code == M_ACCURACY and self.output_kind != OUT_SOFTMAX and self.num_outputs != 1:
                raise ValueError(f"metric {name!r} with {self.output} needs a single output")
            codes.append(code)
        return names, np.asarray(codes, dtype=np.int64)

    # -- running -----------------------------------------------------------------------------
    def _run(self, terms, label, order, batch_ptr, weights, bias, metrics, train, updater, param_indices,
             predictions=None, check_params=True):
        datas, indices, indptrs, canonical, nrows = self._prepare_terms(terms)
        lab = self._prepare_label(label, nrows)
        order, batch_ptr = self._prepare_schedule(order, batch_ptr, nrows)
        w_bufs, b_buf = self._prepare_weights(weights, bias)
        names, codes = self._metric_codes(metrics)
        self._ensure_scratch(indptrs, order, batch_ptr)
        n_batches = batch_ptr.shape[0] - 1
        n_params = len(w_bufs) + (1 if self.has_bias else 0)
        sums = np.zeros(len(codes), np.float64)
        counts_m = np.zeros(len(codes), np.float64)

        empty2, empty1 = self._empty2, self._empty1
        if train:
            if updater is None:
                raise ValueError("training needs an Updater (optimizer and states)")
            opt = updater.optimizer
            if param_indices is None or len(param_indices) != n_params:
                raise ValueError(f"param_indices must name the {n_params} parameters (weights, then bias)")
            param_indices = list(param_indices)
            kind, hyper = opt.fused_spec()
            objs = list(weights) + ([bias] if self.has_bias else [])
            s1s, s2s = [], []
            for p, index in enumerate(param_indices):
                state = updater.states.get(index)
                if index not in updater.states:
                    state = opt.create_state_multi_precision(index, objs[p])
                    updater.states[index] = state
                    updater.states_synced[index] = True
                buf = w_bufs[p] if p < len(w_bufs) else b_buf
                s1, s2 = _state_arrays(state, buf, empty2 if p < len(w_bufs) else empty1)
                s1s.append(s1)
                s2s.append(s2)
            lrs = opt.scheduled_learning_rates(param_indices, n_batches, compact=True)
            wds = np.array([opt._get_wd(i) for i in param_indices], dtype=np.float64)
            counts = np.array([opt._index_update_count.get(i, opt.begin_num_update) for i in param_indices],
                              dtype=np.int64)
        else:
            kind, hyper = 0, np.zeros(8, np.float64)
            s1s = [empty2] * len(w_bufs) + ([empty1] if self.has_bias else [])
            s2s = list(s1s)
            lrs = np.zeros((n_batches, n_params), np.float64)
            wds = np.zeros(n_params, np.float64)
            counts = np.zeros(n_params, np.int64)
        nt = len(w_bufs)
        bias_s1 = s1s[nt] if self.has_bias else empty1
        bias_s2 = s2s[nt] if self.has_bias else empty1
        pred = self._no_pred if predictions is None else predictions
        status, samples = linear_epoch(
            datas, indices, indptrs, canonical, w_bufs, tuple(s1s[:nt]), tuple(s2s[:nt]), b_buf, bias_s1, bias_s2,
            self.has_bias, lab, order, batch_ptr, self.output_kind, self.grad_scale, self.softmax_batch_norm,
            train, kind, hyper, lrs, wds, counts, codes, sums, counts_m,
            self._htable, self._slots_buf, self._rows_buf, self._acc_buf,
            self._out, self._grad, self._tmp, self._gb, pred,
        )
        done = n_batches if status == _OK else int(status)
        result = EpochResult(names, sums, counts_m, done, int(samples),
                             None if status == _OK else int(status))
        if train:
            opt.advance_update_counts(param_indices, done)
            if check_params:
                bufs = list(w_bufs) + ([b_buf] if self.has_bias else [])
                result.nonfinite_params = [param_indices[p] for p, buf in enumerate(bufs)
                                           if not np.isfinite(buf).all()]
        return result

    def fit_epoch(self, terms, label, order, batch_ptr, weights, bias, updater, param_indices,
                  metrics=("mse",), check_params=True) -> EpochResult:
        """Train over the batches ``batch_ptr`` of ``order``, updating weights, bias and states in place.

        ``terms``: one CSR input per dot term (``CSRNDArray``, scipy CSR, or ``(data, indices,
        indptr)``). ``label``: ``(N,)``/``(N, K)`` targets, class indices for ``SoftmaxOutput``.
        ``weights``: ``(D_t, K)`` arrays (``NDArray``, full ``RowSparseNDArray`` or numpy);
        ``bias``: ``(K,)`` or ``None``. ``updater``: the :class:`~sparsetrain.optimizer.Updater`
        whose optimizer and states to use; ``param_indices``: its indices of the weights, then
        the bias. ``check_params`` scans the parameters for NaN/inf after the run (O(size)).
        """
        return self._run(terms, label, order, batch_ptr, weights, bias, metrics, True, updater,
                         param_indices, check_params=check_params)

    def score(self, terms, label, order, batch_ptr, weights, bias, metrics=("mse",)) -> EpochResult:
        """Metrics of the forward pass over the batches (nothing is updated)."""
        return self._run(terms, label, order, batch_ptr, weights, bias, metrics, False, None, None)

    def batch_gradients(self, terms, label, weights, bias, metrics=("mse",)) -> BatchGradients:
        """Forward and backward of one mini-batch, without any update: the gradients to push.

        ``terms``: one CSR input per dot term whose rows are the whole batch (at least one row;
        types as :meth:`fit_epoch`). ``label``: the batch's ``(n,)``/``(n, K)`` targets.
        ``weights``/``bias``: as :meth:`fit_epoch` (full ``(D_t, K)`` buffers); only the rows of
        the columns stored in the batch are read, the others may hold anything. ``metrics``: the
        names :meth:`score` takes.

        Costs O(batch entries): scratch is reused between calls, nothing of size ``D_t`` is
        touched. Unlike :meth:`fit_epoch`, the inputs are validated (and converted when their
        dtype differs) on every call, never cached by buffer: a data iterator may refill the same
        buffers for the next batch. Returns a :class:`BatchGradients` whose arrays are fresh.
        """
        datas, indices, indptrs, canonical, nrows = self._prepare_terms(terms, cache=False)
        if nrows < 1:
            raise ValueError("a batch needs at least one row")
        if label is None:
            raise ValueError("batch_gradients needs the batch's labels")
        lab = self._prepare_label(label, nrows, cache=False)
        w_bufs, b_buf = self._prepare_weights(weights, bias)
        key = tuple(metrics)
        hit = self._metric_cache.get(key)
        if hit is None:
            names, codes = self._metric_codes(key)
            per_batch = np.array([c not in (M_ACCURACY, M_LOG_LOSS) for c in codes], dtype=np.bool_)
            hit = self._metric_cache[key] = (names, codes, per_batch)
        names, codes, per_batch = hit
        if self._order.shape[0] < nrows:
            self._order = np.arange(max(nrows, 2 * self._order.shape[0]), dtype=INDEX_DTYPE)
        order = self._order[:nrows]
        # the batch is every row: its stored entries bound a term's distinct gradient rows
        self._grow_scratch(nrows, max(int(ptr[nrows] - ptr[0]) for ptr in indptrs))
        values = np.zeros(len(codes), np.float64)
        gb = np.empty(self.num_outputs, self.dtype) if self.has_bias else self._empty1
        finite, rows, grads = linear_batch_gradients(
            datas, indices, indptrs, canonical, w_bufs, b_buf, self.has_bias, lab, order, nrows,
            self.output_kind, self.grad_scale, self.softmax_batch_norm, codes, values,
            self._htable, self._slots_buf, self._rows_buf, self._acc_buf, self._out, self._grad, self._tmp, gb,
        )
        counts = np.where(per_batch, 1.0, float(nrows))  # num_inst: 1 for the per-batch means, else samples
        return BatchGradients(list(rows), list(grads), gb if (finite and self.has_bias) else None,
                              list(names), values, counts, nrows, bool(finite))

    def predict(self, terms, weights, bias, batch_size: int = 4096) -> np.ndarray:
        """Outputs (after the output layer) of every row, shape ``(N, K)``."""
        nrows = self._prepare_terms(terms)[-1]
        order = np.arange(nrows, dtype=INDEX_DTYPE)
        batch_ptr = np.append(np.arange(0, nrows, batch_size, dtype=INDEX_DTYPE), nrows)
        out = np.empty((nrows, self.num_outputs), self.dtype)
        self._run(terms, None, order, batch_ptr, weights, bias, (), False, None, None, predictions=out)
        return out
