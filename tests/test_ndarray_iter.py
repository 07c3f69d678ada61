"""NDArrayIter: every storage type x last_batch_handle x shuffle combination, against plain numpy."""
import itertools

import numpy as np
import pytest
import scipy.sparse as sp

import sparsetrain as mx
from sparsetrain.io import DataBatch, DataDesc, NDArrayIter
from sparsetrain.io.ndarray_iter import csr_take_rows
from sparsetrain.ndarray import CSRNDArray, NDArray

N_ROWS, N_COLS = 23, 7


def _dataset(seed=0, n=N_ROWS):
    """Dense features whose column 0 is the sample id + 1 (nonzero, so CSR keeps it)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, N_COLS)) * (rng.random((n, N_COLS)) < 0.4)
    x[:, 0] = np.arange(n) + 1
    x[3, 1:] = 0.0  # a row with only the id entry
    return x.astype(np.float32)


def _as_input(x, kind):
    if kind == "dense":
        return mx.nd.array(x)
    if kind == "numpy":
        return x
    if kind == "csr":
        return mx.nd.array(x).tostype("csr")
    if kind == "scipy":
        return sp.csr_matrix(x)
    raise AssertionError(kind)


def _ids(batch):
    """Sample ids of a batch's rows (from data column 0), checked against its labels."""
    data = batch.data[0]
    dense = data.asnumpy()
    ids = dense[:, 0].astype(np.int64) - 1
    np.testing.assert_array_equal(batch.label[0].asnumpy(), ids * 10.0)
    return ids


def _epoch(it):
    return [(_ids(b), b.pad) for b in it]


COMBOS = list(itertools.product(["dense", "csr"], ["pad", "discard", "roll_over"], [False, True]))


