"""The usability audit's findings (session 30): what a user meets on bad input, interruptions and
odd output targets, each through the command line (click's CliRunner) where it can be."""
from __future__ import annotations

import errno
import io
import os
import pathlib
import stat
import sys

import pytest
from click.testing import CliRunner

from sparsetrain.cli import main
from sparsetrain.fileio import write_atomic

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")


def cli(*args, input=None):
    return CliRunner().invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


# -- output targets that are not regular files -------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes")
def test_a_named_pipe_is_written_into_not_replaced(tmp_path):
    # `--out >(gzip > p.gz)` or `mkfifo p`: renaming a temporary file over the pipe replaced it (and, as
    # root, `--out /dev/stdout` replaced that link for every process; `--out /dev/full` "succeeded")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so that the writer's open does not wait
    try:
        write_atomic(str(fifo), "row,prediction\n0,1.5\n")
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
        assert os.read(reader, 1 << 16) == b"row,prediction\n0,1.5\n"
    finally:
        os.close(reader)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary left beside it


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_at_a_flush_names_the_file():
    # gen-data --format csv on a full disk said 'error: <stdout>: No space left on device': np.savez's zip
    # writer flushed the planted model's file, and the flush's error named no file
    import numpy as np

    from sparsetrain.base import OutputError
    from sparsetrain.fileio import open_atomic

    with pytest.raises(OutputError, match="^/dev/full: cannot write \\(no space left on device\\)"):
        with open_atomic("/dev/full") as f:
            np.savez(f, a=np.zeros(10))


def test_a_symbolic_link_stays_a_link_and_its_file_gets_the_content(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "preds.csv"
    target.write_text("old\n")
    link = tmp_path / "preds.csv"
    link.symlink_to(target)
    write_atomic(str(link), "new\n")
    assert link.is_symlink() and target.read_text() == "new\n"


# -- a run that stops before or between its checkpoints ------------------------------------------------------

FAST = ("-q", "--epochs", 2, "--set", "data.batch_size=100")


def test_a_run_stopped_before_its_first_checkpoint_is_started_again_with_overwrite(tmp_path):
    # what a Ctrl-C or a bad line in the first epoch leaves: config.yaml, no checkpoint. --resume said
    # "start the run without --resume", and without it: "already holds a run: continue it with --resume"
    out = tmp_path / "r"
    (out / "checkpoints").mkdir(parents=True)
    (out / "config.yaml").write_text("data: {}\n")
    res = cli("fit", LINREG, "--output", out, "--resume", *FAST)
    assert res.exit_code == 2
    assert "no checkpoint to resume from (its run stopped before the first one); start it again with --overwrite" \
        in one_error_line(res.stderr)
    res = cli("fit", LINREG, "--output", out, *FAST)
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert "stopped before its first checkpoint: start it again with --overwrite" in line and "--resume" not in line
    assert cli("fit", LINREG, "--output", out, "--overwrite", *FAST).exit_code == 1  # trains (target missed)
    assert (out / "checkpoint.json").exists()


def test_a_full_disk_mid_run_names_the_last_complete_checkpoint_and_resume(tmp_path, monkeypatch):
    real = os.replace

    def replace(src, dst, *a, **kw):
        if str(dst).endswith("model-0002.params"):
            raise OSError(28, "No space left on device", src)
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "r"
    res = cli("fit", LINREG, "--output", out, *FAST)
    assert res.exit_code == 1
    line = one_error_line(res.stderr)
    assert line.startswith(f"error: {out}/checkpoints/model-0002.params: cannot write (no space left on device); "
                           f"the last complete checkpoint is {out}/checkpoints/model-0001.params; continue with "
                           "--resume")


# -- SIGTERM -------------------------------------------------------------------------------------------------

def test_sigterm_stops_a_run_like_ctrl_c_naming_the_checkpoint_exit_143(tmp_path, monkeypatch):
    # kill, a batch scheduler or a container runtime stop a job with SIGTERM: it ended the process at
    # once, with no word, exit 143 and the lock file left behind
    import signal

    from sparsetrain.module import Module

    real = Module.run_epoch

    def terminated(self, data, metric, engine="auto", batch_end_callback=None, epoch=0):
        if epoch == 1:
            # (without a handler, SIGTERM would end pytest itself: fail instead)
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None), "SIGTERM is not handled"
            signal.raise_signal(signal.SIGTERM)
        return real(self, data, metric, engine=engine, batch_end_callback=batch_end_callback, epoch=epoch)

    monkeypatch.setattr(Module, "run_epoch", terminated)
    out = tmp_path / "r"
    res = cli("fit", LINREG, "--output", out, *FAST)
    assert res.exit_code == 143
    assert one_error_line(res.stderr) == (f"error: terminated; the last complete checkpoint is "
                                         f"{out}/checkpoints/model-0001.params; continue with --resume")
    assert "" not in res.stderr.splitlines()  # click wrote a blank line before it (for a terminal's ^C)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # put back
    assert not (out / ".lock").exists()
    monkeypatch.undo()
    res = cli("fit", LINREG, "--output", out, "--resume", *FAST)
    assert res.exit_code == 1 and "target mse" in res.stderr  # trained on to epoch 2


# -- typos in values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("setting, message", [
    ("data.cache=strem", "data.cache: Input should be 'auto', 'memory', 'stream' or 'disk' (got 'strem'; did you "
                         "mean 'stream'?)"),
    ("model.variables.weight.stype=rowsparse", "(got 'rowsparse'; did you mean 'row_sparse'?)"),
    ("train.kvstore=dist-sync", "(got 'dist-sync'; did you mean 'dist_sync'?)"),
    ("data.cache=zzz", "data.cache: Input should be 'auto', 'memory', 'stream' or 'disk' (got 'zzz')"),
    ("model.variables.weight.init=normall", "unknown initializer 'normall' (did you mean 'normal'?); known: "),
    ("optimizer={name: adam, beta1: 2}", "optimizer.beta1: must be a number in [0, 1) (got 2)"),  # (a NaN loss later)
    ("optimizer={name: ftrl, lamda1: -1}", "optimizer.lamda1: must be a number >= 0 (got -1)"),
    # (.inf trained until the loss was NaN; a target of .nan could never be met)
    ("optimizer.learning_rate=.inf", "optimizer.learning_rate: Input should be a finite number (got inf)"),
    ("train.target={mse: .nan}", "train.target.mse: Input should be a finite number"),
])
def test_a_mistyped_choice_suggests_the_closest(setting, message):
    res = cli("fit", LINREG, "--set", setting)
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert line.endswith(message) if "zzz" in setting else message in line


