"""Distributed training throughput, traffic and the cost model on the large workload (issues 8, 17).

    python -m benchmarks.dist [--quick] [--batch-size 256] [--workers 1 2] [--servers 1]
                              [--epochs 2] [--repeat N] [--address ADDR]
                              [--out benchmarks/RESULTS.md]

On the same LibSVM file (the harness's ``large`` regression workload, generated into
``benchmarks/_work/`` by ``benchmarks.run``'s generator and reused), in one run:

* ``local compiled``: ``sparsetrain.trainer.train`` with ``kvstore: local``, the compiled engine,
  ``data.cache: memory`` (the file is parsed once before training) — in its own subprocess;
* ``local stream``: the same with ``data.cache: stream`` (parser chunks straight into the compiled
  epoch, the whole file each epoch, as the workers read it) — the single-process baseline of
  issue 17's first target, in its own subprocess;
* ``dist_async`` and ``dist_sync`` with each ``--workers`` count: ``train_distributed`` (worker r
  reads its byte range ``LibSVMIter(num_parts, part_index)`` and trains blocks of ``train.sync_every``
  batches on the compiled engine, pulling a block's rows before it and pushing their change after
  it), in this process on one Ray started once (``num_cpus`` = this machine's cores) or joined with
  ``--address``. ``--worker-cache memory`` (default): ``data.cache: memory``, each worker keeps its
  part, cut into blocks, after the first epoch, so the timed epoch trains without parsing — compared
  with ``local compiled``; ``--worker-cache stream``: each worker parses its part again every epoch —
  compared with ``local stream``. 1 and 2 workers are always compared in the same mode.

Then ``benchmarks/cost_model.py`` is fed with the 1-worker ``dist_async`` run of the first
``--worker-cache`` mode (compute seconds, CPU seconds of the worker and the server, and bytes per block) and transport measured now (round trip, object-store bandwidth, a server's cost
per byte); it prints its predictions beside the measured ``dist_async`` runs and a projection for
8-128 workers on 10 and 1 Gbit/s with 1-16 servers.

Every run trains ``--epochs`` epochs (default 2) from zero parameters with SGD (lr as
``benchmarks.run`` uses for ``large-b256``, ``rescale_grad`` 1/batch); the table reports the
**fastest epoch after the first** (the first also loads numba's cached kernels, and a worker that keeps its part
parses it then; of several, the fastest is the one other processes disturbed least) and the first epoch's seconds
apart. Final MSE is computed the same way for every row:
``load_trained(run_dir).evaluate(file, ['mse'])`` over the whole file with the parameters after
the last epoch. Nothing is asserted; see benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

from benchmarks import run as bench
from sparsetrain.trainer.reporter import Reporter

ROOT = bench.ROOT
WORK = bench.WORK
START, END = bench.DIST_START, bench.DIST_END
TIMEOUT = {"full": 3600, "quick": 600}


# ---------------------------------------------------------------------------------------------
# the runs


@dataclass
class Run:
    name: str
    kvstore: str            # local | dist_sync | dist_async
    workers: int = 1
    servers: int = 0
    cache: str = "stream"   # data.cache: memory | stream (local runs and the workers' parts)
    engine: str = "auto"

    @property
    def local(self) -> bool:
        return self.kvstore == "local"

    def data_path(self) -> str:
        if self.local:
            return ("memory (parsed once before training)" if self.cache == "memory"
                    else "stream (LibSVMIter chunks into the compiled epoch, whole file each epoch)")
        if self.cache == "memory":
            return f"memory (part r/{self.workers} parsed in the first epoch, kept as blocks)"
        return f"stream (part r/{self.workers} parsed again every epoch)"


def dist_name(kvstore: str, workers: int, cache: str, tag: str = "") -> str:
    """``dist_async 2w`` (workers keep their part in memory) or ``dist_async 2w stream``."""
    return f"{kvstore} {workers}w{'' if cache == 'memory' else ' ' + cache}{tag}"


def plan(workers: list[int], servers: list[int], local_stream: bool = True,
         worker_caches: tuple = ("memory",)) -> list[Run]:
    runs = [Run("local compiled", "local", cache="memory", engine="compiled")]
    if local_stream or "stream" in worker_caches:
        runs.append(Run("local stream", "local", cache="stream", engine="compiled"))
    for cache in worker_caches:
        for s in servers:
            tag = "" if len(servers) == 1 else f", {s} servers"
            for kv in ("dist_async", "dist_sync"):
                for w in workers:
                    runs.append(Run(dist_name(kv, w, cache, tag), kv, w, s, cache=cache))
    return runs


def config_doc(path: str, features: int, batch_size: int, lr: float, epochs: int, kvstore: str,
               cache: str = "stream", engine: str = "auto") -> dict:
    """The large workload's model (configs/large.yaml) on ``path``: linear regression, zero
    initial parameters, plain SGD (``rescale_grad`` left to the runner's default)."""
    return {
        "data": {"train": os.path.abspath(path), "num_features": int(features), "zero_based": True,
                 "cache": cache, "batch_size": int(batch_size), "last_batch": "discard",
                 "shuffle": False},
        "model": {
            "variables": {"data": {"stype": "csr"}, "label": {},
                          "weight": {"stype": "row_sparse", "shape": [int(features), 1],
                                     "init": "zero"},
                          "bias": {"shape": [1], "init": "zero"}},
            "ops": [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]},
                    {"name": "pred", "op": "broadcast_add", "inputs": ["dot", "bias"]}],
            "loss": {"name": "lro", "op": "LinearRegressionOutput", "data": "pred",
                     "label": "label"}},
        "optimizer": {"name": "sgd", "learning_rate": float(lr), "momentum": 0.0},
        "train": {"epochs": int(epochs), "metrics": ["mse"], "seed": 0, "kvstore": kvstore,
                  "engine": engine},
    }


