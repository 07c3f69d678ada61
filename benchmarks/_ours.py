"""Adapters from the harness to sparsetrain's own benchmark entry points.

* ``parse``       -> ``benchmarks/parse.py:run(path)``        (the data issue)
* ``train``       -> the compiled engine's fused epoch (``LinearEpochRunner``, the kernel API
                     ``benchmarks/compiled_epoch.py`` times) on the harness's own data file
* ``seed_module`` -> ``benchmarks/seed_loop.py:run()``         (the seed loop on ``mod.Module``)
* ``seed_cli``    -> ``sparsetrain fit configs/linreg.yaml --engine compiled|graph``

Each entry point may not exist yet while the others are being written: a missing module, a
missing attribute of ``sparsetrain`` or a missing config is reported as ``pending`` (with the
reason), never as a crash. The keyword arguments we pass are filtered by the callee's signature
(unless it takes ``**kwargs``); the result dict is read with a few key aliases, see README.md.
"""
from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import _data
from benchmarks._child import Unavailable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PARSE_SECONDS_KEYS = ("parse_seconds", "seconds", "time", "elapsed")
MBPS_KEYS = ("mb_per_s", "mb_s", "mbps", "MB/s", "throughput_mb_s")


def _import(modname: str, what: str):
    path = os.path.join(ROOT, "benchmarks", modname.split(".")[-1] + ".py")
    if not os.path.exists(path):
        raise Unavailable(f"{os.path.relpath(path, ROOT)} not written yet ({what})", "pending")
    import importlib

    try:
        return importlib.import_module(modname)
    except (ImportError, AttributeError) as e:
        raise Unavailable(f"{modname} does not import yet: {type(e).__name__}: {e}",
                          "pending") from e


