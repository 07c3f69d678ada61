"""The pieces of distributed block training that need no Ray: blocks cut from a streamed epoch,
the rows a block needs, the local row table, how the servers combine a round of blocks."""
import pathlib

import numpy as np
import pytest

from sparsetrain.dist import blocks as blk
from sparsetrain.dist.server import add_round
from sparsetrain.io import LibSVMIter

LINREG_DATA = str(pathlib.Path(__file__).resolve().parents[1] / "data" / "linreg.libsvm")


def _iter(batch_size, last="discard", parts=1, part=0, chunk=None):
    kw = {"chunk_size": chunk} if chunk else {}
    return LibSVMIter(LINREG_DATA, (100,), batch_size=batch_size, num_parts=parts, part_index=part,
                      data_name="data", label_name="label", last_batch_handle=last, **kw)


@pytest.mark.parametrize("last", ["discard", "pad", "roll_over"])
@pytest.mark.parametrize("per_block", [1, 3, 7, 1000])
def test_blocks_hold_exactly_the_batches_of_the_epoch_in_order(last, per_block):
    want = []
    it = _iter(16, last, chunk=4096)  # small chunks: batches and blocks span pieces
    for b in it:
        n = b.data[0].shape[0]
        want.append((b.data[0].asscipy().toarray(), b.label[0].asnumpy().reshape(n), b.pad))
    it = _iter(16, last, chunk=4096)
    it.reset()
    cut = list(blk.blocks(it.epoch_pieces(), per_block))
    assert [sum(s.batches for s in block) for block in cut[:-1]] == [per_block] * (len(cut) - 1)
    # each block joined into one segment of copied rows (what a worker trains): the same batches
    for blocks in (cut, [blk.join(block) for block in cut]):
        got = []
        for block in blocks:
            for seg in block:
                for b in seg:
                    n = b.data[0].shape[0]
                    got.append((b.data[0].asscipy().toarray(), b.label[0].asnumpy().reshape(n), b.pad))
        assert all(seg.checked_csr for block in blocks for seg in block)  # parsed rows: not checked again
        assert len(got) == len(want)
        for (x, y, p), (x2, y2, p2) in zip(got, want):
            np.testing.assert_array_equal(x, x2)
            np.testing.assert_array_equal(y, y2)
            assert p == p2
    assert all(len(blk.join(block)) == 1 for block in cut)


def test_join_takes_a_segment_s_rows_in_its_order():
    """A segment whose rows are not consecutive in its piece (gathered, not sliced)."""
    it = _iter(4, chunk=4096)
    it.reset()
    piece = next(it.epoch_pieces())
    piece.order = piece.order[::-1].copy()
    block = [blk.Segment(piece, 0, 2), blk.Segment(piece, 2, 3)]
    (joined,) = blk.join(block)
    want = [b.data[0].asscipy().toarray() for seg in block for b in seg]
    got = [b.data[0].asscipy().toarray() for b in joined]
    assert joined.batches == 3 and len(got) == len(want)
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)


def test_a_block_needs_its_columns_and_measures_the_rows_touched_often_in_both_halves(monkeypatch):
    monkeypatch.setattr(blk, "MIN_TOUCHES", 2)
    it = _iter(10, chunk=4096)
    it.reset()
    block = next(blk.blocks(it.epoch_pieces(), 41))  # halves of 20 and 21 batches, over pieces of 4096 bytes
    first, second = blk.halves(block)
    assert [sum(s.batches for s in h) for h in (first, second)] == [20, 21] and len(block) > 1
    keys = {0: ("weight", (100, 1), True), 1: ("bias", (1,), False), 2: ("emb", (100, 1), True)}
    need = blk.needs(block, keys, {"weight": "data"})

    def cols(half):
        return np.concatenate([b.data[0].asscipy().indices for seg in half for b in seg])

    np.testing.assert_array_equal(need.rows[0], np.unique(cols(block)))
    c1, c2 = (np.bincount(cols(h), minlength=100)[need.rows[0]] for h in (first, second))
    np.testing.assert_array_equal(need.measured[0], np.flatnonzero((c1 >= 2) & (c2 >= 2)))
    assert 0 < len(need.measured[0]) < len(need.rows[0])
    assert need.rows[1] is None and need.rows[2] is None  # dense, and row_sparse not reached through the csr: whole
    assert need.measured[1] is None and need.measured[2] is None  # measured element by element