def final_mse(run_dir: str, path: str) -> float:
    """MSE over the whole file with the run's last checkpoint (the same for every row)."""
    from sparsetrain.trainer import load_trained

    return float(load_trained(run_dir).evaluate(path, ["mse"])["mse"])


def timed_epoch(history: list[dict]) -> int:
    """The index of the timed epoch: the fastest after the first (which also loads kernels and, for a worker that
    keeps its part, parses it); the only one of a 1-epoch run. The fastest of several is the one least disturbed
    by other processes on the machine."""
    if len(history) == 1:
        return 0
    return min(range(1, len(history)), key=lambda i: float(history[i]["seconds"]))


def summarize(history: list[dict], wall: float, batch_size: int, workers: int) -> dict:
    """The numbers of one run from its ``metrics.jsonl`` records (the timed epoch: :func:`timed_epoch`)."""
    k = timed_epoch(history)
    last, first = history[k], history[0]
    sec = float(last["seconds"])
    samples = int(last["samples"])
    # steps per worker: the distributed records carry it (the most batches of any worker); for
    # the local runs it is samples / batch, rounded up (last_batch=discard)
    steps = int(last.get("steps") or max(1, math.ceil(samples / (batch_size * max(workers, 1)))))
    bps = last.get("bytes_per_step")
    out = {"epochs": len(history), "timed_epoch": k, "samples": samples, "epoch_seconds": sec,
           "first_epoch_seconds": float(first["seconds"]),
           "samples_per_s": samples / sec if sec > 0 else None,
           "steps": steps, "ms_per_step": sec / steps * 1e3,
           "train_mse": float(history[-1]["mse"]), "engine": last.get("engine"),
           "call_seconds": wall, "setup_seconds": wall - sum(float(r["seconds"]) for r in history)}
    for key in ("blocks", "bytes_per_block", "worker_seconds", "wait_seconds", "train_seconds", "sync_every",
                "worker_cpu_seconds", "server_cpu_seconds"):
        if key in last:
            out[key] = last[key]
    if bps is not None:
        out["bytes_per_step"] = int(bps)
        out["mb_per_epoch"] = (int(last["bytes"]) if "bytes" in last else int(bps) * steps) / 1e6
        out["mb_per_s"] = out["mb_per_epoch"] / sec if sec > 0 else None
    return out


def local(path: str, features: int, batch_size: int, lr: float, epochs: int, cache: str,
          engine: str, evaluate: bool = True) -> dict:
    """One single-process run (``python -m benchmarks._child dist local JSON``)."""
    from sparsetrain.config import config_from_dict
    from sparsetrain.trainer import train

    cfg = config_from_dict(config_doc(path, features, batch_size, lr, epochs, "local", cache,
                                      engine))
    with tempfile.TemporaryDirectory(prefix="sparsetrain-dist-local-") as out:
        t0 = time.perf_counter()
        res = train(cfg, output_dir=out, engine=engine)
        wall = time.perf_counter() - t0
        s = summarize(res.history, wall, batch_size, 1)
        s["engine"] = res.engine
        if evaluate:
            s["final_mse"] = final_mse(out, path)
    return s