@pytest.mark.parametrize("kind,mode,shuffle", COMBOS)
@pytest.mark.parametrize("batch_size", [1, 5, 23, 30])
def test_each_sample_once_per_epoch(kind, mode, shuffle, batch_size):
    mx.random.seed(3)
    x = _dataset()
    labels = np.arange(N_ROWS, dtype=np.float32) * 10
    it = NDArrayIter(_as_input(x, kind), labels, batch_size, shuffle=shuffle, last_batch_handle=mode)
    n_epochs = 4
    seen_per_epoch = []
    for _ in range(n_epochs):
        it.reset()
        batches = _epoch(it)
        assert all(len(ids) == batch_size for ids, _ in batches)
        for ids, pad in batches[:-1]:
            assert pad == 0
        seen_per_epoch.append(batches)
        for b in it:  # exhausted until reset
            raise AssertionError(b)

    rem = N_ROWS % batch_size
    full = N_ROWS // batch_size
    for e, batches in enumerate(seen_per_epoch):
        ids = np.concatenate([i for i, _ in batches]) if batches else np.zeros(0, np.int64)
        pads = [p for _, p in batches]
        if mode == "pad":
            assert len(batches) == full + (rem > 0)
            expected_pad = (batch_size - rem) if rem else 0
            assert pads[-1] == expected_pad
            real = ids[: len(ids) - expected_pad]
            assert sorted(real.tolist()) == list(range(N_ROWS))
            if expected_pad:  # padding repeats the epoch's first samples, cyclically
                np.testing.assert_array_equal(ids[len(real):], np.resize(real, expected_pad))
        elif mode == "discard":
            assert len(batches) == full and all(p == 0 for p in pads)
            assert len(set(ids.tolist())) == len(ids) == full * batch_size
        if mode != "roll_over" and not shuffle:  # stored order
            n_real = full * batch_size if mode == "discard" else N_ROWS
            assert ids[:n_real].tolist() == list(range(n_real))
    if mode == "roll_over":
        # across epochs: epoch e's samples are each served exactly once, some of them at the
        # start of epoch e+1; only the final remainder is still owed
        stream = np.concatenate([np.concatenate([i for i, _ in b]) for b in seen_per_epoch if b])
        assert all(p == 0 for b in seen_per_epoch for _, p in b)
        owed = (n_epochs * N_ROWS) % batch_size
        assert len(stream) == n_epochs * N_ROWS - owed
        counts = np.bincount(stream, minlength=N_ROWS)
        assert counts.max() - counts.min() <= 1 and counts.sum() == len(stream)
        # every N_ROWS consecutive served samples (from the start) are a permutation of the data
        for e in range(len(stream) // N_ROWS):
            chunk = stream[e * N_ROWS: (e + 1) * N_ROWS]
            assert sorted(chunk.tolist()) == list(range(N_ROWS)), e


def test_roll_over_matches_mxnet_example():
    # MXNet's docstring: 10 samples, batch 3, roll_over -> 3 batches; after reset the next
    # batch is [sample 9, sample 0, sample 1]
    data = np.arange(40, dtype=np.float32).reshape(10, 4)
    it = NDArrayIter(data, np.ones((10, 1)), 3, last_batch_handle="roll_over")
    assert sum(1 for _ in it) == 3
    it.reset()
    np.testing.assert_array_equal(it.next().data[0].asnumpy(), data[[9, 0, 1]])
    assert it.getpad() == 0
    assert sum(1 for _ in it) == 2  # samples 2..7; 8 and 9 are owed to the next epoch


def test_roll_over_hard_reset_drops_carry_and_double_reset_keeps_it():
    data = np.arange(10, dtype=np.float32).reshape(10, 1)
    it = NDArrayIter(data, None, 4, last_batch_handle="roll_over")
    assert [b.data[0].asnumpy().ravel().tolist() for b in it] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    it.reset()
    it.reset()  # a second reset before any batch keeps the carry
    assert it.next().data[0].asnumpy().ravel().tolist() == [8, 9, 0, 1]
    for _ in it:
        pass
    it.hard_reset()
    assert it.next().data[0].asnumpy().ravel().tolist() == [0, 1, 2, 3]


def test_small_dataset_roll_over_accumulates_until_a_batch_fills():
    data = np.arange(1, 4, dtype=np.float32).reshape(3, 1)  # nonzero: csr keeps every value
    it = NDArrayIter(mx.nd.array(data).tostype("csr"), None, 5, last_batch_handle="roll_over")
    assert list(it) == []
    it.reset()
    batches = list(it)
    assert [b.data[0].asnumpy().ravel().tolist() for b in batches] == [[1, 2, 3, 1, 2]]


@pytest.mark.parametrize("kind", ["dense", "numpy", "csr", "scipy"])
def test_unshuffled_batches_equal_slices(kind):
    x = _dataset()
    it = NDArrayIter(_as_input(x, kind), np.arange(N_ROWS) * 10.0, 4, last_batch_handle="discard")
    expect_type = CSRNDArray if kind in ("csr", "scipy") else NDArray
    for k, batch in enumerate(it):
        assert isinstance(batch, DataBatch)
        assert isinstance(batch.data[0], expect_type)
        assert isinstance(batch.label[0], NDArray) and batch.label[0].shape == (4,)
        np.testing.assert_array_equal(batch.data[0].asnumpy(), x[4 * k: 4 * k + 4])
        if expect_type is CSRNDArray:
            ref = sp.csr_matrix(x[4 * k: 4 * k + 4])
            got = batch.data[0].asscipy()
            assert got.indptr[0] == 0 and got.nnz == ref.nnz
            np.testing.assert_array_equal(got.indptr, ref.indptr)


def test_shuffle_aligns_labels_of_every_source_and_is_reproducible():
    x = _dataset()
    label2 = np.stack([np.arange(N_ROWS), -np.arange(N_ROWS)], axis=1).astype(np.float32)

    def run():
        mx.random.seed(11)
        it = NDArrayIter({"a": _as_input(x, "csr"), "b": x * 2}, {"y": np.arange(N_ROWS) * 10.0, "z": label2},
                         batch_size=4, shuffle=True, last_batch_handle="pad")
        out = []
        for _ in range(2):
            it.reset()
            for batch in it:
                a, b = (d.asnumpy() for d in batch.data)
                y, z = (lb.asnumpy() for lb in batch.label)
                ids = a[:, 0].astype(np.int64) - 1
                np.testing.assert_array_equal(b, x[ids] * 2)
                np.testing.assert_array_equal(y, ids * 10.0)
                np.testing.assert_array_equal(z, label2[ids])
                out.append(ids)
        return np.concatenate(out)

    first, second = run(), run()
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first[:N_ROWS], np.arange(N_ROWS))  # actually shuffled
    assert not np.array_equal(first[:24], first[24:])  # a new order each epoch


