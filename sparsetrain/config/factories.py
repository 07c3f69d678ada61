"""Objects the config describes: the optimizer and its learning-rate scheduler."""
from __future__ import annotations

from ..base import ConfigError, did_you_mean
from ..validation import join_path, message, refuse_bools, refuse_unknown_keywords

LR_SCHEDULERS = {"factor": "FactorScheduler", "multifactor": "MultiFactorScheduler", "poly": "PolyScheduler",
                 "cosine": "CosineScheduler"}


def optimizer_class(name: str):
    """The registered optimizer class ``name`` (case-insensitive); ``ConfigError`` naming ``optimizer.name``."""
    from .. import optimizer as opt_mod

    registry = opt_mod.Optimizer.opt_registry
    cls = registry.get(name.lower())
    if cls is None:
        raise ConfigError(f"optimizer.name: unknown optimizer {name!r}{did_you_mean(name.lower(), registry)}; "
                          f"allowed: {', '.join(registry)}")
    return cls


def optimizer_params(opt, batch_size: int, sync_workers: int = 1) -> dict:
    """Keyword arguments of the optimizer section ``opt``.

    ``rescale_grad`` defaults to :func:`~sparsetrain.optimizer.default_rescale_grad`. With an
    ``lr_scheduler``, the optimizer and its scheduler start from one rate: ``learning_rate`` if
    given, else the scheduler's ``base_lr`` if given, else the optimizer's own default.
    """
    from ..optimizer import default_rescale_grad

    params = {k: v for k, v in opt.model_dump(exclude={"name", "lr_scheduler"}).items() if v is not None}
    params.setdefault("rescale_grad", default_rescale_grad(batch_size, sync_workers))
    if opt.lr_scheduler:
        given = next(iter(opt.lr_scheduler.values()), None) or {}
        base_lr = given.get("base_lr") if isinstance(given, dict) else None
        lr = opt.learning_rate if opt.learning_rate is not None else base_lr
        if lr is None:
            lr = optimizer_class(opt.name)().lr
        params["lr_scheduler"] = make_lr_scheduler(opt.lr_scheduler, lr)
        params["learning_rate"] = lr
    return params


# The optimizers' own parameters (beyond the schema's keys) that have a valid range: outside it a run
# only diverges later (Adam with beta1: 2 stopped at a NaN loss, advising a lower learning rate).
_PARAM_RANGES = {
    "beta1": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "beta2": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "epsilon": (lambda v: v > 0, "> 0"),
    "lamda1": (lambda v: v >= 0, ">= 0"),
    "beta": (lambda v: v >= 0, ">= 0"),
}


def make_optimizer(cfg, sync_workers: int = 1):
    """The optimizer object the config describes, for ``sync_workers`` workers summing their gradients."""
    from .. import optimizer as opt_mod

    cls = optimizer_class(cfg.optimizer.name)
    params = cfg.optimizer.optimizer_params(cfg.data.batch_size, sync_workers)
    # (its parameters beside MXNet's internal ones, sym and param_idx2name, too many to list)
    refuse_unknown_keywords(cls, params, "optimizer", cfg.optimizer.name, allowed=False)
    for key in params:
        ok, allowed = _PARAM_RANGES.get(key, (None, None))
        value = params[key]
        if ok is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and ok(value)):
            raise ConfigError(f"{join_path(['optimizer', key])}: must be a number {allowed} (got {value!r})")
    # the graph's ``__lr_mult__`` / ``__wd_mult__`` (``model.variables.NAME.lr_mult``) by parameter name
    return opt_mod.create(cfg.optimizer.name, sym=cfg.build_symbol(), **params)


def make_lr_scheduler(spec: dict, base_lr: float):
    """The scheduler of ``optimizer.lr_scheduler`` (``{kind: {params}}``), starting from ``base_lr``."""
    from .. import lr_scheduler

    if len(spec) != 1:
        raise ConfigError("optimizer.lr_scheduler: give one scheduler, e.g. {factor: {step: 1000, factor: 0.9}}")
    (kind, params), = spec.items()
    cls_name = LR_SCHEDULERS.get(kind)
    if cls_name is None:
        raise ConfigError(f"{join_path(['optimizer', 'lr_scheduler', kind])}: unknown scheduler"
                          f"{did_you_mean(kind, LR_SCHEDULERS)}; "
                          f"allowed: {', '.join(LR_SCHEDULERS)}")
    path = join_path(["optimizer", "lr_scheduler", kind])
    refuse_bools(params, path)  # (no scheduler parameter is a switch)
    refuse_unknown_keywords(getattr(lr_scheduler, cls_name), params, path, f"the {kind} scheduler")
    try:
        return getattr(lr_scheduler, cls_name)(**{"base_lr": base_lr, **(params or {})})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{path}: {message(e)}") from None
