"""One random stream for the whole library, so a seed makes a run reproducible."""
from __future__ import annotations

import numpy as np

_rng = np.random.default_rng()


def seed(seed_state: int, ctx=None) -> None:
    """Seed sparsetrain's generator (initializers, shuffling, ``rand_ndarray``) and numpy's global one."""
    global _rng
    _rng = np.random.default_rng(int(seed_state))
    np.random.seed(int(seed_state) % (2**32))


def generator() -> np.random.Generator:
    return _rng


def _sample(draw, shape, dtype, out):
    """Samples of ``shape`` (or ``out``'s shape) from ``draw(size)``; written into ``out`` when given.

    As MXNet, ``out`` may be of any storage type: every element is drawn, so a row_sparse or csr
    ``out`` ends up holding all its rows; equal seeds give equal values whatever ``out``'s stype.
    """
    from .ndarray import NDArray

    if out is not None:
        shape, dtype = out.shape, (dtype or out.dtype)
    shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in (shape or (1,)))
    values = NDArray(np.asarray(draw(shape), dtype=np.dtype(dtype or "float32")))
    if out is None:
        return values
    out[:] = values
    return out


def uniform(low=0.0, high=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Uniform samples in ``[low, high)``."""
    return _sample(lambda size: _rng.uniform(low, high, size=size), shape, dtype, out)


def normal(loc=0.0, scale=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Normal samples with mean ``loc`` and standard deviation ``scale``."""
    return _sample(lambda size: _rng.normal(loc, scale, size=size), shape, dtype, out)


def gamma(alpha=1.0, beta=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Gamma samples with shape ``alpha`` and scale ``beta``."""
    return _sample(lambda size: _rng.gamma(alpha, beta, size=size), shape, dtype, out)


def exponential(scale=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Exponential samples with mean ``scale``."""
    return _sample(lambda size: _rng.exponential(scale, size=size), shape, dtype, out)


def poisson(lam=1.0, shape=None, dtype=None, ctx=None, out=None, **kwargs):
    """Poisson samples with rate ``lam`` (as floats, like MXNet)."""
    return _sample(lambda size: _rng.poisson(lam, size=size), shape, dtype, out)


def get_state() -> dict:
    """The full random state (sparsetrain's generator and numpy's global one), for checkpoints."""
    return {"generator": _rng.bit_generator.state, "numpy": np.random.get_state()}


def set_state(state: dict) -> None:
    global _rng
    _rng = np.random.default_rng()
    _rng.bit_generator.state = state["generator"]
    np.random.set_state(state["numpy"])