def cpu_snapshot() -> dict | None:
    """CPU seconds so far of this process's descendants — Ray's daemons (raylet, GCS, ...) and its actors
    (``ray::...``) when this process started Ray — of this process, and of the whole machine (busy, all cores);
    None without psutil."""
    try:
        import psutil
    except ImportError:
        return None
    me = psutil.Process()
    out = {"daemons": 0.0, "actors": 0.0}
    for p in me.children(recursive=True):
        try:
            t = p.cpu_times()
            out["actors" if p.name().startswith("ray::") else "daemons"] += t.user + t.system
        except psutil.Error:  # ended meanwhile
            continue
    t = me.cpu_times()
    out["driver"] = t.user + t.system
    m = psutil.cpu_times()
    out["machine"] = sum(m) - m.idle - getattr(m, "iowait", 0.0)
    return out


class CpuWindow(Reporter):
    """A reporter that notes :func:`cpu_snapshot` at each epoch's start and end: ``epochs`` holds each epoch's
    CPU seconds of Ray's daemons with the driver (``ray_cpu_seconds``) and of every process that is not this run's
    (``foreign_cpu_seconds``: other work on the machine, which the timings suffer from). The window is the epoch
    with the driver gathering the parameters after it."""

    def __init__(self):
        self.start = None
        self.epochs: dict = {}  # epoch -> its CPU seconds

    def epoch_start(self, epoch, total_samples=None):
        self.start = cpu_snapshot()

    def epoch_end(self, record):
        end = cpu_snapshot()
        if self.start is None or end is None:
            return
        d = {k: end[k] - self.start[k] for k in end}
        ours = d["daemons"] + d["actors"] + d["driver"]
        self.epochs[record["epoch"]] = {"ray_cpu_seconds": round(d["daemons"] + d["driver"], 6),
                                        "foreign_cpu_seconds": round(max(0.0, d["machine"] - ours), 6)}


def distributed(path: str, features: int, batch_size: int, lr: float, epochs: int, kvstore: str,
                workers: int, servers: int, address: str | None = None,
                evaluate: bool = True, cache: str = "memory") -> dict:
    """One ``train_distributed`` run in this process (Ray already started or joined); ``cache``: the
    workers' ``data.cache`` (``memory``: each keeps its part after the first epoch)."""
    from sparsetrain.config import config_from_dict
    from sparsetrain.dist import train_distributed

    cfg = config_from_dict(config_doc(path, features, batch_size, lr, epochs, kvstore, cache))
    out = tempfile.mkdtemp(prefix=f"sparsetrain-dist-{kvstore}-")
    try:
        cpu = CpuWindow()
        t0 = time.perf_counter()
        res = train_distributed(cfg, output_dir=out, workers=workers, servers=servers,
                                engine="auto", address=address, reporter=cpu)
        wall = time.perf_counter() - t0
        s = summarize(res.history, wall, batch_size, workers)
        if not address:  # Ray's daemons are this process's children only when it started Ray
            s.update(cpu.epochs.get(res.history[s["timed_epoch"]]["epoch"], {}))
        if evaluate:
            s["final_mse"] = final_mse(out, path)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return s


def _error(e: BaseException) -> dict:
    text = " ".join(str(e).split())
    return {"status": "error", "reason": f"{type(e).__name__}: {text}"[:400]}


def measure(r: Run, kw: dict, address: str | None, timeout: float) -> dict:
    if r.local:
        cmd = [sys.executable, "-m", "benchmarks._child", "dist", "local",
               json.dumps(dict(kw, cache=r.cache, engine=r.engine))]
        return bench.run_subprocess(cmd, bench.child_env(), timeout)
    try:
        res = distributed(**kw, kvstore=r.kvstore, workers=r.workers, servers=r.servers,
                          address=address, cache=r.cache)
    except Exception as e:  # noqa: BLE001 - a failed run is a row, not a crash
        return _error(e)
    res["status"] = "ok"
    return res


def best(tries: list[dict]) -> dict:
    ok = [t for t in tries if t.get("status") == "ok"]
    if not ok:
        return tries[-1]
    b = dict(min(ok, key=lambda t: t["epoch_seconds"]))
    if len(tries) > 1:
        b["tries"] = [t["epoch_seconds"] for t in ok]
    return b


# ---------------------------------------------------------------------------------------------
# tables and text

HEAD = ["run", "data path", "engine", "samples/s", "s/epoch", "vs local", "ms/step",
        "bytes/step", "MB/epoch", "1st epoch s", "wall s", "final mse", "status"]


