"""MXNet's sparse tutorials (CSRNDArray, RowSparseNDArray, sparse Symbol + linear regression), their
code cells in order with ``import sparsetrain as mx`` in place of ``import mxnet as mx``; the
assertions check what the tutorials print. The only other change: the GPU cells use ``mx.cpu()``,
as the tutorials themselves say to do on a machine without GPUs.
"""
import os
import sys
import warnings

import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain.base import StorageFallbackWarning

pytestmark = pytest.mark.filterwarnings("ignore::sparsetrain.StorageFallbackWarning")


def test_csr_tutorial(tmp_path, monkeypatch, capsys):
    # Array Creation
    shape = (3, 4)
    data_list = [7, 8, 9]
    indices_list = [0, 2, 1]
    indptr_list = [0, 2, 2, 3]
    a = mx.nd.sparse.csr_matrix((data_list, indices_list, indptr_list), shape)
    expected = np.array([[7, 0, 8, 0], [0, 0, 0, 0], [0, 9, 0, 0]], dtype=np.float32)
    np.testing.assert_array_equal(a.asnumpy(), expected)
    data_np = np.array([7, 8, 9])
    indptr_np = np.array([0, 2, 2, 3])
    indices_np = np.array([0, 2, 1])
    b = mx.nd.sparse.csr_matrix((data_np, indices_np, indptr_np), shape)
    np.testing.assert_array_equal(b.asnumpy(), a.asnumpy())

    import scipy.sparse as spsp
    c = spsp.csr_matrix((data_np, indices_np, indptr_np), shape=shape)
    d = mx.nd.sparse.array(c)
    print('d:{}'.format(d.asnumpy()))
    np.testing.assert_array_equal(d.asnumpy(), expected)

    big_array = mx.nd.round(mx.nd.random.uniform(low=0, high=1, shape=(1000, 100)))
    print(big_array)
    big_array_csr = big_array.tostype('csr')
    indices = big_array_csr.indices
    indptr = big_array_csr.indptr
    data = big_array_csr.data
    assert data.size == indices.size == int((big_array.asnumpy() != 0).sum()) and indptr.size == 1001
    np.testing.assert_array_equal(big_array_csr.asnumpy(), big_array.asnumpy())

    e = mx.nd.sparse.array(a)
    f = mx.nd.array(a, dtype=np.float16)
    assert (e.dtype, f.dtype) == (np.float32, np.float16)

    # Inspecting Arrays
    data, indices, indptr = a.data, a.indices, a.indptr
    assert a.stype == 'csr'
    assert data.asnumpy().tolist() == [7, 8, 9] and indices.asnumpy().tolist() == [0, 2, 1]
    assert indptr.asnumpy().tolist() == [0, 2, 2, 3]

    # Storage Type Conversion
    ones = mx.nd.ones((2, 2))
    csr = ones.tostype('csr')
    dense = csr.tostype('default')
    assert (csr.stype, dense.stype) == ('csr', 'default')
    csr = mx.nd.sparse.cast_storage(ones, 'csr')
    dense = mx.nd.sparse.cast_storage(csr, 'default')
    assert (csr.stype, dense.stype) == ('csr', 'default')

    # Copies
    a = mx.nd.ones((2, 2)).tostype('csr')
    b = a.copy()
    c = mx.nd.sparse.zeros('csr', (2, 2))
    c[:] = a
    d = mx.nd.sparse.zeros('csr', (2, 2))
    a.copyto(d)
    assert b is not a
    for x in (b, c, d):
        np.testing.assert_array_equal(x.asnumpy(), np.ones((2, 2)))
    e = mx.nd.sparse.zeros('csr', (2, 2))
    f = mx.nd.sparse.zeros('csr', (2, 2))
    g = mx.nd.ones(e.shape)
    e[:] = g
    g.copyto(f)
    assert (e.stype, f.stype, g.stype) == ('csr', 'csr', 'default')

    # Indexing and Slicing
    a = mx.nd.array(np.arange(6).reshape(3, 2)).tostype('csr')
    b = a[1:2].asnumpy()
    c = a[:].asnumpy()
    np.testing.assert_array_equal(b, [[2, 3]])
    np.testing.assert_array_equal(c, np.arange(6).reshape(3, 2))

    # Sparse Operators and Storage Type Inference
    shape = (3, 4)
    data = [7, 8, 9]
    indptr = [0, 2, 2, 3]
    indices = [0, 2, 1]
    a = mx.nd.sparse.csr_matrix((data, indices, indptr), shape)
    rhs = mx.nd.ones((4, 1))
    out = mx.nd.sparse.dot(a, rhs)
    np.testing.assert_array_equal(out.asnumpy(), [[15], [0], [9]])
    b = a * 2
    c = a + mx.nd.ones(shape=(3, 4))
    assert (b.stype, c.stype) == ('csr', 'default')
    e = mx.nd.sparse.zeros('csr', a.shape)
    d = mx.nd.log(a)
    e = mx.nd.log(a, out=e)
    assert (a.stype, d.stype, e.stype) == ('csr', 'default', 'csr')

    # Data Loading
    data = mx.nd.array(np.arange(36).reshape((9, 4))).tostype('csr')
    labels = np.ones([9, 1])
    batch_size = 3
    dataiter = mx.io.NDArrayIter(data, labels, batch_size, last_batch_handle='discard')
    batches = [batch.data[0] for batch in dataiter]
    assert [x.stype for x in batches] == ['csr'] * 3
    np.testing.assert_array_equal(np.vstack([x.asnumpy() for x in batches]), np.arange(36).reshape(9, 4))

    monkeypatch.chdir(tmp_path)
    cwd = os.getcwd()
    data_path = os.path.join(cwd, 'data.t')
    with open(data_path, 'w') as fout:
        fout.write('1.0 0:1 2:2\n')
        fout.write('1.0 0:3 5:4\n')
        fout.write('1.0 2:5 8:6 9:7\n')
        fout.write('1.0 3:8\n')
        fout.write('-1 0:0.5 9:1.5\n')
        fout.write('-2.0\n')
        fout.write('-3.0 0:-0.6 1:2.25 2:1.25\n')
        fout.write('-3.0 1:2 2:-1.25\n')
        fout.write('4 2:-1.2\n')
    data_train = mx.io.LibSVMIter(data_libsvm=data_path, data_shape=(10,), label_shape=(1,), batch_size=3)
    labels_seen = []
    for batch in data_train:
        print(data_train.getdata())
        print(data_train.getlabel())
        labels_seen += data_train.getlabel().asnumpy().ravel().tolist()
    assert labels_seen == [1, 1, 1, 1, -1, -2, -3, -3, 4]

    # GPU Support (on the CPU, as the tutorial says to do without GPUs)
    gpu_device = mx.cpu()
    try:
        a = mx.nd.sparse.zeros('csr', (100, 100), ctx=gpu_device)
        a
    except mx.MXNetError as err:
        sys.stderr.write(str(err))
    assert a.stype == 'csr' and a.shape == (100, 100)
    assert "<CSRNDArray 1000x100 @cpu(0)>" not in capsys.readouterr().out  # dense arrays print values


