"""numba's on-disk kernel cache, kept honest across edits of the kernels a cached kernel calls.

numba (``cache=True``) keys a cached kernel on its own source file's timestamp only. The fused
epoch kernels call the optimizer's step functions in :mod:`sparsetrain.kernels.optim`; after an
edit there, numba would still load the old compiled epoch loop. :func:`drop_stale_cache` removes
the cache index of such kernels when a dependency is newer. It reads a private attribute of
numba's dispatcher (``_cache._cache_file._index_path``): this module is the one place that does,
and any failure (a numba version without it) leaves the cache alone.
"""
from __future__ import annotations

import os


def drop_stale_cache(dispatchers, dependencies) -> None:
    """Delete the on-disk cache index of ``dispatchers`` when a module they call is newer.

    numba invalidates a cached kernel when its own source file changes, not when a kernel it
    calls (here the optimizer rules) changes; without this, editing ``kernels/optim.py`` would
    leave the fused loop running the old rules. Best effort: any failure leaves the cache alone.
    """
    try:
        newest = max(os.path.getmtime(m.__file__) for m in dependencies)
        for d in dispatchers:
            index = d._cache._cache_file._index_path
            if os.path.exists(index) and os.path.getmtime(index) < newest:
                os.remove(index)
    except (AttributeError, OSError, ValueError):
        pass