def _f(v, spec):
    return "—" if v is None else format(v, spec)


def rows(results: list[dict]) -> list[list[str]]:
    base = next((r for r in results if r["run"] == "local compiled" and r.get("status") == "ok"),
                None)
    out = []
    for r in results:
        if r.get("status") != "ok":
            out.append([r["run"], r["data_path"], "—", "—", "—", "—", "—", "—", "—", "—", "—", "—",
                        bench.fmt_status(r, 200)])
            continue
        ratio = None
        if base and base.get("samples_per_s") and r.get("samples_per_s"):
            ratio = r["samples_per_s"] / base["samples_per_s"]
        bps = r.get("bytes_per_step")
        out.append([r["run"], r["data_path"], str(r.get("engine", "?")),
                    _f(r.get("samples_per_s"), ",.0f"), _f(r["epoch_seconds"], ".3f"),
                    "—" if ratio is None else f"{ratio:.3g}x", _f(r.get("ms_per_step"), ".2f"),
                    "—" if bps is None else f"{bps:,}",
                    _f(r.get("mb_per_epoch"), ".1f"), _f(r.get("first_epoch_seconds"), ".3f"),
                    _f(r.get("call_seconds"), ".1f"), _f(r.get("final_mse"), ".4g"), "ok"])
    return out


def _get(results, name):
    return next((r for r in results if r["run"] == name and r.get("status") == "ok"), None)


def targets(results: list[dict], model_check: list[dict] | None) -> list[tuple[str, str, bool | None]]:
    """Issue 17's targets: ``(what, value, met)`` (``met`` None: not measured), for each data mode of the
    workers measured, always against runs in the same mode (the workers' parts in memory against the
    single process in memory, streamed against streamed)."""
    base = _get(results, "local compiled")
    out = []

    def ratio(what, num, den, goal=None):
        if num and den and num.get("samples_per_s") and den.get("samples_per_s"):
            r = num["samples_per_s"] / den["samples_per_s"]
            out.append((what, f"{r:.2f}x" + (f" (target >= {goal}x)" if goal else ""), None if goal is None else r >= goal))
        else:
            out.append((what, "not measured", None))

    modes = [c for c in ("memory", "stream") if any(r.get("data_path", "").startswith(c) and r["kvstore"] != "local"
                                                    for r in results)]
    for cache in modes:
        single = _get(results, "local compiled" if cache == "memory" else "local stream")
        a1, a2 = _get(results, dist_name("dist_async", 1, cache)), _get(results, dist_name("dist_async", 2, cache))
        s1, s2 = _get(results, dist_name("dist_sync", 1, cache)), _get(results, dist_name("dist_sync", 2, cache))
        what = "in memory" if cache == "memory" else "streamed"
        ratio(f"dist_async 1 worker vs the single-process compiled epoch, data {what}", a1, single, 0.5)
        if cache == "memory":  # issue 17's own baseline: the single process reading its data as a stream
            ratio("dist_async 1 worker, part in memory, vs the single-process streamed compiled epoch (issue 17's "
                  "baseline)", a1, _get(results, "local stream"), 0.5)
        ratio(f"dist_async 2 workers vs 1 worker, parts {what}", a2, a1, 1.2)
        ratio(f"dist_sync 2 workers vs 1 worker, parts {what}", s2, s1)
        for r in (a1, a2, s1, s2):
            if r and base and r.get("final_mse") is not None and base.get("final_mse") is not None:
                d = r["final_mse"] / base["final_mse"] - 1
                out.append((f"final mse of {r['run']} vs one process", f"{d:+.1%} (target within 2 %)",
                            abs(d) <= 0.02))
    for c in model_check or []:
        out.append((f"cost model, {c['workers']} worker(s): predicted {c['predicted']:,.0f} vs measured "
                    f"{c['measured']:,.0f} samples/s", f"{c['error']:+.0%} (target within 25 %)", abs(c["error"]) <= 0.25))
    return out