def test_saturation_is_the_contraction_left_after_the_block():
    start = np.array([0.0, 0.0, 5.0, 1.0], np.float32)
    # rows contracted toward 10 by 0.5 per half (s = 0.25), by 0 (s = 0), moved alike by both halves (s = 1),
    # not moved in the first half (additive: s = 1)
    mid = np.array([5.0, 10.0, 6.0, 1.0], np.float32)
    end = np.array([7.5, 10.0, 7.0, 3.0], np.float32)
    np.testing.assert_allclose(blk.saturation(start, mid, end), [0.25, 0.0, 1.0, 1.0])
    # overshoots and reversals are clipped to [0, 1]
    np.testing.assert_allclose(blk.saturation(start[:2], np.array([1.0, 1.0], np.float32),
                                              np.array([0.0, 3.0], np.float32)), [0.0, 1.0])


def test_a_round_adds_row_changes_and_averages_states_and_dense_values():
    a = (np.array([1, 4]), np.array([[2.0], [4.0]], np.float32))
    b = (np.array([4, 7]), np.array([[8.0], [6.0]], np.float32))
    values = np.ones((9, 1), np.float32)
    add_round(values, [a, b])
    np.testing.assert_array_equal(values[[1, 4, 7]], [[3.0], [13.0], [7.0]])  # row 4: 4 + 8; rows 1, 7: one worker
    assert (np.delete(values, [1, 4, 7]) == 1).all()
    states = np.ones((9, 1), np.float32)
    add_round(states, [a, b], mean_rows=True)
    np.testing.assert_array_equal(states[[1, 4, 7]], [[3.0], [7.0], [7.0]])  # row 4: (4 + 8) / 2
    assert (np.delete(states, [1, 4, 7]) == 1).all()
    dense = np.array([10.0, 20.0])
    add_round(dense, [(None, np.array([1.0, 3.0])), (None, np.array([3.0, 5.0]))])
    assert dense.tolist() == [12.0, 24.0]  # the mean change


def test_blocks_from_the_same_values_add_up_on_additive_rows_and_average_on_saturated_ones():
    """dist_sync: two workers' blocks from the same start. Row 1: only worker a; row 4: both, additive (not
    measured): the sum; row 7: both, each measured s = 0 (the block brought it to where its data puts it): the
    mean; row 8: both, s = 0.5 each: (1 + s) / 2 of the sum; a dense value measured s = 0: the mean."""
    a = (np.array([1, 4, 7, 8]), np.array([[2.0], [4.0], [6.0], [2.0]], np.float32))
    b = (np.array([4, 7, 8]), np.array([[8.0], [2.0], [6.0]], np.float32))
    sat_a = (np.array([2, 3], np.int32), np.array([[0.0], [0.5]], np.float32), np.zeros((2, 1), np.float32))
    sat_b = (np.array([1, 2], np.int32), np.array([[0.0], [0.5]], np.float32), np.zeros((2, 1), np.float32))
    values = np.ones((9, 1), np.float32)
    add_round(values, [a, b], saturated=[sat_a, sat_b])
    np.testing.assert_allclose(values[[1, 4, 7, 8]], [[3.0], [13.0], [5.0], [7.0]])
    assert (np.delete(values, [1, 4, 7, 8]) == 1).all()
    dense = np.array([10.0], np.float32)
    sat = (None, np.zeros(1, np.float32), dense.copy())
    add_round(dense, [(None, np.array([4.0], np.float32)), (None, np.array([2.0], np.float32))], saturated=[sat, sat])
    assert dense.tolist() == [13.0]


