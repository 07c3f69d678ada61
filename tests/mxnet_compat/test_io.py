"""``mx.io`` iterators as MXNet 1.9.1 documents them, with ``import sparsetrain as mx``."""
import numpy as np
import pytest

import sparsetrain as mx


def test_ndarray_iter_idx_is_the_epoch_order():
    data = mx.nd.array(np.arange(10).reshape(10, 1))
    it = mx.io.NDArrayIter(data, batch_size=5, shuffle=False)
    np.testing.assert_array_equal(it.idx, np.arange(10))
    mx.random.seed(3)
    it = mx.io.NDArrayIter(data, batch_size=5, shuffle=True)
    assert sorted(it.idx.tolist()) == list(range(10)) and it.idx.tolist() != list(range(10))
    seen = np.concatenate([b.data[0].asnumpy().ravel() for b in it])
    np.testing.assert_array_equal(seen, it.idx)  # batches follow idx


def test_ndarray_iter_csr_shuffle_follows_idx():
    csr = mx.test_utils.rand_ndarray((12, 5), "csr", density=0.5)
    label = mx.nd.array(np.arange(12))
    it = mx.io.NDArrayIter(csr, label, batch_size=4, shuffle=True, last_batch_handle="discard")
    batches = list(it)
    assert all(b.data[0].stype == "csr" for b in batches)
    np.testing.assert_array_equal(np.concatenate([b.label[0].asnumpy() for b in batches]), it.idx)
    np.testing.assert_array_equal(np.vstack([b.data[0].asnumpy() for b in batches]), csr.asnumpy()[it.idx])


@pytest.mark.parametrize("make", ["ndarray", "libsvm"])
def test_pull_protocol_iter_next_getdata_getlabel(tmp_path, make):
    if make == "libsvm":
        path = tmp_path / "d.libsvm"
        path.write_text("1 0:1 2:3\n0 1:2\n1 3:4\n")
        it = mx.io.LibSVMIter(data_libsvm=str(path), data_shape=(4,), batch_size=2)
    else:
        it = mx.io.NDArrayIter(mx.nd.array([[1, 0, 3, 0], [0, 2, 0, 0], [0, 0, 0, 4]]).tostype("csr"),
                               mx.nd.array([1, 0, 1]), batch_size=2)
    with pytest.raises(RuntimeError):
        it.getdata()
    assert it.iter_next()
    # NDArrayIter returns lists, LibSVMIter (MXNet's C++ MXDataIter) the arrays themselves
    first = (lambda x: x) if make == "libsvm" else (lambda x: x[0])
    data, label = first(it.getdata()), first(it.getlabel())
    assert data.stype == "csr" and data.shape == (2, 4)
    np.testing.assert_array_equal(data.asnumpy(), [[1, 0, 3, 0], [0, 2, 0, 0]])
    np.testing.assert_array_equal(label.asnumpy().ravel(), [1, 0])
    assert it.getpad() == 0
    assert it.iter_next()
    assert it.getpad() == 1  # the last batch is padded
    np.testing.assert_array_equal(first(it.getdata()).asnumpy()[0], [0, 0, 0, 4])
    assert not it.iter_next()
    it.reset()
    batch = it.next()
    assert first(it.getdata()) is batch.data[0]  # next() makes its batch current, as MXNet
