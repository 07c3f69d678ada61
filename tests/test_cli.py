"""End to end: every command through click's CliRunner and through a real subprocess."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from sparsetrain import metric as st_metric
from sparsetrain.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
LINREG = str(CONFIGS / "linreg.yaml")
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run(*args, timeout=120, **kw):
    """The real command line, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "sparsetrain.cli", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=timeout, **kw)


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def read_metrics(run_dir) -> list[dict]:
    return [json.loads(line) for line in (pathlib.Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def load_params(run_dir):
    from sparsetrain.module import load_params as load

    state = json.loads((pathlib.Path(run_dir) / "checkpoint.json").read_text())
    arg, _ = load(str(pathlib.Path(run_dir) / f"{state['prefix']}-{state['epoch']:04d}.params"))
    return {k: v.asnumpy() for k, v in arg.items()}, state["epoch"]


def cli(*args):
    """In-process run that keeps stdout and stderr apart."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def linreg_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("linreg") / "run"
    res = cli("fit", LINREG, "--output", out)
    return out, res


def readme_block(after: str) -> list[str]:
    """The lines of the README's code block that starts with the line ``after``."""
    text = (ROOT / "README.md").read_text()
    start = text.index(after + "\n") + len(after) + 1
    return text[start:text.index("```", start)].splitlines()


def test_the_readme_walk_through_shows_what_the_commands_print(linreg_run):
    """README's seed walk-through: infer-stypes' log as is; fit's header, and each epoch's mse as printed
    (samples/s and times vary)."""
    log = cli("infer-stypes", LINREG, "--format", "log", "--backward").stdout.splitlines()
    assert readme_block("$ sparsetrain infer-stypes configs/linreg.yaml --format log --backward") == log
    shown = readme_block("$ sparsetrain fit configs/linreg.yaml")
    res = linreg_run[1]
    # (a slow load adds a 'loading ...' status line; the tests set $SPARSETRAIN_THREADS: threads' reason differs)
    engine, threads = [ln for ln in res.stderr.splitlines() if ln.startswith(("engine ", "threads "))]
    assert [ln for ln in shown if ln.startswith("engine ")] == [engine]
    assert [ln.split(" (")[0] for ln in shown if ln.startswith("threads ")] == [threads.split(" (")[0]]
    mse = [ln.split("  samples/s")[0] for ln in shown if ln.startswith("epoch ")]
    assert mse == [ln.split("  samples/s")[0] for ln in res.stdout.splitlines() if ln.startswith("epoch ")]
    use = readme_block("$ sparsetrain evaluate runs/linreg data/linreg.libsvm")
    data = ROOT / "data" / "linreg.libsvm"
    assert use[0] == cli("evaluate", linreg_run[0], data).stdout.strip()  # (stdout: a slow read adds a status line)
    assert use[4:8] == cli("predict", linreg_run[0], data).stdout.splitlines()[:4]


# -- fit --------------------------------------------------------------------------------------------

def test_fit_seed_config_reaches_target_and_writes_the_run_directory(linreg_run):
    out, res = linreg_run
    assert res.exit_code == 0, res.output
    records = read_metrics(out)
    assert [r["epoch"] for r in records] == list(range(10))
    for r in records:
        assert {"epoch", "mse", "samples", "seconds", "data_seconds"} <= set(r)
        assert r["samples"] == 1000
    assert records[-1]["mse"] < 1.0 < records[0]["mse"]
    assert "epoch 9  mse " in res.output
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["optimizer"]["learning_rate"] == 0.05 and saved["data"]["num_features"] == 100
    assert (out / "checkpoints" / "model-0010.params").exists()
    assert (out / "checkpoints" / "model-symbol.json").exists()
    params, epoch = load_params(out)
    assert epoch == 10
    # the seed's weights are [1..100]; features seen in training are learned
    assert np.corrcoef(params["weight"].ravel(), np.arange(1, 101))[0, 1] > 0.9


def test_fit_engines_give_the_same_parameters(tmp_path):
    runs = {}
    for engine in ("graph", "compiled"):
        res = cli("fit", LINREG, "--output", tmp_path / engine, "--engine", engine, "--epochs", 2, "--quiet")
        assert res.exit_code == 1 and "target mse < 1 missed" in res.stderr  # 2 epochs are not enough
        assert {r["engine"] for r in read_metrics(tmp_path / engine)} == {engine}
        runs[engine] = load_params(tmp_path / engine)[0]
    for k in runs["graph"]:
        np.testing.assert_allclose(runs["compiled"][k], runs["graph"][k], rtol=1e-4, atol=1e-5)


def test_fit_subprocess_missed_target_exits_1_with_one_line(tmp_path):
    p = run("fit", LINREG, "--output", tmp_path / "r", "--epochs", 1, "--quiet")
    assert p.returncode == 1
    line = one_error_line(p.stderr)
    assert "target mse < 1 missed" in line
    assert p.stdout.startswith("epoch 0  mse ")


def test_fit_subprocess_bad_config_exits_2(tmp_path):
    p = run("fit", LINREG, "--set", "model.ops[1].inputs[0]=dto", "--output", tmp_path / "r")
    assert p.returncode == 2
    assert one_error_line(p.stderr) == ("error: model.ops[1].inputs[0]: unknown symbol 'dto' "
                                        "(did you mean 'dot'?)")
    assert p.stdout == ""


def test_fit_bad_data_names_file_and_line(tmp_path):
    data = tmp_path / "bad.libsvm"
    data.write_text("1 0:1 3:2\n2 1:1\n3 2:abc\n")
    res = cli("fit", LINREG, "--set", f"data.train={data}", "--output", tmp_path / "r", "--quiet")
    assert res.exit_code == 1
    assert "bad.libsvm:3" in one_error_line(res.stderr)


@pytest.mark.parametrize("bad", ["yaml", "missing"])
def test_fit_unreadable_config_exits_2(tmp_path, bad):
    path = tmp_path / "c.yaml"
    if bad == "yaml":
        path.write_text("data: {train: [x\n")
    res = cli("fit", path)
    assert res.exit_code == 2
    assert "c.yaml" in one_error_line(res.stderr)


def test_fit_nan_stops_at_once_naming_epoch_and_batch(tmp_path):
    out = tmp_path / "r"
    res = cli("fit", LINREG, "--set", "optimizer.learning_rate=50", "--output", out, "--quiet")
    assert res.exit_code == 1
    line = one_error_line(res.stderr)
    assert "epoch 0 batch" in line
    assert not (out / "checkpoint.json").exists()  # failed in epoch 0: nothing good to keep


def test_fit_nan_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from sparsetrain.base import NonFiniteError
    from sparsetrain.module import Module

    real = Module.run_epoch

    def diverging(self, data, metric, engine="auto", batch_end_callback=None, epoch=0):
        if epoch == 2:
            raise NonFiniteError("the loss became non-finite at epoch 2 batch 17", epoch=2, batch=17)
        return real(self, data, metric, engine=engine, batch_end_callback=batch_end_callback, epoch=epoch)

    monkeypatch.setattr(Module, "run_epoch", diverging)
    out = tmp_path / "r"
    res = CliRunner().invoke(main, ["fit", LINREG, "--output", str(out), "--quiet", "--engine", "graph"])
    assert res.exit_code == 1
    line = one_error_line(res.stderr)
    assert "epoch 2 batch 17" in line and "model-0002.params" in line
    assert json.loads((out / "checkpoint.json").read_text())["epoch"] == 2
    assert (out / "checkpoints" / "model-0002.params").exists()
    assert not (out / "checkpoints" / "model-0003.params").exists()
    assert [r["epoch"] for r in read_metrics(out)] == [0, 1]


def test_fit_verbose_stypes_logs_the_plan(tmp_path):
    res = cli("fit", LINREG, "--epochs", 1, "--output", tmp_path / "r", "--verbose-stypes", "--quiet")
    assert "node 2 dot: sparse\n    input 0: csr (1, 100)\n    input 1: row_sparse (100, 1)" in res.stderr
    assert "output 0: row_sparse (100, 1)" in res.stderr  # the weight gradient


def test_kill_and_resume_gives_the_same_parameters(tmp_path):
    # a bigger data set so that an epoch takes long enough to be killed in the middle
    data = tmp_path / "d.libsvm"
    assert invoke("gen-data", "--rows", 10000, "--features", 100, "--density", 0.05, "--seed", 3,
                  "--out", data, "--quiet").exit_code == 0
    epochs = 5
    common = ["--set", f"data.train={data}", "--set", "data.batch_size=2", "--set", "data.shuffle=true",
              "--set", "optimizer.learning_rate=0.01", "--epochs", epochs, "--engine", "graph", "--quiet"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "sparsetrain.cli", "fit", LINREG, "--output", str(killed),
                             *map(str, common)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    state_file = killed / "checkpoint.json"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        if state_file.exists() and json.loads(state_file.read_text() or "{}").get("epoch", 0) >= 1:
            time.sleep(0.1)  # into the middle of the next epoch
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped_at = json.loads(state_file.read_text())["epoch"]
    assert 1 <= stopped_at < epochs
    assert (killed / ".lock").read_text().strip() == str(proc.pid)  # a stale lock: its holder is dead
    resumed = cli("fit", LINREG, "--output", killed, "--resume", *common)
    assert resumed.exit_code in (0, 1), resumed.stderr
    assert f"resuming from epoch {stopped_at}" in resumed.stderr
    assert not (killed / ".lock").exists() and not list(killed.rglob(".tmp-*"))
    straight = cli("fit", LINREG, "--output", tmp_path / "straight", *common)
    assert straight.exit_code == resumed.exit_code
    a, ea = load_params(killed)
    b, eb = load_params(tmp_path / "straight")
    assert ea == eb == epochs
    for k in b:
        np.testing.assert_array_equal(a[k], b[k])
    ma, mb = read_metrics(killed), read_metrics(tmp_path / "straight")
    assert [r["epoch"] for r in ma] == list(range(epochs))
    assert [r["mse"] for r in ma] == pytest.approx([r["mse"] for r in mb])


def test_fit_generates_its_data_once(tmp_path):
    doc = yaml.safe_load(pathlib.Path(LINREG).read_text())
    del doc["data"]["train"]
    doc["data"]["generate"] = {"path": "gen/d.libsvm", "rows": 300, "features": 100, "density": 0.05, "seed": 4}
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(doc))
    first = cli("fit", path, "--epochs", 1, "--output", tmp_path / "r")
    assert first.exit_code == 1 and "target mse < 1 missed" in first.stderr
    assert "generating 300 rows" in first.stderr and (tmp_path / "gen" / "d.libsvm").exists()
    again = cli("fit", path, "--epochs", 1, "--output", tmp_path / "r", "--overwrite")
    assert "using generated data" in again.stderr
    assert [r["samples"] for r in read_metrics(tmp_path / "r")] == [300]  # the first run's record replaced


def test_stream_and_memory_caches_train_the_same(tmp_path):
    for cache in ("memory", "stream"):
        res = cli("fit", LINREG, "--set", f"data.cache={cache}", "--epochs", 1, "--output", tmp_path / cache, "-q")
        assert res.exit_code == 1, res.stderr
    a, b = load_params(tmp_path / "memory")[0], load_params(tmp_path / "stream")[0]
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_resume_with_a_different_model_is_refused(tmp_path):
    out = tmp_path / "r"
    assert cli("fit", LINREG, "--epochs", 1, "--output", out, "--quiet").exit_code == 1
    res = cli("fit", LINREG, "--epochs", 2, "--output", out, "--resume", "--set", "optimizer.learning_rate=0.1")
    assert res.exit_code == 2
    assert "--resume: optimizer.learning_rate differs" in one_error_line(res.stderr)


def test_a_run_saved_before_a_key_existed_resumes_with_its_default(tmp_path):
    # a run written before model.variables.NAME.lr_mult / wd_mult existed: '--resume: model.variables differs'
    out = tmp_path / "r"
    assert cli("fit", LINREG, "--epochs", 1, "--output", out, "--quiet").exit_code == 1
    saved = yaml.safe_load((out / "config.yaml").read_text())
    for v in saved["model"]["variables"].values():
        del v["lr_mult"], v["wd_mult"]
    (out / "config.yaml").write_text(yaml.safe_dump(saved))
    res = cli("fit", LINREG, "--epochs", 2, "--output", out, "--resume", "--quiet")
    assert res.exit_code == 1 and "error: target mse < 1 missed" in res.stderr  # (trained epoch 2)
    res = cli("fit", LINREG, "--epochs", 3, "--output", out, "--resume", "--set", "model.variables.weight.lr_mult=0.5")
    assert res.exit_code == 2 and "--resume: model.variables differs" in one_error_line(res.stderr)


# -- shipped configs --------------------------------------------------------------------------------

SMALL_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.yaml") if p.name != "large.yaml")


@pytest.mark.parametrize("name", SMALL_CONFIGS)
def test_every_small_config_trains_to_its_target(tmp_path, name):
    res = invoke("fit", CONFIGS / name, "--output", tmp_path / "r", "--quiet")
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((CONFIGS / name).read_text())
    assert cfg["train"].get("target"), f"{name} has no target"
    if cfg["data"].get("eval"):
        # evaluate on the eval file reproduces the eval metrics of the best epoch (by the first eval
        # metric, marked in checkpoint.json) by default, and of the last epoch with --last
        eval_file = (CONFIGS / cfg["data"]["eval"]).resolve()
        records = read_metrics(tmp_path / "r")
        best = json.loads((tmp_path / "r" / "checkpoint.json").read_text())["best"]
        assert best["metric"] == f"eval_{cfg['train']['metrics'][0]}"
        assert best["value"] == st_metric.best(best["metric"], [r[best["metric"]] for r in records])
        for flags, record in (((), records[best["epoch"] - 1]), (("--last",), records[-1])):
            ev = cli("evaluate", tmp_path / "r", eval_file, "--json", *flags)
            for k, v in json.loads(ev.stdout).items():
                assert v == pytest.approx(record[f"eval_{k}"], rel=1e-5)
        lines = cli("predict", tmp_path / "r", eval_file).stdout.splitlines()
        header = lines[0].split(",")
        preds = np.loadtxt(lines[1:], delimiter=",")
        if cfg["model"]["loss"]["op"] == "SoftmaxOutput":
            assert header == (["row", "label"] + [f"prediction_{k}" for k in range(5)]
                              + [f"probability_{k}" for k in range(5)] + ["class"])
            assert preds.shape == (500, 13)
            np.testing.assert_allclose(preds[:, 7:12].sum(axis=1), 1.0, rtol=1e-4)
            np.testing.assert_array_equal(preds[:, 12], preds[:, 7:12].argmax(axis=1))
        else:
            assert header == ["row", "label", "prediction", "probability", "class"]
            assert preds.shape == (500, 5) and ((preds[:, 3] >= 0) & (preds[:, 3] <= 1)).all()
            np.testing.assert_array_equal(preds[:, 4], preds[:, 3] > 0.5)
        np.testing.assert_array_equal(preds[:, 0], np.arange(500))


def test_large_config_validates_without_generating():
    res = invoke("infer-stypes", CONFIGS / "large.yaml", "--format", "json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    dot = next(n for n in doc["nodes"] if n["op"] == "dot")
    assert dot["inputs"][0]["shape"][1] == 1_000_000


# -- infer-stypes -----------------------------------------------------------------------------------

FALLBACK_OPS = ("model.ops=[{name: sg, op: sigmoid, inputs: [data]}, {name: dot, op: dot, inputs: [sg, weight]},"
                " {name: pred, op: broadcast_add, inputs: [dot, bias]}]")


def test_infer_stypes_table_log_json_dot():
    table = invoke("infer-stypes", LINREG)
    assert table.exit_code == 0 and "dot" in table.output and "row_sparse" in table.output
    log = invoke("infer-stypes", LINREG, "--format", "log", "--backward", "--batch-size", 32)
    assert log.exit_code == 0
    assert "node 2 dot: sparse\n    input 0: csr (32, 100)\n    input 1: row_sparse (100, 1)\n" \
           "    output 0: default (32, 1)" in log.output
    assert "gradient weight: row_sparse (100, 1)" in log.output
    js = json.loads(invoke("infer-stypes", LINREG, "--format", "json", "--backward").output)
    assert {n["name"] for n in js["nodes"] if not n["backward"]} == {"dot", "pred", "lro"}
    assert any(n["backward"] and n["op"] == "dot" and n["outputs"][0]["stype"] == "row_sparse" for n in js["nodes"])
    assert {g["argument"]: g["stype"] for g in js["gradients"]} == {"weight": "row_sparse", "bias": "default"}
    dot = invoke("infer-stypes", LINREG, "--format", "dot").output
    assert dot.startswith("digraph") and '[label="csr (1, 100)"]' in dot


def test_infer_stypes_flags_fallback_in_every_format():
    for fmt in ("table", "log", "json", "dot"):
        res = CliRunner().invoke(main, ["infer-stypes", LINREG, "--set", FALLBACK_OPS, "--format", fmt],
                                 terminal_width=200)
        assert res.exit_code == 0, res.output
        if fmt == "json":
            nodes = {n["name"]: n for n in json.loads(res.output)["nodes"]}
            assert nodes["sg"]["fallback"] and nodes["dot"]["fallback"] and not nodes["pred"]["fallback"]
            assert nodes["sg"]["hint"] == "change input 0 (data) from csr to default to use a dense kernel"
            assert "input 1 (weight) from row_sparse to default" in nodes["dot"]["hint"]
        else:
            assert "change input 0 (data) from csr to default" in " ".join(res.output.split())
        if fmt == "dot":
            assert "fillcolor=\"#ff9999\"" in res.output


def test_infer_stypes_names_each_parameter_with_its_multipliers():
    # model.variables.NAME.lr_mult / wd_mult: the run's step sizes, shown nowhere in infer-stypes before
    sets = ("--set", "model.variables.weight.lr_mult=0.25", "--set", "model.variables.bias.wd_mult=0")
    table = invoke("infer-stypes", LINREG, *sets)
    assert table.exit_code == 0 and "parameters: weight (lr_mult 0.25), bias (wd_mult 0)\n" in table.output
    assert "parameters: weight, bias\n" in invoke("infer-stypes", LINREG).output
    log = invoke("infer-stypes", LINREG, "--format", "log", *sets).output
    assert log.endswith("parameters: weight (lr_mult 0.25), bias (wd_mult 0)\n")
    js = json.loads(invoke("infer-stypes", LINREG, "--format", "json", *sets).output)
    assert js["parameters"] == [
        {"name": "weight", "stype": "row_sparse", "shape": [100, 1], "lr_mult": 0.25, "wd_mult": 1.0},
        {"name": "bias", "stype": "default", "shape": [1], "lr_mult": 1.0, "wd_mult": 0.0}]
    dot = invoke("infer-stypes", LINREG, "--format", "dot", *sets).output
    assert '[label="weight (lr_mult 0.25)\\nrow_sparse", shape=ellipse]' in dot


def test_infer_stypes_subprocess_reads_no_data(tmp_path):
    p = run("infer-stypes", LINREG, "--format", "json", "--set", f"data.train={tmp_path}/nowhere.libsvm")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["nodes"][0]["op"] == "dot"


# -- gen-data / predict / evaluate ----------------------------------------------------------------

def test_gen_data_writes_the_seed_data_and_weights(tmp_path):
    from sparsetrain.io import load_libsvm

    out = tmp_path / "g.libsvm"
    p = run("gen-data", "--rows", 300, "--features", 20, "--density", 0.2, "--seed", 1, "--out", out)
    assert p.returncode == 0, p.stderr
    assert "300 rows, 20 features" in p.stdout and "true weights" in p.stdout
    X, y = load_libsvm(str(out), num_features=20)
    np.testing.assert_allclose(X.asscipy() @ np.arange(1, 21), y, rtol=1e-4, atol=1e-3)


def test_gen_data_usage_errors_exit_2(tmp_path):
    res = cli("gen-data", "--rows", 10, "--features", 5, "--out", tmp_path / "x")
    assert res.exit_code == 2
    assert "--density" in one_error_line(res.stderr)
    res = cli("gen-data", "--rows", -1, "--features", 5, "--density", 0.1, "--out", tmp_path / "x")
    assert res.exit_code == 2
    assert "--rows" in one_error_line(res.stderr)


def test_predict_and_evaluate_from_run_dir_and_prefix(tmp_path, linreg_run):
    out, _ = linreg_run
    data = ROOT / "data" / "linreg.libsvm"
    pred_file = tmp_path / "p.csv"
    res = cli("predict", out, data, "--out", pred_file)
    assert res.exit_code == 0, res.stderr
    assert pred_file.read_text().splitlines()[0] == "row,label,prediction"
    table = np.loadtxt(pred_file, delimiter=",", skiprows=1)
    preds = table[:, 2]
    assert preds.shape == (1000,)
    labels = np.array([float(line.split()[0]) for line in data.read_text().splitlines()])
    np.testing.assert_allclose(table[:, 1], labels, rtol=1e-6)
    assert np.mean((preds - labels) ** 2) < 1.0
    ev = cli("evaluate", out, data, "--json")
    assert ev.exit_code == 0, ev.stderr
    # MSE is averaged over batches, as MXNet does (evaluate reads 256-row batches)
    batch_mse = [np.mean((preds[i:i + 256] - labels[i:i + 256]) ** 2) for i in range(0, 1000, 256)]
    assert json.loads(ev.stdout)["mse"] == pytest.approx(np.mean(batch_mse), rel=1e-4)
    by_prefix = invoke("evaluate", out / "checkpoints" / "model", data, "--metric", "mae")
    assert by_prefix.exit_code == 0 and by_prefix.output.startswith("mae ")
    stdout_preds = invoke("predict", out / "checkpoints" / "model-0010.params", data)
    np.testing.assert_allclose(np.loadtxt(stdout_preds.output.splitlines()[1:], delimiter=",")[:, 2], preds, rtol=1e-5)


def test_evaluate_unknown_metric_is_a_usage_error(linreg_run):
    res = cli("evaluate", linreg_run[0], ROOT / "data" / "linreg.libsvm", "--metric", "msee")
    assert res.exit_code == 2
    assert "unknown metric 'msee'" in one_error_line(res.stderr)


def test_predict_without_checkpoint_exits_1(tmp_path):
    res = cli("predict", tmp_path, ROOT / "data" / "linreg.libsvm")
    assert res.exit_code == 1
    assert "no complete checkpoint" in one_error_line(res.stderr)


def test_help_explains_every_command():
    for cmd in ("fit", "infer-stypes", "gen-data", "predict", "evaluate"):
        res = invoke(cmd, "--help")
        assert res.exit_code == 0 and "Usage:" in res.output
    assert "--resume" in invoke("fit", "--help").output
    assert "infer-stypes" in invoke("--help").output
    res = cli("nosuchcommand")
    assert res.exit_code == 2 and "No such command" in one_error_line(res.stderr)


def test_the_command_list_says_what_each_command_does_without_cutting_it():
    out = invoke("--help").output
    listed = out[out.index("Commands:"):].splitlines()[1:]
    assert sorted(line.split()[0] for line in listed if line.strip()) == sorted(main.commands)
    assert not [line for line in listed if line.rstrip().endswith("...")], out  # (click cut each first sentence)


# options whose absence turns their feature off, or one of two alternatives gen-data requires
NO_DEFAULT = {("fit", "--set"), ("infer-stypes", "--set"), ("fit", "--address"), ("fit", "--init-from"),
              ("gen-data", "--features"), ("gen-data", "--density"), ("gen-data", "--nnz-per-row")}


def test_every_option_of_every_command_is_explained_with_its_default():
    import click

    missing = []
    for name, cmd in main.commands.items():
        ctx = click.Context(cmd, info_name=name, parent=click.Context(main))
        for p in cmd.get_params(ctx):  # gen-data's schema options too (added on first use)
            if not isinstance(p, click.Option) or p.name == "help":
                continue
            if not p.help:
                missing.append(f"{name} {p.opts[0]}: no help")
            elif not (p.is_flag or p.required or (name, p.opts[0]) in NO_DEFAULT
                      or (p.show_default and p.default is not None) or "default" in p.help):
                missing.append(f"{name} {p.opts[0]}: no default shown")
    assert not missing, missing


def test_fit_fallback_warns_once_per_node_and_strict_makes_it_an_error(tmp_path):
    res = cli("fit", LINREG, "--set", FALLBACK_OPS, "--epochs", 1, "--engine", "graph", "-q",
              "--output", tmp_path / "warn")
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: storage fallback")]
    assert len(warnings) == len(set(warnings)) >= 1, res.stderr
    assert any("'sg'" in w for w in warnings)
    res = cli("fit", LINREG, "--set", FALLBACK_OPS, "--epochs", 1, "--engine", "graph", "-q", "--strict-stypes",
              "--output", tmp_path / "strict")
    # a config error naming the op's key, as infer-stypes shows the fallback without data (it was exit 1, naming
    # only the node)
    assert res.exit_code == 2
    assert one_error_line(res.stderr).startswith("error: model.ops[0] (sg, sigmoid): storage fallback at node 'sg'")
    assert "strict storage types" in one_error_line(res.stderr)


@pytest.mark.parametrize("cache,engine", [("memory", "compiled"), ("memory", "graph"), ("stream", "graph"),
                                          ("stream", "compiled")])
def test_resume_with_roll_over_gives_the_same_parameters(tmp_path, cache, engine):
    # 1000 rows at batch 7: each epoch leaves rows owed to the next one; shuffled (a stream within windows)
    shuffle = ["--set", "data.shuffle=true"] if cache == "memory" or engine == "compiled" else []
    if cache == "stream" and shuffle:
        shuffle += ["--set", "data.shuffle_window=300"]
    common = ["--set", "data.last_batch=roll_over", "--set", "data.batch_size=7", "--set", f"data.cache={cache}",
              *shuffle, "--engine", engine, "-q"]
    straight = cli("fit", LINREG, "--epochs", 3, "--output", tmp_path / "straight", *common)
    first = cli("fit", LINREG, "--epochs", 2, "--output", tmp_path / "resumed", *common)
    state = json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())
    assert state["roll_over"], "the epoch should leave rows for the next one"
    resumed = cli("fit", LINREG, "--epochs", 3, "--output", tmp_path / "resumed", "--resume", *common)
    assert straight.exit_code == first.exit_code == resumed.exit_code == 1  # 3 epochs miss mse < 1
    a, _ = load_params(tmp_path / "straight")
    b, _ = load_params(tmp_path / "resumed")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert [r["samples"] for r in read_metrics(tmp_path / "resumed")] == \
        [r["samples"] for r in read_metrics(tmp_path / "straight")]


def test_fit_notes_print_square_brackets_as_written(capsys):
    """A run-log note naming a config value in brackets is not taken for rich markup (the labels note's
    ``data.label_values: [negative, positive]`` printed as ``data.label_values:  to choose``)."""
    from sparsetrain.cli_fit_display import _FitReporter

    _FitReporter(quiet=False).note("set data.label_values: [negative, positive] to choose; [bold]x[/bold]")
    assert "set data.label_values: [negative, positive] to choose; [bold]x[/bold]" in capsys.readouterr().err


def test_evaluate_help_names_every_metric_of_the_catalogue():
    # the help is written out (sparsetrain starts without the library); it must keep up with the catalogue
    from sparsetrain.metric_catalogue import catalogue

    text = next(p.help for p in main.commands["evaluate"].params if p.name == "metrics")
    assert [m.name for m in catalogue() if m.name != "composite" and m.name not in text] == []