def test_row_sparse_tutorial():
    X = mx.nd.array([[1, 0]])
    W = mx.nd.array([[3, 4, 5], [6, 7, 8]])
    Y = mx.nd.dot(X, W)
    np.testing.assert_array_equal(Y.asnumpy(), [[3, 4, 5]])
    grad_W = mx.nd.dot(X, mx.nd.ones_like(Y), transpose_a=True)
    np.testing.assert_array_equal(grad_W.asnumpy(), [[1, 1, 1], [0, 0, 0]])

    # Array Creation
    shape = (6, 2)
    data_list = [[1, 2], [3, 4]]
    indices_list = [1, 4]
    a = mx.nd.sparse.row_sparse_array((data_list, indices_list), shape=shape)
    data_np = np.array([[1, 2], [3, 4]])
    indices_np = np.array([1, 4])
    b = mx.nd.sparse.row_sparse_array((data_np, indices_np), shape=shape)
    assert repr({'a': a, 'b': b}) == "{'a': \n<RowSparseNDArray 6x2 @cpu(0)>, 'b': \n<RowSparseNDArray 6x2 @cpu(0)>}"

    # Setting Type
    c = mx.nd.sparse.array(a)
    d = mx.nd.array(a, dtype=np.float16)
    assert (c.dtype, d.dtype) == (np.float32, np.float16)

    # Inspecting Arrays
    np.testing.assert_array_equal(a.asnumpy(), [[0, 0], [1, 2], [0, 0], [0, 0], [3, 4], [0, 0]])
    data = a.data
    indices = a.indices
    assert a.stype == 'row_sparse' and indices.asnumpy().tolist() == [1, 4]
    assert data.asnumpy().tolist() == [[1, 2], [3, 4]]

    # Storage Type Conversion
    ones = mx.nd.ones((2, 2))
    rsp = ones.tostype('row_sparse')
    dense = rsp.tostype('default')
    assert (rsp.stype, dense.stype) == ('row_sparse', 'default')
    rsp = mx.nd.sparse.cast_storage(ones, 'row_sparse')
    dense = mx.nd.sparse.cast_storage(rsp, 'default')
    assert (rsp.stype, dense.stype) == ('row_sparse', 'default')

    # Copies
    a = mx.nd.ones((2, 2)).tostype('row_sparse')
    b = a.copy()
    c = mx.nd.sparse.zeros('row_sparse', (2, 2))
    c[:] = a
    d = mx.nd.sparse.zeros('row_sparse', (2, 2))
    a.copyto(d)
    assert b is not a
    for x in (b, c, d):
        np.testing.assert_array_equal(x.asnumpy(), np.ones((2, 2)))
    e = mx.nd.sparse.zeros('row_sparse', (2, 2))
    f = mx.nd.sparse.zeros('row_sparse', (2, 2))
    g = mx.nd.ones(e.shape)
    e[:] = g
    g.copyto(f)
    assert {'e.stype': e.stype, 'f.stype': f.stype, 'g.stype': g.stype} == \
        {'e.stype': 'row_sparse', 'f.stype': 'row_sparse', 'g.stype': 'default'}

    # Retain Row Slices
    data = [[1, 2], [3, 4], [5, 6]]
    indices = [0, 2, 3]
    rsp = mx.nd.sparse.row_sparse_array((data, indices), shape=(5, 2))
    rsp_retained = mx.nd.sparse.retain(rsp, mx.nd.array([0, 1]))
    np.testing.assert_array_equal(rsp.asnumpy(), [[1, 2], [0, 0], [3, 4], [5, 6], [0, 0]])
    assert rsp_retained.stype == 'row_sparse'
    np.testing.assert_array_equal(rsp_retained.asnumpy(), [[1, 2], [0, 0], [0, 0], [0, 0], [0, 0]])

    # Sparse Operators and Storage Type Inference
    shape = (3, 5)
    data = [7, 8, 9]
    indptr = [0, 2, 2, 3]
    indices = [0, 2, 1]
    lhs = mx.nd.sparse.csr_matrix((data, indices, indptr), shape=shape)
    rhs = mx.nd.ones((3, 2))
    transpose_dot = mx.nd.sparse.dot(lhs, rhs, transpose_a=True)
    assert transpose_dot.stype == 'row_sparse'
    np.testing.assert_array_equal(transpose_dot.asnumpy(), [[7, 7], [9, 9], [8, 8], [0, 0], [0, 0]])
    a = transpose_dot.copy()
    b = a * 2
    c = a + mx.nd.ones((5, 2))
    assert {'b.stype': b.stype, 'c.stype': c.stype} == {'b.stype': 'row_sparse', 'c.stype': 'default'}
    e = mx.nd.sparse.zeros('row_sparse', a.shape)
    d = mx.nd.log(a)
    e = mx.nd.log(a, out=e)
    assert {'a.stype': a.stype, 'd.stype': d.stype, 'e.stype': e.stype} == \
        {'a.stype': 'row_sparse', 'd.stype': 'default', 'e.stype': 'row_sparse'}

    # Sparse Optimizers
    shape = (4, 2)
    weight = mx.nd.ones(shape).tostype('row_sparse')
    data = [[1, 2], [4, 5]]
    indices = [1, 2]
    grad = mx.nd.sparse.row_sparse_array((data, indices), shape=shape)
    sgd = mx.optimizer.SGD(learning_rate=0.01, momentum=0.01)
    momentum = sgd.create_state(0, weight)
    np.testing.assert_array_equal(momentum.asnumpy(), np.zeros(shape))
    sgd.update(0, weight, grad, momentum)
    np.testing.assert_allclose(momentum.asnumpy(), [[0, 0], [-0.01, -0.02], [-0.04, -0.05], [0, 0]], rtol=1e-6)
    np.testing.assert_allclose(weight.asnumpy(), [[1, 1], [0.99, 0.98], [0.96, 0.95], [1, 1]], rtol=1e-6)

    # GPU Support (on the CPU, as the tutorial says to do without GPUs)
    gpu_device = mx.cpu()
    try:
        a = mx.nd.sparse.zeros('row_sparse', (100, 100), ctx=gpu_device)
        a
    except mx.MXNetError as err:
        sys.stderr.write(str(err))
    assert a.stype == 'row_sparse'
    with pytest.raises(mx.MXNetError):
        mx.gpu()


