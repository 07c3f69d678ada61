"""Learning-rate schedules, as MXNet 1.x's ``mx.lr_scheduler``.

A scheduler maps ``num_update`` — the largest number of updates applied to any one parameter —
to a learning rate. Like MXNet's, ``FactorScheduler`` and ``MultiFactorScheduler`` are stateful
(they decay ``base_lr`` in place as ``num_update`` passes each step) and expect non-decreasing
``num_update`` values.

:meth:`LRScheduler.learning_rates` evaluates a whole run of updates at once without touching the
scheduler's state, so that a fused epoch kernel can take the rates as an array and produce the same
numbers as calling the scheduler once per step.
"""
from __future__ import annotations

import copy
import logging
import math

import numpy as np

__all__ = ["LRScheduler", "FactorScheduler", "MultiFactorScheduler", "PolyScheduler", "CosineScheduler"]

_log = logging.getLogger(__name__)


class LRScheduler:
    """Base class of learning-rate schedulers.

    Parameters
    ----------
    base_lr : float
        The rate after warm-up (an optimizer's ``learning_rate`` overrides it).
    warmup_steps : int
        Number of initial updates during which the rate warms up.
    warmup_begin_lr : float
        The rate at update 0 of the warm-up.
    warmup_mode : 'linear' | 'constant'
        Linear ramp from ``warmup_begin_lr`` to ``base_lr``, or ``warmup_begin_lr`` throughout.
    """

    def __init__(self, base_lr=0.01, warmup_steps=0, warmup_begin_lr=0, warmup_mode="linear"):
        self.base_lr = base_lr
        if not isinstance(warmup_steps, int):
            raise ValueError(f"warmup_steps must be an int, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps
        self.warmup_final_lr = base_lr
        self.warmup_begin_lr = warmup_begin_lr
        if self.warmup_begin_lr > self.warmup_final_lr:
            raise ValueError("Base lr has to be higher than warmup_begin_lr")
        if self.warmup_steps < 0:
            raise ValueError("Warmup steps has to be positive or 0")
        if warmup_mode not in ("linear", "constant"):
            raise ValueError("Supports only linear and constant modes of warmup")
        self.warmup_mode = warmup_mode

    def get_warmup_lr(self, num_update):
        if self.warmup_mode == "linear":
            increase = (self.warmup_final_lr - self.warmup_begin_lr) * float(num_update) / float(self.warmup_steps)
            return self.warmup_begin_lr + increase
        return self.warmup_begin_lr

    def __call__(self, num_update):
        """The learning rate at ``num_update`` (the maximal number of updates of any weight)."""
        raise NotImplementedError("must override this")

    def learning_rates(self, num_updates) -> np.ndarray:
        """Rates for the non-decreasing ``num_updates``, as successive calls would return them.

        Does not change this scheduler's state (the default implementation calls a copy).
        """
        sched = copy.deepcopy(self)
        nu = np.asarray(num_updates, dtype=np.int64)
        if nu.size == 0:
            return np.zeros(0, dtype=np.float64)
        # repeated values (several parameters per round) give the same rate: call once per value
        starts = np.flatnonzero(np.r_[True, nu[1:] != nu[:-1]])
        rates = np.array([sched(int(u)) for u in nu[starts]], dtype=np.float64)
        return np.repeat(rates, np.diff(np.r_[starts, nu.size]))

    def advance(self, old_num_update, new_num_update) -> None:
        """Bring the state to where calls for every update in ``(old, new]`` would leave it."""
        for u in range(int(old_num_update) + 1, int(new_num_update) + 1):
            self(u)

    def _warmup_mask(self, nu: np.ndarray):
        """(mask of updates still warming up, their rates) for vectorised ``learning_rates``."""
        mask = nu < self.warmup_steps
        rates = np.empty(int(mask.sum()), dtype=np.float64)
        for i, u in enumerate(nu[mask]):  # warm-up is short; keep the scalar arithmetic exact
            rates[i] = self.get_warmup_lr(int(u))
        return mask, rates

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_lr={self.base_lr})"


