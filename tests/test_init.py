"""``sparsetrain init``: the config it writes for every shipped data file trains as is; what it sniffs
(index base, feature count, label values) and what it refuses."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from sparsetrain.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
TASK_OF = {"binary": "binary", "multiclass": "multiclass", "linreg": "regression", "criteo_like": "binary"}


def _task(path: pathlib.Path) -> str:
    return TASK_OF[path.name.split(".")[0].removesuffix("_eval")]


def _init(*args):
    return CliRunner().invoke(main, ["init", *map(str, args)])


def _fit(config, out, epochs=3, *extra):
    result = CliRunner().invoke(main, ["fit", str(config), "--epochs", str(epochs), "--output", str(out), "-q", *extra])
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()] if (
        out / "metrics.jsonl").exists() else []
    return result, records


DATA_SUFFIXES = (".libsvm", ".tsv", ".csv", ".vw")
SHIPPED = sorted(p for p in DATA.iterdir() if p.name.endswith(DATA_SUFFIXES))


def test_every_shipped_data_file_is_covered():
    assert {p.name for p in SHIPPED} >= {"binary.libsvm", "binary_eval.libsvm", "linreg.libsvm", "multiclass.libsvm",
                                         "multiclass_eval.libsvm", "criteo_like.tsv", "criteo_like_eval.tsv"}
    # the rest of data/ is the generators' true weights, not data
    assert all(p.suffix in (".npy", ".npz") for p in DATA.iterdir() if p not in SHIPPED)


@pytest.mark.parametrize("data", SHIPPED, ids=lambda p: p.name)
def test_init_writes_a_config_that_trains(tmp_path, data):
    config = tmp_path / "cfg" / "model.yaml"
    result = _init(data, "--task", _task(data), "--out", config)
    assert result.exit_code == 0, result.output
    assert f"wrote {config}" in result.output
    doc = yaml.safe_load(config.read_text())
    assert os.path.samefile(config.parent / doc["data"]["train"], data) if not os.path.isabs(doc["data"]["train"]) \
        else os.path.samefile(doc["data"]["train"], data)
    fit, records = _fit(config, tmp_path / "run")
    assert fit.exit_code == 0, fit.output
    metric = {"binary": "log_loss", "multiclass": "cross-entropy", "regression": "mse"}[_task(data)]
    assert records[-1][metric] < records[0][metric]


def test_init_sniffs_base_features_and_labels(tmp_path):
    # one-based indices up to 7, labels -1/+1
    data = tmp_path / "pm.svm"
    data.write_text("# a comment\n-1 1:0.5 3:1\n+1 2:1 7:0.25\n-1 7:1\n1 4:2\n")
    result = _init(data, "--task", "binary", "--out", tmp_path / "pm.yaml")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "pm.yaml").read_text()
    doc = yaml.safe_load(text)
    assert doc["data"]["zero_based"] is False and doc["data"]["num_features"] == 7
    assert doc["data"]["label_values"] == [-1, 1]
    assert doc["model"] == {"preset": "logistic"}
    assert "# Data: libsvm, 4 rows, 7 features (one-based indices)" in text
    fit, records = _fit(tmp_path / "pm.yaml", tmp_path / "run", epochs=1)
    assert fit.exit_code == 0, fit.output
    # class ids 1..3: label_base 1, three classes
    multi = tmp_path / "m.svm"
    multi.write_text("1 0:1\n2 1:1\n3 2:1\n2 0:0.5\n")
    assert _init(multi, "--task", "multiclass", "--out", tmp_path / "m.yaml").exit_code == 0
    doc = yaml.safe_load((tmp_path / "m.yaml").read_text())
    assert doc["data"]["label_base"] == 1 and doc["model"] == {"preset": "softmax", "classes": 3}
    assert doc["data"]["zero_based"] is True and doc["data"]["num_features"] == 3


# fm: the compiled engine runs configs/fm.yaml's generated plan (test_cli compiles it); wide_deep's (AdaGrad,
# where configs/wide.yaml has Adam) would be one more cold compile of several seconds for what test_cli and
# test_plan check already: the written config trains, on the graph engine
@pytest.mark.parametrize("preset,engine", [("fm", "auto"), ("wide_deep", "graph")])
def test_init_with_a_preset(tmp_path, preset, engine):
    config = tmp_path / "p.yaml"
    assert _init(DATA / "binary.libsvm", "--task", "binary", "--preset", preset, "--out", config).exit_code == 0
    assert yaml.safe_load(config.read_text())["model"]["preset"] == preset
    fit, records = _fit(config, tmp_path / "run", 1, "--engine", engine)
    assert fit.exit_code == 0, fit.output
    assert records[-1]["engine"] == ("compiled" if engine == "auto" else "graph")


def test_init_refuses_to_overwrite_without_force(tmp_path):
    config = tmp_path / "model.yaml"
    config.write_text("mine\n")
    result = _init(DATA / "binary.libsvm", "--task", "binary", "--out", config)
    assert result.exit_code == 2 and "--force" in result.output
    assert config.read_text() == "mine\n"
    assert _init(DATA / "binary.libsvm", "--task", "binary", "--out", config, "--force").exit_code == 0
    assert "preset: logistic" in config.read_text()
    assert sorted(os.listdir(tmp_path)) == ["model.yaml"]  # written through a temp file, none left behind


@pytest.mark.parametrize("args, message", [
    (["linreg.libsvm", "--task", "binary"], "--task binary: "),
    (["binary.libsvm", "--task", "multiclass", "--preset", "fm"], "--preset: fm does not fit --task multiclass"),
    (["linreg.libsvm", "--task", "multiclass"], "--task multiclass: "),
    (["binary.libsvm", "--task", "ranking"], "--task: must be one of binary, regression, multiclass"),
])
def test_init_usage_errors(tmp_path, args, message):
    result = _init(DATA / args[0], *args[1:], "--out", tmp_path / "x.yaml")
    assert result.exit_code == 2
    assert f"error: {message}" in result.output
    assert not (tmp_path / "x.yaml").exists()


def test_init_of_stdin_says_it_needs_a_file(tmp_path):
    # click said "Invalid value for 'DATA': File '-' does not exist"
    result = CliRunner().invoke(main, ["init", "-", "--task", "binary", "--out", str(tmp_path / "x.yaml")],
                                input=(DATA / "binary.libsvm").read_bytes())
    assert result.exit_code == 2
    assert result.stderr.startswith("error: DATA: init reads a file, not stdin ('-'): ")
    assert not (tmp_path / "x.yaml").exists()


def test_init_as_a_subprocess(tmp_path):
    config = tmp_path / "model.yaml"
    proc = subprocess.run([sys.executable, "-m", "sparsetrain.cli", "init", str(DATA / "multiclass.libsvm"),
                           "--task", "multiclass", "--out", str(config)], capture_output=True, text=True,
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    assert yaml.safe_load(config.read_text())["model"] == {"preset": "softmax", "classes": 5}


def test_init_sniffs_a_csv_without_header_and_with_a_label_column_by_name(tmp_path):
    rows = ["3.5,red,12,x y,1", "0.25,blue,,z,0", '1,"green, light",7,,1', "2,red,900,x y,0"] * 30
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "model.yaml"
    result = _init(tmp_path / "d.csv", "--task", "binary", "--out", config)
    assert result.exit_code == 2 and "the label column 'label' holds '3.5'" not in result.output
    assert "--task binary: " in result.output  # first column: four values, not a binary label
    result = _init(tmp_path / "d.csv", "--task", "binary", "--label", "col4", "--out", config)
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(config.read_text())["data"]
    assert data["format"] == "csv" and data["csv"] == {"delimiter": ",", "header": False,
                                                       "columns": ["label", "col1", "col2", "col3", "col4"]}
    assert (data["label"], data["numeric"], data["categorical"]) == ("col4", ["label", "col2"], ["col1", "col3"])
    assert data["log1p"] == ["col2"] and data["label_values"] == [0, 1]
    fit, records = _fit(config, tmp_path / "run", epochs=2)
    assert fit.exit_code == 0, fit.output


def test_init_sniffs_vw_namespaces_labels_and_importance(tmp_path):
    lines = []
    for i in range(300):
        y = 1 if i % 3 else -1
        lines.append(f"{y}{' 2' if i % 10 == 0 else ''} 'r{i}|user u{i % 7} age:{i % 5} |item it{i % 11}\n")
    (tmp_path / "d.vw").write_text("".join(lines))
    config = tmp_path / "model.yaml"
    result = _init(tmp_path / "d.vw", "--task", "binary", "--out", config)
    assert result.exit_code == 0, result.output
    text = config.read_text()
    assert "# Data: vw, 300 rows, namespaces user, item, 30 rows with importance weights" in text
    assert "# crosses: [[user, item]]" in text
    data = yaml.safe_load(text)["data"]
    assert data["format"] == "vw" and data["hash_bits"] == 18 and data["label_values"] == [-1, 1]
    assert "num_features" not in data
    fit, records = _fit(config, tmp_path / "run", epochs=3)
    assert fit.exit_code == 0, fit.output
    assert records[-1]["log_loss"] < records[0]["log_loss"]
    (tmp_path / "w.vw").write_text("1 2 |user a\n-1 |user b\n1 0.5 't|user c\n")
    assert _init(tmp_path / "w.vw", "--task", "binary", "--out", tmp_path / "w.yaml").exit_code == 0
    assert "# Data: vw, 3 rows, namespaces user, 2 rows with importance weights" in (tmp_path / "w.yaml").read_text()


def test_init_refuses_csv_it_cannot_read(tmp_path):
    (tmp_path / "ragged.csv").write_text("1,a\n0,b,c\n1\n")
    result = _init(tmp_path / "ragged.csv", "--task", "binary", "--out", tmp_path / "x.yaml")
    assert result.exit_code == 1
    assert "ragged.csv:2: 3 comma-separated fields, more than the 2 of line 1" in result.output
    (tmp_path / "one.csv").write_text("a b\nc d\n")
    result = _init(tmp_path / "one.csv", "--task", "binary", "--out", tmp_path / "x.yaml")
    assert result.exit_code == 1 and "cannot tell the delimiter" in result.output
    (tmp_path / "d.csv").write_text("y,n\nyes,1\nno,2\nmaybe,3\n")
    result = _init(tmp_path / "d.csv", "--task", "binary", "--out", tmp_path / "x.yaml")
    assert result.exit_code == 1 and "d.csv:2: the label column 'y' holds 'yes', not a number (labels are numbers, " \
        "or two texts for a binary model; pick another column with --label)" in result.output
    (tmp_path / "e.csv").write_text("label,n\n1,1\n\n0,2\n,3\n")
    result = _init(tmp_path / "e.csv", "--task", "binary", "--out", tmp_path / "x.yaml")
    assert result.exit_code == 1 and "e.csv:5: the label column 'label' is empty" in result.output
    result = _init(tmp_path / "d.csv", "--task", "binary", "--label", "z", "--out", tmp_path / "x.yaml")
    assert result.exit_code == 2 and "--label: no column 'z'" in result.output
    # no feature column: it wrote a config that trained the bias alone
    (tmp_path / "f.csv").write_text("y,id,note\n1,a,\n0,b,\n")
    result = _init(tmp_path / "f.csv", "--task", "binary", "--out", tmp_path / "x.yaml")
    assert result.exit_code == 1 and ("f.csv: no feature column besides the label 'y' and the row ids 'id' (no "
                                      "feature): 'note' is empty in the first 2 rows") in result.output
    (tmp_path / "g.csv").write_text("y,id\n1,a\n0,b\n")
    result = _init(tmp_path / "g.csv", "--task", "binary", "--out", tmp_path / "x.yaml")
    assert result.exit_code == 1 and "g.csv: no feature column besides the label 'y' and the row ids 'id' (no " \
        "feature)\n" in result.output
    assert not (tmp_path / "x.yaml").exists()


def test_init_reads_a_csv_whose_rows_leave_out_trailing_fields(tmp_path):
    # a missing trailing field is an absent feature (README): such rows made the delimiter sniffer give up
    rows = ["label,num,cat,city", '1,3,"a,b",Zürich', '0,,"say ""hi""",東京', "1,5", "0,2,x,y"]
    (tmp_path / "d.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode())
    config = tmp_path / "model.yaml"
    result = _init(tmp_path / "d.csv", "--task", "binary", "--out", config)
    assert result.exit_code == 0, result.output
    data = yaml.safe_load(config.read_text())["data"]
    assert data["csv"] == {"delimiter": ",", "header": True}
    assert (data["numeric"], data["categorical"]) == (["num"], ["cat", "city"])
    assert "csv, 4 rows" in result.output


def test_init_writes_unicode_names_as_they_are_and_fit_reads_them(tmp_path):
    # the names were written escaped (numeric: ["Gr\xF6\xDFe"]), valid YAML that no user reads as their column
    (tmp_path / "u.tsv").write_text("klick\tGröße\t名前 x\tweird\n1\t3\tа\tq\u2028r\n0\t5\tб\ts\n", encoding="utf-8")
    config = tmp_path / "u.yaml"
    result = _init(tmp_path / "u.tsv", "--task", "binary", "--label", "klick", "--out", config)
    assert result.exit_code == 0, result.output
    text = config.read_text(encoding="utf-8")
    assert "  numeric: [Größe]" in text and "  categorical: [名前 x, " in text
    data = yaml.safe_load(text)["data"]
    assert (data["label"], data["numeric"], data["categorical"]) == ("klick", ["Größe"], ["名前 x", "weird"])
    fit, records = _fit(config, tmp_path / "run", 1)
    assert fit.exit_code == 0, fit.output


def test_init_regression_learning_rates_follow_the_label_scale(tmp_path):
    # y = X·[1..20] (std 7.6), 3 non-zeros a row: AdaGrad moves a weight by about the learning rate per
    # update, so init trains linear weights and biases at 0.5 × the labels' std; fm's factors (whose
    # products diverge at that rate) at 0.2 / non-zeros per row and wide_deep's embedding MLP at 0.5,
    # through lr_mult. On the graph engine (deterministic, nothing to compile), 10 epochs: linear 0.28,
    # wide_deep 0.14 (0.055 with every weight at 0.5), fm 0.26 (3.9 with one rate for all weights).
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for _ in range(400):
        cols = np.sort(rng.choice(20, 3, replace=False))
        vals = rng.uniform(0, 1, 3)
        rows.append(f"{float(vals @ (cols + 1)):.6f} " + " ".join(f"{c}:{v:.6f}" for c, v in zip(cols, vals)))
    data = tmp_path / "lin.libsvm"
    data.write_text("\n".join(rows) + "\n")
    std = float(np.std([float(r.split()[0]) for r in rows]))
    linear = float(f"{0.5 * std:.2g}")
    expected = {"linear": (linear, {}), "wide_deep": (0.5, {"wide_weight": linear / 0.5, "bias": linear / 0.5}),
                "fm": (linear, {"factors": 0.2 / 3 / linear})}
    mse = {}
    for preset, (lr, mults) in expected.items():
        config = tmp_path / f"{preset}.yaml"
        assert _init(data, "--task", "regression", "--preset", preset, "--out", config).exit_code == 0
        doc = yaml.safe_load(config.read_text())
        assert doc["optimizer"]["learning_rate"] == lr
        written = {name: v["lr_mult"] for name, v in doc["model"].get("variables", {}).items()}
        assert written == {name: float(f"{m:.2g}") for name, m in mults.items()}, written
        fit, records = _fit(config, tmp_path / preset, 10, "--engine", "graph")
        assert fit.exit_code == 0, fit.output
        mse[preset] = records[-1]["mse"]
    assert mse["linear"] < 0.01 * std ** 2, mse
    assert mse["wide_deep"] < mse["linear"], mse
    assert mse["fm"] < 2 * mse["linear"], mse  # (14 × linear with one rate for every weight)
    # rows without features (a label only): no division by zero, one non-zero a row is assumed
    (tmp_path / "labels.libsvm").write_text("1.5\n3.0\n7\n")
    assert _init(tmp_path / "labels.libsvm", "--task", "regression", "--preset", "fm", "--out",
                 tmp_path / "l.yaml").exit_code == 0
    doc = yaml.safe_load((tmp_path / "l.yaml").read_text())
    assert doc["optimizer"]["learning_rate"] == 1.2 and doc["model"]["variables"] == {"factors": {"lr_mult": 0.17}}


def test_init_help_names_every_task_and_preset():
    # the help is written out (sparsetrain starts without the library); it must keep up with both lists
    import re

    from sparsetrain.config.presets import PRESETS
    from sparsetrain.labels import TASKS

    text = " ".join(CliRunner().invoke(main, ["init", "--help"]).output.split())
    words = set(re.findall(r"[a-z_]+", text))
    assert set(TASKS.values()) <= words and set(PRESETS) <= words, text