def scaling_text(results: list[dict], meta: dict) -> str:
    """A paragraph with this run's numbers: distributed vs local, more workers vs one."""
    dist = [r for r in results if r.get("status") == "ok" and r["kvstore"] != "local"]
    if not dist:
        return "No distributed run succeeded, so there is nothing to say about scaling."
    parts = []
    for what, value, met in targets(results, meta.get("cost_model", {}).get("check")):
        mark = "—" if met is None else ("met" if met else "missed")
        parts.append(f"{what}: {value}, {mark}.")
    parts += cpu_budget(results, meta["cores"])
    one = next((r for r in dist if r["kvstore"] == "dist_async" and r["workers"] == 1 and r.get("blocks")), None)
    if one and one.get("blocks"):
        comm = one["wait_seconds"] / one["worker_seconds"] if one.get("worker_seconds") else None
        parts.append(f"A worker trains blocks of {one['sync_every']} batches ({one['bytes_per_block'] / 1e6:.2f} MB "
                     f"moved per block, pull and push)" + (f"; it waits for the servers {comm:.0%} of its epoch."
                                                          if comm is not None else "."))
    parts.append(f"The {meta['cores']} cores here are shared by the workers, the servers, the driver and Ray's own "
                 "processes (load average at the start: " + meta["load"] + ").")
    return " ".join(parts)


def _cpu(r: dict) -> tuple[float, str] | None:
    """CPU seconds of a distributed run's timed epoch (workers, servers, Ray's daemons with the driver) and how."""
    keys = ("worker_cpu_seconds", "server_cpu_seconds", "ray_cpu_seconds")
    if any(r.get(k) is None for k in keys):
        return None
    w, s, d = (r[k] for k in keys)
    return w + s + d, f"workers {w:.2f}, servers {s:.2f}, Ray's daemons and the driver {d:.2f}"


def cpu_budget(results: list[dict], cores: int) -> list[str]:
    """Per data mode: the CPU seconds of the 1- and 2-worker ``dist_async`` timed epochs, by process, and how many
    of the cores each kept busy (the 2-worker run gains over the 1-worker one only as far as the 1-worker epoch
    left cores idle and the 2-worker one does not take more CPU for the same rows)."""
    out = []
    for cache, what in (("memory", "in memory"), ("stream", "streamed")):
        runs = [_get(results, dist_name("dist_async", w, cache)) for w in (1, 2)]
        if not all(runs) or any(_cpu(r) is None for r in runs):
            continue
        said = []
        for label, r in zip(("1 worker", "2 workers"), runs):
            c, how = _cpu(r)
            said.append(f"{label} {c:.2f} CPU s ({how}) in {r['epoch_seconds']:.3f} s, "
                        f"{c / r['epoch_seconds']:.2f} of the {cores} cores")
        out.append(f"CPU of the dist_async epoch, parts {what}: " + "; ".join(said) + " (Ray's daemons and the driver "
                   "are counted until the epoch's record, the parameters' gathering included, so a busy epoch can "
                   "show more than the cores).")
    return out


def cluster_text(results: list[dict]) -> str:
    """What a real cluster changes, with this run's bytes/step."""
    traffic = [r for r in results if r.get("status") == "ok" and r.get("bytes_per_step")]
    t = max(traffic, key=lambda r: r["bytes_per_step"]) if traffic else None
    wire = ""
    if t is not None:
        ms1 = t["bytes_per_step"] / 125e6 * 1e3  # 1 Gbit/s ~ 125 MB/s
        wire = (f" At {t['bytes_per_step'] / 1e3:,.0f} KB per step (all {t['workers']} workers, "
                f"which is what one server's link carries), 1 Gbit/s moves a step's traffic in "
                f"{ms1:.2f} ms and 10 Gbit/s in {ms1 / 10:.3f} ms, so on a real network the "
                f"per-step cost is dominated by latency (a round trip per block of sync_every steps, to every "
                f"server in parallel) and by the workers' compute, not by bandwidth; bytes/step "
                f"grows with the distinct columns of a batch, far slower than the batch size.")
    return (
        "`--address ADDR` (here, and `sparsetrain fit --address`) joins a running Ray cluster "
        "(`ray start --head` on one node, `ray start --address=HEAD:6379` on the others; "
        "`--address auto` from a node) instead of starting a local Ray. Every worker actor then "
        "reserves one CPU (`num_cpus=1`; a local run gives actors no reservation and they share "
        "this machine's cores with the servers, the driver and Ray itself), so workers land on "
        "separate cores or nodes and stop competing with each other. The training file must be "
        "readable at the same path on every node (each worker opens it and reads only its byte "
        "range); checkpoints are gathered to the driver." + wire +
        " More servers (`--servers M`) shard every row_sparse weight by row range: each server "
        "holds and updates 1/M of the rows and a step's push/pull goes to all M in parallel, which "
        "helps once one server's CPU or network link is the bottleneck (many workers), not on one "
        "machine. With a core per worker and a low-latency network, throughput should grow with "
        "the workers until the servers saturate; for data that fits one machine, the "
        "single-process compiled engine remains the fast path.")


