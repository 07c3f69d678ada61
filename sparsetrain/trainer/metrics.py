"""Metric helpers of the run loop: metric objects from names, epoch records, targets and bests."""
from __future__ import annotations

# Keys of a ``metrics.jsonl`` record that are not metric values (the rest are, e.g. ``mse``, ``eval_mse``).
RECORD_FIELDS = ("epoch", "samples", "seconds", "data_seconds", "compile_seconds", "engine", "kvstore", "workers", "servers",
                 "steps", "bytes", "bytes_per_step")


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
