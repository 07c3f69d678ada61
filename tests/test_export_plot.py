"""export round-trips (the weights read back equal the checkpoint), --top, feature names; plot and
fit --plot write a PNG that decodes; shell completion generates."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from sparsetrain.module import load_params
from sparsetrain.trainer.export import read_export
from test_cli import cli, one_error_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOGREG = str(ROOT / "configs" / "logreg.yaml")
SOFTMAX = str(ROOT / "configs" / "softmax.yaml")
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def checkpoint(run, epoch) -> dict:
    arg, _ = load_params(str(pathlib.Path(run) / "checkpoints" / f"model-{epoch:04d}.params"))
    return {k: v.asnumpy() for k, v in arg.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    out = {}
    for name, config in (("logreg", LOGREG), ("softmax", SOFTMAX)):
        res = cli("fit", config, "--output", root / name, "-q", "--epochs", "3", "--plot",
                  "--set", "train.target={}", "--set", "train.early_stopping={patience: 5}")
        assert res.exit_code == 0, res.stderr
        out[name] = root / name
    return out


@pytest.mark.parametrize("name", ["logreg", "softmax"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_round_trips_to_the_checkpoint(runs, tmp_path, name, fmt):
    run = runs[name]
    path = tmp_path / f"w.{fmt}"
    res = cli("export", run, "--format", fmt, "--out", path, "--last", "--all")  # (softmax's weight starts random)
    assert res.exit_code == 0, res.stderr
    want = checkpoint(run, 3)
    got = read_export(str(path))
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_a_slow_export_shows_a_status_line(runs, tmp_path, monkeypatch):
    # a 1M-row weight took 5-17 s with nothing on the screen
    from sparsetrain import cli_fit_display

    monkeypatch.setattr(cli_fit_display, "BUSY_AFTER", 0.0)  # (as a large model: writing takes over a second)
    res = cli("export", runs["logreg"], "--out", tmp_path / "w.json")
    assert res.exit_code == 0 and "exporting " in res.stderr and "model-0003.params (" in res.stderr, res.stderr
    res = cli("export", runs["logreg"])  # to stdout: the text streams out as it is made, no status line among it
    assert res.exit_code == 0 and res.stdout.startswith("{") and "exporting" not in res.stderr, res.stderr


def test_export_json_has_config_rows_and_the_best_epoch(runs):
    run = runs["softmax"]
    doc = json.loads(cli("export", run, "--all").stdout)
    best = json.loads((run / "checkpoint.json").read_text())["best"]["epoch"]
    assert doc["epoch"] == best and doc["checkpoint"].endswith(f"model-{best:04d}.params")
    assert doc["model"]["loss"]["op"] == "SoftmaxOutput"
    weight = doc["parameters"]["weight"]
    assert weight["stype"] == "row_sparse" and len(weight["shape"]) == 2
    assert all(any(v != 0 for v in r["values"]) for r in weight["rows"])  # non-zero rows only
    assert [r["index"] for r in weight["rows"]] == sorted(r["index"] for r in weight["rows"])
    assert len(doc["parameters"]["bias"]["values"]) == weight["shape"][1]


def test_export_leaves_out_the_rows_of_a_weight_that_starts_random(tmp_path):
    # an FM's factors start normal(0.01): every row is non-zero, trained or not, so export listed all
    # 2**18 rows of a hashed model's table; the zero-started linear weight lists the rows training touched
    run = tmp_path / "fm"
    assert cli("fit", ROOT / "configs" / "fm.yaml", "--output", run, "-q", "--epochs", "1",
               "--set", "train.target={}").exit_code == 0
    res = cli("export", run)
    assert res.exit_code == 0, res.stderr
    params = json.loads(res.stdout)["parameters"]
    assert params["factors"]["rows"] == [] and params["factors"]["left_out"].startswith("200 rows: ")
    assert params["linear_weight"]["rows"] and "left_out" not in params["linear_weight"]
    # named by its checkpoint prefix, the run is the same: its config says the factors start random
    assert json.loads(cli("export", run / "checkpoints" / "model").stdout)["parameters"] == params
    # finding that out draws from the initializers, not from a library caller's random stream
    from sparsetrain import random as st_random
    from sparsetrain.trainer.export import export_model
    from sparsetrain.trainer.predict import load_trained

    st_random.seed(7)
    export_model(load_trained(str(run)), str(run))
    after_export = st_random.generator().random(3)
    st_random.seed(7)
    np.testing.assert_array_equal(after_export, st_random.generator().random(3))
    assert res.stderr.strip().splitlines() == [
        "note: factors: left out 200 rows: each starts non-zero (its init), trained or not; --top K writes the K "
        "largest, --all every row"]
    csv_text = cli("export", run, "--format", "csv").stdout
    assert "# parameter factors: shape [200, 8] stype row_sparse (left out: 200 rows: " in csv_text
    assert not any(line.startswith("factors,") for line in csv_text.splitlines())
    top = json.loads(cli("export", run, "--top", "3").stdout)["parameters"]["factors"]
    assert len(top["rows"]) == 3 and "left_out" not in top
    res = cli("export", run, "--top", "3", "--all")
    assert res.exit_code == 2 and one_error_line(res.stderr) == "error: --top and --all exclude each other"
    path = tmp_path / "all.csv"
    assert cli("export", run, "--all", "--out", path).exit_code == 0
    want = checkpoint(run, 1)
    got = read_export(str(path))
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def test_export_top_k_by_magnitude_with_feature_names(runs, tmp_path):
    run = runs["logreg"]
    (run / "feature_names.json").write_text(json.dumps({"format": "sparsetrain-feature-names/1", "names": {
        "3": ["age"], "7": ["c1=a", "c2=b"]}}))
    try:
        full = json.loads(cli("export", run).stdout)["parameters"]["weight"]["rows"]
        top = json.loads(cli("export", run, "--top", "5").stdout)["parameters"]["weight"]["rows"]
    finally:
        (run / "feature_names.json").unlink()
    norms = sorted((abs(r["values"][0]) for r in full), reverse=True)
    assert [abs(r["values"][0]) for r in top] == norms[:5]
    named = {r["index"]: r.get("feature") for r in full}
    assert named[3] == ["age"] and named[7] == ["c1=a", "c2=b"] and named.get(4) is None
    assert "feature" not in next(r for r in full if r["index"] not in (3, 7))


def test_export_of_a_damaged_name_map_is_one_line(runs, tmp_path):
    run = tmp_path / "copy"
    import shutil

    shutil.copytree(runs["logreg"], run)
    (run / "feature_names.json").write_text("{not json")
    res = cli("export", run)
    assert res.exit_code == 1 and "feature_names.json: unreadable feature name map" in one_error_line(res.stderr)


def test_fit_plot_and_plot_write_a_png_that_decodes(runs, tmp_path):
    import matplotlib.image

    png = runs["logreg"] / "metrics.png"
    assert png.stat().st_size > 5000
    img = matplotlib.image.imread(str(png))
    assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 300
    out = tmp_path / "m.png"
    res = cli("plot", runs["softmax"], "--out", out)
    assert res.exit_code == 0, res.stderr
    assert out.stat().st_size > 5000 and matplotlib.image.imread(str(out)).ndim == 3
    assert not list(runs["logreg"].glob(".tmp-*"))  # written atomically


def test_plot_marks_whole_epochs_only(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from sparsetrain.trainer.plot import plot_metrics

    closed = []
    monkeypatch.setattr(plt, "close", closed.append)  # keep the figure to look at its axis
    history = [{"epoch": e, "log_loss": 1.0 / (e + 1), "samples": 10} for e in range(3)]
    plot_metrics(history, str(tmp_path / "m.png"), best_epoch=3)
    ticks = [t for t in closed[-1].axes[-1].get_xticks() if 0 <= t <= 2]
    assert ticks and all(t == int(t) for t in ticks), ticks  # (0.25, 0.5, ... on a 3-epoch run)


def test_plot_without_matplotlib_is_one_line(runs, tmp_path):
    code = ("import sys; sys.modules['matplotlib'] = None; from sparsetrain.cli import main; "
            f"main(['plot', {str(runs['logreg'])!r}, '--out', {str(tmp_path / 'x.png')!r}])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert res.returncode == 1
    assert res.stderr.strip() == "error: plotting needs matplotlib: pip install 'sparsetrain[plot]'"
    code = ("import sys; sys.modules['matplotlib'] = None; from sparsetrain.cli import main; "
            f"main(['fit', {LOGREG!r}, '--output', {str(tmp_path / 'run')!r}, '--plot'])")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert res.returncode == 1 and "needs matplotlib" in res.stderr
    assert not (tmp_path / "run").exists()  # refused before the run directory is made


def test_bash_completion_script_generates():
    res = subprocess.run(["sparsetrain"], capture_output=True, text=True,
                         env={**ENV, "_SPARSETRAIN_COMPLETE": "bash_source"})
    assert res.returncode == 0, res.stderr
    assert "_sparsetrain_completion" in res.stdout and "complete " in res.stdout
    words = subprocess.run(["sparsetrain"], capture_output=True, text=True,
                           env={**ENV, "_SPARSETRAIN_COMPLETE": "bash_complete", "COMP_WORDS": "sparsetrain ex",
                                "COMP_CWORD": "1"})
    assert "export" in words.stdout


def test_export_json_is_json_dumps_of_its_document(runs, tmp_path):
    # written in pieces as the rows are made: the text is still json.dumps(doc, indent=1) and a newline
    for run in runs.values():
        text = cli("export", run).stdout
        assert text == json.dumps(json.loads(text), indent=1) + "\n"


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_export_memory_does_not_grow_with_the_rows(tmp_path, fmt):
    # the whole document was made in memory, rows as dicts and then its text: 1M rows peaked at 1.2 GB RSS
    # (JSON); traced here, 20k rows took ~20 MiB (JSON) / ~9 MiB (CSV) before, ~2.5 / ~1 MiB streamed
    import tracemalloc
    import types

    from sparsetrain import nd
    from sparsetrain.ndarray.sparse import row_sparse_array
    from sparsetrain.params_file import save_params
    from sparsetrain.trainer.export import export_model, write_export

    n = 20_000
    values = np.random.default_rng(0).standard_normal((n, 1)).astype(np.float32)
    save_params(str(tmp_path / "m.params"), {"weight": row_sparse_array((values, np.arange(n)), shape=(n, 1)),
                                            "bias": nd.array(np.ones(1, np.float32))})
    model = types.SimpleNamespace(params_path=str(tmp_path / "m.params"), epoch=1, num_features=n)
    tracemalloc.start()
    try:
        write_export(export_model(model), str(tmp_path / f"w.{fmt}"), fmt)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20
    np.testing.assert_array_equal(read_export(str(tmp_path / f"w.{fmt}"))["weight"], values)


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_colliding_names_with_a_bar_inside_read_back_as_they_were(runs, tmp_path, fmt):
    from sparsetrain.trainer.export import feature_cell, read_export_names, split_feature_cell

    run = tmp_path / "copy"
    import shutil

    shutil.copytree(runs["logreg"], run)
    names = {3: ["c1=a|b", "c2=x"], 7: ["c1=a", "c2=b|", "c3=back\\slash\\|"], 9: ['q="1,2"\r\nz'], 11: ["|"]}
    (run / "feature_names.json").write_text(json.dumps({"format": "sparsetrain-feature-names/1", "names": {
        str(k): v for k, v in names.items()}}))
    out = tmp_path / f"e.{fmt}"
    assert cli("export", run, "--all", "--out", out).exit_code == 0
    got = read_export_names(str(out))
    assert {k: got[k] for k in names if k in got} == {k: v for k, v in names.items() if k in got} and got
    for v in names.values():
        assert split_feature_cell(feature_cell(v)) == v
    assert feature_cell(["c1=a|b", "c2=x"]) == "c1=a\\|b|c2=x" and split_feature_cell("") == []
