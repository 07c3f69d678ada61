"""Every bad config is a ConfigError: one line naming the key path (and file:line for YAML problems).

Covers the config items of issue 21 (billion laughs, duplicate keys, values that used to reach the
engine, absurd sizes, a parameter stype that ``fit`` rejects) and a mutation fuzz of the shipped configs.
"""
from __future__ import annotations

import copy
import pathlib
import re

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsetrain.base import ConfigError
from sparsetrain.cli import main
from sparsetrain.config import config_from_dict, load_config
from sparsetrain.config.yaml_doc import MAX_NODES

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = ROOT / "configs" / "linreg.yaml"
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
# a config error: ``key.path: ...``, ``key.path (node, op): ...``, ``file:line: ...`` or ``--set key.path: ...``
KEY_PATH = re.compile(r"^(?:--set )?(?:[^\s:\[\]]|\[(?:\d+|'[^']*'|\"[^\"]*\"|\S*)\])+(:\d+)?( \([^)]*\))?: \S")


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _one_line(message: str) -> str:
    assert "\n" not in message and KEY_PATH.match(message), message
    return message


def _write(tmp_path, text: str) -> pathlib.Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def _laughs(levels: int = 9) -> str:
    """Nested anchors: each level lists the previous one nine times (9**levels strings)."""
    lines = ["{a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        lines.append(f", a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    return "".join(lines) + "}"


@pytest.mark.parametrize("where,line", [
    ("  init: {normal: {sigma: 0.01}}", "  init: {uniform: {scale: LAUGHS}}"),
    ("optimizer: {", "optimizer: {laughs: LAUGHS, "),
    ("  loss: {", "  loss: {params: {grad_scale: LAUGHS}, "),
])
def test_billion_laughs_is_refused_quickly_naming_the_key(tmp_path, where, line):
    text = LINREG.read_text()
    assert where in text
    path = _write(tmp_path, text.replace(where, line.replace("LAUGHS", _laughs()), 1))
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    message = _one_line(str(info.value))
    assert f"at most {MAX_NODES:,}" in message and "anchors and aliases" in message
    assert message.startswith(f"{path}:")
    res = _cli("infer-stypes", path)
    assert res.exit_code == 2 and "anchors and aliases" in res.stderr


def test_billion_laughs_in_a_set_override_is_refused():
    with pytest.raises(ConfigError, match=r"^--set model.init.a6: expands to 5,380,840 YAML nodes through anchors"):
        load_config(str(LINREG), [f"model.init={_laughs()}"])


def test_anchors_aliases_and_merge_keys_that_stay_small_still_work(tmp_path):
    text = LINREG.read_text().replace("data:\n", "data:\n  <<: &extra {memory_budget_mb: 512}\n", 1)
    assert "memory_budget_mb" not in LINREG.read_text()
    assert load_config(str(_write(tmp_path, text))).data.memory_budget_mb == 512
    text = LINREG.read_text().replace("{normal: {sigma: 0.01}}}", "&init {normal: {sigma: 0.01}}}", 1)
    text = text.replace("  init: {normal: {sigma: 0.01}}\n", "  init: *init\n")
    assert "*init" in text
    assert load_config(str(_write(tmp_path, text))).model.init == {"normal": {"sigma": 0.01}}


def test_duplicate_keys_name_both_lines(tmp_path):
    text = LINREG.read_text()
    lines = text.splitlines()
    k = next(i for i, ln in enumerate(lines) if ln.strip().startswith("batch_size:"))
    lines.insert(k + 1, "  batch_size: 64")
    path = _write(tmp_path, "\n".join(lines) + "\n")
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert _one_line(str(info.value)) == (f"{path}:{k + 2}: data.batch_size: duplicate key (first given at line "
                                          f"{k + 1}; YAML would silently keep only the last)")
    res = _cli("fit", path, "--output", tmp_path / "run")
    assert res.exit_code == 2 and "duplicate key" in res.stderr


def test_duplicate_keys_in_a_flow_mapping(tmp_path):
    path = _write(tmp_path, LINREG.read_text() + "\noutput: {a: 1, a: 2}\n")
    with pytest.raises(ConfigError, match=r"output.a: duplicate key"):
        load_config(str(path))


def test_recursive_alias_and_deep_nesting(tmp_path):
    with pytest.raises(ConfigError, match="recursive"):
        load_config(str(_write(tmp_path, LINREG.read_text() + "\noutput: &r [1, *r]\n")))
    with pytest.raises(ConfigError, match="levels deep"):
        load_config(str(_write(tmp_path, LINREG.read_text() + "\noutput: " + "[" * 3000 + "]" * 3000 + "\n")))


@pytest.mark.parametrize("override,expected", [
    ("train.seed=-1", "train.seed: Input should be greater than or equal to 0 (got -1)"),
    ("model.loss.params={grad_scale: x}", "model.loss.params.grad_scale: LinearRegressionOutput's grad_scale "
                                          "must be a number (got 'x')"),
    ("model.ops[0].params.transpose_a=[1]", "model.ops[0].params.transpose_a: dot's transpose_a must be true or "
                                            "false"),
    ("model.variables.weight.init={constant: {value: [1, 2]}}",
     "model.variables.weight.init: Constant initializer: value of shape (2,) does not broadcast to parameter "
     "'weight' of shape (100, 1)"),
    ("model.variables.weight.init={constant: {value: abc}}", "model.variables.weight.init: Constant initializer: "
                                                             "value 'abc' is not a number"),
    ("model.variables.weight.init={xavier: {}}", None),
    ("data.train=[]", "data.train: give at least one file"),
    ("model.variables.weight.stype=csr", "model.variables.weight.stype: a parameter cannot be 'csr'"),
])
def test_values_that_used_to_reach_the_engine_are_config_errors(tmp_path, override, expected):
    if expected is None:  # a valid 2-D weight: xavier applies
        load_config(str(LINREG), [override])
        return
    with pytest.raises(ConfigError) as info:
        load_config(str(LINREG), [override])
    assert _one_line(str(info.value)).startswith(expected)
    for command in (["infer-stypes", LINREG], ["fit", LINREG, "--output", tmp_path / "run", "-q"]):
        res = _cli(*command, "--set", override)
        assert res.exit_code == 2, (command, res.stderr)
        assert f"error: {expected}" in res.stderr


@pytest.mark.parametrize("name,what", [
    ("weight", "a parameter (it has an init or a name ending in 'weight' or 'bias')"),
    ("bias", "a parameter (it has an init or a name ending in 'weight' or 'bias')"),
    ("label", "the label (model.loss.label)"),
])
def test_data_input_naming_a_parameter_or_the_label_says_so_and_what_is_allowed(name, what):
    # it said "model.variables.data: give it an init, or a name ending in 'weight' ..." (of the variable
    # data.input no longer named)
    with pytest.raises(ConfigError) as info:
        load_config(str(LINREG), [f"data.input={name}"])
    hint = "; a CSV column of importance weights is data.weight_column" if name == "weight" else ""
    assert _one_line(str(info.value)) == (f"data.input: {name!r} is {what}; data.input names the model variable fed "
                                          f"with the feature rows: 'data'{hint}")


def test_model_init_is_checked_against_the_weights_it_fills():
    overrides = ["model.variables.weight.init=null", "model.init={constant: {value: [1, 2, 3]}}"]
    with pytest.raises(ConfigError, match=r"^model.init: Constant initializer: .*'weight' of shape \(100, 1\)"):
        load_config(str(LINREG), overrides)
    load_config(str(LINREG), ["model.variables.weight.init=null", "model.init={constant: {value: [2]}}"])


def test_an_absurd_weight_names_the_variable_instead_of_running_out_of_memory(tmp_path):
    overrides = ["data.num_features=1000000000000", "model.variables.weight.shape=[1000000000000, 1]"]
    with pytest.raises(ConfigError) as info:
        load_config(str(LINREG), overrides)
    message = _one_line(str(info.value))
    assert message.startswith("model.variables.weight: shape [1000000000000, 1] (float32): 3.6 TiB is more than "
                              "this machine's memory")
    res = _cli("fit", LINREG, "--output", tmp_path / "run", *[a for o in overrides for a in ("--set", o)])
    assert res.exit_code == 2 and "model.variables.weight: shape" in res.stderr


def test_a_long_chain_listed_in_reverse_order_loads():
    doc = yaml.safe_load(LINREG.read_text())
    ops = [{"name": "dot", "op": "dot", "inputs": ["data", "weight"]},
           {"name": "a0", "op": "broadcast_add", "inputs": ["dot", "bias"]}]
    ops += [{"name": f"a{k}", "op": "negative", "inputs": [f"a{k - 1}"]} for k in range(1, 1500)]
    doc["model"]["ops"] = ops[::-1]
    doc["model"]["loss"]["data"] = "a1499"
    cfg = config_from_dict(doc, source=str(LINREG))
    assert len(cfg.plan().forward) > 1500
    ops[0]["inputs"] = ["data", "a1499"]  # and a cycle that long is still found and named
    doc["model"]["ops"] = ops[::-1]
    with pytest.raises(ConfigError) as info:
        config_from_dict(doc, source=str(LINREG))
    assert _one_line(str(info.value)) == ("model.ops[0]: cycle: a1499 -> a1498 -> a1497 -> a1496 -> ... (1494 more) "
                                          "-> a1 -> a0 -> dot -> a1499")


# -- mutation fuzz of the shipped configs ------------------------------------------------------------

_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([-1, 0, 10**12, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=6),
    st.sampled_from(["csr", "row_sparse", "default", "sgd", "adam", "mse", "dot", "weight", "data", "uniform"]),
    st.lists(st.integers(-2, 5), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(0, 3), max_size=2),
)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


def _mutate(doc, data):
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths), label="path")
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    kind = data.draw(st.sampled_from(["value", "delete", "rename", "wrap", "copy"]), label="mutation")
    if kind == "value":
        parent[last] = data.draw(_VALUES, label="value")
    elif kind == "delete":
        del parent[last]
    elif kind == "rename" and isinstance(parent, dict):
        parent[data.draw(st.text(min_size=1, max_size=8), label="key") + ""] = parent.pop(last)
    elif kind == "wrap":
        parent[last] = data.draw(st.sampled_from([[parent[last]], {"x": parent[last]}]), label="wrapped")
    elif kind == "copy":  # another node's value here (a type that is valid somewhere else)
        other = data.draw(st.sampled_from(paths), label="from")
        node = doc
        for part in other:
            node = node[part]
        parent[last] = copy.deepcopy(node)


