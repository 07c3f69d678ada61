"""Suite-wide settings."""
import atexit
import os
import shutil
import tempfile

# `train.threads: auto` trains with every core (Hogwild: results vary from run to run). The suite's
# equality tests (resume == uninterrupted run, engines agree, progressive metrics) need one thread;
# tests of train.threads set `threads` explicitly (tests/test_threads.py).
os.environ.setdefault("SPARSETRAIN_THREADS", "1")

# `data.cache: disk` (and `auto`) write parsed data under $SPARSETRAIN_CACHE_DIR: the suite keeps its
# own, so it never touches the user's cache and two suites running at once never share (or truncate)
# a memory-mapped cache file. Tests of the cache itself set their own directory.
_DISK_CACHE = tempfile.mkdtemp(prefix="sparsetrain-test-cache-")
os.environ.setdefault("SPARSETRAIN_CACHE_DIR", _DISK_CACHE)
atexit.register(shutil.rmtree, _DISK_CACHE, ignore_errors=True)

# A run of the whole default suite starts tests/_prewarm.py beside it: on a cold numba cache it compiles the
# heaviest kernels the run reaches later (the parsers, the shipped configs' engine kernels, the generated plans
# of test_plan and three other files) on the second core while this process works through the tests before them;
# the run then loads them from the caches. A run of a few files does not (it would compile what those files
# never use). SPARSETRAIN_TEST_PREWARM=0: never.
_PREWARM_MIN_TESTS = 1000
_prewarm = {}


def pytest_collection_finish(session):
    if (_prewarm or len(session.items) < _PREWARM_MIN_TESTS or session.config.option.collectonly
            or os.environ.get("SPARSETRAIN_TEST_PREWARM", "1") == "0"):
        return
    import importlib.util
    import pathlib
    import subprocess
    import sys

    # the child must import the sparsetrain this process imports: numba's cache is kept per source file
    package = pathlib.Path(importlib.util.find_spec("sparsetrain").origin).parent
    env = {**os.environ, "PYTHONPATH": str(package.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = tempfile.TemporaryFile(mode="w+")
    scratch = tempfile.mkdtemp(prefix="sparsetrain-prewarm-")
    try:
        process = subprocess.Popen([sys.executable, str(pathlib.Path(__file__).with_name("_prewarm.py")), scratch],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=env)
    except OSError:
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
        return
    _prewarm.update(process=process, log=log, scratch=scratch)
    atexit.register(_end_prewarm)


def _end_prewarm() -> str:
    """End the prewarm child if it still runs (it has usually finished long before); what failed in it."""
    process, log = _prewarm.pop("process", None), _prewarm.pop("log", None)
    if process is None:
        return ""
    if process.poll() is None:
        process.kill()
    process.wait()
    shutil.rmtree(_prewarm.pop("scratch"), ignore_errors=True)
    log.seek(0)
    failed = log.read().strip()
    log.close()
    return failed


def pytest_sessionfinish(session):
    _prewarm["failed"] = _end_prewarm()


def pytest_terminal_summary(terminalreporter):
    failed = _prewarm.pop("failed", "")
    if failed:
        terminalreporter.write_line("tests/_prewarm.py (compiles kernels beside the run; the run only took longer), "
                                    "failed: " + failed.splitlines()[0])
