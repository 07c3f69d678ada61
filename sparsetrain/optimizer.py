"""Optimizers with lazy row-sparse updates, following ``mxnet.optimizer`` (MXNet 1.x).

``SGD``, ``AdaGrad``, ``Adam`` and ``FTRL`` (alias ``Ftrl``) keep MXNet's names, defaults and
formulas; the arithmetic lives once, in the scalar step functions of :mod:`sparsetrain.kernels.optim`
(with their numpy references in :mod:`sparsetrain.kernels.optim_reference`), which the fused
epoch loops of the compiled engine call too.

How ``update(index, weight, grad, state)`` treats storage types (weight and states are updated
in place, because the executor holds these objects):

* ``grad`` row_sparse and the optimizer lazy (``SGD``/``Adam`` with ``lazy_update=True``, always
  for ``AdaGrad``/``FTRL``): only the rows of ``grad.indices`` of the weight and of every state
  are touched — weight decay and momentum included — in O(rows in the gradient). This holds for
  a dense weight too (as MXNet's ``lazy_update`` does for SGD/Adam/AdaGrad; for FTRL MXNet would
  fall back to a dense update — we stay lazy).
* ``grad`` row_sparse with ``lazy_update=False``: the standard update over every row, absent rows
  having a zero gradient (O(all rows)).
* ``grad`` dense: the standard update over the whole array.

Row-sparse weights are stored in full (every row present, ``indices == arange(D)``), as MXNet's
initialisers leave them; a row-sparse weight that is not full is made full (absent rows are
zeros) the first time it is updated. States are dense ``NDArray``\\ s of the weight's full shape.

``clip_gradient``: ``None``, ``0`` and negative values all disable clipping (MXNet forwards only a
truthy value and its kernels ignore negative ones).

``param_idx2name`` follows MXNet: when given, parameters whose names end neither in ``_weight``
nor in ``_gamma`` get ``wd_mult = 0`` unless ``set_wd_mult`` says otherwise.
"""
from __future__ import annotations

import warnings

import numpy as np
from numba.core.errors import TypingError

from .base import SparseTrainError, StorageTypeError
from .kernels import optim as K
from .ndarray import INDEX_DTYPE, BaseArray, NDArray, RowSparseNDArray

__all__ = [
    "Optimizer", "SGD", "AdaGrad", "Adam", "FTRL", "Ftrl", "Updater", "get_updater", "create", "register",
    "default_rescale_grad", "weight_buffer", "state_buffer", "state_to_numpy", "state_from_numpy",
]


def default_rescale_grad(batch_size: int, sync_workers: int = 1) -> float:
    """MXNet's default gradient scale: one over the examples summed into one update (a batch on
    each of ``sync_workers`` workers whose gradients a synchronous store adds up)."""
    return 1.0 / (batch_size * sync_workers)


# -- storage helpers -------------------------------------------------------------------------

def _make_full(weight: RowSparseNDArray) -> None:
    """Give a row-sparse weight every row (absent rows become zeros), in place."""
    full = np.zeros(weight.shape, dtype=weight._data.dtype)
    full[weight._indices] = weight._data
    weight._data = full
    weight._indices = np.arange(weight.shape[0], dtype=INDEX_DTYPE)


def weight_buffer(weight) -> np.ndarray:
    """The dense numpy buffer behind ``weight`` that an update writes into (in place); a
    row-sparse weight missing rows is made full first (absent rows are zeros)."""
    if type(weight) is NDArray:
        return weight._data
    if isinstance(weight, RowSparseNDArray):
        if weight._data.shape[0] != weight._shape[0]:
            _make_full(weight)
        return weight._data
    if isinstance(weight, np.ndarray):
        return weight
    if isinstance(weight, BaseArray) and weight.stype == "default":
        return weight._data
    raise StorageTypeError(
        f"cannot update a weight of storage type {getattr(weight, 'stype', type(weight).__name__)!r}; "
        "expected 'default' or 'row_sparse'"
    )


