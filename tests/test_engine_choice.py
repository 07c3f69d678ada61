"""Which engine a run uses, and that the header says so: ``auto`` names what kept a model off the
compiled engine, ``--engine compiled`` on a model it cannot run is refused (exit 2) before anything
is written."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

import sparsetrain as st
from sparsetrain.cli import main
from sparsetrain.engines import choose
from sparsetrain.engines.base import Unsupported

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def records(run_dir) -> list[dict]:
    return [json.loads(line) for line in (pathlib.Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def logreg_config(tmp_path, *, extra_op=None, metrics=None) -> pathlib.Path:
    """configs/logreg.yaml written to ``tmp_path`` (data paths made absolute), optionally with
    ``extra_op`` applied to the dot product before the bias is added."""
    cfg = yaml.safe_load((CONFIGS / "logreg.yaml").read_text())
    for key in ("train", "eval"):
        cfg["data"][key] = str((CONFIGS / cfg["data"][key]).resolve())
    if extra_op:
        cfg["model"]["ops"] = [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]},
                               {"name": "act", "op": extra_op, "inputs": ["dot"]},
                               {"name": "pred", "op": "broadcast_add", "inputs": ["act", "bias"]}]
    if metrics:
        cfg["train"]["metrics"] = metrics
    cfg["train"]["target"] = {}
    path = tmp_path / "model.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def header(res) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("engine ")]
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_a_model_with_an_unfused_op_says_which_op_and_runs_graph(tmp_path):
    res = cli("fit", logreg_config(tmp_path, extra_op="sign"), "--output", tmp_path / "r", "--epochs", 1)
    assert res.exit_code == 0, res.output
    assert header(res).startswith("engine graph (compiled engine: op 'sign' has no fused form")
    assert {r["engine"] for r in records(tmp_path / "r")} == {"graph"}
    assert "1 epoch, engine graph" in res.stdout  # (it said "1 epochs")


def test_engine_compiled_on_a_model_it_cannot_run_exits_2_naming_the_op_before_anything(tmp_path):
    out = tmp_path / "r"
    res = cli("fit", logreg_config(tmp_path, extra_op="sign"), "--output", out, "--engine", "compiled")
    assert res.exit_code == 2
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "op 'sign'" in errors[0] and "Traceback" not in res.stderr, res.stderr
    assert not any(ln.startswith("engine ") for ln in res.stderr.splitlines())  # no header before the refusal
    assert "epoch" not in res.stdout
    assert not (out / "config.yaml").exists() and not (out / "metrics.jsonl").exists()


def test_a_fused_model_says_and_runs_compiled(tmp_path):
    res = cli("fit", logreg_config(tmp_path), "--output", tmp_path / "r", "--epochs", 1)
    assert res.exit_code == 0, res.output
    assert header(res).startswith("engine compiled (LogisticRegressionOutput(")
    assert {r["engine"] for r in records(tmp_path / "r")} == {"compiled"}


def test_a_linear_model_of_mixed_dtypes_runs_graph_and_says_why(tmp_path):
    # the linear kernels took a float64 weight beside a float32 bias, and the run stopped at its first
    # batch with "error: bias must be a C-contiguous float64 array of shape (1,)"
    res = cli("fit", logreg_config(tmp_path), "--output", tmp_path / "r", "--epochs", 1, "--set",
              "model.variables.weight.dtype=float64")
    assert res.exit_code == 0, res.output
    assert header(res) == ("engine graph (compiled engine: parameters of dtypes ['float32', 'float64'] (one of "
                           "float32, float64 is fused))")


def test_auc_keeps_a_linear_model_compiled_and_the_header_says_so(tmp_path):
    res = cli("fit", logreg_config(tmp_path, metrics=["auc", "log_loss"]), "--output", tmp_path / "r",
              "--epochs", 2)
    assert res.exit_code == 0, res.output
    assert header(res).startswith("engine compiled (LogisticRegressionOutput(")
    rows = records(tmp_path / "r")
    assert {r["engine"] for r in rows} == {"compiled"}
    assert all(0.5 < r["auc"] <= 1 and 0.5 < r["eval_auc"] <= 1 for r in rows)


def _linear_module():
    data = st.sym.Variable("data", stype="csr")
    weight = st.sym.Variable("weight", stype="row_sparse", shape=(20, 1))
    loss = st.sym.LogisticRegressionOutput(data=st.sym.sparse.dot(data, weight), label=st.sym.Variable("label"))
    x = st.nd.sparse.csr_matrix(np.eye(8, 20, dtype=np.float32))
    it = st.io.NDArrayIter(x, np.zeros(8, np.float32), 2, label_name="label")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Zero())
    mod.init_optimizer(optimizer="sgd")
    return mod, it


def test_choose_lists_every_unsupported_metric_and_refuses_by_name():
    mod, it = _linear_module()
    custom = st.metric.CustomMetric(lambda label, pred: 0.0, name="zero")
    metric = st.metric.CompositeEvalMetric(["mse", custom])
    name, reason, items = choose("auto", mod.view(), it, metric)
    assert name == "graph" and items == [Unsupported("metric", "zero")]
    assert reason == "compiled engine: metric 'zero' has no fused form"
    with pytest.raises(st.ConfigError, match="engine 'compiled' cannot run this model: metric 'zero'"):
        mod.choose_engine("compiled", it, metric)
    assert choose("auto", mod.view(), it, st.metric.create("mse"))[0] == "compiled"
    assert choose("graph", mod.view(), it, st.metric.create("mse"))[:2] == ("graph", "requested")


def test_choose_names_an_optimizer_without_fused_form():
    class Heavy(st.optimizer.SGD):  # a user's own update: the fused kernels cannot run it
        def update(self, index, weight, grad, state):
            super().update(index, weight, grad, state)

    mod, it = _linear_module()
    mod.init_optimizer(optimizer=Heavy(), force_init=True)
    name, reason, items = choose("auto", mod.view(), it, st.metric.create("mse"))
    assert name == "graph" and [(i.kind, i.name) for i in items] == [("optimizer", "Heavy")], reason
    assert "overrides update()" in reason


def test_a_dense_update_of_a_row_sparse_weight_keeps_both_fused_forms_off():
    # SGD with momentum and lazy_update=False updates every row (the momentum of untouched rows too): neither the
    # hand kernel nor a generated plan (which updates a batch's rows) reproduces it; without momentum they do
    from sparsetrain.engines import compiled

    mod, it = _linear_module()
    mod.init_optimizer(optimizer=st.optimizer.SGD(momentum=0.9, lazy_update=False), force_init=True)
    want = [Unsupported("optimizer", "SGD", "updates every row of parameter 0 because lazy_update=False; the fused "
                        "kernel updates only the batch's rows")]
    for found in (compiled.match_linear(mod.view(), it), compiled.match_plan(mod.view(), it)):
        assert not found.ok and found.unsupported == want, found.reason
    mod.init_optimizer(optimizer=st.optimizer.SGD(lazy_update=False), force_init=True)
    assert compiled.match_linear(mod.view(), it).ok and compiled.match_plan(mod.view(), it).ok


def test_the_linear_pattern_is_matched_once_per_binding(monkeypatch):
    # the compile step and match_linear's checks share one match of the graph (match_view walks it)
    from sparsetrain.engines import compiled

    calls = []
    real = compiled.match_view
    monkeypatch.setattr(compiled, "match_view", lambda view: calls.append(1) or real(view))
    mod, it = _linear_module()
    for _ in range(2):
        assert compiled.match(mod.view(), it, st.metric.create("mse")).ok
        assert compiled.match_linear(mod.view(), it).ok
    assert len(calls) == 1
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label, force_rebind=True)
    assert compiled.match_linear(mod.view(), it).ok and len(calls) == 2  # (a new binding matches anew)


def test_choose_compiles_a_subclass_that_keeps_its_rule():
    class Renamed(st.optimizer.SGD):  # same rule, same update: the fused kernel runs it exactly
        pass

    mod, it = _linear_module()
    mod.init_optimizer(optimizer=Renamed(), force_init=True)
    assert choose("auto", mod.view(), it, st.metric.create("mse"))[0] == "compiled"


def test_the_config_and_fit_offer_every_registered_engine():
    # a new engine is an entry of engines.ENGINES; train.engine's choices (config/schema.py) and fit's --engine
    # (cli.py, which imports no engine to stay light) are written out: they must name the same engines
    import typing

    from sparsetrain.config.schema import TrainConfig
    from sparsetrain.engines import ENGINES

    want = {"auto", "graph", *ENGINES}
    assert set(typing.get_args(TrainConfig.model_fields["engine"].annotation)) == want
    option = next(p for p in main.commands["fit"].params if p.name == "engine")
    assert set(option.type.choices) == want


def _biased_module(model, **bind):
    """A model with a bias on ``data`` (csr): the linear family's (a hand kernel) or, for ``square``, a
    generated plan's; bound with ``bind`` (e.g. ``grad_req``)."""
    data = st.sym.Variable("data", stype="csr")
    pred = st.sym.sparse.dot(data, st.sym.Variable("weight", stype="row_sparse", shape=(20, 1)))
    if model == "square":
        pred = st.sym.square(pred)
    pred = st.sym.broadcast_add(pred, st.sym.Variable("bias", shape=(1,)))
    loss = st.sym.LogisticRegressionOutput(data=pred, label=st.sym.Variable("label"))
    it = st.io.NDArrayIter(st.nd.sparse.csr_matrix(np.eye(8, 20, dtype=np.float32)), np.ones(8, np.float32), 2,
                           label_name="label")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label, **bind)
    mod.init_params(st.initializer.Zero())
    mod.init_optimizer(optimizer="sgd")
    return mod, it