def test_a_mistyped_key_is_named_before_the_required_key_it_leaves_missing():
    res = cli("fit", ROOT / "configs" / "large.yaml", "--set", "data.generate={rowz: 10, path: x.libsvm}")
    assert res.exit_code == 2  # it said "data.generate.rows: required key is missing (and 1 more problem)"
    assert one_error_line(res.stderr).startswith("error: data.generate.rowz: unknown key (did you mean 'rows'?)")


def test_init_refuses_an_unknown_task_or_preset_before_reading_the_data(tmp_path, monkeypatch):
    from sparsetrain.config import starter

    def no_reading(*a, **kw):
        raise AssertionError("read the data first")

    monkeypatch.setattr(starter, "sniff", no_reading)
    data = ROOT / "data" / "binary.libsvm"
    res = cli("init", data, "--task", "binary", "--preset", "wide", "--out", tmp_path / "x.yaml")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == ("error: --preset: unknown preset 'wide' (did you mean 'wide_deep'?); the "
                                          "presets: linear, logistic, softmax, fm, wide_deep")
    res = cli("init", data, "--task", "binry", "--out", tmp_path / "x.yaml")
    assert res.exit_code == 2 and "(got 'binry'; did you mean 'binary'?)" in one_error_line(res.stderr)
    res = cli("init", data, "--task", "binary", "--preset", "softmax", "--out", tmp_path / "x.yaml")
    assert res.exit_code == 2 and "softmax does not fit --task binary" in one_error_line(res.stderr)


# -- small things a first user meets -------------------------------------------------------------------------

def test_a_missing_file_given_with_set_is_named_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("fit", LINREG, "--set", "data.train=nope.libsvm")
    assert res.exit_code == 2
    # a --set path is relative to the working directory: not "resolved against the config's directory"
    assert one_error_line(res.stderr) == f"error: data.train[0]: file not found: '{tmp_path / 'nope.libsvm'}'"


def test_streamed_stdin_with_shuffle_says_how_to_shuffle_it(tmp_path):
    stream = ("--set", "data.train=-", "--set", "data.shuffle=true", "--set", "data.cache=stream")
    res = cli("fit", LINREG, *stream, "--epochs", 1, "--output", tmp_path / "r", input="1 1:1\n")
    assert res.exit_code == 2
    line = one_error_line(res.stderr)  # (data.cache: memory is refused for stdin: not offered)
    assert line.endswith("set data.shuffle_window (e.g. 100000), data.cache: disk (all rows, kept in a disk cache), "
                         "or data.shuffle: false") and "data.cache: memory" not in line
    res = cli("fit", LINREG, *stream, "--output", tmp_path / "r", input="1 1:1\n")
    assert res.exit_code == 2  # (10 epochs) both settings in one go, not one after the other
    assert one_error_line(res.stderr).endswith("or data.shuffle: false (and train.epochs: 1, not 10: stdin is read "
                                               "once)")


@pytest.mark.parametrize("how", [("--workers", 2), ("--set", "train.kvstore=dist_async")])
def test_distributed_training_of_stdin_is_refused_naming_the_key(tmp_path, how):
    # it reached the driver's binary label search: 'stdin is streamed once ... set data.cache: disk (or auto)'
    # (advice that does not apply: the workers split a file into byte ranges); a regression model started Ray
    res = cli("fit", LINREG, "--set", "data.train=-", "--set", "data.zero_based=true", *how, "--epochs", 1,
              "--output", tmp_path / "r", input="1 1:1\n")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == ("error: data.train: '-' (stdin): distributed training splits a LibSVM "
                                          "file into byte-range parts, one a worker; give a file (or train stdin "
                                          "with train.kvstore: local)")


def test_distributed_training_of_csv_data_is_refused_before_ray_starts(tmp_path):
    res = cli("fit", ROOT / "configs" / "criteo_like.yaml", "--workers", 2, "--output", tmp_path / "r")
    assert res.exit_code == 2  # it started Ray and ended 15 s later with "worker 1 died (...)"
    assert one_error_line(res.stderr).startswith("error: data.format: distributed training reads LibSVM files; "
                                                 "this data is csv")
    assert not (tmp_path / "r" / "config.yaml").exists()


def test_init_from_a_run_of_another_model_is_a_usage_error_naming_the_parameter(tmp_path):
    run = tmp_path / "linreg"
    assert cli("fit", LINREG, "--output", run, *FAST).exit_code == 1  # trains (target missed)
    res = cli("fit", ROOT / "configs" / "fm.yaml", "--init-from", run, "--output", tmp_path / "fm", *FAST)
    assert res.exit_code == 2  # README: exit 2 naming the variable (it was exit 1)
    assert "error: --init-from " in one_error_line(res.stderr)
    assert "this model's parameter" in res.stderr and "is not in it (its parameters: weight, bias)" in res.stderr


def test_the_feature_name_pass_closes_its_file(tmp_path):
    import gc
    import warnings

    from sparsetrain.io.csv_schema import CSVSchema
    from sparsetrain.io.feature_names import csv_feature_keys

    (tmp_path / "d.csv").write_text("label,c\n1,a\n0,b\n")
    schema = CSVSchema(columns=None, label="label", categorical=["c"], hash_bits=4, delimiter=",", header=True)
    gc.collect()  # an earlier test's garbage is not this pass's (its ResourceWarning failed this test in a suite)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert csv_feature_keys(str(tmp_path / "d.csv"), schema, ["label", "c"], ",") == {"c=a", "c=b"}
        gc.collect()
    # fit printed "warning: unclosed file" (only this file's: a file another test left open may be collected here)
    assert not [w for w in caught if issubclass(w.category, ResourceWarning) and "d.csv" in str(w.message)]


# -- predict's id column -------------------------------------------------------------------------------------

