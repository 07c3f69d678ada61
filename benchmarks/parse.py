"""LibSVM parse throughput: sparsetrain vs scikit-learn's ``load_svmlight_file``, same file, same run.

    python -m benchmarks.parse [--rows N] [--repeat K] [--no-sklearn] [--path FILE]

Generates (once, cached in ``benchmarks/_work/``) a LibSVM file of about 210 MB: zipf columns
over 1,000,000 features, 23 non-zeros per row, float regression labels. Then, with the file
in the page cache, it times

- ``sparsetrain.io.load_libsvm`` (whole file into a CSRNDArray; best of ``--repeat`` runs,
  with the process CPU time of that run, which shows whether both cores were free),
- ``sparsetrain.io.LibSVMIter`` streaming every batch of 256 rows (best of ``--repeat``),
- scikit-learn's ``load_svmlight_file`` (one run, float32 values),

and prints MB/s and the ratios. ``run(path, num_features=None, peers=True)`` returns the same
numbers as a dict for the benchmark harness (``parse_seconds`` and ``mb_per_s`` are
``load_libsvm``'s; the MXNet ``LibSVMIter`` numbers come from the harness's own venv).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "_work")
DEFAULT_ROWS = 720_000
FEATURES = 1_000_000
NNZ_PER_ROW = 23


def data_file(rows: int = DEFAULT_ROWS, path: str | None = None) -> str:
    """The benchmark file, generated unless it already exists with the same options."""
    from sparsetrain.io.synthetic import generate_libsvm

    path = path or os.path.join(WORK, f"parse_zipf_{rows}x{FEATURES}.libsvm")
    opts = {"rows": rows, "features": FEATURES, "nnz_per_row": NNZ_PER_ROW, "columns": "zipf", "seed": 0}
    meta = path + ".gen.json"
    if os.path.exists(path) and os.path.exists(meta):
        with open(meta) as f:
            if json.load(f) == opts:
                return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    t = time.perf_counter()
    r = generate_libsvm(path, rows, FEATURES, nnz_per_row=NNZ_PER_ROW, columns="zipf", seed=0)
    print(f"generated {path}: {r.rows} rows, {r.nnz} non-zeros, {r.bytes / 1e6:.0f} MB "
          f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    with open(meta, "w") as f:
        json.dump(opts, f)
    return path


def _warm_page_cache(path: str) -> None:
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(16 << 20)
        while f.readinto(buf):
            pass


def _best(fn, repeat: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the fastest of ``repeat`` runs."""
    best = (float("inf"), 0.0)
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - t, time.process_time() - c))
    return best


def run(path: str, num_features: int | None = None, *, repeat: int = 5, peers: bool = True,
        batch_size: int = 256) -> dict:
    """Time the parsers on ``path``; seconds and MB/s (MB = 10**6 bytes of text).

    ``parse_seconds`` / ``mb_per_s`` are ``load_libsvm`` (best of ``repeat``); ``iter_*`` is
    ``LibSVMIter`` streaming batches of ``batch_size``; with ``peers`` also scikit-learn
    (one run) and the ratios. Every reader uses its defaults (``zero_based="auto"``).
    """
    import numpy as np

    from sparsetrain.io import LibSVMIter, load_libsvm

    mb = os.path.getsize(path) / 1e6
    _warm_page_cache(path)
    # compile (or load the cached) kernels outside the timed region
    os.makedirs(WORK, exist_ok=True)
    tiny = os.path.join(WORK, "_warmup.libsvm")
    with open(tiny, "w") as f:
        f.write("1 1:0.5 3:1.25\n2 2:1e-3\n")
    load_libsvm(tiny)
    next(iter(LibSVMIter(tiny, (3,), batch_size=2)))

    holder = {}

    def ours_load():
        holder["X"], _ = load_libsvm(path, num_features=num_features)

    load_s, load_cpu = _best(ours_load, repeat)
    X = holder.pop("X")
    rows, nnz, d = X.shape[0], X.nnz, X.shape[1]
    del X

    def ours_iter():
        it = LibSVMIter(path, (d,), batch_size=batch_size, round_batch=False)
        holder["rows_iter"] = sum(b.data[0].shape[0] for b in it)

    iter_s, iter_cpu = _best(ours_iter, repeat)
    assert holder["rows_iter"] == rows
    out = {
        "file": path, "mb": mb, "rows": rows, "nnz": nnz, "cpus": os.cpu_count(),
        "parse_seconds": load_s, "mb_per_s": mb / load_s, "parse_cpu_seconds": load_cpu,
        "iter_seconds": iter_s, "iter_mb_per_s": mb / iter_s, "iter_cpu_seconds": iter_cpu,
        "iter_batch_size": batch_size,
    }
    if peers:
        from sklearn.datasets import load_svmlight_file

        t = time.perf_counter()
        Xs, _ = load_svmlight_file(path, n_features=num_features, dtype=np.float32)
        sk_s = time.perf_counter() - t
        assert Xs.nnz == nnz
        del Xs
        out.update({
            "sklearn_seconds": sk_s, "sklearn_mb_per_s": mb / sk_s,
            "ratio_vs_sklearn": sk_s / load_s, "iter_ratio_vs_sklearn": sk_s / iter_s,
        })
    return out


def print_table(res: dict) -> None:
    print(f"file: {res['file']}  ({res['mb']:.0f} MB, {res['rows']:,} rows, {res['nnz']:,} non-zeros, "
          f"{res['cpus']} CPUs)")
    print(f"{'parser':<40}{'seconds':>9}{'cpu s':>8}{'MB/s':>8}{'vs sklearn':>12}")
    rows = [
        ("sparsetrain load_libsvm", res["parse_seconds"], res["parse_cpu_seconds"], res.get("ratio_vs_sklearn")),
        (f"sparsetrain LibSVMIter (batch {res['iter_batch_size']})", res["iter_seconds"], res["iter_cpu_seconds"],
         res.get("iter_ratio_vs_sklearn")),
    ]
    if "sklearn_seconds" in res:
        rows.append(("scikit-learn load_svmlight_file", res["sklearn_seconds"], None, 1.0))
    for name, s, cpu, ratio in rows:
        r = f"{ratio:.1f}x" if ratio is not None else "-"
        c = f"{cpu:.2f}" if cpu is not None else "-"
        print(f"{name:<40}{s:>9.2f}{c:>8}{res['mb'] / s:>8.0f}{r:>12}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=DEFAULT_ROWS)
    ap.add_argument("--path", help="parse this LibSVM file instead of the generated one")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-sklearn", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the result dict as JSON too")
    args = ap.parse_args(argv)
    path = args.path or data_file(args.rows)
    res = run(path, repeat=args.repeat, peers=not args.no_sklearn)
    print_table(res)
    if args.json:
        print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