def _check_mutations(data):
    source = data.draw(st.sampled_from(CONFIGS), label="config")
    doc = yaml.safe_load(source.read_text())
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        _mutate(doc, data)
    try:
        cfg = config_from_dict(doc, source=str(source))
        cfg.to_yaml()  # a config that loads is usable (its files may be missing: a ConfigError too)
        cfg.describe(backward=True)
    except ConfigError as e:
        _one_line(str(e))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_shipped_configs_give_config_errors_or_load(data):
    _check_mutations(data)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_shipped_configs_deep(data):
    _check_mutations(data)


_SET_VALUES = st.one_of(
    st.sampled_from(["-1", "0", "1e12", "1000000000000", "null", "[]", "[1, 2]", "{}", "{a: 1}", "x", "true",
                     "csr", "&a [*a]", "{a: 1, a: 2}", "'", "[[[[]]]]", "nan", "-.inf", "2.5"]),
    st.text(max_size=8),
)


def _check_cli_override(data):
    doc = yaml.safe_load(LINREG.read_text())
    paths = [p for p in _paths(doc) if p]
    path = data.draw(st.sampled_from(paths), label="key")
    key = ".".join(str(p) for p in path)
    value = data.draw(_SET_VALUES, label="value")
    res = _cli("infer-stypes", LINREG, "--format", "json", "--set", f"{key}={value}")
    if res.exit_code != 0:
        assert res.exit_code == 2, res.stderr
        line = next(ln for ln in res.stderr.splitlines() if ln.startswith("error: "))
        assert "internal error" not in line and "Traceback" not in res.stderr
        _one_line(line[len("error: "):])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_cli_set_overrides_give_usage_errors_or_work(data):
    _check_cli_override(data)