def test_predict_writes_the_csv_id_column_instead_of_the_row_number(tmp_path):
    # SPEC 11: "row number (or the CSV id column)"; a Kaggle-style file keys its rows by an id
    rows = ["id,label,c", '"a,1",1,x', "b2,0,y", "", "  c3 ,1,x", "d4,0"]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "m.yaml"
    config.write_text("data: {train: d.csv, csv: {header: true}, label: label, categorical: [c], hash_bits: 4,\n"
                      "       id_column: id, batch_size: 1}\n"
                      "model: {preset: logistic}\noptimizer: {name: sgd, learning_rate: 0.1}\ntrain: {epochs: 1}\n")
    assert cli("fit", config, "-q", "--output", tmp_path / "r").exit_code == 0
    res = cli("predict", tmp_path / "r", tmp_path / "d.csv")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[0] == "id,label,prediction,probability,class"
    import csv
    import io

    import numpy as np

    table = list(csv.reader(io.StringIO(res.stdout)))
    assert [r[0] for r in table[1:]] == ["a,1", "b2", "  c3 ", "d4"] and {len(r) for r in table} == {5}
    assert cli("predict", tmp_path / "r", tmp_path / "d.csv", "--out", tmp_path / "p.npy").exit_code == 0
    assert np.load(tmp_path / "p.npy")["id"].tolist() == ["a,1", "b2", "  c3 ", "d4"]
    res_stdin = cli("predict", tmp_path / "r", "-", input=(tmp_path / "d.csv").read_text())
    assert res_stdin.exit_code == 0 and res_stdin.stdout == res.stdout
    for bad, message in [("label", "data.id_column: column 'label' is the label"),
                         ("idd", "data.id_column: no column 'idd' in the header of")]:
        res = cli("fit", config, "-q", "--output", tmp_path / bad, "--set", f"data.id_column={bad}")
        assert res.exit_code == 2 and message in one_error_line(res.stderr)
    res = cli("fit", LINREG, "--set", "data.id_column=id")
    assert res.exit_code == 2 and one_error_line(res.stderr).startswith("error: data.id_column: only for csv")


def test_init_makes_an_id_header_column_the_id_column_not_a_feature(tmp_path):
    rows = ["Id,click,c1,n1"] + [f"r{i},{i % 2},{'ab'[i % 3 == 0]},{i % 7}" for i in range(60)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    config = tmp_path / "m.yaml"
    res = cli("init", tmp_path / "d.csv", "--task", "binary", "--out", config)
    assert res.exit_code == 0, res.output
    import yaml

    data = yaml.safe_load(config.read_text())["data"]
    assert (data["id_column"], data["label"], data["categorical"], data["numeric"]) == ("Id", "click", ["c1"], ["n1"])
    assert cli("fit", config, "-q", "--epochs", 1, "--output", tmp_path / "r").exit_code == 0
    res = cli("predict", tmp_path / "r", tmp_path / "d.csv")
    assert res.stdout.splitlines()[0] == "Id,label,prediction,probability,class" and res.stdout.splitlines()[2].startswith("r1,")


def test_label_values_read_as_yaml_booleans_are_refused():
    # `label_values: [no, yes]` is [False, True] to YAML, which passed as [0, 1] without a word
    res = cli("fit", ROOT / "configs" / "logreg.yaml", "--set", "data.label_values=[no, yes]")
    assert res.exit_code == 2
    assert one_error_line(res.stderr).startswith("error: data.label_values: [False, True]: YAML read unquoted "
                                                 "no/yes/off/on/true/false as booleans")


def test_evaluate_checks_metric_names_before_reading_the_data(tmp_path, monkeypatch):
    from sparsetrain.trainer.predict import TrainedModel

    run = tmp_path / "r"
    assert cli("fit", LINREG, "--output", run, *FAST).exit_code == 1

    def no_reading(*a, **kw):
        raise AssertionError("read the data first")

    monkeypatch.setattr(TrainedModel, "read", no_reading)
    res = cli("evaluate", run, ROOT / "data" / "linreg.libsvm", "--metric", "msee")
    assert res.exit_code == 2 and "unknown metric 'msee' (did you mean 'mse'?)" in one_error_line(res.stderr)


@pytest.mark.parametrize("name,why", [("bogus", "unknown metric 'bogus'"), ("acuracy", "unknown metric 'acuracy' (did you "
                                      "mean 'accuracy'?)"), ("composite", "'composite' holds other metrics")])
def test_evaluate_metric_errors_name_the_option_and_the_metrics_it_takes(tmp_path, name, why):
    # it said 'error: metric: unknown metric ...' as if metric were a config key, and listed composite (which
    # evaluated nothing, exit 0) and class names among the known metrics; train.metrics took composite too
    run = tmp_path / "r"
    assert cli("fit", LINREG, "--output", run, *FAST).exit_code == 1
    res = cli("evaluate", run, ROOT / "data" / "linreg.libsvm", "--metric", "mse", "--metric", name)
    assert res.exit_code == 2
    assert one_error_line(res.stderr).startswith(f"error: --metric {name}: {why}")
    assert one_error_line(res.stderr).endswith("; known: mse, rmse, mae, accuracy (acc), cross-entropy (ce, "
                                               "cross_entropy), log_loss (binary_cross_entropy), auc")
    res = cli("fit", LINREG, "--output", tmp_path / "c", *FAST, "--set", f"train.metrics=[{name}]")
    assert res.exit_code == 2 and one_error_line(res.stderr).startswith(f"error: train.metrics[0]: {why}")


# -- progress ----------------------------------------------------------------------------------------------

def test_a_streamed_epoch_bar_counts_bytes_from_the_start_with_an_eta(monkeypatch):
    # rich drops its speed samples whenever a task's total changes (it showed "eta -:--:--" to the end of
    # a streamed epoch), and the bar was "0/?" until the first chunk was parsed: it counts the file's bytes
    import io
    import time

    from rich.console import Console

    from sparsetrain import cli_fit_display as display

    monkeypatch.setattr(display, "_stderr_console", lambda quiet: Console(file=io.StringIO(), force_terminal=True))
    assert display.eta_text(0, 100, 1.0) == "-:--:--" and display.eta_text(10, None, 1.0) == "-:--:--"
    assert display.eta_text(25, 100, 10.0) == "0:00:30" and display.eta_text(1, 7201, 1.0) == "2:00:00"
    reporter = display._FitReporter(quiet=False)
    try:
        reporter.epoch_start(0, None)
        assert str(display._count_column().render(reporter.progress.tasks[0])) == ""  # not "0/?"
        reporter.epoch_bytes(0, 3_000_000)
        task = reporter.progress.tasks[0]
        assert task.total == 3_000_000 and "0.0/3.0 MB" in str(display._count_column().render(task))
        for samples, done in ((100, 1_000_000), (200, 2_000_000)):
            reporter.epoch_bytes(done, 3_000_000)
            time.sleep(0.06)  # (a bar is redrawn at most every 0.05 s)
            reporter.batch_end(samples)
        task = reporter.progress.tasks[0]
        assert task.completed == 2_000_000 and "2.0/3.0 MB" in str(display._count_column().render(task))
        assert task.fields["rate"].endswith("samples/s")
        eta = task.fields["eta"]
        assert eta != "-:--:--" and eta.startswith("0:00:0")
    finally:
        reporter.close()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_help_into_a_full_stdout_is_one_error_line():
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "sparsetrain.cli", "--help"], stdout=full, stderr=subprocess.PIPE,
                           text=True, env=env, timeout=60)
    assert p.returncode == 1 and one_error_line(p.stderr) == "error: <stdout>: No space left on device"  # a traceback


