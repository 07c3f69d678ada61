"""Fused whole-epoch kernels for the linear family (the compiled engine's inner loop).

The model is ``pred = dot(X_1, W_1) + ... + dot(X_T, W_T) [+ b]`` with every ``X_t`` a CSR
matrix over the same rows, ``W_t`` of shape ``(D_t, K)`` (stored in full), ``b`` of shape
``(K,)``, followed by one output layer (:mod:`.outputs`: their codes and formulas).

Per batch the kernel runs forward, accumulates the metrics on the forward output (before the
update), then back-propagates: ``grad_W_t = X_tᵀ · grad`` restricted to the rows of ``W_t`` whose
column occurs in the batch's CSR structure — explicit zeros included, exactly the row set of the
graph engine's row-sparse gradient — and ``grad_b = Σ_batch grad``; then the optimizer's *lazy*
update on those rows of ``W_t`` and the dense update of ``b``, with the update rules of
:mod:`sparsetrain.kernels.optim` that the :mod:`sparsetrain.optimizer` classes run too
(the rule's ``rows_2d``/``flat`` loops; for one-sample batches with K = 1, its ``outer_rows`` loop,
which does not materialise the gradient). The epoch kernels are written once, calling the rule's
loops by name, and bound to every rule of :data:`~sparsetrain.kernels.optim.RULES`
(:meth:`~sparsetrain.kernels.optim.Rule.bind`): :data:`EPOCH_KERNELS` holds one compiled
``linear_epoch`` per rule, with that rule's step inlined — no dispatch on the optimizer inside.
One-sample batches run the batch-1 loop of :mod:`.batch1` instead (:class:`EpochKernel` chooses).

The distinct gradient rows of a batch are found with a small open-addressing table sized by the
largest batch (it stays in cache); no scratch grows with the number of features.

The caller decides the epoch: ``order`` (int64 row ids; repeated ids for ``pad``; leftovers for
``roll_over``) and ``batch_ptr`` (batch boundaries into ``order``). Batching logic therefore stays
in the data iterators.

Metrics are accumulated on the forward output, per batch as MXNet's metric classes compute them,
by the kernels of :mod:`sparsetrain.kernels.metrics` (the formulas; ``auc`` collects each sample's
score for the metric's own update).

The epoch value of a metric is ``sum / num_inst`` (``auc``'s: from the collected scores). A non-finite prediction or batch metric stops
the kernel at once, before that batch's update, and is reported with its batch index.

This module holds the batch loop, the arguments both loops take and the registry. Use :class:`~.runner.LinearEpochRunner` from Python:
it validates inputs once, keeps the scratch buffers between calls, takes the optimizer's states
from an :class:`~sparsetrain.optimizer.Updater` (shared with the graph engine, so checkpoints and
engine switches see one set of states) and keeps the optimizer's update counts and learning-rate
schedule in step. :mod:`sparsetrain.kernels.numba_cache` keeps numba's on-disk cache of these kernels honest.
"""
from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

from ...kernels import metrics as metric_kernels
from ...kernels import optim as optim_kernels
from ...kernels.optim import RULES
from ...kernels.prefetch import prefetch_row
from ...kernels import prefetch as prefetch_kernels
from ...kernels.metrics import (  # FUSED_METRICS: also read from here by the engine's other modules
    FUSED_METRICS,
    NUM_CODES,
    batch_metrics,
    batch_metrics_weighted,
    metric_inst,
)
from ...kernels.numba_cache import drop_stale_cache, drop_stale_callers
from . import outputs as output_kernels
from .batch1 import _batch1_epoch
from .outputs import (  # the output layers' names, also read from here by the engine's other modules
    OUT_LOGISTIC,
    OUT_SOFTMAX,
    OUTPUTS,
    STATUS_OK,
    activation,
    output_grad,
)

__all__ = ["OUTPUTS", "FUSED_METRICS", "Batches", "Model", "Update", "Metrics", "Scratch", "EPOCH_KERNELS"]


# -- what the kernels take ---------------------------------------------------------------------
# numba compiles a namedtuple of arrays and scalars as a struct: the kernels take five of these
# instead of thirty-odd positional arguments, and unpack them once on entry.

Batches = namedtuple("Batches", "data indices indptr canonical label order batch_ptr sample_weight")
Batches.__doc__ = """The epoch's inputs. Tuples with one entry per dot term ``t``: ``data``/``indices``/``indptr``
(CSR over the same rows); ``canonical``: a bool array, term ``t``'s rows have strictly increasing
column ids. ``label``: (N, K) targets, (N, 1) class ids for SoftmaxOutput. Batch ``b`` is the rows
``order[batch_ptr[b]:batch_ptr[b + 1]]`` (int64). ``sample_weight``: float64 (N,) row weights (Vowpal
Wabbit importance): each row's output gradient is scaled by its weight and the metrics are weighted
(``batch_metrics_weighted``); empty: unweighted, the kernels' unchanged fast path."""

