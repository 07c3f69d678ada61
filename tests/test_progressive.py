"""Progressive validation (``train.progressive``): every row scored before it is trained on, each row
once; equal to a hand-computed online loss on a tiny file, on both engines."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from sparsetrain.config import load_config
from sparsetrain.trainer import fit

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")
LOGREG = str(ROOT / "configs" / "logreg.yaml")

X = np.array([[1.0, 0.0, 2.0], [0.0, 1.5, 0.0], [0.5, 0.0, 0.0], [0.0, 2.0, 1.0], [1.0, 1.0, 1.0]])
Y_REG = np.array([3.0, -1.0, 0.5, 2.0, 1.0])
Y_BIN = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
LR = 0.1


def write_libsvm(path, y):
    lines = []
    for row, label in zip(X, y):
        lines.append(" ".join([f"{label:g}"] + [f"{j}:{v:g}" for j, v in enumerate(row) if v]))
    path.write_text("\n".join(lines) + "\n")
    return path


def online_losses(y, batch, epochs, logistic):
    """Per-epoch mean loss of each row at the weights before its batch's update (SGD, rescale 1/batch,
    zero start, MXNet's pad: the short last batch is filled with the first rows, which are trained
    on but not scored again)."""
    w, b = np.zeros(3), 0.0
    n = len(y)
    out = []
    for _ in range(epochs):
        losses = []
        for lo in range(0, n, batch):
            rows = [(lo + i) % n for i in range(batch)]
            real = [r for r in rows[: n - lo]]
            z = X[rows] @ w + b
            p = 1 / (1 + np.exp(-z)) if logistic else z
            if logistic:
                ll = -(y[real] * np.log(p[: len(real)] + 1e-12) + (1 - y[real]) * np.log(1 - p[: len(real)] + 1e-12))
                losses.extend(ll)
            else:
                losses.extend((p[: len(real)] - y[real]) ** 2)
            g = p - y[rows]
            w = w - LR * (X[rows].T @ g) / batch
            b = b - LR * g.sum() / batch
        out.append(float(np.mean(losses)))
    return out


@pytest.mark.parametrize("engine", ["compiled", "graph"])
@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("logistic", [False, True])
def test_progressive_metric_is_the_online_loss(tmp_path, engine, batch, logistic):
    y = Y_BIN if logistic else Y_REG
    data = write_libsvm(tmp_path / "tiny.libsvm", y)
    metric = "log_loss" if logistic else "mse"
    cfg = load_config(LOGREG if logistic else LINREG, [
        f"data.train={data}", "data.eval=null", "data.num_features=3", "data.zero_based=true",
        f"data.batch_size={batch}", "data.last_batch=pad", "data.shuffle=false",
        "model.variables.weight={stype: row_sparse, shape: [3, 1], init: zero}",
        f"optimizer={{name: sgd, learning_rate: {LR}}}", f"train.metrics=[{metric}]", "train.target={}",
        "train.epochs=2", "train.progressive=true", f"train.engine={engine}"])
    result = fit(cfg, output_dir=str(tmp_path / "run"))
    assert result.engine == engine
    got = [r[f"progressive_{metric}"] for r in result.history]
    np.testing.assert_allclose(got, online_losses(y, batch, 2, logistic), rtol=1e-5)
    written = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r[f"progressive_{metric}"] for r in written] == got
    if batch == 2:  # the padded last batch re-scores row 0 in the training metric, not in the progressive one
        assert result.history[0][metric] != pytest.approx(got[0], rel=1e-6)


def test_a_generated_plan_leaves_progressive_runs_to_the_graph_engine_and_says_so(tmp_path):
    # generated plans (FM, wide) do not compute progressive metrics: auto picks the graph engine
    # and names the option; --engine compiled refuses before the run starts
    fm = str(ROOT / "configs" / "fm.yaml")
    cfg = load_config(fm, ["train.epochs=1", "train.progressive=true", "train.target={}"])
    result = fit(cfg, output_dir=str(tmp_path / "auto"))
    assert result.engine == "graph"
    assert all(f"progressive_{m}" in result.history[0] for m in cfg.train.metrics)
    cfg = load_config(fm, ["train.epochs=1", "train.progressive=false", "train.target={}"])
    assert fit(cfg, output_dir=str(tmp_path / "plain")).engine == "compiled"
    from sparsetrain.base import ConfigError
    cfg = load_config(fm, ["train.epochs=1", "train.progressive=true", "train.target={}",
                           "train.engine=compiled"])
    with pytest.raises(ConfigError, match="train.progressive"):
        fit(cfg, output_dir=str(tmp_path / "forced"))
    assert not (tmp_path / "forced" / "config.yaml").exists()
    assert not (tmp_path / "forced" / "metrics.jsonl").exists()