def call_filtered(fn, kwargs: dict):
    """Call ``fn`` with the subset of ``kwargs`` its signature accepts."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return fn(**kwargs)
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn(**kwargs)
    return fn(**{k: v for k, v in kwargs.items() if k in params})


def pick(d: dict, keys, default=None):
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def _pending_on_missing(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except Unavailable:
        raise
    except (ImportError, AttributeError, NotImplementedError) as e:
        raise Unavailable(f"{type(e).__name__}: {e}", "pending") from e


def parse(path: str, num_features: int) -> dict:
    mod = _import("benchmarks.parse", "the data issue's parse benchmark")
    size = os.path.getsize(path)
    kw = {"path": path, "num_features": num_features, "peers": False, "repeat": 1}
    res = _pending_on_missing(call_filtered, mod.run, kw)
    if isinstance(res.get("ours"), dict):
        res = dict(res["ours"], others={k: v for k, v in res.items() if k != "ours"})
    sec = pick(res, PARSE_SECONDS_KEYS)
    mbps = pick(res, MBPS_KEYS)
    if sec is None and mbps is None:
        raise ValueError(f"benchmarks/parse.py:run returned neither seconds nor MB/s: {res!r}")
    if mbps is None:
        mbps = size / 1e6 / sec
    if sec is None:
        sec = size / 1e6 / mbps
    return {"parse_seconds": float(sec), "mb_per_s": float(mbps), "bytes": size, "raw": res}


def _runner_api():
    try:
        from sparsetrain import optimizer as opt_mod
        from sparsetrain.engines.compiled import LinearEpochRunner
        from sparsetrain.ndarray import NDArray, RowSparseNDArray
    except (ImportError, AttributeError) as e:
        raise Unavailable(f"compiled engine kernels do not import yet: {type(e).__name__}: {e}",
                          "pending") from e
    return opt_mod, LinearEpochRunner, NDArray, RowSparseNDArray


def train(path: str, task: str, lr: float, batch_size: int, epochs: int = 1,
          num_features: int | None = None, threads="auto", **_) -> dict:
    """One epoch of the compiled engine's fused kernel on the harness's data.

    ``benchmarks/compiled_epoch.py:run`` generates its own in-memory data, so for a side-by-side
    run on the very file the peers read this drives the same kernel API as that script
    (``LinearEpochRunner.fit_epoch`` with SGD, ``rescale_grad = 1/batch``, lazy row-sparse
    update, MSE accumulated per batch). Parameters start at zero like the peers'; the kernels are
    loaded/compiled by a throw-away call on separate parameters before the timed epoch. Every row
    is used (the last batch is short: it keeps ``rescale_grad = 1/batch`` as MXNet's pad would).
    ``threads``: as ``train.threads`` — ``"auto"`` (the product's default: one thread per core,
    Hogwild, :mod:`sparsetrain.engines.compiled.threads`; one thread on fewer rows than
    :mod:`~sparsetrain.engines.compiled.thread_count`'s ``AUTO_MIN_ROWS``) or a number (1: the one-thread kernel).
    """
    import numpy as np

    opt_mod, LinearEpochRunner, NDArray, RowSparseNDArray = _runner_api()
    from sparsetrain.engines.compiled.epoch_loop import CHUNK_ROWS, EpochResult, nonfinite
    from sparsetrain.optimizer_buffers import weight_buffer
    from sparsetrain.engines.compiled.thread_count import resolve_threads
    from sparsetrain.engines.compiled.threads import ThreadTeam

    data, indices, indptr, y, (n, d) = _data.load_arrays(path)
    n_threads = resolve_threads(threads, rows=n)  # as fit: auto is one thread on a small file
    team = ThreadTeam(n_threads) if n_threads > 1 else None
    t0 = time.perf_counter()
    X = (data, indices.astype(np.int64), indptr.astype(np.int64))
    yv = y.astype(np.float32)
    prep_s = time.perf_counter() - t0
    output = "LinearRegressionOutput" if task == "regression" else "LogisticRegressionOutput"
    metric = "mse" if task == "regression" else "log_loss"

    def params():
        w = np.empty((d, 1), np.float32)
        w.fill(0.0)  # touch the pages now, not inside the timed epoch
        weight = RowSparseNDArray(w, np.arange(d, dtype=np.int64), (d, 1))
        bias = NDArray(np.zeros(1, np.float32))
        opt = opt_mod.create("sgd", learning_rate=lr, rescale_grad=1.0 / batch_size,
                             momentum=0.0)
        return w, weight, bias, opt_mod.get_updater(opt)

    runner = LinearEpochRunner(output, [d], 1, has_bias=True)
    order = np.arange(n, dtype=np.int64)
    batch_ptr = np.append(np.arange(0, n, batch_size, dtype=np.int64), n)
    _, w_weight, w_bias, w_upd = params()  # load / compile the kernels, untimed
    t0 = time.perf_counter()
    try:
        runner.fit_epoch([X], yv, order[:batch_size], batch_ptr[:2], [w_weight], w_bias, w_upd,
                         [0, 1], metrics=(metric,), parallel=team)
    except (KeyError, ValueError):
        metric = "mse"
        runner.fit_epoch([X], yv, order[:batch_size], batch_ptr[:2], [w_weight], w_bias, w_upd,
                         [0, 1], metrics=(metric,), parallel=team)
    jit_s = time.perf_counter() - t0
    del w_weight, w_bias, w_upd

    w, weight, bias, updater = params()
    times, progressive = [], []
    # in calls of CHUNK_ROWS rows, as the engine's epoch loop (epoch_loop.run_in_chunks) makes them
    per_call = max(1, CHUNK_ROWS // batch_size)
    calls = [(b0, min(b0 + per_call, len(batch_ptr) - 1)) for b0 in range(0, len(batch_ptr) - 1, per_call)]
    for _ in range(epochs):
        t0 = time.perf_counter()
        parts = [runner.fit_epoch([X], yv, order, batch_ptr[b0:b1 + 1], [weight], bias, updater, [0, 1],
                                  metrics=(metric,), parallel=team) for b0, b1 in calls]
        nonfinite([0, 1], [weight_buffer(weight), weight_buffer(bias)])  # the epoch loop's end-of-epoch scan
        times.append(time.perf_counter() - t0)
        progressive.append(float(EpochResult.combine(parts).metrics[metric]))
    if team is not None:
        team.close()
    wv = weight.asnumpy().ravel()
    bv = np.asarray(bias.asnumpy()).ravel()
    name, loss = _data.final_loss(task, _data.csr_predict(data, indices, indptr, wv, bv), y)
    return {"epoch_seconds": sum(times) / epochs, "train_seconds": sum(times), "epochs": epochs,
            "data_seconds": prep_s, "rows": int(n), "final_loss": loss, "loss_name": name,
            "progressive_" + metric: progressive[-1], "kernel_load_seconds": jit_s,
            "threads": n_threads, "via": "LinearEpochRunner.fit_epoch (as benchmarks/compiled_epoch.py)"}


def seed_module(epochs: int = 10) -> dict:
    mod = _import("benchmarks.seed_loop", "the seed loop")
    return _pending_on_missing(mod.run, epochs=epochs)


# runs ``sparsetrain fit`` in-process and reports that process's peak RSS (VmHWM) at exit
_CLI_WRAPPER = """
import atexit, sys
def _hwm():
    try:
        with open('/proc/self/status') as f:
            kb = [l.split()[1] for l in f if l.startswith('VmHWM:')][0]
        sys.stderr.write('\\nBENCH_HWM_KB %s\\n' % kb)
    except Exception:
        pass
atexit.register(_hwm)
sys.argv[0] = 'sparsetrain'
from sparsetrain.cli import main
main()
"""


def seed_cli(engine: str = "compiled", config: str = "configs/linreg.yaml") -> dict:
    cfg = os.path.join(ROOT, config)
    if not os.path.exists(cfg):
        raise Unavailable(f"{config} not written yet", "pending")
    try:
        import sparsetrain.cli  # noqa: F401
    except ImportError as e:
        raise Unavailable(f"sparsetrain.cli does not import yet: {e}", "pending") from e
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(2):  # 1st: warm-up (fills numba's on-disk cache), 2nd: measured
            out = os.path.join(tmp, f"run{i}")
            cmd = [sys.executable, "-c", _CLI_WRAPPER, "fit", cfg,
                   "--engine", engine, "--output", out, "--quiet"]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if p.returncode != 0:
                raise RuntimeError(f"sparsetrain fit exited {p.returncode}: "
                                   f"{(p.stderr or p.stdout).strip()[-400:]}")
            with open(os.path.join(out, "metrics.jsonl")) as f:
                lines = [json.loads(x) for x in f if x.strip()]
            hwm = [x for x in p.stderr.splitlines() if x.startswith("BENCH_HWM_KB ")]
            runs.append((wall, lines, int(hwm[-1].split()[1]) / 1024.0 if hwm else None))
    wall, lines, rss = runs[-1]
    train_s = sum(float(x["seconds"]) - float(x.get("data_seconds", 0.0)) for x in lines)
    samples = sum(int(x.get("samples", 0)) for x in lines)
    last = lines[-1]
    loss = pick(last, ("mse", "loss", "rmse"))
    return {"train_seconds": train_s, "epoch_seconds": train_s / max(len(lines), 1),
            "epochs": len(lines), "steps": samples,
            "us_per_step": train_s / max(samples, 1) * 1e6,
            "final_loss": None if loss is None else float(loss), "loss_name": "mse",
            "data_seconds": sum(float(x.get("data_seconds", 0.0)) for x in lines),
            "process_wall_seconds": wall, "engine": engine, "peak_rss_mb": rss}
