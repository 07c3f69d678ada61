"""MXNet's ``Updater``: applies an optimizer to parameters by index and keeps their states.

The states' round trip through data-only bytes (``get_states``/``set_states``, for
``save_optimizer_states`` and checkpoints) is :mod:`sparsetrain.optimizer_states`'s.
"""
from __future__ import annotations

import numpy as np

from . import optimizer_states as F
from .ndarray import BaseArray, NDArray
from .optimizer_buffers import state_buffer, state_parts

__all__ = ["Updater", "get_updater", "state_to_numpy", "state_from_numpy"]


def state_to_numpy(state, copy: bool = True):
    """A state (``None``, an array or a tuple of them) as numpy arrays of the same structure;
    ``copy=False``: a dense array's own buffer (to be written out at once, not kept)."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return tuple(state_to_numpy(s, copy) for s in state)
    if isinstance(state, BaseArray):
        return state.asnumpy() if copy or state.stype != "default" else state._data
    return np.array(state) if copy else np.asarray(state)


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

    def __init__(self, optimizer):
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
        self.optimizer.update_multi_precision(index, weight, grad, self.state(index, weight))

    def state(self, index, weight):
        """Parameter ``index``'s optimizer state, made as the optimizer makes it at a first update when missing."""
        state = self.states.get(index, _MISSING)
        if state is _MISSING:
            state = self.optimizer.create_state_multi_precision(index, weight)
            self.states[index] = state
            self.states_synced[index] = True
        return state

    def state_buffers(self, index, weight) -> tuple:
        """The numpy arrays of parameter ``index``'s optimizer state (see :meth:`state`), written in place."""
        return tuple(state_buffer(p) for p in state_parts(self.state(index, weight)))

    def sync_state_context(self, state, context):
        """States live on the CPU only; returned unchanged."""
        return state

    def get_states(self, dump_optimizer=False) -> bytes:
        """The states as data-only bytes (:mod:`sparsetrain.optimizer_states`): the arrays, the
        optimizer's update counts and scheduler position, and with ``dump_optimizer`` its settings."""
        return F.dumps(*self._saved(dump_optimizer))

    def save_states(self, path: str, dump_optimizer=False) -> None:
        """What :meth:`get_states` returns, written atomically to the file ``path``."""
        F.save(path, *self._saved(dump_optimizer))

    def _saved(self, dump_optimizer: bool) -> tuple:
        states = {k: state_to_numpy(v, copy=False) for k, v in self.states.items()}  # (written out at once)
        config = F.optimizer_config(self.optimizer) if dump_optimizer else None
        return states, F.optimizer_progress(self.optimizer), config

    def set_states(self, states: bytes, source: str = "optimizer states") -> None:
        """Restore what :meth:`get_states` returned; existing state objects are refilled in place.

        The update counts and the scheduler's position are restored too (exact resume); an
        optimizer saved with ``dump_optimizer`` replaces this one. ``source`` names the file in
        errors. Never unpickles: an old pickled file raises :class:`~sparsetrain.base.DataFormatError`.
        """
        loaded, progress, config = F.loads(states, source)
        if config is not None:
            self.optimizer = F.optimizer_from_config(config, self.optimizer, source)
        F.check_states(self.optimizer, loaded, progress, source)
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


def get_updater(optimizer) -> Updater:
    """An :class:`Updater` for ``optimizer``."""
    return Updater(optimizer)
