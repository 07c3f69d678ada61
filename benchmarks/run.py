"""Run sparsetrain and its peers side by side and print the ratios (SPEC §6, issue 7).

    python -m benchmarks.run [--quick] [--only NAME ...] [--out benchmarks/RESULTS.md]

Every measurement runs in its own subprocess (``benchmarks._child`` or, for MXNet, the python
of ``benchmarks/_work/mxnet-venv``) and reports one JSON line; its peak RSS is read from
``os.wait4``. A peer that is not installed is "not available" (with the reason), one of our
entry points that is not written yet is "pending"; neither stops the run. Data is generated
into ``benchmarks/_work/`` (git-ignored) and reused when present. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import fnmatch
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")
WORK = os.path.join(BENCH, "_work")
MARK = "BENCH_JSON "

# ---------------------------------------------------------------------------------------------
# sizes and hyper-parameters (the same for every implementation of a workload)

SIZES = {
    "full": {"rows": 500_000, "features": 1_000_000, "nnz_per_row": 23, "parse_min_mb": 200,
             "scaling_rows": [62_500, 125_000, 250_000], "seed_epochs": 10},
    "quick": {"rows": 20_000, "features": 100_000, "nnz_per_row": 23, "parse_min_mb": 20,
              "scaling_rows": [5_000, 10_000], "seed_epochs": 2},
}
ZIPF_A = 1.2
LR = {("regression", 1): 0.05, ("regression", 256): 0.25,
      ("logistic", 1): 0.05, ("logistic", 256): 2.0}
TIMEOUT = {"full": 1800, "quick": 300}

# speed-up targets of ours over a peer (SPEC §6, issues 4 and 7): (workload, ours, peer) -> x
TARGETS = {
    ("parse", "ours", "sklearn"): 10.0,
    ("parse", "ours", "mxnet"): 2.0,
    ("seed", "ours (cli compiled)", "mxnet"): 150.0,  # issue 15 (SPEC §6: 20x)
    ("seed", "ours (cli graph)", "mxnet"): 3.0,
    ("seed", "ours (module)", "mxnet"): 3.0,
    ("large-b1", "ours", "sklearn"): 1.0,
    ("large-b256", "ours", "torch"): 8.0,  # issue 15 (SPEC §6: 5x)
    ("large-b256", "ours", "mxnet"): 20.0,
}

WORKLOAD_DOC = {
    "parse": "LibSVM parse throughput, file >= {parse_min_mb} MB (zipf columns, "
             "~{nnz_per_row} nnz/row)",
    "seed": "seed tutorial loop: 1000x100 CSR, density 0.01, batch 1, {seed_epochs} epochs, "
            "SGD lr 0.05 momentum 0.9",
    "large-b1": "regression {rows} x {features}, ~{nnz_per_row} nnz/row, zipf columns; "
                "1 epoch at batch 1, SGD lr {lr_r1}",
    "large-b256": "same data, 1 epoch at batch 256, SGD lr {lr_r256} (mean gradient)",
    "logistic-b1": "binary labels on the same X; logistic loss, 1 epoch at batch 1, SGD lr {lr_l1}",
    "logistic-b256": "binary labels on the same X; logistic loss, 1 epoch at batch 256, "
                     "SGD lr {lr_l256}",
}


def is_ours(impl: str) -> bool:
    return impl.startswith("ours")


# ---------------------------------------------------------------------------------------------
# measurements


@dataclass
class Measurement:
    workload: str
    impl: str
    kind: str                     # "child" | "mxnet"
    module: str = ""              # for kind == child: module under benchmarks
    func: str = ""
    kwargs: dict = field(default_factory=dict)
    rows: int | None = None       # data rows (scaling plot)
    scaling: bool = False         # a point of the epoch-time-vs-rows sweep only
    warmup: dict | None = None    # kwargs of a throw-away run first (JIT caches)


def run_subprocess(cmd: list[str], env: dict, timeout: float, cwd: str = ROOT) -> dict:
    """Run ``cmd``, return its ``BENCH_JSON`` dict plus ``peak_rss_mb`` and ``wall_seconds``."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=out, stderr=err, cwd=cwd, env=env,
                             stdin=subprocess.DEVNULL)
        deadline = t0 + timeout
        killed = False
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if not killed and time.perf_counter() > deadline:
                p.kill()
                killed = True
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    res = parse_result(stdout)
    if res is None:
        tail = "\n".join(stderr.strip().splitlines()[-3:]) or stdout.strip()[-300:]
        reason = f"timed out after {timeout:.0f} s" if killed else \
            f"exit code {p.returncode}, no result: {tail}"
        res = {"status": "error", "reason": reason}
    # the child's own VmHWM when it reported one; ru_maxrss (KiB) would include the parent's
    # RSS at fork time on Linux
    res["rusage_maxrss_mb"] = ru.ru_maxrss / 1024.0
    if res.get("peak_rss_mb") is None:
        res["peak_rss_mb"] = res["rusage_maxrss_mb"]
    res["wall_seconds"] = wall
    return res


