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

Every rule exists in two shapes that share one scalar step function (``*_step``):

* a dense update ``<name>_update(weight, [states...], grad, ...)`` over whole arrays, and
* a lazy row update ``<name>_update_rows(weight, [states...], rows, grad_rows, ...)``:
  ``rows`` are sorted unique int64 row ids, ``grad_rows`` holds one gradient row per id, and only
  those rows of the weight *and of every state* are touched — weight decay and momentum
  included (MXNet's ``lazy_update=True``). The cost is O(len(rows)), never O(weight rows).

Public kernels take C-contiguous arrays of any rank (rows are the first axis); the ``*_rows_2d``
cores take 2-D arrays of any layout. Row ids must be non-negative and in range (not checked).
The fused epoch kernels (``sparsetrain.engines.compiled.kernels``) reach the same step functions
through :func:`apply_rows` / :func:`apply_flat` (gradient rows), and in their one-sample loop
through the per-optimizer ``*_outer_rows`` / ``*_flat`` loops (a single sample's gradient
``coef[p] * g_row``, never materialised; :func:`apply_outer_rows` dispatches to them by kind).
Arithmetic runs in float64 and is stored back in the arrays' dtype (float32 or float64).

``optim_reference`` holds a plain-numpy version of every formula for the tests.

numba invalidates a cached kernel only when its own source file changes; the fused loops that
call these kernels therefore drop their cache index when this file is newer
(``engines.compiled.kernels._drop_stale_cache``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

# Optimizer kinds understood by apply_rows / apply_flat (and the fused epoch kernels).
KIND_SGD = 0
KIND_SGD_MOM = 1
KIND_ADAGRAD = 2
KIND_ADAM = 3
KIND_FTRL = 4

# Layout of the float64 ``hyper`` vector passed to apply_rows / apply_flat.
H_RESCALE = 0
H_CLIP = 1
H_MOMENTUM = 2
H_EPS = 3
H_BETA1 = 4
H_BETA2 = 5
H_LAMDA1 = 6
H_BETA = 7
NUM_HYPER = 8


def make_hyper(rescale_grad=1.0, clip_gradient=None, momentum=0.0, eps=0.0, beta1=0.0, beta2=0.0,
               lamda1=0.0, beta=0.0) -> np.ndarray:
    """The ``hyper`` vector for :func:`apply_rows` / :func:`apply_flat` (``clip_gradient=None`` → no clip)."""
    h = np.zeros(NUM_HYPER, dtype=np.float64)
    h[H_RESCALE] = rescale_grad
    h[H_CLIP] = -1.0 if clip_gradient is None else clip_gradient
    h[H_MOMENTUM] = momentum
    h[H_EPS] = eps
    h[H_BETA1] = beta1
    h[H_BETA2] = beta2
    h[H_LAMDA1] = lamda1
    h[H_BETA] = beta
    return h


# -- scalar rules ----------------------------------------------------------------------------

@njit(cache=True)
def clip_value(x, bound):
    """MXNet's ``mshadow_op::clip``: ``x`` limited to ``[-bound, bound]``; NaN passes through."""
    if x > bound:
        return bound
    if x < -bound:
        return -bound
    return x


@njit(cache=True)
def prepare_grad(g, rescale_grad, clip_gradient):
    """``rescale_grad * g``, clipped to ``±clip_gradient`` when ``clip_gradient > 0``."""
    r = rescale_grad * g
    if clip_gradient > 0.0:
        r = clip_value(r, clip_gradient)
    return r


@njit(cache=True)
def sgd_step(w, g, lr, wd, rescale_grad, clip_gradient):
    return (1.0 - lr * wd) * w - lr * prepare_grad(g, rescale_grad, clip_gradient)


@njit(cache=True)
def sgd_mom_step(w, m, g, lr, wd, momentum, rescale_grad, clip_gradient):
    m = momentum * m - lr * wd * w - lr * prepare_grad(g, rescale_grad, clip_gradient)
    return w + m, m


@njit(cache=True)
def adagrad_step(w, h, g, lr, wd, eps, rescale_grad, clip_gradient):
    r = prepare_grad(g, rescale_grad, clip_gradient)
    h = h + r * r
    div = r / math.sqrt(h + eps)
    return w + (div + w * wd) * -lr, h


@njit(cache=True)
def adam_step(w, m, v, g, lr_t, wd, beta1, beta2, eps, rescale_grad, clip_gradient):
    r = g * rescale_grad + w * wd
    if clip_gradient > 0.0:
        r = clip_value(r, clip_gradient)
    m = beta1 * m + (1.0 - beta1) * r
    v = beta2 * v + (1.0 - beta2) * r * r
    return w - lr_t * m / (math.sqrt(v) + eps), m, v


@njit(cache=True)
def ftrl_step(w, z, n, g, lr, wd, lamda1, beta, rescale_grad, clip_gradient):
    r = prepare_grad(g, rescale_grad, clip_gradient)
    z = z + r - (math.sqrt(n + r * r) - math.sqrt(n)) * w / lr
    n = n + r * r
    # mshadow's sign: sign(0) = sign(NaN) = 0; the indicator multiplies (so NaN stays NaN).
    sign_z = 1.0 if z > 0.0 else (-1.0 if z < 0.0 else 0.0)
    keep = 1.0 if abs(z) > lamda1 else 0.0
    w = (sign_z * lamda1 - z) / ((beta + math.sqrt(n)) / lr + wd) * keep
    return w, z, n


@njit(cache=True)
def adam_bias_corrected_lr(lr, beta1, beta2, t):
    """``lr * sqrt(1 - beta2**t) / (1 - beta1**t)`` as MXNet's ``Adam.update`` computes it (``t`` ≥ 1)."""
    coef1 = 1.0 - math.pow(beta1, t)
    coef2 = 1.0 - math.pow(beta2, t)
    return lr * (math.sqrt(coef2) / coef1)


# -- loops over rows of 2-D arrays (any layout) ------------------------------------------------

@njit(cache=True)
def _row(r):
    """A row id as an unsigned index: numba then skips its negative-index wrap-around check,
    which measurably slows these random-access loops. Row ids are never negative here."""
    return np.uint64(r)


@njit(cache=True)
def sgd_rows_2d(weight, rows, grad_rows, lr, wd, rescale_grad, clip_gradient):
    ncol = weight.shape[1]
    for i in range(rows.shape[0]):
        r = _row(rows[i])
        for j in range(ncol):
            weight[r, j] = sgd_step(weight[r, j], grad_rows[i, j], lr, wd, rescale_grad, clip_gradient)


@njit(cache=True)
def sgd_mom_rows_2d(weight, mom, rows, grad_rows, lr, wd, momentum, rescale_grad, clip_gradient):
    ncol = weight.shape[1]
    for i in range(rows.shape[0]):
        r = _row(rows[i])
        for j in range(ncol):
            w, m = sgd_mom_step(weight[r, j], mom[r, j], grad_rows[i, j], lr, wd, momentum,
                                rescale_grad, clip_gradient)
            weight[r, j] = w
            mom[r, j] = m


@njit(cache=True)
def adagrad_rows_2d(weight, history, rows, grad_rows, lr, wd, eps, rescale_grad, clip_gradient):
    ncol = weight.shape[1]
    for i in range(rows.shape[0]):
        r = _row(rows[i])
        for j in range(ncol):
            w, h = adagrad_step(weight[r, j], history[r, j], grad_rows[i, j], lr, wd, eps,
                                rescale_grad, clip_gradient)
            weight[r, j] = w
            history[r, j] = h


@njit(cache=True)
def adam_rows_2d(weight, mean, var, rows, grad_rows, lr_t, wd, beta1, beta2, eps, rescale_grad,
                 clip_gradient):
    ncol = weight.shape[1]
    for i in range(rows.shape[0]):
        r = _row(rows[i])
        for j in range(ncol):
            w, m, v = adam_step(weight[r, j], mean[r, j], var[r, j], grad_rows[i, j], lr_t, wd,
                                beta1, beta2, eps, rescale_grad, clip_gradient)
            weight[r, j] = w
            mean[r, j] = m
            var[r, j] = v


@njit(cache=True)
def ftrl_rows_2d(weight, z, n, rows, grad_rows, lr, wd, lamda1, beta, rescale_grad, clip_gradient):
    ncol = weight.shape[1]
    for i in range(rows.shape[0]):
        r = _row(rows[i])
        for j in range(ncol):
            w, zz, nn = ftrl_step(weight[r, j], z[r, j], n[r, j], grad_rows[i, j], lr, wd, lamda1,
                                  beta, rescale_grad, clip_gradient)
            weight[r, j] = w
            z[r, j] = zz
            n[r, j] = nn


# -- loops over flat (1-D) arrays ---------------------------------------------------------------

@njit(cache=True)
def sgd_flat(weight, grad, lr, wd, rescale_grad, clip_gradient):
    for i in range(weight.shape[0]):
        weight[i] = sgd_step(weight[i], grad[i], lr, wd, rescale_grad, clip_gradient)


@njit(cache=True)
def sgd_mom_flat(weight, mom, grad, lr, wd, momentum, rescale_grad, clip_gradient):
    for i in range(weight.shape[0]):
        w, m = sgd_mom_step(weight[i], mom[i], grad[i], lr, wd, momentum, rescale_grad, clip_gradient)
        weight[i] = w
        mom[i] = m


@njit(cache=True)
def adagrad_flat(weight, history, grad, lr, wd, eps, rescale_grad, clip_gradient):
    for i in range(weight.shape[0]):
        w, h = adagrad_step(weight[i], history[i], grad[i], lr, wd, eps, rescale_grad, clip_gradient)
        weight[i] = w
        history[i] = h


@njit(cache=True)
def adam_flat(weight, mean, var, grad, lr_t, wd, beta1, beta2, eps, rescale_grad, clip_gradient):
    for i in range(weight.shape[0]):
        w, m, v = adam_step(weight[i], mean[i], var[i], grad[i], lr_t, wd, beta1, beta2, eps,
                            rescale_grad, clip_gradient)
        weight[i] = w
        mean[i] = m
        var[i] = v


@njit(cache=True)
def ftrl_flat(weight, z, n, grad, lr, wd, lamda1, beta, rescale_grad, clip_gradient):
    for i in range(weight.shape[0]):
        w, zz, nn = ftrl_step(weight[i], z[i], n[i], grad[i], lr, wd, lamda1, beta, rescale_grad,
                              clip_gradient)
        weight[i] = w
        z[i] = zz
        n[i] = nn


# -- public kernels: C-contiguous arrays of any rank ---------------------------------------------

@njit(cache=True)
def _as_rows(a, nrows):
    """A C-contiguous array of ``nrows`` rows viewed as 2-D ``(nrows, row_size)``."""
    row_size = a.size // nrows if nrows > 0 else 0
    return a.reshape((nrows, row_size))


@njit(cache=True)
def sgd_update(weight, grad, lr, wd, rescale_grad, clip_gradient):
    """Dense SGD without momentum, in place: ``w = (1 - lr*wd)*w - lr*prep(g)``."""
    sgd_flat(weight.reshape(weight.size), grad.reshape(grad.size), lr, wd, rescale_grad, clip_gradient)


@njit(cache=True)
def sgd_update_rows(weight, rows, grad_rows, lr, wd, rescale_grad, clip_gradient):
    """Lazy SGD without momentum on ``weight[rows]`` only."""
    if rows.shape[0] == 0:
        return
    sgd_rows_2d(_as_rows(weight, weight.shape[0]), rows, _as_rows(grad_rows, rows.shape[0]), lr, wd,
                rescale_grad, clip_gradient)


@njit(cache=True)
def sgd_mom_update(weight, mom, grad, lr, wd, momentum, rescale_grad, clip_gradient):
    """Dense SGD with momentum, in place: ``m = μm - lr*wd*w - lr*prep(g); w += m``."""
    sgd_mom_flat(weight.reshape(weight.size), mom.reshape(mom.size), grad.reshape(grad.size), lr, wd,
                 momentum, rescale_grad, clip_gradient)


@njit(cache=True)
def sgd_mom_update_rows(weight, mom, rows, grad_rows, lr, wd, momentum, rescale_grad, clip_gradient):
    """Lazy SGD with momentum: ``weight[rows]`` and ``mom[rows]`` only."""
    if rows.shape[0] == 0:
        return
    d = weight.shape[0]
    sgd_mom_rows_2d(_as_rows(weight, d), _as_rows(mom, d), rows, _as_rows(grad_rows, rows.shape[0]),
                    lr, wd, momentum, rescale_grad, clip_gradient)


@njit(cache=True)
def adagrad_update(weight, history, grad, lr, wd, eps, rescale_grad, clip_gradient):
    """Dense AdaGrad, in place: ``h += prep(g)²; w += (prep(g)/sqrt(h+eps) + wd*w) * -lr``."""
    adagrad_flat(weight.reshape(weight.size), history.reshape(history.size), grad.reshape(grad.size),
                 lr, wd, eps, rescale_grad, clip_gradient)


@njit(cache=True)
def adagrad_update_rows(weight, history, rows, grad_rows, lr, wd, eps, rescale_grad, clip_gradient):
    """Lazy AdaGrad: ``weight[rows]`` and ``history[rows]`` only."""
    if rows.shape[0] == 0:
        return
    d = weight.shape[0]
    adagrad_rows_2d(_as_rows(weight, d), _as_rows(history, d), rows,
                    _as_rows(grad_rows, rows.shape[0]), lr, wd, eps, rescale_grad, clip_gradient)


@njit(cache=True)
def adam_update(weight, mean, var, grad, lr_t, wd, beta1, beta2, eps, rescale_grad, clip_gradient):
    """Dense Adam step with the bias-corrected rate ``lr_t`` (see :func:`adam_bias_corrected_lr`)."""
    adam_flat(weight.reshape(weight.size), mean.reshape(mean.size), var.reshape(var.size),
              grad.reshape(grad.size), lr_t, wd, beta1, beta2, eps, rescale_grad, clip_gradient)


@njit(cache=True)
def adam_update_rows(weight, mean, var, rows, grad_rows, lr_t, wd, beta1, beta2, eps, rescale_grad,
                     clip_gradient):
    """Lazy Adam: ``weight[rows]``, ``mean[rows]`` and ``var[rows]`` only."""
    if rows.shape[0] == 0:
        return
    d = weight.shape[0]
    adam_rows_2d(_as_rows(weight, d), _as_rows(mean, d), _as_rows(var, d), rows,
                 _as_rows(grad_rows, rows.shape[0]), lr_t, wd, beta1, beta2, eps, rescale_grad,
                 clip_gradient)


@njit(cache=True)
def ftrl_update(weight, z, n, grad, lr, wd, lamda1, beta, rescale_grad, clip_gradient):
    """Dense FTRL-proximal (MXNet's ``ftrl_update``), in place on ``weight``, ``z`` and ``n``."""
    ftrl_flat(weight.reshape(weight.size), z.reshape(z.size), n.reshape(n.size), grad.reshape(grad.size),
              lr, wd, lamda1, beta, rescale_grad, clip_gradient)


@njit(cache=True)
def ftrl_update_rows(weight, z, n, rows, grad_rows, lr, wd, lamda1, beta, rescale_grad, clip_gradient):
    """Lazy FTRL: ``weight[rows]``, ``z[rows]`` and ``n[rows]`` only."""
    if rows.shape[0] == 0:
        return
    d = weight.shape[0]
    ftrl_rows_2d(_as_rows(weight, d), _as_rows(z, d), _as_rows(n, d), rows,
                 _as_rows(grad_rows, rows.shape[0]), lr, wd, lamda1, beta, rescale_grad, clip_gradient)


# -- dispatch by kind (for fused loops) ----------------------------------------------------------

@njit(cache=True)
def apply_rows(kind, weight, s1, s2, rows, grad_rows, lr, wd, t, hyper):
    """Lazy update of ``weight[rows]`` (2-D, any layout) by optimizer ``kind``.

    ``grad_rows[i]`` is the gradient of row ``rows[i]``. ``s1``/``s2`` are the state arrays
    (momentum; history; mean, var; z, n) shaped like ``weight``, or any array of the same type
    where the optimizer has fewer states. ``lr`` is the scheduled learning rate (Adam's bias
    correction is applied here from the update count ``t`` ≥ 1); ``hyper`` from :func:`make_hyper`.
    """
    rescale = hyper[H_RESCALE]
    clip = hyper[H_CLIP]
    if kind == KIND_SGD:
        sgd_rows_2d(weight, rows, grad_rows, lr, wd, rescale, clip)
    elif kind == KIND_SGD_MOM:
        sgd_mom_rows_2d(weight, s1, rows, grad_rows, lr, wd, hyper[H_MOMENTUM], rescale, clip)
    elif kind == KIND_ADAGRAD:
        adagrad_rows_2d(weight, s1, rows, grad_rows, lr, wd, hyper[H_EPS], rescale, clip)
    elif kind == KIND_ADAM:
        lr_t = adam_bias_corrected_lr(lr, hyper[H_BETA1], hyper[H_BETA2], t)
        adam_rows_2d(weight, s1, s2, rows, grad_rows, lr_t, wd, hyper[H_BETA1], hyper[H_BETA2],
                     hyper[H_EPS], rescale, clip)
    elif kind == KIND_FTRL:
        ftrl_rows_2d(weight, s1, s2, rows, grad_rows, lr, wd, hyper[H_LAMDA1], hyper[H_BETA], rescale,
                     clip)


@njit(cache=True)
def apply_flat(kind, weight, s1, s2, grad, lr, wd, t, hyper):
    """Dense update of a 1-D ``weight`` by optimizer ``kind`` (see :func:`apply_rows`)."""
    rescale = hyper[H_RESCALE]
    clip = hyper[H_CLIP]
    if kind == KIND_SGD:
        sgd_flat(weight, grad, lr, wd, rescale, clip)
    elif kind == KIND_SGD_MOM:
        sgd_mom_flat(weight, s1, grad, lr, wd, hyper[H_MOMENTUM], rescale, clip)
    elif kind == KIND_ADAGRAD:
        adagrad_flat(weight, s1, grad, lr, wd, hyper[H_EPS], rescale, clip)
    elif kind == KIND_ADAM:
        lr_t = adam_bias_corrected_lr(lr, hyper[H_BETA1], hyper[H_BETA2], t)
        adam_flat(weight, s1, s2, grad, lr_t, wd, hyper[H_BETA1], hyper[H_BETA2], hyper[H_EPS], rescale,
                  clip)
    elif kind == KIND_FTRL:
        ftrl_flat(weight, s1, s2, grad, lr, wd, hyper[H_LAMDA1], hyper[H_BETA], rescale, clip)


# -- one sample's gradient, never materialised: row rows[p] gets coef[p] * g_row ----------------

@njit(cache=True)
def sgd_outer_rows(weight, rows, coef, lo, hi, g_row, lr, wd, rescale_grad, clip_gradient):
    if wd == 0.0 and clip_gradient <= 0.0 and weight.shape[1] == 1:
        # the plain case, bit for bit sgd_step's result ((1 - lr*0) * w == w) with less work
        g = g_row[0]
        for p in range(lo, hi):
            r = _row(rows[p])
            weight[r, 0] = weight[r, 0] - lr * (rescale_grad * (coef[p] * g))
        return
    for p in range(lo, hi):
        r = _row(rows[p])
        v = coef[p]
        for j in range(weight.shape[1]):
            weight[r, j] = sgd_step(weight[r, j], v * g_row[j], lr, wd, rescale_grad, clip_gradient)


@njit(cache=True)
def sgd_mom_outer_rows(weight, mom, rows, coef, lo, hi, g_row, lr, wd, momentum, rescale_grad, clip_gradient):
    for p in range(lo, hi):
        r = _row(rows[p])
        v = coef[p]
        for j in range(weight.shape[1]):
            w, m = sgd_mom_step(weight[r, j], mom[r, j], v * g_row[j], lr, wd, momentum, rescale_grad,
                                clip_gradient)
            weight[r, j] = w
            mom[r, j] = m


@njit(cache=True)
def adagrad_outer_rows(weight, history, rows, coef, lo, hi, g_row, lr, wd, eps, rescale_grad, clip_gradient):
    for p in range(lo, hi):
        r = _row(rows[p])
        v = coef[p]
        for j in range(weight.shape[1]):
            w, h = adagrad_step(weight[r, j], history[r, j], v * g_row[j], lr, wd, eps, rescale_grad,
                                clip_gradient)
            weight[r, j] = w
            history[r, j] = h


@njit(cache=True)
def adam_outer_rows(weight, mean, var, rows, coef, lo, hi, g_row, lr_t, wd, beta1, beta2, eps, rescale_grad,
                    clip_gradient):
    for p in range(lo, hi):
        r = _row(rows[p])
        v = coef[p]
        for j in range(weight.shape[1]):
            w, m, vv = adam_step(weight[r, j], mean[r, j], var[r, j], v * g_row[j], lr_t, wd, beta1, beta2, eps,
                                 rescale_grad, clip_gradient)
            weight[r, j] = w
            mean[r, j] = m
            var[r, j] = vv


@njit(cache=True)
def ftrl_outer_rows(weight, z, n, rows, coef, lo, hi, g_row, lr, wd, lamda1, beta, rescale_grad, clip_gradient):
    for p in range(lo, hi):
        r = _row(rows[p])
        v = coef[p]
        for j in range(weight.shape[1]):
            w, zz, nn = ftrl_step(weight[r, j], z[r, j], n[r, j], v * g_row[j], lr, wd, lamda1, beta,
                                  rescale_grad, clip_gradient)
            weight[r, j] = w
            z[r, j] = zz
            n[r, j] = nn


@njit(cache=True)
def apply_outer_rows(kind, weight, s1, s2, rows, coef, lo, hi, g_row, lr, wd, t, hyper):
    """Lazy update of rows ``rows[lo:hi]`` whose gradient is the outer product ``coef[p] * g_row``.

    That is the weight gradient of one sample of ``dot(csr_row, W)``: row ``rows[p]`` gets
    ``coef[p] * g_row[k]`` (the product taken in the arrays' dtype, as a materialised gradient
    would hold it), without building the gradient rows. ``rows[lo:hi]`` must be distinct.
    Arguments otherwise as :func:`apply_rows`.
    """
    rescale = hyper[H_RESCALE]
    clip = hyper[H_CLIP]
    if kind == KIND_SGD:
        sgd_outer_rows(weight, rows, coef, lo, hi, g_row, lr, wd, rescale, clip)
    elif kind == KIND_SGD_MOM:
        sgd_mom_outer_rows(weight, s1, rows, coef, lo, hi, g_row, lr, wd, hyper[H_MOMENTUM], rescale, clip)
    elif kind == KIND_ADAGRAD:
        adagrad_outer_rows(weight, s1, rows, coef, lo, hi, g_row, lr, wd, hyper[H_EPS], rescale, clip)
    elif kind == KIND_ADAM:
        lr_t = adam_bias_corrected_lr(lr, hyper[H_BETA1], hyper[H_BETA2], t)
        adam_outer_rows(weight, s1, s2, rows, coef, lo, hi, g_row, lr_t, wd, hyper[H_BETA1], hyper[H_BETA2],
                        hyper[H_EPS], rescale, clip)
    elif kind == KIND_FTRL:
        ftrl_outer_rows(weight, s1, s2, rows, coef, lo, hi, g_row, lr, wd, hyper[H_LAMDA1], hyper[H_BETA],
                        rescale, clip)
