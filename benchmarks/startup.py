"""Start-up cost of the CLI: ``sparsetrain --help``, ``infer-stypes``, a warm ``fit``, ``predict`` and
``export`` of its run, and a first-ever ``fit`` (empty numba and plan caches), each in a fresh process, wall
and CPU seconds (median of the runs).

    python -m benchmarks.startup                        # this tree: each command x5, cold fit x2
    python -m benchmarks.startup --baseline /path/tree  # and another checkout, runs interleaved A/B
    python -m benchmarks.startup --cold 0 --repeat 3    # skip the (slow) cold runs
    python -m benchmarks.startup --list-compiles        # every numba function a first-ever fit compiles
    python -m benchmarks.startup --imports              # where a warm fit's start-up goes, by package
    python -m benchmarks.startup --imports -- predict RUN DATA   # ... or another command's

``--imports`` runs the command (default: a warm ``fit`` of ``--config``) with ``python -X importtime``
``--repeat`` times and sums each module's own import time by what it belongs to (median of the runs):
numba's import, numba's target initialisation at the first kernel call (numba imports its lowering
registries then, and through its BLAS check ``scipy.linalg``), numpy, pydantic, sparsetrain's own
modules, and so on, beside the command's whole CPU seconds measured without ``-X importtime``.

A first-ever fit compiles the engine's kernels in a second process while it compiles the data parser
(``sparsetrain/trainer/warmup.py``); ``--list-compiles`` turns that off (``SPARSETRAIN_WARMUP=0``) so
that one process compiles everything, and lists each compilation with its own seconds (nested
compilations apart) and its total.

With ``--baseline`` each measurement alternates between the two trees (same load for both) and a
ratio column says baseline / ours. The load average is printed with the numbers: on a shared
machine wall time is only comparable within one run; CPU seconds are steadier. Targets (issue 15):
first-ever fit of configs/linreg.yaml < 10 s wall, warm < 1.5 s wall. Nothing here is a test.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(tree: str, env_extra: dict) -> dict:
    # plans go under NUMBA_CACHE_DIR; bytecode is cached as on a user's machine (.pyc files written)
    env = {k: v for k, v in os.environ.items() if k not in ("SPARSETRAIN_PLAN_CACHE", "PYTHONDONTWRITEBYTECODE")}
    env.update(PYTHONPATH=tree, **env_extra)
    return env


def run_once(tree: str, args: list[str], env_extra: dict, python_flags=()) -> tuple[float, float, str]:
    """(wall, CPU seconds, stderr) of ``python -m sparsetrain.cli args`` importing ``tree``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, *python_flags, "-m", "sparsetrain.cli", *args], cwd=tree,
                       env=_env(tree, env_extra), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{tree}: sparsetrain {' '.join(args)} failed (exit {p.returncode}):\n{p.stderr[-2000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), p.stderr


# run in a child: a listener on numba's compile events, then ``sparsetrain fit ...``; prints the table at exit
_LIST_COMPILES = r"""
import atexit, sys, time
from numba.core import event
stack, rows = [], []
class Listener(event.Listener):
    def on_start(self, ev):
        stack.append([ev.data["dispatcher"], time.perf_counter(), 0.0])
    def on_end(self, ev):
        d, t0, nested = stack.pop()
        took = time.perf_counter() - t0
        if stack:
            stack[-1][2] += took
        rows.append((took - nested, took, len(stack), d.py_func.__module__ + "." + d.py_func.__qualname__))
event.register("numba:compile", Listener())
def report():
    print(f"{len(rows)} compilations, {sum(r[0] for r in rows):.2f} s in all", file=sys.stderr)
    print("  own s  total s  function (indented: compiled inside the one above it)", file=sys.stderr)
    for own, total, depth, name in sorted(rows, reverse=True):
        print(f"{own:7.2f} {total:8.2f}  {'  ' * depth}{name}", file=sys.stderr)
atexit.register(report)
from sparsetrain.cli import main
main(sys.argv[1:], prog_name="sparsetrain")
"""


def list_compiles(tree: str, config: str) -> None:
    """One first-ever fit of ``config`` in one process (no warm-up child): every numba compilation."""
    work = tempfile.mkdtemp(prefix="st-compiles-")
    env = {k: v for k, v in os.environ.items() if k not in ("SPARSETRAIN_PLAN_CACHE", "PYTHONDONTWRITEBYTECODE")}
    env.update(PYTHONPATH=tree, NUMBA_CACHE_DIR=os.path.join(work, "numba"), SPARSETRAIN_WARMUP="0")
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", _LIST_COMPILES, "fit", config, "-q", "--overwrite", "--output",
                        os.path.join(work, "run")], cwd=tree, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    shutil.rmtree(work, ignore_errors=True)
    print(p.stderr, end="")
    print(f"wall {wall:.2f} s, load average {os.getloadavg()[0]:.2f}")
    if p.returncode != 0:
        sys.exit(f"sparsetrain fit {config} failed (exit {p.returncode})")


