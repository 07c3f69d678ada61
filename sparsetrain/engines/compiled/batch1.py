"""The linear family's batch-1 loop: :func:`_batch1_epoch`, the epoch kernel for batches of one sample
(one dot term with canonical rows, K = 1, not softmax, no predictions written), which
:class:`.kernels.EpochKernel` binds to each optimizer rule and sends such calls to; every other call
runs the batch loop of :mod:`.kernels`. It takes the same arguments and returns the same
``(status, samples)``, with the same formulas (:mod:`.outputs`, :mod:`sparsetrain.kernels.metrics`,
the rule's steps), so both give the same parameters on one-sample batches.
"""
from __future__ import annotations

import math

import numpy as np

from ...kernels.metrics import (
    M_ACCURACY,
    M_AUC,
    M_LOG_LOSS,
    M_MAE,
    M_MSE,
    M_RMSE,
    metric_elem,
    metric_inst,
    metric_inst_weighted,
    metric_value,
)
from ...kernels.prefetch import prefetch_row
from .outputs import STATUS_OK, activation, elem_grad

__all__ = ["_batch1_epoch"]

# The batch-1 loop asks for the weight and state rows of the sample _AHEAD batches on while it trains this
# one (prefetch_row: a hint, no result changes). See benchmarks/RESULTS.md, session 37 (train3): 4 made the
# in-memory SGD epoch faster but the AdaGrad epoch on hashed rows (the streamed TSV run's) slower.
_AHEAD = 1