def test_a_full_stdout_is_named(tmp_path, monkeypatch):
    from sparsetrain.trainer import predictions

    def full(*a, **kw):  # what writing to a full stdout raises: an OSError without a file name
        raise OSError(28, "No space left on device")

    run = tmp_path / "r"
    assert cli("fit", LINREG, "--output", run, *FAST).exit_code == 1
    monkeypatch.setattr(predictions, "write_predictions", full)
    res = cli("predict", run, ROOT / "data" / "linreg.libsvm")
    assert res.exit_code == 1 and one_error_line(res.stderr) == "error: <stdout>: No space left on device"


def test_every_commands_warnings_are_one_line_each(tmp_path):
    # predict and evaluate printed Python's own form, ".../executor.py:178: StorageFallbackWarning: ..." and the
    # source line below it; only fit said "warning: ..."
    run = tmp_path / "r"
    cli("fit", LINREG, "--output", run, "--epochs", 1, "-q", "--set", "model.variables.data.stype=default")
    data = ROOT / "data" / "linreg.libsvm"
    for args in (["predict", run, data, "--out", tmp_path / "p.csv"], ["evaluate", run, data]):
        res = cli(*args)
        assert res.exit_code == 0, res.stderr
        lines = res.stderr.splitlines()
        assert lines[0].startswith("warning: storage fallback at node 'dot' (dot): no kernel for input stypes")
        assert not [ln for ln in lines if "Warning" in ln or ".py:" in ln or ln.startswith(" ")], res.stderr


def test_names_with_brackets_are_printed_as_they_are(tmp_path):
    # rich read '[red]' in a config's name and '[bold]' in a run directory as markup: infer-stypes titled
    # 'lin[red].yaml' "lin: storage types", and fit's table said "run directory: .../x" for '.../[bold]x'
    config = tmp_path / "lin[red].yaml"
    config.write_text(pathlib.Path(LINREG).read_text().replace("../data/", f"{ROOT}/data/"))
    res = cli("infer-stypes", config)
    assert res.exit_code == 0 and res.stdout.splitlines()[0].strip() == "lin[red]: storage types (batch size 1)"
    res = cli("fit", config, "--output", tmp_path / "[bold]x", "--epochs", 1)
    assert "run directory:" in res.stdout and "/[bold]x" in res.stdout  # (the caption wraps the long path)


class _DiskFillingUp(io.RawIOBase):
    """A file on a disk with ``room`` bytes free: a write takes what fits (a short write), the next one fails."""

    def __init__(self, room):
        self.room, self.data = room, bytearray()

    def writable(self):
        return True

    def write(self, b):
        if not self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = min(len(b), self.room)
        self.data += bytes(b[:n])
        self.room -= n
        return n


@pytest.mark.parametrize("what", ["predictions", "predictions npy", "export"])
def test_stdout_of_python_u_on_a_disk_that_fills_up_is_an_error_not_a_cut_file(monkeypatch, what):
    # under PYTHONUNBUFFERED (python -u, as container images set it) stdout's binary layer is the raw file:
    # `predict ... > p.csv` on a disk that filled up mid-write exited 0 with p.csv cut short
    import numpy as np

    from sparsetrain.trainer.export import write_export
    from sparsetrain.trainer.predictions import write_predictions

    raw = _DiskFillingUp(1000)
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="utf-8", write_through=True))  # as -u makes
    cols = {"row": np.arange(500), "prediction": np.linspace(0, 1, 500, dtype=np.float32)}
    with pytest.raises(OSError) as e:
        if what == "export":
            write_export({"parameters": {"w": {"values": list(range(500))}}}, None, "json")
        else:
            write_predictions(cols, None, "npy" if what.endswith("npy") else "csv")
    assert e.value.errno == errno.ENOSPC and e.value.filename is None  # the CLI says "error: <stdout>: ..."
    assert len(raw.data) == 1000