def _grad_parts(grad):
    """``(rows, values)`` of a row-sparse gradient, or ``(None, values)`` of a dense one."""
    cls = type(grad)
    if cls is RowSparseNDArray:
        return grad._indices, grad._data
    if cls is NDArray:
        return None, grad._data
    if isinstance(grad, np.ndarray):
        return None, grad
    if isinstance(grad, BaseArray) and grad.stype in ("default", "row_sparse"):
        return (grad._indices if grad.stype == "row_sparse" else None), grad._data
    raise StorageTypeError(
        f"cannot apply a gradient of storage type {getattr(grad, 'stype', type(grad).__name__)!r}; "
        "expected 'default' or 'row_sparse'"
    )


def state_buffer(state) -> np.ndarray:
    """The numpy buffer of one state array (an ``NDArray`` or a full row-sparse array), written in place."""
    return state._data if type(state) is NDArray else weight_buffer(state)


def _densify(shape, rows, values) -> np.ndarray:
    dense = np.zeros(shape, dtype=values.dtype)
    dense[rows] = values
    return dense


def _zeros_like_weight(weight) -> NDArray:
    dtype = weight.dtype if getattr(weight, "stype", None) == "csr" else weight_buffer(weight).dtype
    return NDArray(np.zeros(weight.shape, dtype=dtype))


def _check_layout(weight, grad_values) -> None:
    w = weight_buffer(weight)
    if not w.flags.c_contiguous:
        raise StorageTypeError("optimizer updates need a C-contiguous weight buffer")
    if grad_values.dtype.kind != "f" or w.dtype.kind != "f":
        raise StorageTypeError(
            f"optimizer updates need floating-point weight and gradient, got {w.dtype} and {grad_values.dtype}"
        )


# -- base class --------------------------------------------------------------------------------