def measure(trees: dict, name: str, args_of, repeat: int, cold: bool, work: str) -> dict:
    """``{tree label: [(wall, cpu), ...]}``, the trees' runs interleaved."""
    out = {label: [] for label in trees}
    for i in range(repeat):
        for label, tree in trees.items():
            env = {"NUMBA_CACHE_DIR": os.path.join(work, f"numba-{label}")}
            if cold:  # a fresh numba cache (and plan cache beside it) every time
                shutil.rmtree(env["NUMBA_CACHE_DIR"], ignore_errors=True)
            out[label].append(run_once(tree, args_of(label, i), env)[:2])
        print(f"  {name} {i + 1}/{repeat}  load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    return out


# what a module's own import time is counted as: the first name that its name starts with
_GROUPS = (("numba", "numba"), ("llvmlite", "numba"), ("numpy", "numpy"), ("scipy", "scipy"),
           ("pydantic", "pydantic"), ("pydantic_core", "pydantic"), ("annotated_types", "pydantic"),
           ("typing_inspection", "pydantic"), ("typing_extensions", "pydantic"), ("yaml", "yaml"),
           ("rich", "rich"), ("pygments", "rich"), ("markdown_it", "rich"), ("mdurl", "rich"),
           ("click", "click"), ("sparsetrain", "sparsetrain"))
_TARGET_INIT = "numba's target init at the first kernel call (scipy.linalg included)"
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|( *)(\S+)")


def import_groups(stderr: str) -> dict:
    """``{group: seconds}``: each module's own import time (``-X importtime``'s self column) by what it belongs
    to. What numba imports when its first kernel is called or loaded (its lowering registries, and with them
    ``scipy.linalg``, which its BLAS check imports) is a group of its own: the modules below an outermost
    import of a ``numba.`` module that is not numba's own ``import numba``."""
    groups: dict = {}
    subtree = []  # importtime writes a module after those it imported: an outermost import ends its subtree
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if not m:
            continue
        subtree.append((m[3], int(m[1]) / 1e6))
        if len(m[2]) > 1:
            continue
        names = [name for name, _ in subtree]
        target_init = m[3].startswith("numba.") and "numba" not in names
        for name, seconds in subtree:
            group = _TARGET_INIT if target_init else next(
                (g for prefix, g in _GROUPS if name == prefix or name.startswith(prefix + ".")), "other (stdlib)")
            groups[group] = groups.get(group, 0.0) + seconds
        subtree = []
    return groups


def imports(tree: str, args: list[str], repeat: int, work: str) -> None:
    """Where the start-up of ``sparsetrain args`` goes, by package (see the module doc)."""
    env = {"NUMBA_CACHE_DIR": os.path.join(work, "numba")}
    run_once(tree, args, env)  # the caches (numba's, the plan cache, .pyc files) filled
    totals, per_run = [], []
    for i in range(repeat):
        totals.append(run_once(tree, args, env)[:2])
        per_run.append(import_groups(run_once(tree, args, env, ("-X", "importtime"))[2]))
        print(f"  imports {i + 1}/{repeat}  load {os.getloadavg()[0]:.1f}", file=sys.stderr)
    names = sorted({g for r in per_run for g in r}, key=lambda g: -statistics.median(r.get(g, 0.0) for r in per_run))
    wall, cpu = statistics.median(w for w, _ in totals), statistics.median(c for _, c in totals)
    print(f"\nsparsetrain {' '.join(args)}: {wall:.2f} s wall, {cpu:.2f} CPU s (median of {repeat}, without "
          f"-X importtime); load average {os.getloadavg()[0]:.2f}\n")
    print("| imported | ms (own import time, median) |")
    print("|---|---|")
    for g in names:
        print(f"| {g} | {1000 * statistics.median(r.get(g, 0.0) for r in per_run):.0f} |")
    print(f"| all imports | {1000 * statistics.median(sum(r.values()) for r in per_run):.0f} |")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5, help="runs of each command but the first-ever fit")
    ap.add_argument("--cold", type=int, default=2, help="runs of the first-ever fit (0: skip)")
    ap.add_argument("--baseline", help="another checkout of sparsetrain to compare with")
    ap.add_argument("--config", default="configs/linreg.yaml")
    ap.add_argument("--list-compiles", action="store_true",
                    help="list every numba function a first-ever fit compiles (one process), then stop")
    ap.add_argument("--imports", action="store_true", help="where a command's start-up goes, by package (the "
                    "command after '--'; default a warm fit of --config), then stop")
    ap.add_argument("command", nargs="*", help="with --imports: the sparsetrain command line to look at")
    a = ap.parse_args(argv)
    if a.list_compiles:
        list_compiles(ROOT, a.config)
        return
    if a.imports:
        work = tempfile.mkdtemp(prefix="st-imports-")
        try:
            imports(ROOT, a.command or ["fit", a.config, "-q", "--overwrite", "--output", os.path.join(work, "run")],
                    a.repeat, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    trees = {"ours": ROOT}
    if a.baseline:
        trees["baseline"] = os.path.abspath(a.baseline)
    work = tempfile.mkdtemp(prefix="st-startup-")

    def fit_args(label, i):
        return ["fit", a.config, "-q", "--overwrite", "--output", os.path.join(work, f"run-{label}")]

    load0 = os.getloadavg()
    rows = []
    rows.append(("sparsetrain --help", measure(trees, "help", lambda label, i: ["--help"], a.repeat, False, work)))
    measure(trees, "warm-up", fit_args, 1, False, work)  # fills the caches the warm runs load
    rows.append((f"infer-stypes {a.config}", measure(trees, "infer-stypes", lambda label, i: ["infer-stypes", a.config],
                                                     a.repeat, False, work)))
    rows.append((f"warm fit {a.config} -q", measure(trees, "warm fit", fit_args, a.repeat, False, work)))
    data = _train_file(a.config)

    def predict_args(label, i):
        return ["predict", os.path.join(work, f"run-{label}"), data, "--out", os.path.join(work, f"predictions-{label}.csv")]

    measure(trees, "warm-up", predict_args, 1, False, work)  # its kernels (the forward's) in the cache
    rows.append((f"predict RUN {os.path.relpath(data, ROOT)}", measure(trees, "predict", predict_args, a.repeat,
                                                                       False, work)))
    rows.append(("export RUN", measure(trees, "export", lambda label, i: [
        "export", os.path.join(work, f"run-{label}"), "--out", os.path.join(work, f"weights-{label}.csv")],
        a.repeat, False, work)))
    if a.cold:
        rows.append((f"first-ever fit {a.config} -q", measure(trees, "cold fit", fit_args, a.cold, True, work)))
    load1 = os.getloadavg()
    shutil.rmtree(work, ignore_errors=True)

    print(f"\nload average before {load0[0]:.2f}, after {load1[0]:.2f} ({os.cpu_count()} CPUs); median of n runs\n")
    head = "| command | n | " + " | ".join(f"{t} wall s | {t} CPU s" for t in trees)
    head += " | wall ratio (baseline / ours) | CPU ratio |" if a.baseline else " |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name, res in rows:
        med = {t: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r)) for t, r in res.items()}
        line = f"| {name} | {len(res['ours'])} | " + " | ".join(f"{med[t][0]:.2f} | {med[t][1]:.2f}" for t in trees)
        if a.baseline:
            line += f" | {med['baseline'][0] / med['ours'][0]:.2f}× | {med['baseline'][1] / med['ours'][1]:.2f}× |"
        else:
            line += " |"
        print(line)


def _train_file(config: str) -> str:
    """The training data file of ``config`` (a path as its config resolves it)."""
    import yaml

    path = os.path.join(ROOT, config)
    with open(path, encoding="utf-8") as f:
        train = yaml.safe_load(f)["data"]["train"]
    return os.path.normpath(os.path.join(os.path.dirname(path), train))


if __name__ == "__main__":
    main()
