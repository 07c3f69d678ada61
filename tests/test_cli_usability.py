"""The usability audit's findings (session 31): damaged run files, empty data, write failures, label
conventions in predict's table and typos beside a preset, each through the command line (click's
CliRunner) on small data."""
from __future__ import annotations

import errno
import os
import pathlib
import shutil

import pytest

from test_cli_errors import cli, one_error_line

from sparsetrain.io.base import ALL_WEIGHTS_ZERO

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")
FAST = ("-q", "--epochs", 1, "--set", "data.batch_size=100")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished linreg run (one epoch), copied by the tests that damage it."""
    out = tmp_path_factory.mktemp("audit31") / "run"
    res = cli("fit", LINREG, "--output", out, *FAST)
    assert res.exit_code == 1 and (out / "checkpoint.json").exists(), res.stderr  # (target missed: 1 epoch)
    return out


def csv_config(tmp_path, name: str, text: str, keys: str):
    """A CSV file ``name`` holding ``text`` and a one-epoch linear config reading it (header names, the
    column ``label``, ``keys`` more data keys); ``(data, config)``."""
    data = tmp_path / name
    data.write_text(text)
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{train: {data}, csv: {{header: true}}, label: label, hash_bits: 4, {keys}}}\n"
                      "model: {preset: linear}\ntrain: {epochs: 1, engine: graph}\n")
    return data, config


def damaged(trained, tmp_path, name: str, content: str | None) -> pathlib.Path:
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    if content is None:
        (run / name).unlink()
    else:
        (run / name).write_text(content)
    return run


# -- a write that fails inside an atomic write is named once ---------------------------------------------

def test_a_checkpoint_write_that_fails_says_why_once(tmp_path, monkeypatch):
    # a file-size limit or a full disk while the .params file is written: the reason was wrapped twice,
    # 'cannot write (cannot write (File too large))'
    import tempfile

    real = tempfile.mkstemp

    def mkstemp(*a, prefix="", **kw):
        if ".params" in prefix:
            raise OSError(errno.EFBIG, "File too large")
        return real(*a, prefix=prefix, **kw)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    out = tmp_path / "r"
    res = cli("fit", LINREG, "--output", out, *FAST)
    assert res.exit_code == 1
    assert one_error_line(res.stderr) == (f"error: {out}/checkpoints/model-0001.params: cannot write (File too "
                                          "large); no checkpoint was written")


# -- a damaged run directory is one line naming the file ---------------------------------------------------

@pytest.mark.parametrize("command", ["predict", "evaluate", "export", "resume"])
def test_a_damaged_run_config_yaml_is_one_line_naming_it(trained, tmp_path, command):
    # it was 'internal error: ParserError: while parsing a flow node ...'
    run = damaged(trained, tmp_path, "config.yaml", "data: {train: [\n")
    data = str(ROOT / "data" / "linreg.libsvm")
    args = {"predict": ("predict", run, data), "evaluate": ("evaluate", run, data), "export": ("export", run),
            "resume": ("fit", LINREG, "--output", run, "--resume", *FAST[:1], "--epochs", 2)}[command]
    res = cli(*args)
    assert res.exit_code == 1
    line = one_error_line(res.stderr)
    assert line.startswith(f"error: {run}/config.yaml:2: invalid YAML: ") and \
        line.endswith(" (an unreadable run config)"), line


def test_a_run_config_yaml_that_is_not_a_mapping_is_one_line(trained, tmp_path):
    run = damaged(trained, tmp_path, "config.yaml", "3\n")
    res = cli("predict", run, ROOT / "data" / "linreg.libsvm")
    assert res.exit_code == 1
    assert one_error_line(res.stderr) == (f"error: {run}/config.yaml: unreadable run config (not a mapping of "
                                          "data, model, optimizer, train)")


def test_a_damaged_symbol_file_is_named(trained, tmp_path):
    # it said 'not a sparsetrain symbol JSON document: 'int' object is not iterable' without a file name
    run = damaged(trained, tmp_path, "checkpoints/model-symbol.json", '{"nodes": 3}')
    res = cli("predict", run, ROOT / "data" / "linreg.libsvm")
    assert res.exit_code == 1
    assert one_error_line(res.stderr).startswith(f"error: {run}/checkpoints/model-symbol.json: not a sparsetrain "
                                                 "symbol JSON document")


# -- empty data --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cache", ["disk", "stream"])
def test_an_empty_file_with_a_disk_cache_says_it_has_no_rows(tmp_path, monkeypatch, cache):
    # memory said 'no data rows'; disk said 'epoch 0 had no batches: the training data has fewer rows
    # than data.batch_size (100) with last_batch 'pad'' (with pad, one row makes a batch); streamed
    # (linreg discards), the same error must not become 'no batches'
    monkeypatch.setenv("SPARSETRAIN_CACHE_DIR", str(tmp_path / "cache"))
    empty = tmp_path / "empty.libsvm"
    empty.write_text("")
    res = cli("fit", LINREG, "--output", tmp_path / "r", *FAST, "--set", f"data.train={empty}",
              "--set", f"data.cache={cache}")
    assert res.exit_code == 1
    assert one_error_line(res.stderr) == f"error: {empty}: no data rows (the file is empty or only has comments)"


@pytest.mark.parametrize("cache", ["stream", "memory"])
@pytest.mark.parametrize("text", ["", "# a comment only\n"])
def test_a_binary_model_on_a_file_without_rows_says_so_streamed_or_not(tmp_path, cache, text):
    # streamed, the look for a binary model's two label values said 'data.train: no labels to learn from'
    empty = tmp_path / "empty.libsvm"
    empty.write_text(text)
    res = cli("fit", ROOT / "configs" / "logreg.yaml", "--output", tmp_path / "r", *FAST, "--set",
              f"data.train={empty}", "--set", f"data.cache={cache}", "--set", "data.shuffle=false")
    assert res.exit_code == 1
    assert one_error_line(res.stderr) == f"error: {empty}: no data rows (the file is empty or only has comments)"


@pytest.mark.parametrize("text, message", [("1 0:1\n2 x:1\n", ":2: feature index 'x' is not an integer"),
                                           ("", ": no data rows (the file is empty or only has comments)")])
def test_a_streamed_error_in_the_first_chunk_comes_alone_as_in_memory(tmp_path, text, message):
    # streamed, the engine and threads header came first ('threads 1 (auto: about 0 rows < 10,000)')
    data = tmp_path / "d.libsvm"
    data.write_text(text)
    res = cli("fit", LINREG, "--output", tmp_path / "r", "--set", f"data.train={data}", "--set", "data.cache=stream",
              "--set", "data.last_batch=pad")
    assert res.exit_code == 1
    assert res.stderr.strip() == f"error: {data}{message}"


@pytest.mark.parametrize("cache", ["memory", "disk", "stream"])
def test_fewer_rows_than_a_discarded_batch_is_the_error_alone(tmp_path, monkeypatch, cache):
    # the engine and threads header ('threads 1 (auto: 0 rows < 10,000)') came first, though nothing would train;
    # streamed, it came until the stream's first chunks were parsed before it
    monkeypatch.setenv("SPARSETRAIN_CACHE_DIR", str(tmp_path / "cache"))
    one = tmp_path / "one.libsvm"
    one.write_text("1 0:1 3:2\n")
    res = cli("fit", LINREG, "--output", tmp_path / "r", "--set", f"data.train={one}", "--set", "data.batch_size=4",
              "--set", f"data.cache={cache}")
    assert res.exit_code == 1
    assert res.stderr.strip() == ("error: epoch 0 had no batches: the training data has fewer rows than "
                                  "data.batch_size (4) with last_batch 'discard'")
    assert not (tmp_path / "r").exists()


# -- label conventions in predict's table -------------------------------------------------------------------

def test_predict_names_softmax_classes_as_the_file_does_with_label_base_1(tmp_path):
    # labels 1..3 in the file (data.label_base: 1): predict wrote probability_0..2 and class 0..2, so a
    # row labelled 1 and predicted right read 'label 1, class 0'
    data = tmp_path / "c.libsvm"
    data.write_text("".join(f"{k} {k - 1}:1\n" for k in (1, 2, 3) * 20))
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{train: {data}, num_features: 3, zero_based: true, label_base: 1, batch_size: 4}}\n"
                      "model: {preset: softmax, classes: 3}\noptimizer: {name: sgd, learning_rate: 1.0}\n"
                      "train: {epochs: 5, engine: graph}\n")
    assert cli("fit", config, "-q", "--output", tmp_path / "r").exit_code == 0
    res = cli("predict", tmp_path / "r", data)
    assert res.exit_code == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == ("row,label,prediction_1,prediction_2,prediction_3,probability_1,probability_2,probability_3,"
                        "class")
    assert [ln.split(",")[-1] for ln in lines[1:4]] == ["1", "2", "3"]  # (trained to fit)
    assert [ln.split(",")[1] for ln in lines[1:4]] == ["1.0", "2.0", "3.0"]


# -- typos -----------------------------------------------------------------------------------------------------

def test_a_mistyped_variable_beside_a_preset_suggests_the_preset_s_name(tmp_path):
    # `variables: {wieght: {init: zero}}` meant to change the preset's weight: 'declared but not used'
    config = tmp_path / "p.yaml"
    config.write_text("data: {train: x.libsvm, num_features: 10}\n"
                      "model: {preset: logistic, variables: {wieght: {init: zero}}}\n")
    res = cli("infer-stypes", config)
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == ("error: model.variables.wieght: declared but not used by any op or the "
                                          "loss (did you mean 'weight'?)")


# -- init ------------------------------------------------------------------------------------------------------

def test_init_on_a_csv_with_only_a_header_line_says_it_has_no_rows(tmp_path):
    # it read the header as a headerless data row (text label 'label') and wrote a config that fit
    # refused ('every label is label; a binary model needs two label values')
    data = tmp_path / "h.csv"
    data.write_text("label,a,b\n")
    res = cli("init", data, "--task", "binary", "--out", tmp_path / "h.yaml")
    assert res.exit_code == 1 and not (tmp_path / "h.yaml").exists()
    assert one_error_line(res.stderr) == f"error: {data}: no data rows (only the header line label, a, b)"


def test_a_header_read_as_one_column_names_the_delimiter(tmp_path):
    # a tab-separated file named .csv (comma by default): 'no column 'label' in the header of x.csv
    # (columns: label\ta\tb)'
    data, config = csv_config(tmp_path, "x.csv", "label\ta\tb\n1\tx\t2\n", "categorical: [a]")
    res = cli("fit", config, "-q", "--output", tmp_path / "r")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == (f"error: data.label: no column 'label' in the header of {data} (it reads "
                                          "as one column, split by data.csv.delimiter ','; it holds tabs: set "
                                          "data.csv.delimiter: \"\\t\")")


def test_a_shape_that_fails_in_the_gradient_names_the_variable_s_shape_key():
    # a 1-D weight under sparse.dot: 'model: node '_backward_dot3' (dot): dot: transpose_a/transpose_b
    # need 2-D inputs' named a node the config does not have; then 'model.ops[0] (dot, dot): in its
    # gradient: ...', about transposes the config has none of
    for command in ("infer-stypes", "fit"):
        res = cli(command, ROOT / "configs" / "logreg.yaml", "--set", "model.variables.weight.shape=[200]")
        assert res.exit_code == 2
        assert one_error_line(res.stderr) == (
            "error: model.variables.weight.shape: [200] is 1-D: dot's gradient needs 2-D inputs (e.g. [200, 1]); "
            "it is input 1 of node 'dot' (dot)")


# -- gen-data ---------------------------------------------------------------------------------------------------

def test_gen_data_csv_writes_the_delimiter_its_name_is_read_with(tmp_path):
    # `--format csv --out x.csv` wrote tabs into a file every reader splits at commas
    for name, sep in (("x.csv", ","), ("x.tsv", "\t"), ("x.csv.gz", ",")):
        res = cli("gen-data", "--format", "csv", "--rows", 20, "--numeric", 2, "--categorical", 3, "--out",
                  tmp_path / name, "-q")
        assert res.exit_code == 0, res.stderr
        import gzip

        opener = gzip.open if name.endswith(".gz") else open
        with opener(tmp_path / name, "rt") as f:
            lines = f.read().splitlines()
        assert lines[0] == sep.join(["label", "i1", "i2", "c1", "c2", "c3"]), name
        assert all(len(ln.split(sep)) == 6 for ln in lines[1:]), name


@pytest.mark.parametrize("args, message", [
    (("--features", 5, "--density", 0.5, "--out", "x.tsv"),
     "--out x.tsv: the name reads as csv data (as fit, init and predict read it), but --format libsvm writes "
     "libsvm rows; name it another way or give --format csv"),
    (("--features", 5, "--density", 0.5, "--out", "x.vw"),  # (it said "or give --format csv", refused as well)
     "--out x.vw: the name reads as vw data (as fit, init and predict read it), but --format libsvm writes "
     "libsvm rows; name it another way (gen-data writes no vw data)"),
    (("--format", "csv", "--out", "x.vw"),
     "--out x.vw: the name reads as vw data (as fit, init and predict read it), but --format csv writes "
     "csv rows; name it .csv or .tsv"),
    (("--format", "csv", "--out", "x.libsvm"),  # (written: data.format csv then refuses a file named so)
     "--out x.libsvm: the name reads as libsvm data (as fit, init and predict read it), but --format csv writes "
     "csv rows; name it .csv or .tsv"),
    (("--features", 5, "--density", 0.5, "--numeric", 3, "--out", "x.libsvm"),
     "--numeric: only for --format csv data"),
    (("--format", "csv", "--zero-based", "--out", "x.tsv"), "--zero-based: only for --format libsvm data"),
    (("--features", 5, "--density", 0.5, "--classes", 3, "--out", "x.libsvm"),
     "--classes: only for --task multiclass"),
])
def test_gen_data_refuses_what_it_would_not_do_as_asked(tmp_path, monkeypatch, args, message):
    # each was written silently: LibSVM rows in a .tsv (fit then read it as CSV), a TSV in a .vw file,
    # --numeric ignored for libsvm data, --classes ignored without --task multiclass
    monkeypatch.chdir(tmp_path)
    res = cli("gen-data", "--rows", 10, *args)
    assert res.exit_code == 2
    assert one_error_line(res.stderr).startswith(f"error: {message}"), res.stderr
    assert list(tmp_path.iterdir()) == []


def test_data_generate_refuses_an_option_its_format_does_not_read():
    res = cli("infer-stypes", LINREG, "--set", "data.generate={path: g.libsvm, rows: 10, features: 100, "
              "density: 0.1, vocabulary: 7}")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == "error: data.generate: `vocabulary`: only for `format` csv data"


def test_init_finds_the_header_of_a_csv_without_numbers(tmp_path):
    # every column text (UCI's mushroom data: 'class,cap-shape,odor' then 'p,x,n'): the header was read
    # as a data row and init said "the label column 'label' holds 'class', not a number"
    rows = ["class,cap-shape,odor"] + [f"{'pe'[i % 2]},{'xbf'[i % 3]},{'nal'[i % 5 % 3]}" for i in range(40)]
    data = tmp_path / "mushroom.csv"
    data.write_text("\n".join(rows) + "\n")
    config = tmp_path / "m.yaml"
    res = cli("init", data, "--task", "binary", "--out", config)
    assert res.exit_code == 0, res.stderr
    import yaml

    doc = yaml.safe_load(config.read_text())["data"]
    assert doc["csv"] == {"delimiter": ",", "header": True} and doc["label"] == "class"
    assert doc["categorical"] == ["cap-shape", "odor"] and doc["label_values"] == ["e", "p"]


def test_a_declared_shape_the_batch_contradicts_names_the_variable_s_key():
    # it was 'model: argument 'label': shapes (32, 2) and (32,) are incompatible'
    res = cli("infer-stypes", ROOT / "configs" / "logreg.yaml", "--set", "model.variables.label.shape=[32,2]")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == ("error: model.variables.label.shape: shapes (32, 2) and (32,) are "
                                          "incompatible")


# -- the config file itself -----------------------------------------------------------------------------------

def test_a_config_that_is_not_utf8_text_is_one_line(tmp_path):
    # it was 'internal error: UnicodeDecodeError: 'utf-8' codec can't decode byte 0xff'
    config = tmp_path / "c.yaml"
    config.write_bytes(b"\xff\xfe data")
    res = cli("fit", config)
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == (f"error: {config}: cannot read config (not UTF-8 text: invalid start "
                                          "byte at byte 0)")


def test_a_data_file_given_as_the_config_suggests_init(tmp_path):
    # 'sparsetrain fit data/binary.libsvm' said only 'the config must be a mapping with data, model, ...'
    res = cli("fit", ROOT / "data" / "binary.libsvm")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == (
        f"error: {ROOT}/data/binary.libsvm: the config must be a mapping with data, model, optimizer, train keys; "
        f"for a data file, `sparsetrain init {ROOT}/data/binary.libsvm --task binary|regression|multiclass --out "
        "CONFIG` writes one")


# -- export and plot --------------------------------------------------------------------------------------------

def test_export_takes_its_format_from_the_out_extension(trained, tmp_path):
    # `export RUN --out w.csv` wrote JSON into w.csv (the default format, whatever the name)
    assert cli("export", trained, "--out", tmp_path / "w.csv").exit_code == 0
    assert (tmp_path / "w.csv").read_text().startswith("#")
    assert cli("export", trained, "--out", tmp_path / "w.json").exit_code == 0
    assert (tmp_path / "w.json").read_text().startswith("{")
    res = cli("export", trained, "--out", tmp_path / "w.parquet")
    assert res.exit_code == 2 and not (tmp_path / "w.parquet").exists()
    assert one_error_line(res.stderr) == (f"error: --out {tmp_path}/w.parquet: export writes json, csv (by the "
                                          "extension: .json, .csv; none: json), not .parquet; or give --format")
    assert cli("export", trained, "--format", "csv", "--out", tmp_path / "w.txt").exit_code == 0  # as asked
    # a --format that the name contradicts wrote CSV into w.json (and predict tabs into p.csv)
    for command, args, name in (("export", ("--format", "csv"), "w2.json"),
                                ("predict", (ROOT / "data" / "linreg.libsvm", "--format", "tsv"), "p.csv.gz")):
        res = cli(command, trained, *args, "--out", tmp_path / name)
        assert res.exit_code == 2 and not (tmp_path / name).exists()
        said, asked = name.split(".")[1], args[-1]
        assert one_error_line(res.stderr) == (f"error: --out {tmp_path / name}: the name says {said}, but --format "
                                              f"is {asked}; give --format {said} or another name")


def test_predict_out_may_be_compressed(trained, tmp_path):
    # '--out preds.csv.gz' said 'predict writes csv, tsv, npy ..., not .gz' though every output is
    # written through the compressing writer
    import gzip

    res = cli("predict", trained, ROOT / "data" / "linreg.libsvm", "--out", tmp_path / "p.tsv.gz")
    assert res.exit_code == 0, res.stderr
    with gzip.open(tmp_path / "p.tsv.gz", "rt") as f:
        assert f.readline() == "row\tlabel\tprediction\n"


def test_export_and_plot_take_a_checkpoint_prefix_or_a_config_as_the_others_do(trained, tmp_path):
    # export's help says 'RUN (a run directory, config or checkpoint prefix)' but a prefix was refused
    # as a path that does not exist; plot refused a config ('Directory 'x.yaml' is a file')
    res = cli("export", trained / "checkpoints" / "model", "--top", 1)
    assert res.exit_code == 0, res.stderr
    assert '"epoch": 1' in res.stdout
    config = tmp_path / "c.yaml"
    config.write_text(f"output: {trained}\n" + pathlib.Path(LINREG).read_text().replace("../data", str(ROOT / "data")))
    pytest.importorskip("matplotlib")
    res = cli("plot", config, "--out", tmp_path / "m.png")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "m.png").read_bytes().startswith(b"\x89PNG")


# -- progressive metrics as targets and early-stopping keys ------------------------------------------------------

@pytest.mark.parametrize("setting", ["train.target={progressive_mse: 1.0e+9}",
                                     "train.early_stopping={metric: progressive_mse}"])
def test_a_progressive_metric_can_be_a_target_or_the_early_stopping_key(tmp_path, setting):
    # both were accepted by the config and ended the run in 'internal error: ValueError: unknown metric
    # 'progressive_accuracy'' (the metric's direction knew the eval_ prefix only)
    res = cli("fit", LINREG, "--output", tmp_path / "r", *FAST, "--set", "train.target={}",
              "--set", "train.progressive=true", "--set", setting)
    assert res.exit_code == 0, res.stderr


def test_resuming_with_fewer_epochs_than_trained_says_how_many_it_has(trained, tmp_path):
    # --epochs 1 ... then --resume --epochs 1 of a run of 2 said 'it has trained its 1 epochs'
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    res = cli("fit", LINREG, "--output", run, "--resume", "-q", "--epochs", 2, "--set", "data.batch_size=100")
    assert res.exit_code == 1 and "target mse" in res.stderr  # (trained epoch 2; missed the seed's target)
    res = cli("fit", LINREG, "--output", run, "--resume", "-q", "--epochs", 1, "--set", "data.batch_size=100")
    assert (f"resuming from epoch 2 ({run}); it has trained 2 epochs, more than train.epochs (1): nothing to train, "
            "give --epochs N (above 2) to train on") in res.stderr


@pytest.mark.parametrize("target, message", [
    ("{eval_accuracy: 90}", "train.target.eval_accuracy: 90 can never be reached (accuracy is at most 1)"),
    ("{mse: 0}", "train.target.mse: 0 can never be reached (the final value must be below it; mse is never "
                 "below 0)"),
])
def test_a_target_no_run_can_reach_is_a_config_error(target, message):
    # 'eval_accuracy: 90' (a percentage) trained every epoch, then exit 1 'target ... missed'
    config = ROOT / "configs" / ("logreg.yaml" if "accuracy" in target else "linreg.yaml")
    res = cli("infer-stypes", config, "--set", f"train.target={target}")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == f"error: {message}"


def test_init_writes_a_yaml_name_only(tmp_path):
    # '--out my.json' wrote YAML into a .json file
    res = cli("init", ROOT / "data" / "binary.libsvm", "--task", "binary", "--out", tmp_path / "my.json")
    assert res.exit_code == 2 and not (tmp_path / "my.json").exists()
    assert one_error_line(res.stderr) == (f"error: --out: {tmp_path}/my.json: init writes a YAML config; name it "
                                          ".yaml or .yml")


@pytest.mark.parametrize("header, message", [
    ("label,a,a", "the header line names column 'a' twice (columns 2 and 3); rename one"),
    ("label,,b", "the header line has no name for column 2; name it"),
])
def test_init_names_a_header_with_a_repeated_or_empty_name(tmp_path, header, message):
    # such a header was read as a data row: "the label column 'label' holds 'label', not a number"
    data = tmp_path / "d.csv"
    data.write_text(f"{header}\n1,x,2\n0,y,3\n")
    res = cli("init", data, "--task", "binary", "--out", tmp_path / "d.yaml")
    assert res.exit_code == 1
    assert one_error_line(res.stderr) == f"error: {data}:1: {message}"


def test_init_reads_a_first_row_with_an_empty_field_as_data(tmp_path):
    # text labels and a missing number in the first row: a data row, not a header with a nameless column
    data = tmp_path / "d.csv"
    data.write_text("yes,,red\nno,3,blue\nyes,5,red\nno,1,blue\n")
    res = cli("init", data, "--task", "binary", "--out", tmp_path / "d.yaml")
    assert res.exit_code == 0, res.stderr
    assert "header: false" in (tmp_path / "d.yaml").read_text()


def test_predicting_a_file_named_libsvm_with_a_csv_model_names_the_mismatch(tmp_path):
    # a run with data.format: csv scoring x.libsvm said "data.numeric: no column 'a' in the header of
    # x.libsvm (columns: 0 15:0.441567 19:0.406507 ...)"
    _, config = csv_config(tmp_path, "t.csv", "label,a\n1,2\n0,3\n1,4\n0,5\n", "format: csv, numeric: [a]")
    assert cli("fit", config, "-q", "--output", tmp_path / "r").exit_code == 0
    res = cli("predict", tmp_path / "r", ROOT / "data" / "binary.libsvm")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == (f"error: {ROOT}/data/binary.libsvm: read as libsvm data by its name, but "
                                          "this model was trained on csv data; give a csv file")


@pytest.mark.parametrize("init, message", [
    ("{normal: {sigma: -1}}", "Normal: sigma must be a finite number >= 0, got -1.0"),
    ("{uniform: {scale: -1}}", "Uniform: scale must be a finite number >= 0, got -1.0"),
    ("{xavier: {magnitude: -3}}", "Xavier: magnitude must be a finite number > 0, got -3.0"),
    ("{constant: {value: .nan}}", "Constant: value must be finite, got nan"),
])
def test_an_initializer_parameter_out_of_its_range_is_a_config_error(init, message):
    # sigma -1 and scale -1 ended fit in 'internal error: ValueError: scale < 0'; a NaN constant in 'the
    # loss became non-finite ...; lower the learning rate'
    res = cli("infer-stypes", ROOT / "configs" / "logreg.yaml", "--set", f"model.variables.weight.init={init}")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == f"error: model.variables.weight.init: {message}"


def test_csv_settings_for_data_that_is_not_csv_are_a_config_error():
    # data.csv.header: true on a LibSVM config was ignored without a word
    res = cli("infer-stypes", ROOT / "configs" / "logreg.yaml", "--set", "data.csv.header=true")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == ("error: data.csv: only for csv data (the data is read as libsvm, from the "
                                          "file name); set data.format: csv")


def test_evaluate_json_writes_an_undefined_metric_as_null(tmp_path):
    # auc of rows of one class printed {"auc": NaN}, which JSON readers other than Python's refuse
    import json

    run = tmp_path / "run"
    (tmp_path / "t.libsvm").write_text("1 0:1\n0 1:1\n")
    data = tmp_path / "ones.libsvm"
    data.write_text("1 0:1\n1 1:1\n")
    config = tmp_path / "c.yaml"
    config.write_text("data: {train: t.libsvm, num_features: 2, batch_size: 2}\nmodel: {preset: logistic}\n"
                      "train: {epochs: 1, engine: graph, metrics: [auc]}\n")
    assert cli("fit", config, "-q", "--output", run).exit_code == 0
    res = cli("evaluate", run, data, "--json")
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"{c} in {res.stdout}")) == {"auc": None}


def test_an_undefined_eval_metric_is_null_in_metrics_jsonl_and_nan_again_on_resume(tmp_path):
    # eval_auc of an eval set of one class was written as NaN: 'jq' and other JSON readers refuse the line
    import json

    (tmp_path / "t.libsvm").write_text("1 0:1\n0 1:1\n")
    (tmp_path / "ones.libsvm").write_text("1 0:1\n1 1:1\n")
    config = tmp_path / "c.yaml"
    config.write_text("data: {train: t.libsvm, eval: ones.libsvm, num_features: 2, batch_size: 2}\n"
                      "model: {preset: logistic}\ntrain: {epochs: 1, engine: graph, metrics: [auc]}\n")
    run = tmp_path / "run"
    assert cli("fit", config, "-q", "--output", run).exit_code == 0
    line = (run / "metrics.jsonl").read_text().splitlines()[0]
    assert json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in {line}"))["eval_auc"] is None
    res = cli("fit", config, "-q", "--output", run, "--resume", "--epochs", 2)  # reads the record back
    assert res.exit_code == 0, res.stderr
    assert "eval_auc nan" in res.stdout


@pytest.mark.parametrize("setting, message", [
    ("model.variables.label.stype=csr", "model.variables.label.stype: 'csr': labels are read as a dense array; "
                                        "use 'default' (or leave stype out)"),
    ("model.variables.data.stype=row_sparse", "model.variables.data.stype: 'row_sparse': the data is read as csr "
                                              "rows; use 'csr' (or 'default': dense)"),
])
def test_a_data_or_label_stype_the_data_cannot_have_is_a_config_error(setting, message):
    # label csr: 'binary.libsvm: the data's batches (...) do not fit the model: csr storage needs a 2-D
    # shape'; data row_sparse trained with a dense fallback at every batch
    res = cli("infer-stypes", ROOT / "configs" / "logreg.yaml", "--set", setting)
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == f"error: {message}"


@pytest.mark.parametrize("command", ["init", "fit"])
def test_truncated_compressed_csv_is_one_line_naming_it(tmp_path, command):
    # a .tsv.bz2 cut short: 'internal error: EOFError: Compressed file ended before the end-of-stream
    # marker was reached' (init's sample and the CSV header read the first lines outside the chunk reader)
    import bz2

    whole = bz2.compress(("label\ta\n" + "".join(f"{i % 2}\tv{i}\n" for i in range(20000))).encode())
    data = tmp_path / "d.tsv.bz2"
    data.write_bytes(whole[: len(whole) // 2])
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{train: {data}, csv: {{header: true}}, categorical: [a], hash_bits: 4}}\n"
                      "model: {preset: linear}\n")
    args = (("init", data, "--task", "regression", "--out", tmp_path / "x.yaml") if command == "init" else
            ("fit", config, "-q", "--output", tmp_path / "r"))
    res = cli(*args)
    assert res.exit_code == 1
    assert one_error_line(res.stderr).startswith(f"error: {data}: corrupt or truncated bzip2 data (")


def test_a_number_in_exponent_form_is_a_number_in_the_config(tmp_path):
    # PyYAML reads 1e-8 (no dot) and 1.0e5 (no sign) as strings: 'optimizer.epsilon: must be a number > 0
    # (got '1e-8')' for what YAML 1.2 and every user reads as a number
    res = cli("infer-stypes", ROOT / "configs" / "logreg.yaml", "--set", "optimizer={name: adam, epsilon: 1e-8}",
              "--set", "optimizer.learning_rate=1.0e-3", "--set", "train.target={eval_accuracy: 5e-1}")
    assert res.exit_code == 0, res.stderr
    from sparsetrain.config import load_config

    cfg = load_config(str(ROOT / "configs" / "logreg.yaml"), ["optimizer={name: adam, epsilon: 1e-8, beta1: 9E-1}"])
    assert cfg.optimizer.model_extra == {"epsilon": 1e-8, "beta1": 0.9}


def test_init_warns_when_a_classifier_s_data_has_one_label_value(tmp_path):
    # a sample of positives only: init wrote the config and said '1 label value(s)' and nothing else
    data = tmp_path / "pos.libsvm"
    data.write_text("1 0:1\n1 1:1\n")
    res = cli("init", data, "--task", "binary", "--out", tmp_path / "p.yaml")
    assert res.exit_code == 0, res.stderr
    assert f"warning: {data} has one label value {{1}}: a binary model learns from rows of both classes" in res.stderr
    assert ", 1 label value; train it with" in res.stdout  # (it said '1 label value(s)')


def test_an_export_written_compressed_reads_back(trained, tmp_path):
    # export --out w.json.gz writes gzip; read_export opened it as text
    from sparsetrain.trainer.export import read_export

    for name in ("w.json.gz", "w.csv.bz2"):
        assert cli("export", trained, "--out", tmp_path / name).exit_code == 0
        assert set(read_export(str(tmp_path / name))) == {"weight", "bias"}


@pytest.mark.parametrize("cache", ["memory", "disk", "stream"])
def test_training_rows_that_all_weigh_nothing_are_named(tmp_path, cache):
    # every importance weight 0: 'metric mse became non-finite in epoch 0' (a streamed epoch said it still)
    _, config = csv_config(tmp_path, "w.csv", "label,a,w\n1,2,0\n0,3,0\n", "numeric: [a], weight_column: w")
    res = cli("fit", config, "-q", "--output", tmp_path / "r", "--set", f"data.cache={cache}")
    assert res.exit_code == 1
    assert one_error_line(res.stderr) == f"error: {tmp_path}/w.csv: {ALL_WEIGHTS_ZERO}"


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_eval_rows_that_all_weigh_nothing_are_named(tmp_path, cache):
    # data.eval whose every importance weight is 0: the eval metric was NaN, said nowhere
    _, config = csv_config(tmp_path, "w.csv", "label,a,w\n1,2,1\n0,3,1\n", "numeric: [a], weight_column: w")
    evaluated = tmp_path / "e.csv"
    evaluated.write_text("label,a,w\n1,2,0\n0,3,0\n")
    res = cli("fit", config, "-q", "--output", tmp_path / "r", "--set", f"data.cache={cache}",
              "--set", f"data.eval={evaluated}")
    assert res.exit_code == 1
    assert one_error_line(res.stderr) == f"error: {evaluated}: {ALL_WEIGHTS_ZERO}"


def test_evaluate_of_rows_that_all_weigh_nothing_is_named(tmp_path):
    # evaluate's metric of such a file was NaN too
    _, config = csv_config(tmp_path, "w.csv", "label,a,w\n1,2,1\n0,3,1\n", "numeric: [a], weight_column: w")
    evaluated = tmp_path / "e.csv"
    evaluated.write_text("label,a,w\n1,2,0\n0,3,0\n")
    assert cli("fit", config, "-q", "--output", tmp_path / "r").exit_code == 0
    res = cli("evaluate", tmp_path / "r", evaluated)
    assert res.exit_code == 1 and one_error_line(res.stderr) == f"error: {evaluated}: {ALL_WEIGHTS_ZERO}"


def test_a_storage_fallback_in_a_gradient_names_the_config_s_node(tmp_path):
    # the warning named the internal node: "storage fallback at node '_backward__reduce_like1' (_reduce_like)"
    res = cli("fit", ROOT / "configs" / "logreg.yaml", "-q", "--epochs", 1, "--output", tmp_path / "r",
              "--set", "model.variables.bias.stype=row_sparse", "--set", "train.target={}")
    assert res.exit_code == 0, res.stderr
    assert "warning: storage fallback at the gradient of node 'pred' (broadcast_add), _reduce_like: no kernel" \
        in res.stderr and "_backward_" not in res.stderr


def test_python_dash_m_runs_the_command(tmp_path):
    """``python -m sparsetrain`` is the ``sparsetrain`` command: its help names it so, and a bad config is
    the same one-line error with exit code 2."""
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run([sys.executable, "-m", "sparsetrain", "--help"], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Usage: sparsetrain ")
    bad = subprocess.run([sys.executable, "-m", "sparsetrain", "fit", str(tmp_path / "none.yaml")],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "none.yaml" in bad.stderr