def test_an_async_block_on_a_saturated_row_lands_where_it_would_from_the_current_value():
    """The divergence of dist_async with stale blocks: two workers start from a bias of 0 whose optimum is 5;
    each block brings it there (s = 0). Adding both changes put it at 10 (and the next stale blocks back at 0);
    applied as trained from the current value it stays at 5. An additive row (not measured) gets both changes."""
    from sparsetrain.dist.server import apply_push

    bias = np.zeros(1, np.float32)
    for _ in range(2):  # both blocks started from 0
        apply_push(bias, None, np.array([5.0], np.float32), (None, np.zeros(1, np.float32), np.zeros(1, np.float32)))
    assert bias.tolist() == [5.0]
    w = np.zeros((4, 1), np.float32)
    sat = (np.array([0], np.int32), np.array([[0.0]], np.float32), np.zeros((1, 1), np.float32))  # row 1
    for _ in range(2):
        apply_push(w, np.array([1, 2]), np.array([[5.0], [0.5]], np.float32), sat)
    assert w.ravel().tolist() == [0.0, 5.0, 1.0, 0.0]
    # half saturated (s = 0.5): half of the other block's move survives
    w = np.full((1, 1), 3.0, np.float32)
    apply_push(w, np.array([0]), np.array([[2.0]], np.float32),
               (np.array([0], np.int32), np.array([[0.5]], np.float32), np.zeros((1, 1), np.float32)))
    assert w.tolist() == [[0.5 * 3.0 + 2.0]]


def test_with_changes_adds_the_own_push_only_where_a_server_answered_before_it():
    rows = {0: np.array([2, 3, 5, 9]), 1: None}
    got = {0: (np.zeros((4, 1), np.float32), (np.zeros((4, 1), np.float32),)),
           1: (np.zeros(1, np.float32), (np.zeros(1, np.float32),))}
    prev = {0: (np.array([3, 4, 9]), np.array([[1.0], [2.0], [3.0]], np.float32),
                (np.array([[7.0], [8.0], [9.0]], np.float32),), None),
            1: (None, np.array([0.5], np.float32), (np.array([5.0], np.float32),), None)}
    # rows >= 5 on a server that had applied the push already; rows < 5 and the dense value on one that had not
    out = blk.with_changes(rows, got, prev, lambda key, r: np.ones(1, bool) if r is None else r < 5)
    np.testing.assert_array_equal(out[0][0].ravel(), [0, 1, 0, 0])
    # where the pushed rows are, found ahead of time (blocks.in_order: Needs.after): the same, the hits kept as found
    need = [(None, blk.Needs({0: prev[0][0], 1: None}, {})), (None, blk.Needs(rows, {}))]
    after = list(blk.in_order(need))[1][1].after
    assert list(after) == [0] and after[0][1].tolist() == [True, False, True]
    again = blk.with_changes(rows, got, prev, lambda key, r: np.ones(1, bool) if r is None else r < 5, after)
    np.testing.assert_array_equal(again[0][0], out[0][0])
    assert after[0][1].tolist() == [True, False, True]
    np.testing.assert_array_equal(out[0][1][0].ravel(), [0, 7, 0, 0])  # optimizer states: the pushed values
    assert out[1][0].tolist() == [0.5] and out[1][1][0].tolist() == [5.0]
    assert got[0][0].sum() == 0  # the pulled arrays are not written (they may be read-only)
    # a saturated row is moved as the server moves it: row 3 (s = 0, started at -1): its block's end value
    prev[0] = prev[0][:3] + ((np.array([0], np.int32), np.array([[0.0]], np.float32), np.array([[-1.0]], np.float32)),)
    out = blk.with_changes(rows, got, prev, lambda key, r: np.ones(1, bool) if r is None else r < 5)
    np.testing.assert_array_equal(out[0][0].ravel(), [0, 0, 0, 0])