def render_section(results: list[dict], meta: dict) -> str:
    mi = meta["machine"]
    lines = [
        START,
        "## Distributed training (`benchmarks/dist.py`)",
        "",
        f"Written by `python -m benchmarks.dist {meta['argv']}` on {meta['date']}; every row comes "
        "from that one run. How it is measured: [README.md](README.md#distributed-training-"
        "benchmarksdistpy).",
        "",
        f"- Machine: {bench.machine_line(mi)}; Python {mi['python']}, ray {meta.get('ray', '?')}"
        f", numba {mi.get('numba', '?')}; load average at the start (1/5/15 min): "
        f"{meta['load']}",
        f"- Ray: {meta['ray_where']}",
        f"- Data: `{meta['data']}` ({meta['rows']:,} rows x {meta['features']:,} features, "
        + (f"~{meta['nnz']} nnz/row, zipf columns, " if meta.get("nnz") else "")
        + f"{meta['mb']:.1f} MB); batch {meta['batch_size']} "
        f"per worker; SGD lr {meta['lr']}, rescale_grad 1/batch; zero initial parameters; the single-process rows "
        f"train with `train.threads: auto` ({meta['cores']} threads here, Hogwild), a distributed worker with one; "
        f"{meta['epochs']} epoch(s) per run, the fastest after the first timed; repeats: {meta['repeat']} "
        f"(fastest kept)",
        "",
        bench.md_table(HEAD, rows(results)),
        "",
        "- *samples/s*: samples of the timed epoch / its seconds (`metrics.jsonl` `seconds`: for "
        "the distributed runs, from starting the workers' epoch to the last one finishing, their "
        "streaming parse included; for `local compiled`, the fused epoch over rows parsed before "
        "training — the parse is in *wall s*). *vs local*: samples/s / `local compiled`'s.",
        "- *ms/step*: seconds / steps per worker. *bytes/step*: `bytes_per_step` of the record "
        "(pushed + pulled by all workers per step: the row ids asked for, changed rows and optimizer states, pulled rows, the "
        "bias); *MB/epoch*: the record's `bytes`, all the traffic of the epoch.",
        "- *1st epoch s*: the first epoch, which in a fresh process also loads numba's cached "
        "kernels. *wall s*: the whole `train` / `train_distributed` call (actors, parse, "
        "checkpoints).",
        "- *final mse*: `load_trained(run_dir).evaluate(file, ['mse'])` over the whole file with "
        "the parameters after the last epoch, the same for every row.",
        "",
        "**How it scales here.** " + scaling_text(results, meta),
        "",
        "**What a real cluster changes.** " + cluster_text(results),
        *(["", "**Cost model** (`benchmarks/cost_model.py`).", "", cost_model_text(meta["cost_model"])]
          if meta.get("cost_model") else []),
        END,
    ]
    return "\n".join(lines) + "\n"


def print_table(results: list[dict], console) -> None:
    from rich.table import Table

    t = Table(title="distributed training vs the single-process compiled engine")
    for h in HEAD:
        t.add_column(h, overflow="fold")
    for r, row in zip(results, rows(results)):
        style = "bold" if r["run"] == "local compiled" else None
        t.add_row(*row, style="dim" if r.get("status") != "ok" else style)
    console.print(t)


# ---------------------------------------------------------------------------------------------
# main


def cost_model_meta(results: list[dict], servers: int, cores: int, log) -> dict:
    """benchmarks/cost_model.py fed by this run: transport measured now, compute and bytes per block
    from the 1-worker dist_async run; its predictions beside the measured dist_async runs."""
    from dataclasses import asdict

    from benchmarks import cost_model as cm

    one = next((r for r in results if r.get("status") == "ok" and r["kvstore"] == "dist_async"
                and r["workers"] == 1 and r["servers"] == servers and r.get("blocks")), None)
    if one is None:
        return {}
    mode = one["data_path"].split()[0]  # the check compares runs whose workers read their parts the same way
    log("cost model: measuring the round trip, the object store's bandwidth and a server's cost per byte ...")
    rtt, link, cost = cm.measure_transport(int(one["bytes_per_block"]))
    inputs = cm.inputs_from_run(one, rtt, link, cost)
    # each run's own rows and bytes per block (counts): blocks shrink with more workers on a small file
    measured = {r["workers"]: (r["samples_per_s"], int(r["samples"]) / max(1, int(r["blocks"])),
                               float(r["bytes_per_block"]), r.get("foreign_cpu_seconds", 0.0) / r["epoch_seconds"])
                for r in results if r.get("status") == "ok" and r["kvstore"] == "dist_async" and r["servers"] == servers
                and r["data_path"].startswith(mode) and r.get("blocks")}
    return {"inputs": asdict(inputs), "check": cm.check(inputs, measured, cores),
            "projection": cm.projection(inputs), "cores": cores}


