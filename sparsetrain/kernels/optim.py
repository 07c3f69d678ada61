"""Optimizer update rules as numba kernels: the one source of truth for every engine.

The formulas follow Apache MXNet 1.x exactly — the C++ operators in
``src/operator/optimizer_op-inl.h`` (``SGDKernel``/``SGDDnsRspKernel``, ``SGDMomKernel``/
``SGDMomDnsRspDnsKernel``, ``AdamUpdateKernel``/``AdamDnsRspDnsKernel``, ``FtrlUpdateKernel``/
``FtrlDnsRspDnsKernel``, ``AdagradDnsRspDnsKernel``) and, for AdaGrad's dense path and Adam's bias
correction, the Python classes in ``python/mxnet/optimizer/optimizer.py`` — including the order in
which each expression is evaluated. With ``g`` the raw gradient:

* ``prep(g) = clip(rescale_grad * g, ±clip_gradient)`` when ``clip_gradient > 0``, else
  ``rescale_grad * g`` (MXNet's Python layer only forwards a truthy ``clip_gradient`` and the C++
  kernels skip clipping for negative values, so ``None``, ``0`` and negatives all mean "no clip").
* SGD:            ``w = (1 - lr*wd)*w - lr*prep(g)``
* SGD + momentum: ``m = momentum*m - lr*wd*w - lr*prep(g);  w = w + m``
* AdaGrad:        ``h = h + prep(g)²;  w = w + (prep(g)/sqrt(h + eps) + wd*w) * -lr``
* Adam:           ``r = rescale_grad*g + wd*w`` then clipped (MXNet clips *after* adding the weight
  decay term, unlike SGD);  ``m = β1 m + (1-β1) r;  v = β2 v + (1-β2) r²;
  w = w - lr_t * m / (sqrt(v) + eps)`` with ``lr_t = lr * sqrt(1-β2^t) / (1-β1^t)``
  (:func:`adam_bias_corrected_lr`, from MXNet's Python ``Adam.update``).
* FTRL:           ``z += prep(g) - (sqrt(n + prep(g)²) - sqrt(n)) * w / lr;  n += prep(g)²;
  w = (sign(z)*λ1 - z) / ((β + sqrt(n))/lr + wd) * (|z| > λ1)``

**One record per rule** (:data:`RULES`, a :class:`Rule` each): its scalar *step*, its *rate* (the
learning rate the step uses, from the scheduled rate and the update count ``t``: Adam's bias
correction, the scheduled rate itself for the others), the names of its states (each shaped like
the weight), the names of its own hyper-parameters and its plain-numpy reference
(:mod:`.optim_reference`). :func:`rule` looks one up and raises for an unknown name.

Every step has one signature, on scalars::

    w, s1, s2 = step(w, s1, s2, g, lr, wd, h)

the weight, up to two states (a rule with fewer ignores the others and returns them unchanged),
the raw gradient, the rate, the weight decay and the packed hyper-parameters ``h`` — a tuple of
floats ``(rescale_grad, clip_gradient, *the rule's own)`` (:meth:`Rule.pack`; ``clip_gradient``
≤ 0 means "no clip"). Steps are plain ``@njit`` functions marked ``inline="always"``: a loop that
calls one as a *global* gets the formula inlined.

Each loop shape is written once, calling ``step`` (through ``step_at``, which reads and writes an
element's states around it, inlined) and ``rate`` as globals, and bound to each rule by
:meth:`Rule.bind`: a copy of the loop with the rule's functions as its globals, jitted and cached on
disk per rule. Binding, not passing the step or a loop as a function argument, is what
keeps this free: a version that passed the rule's loops into the compiled engine's kernels as
arguments made its batch-1 SGD epoch ~1.5× slower (0.073-0.125 s against 0.035-0.052 s per
200k-row epoch); bound, the fused epochs match the per-optimizer loops and ``if kind ==`` chains
they replace (interleaved A/B, 200k rows, best of 3 epochs, 6 pairs: batch 1 ×1.00, batch 256
×1.03 median ratio, within the shared machine's noise). Every rule's record holds its bound loops:

* ``rule.flat(weight, s1, s2, grad, lr, wd, h)`` — a dense update of 1-D arrays;
* ``rule.rows_2d(weight, s1, s2, rows, grad_rows, lr, wd, h)`` — the lazy update of ``rows`` of a
  2-D weight (any layout): ``grad_rows[i]`` is the gradient of row ``rows[i]`` (sorted unique int64
  ids), and only those rows of the weight *and of every state* are touched — weight decay and
  momentum included (MXNet's ``lazy_update=True``), in O(len(rows));
* ``rule.outer_rows(weight, s1, s2, rows, coef, lo, hi, g_row, lr, wd, h)`` — the compiled
  engine's one-sample loop: row ``rows[p]`` gets the gradient ``coef[p] * g_row`` (taken in the
  arrays' dtype), never materialised;
* ``rule.update_dense(weight, s1, s2, grad, lr, wd, t, h)`` / ``rule.update_rows(weight, s1, s2,
  rows, grad_rows, lr, wd, t, h)`` — the entry points over C-contiguous arrays of any rank (rows
  are the first axis) that :meth:`sparsetrain.optimizer.Optimizer.update` calls; they apply the
  rule's rate to the scheduled ``lr`` and the update count ``t``.

An absent state is an empty array (size 0) of the weight's dtype. In the loops ``lr`` is already
the rate the step uses (``rule.rate(lr, t, h)``). A step computes in its weight's dtype, as MXNet's
kernels compute in ``DType``: its states, gradient, rate, weight decay and ``h`` are taken as that
float type (:func:`like`) before any arithmetic, so a float32 weight's square roots and divisions are
float32 ones (``vsqrtss``/``vdivss``, about twice the throughput of the double ones: the AdaGrad
epoch at batch 1, benchmarks/RESULTS.md session 37 f32step) and a float64 weight's float64; a
multi-precision float16 weight steps its float32 master copy. The results then differ from a
float64 computation at float32 rounding (the float64 references of :mod:`.optim_reference` agree
within the tests' float32 tolerances). Row ids must be non-negative and in range (not checked).

numba invalidates a cached kernel only when its own source file changes; the fused loops of the
compiled engine that inline these steps therefore drop their cache index when this file is newer
(``kernels.numba_cache.drop_stale_cache``).
"""
from __future__ import annotations

