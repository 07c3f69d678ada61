"""Synthetic Criteo-like TSV with a planted logistic model (``gen-data --format csv``).

The file has a header line ``label, i1..iN, c1..cM`` and ``rows`` rows, split by the delimiter its
name is read with (tab for ``.tsv``, else comma: ``csv_schema.default_delimiter``):

- ``i<k>``: integer counts ``floor(expm1(Exponential(1.5)))`` (heavy-tailed, mostly small), empty
  with probability ``missing``;
- ``c<j>``: one of ``vocabulary`` values per column, drawn uniformly or from a Zipf law
  (``cardinality="zipf"``, exponent ``zipf_a``: value ``v`` has weight ``(v + 1) ** -zipf_a``),
  written as 8 hex digits, empty with probability ``missing``;
- the score ``s = bias + Σ_k a_k · log1p(i_k) + Σ_j W[j, c_j] + C[c_1 mod 64, c_2 mod 64]``, with
  ``a ~ N(0, 0.3)``, ``W[j] ~ N(0, 1/sqrt(j + 1))`` (earlier columns matter more) and an interaction
  of the first two categorical columns ``C ~ N(0, 0.7)`` (what a hashed cross can learn);
  missing fields add nothing. ``bias`` makes about a quarter of the rows positive.
- ``binary``: the label is Bernoulli(sigmoid(s + noise · N(0, 1))); ``regression``: ``s + noise · N(0, 1)``.

The planted model (``bias``, ``a``, ``W``, ``C``) is saved beside the data as ``<path>.model.npz``;
for binary data the result reports its log-loss on the rows written, the floor a trained model
approaches. Rows are drawn block by block, each from ``SeedSequence(seed, spawn_key=(2, block))``,
so the same options give the same file.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from ..fileio import open_atomic
from .csv_schema import default_delimiter
from .synthetic_options import BLOCK_ROWS, SyntheticResult, check_call

__all__ = ["generate_csv", "model_path_for", "column_names"]

_CROSS_MOD = 64
_PILOT_ROWS = 20_000


def model_path_for(path) -> str:
    """Where :func:`generate_csv` saves the planted model of the data file ``path``."""
    return os.fspath(path) + ".model.npz"


def column_names(numeric: int, categorical: int) -> list[str]:
    """The header: ``label``, ``i1..i<numeric>``, ``c1..c<categorical>``."""
    return ["label"] + [f"i{k + 1}" for k in range(numeric)] + [f"c{j + 1}" for j in range(categorical)]


class _Planted:
    def __init__(self, rng, numeric, categorical, vocabulary):
        self.a = rng.normal(0, 0.3, numeric)
        self.W = rng.standard_normal((categorical, vocabulary)) / np.sqrt(np.arange(1, categorical + 1))[:, None]
        self.C = rng.normal(0, 0.7, (_CROSS_MOD, _CROSS_MOD)) if categorical >= 2 else np.zeros((1, 1))
        self.bias = 0.0

    def score(self, nums, cats):
        """nums: (n, N) float with nan for missing; cats: (n, M) int with -1 for missing."""
        s = np.full(len(nums), self.bias)
        if nums.shape[1]:
            s += np.nan_to_num(np.log1p(nums)) @ self.a
        for j in range(cats.shape[1]):
            ok = cats[:, j] >= 0
            s[ok] += self.W[j, cats[ok, j]]
        if cats.shape[1] >= 2:
            ok = (cats[:, 0] >= 0) & (cats[:, 1] >= 0)
            s[ok] += self.C[cats[ok, 0] % _CROSS_MOD, cats[ok, 1] % _CROSS_MOD]
        return s


def _draw(rng, n, o):
    nums = np.floor(np.expm1(rng.exponential(1.5, (n, o.numeric))))
    nums[rng.random((n, o.numeric)) < o.missing] = np.nan
    if o.cardinality == "zipf":
        p = np.arange(1, o.vocabulary + 1, dtype=np.float64) ** -o.zipf_a
        cats = rng.choice(o.vocabulary, size=(n, o.categorical), p=p / p.sum())
    else:
        cats = rng.integers(0, o.vocabulary, (n, o.categorical))
    cats[rng.random((n, o.categorical)) < o.missing] = -1
    return nums, cats


def _value_strings(categorical, vocabulary, seed):
    """8-hex-digit strings per (column, value id): distinct within a column."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3,)))
    out = []
    for _ in range(categorical):
        ids = rng.choice(2**32, size=vocabulary, replace=False)
        out.append(np.array([f"{v:08x}" for v in ids.tolist()], dtype=object))
    return out