class _StepDecay(LRScheduler):
    """A stateful schedule that multiplies ``base_lr`` as ``num_update`` passes its steps (MXNet's
    factor schedules): one call catches up any number of steps; ``_decayed_rates`` gives the rates
    after warm-up for non-decreasing ``num_update`` values without changing the state."""

    def _decayed_rates(self, nu: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def advance(self, old_num_update, new_num_update) -> None:
        if new_num_update > old_num_update:
            self(int(new_num_update))  # the decay loop catches up in one call

    def learning_rates(self, num_updates) -> np.ndarray:
        nu = np.asarray(num_updates, dtype=np.int64)
        out = np.empty(nu.shape[0], dtype=np.float64)
        warm, warm_rates = self._warmup_mask(nu)
        out[warm] = warm_rates
        rest = nu[~warm]
        if rest.size:
            out[~warm] = self._decayed_rates(rest)
        return out


class FactorScheduler(_StepDecay):
    """Multiply the rate by ``factor`` every ``step`` updates: ``base_lr * factor**floor((n-1)/step)``.

    The rate never goes below ``stop_factor_lr``.
    """

    def __init__(self, step, factor=1, stop_factor_lr=1e-8, base_lr=0.01, warmup_steps=0,
                 warmup_begin_lr=0, warmup_mode="linear"):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if step < 1:
            raise ValueError("Schedule step must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.step = step
        self.factor = factor
        self.stop_factor_lr = stop_factor_lr
        self.count = 0

    def _decay(self, lr):
        lr *= self.factor
        return self.stop_factor_lr if lr < self.stop_factor_lr else lr

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        # a while, not an if: training resumed from a checkpoint may skip several steps
        while num_update > self.count + self.step:
            self.count += self.step
            self.base_lr = self._decay(self.base_lr)
            _log.debug("Update[%d]: change learning rate to %0.5e", num_update, self.base_lr)
        return self.base_lr

    def _decayed_rates(self, nu: np.ndarray) -> np.ndarray:
        # number of decays the while-loop would perform for each num_update
        k = np.maximum(0, -((self.count - nu) // self.step) - 1)
        table = [self.base_lr]
        kmax = int(k.max())
        while len(table) <= kmax:
            nxt = self._decay(table[-1])
            if nxt == table[-1]:  # clamped at stop_factor_lr, or factor == 1: constant from here
                break
            table.append(nxt)
        return np.asarray(table, dtype=np.float64)[np.minimum(k, len(table) - 1)]


class MultiFactorScheduler(_StepDecay):
    """Multiply the rate by ``factor`` each time ``num_update`` passes one of the increasing ``step`` values."""

    def __init__(self, step, factor=1, base_lr=0.01, warmup_steps=0, warmup_begin_lr=0,
                 warmup_mode="linear"):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if not isinstance(step, (list, tuple)) or len(step) < 1:
            raise ValueError("step must be a non-empty list of increasing integers")
        for i, s in enumerate(step):
            if i != 0 and step[i] <= step[i - 1]:
                raise ValueError("Schedule step must be an increasing integer list")
            if s < 1:
                raise ValueError("Schedule step must be greater or equal than 1 round")
        if factor > 1.0:
            raise ValueError("Factor must be no more than 1 to make lr reduce")
        self.step = list(step)
        self.cur_step_ind = 0
        self.factor = factor
        self.count = 0

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        while self.cur_step_ind <= len(self.step) - 1:
            if num_update > self.step[self.cur_step_ind]:
                self.count = self.step[self.cur_step_ind]
                self.cur_step_ind += 1
                self.base_lr *= self.factor
                _log.debug("Update[%d]: change learning rate to %0.5e", num_update, self.base_lr)
            else:
                return self.base_lr
        return self.base_lr

    def _decayed_rates(self, nu: np.ndarray) -> np.ndarray:
        remaining = np.asarray(self.step[self.cur_step_ind:], dtype=np.int64)
        k = np.searchsorted(remaining, nu, side="left")  # steps strictly below num_update
        table = [self.base_lr]
        for _ in range(len(remaining)):
            table.append(table[-1] * self.factor)
        return np.asarray(table, dtype=np.float64)[k]


class _DecayUntilMaxUpdate(LRScheduler):
    """A schedule whose rate is a function of ``num_update`` up to ``max_update`` and then stays put:
    ``final_lr + (base_lr - final_lr) * decay(n - warmup_steps)`` after warm-up."""

    def __init__(self, max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode):
        super().__init__(base_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if not isinstance(max_update, int) or max_update < 1:
            raise ValueError("maximum number of updates must be strictly positive")
        self.base_lr_orig = self.base_lr
        self.max_update = max_update
        self.final_lr = final_lr
        self.max_steps = self.max_update - self.warmup_steps

    def _decay(self, t: int) -> float:
        """The fraction of ``base_lr - final_lr`` left ``t`` updates after warm-up (1 at 0)."""
        raise NotImplementedError

    def __call__(self, num_update):
        if num_update < self.warmup_steps:
            return self.get_warmup_lr(num_update)
        if num_update <= self.max_update:
            self.base_lr = self.final_lr + (self.base_lr_orig - self.final_lr) * self._decay(
                num_update - self.warmup_steps)
        return self.base_lr

    def advance(self, old_num_update, new_num_update) -> None:
        if new_num_update > old_num_update:
            last = min(int(new_num_update), self.max_update)
            if last > old_num_update:
                self(last)
            self(int(new_num_update))


class PolyScheduler(_DecayUntilMaxUpdate):
    """``final_lr + (base_lr - final_lr) * (1 - n/max_update)**pwr`` for ``n ≤ max_update``, after warm-up."""

    def __init__(self, max_update, base_lr=0.01, pwr=2, final_lr=0, warmup_steps=0, warmup_begin_lr=0,
                 warmup_mode="linear"):
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        self.power = pwr

    def _decay(self, t):
        return pow(1 - float(t) / float(self.max_steps), self.power)


class CosineScheduler(_DecayUntilMaxUpdate):
    """Cosine decay from ``base_lr`` to ``final_lr`` over ``max_update`` updates, after warm-up."""

    def __init__(self, max_update, base_lr=0.01, final_lr=0, warmup_steps=0, warmup_begin_lr=0,
                 warmup_mode="linear"):
        super().__init__(max_update, base_lr, final_lr, warmup_steps, warmup_begin_lr, warmup_mode)
        if base_lr < final_lr:
            raise ValueError("Base lr has to be higher than final lr")

    def _decay(self, t):
        return (1 + math.cos(math.pi * t / self.max_steps)) / 2
