"""``Module``: binds a symbol to data shapes, owns parameters and optimizer, and trains.

Follows MXNet 1.x's ``mx.mod.Module`` (single device). Executors are created once per batch
size and share the parameter arrays, so a short last batch costs one extra bind, not a copy.
The loops over data (``fit``, ``run_epoch``, ``score``, ``predict``) are in
:mod:`sparsetrain.base_module`, the ``.params`` file format in :mod:`sparsetrain.params_file`.
"""
from __future__ import annotations

import logging

import numpy as np

from . import initializer as init_mod
from . import optimizer as opt_mod
from .base import ShapeError, SparseTrainError
from .base_module import BaseModule, BatchEndParam  # noqa: F401 (BatchEndParam: MXNet's place for it)
from .engines.base import ModuleView
from .fileio import write_changed
from .io.base import DataDesc
from .metric import update_metric
from .ndarray.ndarray import BaseArray, NDArray, RowSparseNDArray, cast_storage
from .params_file import load_params, save_params
from .symbol import Symbol, load as load_symbol

log = logging.getLogger("sparsetrain.module")


class ModuleStateError(SparseTrainError, RuntimeError):
    """A Module method was called before the step it depends on (bind, init_params, init_optimizer)."""


def _as_descs(shapes) -> list[DataDesc]:
    out = []
    for s in shapes or []:
        out.append(s if isinstance(s, DataDesc) else DataDesc(s[0], s[1]))
    return out