import math
import types
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from numba import njit
from numba import types as nbtypes
from numba.extending import overload

from ..base import SparseTrainError, did_you_mean
from . import optim_reference as _ref

__all__ = ["Rule", "RULES", "rule", "like", "clip_value", "prepare_grad", "adam_bias_corrected_lr", "sgd_step",
           "sgd_mom_step", "adagrad_step", "adam_step", "ftrl_step", "H_RESCALE", "H_CLIP"]

# Positions in the packed hyper-parameter tuple ``h`` that every rule shares; a rule's own follow.
H_RESCALE = 0
H_CLIP = 1


# -- scalar rules ----------------------------------------------------------------------------

def like(x, w):
    """``x`` as a value of ``w``'s float type (float32 or float64): a step computes in its weight's dtype."""
    return type(w)(x)


@overload(like, inline="always")
def _like_impl(x, w):
    if isinstance(w, nbtypes.Float) and w.bitwidth == 32:
        return lambda x, w: np.float32(x)
    return lambda x, w: np.float64(x)


@njit(cache=True, inline="always")
def clip_value(x, bound):
    """MXNet's ``mshadow_op::clip``: ``x`` limited to ``[-bound, bound]``; NaN passes through."""
    if x > bound:
        return bound
    if x < -bound:
        return -bound
    return x


@njit(cache=True, inline="always")
def prepare_grad(g, rescale_grad, clip_gradient):
    """``rescale_grad * g``, clipped to ``±clip_gradient`` when ``clip_gradient > 0`` (all one float type)."""
    r = rescale_grad * g
    if clip_gradient > 0:
        r = clip_value(r, clip_gradient)
    return r


@njit(cache=True, inline="always")
def sgd_step(w, s1, s2, g, lr, wd, h):
    """``h = (rescale_grad, clip_gradient)``; no state."""
    g, lr, wd = like(g, w), like(lr, w), like(wd, w)
    r = prepare_grad(g, like(h[H_RESCALE], w), like(h[H_CLIP], w))
    if wd == 0:  # bit for bit the general form ((1 - lr*0) * w == w), with less work
        return w - lr * r, s1, s2
    return (like(1.0, w) - lr * wd) * w - lr * r, s1, s2


@njit(cache=True, inline="always")
def sgd_mom_step(w, mom, s2, g, lr, wd, h):
    """``h = (rescale_grad, clip_gradient, momentum)``; state: momentum."""
    mom, g, lr, wd = like(mom, w), like(g, w), like(lr, w), like(wd, w)
    m = like(h[2], w) * mom - lr * wd * w - lr * prepare_grad(g, like(h[H_RESCALE], w), like(h[H_CLIP], w))
    return w + m, m, s2


