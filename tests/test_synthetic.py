"""The synthetic data generator: determinism, the label/weight relationships of every task,
the sparsity patterns, atomic writes and constant memory."""
from __future__ import annotations

import hashlib
import os
import tracemalloc

import numpy as np
import pytest

from sparsetrain.io import load_libsvm
from sparsetrain.io.synthetic import BLOCK_ROWS, SyntheticResult, generate_libsvm, weights_path_for


def digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def gen(tmp_path, name="d.libsvm", rows=2000, features=300, **kw):
    kw.setdefault("nnz_per_row", 8) if "density" not in kw else None
    path = str(tmp_path / name)
    return generate_libsvm(path, rows, features, **kw)


def test_result_describes_the_files(tmp_path):
    r = gen(tmp_path, density=0.02, seed=4)
    assert isinstance(r, SyntheticResult)
    assert (r.rows, r.features) == (2000, 300)
    assert r.bytes == os.path.getsize(r.path)
    assert r.weights_path == weights_path_for(r.path) == r.path + ".weights.npy"
    X, y = load_libsvm(r.path, num_features=300)
    assert X.shape == (2000, 300) and X.nnz == r.nnz


def test_same_seed_same_bytes_whatever_the_chunking(tmp_path):
    rows = 2 * BLOCK_ROWS + 123
    a = gen(tmp_path, "a.libsvm", rows=rows, columns="zipf", noise=1.0, seed=7, chunk_rows=1000)
    b = gen(tmp_path, "b.libsvm", rows=rows, columns="zipf", noise=1.0, seed=7, chunk_rows=10**6)
    c = gen(tmp_path, "c.libsvm", rows=rows, columns="zipf", noise=1.0, seed=8)
    assert digest(a.path) == digest(b.path) != digest(c.path)
    assert digest(a.weights_path) == digest(b.weights_path)


def test_regression_arange_is_the_seed_target(tmp_path):
    r = gen(tmp_path, rows=1000, features=100, nnz_per_row=None, density=0.01, seed=0, dtype="float64")
    X, y = load_libsvm(r.path, num_features=100, dtype="float64")
    w = np.load(r.weights_path)
    np.testing.assert_array_equal(w, np.arange(1, 101))
    np.testing.assert_allclose(X.asscipy() @ w, y, rtol=1e-12, atol=1e-9)
    assert 0 < X._data.min() and X._data.max() <= 1
    # float32 labels are the float64 scores rounded once
    r32 = gen(tmp_path, "f32.libsvm", rows=1000, features=100, nnz_per_row=None, density=0.01, seed=0)
    _, y32 = load_libsvm(r32.path, num_features=100)
    np.testing.assert_array_equal(y32, y.astype(np.float32))


def test_regression_random_target_with_noise(tmp_path):
    r = gen(tmp_path, rows=6000, features=50, nnz_per_row=10, target="random", noise=0.5, seed=1, dtype="float64")
    X, y = load_libsvm(r.path, num_features=50, dtype="float64")
    w = np.load(r.weights_path)
    assert w.shape == (50,) and abs(w.mean()) < 0.5 and 0.6 < w.std() < 1.4
    resid = y - X.asscipy() @ w
    assert abs(resid.mean()) < 0.05 and 0.45 < resid.std() < 0.55


@pytest.mark.parametrize("target", ["arange", "random"])
def test_binary_labels_follow_the_score_and_are_balanced(tmp_path, target):
    r = gen(tmp_path, rows=5000, features=200, nnz_per_row=6, task="binary", target=target, columns="zipf", seed=2)
    X, y = load_libsvm(r.path, num_features=200, dtype="float64")
    assert set(np.unique(y)) == {0.0, 1.0}
    assert 0.4 < y.mean() < 0.6
    score = X.asscipy() @ np.load(r.weights_path)
    np.testing.assert_array_equal(y, (score > r.threshold).astype(float))


@pytest.mark.parametrize("target", ["arange", "random"])
def test_multiclass_labels_are_the_argmax(tmp_path, target):
    r = gen(tmp_path, rows=4000, features=120, nnz_per_row=5, task="multiclass", classes=4, target=target, seed=3)
    X, y = load_libsvm(r.path, num_features=120, dtype="float64")
    W = np.load(r.weights_path)
    assert W.shape == (120, 4)
    np.testing.assert_array_equal(y, np.argmax(X.asscipy() @ W, axis=1))
    assert np.bincount(y.astype(int), minlength=4).min() > 4000 / 4 / 3


def test_rows_have_sorted_unique_columns_and_the_requested_counts(tmp_path):
    r = gen(tmp_path, rows=3000, features=40, nnz_per_row=15, columns="zipf", zipf_a=1.5, seed=5)
    X, _ = load_libsvm(r.path, num_features=40)
    counts = np.diff(X._indptr)
    assert (counts == 15).all()
    for i in range(0, 3000, 97):
        cols = X._indices[X._indptr[i] : X._indptr[i + 1]]
        assert (np.diff(cols) > 0).all()
    d = gen(tmp_path, "dense.libsvm", rows=500, features=20, nnz_per_row=None, density=0.9, seed=6)
    Xd, _ = load_libsvm(d.path, num_features=20)
    assert abs(np.diff(Xd._indptr).mean() - 18) < 0.5
    full = gen(tmp_path, "full.libsvm", rows=50, features=12, nnz_per_row=12, columns="zipf", seed=6)
    Xf, _ = load_libsvm(full.path, num_features=12)
    assert (Xf.asnumpy() > 0).all()


