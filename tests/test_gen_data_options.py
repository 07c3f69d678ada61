"""gen-data's options: one schema (io/synthetic_options.py) behind the CLI, ``data.generate`` and the library."""
from __future__ import annotations

import inspect
import pathlib

import click
import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from sparsetrain.base import ConfigError
from sparsetrain.cli import main
from sparsetrain.cli_schema import option_name
from sparsetrain.config import GenerateConfig, config_from_dict, load_config
from sparsetrain.io.synthetic import generate_libsvm
from sparsetrain.io.synthetic_options import SyntheticOptions, check_options
from sparsetrain.trainer.runfiles import load_run_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = ROOT / "configs" / "linreg.yaml"


def _cli(*args):
    return CliRunner().invoke(main, ["gen-data", *map(str, args)], catch_exceptions=False)


def _error_line(res) -> str:
    lines = [ln for ln in res.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_cli_options_are_the_schema_fields_with_its_defaults_and_help():
    cmd = main.commands["gen-data"]  # its options are added on first use (lazy imports): ask for them
    params = {p.name: p for p in cmd.get_params(click.Context(cmd))}
    for name, field in SyntheticOptions.model_fields.items():
        p = params[name]
        assert option_name(name) in p.opts
        assert p.required == field.is_required()
        if not field.is_required():
            assert p.default == field.default
        assert p.help  # every option explains itself
    assert isinstance(params["task"].type, click.Choice) and list(params["task"].type.choices) == [
        "regression", "binary", "multiclass"]
    assert params["classes"].type.min == 2 and params["density"].type.max == 1
    assert params["zero_based"].secondary_opts == ["--one-based"]


def test_the_help_of_an_option_one_format_reads_names_that_format():
    from sparsetrain.io.synthetic_options import CSV_ONLY, LIBSVM_ONLY

    fields = SyntheticOptions.model_fields
    unmarked = [k for fmt, keys in (("libsvm", LIBSVM_ONLY), ("csv", CSV_ONLY))
                for k in keys if not fields[k].description.startswith(f"{fmt}: ")]
    assert not unmarked, unmarked  # (--density, --target, --columns, --zero-based ... were refused for csv unsaid)


def test_library_takes_its_option_defaults_from_the_schema(tmp_path):
    # generate_libsvm writes no option default down: its signature names none of the schema's fields
    # besides the two it requires, and calling it without them is calling it with the schema defaults
    sig = inspect.signature(generate_libsvm).parameters
    assert not set(sig) & (set(SyntheticOptions.model_fields) - {"rows", "features"})
    generate_libsvm(tmp_path / "a.libsvm", 50, 20, nnz_per_row=3)
    defaults = {k: f.default for k, f in SyntheticOptions.model_fields.items()
                if not f.is_required() and k not in ("features", "density", "nnz_per_row")}
    generate_libsvm(tmp_path / "b.libsvm", 50, 20, nnz_per_row=3, **defaults)
    assert (tmp_path / "a.libsvm").read_bytes() == (tmp_path / "b.libsvm").read_bytes()
    with pytest.raises(ConfigError, match="nnz_perrow"):
        generate_libsvm(tmp_path / "c.libsvm", 50, 20, nnz_perrow=3)


def test_gen_data_csv_writes_a_criteo_like_tsv_that_load_csv_reads(tmp_path):
    from sparsetrain.io.csv_reader import CSVSchema, load_csv
    from sparsetrain.io.synthetic_csv import column_names

    out = tmp_path / "clicks.tsv"
    res = _cli("--format", "csv", "--rows", 300, "--numeric", 3, "--categorical", 4, "--cardinality", "zipf",
               "--task", "binary", "--seed", 4, "--out", out)
    assert res.exit_code == 0, res.output
    assert "300 rows, 3 numeric + 4 categorical columns" in res.output and "log-loss on these rows" in res.output
    lines = out.read_text().splitlines()
    assert lines[0].split("\t") == column_names(3, 4) == ["label", "i1", "i2", "i3", "c1", "c2", "c3", "c4"]
    assert len(lines) == 301 and all(len(ln.split("\t")) == 8 for ln in lines)
    X, y, _ = load_csv(out, CSVSchema(header=True, label="label", numeric=["i1", "i2", "i3"],
                                   categorical=["c1", "c2", "c3", "c4"], hash_bits=10))
    assert X.shape == (300, 1027) and set(np.unique(y)) == {0.0, 1.0}
    again = tmp_path / "again.tsv"
    _cli("--format", "csv", "--rows", 300, "--numeric", 3, "--categorical", 4, "--cardinality", "zipf",
         "--task", "binary", "--seed", 4, "--out", again)
    assert again.read_bytes() == out.read_bytes()
    assert (tmp_path / "clicks.tsv.model.npz").exists()


@pytest.mark.parametrize("args, words", [
    (["--features", 5], "--features: not for csv data"),
    (["--task", "multiclass"], "--task multiclass: csv data is binary or regression"),
    (["--numeric", 0, "--categorical", 0], "at least one --numeric or --categorical column"),
])
def test_gen_data_csv_usage_errors(tmp_path, args, words):
    res = _cli("--format", "csv", "--rows", 10, *args, "--out", tmp_path / "x.tsv")
    assert res.exit_code == 2 and words in _error_line(res)


@pytest.mark.parametrize("option", ["--noise", "--zipf-a"])
def test_a_number_that_is_not_finite_is_a_usage_error_naming_the_option(tmp_path, option):
    # --noise inf wrote -inf labels, which no reader takes; --zipf-a inf was an internal error
    res = _cli("--rows", 10, "--features", 5, "--density", 0.5, "--columns", "zipf", option, "inf",
               "--out", tmp_path / "x.libsvm")
    assert res.exit_code == 2
    assert _error_line(res).startswith(f"error: {option}: Input should be a finite number (got inf)")
    assert not (tmp_path / "x.libsvm").exists()


@pytest.mark.parametrize("fmt, out", [("libsvm", "x.libsvm"), ("csv", "x.tsv")])
def test_noise_that_makes_float32_labels_inf_is_a_usage_error(tmp_path, fmt, out):
    # --noise 1e39 (> float32's largest) wrote -inf labels (libsvm) or labels no float32 reader takes (csv)
    shape = ["--features", 5, "--density", 0.5] if fmt == "libsvm" else []
    res = _cli("--format", fmt, "--rows", 10, *shape, "--noise", "1e39", "--out", tmp_path / out)
    assert res.exit_code == 2
    assert _error_line(res).startswith("error: --noise: must be at most 1e+36: labels are float32 numbers")
    assert not (tmp_path / out).exists()
    assert _cli("--format", fmt, "--rows", 10, *shape, "--noise", "1e36", "--out", tmp_path / out).exit_code == 0


def test_config_generate_section_is_the_same_schema():
    assert issubclass(GenerateConfig, SyntheticOptions)
    assert set(GenerateConfig.model_fields) == set(SyntheticOptions.model_fields) | {"path"}


def test_nnz_per_row_above_features_is_a_usage_error():
    res = _cli("--rows", 10, "--nnz-per-row", 20, "--features", 10, "--out", "unused.libsvm")
    assert res.exit_code == 2
    assert "--nnz-per-row (20) exceeds --features (10)" in _error_line(res)


def test_absurd_feature_count_names_the_option_not_memory_error(tmp_path):
    res = _cli("--rows", 10, "--features", 10**12, "--density", 0.1, "--out", tmp_path / "x.libsvm")
    assert res.exit_code == 2
    line = _error_line(res)
    assert "--features (1000000000000)" in line and "memory" in line
    assert not (tmp_path / "x.libsvm").exists()
    with pytest.raises(ConfigError, match=r"`features` \(1000000000000\)"):
        generate_libsvm(str(tmp_path / "y.libsvm"), 10, 10**12, density=0.1)


def test_one_of_density_and_nnz_per_row_names_the_options():
    res = _cli("--rows", 10, "--features", 5, "--out", "unused.libsvm")
    assert res.exit_code == 2
    assert "give exactly one of --density and --nnz-per-row" in _error_line(res)


@pytest.mark.parametrize("override,expected", [
    ("data.generate.nnz_per_row=20", "data.generate: `nnz_per_row` (20) exceeds `features` (10)"),
    ("data.generate.rows=true", "data.generate.rows: must be a number, not true/false"),
    ("data.generate.seed=-1", "data.generate.seed:"),
])
def test_config_generate_section_reports_the_same_checks(override, expected):
    base = ["data.train=null", "data.num_features=null", "data.generate={path: g.libsvm, rows: 5, features: 10, "
            "nnz_per_row: 2}", "model.variables.weight.shape=[10, 1]"]
    load_config(str(LINREG), base)
    with pytest.raises(ConfigError) as info:
        load_config(str(LINREG), base + [override])
    assert expected in str(info.value)


def test_check_options_rejects_booleans_and_negative_seeds():
    with pytest.raises(ConfigError, match="rows: must be a number, not true/false"):
        check_options(rows=True, features=3, density=0.5)
    with pytest.raises(ConfigError, match="seed"):
        check_options(rows=3, features=3, density=0.5, seed=-1)


def test_an_existing_out_file_is_replaced_only_with_force(tmp_path):
    # gen-data wrote over an existing --out without a word; init's --force is the same thing's flag
    out = tmp_path / "x.libsvm"
    out.write_text("1 0:1\n")
    res = _cli("--rows", 5, "--features", 4, "--nnz-per-row", 2, "--out", out, "-q")
    assert res.exit_code == 2
    assert _error_line(res) == f"error: --out: {out} exists; pass --force to replace it"
    assert out.read_text() == "1 0:1\n"
    res = _cli("--rows", 5, "--features", 4, "--nnz-per-row", 2, "--out", out, "-q", "--force")
    assert res.exit_code == 0 and len(out.read_text().splitlines()) == 5


@pytest.mark.parametrize("generate,extra", [
    ("{path: g.libsvm, rows: 5, features: 10, nnz_per_row: 2, target: random}",
     ["model.variables.weight.shape=[10, 1]"]),
    ("{path: g.libsvm, rows: 5, features: 10, nnz_per_row: 2, task: multiclass, classes: 3}",
     ["model={preset: softmax, classes: 3}", "train.metrics=[accuracy]", "train.target={}"]),
    ("{format: csv, path: g.tsv, rows: 5, task: binary}",
     ["model={preset: logistic}", "train.metrics=[log_loss]", "train.target={}", "data.hash_bits=4", "data.csv={header: true}",
      "data.categorical=[c1]"]),
])
def test_a_run_config_yaml_with_data_generate_loads_again(tmp_path, generate, extra):
    # evaluate, predict and export load the run's config.yaml; it wrote every option of data.generate,
    # the other format's too, which check_given refused: `fit configs/large.yaml` then `evaluate
    # runs/large ...` said `data.generate: numeric: only for format csv data` (exit 2)
    cfg = load_config(str(LINREG), ["data.train=null", "data.num_features=null", f"data.generate={generate}",
                                    *extra])
    written = tmp_path / "config.yaml"
    written.write_text(cfg.to_yaml(str(tmp_path)))
    again = load_config(str(written))
    assert again.data.generate.model_dump(exclude={"path"}) == cfg.data.generate.model_dump(exclude={"path"})
    # a run directory written by the earlier versions (every option) is read as the run trained
    doc = yaml.safe_load(written.read_text())
    doc["data"]["generate"] = {**cfg.data.generate.model_dump(mode="json"), **doc["data"]["generate"]}
    written.write_text(yaml.safe_dump(doc))
    old = config_from_dict(load_run_config(str(tmp_path)), source=str(written))
    assert old.data.generate.model_dump(exclude={"path"}) == cfg.data.generate.model_dump(exclude={"path"})
