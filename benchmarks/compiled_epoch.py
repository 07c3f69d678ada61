"""Time one fused epoch of the compiled engine's kernel on the large synthetic workload.

    python -m benchmarks.compiled_epoch [--rows 500000] [--features 1000000] [--nnz 23]
                                        [--batch-sizes 1 256] [--epochs 3] [--sklearn]
                                        [--optimizer sgd|adagrad|adam|ftrl] [--lr 0.02] [--momentum 0]
                                        [--plan]

Generates, in memory, ``rows`` × ``features`` CSR data with ~``nnz`` entries per row whose columns
follow a Zipf-like law (P(column rank r) ∝ 1/r, ranks shuffled over the column ids), values in
[0, 1) and ``y = X·w* + noise``; then trains ``LinearRegressionOutput`` (SGD unless ``--optimizer``,
``rescale_grad = 1/batch``, ``last_batch: discard``) through
:class:`~sparsetrain.engines.compiled.runner.LinearEpochRunner` (lazy row-sparse updates, MSE
metric accumulated per batch as in training) and reports seconds per epoch — the best of
``epochs`` epochs, after one untimed call that loads/compiles the kernels. With ``--sklearn`` it
also times scikit-learn's ``SGDRegressor`` (one ``partial_fit`` pass = one batch-1 epoch) on the
same data, interleaved with ours, for the ratio. Not a test: nothing here asserts on time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from ._data import add_workload_options


def make_data(rows: int, features: int, nnz: int, seed: int = 0):
    """(data float32, indices int64, indptr int64, y float32, w_true) of a Zipf-column CSR matrix."""
    rng = np.random.default_rng(seed)
    total = rows * nnz
    ranks = np.exp(rng.random(total) * np.log(features)).astype(np.int64) - 1  # P(r) ∝ 1/r
    np.clip(ranks, 0, features - 1, out=ranks)
    perm = rng.permutation(features).astype(np.int64)
    cols = perm[ranks]
    row_ids = np.repeat(np.arange(rows, dtype=np.int64), nnz)
    keys = np.unique(row_ids * features + cols)  # sorted, and duplicates within a row dropped
    row_of = keys // features
    indices = keys - row_of * features
    indptr = np.zeros(rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(row_of, minlength=rows), out=indptr[1:])
    data = rng.random(indices.shape[0], dtype=np.float32)
    w_true = rng.normal(size=features).astype(np.float32)
    y = np.bincount(row_of, weights=data * w_true[indices], minlength=rows)
    y = (y + rng.normal(scale=0.1, size=rows)).astype(np.float32)
    return data, indices, indptr, y, w_true


def _ours(X, y, features, batch_size, lr, momentum, optimizer):
    """A function running one fused epoch, returning (seconds, training MSE); kernels loaded."""
    from sparsetrain import optimizer as opt_mod
    from sparsetrain.engines.compiled import LinearEpochRunner
    from sparsetrain.ndarray import NDArray, RowSparseNDArray

    rows = len(X[2]) - 1
    # initialised as Normal(0.01) would (real memory pages: an np.zeros weight would read as free)
    w0 = (np.random.default_rng(1).normal(scale=0.01, size=(features, 1))).astype(np.float32)
    weight = RowSparseNDArray(w0, np.arange(features, dtype=np.int64), (features, 1))
    bias = NDArray(np.zeros(1, np.float32))
    extra = {"momentum": momentum} if optimizer == "sgd" else {}
    opt = opt_mod.create(optimizer, learning_rate=lr, rescale_grad=1.0 / batch_size, **extra)
    updater = opt_mod.get_updater(opt)
    runner = LinearEpochRunner("LinearRegressionOutput", [features], 1, has_bias=True)
    nb = rows // batch_size  # last_batch: discard
    order = np.arange(rows, dtype=np.int64)
    batch_ptr = np.arange(nb + 1, dtype=np.int64) * batch_size
    runner.fit_epoch([X], y, order[:batch_size], batch_ptr[:2], [weight], bias, updater, [0, 1])  # load kernels

    def epoch():
        t0 = time.perf_counter()
        res = runner.fit_epoch([X], y, order, batch_ptr, [weight], bias, updater, [0, 1], metrics=("mse",))
        return time.perf_counter() - t0, res.metrics["mse"]

    return epoch


def _plan(X, y, features, batch_size, lr, momentum, optimizer):
    """As :func:`_ours`, the same model and optimizer run as a generated plan (engines/compiled/plan.py)
    instead of the linear hand kernels: issue 15 item 3's comparison."""
    import sparsetrain as st
    from sparsetrain.engines import compiled
    from sparsetrain.engines.compiled import plan_runner
    from sparsetrain.ndarray import CSRNDArray

    data, indices, indptr = X
    rows = len(indptr) - 1
    x = CSRNDArray(data, indices, indptr, (rows, features))
    it = st.io.NDArrayIter(x, y, batch_size, last_batch_handle="discard", label_name="label")
    pred = st.sym.broadcast_add(st.sym.dot(st.sym.Variable("data", stype="csr"),
                                           st.sym.Variable("w_weight", stype="row_sparse", shape=(features, 1))),
                                st.sym.Variable("bias", shape=(1,)))
    mod = st.mod.Module(st.sym.LinearRegressionOutput(pred, st.sym.Variable("label"), name="out"),
                        data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Zero())
    w0 = (np.random.default_rng(1).normal(scale=0.01, size=(features, 1))).astype(np.float32)
    mod.set_params({"w_weight": st.nd.array(w0).tostype("row_sparse"), "bias": st.nd.zeros((1,))}, {})
    extra = {"momentum": momentum} if optimizer == "sgd" else {}
    mod.init_optimizer(optimizer=optimizer, optimizer_params=dict(learning_rate=lr, rescale_grad=1.0 / batch_size,
                                                                  **extra))
    view = mod.view()
    found = compiled.match_plan(view)
    assert found.ok, found.reason
    runner = compiled.prepare_plan(view, found)
    nb = rows // batch_size  # last_batch: discard
    order = np.arange(rows, dtype=np.int64)
    batch_ptr = np.arange(nb + 1, dtype=np.int64) * batch_size
    codes = plan_runner.metric_codes(["mse"])
    runner.fit(view, x, y, order[:batch_size], batch_ptr[:2], codes)  # load (compile) the plan

    def epoch():
        t0 = time.perf_counter()
        res = runner.fit(view, x, y, order, batch_ptr, codes)
        return time.perf_counter() - t0, float(res.metric_sums[0] / max(res.metric_counts[0], 1))

    return epoch