def test_names_and_descriptors():
    x = _dataset()
    it = NDArrayIter(x, x[:, :2], batch_size=5)
    assert it.provide_data == [DataDesc("data", (5, N_COLS))]
    assert it.provide_label == [DataDesc("softmax_label", (5, 2))]
    assert it.provide_data[0].dtype == np.float32
    it = NDArrayIter([x, _as_input(x, "scipy")], None, batch_size=2, data_name="d")
    assert [d.name for d in it.provide_data] == ["_0_d", "_1_d"]
    assert it.provide_label == []
    batch = it.next()
    assert batch.label == [] and isinstance(batch.data[1], CSRNDArray)
    it = NDArrayIter({"zeta": x, "alpha": x}, {"lab": np.zeros(N_ROWS)}, 3, label_name="ignored")
    assert [d.name for d in it.provide_data] == ["alpha", "zeta"]
    assert [d.name for d in it.provide_label] == ["lab"] and it.provide_label[0].shape == (3,)


def test_getpad_getdata_follow_current_batch():
    it = NDArrayIter(np.arange(5, dtype=np.float32).reshape(5, 1), np.arange(5), 2)
    with pytest.raises(RuntimeError):
        it.getpad()
    assert it.iter_next() and it.getpad() == 0
    assert it.iter_next() and it.iter_next()
    assert it.getpad() == 1
    assert it.getdata()[0].asnumpy().ravel().tolist() == [4, 0]
    assert it.getlabel()[0].asnumpy().tolist() == [4, 0]
    assert not it.iter_next()


def test_label_count_mismatch_names_both_counts():
    with pytest.raises(ValueError, match=r"9 rows.*10"):
        NDArrayIter(np.zeros((10, 3)), np.zeros(9), 2)
    with pytest.raises(ValueError, match=r"'b'.*4 rows"):
        NDArrayIter({"a": np.zeros((5, 1)), "b": sp.csr_matrix(np.zeros((4, 1)))}, None, 2)


@pytest.mark.parametrize("bad", [0, -3])
def test_batch_size_must_be_positive(bad):
    with pytest.raises(ValueError, match="batch_size"):
        NDArrayIter(np.zeros((4, 2)), None, bad)


def test_other_bad_arguments():
    with pytest.raises(TypeError, match="batch_size"):
        NDArrayIter(np.zeros((4, 2)), None, 2.5)
    with pytest.raises(ValueError, match="last_batch_handle"):
        NDArrayIter(np.zeros((4, 2)), None, 2, last_batch_handle="keep")
    with pytest.raises(TypeError, match="row_sparse"):
        NDArrayIter(mx.nd.array(np.eye(3)).tostype("row_sparse"), None, 1)
    with pytest.raises(ValueError):
        NDArrayIter(None, None, 1)


def test_empty_dataset_yields_nothing():
    for mode in ("pad", "discard", "roll_over"):
        it = NDArrayIter(np.zeros((0, 3), np.float32), np.zeros(0), 4, last_batch_handle=mode)
        assert list(it) == []


