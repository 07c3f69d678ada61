"""Data helpers shared by the measurement subprocesses (numpy only at import time).

A LibSVM file ``X.libsvm`` gets a cache ``X.libsvm.npz`` (plain ``np.savez``: ``data``,
``indices``, ``indptr``, ``y``, ``shape``) so that training measurements do not each re-parse
the text; parsing is measured separately by the ``parse`` workload. The cache is readable
without scipy (the MXNet venv has only numpy 1.23).
"""
from __future__ import annotations

import os
import time

import numpy as np


def add_workload_options(parser, *, batch_sizes, epochs: int, lr: float, optimizer: str) -> None:
    """The options of a training benchmark on a generated file: its size (``--rows``, ``--features``,
    ``--nnz`` per row; 500k × 1M × 23 by default, the large workload) and the schedule (``--batch-sizes``,
    ``--epochs``, ``--lr``, ``--optimizer``), with the benchmark's defaults."""
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--features", type=int, default=1_000_000)
    parser.add_argument("--nnz", type=int, default=23)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=list(batch_sizes))
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--lr", type=float, default=lr)
    parser.add_argument("--optimizer", default=optimizer, choices=["sgd", "adagrad", "adam", "ftrl"])


def npz_path(libsvm_path: str) -> str:
    return str(libsvm_path) + ".npz"


def ensure_npz(libsvm_path: str, num_features: int) -> str:
    """Parse ``libsvm_path`` once with scikit-learn and store the CSR arrays beside it."""
    out = npz_path(libsvm_path)
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(libsvm_path):
        return out
    from sklearn.datasets import load_svmlight_file

    X, y = load_svmlight_file(str(libsvm_path), n_features=num_features, zero_based=True,
                              dtype=np.float32)
    X.sort_indices()
    tmp = out + ".tmp.npz"
    np.savez(tmp, data=X.data.astype(np.float32), indices=X.indices.astype(np.int32),
             indptr=X.indptr.astype(np.int64), y=y.astype(np.float32),
             shape=np.array(X.shape, dtype=np.int64))
    os.replace(tmp, out)
    return out


def load_arrays(libsvm_path: str):
    """(data, indices, indptr, y, shape) from the npz cache; no scipy needed."""
    with np.load(npz_path(libsvm_path)) as z:
        return (z["data"], z["indices"], z["indptr"], z["y"], tuple(int(s) for s in z["shape"]))


def load_csr(libsvm_path: str):
    """(scipy CSR float32, y float32, load seconds) from the npz cache."""
    import scipy.sparse as sp

    t0 = time.perf_counter()
    data, indices, indptr, y, shape = load_arrays(libsvm_path)
    X = sp.csr_matrix((data, indices, indptr), shape=shape)
    return X, y, time.perf_counter() - t0


def head_file(src: str, dst: str, rows: int) -> str:
    """Copy the first ``rows`` lines of ``src`` to ``dst`` (rows are i.i.d., so a prefix is a
    valid smaller data set). Reused when present."""
    if os.path.exists(dst) and os.path.getmtime(dst) >= os.path.getmtime(src):
        return dst
    tmp = dst + ".tmp"
    with open(src, "rb") as f, open(tmp, "wb") as g:
        for i, line in enumerate(f):
            if i >= rows:
                break
            g.write(line)
    os.replace(tmp, dst)
    return dst


def warm_page_cache(path: str) -> None:
    """Read the file once so every parser starts from the page cache."""
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(16 << 20)
        while f.readinto(buf):
            pass


def mse(pred, y) -> float:
    d = np.asarray(pred, dtype=np.float64).ravel() - np.asarray(y, dtype=np.float64).ravel()
    return float(np.mean(d * d))


def log_loss(score, y) -> float:
    """Mean binary log loss from raw scores (logits); labels in {0, 1} (or {-1, 1})."""
    s = np.asarray(score, dtype=np.float64).ravel()
    t = (np.asarray(y, dtype=np.float64).ravel() > 0).astype(np.float64)
    # log(1 + exp(-s)) for t=1, log(1 + exp(s)) for t=0, computed stably
    z = np.where(t > 0, -s, s)
    return float(np.mean(np.logaddexp(0.0, z)))


def csr_predict(data, indices, indptr, w, b) -> np.ndarray:
    """X @ w + b for CSR arrays (w a 1-d vector); numpy only."""
    w = np.asarray(w, dtype=np.float64).ravel()
    prod = data.astype(np.float64) * w[indices]
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    out = np.bincount(rows, weights=prod, minlength=len(indptr) - 1)
    return out + float(np.asarray(b).ravel()[0] if np.ndim(b) else b)


def final_loss(task: str, score, y) -> tuple[str, float]:
    if task == "regression":
        return "mse", mse(score, y)
    return "log_loss", log_loss(score, y)
