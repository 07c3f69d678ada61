"""Runs generated plans (:mod:`.plan`): the source cache on disk, loading, and one training epoch.

The generated source is written once to the plan cache — ``$SPARSETRAIN_PLAN_CACHE``, else
``$NUMBA_CACHE_DIR/sparsetrain-plans``, else ``~/.cache/sparsetrain/plans``, in a directory of the
installation's own (:func:`installation_tag`) and of the kernels a plan calls (:func:`kernels_digest`) — as
``plan_<key>.py``, the key a hash of the source (graph structure, stypes, dtypes, widths, output layer); numba
caches its machine code beside it (``cache=True``), so a second run of the same model compiles nothing.
The optimizer rule, its hyper-parameters, learning rates, metrics and the loss parameters are
arguments, not part of the key.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import sys
import weakref

import numpy as np

from ...base import ShapeError
from ...fileio import write_atomic
from ...kernels import optim as optim_kernels
from ...ndarray import INDEX_DTYPE
from ...optimizer_buffers import weight_buffer
from ..base import EpochStats, metric_leaves
from ...kernels import metrics as metric_kernels
from ...kernels import prefetch as prefetch_kernels
from ...metric import info_of
from . import kernels as compiled_kernels
from . import outputs as output_kernels
from . import plan_kernels
from .kernels import FUSED_METRICS, OUT_SOFTMAX, OUTPUTS
from ...kernels.numba_cache import kernel_callees
from .plan import PlanSpec
from .plan_source import generate, plan_args, plan_key
from .epoch_loop import EpochResult, row_weights, run_in_chunks
from .runner import _state_arrays

_loaded: dict = {}  # key -> plan_epoch


def cache_dir() -> str:
    """Where generated plans (and numba's code for them) are kept: a directory of this installation's
    own (:func:`installation_tag`) under the plan cache, and in it one of the kernels they call
    (:func:`kernels_digest`)."""
    base = os.environ.get("SPARSETRAIN_PLAN_CACHE")
    if not base:
        numba_dir = os.environ.get("NUMBA_CACHE_DIR")
        base = (os.path.join(numba_dir, "sparsetrain-plans") if numba_dir
                else os.path.join(os.path.expanduser("~"), ".cache", "sparsetrain", "plans"))
    package_dir = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    return os.path.join(base, installation_tag(package_dir), f"kernels-{kernels_digest()}")


def installation_tag(package_dir: str) -> str:
    """A name for the sparsetrain installed at ``package_dir`` (its path and version). Plans compiled by
    another installation (another virtualenv, another checkout) sharing the cache are not loaded:
    numba's code for a plan refers to the kernels of the installation that compiled it (by module:
    one without a module the other has failed with ``ModuleNotFoundError``)."""
    from ... import __version__

    digest = hashlib.sha256(f"{os.path.realpath(package_dir)}\0{__version__}".encode()).hexdigest()
    return f"{__version__}-{digest[:12]}"


#: The modules whose kernels generated code calls (``plan_kernels`` names them for it).
PLAN_CALLS = (plan_kernels, optim_kernels, metric_kernels, prefetch_kernels, output_kernels)


@functools.cache
def kernels_digest() -> str:
    """A digest of the source text of every module whose kernels a plan's compiled code holds: :data:`PLAN_CALLS`
    and, transitively, the modules their kernels call (:func:`~sparsetrain.kernels.numba_cache.kernel_callees`).
    Plans compiled against other kernels are in another directory of the cache (:func:`cache_dir`), however the
    files' times compare (a checkout, a copy, an install from a wheel set them). Read once per process."""
    seen, todo = set(PLAN_CALLS), list(PLAN_CALLS)
    while todo:
        for other in kernel_callees(todo.pop()) - seen:
            seen.add(other)
            todo.append(other)
    digest = hashlib.sha256()
    for module in sorted(seen, key=lambda m: m.__name__):
        with open(module.__file__, "rb") as f:
            digest.update(f"{module.__name__}\0".encode() + f.read() + b"\0")
    return digest.hexdigest()[:16]


def load(spec: PlanSpec, rule: str, weighted: bool = False):
    """The compiled ``plan_epoch`` of ``spec`` with optimizer rule ``rule`` (source cached when new);
    ``weighted``: the variant taking per-row sample weights."""
    source = generate(spec, rule, weighted)
    key = plan_key(source)
    fn = _loaded.get(key)
    if fn is not None:
        return fn
    path = os.path.join(cache_dir(), f"plan_{key}.py")
    if not os.path.exists(path):
        write_atomic(path, source)  # never rewritten: numba's cache is keyed on the file's timestamp (and the
        # directory on the kernels the plan calls: an edit of one of them makes the plans anew, cache_dir)
    name = f"sparsetrain_plan_{key}"
    module_spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[name] = module
    module_spec.loader.exec_module(module)
    fn = module.plan_epoch
    _loaded[key] = fn
    return fn