def parse_result(stdout: str) -> dict | None:
    """The last ``BENCH_JSON {...}`` line of a child's stdout, or None."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARK):
            try:
                obj = json.loads(line[len(MARK):])
            except json.JSONDecodeError:
                return None
            return obj if isinstance(obj, dict) else None
    return None


def child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["MXNET_STORAGE_FALLBACK_LOG_VERBOSE"] = "0"  # MXNet's per-step fallback log is slow
    env.setdefault("PYTHONWARNINGS", "ignore")
    return env


def command_for(m: Measurement, kwargs: dict) -> list[str]:
    if m.kind == "mxnet":
        from benchmarks.peers import mxnet_peer

        return mxnet_peer.command(m.func, kwargs)
    return [sys.executable, "-m", "benchmarks._child", m.module, m.func, json.dumps(kwargs)]


# ---------------------------------------------------------------------------------------------
# availability of the peers (checked in the parent, cheaply)


def peer_status(setup_mxnet: bool, log) -> dict[str, str | None]:
    """impl -> None when available, else the reason it is not."""
    st: dict[str, str | None] = {}
    for impl, mod, hint in (("sklearn", "sklearn", "pip install scikit-learn"),
                            ("torch", "torch", "pip install torch==2.13.0"),
                            ("vw", "vowpalwabbit", "pip install vowpalwabbit")):
        st[impl] = None if importlib.util.find_spec(mod) else \
            f"{mod} is not installed in {sys.prefix} ({hint})"
    st["mxnet"] = mxnet_status(setup_mxnet, log)
    return st


def mxnet_status(setup: bool, log) -> str | None:
    from benchmarks.peers import mxnet_peer

    py = mxnet_peer.venv_python()
    check = [py, "-c", "import warnings; warnings.filterwarnings('ignore'); import mxnet"]
    if os.path.exists(py) and subprocess.run(check, capture_output=True).returncode == 0:
        return None
    if not setup:
        return ("benchmarks/_work/mxnet-venv missing or broken "
                "(run bash benchmarks/mxnet_env.sh, or drop --no-setup)")
    log("creating benchmarks/_work/mxnet-venv (pip install mxnet==1.9.1 numpy==1.23.5) ...")
    p = subprocess.run(["bash", mxnet_peer.ENV_SCRIPT], capture_output=True, text=True)
    if p.returncode == 0:
        return None
    lines = [x for x in (p.stderr + p.stdout).strip().splitlines() if x.strip()]
    errs = [x for x in lines if "ERROR" in x or "Error" in x] or lines[-2:]
    return "mxnet_env.sh failed: " + " | ".join(errs[-2:])[:400]


# ---------------------------------------------------------------------------------------------
# data


def datagen():
    """The project's generator, ``sparsetrain.io.synthetic.generate_libsvm``."""
    try:
        from sparsetrain.io.synthetic import generate_libsvm
    except ImportError as e:
        raise SystemExit(f"no data generator: sparsetrain.io.synthetic does not import ({e})") \
            from e
    return generate_libsvm, "sparsetrain.io.synthetic.generate_libsvm"


def _generate(path: str, rows: int, cfg: dict, task: str, log) -> str:
    """Generate ``path`` unless present (the generator writes a temporary file and renames it,
    and saves the true weights as ``<path>.weights.npy``)."""
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return path
    gen, where = datagen()
    log(f"generating {os.path.relpath(path, ROOT)} ({rows} rows, {task}) with {where} ...")
    t0 = time.perf_counter()
    gen(path, rows, cfg["features"], nnz_per_row=cfg["nnz_per_row"], columns="zipf",
        zipf_a=ZIPF_A, task=task, target="random", noise=0.0, seed=0, zero_based=True)
    log(f"  {os.path.getsize(path) / 1e6:.0f} MB in {time.perf_counter() - t0:.0f} s")
    return path


@dataclass
class DataSet:
    regression: str
    binary: str
    parse: str
    scaling: dict  # rows -> path (regression)


