"""predict's table: columns for each loss, csv/tsv/npy, stdin and stdout."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from sparsetrain.trainer.predict import load_trained
from sparsetrain.trainer.predictions import prediction_columns
from test_cli import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")
DATA = ROOT / "data" / "linreg.libsvm"


@pytest.mark.parametrize("loss,outputs,scores,labels,expected", [
    ("LinearRegressionOutput", [[1.5], [2.5]], None, [1.0, 3.0],
     {"row": [0, 1], "label": [1.0, 3.0], "prediction": [1.5, 2.5]}),
    ("MAERegressionOutput", [1.5, 2.5], None, None, {"row": [0, 1], "prediction": [1.5, 2.5]}),
    ("LogisticRegressionOutput", [[0.2], [0.7]], [[-1.4], [0.8]], [0.0, 1.0],
     {"row": [0, 1], "label": [0.0, 1.0], "prediction": [-1.4, 0.8], "probability": [0.2, 0.7], "class": [0, 1]}),
    ("LogisticRegressionOutput", [[0.2, 0.9], [0.7, 0.4]], [[-1.4, 2.2], [0.8, -0.4]], [[0, 1], [1, 0]],
     {"row": [0, 1], "label_0": [0, 1], "label_1": [1, 0], "prediction_0": [-1.4, 0.8], "probability_0": [0.2, 0.7],
      "class_0": [0, 1], "prediction_1": [2.2, -0.4], "probability_1": [0.9, 0.4], "class_1": [1, 0]}),
    ("SoftmaxOutput", [[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], [[0.0, 1.8, 1.1], [1.0, 0.1, 0.5]], [1.0, 2.0],
     {"row": [0, 1], "label": [1.0, 2.0], "prediction_0": [0.0, 1.0], "prediction_1": [1.8, 0.1],
      "prediction_2": [1.1, 0.5], "probability_0": [0.1, 0.5], "probability_1": [0.6, 0.2],
      "probability_2": [0.3, 0.3], "class": [1, 0]}),
])
def test_columns_for_each_loss(loss, outputs, scores, labels, expected):
    cols = prediction_columns(loss, np.array(outputs), None if labels is None else np.array(labels),
                              scores=None if scores is None else np.array(scores))
    assert list(cols) == list(expected)
    for name, values in expected.items():
        np.testing.assert_array_equal(cols[name], values, err_msg=name)


def test_a_classifier_table_needs_the_scores():
    with pytest.raises(ValueError, match="scores before the link"):
        prediction_columns("SoftmaxOutput", np.array([[0.4, 0.6]]))


@pytest.mark.parametrize("config,data", [("logreg.yaml", "binary_eval.libsvm"), ("fm.yaml", "binary_eval.libsvm"),
                                         ("softmax.yaml", "multiclass_eval.libsvm")])
def test_a_classifier_prediction_is_its_score_before_the_link(config, data, tmp_path):
    # SPEC §11: row, label, prediction, then the classifier's probability and class; prediction is the loss
    # layer's input (log-odds, per-class logits), so the probabilities — the model's output, here predicted
    # apart from the table — are its sigmoid/softmax (whatever size the scores have after one epoch)
    run = tmp_path / "run"
    assert cli("fit", ROOT / "configs" / config, "--output", run, "-q", "--epochs", "1",
               "--set", "train.target={}").exit_code == 0
    res = cli("predict", run, ROOT / "data" / data, "--format", "npy", "--out", tmp_path / "p.npy")
    assert res.exit_code == 0, res.stderr
    arr = np.load(tmp_path / "p.npy", allow_pickle=False)
    names = arr.dtype.names
    if config == "softmax.yaml":
        k = sum(n.startswith("probability_") for n in names)
        assert k == 5 and names == ("row", "label", *[f"prediction_{j}" for j in range(k)],
                                    *[f"probability_{j}" for j in range(k)], "class")
        score = np.stack([arr[f"prediction_{j}"] for j in range(k)], axis=1).astype(np.float64)
        prob = np.exp(score - score.max(axis=1, keepdims=True))
        prob /= prob.sum(axis=1, keepdims=True)
        probability = np.stack([arr[f"probability_{j}"] for j in range(k)], axis=1)
        np.testing.assert_array_equal(arr["class"], score.argmax(axis=1))
    else:
        assert names == ("row", "label", "prediction", "probability", "class")
        score = arr["prediction"].astype(np.float64)
        prob = 1 / (1 + np.exp(-score))
        probability = arr["probability"]
        np.testing.assert_array_equal(arr["class"], (score > 0).astype(int))
    np.testing.assert_allclose(probability, load_trained(str(run)).predict(str(ROOT / "data" / data)), atol=1e-6)
    np.testing.assert_allclose(prob, probability, atol=1e-6)


def test_an_id_column_replaces_the_row_number():
    cols = prediction_columns("LinearRegressionOutput", np.array([1.0, 2.0]), None, ids=["a7", "b9"], id_name="id")
    assert list(cols) == ["id", "prediction"] and list(cols["id"]) == ["a7", "b9"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("p") / "run"
    # stdin is read once: the index base must be given (data/linreg.libsvm is zero-based)
    assert cli("fit", LINREG, "--output", out, "-q", "--epochs", "2", "--set", "train.target={}",
               "--set", "data.zero_based=true").exit_code == 0
    return out


def test_csv_tsv_npy_and_stdin_agree(run, tmp_path):
    csv = cli("predict", run, DATA)
    assert csv.exit_code == 0, csv.stderr
    lines = csv.stdout.splitlines()
    assert lines[0] == "row,label,prediction" and len(lines) == 1001
    table = np.loadtxt(lines[1:], delimiter=",")
    tsv = cli("predict", run, DATA, "--out", tmp_path / "p.tsv")  # format from the extension
    assert (tmp_path / "p.tsv").read_text() == csv.stdout.replace(",", "\t")
    assert "wrote 1000 predictions" in tsv.stderr
    cli("predict", run, DATA, "--format", "npy", "--out", tmp_path / "p.bin")
    arr = np.load(tmp_path / "p.bin", allow_pickle=False)
    assert arr.dtype.names == ("row", "label", "prediction")
    np.testing.assert_array_equal(arr["prediction"], table[:, 2].astype(np.float32))  # exact in text too
    np.testing.assert_array_equal(arr["row"], np.arange(1000))
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    piped = subprocess.run([sys.executable, "-m", "sparsetrain.cli", "predict", str(run), "-", "--out", "-"],
                           input=DATA.read_bytes(), capture_output=True, env=env)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.decode() == csv.stdout


def test_an_out_extension_predict_does_not_write_is_a_usage_error(run, tmp_path):
    res = cli("predict", run, DATA, "--out", tmp_path / "p.parquet")  # it wrote CSV under that name
    assert res.exit_code == 2 and not (tmp_path / "p.parquet").exists()
    assert res.stderr.strip().splitlines()[-1] == (f"error: --out {tmp_path / 'p.parquet'}: predict writes csv, tsv, "
                                                   "npy (by the extension: .csv, .tsv, .npy; none: csv), not .parquet; "
                                                   "or give --format")
    res = cli("predict", run, DATA, "--out", tmp_path / "p.parquet", "--format", "tsv")  # as asked
    assert res.exit_code == 0 and (tmp_path / "p.parquet").read_text().startswith("row\tlabel\tprediction\n")
    assert cli("predict", run, DATA, "--out", tmp_path / "preds").exit_code == 0  # no extension: csv
    assert (tmp_path / "preds").read_text().startswith("row,label,prediction\n")


def test_a_checkpoint_prefix_names_stdin_in_its_errors(run):
    # a model without its run's config reads stdin as LibSVM with the index base decided by reading it: through
    # the one temporary copy a run's model uses, so an error names <stdin>, not the copy (it named
    # /tmp/sparsetrain-stdin-....libsvm)
    from click.testing import CliRunner

    from sparsetrain.cli import main

    res = CliRunner().invoke(main, ["predict", str(run / "checkpoints" / "model"), "-"], input=b"1 1:1\n2 x:1\n")
    assert res.exit_code == 1
    assert res.stderr.strip().splitlines()[-1].startswith("error: <stdin>:2: "), res.stderr


def test_the_status_line_names_the_data_as_init_does(run, monkeypatch):
    # one status line for init, predict and evaluate (stdin: '<stdin>', it showed '-' or the temporary copy)
    from click.testing import CliRunner

    from sparsetrain import cli_fit_display
    from sparsetrain.cli import main

    monkeypatch.setattr(cli_fit_display, "BUSY_AFTER", 0.0)
    res = cli("predict", run, DATA)
    assert res.exit_code == 0 and f"predicting {DATA} (" in res.stderr
    res = CliRunner().invoke(main, ["evaluate", str(run / "checkpoints" / "model"), "-"], input=DATA.read_bytes())
    assert res.exit_code == 0 and "scoring <stdin>…" in res.stderr, res.stderr