@pytest.mark.slow
@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_cli_set_overrides_deep(data):
    _check_cli_override(data)


@pytest.mark.parametrize("override, message", [
    # pydantic took true/false as 1/0: `epochs: yes` trained one epoch, `learning_rate: true` at 1.0
    ("train.epochs=yes", "train.epochs: must be a number, not true/false (got true)"),
    ("optimizer.learning_rate=true", "optimizer.learning_rate: must be a number, not true/false (got true)"),
    ("optimizer.momentum=false", "optimizer.momentum: must be a number, not true/false (got false)"),
    ("data.num_features=true", "data.num_features: must be a number, not true/false (got true)"),
    ("model.variables.weight.shape=[true, 1]", "model.variables.weight.shape: must be numbers, not true/false "
     "(got true at [0])"),
    ("train.target={mse: true}", "train.target: must be numbers, not true/false (got true at mse)"),
    ("model.init={normal: {sigma: true}}", "model.init.normal.sigma: must be a number, not true/false (got true)"),
    ("optimizer.lr_scheduler={factor: {step: true}}", "optimizer.lr_scheduler.factor.step: must be a number, not "
     "true/false (got true)"),
    ("train.threads=true", "train.threads: must be auto or a whole number of threads >= 1 (got true)"),  # its own
])
def test_true_or_false_for_a_number_is_named(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(str(LINREG), [override])
    assert _one_line(str(e.value)) == message
    assert load_config(str(LINREG), ["data.shuffle=true", "train.epochs=3"]).train.epochs == 3


@pytest.mark.parametrize("override, message", [
    # the constructors' own words: "model.init: bad arguments {'sigma': 0.01, 'sigm': 0.1} for initializer 'normal':
    # Normal.__init__() got an unexpected keyword argument 'sigm'", "optimizer.lr_scheduler.factor:
    # FactorScheduler.__init__() got an unexpected keyword argument 'stp'": no key path to the key, no suggestion
    ("model.variables.weight.init={normal: {sigm: 0.1}}", "model.variables.weight.init.normal.sigm: not a parameter "
     "of initializer 'normal' (did you mean 'sigma'?); allowed: sigma"),
    ("model.init={Xavier: {magnitud: 2}}", "model.init.Xavier.magnitud: not a parameter of initializer 'Xavier' (did "
     "you mean 'magnitude'?); allowed: factor_type, magnitude, rnd_type"),
    ("optimizer.lr_scheduler={factor: {stp: 10}}", "optimizer.lr_scheduler.factor.stp: not a parameter of the factor "
     "scheduler (did you mean 'step'?); allowed: base_lr, factor, step, stop_factor_lr, warmup_begin_lr, "
     "warmup_mode, warmup_steps"),
    ("optimizer.beta1=0.9", "optimizer.beta1: not a parameter of sgd"),  # (the same check, without the list)
])
def test_an_unknown_initializer_or_scheduler_parameter_is_named_with_a_suggestion(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(str(LINREG), [override])
    assert _one_line(str(e.value)) == message


def test_a_name_that_differs_in_case_is_suggested(tmp_path):
    # difflib finds nothing close to a one-letter name: `label: Y` for a column `y` got no hint
    from sparsetrain.base import did_you_mean

    assert did_you_mean("Y", ["a", "y", "b"]) == " (did you mean 'y'?)"
    assert did_you_mean("Batch_Size", ["batch_size", "shuffle"]) == " (did you mean 'batch_size'?)"
    assert did_you_mean("q", ["a", "b"]) == ""
    (tmp_path / "d.csv").write_text("y,a\n1,x\n0,z\n")
    (tmp_path / "m.yaml").write_text("data: {train: d.csv, label: Y, categorical: [a]}\nmodel: {preset: logistic}\n")
    res = _cli("fit", tmp_path / "m.yaml", "--output", tmp_path / "r")
    assert res.exit_code == 2
    assert res.stderr == f"error: data.label: no column 'Y' in the header of {tmp_path / 'd.csv'} (did you mean 'y'?)\n"


@pytest.mark.parametrize("override, message", [
    ("data.train=[a, b", "--set data.train: '[a, b' is not a YAML list or mapping (expected ',' or ']', but got "
                         "'<stream end>')"),
    ("optimizer={name: sgd", "--set optimizer: '{name: sgd' is not a YAML list or mapping (expected ',' or '}', "
                             "but got '<stream end>')"),
])
def test_a_set_list_or_mapping_that_is_no_yaml_is_named(override, message):
    # it became the text '[a, b' (data.train: "no file matches '.../[a, b'")
    with pytest.raises(ConfigError) as info:
        load_config(str(LINREG), [override])
    assert str(info.value) == message


@pytest.mark.parametrize("text, line", [
    ("data:\n  train: -\n  num_features: 100\nmodel: {preset: linear}\n", 2),
    ("data:\n  num_features: 100\n  train: -   # stdin\nmodel: {preset: linear}\n", 3),
])
def test_a_bare_dash_for_stdin_says_to_quote_it(tmp_path, text, line):
    # `train: -` (as `--set data.train=-` reads) is a YAML list in a file: 'sequence entries are not allowed here'
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == (f"{path}:{line}: invalid YAML: sequence entries are not allowed here (a bare - "
                               "starts a list; stdin is written in quotes: train: \"-\")")


# -- null ------------------------------------------------------------------------------------------------------

LOGREG = ROOT / "configs" / "logreg.yaml"


@pytest.mark.parametrize("key", ["train.target", "data.csv", "data.numeric", "data.crosses", "optimizer", "train",
                                 "model.ops[0].params", "model.loss.params", "model.variables.label"])
def test_null_for_a_section_list_or_mapping_is_its_default(key):
    # lr_scheduler: null and early_stopping: null were the default, but train.target: null said 'train.target: Input
    # should be a valid dictionary (got None)', data.csv: null and optimizer: null likewise; `target:` with its
    # entries commented out is null in YAML
    cfg = load_config(str(LOGREG), [f"{key}=null"])
    parent, name = cfg, key
    if "." in key:
        section, name = key.rsplit(".", 1)
        for part in section.replace("[0]", ".0").split("."):
            parent = parent[int(part)] if part.isdigit() else getattr(parent, part)
    value = parent[name] if isinstance(parent, dict) else getattr(parent, name)
    field = None if isinstance(parent, dict) else type(parent).model_fields[name]
    assert value == (type(value)() if field is None else field.default_factory())


@pytest.mark.parametrize("key,message", [
    ("data.batch_size", "data.batch_size: Input should be a valid integer (got null; leave the key out for its "
                        "default, 32)"),
    ("data.shuffle", "data.shuffle: Input should be a valid boolean (got null; leave the key out for its default, "
                     "false)"),
    ("data.zero_based", "data.zero_based: must be auto, true or false (got null; leave the key out for its default, "
                        "auto)"),
    ("model.loss.op", "model.loss.op: Input should be a valid string (got null)")])
def test_null_for_a_value_that_takes_none_names_the_key_and_its_default(key, message):
    with pytest.raises(ConfigError) as e:
        load_config(str(LOGREG), [f"{key}=null"])
    assert _one_line(str(e.value)) == message


def test_null_keeps_its_meaning_where_it_has_one():
    cfg = load_config(str(LOGREG), ["train.keep_checkpoints=null", "optimizer.lr_scheduler=null"])
    assert cfg.train.keep_checkpoints is None and cfg.optimizer.lr_scheduler is None
