"""Compile, beside a default test run on a cold numba cache, the heaviest kernels it reaches later.

On a cold cache most of the default run is numba compiling, one kernel at a time in the pytest
process, while the second core of a 2-core machine (CI's) idles. conftest.py starts this script in a
second process when a run collects the whole default suite. It compiles, into numba's on-disk cache
and in the order the run reaches them, what the run would otherwise compile itself: the CSV and Vowpal
Wabbit parsers in float32 and float64, the engine kernels of the shipped configs (generated plans among
them; ``sparsetrain.trainer.warmup.warm_up``, as a first ``fit``'s warm-up child does), and the generated
plans of tests/test_plan.py, test_sample_weight.py, test_stream_engine.py and test_threads.py, a plan
per model structure and rule, by running those files here (their results are ignored: the run runs them
itself), the files only when the steps before them compiled something: on a warm cache (the kernels
cached for the sources as they are) those steps only load, and the run loads everything it needs from
the caches. Nothing depends on
this: a kernel the run reaches first it compiles itself, as without this script; the run ends it when it
ends (the kernel, when pytest is killed outright: :func:`end_with_parent`). ``SPARSETRAIN_TEST_PREWARM=0``
turns it off.

Usage: ``_prewarm.py DIR`` (a scratch directory, which the caller removes). A step that fails is printed
to stderr, its first line ``step: error``, which conftest shows at the end of the run: the run is only
slower for it.
"""
from __future__ import annotations

import os
import pathlib
import sys
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the shipped configs in the order the default run trains them: test_checkpoint_files trains linreg at
# batch 50 (softmax's SGD-with-momentum batch loop), test_cli every small config
CONFIGS = ["linreg.yaml", "softmax.yaml", "criteo_like.yaml", "fm.yaml", "logreg.yaml", "wide.yaml"]
# test files whose generated plans (~20, several seconds each) this process compiles by running them
PLAN_TESTS = ["test_plan.py", "test_sample_weight.py", "test_stream_engine.py", "test_threads.py"]


def warm_config(name: str) -> None:
    from sparsetrain.config import load_config
    from sparsetrain.trainer.warmup import warm_up

    warm_up(load_config(str(ROOT / "configs" / name)))


def parse_csv(tmp: pathlib.Path, dtype: str) -> None:
    from sparsetrain.io.csv_reader import CSVSchema, load_csv

    path = tmp / "t.csv"
    path.write_text('y,n1,c1,n2,c2\n1,0.5,a,2,"b,c"\n0,,x,3.25,y\n')
    schema = CSVSchema(header=True, label="y", numeric=["n1", "n2"], categorical=["c1", "c2"],
                       crosses=[["c1", "c2"]], hash_bits=6, log1p=["n2"])
    load_csv(path, schema, dtype=dtype)


def parse_vw(tmp: pathlib.Path, dtype: str) -> None:
    from sparsetrain.io.vw_reader import load_vw

    path = tmp / "t.vw"
    path.write_text("1 2 'a|u x:0.5 y |i z\n-1 |u x\n")
    load_vw(path, 8, crosses=[["u", "i"]], dtype=dtype)


def run_tests(tmp: pathlib.Path, files) -> None:
    """Run the test ``files`` in this process, results ignored (the run runs them itself): the plans they
    compile land in numba's cache and the plan cache."""
    import pytest

    os.environ["SPARSETRAIN_CACHE_DIR"] = str(tmp / "data-cache")  # not the run's disk cache
    os.environ["SPARSETRAIN_TEST_PREWARM"] = "0"
    os.chdir(tmp)  # the tests name the repository's files from ROOT; anything written to the cwd lands here
    pytest.main(["-q", "-p", "no:cacheprovider", f"--basetemp={tmp / 'pytest'}",
                 *(str(ROOT / "tests" / f) for f in files)])


def steps(tmp: pathlib.Path) -> list:
    """``(name, call)`` in the order the default run needs them: test_cli (the CSV parser for criteo_like,
    the configs), test_csv (float64 CSV), test_disk_cache (Vowpal Wabbit), then ``PLAN_TESTS`` (float64
    Vowpal Wabbit in test_sample_weight), the last only after an earlier step compiled (see :func:`main`)."""
    return [("csv float32", lambda: parse_csv(tmp, "float32")),
            *((f"config {n}", lambda n=n: warm_config(n)) for n in CONFIGS),
            ("csv float64", lambda: parse_csv(tmp, "float64")), ("vw float32", lambda: parse_vw(tmp, "float32")),
            ("vw float64", lambda: parse_vw(tmp, "float64")),
            ("tests " + " ".join(PLAN_TESTS), lambda: run_tests(tmp, PLAN_TESTS))]


def report(name: str, e: Exception) -> None:
    print(f"{name}: {type(e).__name__}: {e}\n{traceback.format_exc()}", file=sys.stderr, flush=True)


def end_with_parent() -> None:
    """Have the kernel kill this process when the one that started it ends, however that ends (Linux's
    PR_SET_PDEATHSIG): a pytest killed outright (SIGKILL, the OOM killer) cannot end it itself. Elsewhere:
    nothing (conftest ends it when the run ends)."""
    import ctypes
    import signal

    parent = os.getppid()
    try:
        if ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL) != 0:  # 1: PR_SET_PDEATHSIG
            return
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the call
        os._exit(0)


def main(argv=None) -> int:
    """Run :func:`steps`; the last (the test files, whose run costs tens of seconds even when they compile
    nothing) only when an earlier step compiled a kernel: on a warm cache the earlier steps load theirs in a
    second or two, and the run loads everything from the caches."""
    from sparsetrain.kernels.numba_cache import CompileWatch

    tmp = pathlib.Path((sys.argv[1:] if argv is None else argv)[0])
    failed = 0
    *first, last = steps(tmp)
    with CompileWatch() as watch:
        for name, call in first:
            try:
                call()
            except Exception as e:  # noqa: BLE001 - reported, the others still run
                failed += 1
                report(name, e)
    if watch.compilations or failed:
        try:
            last[1]()
        except Exception as e:  # noqa: BLE001 - reported
            failed += 1
            report(last[0], e)
    return 1 if failed else 0


if __name__ == "__main__":
    end_with_parent()
    sys.exit(main())
