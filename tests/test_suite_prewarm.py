"""The suite's prewarm (tests/conftest.py starts tests/_prewarm.py beside a whole-suite run): when it starts,
and that it leaves nothing behind when it is ended early or pytest dies."""
import os
import pathlib
import signal
import subprocess
import sys
import time
import types

import pytest

import conftest  # tests/conftest.py, the module pytest loaded (tests/ is not a package)

TESTS = pathlib.Path(__file__).parent


def _session(items: int, collectonly: bool = False):
    return types.SimpleNamespace(items=[None] * items,
                                 config=types.SimpleNamespace(option=types.SimpleNamespace(collectonly=collectonly)))


def test_prewarm_starts_only_for_a_whole_suite_that_has_a_second_core(monkeypatch):
    from numba.core import config as numba_config

    for name in ("SPARSETRAIN_TEST_PREWARM", "PYTEST_XDIST_WORKER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(numba_config, "DISABLE_JIT", 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    whole = conftest._PREWARM_MIN_TESTS
    assert conftest._prewarm_wanted(_session(whole))
    assert not conftest._prewarm_wanted(_session(whole - 1))  # a few files
    assert not conftest._prewarm_wanted(_session(whole, collectonly=True))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")  # each xdist worker collects the whole suite
    assert not conftest._prewarm_wanted(_session(whole))
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    monkeypatch.setattr(numba_config, "DISABLE_JIT", 1)  # nothing to compile
    assert not conftest._prewarm_wanted(_session(whole))
    monkeypatch.setattr(numba_config, "DISABLE_JIT", 0)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # no second core to compile on
    assert not conftest._prewarm_wanted(_session(whole))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setenv("SPARSETRAIN_TEST_PREWARM", "0")
    assert not conftest._prewarm_wanted(_session(whole))


def _wait(predicate, what: str, seconds: float = 60.0) -> None:
    """Poll until ``predicate()`` (a deadline only against a hang, not a timing check)."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_an_ended_prewarm_leaves_no_temporary_files_and_started_no_warmup_child(tmp_path):
    """Ended while it works (``pytest -x`` stopping early): its temporary files (the inner run's disk-cache
    directory, a fit's warm-up config) are in the scratch directory that goes with it, and it was told not to
    start warm-up children (they would outlive it)."""
    stub = tmp_path / "stub.py"
    stub.write_text("import os, sys, tempfile, time\n"
                    "print(tempfile.mkdtemp(), os.environ.get('SPARSETRAIN_WARMUP'), file=sys.stderr, flush=True)\n"
                    "time.sleep(300)\n")
    started = conftest._start_prewarm(stub)
    process, log = started["process"], started["log"]
    _wait(lambda: os.fstat(log.fileno()).st_size > 0 or process.poll() is not None, "the stub's line")
    said = conftest._end_prewarm(started)
    made, warmup = said.split()
    assert process.returncode is not None and warmup == "0"
    assert not os.path.exists(made), f"{made} outlived the prewarm"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_prewarm_ends_when_pytest_is_killed_outright():
    """SIGKILL (or the OOM killer) gives pytest no chance to end the prewarm: the kernel ends it."""
    child = (f"import sys, time; sys.path.insert(0, {str(TESTS)!r}); import _prewarm; _prewarm.end_with_parent(); "
             "print('ready', flush=True); time.sleep(300)")
    parent = ("import os, signal, subprocess, sys\n"
              f"p = subprocess.Popen([sys.executable, '-c', {child!r}], stdout=subprocess.PIPE,\n"
              "                     stderr=subprocess.DEVNULL, text=True)\n"
              "assert p.stdout.readline() == 'ready\\n'\n"
              "print(p.pid, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    run = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    pid = int(run.stdout)
    try:
        _wait(lambda: not _running(pid), f"process {pid} to end with its parent")
    finally:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


def test_the_prewarm_runs_the_test_files_only_after_an_earlier_step_compiled(tmp_path, monkeypatch, capsys):
    """On a warm cache the parser and config steps only load their kernels, and the test files (tens of
    seconds even when they compile nothing) are not run a second time; after a step compiled (a cold cache,
    or a kernel's source edited since), or failed, they are."""
    from numba import njit

    import _prewarm

    ran = []

    def compiles():
        @njit(cache=False)
        def kernel(x):
            return x + 1

        kernel(1)
        ran.append("compiles")

    def fails():
        ran.append("fails")
        raise RuntimeError("no")

    for first, code, expected in (([("a", lambda: ran.append("loads"))], 0, ["loads"]),
                                  ([("a", lambda: ran.append("loads")), ("b", compiles)], 0,
                                   ["loads", "compiles", "files"]),
                                  ([("a", fails)], 1, ["fails", "files"])):
        ran.clear()
        monkeypatch.setattr(_prewarm, "steps", lambda tmp: [*first, ("tests", lambda: ran.append("files"))])
        assert _prewarm.main([str(tmp_path)]) == code
        assert ran == expected
    assert capsys.readouterr().err.startswith("a: RuntimeError: no")
