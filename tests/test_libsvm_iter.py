"""LibSVMIter: MXNet's documented behaviour, every row once per epoch for any batch and chunk
size, padding / short / discard / roll_over last batches, parts, label files, bounded memory."""
from __future__ import annotations

import os
import re
import tracemalloc

import numpy as np
import pytest

from sparsetrain.base import DataFormatError
from sparsetrain.io import DataBatch, DataDesc, LibSVMIter, load_libsvm
from sparsetrain.ndarray import CSRNDArray, NDArray

DATA_T = "1.0 0:0.5 2:1.2\n-2.0\n-3.0 0:0.6 1:2.4 2:1.2\n4 2:-1.2\n"
LABEL_T = "1.0\n-2.0 0:0.125\n-3.0 2:1.2\n4 1:1.0 2:-1.2\n"


@pytest.fixture
def data_t(tmp_path):
    p = tmp_path / "data.t"
    p.write_text(DATA_T)
    return str(p)


def rows_file(tmp_path, n, name="rows.libsvm", d=50, seed=0):
    """``n`` rows whose label is the row number; returns (path, dense matrix)."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((n, d), np.float32)
    lines = []
    for i in range(n):
        cols = np.sort(rng.choice(d, size=int(rng.integers(0, 6)), replace=False))
        vals = rng.integers(1, 100, size=len(cols)) / 4
        dense[i, cols] = vals
        lines.append(" ".join([str(i)] + [f"{c}:{v}" for c, v in zip(cols, vals)]))
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return str(p), dense


def epoch(it):
    return [(b.data[0].asnumpy(), b.label[0].asnumpy(), b.pad) for b in it]


def test_mxnet_documented_example(data_t):
    it = LibSVMIter(data_libsvm=data_t, data_shape=(3,), batch_size=3, zero_based=True)
    first = it.next()
    assert isinstance(first, DataBatch)
    csr = first.data[0]
    assert isinstance(csr, CSRNDArray) and csr.shape == (3, 3) and csr.stype == "csr"
    np.testing.assert_allclose(csr.asnumpy(), [[0.5, 0, 1.2], [0, 0, 0], [0.6, 2.4, 1.2]])
    assert isinstance(first.label[0], NDArray)
    np.testing.assert_array_equal(first.label[0].asnumpy(), [1, -2, -3])
    second = it.next()
    np.testing.assert_allclose(second.data[0].asnumpy(), [[0, 0, -1.2], [0.5, 0, 1.2], [0, 0, 0]])
    np.testing.assert_array_equal(second.label[0].asnumpy(), [4, 1, -2])
    assert second.pad == 2
    with pytest.raises(StopIteration):
        it.next()
    it.reset()
    np.testing.assert_array_equal(it.next().label[0].asnumpy(), [1, -2, -3])


def test_mxnet_documented_label_file(tmp_path, data_t):
    label_t = tmp_path / "label.t"
    label_t.write_text(LABEL_T)
    it = LibSVMIter(data_libsvm=data_t, data_shape=(3,), label_libsvm=str(label_t), label_shape=(3,), batch_size=3)
    b = it.next()
    np.testing.assert_allclose(b.label[0].asnumpy(), [[0, 0, 0], [0.125, 0, 0], [0, 0, 1.2]])
    b = it.next()
    np.testing.assert_allclose(b.label[0].asnumpy(), [[0, 1, -1.2], [0, 0, 0], [0.125, 0, 0]])
    assert it.provide_label == [DataDesc("softmax_label", (3, 3))]


def test_descriptors_and_dtype(data_t):
    it = LibSVMIter(data_t, (3,), batch_size=2, data_name="data", label_name="label", dtype="float64")
    assert it.provide_data == [DataDesc("data", (2, 3))]
    assert it.provide_label == [DataDesc("label", (2,))]
    assert it.provide_data[0].dtype == np.float64
    b = next(iter(it))
    assert b.data[0].dtype == np.float64 and b.label[0].dtype == np.float64
    assert b.provide_data == it.provide_data


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 64, 500])
@pytest.mark.parametrize("chunk_size", [8, 100, 1 << 20])
def test_short_last_batch_covers_every_row_once(tmp_path, batch_size, chunk_size):
    path, dense = rows_file(tmp_path, 137)
    it = LibSVMIter(path, (50,), batch_size=batch_size, round_batch=False, chunk_size=chunk_size, zero_based=True)
    for _ in range(2):  # two epochs give the same batches
        got = epoch(it)
        assert all(pad == 0 for _, _, pad in got)
        assert [len(lab) for _, lab, _ in got] == [batch_size] * (137 // batch_size) + ([137 % batch_size] if 137 % batch_size else [])
        np.testing.assert_array_equal(np.concatenate([x for x, _, _ in got]), dense)
        np.testing.assert_array_equal(np.concatenate([lab for _, lab, _ in got]), np.arange(137))
        it.reset()


@pytest.mark.parametrize("batch_size", [1, 5, 10, 136, 137, 138, 300, 1000])
def test_padding_cycles_rows_from_the_start(tmp_path, batch_size):
    path, dense = rows_file(tmp_path, 137)
    it = LibSVMIter(path, (50,), batch_size=batch_size, chunk_size=64, zero_based=True)
    got = epoch(it)
    n_batches = -(-137 // batch_size)
    assert len(got) == n_batches
    assert all(x.shape == (batch_size, 50) for x, _, _ in got)
    labels = np.concatenate([lab for _, lab, _ in got])
    want = np.arange(n_batches * batch_size) % 137
    np.testing.assert_array_equal(labels, want)
    np.testing.assert_array_equal(np.concatenate([x for x, _, _ in got]), dense[want])
    assert got[-1][2] == n_batches * batch_size - 137


def test_file_smaller_than_one_batch(tmp_path):
    path, dense = rows_file(tmp_path, 3)
    (x, lab, pad), = epoch(LibSVMIter(path, (50,), batch_size=10, zero_based=True))
    np.testing.assert_array_equal(lab, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
    np.testing.assert_array_equal(x, dense[[0, 1, 2, 0, 1, 2, 0, 1, 2, 0]])
    assert pad == 7
    (x, lab, pad), = epoch(LibSVMIter(path, (50,), batch_size=10, round_batch=False, zero_based=True))
    assert lab.tolist() == [0, 1, 2] and pad == 0
    assert epoch(LibSVMIter(path, (50,), batch_size=10, last_batch_handle="discard")) == []


def test_discard_and_roll_over(tmp_path):
    path, _ = rows_file(tmp_path, 10)
    it = LibSVMIter(path, (50,), batch_size=4, last_batch_handle="discard", chunk_size=16)
    assert [lab.tolist() for _, lab, _ in epoch(it)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    it = LibSVMIter(path, (50,), batch_size=4, last_batch_handle="roll_over", chunk_size=16)
    assert [lab.tolist() for _, lab, _ in epoch(it)] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    it.reset()  # rows 8, 9 start the next epoch
    assert [lab.tolist() for _, lab, _ in epoch(it)] == [[8, 9, 0, 1], [2, 3, 4, 5], [6, 7, 8, 9]]
    it.reset()
    assert [lab.tolist() for _, lab, _ in epoch(it)][0] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="last_batch_handle"):
        LibSVMIter(path, (50,), last_batch_handle="wrap")


class _Once:
    """A reader that can be read once (stdin): a second pass is an error."""

    def __init__(self, reader):
        self.reader, self.passes = reader, 0

    def __iter__(self):
        self.passes += 1
        assert self.passes == 1, "read twice"
        return iter(self.reader)

    def __getattr__(self, name):
        return getattr(self.reader, name)


@pytest.mark.parametrize("n,window", [(4, 0), (11, 0), (4, 3)])
def test_has_rows_parses_ahead_and_the_next_pass_replays_it(tmp_path, n, window):
    # (fit asks before its header whether a streamed epoch that discards a short batch has a batch at all)
    from sparsetrain.io.libsvm import LibSVMReader

    path, _ = rows_file(tmp_path, 10)
    once = _Once(LibSVMReader(path, num_features=50, zero_based=True, chunk_size=16))
    it = LibSVMIter(path, (50,), batch_size=4, last_batch_handle="discard", reader=once, shuffle_window=window)
    assert it.has_rows(n) is (n <= 10)
    assert it.has_rows(n) is (n <= 10)  # asked again: nothing more read
    it.reset()
    labels = [lab.astype(int).tolist() for _, lab, _ in epoch(it)]
    assert once.passes == 1 and len(labels) == 2
    flat = sum(labels, [])
    if window:  # windows of 3 rows, each shuffled: rows 0..5 fill the first two windows, then two of 6..8
        assert len(set(flat)) == 8 and set(range(6)) <= set(flat) <= set(range(9))
    else:
        assert labels == [[0, 1, 2, 3], [4, 5, 6, 7]]
    empty = tmp_path / "empty.libsvm"
    empty.write_text("# only a comment\n")
    with pytest.raises(DataFormatError, match="no data rows"):
        LibSVMIter(str(empty), (50,), batch_size=4).has_rows(4)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streamed_labels_in_the_iterators_dtype_as_parsed(tmp_path, dtype):
    # (the parser threads cast a chunk's labels; the ones the kernel leaves to Python are written in after)
    texts = ["0.12345678901234567890123", "1e-40", "7", "-2.5e10", "16777217", "0.1", "-0", "3.4e38"]
    path = tmp_path / "labels.libsvm"
    path.write_text("".join(f"{t} 1:1\n" for t in texts) * 3)
    it = LibSVMIter(str(path), (5,), batch_size=8, dtype=dtype, chunk_size=64, zero_based=False)
    got = np.concatenate([b.label[0].asnumpy() for b in it])
    want = np.array([float(t) for t in texts] * 3).astype(dtype)
    assert got.dtype == np.dtype(dtype) and got.tobytes() == want.tobytes()


def test_an_iterator_let_go_closes_the_pass_has_rows_parsed_ahead(tmp_path):
    # (its parses cancelled and its map closed then, not whenever the garbage collector breaks the cycle
    # between the iterator and its generators)
    path, _ = rows_file(tmp_path, 10)
    it = LibSVMIter(path, (50,), batch_size=4, chunk_size=16, zero_based=True)
    assert it.has_rows(4)
    ahead = it._peeked[1]
    assert ahead.gi_frame is not None
    it.__del__()
    assert ahead.gi_frame is None


@pytest.mark.parametrize("num_parts", [1, 2, 3, 5, 8, 40])
def test_parts_cover_every_row_once(tmp_path, num_parts):
    path, dense = rows_file(tmp_path, 101)
    seen = []
    for part in range(num_parts):
        it = LibSVMIter(path, (50,), batch_size=4, round_batch=False, num_parts=num_parts, part_index=part,
                        chunk_size=32, zero_based=True)
        seen += [lab for _, lab, _ in epoch(it)]
    labels = np.concatenate(seen).astype(int) if seen else np.array([], int)
    assert labels.tolist() == list(range(101))


def test_padding_within_a_part_uses_the_part_s_first_rows(tmp_path):
    path, _ = rows_file(tmp_path, 20)
    it = LibSVMIter(path, (50,), batch_size=8, num_parts=2, part_index=1, zero_based=True)
    labels = np.concatenate([lab for _, lab, _ in epoch(it)]).astype(int).tolist()
    first = labels[0]
    n = 20 - first
    assert labels == [first + (i % n) for i in range(len(labels))]


def test_label_file_with_parts_stays_aligned(tmp_path):
    path, _ = rows_file(tmp_path, 60, d=50)
    label_path = tmp_path / "labels.libsvm"
    label_path.write_text("".join(f"0 0:{i} 1:{2 * i}\n" if i else "0\n" for i in range(60)))
    seen = []
    for part in range(4):
        it = LibSVMIter(path, (50,), label_libsvm=str(label_path), label_shape=(2,), batch_size=7, round_batch=False,
                        num_parts=4, part_index=part, chunk_size=64, zero_based=True)
        for _, lab, _ in epoch(it):
            seen.append(lab)
    lab = np.concatenate(seen)
    np.testing.assert_array_equal(lab, np.stack([np.arange(60), 2 * np.arange(60)], axis=1))


def test_label_file_row_count_must_match(tmp_path, data_t):
    short = tmp_path / "short.t"
    short.write_text("0 0:1\n0 0:2\n")
    it = LibSVMIter(data_t, (3,), label_libsvm=str(short), label_shape=(3,), batch_size=2)
    with pytest.raises(DataFormatError, match="short.t: has fewer rows than .*data.t"):
        epoch(it)
    long = tmp_path / "long.t"
    long.write_text("0 0:1\n" * 5)
    it = LibSVMIter(data_t, (3,), label_libsvm=str(long), label_shape=(3,), batch_size=2)
    with pytest.raises(DataFormatError, match="long.t: has more rows than"):
        epoch(it)


def test_multiple_labels_per_row(tmp_path):
    p = tmp_path / "multi.libsvm"
    p.write_text("1,2 0:1\n3,4 1:1\n5,6\n")
    it = LibSVMIter(str(p), (2,), label_shape=(2,), batch_size=2, round_batch=False)
    assert [lab.tolist() for _, lab, _ in epoch(it)] == [[[1, 2], [3, 4]], [[5, 6]]]
    with pytest.raises(DataFormatError, match=re.escape(f"{p}:1: expected 1 label per row")):
        epoch(LibSVMIter(str(p), (2,), batch_size=2))


def test_errors_surface_with_their_line_while_streaming(tmp_path):
    path, _ = rows_file(tmp_path, 300)
    with open(path, "a") as f:
        f.write("7 3:1 60:2\n")
    it = LibSVMIter(path, (50,), batch_size=16, chunk_size=256, zero_based=True)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:301: feature index '60' is out of range for num_features=50")):
        epoch(it)


def test_zero_based_auto_matches_load_libsvm(tmp_path):
    p = tmp_path / "one.libsvm"
    p.write_text("1 1:1 3:2\n2 2:5\n")
    X, y = load_libsvm(str(p))
    b = LibSVMIter(str(p), (3,), batch_size=2).next()
    np.testing.assert_array_equal(b.data[0].asnumpy(), X.asnumpy())


def test_empty_file_and_bad_arguments(tmp_path):
    p = tmp_path / "empty.libsvm"
    p.write_text("# nothing\n")
    with pytest.raises(DataFormatError, match="no data rows"):
        LibSVMIter(str(p), (3,)).next()
    with pytest.raises(ValueError, match="batch_size"):
        LibSVMIter(str(p), (3,), batch_size=0)
    with pytest.raises(Exception, match="data_shape"):
        LibSVMIter(str(p), (3, 4))
    with pytest.raises(FileNotFoundError):
        LibSVMIter(str(tmp_path / "missing.libsvm"), (3,))


def test_streaming_memory_stays_bounded(tmp_path):
    from sparsetrain.io.synthetic import generate_libsvm

    path = str(tmp_path / "big.libsvm")
    generate_libsvm(path, 120_000, 100_000, nnz_per_row=12, seed=5)
    size = os.path.getsize(path)
    chunk = 1 << 16
    assert size > 200 * chunk
    it = LibSVMIter(path, (100_000,), batch_size=512, chunk_size=chunk, zero_based=True, workers=2)
    tracemalloc.start()
    try:
        rows = sum(b.data[0].shape[0] - b.pad for b in it)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 120_000
    # a few chunks in flight, each with room for its parsed output: far below the file size
    assert peak < 100 * chunk, (peak, size)
    assert peak < size / 2


def test_reset_in_the_middle_of_the_first_epoch(tmp_path):
    path, _ = rows_file(tmp_path, 30)
    it = LibSVMIter(path, (50,), batch_size=8, chunk_size=40, zero_based=True)
    it.next()
    it.reset()
    labels = np.concatenate([lab for _, lab, _ in epoch(it)]).astype(int).tolist()
    assert labels == list(range(30)) + [0, 1]


def _order(it):
    """The label (= row number) of every row of an epoch, in the order batches give them."""
    it.reset()
    return np.concatenate([b.label[0].asnumpy()[: len(b.label[0].asnumpy()) - b.pad] for b in it]).astype(int)


def _piece_order(it):
    """The same, from the pieces a streamed epoch on the compiled engine trains."""
    import sparsetrain.random as st_random  # noqa: F401

    it.reset()
    out = []
    for piece in it.epoch_pieces():
        y = dict(piece.label)["softmax_label"].asnumpy()
        end = len(piece.order) - piece.pad
        out.append(y[piece.order[:end]])
    return np.concatenate(out).astype(int)


@pytest.mark.parametrize("window,chunk_size", [(10, 64), (64, 1 << 20), (200, 100), (1000, 8)])
def test_shuffle_window_gives_every_row_once_in_a_new_order_each_epoch(tmp_path, window, chunk_size):
    import sparsetrain.random as st_random

    path, dense = rows_file(tmp_path, 137)
    st_random.seed(4)
    it = LibSVMIter(path, (50,), batch_size=3, round_batch=False, chunk_size=chunk_size, zero_based=True,
                    shuffle_window=window)
    orders = [_order(it) for _ in range(3)]
    for order in orders:
        assert sorted(order) == list(range(137))  # every row exactly once
        w = min(window, 137)
        for start in range(0, 137, w):  # rows stay in their window: memory holds one window
            assert sorted(order[start : start + w]) == list(range(start, min(start + w, 137)))
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    assert not np.array_equal(orders[0], np.arange(137))
    st_random.seed(4)  # deterministic per seed
    again = LibSVMIter(path, (50,), batch_size=3, round_batch=False, chunk_size=chunk_size, zero_based=True,
                       shuffle_window=window)
    assert all(np.array_equal(_order(again), o) for o in orders)
    st_random.seed(5)
    other = LibSVMIter(path, (50,), batch_size=3, round_batch=False, chunk_size=chunk_size, zero_based=True,
                       shuffle_window=window)
    assert not np.array_equal(_order(other), orders[0])
    # the rows keep their features, and the compiled engine's pieces hold the same order
    st_random.seed(4)
    it = LibSVMIter(path, (50,), batch_size=3, round_batch=False, chunk_size=chunk_size, zero_based=True,
                    shuffle_window=window)
    it.reset()
    for b in it:
        x, y = b.data[0].asnumpy(), b.label[0].asnumpy().astype(int)
        np.testing.assert_array_equal(x, dense[y])
    st_random.seed(4)
    pieces = LibSVMIter(path, (50,), batch_size=3, round_batch=False, chunk_size=chunk_size, zero_based=True,
                        shuffle_window=window)
    assert all(np.array_equal(_piece_order(pieces), o) for o in orders)


@pytest.mark.parametrize("window", [0, 1])
def test_shuffle_window_of_one_row_keeps_the_file_order(tmp_path, window):
    import sparsetrain.random as st_random

    path, _ = rows_file(tmp_path, 50)
    before = st_random.generator().bit_generator.state
    it = LibSVMIter(path, (50,), batch_size=4, round_batch=False, chunk_size=64, zero_based=True,
                    shuffle_window=window)
    assert np.array_equal(_order(it), np.arange(50))
    assert st_random.generator().bit_generator.state == before  # no draw: other random streams unchanged


def test_shuffle_window_with_roll_over_owes_rows_to_the_next_epoch(tmp_path):
    import sparsetrain.random as st_random

    path, _ = rows_file(tmp_path, 50)
    st_random.seed(1)
    it = LibSVMIter(path, (50,), batch_size=7, chunk_size=64, zero_based=True, shuffle_window=16,
                    last_batch_handle="roll_over")
    first = _order(it)
    assert len(first) == 49 and len(it.roll_over_state()["labels"]) == 1  # one row owed to the next epoch
    seen = np.concatenate([first] + [_order(it) for _ in range(6)])  # 350 rows: 50 batches, nothing owed
    assert it.roll_over_state() is None
    assert np.array_equal(np.bincount(seen, minlength=50), np.full(50, 7))
    with pytest.raises(ValueError, match="shuffle_window must be a non-negative integer"):
        LibSVMIter(path, (50,), shuffle_window=-3)