_CONVERTED_KEPT = 8  # input buffers remembered as converted (the value may hold the buffer itself)


class PlanRunner:
    """A loaded plan with the buffers it keeps between epochs (inputs converted once per buffer)."""

    def __init__(self, spec: PlanSpec):
        self.spec = spec
        self._fns: dict = {}  # (optimizer rule name, weighted) -> plan_epoch
        self.dtype = np.dtype(spec.dtype)
        self.output_kind = OUTPUTS[spec.output]
        params = spec.loss_params
        self.grad_scale = float(params.get("grad_scale", 1.0))
        self.softmax_norm = params.get("normalization", "null") != "null"
        self._slot = np.full(0, -1, INDEX_DTYPE)
        self._converted: dict = {}
        self._empty = np.empty((0, 0), self.dtype)
        self._no_rows = np.empty(0, INDEX_DTYPE)

    def run_epoch(self, view, train_data, metric, batch_end_callback=None, epoch=0, progressive=None,
                  check_params=True, parallel=None, remember=True) -> EpochStats:
        """One epoch of an in-memory ``train_data`` (or a streamed piece): the runner interface every
        compile target has (see :func:`sparsetrain.engines.compiled.run_found`)."""
        if progressive is not None:  # match() refuses this pairing; a direct call must too
            raise ValueError("the compiled engine cannot run this module: generated plans do not compute "
                             "progressive metrics")
        return run_epoch(view, self, metric_names(metric), train_data, metric, batch_end_callback, epoch,
                         check_params, parallel=parallel, remember=remember)

    def trained_indices(self, view) -> list:
        """The optimizer indices of the plan's parameters, in its order (the runner interface, as
        :meth:`~sparsetrain.engines.compiled.LinearKernel.trained_indices`)."""
        return [view.index(p.name) for p in self.spec.params]

    def _once(self, key, source, make, remember=True):
        if not remember:  # an input seen once (a streamed chunk): nothing keeps it alive
            return make()
        hit = self._converted.get(key)
        if hit is not None and hit[0]() is source:
            return hit[1]
        value = make()
        if len(self._converted) >= _CONVERTED_KEPT:  # a streamed epoch brings new buffers every chunk
            self._converted.pop(next(iter(self._converted)))
        self._converted[key] = (weakref.ref(source), value)
        return value

    def _csr(self, x, remember=True, checked=False):
        """``(data, indices, indptr, canonical)``: the arrays the plan reads; ``canonical``: every row's
        column ids strictly increase (a one-sample batch's columns are then its gradient rows; ``checked``:
        the caller vouches for it, e.g. a parsed chunk)."""
        if self.spec.ids:
            return self._once(("ids", id(x._data)), x._data, lambda: self._ids(x), remember)

        def make():
            xi, xp = np.ascontiguousarray(x._indices, INDEX_DTYPE), np.ascontiguousarray(x._indptr, INDEX_DTYPE)
            canonical = checked or compiled_kernels.csr_check(xi, xp, x.shape[1], len(xp) - 1) == 2
            return np.ascontiguousarray(x._data, dtype=self.dtype), xi, xp, canonical
        return self._once(("csr", id(x._data), id(x._indices)), x._indices, make, remember)

    def _ids(self, x):
        """Embedding's ids (dense, or csr as a file holds them) as the columns of a csr batch: F per row,
        truncated to integers and clipped to the tables' rows as the graph engine's ``Embedding`` does."""
        ids = x.asnumpy()
        rows = ids.shape[0]
        ids = ids.reshape(rows, -1)
        fields = ids.shape[1]
        xi = np.ascontiguousarray(np.clip(ids.astype(np.int64), 0, self.spec.id_space - 1), INDEX_DTYPE).reshape(-1)
        xp = np.arange(0, rows * fields + 1, fields, dtype=INDEX_DTYPE)
        canonical = fields == 1 or bool(np.all(np.diff(ids.astype(np.int64), axis=1) > 0))
        return np.ones(rows * fields, self.dtype), xi, xp, canonical

    def _label(self, y, nrows, remember=True):
        src = y._data if hasattr(y, "_data") else np.asarray(y)

        def make():
            lab = np.asarray(src).reshape(nrows, -1)
            want = 1 if self.output_kind == OUT_SOFTMAX else self.spec.out_width
            if lab.shape[1] != want:
                raise ShapeError(f"label of shape {np.shape(src)} does not fit {self.spec.output} "
                                 f"with {self.spec.out_width} outputs")
            lab = np.ascontiguousarray(lab, dtype=self.dtype)
            if self.output_kind == OUT_SOFTMAX and lab.size and not np.all(
                    (lab >= 0) & (lab < self.spec.out_width) & (lab == np.floor(lab))):
                raise ShapeError(f"SoftmaxOutput labels must be class indices in [0, {self.spec.out_width})")
            return lab
        return self._once(("label", id(src)), src, make, remember)

    def _params(self, view):
        """Per parameter: the 2-D weight buffer, its two state buffers, its dense-update rows."""
        out = []
        for p in self.spec.params:
            weight = view.arrays[p.name]
            buf = weight_buffer(weight).reshape(p.rows, p.cols)
            s1, s2 = _state_arrays(view.updater.state(view.index(p.name), weight), buf, self._empty)
            rows = self._no_rows if p.row_sparse else np.arange(p.rows, dtype=INDEX_DTYPE)
            out.append((buf, s1, s2, rows))
        return out

    def fit(self, view, data, label, order, batch_ptr, codes, parallel=None, remember=True, checked_csr=False,
            sample_weight=None) -> EpochResult:
        """Train the batches ``batch_ptr`` of ``order`` (see :class:`~.runner.LinearEpochRunner`, also for
        ``remember``, ``checked_csr`` and ``sample_weight``); ``parallel``: a :class:`~.threads.ThreadTeam`
        (``train.threads``)."""
        xd, xi, xp, canonical = self._csr(data, remember, checked_csr)
        nrows = len(xp) - 1
        lab = self._label(label, nrows, remember)
        sw = row_weights(sample_weight, nrows)
        num_features = self.spec.id_space if self.spec.ids else view.arrays[self.spec.data].shape[1]
        if self._slot.shape[0] != num_features:
            self._slot = np.full(num_features, -1, INDEX_DTYPE)
        opt = view.optimizer
        indices = self.trained_indices(view)
        n_batches = len(batch_ptr) - 1
        rule, hyper, lrs, wds, counts = opt.fused_arguments(indices, n_batches)
        weighted = sw is not None
        fn = self._fns.get((rule.name, weighted))
        if fn is None:
            fn = self._fns[(rule.name, weighted)] = load(self.spec, rule.name, weighted)
        sums = np.zeros(len(codes), np.float64)
        nums = np.zeros(len(codes), np.float64)
        scores = np.empty(len(order) if metric_kernels.M_AUC in codes else 0, np.float64)
        args = [xd, xi, xp, lab, np.ascontiguousarray(order, INDEX_DTYPE), np.ascontiguousarray(batch_ptr, INDEX_DTYPE)]
        bufs = self._params(view)
        for buf, s1, s2, rows in bufs:
            args += [buf, s1, s2, rows]
        args += [scores, True, hyper, lrs, wds, counts, codes, sums, nums, self._slot, canonical,
                 self.output_kind, self.grad_scale, self.softmax_norm] + ([sw] if weighted else [])
        status, samples = fn(*args) if parallel is None else parallel.run_plan(fn, args, plan_args(len(bufs), weighted),
                                                                               rule)
        done = n_batches if status < 0 else int(status)
        result = EpochResult([], sums, nums, done, int(samples), None if status < 0 else int(status))
        if scores.shape[0]:  # the samples of the batches that ran, for an epoch metric (auc)
            ran = np.asarray(order[:int(batch_ptr[done])], INDEX_DTYPE)
            result.labels, result.scores = lab[ran, 0].astype(np.float64), scores[:len(ran)].copy()
            result.weights = sw[ran] if weighted else None
        opt.advance_update_counts(indices, done)
        return result


