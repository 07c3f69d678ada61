"""Warm start: ``fit --init-from RUN|PARAMS [--init-states]`` continues exactly (4 epochs + 6 warm
started with states = 10 straight) and a shape or stype mismatch is one line naming the variable."""
from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest

from sparsetrain.config import load_config
from sparsetrain.trainer import fit
from test_cli import cli, one_error_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")
# Adam with a schedule: the states (moments) and the update counts (bias correction, the schedule's
# position) both matter for an exact continuation
ADAM = ["optimizer.name=adam", "optimizer.momentum=null", "optimizer.learning_rate=0.05",
        "optimizer.lr_scheduler={factor: {step: 700, factor: 0.7}}", "train.target={}", "data.batch_size=4"]


def params(run, epoch) -> dict:
    with np.load(pathlib.Path(run) / "checkpoints" / f"model-{epoch:04d}.params", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def mse(run) -> list[float]:
    return [json.loads(x)["mse"] for x in (pathlib.Path(run) / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("engine", ["compiled", "graph"])
def test_four_epochs_then_six_warm_started_with_states_equal_ten(tmp_path, engine):
    straight, first, second = tmp_path / "straight", tmp_path / "first", tmp_path / "second"
    fit(load_config(LINREG, ADAM + ["train.epochs=10", f"train.engine={engine}"]), output_dir=str(straight))
    fit(load_config(LINREG, ADAM + ["train.epochs=4", f"train.engine={engine}"]), output_dir=str(first))
    fit(load_config(LINREG, ADAM + ["train.epochs=6", f"train.engine={engine}"]), output_dir=str(second),
        init_from=str(first), init_states=True)
    a, b = params(straight, 10), params(second, 6)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert mse(first) + mse(second) == mse(straight)


def test_without_states_the_optimizer_starts_fresh_from_the_trained_parameters(tmp_path):
    first, warm = tmp_path / "first", tmp_path / "warm"
    fit(load_config(LINREG, ADAM + ["train.epochs=4"]), output_dir=str(first))
    params_file = first / "checkpoints" / "model-0004.params"
    res = cli("fit", LINREG, "--output", warm, "-q", "--epochs", "1", "--init-from", params_file,
              *[x for o in ADAM for x in ("--set", o)])
    assert res.exit_code == 0, res.stderr
    fresh = tmp_path / "fresh"
    fit(load_config(LINREG, ADAM + ["train.epochs=1"]), output_dir=str(fresh))
    assert mse(warm)[0] < mse(first)[-1] < mse(fresh)[0]  # it goes on from where the first run ended
    straight5 = tmp_path / "five"
    fit(load_config(LINREG, ADAM + ["train.epochs=5"]), output_dir=str(straight5))
    a, b = params(warm, 1), params(straight5, 5)
    assert any(not np.array_equal(a[k], b[k]) for k in a)  # fresh moments and counts: not the straight run


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("warm") / "run"
    fit(load_config(LINREG, ["train.epochs=1", "train.target={}", "data.batch_size=100"]), output_dir=str(out))
    return out


@pytest.mark.parametrize("overrides,message", [
    (["data.num_features=120", "model.variables.weight.shape=[120, 1]"],
     "parameter 'weight' has shape (100, 1), the model's is (120, 1)"),
    (["model.variables.weight.stype=default"], "parameter 'weight' is row_sparse, the model's is default"),
])
def test_a_mismatch_is_one_line_naming_the_variable(tmp_path, trained, overrides, message):
    res = cli("fit", LINREG, "--output", tmp_path / "r", "--init-from", trained, "--set", "train.target={}",
              *[x for o in overrides for x in ("--set", o)])
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert message in line and "--init-from" in line
    assert not (tmp_path / "r" / "metrics.jsonl").exists()


def test_init_flags_misused_are_usage_errors(tmp_path, trained):
    assert "--init-states needs --init-from" in one_error_line(
        cli("fit", LINREG, "--output", tmp_path / "a", "--init-states").stderr)
    res = cli("fit", LINREG, "--output", trained, "--resume", "--init-from", trained)
    assert res.exit_code == 2 and "give one of them" in one_error_line(res.stderr)
    res = cli("fit", LINREG, "--output", tmp_path / "b", "--init-from", LINREG)
    assert res.exit_code == 2 and "expected a run directory or a .params file" in one_error_line(res.stderr)


def test_states_of_another_optimizer_are_refused_before_training(tmp_path, trained):
    # SGD's momentum went on as AdaGrad's history without a word; and Adam (two arrays a parameter) given
    # one array ran its compiled kernel past the end of it: "free(): invalid next size", exit 134
    from sparsetrain import optimizer_states

    res = cli("fit", LINREG, "--output", tmp_path / "a", "--init-from", trained, "--init-states", "--set",
              "train.target={}", "--set", "optimizer={name: adagrad, learning_rate: 0.1}")
    assert res.exit_code == 2 and one_error_line(res.stderr).endswith(
        "model-0001.states: these are the optimizer states of the 'sgd_mom' update rule; this run's optimizer "
        "(AdaGrad) applies 'adagrad': give the same optimizer (and momentum), or start its states fresh (fit: "
        "without --init-states)")
    # a file that does not name its rule (older, or damaged): the arrays are counted
    source = trained / "checkpoints" / "model-0001"
    (tmp_path / "m.params").write_bytes(source.with_suffix(".params").read_bytes())
    states, progress, config = optimizer_states.loads(source.with_suffix(".states").read_bytes())
    del progress["rule"]
    (tmp_path / "m.states").write_bytes(optimizer_states.dumps(states, progress, config))
    res = cli("fit", LINREG, "--output", tmp_path / "b", "--init-from", tmp_path / "m.params", "--init-states",
              "--engine", "graph", "--set", "train.target={}", "--set", "optimizer={name: adam}")
    assert res.exit_code == 1 and one_error_line(res.stderr).endswith(
        "m.states: parameter 'weight' has 1 optimizer state arrays; this run's optimizer (Adam) keeps 2: the file "
        "is damaged or was saved by another optimizer")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_states_of_another_dtype_are_refused_before_training(tmp_path, trained):
    # float64 states for a float32 model stopped the first batch with "optimizer state of shape (100, 1) and
    # dtype float64 does not match its weight", naming no file
    res = cli("fit", LINREG, "--output", tmp_path / "a", "--init-from", trained, "--init-states", "--set",
              "train.target={}", "--set", "model.variables.weight.dtype=float64")
    assert res.exit_code == 2 and one_error_line(res.stderr).endswith(
        "model-0001.states: the optimizer states of parameter 'weight' are float32 (100, 1); the model's parameter "
        "is float64 (100, 1)")
    assert not (tmp_path / "a").exists()



def test_init_states_of_a_float16_weight_under_multi_precision_are_float32(tmp_path):
    # a float16 weight under multi_precision keeps a float32 master copy and float32 states: the optimizer's
    # state_dtype is the file's rule (the check compared them with the weight's float16 and refused the file)
    import sparsetrain as st
    from sparsetrain.base import ConfigError
    from sparsetrain.trainer.warmstart import warm_start

    def module():
        data, w = st.sym.Variable("data"), st.sym.Variable("weight", shape=(5, 1), dtype="float16")
        loss = st.sym.LinearRegressionOutput(data=st.sym.dot(data, w), label=st.sym.Variable("label"))
        rng = np.random.default_rng(0)
        it = st.io.NDArrayIter(rng.random((8, 5)).astype(np.float16), rng.random(8).astype(np.float16), 4,
                               label_name="label")
        mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(st.initializer.Uniform(0.1))
        return mod, it

    mod, it = module()
    mod.init_optimizer(optimizer=st.optimizer.Adam(multi_precision=True))
    for batch in it:
        mod.forward(batch, is_train=True)
        mod.backward()
        mod.update()
    mod.save_params(str(tmp_path / "m.params"))
    mod.save_optimizer_states(str(tmp_path / "m.states"))
    def arrays(state) -> list:
        return [a for part in state for a in arrays(part)] if isinstance(state, tuple) else [state.asnumpy()]

    saved = arrays(mod._updater.states[0])
    assert mod.get_params()[0]["weight"].dtype == np.float16 and [a.dtype for a in saved] == [np.float32] * 3

    warm, _ = module()
    adam = st.optimizer.Adam(multi_precision=True)
    assert warm_start(warm, str(tmp_path / "m.params"), adam).states_path == str(tmp_path / "m.states")
    warm.init_optimizer(optimizer=adam)
    warm.load_optimizer_states(str(tmp_path / "m.states"))
    for a, b in zip(arrays(warm._updater.states[0]), saved, strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match=r"states of parameter 'weight' are float32 \(5, 1\); the model's "
                                          r"parameter is float16 \(5, 1\)$"):
        warm_start(module()[0], str(tmp_path / "m.params"), st.optimizer.Adam())
