"""The metric catalogue: one record per metric, read by config defaults, targets, "best" and the engines."""
from __future__ import annotations

import math
import pathlib

import numpy as np
import pytest
from click.testing import CliRunner

from sparsetrain import metric, metric_catalogue
from sparsetrain.ops import all_ops
from sparsetrain.trainer import target_misses

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALL_NAMES = metric_catalogue.names()
SCORED = [r for r in metric.catalogue() if r.klass is not metric.CompositeEvalMetric]


def _perfect_and_poor(record):
    """(labels, a perfect prediction, a poor one) of a prediction kind the metric applies to."""
    rng = np.random.default_rng(0)
    if record.outputs & metric.BINARY:
        y = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
        return y, np.where(y == 1, 0.9, 0.1), np.where(y == 1, 0.3, 0.6)
    y = rng.normal(size=6)
    return y, y.copy(), y + 2.0


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_alias_has_the_direction_of_its_record(name):
    record = metric.info(name)
    assert metric.lower_is_better(name) is record.lower_is_better
    assert metric.lower_is_better(name.upper()) is record.lower_is_better
    assert metric.lower_is_better("eval_" + name) is record.lower_is_better
    assert name in record.names


@pytest.mark.parametrize("record", SCORED, ids=lambda r: r.name)
def test_direction_agrees_with_what_the_metric_computes(record):
    """A perfect prediction scores better than a poor one in the catalogue's direction."""
    y, perfect, poor = _perfect_and_poor(record)
    values = []
    for pred in (perfect, poor):
        m = metric.create(record.name)
        m.update([y], [pred])
        values.append(m.get()[1])
    assert metric.best(record.name, values[::-1]) == values[0]


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if metric.info(n) in SCORED])
@pytest.mark.parametrize("prefix", ["", "eval_"])
def test_target_works_for_every_alias_in_both_directions(name, prefix):
    key = prefix + name
    good, bad = (0.3, 0.7) if metric.lower_is_better(name) else (0.7, 0.3)
    assert target_misses({key: 0.5}, {key: good}) == []
    missed = target_misses({key: 0.5}, {key: bad})
    assert len(missed) == 1 and missed[0].startswith(f"target {key} {metric.target_relation(name)} 0.5 missed")
    assert len(target_misses({key: 0.5}, {key: float("nan")})) == 1
    assert len(target_misses({key: 0.5}, {})) == 1


def test_cross_entropy_target_below_is_met():
    """Was reported missed: config's LOWER_IS_BETTER did not know the alias cross_entropy."""
    assert target_misses({"cross_entropy": 0.5}, {"cross_entropy": 0.3}) == []
    assert metric.best("cross_entropy", [0.9, 0.3, 0.4]) == 0.3
    assert metric.best("eval_cross_entropy", [0.9, float("nan"), 0.4]) == 0.4


def test_fit_with_a_cross_entropy_target_exits_0_and_the_best_column_is_the_minimum(tmp_path):
    from sparsetrain.cli import main

    res = CliRunner().invoke(main, ["fit", str(ROOT / "configs" / "logreg.yaml"), "--output", str(tmp_path / "r"),
                                    "--set", "train.metrics=[cross_entropy]", "--set", "train.epochs=3",
                                    "--set", "train.target={cross_entropy: 0.69, eval_cross_entropy: 0.69}"])
    assert res.exit_code == 0, res.output
    import json

    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    values = [r["cross_entropy"] for r in records]
    assert values[-1] < 0.69 and values == sorted(values, reverse=True)
    row = next(line for line in res.output.splitlines() if line.strip("│ ").startswith("cross_entropy "))
    cells = [c.strip() for c in row.strip("│ ").split("│")]
    assert cells[2] == f"{min(values):.4g}" and "met" in cells[3] and "missed" not in row


def test_each_loss_operator_names_its_default_metrics_once():
    losses = {name: op for name, op in all_ops().items() if op.is_loss}
    assert losses
    for name, op in losses.items():
        assert op.default_metrics, name
        for m in op.default_metrics:
            assert metric.not_applicable(m, name) is None, (name, m)
        assert metric.default_metrics(name) == list(op.default_metrics)


def test_fused_ids_are_kernel_formulas():
    from sparsetrain.kernels.metrics import FUSED_METRICS

    assert {r.fused for r in metric.catalogue() if r.fused} == set(FUSED_METRICS)


def test_unknown_name_and_applicability():
    with pytest.raises(ValueError, match=r"unknown metric 'msee' \(did you mean 'mse'\?\)"):
        metric.info("msee")
    assert "does not apply to a SoftmaxOutput" in metric.not_applicable("auc", "SoftmaxOutput")
    assert "does not apply to a LinearRegressionOutput" in metric.not_applicable("AUC", "LinearRegressionOutput")
    assert metric.not_applicable("auc", "LogisticRegressionOutput") is None
    assert "3 outputs" in metric.not_applicable("log_loss", "SoftmaxOutput", 3)
    assert metric.not_applicable("log_loss", "SoftmaxOutput", 2) is None
    assert math.isnan(metric.best("mse", [float("nan")]))