def _sklearn(X, y, features, lr):
    """A function running one ``SGDRegressor.partial_fit`` pass, returning (seconds, MSE after it)."""
    import scipy.sparse as sp
    from sklearn.linear_model import SGDRegressor

    data, indices, indptr = X
    # float64 / int32 up front: what SGDRegressor works on (it would convert on every call)
    Xs = sp.csr_matrix((data.astype(np.float64), indices.astype(np.int32), indptr.astype(np.int32)),
                       shape=(len(indptr) - 1, features))
    model = SGDRegressor(learning_rate="constant", eta0=lr, penalty=None, alpha=0.0, shuffle=False,
                         average=False, tol=None)

    def epoch():
        t0 = time.perf_counter()
        model.partial_fit(Xs, y)
        seconds = time.perf_counter() - t0
        return seconds, float(np.mean((Xs @ model.coef_ + model.intercept_ - y) ** 2))

    return epoch


def run(rows: int = 500_000, features: int = 1_000_000, nnz: int = 23, batch_sizes=(1, 256), epochs: int = 3,
        lr: float = 0.02, momentum: float = 0.0, sklearn: bool = False, seed: int = 0,
        optimizer: str = "sgd", plan: bool = False) -> dict:
    """Generate the data, time the fused epoch per batch size (and scikit-learn's if asked).

    The candidates' epochs are interleaved (epoch 1 of each, then epoch 2 of each, ...) so that a
    shared machine's changing load hits them alike; ``seconds_per_epoch`` is the best epoch.
    Returns a dict: data sizes, ``ours[f"batch_{bs}"]`` and (with ``sklearn``)
    ``sklearn_sgdregressor_batch_1``, each with ``seconds_per_epoch``, ``epoch_seconds`` and
    ``train_mse_per_epoch`` (ours: the MSE accumulated during the epoch, per batch as MXNet does;
    scikit-learn: the MSE after the epoch).
    """
    t0 = time.perf_counter()
    data, indices, indptr, y, _ = make_data(rows, features, nnz, seed)
    result = {
        "rows": rows, "features": features, "nnz": int(indptr[-1]), "nnz_per_row": float(indptr[-1] / max(rows, 1)),
        "generate_seconds": time.perf_counter() - t0,
        "optimizer": f"{optimizer}(lr={lr}" + (f", momentum={momentum})" if optimizer == "sgd" else ")"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "ours": {},
    }
    X = (data, indices, indptr)
    runs = {}
    for bs in batch_sizes:
        runs[f"batch_{bs}"] = _ours(X, y, features, bs, lr, momentum, optimizer)
        if plan:
            runs[f"plan_batch_{bs}"] = _plan(X, y, features, bs, lr, momentum, optimizer)
    if sklearn:
        runs["sklearn"] = _sklearn(X, y, features, lr)
    times = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    mses = {k: [] for k in runs}
    for _ in range(epochs):
        for key, epoch in runs.items():
            c0 = time.process_time()
            seconds, mse = epoch()
            cpu[key].append(time.process_time() - c0)
            times[key].append(seconds)
            mses[key].append(mse)
    result["load"] = os.getloadavg()[0]
    for key in runs:
        entry = {"seconds_per_epoch": min(times[key]), "epoch_seconds": times[key], "train_mse_per_epoch": mses[key],
                 "cpu_seconds_per_epoch": min(cpu[key]), "epoch_cpu_seconds": cpu[key]}
        if key == "sklearn":
            result["sklearn_sgdregressor_batch_1"] = entry
        else:
            result["ours"][key] = entry
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_workload_options(p, batch_sizes=(1, 256), epochs=3, lr=0.02, optimizer="sgd")
    p.add_argument("--momentum", type=float, default=0.0)
    p.add_argument("--sklearn", action="store_true", help="also time scikit-learn's SGDRegressor (batch 1)")
    p.add_argument("--plan", action="store_true",
                   help="also time the same model as a generated plan, interleaved (ours_plan / ours ratios)")
    args = p.parse_args(argv)
    res = run(args.rows, args.features, args.nnz, tuple(args.batch_sizes), args.epochs, args.lr, args.momentum,
              args.sklearn, optimizer=args.optimizer, plan=args.plan)
    print(json.dumps(res, indent=2))
    for key, val in res["ours"].items():
        print(f"ours {key}: {val['seconds_per_epoch']:.4f} s/epoch, {val['cpu_seconds_per_epoch']:.4f} CPU s  "
              f"(train mse {val['train_mse_per_epoch'][-1]:.4f})")
    for bs in args.batch_sizes if args.plan else ():
        hand, gen = res["ours"][f"batch_{bs}"], res["ours"][f"plan_batch_{bs}"]
        print(f"batch {bs}: plan / hand kernels = {gen['cpu_seconds_per_epoch'] / hand['cpu_seconds_per_epoch']:.3f} "
              f"(CPU s, best of {args.epochs} interleaved; load {res['load']:.1f})")
    if "sklearn_sgdregressor_batch_1" in res:
        sk = res["sklearn_sgdregressor_batch_1"]
        print(f"sklearn SGDRegressor batch_1: {sk['seconds_per_epoch']:.4f} s/epoch  "
              f"(train mse {sk['train_mse_per_epoch'][-1]:.4f})")


if __name__ == "__main__":
    main()
