"""scikit-learn peer: ``load_svmlight_file`` parse throughput, ``SGDRegressor`` /
``SGDClassifier(loss='log_loss')`` one epoch at batch 1 (plain constant-rate SGD, no shuffle).

Note: for sparse input scikit-learn scales the intercept's update by 0.01
(``SPARSE_INTERCEPT_DECAY``); that is its behaviour, kept as is.
"""
from __future__ import annotations

import os
import time
import warnings

import numpy as np

from benchmarks import _data


def _version() -> str:
    import sklearn

    return sklearn.__version__


def parse(path: str, num_features: int) -> dict:
    from sklearn.datasets import load_svmlight_file

    size = os.path.getsize(path)
    _data.warm_page_cache(path)
    t0 = time.perf_counter()
    X, y = load_svmlight_file(path, n_features=num_features, zero_based=True, dtype=np.float32)
    sec = time.perf_counter() - t0
    return {"parse_seconds": sec, "mb_per_s": size / 1e6 / sec, "bytes": size,
            "rows": int(X.shape[0]), "nnz": int(X.nnz), "version": _version()}


def train(path: str, task: str, lr: float, epochs: int = 1, batch_size: int = 1, **_) -> dict:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    if batch_size != 1:
        raise ValueError("scikit-learn's SGD estimators train at batch size 1 only")
    X, y, load_s = _data.load_csr(path)
    common = dict(max_iter=epochs, tol=None, learning_rate="constant", eta0=lr, penalty=None,
                  shuffle=False, average=False, fit_intercept=True, random_state=0)
    if task == "regression":
        model = SGDRegressor(loss="squared_error", **common)
    else:
        model = SGDClassifier(loss="log_loss", **common)
    # float64 copy outside the timed region: sklearn converts sparse input to float64 anyway
    X64 = X.astype(np.float64)
    y64 = y.astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        model.fit(X64, y64)
        sec = time.perf_counter() - t0
    score = model.decision_function(X64) if task != "regression" else model.predict(X64)
    name, loss = _data.final_loss(task, score, y)
    return {"epoch_seconds": sec / epochs, "train_seconds": sec, "epochs": epochs,
            "data_seconds": load_s, "rows": int(X.shape[0]), "final_loss": loss,
            "loss_name": name, "version": _version()}
