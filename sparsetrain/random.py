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


def uniform(low=0.0, high=1.0, shape=(1,), dtype="float32", **kwargs):
    from .ndarray import NDArray

    return NDArray(_rng.uniform(low, high, size=shape).astype(dtype))


def normal(loc=0.0, scale=1.0, shape=(1,), dtype="float32", **kwargs):
    from .ndarray import NDArray

    return NDArray(_rng.normal(loc, scale, size=shape).astype(dtype))


def get_state() -> dict:
    """The full random state (sparsetrain's generator and numpy's global one), for checkpoints."""
    return {"generator": _rng.bit_generator.state, "numpy": np.random.get_state()}


def set_state(state: dict) -> None:
    global _rng
    _rng = np.random.default_rng()
    _rng.bit_generator.state = state["generator"]
    np.random.set_state(state["numpy"])
