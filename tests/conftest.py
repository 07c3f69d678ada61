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