def metric_names(metric) -> list:
    """The catalogue names of ``metric``'s leaves (a metric or composite; every one with a fused form)."""
    return [info_of(leaf).name for leaf in metric_leaves(metric)]


def metric_codes(names) -> np.ndarray:
    from ...metric import info as metric_info

    return np.asarray([FUSED_METRICS[metric_info(n).fused] for n in names], dtype=np.int64)


def run_epoch(view, runner: PlanRunner, names, train_data, metric, batch_end_callback=None, epoch=0,
              check_params=True, parallel=None, remember=True) -> EpochStats:
    """One epoch of ``train_data`` (an iterator with ``epoch_rows``) through ``runner``
    (:func:`~.epoch_loop.run_in_chunks`); ``check_params``: scan the parameters for NaN/inf at the end (a
    streamed epoch does so after its last piece); ``parallel``, ``remember``: see :meth:`PlanRunner.fit`."""
    codes = metric_codes(names)
    checked = getattr(train_data, "checked_csr", False)  # a parsed chunk's rows (see EpochPiece)
    sample_weight = getattr(train_data, "sample_weight", None)  # Batches.sample_weight (None: unweighted)

    def fit_chunk(order, batch_ptr, real):
        data = dict(train_data.data)[runner.spec.data]
        label = dict(train_data.label)[runner.spec.label]
        return runner.fit(view, data, label, order, batch_ptr, codes, parallel=parallel, remember=remember,
                          checked_csr=checked, sample_weight=sample_weight)

    return run_in_chunks(view, train_data, metric, fit_chunk, batch_end_callback, epoch,
                         runner.trained_indices(view) if check_params else None)