@pytest.mark.parametrize("seed", range(5))
def test_csr_take_rows_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    m = sp.random(40, 9, density=0.3, format="csr", random_state=seed, dtype=np.float32)
    m.indptr = m.indptr.astype(np.int64)
    m.indices = m.indices.astype(np.int64)
    rows = rng.integers(0, 40, size=rng.integers(0, 60))
    data, indices, indptr = csr_take_rows(m.data, m.indices, m.indptr, rows)
    ref = m[rows]
    got = sp.csr_matrix((data, indices, indptr), shape=(len(rows), 9))
    np.testing.assert_array_equal(got.toarray(), ref.toarray())
    assert indptr.dtype == np.int64 and indptr[0] == 0 and len(data) == ref.nnz


def test_seed_tutorial_iterator():
    mx.random.seed(0)
    data = mx.test_utils.rand_ndarray((1000, 100), "csr", 0.01)
    label = mx.nd.dot(data, mx.nd.arange(1, 101).reshape((100, 1)))
    it = NDArrayIter(data, label, 1, last_batch_handle="discard", label_name="label")
    assert it.provide_data == [DataDesc("data", (1, 100))]
    assert it.provide_label == [DataDesc("label", (1, 1))]
    dense, lab = data.asnumpy(), label.asnumpy()
    n = 0
    for k, batch in enumerate(it):
        np.testing.assert_array_equal(batch.data[0].asnumpy(), dense[k: k + 1])
        np.testing.assert_array_equal(batch.label[0].asnumpy(), lab[k: k + 1])
        n += 1
    assert n == 1000


@pytest.mark.parametrize("mode", ["pad", "discard", "roll_over"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_epoch_rows_matches_iteration(mode, shuffle):
    """The compiled engine's whole-epoch schedule is exactly what iterating yields, epoch after epoch."""
    import sparsetrain as st

    x = np.arange(30, dtype=np.float32).reshape(10, 3)
    st.random.seed(1)
    it = st.io.NDArrayIter(x, np.arange(10), batch_size=4, shuffle=shuffle, last_batch_handle=mode)
    iterated = []
    for _ in range(3):
        it.reset()
        iterated.append(np.concatenate([b.label[0].asnumpy() for b in it]).astype(int))
    st.random.seed(1)
    it = st.io.NDArrayIter(x, np.arange(10), batch_size=4, shuffle=shuffle, last_batch_handle=mode)
    for epoch in range(3):
        it.reset()
        order, batch_ptr, pad = it.epoch_rows()
        np.testing.assert_array_equal(order, iterated[epoch])
        assert batch_ptr[-1] == len(order) and np.all(np.diff(batch_ptr) == 4)
        assert pad == (2 if mode == "pad" else 0)


def test_a_csr_epoch_is_laid_out_only_when_iterated(monkeypatch):
    """The compiled engine reads ``epoch_rows`` and the original arrays: a shuffled CSR epoch it runs
    copies no rows (``csr_take_rows``) and builds no batch windows; iterating lays it out once, and
    yields the rows of the epoch's order."""
    import sparsetrain as st
    from sparsetrain.io import ndarray_iter

    calls = []
    real = ndarray_iter.csr_take_rows
    monkeypatch.setattr(ndarray_iter, "csr_take_rows", lambda *a: calls.append(1) or real(*a))
    dense = np.arange(1, 41, dtype=np.float32).reshape(10, 4)
    st.random.seed(3)
    it = st.io.NDArrayIter(st.nd.array(dense).tostype("csr"), np.arange(10), batch_size=2, shuffle=True)
    for _ in range(2):
        it.reset()
        it.epoch_rows()
    assert calls == []
    it.reset()
    order = it.idx
    rows = [b.data[0].asnumpy() for b in it]
    assert calls == [1]
    np.testing.assert_array_equal(np.concatenate(rows), dense[order])
