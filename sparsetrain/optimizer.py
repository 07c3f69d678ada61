"""Optimizers with lazy row-sparse updates, following ``mxnet.optimizer`` (MXNet 1.x).

``SGD``, ``AdaGrad``, ``Adam`` and ``FTRL`` (alias ``Ftrl``) keep MXNet's names, defaults and
formulas; the arithmetic lives once, in the scalar step functions of :mod:`sparsetrain.kernels.optim`
(with their numpy references in :mod:`sparsetrain.kernels.optim_reference`), which the fused
epoch loops of the compiled engine call too. Each optimizer names its rule (``rule_name``, a key of
:data:`sparsetrain.kernels.optim.RULES`); the one :meth:`Optimizer.update` applies it.

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
nor in ``_gamma`` get ``wd_mult = 0`` unless ``set_wd_mult`` says otherwise (:func:`default_wd_mult`).
:meth:`Optimizer.multipliers` is the ``(lr_mult, wd_mult)`` a parameter trains with.
"""
from __future__ import annotations

import warnings
import weakref

import numpy as np

from .base import LR_MULT_ATTR, WD_MULT_ATTR
from .optimizer_buffers import (
    KERNEL_DTYPES,
    densify,
    grad_parts,
    refuse_update,
    rule_state_buffers,
    state_buffer,
    weight_buffer,
    zeros_like_weight,
)
from .updater import Updater, get_updater, state_from_numpy, state_to_numpy

__all__ = [
    "Optimizer", "SGD", "AdaGrad", "Adam", "FTRL", "Ftrl", "Updater", "get_updater", "create", "register",
    "default_rescale_grad", "default_wd_mult", "weight_buffer", "state_buffer", "state_to_numpy", "state_from_numpy",
]


def default_rescale_grad(batch_size: int, sync_workers: int = 1) -> float:
    """MXNet's default gradient scale: one over the examples summed into one update (a batch on
    each of ``sync_workers`` workers whose gradients a synchronous store adds up)."""
    return 1.0 / (batch_size * sync_workers)


