"""``mx.kv`` (local store) as MXNet 1.9.1 documents it, with ``import sparsetrain as mx``."""
import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain.ndarray.sparse import sum_rows

SHAPE = (4, 3)


def test_set_updater_gets_keys_as_given():
    kv = mx.kv.create("local")
    seen = []

    def updater(key, recv, local):
        seen.append(key)
        local += recv

    kv.init(3, mx.nd.ones(SHAPE))
    kv.init("w", mx.nd.ones(SHAPE))
    kv._set_updater(updater)
    kv.push(3, [mx.nd.ones(SHAPE)] * 2)
    kv.push("w", mx.nd.ones(SHAPE) * 4)
    out = mx.nd.zeros(SHAPE)
    kv.pull(3, out=out)
    np.testing.assert_array_equal(out.asnumpy(), np.full(SHAPE, 3.0))
    kv.pull("w", out=out)
    np.testing.assert_array_equal(out.asnumpy(), np.full(SHAPE, 5.0))
    assert seen == [3, "w"] and isinstance(seen[0], int)


def test_row_sparse_pull_with_a_list_of_row_ids():
    kv = mx.kv.create("local")
    value = mx.nd.array(np.arange(12).reshape(SHAPE))
    kv.init("e", value.tostype("row_sparse"))
    outs = [mx.nd.sparse.zeros("row_sparse", SHAPE) for _ in range(3)]
    ids = [mx.nd.array([0, 0, 2]), mx.nd.array([3]), mx.nd.array([], dtype="int64")]
    kv.row_sparse_pull("e", out=outs, row_ids=ids)
    for out, rows in zip(outs, ([0, 2], [3], [])):
        assert out.indices.asnumpy().tolist() == rows
        expected = np.zeros(SHAPE)
        expected[rows] = value.asnumpy()[rows]
        np.testing.assert_array_equal(out.asnumpy(), expected)
    shared = [mx.nd.sparse.zeros("row_sparse", SHAPE) for _ in range(2)]
    kv.row_sparse_pull("e", out=shared, row_ids=mx.nd.array([1]))
    assert [o.indices.asnumpy().tolist() for o in shared] == [[1], [1]]
    kv.init("f", value.tostype("row_sparse"))
    a, b = mx.nd.sparse.zeros("row_sparse", SHAPE), mx.nd.sparse.zeros("row_sparse", SHAPE)
    kv.row_sparse_pull(["e", "f"], out=[a, b], row_ids=[mx.nd.array([1]), mx.nd.array([2, 3])])
    assert a.indices.asnumpy().tolist() == [1] and b.indices.asnumpy().tolist() == [2, 3]
    with pytest.raises(ValueError):
        kv.row_sparse_pull("e", out=outs, row_ids=ids[:2])
    with pytest.raises(IndexError):
        kv.row_sparse_pull("e", out=a, row_ids=mx.nd.array([4]))


def test_push_of_row_sparse_values_sums_rows():
    kv = mx.kv.create("local")
    kv.init("e", mx.nd.zeros(SHAPE).tostype("row_sparse"))
    g1 = mx.nd.sparse.row_sparse_array(([[1, 1, 1], [2, 2, 2]], [0, 2]), shape=SHAPE)
    g2 = mx.nd.sparse.row_sparse_array(([[10, 10, 10]], [2]), shape=SHAPE)
    kv.push("e", [g1, g2])
    out = mx.nd.sparse.zeros("row_sparse", SHAPE)
    kv.row_sparse_pull("e", out=out, row_ids=mx.nd.array([0, 1, 2, 3]))
    np.testing.assert_array_equal(out.asnumpy(), g1.asnumpy() + g2.asnumpy())


def test_sum_rows_matches_dense_sum():
    rng = np.random.default_rng(0)
    parts, dense = [], np.zeros((10, 2))
    for _ in range(4):
        rows = np.sort(rng.choice(10, size=4, replace=False))
        vals = rng.normal(size=(4, 2))
        parts.append((rows, vals))
        dense[rows] += vals
    rows, vals = sum_rows(parts)
    assert np.all(np.diff(rows) > 0)
    out = np.zeros((10, 2))
    out[rows] = vals
    np.testing.assert_allclose(out, dense)
