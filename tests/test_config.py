"""The YAML config: schema, overrides, graph validation, path resolution and the generated reference."""
from __future__ import annotations

import pathlib

import pytest
import yaml

from sparsetrain.base import ConfigError
from sparsetrain.config import (
    Config,
    apply_override,
    config_from_dict,
    load_config,
    markdown_reference,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = ROOT / "configs" / "linreg.yaml"


def _doc():
    return yaml.safe_load(LINREG.read_text())


def test_linreg_loads_with_seed_values():
    cfg = load_config(str(LINREG))
    assert isinstance(cfg, Config)
    assert cfg.num_features == 100
    assert cfg.data.batch_size == 1 and cfg.data.last_batch == "discard"
    assert cfg.optimizer.name == "sgd" and cfg.optimizer.learning_rate == 0.05 and cfg.optimizer.momentum == 0.9
    assert cfg.optimizer.optimizer_params(cfg.data.batch_size)["rescale_grad"] == 1.0
    assert cfg.train.target == {"mse": 1.0} and cfg.metrics == ["mse"]
    assert cfg.train_files() == [str(ROOT / "data" / "linreg.libsvm")]


def test_symbol_is_built_through_public_api_and_weight_gradient_is_row_sparse():
    cfg = load_config(str(LINREG))
    sym = cfg.build_symbol()
    assert sorted(sym.list_arguments()) == ["bias", "data", "label", "weight"]
    plan, rows, grads, _ = cfg.describe(batch_size=32, backward=True)
    by_arg = {g["argument"]: g for g in grads}
    assert by_arg["weight"]["stype"] == "row_sparse" and by_arg["weight"]["shape"] == [100, 1]
    assert by_arg["bias"]["stype"] == "default"
    dot = next(r for r in rows if r["name"] == "dot")
    assert dot["dispatch"] == "sparse" and [e["stype"] for e in dot["inputs"]] == ["csr", "row_sparse"]
    assert dot["inputs"][0]["shape"] == (32, 100)


BAD = [
    (["model.ops[1].inputs[0]=wieght"], "model.ops[1].inputs[0]: unknown symbol 'wieght' (did you mean 'weight'?)"),
    (["model.ops.0.inputs.1=wieght"], "model.ops[0].inputs[1]: unknown symbol 'wieght'"),
    (["model.ops[0].op=sparse.dto"], "model.ops[0].op: unknown operator 'sparse.dto' (did you mean 'sparse.dot'?)"),
    (["data.batchsize=3"], "data.batchsize: unknown key (did you mean 'batch_size'?)"),
    (["data.batch_size=abc"], "data.batch_size:"),
    (["data.batch_size=0"], "data.batch_size:"),
    (["model.variables.weight.shape=[50, 1]"], "model.ops[0] (dot, dot): "),
    (["model.variables.weight.stype=rsp"], "model.variables.weight.stype:"),
    (["model.ops[0].inputs=[data, pred]"], "model.ops[0]: cycle: dot -> pred -> dot"),
    (["model.ops[0].params.transpose_x=true"], "model.ops[0].params.transpose_x: unknown parameter of dot"),
    (["model.ops[0].params.forward_stype=bogus"], "model.ops[0] (dot, dot): unknown storage type 'bogus'"),  # (was 'model: ...')
    (["model.ops[0].inputs=[data]"], "model.ops[0].inputs: dot takes 2 input(s)"),
    (["model.variables.extra={}"], "model.variables.extra: declared but not used"),
    (["model.loss.op=dot"], "model.loss.op: 'dot' is not a loss operator"),
    (["model.loss.data=pred2"], "model.loss.data: unknown symbol 'pred2' (did you mean 'pred'?)"),
    (["model.ops[1].name=dot"], "model.ops[1].name: 'dot' is already defined at model.ops[0]"),
    (["optimizer.momentm=0.9"], "optimizer.momentm: not a parameter of sgd (did you mean 'momentum'?)"),
    (["optimizer.name=adagard"], "optimizer.name: unknown optimizer 'adagard' (did you mean 'adagrad'?)"),
    (["optimizer.lr_scheduler={facto: {step: 10}}"], "optimizer.lr_scheduler.facto: unknown scheduler"),
    (["train.target.mae=1"], "train.target.mae: not a reported metric"),
    (["train.metrics=[mse, nonsense_metric]"], "train.metrics[1]:"),
    (["train.kvstore=dist"], "train.kvstore:"),
    (["data.zero_based=maybe"], "data.zero_based: must be auto, true or false"),
    (["data.train=null"], "data: give `train`"),
    (["data.cache=stream", "data.shuffle=true"], "data.shuffle: a stream is shuffled within data.shuffle_window rows"),
    (["data.cache=stream", "data.shuffle=true", "data.shuffle_window=1"], "data.shuffle: a stream is shuffled"),
    (["data.cache=stream", "data.shuffle_window=1000"], "data.shuffle_window: 1000 shuffles only with data.shuffle"),
    (["data.shuffle_window=-1"], "data.shuffle_window:"),
    (["model.variables.weight.init={normal: {sigmaa: 1}}"], "model.variables.weight.init.normal.sigmaa: not a "
                                                           "parameter of initializer 'normal' (did you mean 'sigma'?)"),
    (["foo=1"], "foo: unknown key"),
    (["model.variables.weight.stypo=csr"], "model.variables.weight.stypo: unknown key (did you mean 'stype'?); "
                                           "allowed: stype, shape, init, dtype"),
]


@pytest.mark.parametrize("overrides,expected", BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_bad_configs_name_the_key_path(overrides, expected):
    with pytest.raises(ConfigError) as info:
        load_config(str(LINREG), overrides)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data:\n  train: x\n  batch_size: [1\nmodel: {}\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: invalid YAML"):
        load_config(str(bad))


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(str(tmp_path / "nope.yaml"))


def test_overrides_parse_yaml_values_and_list_indices():
    doc = {"a": {"b": [{"c": 1}, {"c": 2}]}, "x": 1}
    apply_override(doc, "a.b[1].c=3.5")
    apply_override(doc, "a.b.0.c=[1, 2]")
    apply_override(doc, "x=true")
    apply_override(doc, "new.key=hello")
    apply_override(doc, "a.b[2]={c: 9}")
    assert doc == {"a": {"b": [{"c": [1, 2]}, {"c": 3.5}, {"c": 9}]}, "x": True, "new": {"key": "hello"}}
    for bad in ("nokey", "a.b[7].c=1", "a.b[x]=1", "x.y=1"):
        with pytest.raises(ConfigError, match="--set"):
            apply_override(doc, bad)


def test_relative_paths_resolve_against_the_config_directory(tmp_path, monkeypatch):
    sub = tmp_path / "cfg"
    (sub / "d").mkdir(parents=True)
    (sub / "d" / "a.libsvm").write_text("1 0:1\n")
    (sub / "d" / "b.libsvm").write_text("2 1:1\n")
    doc = _doc()
    doc["data"]["train"] = "d/*.libsvm"
    doc["data"]["eval"] = "d/a.libsvm"
    doc["output"] = "out"
    path = sub / "x.yaml"
    path.write_text(yaml.safe_dump(doc))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(str(path))
    assert cfg.train_files() == [str(sub / "d" / "a.libsvm"), str(sub / "d" / "b.libsvm")]
    assert cfg.eval_files() == [str(sub / "d" / "a.libsvm")]
    assert cfg.output_dir() == str(sub / "out")
    doc["data"]["train"] = "d/missing.libsvm"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=r"data.train\[0\]: file not found"):
        load_config(str(path), check_files=True)


def test_a_file_named_like_a_glob_is_that_file(tmp_path):
    # 'train[2024].libsvm' said "data.train[0]: no file matches", and so did the run's config.yaml for --resume,
    # evaluate and predict (it lists the files found)
    (tmp_path / "d[1]").mkdir()
    (tmp_path / "d[1]" / "a.libsvm").write_text("1 0:1\n")
    (tmp_path / "d1").mkdir()
    (tmp_path / "d1" / "b.libsvm").write_text("1 0:1\n")
    doc = _doc()
    doc["data"]["train"] = "d[1]/a.libsvm"
    path = tmp_path / "x.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load_config(str(path)).train_files() == [str(tmp_path / "d[1]" / "a.libsvm")]
    doc["data"]["train"] = "d[1]/*.libsvm"  # no such file: a glob ([1] matching 'd1')
    path.write_text(yaml.safe_dump(doc))
    assert load_config(str(path)).train_files() == [str(tmp_path / "d1" / "b.libsvm")]


def test_num_features_is_inferred_from_declared_shapes():
    doc = _doc()
    del doc["data"]["num_features"]
    cfg = config_from_dict(doc, source=str(LINREG))
    assert cfg.num_features == 100
    del doc["model"]["variables"]["weight"]["shape"]
    doc["data"].update(train="-", eval=None, zero_based=True)  # a stream cannot be counted first
    doc["train"]["epochs"] = 1
    with pytest.raises(ConfigError, match="data.num_features: required"):
        config_from_dict(doc, source=str(LINREG))


def test_resolved_yaml_round_trips_from_anywhere(tmp_path):
    cfg = load_config(str(LINREG), ["optimizer.wd=0.001"])
    again = config_from_dict(yaml.safe_load(cfg.to_yaml()), source=str(tmp_path / "config.yaml"))
    assert again.model == cfg.model and again.optimizer == cfg.optimizer
    assert again.train_files() == cfg.train_files()  # saved absolute
    assert again.metrics == ["mse"] and again.num_features == 100 and again.optimizer.wd == 0.001


def test_every_shipped_config_validates():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        cfg = load_config(str(path))
        cfg.plan()


def test_markdown_reference_covers_schema_and_docs_are_current():
    text = markdown_reference()
    for key in ("batch_size", "last_batch", "zero_based", "cache", "stype", "learning_rate", "rescale_grad",
                "epochs", "target", "kvstore", "engine", "nnz_per_row"):
        assert f"`{key}`" in text
    from tools.update_readme import config_section

    in_readme = config_section((ROOT / "README.md").read_text())
    assert in_readme == text.rstrip("\n"), "the README's config reference is stale: run python -m tools.update_readme"


def test_override_paths_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "mine.libsvm").write_text("1 0:1\n")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(str(LINREG), ["data.train=mine.libsvm", "output=out"])
    assert cfg.train_files() == [str(tmp_path / "mine.libsvm")]
    assert cfg.output_dir() == str(tmp_path / "out")


ADAM_FACTOR = "optimizer={name: adam, lr_scheduler: {factor: {step: 10, factor: 0.5}}}"


@pytest.mark.parametrize("extra,rate", [([], 0.001), (["optimizer.learning_rate=0.005"], 0.005),
                                        (["optimizer.lr_scheduler.factor.base_lr=0.02"], 0.02)])
def test_scheduler_starts_from_the_optimizers_own_rate_without_warning(extra, rate):
    import warnings

    from sparsetrain.config import make_optimizer

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt = make_optimizer(load_config(str(LINREG), [ADAM_FACTOR, *extra]))
    assert opt.lr == rate and opt.lr_scheduler.base_lr == rate


def test_fit_with_adam_and_a_scheduler_does_not_warn_about_an_overwritten_rate(tmp_path):
    from click.testing import CliRunner

    from sparsetrain.cli import main

    res = CliRunner().invoke(main, ["fit", str(LINREG), "--set", ADAM_FACTOR, "--set", "train.target={}",
                                    "--epochs", "1", "-q", "--output", str(tmp_path / "run")])
    assert res.exit_code == 0, res.stderr
    assert "overwritten" not in res.stderr


def test_rescale_grad_defaults_to_one_over_the_examples_per_update():
    from sparsetrain.config import make_optimizer

    cfg = load_config(str(LINREG), ["data.batch_size=8"])
    assert make_optimizer(cfg).rescale_grad == 1 / 8
    assert make_optimizer(cfg, sync_workers=4).rescale_grad == 1 / 32
    cfg = load_config(str(LINREG), ["data.batch_size=8", "optimizer.rescale_grad=0.5"])
    assert make_optimizer(cfg, sync_workers=4).rescale_grad == 0.5


def _field_aware_fm(fields: int, k: int, ids: int) -> dict:
    """A field-aware FM (LIBFFM's, one categorical feature per field) as op-by-op YAML: the row of field f
    holds its feature's id; V is (ids, fields * k), and feature x's vector for field j is V[x, j*k:(j+1)*k]."""
    ops = [{"name": "E", "op": "Embedding", "inputs": ["data", "V"], "params": {"input_dim": ids,
                                                                                  "output_dim": fields * k}}]
    ops += [{"name": f"e{f}", "op": "slice_axis", "inputs": ["E"], "params": {"axis": 1, "begin": f, "end": f + 1}}
            for f in range(fields)]
    total = None
    for i in range(fields):
        for j in range(i + 1, fields):
            ops += [{"name": f"v{i}{j}", "op": "slice_axis", "inputs": [f"e{i}"],
                     "params": {"axis": 2, "begin": j * k, "end": (j + 1) * k}},
                    {"name": f"v{j}{i}", "op": "slice_axis", "inputs": [f"e{j}"],
                     "params": {"axis": 2, "begin": i * k, "end": (i + 1) * k}},
                    {"name": f"m{i}{j}", "op": "elemwise_mul", "inputs": [f"v{i}{j}", f"v{j}{i}"]}]
            if total is not None:
                ops.append({"name": f"t{i}{j}", "op": "elemwise_add", "inputs": [total, f"m{i}{j}"]})
            total = ops[-1]["name"]
    ops += [{"name": "pairs", "op": "sum", "inputs": [total], "params": {"axis": 2}},
            {"name": "pred", "op": "broadcast_add", "inputs": ["pairs", "bias"]}]
    return {"data": {"train": str(ROOT / "data" / "binary.libsvm"), "num_features": fields, "batch_size": 4},
            "model": {"variables": {"data": {}, "V": {"shape": [ids, fields * k], "init": "zero"}, "bias": {"shape": [1]}},
                      "ops": ops, "loss": {"op": "LogisticRegressionOutput", "data": "pred"}}}


def test_a_field_aware_fm_is_expressible_and_computes_its_formula():
    """README "Which models compile": a field-aware FM is written op by op (Embedding of the field ids,
    slice_axis, elemwise_mul, sum) and runs on the graph engine (slice_axis has no fused form)."""
    import numpy as np

    fields, k, ids, n = 3, 2, 10, 4
    cfg = config_from_dict(_field_aware_fm(fields, k, ids), source=str(ROOT / "configs" / "ffm.yaml"))
    rng = np.random.default_rng(0)
    x = rng.integers(0, ids, size=(n, fields)).astype(np.float32)
    v, b = rng.normal(size=(ids, fields * k)).astype(np.float32), np.float32(0.3)
    exe = cfg.build_symbol().simple_bind(data=(n, fields), label=(n,))
    exe.arg_dict["data"][:] = x
    exe.arg_dict["V"][:] = v
    exe.arg_dict["bias"][:] = np.array([b])
    exe.forward(is_train=False)
    xi = x.astype(int)
    logit = b + sum((v[xi[:, i], j * k:(j + 1) * k] * v[xi[:, j], i * k:(i + 1) * k]).sum(axis=1)
                    for i in range(fields) for j in range(i + 1, fields))
    np.testing.assert_allclose(exe.outputs[0].asnumpy().ravel(), 1 / (1 + np.exp(-logit)), rtol=1e-5)
    from sparsetrain import ops

    assert ops.get("slice_axis").fused is None  # (when it gets one, the README's sentence changes)


def test_the_config_module_command_answers_help(capsys):
    from sparsetrain.config.__main__ import main

    assert main(["--help"]) == 0 and capsys.readouterr().out.startswith("usage: python -m sparsetrain.config")
    assert main([]) == 2