def test_a_metric_that_does_not_fit_the_loss_is_a_config_error():
    from sparsetrain.base import ConfigError
    from sparsetrain.config import load_config

    with pytest.raises(ConfigError, match=r"train.metrics\[0\]: metric 'auc' does not apply to a SoftmaxOutput"):
        load_config(str(ROOT / "configs" / "softmax.yaml"), ["train.metrics=[auc]"])


@pytest.mark.parametrize("config,metric_name", [("linreg.yaml", "auc"), ("softmax.yaml", "auc"),
                                                ("softmax.yaml", "mse")])
def test_evaluate_with_a_metric_that_does_not_fit_the_model_is_a_usage_error(tmp_path, config, metric_name):
    """Was an internal error (the metric failed inside ``score``)."""
    from sparsetrain.cli import main

    out = tmp_path / "r"
    fit = CliRunner().invoke(main, ["fit", str(ROOT / "configs" / config), "--output", str(out),
                                    "--set", "train.epochs=1", "--set", "train.target={}"])
    assert fit.exit_code == 0, fit.output
    import yaml

    data = ROOT / "configs" / yaml.safe_load((ROOT / "configs" / config).read_text())["data"]["train"]
    res = CliRunner().invoke(main, ["evaluate", str(out), str(data), "--metric", metric_name])
    assert res.exit_code == 2, res.output
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"metric {metric_name!r} does not apply" in errors[0], res.stderr


def _predictions(output: str, k: int, n: int, rng):
    """``(prediction (n, k) float32, labels)`` of the output layer ``output`` with ``k`` outputs: as its kernel
    reads the labels (rows, 1 or k) and as the metric class takes them."""
    if output == "SoftmaxOutput":
        p = rng.random((n, k)) + 0.05
        label = rng.integers(0, k, (n, 1)).astype(np.float32)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32), label, label[:, 0]
    if output == "LogisticRegressionOutput":
        label = rng.integers(0, 2, (n, k)).astype(np.float32)
        return rng.uniform(0.05, 0.95, (n, k)).astype(np.float32), label, label
    label = rng.normal(size=(n, k)).astype(np.float32)
    return rng.normal(size=(n, k)).astype(np.float32), label, label


FUSED_CASES = [(r.name, output, k) for r in SCORED if r.fused and r.fused != "auc"  # (auc: an epoch metric)
               for output in sorted(metric.ANY_OUTPUT) for k in (1, 2, 3)
               if not (output == "SoftmaxOutput" and k == 1) and metric.not_applicable(r.name, output, k) is None
               and metric_catalogue.fused_not_applicable(r.fused, output, k) is None]


@pytest.mark.parametrize("name,output,k", FUSED_CASES)
def test_where_the_catalogue_fuses_a_metric_the_kernel_computes_the_metric(name, output, k):
    # fused_not_applicable is the one answer to which output layer a kernel formula scores: where it (and
    # not_applicable) let one, the fused kernel equals the metric class
    from sparsetrain.kernels.metrics import FUSED_METRICS, NUM_CODES, batch_metrics, metric_inst

    out, label, shown = _predictions(output, k, 40, np.random.default_rng(7))
    code = FUSED_METRICS[metric.info(name).fused]
    values = np.zeros(NUM_CODES)
    order = np.arange(len(out), dtype=np.int64)
    assert batch_metrics(out, label, order, 0, len(out), np.array([code], np.int64), values, np.full(len(out), np.nan))
    ref = metric.create(name)
    ref.update([shown], [out])
    assert metric_inst(code, len(out)) == ref.num_inst
    np.testing.assert_allclose(values[0], ref.sum_metric, rtol=1e-6)


def test_fused_not_applicable_names_the_kernels_limits():
    assert "multi-label" in metric_catalogue.fused_not_applicable("log_loss", "LogisticRegressionOutput", 2)
    assert "needs probabilities" in metric_catalogue.fused_not_applicable("log_loss", "LinearRegressionOutput", 1)
    assert "binary output" in metric_catalogue.fused_not_applicable("auc", "SoftmaxOutput", 3)
    assert metric_catalogue.fused_not_applicable("auc", "SoftmaxOutput", 2) is None
    assert "single output" in metric_catalogue.fused_not_applicable("accuracy", "LinearRegressionOutput", 2)
    assert metric_catalogue.fused_not_applicable("mse", "SoftmaxOutput", 3) is None


@pytest.mark.parametrize("names,why", [
    (["mse", "msee"], r"metrics\[1\]: unknown metric 'msee' \(did you mean 'mse'\?\)"),
    (["composite"], r"metrics\[0\]: 'composite' holds other metrics"),
])
def test_the_librarys_evaluate_names_the_list_entry_before_reading_the_data(tmp_path, names, why):
    # Model.evaluate's own check (the library call's, behind evaluate --metric's): the entry of its list, before
    # the data is opened (the path here does not exist)
    from sparsetrain.base import ConfigError
    from sparsetrain.cli import main
    from sparsetrain.trainer import load_trained

    out = tmp_path / "r"
    fit = CliRunner().invoke(main, ["fit", str(ROOT / "configs" / "linreg.yaml"), "--output", str(out),
                                    "--set", "train.epochs=1", "--set", "train.target={}"])
    assert fit.exit_code == 0, fit.output
    with pytest.raises(ConfigError, match=why):
        load_trained(str(out)).evaluate(str(tmp_path / "missing.libsvm"), names)