@njit(cache=True, inline="always")
def adagrad_step(w, hist, s2, g, lr, wd, h):
    """``h = (rescale_grad, clip_gradient, eps)``; state: history."""
    hist, g, lr, wd = like(hist, w), like(g, w), like(lr, w), like(wd, w)
    r = prepare_grad(g, like(h[H_RESCALE], w), like(h[H_CLIP], w))
    hist = hist + r * r
    div = r / math.sqrt(hist + like(h[2], w))
    return w + (div + w * wd) * -lr, hist, s2


@njit(cache=True, inline="always")
def adam_step(w, m, v, g, lr_t, wd, h):
    """``h = (rescale_grad, clip_gradient, beta1, beta2, epsilon)``; states: mean, var.

    ``lr_t`` is the bias-corrected rate (:func:`adam_rate`).
    """
    m, v, g, lr_t, wd = like(m, w), like(v, w), like(g, w), like(lr_t, w), like(wd, w)
    beta1, beta2, clip, one = like(h[2], w), like(h[3], w), like(h[H_CLIP], w), like(1.0, w)
    r = g * like(h[H_RESCALE], w) + w * wd
    if clip > 0:
        r = clip_value(r, clip)
    m = beta1 * m + (one - beta1) * r
    v = beta2 * v + (one - beta2) * r * r
    return w - lr_t * m / (math.sqrt(v) + like(h[4], w)), m, v


@njit(cache=True, inline="always")
def ftrl_step(w, z, n, g, lr, wd, h):
    """``h = (rescale_grad, clip_gradient, lamda1, beta)``; states: z, n."""
    z, n, g, lr, wd = like(z, w), like(n, w), like(g, w), like(lr, w), like(wd, w)
    lamda1 = like(h[2], w)
    r = prepare_grad(g, like(h[H_RESCALE], w), like(h[H_CLIP], w))
    z = z + r - (math.sqrt(n + r * r) - math.sqrt(n)) * w / lr
    n = n + r * r
    # mshadow's sign: sign(0) = sign(NaN) = 0; the indicator multiplies (so NaN stays NaN).
    sign_z = like(1.0 if z > 0 else (-1.0 if z < 0 else 0.0), w)
    keep = like(1.0 if abs(z) > lamda1 else 0.0, w)
    w = (sign_z * lamda1 - z) / ((like(h[3], w) + math.sqrt(n)) / lr + wd) * keep
    return w, z, n


@njit(cache=True)
def adam_bias_corrected_lr(lr, beta1, beta2, t):
    """``lr * sqrt(1 - beta2**t) / (1 - beta1**t)`` as MXNet's ``Adam.update`` computes it (``t`` ≥ 1)."""
    coef1 = 1.0 - math.pow(beta1, t)
    coef2 = 1.0 - math.pow(beta2, t)
    return lr * (math.sqrt(coef2) / coef1)


@njit(cache=True, inline="always")
def scheduled_rate(lr, t, h):
    """The scheduled rate as it is (every rule but Adam)."""
    return lr


@njit(cache=True, inline="always")
def adam_rate(lr, t, h):
    """Adam's bias-corrected rate at update count ``t`` ≥ 1."""
    return adam_bias_corrected_lr(lr, h[2], h[3], t)


# -- the loops, each written once; ``step``, ``rate``, ``n_states``, ``flat``, ``rows_2d`` are bound per rule --

@njit(cache=True)
def _row(r):
    """A row id as an unsigned index: numba then skips its negative-index wrap-around check,
    which measurably slows these random-access loops. Row ids are never negative here."""
    return np.uint64(r)


def _step_at(weight, s1, s2, at, g, lr, wd, h):
    """The element ``at`` (an index of the arrays) of ``weight`` and of the states the rule has stepped by
    gradient ``g``, in place: the one place a loop reads and writes the states around ``step``."""
    a = s1[at] if n_states > 0 else 0.0  # noqa: F821 (bound per rule)
    b = s2[at] if n_states > 1 else 0.0  # noqa: F821
    w, a, b = step(weight[at], a, b, g, lr, wd, h)  # noqa: F821
    weight[at] = w
    if n_states > 0:  # noqa: F821
        s1[at] = a
    if n_states > 1:  # noqa: F821
        s2[at] = b


def _flat(weight, s1, s2, grad, lr, wd, h):
    """Dense update of a 1-D ``weight`` (states: 1-D like it, or empty when the rule has fewer)."""
    for i in range(weight.shape[0]):
        step_at(weight, s1, s2, i, grad[i], lr, wd, h)  # noqa: F821


