"""MXNet 1.9.1 ``tests/python/unittest/test_io.py``, its sparse tests (``NDArrayIter`` over csr
data, ``LibSVMIter``), ported to run on sparsetrain or MXNet."""
import os

import numpy as np
import numpy.random as rnd

from ._harness import MXNetError, assert_almost_equal, assertRaises, mx, rand_sparse_ndarray, xfail_on_sparsetrain


def _check_csr_iters(csr_iter, csr_iter_empty_list, csr_iter_None, num_rows, batch_size):
    num_batch = 0
    for _, batch_empty_list, batch_empty_None in zip(csr_iter, csr_iter_empty_list, csr_iter_None):
        assert not batch_empty_list.label, 'label is not empty list'
        assert not batch_empty_None.label, 'label is not empty list'
        num_batch += 1
    assert num_batch == num_rows // batch_size
    assertRaises(StopIteration, csr_iter.next)
    assertRaises(StopIteration, csr_iter_empty_list.next)
    assertRaises(StopIteration, csr_iter_None.next)


# upstream: test_io.py::test_NDArrayIter_csr
@xfail_on_sparsetrain("NDArrayIter over csr data supports last_batch_handle='pad' (MXNet raises "
                      "NotImplementedError)")
def test_NDArrayIter_csr():
    num_rows = rnd.randint(5, 15)
    num_cols = rnd.randint(1, 20)
    batch_size = rnd.randint(1, num_rows)
    shape = (num_rows, num_cols)
    csr, _ = rand_sparse_ndarray(shape, 'csr')
    dns = csr.asnumpy()

    # csr data with a last_batch_handle other than 'discard' is refused
    assertRaises(NotImplementedError, mx.io.NDArrayIter, {'data': csr}, dns, batch_size)
    import scipy.sparse as spsp
    train_data = spsp.csr_matrix(dns)
    assertRaises(NotImplementedError, mx.io.NDArrayIter, {'data': train_data}, dns, batch_size)

    # scipy csr with shuffle
    csr_iter = iter(mx.io.NDArrayIter({'data': train_data}, dns, batch_size, shuffle=True,
                                      last_batch_handle='discard'))
    csr_iter_empty_list = iter(mx.io.NDArrayIter({'data': train_data}, [], batch_size, shuffle=True,
                                                 last_batch_handle='discard'))
    csr_iter_None = iter(mx.io.NDArrayIter({'data': train_data}, None, batch_size, shuffle=True,
                                           last_batch_handle='discard'))
    _check_csr_iters(csr_iter, csr_iter_empty_list, csr_iter_None, num_rows, batch_size)

    # CSRNDArray with shuffle
    csr_iter = iter(mx.io.NDArrayIter({'csr_data': csr, 'dns_data': dns}, dns, batch_size,
                                      shuffle=True, last_batch_handle='discard'))
    csr_iter_empty_list = iter(mx.io.NDArrayIter({'csr_data': csr, 'dns_data': dns}, [], batch_size,
                                                 shuffle=True, last_batch_handle='discard'))
    csr_iter_None = iter(mx.io.NDArrayIter({'csr_data': csr, 'dns_data': dns}, None, batch_size,
                                           shuffle=True, last_batch_handle='discard'))
    _check_csr_iters(csr_iter, csr_iter_empty_list, csr_iter_None, num_rows, batch_size)

    csr_iter = iter(mx.io.NDArrayIter(csr, csr, batch_size, last_batch_handle='discard'))
    begin = 0
    for batch in csr_iter:
        expected = np.zeros((batch_size, num_cols))
        end = begin + batch_size
        expected[:num_rows - begin] = dns[begin:end]
        if end > num_rows:
            expected[num_rows - begin:] = dns[0:end - num_rows]
        assert_almost_equal(batch.data[0].asnumpy(), expected)
        begin += batch_size


# upstream: test_io.py::test_LibSVMIter (the synthetic file and the bad-index file; upstream's
# third part downloads news20 and is left out)
def test_LibSVMIter():
    def write_files(bad_index=False):
        cwd = os.getcwd()
        data_path = os.path.join(cwd, 'data.t')
        label_path = os.path.join(cwd, 'label.t')
        with open(data_path, 'w') as fout:
            fout.write('1.0 0:0.5 2:1.2\n')
            fout.write('-2.0\n')
            fout.write('-3.0 -1:0.6 1:2.4 2:1.2\n' if bad_index else '-3.0 0:0.6 1:2.4 2:1.2\n')
            fout.write('4 2:-1.2\n')
        with open(label_path, 'w') as fout:
            fout.write('1.0\n')
            fout.write('-2.0 0:0.125\n')
            fout.write('-3.0 2:1.2\n')
            fout.write('4 1:1.0 2:-1.2\n')
        return data_path, label_path

    def check_libSVMIter_synthetic():
        data_path, label_path = write_files()
        data_train = mx.io.LibSVMIter(data_libsvm=data_path, label_libsvm=label_path,
                                      data_shape=(3, ), label_shape=(3, ), batch_size=3)
        first = mx.nd.array([[0.5, 0., 1.2], [0., 0., 0.], [0.6, 2.4, 1.2]])
        second = mx.nd.array([[0., 0., -1.2], [0.5, 0., 1.2], [0., 0., 0.]])
        i = 0
        for batch in iter(data_train):
            expected = first.asnumpy() if i == 0 else second.asnumpy()
            data = data_train.getdata()
            data.check_format(True)
            assert_almost_equal(data.asnumpy(), expected)
            i += 1

    def check_libSVMIter_exception():
        data_path, label_path = write_files(bad_index=True)
        data_train = mx.io.LibSVMIter(data_libsvm=data_path, label_libsvm=label_path,
                                      data_shape=(3, ), label_shape=(3, ), batch_size=3)
        for batch in iter(data_train):
            data_train.get_data().asnumpy()

    check_libSVMIter_synthetic()
    assertRaises(MXNetError, check_libSVMIter_exception)
