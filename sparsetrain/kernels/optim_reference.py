"""Plain-numpy references of the optimizer rules in :mod:`sparsetrain.kernels.optim`, for tests.

Written in the textbook form of each formula (not MXNet's operator order), in float64, so that
agreement with the kernels is a real check. Every function returns new arrays and never mutates
its inputs; the ``*_rows`` variants apply the same rule to ``rows`` only and copy every other
row unchanged (lazy update).
"""
from __future__ import annotations

import numpy as np


def prepare_grad(g, rescale_grad=1.0, clip_gradient=None):
    r = rescale_grad * np.asarray(g, dtype=np.float64)
    if clip_gradient is not None and clip_gradient > 0:
        r = np.clip(r, -clip_gradient, clip_gradient)
    return r


def sgd(w, g, lr, wd=0.0, rescale_grad=1.0, clip_gradient=None):
    w = np.asarray(w, dtype=np.float64)
    return w - lr * (prepare_grad(g, rescale_grad, clip_gradient) + wd * w)


def sgd_mom(w, mom, g, lr, momentum, wd=0.0, rescale_grad=1.0, clip_gradient=None):
    w = np.asarray(w, dtype=np.float64)
    mom = momentum * np.asarray(mom, dtype=np.float64) - lr * (prepare_grad(g, rescale_grad, clip_gradient) + wd * w)
    return w + mom, mom


def adagrad(w, hist, g, lr, eps=1e-7, wd=0.0, rescale_grad=1.0, clip_gradient=None):
    w = np.asarray(w, dtype=np.float64)
    r = prepare_grad(g, rescale_grad, clip_gradient)
    hist = np.asarray(hist, dtype=np.float64) + r**2
    return w - lr * (r / np.sqrt(hist + eps) + wd * w), hist


def adam_lr(lr, t, beta1=0.9, beta2=0.999):
    return lr * np.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)


def adam(w, mean, var, g, lr, t, beta1=0.9, beta2=0.999, eps=1e-8, wd=0.0, rescale_grad=1.0,
         clip_gradient=None):
    """One Adam step at update count ``t`` (1-based); ``lr`` is the un-corrected rate."""
    w = np.asarray(w, dtype=np.float64)
    r = rescale_grad * np.asarray(g, dtype=np.float64) + wd * w
    if clip_gradient is not None and clip_gradient > 0:
        r = np.clip(r, -clip_gradient, clip_gradient)
    mean = beta1 * np.asarray(mean, dtype=np.float64) + (1 - beta1) * r
    var = beta2 * np.asarray(var, dtype=np.float64) + (1 - beta2) * r**2
    return w - adam_lr(lr, t, beta1, beta2) * mean / (np.sqrt(var) + eps), mean, var


def ftrl(w, z, n, g, lr, lamda1=0.01, beta=1.0, wd=0.0, rescale_grad=1.0, clip_gradient=None):
    w = np.asarray(w, dtype=np.float64)
    r = prepare_grad(g, rescale_grad, clip_gradient)
    n = np.asarray(n, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64) + r - (np.sqrt(n + r**2) - np.sqrt(n)) * w / lr
    n = n + r**2
    w = (np.sign(z) * lamda1 - z) / ((beta + np.sqrt(n)) / lr + wd) * (np.abs(z) > lamda1)
    return w, z, n


def lazy(rule, arrays, rows, grad_rows, *args, **kwargs):
    """Apply ``rule(*[a[rows] for a in arrays], grad_rows, ...)`` to ``rows`` only.

    ``arrays`` are the weight followed by its states; returns new float64 arrays in that order.
    """
    rows = np.asarray(rows, dtype=np.int64)
    out = [np.array(a, dtype=np.float64) for a in arrays]
    res = rule(*[a[rows] for a in out], grad_rows, *args, **kwargs)
    res = res if isinstance(res, tuple) else (res,)
    for a, r in zip(out, res):
        a[rows] = r
    return out


# -- the rules table's references: one signature, ``(w, states, g, lr, wd, t, h) -> (w, *states)`` ---
# ``h`` is the kernels' packed tuple ``(rescale_grad, clip_gradient (≤ 0: none), *the rule's own)``.

def _common(h):
    return dict(rescale_grad=h[0], clip_gradient=h[1] if h[1] > 0 else None)


def sgd_rule(w, states, g, lr, wd, t, h):
    return (sgd(w, g, lr, wd=wd, **_common(h)),)


def sgd_mom_rule(w, states, g, lr, wd, t, h):
    return sgd_mom(w, states[0], g, lr, h[2], wd=wd, **_common(h))


def adagrad_rule(w, states, g, lr, wd, t, h):
    return adagrad(w, states[0], g, lr, eps=h[2], wd=wd, **_common(h))


def adam_rule(w, states, g, lr, wd, t, h):
    return adam(w, states[0], states[1], g, lr, t, beta1=h[2], beta2=h[3], eps=h[4], wd=wd, **_common(h))


def ftrl_rule(w, states, g, lr, wd, t, h):
    return ftrl(w, states[0], states[1], g, lr, lamda1=h[2], beta=h[3], wd=wd, **_common(h))