def prepare_data(cfg: dict, mode: str, need: set[str], log) -> DataSet:
    from benchmarks import _data

    os.makedirs(WORK, exist_ok=True)
    tag = f"{mode}_{cfg['rows']}x{cfg['features']}"
    reg = os.path.join(WORK, f"reg_{tag}.libsvm")
    binf = os.path.join(WORK, f"bin_{tag}.libsvm")
    parse = reg
    scaling = {}
    if need & {"large-b1", "large-b256", "parse", "scaling"}:
        _generate(reg, cfg["rows"], cfg, "regression", log)
    if need & {"logistic-b1", "logistic-b256"}:
        _generate(binf, cfg["rows"], cfg, "binary", log)
    if "parse" in need:
        size = os.path.getsize(reg)
        min_bytes = cfg["parse_min_mb"] * 1e6
        if size < min_bytes:  # a bigger file for the parse workload only
            rows = int(cfg["rows"] * min_bytes * 1.05 / size) + 1
            parse = _generate(os.path.join(WORK, f"parse_{mode}_{rows}x{cfg['features']}.libsvm"),
                              rows, cfg, "regression", log)
    if "scaling" in need:
        for r in cfg["scaling_rows"]:
            scaling[r] = _data.head_file(reg, reg.replace(".libsvm", f".head{r}.libsvm"), r)
    for path, used in ((reg, need & {"large-b1", "large-b256"}),
                       (binf, need & {"logistic-b1", "logistic-b256"}),
                       *((p, {"scaling"}) for p in scaling.values())):
        if used and os.path.exists(path):
            if not os.path.exists(_data.npz_path(path)):
                log(f"caching {os.path.relpath(path, ROOT)} as .npz (scikit-learn parse) ...")
            _data.ensure_npz(path, cfg["features"])
    return DataSet(reg, binf, parse, scaling)


def tiny_files(cfg: dict, log) -> dict:
    """Small files for warm-up runs of our numba code (fills the on-disk JIT cache)."""
    from benchmarks import _data

    small = dict(cfg, features=cfg["features"])
    out = {}
    for task in ("regression", "binary"):
        p = os.path.join(WORK, f"warmup_{task}_{cfg['features']}.libsvm")
        _generate(p, 2000, small, task, log)
        _data.ensure_npz(p, cfg["features"])
        out[task] = p
    return out


# ---------------------------------------------------------------------------------------------
# the plan


def plan(cfg: dict, data: DataSet | None, warm: dict | None) -> list[Measurement]:
    d = cfg["features"]
    P = (lambda attr: getattr(data, attr)) if data else (lambda attr: "")
    ms: list[Measurement] = []

    def wk(task):
        return None if not warm else {"path": warm["regression" if task == "regression"
                                                   else "binary"]}

    # parse
    ms.append(Measurement("parse", "ours", "child", "_ours", "parse",
                          {"path": P("parse"), "num_features": d},
                          warmup=None if not warm else {"path": warm["regression"],
                                                        "num_features": d}))
    ms.append(Measurement("parse", "sklearn", "child", "peers.sklearn_peer", "parse",
                          {"path": P("parse"), "num_features": d}))
    ms.append(Measurement("parse", "mxnet", "mxnet", func="parse",
                          kwargs={"path": P("parse"), "num_features": d}))
    # seed
    se = cfg["seed_epochs"]
    ms.append(Measurement("seed", "ours (module)", "child", "_ours", "seed_module",
                          {"epochs": se}, warmup={"epochs": 1} if warm else None))
    ms.append(Measurement("seed", "ours (cli compiled)", "child", "_ours", "seed_cli",
                          {"engine": "compiled"}))
    ms.append(Measurement("seed", "ours (cli graph)", "child", "_ours", "seed_cli",
                          {"engine": "graph"}))
    ms.append(Measurement("seed", "mxnet", "mxnet", func="seed", kwargs={"epochs": se}))

    # training workloads
    def train_rows(workload, task, bs, path, rows, scaling=False):
        lr = LR[(task, bs)]
        kw = {"path": path, "task": task, "lr": lr, "batch_size": bs, "epochs": 1,
              "num_features": d}
        w = wk(task)
        # ours: what a user gets, train.threads' default (auto: a thread per core, Hogwild); and one thread
        out = [Measurement(workload, "ours", "child", "_ours", "train", dict(kw, threads="auto"), rows,
                           scaling, warmup=None if not w else dict(kw, threads="auto", **w))]
        if not scaling:
            out.append(Measurement(workload, "ours (1 thread)", "child", "_ours", "train", dict(kw, threads=1),
                                   rows, warmup=None if not w else dict(kw, threads=1, **w)))
        if bs == 1:
            out.append(Measurement(workload, "sklearn", "child", "peers.sklearn_peer", "train",
                                   kw, rows, scaling))
            if task == "regression":
                out.append(Measurement(workload, "vw", "child", "peers.vw_peer", "train", kw,
                                       rows, scaling))
        else:
            out.append(Measurement(workload, "torch", "child", "peers.torch_peer", "train", kw,
                                   rows, scaling))
            out.append(Measurement(workload, "mxnet", "mxnet", func="train",
                                   kwargs=dict(kw, iterator="libsvm"), rows=rows,
                                   scaling=scaling))
            if not scaling:
                out.append(Measurement(workload, "mxnet (in-memory)", "mxnet", func="train",
                                       kwargs=dict(kw, iterator="ndarray"), rows=rows))
        return out

    n = cfg["rows"]
    ms += train_rows("large-b1", "regression", 1, P("regression"), n)
    ms += train_rows("large-b256", "regression", 256, P("regression"), n)
    ms += train_rows("logistic-b1", "logistic", 1, P("binary"), n)
    ms += train_rows("logistic-b256", "logistic", 256, P("binary"), n)
    for r in cfg["scaling_rows"]:
        path = data.scaling.get(r, "") if data else ""
        ms += train_rows(f"large-b1@{r}", "regression", 1, path, r, scaling=True)
        ms += train_rows(f"large-b256@{r}", "regression", 256, path, r, scaling=True)
    return ms


