"""A first run's engine kernels compiled in a second process while this one compiles the parser
(issue 15's cold start).

On a machine where numba has not compiled sparsetrain's kernels yet, a first ``fit`` spends most of
its time compiling: the data parser's kernels (a few seconds), then the engine's (a few more). The
two do not depend on each other, and numba compiles one function at a time in a process. So when
the parser of the training data is not in numba's on-disk cache (the only case where this pays:
otherwise the run reaches the engine at once), :func:`start` launches ``python -m
sparsetrain.trainer.warmup`` with the run's resolved config before the data is read. The child
binds the model on a few synthetic rows of the config's shapes and runs one compiled epoch: numba
compiles the engine's kernels with the argument types the real run uses and writes them to its
cache (``cache=True``; a generated plan is written to the plan cache the same way). Before its
first epoch the run calls :meth:`Warmup.wait`; its kernels then load from the cache. The wait is
counted as compile time (``compile_seconds``).

Nothing depends on the child: if it fails, or compiles something else (e.g. the run's data turns out
to need another variant), the run compiles what is missing itself. ``SPARSETRAIN_WARMUP=0`` turns it
off.
"""
from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
import tempfile

__all__ = ["Warmup", "load_parser", "start", "started", "warm_up"]

# the kernel that parses each text format: when it is in numba's cache, the parser is warm
_PARSERS = {"libsvm": ("sparsetrain.io._libsvm_kernels", "_parse_lines"),
            "csv": ("sparsetrain.io._csv_kernels", "parse_csv_chunk"),
            "vw": ("sparsetrain.io._vw_kernels", "parse_vw_chunk")}
_ROWS = 4  # batches of the synthetic epoch (of data.batch_size rows each)


def _cached(module: str, name: str) -> bool:
    """Whether numba's on-disk cache holds kernel ``module.name`` (unknown: True)."""
    from ..kernels.numba_cache import in_disk_cache

    try:
        return in_disk_cache(getattr(importlib.import_module(module), name))
    except (AttributeError, ImportError):
        return True


def load_parser(cfg) -> None:
    """Load the training data's parser kernel from numba's cache now, before a streamed run's first epoch:
    its load (most of a second in a fresh process) was counted in that epoch's ``data_seconds``, as the
    first chunk waited for it. (Data read into memory loads it as it is parsed, before training.) Only the
    signature of the run's data dtype: the other's load costs tens of ms (its floating arrays: the data's
    dtype and float64 for the labels)."""
    from numba import types

    from ..kernels.numba_cache import load_cached
    from .data import data_dtype

    parser = _PARSERS.get(cfg.data_format())
    if parser is None:
        return
    floats = {"float64", data_dtype(cfg)}

    def of_the_run(sig) -> bool:
        return {str(a.dtype) for a in sig if isinstance(a, types.Array) and isinstance(a.dtype, types.Float)} == floats

    load_cached(getattr(importlib.import_module(parser[0]), parser[1]), of_the_run)


class Warmup:
    """A running warm-up child (see the module doc)."""

    def __init__(self, process: subprocess.Popen, config_path: str):
        self.process = process
        self.config_path = config_path

    def wait(self, timeout: float = 600.0) -> None:
        """Until the child has compiled (or failed, or ``timeout`` seconds passed: it is then ended)."""
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.close()
        self._remove()

    def close(self) -> None:
        """End the child if it still runs (the run stopped before its first epoch)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._remove()

    def _remove(self) -> None:
        try:
            os.remove(self.config_path)
        except OSError:
            pass


def start(cfg, engine: str) -> Warmup | None:
    """A :class:`Warmup` compiling ``cfg``'s engine kernels beside this process, or None when it would not
    pay: the graph engine is asked for, warm-up is off, or the training data's parser is already compiled."""
    if engine == "graph" or os.environ.get("SPARSETRAIN_WARMUP", "1") == "0":
        return None
    try:
        fmt = cfg.data.format_of(cfg.train_files()[0])
    except Exception:  # a generated or unusual source: leave it to the run
        return None
    parser = _PARSERS.get(fmt)
    if parser is None or _cached(*parser):
        return None
    fd, path = tempfile.mkstemp(prefix="sparsetrain-warmup-", suffix=".yaml")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(cfg.to_yaml())
    try:
        process = subprocess.Popen([sys.executable, "-m", "sparsetrain.trainer.warmup", path],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except OSError:
        os.remove(path)
        return None
    return Warmup(process, path)


@contextlib.contextmanager
def started(cfg, engine: str):
    """``with started(cfg, engine) as warm:`` :func:`start`'s :class:`Warmup` (or None), ended on exit."""
    warm = start(cfg, engine)
    try:
        yield warm
    finally:
        if warm is not None:
            warm.close()


def warm_up(cfg, engine: str = "auto") -> str:
    """One compiled epoch of ``cfg``'s model over synthetic rows of its shapes (what the child runs):
    the engine that ran (``"graph"``: nothing was compiled)."""
    import numpy as np

    from ..config.factories import make_optimizer
    from ..io import NDArrayIter
    from ..module import Module
    from ..ndarray import sparse
    from .data import data_dtype
    from .metrics import make_metric

    rows = _ROWS * cfg.data.batch_size
    dtype = np.dtype(data_dtype(cfg))
    cols = np.arange(rows, dtype=np.int64) % cfg.num_features
    x = sparse.csr_matrix((np.full(rows, 0.5, dtype), cols, np.arange(rows + 1, dtype=np.int64)),
                          shape=(rows, cfg.num_features), dtype=dtype)
    it = NDArrayIter(x, np.zeros(rows, dtype), cfg.data.batch_size, data_name=cfg.data_name,
                     label_name=cfg.label_name)
    module = Module(cfg.build_symbol(), data_names=[cfg.data_name], label_names=[cfg.label_name])
    module.bind(it.provide_data, it.provide_label, for_training=True)
    module.init_params(initializer=cfg.initializer())
    module.init_optimizer(kvstore="local", optimizer=make_optimizer(cfg))
    metric = make_metric(cfg.metrics)
    name, _ = module.choose_engine(engine, it, metric, False)
    if name == "compiled":
        module.run_epoch(it, metric, engine="compiled")
    return name


def main(argv=None) -> int:
    from ..config import load_config

    argv = sys.argv[1:] if argv is None else argv
    cfg = load_config(argv[0])
    warm_up(cfg, cfg.train.engine)
    return 0


if __name__ == "__main__":
    sys.exit(main())
