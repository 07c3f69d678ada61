"""The compiled engine's Python driver: :class:`LinearEpochRunner` (its epoch loop and result type, shared
with the generated plans: :mod:`.epoch_loop`).

It validates inputs (once per buffer), sizes the scratch buffers, gathers the optimizer's states,
learning rates and update counts from an :class:`~sparsetrain.optimizer.Updater`, calls the numba
kernels of :mod:`.kernels` with their named-tuple arguments, and advances the optimizer's counts.
See :mod:`.kernels` for the model, the formulas and the metrics.
"""
from __future__ import annotations

import weakref
from typing import Sequence

import numpy as np

from ...base import ShapeError, SparseTrainError, StorageTypeError
from ...kernels.optim import RULES
from ...labels import binary_domain_error
from ...metric import catalogue
from ...metric import info as metric_info
from ...ndarray import INDEX_DTYPE, BaseArray, CSRNDArray, NDArray, RowSparseNDArray
from ...kernels.metrics import FUSED_METRICS, M_ACCURACY, M_AUC, M_LOG_LOSS
from .epoch_loop import EpochResult, row_weights
from .kernels import (
    OUT_LOGISTIC,
    OUT_SOFTMAX,
    OUTPUTS,
    STATUS_OK,
    Batches,
    Metrics,
    Model,
    Scratch,
    Update,
    EPOCH_KERNELS,
    EpochKernel,
    csr_check,
    max_batch_nnz,
)

__all__ = ["LinearEpochRunner", "optimizer_fusable"]

_SCORE_RULE = RULES["sgd"]  # the kernel a forward-only pass (no update) runs before any training