def base_workload(m: Measurement) -> str:
    return "scaling" if m.scaling else m.workload


def select(ms: list[Measurement], only: list[str] | None) -> list[Measurement]:
    """``--only`` names match workloads (``parse``, ``seed``, ``large-b256``, ``scaling``, globs
    like ``large*``) and/or implementations (``ours``, ``torch``, ``mxnet`` ...). Workload names
    and implementation names combine with AND."""
    if not only:
        return ms
    wnames = {base_workload(m) for m in ms} | {m.workload for m in ms}
    inames = {m.impl for m in ms} | {m.impl.split(" ")[0] for m in ms}
    wsel = [o for o in only if any(fnmatch.fnmatch(w, o) for w in wnames)]
    isel = [o for o in only if any(fnmatch.fnmatch(i, o) for i in inames)]
    unknown = [o for o in only if o not in wsel and o not in isel]
    if unknown:
        raise SystemExit(f"--only: unknown name(s) {unknown}; workloads: "
                         f"{sorted({base_workload(m) for m in ms})}, implementations: "
                         f"{sorted({m.impl for m in ms})}")

    def ok(m):
        w = not wsel or any(fnmatch.fnmatch(base_workload(m), o) or fnmatch.fnmatch(m.workload, o)
                            for o in wsel)
        i = not isel or any(fnmatch.fnmatch(m.impl, o) or fnmatch.fnmatch(m.impl.split(" ")[0], o)
                            for o in isel)
        return w and i

    return [m for m in ms if ok(m)]


def peer_of(impl: str) -> str | None:
    base = impl.split(" ")[0]
    return None if is_ours(impl) else base


# ---------------------------------------------------------------------------------------------
# results: metric, ratios, tables


def primary(res: dict, workload: str):
    """(value, unit, smaller_is_better) of the number the ratios compare."""
    if res.get("status") != "ok":
        return None
    if workload == "parse":
        return res.get("parse_seconds")
    if workload == "seed":
        return res.get("us_per_step")
    return res.get("epoch_seconds")


def best_of(tries: list[dict], workload: str) -> dict:
    """The fastest successful try (peak RSS: the largest of all tries); else the last try."""
    ok = [t for t in tries if t.get("status") == "ok" and primary(t, workload) is not None]
    if not ok:
        return tries[-1]
    best = dict(min(ok, key=lambda t: primary(t, workload)))
    if len(tries) > 1:
        best["tries"] = [primary(t, workload) for t in ok]
        best["peak_rss_mb"] = max(t.get("peak_rss_mb") or 0 for t in ok)
    return best


def ratios(results: list[dict]) -> list[dict]:
    """For every workload: each of our rows against each peer row, speed-up = peer / ours."""
    out = []
    by_w: dict[str, list[dict]] = {}
    for r in results:
        if r.get("scaling"):
            continue
        by_w.setdefault(r["workload"], []).append(r)
    for w, rows in by_w.items():
        ours = [r for r in rows if is_ours(r["impl"])]
        peers = [r for r in rows if not is_ours(r["impl"])]
        for o in ours:
            for p in peers:
                ov, pv = primary(o, w), primary(p, w)
                speed = pv / ov if ov and pv else None
                tgt = TARGETS.get((w, o["impl"], p["impl"]))
                if speed is None:
                    why = o.get("status") if o.get("status") != "ok" else p.get("status")
                else:
                    why = ""
                out.append({"workload": w, "ours": o["impl"], "peer": p["impl"], "speedup": speed,
                            "target": tgt, "met": None if speed is None or tgt is None
                            else speed >= tgt, "why": why,
                            "ours_loss": o.get("final_loss"), "peer_loss": p.get("final_loss")})
    return out