Model = namedtuple("Model", "weights states1 states2 bias bias_s1 bias_s2 has_bias output_kind grad_scale "
                            "softmax_batch_norm head head_s1 head_s2")
Model.__doc__ = """The parameters, updated in place. ``weights``: a tuple of (D_t, K) arrays; ``states1``/``states2``:
their optimizer states (shaped like the weight, or empty when unused); ``bias`` (K,) with its
states ``bias_s1``/``bias_s2``; ``has_bias``; the output layer: ``output_kind`` (an ``OUT_*``
code), its ``grad_scale`` and, for SoftmaxOutput, ``softmax_batch_norm`` (divide by the batch).
``head``/``head_s1``/``head_s2``: (H, K) stand-ins for the first H rows of ``weights[0]`` and its
states, which the batch-1 loop reads and updates instead (a Hogwild thread's own copy of the rows
every sample touches, :mod:`.threads`); 0 rows: none (every other caller)."""

Update = namedtuple("Update", "train hyper lrs wds counts")
Update.__doc__ = """The optimizer step. ``train``: False runs forward and metrics only. ``hyper``: the packed
hyper-parameters of the rule the kernel is bound to (``Optimizer.hyper()``); ``lrs[b, p]``: the learning rate of
batch ``b`` for parameter ``p`` (weights in term order, then the bias; one row when the rates do
not change), ``wds[p]`` its weight decay, ``counts[p]`` its update count (incremented per batch)."""

Metrics = namedtuple("Metrics", "codes sums counts scores")
Metrics.__doc__ = """``codes``: int64 ``M_*`` codes (:mod:`sparsetrain.kernels.metrics`); ``scores`` (float64): with an
epoch metric (``auc``), each sample's score by its position in ``order`` (else empty); ``sums``/``counts`` (float64): each metric's ``sum_metric`` and
``num_inst``, accumulated."""

Scratch = namedtuple("Scratch", "htable slots rows acc out grad tmp gb")
Scratch.__doc__ = """Work buffers: ``htable`` (int64, all -1, a power of two of at least twice the largest batch's
stored entries; left all -1), ``slots``/``rows``/``acc`` (at least the largest batch's stored
entries; ``acc`` × K), ``out``/``grad`` (largest batch × K), ``tmp``/``gb`` (K)."""

# -- numba kernels ------------------------------------------------------------------------------

# _forward_batch asks for the weight rows of the sample _AHEAD positions on in ``order`` while it
# computes this one (prefetch_row: a hint, no result changes). Large-b256 (500k x 1M, zipf columns,
# SGD), exploratory runs: ~0.12 -> ~0.09 s/epoch; 4, 8 and 16 within noise of each other.
_AHEAD = 8


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
            if lo + i + _AHEAD < order.shape[0]:  # a sample _AHEAD on (maybe the next batch's): ask for its rows
                r_next = order[lo + i + _AHEAD]
                for p in range(ptr[r_next], ptr[r_next + 1]):
                    prefetch_row(w, ind[p])
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
                out[i, k] = activation(output_kind, out[i, k])


@njit(cache=True, inline="always")
def _bias_grad(grad, n, out):
    """``out = Σ_{i<n} grad[i, :]``: the bias gradient of a batch."""
    for k in range(out.shape[0]):
        out[k] = 0
    for i in range(n):
        for k in range(out.shape[0]):
            out[k] += grad[i, k]




_FIB = np.uint64(11400714819323198485)  # 2**64 / golden ratio: Fibonacci hashing


@njit(cache=True, inline="always")
def _place(c, htable, mask, shift, slots, rows, acc, nq):
    """``(q, nq)``: column ``c``'s place ``q`` among the batch's gradient rows, added (its ``acc`` row
    zeroed) when new; ``nq`` the rows so far."""
    h = np.int64((np.uint64(c) * _FIB) >> shift) & mask
    # a slot holds (column << 32 | position), -1 when empty: 8 bytes, one load per probe
    e = htable[h]
    while e != -1 and (e >> 32) != c:
        h = (h + 1) & mask
        e = htable[h]
    if e != -1:
        return e & 0xFFFFFFFF, nq
    htable[h] = (c << 32) | nq
    slots[nq] = h
    rows[nq] = c
    for k in range(acc.shape[1]):
        acc[nq, k] = 0
    return nq, nq + 1


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
    # one output: a loop of its own, with no K loop or K test in it. large-b256 (SGD, one thread), three
    # interleaved pairs in one quiet command: 0.085/0.093/0.093 -> 0.083/0.087/0.087 s per epoch
    if k_out == 1:
        for i in range(n):
            r = order[lo + i]
            g0 = grad[i, 0]
            for p in range(ptr[r], ptr[r + 1]):
                q, nq = _place(ind[p], htable, mask, shift, slots, rows, acc, nq)
                acc[q, 0] += data[p] * g0
    else:
        for i in range(n):
            r = order[lo + i]
            for p in range(ptr[r], ptr[r + 1]):
                q, nq = _place(ind[p], htable, mask, shift, slots, rows, acc, nq)
                v = data[p]
                for k in range(k_out):
                    acc[q, k] += v * grad[i, k]
    for q in range(nq):  # empty the table again: only the slots this batch used
        htable[slots[q]] = -1
    return nq