def test_sparse_symbol_tutorial():
    a = mx.sym.Variable('a')
    b = mx.sym.Variable('b', stype='csr')
    c = mx.sym.Variable('c', stype='row_sparse')
    assert repr((a, b, c)) == "(<Symbol a>, <Symbol b>, <Symbol c>)"

    shape = (2, 2)
    b_exec = b.simple_bind(ctx=mx.cpu(), b=shape)
    c_exec = c.simple_bind(ctx=mx.cpu(), c=shape)
    b_exec.forward()
    c_exec.forward()
    assert (b_exec.outputs[0].stype, c_exec.outputs[0].stype) == ('csr', 'row_sparse')
    b_exec.arg_dict['b'][:] = mx.nd.ones(shape).tostype('csr')
    b_exec.forward()
    eval_b = b_exec.outputs[0]
    assert eval_b.stype == 'csr'
    np.testing.assert_array_equal(eval_b.asnumpy(), np.ones(shape))

    d = mx.sym.elemwise_add(a, a)
    e = mx.sym.sparse.negative(b)
    f = mx.sym.sparse.elemwise_add(c, c)
    add_exec = mx.sym.Group([d, e, f]).simple_bind(ctx=mx.cpu(), a=shape, b=shape, c=shape)
    add_exec.forward()
    assert [o.stype for o in add_exec.outputs] == ['default', 'csr', 'row_sparse']

    csr_log = mx.sym.log(a)
    csr_rsp_add = mx.sym.elemwise_add(b, c)
    fallback_exec = mx.sym.Group([csr_rsp_add, csr_log]).simple_bind(ctx=mx.cpu(), a=shape, b=shape, c=shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # log(0)
        fallback_exec.forward()
    np.testing.assert_array_equal(fallback_exec.outputs[0].asnumpy(), np.zeros(shape))
    assert np.all(np.isneginf(fallback_exec.outputs[1].asnumpy()))


def test_linear_regression_tutorial():
    mx.random.seed(0)
    feature_dimension = 100
    train_data = mx.test_utils.rand_ndarray((1000, feature_dimension), 'csr', 0.01)
    target_weight = mx.nd.arange(1, feature_dimension + 1).reshape((feature_dimension, 1))
    train_label = mx.nd.dot(train_data, target_weight)
    batch_size = 1
    train_iter = mx.io.NDArrayIter(train_data, train_label, batch_size, last_batch_handle='discard', label_name='label')

    initializer = mx.initializer.Normal(sigma=0.01)
    X = mx.sym.Variable('data', stype='csr')
    Y = mx.symbol.Variable('label')
    weight = mx.symbol.Variable('weight', stype='row_sparse', shape=(feature_dimension, 1), init=initializer)
    bias = mx.symbol.Variable('bias', shape=(1, ))
    pred = mx.sym.broadcast_add(mx.sym.sparse.dot(X, weight), bias)
    lro = mx.sym.LinearRegressionOutput(data=pred, label=Y, name="lro")

    mod = mx.mod.Module(symbol=lro, data_names=['data'], label_names=['label'])
    mod.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label)
    mod.init_params(initializer=initializer)
    sgd = mx.optimizer.SGD(learning_rate=0.05, rescale_grad=1.0 / batch_size, momentum=0.9)
    mod.init_optimizer(optimizer=sgd)

    metric = mx.metric.create('MSE')
    for epoch in range(10):
        train_iter.reset()
        metric.reset()
        for batch in train_iter:
            mod.forward(batch, is_train=True)
            mod.update_metric(metric, batch.label)
            mod.backward()
            mod.update()
        print('Epoch %d, Metric = %s' % (epoch, metric.get()))
    assert metric.get()[1] < 1, "Achieved MSE (%f) is larger than expected (1.0)" % metric.get()[1]