def fmt_time(r: dict) -> str:
    if r.get("status") != "ok":
        return "—"
    w = r["workload"]
    if w == "parse":
        return f"{r['parse_seconds']:.2f} s ({r['mb_per_s']:.0f} MB/s)"
    if w == "seed":
        return f"{r['us_per_step']:.1f} µs/step ({r.get('train_seconds', 0):.2f} s)"
    return f"{r['epoch_seconds']:.3f} s/epoch"


def fmt_num(v, spec=".3f", none="—") -> str:
    if v is None:
        return none
    try:
        return format(float(v), spec)
    except (TypeError, ValueError):
        return str(v)


def fmt_loss(r: dict) -> str:
    if r.get("status") != "ok" or r.get("final_loss") is None:
        return "—"
    return f"{r.get('loss_name', '')} {float(r['final_loss']):.4g}"


def fmt_status(r: dict, width: int = 160) -> str:
    s = r.get("status", "?")
    if s == "ok":
        return "ok"
    reason = " ".join(str(r.get("reason", "")).split())
    if len(reason) > width:
        reason = reason[: width - 1] + "…"
    return f"{s}: {reason}"


def table_rows(results: list[dict]) -> list[list[str]]:
    rows = []
    for r in results:
        if r.get("scaling"):
            continue
        data_s = r.get("data_seconds")
        rows.append([r["workload"], r["impl"], fmt_time(r),
                     fmt_num(data_s, ".2f") if r.get("status") == "ok" else "—",
                     fmt_num(r.get("peak_rss_mb"), ".0f") if r.get("status") == "ok" else "—",
                     fmt_loss(r), fmt_status(r)])
    return rows


TABLE_HEAD = ["workload", "implementation", "time", "data/prep s", "peak RSS MB", "final loss",
              "status"]
RATIO_HEAD = ["workload", "ours", "vs peer", "speed-up (peer time / ours)", "target", "losses"]


def ratio_rows(rs: list[dict]) -> list[list[str]]:
    out = []
    for x in rs:
        sp = f"{x['speedup']:.2f}x" if x["speedup"] is not None else f"({x['why']})"
        tgt = "" if x["target"] is None else f">= {x['target']:g}x" + (
            "" if x["met"] is None else (" met" if x["met"] else " MISSED"))
        losses = ""
        if x["ours_loss"] is not None and x["peer_loss"] is not None:
            losses = f"{float(x['ours_loss']):.4g} vs {float(x['peer_loss']):.4g}"
        out.append([x["workload"], x["ours"], x["peer"], sp, tgt, losses])
    return out


def scaling_series(results: list[dict]) -> dict:
    """{"batch 1": {impl: [(rows, s), ...]}, "batch 256": {...}} including the full-size point."""
    series: dict[str, dict[str, list]] = {"regression, batch 1": {}, "regression, batch 256": {}}
    for r in results:
        w = r["workload"]
        key = None
        if w == "large-b1" or w.startswith("large-b1@"):
            key = "regression, batch 1"
        elif w == "large-b256" or w.startswith("large-b256@"):
            key = "regression, batch 256"
        if key is None or r.get("status") != "ok" or r.get("rows") is None:
            continue
        if r["impl"] == "mxnet (in-memory)":
            continue
        series[key].setdefault(r["impl"], []).append((int(r["rows"]), float(r["epoch_seconds"])))
    for s in series.values():
        for v in s.values():
            v.sort()
    return series


def plot(results: list[dict], path: str) -> str | None:
    series = scaling_series(results)
    if not any(series.values()):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (title, s) in zip(axes, series.items()):
        for impl, pts in sorted(s.items()):
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", label=impl, linewidth=2 if is_ours(impl) else 1.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("rows")
        ax.set_ylabel("seconds per epoch")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if s:
            ax.legend()
    fig.suptitle("Epoch time vs rows (1M features, ~23 nnz/row, zipf columns)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# machine


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = None
    try:
        import psutil

        ram = psutil.virtual_memory().total
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                ram = int(f.readline().split()[1]) * 1024
        except OSError:
            pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": None if ram is None else ram / 2**30,
            "os": platform.platform(), "python": platform.python_version()}
    for mod in ("numpy", "scipy", "numba", "sklearn", "torch", "vowpalwabbit"):
        if importlib.util.find_spec(mod) is None:
            continue
        try:
            info[mod] = importlib.import_module(mod).__version__
        except Exception:  # noqa: BLE001
            info[mod] = "?"
    return info


