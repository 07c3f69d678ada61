"""Metric helpers of the run loop: metric objects from names, epoch records, targets and bests."""
from __future__ import annotations

# Keys of a ``metrics.jsonl`` record that are not metric values (the rest are, e.g. ``mse``, ``eval_mse``).
RECORD_FIELDS = ("epoch", "samples", "seconds", "data_seconds", "compile_seconds", "engine", "kvstore", "workers",
                 "servers", "steps", "bytes", "bytes_per_step", "sync_every", "blocks", "batches", "bytes_per_block",
                 "worker_seconds", "wait_seconds", "train_seconds", "worker_cpu_seconds", "server_cpu_seconds")


def make_metric(names: list[str]):
    """One metric object for ``run_epoch`` / ``score`` that updates all of ``names``."""
    from .. import metric as metric_mod

    return metric_mod.CompositeEvalMetric([metric_mod.create(n) for n in names])


def metric_values(names: list[str], metric) -> dict:
    """``{config name: value}`` (keys as written in ``train.metrics``, e.g. ``acc`` stays ``acc``)."""
    return {n: float(v) for n, v in zip(names, metric.get()[1])}


def record_metrics(record: dict) -> dict:
    """The metric values of an epoch record (``mse``, ``eval_mse``, ...), in record order."""
    return {k: v for k, v in record.items() if k not in RECORD_FIELDS}


def best_values(history: list[dict]) -> dict:
    """``{metric key: best value over the epochs}``, each in its metric's direction (the metric catalogue's)."""
    from .. import metric as metric_mod

    keys = list(dict.fromkeys(k for record in history for k in record_metrics(record)))
    return {k: metric_mod.best(k, [r[k] for r in history if k in r]) for k in keys}


def target_misses(targets: dict, final: dict) -> list[str]:
    """Messages for every ``train.target`` the final epoch record misses."""
    from .. import metric as metric_mod

    missed = []
    for key, want in targets.items():
        got = final.get(key)
        if not metric_mod.target_met(key, got, want):
            relation = metric_mod.target_relation(key)
            missed.append(f"target {key} {relation} {want:g} missed: final {key} is {got:.6g}" if got is not None
                          else f"target {key} missed: no value")
    return missed


class BestEpoch:
    """The best epoch so far by one metric key, and early stopping (``train.early_stopping``).

    ``key``: the record key that picks the best epoch (``Config.best_metric``; ``None``: the last
    epoch is the best and nothing stops). Epochs are checkpoint numbers: the record of ``epoch e``
    is checkpoint ``e + 1``. Fed every record in order (also the ones read back on resume), so a
    resumed run decides exactly as an uninterrupted one.
    """

    def __init__(self, key: str | None, patience: int | None = None, min_delta: float = 0.0):
        from .. import metric as metric_mod

        self.key = key
        self.patience = patience
        self.min_delta = float(min_delta)
        self.lower = metric_mod.lower_is_better(key) if key else True
        self.epoch: int | None = None  # checkpoint number of the best epoch
        self.value: float | None = None
        self.stale = 0  # epochs since the last improvement

    @classmethod
    def from_config(cls, cfg) -> "BestEpoch":
        stop = cfg.train.early_stopping
        return cls(cfg.best_metric, stop.patience if stop else None, stop.min_delta if stop else 0.0)

    def update(self, record: dict) -> None:
        import math

        checkpoint = int(record["epoch"]) + 1
        if self.key is None:
            self.epoch = checkpoint
            return
        value = record.get(self.key)
        finite = value is not None and math.isfinite(value)
        if finite and (self.value is None or self._improves(value)):
            self.epoch, self.value, self.stale = checkpoint, float(value), 0
        else:
            self.stale += 1

    def _improves(self, value: float) -> bool:
        if self.lower:
            return value < self.value - self.min_delta
        return value > self.value + self.min_delta

    @property
    def stop(self) -> bool:
        """Early stopping says stop: ``patience`` epochs without an improvement."""
        return self.patience is not None and self.stale >= self.patience

    def state(self) -> dict:
        """The ``best`` field of ``checkpoint.json`` (empty until an epoch was seen)."""
        if self.epoch is None:
            return {}
        return {"best": {"epoch": self.epoch, "metric": self.key, "value": self.value}}


class Progressive:
    """Progressive validation (``train.progressive``): every training row's label and its output
    from *before* the update of its batch, each row once (padding excluded); ``values()`` scores them
    all as one batch, so ``progressive_mse`` is the mean over rows (not over batches). Memory: one
    label and one output per row of the epoch (what ``auc`` keeps anyway)."""

    def __init__(self, names: list[str]):
        self.names = list(names)
        self.reset()

    def reset(self) -> None:
        self._labels: list = []
        self._outputs: list = []
        self._weights: list = []  # per update: the rows' importance weights, or None

    def update(self, labels, outputs, weights=None) -> None:
        import numpy as np

        self._labels.append(np.array(labels, copy=True))
        self._outputs.append(np.array(outputs, copy=True))
        self._weights.append(None if weights is None else np.array(weights, np.float64))

    def values(self) -> dict:
        """``{progressive_<metric>: value}`` over the rows seen since ``reset()``."""
        import numpy as np

        from ..ndarray import NDArray

        from ..metric import update_metric

        metric = make_metric(self.names)
        if self._labels:
            weights = None
            if any(w is not None for w in self._weights):
                weights = np.concatenate([np.ones(len(y)) if w is None else w
                                          for y, w in zip(self._labels, self._weights)])
            update_metric(metric, [NDArray(np.concatenate(self._labels))], [NDArray(np.concatenate(self._outputs))],
                          weights)
        return {f"progressive_{k}": v for k, v in metric_values(self.names, metric).items()}