def default_wd_mult(name: str) -> float:
    """MXNet's weight-decay multiplier of a parameter an optimizer knows by name (``param_idx2name``) when
    nothing else sets one: 1 for names ending in ``_weight`` or ``_gamma``, else 0 (biases are not decayed)."""
    return 1.0 if name.endswith(("_weight", "_gamma")) else 0.0


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
        # index -> (a weak reference to the weight buffer, the gradient dtype) the update kernels were checked to
        # take; weak: a buffer the parameter no longer uses is freed, not kept until its next update
        self._accepted: dict = {}
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
        self.lr_mult = self._symbol_mults(LR_MULT_ATTR)
        self.lr_mult.update(args_lr_mult)

    def set_wd_mult(self, args_wd_mult):
        """Per-parameter weight-decay multipliers, by name or index (over the symbol's ``__wd_mult__``
        attributes, over :func:`default_wd_mult` of the names in ``param_idx2name``)."""
        self.wd_mult = {n: default_wd_mult(n) for n in self.idx2name.values()}
        self.wd_mult.update(self._symbol_mults(WD_MULT_ATTR))
        self.wd_mult.update(args_wd_mult)

    def _symbol_mults(self, key: str) -> dict:
        """``{argument name: float(attr[key])}`` from the symbol's attributes (``sym_info``)."""
        if not self.sym_info:
            return {}
        attr, arg_names = self.sym_info
        return {name: float(attr[name][key]) for name in arg_names if name in attr and key in attr[name]}

    def _update_count(self, index, steps: int = 1) -> int:
        """Count ``steps`` updates of parameter ``index`` (MXNet's method, which counts one); ``num_update`` is
        the largest count. The one counter: :meth:`update` and :meth:`advance_update_counts` count here.
        Returns the parameter's count."""
        count = self._index_update_count.get(index, self.begin_num_update) + steps
        self._index_update_count[index] = count
        if count > self.num_update:
            self.__dict__["num_update"] = count  # past __setattr__ (no hyper-parameter changes): the hot path
        return count

    def multipliers(self, index) -> tuple[float, float]:
        """``(lr_mult, wd_mult)`` parameter ``index`` (an update index, or a parameter name) trains with: a
        ``param_dict`` entry's own, else ``set_lr_mult``/``set_wd_mult``'s (see there), else 1."""
        return self._mult_of(index, "lr_mult"), self._mult_of(index, "wd_mult")

    def _mult_of(self, index, which: str) -> float:
        """``which`` (``"lr_mult"`` / ``"wd_mult"``) of parameter ``index``: see :meth:`multipliers`."""
        if index in self.param_dict:
            return getattr(self.param_dict[index], which)
        given = self.lr_mult if which == "lr_mult" else self.wd_mult
        if index in given:
            return given[index]
        if index in self.idx2name:
            return given.get(self.idx2name[index], 1.0)
        return 1.0

    def _get_lr(self, index):
        lr = self.learning_rate
        if self.lr_mult or self.param_dict or self.idx2name:
            lr *= self._mult_of(index, "lr_mult")
        return lr

    def _get_wd(self, index):
        return self.wd * self._mult_of(index, "wd_mult")

    # -- the update rule ---------------------------------------------------------------------
    #: Name of this optimizer's rule in :data:`sparsetrain.kernels.optim.RULES` (``None``: none).
    rule_name: str | None = None

    @property
    def rule(self):
        """The update rule (:class:`sparsetrain.kernels.optim.Rule`) every engine applies."""
        from .kernels import optim as K  # numba loads with the first rule, not with the optimizer classes

        if self.rule_name is None:
            raise NotImplementedError(f"{type(self).__name__} has no update rule: set rule_name to one of "
                                      f"{', '.join(K.RULES)} (or add a rule to sparsetrain.kernels.optim.RULES)")
        return K.rule(self.rule_name)

    def hyper(self) -> tuple:
        """The rule's packed hyper-parameters: ``rescale_grad``, ``clip_gradient``, then the
        attributes of this optimizer named by ``rule.hyper``."""
        rule = self.rule
        return rule.pack(self.rescale_grad, self.clip_gradient, *(getattr(self, name) for name in rule.hyper))

    def _rule_and_hyper(self):
        """``(rule, hyper(), lazy)``, kept until an attribute changes (``update`` runs per parameter and step)."""
        packed = self.__dict__.get("_packed")
        if packed is None:
            packed = self.__dict__["_packed"] = (self.rule, self.hyper(), self._is_lazy())
        return packed

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if name != "num_update":  # the one attribute set per update; it is no hyper-parameter
            self.__dict__.pop("_packed", None)

    def __getstate__(self):
        state = dict(self.__dict__)
        state.pop("_packed", None)  # holds numba functions: rebuilt on first use
        state["_accepted"] = {}  # weak references do not pickle: checked again on first use
        return state

    # -- states and updates ------------------------------------------------------------------
    def create_state(self, index, weight):
        """The states of one weight, zeros shaped like it: ``None`` (no state), one ``NDArray``, or a tuple."""
        if self.rule_name is None:
            return None
        states = tuple(zeros_like_weight(weight) for _ in self.rule.states)
        if not states:
            return None
        return states[0] if len(states) == 1 else states

    # where the float32 master copy sits in a multi-precision state (MXNet: first; SGD: last)
    _master_first = True

    def has_master_copy(self, dtype) -> bool:
        """Whether a weight of ``dtype`` trains through a float32 master copy kept in its state (MXNet's
        ``multi_precision``: a float16 weight)."""
        return bool(self.multi_precision) and np.dtype(dtype) == np.float16

    def state_dtype(self, dtype) -> np.dtype:
        """The dtype of every state array of a weight of ``dtype`` (and so of a states file's arrays for it):
        float32 under a master copy (:meth:`has_master_copy`: the copy and the rule's states of it), else ``dtype``."""
        return np.dtype(np.float32) if self.has_master_copy(dtype) else np.dtype(dtype)

    def create_state_multi_precision(self, index, weight):
        """As MXNet: with ``multi_precision`` a float16 weight gets a float32 master copy, and the
        state is ``(master, create_state(index, master))`` (SGD: the other way round)."""
        if self.has_master_copy(weight.dtype):
            master = weight.astype(self.state_dtype(weight.dtype))
            state = (master, self.create_state(index, master))
            return state if self._master_first else state[::-1]
        return self.create_state(index, weight)

    def update(self, index, weight, grad, state):
        """Update ``weight`` (and ``state``) in place from ``grad`` by this optimizer's rule.

        A row-sparse ``grad`` updates only its rows when the optimizer is lazy (module doc).
        """
        rule, h, lazy = self.__dict__.get("_packed") or self._rule_and_hyper()
        w = weight_buffer(weight)
        rows, values = grad_parts(grad)
        accepted = self._accepted.get(index)
        if accepted is None or accepted[0]() is not w or accepted[1] is not values.dtype:
            self._accept(index, w, values)
        t = self._update_count(index)
        if self.lr_mult or self.wd_mult or self.param_dict or self.idx2name:
            lr, wd = self._get_lr(index), self._get_wd(index)
        else:  # (the same, in fewer calls: this runs per parameter and step)
            lr, wd = self.learning_rate, self.wd
        s1, s2 = rule_state_buffers(rule, state, w)
        if rows is not None and not lazy:
            rows, values = None, densify(w.shape, rows, values)
        if not values.flags.c_contiguous:  # a strided gradient: a contiguous copy (numba 0.60 raised a bare
            values = np.ascontiguousarray(values)  # TypeError at typing for it, later a TypingError)
        _apply(rule, w, s1, s2, rows, values, lr, wd, t, h)

    def _accept(self, index, w: np.ndarray, values: np.ndarray) -> None:
        """Refuse a weight buffer ``w`` or gradient ``values`` of parameter ``index`` the update kernels do not
        take (:func:`~sparsetrain.optimizer_buffers.refuse_update`); else remember them: the check runs once per
        parameter, weight buffer and gradient dtype, not at every update."""
        if w.dtype.char not in KERNEL_DTYPES or values.dtype.char not in KERNEL_DTYPES or not w.flags.c_contiguous:
            refuse_update(self._param_name(index), w, values)
        self._accepted[index] = (weakref.ref(w), values.dtype)

    def _param_name(self, index) -> str:
        """Parameter ``index`` as an error names it: its name when the optimizer knows it."""
        name = self.idx2name.get(index)
        return f"{name!r}" if name is not None else f"parameter {index!r}"

    def update_multi_precision(self, index, weight, grad, state):
        if self.multi_precision and self.has_master_copy(weight.dtype):  # (no call without multi_precision)
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
    def lazy_equals_dense(self, index) -> bool:
        """Whether a lazy row update equals the dense update for parameter ``index``.

        True when a zero gradient leaves a row (and its states) unchanged, so restricting the
        update to the gradient's rows changes nothing.
        """
        return False

    def weight_decays(self, indices) -> np.ndarray:
        """The weight decay of each parameter of ``indices`` (float64), multipliers included."""
        return np.array([self._get_wd(i) for i in indices], dtype=np.float64)

    def update_counts(self, indices) -> np.ndarray:
        """How many updates each parameter of ``indices`` has had (int64; Adam's ``t`` before its next step)."""
        return np.array([self._index_update_count.get(i, self.begin_num_update) for i in indices], dtype=np.int64)

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
            return np.array([[self.lr * self._mult_of(i, "lr_mult") for i in indices]], dtype=np.float64)
        counts = self.update_counts(indices)
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
            lrs = lrs * np.array([self._mult_of(i, "lr_mult") for i in indices], dtype=np.float64)[None, :]
        return np.ascontiguousarray(lrs)

    def fused_arguments(self, indices, num_steps) -> tuple:
        """What a fused epoch loop takes to apply ``num_steps`` rounds of updates of ``indices`` (in that order)
        by this optimizer's rule, as :meth:`update` would: ``(rule, hyper, lrs, wds, counts)`` — the
        :attr:`rule` (whose step function is the formula), its packed hyper-parameters (:meth:`hyper`, kept
        until an attribute changes), :meth:`scheduled_learning_rates` (compact), :meth:`weight_decays` and
        :meth:`update_counts`. Call :meth:`advance_update_counts` with the rounds applied."""
        rule, hyper, _ = self._rule_and_hyper()
        return (rule, hyper, self.scheduled_learning_rates(indices, num_steps, compact=True),
                self.weight_decays(indices), self.update_counts(indices))

    def advance_update_counts(self, indices, num_steps) -> None:
        """Record ``num_steps`` rounds of updates of ``indices`` done outside :meth:`update`."""
        if num_steps <= 0:
            return
        old = self.num_update
        for i in indices:
            self._update_count(i, num_steps)
        if self.lr_scheduler is not None:
            # bring a stateful scheduler to where per-step calls would have left it
            advance = getattr(self.lr_scheduler, "advance", None)
            if advance is not None:
                advance(old, self.num_update)
            else:
                self.lr_scheduler(self.num_update)


