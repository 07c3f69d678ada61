"""Run directories: never destroyed by surprise, one run at a time, clean resume, disk full, Ctrl-C."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from test_cli import cli, one_error_line

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")
DATA = ROOT / "data" / "linreg.libsvm"
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
FAST = ["--epochs", "2", "-q", "--set", "data.batch_size=100"]


def snapshot(run_dir) -> dict:
    """Every file of a run directory with its content hash."""
    root = pathlib.Path(run_dir)
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def state(run_dir) -> dict:
    return json.loads((pathlib.Path(run_dir) / "checkpoint.json").read_text())


@pytest.fixture
def finished(tmp_path):
    out = tmp_path / "done"
    assert cli("fit", LINREG, "--output", out, *FAST).exit_code == 1  # 2 epochs miss mse < 1
    return out


# -- never destroyed by surprise ---------------------------------------------------------------------

def test_fit_into_a_directory_holding_a_run_is_refused_and_leaves_it_untouched(finished):
    before = snapshot(finished)
    res = cli("fit", LINREG, "--output", finished, *FAST)
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert "--resume" in line and "--overwrite" in line and "--output" in line
    assert snapshot(finished) == before


def test_overwrite_replaces_the_run(finished):
    res = cli("fit", LINREG, "--output", finished, "--overwrite", *FAST[:2], "--epochs", "1", "-q")
    assert res.exit_code == 1, res.stderr
    assert state(finished)["epoch"] == 1
    assert [json.loads(x)["epoch"] for x in (finished / "metrics.jsonl").read_text().splitlines()] == [0]
    assert not (finished / "checkpoints" / "model-0002.params").exists()


def test_default_naming_takes_the_next_free_directory_and_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = cli("fit", LINREG, *FAST)
    assert (tmp_path / "runs" / "linreg" / "checkpoint.json").exists(), first.stderr
    before = snapshot(tmp_path / "runs" / "linreg")
    second = cli("fit", LINREG, *FAST)
    assert f"{tmp_path / 'runs' / 'linreg'} holds an earlier run; this run goes to " \
           f"{tmp_path / 'runs' / 'linreg-2'}" in second.stderr
    assert state(tmp_path / "runs" / "linreg-2")["epoch"] == 2
    assert cli("fit", LINREG, *FAST).exit_code == 1 and (tmp_path / "runs" / "linreg-3" / "checkpoint.json").exists()
    assert snapshot(tmp_path / "runs" / "linreg") == before
    # the config names its latest run; --resume continues it
    res = cli("fit", LINREG, "--resume", "--epochs", "3", "-q", "--set", "data.batch_size=100")
    assert "resuming from epoch 2" in res.stderr and state(tmp_path / "runs" / "linreg-3")["epoch"] == 3
    ev = cli("evaluate", LINREG, DATA, "--json")
    assert ev.exit_code == 0, ev.stderr


def test_a_failed_run_next_to_a_finished_one_leaves_it_evaluable(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli("fit", LINREG, *FAST).exit_code == 1
    done = tmp_path / "runs" / "linreg"
    before = snapshot(done)
    bad = tmp_path / "bad.libsvm"
    bad.write_text("1 0:1\n2 1:x\n")
    res = cli("fit", LINREG, *FAST, "--set", f"data.train={bad}")
    assert res.exit_code == 1 and "bad.libsvm:2" in one_error_line(res.stderr)
    assert snapshot(done) == before
    assert cli("evaluate", done, DATA).exit_code == 0
    # an explicit --overwrite that fails on its data leaves the old run in place as well
    res = cli("fit", LINREG, *FAST, "--set", f"data.train={bad}", "--output", done, "--overwrite")
    assert res.exit_code == 1 and snapshot(done) == before


def test_keep_checkpoints_keeps_the_latest_n(tmp_path):
    def kept(out):
        return sorted(p.name for p in (out / "checkpoints").glob("model-0*"))

    cli("fit", LINREG, "--output", tmp_path / "a", "--epochs", 4, "-q", "--set", "data.batch_size=100")
    assert kept(tmp_path / "a") == ["model-0003.params", "model-0003.states", "model-0004.params", "model-0004.states"]
    cli("fit", LINREG, "--output", tmp_path / "b", "--epochs", 3, "-q", "--set", "data.batch_size=100",
        "--set", "train.keep_checkpoints=null")
    assert len(kept(tmp_path / "b")) == 6
    res = cli("fit", LINREG, "--output", tmp_path / "c", "-q", "--set", "train.keep_checkpoints=0")
    assert res.exit_code == 2 and "train.keep_checkpoints" in one_error_line(res.stderr)


# -- resume ----------------------------------------------------------------------------------------------

def test_resume_without_a_checkpoint_exits_2(tmp_path):
    res = cli("fit", LINREG, "--output", tmp_path / "empty", "--resume", *FAST)
    assert res.exit_code == 2
    assert "no checkpoint to resume from" in one_error_line(res.stderr)
    assert not (tmp_path / "empty" / "metrics.jsonl").exists()


@pytest.mark.parametrize("workers", [0, pytest.param(2, marks=pytest.mark.slow)])  # (a Ray start: ~10 s)
def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_the_directory_as_it_found_it(tmp_path, workers):
    # a bad line in the first epoch (or a distributed run's workers refusing the data, or a NaN loss) left
    # config.yaml and an empty checkpoints/, and the same command then said "holds a run that stopped before
    # its first checkpoint: start it again with --overwrite"
    if workers:
        pytest.importorskip("ray")
    bad = tmp_path / "bad.libsvm"
    lines = DATA.read_text().splitlines()
    lines[699] = "1 7:x"
    bad.write_text("\n".join(lines) + "\n")
    new, held = tmp_path / "new", tmp_path / "held"
    held.mkdir()
    (held / "notes.txt").write_text("mine")
    dist = ["--workers", workers] if workers else ["--set", "data.cache=stream"]
    for out in (new, held) if not workers else (new,):
        res = cli("fit", LINREG, "--output", out, *FAST, *dist, "--set", f"data.train={bad}")
        assert res.exit_code == 1 and ":700: feature value 'x' is not a number" in one_error_line(res.stderr)
    assert not new.exists()
    if not workers:
        assert sorted(p.name for p in held.iterdir()) == ["notes.txt"]
        assert cli("fit", LINREG, "--output", held, *FAST).exit_code == 1  # trains (2 epochs miss mse < 1)
        assert (held / "checkpoint.json").exists() and (held / "notes.txt").exists()


def test_resume_with_another_config_says_both_values_and_the_runs_own_config(finished):
    # it said only 'model.init differs ...; resume with the same config': after an upgrade that changed a
    # default (presets start at zero since session 34), the same config file differed and nothing said how
    res = cli("fit", LINREG, "--output", finished, "--resume", *FAST, "--set", "data.batch_size=7")
    assert res.exit_code == 2
    own = finished / "config.yaml"
    assert one_error_line(res.stderr) == (
        f"error: --resume: data.batch_size differs from the run's {own} (100 there, 7 here); resume with the same "
        f"config (only train.epochs may change), e.g. the run's own: sparsetrain fit {own} --output {finished} "
        "--resume")
    assert cli("fit", own, "--output", finished, "--resume", "--epochs", "3", "-q").exit_code == 1  # (mse < 1 missed)
    assert state(finished)["epoch"] == 3


def test_resume_with_checkpoint_json_missing_is_refused_and_keeps_the_checkpoints(finished):
    (finished / "checkpoint.json").unlink()
    before = snapshot(finished)
    res = cli("fit", LINREG, "--output", finished, "--resume", *FAST)
    assert res.exit_code == 1
    assert "checkpoint.json is missing" in one_error_line(res.stderr)
    assert snapshot(finished) == before


def test_resume_removes_temporary_files_of_a_killed_writer(finished):
    for d in (finished, finished / "checkpoints"):
        (d / ".tmp-abc123").write_bytes(b"half a checkpoint")
    res = cli("fit", LINREG, "--output", finished, "--resume", "--epochs", 3, "-q", "--set", "data.batch_size=100")
    assert res.exit_code in (0, 1), res.stderr
    assert not list(finished.rglob(".tmp-*"))
    assert state(finished)["epoch"] == 3


def test_checkpoint_json_has_the_same_fields_for_every_kind_of_run(finished):
    assert set(state(finished)) == {"epoch", "prefix", "rng", "roll_over", "kvstore", "workers", "servers", "best"}
    assert state(finished)["kvstore"] == "local"


# -- one run per directory ---------------------------------------------------------------------------------

def test_a_run_directory_in_use_is_refused_naming_the_holder(tmp_path):
    from sparsetrain.config import load_config
    from sparsetrain.trainer import RunDir

    out = tmp_path / "busy"
    with RunDir.open(load_config(LINREG), str(out)):
        p = subprocess.run([sys.executable, "-m", "sparsetrain.cli", "fit", LINREG, "--output", str(out), *FAST],
                           capture_output=True, text=True, env=ENV, timeout=120)
        assert p.returncode == 1
        assert f"another sparsetrain run (pid {os.getpid()}) is using this run directory" in one_error_line(p.stderr)
        res = cli("fit", LINREG, "--output", out, "--resume", *FAST)  # a --resume is refused the same way
        assert res.exit_code == 1 and f"pid {os.getpid()}" in res.stderr
    assert not (out / ".lock").exists()  # released
    assert cli("fit", LINREG, "--output", out, *FAST).exit_code == 1


def test_a_stale_lock_of_a_dead_process_does_not_block(tmp_path):
    out = tmp_path / "stale"
    out.mkdir()
    (out / ".lock").write_text("999999999\n")  # a pid file no process holds a lock on
    res = cli("fit", LINREG, "--output", out, *FAST)
    assert res.exit_code == 1 and "target mse" in res.stderr  # it trained
    assert state(out)["epoch"] == 2


def test_two_concurrent_runs_on_one_directory_do_not_interleave(tmp_path):
    out = tmp_path / "shared"
    args = [sys.executable, "-m", "sparsetrain.cli", "fit", LINREG, "--output", str(out), "--epochs", "3", "-q",
            "--engine", "graph", "--set", "data.batch_size=10"]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
             for _ in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    trained = [r for r in results if r[2] == 1 and "target mse" in r[1]]
    refused = [r for r in results if r not in trained]
    assert len(trained) == 1 and len(refused) == 1, results
    # started together: the second sees the lock; started after the first ended: it sees a finished run
    assert "is using this run directory" in refused[0][1] or "already holds a run" in refused[0][1]
    epochs = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]


# -- disk full ---------------------------------------------------------------------------------------------

def _disk_full_at(monkeypatch, suffix, nth=1):
    """The disk is full when the file ending in ``suffix`` is written the ``nth`` time (its temp file
    cannot be committed)."""
    real = os.replace
    seen = []

    def replace(src, dst, *a, **kw):
        if str(dst).endswith(suffix):
            seen.append(dst)
            if len(seen) >= nth:
                raise OSError(errno.ENOSPC, "No space left on device", src)
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)


@pytest.mark.parametrize("full_at,nth", [("model-0003.params", 1), ("model-0003.states", 1), ("checkpoint.json", 3)])
def test_disk_full_mid_run_names_the_file_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, full_at, nth):
    out = tmp_path / "full"
    _disk_full_at(monkeypatch, full_at, nth)
    res = cli("fit", LINREG, "--output", out, "--epochs", 4, "-q", "--set", "data.batch_size=100")
    assert res.exit_code == 1
    line = one_error_line(res.stderr)
    assert f"{full_at}: cannot write (no space left on device)" in line
    assert state(out)["epoch"] == 2 and not list(out.rglob(".tmp-*"))
    monkeypatch.undo()
    assert cli("evaluate", out, DATA).exit_code == 0
    res = cli("fit", LINREG, "--output", out, "--resume", "--epochs", 4, "-q", "--set", "data.batch_size=100")
    assert res.exit_code in (0, 1) and state(out)["epoch"] == 4
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2, 3]


@pytest.mark.parametrize("full_at", ["model-symbol.json", "model-0001.params", "model-0001.states", "checkpoint.json"])
def test_a_full_disk_at_the_first_checkpoint_leaves_nothing_that_blocks_the_same_command(tmp_path, monkeypatch, full_at):
    # the epoch's .params/.states stayed without checkpoint.json ('no checkpoint was written', and --resume then
    # called the directory incomplete); later config.yaml, metrics.jsonl and model-symbol.json stayed, and the
    # same command was refused ('holds a run that stopped before its first checkpoint: ... --overwrite')
    out = tmp_path / "full"
    _disk_full_at(monkeypatch, full_at)
    res = cli("fit", LINREG, "--output", out, "--epochs", 2, "-q", "--set", "data.batch_size=100")
    assert res.exit_code == 1 and one_error_line(res.stderr).endswith(
        f"{full_at}: cannot write (no space left on device); no checkpoint was written")
    assert not out.exists()  # (fit made it)
    monkeypatch.undo()
    res = cli("fit", LINREG, "--output", out, "--epochs", 2, "-q", "--set", "data.batch_size=100")
    assert res.exit_code == 1 and state(out)["epoch"] == 2  # (trains; mse < 1 missed)


def test_a_full_disk_at_the_first_checkpoint_keeps_an_existing_directory_and_its_other_files(tmp_path, monkeypatch):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    _disk_full_at(monkeypatch, "model-0001.params")
    assert cli("fit", LINREG, "--output", out, "--epochs", 2, "-q", "--set", "data.batch_size=100").exit_code == 1
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_disk_full_from_the_first_write_names_the_file(tmp_path, monkeypatch):
    _disk_full_at(monkeypatch, "config.yaml")
    res = cli("fit", LINREG, "--output", tmp_path / "full", *FAST)
    assert res.exit_code == 1
    assert "config.yaml: cannot write (no space left on device)" in one_error_line(res.stderr)


# -- Ctrl-C ------------------------------------------------------------------------------------------------

def test_ctrl_c_inside_a_numba_call_is_an_interruption_with_a_resume_hint(tmp_path, monkeypatch):
    from sparsetrain.module import Module

    real = Module.run_epoch

    def interrupted(self, data, metric, engine="auto", batch_end_callback=None, epoch=0):
        if epoch == 1:  # what numba's dispatcher makes of a KeyboardInterrupt raised inside it
            raise SystemError("CPUDispatcher(<function kernel>) returned a result with an exception set") \
                from KeyboardInterrupt()
        return real(self, data, metric, engine=engine, batch_end_callback=batch_end_callback, epoch=epoch)

    monkeypatch.setattr(Module, "run_epoch", interrupted)
    res = cli("fit", LINREG, "--output", tmp_path / "r", *FAST)
    assert res.exit_code == 130
    line = one_error_line(res.stderr)
    assert line.startswith("error: interrupted; the last complete checkpoint is ")
    assert "model-0001.params" in line and "--resume" in line


def _fit_process(out, *settings, ignore_sigint=False):
    """``sparsetrain fit`` in a child process on the streamed graph path, 50 epochs; ``ignore_sigint``:
    started as a background job of a shell without job control starts it (SIGINT ignored)."""
    preexec = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignore_sigint else None
    sets = [x for s in ("data.cache=stream", "data.batch_size=4", "optimizer={name: ftrl, learning_rate: 0.1}",
                        *settings) for x in ("--set", s)]
    return subprocess.Popen([sys.executable, "-m", "sparsetrain.cli", "fit", LINREG, "--output", str(out), "-q",
                             "--engine", "graph", "--epochs", "50", *sets],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=preexec)


def _interrupt_once(proc, marker, poll: float) -> str:
    """SIGINT to ``proc`` as soon as ``marker`` exists; its stderr once it has ended (exit 130)."""
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not marker.exists():
        time.sleep(poll)
    assert proc.poll() is None and marker.exists(), proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    return err


def test_sigint_during_a_streamed_graph_epoch_exits_130_even_when_started_with_it_ignored(tmp_path):
    # CI ran pytest as a background job of a non-interactive shell: SIGINT ignored, inherited by the
    # run, which then trained all 50 epochs (sparsetrain/interrupts.py). checkpoint.json exists once
    # epoch 0 is done, and the run's handler was in place before the run directory was locked.
    data = tmp_path / "d.libsvm"
    assert cli("gen-data", "--rows", 20000, "--features", 100, "--density", 0.05, "--out", data, "-q").exit_code == 0
    out = tmp_path / "r"
    err = _interrupt_once(_fit_process(out, f"data.train={data}", ignore_sigint=True), out / "checkpoint.json", 0.05)
    line = one_error_line(err)
    assert line.startswith("error: interrupted; the last complete checkpoint is ") and "--resume" in line
    assert "internal error" not in err and not (out / ".lock").exists() and not list(out.rglob(".tmp-*"))
    done = state(out)["epoch"]  # the run directory holds complete epochs only
    assert f"model-{done:04d}.params" in line and (out / "checkpoints" / f"model-{done:04d}.params").exists()
    assert [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()] == list(range(done))


def test_sigint_at_the_first_moment_of_a_run_exits_130_and_releases_the_run_directory(tmp_path):
    # the earliest moment a run exists: its run directory's lock (data, model and kernels not ready yet)
    out = tmp_path / "r"
    err = _interrupt_once(_fit_process(out), out / ".lock", 0.001)
    assert one_error_line(err).startswith("error: interrupted") and "internal error" not in err
    assert not (out / ".lock").exists() and not (out / "checkpoint.json").exists() and not list(out.rglob(".tmp-*"))


_LOCK_INTERRUPTED = """
import fcntl, os, signal, sys
from sparsetrain.interrupts import handling_interrupts
from sparsetrain.trainer import rundir
where = sys.argv[2]
real_flock = fcntl.flock
def flock(fd, op):  # SIGINT between creating .lock and locking it
    os.kill(os.getpid(), signal.SIGINT)
    return real_flock(fd, op)