class Module(BaseModule):
    """Train and run a symbol (MXNet's ``mx.mod.Module`` on one CPU)."""

    def __init__(self, symbol: Symbol, data_names=("data",), label_names=("softmax_label",), context=None,
                 fixed_param_names=None, logger=None, work_load_list=None, state_names=None):
        args = symbol.list_arguments()
        data_names = list(data_names or [])
        label_names = [n for n in (label_names or []) if n in args]
        for n in data_names:
            if n not in args:
                raise ValueError(f"data name {n!r} is not an argument of the symbol; arguments are {args}")
        self._symbol = symbol
        self._data_names = data_names
        self._label_names = label_names
        self._fixed = set(fixed_param_names or [])
        self._param_names = [a for a in args if a not in data_names and a not in label_names]
        self._execs: dict[int, object] = {}
        self._exec = None
        self._sample_weight = None  # the last forward batch's DataBatch.sample_weight
        self._pending_params = None
        self._aux_params = None
        self._preload_opt_states = None
        self.binded = False
        self.for_training = False
        self.params_initialized = False
        self.optimizer_initialized = False
        self._optimizer = None
        self._updater = None
        self._kvstore = None
        self._data_shapes: list[DataDesc] = []
        self._label_shapes: list[DataDesc] = []
        self._engine_choice = ("graph", "not decided until training starts")
        self._engine_state: dict = {}  # engines keep prepared objects here per binding (ModuleView.engine_state)

    # -- description ----------------------------------------------------------------------------
    @property
    def symbol(self) -> Symbol:
        return self._symbol

    @property
    def data_names(self):
        return list(self._data_names)

    @property
    def label_names(self):
        return list(self._label_names)

    @property
    def output_names(self):
        return self._symbol.list_outputs()

    @property
    def data_shapes(self):
        return list(self._data_shapes)

    @property
    def label_shapes(self):
        return list(self._label_shapes)

    @property
    def output_shapes(self):
        self._require("binded")
        plan = self._exec.plan
        return [(name, plan.shapes[(n.uid, i)]) for name, (n, i) in zip(self.output_names, self._symbol._outputs)]

    @property
    def engine_choice(self) -> tuple[str, str]:
        """``(engine, reason)`` of the last ``run_epoch`` (or of ``choose_engine``)."""
        return self._engine_choice

    def view(self) -> ModuleView:
        """What an engine needs of this bound module (names, shared arrays, stypes, optimizer)."""
        self._require("binded")
        ex = self._exec
        plan = ex.plan
        grads = ex.grad_dict
        return ModuleView(
            self._symbol, tuple(self._data_names), tuple(self._label_names), tuple(self._param_names),
            ex.arg_dict, {n.name: plan.stypes[(n.uid, 0)] for n in plan.args},
            {n: (grads[n].stype if grads.get(n) is not None else None) for n in self._param_names},
            grads, self._optimizer, self._updater, self._engine_state)

    def _require(self, *flags):
        steps = {"binded": "bind()", "params_initialized": "init_params()",
                 "optimizer_initialized": "init_optimizer()"}
        for flag in flags:
            if not getattr(self, flag):
                raise ModuleStateError(f"call {steps[flag]} first")

    # -- binding ---------------------------------------------------------------------------------
    def bind(self, data_shapes, label_shapes=None, for_training=True, inputs_need_grad=False,
             force_rebind=False, shared_module=None, grad_req="write"):
        if self.binded and not force_rebind:
            log.warning("Module is already bound; ignoring bind() (pass force_rebind=True to rebind)")
            return
        self._data_shapes = _as_descs(data_shapes)
        self._label_shapes = _as_descs(label_shapes) if self._label_names else []
        given = [d.name for d in self._data_shapes]
        if sorted(given) != sorted(self._data_names):
            raise ShapeError(f"bind: data_shapes name {given}, but the module's data_names are {self._data_names}")
        self.for_training = for_training
        self._grad_req = {}
        for name in self._symbol.list_arguments():
            if name in self._param_names and name not in self._fixed and for_training:
                self._grad_req[name] = grad_req if isinstance(grad_req, str) else grad_req.get(name, "write")
            elif name in self._data_names and inputs_need_grad:
                self._grad_req[name] = "write"
            else:
                self._grad_req[name] = "null"
        self._execs = {}
        self._engine_state = {}  # what an engine prepared was for the old binding's graph, stypes and arrays
        self._exec = self._bind_for(self._data_shapes, self._label_shapes)
        self.binded = True
        if self._pending_params is not None and self.params_initialized:
            self._copy_params_into_exec()

    def _bind_for(self, data_shapes, label_shapes):
        shapes = {d.name: d.shape for d in data_shapes}
        shapes.update({d.name: d.shape for d in label_shapes})
        types = {d.name: d.dtype for d in data_shapes + label_shapes if getattr(d, "dtype", None) is not None}
        from .symbol.graph import BindError

        try:
            ex = self._symbol.simple_bind(grad_req=self._grad_req, type_dict=types, **shapes)
        except BindError:
            raise
        except ShapeError as e:
            err = ShapeError(f"bind: the data/label shapes {shapes} contradict the symbol: {e}")
            err.detail = str(e)  # (what fit tells a user about the data file)
            raise err from None
        if self._execs:  # share parameters with the first executor
            first = next(iter(self._execs.values()))
            for name in self._param_names:
                ex.set_input(name, first.arg_dict[name])
        batch = data_shapes[0].shape[0] if data_shapes and data_shapes[0].shape else 0
        self._execs[batch] = ex
        return ex

    def _exec_for_batch(self, batch):
        n = batch.data[0].shape[0]
        ex = self._execs.get(n)
        if ex is None:
            data = [DataDesc(d.name, (n,) + tuple(d.shape[1:]), getattr(d, "dtype", np.float32))
                    for d in self._data_shapes]
            label = [DataDesc(d.name, (n,) + tuple(d.shape[1:]), getattr(d, "dtype", np.float32))
                     for d in self._label_shapes]
            ex = self._bind_for(data, label)
        return ex

    # -- parameters --------------------------------------------------------------------------------
    @property
    def _arg_params(self):
        """MXNet's attribute: the bound parameter arrays once initialized (live, not copies);
        before that, the parameters waiting to be copied in at bind (``load``/``set_params``)."""
        if self.params_initialized and self._exec is not None:
            return {n: self._exec.arg_dict[n] for n in self._param_names}
        return self._pending_params

    def init_params(self, initializer=None, arg_params=None, aux_params=None, allow_missing=False,
                    force_init=False, allow_extra=False):
        self._require("binded")
        if self.params_initialized and not force_init:
            log.warning("Parameters already initialized; ignoring init_params() (force_init=True re-initializes)")
            return
        initializer = init_mod.create(init_mod.DEFAULT) if initializer is None else initializer
        if isinstance(initializer, (str, dict)):
            initializer = init_mod.create(initializer)
        arg_params = arg_params if arg_params is not None else self._pending_params
        if arg_params and not allow_extra:
            extra = [k for k in arg_params if k not in self._param_names and k not in self._data_names
                     and k not in self._label_names]
            if extra:
                raise ValueError(f"init_params: arg_params has unknown parameter(s) {extra}; "
                                 f"the module's parameters are {self._param_names} (allow_extra=True ignores them)")
        attrs = {n.name: n.attrs for n in self._exec.plan.args}
        for name in self._param_names:
            arr = self._exec.arg_dict[name]
            if arg_params and name in arg_params:
                _assign_param(name, arr, arg_params[name])
            elif arg_params and not allow_missing:
                raise ValueError(f"init_params: {name!r} is missing from arg_params "
                                 "(allow_missing=True initializes it)")
            else:
                initializer(init_mod.InitDesc(name, attrs.get(name, {})), arr)
        self.params_initialized = True
        self._pending_params = None

    def _copy_params_into_exec(self):
        for name in self._param_names:
            if name in self._pending_params:
                _assign_param(name, self._exec.arg_dict[name], self._pending_params[name])

    def get_params(self):
        return ({n: a.copy() for n, a in self._current_params().items()}, {})

    def _current_params(self) -> dict:
        """The executor's parameter arrays themselves (not copies), the kvstore's values pulled first."""
        self._require("binded", "params_initialized")
        if self._kvstore is not None and self.optimizer_initialized:
            self._pull_all()
        return {n: self._exec.arg_dict[n] for n in self._param_names}

    def set_params(self, arg_params, aux_params=None, allow_missing=False, force_init=True, allow_extra=False):
        self.init_params(initializer=None, arg_params=arg_params, aux_params=aux_params,
                         allow_missing=allow_missing, force_init=force_init, allow_extra=allow_extra)

    def save_params(self, fname):
        save_params(fname, self._current_params(), {})

    def load_params(self, fname):
        arg, aux = load_params(fname)
        self.set_params(arg, aux)

    # -- optimizer -----------------------------------------------------------------------------
    def init_optimizer(self, kvstore="local", optimizer="sgd", optimizer_params=(("learning_rate", 0.01),),
                       force_init=False):
        self._require("binded", "params_initialized")
        if self.optimizer_initialized and not force_init:
            log.warning("optimizer already initialized; ignoring init_optimizer()")
            return
        kv = None
        if isinstance(kvstore, str) and kvstore not in ("local", "device"):
            from . import kvstore as kv_mod

            kv = kv_mod.create(kvstore)
        elif kvstore is not None and not isinstance(kvstore, str):
            if not hasattr(kvstore, "push"):
                raise ValueError(f"kvstore must be 'local', 'dist_sync', 'dist_async' or a KVStore, got {kvstore!r}")
            kv = kvstore
        batch_size = self._data_shapes[0].shape[0] if self._data_shapes else 1
        # as MXNet: a synchronous store sums the gradients of all workers per step
        sync_workers = kv.num_workers if kv is not None and "dist" in kv.type and "_sync" in kv.type else 1
        idx2name = dict(enumerate(self._param_names))
        if isinstance(optimizer, str):
            params = dict(optimizer_params or {})
            params.setdefault("rescale_grad", opt_mod.default_rescale_grad(batch_size, sync_workers))
            # As MXNet: with a name, the optimizer learns the parameter names, and names ending in
            # neither ``_weight`` nor ``_gamma`` get wd_mult = 0, and the symbol's ``__lr_mult__`` /
            # ``__wd_mult__`` attributes apply; an optimizer object keeps its own.
            optimizer = opt_mod.create(optimizer, param_idx2name=idx2name, sym=self._symbol, **params)
        elif hasattr(optimizer, "idx2name") and not optimizer.idx2name:
            optimizer.idx2name = idx2name
        self._optimizer = optimizer
        self._updater = opt_mod.get_updater(optimizer)
        self._kvstore = kv
        if kv is not None:  # MXNet's update_on_kvstore: the store holds the weights and the optimizer
            args = self._exec.arg_dict
            kv.init(list(range(len(self._param_names))), [args[n] for n in self._param_names])
            kv.set_optimizer(optimizer)
            self._pull_dense()
        self.optimizer_initialized = True
        if self._preload_opt_states is not None:
            self._updater.set_states(*self._preload_opt_states)
            self._preload_opt_states = None

    @property
    def optimizer(self):
        return self._optimizer

    def save_optimizer_states(self, fname):
        self._require("optimizer_initialized")
        self._updater.save_states(fname)

    def load_optimizer_states(self, fname):
        """Restore states written by :meth:`save_optimizer_states` (data only: never unpickled)."""
        self._require("optimizer_initialized")
        with open(fname, "rb") as f:
            self._updater.set_states(f.read(), source=fname)

    # -- computation ---------------------------------------------------------------------------
    def forward(self, data_batch, is_train=None):
        if not self.params_initialized:  # checked per step: keep the common path to one test
            self._require("binded", "params_initialized")
        is_train = self.for_training if is_train is None else is_train
        ex = self._execs.get(data_batch.data[0].shape[0]) or self._exec_for_batch(data_batch)
        self._exec = ex
        _feed(ex, self._data_names, data_batch.data, "data")
        if self._label_names and data_batch.label:
            _feed(ex, self._label_names, data_batch.label, "label")
        # the batch's importance weights, used by backward and update_metric (DataBatch.sample_weight)
        self._sample_weight = getattr(data_batch, "sample_weight", None)
        ex.forward(is_train=is_train)

    def backward(self, out_grads=None):
        """Gradients of the last forward batch; its ``sample_weight`` (if any) scales each row's loss gradient."""
        if not self.params_initialized:
            self._require("binded", "params_initialized")
        self._exec.backward(out_grads, sample_weight=self._sample_weight)

    # -- kvstore (MXNet's _update_params_on_kvstore / prepare) ----------------------------------------
    @property
    def kvstore(self):
        return self._kvstore

    def _pull_dense(self):
        args = self._exec.arg_dict
        keys = [i for i, n in enumerate(self._param_names) if args[n].stype == "default"]
        if keys:
            self._kvstore.pull(keys, [args[self._param_names[i]] for i in keys])

    def _default_row_ids(self, batch) -> dict:
        """Rows of each row_sparse weight a batch needs: the csr data's columns when the weight's
        first dimension is the feature count, else every row."""
        data = batch.data[0]
        cols = np.unique(data._indices) if getattr(data, "stype", None) == "csr" else None
        out = {}
        for name in self._param_names:
            w = self._exec.arg_dict[name]
            if w.stype == "row_sparse":
                use = cols is not None and w.shape[0] == data.shape[1]
                out[name] = cols if use else np.arange(w.shape[0], dtype=np.int64)
        return out

    def prepare(self, data_batch, sparse_row_id_fn=None):
        """Pull from the kvstore the rows of the row_sparse weights ``data_batch`` needs.

        ``sparse_row_id_fn(batch) -> {param name: row ids}`` (MXNet); ``None`` pulls the csr
        columns of the batch (see ``_default_row_ids``). A no-op without a kvstore."""
        if self._kvstore is None:
            return
        wanted = (sparse_row_id_fn or self._default_row_ids)(data_batch)
        keys, outs, ids = [], [], []
        for name, rows in wanted.items():
            keys.append(self._param_names.index(name))
            arg = self._exec.arg_dict[name]
            outs.append(RowSparseNDArray(np.zeros((0,) + tuple(arg.shape[1:]), arg.dtype), np.zeros(0, np.int64),
                                         arg.shape))
            ids.append(rows)
        if not keys:
            return
        self._kvstore.row_sparse_pull(keys, outs, row_ids=ids)
        for name, pulled in zip(wanted, outs):
            buf = opt_mod.weight_buffer(self._exec.arg_dict[name])  # full rows, written in place
            buf[pulled._indices] = pulled._data

    def _pull_all(self):
        """Every row of every parameter from the kvstore into the executor (for get_params)."""
        args = self._exec.arg_dict
        self._pull_dense()
        sparse = [i for i, n in enumerate(self._param_names) if args[n].stype == "row_sparse"]
        if sparse:
            rows = [np.arange(args[self._param_names[i]].shape[0], dtype=np.int64) for i in sparse]
            self.prepare(None, lambda _: {self._param_names[i]: r for i, r in zip(sparse, rows)})

    def update(self):
        self._require("binded", "params_initialized", "optimizer_initialized")
        grads = self._exec.grad_dict
        args = self._exec.arg_dict
        if self._kvstore is not None:
            keys = [i for i, n in enumerate(self._param_names) if grads.get(n) is not None]
            self._kvstore.push(keys, [grads[self._param_names[i]] for i in keys])
            self._pull_dense()
            return
        updater = self._updater
        for i, name in enumerate(self._param_names):
            g = grads.get(name)
            if g is not None:
                updater(i, g, args[name])

    def get_outputs(self, merge_multi_context=True):
        self._require("binded")
        return list(self._exec.outputs)

    def get_input_grads(self, merge_multi_context=True):
        return [self._exec.grad_dict[n] for n in self._data_names]

    def update_metric(self, eval_metric, labels, pre_sliced=False):
        """Add the last forward batch to ``eval_metric`` (weighted by its ``sample_weight``, if any)."""
        update_metric(eval_metric, labels, self._exec.outputs, self._sample_weight)

    # -- checkpoints --------------------------------------------------------------------------
    def save_checkpoint(self, prefix, epoch, save_optimizer_states=False):
        """Write ``prefix-symbol.json``, ``prefix-%04d.params`` (and ``.states``), each atomically."""
        write_changed(f"{prefix}-symbol.json", self._symbol.tojson().encode())
        self.save_params(f"{prefix}-{epoch:04d}.params")
        if save_optimizer_states:
            self.save_optimizer_states(f"{prefix}-{epoch:04d}.states")

    @staticmethod
    def load(prefix, epoch, load_optimizer_states=False, **kwargs) -> "Module":
        sym = load_symbol(f"{prefix}-symbol.json")
        mod = Module(sym, **kwargs)
        mod._pending_params, mod._aux_params = load_params(f"{prefix}-{epoch:04d}.params")
        mod.params_initialized = False
        if load_optimizer_states:
            from .optimizer_states import loads

            path = f"{prefix}-{epoch:04d}.states"
            with open(path, "rb") as f:
                blob = f.read()
            loads(blob, path)  # refuse a pickled or corrupt file now, before any training
            mod._preload_opt_states = (blob, path)
        return mod