def machine_line(mi: dict) -> str:
    ram = f"{mi['ram_gb']:.0f} GiB RAM" if mi.get("ram_gb") else "RAM ?"
    return f"{mi['cpu']}, {mi['cores']} cores, {ram}, {mi['os']}"


def save_raw(stem: str, meta: dict, results: list[dict], log, work: str | None = None) -> str:
    """Every number of a run as ``<work>/<stem>-<time>.json`` (``benchmarks/_work``); its path."""
    work = work or WORK
    os.makedirs(work, exist_ok=True)
    raw = os.path.join(work, f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}.json")
    with open(raw, "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1, default=str)
    log(f"raw results: {os.path.relpath(raw, ROOT)}")
    return raw


# ---------------------------------------------------------------------------------------------
# markdown

# a section another script owns (benchmarks/dist.py): it and every section after it (the dated notes
# of other scripts' runs) are kept when --out rewrites the file
DIST_START, DIST_END = "<!-- dist:start -->", "<!-- dist:end -->"


def find_block(text: str, start: str = DIST_START, end: str = DIST_END) -> str | None:
    """The ``start ... end`` block of ``text`` (markers included), or None."""
    i = text.find(start)
    if i < 0:
        return None
    j = text.find(end, i + len(start))
    if j < 0:
        return None
    return text[i:j + len(end)]


def replace_block(text: str, block: str, start: str = DIST_START, end: str = DIST_END) -> str:
    """``text`` with its ``start ... end`` block replaced by ``block`` (which carries the
    markers), or with ``block`` appended when there is none."""
    block = block.strip("\n")
    old = find_block(text, start, end)
    if old is not None:
        return text.replace(old, block, 1)
    text = text.rstrip("\n")
    return (text + "\n\n" if text else "") + block + "\n"


def keep_blocks(new_text: str, old_text: str) -> str:
    """``new_text`` (this script's tables) followed by ``old_text`` from its dist block on: the dist
    section and the sections after it, which other scripts' runs wrote, survive a rewrite."""
    i = old_text.find(DIST_START)
    if find_block(old_text) is None or find_block(new_text) is not None:
        return new_text
    return new_text.rstrip("\n") + "\n\n" + old_text[i:]


def md_table(head: list[str], rows: list[list[str]]) -> str:
    def esc(s):
        return str(s).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(results: list[dict], meta: dict) -> str:
    date = meta["date"]
    mi = meta["machine"]
    versions = ", ".join(f"{k} {mi[k]}" for k in ("numpy", "scipy", "numba", "sklearn", "torch",
                                                  "vowpalwabbit") if k in mi)
    mx_ver = next((r.get("version") for r in results if r["impl"].startswith("mxnet")
                   and r.get("version")), None)
    if mx_ver:
        versions += f", mxnet {mx_ver} (own venv, numpy 1.23.5)"
    main = [r for r in results if not r.get("scaling")]
    peers = [r for r in main if not is_ours(r["impl"])]
    ours = [r for r in main if is_ours(r["impl"])]
    out = [
        "# Benchmark results",
        "",
        f"Written by `python -m benchmarks.run {meta['argv']}` on {date}; "
        "every row below comes from that one run on this machine. How to reproduce and what each "
        "workload is: [README.md](README.md).",
        "",
        "## Machine",
        "",
        f"- {machine_line(mi)}",
        f"- Python {mi['python']}; {versions}",
        f"- Mode: `{meta['mode']}`; data generator: {meta.get('generator', '?')}",
        "",
        "## Workloads",
        "",
    ]
    for w, doc in WORKLOAD_DOC.items():
        out.append(f"- **{w}**: {doc.format(**meta['docvars'])}")
    out += ["", f"## Peers (measured {date})", "",
            md_table(TABLE_HEAD, table_rows(peers)), "",
            f"## Ours (measured {date})", "",
            md_table(TABLE_HEAD, table_rows(ours)) if ours else "_not run_", "",
            "## Ratios (same run)", "",
            md_table(RATIO_HEAD, ratio_rows(ratios(results))) if ratios(results) else "_none_",
            ""]
    series = scaling_series(results)
    if any(series.values()):
        out += ["## Epoch time vs rows", ""]
        if meta.get("plot"):
            out += [f"![epoch time vs rows]({meta['plot']})", ""]
        rows = []
        for title, s in series.items():
            for impl, pts in sorted(s.items()):
                rows.append([title, impl, ", ".join(f"{n:,}: {t:.3f} s" for n, t in pts)])
        out += [md_table(["workload", "implementation", "rows: seconds per epoch"], rows), ""]
    out += ["## Definitions", "",
            "- *time*: training seconds of one epoch (parse and tensor/iterator preparation "
            "excluded and shown as *data/prep s*), except `parse` (seconds to parse the whole "
            "file, MB/s = file bytes / seconds) and `seed` (µs per forward/update_metric/backward/"
            "update step over the whole loop).",
            "- *threads*: the `ours` rows of the training workloads train as `sparsetrain fit` does "
            "by default, `train.threads: auto` (a thread per core, here 2, Hogwild: results vary "
            "slightly from run to run), in calls of the engine's CHUNK_ROWS rows; `ours (1 thread)` "
            "is the one-thread kernel. PyTorch runs 2 threads (`torch.set_num_threads(2)`); "
            "scikit-learn's `SGDRegressor`/`SGDClassifier`, VW and the MXNet loops run one.",
            "- *seed, CLI rows*: the sum of the epochs' `seconds` in the run's `metrics.jsonl` "
            "(perf_counter, µs; numba compilation excluded, loading the cached kernels — about "
            "0.02 s, in epoch 0 — included), over the 10,000 steps; the run is the second of two "
            "(the first fills numba's cache).",
            "- MXNet's `LibSVMIter` rows stream the file, so their epoch includes MXNet's parse; "
            "the `mxnet (in-memory)` row trains from CSR batches sliced in memory beforehand "
            "(MXNet's `NDArrayIter` over a large CSR slices through a dense fallback of the whole "
            "matrix and is unusable at these sizes).",
            "- *peak RSS*: maximum resident set size (`VmHWM`) of the measurement's own process "
            "(for the CLI rows: of the `sparsetrain fit` process), imports included.",
            "- *final loss*: over the whole training set with the parameters after the epoch "
            "(mse = mean (p - y)^2, log_loss = mean binary cross-entropy); for `seed`, the "
            "tutorial's progressive MSE metric of the last epoch (each implementation draws its "
            "own random seed data with its own `rand_ndarray`; MXNet 1.9.1's draws values in "
            "(0, 0.01), so its labels and MSE are ~100x smaller; the CLI rows train on "
            "`data/linreg.libsvm`).",
            "- *repeats*: with `--repeat N` each measurement runs N times in fresh processes and "
            "the fastest is kept.",
            "- *speed-up*: the peer's time divided by ours (> 1 means ours is faster).",
            ""]
    if meta.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in meta["notes"]] + [""]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# console