def test_a_disk_cache_write_that_fails_at_a_close_closes_every_file(tmp_path, monkeypatch):
    # fit on a full cache directory warned and kept the data in memory, as it should, and printed
    # "warning: unclosed file <... labels.bin>" for the files after the first whose close failed
    import builtins
    import gc
    import warnings

    import numpy as np

    from sparsetrain.io import disk_cache
    from sparsetrain.io import LibSVMBlock

    class FullAtClose:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()
            raise OSError(28, "No space left on device")

    def full_open(path, mode="r", *a, **kw):
        f = builtins.open(path, mode, *a, **kw)
        return FullAtClose(f) if str(path).endswith("data.bin") else f

    monkeypatch.setattr(disk_cache, "open", full_open, raising=False)
    block = LibSVMBlock(np.ones(2, np.float32), np.array([0, 1]), np.array([0, 1, 2]), np.zeros((2, 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(OSError, match="No space left"):
            disk_cache._write(str(tmp_path / "c" / "entry"), {}, [block], np.float32, 2)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert os.listdir(tmp_path / "c") == []  # the temporary directory is gone


def test_resuming_a_finished_run_says_there_is_nothing_to_train(tmp_path):
    out = tmp_path / "r"
    assert cli("fit", LINREG, "--output", out, *FAST).exit_code == 1
    res = cli("fit", LINREG, "--output", out, "--resume", *FAST)
    assert (f"resuming from epoch 2 ({out}); it has trained its 2 epochs (train.epochs): nothing to train, give "
            "--epochs N to train on") in res.stderr
    res = cli("fit", LINREG, "--output", out, "--resume", "-q", "--epochs", 3, "--set", "data.batch_size=100")
    assert f"resuming from epoch 2 ({out})\n" in res.stderr and "epoch 2 " in res.stdout


def test_init_scales_a_linear_regression_learning_rate_to_the_labels(tmp_path):
    # data/linreg.libsvm's labels reach 220 (std 34): AdaGrad at 0.5 ended 10 epochs at mse 1027
    import yaml

    config = tmp_path / "m.yaml"
    assert cli("init", ROOT / "data" / "linreg.libsvm", "--task", "regression", "--out", config).exit_code == 0
    assert yaml.safe_load(config.read_text())["optimizer"] == {"name": "adagrad", "learning_rate": 17}
    assert "# 0.5 × the labels' standard deviation (34.3)" in config.read_text()
    res = cli("fit", config, "-q", "--output", tmp_path / "r")
    assert res.exit_code == 0
    assert float(res.stdout.splitlines()[-1].split()[3]) < 5  # epoch 9's mse


def test_the_run_log_says_what_cache_auto_chose_when_the_data_is_not_kept_in_memory(tmp_path, monkeypatch):
    monkeypatch.setenv("SPARSETRAIN_CACHE_DIR", str(tmp_path / "cache"))
    common = ("fit", LINREG, "--output", tmp_path / "r", "--overwrite", "--set", "data.batch_size=100",
              "--set", "data.memory_budget_mb=0.001")
    res = cli(*common, "--epochs", 2)
    assert (f"data.cache: auto: the data takes about 24.4 KiB parsed, more than memory_budget_mb (0.001 MiB): "
            f"parsed once into the disk cache under {tmp_path / 'cache'} and memory-mapped\n") in res.stderr
    streamed = "data.cache: auto: one epoch in file order reads the data once: streamed"
    for budget in ("0.001", "1024"):  # read once: streamed whatever the budget (the parse overlaps training)
        res = cli("fit", LINREG, "--output", tmp_path / "r", "--overwrite", "--epochs", 1,
                  "--set", f"data.memory_budget_mb={budget}")
        assert streamed in res.stderr and "streamed" in res.stderr.split("engine ")[1].splitlines()[0]
    res = cli("fit", LINREG, "--output", tmp_path / "r", "--overwrite", "--epochs", 2)
    assert "data.cache: auto" not in res.stderr  # kept in memory: nothing to say
    res = cli("fit", LINREG, "--output", tmp_path / "r", "--overwrite", "--epochs", 1, "--set", "data.shuffle=true")
    assert "data.cache: auto" not in res.stderr  # a shuffle of all rows: in memory


def test_string_labels_in_a_csv_train_a_binary_model_and_a_third_is_an_error(tmp_path):
    # two string labels (yes/no) are a binary model's two values (tests/test_labels.py has the rest)
    (tmp_path / "d.csv").write_text("label,c\nyes,a\nno,b\n")
    config = tmp_path / "m.yaml"
    config.write_text("data: {train: d.csv, csv: {header: true}, categorical: [c], hash_bits: 4}\n"
                      "model: {preset: logistic}\ntrain: {epochs: 1}\n")
    res = cli("fit", config, "--output", tmp_path / "r")
    assert res.exit_code == 0 and "labels: yes → 1, no → 0" in res.stdout + res.stderr
    (tmp_path / "d.csv").write_text("label,c\nyes,a\nno,b\nmaybe,c\n")
    res = cli("fit", config, "--output", tmp_path / "r2")
    assert res.exit_code == 1
    assert one_error_line(res.stderr).endswith("d.csv:4: label 'maybe' is a third value; this binary model's labels "
                                               "are no (→ 0) and yes (→ 1)")


def test_evaluating_a_libsvm_model_on_a_file_named_tsv_names_the_mismatch(tmp_path):
    run = tmp_path / "r"
    assert cli("fit", LINREG, "--output", run, *FAST).exit_code == 1
    res = cli("evaluate", run, ROOT / "data" / "criteo_like_eval.tsv")
    assert res.exit_code == 2  # it said "data.csv: give `columns` (the names in file order) or `header: true`"
    assert one_error_line(res.stderr).endswith("criteo_like_eval.tsv: read as csv data by its name, but this model "
                                               "was trained on libsvm data; give a libsvm file")


def test_training_files_of_two_formats_are_named(tmp_path):
    logreg = ROOT / "configs" / "logreg.yaml"
    tsv = ROOT / "data" / "criteo_like_eval.tsv"
    res = cli("fit", logreg, "--set", f"data.train=[{ROOT / 'data' / 'binary.libsvm'}, {tsv}]")
    assert res.exit_code == 2  # it said "data.csv: give `columns` (the names in file order) or `header: true`"
    assert one_error_line(res.stderr) == (f"error: data.train: '{tsv}' reads as csv data by its name, the training "
                                          "data as libsvm; give files of one format")
    res = cli("fit", logreg, "--set", f"data.eval={tsv}")
    assert res.exit_code == 2 and one_error_line(res.stderr).startswith(f"error: data.eval: '{tsv}' reads as csv")


def test_a_file_named_as_another_format_than_data_format_is_named(tmp_path):
    # data.format: csv read the .libsvm eval file as CSV ('data.numeric: no column 'a' in the header of e.libsvm')
    (tmp_path / "t.csv").write_text("y,a\n1,2\n0,1\n")
    (tmp_path / "e.libsvm").write_text("1 0:1\n")
    (tmp_path / "e.txt").write_text("y,a\n1,2\n")
    config = tmp_path / "c.yaml"
    config.write_text("data: {train: t.csv, eval: e.libsvm, format: csv, csv: {header: true}, numeric: [a], "
                      "hash_bits: 4}\nmodel: {preset: linear}\ntrain: {epochs: 1}\n")
    res = cli("fit", config, "--output", tmp_path / "r")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == ("error: data.eval: 'e.libsvm' is named as libsvm data, but data.format is "
                                          "csv; give csv files (data.format applies to every file whose name says no "
                                          "other format)")
    # a name that says no format is read as data.format says; under auto, as libsvm (the hint says data.format)
    txt = tmp_path / "e.txt"
    assert cli("fit", config, "-q", "--output", tmp_path / "r", "--set", f"data.eval={txt}").exit_code == 0
    res = cli("fit", config, "--output", tmp_path / "r2", "--set", f"data.eval={txt}", "--set", "data.format=auto")
    assert res.exit_code == 2 and one_error_line(res.stderr).endswith(
        f"'{txt}' reads as libsvm data by its name, the training data as csv; give files of one format "
        "(or set data.format: csv)")


@pytest.mark.parametrize("data, message", [
    # a preset on generated CSV asked for data.num_features (not the hashed buckets, as for a .tsv file); a name
    # that reads as another format than data.generate.format was read so ('data.num_features: required ...')
    ("{generate: {format: csv, rows: 10, path: g.tsv}, numeric: [i1], csv: {header: false}}",
     "data.csv: give `columns`"),
    ("{generate: {format: csv, rows: 10, path: g.libsvm}}", "data.generate.path: 'g.libsvm' is named as libsvm "
     "data, but data.generate.format writes csv rows; name it .csv or .tsv"),
    ("{generate: {format: csv, rows: 10, path: g.dat}}", "data.generate.path: 'g.dat' reads as libsvm data by its "
     "name, but data.generate.format writes csv rows; name it .csv or .tsv (or set data.format: csv)"),
    ("{format: csv, generate: {rows: 10, features: 3, density: 0.5, path: g.dat}}", "data.format: csv, but "
     "data.generate.format writes libsvm rows; set data.format: libsvm (or auto)"),
])
def test_generated_data_is_read_in_the_format_it_is_written(tmp_path, data, message):
    config = tmp_path / "g.yaml"
    config.write_text(f"data: {data}\nmodel: {{preset: logistic}}\ntrain: {{epochs: 1}}\n")
    res = cli("fit", config, "--output", tmp_path / "r")
    assert res.exit_code == 2 and one_error_line(res.stderr).startswith(f"error: {message}")
    assert not (tmp_path / "g.tsv").exists() and not (tmp_path / "g.libsvm").exists()


def test_an_index_out_of_range_in_a_zero_based_file_does_not_say_one_based(tmp_path):
    from sparsetrain.base import DataFormatError
    from sparsetrain.io import load_libsvm

    (tmp_path / "wide.libsvm").write_text("1 0:1 499:2\n0 3:1\n")
    with pytest.raises(DataFormatError) as e:  # (zero_based="auto": the file has an index 0)
        load_libsvm(str(tmp_path / "wide.libsvm"), num_features=200)
    assert str(e.value) == f"{tmp_path / 'wide.libsvm'}:1: feature index '499' is out of range for num_features=200"
    (tmp_path / "one.libsvm").write_text("1 1:1 499:2\n")
    with pytest.raises(DataFormatError, match="out of range for num_features=200 with one-based indices$"):
        load_libsvm(str(tmp_path / "one.libsvm"), num_features=200, zero_based=False)


def test_init_shows_a_status_line_while_it_reads_a_large_file(tmp_path, monkeypatch):
    from sparsetrain import cli_fit_display

    monkeypatch.setattr(cli_fit_display, "BUSY_AFTER", 0.0)  # (a large file: reading takes over a second)
    data = ROOT / "data" / "binary.libsvm"
    res = cli("init", data, "--task", "binary", "--out", tmp_path / "x.yaml")
    assert res.exit_code == 0 and f"reading {data} (306.2 KiB)…" in res.stderr


def test_predict_from_stdin_works_for_a_run_trained_with_zero_based_auto(tmp_path):
    # README: `predict RUN -` reads stdin; for the seed's config (zero_based: auto) it said "data.zero_based:
    # auto reads the file twice; for stdin ('-') set true or false", which predict has no way to set
    run = tmp_path / "r"
    assert cli("fit", LINREG, "--output", run, *FAST).exit_code == 1
    data = ROOT / "data" / "linreg.libsvm"
    from_file = cli("predict", run, data)
    from_stdin = cli("predict", run, "-", input=data.read_text())
    assert from_stdin.exit_code == 0, from_stdin.stderr
    assert from_stdin.stdout == from_file.stdout
    res = cli("evaluate", run, "-", input=data.read_text())
    assert res.exit_code == 0 and res.stdout == cli("evaluate", run, data).stdout
    res = cli("predict", run, "-", input="1 0:1\n0 3:x\n")  # stdin is named as such, not as its copy
    assert res.exit_code == 1 and one_error_line(res.stderr) == "error: <stdin>:2: feature value 'x' is not a number"


def test_sigterm_ends_any_command_cleanly_without_a_partial_file(tmp_path, monkeypatch):
    # gen-data killed with SIGTERM left a 130 MB '.tmp-g.libsvm.*' beside its output and said nothing
    import signal

    from sparsetrain.fileio import open_atomic
    from sparsetrain.io import synthetic

    def generate(path, **kw):
        with open_atomic(path) as f:
            f.write(b"1 0:1\n" * 1000)
            assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None), "SIGTERM is not handled"
            signal.raise_signal(signal.SIGTERM)
        raise AssertionError("not stopped")

    monkeypatch.setattr(synthetic, "generate", generate)
    res = cli("gen-data", "--rows", 10, "--features", 10, "--nnz-per-row", 2, "--out", tmp_path / "g.libsvm", "-q")
    assert res.exit_code == 143 and res.stderr == "error: terminated\n"  # (click wrote a blank line first)
    assert os.listdir(tmp_path) == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_rows_with_two_labels_for_a_one_output_model_name_the_file(tmp_path):
    (tmp_path / "ml.libsvm").write_text("1,2 3:1\n0,1 4:1\n")
    res = cli("fit", LINREG, "--set", f"data.train={tmp_path / 'ml.libsvm'}", "--output", tmp_path / "r", *FAST)
    assert res.exit_code == 1  # it said "bind: the data/label shapes {'data': (1, 100), 'label': (1, 2)} contradict..."
    assert one_error_line(res.stderr) == (
        f"error: {tmp_path / 'ml.libsvm'}: the data's batches (data (100, 100), label (100, 2)) do not fit the "
        "model: node 'lro' (LinearRegressionOutput): LinearRegressionOutput: label shape (100, 2) does not fit the "
        "output shape (100, 1)")
    run = tmp_path / "ok"
    assert cli("fit", LINREG, "--output", run, *FAST).exit_code == 1
    for command in ("predict", "evaluate"):  # they said "bind: the data/label shapes {...} contradict the symbol"
        res = cli(command, run, tmp_path / "ml.libsvm")
        assert res.exit_code == 1 and one_error_line(res.stderr).startswith(
            f"error: {tmp_path / 'ml.libsvm'}: its rows do not fit the model: node 'lro' (LinearRegressionOutput)")
    res = cli("fit", LINREG, "--set", f"data.eval={tmp_path / 'ml.libsvm'}", "--output", tmp_path / "e", *FAST)
    assert res.exit_code == 1  # it said "forward: label 'label' has shape (1, 2) but the module was bound with (1,)"
    assert one_error_line(res.stderr) == f"error: {tmp_path / 'ml.libsvm'}: 2 labels per row, the training data 1 label"


def test_a_directory_as_data_and_a_run_directory_that_cannot_be_made_are_named(tmp_path):
    res = cli("fit", LINREG, "--set", f"data.train={tmp_path}", "--output", tmp_path / "run")
    assert res.exit_code == 2  # it said "<dir>: Is a directory", exit 1
    assert one_error_line(res.stderr) == (f"error: data.train[0]: {tmp_path} is a directory; give its files or a "
                                          f"glob ('{tmp_path}/*')")
    (tmp_path / "file").write_text("x")
    res = cli("fit", LINREG, "--output", tmp_path / "file" / "run", *FAST)
    assert res.exit_code == 1  # it said "<path>: file not found" for /proc/x
    assert one_error_line(res.stderr) == (f"error: {tmp_path / 'file' / 'run'}: cannot create the run directory "
                                          "(Not a directory)")


def test_accuracy_on_a_regression_model_is_a_usage_error_not_an_internal_one(tmp_path):
    res = cli("fit", LINREG, "--set", "train.metrics=[accuracy]", "--set", "train.target={}", "--output", tmp_path)
    assert res.exit_code == 2  # it trained into "internal error: ValueError: accuracy needs labels 0 or 1, got 47.9"
    assert one_error_line(res.stderr) == ("error: train.metrics[0]: metric 'accuracy' does not apply to a "
                                          "LinearRegressionOutput model (it scores LogisticRegressionOutput, "
                                          "SoftmaxOutput)")
    assert cli("fit", LINREG, "--output", tmp_path / "r", *FAST).exit_code == 1
    res = cli("evaluate", tmp_path / "r", ROOT / "data" / "linreg.libsvm", "--metric", "accuracy")
    assert res.exit_code == 2 and one_error_line(res.stderr) == (
        "error: metric 'accuracy' does not apply to a LinearRegressionOutput model (it scores "
        "LogisticRegressionOutput, SoftmaxOutput)")  # (not "metric: metric 'accuracy' ...")
    bad = tmp_path / "bad.libsvm"  # the usage error comes before the data is read (it read all of it first)
    bad.write_text("1 0:1\n2 x:1\n")
    res = cli("evaluate", tmp_path / "r", bad, "--metric", "accuracy")
    assert res.exit_code == 2 and "metric 'accuracy' does not apply" in one_error_line(res.stderr)


def test_plot_writes_the_format_its_out_extension_names(tmp_path):
    pytest.importorskip("matplotlib")
    run = tmp_path / "r"
    assert cli("fit", LINREG, "--output", run, *FAST).exit_code == 1
    assert cli("plot", run, "--out", tmp_path / "m.svg").exit_code == 0
    assert b"<svg" in (tmp_path / "m.svg").read_bytes()[:1000]  # it wrote PNG bytes under any name
    assert cli("plot", run, "--out", tmp_path / "m.pdf").exit_code == 0
    assert (tmp_path / "m.pdf").read_bytes().startswith(b"%PDF")
    res = cli("plot", run, "--out", tmp_path / "m.xyz")
    # a usage error (exit 2), as an --out extension predict or export cannot write (it was exit 1)
    assert res.exit_code == 2 and "m.xyz: matplotlib cannot write .xyz images; use one of " in res.stderr


def test_an_empty_config_says_what_it_needs(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    res = cli("fit", tmp_path / "empty.yaml")
    assert res.exit_code == 2  # it said "data: required key is missing (and 1 more problem)"
    assert one_error_line(res.stderr).startswith(f"error: {tmp_path / 'empty.yaml'}: the config is empty; it needs "
                                                 "data and model keys at least")


def test_a_run_never_writes_its_config_yaml_over_the_config_it_runs(tmp_path, monkeypatch):
    # `fit config.yaml --output . --overwrite` replaced the user's config.yaml (comments and all) with the
    # run's resolved config; without --overwrite it said the directory "holds a run"
    monkeypatch.chdir(tmp_path)
    mine = (ROOT / "configs" / "linreg.yaml").read_text().replace("../data/", f"{ROOT}/data/") + "# my notes\n"
    (tmp_path / "config.yaml").write_text(mine)
    for extra in ((), ("--overwrite",)):
        res = cli("fit", "config.yaml", "--output", ".", *FAST, *extra)
        assert res.exit_code == 2
        assert one_error_line(res.stderr) == (f"error: --output {tmp_path}: the run writes its config.yaml there, "
                                              "over your config config.yaml; choose another directory with --output")
    assert (tmp_path / "config.yaml").read_text() == mine
    run = tmp_path / "r"
    assert cli("fit", "config.yaml", "--output", run, *FAST).exit_code == 1
    res = cli("fit", run / "config.yaml", "--output", run, "--resume", "-q", "--epochs", 3, "--set",
              "data.batch_size=100")  # resuming from the run's own config.yaml is fine
    assert "resuming from epoch 2" in res.stderr and res.exit_code in (0, 1)


def test_a_config_yaml_that_no_run_wrote_is_not_called_a_run(tmp_path):
    (tmp_path / "config.yaml").write_text("someone's notes\n")
    res = cli("fit", LINREG, "--output", tmp_path, *FAST)
    assert res.exit_code == 2 and one_error_line(res.stderr) == (
        f"error: {tmp_path} holds a config.yaml that no run wrote (no checkpoints/ beside it): choose another "
        "directory with --output (--overwrite would replace it)")
    assert (tmp_path / "config.yaml").read_text() == "someone's notes\n"


def test_a_csv_with_a_byte_order_mark_reads_its_header_names_as_written(tmp_path):
    # Excel writes a UTF-8 byte order mark first: 'label' was '\ufefflabel' ("no column 'label' ... did you
    # mean '\ufefflabel'?"), and init wrote label: "\uFEFFlabel"
    (tmp_path / "d.csv").write_bytes(b"\xef\xbb\xbflabel,num,cat\r\n1,3,a\r\n0,2,b\r\n1,1,a\r\n0,0,b\r\n")
    config = tmp_path / "m.yaml"
    config.write_text("data: {train: d.csv, csv: {header: true}, label: label, numeric: [num], categorical: [cat],\n"
                      "       hash_bits: 4}\nmodel: {preset: logistic}\ntrain: {epochs: 1}\n")
    res = cli("fit", config, "-q", "--output", tmp_path / "r")
    assert res.exit_code == 0, res.stderr
    res = cli("init", tmp_path / "d.csv", "--task", "binary", "--out", tmp_path / "i.yaml")
    assert res.exit_code == 0 and "  label: label " in (tmp_path / "i.yaml").read_text()


@pytest.mark.parametrize("kind", ["xz", "zip", "utf-16", "utf-32"])
def test_data_compressed_in_a_format_not_read_is_named(tmp_path, kind):
    # (UTF-16 text, as Windows tools save it, said "label '\xff\xfe1\x00' is not a number")
    import lzma
    import zipfile

    raw = (ROOT / "data" / "binary.libsvm").read_bytes()[:5000]
    path = tmp_path / f"d.libsvm.{kind}"
    fix = "decompress it first"
    if kind == "xz":
        path.write_bytes(lzma.compress(raw))
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("d.libsvm", raw)
    else:
        path.write_bytes(raw.decode().encode(kind))  # with its byte order mark
        fix = f"save it as UTF-8 (iconv -f {kind.upper()} -t UTF-8)"
    what = f"{kind} data" if "utf" not in kind else f"{kind.upper()} text"
    want = f"error: {path}: {what}; sparsetrain reads UTF-8 text, .gz and .bz2: {fix}"
    res = cli("fit", ROOT / "configs" / "logreg.yaml", "--set", f"data.train={path}", "--set", "data.eval=null",
              "--set", "train.target={}", "--output", tmp_path / "r")
    assert res.exit_code == 1 and one_error_line(res.stderr) == want  # it said "label '\xfd7zXZ...' is not a number"
    res = cli("init", path, "--task", "binary", "--out", tmp_path / "x.yaml")
    assert res.exit_code == 1 and one_error_line(res.stderr).endswith(want[len("error: "):])


@pytest.mark.parametrize("config, setting, message", [
    ("linreg.yaml", "data.label_values=[0, 1]", "data.label_values: only for a binary model (LogisticRegressionOutput); "
                                                "this model's output is LinearRegressionOutput"),
    ("softmax.yaml", "data.label_values=[0, 1]", "data.label_values: only for a binary model"),
    ("logreg.yaml", "data.label_base=1", "data.label_base: only for a softmax model (SoftmaxOutput); this model's "
                                         "output is LogisticRegressionOutput"),
])
def test_a_label_key_the_model_does_not_read_is_an_error(config, setting, message):
    res = cli("fit", ROOT / "configs" / config, "--set", setting)
    assert res.exit_code == 2  # it was ignored without a word
    assert one_error_line(res.stderr).startswith(f"error: {message}")


def test_the_library_leaves_sigterm_to_the_python_program_that_calls_it(tmp_path, monkeypatch):
    # only the command line turns SIGTERM into an interruption; fit() called from a program keeps its action
    import signal

    from sparsetrain.config import load_config
    from sparsetrain.module import Module
    from sparsetrain.trainer import fit

    seen = []
    real = Module.run_epoch

    def look(self, *a, **kw):
        seen.append(signal.getsignal(signal.SIGTERM))
        return real(self, *a, **kw)

    monkeypatch.setattr(Module, "run_epoch", look)
    fit(load_config(LINREG, ["train.epochs=1", "data.batch_size=100"]), output_dir=str(tmp_path / "r"))
    assert seen == [signal.SIG_DFL]


def test_a_reduction_axis_that_is_not_an_integer_is_a_config_error():
    # found by test_config_errors' mutation test: an axis of 0.0 or {x: 1} was a TypeError in shape inference
    res = cli("fit", ROOT / "configs" / "fm.yaml", "--set", "model.ops[7].params.axis=0.0")
    assert res.exit_code == 2 and one_error_line(res.stderr) == (
        "error: model.ops[7] (pairwise, sum): axis must be an integer or a list of integers (got 0.0)")


@pytest.mark.parametrize("command", ["predict", "evaluate", "export"])
def test_a_model_path_that_is_no_run_is_a_usage_error(tmp_path, command):
    # exit 1 (as a failure of the data or the run) where plot and --init-from exit 2 for a missing path;
    # a data file given as MODEL (the arguments swapped) is the same mistake
    data = ROOT / "data" / "linreg.libsvm"
    for model in (tmp_path / "nodir", data):
        res = cli(command, model, *([data] if command != "export" else []))
        assert res.exit_code == 2, res.stderr
        assert one_error_line(res.stderr) == (f"error: {model}: not a run directory, config or checkpoint prefix "
                                              f"({model}-symbol.json not found)")


def test_a_csv_error_on_stdin_names_the_line_counting_the_header(tmp_path):
    # the header line of a pipe is read before its chunks, which counted their lines from 1: line 4 was
    # '<stdin>:3' (streamed, or read into a disk cache: the same reader)
    import subprocess
    import sys

    config = tmp_path / "m.yaml"
    config.write_text("data: {train: '-', format: csv, label: y, categorical: [a], numeric: [b], hash_bits: 4}\n"
                      "model: {preset: logistic}\noptimizer: {name: sgd, learning_rate: 0.1}\ntrain: {epochs: 1}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, "-m", "sparsetrain.cli", "fit", str(config), "-q", "--output",
                          str(tmp_path / "r")],
                         input=b"y,a,b\n1,x,2\n0,y,1\n1,y,abc\n", capture_output=True, env=env)
    assert res.returncode == 1
    assert one_error_line(res.stderr.decode()) == "error: <stdin>:4: column 'b': 'abc' is not a number"


def test_a_csv_file_without_a_header_read_with_one_says_so(tmp_path):
    # its first data line became the header: "data.label: no column 'y' in the header of d.csv (columns: 1, x, 2)"
    (tmp_path / "d.csv").write_text("1,x,2\n0,y,1\n")
    config = tmp_path / "m.yaml"
    config.write_text("data: {train: d.csv, label: y, categorical: [a], numeric: [b], hash_bits: 4}\n"
                      "model: {preset: logistic}\n")
    res = cli("fit", config, "--output", tmp_path / "r")
    assert res.exit_code == 2
    assert one_error_line(res.stderr) == (
        f"error: data.label: no column 'y' in the header of {tmp_path / 'd.csv'} (columns: 1, x, 2: the first line "
        "looks like data; a file without a header needs data.csv.header: false and data.csv.columns: [...])")
    res = cli("fit", config, "--output", tmp_path / "r", "-q", "--set", "data.csv={header: false, columns: [y, a, b]}")
    assert res.exit_code == 0, res.stderr