def cost_model_text(model: dict) -> str:
    from benchmarks import cost_model as cm

    m = cm.Inputs(**model["inputs"])
    lines = [f"Inputs (measured): compute {m.compute * 1e3:.2f} ms per block of {m.rows_per_block:,} rows, "
             f"{m.bytes / 1e6:.2f} MB moved per block, actor round trip {m.rtt * 1e3:.2f} ms, object store "
             f"{m.link / 1e9:.2f} GB/s, server {m.server_cost * 1e9:.2f} ns per byte; CPU per block "
             f"{m.worker_cpu * 1e3:.1f} ms in the worker's process, {m.server_cpu * 1e3:.1f} ms in the server's and "
             f"{m.ray_cpu * 1e3:.1f} ms in Ray's daemons and the driver; {model['cores']} shared cores (the 2-worker "
             "prediction: max(one worker's period, 2 x CPU per block / cores)); the last column: the cores that "
             "processes outside the run used during its timed epoch, which the model leaves out.",
             "", "| workers | predicted samples/s | measured samples/s | error | cores other processes used |",
             "|---|---|---|---|---|"]
    lines += [f"| {c['workers']} | {c['predicted']:,.0f} | {c['measured']:,.0f} | {c['error']:+.0%} | "
              f"{c.get('others', 0.0):.2f} |" for c in model["check"]]
    lines += ["", f"Projected `dist_async` samples/s on a cluster (one core per worker and per server, "
              f"{cm.NETWORK_RTT * 1e3:.1f} ms network round trip added, the measured per-block compute and bytes):", "",
              cm.projection_table(m)]
    return "\n".join(lines)