def generate_csv(path, rows: int, *, chunk_rows: int = 100_000, progress: Callable[[int], None] | None = None,
                 **options) -> SyntheticResult:
    """Write a Criteo-like TSV to ``path`` and its planted model to ``<path>.model.npz`` (see the
    module docstring). ``options`` are :class:`~sparsetrain.io.synthetic_options.SyntheticOptions`
    fields (``numeric``, ``categorical``, ``cardinality``, ``vocabulary``, ``missing``, ``task``,
    ``noise``, ``zipf_a``, ``seed``); ``format`` must be csv."""
    options["format"] = "csv"
    o, _ = check_call(chunk_rows, "float64", rows=rows, **options)
    path = os.fspath(path)
    model = _Planted(np.random.default_rng(np.random.SeedSequence(o.seed, spawn_key=(0,))), o.numeric,
                     o.categorical, o.vocabulary)
    pilot = np.random.default_rng(np.random.SeedSequence(o.seed, spawn_key=(1,)))
    s = model.score(*_draw(pilot, _PILOT_ROWS, o))
    # about a quarter of the rows positive (click data is unbalanced)
    model.bias = float(np.log(1 / 3) - np.median(s))
    values = _value_strings(o.categorical, o.vocabulary, o.seed)
    sep = default_delimiter(path)  # what every reader of the name splits at
    header = sep.join(column_names(o.numeric, o.categorical)) + "\n"
    filled = 0
    loss_sum = 0.0
    with open_atomic(path) as f:
        f.write(header.encode())
        pending, done = [], 0
        for block, r0 in enumerate(range(0, o.rows, BLOCK_ROWS)):
            n = min(BLOCK_ROWS, o.rows - r0)
            rng = np.random.default_rng(np.random.SeedSequence(o.seed, spawn_key=(2, block)))
            nums, cats = _draw(rng, n, o)
            score = model.score(nums, cats) + o.noise * rng.standard_normal(n)
            if o.task == "binary":
                p = 1 / (1 + np.exp(-score))
                y = (rng.random(n) < p).astype(np.int64)
                q = np.clip(np.where(y == 1, p, 1 - p), 1e-15, 1)
                loss_sum += float(-np.log(q).sum())
                label = y.astype(str)
            else:
                label = np.char.mod("%.6g", score)
            cols = [label.astype(object)]
            for k in range(o.numeric):
                col = nums[:, k]
                text = np.char.mod("%d", np.nan_to_num(col).astype(np.int64)).astype(object)
                text[np.isnan(col)] = ""
                cols.append(text)
            for j in range(o.categorical):
                text = values[j][np.maximum(cats[:, j], 0)]
                text[cats[:, j] < 0] = ""
                cols.append(text)
            filled += int(np.count_nonzero(~np.isnan(nums)) + np.count_nonzero(cats >= 0))
            pending.append("".join(sep.join(r) + "\n" for r in zip(*cols)))
            if sum(map(len, pending)) >= chunk_rows * 100 or r0 + n == o.rows:
                f.write("".join(pending).encode())
                done = r0 + n
                pending = []
                if progress is not None:
                    progress(done)
    mpath = model_path_for(path)
    try:
        with open_atomic(mpath) as mf:
            np.savez(mf, bias=model.bias, a=model.a, W=model.W, C=model.C)
    except BaseException:
        os.unlink(path)
        raise
    return SyntheticResult(path=path, rows=o.rows, features=None, nnz=filled, bytes=os.path.getsize(path),
                           weights_path=mpath, task=o.task, format="csv", numeric=o.numeric,
                           categorical=o.categorical,
                           planted_log_loss=loss_sum / o.rows if o.task == "binary" else None)
