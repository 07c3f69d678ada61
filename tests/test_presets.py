"""model.preset (config/presets.py): the same graphs as the hand-written configs, extension by name,
YAML-speaking errors, the implicit label variable, and FullyConnected(no_bias=True) from YAML."""
from __future__ import annotations

import copy
import json
import pathlib

import numpy as np
import pytest
import yaml

from sparsetrain.base import ConfigError
from sparsetrain.config import config_from_dict, load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"


def _doc(name: str) -> dict:
    return yaml.safe_load((CONFIGS / name).read_text())


def _with_model(name: str, model: dict) -> dict:
    doc = _doc(name)
    doc["model"] = model
    return doc


def _load(doc: dict, source=CONFIGS / "logreg.yaml"):
    return config_from_dict(doc, source=str(source))


def _graph(cfg) -> list:
    """The symbol without node names or initializers: ops, params, input positions, variable stypes/shapes."""
    nodes = json.loads(cfg.build_symbol().tojson())["nodes"]
    out = []
    for n in nodes:
        attrs = {k: v for k, v in (n.get("attrs") or {}).items() if k != "init"}
        out.append((n["op"], json.dumps(n.get("params"), sort_keys=True), json.dumps(attrs, sort_keys=True),
                    [tuple(i[:2]) for i in n["inputs"]]))
    return out


@pytest.mark.parametrize("config, model", [
    ("linreg.yaml", {"preset": "linear"}),
    ("logreg.yaml", {"preset": "logistic"}),
    ("softmax.yaml", {"preset": "softmax", "classes": 5}),
    ("wide.yaml", {"preset": "wide_deep", "hidden": [8]}),
    ("fm.yaml", {"preset": "fm", "k": 8}),
    ("criteo_like.yaml", {"preset": "logistic"}),  # hashed: the weight's rows are 2**hash_bits + numeric columns
])
def test_presets_expand_to_the_hand_written_graphs(config, model):
    hand = _load(_doc(config), CONFIGS / config)
    preset = _load(_with_model(config, model), CONFIGS / config)
    assert _graph(preset) == _graph(hand)


def test_fm_preset_computes_rendles_formula():
    """b + X·w + ½ Σ_f ((X·V')_f² − (X²·V'²)_f) with V' = √2·V (the ½ folded into the factors)."""
    import scipy.sparse as sp

    import sparsetrain as st
    from sparsetrain.io import DataBatch
    from sparsetrain.module import Module

    cfg = _load(_with_model("logreg.yaml", {"preset": "fm", "k": 3}))
    rng = np.random.default_rng(0)
    X = sp.random(6, 200, density=0.05, random_state=1, format="csr", dtype=np.float64)
    w, V, b = rng.normal(size=(200, 1)), rng.normal(size=(200, 3)), rng.normal(size=(1,))
    mod = Module(cfg.build_symbol(), data_names=["data"], label_names=["label"])
    mod.bind([("data", (6, 200))], [("label", (6,))], for_training=False)
    mod.init_params()
    mod.set_params({"linear_weight": st.nd.array(w).tostype("row_sparse"),
                    "factors": st.nd.array(V).tostype("row_sparse"), "bias": st.nd.array(b)}, {})
    mod.forward(DataBatch([st.nd.sparse.csr_matrix(X)], [st.nd.zeros((6,))]), is_train=False)
    got = mod.get_outputs()[0].asnumpy().ravel()
    Vr = np.sqrt(2) * V
    Xd = X.toarray()
    logit = Xd @ w[:, 0] + b[0] + 0.5 * (((Xd @ Vr) ** 2) - (Xd ** 2) @ (Vr ** 2)).sum(axis=1)
    np.testing.assert_allclose(got, 1 / (1 + np.exp(-logit)), rtol=1e-5)


def test_wide_deep_hidden_layers_stack_dense_relu_layers():
    cfg = _load(_with_model("wide.yaml", {"preset": "wide_deep", "hidden": [16, 4]}), CONFIGS / "wide.yaml")
    v = cfg.model.variables
    assert v["embed_weight"].shape == [200, 16] and v["layer1_weight"].shape == [16, 4]
    assert v["proj_weight"].shape == [4, 1]
    assert [o.op for o in cfg.model.ops] == ["sparse.dot", "sparse.dot", "relu", "dot", "relu", "dot",
                                             "elemwise_add", "broadcast_add"]