@pytest.mark.parametrize("model", ["linear", "square"])
def test_a_fixed_parameter_keeps_the_model_off_the_compiled_engine(model):
    # was: the linear family's kernels trained every parameter of the pattern, a fixed bias too
    mod, it = _biased_module(model, grad_req={"bias": "null"})
    name, reason, _ = choose("auto", mod.view(), it, st.metric.create("mse"))
    assert (name, reason) == ("graph", "compiled engine: parameter 'bias' is not trained (fixed parameters are "
                                       "not fused)")
    mod.run_epoch(it, st.metric.create("mse"))
    assert mod.get_params()[0]["bias"].asnumpy().tolist() == [0.0]


@pytest.mark.parametrize("model", ["linear", "square"])
def test_a_rebind_compiles_the_model_again(model):
    # the engine's prepared target is kept per binding: was per Module, so a plan compiled before a rebind that
    # fixes the bias went on training it
    mod, it = _biased_module(model)
    assert mod.choose_engine("auto", it, st.metric.create("mse"))[0] == "compiled"
    mod.bind(it.provide_data, it.provide_label, force_rebind=True, grad_req={"bias": "null"})
    assert mod.choose_engine("auto", it, st.metric.create("mse"))[0] == "graph"
    mod.bind(it.provide_data, it.provide_label, force_rebind=True)
    assert mod.choose_engine("auto", it, st.metric.create("mse"))[0] == "compiled"