if where == "before flock":
    fcntl.flock = flock
with handling_interrupts():
    try:
        fd = rundir._lock(sys.argv[1])
        if where == "after the lock":  # the caller interrupted before its with/try holds the lock
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        sys.exit(130)
sys.exit(0)
"""


@pytest.mark.parametrize("where", ["before flock", "after the lock"])
def test_an_interrupt_while_taking_the_run_directory_lock_leaves_no_lock_file(tmp_path, where):
    # the race the CLI test above can only hit by chance: the interrupt lands at a fixed point
    proc = subprocess.run([sys.executable, "-c", _LOCK_INTERRUPTED, str(tmp_path), where], env=ENV,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 130, proc.stderr
    assert not (tmp_path / ".lock").exists()


def test_an_interrupt_a_finalizer_drops_still_stops_the_run_after_its_epoch(tmp_path, monkeypatch):
    from sparsetrain.module import Module

    real = Module.run_epoch
    dropped = []

    class SignalledInFinalizer:
        def __del__(self):  # Python prints and drops the KeyboardInterrupt raised here
            signal.raise_signal(signal.SIGINT)

    def run_epoch(self, *args, epoch=0, **kwargs):
        if epoch == 1:
            SignalledInFinalizer()
        return real(self, *args, epoch=epoch, **kwargs)

    monkeypatch.setattr(sys, "unraisablehook", lambda u: dropped.append(u.exc_type))
    monkeypatch.setattr(Module, "run_epoch", run_epoch)
    before = signal.getsignal(signal.SIGINT)
    res = cli("fit", LINREG, "--output", tmp_path / "r", "--epochs", 4, "-q", "--set", "data.batch_size=100")
    assert dropped == [KeyboardInterrupt] and res.exit_code == 130, res.stderr
    line = one_error_line(res.stderr)
    assert line.startswith("error: interrupted; the last complete checkpoint is ") and "model-0001.params" in line
    assert state(tmp_path / "r")["epoch"] == 1 and signal.getsignal(signal.SIGINT) == before  # put back


def test_a_run_that_fails_before_writing_leaves_no_directory_it_made(tmp_path, monkeypatch):
    # a mistyped --set (a usage error, exit 2) left an empty runs/linreg/ in the working directory
    monkeypatch.chdir(tmp_path)
    bad = ("--set", "data.train=nope.libsvm")
    assert cli("fit", LINREG, *bad).exit_code == 2 and list(tmp_path.iterdir()) == []
    assert cli("fit", LINREG, *bad, "--output", tmp_path / "a" / "b").exit_code == 2
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "mine").mkdir()  # a directory the user made stays
    assert cli("fit", LINREG, *bad, "--output", tmp_path / "mine").exit_code == 2 and (tmp_path / "mine").is_dir()
    # after a run (default naming) a failed one makes and removes runs/linreg-2/, the first run stays
    assert cli("fit", LINREG, *FAST, "--set", "train.target={}").exit_code == 0
    assert cli("fit", LINREG, *bad).exit_code == 2
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["linreg"]
