"""The compiled engine's per-call set-up on a streamed epoch's one-batch pieces.

    python -m benchmarks.call_setup [--calls 200] [--rounds 7] [--batch 256] [--against REV ...]

A streamed epoch (``data.cache: stream``) trains each parsed chunk's batches in one engine call and the
batch spanning two chunks in a call of its own (~71 calls an epoch of the 500k-row file at batch 256).
This times those calls as the streamed epoch makes them (``engines.compiled.run_found`` on an
``EpochPiece``, unchecked, not remembered): a linear regression over 1M features (row-sparse weight and a
bias, SGD, mse) on one-batch pieces of fresh CSR rows (23 uniformly drawn columns a row, built before the
timing), ``--calls`` a round; ``--rows R``: pieces of R rows in batches of ``--batch`` instead (a streamed chunk
at batch 1 is one piece of ~29,000 one-row batches). Printed per round, median and range over the rounds: the
calling thread's CPU µs per call, and per call outside the compiled loop's call (the Python set-up; the loop's call
itself includes numba's dispatch). Thread CPU, not wall time: another process's load does not count.
``--against REV``: the same in a child process over ``git archive`` copies of ``sparsetrain/`` at each
revision, in turn with this tree (one child per tree and pass). Nothing here is a test: no timing is asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(calls: int, rounds: int, batch: int, rows: int = 0, features: int = 1_000_000, nnz: int = 23) -> dict:
    """``{"total": [...], "setup": [...]}``: µs per call of each round (pieces of ``rows`` rows in batches of
    ``batch``; 0 rows: one batch)."""
    import sparsetrain as st
    from sparsetrain.engines import compiled
    from sparsetrain.engines.compiled import kernels
    from sparsetrain.io import DataDesc
    from sparsetrain.io.stream_rows import EpochPiece
    from sparsetrain.ndarray import CSRNDArray, NDArray

    rng = np.random.default_rng(0)
    data = st.sym.Variable("data", stype="csr")
    w = st.sym.Variable("weight", stype="row_sparse", shape=(features, 1), init=st.initializer.Zero())
    pred = st.sym.broadcast_add(st.sym.sparse.dot(data, w), st.sym.Variable("bias", shape=(1,)))
    loss = st.sym.LinearRegressionOutput(data=pred, label=st.sym.Variable("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind([DataDesc("data", (batch, features))], [DataDesc("label", (batch,))])
    mod.init_params()
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.25, "rescale_grad": 1.0 / batch})
    metric = st.metric.create("mse")
    view = mod.view()

    n = rows or batch

    def piece():
        cols = np.sort(rng.integers(0, features, size=(n, nnz)), axis=1).astype(np.int64).reshape(-1)
        x = CSRNDArray(rng.random(n * nnz, dtype=np.float32), cols,
                       np.arange(n + 1, dtype=np.int64) * nnz, (n, features))
        y = NDArray(rng.random(n, dtype=np.float32))
        return EpochPiece([("data", x)], [("label", y)], np.arange(n, dtype=np.int64),
                          np.arange(n // batch + 1, dtype=np.int64) * batch, 0, None, True)

    warm = [piece() for _ in range(20)]
    found = compiled.match(view, warm[0], metric)
    if not found.ok:
        raise SystemExit(found.reason)

    def run(pieces):
        for p in pieces:
            compiled.run_found(view, found, p, metric, None, 0, None, check_params=False, team=None, remember=False)

    run(warm)  # compiles (or loads) the loop
    in_loop = [0.0]
    select = kernels.EpochKernel.select

    def timed_select(self, *args):  # times the compiled loop's call inside EpochKernel.__call__
        loop, one = select(self, *args)

        def timed(*a):
            t0 = time.thread_time()
            out = loop(*a)
            in_loop[0] += time.thread_time() - t0
            return out
        return timed, one

    kernels.EpochKernel.select = timed_select
    total, setup = [], []
    for _ in range(rounds):
        pieces = [piece() for _ in range(calls)]
        in_loop[0] = 0.0
        t0 = time.thread_time()
        run(pieces)
        t = time.thread_time() - t0
        total.append(t / calls * 1e6)
        setup.append((t - in_loop[0]) / calls * 1e6)
    kernels.EpochKernel.select = select
    return {"total": total, "setup": setup, "tree": os.path.dirname(os.path.dirname(os.path.abspath(st.__file__)))}


def _line(name: str, r: dict) -> str:
    t, s = r["total"], r["setup"]
    return (f"{name}: {np.median(t):.1f} us/call ({min(t):.1f}-{max(t):.1f}), outside the compiled loop "
            f"{np.median(s):.1f} us/call ({min(s):.1f}-{max(s):.1f})")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rows", type=int, default=0,
                    help="rows a piece, in batches of --batch (default: one batch; a streamed chunk at batch 1: ~29000)")
    ap.add_argument("--against", nargs="*", default=[])
    ap.add_argument("--passes", type=int, default=2, help="with --against: children per tree, in turn")
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.json:
        print(json.dumps(measure(args.calls, args.rounds, args.batch, args.rows)))
        return
    shape = f"pieces of {args.rows} rows in batches of {args.batch}" if args.rows else f"one-batch pieces of {args.batch} rows"
    print(f"load {os.getloadavg()[0]:.2f}; {shape}, {args.calls} calls x {args.rounds} rounds")
    if not args.against:
        print(_line("this tree", measure(args.calls, args.rounds, args.batch, args.rows)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT}
        for rev in args.against:
            dest = os.path.join(tmp, rev.replace("/", "_"))
            os.makedirs(dest)
            archive = subprocess.run(["git", "-C", ROOT, "archive", rev, "sparsetrain"], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", dest], input=archive, check=True)
            trees[rev] = dest
        # run as a script: its folder, not the repository, leads sys.path, so PYTHONPATH picks the tree
        cmd = [sys.executable, os.path.abspath(__file__), "--json", "--calls", str(args.calls),
               "--rounds", str(args.rounds), "--batch", str(args.batch), "--rows", str(args.rows)]
        for _ in range(args.passes):
            for name, path in trees.items():
                env = dict(os.environ, PYTHONPATH=os.pathsep.join([path, ROOT]))
                out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
                result = json.loads(out.strip().splitlines()[-1])
                if os.path.realpath(result["tree"]) != os.path.realpath(path):
                    raise SystemExit(f"{name}: the child imported sparsetrain from {result['tree']}, not {path}")
                print(_line(name, result), f"(load {os.getloadavg()[0]:.2f})",
                      flush=True)


if __name__ == "__main__":
    main()