@pytest.mark.parametrize("model", ["linear", "square"])
def test_a_metric_the_output_layer_cannot_give_keeps_both_fused_forms_off(model):
    # one check of the metrics for the hand kernels and generated plans: the hand kernels' match took log_loss on a
    # regression output, and the run then failed in the kernel ("needs probabilities") instead of running the graph
    data = st.sym.Variable("data", stype="csr")
    pred = st.sym.sparse.dot(data, st.sym.Variable("weight", stype="row_sparse", shape=(20, 1)))
    if model == "square":
        pred = st.sym.square(pred)
    loss = st.sym.LinearRegressionOutput(data=pred, label=st.sym.Variable("label"))
    it = st.io.NDArrayIter(st.nd.sparse.csr_matrix(np.eye(8, 20, dtype=np.float32)), np.ones(8, np.float32), 2,
                           label_name="label")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Zero())
    mod.init_optimizer(optimizer="sgd")
    assert mod.choose_engine("auto", it, st.metric.create(["mse", "log_loss"])) == (
        "graph", "compiled engine: metric 'log_loss' needs probabilities (LogisticRegressionOutput or SoftmaxOutput)")
    metric = st.metric.create("log_loss")
    mod.run_epoch(it, metric)
    assert mod.engine_choice[0] == "graph" and np.isfinite(metric.get()[1])
    assert mod.choose_engine("auto", it, st.metric.create("mse"))[0] == "compiled"