def optimizer_fusable(optimizer, grad_row_sparse: Sequence[bool], weight_indices: Sequence[int]):
    """``(True, "")`` if the fused kernel reproduces ``optimizer.update`` for the dot-term weights, else
    ``(False, why)``, ``why`` said after the optimizer's name (``updates every row of parameter 2 because ...``).

    ``grad_row_sparse[t]``: whether the graph engine hands weight ``t`` (optimizer index
    ``weight_indices[t]``) a row-sparse gradient. The fused kernel updates only the rows a batch
    touches; that equals the graph engine's update when the gradient is row-sparse and the
    optimizer lazy, or when a zero gradient leaves a row untouched anyway
    (:meth:`~sparsetrain.optimizer.Optimizer.lazy_equals_dense`). The bias gets a dense update in
    both engines and needs no check.
    """
    from .matcher import match_optimizer

    why = match_optimizer(optimizer)
    if why:
        return False, str(why)
    lazy = getattr(optimizer, "lazy_update", True)
    for rsp, index in zip(grad_row_sparse, weight_indices):
        if rsp and lazy:
            continue
        if not optimizer.lazy_equals_dense(index):
            why = "lazy_update=False" if rsp else "its gradient is dense (declare the weight row_sparse)"
            return False, (f"updates every row of parameter {index} because {why}; the fused kernel updates "
                           "only the batch's rows")
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
    raise StorageTypeError("expected a CSR input (CSRNDArray, scipy csr or (data, indices, indptr)), "
                           f"got {type(x).__name__}")


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
        self._empty_weights = np.empty(0, np.float64)  # Batches.sample_weight of unweighted data
        self._no_pred = np.empty((0, k), self.dtype)
        # the rule of the last training pass: scoring reuses its kernel (already compiled) instead of sgd's
        self._trained_rule = None
        self._one_batch = np.zeros(2, INDEX_DTYPE)
        self._checked: dict = {}  # id(buffer) -> weakref, for inputs validated/converted once
        self._codes: dict = {}  # metric names -> (names, codes): see _metric_codes

    # -- input preparation -------------------------------------------------------------------
    def _remember(self, key, source, value):
        try:
            ref = weakref.ref(source, lambda _, key=key, cache=self._checked: cache.pop(key, None))
        except TypeError:
            return
        if len(self._checked) >= 16:  # a streamed epoch brings new buffers every chunk; ``value`` may hold them
            self._checked.pop(next(iter(self._checked)), None)
        self._checked[key] = (ref, value)

    def _recall(self, key, source):
        hit = self._checked.get(key)
        if hit is not None and hit[0]() is source:
            return hit[1]
        return None

    def _prepare_terms(self, terms, cache=True, checked=False):
        if len(terms) != len(self.num_features):
            raise ValueError(f"expected {len(self.num_features)} CSR inputs, got {len(terms)}")
        datas, indices, indptrs, canonical, nrows = [], [], [], [], None
        for t, x in enumerate(terms):
            data, ind, ptr, shape = _csr_parts(x)
            if shape[1] is not None and shape[1] != self.num_features[t]:
                raise ShapeError(f"input {t} has {shape[1]} columns, the weight has {self.num_features[t]} rows")
            # Validated (and converted, when a dtype differs) once per buffer object: inputs are
            # treated as immutable between calls (with ``cache=False``: on every call; ``checked``:
            # the caller vouches for a canonical structure within the shape, e.g. a parsed chunk).
            key = ("csr", t, id(data), id(ind), id(ptr))
            prepared = self._recall(key, ind) if cache else None
            if prepared is None:
                data_c = np.ascontiguousarray(data, dtype=self.dtype)
                ind_c = np.ascontiguousarray(ind, dtype=INDEX_DTYPE)
                ptr_c = np.ascontiguousarray(ptr, dtype=INDEX_DTYPE)
                n = len(ptr_c) - 1
                if len(data_c) != len(ind_c):
                    status = 0
                else:
                    status = 2 if checked else csr_check(ind_c, ptr_c, self.num_features[t], n)
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
        """``(order, batch_ptr, largest batch)`` as the kernels take them, checked."""
        order = np.ascontiguousarray(order, dtype=INDEX_DTYPE)
        batch_ptr = np.ascontiguousarray(batch_ptr, dtype=INDEX_DTYPE)
        if batch_ptr.ndim != 1 or batch_ptr.shape[0] < 1:
            raise ValueError("batch_ptr must be a 1-D array of at least one boundary")
        n = batch_ptr.shape[0] - 1
        lo, hi = int(batch_ptr[0]), int(batch_ptr[n])
        # a streamed epoch's piece is often one batch: its size needs no array operation; n batches over n rows
        # (batch 1) are all of one row when none is empty, which a bool temporary tells (no int64 one of n)
        smallest = largest = hi - lo
        if n > 1 and hi - lo == n:
            smallest = largest = 1 if bool((batch_ptr[1:] > batch_ptr[:-1]).all()) else 0
        elif n > 1:
            sizes = batch_ptr[1:] - batch_ptr[:-1]
            smallest, largest = int(sizes.min()), int(sizes.max())
        if lo < 0 or hi > order.shape[0] or (n and smallest <= 0):
            raise ValueError("batch_ptr must be increasing boundaries within order (no empty batch)")
        used = order[lo:hi]
        if used.size and (used.min() < 0 or used.max() >= nrows):
            raise ValueError(f"order holds row ids outside [0, {nrows})")
        return order, batch_ptr, largest if n else 0

    def _prepare_weights(self, weights, bias):
        if len(weights) != len(self.num_features):
            raise ValueError(f"expected {len(self.num_features)} weights, got {len(weights)}")
        bufs = []
        for t, w in enumerate(weights):
            buf = _dense_buffer(w, f"weight {t}")
            if buf.shape != (self.num_features[t], self.num_outputs):
                raise ShapeError(f"weight {t} has shape {buf.shape}, "
                                 f"expected {(self.num_features[t], self.num_outputs)}")
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

    def _ensure_scratch(self, indptrs, order, batch_ptr, max_bs, remember):
        """Scratch for the batches ``batch_ptr`` of ``order`` (``max_bs``: rows of the largest)."""
        need = max((self._batch_entries(ptr, order, batch_ptr, max_bs, remember) for ptr in indptrs), default=0)
        self._grow_scratch(max_bs, need)

    def _batch_entries(self, indptr, order, batch_ptr, max_bs, remember) -> int:
        """At least the stored entries of any batch ``batch_ptr`` of ``order`` (bounds one term's distinct
        gradient rows). A remembered buffer (an in-memory epoch's, called once per block): the entries of
        its ``max_bs`` longest rows, counted once per buffer and batch size, which no batch of up to
        ``max_bs`` rows exceeds; else (a streamed chunk, seen once) the largest batch's, counted."""
        if not remember:
            return max_batch_nnz(indptr, order, batch_ptr)
        key = ("entries", id(indptr), max_bs)
        need = self._recall(key, indptr)
        if need is None:
            lengths = indptr[1:] - indptr[:-1]
            k = min(max_bs, lengths.shape[0])
            need = int(np.partition(lengths, lengths.shape[0] - k)[lengths.shape[0] - k:].sum()) if k else 0
            self._remember(key, indptr, need)
        return need

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
        size = max(16, 1 << (2 * need - 1).bit_length())  # a power of two, at least 2 * need
        if self._htable.shape[0] < size:
            self._htable = np.full(size, -1, INDEX_DTYPE)

    def _metric_codes(self, metrics):
        """``(names, codes)`` of the metric names ``metrics`` (checked against this output; kept per tuple of
        names: a streamed epoch asks once a piece)."""
        key = tuple(metrics)
        known = self._codes.get(key)
        if known is None:
            known = self._codes[key] = self._check_metrics(key)
        return known

    def _check_metrics(self, metrics):
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
            if code == M_AUC and not ((self.output_kind == OUT_LOGISTIC and self.num_outputs == 1)
                                      or (self.output_kind == OUT_SOFTMAX and self.num_outputs == 2)):
                raise ValueError(f"metric {name!r} needs a binary output (LogisticRegressionOutput with one "
                                 "output or a two-class SoftmaxOutput)")
            codes.append(code)
        return names, np.asarray(codes, dtype=np.int64)

    def _check_label_domain(self, names, codes, lab, remember):
        """log_loss and accuracy of a single-output model read labels as 0/1: refuse others, as the
        graph engine's metrics do (softmax class ids are checked by ``_prepare_label``). Once per
        remembered label buffer (an in-memory epoch's blocks share it)."""
        binary = [name for name, code in zip(names, codes) if code in (M_LOG_LOSS, M_ACCURACY)]
        if self.output_kind == OUT_SOFTMAX or not binary or (remember and self._recall(("binary", id(lab)), lab)):
            return
        why = binary_domain_error(binary[0], lab)
        if why:
            raise ValueError(why)
        if remember:
            self._remember(("binary", id(lab)), lab, True)

    def _model(self, weights, states1, states2, bias, bias_s1, bias_s2):
        return Model(weights, states1, states2, bias, bias_s1, bias_s2, self.has_bias, self.output_kind,
                     self.grad_scale, self.softmax_batch_norm, self._empty2, self._empty2, self._empty2)

    def _scratch(self):
        return Scratch(self._htable, self._slots_buf, self._rows_buf, self._acc_buf, self._out, self._grad,
                       self._tmp, self._gb)

    def _batch_ptr(self, nrows):
        """``[0, nrows]``: one batch of every row (reused between calls)."""
        self._one_batch[1] = nrows
        return self._one_batch

    # -- running -----------------------------------------------------------------------------
    def _run(self, terms, label, order, batch_ptr, weights, bias, metrics, train, updater, param_indices,
             predictions=None, parallel=None, remember=True, sample_weight=None, checked_csr=False):
        datas, indices, indptrs, canonical, nrows = self._prepare_terms(terms, remember, checked_csr)
        lab = self._prepare_label(label, nrows, remember)
        order, batch_ptr, max_bs = self._prepare_schedule(order, batch_ptr, nrows)
        sw = row_weights(sample_weight, nrows)
        sw = self._empty_weights if sw is None else sw
        w_bufs, b_buf = self._prepare_weights(weights, bias)
        names, codes = self._metric_codes(metrics)
        self._check_label_domain(names, codes, lab, remember)
        n_batches = batch_ptr.shape[0] - 1
        n_params = len(w_bufs) + (1 if self.has_bias else 0)
        sums = np.zeros(len(codes), np.float64)
        counts_m = np.zeros(len(codes), np.float64)
        scores = np.empty(order.shape[0] if M_AUC in codes.tolist() else 0, np.float64)

        empty2, empty1 = self._empty2, self._empty1
        if train:
            if updater is None:
                raise ValueError("training needs an Updater (optimizer and states)")
            opt = updater.optimizer
            if param_indices is None or len(param_indices) != n_params:
                raise ValueError(f"param_indices must name the {n_params} parameters (weights, then bias)")
            param_indices = list(param_indices)
            rule, hyper, lrs, wds, counts = opt.fused_arguments(param_indices, n_batches)
            self._trained_rule = rule
            objs = list(weights) + ([bias] if self.has_bias else [])
            s1s, s2s = [], []
            for p, index in enumerate(param_indices):
                buf = w_bufs[p] if p < len(w_bufs) else b_buf
                s1, s2 = _state_arrays(updater.state(index, objs[p]), buf, empty2 if p < len(w_bufs) else empty1)
                s1s.append(s1)
                s2s.append(s2)
        else:
            # not applied (train is False); the hyper-parameters' count keeps the kernel's signature
            rule = self._trained_rule or _SCORE_RULE
            hyper = rule.pack(1.0, None, *(0.0 for _ in rule.hyper))
            s1s = [empty2] * len(w_bufs) + ([empty1] if self.has_bias else [])
            s2s = list(s1s)
            lrs = np.zeros((n_batches, n_params), np.float64)
            wds = np.zeros(n_params, np.float64)
            counts = np.zeros(n_params, np.int64)
        nt = len(w_bufs)
        bias_s1 = s1s[nt] if self.has_bias else empty1
        bias_s2 = s2s[nt] if self.has_bias else empty1
        pred = self._no_pred if predictions is None else predictions
        epoch_kernel = EPOCH_KERNELS.get(rule.name)
        if epoch_kernel is None:
            raise SparseTrainError(f"optimizer rule {rule.name!r} has no fused epoch kernel")
        args = (Batches(datas, indices, indptrs, canonical, lab, order, batch_ptr, sw),
                self._model(w_bufs, tuple(s1s[:nt]), tuple(s2s[:nt]), b_buf, bias_s1, bias_s2),
                Update(train, hyper, lrs, wds, counts), Metrics(codes, sums, counts_m, scores))
        # the batch-1 loop uses no scratch but ``tmp``/``gb``: the batch loop's is sized only for that loop (a
        # streamed chunk at batch 1 saves a gather over its rows, ~45 µs a 29k-row chunk)
        if not EpochKernel.one_sample(*args, self._scratch(), pred):
            self._ensure_scratch(indptrs, order, batch_ptr, max_bs, remember)
        args += (self._scratch(), pred)
        # train.threads: a ThreadTeam (threads.py) splits the batches among threads
        status, samples = epoch_kernel(*args) if parallel is None else parallel.run_linear(epoch_kernel, *args, rule)
        done = n_batches if status == STATUS_OK else int(status)
        result = EpochResult(names, sums, counts_m, done, int(samples),
                             None if status == STATUS_OK else int(status))
        if scores.shape[0]:  # the positions of the batches that ran
            ran = slice(int(batch_ptr[0]), int(batch_ptr[done]))
            result.labels, result.scores = lab[order[ran], 0].astype(np.float64), scores[ran].copy()
            result.weights = sw[order[ran]] if sw.shape[0] else None
        if train:
            opt.advance_update_counts(param_indices, done)
        return result

    def fit_epoch(self, terms, label, order, batch_ptr, weights, bias, updater, param_indices,
                  metrics=("mse",), predictions=None, parallel=None, remember=True, sample_weight=None,
                  checked_csr=False) -> EpochResult:
        """Train over the batches ``batch_ptr`` of ``order``, updating weights, bias and states in place.

        ``terms``: one CSR input per dot term (``CSRNDArray``, scipy CSR, or ``(data, indices,
        indptr)``). ``label``: ``(N,)``/``(N, K)`` targets, class indices for ``SoftmaxOutput``.
        ``weights``: ``(D_t, K)`` arrays (``NDArray``, full ``RowSparseNDArray`` or numpy);
        ``bias``: ``(K,)`` or ``None``. ``updater``: the :class:`~sparsetrain.optimizer.Updater`
        whose optimizer and states to use; ``param_indices``: its indices of the weights, then
        the bias (their NaN/inf scan is the epoch loop's, :func:`~.epoch_loop.check_params`).
        ``predictions``: a ``(len(order), K)`` array that receives each row's output before its
        batch's update (by position in ``order``); the batch-1 fast path is not taken then. ``parallel``:
        a :class:`~.threads.ThreadTeam` that trains the batches in several threads (``train.threads``).
        ``remember=False``: inputs seen once (a streamed chunk) are not remembered as validated, so
        nothing here keeps them alive. ``sample_weight``: one weight >= 0 per row of ``terms`` (scales
        the row's gradient; weighted metrics), or None. ``checked_csr``: the caller vouches that ``terms``
        are canonical CSR within their shapes (a parsed chunk), so their O(nnz) check is skipped.
        """
        return self._run(terms, label, order, batch_ptr, weights, bias, metrics, True, updater,
                         param_indices, predictions=predictions, parallel=parallel, remember=remember,
                         sample_weight=sample_weight, checked_csr=checked_csr)

    def score(self, terms, label, order, batch_ptr, weights, bias, metrics=("mse",),
              sample_weight=None) -> EpochResult:
        """Metrics of the forward pass over the batches (nothing is updated; ``sample_weight`` weights them)."""
        return self._run(terms, label, order, batch_ptr, weights, bias, metrics, False, None, None,
                         sample_weight=sample_weight)

    def predict(self, terms, weights, bias, batch_size: int = 4096) -> np.ndarray:
        """Outputs (after the output layer) of every row, shape ``(N, K)``."""
        nrows = self._prepare_terms(terms)[-1]
        order = np.arange(nrows, dtype=INDEX_DTYPE)
        batch_ptr = np.append(np.arange(0, nrows, batch_size, dtype=INDEX_DTYPE), nrows)
        out = np.empty((nrows, self.num_outputs), self.dtype)
        self._run(terms, None, order, batch_ptr, weights, bias, (), False, None, None, predictions=out)
        return out