def _rows_2d(weight, s1, s2, rows, grad_rows, lr, wd, h):
    """Lazy update of ``weight[rows]`` (2-D, any layout); ``grad_rows[i]`` is row ``rows[i]``'s gradient."""
    ncol = weight.shape[1]
    for i in range(rows.shape[0]):
        r = _row(rows[i])
        for j in range(ncol):
            step_at(weight, s1, s2, (r, j), grad_rows[i, j], lr, wd, h)  # noqa: F821


def _outer_rows(weight, s1, s2, rows, coef, lo, hi, g_row, lr, wd, h):
    """Lazy update of rows ``rows[lo:hi]`` whose gradient is the outer product ``coef[p] * g_row``.

    That is the weight gradient of one sample of ``dot(csr_row, W)``: row ``rows[p]`` gets
    ``coef[p] * g_row[k]`` (the product taken in the arrays' dtype, as a materialised gradient
    would hold it), without building the gradient rows. ``rows[lo:hi]`` must be distinct.
    """
    ncol = weight.shape[1]
    if ncol == 1 and wd == 0.0 and h[H_CLIP] <= 0.0:
        # one output, no weight decay, no clipping: the loop the batch-1 linear models spend their
        # time in, with the step's weight-decay and clipping tests folded away (constants here);
        # bit for bit the general loop below. Interleaved A/B at batch 1: ~1.1-1.3x faster.
        g0 = g_row[0]
        plain = (h[H_RESCALE], -1.0) + h[2:]
        for p in range(lo, hi):
            step_at(weight, s1, s2, (_row(rows[p]), 0), coef[p] * g0, lr, 0.0, plain)  # noqa: F821
        return
    for p in range(lo, hi):
        r = _row(rows[p])
        v = coef[p]
        for j in range(ncol):
            step_at(weight, s1, s2, (r, j), v * g_row[j], lr, wd, h)  # noqa: F821


# -- entry points: C-contiguous arrays of any rank -------------------------------------------------

@njit(cache=True)
def _as_rows(a, nrows):
    """A C-contiguous array of ``nrows`` rows viewed as 2-D ``(nrows, row_size)``."""
    row_size = a.size // nrows if nrows > 0 else 0
    return a.reshape((nrows, row_size))


def _update_dense(weight, s1, s2, grad, lr, wd, t, h):
    """Dense update of ``weight`` (and its states) in place; ``lr`` the scheduled rate, ``t`` the update count."""
    flat(weight.reshape(weight.size), s1.reshape(s1.size), s2.reshape(s2.size), grad.reshape(grad.size),  # noqa: F821
         rate(lr, t, h), wd, h)  # noqa: F821


def _update_rows(weight, s1, s2, rows, grad_rows, lr, wd, t, h):
    """Lazy update of ``weight[rows]`` and the same rows of its states; ``grad_rows[i]`` is row ``rows[i]``'s."""
    if rows.shape[0] == 0:
        return
    d = weight.shape[0]
    rows_2d(_as_rows(weight, d), _as_rows(s1, d), _as_rows(s2, d), rows,  # noqa: F821
            _as_rows(grad_rows, rows.shape[0]), rate(lr, t, h), wd, h)  # noqa: F821


