"""Adapters from the harness to sparsetrain's own benchmark entry points.

* ``parse``       -> ``benchmarks/parse.py:run(path)``        (the data issue)
* ``train``       -> ``benchmarks/compiled_epoch.py:run(...)`` (the compiled-engine issue)
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

SECONDS_KEYS = ("epoch_seconds", "seconds_per_epoch", "train_seconds", "seconds", "time")
LOSS_KEYS = ("final_loss", "loss", "mse", "log_loss", "logloss")
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
    kw = {"path": path, "num_features": num_features, "peers": False}
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


def train(path: str, task: str, lr: float, batch_size: int, epochs: int = 1,
          num_features: int | None = None, **_) -> dict:
    mod = _import("benchmarks.compiled_epoch", "the compiled-engine issue's epoch benchmark")
    kw = {"path": path, "libsvm_path": path, "npz_path": _data.npz_path(path), "task": task,
          "batch_size": batch_size, "lr": lr, "learning_rate": lr, "epochs": epochs,
          "num_epochs": epochs, "num_features": num_features}
    res = _pending_on_missing(call_filtered, mod.run, kw)
    sec = pick(res, SECONDS_KEYS)
    if sec is None:
        raise ValueError(f"benchmarks/compiled_epoch.py:run returned no seconds: {res!r}")
    if "epoch_seconds" not in res and "seconds_per_epoch" not in res:
        sec = float(sec) / max(int(res.get("epochs", epochs)), 1)
    loss = pick(res, LOSS_KEYS)
    name = "mse" if task == "regression" else "log_loss"
    if "weight" in res and "bias" in res:  # recompute on the same definition as the peers
        data, indices, indptr, y, _shape = _data.load_arrays(path)
        name, loss = _data.final_loss(
            task, _data.csr_predict(data, indices, indptr, res["weight"], res["bias"]), y)
    out = {"epoch_seconds": float(sec), "epochs": epochs,
           "final_loss": None if loss is None else float(loss), "loss_name": name,
           "data_seconds": pick(res, ("data_seconds", "parse_seconds", "load_seconds"))}
    out["raw"] = {k: v for k, v in res.items() if k not in ("weight", "bias")}
    return out


def seed_module(epochs: int = 10) -> dict:
    mod = _import("benchmarks.seed_loop", "the seed loop")
    return _pending_on_missing(mod.run, epochs=epochs)


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
            cmd = [sys.executable, "-c", "from sparsetrain.cli import main; main()", "fit", cfg,
                   "--engine", engine, "--output", out, "--quiet"]
            t0 = time.perf_counter()
            p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if p.returncode != 0:
                raise RuntimeError(f"sparsetrain fit exited {p.returncode}: "
                                   f"{(p.stderr or p.stdout).strip()[-400:]}")
            with open(os.path.join(out, "metrics.jsonl")) as f:
                lines = [json.loads(x) for x in f if x.strip()]
            runs.append((wall, lines))
    wall, lines = runs[-1]
    train_s = sum(float(x["seconds"]) - float(x.get("data_seconds", 0.0)) for x in lines)
    samples = sum(int(x.get("samples", 0)) for x in lines)
    last = lines[-1]
    loss = pick(last, ("mse", "loss", "rmse"))
    return {"train_seconds": train_s, "epoch_seconds": train_s / max(len(lines), 1),
            "epochs": len(lines), "steps": samples,
            "us_per_step": train_s / max(samples, 1) * 1e6,
            "final_loss": None if loss is None else float(loss), "loss_name": "mse",
            "data_seconds": sum(float(x.get("data_seconds", 0.0)) for x in lines),
            "process_wall_seconds": wall, "engine": engine}