register = Optimizer.register
create = Optimizer.create_optimizer


def _apply(rule, w, s1, s2, rows, values, lr, wd, t, h):
    # one rank per kernel: flat arrays for a dense update, (rows, row size) for a lazy one. The entry points
    # take any rank, but numba compiles each rank apart (a 1-D bias, a 2-D table, a 3-D weight: three)
    if rows is None:
        rule.update_dense(_as_rows(w, None), _as_rows(s1, None), _as_rows(s2, None), _as_rows(values, None), lr,
                          wd, t, h)
    else:
        d = w.shape[0]
        rule.update_rows(_as_rows(w, d), _as_rows(s1, d), _as_rows(s2, d), rows, _as_rows(values, len(rows)), lr,
                         wd, t, h)


def _as_rows(a: np.ndarray, nrows):
    """A C-contiguous ``a`` viewed as ``nrows`` rows (None: flat); any other array as it is (a view only:
    the kernels update in place, and refuse a strided array)."""
    if not a.flags.c_contiguous:
        return a
    if nrows is None:
        return a.reshape(a.size)
    return a.reshape(nrows, a.size // nrows if nrows else 0)


# -- SGD ---------------------------------------------------------------------------------------

@register
class SGD(Optimizer):
    """Stochastic gradient descent with momentum and weight decay (MXNet's ``SGD``).

    ``m = momentum*m - lr*wd*w - lr*prep(g); w += m`` (no momentum: ``w = (1-lr*wd)*w - lr*prep(g)``).

    Parameters
    ----------
    momentum : float
        Momentum; the state exists only when it is non-zero (a negative value keeps the state
        but updates with momentum 0, as MXNet).
    lazy_update : bool
        With a row-sparse gradient, update only its rows (default), else every row.
    """

    _master_first = False

    def __init__(self, momentum=0.0, lazy_update=True, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.lazy_update = lazy_update

    @property
    def rule_name(self):
        return "sgd_mom" if self.momentum != 0.0 else "sgd"

    def hyper(self):
        extra = (max(self.momentum, 0.0),) if self.momentum != 0.0 else ()
        return self.rule.pack(self.rescale_grad, self.clip_gradient, *extra)

    def _is_lazy(self):
        return self.lazy_update

    def lazy_equals_dense(self, index):
        return self.momentum == 0.0 and self._get_wd(index) == 0.0


# -- AdaGrad -----------------------------------------------------------------------------------

@register
class AdaGrad(Optimizer):
    """AdaGrad (MXNet's ``AdaGrad``): ``h += prep(g)²; w += (prep(g)/sqrt(h + eps) + wd*w) * -lr``.

    Parameters
    ----------
    eps : float
        Added to the history under the square root (MXNet's ``float_stable_eps``), default 1e-7.
    """

    rule_name = "adagrad"

    def __init__(self, eps=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.float_stable_eps = eps

    def lazy_equals_dense(self, index):
        return self._get_wd(index) == 0.0


# -- Adam --------------------------------------------------------------------------------------

@register
class Adam(Optimizer):
    """Adam with MXNet's bias correction (``lr_t = lr*sqrt(1-β2^t)/(1-β1^t)``, ``t`` per parameter).

    The rescaled gradient plus ``wd*w`` is clipped (MXNet's order), then
    ``m = β1 m + (1-β1) r; v = β2 v + (1-β2) r²; w -= lr_t * m / (sqrt(v) + eps)``.
    """

    rule_name = "adam"

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, lazy_update=True, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update

    def _is_lazy(self):
        return self.lazy_update


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

    rule_name = "ftrl"

    def __init__(self, lamda1=0.01, learning_rate=0.1, beta=1, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.lamda1 = lamda1
        self.beta = beta


Ftrl = FTRL
