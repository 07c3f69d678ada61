"""TEMPORARY stand-in for ``sparsetrain.io.synthetic.generate_libsvm`` (delete once it lands).

Only the subset of the signature the benchmarks use. Streams rows in chunks.
"""
from __future__ import annotations

import numpy as np


def _zipf_columns(rng, n, features, a):
    # Zipf over 1..features by inverse-CDF on a truncated power law (cheap and bounded).
    u = rng.random(n)
    if a == 1.0:
        k = np.exp(u * np.log(features))
    else:
        hi = features ** (1.0 - a)
        k = (1.0 + u * (hi - 1.0)) ** (1.0 / (1.0 - a))
    return np.minimum(np.floor(k).astype(np.int64) - 1, features - 1)


def generate_libsvm(path, rows, features, *, density=None, nnz_per_row=None, task="regression",
                    classes=2, target="arange", noise=0.0, columns="uniform", zipf_a=1.2,
                    seed=0, zero_based=True, chunk_rows=20000):
    rng = np.random.default_rng(seed)
    if nnz_per_row is None:
        nnz_per_row = max(1, int(round(density * features)))
    if target == "arange":
        w = np.arange(1, features + 1, dtype=np.float64)
    else:
        w = rng.standard_normal(features)
    off = 0 if zero_based else 1
    with open(path, "w") as f:
        for start in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - start)
            cand = nnz_per_row + 8
            if columns == "zipf":
                cols = _zipf_columns(rng, n * cand, features, zipf_a).reshape(n, cand)
            else:
                cols = rng.integers(0, features, size=(n, cand))
            vals = rng.random((n, nnz_per_row)).astype(np.float32)
            lines = []
            for i in range(n):
                c = np.unique(cols[i])[:nnz_per_row]
                v = vals[i, : len(c)]
                y = float(v.astype(np.float64) @ w[c])
                if noise:
                    y += noise * rng.standard_normal()
                if task == "binary":
                    y = 1.0 if y > 0 else 0.0
                lab = "%d" % y if task == "binary" else "%.6g" % y
                lines.append(lab + " " + " ".join("%d:%.6g" % (ci + off, vi) for ci, vi in zip(c, v)))
            f.write("\n".join(lines) + "\n")
    np.save(str(path) + ".weights.npy", w)
    return path
