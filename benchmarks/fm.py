"""Factorization machine (k = 8) and wide & deep: generated plans against PyTorch, in one run.

    python -m benchmarks.fm                        # 200k x 1M binary, ~23 nnz/row (zipf)
    python -m benchmarks.fm --rows 50000 --features 100000

Workloads (one epoch each, same file, same initial parameters, no shuffling, one thread pool):

* ``fm-b256``: FM ``b + X·w + Σ_f ((X·V)_f² − (X²·V²)_f)``, AdaGrad lr 0.1 on the mean gradient,
  batch 256 — ours (the compiled engine's generated plan through ``Module.run_epoch``) vs a
  PyTorch FM (``EmbeddingBag(sparse=True)`` for ``X·w`` and ``X·V``, ``F.embedding(sparse=True)``
  for ``X²·V²``, ``torch.optim.Adagrad``); final log-loss over the training set for both.
* ``fm-b1``: ours at batch 1 with plain SGD (lr 0.01, libFM's ``-method sgd``), µs per row
  (libFM is not installed here; the issue's reference: libFM ≈ 2.4 µs/row for an epoch of a
  200k-row file with 12 nnz/row, evaluation included).
* ``wide-b32``: ``configs/wide.yaml``'s model ``X·w + relu(X·E)·p + b`` (E: k = 8), Adam lr 0.01,
  batch 32 — ours vs the equivalent PyTorch model (``EmbeddingBag(sparse=True)`` tables,
  ``torch.optim.SparseAdam`` for them and ``Adam`` for the dense part: MXNet's lazy Adam).

Ours is timed after a first epoch on 2,000 rows has loaded the plan (numba's on-disk cache);
torch's tensors are prepared before timing. Nothing here is a test.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

WORK = os.path.join(os.path.dirname(__file__), "_work")
K = 8
# MXNet's AdaGrad divides by sqrt(h + eps), PyTorch's by sqrt(h) + eps: with mean gradients of
# ~1e-4, MXNet's default eps = 1e-7 dominates h, so both use a negligible eps to train the same model
ADAGRAD_EPS = 1e-10


def data(rows, features, seed=7):
    from sparsetrain.io.synthetic import generate_libsvm

    from . import _data

    path = os.path.join(WORK, f"fm-{rows}x{features}.libsvm")
    if not os.path.exists(path):
        os.makedirs(WORK, exist_ok=True)
        generate_libsvm(path, rows, features, nnz_per_row=23, task="binary", columns="zipf", seed=seed)
    _data.ensure_npz(path, features)
    X, y, _ = _data.load_csr(path)
    return X, y


def init(features, seed=0):
    rng = np.random.default_rng(seed)
    return {"w": np.zeros((features, 1), np.float32), "v": (rng.normal(size=(features, K)) * 0.01).astype(np.float32),
            "e": (rng.normal(size=(features, K)) * 0.1).astype(np.float32),
            "p": (rng.normal(size=(K, 1)) * 0.1).astype(np.float32)}


def log_loss(p, y):
    p = np.clip(np.asarray(p, np.float64), 1e-12, 1 - 1e-12)  # float64: float32(1 - 1e-12) is 1
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


# -- ours ----------------------------------------------------------------------------------------

def _symbol(model, features):
    import sparsetrain as st

    data = st.sym.Variable("data", stype="csr")
    bias = st.sym.Variable("bias", shape=(1,))
    if model == "fm":
        w = st.sym.Variable("w_weight", stype="row_sparse", shape=(features, 1))
        v = st.sym.Variable("v_weight", stype="row_sparse", shape=(features, K))
        pairs = st.sym.elemwise_sub(st.sym.square(st.sym.dot(data, v)),
                                    st.sym.dot(st.sym.square(data), st.sym.square(v)))
        pred = st.sym.elemwise_add(st.sym.dot(data, w), st.sym.sum(pairs, axis=1, keepdims=True))
    else:
        w = st.sym.Variable("w_weight", stype="row_sparse", shape=(features, 1))
        e = st.sym.Variable("e_weight", stype="row_sparse", shape=(features, K))
        p = st.sym.Variable("p_weight", shape=(K, 1))
        pred = st.sym.elemwise_add(st.sym.dot(data, w), st.sym.dot(st.sym.relu(st.sym.dot(data, e)), p))
    return st.sym.LogisticRegressionOutput(st.sym.broadcast_add(pred, bias), st.sym.Variable("label"), name="out")


def ours(model, X, y, batch, optimizer, lr, **hyper):
    import sparsetrain as st

    features = X.shape[1]
    start = init(features)
    x = st.nd.sparse.csr_matrix((X.data, X.indices, X.indptr), shape=X.shape)

    def module(rows):
        it = st.io.NDArrayIter(x[:rows] if rows < X.shape[0] else x, y[:rows], batch, last_batch_handle="pad",
                               label_name="label")
        mod = st.mod.Module(_symbol(model, features), data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        names = {"fm": {"w_weight": "w", "v_weight": "v"}, "wide": {"w_weight": "w", "e_weight": "e", "p_weight": "p"}}
        arg = {n: st.nd.array(start[k]).tostype("row_sparse" if n != "p_weight" else "default")
               for n, k in names[model].items()}
        arg["bias"] = st.nd.zeros((1,))
        mod.init_params(arg_params=arg, allow_missing=False)
        mod.init_optimizer(optimizer=optimizer, optimizer_params={"learning_rate": lr, **hyper})
        return mod, it

    warm, it = module(2000)
    warm.run_epoch(it, st.metric.create("log_loss"), engine="compiled")  # loads the plan
    mod, it = module(X.shape[0])
    metric = st.metric.create("log_loss")
    t0 = time.perf_counter()
    mod.run_epoch(it, metric, engine="compiled")
    seconds = time.perf_counter() - t0
    assert mod.engine_choice[0] == "compiled", mod.engine_choice
    scorer = st.io.NDArrayIter(x, y, 4096, label_name="label")
    probs = mod.predict(scorer).asnumpy().ravel()[: X.shape[0]]
    return {"seconds": seconds, "log_loss": log_loss(probs, y), "rows": X.shape[0]}


# -- PyTorch -------------------------------------------------------------------------------------

def torch_run(model, X, y, batch, lr):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(2)
    torch.manual_seed(0)
    features = X.shape[1]
    start = init(features)
    lin = torch.nn.EmbeddingBag(features, 1, mode="sum", sparse=True)
    lin.weight.data = torch.from_numpy(start["w"].copy())
    bias = torch.nn.Parameter(torch.zeros(1))
    if model == "fm":
        fac = torch.nn.EmbeddingBag(features, K, mode="sum", sparse=True)
        fac.weight.data = torch.from_numpy(start["v"].copy())
        sparse_params, dense_params = [lin.weight, fac.weight], [bias]
        opt_sparse = torch.optim.Adagrad(sparse_params + dense_params, lr=lr, eps=ADAGRAD_EPS)
        opt_dense = None
    else:
        fac = torch.nn.EmbeddingBag(features, K, mode="sum", sparse=True)
        fac.weight.data = torch.from_numpy(start["e"].copy())
        proj = torch.nn.Parameter(torch.from_numpy(start["p"].copy()))
        opt_sparse = torch.optim.SparseAdam([lin.weight, fac.weight], lr=lr)
        opt_dense = torch.optim.Adam([proj, bias], lr=lr)

    indptr = torch.from_numpy(X.indptr.astype(np.int64))
    indices = torch.from_numpy(X.indices.astype(np.int64))
    values = torch.from_numpy(X.data.astype(np.float32))
    labels = torch.from_numpy(y.astype(np.float32))
    n = X.shape[0]
    batches = []
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        a, b = int(indptr[lo]), int(indptr[hi])
        offsets = indptr[lo:hi] - a
        counts = indptr[lo + 1:hi + 1] - indptr[lo:hi]
        rows = torch.repeat_interleave(torch.arange(hi - lo), counts)
        batches.append((indices[a:b], offsets, values[a:b], rows, labels[lo:hi], hi - lo))

    def forward(idx, offsets, val, rows, m):
        out = lin(idx, offsets, per_sample_weights=val)[:, 0] + bias
        xv = fac(idx, offsets, per_sample_weights=val)
        if model == "fm":
            e = F.embedding(idx, fac.weight, sparse=True)
            x2v2 = torch.zeros(m, K).index_add_(0, rows, (val[:, None] * e) ** 2)
            return out + (xv * xv - x2v2).sum(dim=1)
        return out + (torch.relu(xv) @ proj)[:, 0]

    t0 = time.perf_counter()
    for idx, offsets, val, rows, lab, m in batches:
        opt_sparse.zero_grad()
        if opt_dense:
            opt_dense.zero_grad()
        loss = F.binary_cross_entropy_with_logits(forward(idx, offsets, val, rows, m), lab)
        loss.backward()
        opt_sparse.step()
        if opt_dense:
            opt_dense.step()
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        probs = torch.cat([torch.sigmoid(forward(*b[:4], b[5])) for b in batches]).numpy()
    return {"seconds": seconds, "log_loss": log_loss(probs, y), "rows": n}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=1_000_000)
    ap.add_argument("--b1-rows", type=int, default=50_000, help="rows of the batch-1 FM epoch")
    ap.add_argument("--wide-rows", type=int, default=None, help="rows of the wide&deep epochs (default: all)")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    X, y = data(args.rows, args.features)
    print(f"data: {X.shape[0]} x {X.shape[1]}, {X.nnz / X.shape[0]:.1f} nnz/row")
    results = {}
    results["fm-b256 ours"] = ours("fm", X, y, 256, "adagrad", 0.1, eps=ADAGRAD_EPS)
    results["fm-b256 torch"] = torch_run("fm", X, y, 256, 0.1)
    small = X[: args.b1_rows], y[: args.b1_rows]
    results["fm-b1 ours"] = ours("fm", *small, 1, "sgd", 0.01)
    wide = (X[: args.wide_rows], y[: args.wide_rows]) if args.wide_rows else (X, y)
    results["wide-b32 ours"] = ours("wide", *wide, 32, "adam", 0.01)
    results["wide-b32 torch"] = torch_run("wide", *wide, 32, 0.01)
    for name, r in results.items():
        print(f"{name:16s} {r['seconds']:9.3f} s  {1e6 * r['seconds'] / r['rows']:8.2f} µs/row  "
              f"log_loss {r['log_loss']:.4f}")
    for w in ("fm-b256", "wide-b32"):
        print(f"{w}: ours {results[w + ' torch']['seconds'] / results[w + ' ours']['seconds']:.1f}x faster than torch")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