def test_a_preset_is_extended_by_name_and_the_run_config_holds_the_expansion(tmp_path):
    model = {"preset": "fm", "k": 4, "init": "zero",
             "variables": {"factors": {"init": {"normal": {"sigma": 0.1}}}},
             "loss": {"op": "LinearRegressionOutput"}}
    doc = _with_model("logreg.yaml", model)
    doc["train"].update(metrics=None, target={})
    cfg = _load(doc)
    f = cfg.model.variables["factors"]
    assert (f.stype, f.shape, f.init) == ("row_sparse", [200, 4], {"normal": {"sigma": 0.1}})
    assert cfg.model.loss.op == "LinearRegressionOutput" and cfg.model.loss.data == "pred"
    assert cfg.model.init == "zero" and cfg.metrics == ["mse"]
    saved = yaml.safe_load(cfg.to_yaml(str(tmp_path)))
    assert not {"preset", "k", "classes", "hidden"} & set(saved["model"])
    again = config_from_dict(saved, source=str(tmp_path / "config.yaml"))
    assert _graph(again) == _graph(cfg)
    # an op of a new name is added, one of a preset's name replaces it
    extra = {"preset": "logistic", "ops": [{"name": "act", "op": "tanh", "inputs": ["pred"]}],
             "loss": {"data": "act"}}
    cfg = _load(_with_model("logreg.yaml", extra))
    assert [o.name for o in cfg.model.ops] == ["dot", "pred", "act"] and cfg.model.loss.data == "act"


def test_five_lines_of_yaml_train_a_logistic_regression(tmp_path):
    from sparsetrain.trainer import fit

    path = tmp_path / "five.yaml"
    path.write_text(f"data: {{train: {ROOT}/data/binary.libsvm, num_features: 200}}\n"
                    "model: {preset: logistic}\n"
                    "optimizer: {name: adagrad, learning_rate: 0.5}\n"
                    "train: {epochs: 3, metrics: [log_loss, accuracy]}\n")
    result = fit(load_config(str(path)), output_dir=str(tmp_path / "run"))
    assert result.final["accuracy"] > 0.85


def test_a_preset_on_hashed_data_exports_only_the_rows_its_data_trained(tmp_path):
    """The linear presets start at zero (as the shipped configs do), so a hashed model's export lists the
    features the data has, not 2**18 rows of initial noise; model.init given still wins."""
    from sparsetrain.io.hashing import feature_id
    from sparsetrain.trainer import fit
    from sparsetrain.trainer.export import read_export
    from test_cli import cli

    (tmp_path / "t.vw").write_text("".join(f"{1 if i % 3 else -1} |u a{i % 5} |v b{i % 2}\n" for i in range(60)))
    path = tmp_path / "p.yaml"
    path.write_text("data: {train: t.vw, batch_size: 4}\nmodel: {preset: logistic}\n"
                    "optimizer: {name: adagrad, learning_rate: 0.1}\ntrain: {epochs: 1}\n")
    fit(load_config(str(path)), output_dir=str(tmp_path / "run"))
    assert cli("export", tmp_path / "run", "--out", tmp_path / "w.json").exit_code == 0
    weight = read_export(str(tmp_path / "w.json"))["weight"]
    trained = {feature_id(f"u^a{j}", 18) for j in range(5)} | {feature_id(f"v^b{j}", 18) for j in range(2)}
    assert set(np.flatnonzero(weight[:, 0])) == trained
    given = load_config(str(path), ['model.init={normal: {sigma: 0.1}}'])
    assert given.model.init == {"normal": {"sigma": 0.1}}
    assert load_config(str(path), ["model.preset=wide_deep"]).model.init != "zero"  # its layers need random starts


def test_the_label_variable_need_not_be_declared():
    doc = _doc("logreg.yaml")
    del doc["model"]["variables"]["label"]
    assert _graph(_load(doc)) == _graph(_load(_doc("logreg.yaml")))


@pytest.mark.parametrize("model, data, message", [
    ({"preset": "softmax"}, {}, "model.classes: the softmax preset needs the number of classes"),
    ({"preset": "logistic", "k": 4}, {}, "model.k: only read by the fm preset, not logistic"),
    ({"hidden": [4], "variables": {}, "ops": [], "loss": {"op": "SoftmaxOutput", "data": "x"}}, {},
     "model.hidden: only read by the wide_deep preset; set model.preset"),
    ({"preset": "logstic"}, {}, "model.preset: Input should be 'linear', 'logistic'"),
    ({"preset": "fm", "k": 0}, {}, "model.k: Input should be greater than 0"),
    ({"preset": "logistic"}, {"num_features": None, "train": "-", "eval": None},
     "data.num_features: required by model.preset"),
    ({"preset": "logistic", "variables": {"weight": {"shape": [10, 1]}}}, {},
     "model.ops[0] (dot, dot): "),
])
def test_preset_errors_name_the_yaml_key(model, data, message):
    doc = _with_model("logreg.yaml", model)
    doc["data"].update(data)
    with pytest.raises(ConfigError) as e:
        _load(doc)
    assert str(e.value).startswith(message), str(e.value)


