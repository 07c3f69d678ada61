"""Ctrl-C (SIGINT) during a run: it stops the run, whatever the process inherited and wherever it lands.

Python turns SIGINT into ``KeyboardInterrupt`` in the main thread, and the epoch loop turns that
into an interrupted run (exit 130, the last complete checkpoint named). Two ways the signal is
lost without this module:

* **an inherited SIG_IGN.** A command started in the background by a shell without job control
  (``bash -c 'sparsetrain fit ... &'``, a CI script, many supervisors) starts with SIGINT ignored,
  and Python then installs no handler: a ``kill -INT`` did nothing and the run trained to its last
  epoch (the CI failure of ``tests/test_rundir.py``'s streamed SIGINT test: pytest ran with SIGINT
  ignored, and its child inherited that);
* **a finalizer.** The exception is raised in whatever Python code the main thread runs when the
  signal is handled; inside a ``__del__``, a generator the garbage collector closes or a weakref
  callback, Python prints "Exception ignored" and drops it.

:func:`handling_interrupts` installs a handler that records the signal and raises
``KeyboardInterrupt``; :func:`raise_if_interrupted` (the epoch loop calls it around every epoch)
raises again an interrupt that was dropped; inside :func:`deferred` (a few steps that must happen
together, such as taking the run directory's lock and arranging its release) the handler only
records the signal and the block raises it at its end. A handler of the caller's own (an IDE's, Jupyter's) is
left in place.

SIGTERM (what ``kill``, a batch scheduler or a container runtime sends to stop a job) is handled
the same way by the command line (``handling_interrupts(sigterm=True)``), when its action is still
the default one, which ended the process at once with no word (exit 143, the lock file and
temporary files left behind): the command stops as after a Ctrl-C, a run naming the last complete
checkpoint, and exits 143 (:func:`stopped_by`). A Python program calling the library keeps
SIGTERM's own action.
"""
from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["deferred", "handling_interrupts", "raise_if_interrupted", "stopped_by"]

_depth = 0  # nesting of handling_interrupts (the CLI's and the trainer's)
_received = False  # a SIGINT arrived since the outermost handling_interrupts began
_previous = None  # the SIGINT handler to put back
_previous_term = None  # the SIGTERM handler to put back (None: SIGTERM was left alone)
_deferring = 0  # nesting of deferred()
_last_signal = signal.SIGINT  # the signal behind the latest interruption (kept after the block ends)


def _on_signal(signum, frame):
    global _received, _last_signal
    _received = True
    _last_signal = signum
    if not _deferring:
        raise KeyboardInterrupt


def stopped_by() -> tuple[str, int]:
    """What stopped the latest interrupted run and the exit code to end with: ``("interrupted", 130)``
    for SIGINT, ``("terminated", 143)`` for SIGTERM."""
    if _last_signal == signal.SIGTERM:
        return "terminated", 128 + signal.SIGTERM
    return "interrupted", 128 + signal.SIGINT


@contextlib.contextmanager
def handling_interrupts(sigterm: bool = False):
    """SIGINT raises ``KeyboardInterrupt`` and is remembered (:func:`raise_if_interrupted`) inside the
    block, even when the process started with SIGINT ignored; with ``sigterm`` (the outermost block
    decides), SIGTERM does too when its action is the default one. Outside the main thread (where
    Python delivers no signal) and under a handler of the caller's own, nothing changes."""
    global _depth, _received, _previous, _previous_term, _last_signal
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _depth == 0:
        current = signal.getsignal(signal.SIGINT)
        if current not in (signal.default_int_handler, signal.SIG_IGN):
            yield  # someone else's handler: theirs to deliver
            return
        _received = False
        _last_signal = signal.SIGINT
        _previous = signal.signal(signal.SIGINT, _on_signal)
        _previous_term = None
        if sigterm and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            _previous_term = signal.signal(signal.SIGTERM, _on_signal)
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            signal.signal(signal.SIGINT, _previous)
            if _previous_term is not None:
                signal.signal(signal.SIGTERM, _previous_term)
            _received = False


@contextlib.contextmanager
def deferred():
    """A SIGINT inside the block does not split it: the handler of :func:`handling_interrupts` records
    it and the block raises ``KeyboardInterrupt`` at its end (outside that handler, nothing changes)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring:
        raise_if_interrupted()


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if a SIGINT arrived inside :func:`handling_interrupts` (one whose
    exception a finalizer dropped: one that was not dropped has ended the block already)."""
    if _received:
        raise KeyboardInterrupt
