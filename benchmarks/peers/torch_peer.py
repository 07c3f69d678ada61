"""PyTorch peer: ``nn.EmbeddingBag(D, 1, mode='sum', sparse=True)`` with ``per_sample_weights``
plus a dense bias, ``torch.optim.SGD``, one epoch at batch 256 (no shuffle), 2 threads.

Loss conventions match MXNet's (and ours): regression uses ``0.5 * mean((p - y)^2)`` (the
gradient of ``LinearRegressionOutput`` with ``rescale_grad = 1/batch``), logistic uses
``BCEWithLogitsLoss`` (mean). Parameters start at zero. Tensor preparation (CSR -> int64
indices / float32 weights / offsets) is timed separately from training.

Install: ``pip install torch==2.13.0`` (a CPU build).
"""
from __future__ import annotations

import time

import numpy as np

from benchmarks import _data


def train(path: str, task: str, lr: float, batch_size: int = 256, epochs: int = 1,
          threads: int = 2, **_) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data, indices, indptr, y, shape = _data.load_arrays(path)
    n, d = shape

    t0 = time.perf_counter()
    t_idx = torch.from_numpy(indices.astype(np.int64))
    t_val = torch.from_numpy(data.astype(np.float32))
    t_ptr = torch.from_numpy(indptr.astype(np.int64))
    t_y = torch.from_numpy(y.astype(np.float32))
    batches = []
    for s in range(0, n, batch_size):
        e = min(s + batch_size, n)
        a, b = int(indptr[s]), int(indptr[e])
        batches.append((t_idx[a:b], t_val[a:b], t_ptr[s:e] - a, t_y[s:e]))
    prep_s = time.perf_counter() - t0

    emb = torch.nn.EmbeddingBag(d, 1, mode="sum", sparse=True)
    with torch.no_grad():
        emb.weight.zero_()
    bias = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([emb.weight, bias], lr=lr)
    if task == "regression":
        def loss_fn(p, t):
            return 0.5 * torch.mean((p - t) ** 2)
    else:
        bce = torch.nn.BCEWithLogitsLoss()

        def loss_fn(p, t):
            return bce(p, t)

    t0 = time.perf_counter()
    for _ in range(epochs):
        for inp, psw, off, t in batches:
            opt.zero_grad(set_to_none=True)
            p = emb(inp, off, per_sample_weights=psw).view(-1) + bias
            loss = loss_fn(p, t)
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - t0

    with torch.no_grad():
        w = emb.weight.detach().numpy().ravel().copy()
        b = float(bias.detach().numpy()[0])
    score = _data.csr_predict(data, indices, indptr, w, b)
    name, loss = _data.final_loss(task, score, y)
    return {"epoch_seconds": train_s / epochs, "train_seconds": train_s, "epochs": epochs,
            "data_seconds": prep_s, "rows": int(n), "final_loss": loss, "loss_name": name,
            "threads": threads, "version": torch.__version__}