def _linear_epoch(batches, model, update, metrics, scratch, predictions):
    """Run the batches of ``batches``; returns ``(status, samples_done)``.

    ``status`` is -1 when every batch ran, else the index of the batch whose prediction or metric
    was non-finite (that batch was not applied). The arguments are the named tuples
    :class:`Batches`, :class:`Model`, :class:`Update`, :class:`Metrics` and :class:`Scratch`;
    ``metrics.sums``/``metrics.counts`` and ``update.counts`` accumulate. With ``update.train``
    False nothing is updated; when ``predictions`` has rows, the outputs are written there by
    position in ``order``.
    """
    x_data, x_indices, x_indptr, canonical, label, order, batch_ptr, sample_weight = batches
    weighted = sample_weight.shape[0] > 0
    weights, states1, states2 = model.weights, model.states1, model.states2
    bias, bias_s1, bias_s2, has_bias = model.bias, model.bias_s1, model.bias_s2, model.has_bias
    output_kind, grad_scale, softmax_batch_norm = model.output_kind, model.grad_scale, model.softmax_batch_norm
    train, hyper, lrs, wds, counts = update
    metric_codes, metric_sums, metric_counts, scores = metrics
    htable, slots_buf, rows_buf, acc_buf, out_buf, grad_buf, tmp_buf, gb_buf = scratch
    n_terms = len(weights)
    k_out = out_buf.shape[1]
    n_metrics = metric_codes.shape[0]
    values = np.empty(max(n_metrics, NUM_CODES), dtype=np.float64)
    insts = np.empty(max(n_metrics, 1), dtype=np.float64)  # weighted: each metric's num_inst of the batch
    write_pred = predictions.shape[0] > 0
    check = train or n_metrics > 0  # a pure prediction pass reports NaN/inf outputs as they are
    n_batches = batch_ptr.shape[0] - 1
    lr_step = 1 if lrs.shape[0] > 1 else 0  # one row of rates when they do not change
    samples = 0
    b = 0
    while b < n_batches:
        lo = batch_ptr[b]
        n = batch_ptr[b + 1] - lo
        _forward_batch(x_data, x_indices, x_indptr, weights, bias, has_bias, order, lo, n, output_kind,
                       out_buf, tmp_buf)
        if check:
            finite = True
            for i in range(n):
                for k in range(k_out):
                    if not math.isfinite(out_buf[i, k]):
                        finite = False
            if finite and weighted:
                finite = batch_metrics_weighted(out_buf, label, order, lo, n, metric_codes, values, insts, scores,
                                                sample_weight)
            elif finite:
                finite = batch_metrics(out_buf, label, order, lo, n, metric_codes, values, scores)
            if not finite:
                return b, samples
        for m in range(n_metrics):
            metric_sums[m] += values[m]
            metric_counts[m] += insts[m] if weighted else metric_inst(metric_codes[m], n)
        if write_pred:
            for i in range(n):
                for k in range(k_out):
                    predictions[lo + i, k] = out_buf[i, k]
        samples += n
        b += 1
        if not train:
            continue

        bb = b - 1  # this batch
        output_grad(out_buf, label, order, lo, n, output_kind, grad_scale, softmax_batch_norm, grad_buf)
        if weighted:
            for i in range(n):
                wr = sample_weight[order[lo + i]]
                for k in range(k_out):
                    grad_buf[i, k] = grad_buf[i, k] * wr
        for t in range(n_terms):
            nq = _gather_grad_rows(x_data[t], x_indices[t], x_indptr[t], canonical[t], order, lo, n, grad_buf,
                                   htable, slots_buf, rows_buf, acc_buf)
            counts[t] += 1
            rows_2d(weights[t], states1[t], states2[t], rows_buf[:nq], acc_buf[:nq],  # noqa: F821
                    rate(lrs[bb * lr_step, t], counts[t], hyper), wds[t], hyper)  # noqa: F821
        if has_bias:
            _bias_grad(grad_buf, n, gb_buf)
            counts[n_terms] += 1
            flat(bias, bias_s1, bias_s2, gb_buf, rate(lrs[bb * lr_step, n_terms], counts[n_terms], hyper),  # noqa: F821
                 wds[n_terms], hyper)
    return STATUS_OK, samples


