"""Early stopping and the best epoch: stops at the right epoch on a constructed eval set, keeps and
marks the best checkpoint, predict/evaluate use it (``--epoch N`` / ``--last`` choose), config errors."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from sparsetrain import io as st_io
from sparsetrain import metric as st_metric
from sparsetrain.config import load_config
from sparsetrain.trainer import fit
from sparsetrain.trainer.metrics import BestEpoch
from test_cli import cli, one_error_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")
LOGREG = str(ROOT / "configs" / "logreg.yaml")
DATA = ROOT / "data" / "linreg.libsvm"


def records(run) -> list[dict]:
    return [json.loads(line) for line in (pathlib.Path(run) / "metrics.jsonl").read_text().splitlines()]


def state(run) -> dict:
    return json.loads((pathlib.Path(run) / "checkpoint.json").read_text())


@pytest.fixture(scope="module")
def half_labels(tmp_path_factory):
    """The training rows with half their labels: a slow learner first approaches, then passes, them,
    so the eval error falls and then rises again."""
    X, y = st_io.load_libsvm(str(DATA))
    path = tmp_path_factory.mktemp("eval") / "half.libsvm"
    # 512 rows: equal batches of 8 (fit) and of 256 (evaluate), so the per-batch mse means agree
    st_io.dump_libsvm(X.asscipy()[:512], np.asarray(y)[:512] / 2, str(path), zero_based=False)
    return path


def stopping_overrides(half, patience=2, engine="compiled"):
    return [f"data.eval={half}", "optimizer.learning_rate=0.002", "optimizer.momentum=0", "train.target={}",
            "data.batch_size=8", "train.epochs=20", "train.keep_checkpoints=1", f"train.engine={engine}",
            f"train.early_stopping={{metric: eval_mse, patience: {patience}}}"]


@pytest.mark.parametrize("engine", ["compiled", "graph"])
def test_early_stopping_stops_patience_epochs_after_the_best_and_keeps_it(tmp_path, half_labels, engine):
    out = tmp_path / "run"
    result = fit(load_config(LINREG, stopping_overrides(half_labels, engine=engine)), output_dir=str(out))
    recs = records(out)
    values = [r["eval_mse"] for r in recs]
    best = int(np.argmin(values))
    assert 0 < best < len(recs) - 1  # the constructed eval set has its best in the middle
    assert len(recs) == best + 1 + 2  # two epochs without improvement, then stop
    assert all(v > values[best] for v in values[best + 1:])
    assert result.stopped_early and result.best_epoch == best + 1
    st = state(out)
    assert st["epoch"] == len(recs)
    assert st["best"] == {"epoch": best + 1, "metric": "eval_mse", "value": values[best]}
    kept = sorted(p.name for p in (out / "checkpoints").glob("*.params"))
    assert kept == [f"model-{best + 1:04d}.params", f"model-{len(recs):04d}.params"]  # keep 1 + the best
    # predict / evaluate use the best by default; --last and --epoch choose
    ev = {flag: json.loads(cli("evaluate", out, half_labels, "--json", *flag).stdout)["mse"]
          for flag in [(), ("--last",), ("--epoch", str(best + 1))]}
    assert ev[()] == pytest.approx(values[best], rel=1e-5)
    assert ev[("--epoch", str(best + 1))] == ev[()]
    assert ev[("--last",)] == pytest.approx(values[-1], rel=1e-5)
    res = cli("predict", out, DATA, "--epoch", "1")
    assert res.exit_code == 2
    assert f"keeps {best + 1}, {len(recs)}" in one_error_line(res.stderr)
    assert cli("predict", out, DATA, "--epoch", "2", "--last").exit_code == 2


def test_a_resumed_run_stops_where_the_uninterrupted_one_did(tmp_path, half_labels):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(load_config(LINREG, stopping_overrides(half_labels)), output_dir=str(straight))
    stop = len(records(straight))
    fit(load_config(LINREG, stopping_overrides(half_labels) + [f"train.epochs={stop - 1}"]), output_dir=str(resumed))
    assert not state(resumed).get("stopped")
    result = fit(load_config(LINREG, stopping_overrides(half_labels)), output_dir=str(resumed), resume=True)
    assert result.stopped_early
    assert records(resumed) == [dict(r, seconds=q["seconds"], data_seconds=q["data_seconds"])
                                for r, q in zip(records(straight), records(resumed))]
    assert state(resumed)["best"] == state(straight)["best"]
    # resuming a run that stopped early trains no further
    again = fit(load_config(LINREG, stopping_overrides(half_labels)), output_dir=str(resumed), resume=True)
    assert again.history == result.history and len(records(resumed)) == stop


def test_best_epoch_follows_the_metric_direction_and_min_delta():
    acc = BestEpoch("eval_accuracy", patience=2, min_delta=0.01)
    for epoch, v in enumerate([0.5, 0.7, 0.705, 0.71, 0.69]):
        acc.update({"epoch": epoch, "eval_accuracy": v})
    assert acc.epoch == 2 and acc.value == 0.7 and acc.stop  # +0.005 and +0.01 are not > min_delta
    loss = BestEpoch("log_loss", patience=3)
    for epoch, v in enumerate([0.9, 0.5, 0.6, 0.4, float("nan")]):
        loss.update({"epoch": epoch, "log_loss": v})
    assert loss.epoch == 4 and not loss.stop
    assert st_metric.lower_is_better("log_loss") and not st_metric.lower_is_better("eval_accuracy")
    last = BestEpoch(None)
    for epoch in range(3):
        last.update({"epoch": epoch, "mse": 1.0})
    assert last.state() == {"best": {"epoch": 3, "metric": None, "value": None}} and not last.stop


@pytest.mark.parametrize("setting,message", [
    ("{metric: eval_log_los}", "train.early_stopping.metric: 'eval_log_los': not a reported metric "
                               "(did you mean 'eval_log_loss'?)"),
    ("{metric: eval_log_loss}", "train.early_stopping.metric: 'eval_log_loss': needs data.eval"),
    ("{metric: progressive_accuracy}", "train.early_stopping.metric: 'progressive_accuracy': needs "
                                       "train.progressive: true"),
    ("{patience: 0}", "train.early_stopping.patience"),
])
def test_early_stopping_config_errors_name_the_key(tmp_path, setting, message):
    res = cli("fit", LOGREG, "--output", tmp_path / "r", "--set", "data.eval=null", "--set",
              f"train.early_stopping={setting}", "--set", "train.target={}")
    assert res.exit_code == 2
    assert message in one_error_line(res.stderr)


def test_quiet_still_says_that_early_stopping_ended_the_run(tmp_path, half_labels):
    # with -q the epoch lines just ended before train.epochs, without a word
    args = [a for o in stopping_overrides(half_labels) for a in ("--set", o)]
    res = cli("fit", LINREG, *args, "--output", tmp_path / "run", "-q")
    assert res.exit_code == 0, res.stderr
    assert "early stopping after epoch" in res.stderr and "the best is epoch" in res.stderr
    assert "engine " not in res.stderr  # (the rest of -q's silence holds)