class Optimizer:
    """Base class of the optimizers (MXNet's ``mx.optimizer.Optimizer``).

    Parameters
    ----------
    rescale_grad : float
        Gradients are multiplied by this before anything else (usually ``1/batch_size``).
    param_idx2name : dict[int, str], optional
        Parameter names by update index; drives the default ``wd_mult`` (see module doc).
    wd : float
        Weight decay (L2) coefficient.
    clip_gradient : float, optional
        Clip the rescaled gradient to ``[-clip_gradient, clip_gradient]`` (``None``/``≤0``: off).
    learning_rate : float, optional
        Initial learning rate (0.01 unless the subclass or ``lr_scheduler`` says otherwise).
    lr_scheduler : LRScheduler, optional
        Learning-rate schedule; ``learning_rate`` overrides its ``base_lr`` when both are given.
    sym : Symbol, optional
        Used for the ``__lr_mult__`` / ``__wd_mult__`` attributes of its arguments.
    begin_num_update : int
        Update count to start from.
    multi_precision : bool
        A float16 weight is updated through a float32 master copy kept in its state (MXNet's rule).
    param_dict : dict, optional
        ``index -> object`` with ``lr_mult``/``wd_mult`` attributes (Gluon-style parameters).
    """

    opt_registry: dict[str, type] = {}

    def __init__(self, rescale_grad=1.0, param_idx2name=None, wd=0.0, clip_gradient=None,
                 learning_rate=None, lr_scheduler=None, sym=None, begin_num_update=0,
                 multi_precision=False, param_dict=None):
        self.rescale_grad = rescale_grad
        self.lr_scheduler = lr_scheduler
        if lr_scheduler is None and learning_rate is None:
            learning_rate = 0.01
        self.lr = learning_rate
        if lr_scheduler is not None and learning_rate is not None and lr_scheduler.base_lr != learning_rate:
            warnings.warn(
                "learning rate from ``lr_scheduler`` has been overwritten by ``learning_rate`` in optimizer.",
                UserWarning, stacklevel=3,
            )
            lr_scheduler.base_lr = learning_rate
            lr_scheduler.warmup_final_lr = learning_rate
        self.wd = wd
        self.lr_mult: dict = {}
        self.wd_mult: dict = {}
        self.begin_num_update = begin_num_update
        self.num_update = begin_num_update
        self._index_update_count: dict = {}
        self.clip_gradient = clip_gradient
        self.multi_precision = multi_precision
        if param_idx2name is None:
            param_idx2name = {}
        if not isinstance(param_idx2name, dict):
            raise TypeError("param_idx2name should be a dict of param indexes to names.")
        self.idx2name = param_idx2name.copy()
        self.sym_info = ()
        if sym is not None:
            attr_dict = getattr(sym, "attr_dict", None)
            self.sym_info = (attr_dict() if callable(attr_dict) else {}, sym.list_arguments())
        self.param_dict = param_dict if param_dict else {}
        self.set_lr_mult({})
        self.set_wd_mult({})

    # -- registry ----------------------------------------------------------------------------
    @staticmethod
    def register(klass):
        """Register an optimizer class under its lower-cased name (for :func:`create`)."""
        if not isinstance(klass, type):
            raise TypeError("register expects a class")
        name = klass.__name__.lower()
        if name in Optimizer.opt_registry and Optimizer.opt_registry[name] is not klass:
            warnings.warn(
                f"New optimizer {klass.__module__}.{klass.__name__} is overriding existing optimizer "
                f"{Optimizer.opt_registry[name].__module__}.{Optimizer.opt_registry[name].__name__}",
                stacklevel=2,
            )
        Optimizer.opt_registry[name] = klass
        return klass

    @staticmethod
    def create_optimizer(name, **kwargs):
        """An optimizer by (case-insensitive) registered name: ``'sgd'``, ``'adagrad'``, ``'adam'``, ``'ftrl'``."""
        key = name.lower()
        if key not in Optimizer.opt_registry:
            known = ", ".join(sorted(Optimizer.opt_registry))
            raise ValueError(f"Cannot find optimizer {name!r}; known optimizers: {known}")
        return Optimizer.opt_registry[key](**kwargs)

    # -- learning rate -----------------------------------------------------------------------
    @property
    def learning_rate(self):
        if self.lr_scheduler is not None:
            return self.lr_scheduler(self.num_update)
        return self.lr

    def set_learning_rate(self, lr):
        """Set a new learning rate (not allowed when an ``lr_scheduler`` drives it)."""
        if self.lr_scheduler is not None:
            raise UserWarning(
                "LRScheduler of the optimizer has already been defined. Note that set_learning_rate "
                "can mutate the value of the learning rate of the optimizer only when the LRScheduler "
                "of the optimizer is undefined."
            )
        self.lr = lr

    def set_lr_mult(self, args_lr_mult):
        """Per-parameter learning-rate multipliers, by name or index (symbol ``__lr_mult__`` attributes first)."""
        self.lr_mult = self._symbol_mults("__lr_mult__")
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult):
        """Per-parameter weight-decay multipliers (0 for names not ending in ``_weight``/``_gamma``)."""
        self.wd_mult = {n: 0.0 for n in self.idx2name.values() if not (n.endswith("_weight") or n.endswith("_gamma"))}
        self.wd_mult.update(self._symbol_mults("__wd_mult__"))
        self.wd_mult.update(args_wd_mult)

    def _symbol_mults(self, key: str) -> dict:
        """``{argument name: float(attr[key])}`` from the symbol's attributes (``sym_info``)."""
        if not self.sym_info:
            return {}
        attr, arg_names = self.sym_info
        return {name: float(attr[name][key]) for name in arg_names if name in attr and key in attr[name]}

    def _update_count(self, index):
        count = self._index_update_count.get(index, self.begin_num_update) + 1
        self._index_update_count[index] = count
        if count > self.num_update:
            self.num_update = count

    def _count_lr_wd(self, index):
        """``_update_count(index)`` then ``(_get_lr(index), _get_wd(index))``, in one cheap call."""
        count = self._index_update_count.get(index, self.begin_num_update) + 1
        self._index_update_count[index] = count
        if count > self.num_update:
            self.num_update = count
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        if self.lr_mult or self.wd_mult or self.param_dict or self.idx2name:
            return lr * self._lr_mult_of(index), self._get_wd(index)
        return lr, self.wd

    def _lr_mult_of(self, index) -> float:
        if index in self.param_dict:
            return self.param_dict[index].lr_mult
        if index in self.lr_mult:
            return self.lr_mult[index]
        if index in self.idx2name:
            return self.lr_mult.get(self.idx2name[index], 1.0)
        return 1.0

    def _get_lr(self, index):
        lr = self.lr_scheduler(self.num_update) if self.lr_scheduler is not None else self.lr
        if self.lr_mult or self.param_dict or self.idx2name:
            lr *= self._lr_mult_of(index)
        return lr

    def _get_wd(self, index):
        wd = self.wd
        if index in self.param_dict:
            wd *= self.param_dict[index].wd_mult
        elif index in self.wd_mult:
            wd *= self.wd_mult[index]
        elif index in self.idx2name:
            wd *= self.wd_mult.get(self.idx2name[index], 1.0)
        return wd

    # -- states and updates ------------------------------------------------------------------
    def create_state(self, index, weight):
        """The auxiliary state of one weight (``None`` when the optimizer keeps none)."""
        return None

    # where the float32 master copy sits in a multi-precision state (MXNet: first; SGD: last)
    _master_first = True

    def create_state_multi_precision(self, index, weight):
        """As MXNet: with ``multi_precision`` a float16 weight gets a float32 master copy, and the
        state is ``(master, create_state(index, master))`` (SGD: the other way round)."""
        if self.multi_precision and weight.dtype == np.float16:
            master = weight.astype(np.float32)
            state = (master, self.create_state(index, master))
            return state if self._master_first else state[::-1]
        return self.create_state(index, weight)

    def update(self, index, weight, grad, state):
        """Update ``weight`` (and ``state``) in place from ``grad``."""
        raise NotImplementedError()

    def update_multi_precision(self, index, weight, grad, state):
        if self.multi_precision and weight.dtype == np.float16:
            # update the float32 master copy, then store it back in float16 (MXNet's wrapper)
            master, inner = state if self._master_first else state[::-1]
            self.update(index, master, grad.astype(np.float32), inner)
            weight[:] = master.astype(np.float16)
            return
        if "csr" in (getattr(weight, "stype", None), getattr(grad, "stype", None)):
            # MXNet's storage fallback: update a dense copy, then store it in the weight's stype
            dense = weight.tostype("default").copy()
            self.update(index, dense, grad.tostype("default"), state)
            weight[:] = dense
            return
        self.update(index, weight, grad, state)

    def _is_lazy(self) -> bool:
        return True

    # -- hooks for fused (compiled) epoch loops ----------------------------------------------
    def fused_spec(self):
        """``(kind, hyper)`` for :func:`sparsetrain.kernels.optim.apply_rows` / ``apply_flat``.

        Raises ``NotImplementedError`` when the optimizer cannot run inside a fused kernel.
        """
        raise NotImplementedError(f"{type(self).__name__} has no fused kernel")

    def lazy_equals_dense(self, index) -> bool:
        """Whether a lazy row update equals the dense update for parameter ``index``.

        True when a zero gradient leaves a row (and its states) unchanged, so restricting the
        update to the gradient's rows changes nothing.
        """
        return False

    def scheduled_learning_rates(self, indices, num_steps, compact=False) -> np.ndarray:
        """Learning rates of the next ``num_steps`` rounds of updates of ``indices`` (in that order).

        Returns ``(num_steps, len(indices))`` float64, multipliers included — exactly what
        ``_get_lr`` would return if ``update`` were called for each index in turn, each round;
        with ``compact`` and no ``lr_scheduler``, the single row ``(1, len(indices))``.
        The optimizer and its scheduler are not changed; call :meth:`advance_update_counts`
        after the updates were applied.
        """
        indices = list(indices)
        if compact and self.lr_scheduler is None:
            mults = [self._lr_mult_of(i) for i in indices] if (self.lr_mult or self.param_dict or self.idx2name) \
                else [1.0] * len(indices)
            return np.array([[self.lr * m for m in mults]], dtype=np.float64)
        counts = np.array([self._index_update_count.get(i, self.begin_num_update) for i in indices], np.int64)
        steps = np.arange(1, num_steps + 1, dtype=np.int64)[:, None]
        running = np.maximum.accumulate(counts)[None, :] + steps  # max over params updated so far this round
        if len(indices):
            running = np.maximum(running, (counts.max() + steps - 1))  # ... and in earlier rounds
        nu = np.maximum(running, self.num_update).reshape(-1)
        if self.lr_scheduler is not None:
            base = self.lr_scheduler.learning_rates(nu)
        else:
            base = np.full(nu.shape[0], self.lr, dtype=np.float64)
        lrs = base.reshape(num_steps, len(indices))
        if self.lr_mult or self.param_dict or self.idx2name:
            lrs = lrs * np.array([self._lr_mult_of(i) for i in indices], dtype=np.float64)[None, :]
        return np.ascontiguousarray(lrs)

    def advance_update_counts(self, indices, num_steps) -> None:
        """Record ``num_steps`` rounds of updates of ``indices`` done outside :meth:`update`."""
        if num_steps <= 0:
            return
        old = self.num_update
        for i in indices:
            count = self._index_update_count.get(i, self.begin_num_update) + num_steps
            self._index_update_count[i] = count
            self.num_update = max(self.num_update, count)
        if self.lr_scheduler is not None:
            # bring a stateful scheduler to where per-step calls would have left it
            advance = getattr(self.lr_scheduler, "advance", None)
            if advance is not None:
                advance(old, self.num_update)
            else:
                self.lr_scheduler(self.num_update)


