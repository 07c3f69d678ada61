"""Objects the config describes: the optimizer and its learning-rate scheduler."""
from __future__ import annotations

import inspect

from ..base import ConfigError, did_you_mean
from ..validation import message

LR_SCHEDULERS = {"factor": "FactorScheduler", "multifactor": "MultiFactorScheduler", "poly": "PolyScheduler",
                 "cosine": "CosineScheduler"}


def optimizer_params(opt, batch_size: int) -> dict:
    """Keyword arguments of the optimizer section ``opt`` (``rescale_grad`` defaults to 1/batch_size)."""
    params = {k: v for k, v in opt.model_dump(exclude={"name", "lr_scheduler"}).items() if v is not None}
    params.setdefault("rescale_grad", 1.0 / batch_size)
    if opt.lr_scheduler:
        params["lr_scheduler"] = make_lr_scheduler(opt.lr_scheduler, opt.learning_rate or 0.01)
    return params


def make_optimizer(cfg):
    """The optimizer object the config describes (``rescale_grad`` defaults to 1/batch_size)."""
    from .. import optimizer as opt_mod

    registry = getattr(getattr(opt_mod, "Optimizer", None), "opt_registry", {})
    cls = registry.get(cfg.optimizer.name.lower())
    if cls is None and registry:
        raise ConfigError(f"optimizer.name: unknown optimizer {cfg.optimizer.name!r}"
                          f"{did_you_mean(cfg.optimizer.name.lower(), registry)}; allowed: {', '.join(registry)}")
    if cls is not None:
        accepted = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None:
                accepted |= {p for p in inspect.signature(init).parameters if p not in ("self", "kwargs")}
        for key in cfg.optimizer.optimizer_params(cfg.data.batch_size):
            if key not in accepted:
                raise ConfigError(f"optimizer.{key}: not a parameter of {cfg.optimizer.name}"
                                  f"{did_you_mean(key, accepted)}")
    return opt_mod.create(cfg.optimizer.name, **cfg.optimizer.optimizer_params(cfg.data.batch_size))


def make_lr_scheduler(spec: dict, base_lr: float):
    """The scheduler of ``optimizer.lr_scheduler`` (``{kind: {params}}``), starting from ``base_lr``."""
    from .. import lr_scheduler

    if len(spec) != 1:
        raise ConfigError("optimizer.lr_scheduler: give one scheduler, e.g. {factor: {step: 1000, factor: 0.9}}")
    (kind, params), = spec.items()
    cls_name = LR_SCHEDULERS.get(kind)
    if cls_name is None:
        raise ConfigError(f"optimizer.lr_scheduler.{kind}: unknown scheduler{did_you_mean(kind, LR_SCHEDULERS)}; "
                          f"allowed: {', '.join(LR_SCHEDULERS)}")
    try:
        return getattr(lr_scheduler, cls_name)(**{"base_lr": base_lr, **(params or {})})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"optimizer.lr_scheduler.{kind}: {message(e)}") from None
