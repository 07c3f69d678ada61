"""Vowpal Wabbit peer (``pip install vowpalwabbit``): one pass of plain SGD, squared loss.

The LibSVM file is converted to VW text (``label | idx:val ...``, not timed), then VW's binary
cache is built (reported as ``data_seconds``: VW's own parse), then one pass is trained from the
cache (``epoch_seconds``) with ``--sgd --power_t 0`` (constant learning rate, no adaptive /
normalized / invariant updates) and ``-l lr/2`` (VW's squared-loss derivative is ``2 (p - y)``;
halving matches the ``0.5 (p - y)^2`` convention of the other runs). ``-b 20`` holds 1M features
without collisions (numeric feature names hash to themselves). The final loss is computed from a
test-only prediction pass (``-t -p``) over the training data.
"""
from __future__ import annotations

import os
import tempfile
import time

import numpy as np

from benchmarks import _data


def to_vw(libsvm_path: str, task: str) -> str:
    out = f"{libsvm_path}.{task}.vw"
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(libsvm_path):
        return out
    tmp = out + ".tmp"
    with open(libsvm_path) as f, open(tmp, "w") as g:
        for line in f:
            line = line.strip()
            if not line:
                continue
            lab, _, rest = line.partition(" ")
            if task != "regression":
                lab = "1" if float(lab) > 0 else "-1"
            g.write(f"{lab} | {rest}\n")
    os.replace(tmp, out)
    return out


def _bits(d: int) -> int:
    return max(18, int(np.ceil(np.log2(max(d, 2)))))


def train(path: str, task: str, lr: float, epochs: int = 1, batch_size: int = 1, **_) -> dict:
    import vowpalwabbit
    from vowpalwabbit import Workspace

    if batch_size != 1 or epochs != 1:
        raise ValueError("the VW run is one online pass at batch size 1")
    _, _, _, y, shape = _data.load_arrays(path)
    vwfile = to_vw(path, task)
    loss_fn = "squared" if task == "regression" else "logistic"
    bits = _bits(shape[1])
    with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as tmp:
        cache = os.path.join(tmp, "data.cache")
        model = os.path.join(tmp, "model.vw")
        preds = os.path.join(tmp, "preds.txt")

        t0 = time.perf_counter()
        ws = Workspace(f"-d {vwfile} --cache_file {cache} --noop -b {bits} --quiet")
        ws.run_parser()
        ws.finish()
        parse_s = time.perf_counter() - t0

        eta = lr / 2 if task == "regression" else lr
        ws = Workspace(f"--cache_file {cache} --sgd --power_t 0 -l {eta} -b {bits} "
                       f"--loss_function {loss_fn} --quiet -f {model}")
        t0 = time.perf_counter()
        ws.run_parser()
        train_s = time.perf_counter() - t0
        progressive = ws.get_sum_loss() / max(ws.get_weighted_examples(), 1)
        ws.finish()

        ws = Workspace(f"-t -i {model} --cache_file {cache} -p {preds} --quiet")
        ws.run_parser()
        ws.finish()
        score = np.loadtxt(preds, usecols=0, dtype=np.float64)
    name, loss = _data.final_loss(task, score, y)
    return {"epoch_seconds": train_s, "train_seconds": train_s, "epochs": 1,
            "data_seconds": parse_s, "rows": int(shape[0]), "final_loss": loss,
            "loss_name": name, "progressive_loss": float(progressive),
            "version": getattr(vowpalwabbit, "__version__", "?")}