register = Optimizer.register
create = Optimizer.create_optimizer


def _hyper(opt, **kw) -> np.ndarray:
    clip = opt.clip_gradient if opt.clip_gradient else None
    return K.make_hyper(rescale_grad=opt.rescale_grad, clip_gradient=clip, **kw)


def _clip_arg(opt) -> float:
    c = opt.clip_gradient
    return float(c) if c else -1.0


# -- SGD ---------------------------------------------------------------------------------------

@register
class SGD(Optimizer):
    """Stochastic gradient descent with momentum and weight decay (MXNet's ``SGD``).

    ``m = momentum*m - lr*wd*w - lr*prep(g); w += m`` (no momentum: ``w = (1-lr*wd)*w - lr*prep(g)``).

    Parameters
    ----------
    momentum : float
        Momentum; the state exists only when it is non-zero.
    lazy_update : bool
        With a row-sparse gradient, update only its rows (default), else every row.
    """

    _master_first = False

    def __init__(self, momentum=0.0, lazy_update=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.lazy_update = lazy_update

    def create_state(self, index, weight):
        if self.momentum != 0.0:
            return _zeros_like_weight(weight)
        return None

    def _is_lazy(self):
        return self.lazy_update

    def update(self, index, weight, grad, state):
        lr, wd = self._count_lr_wd(index)
        w = weight_buffer(weight)
        rows, values = _grad_parts(grad)
        if rows is not None and not self.lazy_update:
            rows, values = None, _densify(w.shape, rows, values)
        momentum = self.momentum if self.momentum > 0 else 0.0
        clip = _clip_arg(self)
        while True:
            try:
                if state is None:
                    if rows is None:
                        K.sgd_update(w, values, lr, wd, self.rescale_grad, clip)
                    else:
                        K.sgd_update_rows(w, rows, values, lr, wd, self.rescale_grad, clip)
                else:
                    mom = state_buffer(state)
                    if rows is None:
                        K.sgd_mom_update(w, mom, values, lr, wd, momentum, self.rescale_grad, clip)
                    else:
                        K.sgd_mom_update_rows(w, mom, rows, values, lr, wd, momentum, self.rescale_grad, clip)
                return
            except TypingError:
                values = _retry_values(weight, values)

    def fused_spec(self):
        if self.momentum != 0.0:
            return K.KIND_SGD_MOM, _hyper(self, momentum=self.momentum if self.momentum > 0 else 0.0)
        return K.KIND_SGD, _hyper(self)

    def lazy_equals_dense(self, index):
        return self.momentum == 0.0 and self._get_wd(index) == 0.0


def _retry_values(weight, values):
    """After a numba typing error: a contiguous copy of a strided gradient, or a clear error."""
    _check_layout(weight, values)
    if not values.flags.c_contiguous:
        return np.ascontiguousarray(values)
    raise SparseTrainError(
        f"optimizer kernels cannot take a weight of dtype {weight_buffer(weight).dtype} "
        f"with a gradient of dtype {values.dtype} and shape {values.shape}"
    )


# -- AdaGrad -----------------------------------------------------------------------------------

@register
class AdaGrad(Optimizer):
    """AdaGrad (MXNet's ``AdaGrad``): ``h += prep(g)²; w += (prep(g)/sqrt(h + eps) + wd*w) * -lr``.

    Parameters
    ----------
    eps : float
        Added to the history under the square root (MXNet's ``float_stable_eps``), default 1e-7.
    """

    def __init__(self, eps=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index, weight):
        return _zeros_like_weight(weight)  # history

    def update(self, index, weight, grad, state):
        lr, wd = self._count_lr_wd(index)
        w = weight_buffer(weight)
        hist = state_buffer(state)
        rows, values = _grad_parts(grad)
        clip = _clip_arg(self)
        while True:
            try:
                if rows is None:
                    K.adagrad_update(w, hist, values, lr, wd, self.float_stable_eps, self.rescale_grad, clip)
                else:
                    K.adagrad_update_rows(w, hist, rows, values, lr, wd, self.float_stable_eps,
                                          self.rescale_grad, clip)
                return
            except TypingError:
                values = _retry_values(weight, values)

    def fused_spec(self):
        return K.KIND_ADAGRAD, _hyper(self, eps=self.float_stable_eps)

    def lazy_equals_dense(self, index):
        return self._get_wd(index) == 0.0


# -- Adam --------------------------------------------------------------------------------------

@register
class Adam(Optimizer):
    """Adam with MXNet's bias correction (``lr_t = lr*sqrt(1-β2^t)/(1-β1^t)``, ``t`` per parameter).

    The rescaled gradient plus ``wd*w`` is clipped (MXNet's order), then
    ``m = β1 m + (1-β1) r; v = β2 v + (1-β2) r²; w -= lr_t * m / (sqrt(v) + eps)``.
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, lazy_update=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update

    def create_state(self, index, weight):
        return (_zeros_like_weight(weight), _zeros_like_weight(weight))  # mean, variance

    def _is_lazy(self):
        return self.lazy_update

    def update(self, index, weight, grad, state):
        lr, wd = self._count_lr_wd(index)
        t = self._index_update_count[index]
        lr_t = K.adam_bias_corrected_lr(lr, self.beta1, self.beta2, t)
        w = weight_buffer(weight)
        mean, var = state_buffer(state[0]), state_buffer(state[1])
        rows, values = _grad_parts(grad)
        if rows is not None and not self.lazy_update:
            rows, values = None, _densify(w.shape, rows, values)
        clip = _clip_arg(self)
        while True:
            try:
                if rows is None:
                    K.adam_update(w, mean, var, values, lr_t, wd, self.beta1, self.beta2, self.epsilon,
                                  self.rescale_grad, clip)
                else:
                    K.adam_update_rows(w, mean, var, rows, values, lr_t, wd, self.beta1, self.beta2,
                                       self.epsilon, self.rescale_grad, clip)
                return
            except TypingError:
                values = _retry_values(weight, values)

    def fused_spec(self):
        return K.KIND_ADAM, _hyper(self, eps=self.epsilon, beta1=self.beta1, beta2=self.beta2)


# -- FTRL --------------------------------------------------------------------------------------

@register
class FTRL(Optimizer):
    """FTRL-proximal as MXNet's ``Ftrl`` (McMahan et al., *Ad Click Prediction*).

    ``z += prep(g) - (sqrt(n + prep(g)²) - sqrt(n)) * w / lr;  n += prep(g)²;
    w = (sign(z)*lamda1 - z) / ((beta + sqrt(n))/lr + wd) * (|z| > lamda1)``.

    Parameters
    ----------
    lamda1 : float
        L1 regularisation strength (MXNet's spelling), default 0.01.
    learning_rate : float
        Default 0.1.
    beta : float
        Per-coordinate learning-rate parameter, default 1.
    """

    def __init__(self, lamda1=0.01, learning_rate=0.1, beta=1, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.lamda1 = lamda1
        self.beta = beta

    def create_state(self, index, weight):
        return (_zeros_like_weight(weight), _zeros_like_weight(weight))  # z, n

    def update(self, index, weight, grad, state):
        lr, wd = self._count_lr_wd(index)
        w = weight_buffer(weight)
        z, n = state_buffer(state[0]), state_buffer(state[1])
        rows, values = _grad_parts(grad)
        clip = _clip_arg(self)
        while True:
            try:
                if rows is None:
                    K.ftrl_update(w, z, n, values, lr, wd, self.lamda1, self.beta, self.rescale_grad, clip)
                else:
                    K.ftrl_update_rows(w, z, n, rows, values, lr, wd, self.lamda1, self.beta,
                                       self.rescale_grad, clip)
                return
            except TypingError:
                values = _retry_values(weight, values)

    def fused_spec(self):
        return K.KIND_FTRL, _hyper(self, lamda1=self.lamda1, beta=self.beta)


Ftrl = FTRL


# -- Updater -----------------------------------------------------------------------------------

def state_to_numpy(state):
    """A state (``None``, an array or a tuple of them) as numpy arrays of the same structure."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(state_to_numpy(s) for s in state)
    if isinstance(state, BaseArray):
        return state.asnumpy()
    return np.array(state)


def state_from_numpy(state):
    """The inverse of :func:`state_to_numpy`: ``NDArray`` states from numpy arrays."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(state_from_numpy(s) for s in state)
    return NDArray(np.ascontiguousarray(state))


class Updater:
    """Applies an optimizer to parameters by index and keeps their states (MXNet's ``Updater``).

    ``updater(index, grad, weight)`` — note MXNet's argument order — creates the state of
    ``index`` on first use. ``get_states()``/``set_states()`` round-trip the states, the update
    counts (and optionally the optimizer's settings) through data-only bytes, for
    ``save_optimizer_states``.
    """

    def __init__(self, optimizer: Optimizer):
        self.optimizer = optimizer
        self.states: dict = {}
        self.states_synced: dict = {}

    def __call__(self, index, grad, weight):
        if isinstance(index, (list, tuple)):
            for i, g, w in zip(index, grad, weight):
                self._one(i, g, w)
        else:
            self._one(index, grad, weight)

    def _one(self, index, grad, weight):
        state = self.states.get(index, _MISSING)
        if state is _MISSING:
            state = self.optimizer.create_state_multi_precision(index, weight)
            self.states[index] = state
            self.states_synced[index] = True
        self.optimizer.update_multi_precision(index, weight, grad, state)

    def sync_state_context(self, state, context):
        """States live on the CPU only; returned unchanged."""
        return state

    def get_states(self, dump_optimizer=False) -> bytes:
        """The states as data-only bytes (:mod:`sparsetrain.optimizer_states`): the arrays, the
        optimizer's update counts and scheduler position, and with ``dump_optimizer`` its settings."""
        from . import optimizer_states as F

        states = {k: state_to_numpy(v) for k, v in self.states.items()}
        return F.dumps(states, F.optimizer_progress(self.optimizer),
                       F.optimizer_config(self.optimizer) if dump_optimizer else None)

    def set_states(self, states: bytes, source: str = "optimizer states") -> None:
        """Restore what :meth:`get_states` returned; existing state objects are refilled in place.

        The update counts and the scheduler's position are restored too (exact resume); an
        optimizer saved with ``dump_optimizer`` replaces this one. ``source`` names the file in
        errors. Never unpickles: an old pickled file raises :class:`~sparsetrain.base.DataFormatError`.
        """
        from . import optimizer_states as F

        loaded, progress, config = F.loads(states, source)
        if config is not None:
            self.optimizer = F.optimizer_from_config(config, self.optimizer, source)
        if progress is not None:
            F.restore_progress(self.optimizer, progress, source)
        for index, value in loaded.items():
            current = self.states.get(index, _MISSING)
            if current is not _MISSING and _refill(current, value):
                continue
            self.states[index] = state_from_numpy(value)
        self.states_synced = dict.fromkeys(self.states, False)


def _refill(current, value) -> bool:
    """Copy ``value`` into the existing state objects (so holders of them see it); False if shapes differ."""
    if current is None or value is None:
        return current is None and value is None
    if isinstance(current, tuple):
        return (isinstance(value, tuple) and len(value) == len(current)
                and all(_refill(c, v) for c, v in zip(current, value)))
    buf = state_buffer(current)
    if buf.shape != np.shape(value):
        return False
    buf[...] = value
    return True


_MISSING = object()


def get_updater(optimizer: Optimizer) -> Updater:
    """An :class:`Updater` for ``optimizer``."""
    return Updater(optimizer)