def print_tables(results: list[dict], console) -> None:
    from rich.table import Table

    t = Table(title="sparsetrain vs peers", show_lines=False)
    for h in TABLE_HEAD:
        t.add_column(h, overflow="fold")
    prev = None
    for r, row in zip([r for r in results if not r.get("scaling")], table_rows(results)):
        if prev is not None and r["workload"] != prev:
            t.add_section()
        prev = r["workload"]
        style = "bold" if is_ours(r["impl"]) else None
        if r.get("status") != "ok":
            style = "dim"
        t.add_row(*row, style=style)
    console.print(t)
    rs = ratios(results)
    if rs:
        t2 = Table(title="ratios (ours vs each peer, same run)")
        for h in RATIO_HEAD:
            t2.add_column(h, overflow="fold")
        for x, row in zip(rs, ratio_rows(rs)):
            style = None if x["met"] is None else ("green" if x["met"] else "red")
            t2.add_row(*row, style=style)
        console.print(t2)
    series = scaling_series(results)
    if any(series.values()):
        t3 = Table(title="epoch time vs rows")
        for h in ("workload", "implementation", "rows: seconds per epoch"):
            t3.add_column(h, overflow="fold")
        for title, s in series.items():
            for impl, pts in sorted(s.items()):
                t3.add_row(title, impl, ", ".join(f"{n:,}: {v:.3f} s" for n, v in pts))
        console.print(t3)


