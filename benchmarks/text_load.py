"""The in-memory load of a data file as `fit` does it (``data.cache: memory``): seconds and peak RSS.

    python benchmarks/text_load.py CONFIG [--repeat 3]

Each repeat is a fresh process that imports sparsetrain (from ``PYTHONPATH``: run it against two
trees to compare them), loads the config's first training file with ``trainer.data.load_file`` and
reports the load's wall seconds and CPU seconds (every thread), the process's peak RSS and its RSS
before the load. One run first
warms the numba cache (not counted). Prints one line per repeat, then min/median.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from sparsetrain.config import load_config
from sparsetrain.trainer import data as D
cfg = load_config(sys.argv[1], [])
path = cfg.train_files()[0]
import sparsetrain.io.csv_reader, sparsetrain.io.vw_reader, sparsetrain.io.libsvm  # imports before the clock
usage = resource.getrusage(resource.RUSAGE_SELF)
before, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime
t = time.perf_counter()
X, y, w = D.load_file(cfg, path)
seconds = time.perf_counter() - t
usage = resource.getrusage(resource.RUSAGE_SELF)
peak, cpu = usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime - cpu
print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": peak, "rss_before_mb": before,
                  "rows": X.shape[0], "nnz": X.nnz, "sparsetrain": sys.modules["sparsetrain"].__file__}))
"""


def run_once(config: str) -> dict:
    # -P: sparsetrain from PYTHONPATH, not from the current directory (a checkout there would win)
    out = subprocess.run([sys.executable, "-P", "-c", CHILD, config], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    run_once(args.config)  # the numba cache, the page cache
    runs = [run_once(args.config) for _ in range(args.repeat)]
    for r in runs:
        print(json.dumps(r))
    secs = [r["seconds"] for r in runs]
    cpus = [r["cpu_seconds"] for r in runs]
    peaks = [r["peak_rss_mb"] for r in runs]
    print(f"load s: min {min(secs):.3f} median {statistics.median(secs):.3f} max {max(secs):.3f}; "
          f"CPU s (all threads): min {min(cpus):.3f} median {statistics.median(cpus):.3f}; "
          f"peak RSS MiB: median {statistics.median(peaks):.0f} (before the load {runs[0]['rss_before_mb']:.0f}); "
          f"{runs[0]['rows']} rows, {runs[0]['nnz']} nnz; {runs[0]['sparsetrain']}")


if __name__ == "__main__":
    main()