def csr_check(indices, indptr, num_cols, num_rows):
    """0: inconsistent structure or a column id out of range; 1: valid; 2: valid and canonical
    (strictly increasing column ids within every row). numpy, O(nnz): one numba function fewer to
    compile on a first run."""
    indices = np.asarray(indices)
    indptr = np.asarray(indptr)
    if indptr.shape[0] != num_rows + 1 or indptr[0] != 0 or indptr[num_rows] > indices.shape[0]:
        return 0
    if num_rows and np.any(indptr[1:] < indptr[:-1]):
        return 0
    nnz = int(indptr[num_rows])
    used = indices[:nnz]
    if nnz == 0:
        return 2
    if used.min() < 0 or used.max() >= num_cols:
        return 0
    rising = used[1:] > used[:-1]  # position p + 1 follows p within its row, or starts a row
    starts = indptr[1:num_rows]
    starts = starts[(starts > 0) & (starts < nnz)]
    rising[starts - 1] = True
    return 2 if rising.all() else 1


def max_batch_nnz(indptr, order, batch_ptr) -> int:
    """The most stored entries of one batch (batch ``b``: rows ``order[batch_ptr[b]:batch_ptr[b + 1]]``,
    no batch empty), in numpy."""
    n = batch_ptr.shape[0] - 1
    if n < 1:
        return 0
    rows = order[batch_ptr[0]:batch_ptr[n]]
    lengths = indptr[rows + 1] - indptr[rows]
    if n == 1:  # one batch (a streamed piece's batch spanning two chunks)
        return int(lengths.sum())
    if n == rows.shape[0]:  # batches of one row
        return int(lengths.max())
    return int(np.add.reduceat(lengths, batch_ptr[:-1] - batch_ptr[0]).max())


class EpochKernel:
    """The linear family's epoch for one optimizer rule: ``kernel(batches, model, update, metrics,
    scratch, predictions) -> (status, samples)`` as :func:`_linear_epoch`. A call whose batches all
    hold one sample (one dot term with canonical rows, one output, not softmax, no predictions
    written) runs the lean batch-1 loop (:func:`_batch1_epoch`), any other the batch loop. Each is
    bound and compiled on its first use, so a model compiles only the loop it trains with (issue
    15's cold start)."""

    def __init__(self, rule):
        self.rule = rule
        self.name = rule.name
        self._loops: dict = {}

    def loop(self, template):
        """``template`` bound to this kernel's rule (once), its stale on-disk cache dropped."""
        fn = self._loops.get(template)
        if fn is None:
            # the batch-1 loop allocates nothing: without reference counts, its calls of the rule's
            # ``outer_rows``/``flat`` (5 arrays each) spare ~10 atomic adds and subtracts a sample
            fn = self._loops[template] = self.rule.bind(template, refcounts=template is not _batch1_epoch)
            # numba invalidates a cached kernel when its own file changes, not when a kernel it inlines does
            drop_stale_cache([fn], [optim_kernels, metric_kernels, prefetch_kernels, output_kernels])
        return fn

    @staticmethod
    def one_sample(batches, model, update, metrics, scratch, predictions) -> bool:
        """Whether a call runs the batch-1 loop (the only one that reads ``model.head``)."""
        bp = batches.batch_ptr
        n_batches = bp.shape[0] - 1
        return bool(0 < n_batches == bp[n_batches] - bp[0] and len(model.weights) == 1 and batches.canonical[0]
                    and scratch.out.shape[1] == 1 and model.output_kind != OUT_SOFTMAX
                    and (update.train or metrics.codes.shape[0] > 0) and predictions.shape[0] == 0)

    def select(self, batches, model, update, metrics, scratch, predictions):
        """``(loop, one_sample)``: the compiled loop a call with these arguments runs (the batch-1 loop
        when :meth:`one_sample`), which a caller running a block's pieces (``threads.ThreadTeam``) calls
        directly, choosing once per block."""
        one = self.one_sample(batches, model, update, metrics, scratch, predictions)
        return self.loop(_batch1_epoch if one else _linear_epoch), one

    def __call__(self, batches, model, update, metrics, scratch, predictions):
        loop, one = self.select(batches, model, update, metrics, scratch, predictions)
        if not one and model.head.shape[0]:
            raise ValueError("Model.head is read by the batch-1 loop only")
        return loop(batches, model, update, metrics, scratch, predictions)


#: an :class:`EpochKernel` per rule name of :data:`~sparsetrain.kernels.optim.RULES` (see :func:`_linear_epoch`).
EPOCH_KERNELS = {name: EpochKernel(rule) for name, rule in RULES.items()}

drop_stale_callers(__name__)  # the batch loop's own kernels inline the output layers' formulas
