"""The graph engine's per-parameter update: one ``Optimizer.update`` call, as ``Module.update`` makes it.

    python -m benchmarks.optimizer_update [--calls 20000] [--rounds 7]

Times ``Updater(opt)(index, grad, weight)`` (what the graph engine calls per parameter and batch) on the
seed tutorial's shapes: a row-sparse weight of 100 x 1 with a one-row row-sparse gradient (batch 1), and
a dense bias of 1 element, under SGD with momentum 0.9. Printed per case: the median and range over the
rounds of µs per call. To compare two trees, run it with ``PYTHONPATH`` at each (``git archive REV
sparsetrain``); the first line says which tree it imported. Nothing here is a test: no timing is asserted.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np


def measure(calls: int, rounds: int) -> dict:
    """``{case: [µs per call of each round]}``."""
    import sparsetrain as st
    from sparsetrain.ndarray import NDArray, RowSparseNDArray

    opt = st.optimizer.create("sgd", learning_rate=0.05, momentum=0.9)
    updater = st.optimizer.get_updater(opt)
    weight = st.nd.zeros((100, 1)).tostype("row_sparse")
    bias = st.nd.zeros((1,))
    cases = {
        "row_sparse weight, 1-row gradient": (0, RowSparseNDArray(np.ones((1, 1), np.float32),
                                                                  np.array([7], np.int64), (100, 1)), weight),
        "dense bias": (1, NDArray(np.ones(1, np.float32)), bias),
    }
    out = {}
    for name, (index, grad, w) in cases.items():
        for _ in range(1000):  # compile (or load) the kernels
            updater(index, grad, w)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(calls):
                updater(index, grad, w)
            times.append((time.perf_counter() - t0) / calls * 1e6)
        out[name] = times
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args(argv)
    import sparsetrain

    print(f"tree {os.path.dirname(os.path.dirname(os.path.abspath(sparsetrain.__file__)))}; "
          f"load {os.getloadavg()[0]:.2f}; {args.calls} calls x {args.rounds} rounds")
    for name, times in measure(args.calls, args.rounds).items():
        print(f"{name}: {np.median(times):.3f} us/call ({min(times):.3f}-{max(times):.3f})")


if __name__ == "__main__":
    main()