# -- the rules table -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Rule:
    """One optimizer update rule (module doc).

    ``step``/``rate``: its njit scalar functions. ``states``: names of its state arrays, each
    shaped like the weight (at most two); ``sums``: those of them that add a term per update (AdaGrad's
    history, FTRL's ``z`` and ``n``; the others are running averages) — ``train.deterministic`` adds the
    threads' changes of these and averages the others' (:mod:`sparsetrain.engines.compiled.threads`).
    ``adaptive``: its step shrinks with a coordinate's own gradient history (AdaGrad, Adam, FTRL), so
    a row trained for a while on a stale copy overshoots little when its change is added back —
    Hogwild trains the head rows on per-thread copies only for such rules (plain SGD on a squared loss
    ended +26 % above one thread that way: benchmarks/RESULTS.md, session 29). ``hyper``: names of its
    own hyper-parameters, packed after ``rescale_grad`` and ``clip_gradient`` into ``h`` (the optimizer
    attributes of those names, see :meth:`sparsetrain.optimizer.Optimizer.hyper`). ``reference``: the plain-numpy
    step, ``reference(w, states, g, lr, wd, t, h) -> (w, *states)`` in float64 (``lr`` the
    scheduled rate: the reference applies the rate itself).
    """

    name: str
    step: Callable
    rate: Callable
    states: tuple
    hyper: tuple
    reference: Callable
    sums: tuple = ()
    adaptive: bool = False
    # the loops and entry points bound to this rule's step (module doc), and the step at one element they call
    step_at: Callable = field(init=False, repr=False, compare=False)
    flat: Callable = field(init=False, repr=False, compare=False)
    rows_2d: Callable = field(init=False, repr=False, compare=False)
    outer_rows: Callable = field(init=False, repr=False, compare=False)
    update_dense: Callable = field(init=False, repr=False, compare=False)
    update_rows: Callable = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        if len(self.states) > 2:
            raise SparseTrainError(f"rule {self.name!r}: the loops carry at most two states, got {self.states}")
        if not set(self.sums) <= set(self.states):
            raise SparseTrainError(f"rule {self.name!r}: sums {self.sums} must name states of {self.states}")
        # the three loops allocate nothing: compiled without reference counts, which LLVM would inline into
        # their callers' loops (each call: an atomic add and subtract per array argument)
        object.__setattr__(self, "step_at", self.bind(_step_at, inline=True))  # (inlined into the loops)
        for name, template, refcounts in (("flat", _flat, False), ("rows_2d", _rows_2d, False),
                                          ("outer_rows", _outer_rows, False), ("update_dense", _update_dense, True),
                                          ("update_rows", _update_rows, True)):
            object.__setattr__(self, name, self.bind(template, refcounts))

    def globals(self) -> dict:
        """The names a loop bound to this rule sees: ``step``, ``rate``, ``n_states`` and the loops bound so far."""
        names = {"step": self.step, "rate": self.rate, "n_states": len(self.states)}
        for loop in ("step_at", "flat", "rows_2d", "outer_rows", "update_dense", "update_rows"):
            if loop in self.__dict__:
                names[loop] = self.__dict__[loop]
        return names

    def bind(self, template, refcounts=True, inline=False, **names):
        """``template`` (a plain Python function) jitted with this rule's :meth:`globals` (and ``names``);
        ``refcounts=False``: compiled without numba's reference counts (a loop that allocates nothing:
        each call it makes with arrays otherwise costs an atomic add and subtract per array).

        A copy of the function over the same code, with its own globals and qualified name
        (``<qualname>__<rule>``, hence its own on-disk cache file). The rule's functions are then
        ordinary global calls, which numba inlines and caches: write a loop once, calling
        ``step(w, s1, s2, g, lr, wd, h)``, and bind it to every rule.
        """
        fn = types.FunctionType(template.__code__, dict(template.__globals__, **self.globals(), **names),
                                template.__name__, template.__defaults__, template.__closure__)
        fn.__qualname__ = f"{template.__qualname__}__{self.name}"
        fn.__doc__ = template.__doc__
        fn.__module__ = template.__module__
        if inline:  # a piece of the loops, inlined into each (as the steps are)
            return njit(cache=True, inline="always")(fn)
        return njit(cache=True, nogil=True, _nrt=refcounts)(fn)  # nogil: train.threads runs kernels in parallel threads

    def pack(self, rescale_grad, clip_gradient, *values) -> tuple:
        """``h`` for this rule: floats; ``clip_gradient`` None/0/negative → -1 (no clip)."""
        if len(values) != len(self.hyper):
            raise SparseTrainError(f"rule {self.name!r} takes hyper-parameters {self.hyper}, got {len(values)} values")
        clip = float(clip_gradient) if clip_gradient else -1.0
        return (float(rescale_grad), clip, *(float(v) for v in values))


RULES = {r.name: r for r in (
    Rule("sgd", sgd_step, scheduled_rate, (), (), _ref.sgd_rule),
    Rule("sgd_mom", sgd_mom_step, scheduled_rate, ("momentum",), ("momentum",), _ref.sgd_mom_rule),
    Rule("adagrad", adagrad_step, scheduled_rate, ("history",), ("float_stable_eps",), _ref.adagrad_rule,
         sums=("history",), adaptive=True),
    Rule("adam", adam_step, adam_rate, ("mean", "var"), ("beta1", "beta2", "epsilon"), _ref.adam_rule, adaptive=True),
    Rule("ftrl", ftrl_step, scheduled_rate, ("z", "n"), ("lamda1", "beta"), _ref.ftrl_rule, sums=("z", "n"),
         adaptive=True),
)}


def rule(name: str) -> Rule:
    """The rule called ``name``; an unknown name raises (nothing falls through to another rule)."""
    try:
        return RULES[name]
    except (KeyError, TypeError):
        raise SparseTrainError(f"unknown optimizer rule {name!r}{did_you_mean(str(name), RULES)}; "
                               f"known rules: {', '.join(RULES)}") from None
