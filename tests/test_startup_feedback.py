"""Start-up feedback: numba compilations are noticed (CompileWatch), reported apart from training
(``compile_seconds``; an epoch's ``seconds`` and samples/s exclude them), and slow steps show a status
line (a spinner on a terminal, a plain line otherwise)."""
from __future__ import annotations

import io
import json
import pathlib

import numpy as np
from click.testing import CliRunner
from numba import njit
from rich.console import Console

from sparsetrain.cli import COMPILING, StatusLine, main
from sparsetrain.kernels.numba_cache import CompileWatch

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = ROOT / "configs" / "linreg.yaml"


def fresh_kernel():
    """A kernel numba has never compiled (no disk cache): calling it compiles it."""
    @njit(cache=False)
    def inner(x):
        return x + 1.0

    @njit(cache=False)
    def outer(x):
        return inner(x) * 2.0

    return outer


def test_compile_watch_sees_a_compilation_once_with_its_time():
    events = []
    kernel = fresh_kernel()
    with CompileWatch(lambda: events.append("start"), lambda s: events.append(s)) as watch:
        assert kernel(1.0) == 4.0
        assert kernel(2.0) == 6.0  # compiled already: nothing more
    assert events[0] == "start" and len(events) == 2  # the nested compilation of `inner` is inside `outer`'s
    assert events[1] > 0 and watch.seconds == events[1] and watch.compilations == 1
    kernel(np.float32(1.0))  # after the watch: not seen
    assert watch.compilations == 1


def test_compile_seconds_come_out_of_the_epoch_time(tmp_path):
    from sparsetrain.config import load_config
    from sparsetrain.trainer import Reporter, RunDir, run_epochs

    class Executor:  # an epoch that compiles a kernel and says it took 100 s in all
        module = None
        epoch_rows = 10
        batches = 1
        batch_rows = "1"

        def run_epoch(self, epoch, reporter):
            fresh_kernel()(1.0)
            return {"epoch": epoch, "mse": 1.0, "samples": 10, "seconds": 100.0, "data_seconds": 0.0}

        def save(self, prefix, epoch):
            pathlib.Path(f"{prefix}-{epoch:04d}.params").write_bytes(b"")

        def checkpoint_fields(self):
            return {}

    cfg = load_config(str(LINREG), ["train.epochs=1"])
    with RunDir.open(cfg, str(tmp_path / "r")) as run, CompileWatch() as watch:
        run.begin(cfg.to_yaml(run.path))
        history = run_epochs(cfg, run, Executor(), Reporter(), [], compile_watch=watch)
    (record,) = history
    assert record["compile_seconds"] == round(watch.seconds, 6) > 0
    assert record["seconds"] == round(100.0 - watch.seconds, 6)


def test_fit_records_compile_seconds_and_says_it(tmp_path):
    res = CliRunner().invoke(main, ["fit", str(LINREG), "--output", str(tmp_path / "r"), "--epochs", "2"],
                             catch_exceptions=False)
    records = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["compile_seconds"] >= 0 for r in records) and len(records) == 2
    compiled = sum(r["compile_seconds"] for r in records)
    assert ("compile (one time)" in res.stdout) == (compiled > 0)


def test_status_line_without_a_terminal_prints_each_step_once_innermost_first():
    out = io.StringIO()
    status = StatusLine(Console(file=out, force_terminal=False), spinner=False)
    status.push("loading data.libsvm")
    status.push(COMPILING)
    status.pop(COMPILING)
    status.push(COMPILING)  # a second compilation in the same run: not repeated
    status.pop(COMPILING)
    status.pop("loading data.libsvm")
    assert not status.active
    assert out.getvalue().splitlines() == ["loading data.libsvm", COMPILING]


def test_status_line_on_a_terminal_is_a_spinner_that_goes_away():
    out = io.StringIO()
    status = StatusLine(Console(file=out, force_terminal=True), spinner=True)
    status.push(COMPILING)
    assert status.active
    status.pop(COMPILING)
    assert not status.active


