"""Suite-wide settings."""
import atexit
import os
import pathlib
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
# never use), nor an xdist worker, a run with NUMBA_DISABLE_JIT or one with a single core. It ends with the run
# (or, should pytest be killed outright, the kernel ends it: _prewarm.end_with_parent). SPARSETRAIN_TEST_PREWARM=0:
# never.
_PREWARM_MIN_TESTS = 1000
_PREWARM = pathlib.Path(__file__).with_name("_prewarm.py")
_prewarm = {}


def _prewarm_wanted(session) -> bool:
    """Whether this run starts the prewarm: it collected the whole default suite (not ``--collect-only``), it
    is not an xdist worker (each collects the whole suite, and the workers already use the cores), numba
    compiles (not ``NUMBA_DISABLE_JIT``) and this process may use a second core for it."""
    if (len(session.items) < _PREWARM_MIN_TESTS or session.config.option.collectonly
            or os.environ.get("SPARSETRAIN_TEST_PREWARM", "1") == "0" or os.environ.get("PYTEST_XDIST_WORKER")):
        return False
    from numba.core import config as numba_config

    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return not numba_config.DISABLE_JIT and cores >= 2


def _start_prewarm(script=_PREWARM) -> dict:
    """Start ``script`` (a scratch directory its argument) beside the run: ``{process, log, scratch}`` for
    :func:`_end_prewarm` (empty when it could not start). It imports the sparsetrain this process imports
    (numba's cache is kept per source file), makes its temporary files in the scratch directory (removed even
    when it is ended early) and starts no warm-up child of its own (``SPARSETRAIN_WARMUP=0``: it is the second
    process compiling; an ended prewarm would leave that child running)."""
    import importlib.util
    import subprocess
    import sys

    package = pathlib.Path(importlib.util.find_spec("sparsetrain").origin).parent
    scratch = tempfile.mkdtemp(prefix="sparsetrain-prewarm-")
    os.mkdir(os.path.join(scratch, "tmp"))
    env = {**os.environ, "PYTHONPATH": str(package.parent) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "TMPDIR": os.path.join(scratch, "tmp"), "SPARSETRAIN_WARMUP": "0"}
    log = tempfile.TemporaryFile(mode="w+")
    try:
        process = subprocess.Popen([sys.executable, str(script), scratch], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=log, env=env)
    except OSError:
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)
        return {}
    return {"process": process, "log": log, "scratch": scratch}


def pytest_collection_finish(session):
    if not _prewarm and _prewarm_wanted(session):
        _prewarm.update(_start_prewarm())
        atexit.register(_end_prewarm, _prewarm)


def _end_prewarm(started: dict) -> str:
    """End the prewarm child ``started`` if it still runs (it has usually finished long before) and remove its
    scratch directory; what it wrote to stderr (what failed in it)."""
    process, log = started.pop("process", None), started.pop("log", None)
    if process is None:
        return ""
    if process.poll() is None:
        process.kill()
    process.wait()
    shutil.rmtree(started.pop("scratch"), ignore_errors=True)
    log.seek(0)
    failed = log.read().strip()
    log.close()
    return failed


def pytest_sessionfinish(session):
    _prewarm["failed"] = _end_prewarm(_prewarm)


def pytest_terminal_summary(terminalreporter):
    failed = _prewarm.pop("failed", "")
    if failed:
        terminalreporter.write_line("tests/_prewarm.py (compiles kernels beside the run; the run only took longer), "
                                    "failed: " + failed.splitlines()[0])