def _ray_version() -> str | None:
    try:
        import ray

        return ray.__version__
    except ImportError:
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.dist", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="the quick workload (20k x 100k) instead of 500k x 1M")
    ap.add_argument("--data", metavar="FILE",
                    help="use this LibSVM file (zero-based) instead of the generated workload; "
                         "needs --features")
    ap.add_argument("--features", type=int, help="number of features of --data")
    ap.add_argument("--batch-size", type=int, default=256, help="rows per batch per worker")
    ap.add_argument("--lr", type=float, default=None,
                    help="SGD learning rate (default: benchmarks.run's for regression at "
                         "this batch size)")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2],
                    help="dist_sync for each count, dist_async for each count >= 2")
    ap.add_argument("--servers", type=int, nargs="+", default=[1],
                    help="parameter servers (each count runs every distributed row)")
    ap.add_argument("--epochs", type=int, default=2,
                    help="epochs per run; the fastest after the first is timed (default 2: the first is a "
                         "warm-up)")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run every measurement N times and keep the fastest")
    ap.add_argument("--address", help="join this Ray cluster instead of starting a local Ray")
    ap.add_argument("--worker-cache", nargs="+", choices=["memory", "stream"], default=["memory"],
                    help="the workers' data.cache: memory (each keeps its part after the first epoch; "
                         "default) and/or stream (each parses its part again every epoch); each mode runs "
                         "every distributed row and is compared with the single process in the same mode")
    ap.add_argument("--no-local-stream", action="store_true",
                    help="skip the single-process streaming (graph engine) row")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the throw-away runs on a tiny file that fill numba's on-disk cache")
    ap.add_argument("--no-eval", action="store_true", help="skip the final-MSE evaluation")
    ap.add_argument("--out", metavar="FILE",
                    help="write/replace the dist section of this markdown file (between "
                         f"{START} and {END})")
    args = ap.parse_args(argv)

    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 200)

    def log(msg):
        console.print(f"[dim]{msg}[/dim]")

    if _ray_version() is None:
        raise SystemExit("ray is not installed: pip install 'sparsetrain[dist]' (or ray)")
    if any(w < 1 for w in args.workers) or any(s < 1 for s in args.servers):
        raise SystemExit("--workers and --servers must be at least 1")

    mode = "quick" if args.quick else "full"
    size = bench.SIZES[mode]
    if args.data:
        if not args.features:
            raise SystemExit("--data needs --features")
        path, features = os.path.abspath(args.data), args.features
        rows_n = None
    else:
        features = size["features"]
        rows_n = size["rows"]
        path = os.path.join(WORK, f"reg_{mode}_{rows_n}x{features}.libsvm")
        bench._generate(path, rows_n, size, "regression", log)
    if rows_n is None:
        with open(path, "rb") as f:
            rows_n = sum(1 for _ in f)
    bs = args.batch_size
    lr = args.lr if args.lr is not None else bench.LR.get(("regression", bs),
                                                          bench.LR[("regression", 256)])
    kw = {"path": path, "features": features, "batch_size": bs, "lr": lr,
          "epochs": args.epochs, "evaluate": not args.no_eval}
    runs = plan(sorted(set(args.workers)), sorted(set(args.servers)), not args.no_local_stream,
                tuple(dict.fromkeys(args.worker_cache)))
    timeout = TIMEOUT[mode]

    from sparsetrain.dist.kvstore import ensure_ray

    ncpu = os.cpu_count() or 1
    log(f"ray: joining {args.address} ..." if args.address else
        f"ray: starting locally, num_cpus={ncpu} ...")
    started = ensure_ray(args.address, None if args.address else ncpu)
    import ray

    ray_where = (f"joined `{args.address}` ({ray.cluster_resources().get('CPU', 0):.0f} CPUs; "
                 "one CPU per worker actor)" if args.address else
                 f"local, started once with num_cpus={ncpu} (actors share the cores: num_cpus=0 "
                 "each)")
    results = []
    try:
        if not args.no_warmup:
            warm = os.path.join(WORK, f"warmup_regression_{features}.libsvm")
            bench._generate(warm, 2000, dict(size, features=features), "regression", log)
            wkw = dict(kw, path=warm, epochs=1, evaluate=False)
            with console.status("warm-up (numba's on-disk cache, Ray's worker pool)"):
                w = measure(runs[0], wkw, args.address, timeout)
                if w.get("status") != "ok":
                    log(f"warm-up local: {bench.fmt_status(w)}")
                w = measure(Run("warm-up", "dist_sync", max(args.workers), args.servers[0]), wkw,
                            args.address, timeout)
                if w.get("status") != "ok":
                    log(f"warm-up dist: {bench.fmt_status(w)}")
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
        for i, r in enumerate(runs, 1):
            label = f"[{i}/{len(runs)}] {r.name}"
            tries = []
            for k in range(args.repeat):
                with console.status(label + (f" (run {k + 1}/{args.repeat})"
                                             if args.repeat > 1 else "")):
                    tries.append(measure(r, kw, args.address, timeout))
            res = {"run": r.name, "kvstore": r.kvstore, "workers": r.workers,
                   "servers": r.servers, "data_path": r.data_path(), **best(tries)}
            results.append(res)
            if res.get("status") == "ok":
                log(f"{label}: {res['samples_per_s']:,.0f} samples/s, "
                    f"{res['epoch_seconds']:.3f} s/epoch, "
                    f"{res.get('bytes_per_step', 0):,} bytes/step, "
                    f"call {res['call_seconds']:.1f} s")
            else:
                log(f"{label}: {bench.fmt_status(res)}")
        model_meta = cost_model_meta(results, args.servers[0], ncpu, log)
    finally:
        if started:
            ray.shutdown()

    console.print()
    print_table(results, console)
    meta = {"date": _dt.date.today().isoformat(),
            "argv": " ".join(sys.argv[1:] if argv is None else argv),
            "machine": bench.machine(), "ray": _ray_version(), "ray_where": ray_where,
            "load": load, "data": os.path.relpath(path, ROOT) if path.startswith(ROOT) else path,
            "rows": rows_n, "features": features,
            "nnz": None if args.data else size["nnz_per_row"],
            "mb": os.path.getsize(path) / 1e6, "batch_size": bs, "lr": lr,
            "epochs": args.epochs, "repeat": args.repeat, "cores": ncpu, "mode": mode,
            "cost_model": model_meta}
    console.print()
    if model_meta:
        console.print(cost_model_text(model_meta), soft_wrap=False)
    console.print(scaling_text(results, meta), soft_wrap=False)
    bench.save_raw(f"dist-results-{mode}", meta, results, log, work=WORK)
    if args.out:
        out = os.path.abspath(args.out)
        old = ""
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                old = f.read()
        new = bench.replace_block(old, render_section(results, meta))
        with open(out, "w", encoding="utf-8") as f:
            f.write(new)
        log(f"wrote the dist section of {os.path.relpath(out, ROOT) if out.startswith(ROOT) else out}")
    return 0 if all(r.get("status") == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
