"""Suite-wide settings."""
import os

# `train.threads: auto` trains with every core (Hogwild: results vary from run to run). The suite's
# equality tests (resume == uninterrupted run, engines agree, progressive metrics) need one thread;
# tests of train.threads set `threads` explicitly (tests/test_threads.py).
os.environ.setdefault("SPARSETRAIN_THREADS", "1")