@pytest.mark.parametrize("data, rows", [
    ({"format": "csv", "train": "x.csv"}, 2 ** 18 + 1),                   # hash_bits at its default
    ({"train": "x.tsv"}, 2 ** 18 + 1),                                     # csv by the file name
    ({"format": "csv", "train": "x.csv", "hash_bits": 4}, 2 ** 4 + 1),
    ({"train": ["x.vw"], "numeric": None}, 2 ** 18),
])
def test_a_preset_on_hashed_data_sizes_weights_from_the_default_hash_bits(data, rows):
    """CSV/TSV and VW data hash into ``2**hash_bits`` buckets, 18 bits when not given (the reader's default):
    a preset sizes its weights by that without data.num_features or hash_bits in the config."""
    doc = _with_model("logreg.yaml", {"preset": "logistic"})
    doc["data"] = {"label": "y", "numeric": ["a"], "csv": {"header": True}, **data}
    doc.pop("train", None)  # (logreg.yaml's target reads its eval data)
    if doc["data"]["numeric"] is None:
        del doc["data"]["numeric"], doc["data"]["label"], doc["data"]["csv"]
    cfg = _load(doc)
    assert list(cfg.model.variables["weight"].shape) == [rows, 1]


def test_a_missing_weight_shape_speaks_yaml_not_python():
    doc = _doc("logreg.yaml")
    del doc["model"]["variables"]["weight"]["shape"]
    with pytest.raises(ConfigError) as e:
        _load(doc)
    text = str(e.value)
    assert text.startswith("model.variables.weight.shape: required: the graph does not determine it; it feeds dot "
                           "(dot) (e.g. shape: [200, 1]"), text
    assert "simple_bind" not in text and "(...)" not in text


def test_fully_connected_without_bias_is_accepted_from_yaml(tmp_path):
    from sparsetrain.trainer import fit

    doc = _doc("logreg.yaml")
    doc["model"]["variables"] = {"data": {"stype": "csr"}, "fc_weight": {"shape": [1, 200], "init": "zero"}}
    doc["model"]["ops"] = [{"name": "fc", "op": "FullyConnected", "inputs": ["data", "fc_weight"],
                            "params": {"num_hidden": 1, "no_bias": True}}]
    doc["model"]["loss"] = {"op": "LogisticRegressionOutput", "data": "fc"}
    doc["train"].update(epochs=1, target={})
    cfg = _load(doc)
    assert cfg.param_names == ["fc_weight"]
    fit(cfg, output_dir=str(tmp_path / "run"))
    # with its bias, FullyConnected still takes three inputs
    bad = copy.deepcopy(doc)
    bad["model"]["ops"][0]["params"]["no_bias"] = False
    with pytest.raises(ConfigError, match=r"model.ops\[0\].inputs: FullyConnected takes 3 input\(s\) "
                                          r"\(data, weight, bias\), got 2"):
        _load(bad)


def test_infer_stypes_shows_the_expanded_graph(tmp_path):
    from click.testing import CliRunner

    from sparsetrain.cli import main

    path = tmp_path / "fm.yaml"
    path.write_text(f"data: {{train: {ROOT}/data/binary.libsvm, num_features: 200}}\nmodel: {{preset: fm, k: 4}}\n")
    result = CliRunner().invoke(main, ["infer-stypes", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    nodes = json.loads(result.output)["nodes"]
    assert [n["name"] for n in nodes] == ["linear", "xv", "xv_sq", "x_sq", "v_sq", "x2v2", "pair", "pairwise",
                                          "sum", "pred", "output"]


def test_the_schema_takes_the_builders_names_and_describes_each():
    # config/presets.py's BUILDERS is the one list of preset names: model.preset's choices and description
    import pydantic

    from sparsetrain.config.presets import BUILDERS
    from sparsetrain.config.schema import ModelConfig, PresetOptions

    for name in BUILDERS:
        assert PresetOptions.model_validate({"preset": name}).preset == name
    with pytest.raises(pydantic.ValidationError) as e:
        PresetOptions.model_validate({"preset": "wide"})
    assert all(repr(name) in str(e.value) for name in BUILDERS), str(e.value)
    about = ModelConfig.model_fields["preset"].description
    assert all(f"`{name}` ({preset.about})" in about for name, preset in BUILDERS.items()), about
    assert "`zero` under every `preset` but `wide_deep`" in ModelConfig.model_fields["init"].description
