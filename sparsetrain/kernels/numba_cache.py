"""numba's on-disk kernel cache: kept honest across edits of the kernels a cached kernel calls, and
watched, so a run can say when it compiles (a cache miss) and how long that took.

numba (``cache=True``) keys a cached kernel on its own source file only (its timestamp and size; a
hash of its contents in recent versions). The fused
epoch kernels call the optimizer's step functions in :mod:`sparsetrain.kernels.optim`; after an
edit there, numba would still load the old compiled epoch loop. :func:`drop_stale_cache` removes
the cache index of such kernels when a dependency is newer. It reads a private attribute of
numba's dispatcher (``_cache._cache_file._index_path``, and its ``_load_index()`` behind :func:`in_disk_cache`
and :func:`load_cached`):
this module is the one place that does,
and any failure (a numba version without it) leaves the cache alone.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import threading
import time


def _index_path(dispatcher) -> str:
    """The file of numba's on-disk cache index of ``dispatcher`` (raises AttributeError when numba has
    no such attribute)."""
    return dispatcher._cache._cache_file._index_path


def in_disk_cache(dispatcher) -> bool:
    """Whether numba's on-disk cache holds ``dispatcher`` (some signature of it compiled before) for its
    source file as it is now: an index written for an older version of the file, which numba ignores, does
    not count. True when that cannot be told (a numba version without the attributes)."""
    try:
        return bool(dispatcher._cache._cache_file._load_index())  # {} for no index or a stale one
    except AttributeError:
        return True
    except (OSError, EOFError, ValueError, pickle.UnpicklingError):  # a damaged index: numba compiles again
        return False


def load_cached(dispatcher, keep=None) -> None:
    """Load the signatures of ``dispatcher`` that numba's on-disk cache holds for this machine (those
    ``keep(signature)`` is true of: a tuple of numba types), as its first call would (a big kernel's first
    load takes most of a second in a fresh process). Nothing when there are none, or when that cannot be
    read (a numba version without the attributes)."""
    try:
        magic = dispatcher.targetctx.codegen().magic_tuple()
        signatures = [key[0] for key in dispatcher._cache._cache_file._load_index() if key[1] == magic]
    except (AttributeError, IndexError, TypeError, OSError, EOFError, ValueError, pickle.UnpicklingError):
        return
    for sig in signatures:
        if keep is None or keep(sig):
            dispatcher.compile(sig)


def drop_stale_cache(dispatchers, dependencies) -> None:
    """Delete the on-disk cache index of ``dispatchers`` when a module they call is newer.

    numba invalidates a cached kernel when its own source file changes, not when a kernel it
    calls (here the optimizer rules) changes; without this, editing ``kernels/optim.py`` would
    leave the fused loop running the old rules. Best effort: any failure leaves the cache alone.
    """
    try:
        newest = max(os.path.getmtime(m.__file__) for m in dependencies)
        for d in dispatchers:
            index = _index_path(d)
            if os.path.exists(index) and os.path.getmtime(index) < newest:
                os.remove(index)
    except (AttributeError, OSError, ValueError):
        pass


def _kernels(module) -> list:
    """The numba kernels (and intrinsics) ``module`` defines."""
    from numba.core.dispatcher import Dispatcher
    from numba.core.extending import _Intrinsic

    return [v for v in vars(module).values() if isinstance(v, (Dispatcher, _Intrinsic))
            and getattr(v, "__module__", None) == module.__name__]


def kernel_callees(module) -> set:
    """The modules of ``module``'s package with kernels that ``module`` may call: found in its names (a kernel,
    a numba intrinsic, or a module imported from there)."""
    import inspect
    import sys

    from numba.core.dispatcher import Dispatcher
    from numba.core.extending import _Intrinsic

    package, found = module.__name__.split(".")[0], set()
    for value in vars(module).values():
        if inspect.ismodule(value):
            other = value
        elif isinstance(value, (Dispatcher, _Intrinsic)):
            other = sys.modules.get(getattr(value, "__module__", None) or "")
        else:
            continue
        if other is not None and other is not module and other.__name__.split(".")[0] == package and _kernels(other):
            found.add(other)
    return found


def drop_stale_callers(name: str) -> None:
    """:func:`drop_stale_cache` for the cached kernels of module ``name`` against every module whose kernels
    they call, directly or through another (:func:`kernel_callees`). A kernel module that calls kernels of
    another file calls this as its last line, ``drop_stale_callers(__name__)`` (before any of its kernels can
    run): after an edit of a shared helper (the parsers' number parser, the hashing, the scans), numba would
    otherwise load the kernels compiled with the old one. On a cold cache there is no index to drop."""
    import sys

    module = sys.modules[name]
    seen, todo = set(), [module]
    while todo:
        for other in kernel_callees(todo.pop()) - seen - {module}:
            seen.add(other)
            todo.append(other)
    cached = [k for k in _kernels(module) if hasattr(getattr(k, "_cache", None), "_cache_file")]
    if seen and cached:
        drop_stale_cache(cached, seen)


class CompileWatch:
    """Notices numba compiling (a kernel missing from the on-disk cache) while it is entered.

    ``with CompileWatch(on_start, on_end) as watch:`` calls ``on_start()`` when a compilation
    begins and ``on_end(seconds)`` when it ends (``seconds``: that compilation, nested ones
    included; the callbacks see only the outermost), and ``watch.seconds`` adds up the wall time
    spent compiling. A kernel loaded from the cache is not a compilation and is not counted. It
    listens to numba's ``numba:compile`` event, which numba fires from whichever thread compiles.
    """

    def __init__(self, on_start=None, on_end=None):
        self.on_start = on_start
        self.on_end = on_end
        self.seconds = 0.0
        self.compilations = 0
        self._depth = 0
        self._began = 0.0
        self._lock = threading.Lock()
        self._listener = None

    def _started(self) -> None:
        with self._lock:
            self._depth += 1
            outermost = self._depth == 1
            if outermost:
                self._began = time.perf_counter()
        if outermost and self.on_start is not None:
            self.on_start()

    def _ended(self) -> None:
        with self._lock:
            self._depth -= 1
            outermost = self._depth == 0
            if outermost:
                took = time.perf_counter() - self._began
                self.seconds += took
                self.compilations += 1
        if outermost and self.on_end is not None:
            self.on_end(took)

    @contextlib.contextmanager
    def counted(self):
        """``with watch.counted():`` a wait for kernels compiled elsewhere (another process), seen and
        timed as a compilation."""
        self._started()
        try:
            yield
        finally:
            self._ended()

    def __enter__(self) -> "CompileWatch":
        from numba.core import event

        watch = self

        class _Listener(event.Listener):
            def on_start(self, ev):
                watch._started()

            def on_end(self, ev):
                watch._ended()

        self._listener = _Listener()
        event.register("numba:compile", self._listener)
        return self

    def __exit__(self, *exc) -> None:
        from numba.core import event

        event.unregister("numba:compile", self._listener)
        self._listener = None