def _assign_param(name, target: BaseArray, value: BaseArray):
    if tuple(value.shape) != tuple(target.shape):
        raise ShapeError(f"parameter {name!r}: cannot load shape {tuple(value.shape)} into {tuple(target.shape)}")
    if target.stype == "row_sparse" and value.stype == "row_sparse":
        target._data = np.array(value._data, dtype=target.dtype)
        target._indices = value._ids_copy()
    else:
        target[:] = value if value.stype == target.stype else cast_storage(value, target.stype)


def _feed(ex, names, arrays, what):
    if len(arrays) != len(names):
        raise ShapeError(f"forward: the batch has {len(arrays)} {what} array(s) for {what} names {names}")
    for name, value in zip(names, arrays):
        current = ex.arg_dict[name]
        if not isinstance(value, BaseArray):
            value = NDArray(np.asarray(value, dtype=current.dtype))
        if value.stype == current.stype and value.shape == current.shape and value.dtype == current.dtype:
            ex.arg_dict[name] = value  # what Executor.set_input does, minus the checks just made
            ex._values[ex._arg_slot[name]] = value
        elif value.size == current.size and value.stype == "default" == current.stype:
            ex.set_input(name, NDArray(value._data.reshape(current.shape).astype(current.dtype, copy=False)))
        else:
            try:
                current[:] = value
            except ShapeError:
                raise ShapeError(
                    f"forward: {what} {name!r} has shape {tuple(value.shape)} but the module was bound with "
                    f"{tuple(current.shape)}") from None