# ---------------------------------------------------------------------------------------------
# main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small sizes (20k x 100k, 20 MB parse file): a couple of minutes")
    ap.add_argument("--only", nargs="+", metavar="NAME",
                    help="workloads (parse seed large-b1 large-b256 logistic-b1 logistic-b256 "
                         "scaling; globs ok) and/or implementations (ours sklearn torch mxnet vw)")
    ap.add_argument("--out", metavar="FILE",
                    help="rewrite this markdown file (e.g. benchmarks/RESULTS.md; a "
                         "benchmarks/dist.py section in it is kept) and the plot "
                         "epoch_time_vs_rows.png beside it")
    ap.add_argument("--no-setup", action="store_true",
                    help="do not create benchmarks/_work/mxnet-venv when it is missing")
    ap.add_argument("--no-warmup", action="store_true",
                    help="skip the throw-away runs that fill numba's on-disk cache for ours")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run every measurement N times (fresh process each) and keep the fastest")
    ap.add_argument("--list", action="store_true", help="list the measurements and exit")
    args = ap.parse_args(argv)

    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 200)

    def log(msg):
        console.print(f"[dim]{msg}[/dim]")

    mode = "quick" if args.quick else "full"
    cfg = SIZES[mode]
    selected = select(plan(cfg, None, None), args.only)
    if args.list:
        for m in selected:
            console.print(f"{m.workload:20s} {m.impl}")
        return 0
    need = {base_workload(m) for m in selected}

    impls = {m.impl for m in selected}
    status = peer_status(not args.no_setup and any(i.startswith("mxnet") for i in impls), log)
    for impl, why in status.items():
        if why and any(peer_of(i) == impl for i in impls):
            log(f"{impl}: not available ({why})")

    gen_where = datagen()[1]
    data = prepare_data(cfg, mode, need, log)
    warm = None
    if not args.no_warmup and any(is_ours(m.impl) and m.func in ("train", "parse")
                                  for m in selected):
        warm = tiny_files(cfg, log)
    ms = select(plan(cfg, data, warm), args.only)

    load0 = os.getloadavg()
    env = child_env()
    timeout = TIMEOUT[mode]
    results = []
    for i, m in enumerate(ms, 1):
        label = f"[{i}/{len(ms)}] {m.workload} / {m.impl}"
        base = {"workload": m.workload, "impl": m.impl, "rows": m.rows, "scaling": m.scaling}
        peer = peer_of(m.impl)
        if peer and status.get(peer):
            results.append({**base, "status": "not available", "reason": status[peer]})
            log(f"{label}: not available")
            continue
        res = None
        if m.warmup is not None and not args.no_warmup:
            with console.status(label + " (warm-up)"):
                w = run_subprocess(command_for(m, m.warmup), env, timeout)
            if w.get("status") in ("pending", "not available"):
                res = w  # no point measuring what is not there yet
        if res is None:
            tries = []
            for k in range(args.repeat):
                with console.status(label + (f" (run {k + 1}/{args.repeat})"
                                             if args.repeat > 1 else "")):
                    tries.append(run_subprocess(command_for(m, m.kwargs), env, timeout))
            res = best_of(tries, base_workload(m) if not m.scaling else m.workload)
        res = {**base, **{k: v for k, v in res.items() if k != "rows" or v is not None}}
        if res.get("rows") is None:
            res["rows"] = m.rows
        results.append(res)
        summary = fmt_time(res) if res.get("status") == "ok" else fmt_status(res)
        log(f"{label}: {summary}  (rss {res['peak_rss_mb']:.0f} MB, wall {res['wall_seconds']:.1f} s)")

    console.print()
    print_tables(results, console)

    date = _dt.date.today().isoformat()
    meta = {"date": date, "mode": mode, "machine": machine(), "generator": gen_where,
            "argv": " ".join(sys.argv[1:] if argv is None else argv),
            "docvars": {**cfg, "lr_r1": LR[("regression", 1)], "lr_r256": LR[("regression", 256)],
                        "lr_l1": LR[("logistic", 1)], "lr_l256": LR[("logistic", 256)]},
            "notes": [f"load average at the start (1/5/15 min): "
                      f"{' / '.join(f'{x:.2f}' for x in load0)}; repeats: {args.repeat}"]}
    save_raw(f"results-{mode}", meta, results, log)
    if args.out:
        out = os.path.abspath(args.out)
        png = os.path.join(os.path.dirname(out), "epoch_time_vs_rows.png")
        if plot(results, png):
            meta["plot"] = os.path.relpath(png, os.path.dirname(out))
            log(f"wrote {os.path.relpath(png, ROOT)}")
        previous = ""
        if os.path.exists(out):
            with open(out, encoding="utf-8") as f:
                previous = f.read()
        with open(out, "w", encoding="utf-8") as f:  # dist.py's section and those after it are kept
            f.write(keep_blocks(render_markdown(results, meta), previous))
        log(f"wrote {os.path.relpath(out, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