def test_local_rows_load_then_changes_round_trip():
    import sparsetrain as mx

    w = mx.nd.zeros((10, 2)).tostype("row_sparse")
    b = mx.nd.zeros((2,))
    opt = mx.optimizer.SGD(learning_rate=0.1, momentum=0.9)
    table = blk.LocalRows({"w": w, "b": b}, mx.optimizer.get_updater(opt),
                          {0: ("w", (10, 2), True), 1: ("b", (2,), False)})
    rows = {0: np.array([1, 6]), 1: None}
    got = {0: (np.ones((2, 2), np.float32), (np.full((2, 2), 3.0, np.float32),)),
           1: (np.array([1.0, 2.0], np.float32), (np.zeros(2, np.float32),))}
    table.load(rows, got, None, {0: np.array([0, 1]), 1: None})
    assert w.asnumpy()[[1, 6]].tolist() == [[1, 1], [1, 1]]
    table.weights[0][1] += 0.25
    table.weights[1][:] += 1.0
    table.snapshot()  # the middle of the block
    table.weights[0][1] += 0.25
    ch = table.changes()
    np.testing.assert_array_equal(ch[0][0], [1, 6])
    np.testing.assert_array_equal(ch[0][1], [[0.5, 0.5], [0, 0]])
    np.testing.assert_array_equal(ch[0][2][0], np.zeros((2, 2)))
    np.testing.assert_array_equal(ch[1][1], [1.0, 1.0])
    assert ch[0][3] is None  # row 1 moved alike in both halves (additive), row 6 not at all
    pos, s, start = ch[1][3]  # the bias: the second half did not move it
    assert pos is None and s.tolist() == [0.0, 0.0] and start.tolist() == [1.0, 2.0]
    assert table.changes(state_values=True)[0][2][0].tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_auto_sync_every_is_about_65536_rows_but_several_blocks_per_part(tmp_path):
    assert blk.batches_per_block(5, 256) == 5
    assert blk.batches_per_block("auto", 256) == 256
    assert blk.batches_per_block("auto", 1) == blk.AUTO_BLOCK_ROWS
    # linreg.libsvm: 1000 rows; 2 workers, batch 10 -> 50 batches each -> 8 blocks of 6
    assert blk.estimate_rows(LINREG_DATA) == pytest.approx(1000, rel=0.05)
    assert blk.batches_per_block("auto", 10, LINREG_DATA, 2) == 6
    small = tmp_path / "small.libsvm"
    small.write_text("1 1:1\n" * 3)
    assert blk.estimate_rows(str(small)) == 3 and blk.batches_per_block("auto", 100, str(small), 4) == 1


def test_auto_sync_every_gives_a_large_part_fewer_larger_blocks():
    # up to AUTO_SMALL_PART rows per worker: 8 blocks; the 500k-row benchmark's part (2 workers, batch 256, 977
    # batches): 4 blocks of 245 (not 8 of 122); 1 worker: 8 of 245 (not 8 of 244 and one of 2)
    assert blk.auto_batches(blk.AUTO_SMALL_PART, 256) * blk.AUTO_MIN_BLOCKS * 256 == blk.AUTO_SMALL_PART
    assert blk.auto_batches(250_000, 256) == 245 and blk.auto_batches(500_000, 256) == 245
    assert blk.auto_batches(131_072, 256) == 128  # 4 blocks: part / 8 * 2
    assert blk.auto_batches(10**7, 256) == 256 and blk.auto_batches(None, 256) == 256


def test_sync_every_and_push_dtype_are_checked_config_keys():
    from sparsetrain.base import ConfigError
    from sparsetrain.config import load_config

    cfg = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml")
    assert load_config(cfg, ["train.sync_every=12"]).train.sync_every == 12
    for bad, key in [("train.sync_every=0", "train.sync_every"), ("train.max_staleness=-1", "train.max_staleness"),
                     ("train.push_dtype=int8", "train.push_dtype")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(cfg, [bad])