def test_density_gives_binomial_row_lengths(tmp_path):
    r = gen(tmp_path, rows=4000, features=1000, nnz_per_row=None, density=0.01, seed=9)
    counts = np.diff(load_libsvm(r.path, num_features=1000)[0]._indptr)
    assert abs(counts.mean() - 10) < 0.3 and 2.5 < counts.std() < 3.8


def test_zipf_columns_are_skewed_and_uniform_ones_are_flat(tmp_path):
    z = gen(tmp_path, "z.libsvm", rows=4000, features=1000, nnz_per_row=5, columns="zipf", seed=1)
    u = gen(tmp_path, "u.libsvm", rows=4000, features=1000, nnz_per_row=5, columns="uniform", seed=1)
    fz = np.bincount(load_libsvm(z.path, num_features=1000)[0]._indices, minlength=1000)
    fu = np.bincount(load_libsvm(u.path, num_features=1000)[0]._indices, minlength=1000)
    assert fz[0] > 50 * max(1, np.median(fz)) and fz[:10].sum() > fz[500:].sum()
    assert fu.max() < 4 * fu.mean()


def test_a_steep_zipf_law_still_fills_its_rows(tmp_path):
    # its weights underflow to 0 past the first columns: zipf_a 1e308 was an internal error
    # ("fewer non-zero entries in p than size") where the rows need 3 of 4 columns
    r = generate_libsvm(str(tmp_path / "z.libsvm"), 20, 4, nnz_per_row=3, columns="zipf", zipf_a=1e308)
    X, _ = load_libsvm(r.path, num_features=4, zero_based=True)
    assert (np.diff(X.indptr) == 3).all()
    assert (X.asscipy()[:, 0].toarray() != 0).all()  # the heaviest column in every row


def test_one_based_output(tmp_path):
    a = gen(tmp_path, "zero.libsvm", seed=11)
    b = gen(tmp_path, "one.libsvm", seed=11, zero_based=False)
    Xa, ya = load_libsvm(a.path, num_features=300, zero_based=True)
    Xb, yb = load_libsvm(b.path, num_features=300, zero_based=False)
    assert (Xa.asscipy() != Xb.asscipy()).nnz == 0
    np.testing.assert_array_equal(ya, yb)
    first = open(b.path).readline().split()
    assert int(first[1].split(":")[0]) >= 1


def test_progress_and_compressed_output(tmp_path):
    seen = []
    r = gen(tmp_path, "p.libsvm.gz", rows=3 * BLOCK_ROWS, features=50, nnz_per_row=3, chunk_rows=BLOCK_ROWS,
            progress=seen.append)
    assert seen == [BLOCK_ROWS, 2 * BLOCK_ROWS, 3 * BLOCK_ROWS]
    assert open(r.path, "rb").read(2) == b"\x1f\x8b"
    X, _ = load_libsvm(r.path, num_features=50)
    assert X.shape[0] == 3 * BLOCK_ROWS


def test_writes_are_atomic(tmp_path):
    path = tmp_path / "keep.libsvm"
    path.write_text("old\n")

    def fail(done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_libsvm(str(path), 3 * BLOCK_ROWS, 10, nnz_per_row=2, chunk_rows=1, progress=fail)
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.libsvm"]
    generate_libsvm(str(path), 10, 10, nnz_per_row=2)
    assert path.read_text() != "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.libsvm", "keep.libsvm.weights.npy"]


def test_memory_does_not_grow_with_rows(tmp_path):
    def peak(rows):
        tracemalloc.start()
        try:
            generate_libsvm(str(tmp_path / f"m{rows}.libsvm"), rows, 5000, nnz_per_row=20, chunk_rows=BLOCK_ROWS, seed=1)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(2 * BLOCK_ROWS), peak(16 * BLOCK_ROWS)
    assert os.path.getsize(tmp_path / f"m{16 * BLOCK_ROWS}.libsvm") > 2 * large
    assert large < 1.3 * small + (1 << 20)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({}, "exactly one of `density` and `nnz_per_row`"),
        ({"density": 0.1, "nnz_per_row": 3}, "exactly one"),
        ({"density": 1.5}, "density"),
        ({"nnz_per_row": 11}, "exceeds `features`"),
        ({"nnz_per_row": 2, "task": "ranking"}, "task"),
        ({"nnz_per_row": 2, "task": "multiclass", "classes": 1}, "classes"),
        ({"nnz_per_row": 2, "target": "ones"}, "target"),
        ({"nnz_per_row": 2, "noise": -1}, "noise"),
        ({"nnz_per_row": 2, "columns": "zipf", "zipf_a": 1.0}, "zipf_a"),
        ({"nnz_per_row": 2, "dtype": "int32"}, "dtype"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_libsvm(str(tmp_path / "x.libsvm"), 10, 10, **kwargs)