def test_warm_up_compiles_the_runs_engine_kernels_on_synthetic_rows():
    # what the warm-up child runs: one compiled epoch of the config's model on rows of its shapes
    from sparsetrain.config import load_config
    from sparsetrain.trainer import warmup

    assert warmup.warm_up(load_config(str(LINREG))) == "compiled"
    assert warmup.warm_up(load_config(str(LINREG)), "graph") == "graph"


def test_warm_up_starts_only_when_the_parser_is_not_compiled(monkeypatch):
    from sparsetrain.config import load_config
    from sparsetrain.trainer import warmup

    cfg = load_config(str(LINREG))
    assert warmup.start(cfg, "auto") is None  # the suite compiled the LibSVM parser already
    monkeypatch.setattr(warmup, "_cached", lambda module, name: False)
    assert warmup.start(cfg, "graph") is None
    monkeypatch.setenv("SPARSETRAIN_WARMUP", "0")
    assert warmup.start(cfg, "auto") is None


def test_a_kernel_cached_for_an_older_source_file_is_not_in_the_disk_cache(tmp_path):
    """numba ignores a cache index written for another version of a kernel's source file (an edit of it):
    in_disk_cache, which decides whether fit starts a warm-up child and the suite a prewarm, says so too (it
    said 'cached' after an edit of the parser, and the first run compiled it alone)."""
    import importlib.util

    from sparsetrain.kernels.numba_cache import in_disk_cache

    source = tmp_path / "kern.py"
    source.write_text("from numba import njit\n\n\n@njit(cache=True)\ndef f(x):\n    return x + 1\n")

    def load():  # the module as a new process would import it (its cache is keyed on the module's name)
        spec = importlib.util.spec_from_file_location("kern", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.f

    assert not in_disk_cache(load())
    load()(1)  # compiled and cached
    assert in_disk_cache(load())
    source.write_text(source.read_text() + "# edited\n")  # (numba's stamp: the file's size and time, or hash)
    assert not in_disk_cache(load())


def test_load_cached_loads_the_signatures_in_the_disk_cache_without_a_call(tmp_path):
    """A streamed run loads its parser's kernel before the first epoch (load_parser): the first chunk waited for
    the load (most of a second), which the epoch's data_seconds counted as data time."""
    import importlib.util

    from sparsetrain.kernels.numba_cache import load_cached

    source = tmp_path / "kern2.py"
    source.write_text("from numba import njit\n\n\n@njit(cache=True)\ndef f(x):\n    return x + 1\n")

    def load():  # the module as a new process would import it
        spec = importlib.util.spec_from_file_location("kern2", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.f

    fresh = load()
    load_cached(fresh)  # nothing cached yet: nothing loaded, nothing compiled
    assert not fresh.overloads
    fresh(1), fresh(1.5)  # compiled and cached: two signatures
    fresh = load()
    load_cached(fresh)
    assert len(fresh.overloads) == 2 and not fresh.stats.cache_misses
    fresh = load()
    load_cached(fresh, lambda sig: str(sig[0]) == "float64")  # (a run loads its data dtype's only)
    assert [str(sig[0]) for sig in fresh.overloads] == ["float64"]


def test_a_streamed_run_loads_its_parser_before_the_first_epoch(tmp_path, monkeypatch):
    from sparsetrain.trainer import warmup

    calls = []
    monkeypatch.setattr(warmup, "load_parser", lambda cfg: calls.append(cfg.data.cache))
    for cache in ("stream", "memory"):
        res = CliRunner().invoke(main, ["fit", str(LINREG), "-q", "--epochs", "1", "--output", str(tmp_path / cache),
                                        "--set", f"data.cache={cache}", "--set", "train.target={}"])
        assert res.exit_code == 0, res.output
    assert calls == ["stream"]  # (data read into memory loads it as it is parsed)


def test_a_kernel_is_compiled_again_after_an_edit_of_a_kernel_it_calls_from_another_file(tmp_path, monkeypatch):
    """numba's cache of ``g`` knows only g's file: after an edit of ``f`` (another file) it loads g compiled
    with the old f, unless g's module ends with ``drop_stale_callers(__name__)``, as each parser kernel module
    that calls the number parser, the hashing or the scans in another file does (test below)."""
    import importlib
    import os
    import sys

    package = tmp_path / "stalepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    helper = package / "helper.py"
    helper.write_text("from numba import njit\n\n\n@njit(cache=True)\ndef g_helper(x):\n    return x + 1\n")
    # the same file with and without the call (an edit of it would make numba compile g again anyway)
    (package / "user.py").write_text(
        "import os\n\nfrom numba import njit\n\nfrom sparsetrain.kernels.numba_cache import drop_stale_callers\n"
        "from .helper import g_helper\n\n\n@njit(cache=True)\ndef g(x):\n    return g_helper(x) * 10\n\n\n"
        "if os.environ.get('STALEPKG_DROP'):\n    drop_stale_callers(__name__)\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    def fresh_user(drop: bool):  # the modules as a new process imports them
        for name in ("stalepkg.user", "stalepkg.helper", "stalepkg"):
            sys.modules.pop(name, None)
        monkeypatch.setenv("STALEPKG_DROP", "1" if drop else "")
        return importlib.import_module("stalepkg.user")

    assert fresh_user(True).g(1) == 20  # compiled and cached
    helper.write_text(helper.read_text().replace("x + 1", "x + 2"))
    later = os.path.getmtime(helper) + 10  # (a file system's coarse timestamps: surely after the cache)
    os.utime(helper, (later, later))
    assert fresh_user(False).g(1) == 20  # numba alone: the old helper
    assert fresh_user(True).g(1) == 30


def test_every_parser_kernel_module_that_calls_another_file_drops_its_stale_cache():
    # the explicit last line of each io kernel module whose cached kernels call kernels of another file
    import importlib

    from sparsetrain.kernels.numba_cache import _kernels, kernel_callees

    calling = []
    for path in sorted((ROOT / "sparsetrain" / "io").glob("_*.py")):
        module = importlib.import_module(f"sparsetrain.io.{path.stem}")
        if kernel_callees(module) and any(hasattr(getattr(k, "_cache", None), "_cache_file") for k in _kernels(module)):
            calling.append(path.stem)
            assert path.read_text().rstrip().endswith("\ndrop_stale_callers(__name__)"), path.name
    assert {"_libsvm_kernels", "_csv_kernels", "_vw_kernels"} <= set(calling)


def test_a_first_run_waits_for_the_warm_up_and_trains_as_without_it(tmp_path, monkeypatch):
    # the child compiles the engine's kernels while the run parses; the run waits for it before its
    # first epoch (counted as compile time) and trains exactly as a run without it
    from sparsetrain.config import load_config
    from sparsetrain.trainer import fit, warmup

    started = []
    real_start = warmup.start

    def start(cfg, engine):
        warm = real_start(cfg, engine)
        started.append(warm)
        return warm

    cfg = load_config(str(LINREG), ["train.epochs=2"])
    plain = fit(cfg, str(tmp_path / "plain"))
    monkeypatch.setattr(warmup, "_cached", lambda module, name: False)
    monkeypatch.setattr(warmup, "start", start)
    warmed = fit(cfg, str(tmp_path / "warm"))
    assert started[0] is not None and started[0].process.returncode == 0
    assert not pathlib.Path(started[0].config_path).exists()
    assert [r["mse"] for r in warmed.history] == [r["mse"] for r in plain.history]
    assert warmed.history[0]["compile_seconds"] > 0


def test_the_loading_status_line_names_stdin_as_messages_do(tmp_path):
    # it said 'loading -' (errors and predict's status line say <stdin>); a process of its own: stdin is fd 0
    import os
    import subprocess
    import sys

    code = ("import sparsetrain.cli_fit_display as d; d.BUSY_AFTER = 0.0\n"
            "from sparsetrain.cli import main; main()")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([sys.executable, "-c", code, "fit", str(LINREG), "--epochs", "1", "--output",
                          str(tmp_path / "r"), "--set", "data.train=[-]", "--set", "data.zero_based=true", "--set",
                          "train.target={}"], input=(ROOT / "data" / "linreg.libsvm").read_bytes(),
                         capture_output=True, env=env)
    err = res.stderr.decode()
    assert res.returncode == 0, err
    assert "loading <stdin>" in err and "loading -" not in err, err