def _batch1_epoch(batches, model, update, metrics, scratch, predictions):
    """:func:`.kernels._linear_epoch` for batches of one sample each, one dot term with canonical rows, K = 1,
    no softmax, no predictions written (see :class:`.kernels.EpochKernel`): ``(status, samples)``.

    The same formulas as the batch loop, with the running values in registers; ``scratch.tmp``
    (1 element of the weights' dtype) rounds them as the batch loop's buffers do and ``scratch.gb``
    holds the sample's output gradient. A canonical row's columns are its gradient's rows, so the
    update runs the rule's ``outer_rows`` over the row itself (no gradient is materialised). On a
    non-finite output or metric, returns that batch's index with the metrics and updates of the
    batches before it applied.
    """
    data, ind, ptr = batches.data[0], batches.indices[0], batches.indptr[0]
    label, order, batch_ptr, sample_weight = batches.label, batches.order, batches.batch_ptr, batches.sample_weight
    weighted = sample_weight.shape[0] > 0
    w, s1, s2 = model.weights[0], model.states1[0], model.states2[0]
    hw, hs1, hs2 = model.head, model.head_s1, model.head_s2
    has_s1, has_s2 = s1.shape[0] > 0, s2.shape[0] > 0
    n_head = hw.shape[0]  # columns below it: the row's first entries (canonical), read and updated in ``hw``
    bias, bias_s1, bias_s2, has_bias = model.bias, model.bias_s1, model.bias_s2, model.has_bias
    output_kind, grad_scale = model.output_kind, model.grad_scale
    train, hyper, lrs, wds, counts = update
    metric_codes, metric_sums, metric_counts, scores = metrics
    scalar, g_row = scratch.tmp, scratch.gb
    n_metrics = metric_codes.shape[0]
    n_batches = batch_ptr.shape[0] - 1
    lr_step = 1 if lrs.shape[0] > 1 else 0  # one row of rates when they do not change
    scalar[0] = 0
    zero = scalar[0]
    # Metric sums are kept in registers (per code) and added to ``metric_sums`` when the run ends.
    want_mse = want_rmse = want_mae = want_acc = want_ll = want_auc = False
    for m in range(n_metrics):
        code = metric_codes[m]
        want_mse = want_mse or code == M_MSE
        want_rmse = want_rmse or code == M_RMSE
        want_mae = want_mae or code == M_MAE
        want_acc = want_acc or code == M_ACCURACY
        want_ll = want_ll or code == M_LOG_LOSS
        want_auc = want_auc or code == M_AUC
    s_mse = 0.0
    s_rmse = 0.0
    s_mae = 0.0
    s_acc = 0.0
    s_ll = 0.0
    c_weight = 0.0  # weighted: the samples' total weight, and the samples of weight > 0
    c_rows = 0.0
    status = STATUS_OK
    b = 0
    while b < n_batches:
        lo = batch_ptr[b]
        r = order[lo]
        if b + _AHEAD < n_batches:  # ask for a later sample's rows now (a hint: ~1.5x at batch 1 on 1M features)
            r_next = order[batch_ptr[b + _AHEAD]]
            for p in range(ptr[r_next], ptr[r_next + 1]):
                c = ind[p]
                prefetch_row(w, c)
                # and its optimizer states' rows, which the update reads: without this, the load of
                # AdaGrad's state was half the batch-1 loop's samples (perf of the streamed TSV run)
                if has_s1:
                    prefetch_row(s1, c)
                if has_s2:
                    prefetch_row(s2, c)
        p0, p1 = ptr[r], ptr[r + 1]
        mid = p0
        while mid < p1 and ind[mid] < n_head:
            mid += 1
        acc = zero
        for p in range(p0, mid):  # in column order, as below: the same sum as from one table
            acc += data[p] * hw[np.uint64(ind[p]), 0]
        for p in range(mid, p1):
            acc += data[p] * w[np.uint64(ind[p]), 0]  # unsigned: no wrap-around check
        if has_bias:
            acc = acc + bias[0]
        scalar[0] = activation(output_kind, acc)
        out = scalar[0]
        y = label[r, 0]
        # a batch of one element: the batch loop's per-batch values, e.g. mse = d*d / (1*1)
        v_mse = metric_value(M_MSE, metric_elem(M_MSE, out, y), 1, 1) if want_mse else 0.0
        v_rmse = metric_value(M_RMSE, metric_elem(M_RMSE, out, y), 1, 1) if want_rmse else 0.0
        v_mae = metric_value(M_MAE, metric_elem(M_MAE, out, y), 1, 1) if want_mae else 0.0
        v_acc = metric_elem(M_ACCURACY, out, y) if want_acc else 0.0
        v_ll = metric_elem(M_LOG_LOSS, out, y) if want_ll else 0.0
        if not (math.isfinite(out) and math.isfinite(v_mse) and math.isfinite(v_rmse) and math.isfinite(v_mae)
                and math.isfinite(v_acc) and math.isfinite(v_ll)):
            status = b
            break
        if want_auc:
            scores[lo] = out
        if weighted:  # a one-row batch's weighted mean is its value when its weight is > 0
            wr = sample_weight[r]
            counted = 1.0 if wr > 0.0 else 0.0
            s_mse += counted * v_mse
            s_rmse += counted * v_rmse
            s_mae += counted * v_mae
            s_acc += wr * v_acc
            s_ll += wr * v_ll
            c_weight += wr
            c_rows += counted
        else:
            s_mse += v_mse
            s_rmse += v_rmse
            s_mae += v_mae
            s_acc += v_acc
            s_ll += v_ll
        b += 1
        if not train:
            continue
        bb = b - 1  # this batch
        g_row[0] = elem_grad(output_kind, out, y, grad_scale)
        if weighted:
            g_row[0] = g_row[0] * sample_weight[r]
        counts[0] += 1
        lr_w = rate(lrs[bb * lr_step, 0], counts[0], hyper)  # noqa: F821
        if mid > p0:
            outer_rows(hw, hs1, hs2, ind, data, p0, mid, g_row, lr_w, wds[0], hyper)  # noqa: F821
        outer_rows(w, s1, s2, ind, data, mid, p1, g_row, lr_w, wds[0], hyper)  # noqa: F821
        if has_bias:
            counts[1] += 1
            flat(bias, bias_s1, bias_s2, g_row, rate(lrs[bb * lr_step, 1], counts[1], hyper), wds[1], hyper)  # noqa: F821
    done = b
    for m in range(n_metrics):
        code = metric_codes[m]
        if code == M_MSE:
            metric_sums[m] += s_mse
        elif code == M_RMSE:
            metric_sums[m] += s_rmse
        elif code == M_MAE:
            metric_sums[m] += s_mae
        elif code == M_ACCURACY:
            metric_sums[m] += s_acc
        elif code == M_LOG_LOSS:
            metric_sums[m] += s_ll
        if weighted:
            metric_counts[m] += metric_inst_weighted(code, c_weight, c_rows)
        else:
            metric_counts[m] += metric_inst(code, 1) * done
    return status, done
