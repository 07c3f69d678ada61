"""MXNet 1.9.1 ``tests/python/unittest/test_sparse_ndarray.py``, ported to run on sparsetrain or
MXNet (``MXNET_UPSTREAM_LIB``). Each test names its upstream test; the assertions are upstream's,
only the harness differs (see ``_harness.py`` and README.md here)."""
import os
import pickle as pkl

import numpy as np
import numpy.random as rnd
import pytest
from numpy.testing import assert_allclose

from ._harness import (
    Context, MXNetError, ON_MXNET, assert_almost_equal, assert_exception, assertRaises,
    default_context, mx, rand_ndarray, rand_shape_2d, rand_shape_3d, rand_sparse_ndarray,
    random_arrays, random_seed, same, xfail_on_sparsetrain,
)

RowSparseNDArray = mx.nd.sparse.RowSparseNDArray
CSRNDArray = mx.nd.sparse.CSRNDArray
NDArray = mx.nd.NDArray


def sparse_nd_ones(shape, stype):
    return mx.nd.ones(shape).tostype(stype)


# upstream: test_sparse_ndarray.py::test_sparse_nd_elemwise_add
def test_sparse_nd_elemwise_add():
    def check(shapes, stypes, f, g):
        nds = []
        for i, stype in enumerate(stypes):
            if stype == 'row_sparse':
                nd, _ = rand_sparse_ndarray(shapes[i], stype)
            else:
                nd = mx.nd.array(random_arrays(shapes[i]), dtype=np.float32)
            nds.append(nd)
        test = f(nds[0], nds[1])
        assert_almost_equal(test.asnumpy(), g(nds[0].asnumpy(), nds[1].asnumpy()))

    for _ in range(3):
        shape = [rand_shape_2d()] * 2
        check(shape, ['default'] * 2, mx.nd.elemwise_add, lambda x, y: x + y)
        check(shape, ['row_sparse', 'row_sparse'], mx.nd.elemwise_add, lambda x, y: x + y)


# upstream: test_sparse_ndarray.py::test_sparse_nd_copy
def test_sparse_nd_copy():
    def check(from_stype, to_stype, shape):
        from_nd = rand_ndarray(shape, from_stype)
        to_ctx = from_nd.copyto(default_context())
        to_nd = rand_ndarray(shape, to_stype)
        to_nd = from_nd.copyto(to_nd)
        assert np.sum(np.abs(from_nd.asnumpy() != to_ctx.asnumpy())) == 0.0
        assert np.sum(np.abs(from_nd.asnumpy() != to_nd.asnumpy())) == 0.0

    shape = rand_shape_2d()
    shape_3d = rand_shape_3d()
    for stype in ['row_sparse', 'csr']:
        check(stype, 'default', shape)
        check('default', stype, shape)
    check('row_sparse', 'row_sparse', shape_3d)
    check('row_sparse', 'default', shape_3d)
    check('default', 'row_sparse', shape_3d)


# upstream: test_sparse_ndarray.py::test_sparse_nd_basic
def test_sparse_nd_basic():
    nd, (v, idx) = rand_sparse_ndarray(rand_shape_2d(), 'row_sparse')
    assert nd._num_aux == 1
    assert nd.indices.dtype == np.int64
    assert nd.stype == 'row_sparse'


# upstream: test_sparse_ndarray.py::test_sparse_nd_setitem
def test_sparse_nd_setitem():
    def check(stype, shape, dst):
        x = mx.nd.zeros(shape=shape, stype=stype)
        x[:] = dst
        dst_nd = mx.nd.array(dst) if isinstance(dst, (np.ndarray, np.generic)) else dst
        assert np.all(x.asnumpy() == dst_nd.asnumpy() if isinstance(dst_nd, NDArray) else dst)

    shape = rand_shape_2d()
    for stype in ['row_sparse', 'csr']:
        check(stype, shape, rand_ndarray(shape, 'default'))
        check(stype, shape, rand_ndarray(shape, stype))
        check(stype, shape, np.ones(shape))
    check('row_sparse', shape, 2)


# upstream: test_sparse_ndarray.py::test_sparse_nd_slice
def test_sparse_nd_slice():
    shape = (rnd.randint(2, 10), rnd.randint(2, 10))
    A, _ = rand_sparse_ndarray(shape, 'csr')
    A2 = A.asnumpy()
    start = rnd.randint(0, shape[0] - 1)
    end = rnd.randint(start + 1, shape[0])
    assert same(A[start:end].asnumpy(), A2[start:end])
    assert same(A[start - shape[0]:end].asnumpy(), A2[start:end])
    assert same(A[start:].asnumpy(), A2[start:])
    assert same(A[:end].asnumpy(), A2[:end])
    ind = rnd.randint(-shape[0], shape[0] - 1)
    assert same(A[ind].asnumpy(), A2[ind][np.newaxis, :])

    start_col = rnd.randint(0, shape[1] - 1)
    end_col = rnd.randint(start_col + 1, shape[1])
    result = mx.nd.slice(A, begin=(start, start_col), end=(end, end_col))
    result_dense = mx.nd.slice(mx.nd.array(A2), begin=(start, start_col), end=(end, end_col))
    assert same(result_dense.asnumpy(), result.asnumpy())

    A = mx.nd.sparse.zeros('csr', shape)
    A2 = A.asnumpy()
    assert same(A[start:end].asnumpy(), A2[start:end])
    result = mx.nd.slice(A, begin=(start, start_col), end=(end, end_col))
    result_dense = mx.nd.slice(mx.nd.array(A2), begin=(start, start_col), end=(end, end_col))
    assert same(result_dense.asnumpy(), result.asnumpy())

    # a step other than 1 falls back to the dense slice
    shape = (rnd.randint(2, 10), rnd.randint(1, 10))
    A, _ = rand_sparse_ndarray(shape, 'csr')
    A2 = A.asnumpy()
    start = rnd.randint(0, shape[0] - 1)
    end = rnd.randint(start + 1, shape[0])
    result = mx.nd.sparse.slice(A, begin=(start,), end=(end + 1,), step=(2,))
    result_dense = mx.nd.slice(mx.nd.array(A2), begin=(start,), end=(end + 1,), step=(2,))
    assert same(result_dense.asnumpy(), result.asnumpy())


# upstream: test_sparse_ndarray.py::test_sparse_nd_concat
def test_sparse_nd_concat():
    def check_concat(arrays):
        ret = np.concatenate([arr.asnumpy() for arr in arrays], axis=0)
        same(mx.nd.concat(*arrays, dim=0).asnumpy(), ret)

    nds, zero_nds = [], []
    ncols = rnd.randint(2, 10)
    for _ in range(3):
        shape = (rnd.randint(2, 10), ncols)
        A, _ = rand_sparse_ndarray(shape, 'csr')
        nds.append(A)
        zero_nds.append(mx.nd.zeros(shape).tostype('csr'))
    check_concat(nds)
    check_concat(zero_nds)


# upstream: test_sparse_ndarray.py::test_sparse_nd_equal
def test_sparse_nd_equal():
    for stype in ['row_sparse', 'csr']:
        shape = rand_shape_2d()
        x = mx.nd.zeros(shape=shape, stype=stype)
        y = sparse_nd_ones(shape, stype)
        z = x == y
        assert (z.asnumpy() == np.zeros(shape)).all()
        z = 0 == y
        assert (z.asnumpy() == np.zeros(shape)).all()
        assert z.stype == 'default'
        z = 1 == y
        assert (z.asnumpy() == np.ones(shape)).all()
        assert z.stype == stype


# upstream: test_sparse_ndarray.py::test_sparse_nd_not_equal
def test_sparse_nd_not_equal():
    for stype in ['row_sparse', 'csr']:
        shape = rand_shape_2d()
        x = mx.nd.zeros(shape=shape, stype=stype)
        y = sparse_nd_ones(shape, stype)
        z = x != y
        assert (z.asnumpy() == np.ones(shape)).all()
        z = 0 != y
        assert (z.asnumpy() == np.ones(shape)).all()
        assert z.stype == stype
        z = 1 != y
        assert (z.asnumpy() == np.zeros(shape)).all()
        assert z.stype == 'default'


# upstream: test_sparse_ndarray.py::test_sparse_nd_greater
def test_sparse_nd_greater():
    for stype in ['row_sparse', 'csr']:
        shape = rand_shape_2d()
        x = mx.nd.zeros(shape=shape, stype=stype)
        y = sparse_nd_ones(shape, stype)
        z = x > y
        assert (z.asnumpy() == np.zeros(shape)).all()
        z = y > 0
        assert (z.asnumpy() == np.ones(shape)).all()
        assert z.stype == stype
        z = 0 > y
        assert (z.asnumpy() == np.zeros(shape)).all()
        assert z.stype == stype
        z = y > 1
        assert (z.asnumpy() == np.zeros(shape)).all()
        assert z.stype == stype


# upstream: test_sparse_ndarray.py::test_sparse_nd_greater_equal
def test_sparse_nd_greater_equal():
    for stype in ['row_sparse', 'csr']:
        shape = rand_shape_2d()
        x = mx.nd.zeros(shape=shape, stype=stype)
        y = sparse_nd_ones(shape, stype)
        z = x >= y
        assert (z.asnumpy() == np.zeros(shape)).all()
        z = y >= 0
        assert (z.asnumpy() == np.ones(shape)).all()
        assert z.stype == 'default'
        z = 0 >= y
        assert (z.asnumpy() == np.zeros(shape)).all()
        assert z.stype == 'default'
        z = y >= 1
        assert (z.asnumpy() == np.ones(shape)).all()
        assert z.stype == stype


# upstream: test_sparse_ndarray.py::test_sparse_nd_lesser
def test_sparse_nd_lesser():
    for stype in ['row_sparse', 'csr']:
        shape = rand_shape_2d()
        x = mx.nd.zeros(shape=shape, stype=stype)
        y = sparse_nd_ones(shape, stype)
        z = y < x
        assert (z.asnumpy() == np.zeros(shape)).all()
        z = 0 < y
        assert (z.asnumpy() == np.ones(shape)).all()
        assert z.stype == stype
        z = y < 0
        assert (z.asnumpy() == np.zeros(shape)).all()
        assert z.stype == stype
        z = y < 1
        assert (z.asnumpy() == np.zeros(shape)).all()
        assert z.stype == 'default'


# upstream: test_sparse_ndarray.py::test_sparse_nd_lesser_equal
def test_sparse_nd_lesser_equal():
    for stype in ['row_sparse', 'csr']:
        shape = rand_shape_2d()
        x = mx.nd.zeros(shape=shape, stype=stype)
        y = sparse_nd_ones(shape, stype)
        z = y <= x
        assert (z.asnumpy() == np.zeros(shape)).all()
        z = 0 <= y
        assert (z.asnumpy() == np.ones(shape)).all()
        assert z.stype == 'default'
        z = y <= 0
        assert (z.asnumpy() == np.zeros(shape)).all()
        assert z.stype == 'default'
        z = 1 <= y
        assert (z.asnumpy() == np.ones(shape)).all()
        assert z.stype == stype


# upstream: test_sparse_ndarray.py::test_sparse_nd_binary
def test_sparse_nd_binary():
    def check_binary(fn, stype):
        for _ in range(3):
            ndim = 2
            oshape = np.random.randint(1, 6, size=(ndim,))
            bdim = 2
            lshape = list(oshape)
            rshape = list(oshape[ndim - bdim:])
            for i in range(bdim):
                sep = np.random.uniform(0, 1)
                if sep < 0.33:
                    lshape[ndim - i - 1] = 1
                elif sep < 0.66:
                    rshape[bdim - i - 1] = 1
            lhs = np.random.uniform(0, 1, size=lshape)
            rhs = np.random.uniform(0, 1, size=rshape)
            lhs_nd = mx.nd.array(lhs).tostype(stype)
            rhs_nd = mx.nd.array(rhs).tostype(stype)
            assert_allclose(fn(lhs, rhs), fn(lhs_nd, rhs_nd).asnumpy(), rtol=1e-4, atol=1e-4)
            assert_allclose(fn(lhs, lhs), fn(lhs_nd, lhs_nd).asnumpy(), rtol=1e-4, atol=1e-4)

    for stype in ['row_sparse', 'csr']:
        check_binary(lambda x, y: x + y, stype)
        check_binary(lambda x, y: x - y, stype)
        check_binary(lambda x, y: x * y, stype)
        check_binary(lambda x, y: x / y, stype)
        check_binary(lambda x, y: x ** y, stype)
        check_binary(lambda x, y: x > y, stype)
        check_binary(lambda x, y: x < y, stype)
        check_binary(lambda x, y: x >= y, stype)
        check_binary(lambda x, y: x <= y, stype)
        check_binary(lambda x, y: x == y, stype)


# upstream: test_sparse_ndarray.py::test_sparse_nd_binary_scalar_op
def test_sparse_nd_binary_scalar_op():
    def check(fn, stype, out_stype=None):
        for _ in range(3):
            shape = np.random.randint(1, 6, size=(2,))
            npy = np.random.normal(0, 1, size=shape)
            nd = mx.nd.array(npy).tostype(stype)
            if out_stype is not None:
                assert nd.stype == out_stype
            assert_allclose(fn(npy), fn(nd).asnumpy(), rtol=1e-4, atol=1e-4)

    for stype in ['row_sparse', 'csr']:
        check(lambda x: 1 + x, stype)
        check(lambda x: 1 - x, stype)
        check(lambda x: 1 * x, stype)
        check(lambda x: 1 / x, stype)
        check(lambda x: 2 ** x, stype)
        check(lambda x: 1 > x, stype)
        check(lambda x: 0.5 > x, stype)
        check(lambda x: 0.5 < x, stype)
        check(lambda x: 0.5 >= x, stype)
        check(lambda x: 0.5 <= x, stype)
        check(lambda x: 0.5 == x, stype)
        check(lambda x: x / 2, stype, out_stype=stype)
        check(lambda x: x + 0, stype, out_stype=stype)
        check(lambda x: x - 0, stype, out_stype=stype)


# upstream: test_sparse_ndarray.py::test_sparse_nd_binary_iop
def test_sparse_nd_binary_iop():
    def check_binary(fn, stype):
        for _ in range(3):
            oshape = np.random.randint(1, 6, size=(2,))
            lhs = np.random.uniform(0, 1, size=list(oshape))
            rhs = np.random.uniform(0, 1, size=list(oshape))
            lhs_nd = mx.nd.array(lhs).tostype(stype)
            rhs_nd = mx.nd.array(rhs).tostype(stype)
            assert_allclose(fn(lhs, rhs), fn(lhs_nd, rhs_nd).asnumpy(), rtol=1e-4, atol=1e-4)

    def inplace_add(x, y):
        x += y
        return x

    def inplace_mul(x, y):
        x *= y
        return x

    for stype in ['csr', 'row_sparse']:
        for fn in [inplace_add, inplace_mul]:
            check_binary(fn, stype)


# upstream: test_sparse_ndarray.py::test_sparse_nd_negate
def test_sparse_nd_negate():
    for stype in ['csr', 'row_sparse']:
        npy = np.random.uniform(-10, 10, rand_shape_2d())
        arr = mx.nd.array(npy).tostype(stype)
        assert_almost_equal(npy, arr.asnumpy())
        assert_almost_equal(-npy, (-arr).asnumpy())
        # negation is not in place: arr is unchanged
        assert_almost_equal(npy, arr.asnumpy())


# upstream: test_sparse_ndarray.py::test_sparse_nd_broadcast
def test_sparse_nd_broadcast():
    sample_num = 1000

    def check_broadcast_to(stype):
        for _ in range(sample_num):
            target_shape = np.random.randint(1, 11, size=2)
            shape = target_shape.copy()
            for axis, flag in enumerate(np.random.randint(0, 2, size=2)):
                if flag:
                    shape[axis] = 1
            dat = np.random.rand(*shape) - 0.5
            ndarray_ret = mx.nd.array(dat).tostype(stype).broadcast_to(shape=target_shape)
            if type(ndarray_ret) is mx.ndarray.NDArray:
                ndarray_ret = ndarray_ret.asnumpy()
            assert (ndarray_ret.shape == target_shape).all()
            assert np.square(ndarray_ret - dat).mean() < 1E-8

    def check_broadcast_like(stype):
        for _ in range(sample_num):
            target_shape = np.random.randint(1, 11, size=2)
            target = mx.nd.ones(shape=tuple(target_shape))
            shape = target_shape.copy()
            for axis, flag in enumerate(np.random.randint(0, 2, size=2)):
                if flag:
                    shape[axis] = 1
            dat = np.random.rand(*shape) - 0.5
            ndarray_ret = mx.nd.array(dat).tostype(stype).broadcast_like(target)
            if type(ndarray_ret) is mx.ndarray.NDArray:
                ndarray_ret = ndarray_ret.asnumpy()
            assert (ndarray_ret.shape == target_shape).all()
            assert np.square(ndarray_ret - dat).mean() < 1E-8

    for stype in ['csr', 'row_sparse']:
        check_broadcast_to(stype)
        check_broadcast_like(stype)


# upstream: test_sparse_ndarray.py::test_sparse_nd_transpose
def test_sparse_nd_transpose():
    npy = np.random.uniform(-10, 10, rand_shape_2d())
    for stype in ['csr', 'row_sparse']:
        nd = mx.nd.array(npy).tostype(stype)
        assert_almost_equal(npy.T, (nd.T).asnumpy())


# upstream: test_sparse_ndarray.py::test_sparse_nd_storage_fallback
def test_sparse_nd_storage_fallback():
    shape = rand_shape_2d()
    ones = mx.nd.ones(shape)
    out = mx.nd.zeros(shape=shape, stype='csr')
    mx.nd.broadcast_add(ones, ones * 2, out=out)
    assert np.sum(out.asnumpy() - 3) == 0

    out = mx.nd.broadcast_add(ones.tostype('csr'), ones.tostype('row_sparse'))
    assert np.sum(out.asnumpy() - 2) == 0

    out = mx.nd.sum(ones)
    assert out.asscalar() == np.prod(shape)


# upstream: test_sparse_ndarray.py::test_sparse_nd_random
def test_sparse_nd_random():
    shape = (100, 100)
    for fn in [mx.nd.random.uniform, mx.nd.random.normal, mx.nd.random.gamma]:
        rsp_out = mx.nd.zeros(shape=shape, stype='row_sparse')
        dns_out = mx.nd.zeros(shape=shape, stype='default')
        with random_seed(0):
            fn(shape=shape, out=dns_out)
        with random_seed(0):
            fn(shape=shape, out=rsp_out)
        assert_almost_equal(dns_out.asnumpy(), rsp_out.asnumpy())


# upstream: test_sparse_ndarray.py::test_sparse_nd_astype
def test_sparse_nd_astype():
    for stype in ['row_sparse', 'csr']:
        x = mx.nd.zeros(shape=rand_shape_2d(), stype=stype, dtype='float32')
        y = x.astype('int32')
        assert y.dtype == np.int32, y.dtype


# upstream: test_sparse_ndarray.py::test_sparse_nd_astype_copy
def test_sparse_nd_astype_copy():
    for stype in ['row_sparse', 'csr']:
        x = mx.nd.zeros(shape=rand_shape_2d(), stype=stype, dtype='int32')
        y = x.astype('float32')
        assert y.dtype == np.float32
        assert id(x) != id(y)
        y = x.astype('float32', copy=False)
        assert y.dtype == np.float32
        assert id(x) != id(y)
        y = x.astype('int32')
        assert y.dtype == np.int32
        assert id(x) != id(y)
        y = x.astype('int32', copy=False)
        assert id(x) == id(y)
        y = x.astype(np.int32, copy=False)
        assert id(x) == id(y)


# upstream: test_sparse_ndarray.py::test_sparse_nd_pickle
def test_sparse_nd_pickle():
    stype_dict = {'row_sparse': RowSparseNDArray, 'csr': CSRNDArray}
    shape = rand_shape_2d(40, 40)
    for stype in ['row_sparse', 'csr']:
        for density in [0, 0.5]:
            a, _ = rand_sparse_ndarray(shape, stype, density)
            assert isinstance(a, stype_dict[stype])
            b = pkl.loads(pkl.dumps(a))
            assert isinstance(b, stype_dict[stype])
            assert same(a.asnumpy(), b.asnumpy())


# upstream: test_sparse_ndarray.py::test_sparse_nd_save_load
def test_sparse_nd_save_load():
    stypes = ['default', 'row_sparse', 'csr']
    stype_dict = {'default': NDArray, 'row_sparse': RowSparseNDArray, 'csr': CSRNDArray}
    densities = [0, 0.5]
    fname = 'tmp_list.bin'
    data_list1 = []
    for _ in range(20):
        stype = stypes[np.random.randint(0, len(stypes))]
        shape = rand_shape_2d(dim0=40, dim1=40)
        density = densities[np.random.randint(0, len(densities))]
        data_list1.append(rand_ndarray(shape, stype, density))
        assert isinstance(data_list1[-1], stype_dict[stype])
    mx.nd.save(fname, data_list1)
    data_list2 = mx.nd.load(fname)
    assert len(data_list1) == len(data_list2)
    for x, y in zip(data_list1, data_list2):
        assert same(x.asnumpy(), y.asnumpy())

    data_map1 = {'ndarray xx %s' % i: x for i, x in enumerate(data_list1)}
    mx.nd.save(fname, data_map1)
    data_map2 = mx.nd.load(fname)
    assert len(data_map1) == len(data_map2)
    for k, x in data_map1.items():
        assert same(x.asnumpy(), data_map2[k].asnumpy())
    os.remove(fname)


# upstream: test_sparse_ndarray.py::test_sparse_nd_unsupported
def test_sparse_nd_unsupported():
    nd = mx.nd.zeros((2, 2), stype='row_sparse')
    fns = [lambda x: x._slice(None, None), lambda x: x._at(None), lambda x: x.reshape(None)]
    for fn in fns:
        try:
            fn(nd)
            assert False
        except:  # noqa: E722 (upstream accepts any exception)
            pass


# upstream: test_sparse_ndarray.py::test_create_csr
def test_create_csr():
    def check_create_csr_from_nd(shape, density, dtype):
        matrix = rand_ndarray(shape, 'csr', density)
        data = mx.nd.array(matrix.data.asnumpy(), dtype=dtype)
        indptr = matrix.indptr
        indices = matrix.indices
        csr_created = mx.nd.sparse.csr_matrix((data, indices, indptr), shape=shape)
        assert csr_created.stype == 'csr'
        assert same(csr_created.data.asnumpy(), data.asnumpy())
        assert same(csr_created.indptr.asnumpy(), indptr.asnumpy())
        assert same(csr_created.indices.asnumpy(), indices.asnumpy())
        assert csr_created.dtype == dtype, (csr_created, dtype)
        assert csr_created.data.dtype == dtype, (csr_created.data.dtype, dtype)
        assert csr_created.context == Context.default_ctx, (csr_created.context, Context.default_ctx)
        csr_copy = mx.nd.array(csr_created)
        assert same(csr_copy.asnumpy(), csr_created.asnumpy())

    def check_create_csr_from_coo(shape, density, dtype):
        matrix = rand_ndarray(shape, 'csr', density)
        sp_csr = matrix.asscipy()
        sp_coo = sp_csr.tocoo()
        csr_created = mx.nd.sparse.csr_matrix((sp_coo.data, (sp_coo.row, sp_coo.col)), shape=shape, dtype=dtype)
        assert csr_created.stype == 'csr'
        assert same(csr_created.data.asnumpy(), sp_csr.data)
        assert same(csr_created.indptr.asnumpy(), sp_csr.indptr)
        assert same(csr_created.indices.asnumpy(), sp_csr.indices)
        csr_copy = mx.nd.array(csr_created)
        assert same(csr_copy.asnumpy(), csr_created.asnumpy())
        assert csr_created.dtype == dtype, (csr_created.dtype, dtype)
        assert csr_created.data.dtype == dtype, (csr_created.data.dtype, dtype)
        assert csr_created.context == Context.default_ctx, (csr_created.context, Context.default_ctx)

    def check_create_csr_from_scipy(shape, density, f):
        def assert_csr_almost_equal(nd, sp):
            assert_almost_equal(nd.data.asnumpy(), sp.data)
            assert_almost_equal(nd.indptr.asnumpy(), sp.indptr)
            assert_almost_equal(nd.indices.asnumpy(), sp.indices)
            sp_csr = nd.asscipy()
            assert_almost_equal(sp_csr.data, sp.data)
            assert_almost_equal(sp_csr.indptr, sp.indptr)
            assert_almost_equal(sp_csr.indices, sp.indices)
            assert sp.dtype == sp_csr.dtype, (sp.dtype, sp_csr.dtype)

        import scipy.sparse as spsp
        csr_sp = spsp.rand(shape[0], shape[1], density, format="csr")
        csr_nd = f(csr_sp)
        assert_csr_almost_equal(csr_nd, csr_sp)
        # a non-canonical csr (duplicates, unsorted indices) is made canonical
        indptr = np.array([0, 2, 3, 7])
        indices = np.array([0, 2, 2, 0, 1, 2, 1])
        data = np.array([1, 2, 3, 4, 5, 6, 1])
        non_canonical_csr = spsp.csr_matrix((data, indices, indptr), shape=(3, 3), dtype=csr_nd.dtype)
        canonical_csr_nd = f(non_canonical_csr, dtype=csr_nd.dtype)
        canonical_csr_sp = non_canonical_csr.copy()
        canonical_csr_sp.sum_duplicates()
        canonical_csr_sp.sort_indices()
        assert_csr_almost_equal(canonical_csr_nd, canonical_csr_sp)

    dtype = np.float64
    for density in [0, 0.5]:
        shape = rand_shape_2d(20, 20)
        check_create_csr_from_nd(shape, density, dtype)
        check_create_csr_from_coo(shape, density, dtype)
        check_create_csr_from_scipy(shape, density, mx.nd.sparse.array)
        check_create_csr_from_scipy(shape, density, mx.nd.array)


# upstream: test_sparse_ndarray.py::test_create_row_sparse
def test_create_row_sparse():
    for density in [0, 0.5, 1]:
        shape = rand_shape_2d(50, 50)
        matrix = rand_ndarray(shape, 'row_sparse', density)
        data = matrix.data
        indices = matrix.indices
        rsp_created = mx.nd.sparse.row_sparse_array((data, indices), shape=shape)
        assert rsp_created.stype == 'row_sparse'
        assert same(rsp_created.data.asnumpy(), data.asnumpy())
        assert same(rsp_created.indices.asnumpy(), indices.asnumpy())
        rsp_copy = mx.nd.array(rsp_created)
        assert same(rsp_copy.asnumpy(), rsp_created.asnumpy())

        # numpy integer types are integer shapes
        for np_int_type in (np.int32, np.int64):
            shape = [np_int_type(x) for x in shape]
            arg1 = tuple(shape)
            mx.nd.sparse.row_sparse_array(arg1, tuple(shape))
            shape[0] += 1
            assert_exception(mx.nd.sparse.row_sparse_array, ValueError, arg1, tuple(shape))


# upstream: test_sparse_ndarray.py::test_create_sparse_nd_infer_shape
def test_create_sparse_nd_infer_shape():
    def check_create_csr_infer_shape(shape, density, dtype):
        try:
            matrix = rand_ndarray(shape, 'csr', density=density)
            data = matrix.data
            indptr = matrix.indptr
            indices = matrix.indices
            nd = mx.nd.sparse.csr_matrix((data, indices, indptr), dtype=dtype)
            num_rows, num_cols = nd.shape
            assert num_rows == len(indptr) - 1
            assert indices.shape[0] > 0, indices
            assert np.sum((num_cols <= indices).asnumpy()) == 0
            assert nd.dtype == dtype, (nd.dtype, dtype)
        except ValueError:  # a shape that cannot be inferred
            pass

    def check_create_rsp_infer_shape(shape, density, dtype):
        try:
            array = rand_ndarray(shape, 'row_sparse', density=density)
            data = array.data
            indices = array.indices
            nd = mx.nd.sparse.row_sparse_array((data, indices), dtype=dtype)
            inferred_shape = nd.shape
            assert inferred_shape[1:] == data.shape[1:]
            assert indices.ndim > 0
            assert nd.dtype == dtype
            if indices.shape[0] > 0:
                assert np.sum((inferred_shape[0] <= indices).asnumpy()) == 0
        except ValueError:
            pass

    dtype = np.int32
    shape = rand_shape_2d()
    shape_3d = rand_shape_3d()
    for density in [0, 0.5, 1]:
        check_create_csr_infer_shape(shape, density, dtype)
        check_create_rsp_infer_shape(shape, density, dtype)
        check_create_rsp_infer_shape(shape_3d, density, dtype)


# upstream: test_sparse_ndarray.py::test_create_sparse_nd_from_dense
def test_create_sparse_nd_from_dense():
    def check_create_from_dns(shape, f, dense_arr, dtype, default_dtype, ctx):
        arr = f(dense_arr, dtype=dtype, ctx=ctx)
        assert same(arr.asnumpy(), np.ones(shape))
        assert arr.dtype == dtype
        assert arr.context == ctx
        arr2 = f(dense_arr)
        assert arr2.dtype == default_dtype
        assert arr2.context == Context.default_ctx

    shape = rand_shape_2d()
    dtype = np.int32
    src_dtype = np.float64
    ctx = mx.cpu(1)
    dense_arrs = [mx.nd.ones(shape, dtype=src_dtype), np.ones(shape, dtype=src_dtype),
                  np.ones(shape, dtype=src_dtype).tolist()]
    for f in [mx.nd.sparse.csr_matrix, mx.nd.sparse.row_sparse_array]:
        for dense_arr in dense_arrs:
            default_dtype = dense_arr.dtype if isinstance(dense_arr, (NDArray, np.ndarray)) else np.float32
            check_create_from_dns(shape, f, dense_arr, dtype, default_dtype, ctx)


# upstream: test_sparse_ndarray.py::test_create_sparse_nd_from_sparse
def test_create_sparse_nd_from_sparse():
    def check_create_from_sp(shape, f, sp_arr, dtype, src_dtype, ctx):
        arr = f(sp_arr, dtype=dtype, ctx=ctx)
        assert same(arr.asnumpy(), np.ones(shape))
        assert arr.dtype == dtype
        assert arr.context == ctx
        arr2 = f(sp_arr)
        assert arr2.dtype == src_dtype
        assert arr2.context == Context.default_ctx

    import scipy.sparse as spsp
    shape = rand_shape_2d()
    src_dtype = np.float64
    dtype = np.int32
    ctx = mx.cpu(1)
    ones = mx.nd.ones(shape, dtype=src_dtype)
    csr_arrs = [ones.tostype('csr'), spsp.csr_matrix(np.ones(shape, dtype=src_dtype))]
    rsp_arrs = [ones.tostype('row_sparse')]
    for sp_arr in csr_arrs:
        check_create_from_sp(shape, mx.nd.sparse.csr_matrix, sp_arr, dtype, src_dtype, ctx)
    for sp_arr in rsp_arrs:
        check_create_from_sp(shape, mx.nd.sparse.row_sparse_array, sp_arr, dtype, src_dtype, ctx)


# upstream: test_sparse_ndarray.py::test_create_sparse_nd_empty
def test_create_sparse_nd_empty():
    def check_empty(shape, stype):
        arr = mx.nd.empty(shape, stype=stype)
        assert arr.stype == stype
        assert same(arr.asnumpy(), np.zeros(shape))

    def check_csr_empty(shape, dtype, ctx):
        arr = mx.nd.sparse.csr_matrix(shape, dtype=dtype, ctx=ctx)
        assert arr.stype == 'csr'
        assert arr.dtype == dtype
        assert arr.context == ctx
        assert same(arr.asnumpy(), np.zeros(shape))
        arr = mx.nd.sparse.csr_matrix(shape)
        assert arr.dtype == np.float32
        assert arr.context == Context.default_ctx

    def check_rsp_empty(shape, dtype, ctx):
        arr = mx.nd.sparse.row_sparse_array(shape, dtype=dtype, ctx=ctx)
        assert arr.stype == 'row_sparse'
        assert arr.dtype == dtype
        assert arr.context == ctx
        assert same(arr.asnumpy(), np.zeros(shape))
        arr = mx.nd.sparse.row_sparse_array(shape)
        assert arr.dtype == np.float32
        assert arr.context == Context.default_ctx

    shape = rand_shape_2d()
    shape_3d = rand_shape_3d()
    dtype = np.int32
    ctx = mx.cpu(1)
    for stype in ['csr', 'row_sparse']:
        check_empty(shape, stype)
    check_csr_empty(shape, dtype, ctx)
    check_rsp_empty(shape, dtype, ctx)
    check_rsp_empty(shape_3d, dtype, ctx)


# upstream: test_sparse_ndarray.py::test_synthetic_dataset_generator
@pytest.mark.slow  # a (32, 1000000) csr at density 0.4: 12.8M stored values
def test_synthetic_dataset_generator():
    def check_powerlaw(csr_arr, final_row=1):
        # each row holds twice the non-zeros of the one before (the last column index + 1)
        indices = csr_arr.indices.asnumpy()
        indptr = csr_arr.indptr.asnumpy()
        for row in range(1, final_row + 1):
            nextrow = row + 1
            current_row_nnz = indices[indptr[row] - 1] + 1
            next_row_nnz = indices[indptr[nextrow] - 1] + 1
            assert next_row_nnz == 2 * current_row_nnz

    csr_arr_cols, _ = rand_sparse_ndarray(shape=(32, 10000), stype="csr", density=0.01, distribution="powerlaw")
    csr_arr_small, _ = rand_sparse_ndarray(shape=(5, 5), stype="csr", density=0.5, distribution="powerlaw")
    csr_arr_big, _ = rand_sparse_ndarray(shape=(32, 1000000), stype="csr", density=0.4, distribution="powerlaw")
    csr_arr_square, _ = rand_sparse_ndarray(shape=(1600, 1600), stype="csr", density=0.5, distribution="powerlaw")
    assert len(csr_arr_cols.data) == 3200
    check_powerlaw(csr_arr_cols, final_row=9)
    check_powerlaw(csr_arr_small, final_row=1)
    check_powerlaw(csr_arr_big, final_row=4)
    check_powerlaw(csr_arr_square, final_row=6)


# upstream: test_sparse_ndarray.py::test_sparse_nd_exception
def test_sparse_nd_exception():
    a = mx.nd.ones((2, 2))
    assertRaises(MXNetError, mx.nd.sparse.retain, a, invalid_arg="garbage_value")
    assertRaises(ValueError, mx.nd.sparse.csr_matrix, a, shape=(3, 2))
    assertRaises(ValueError, mx.nd.sparse.csr_matrix, (2, 2), shape=(3, 2))
    assertRaises(ValueError, mx.nd.sparse.row_sparse_array, (2, 2), shape=(3, 2))
    assertRaises(ValueError, mx.nd.sparse.zeros, "invalid_stype", (2, 2))


# upstream: test_sparse_ndarray.py::test_sparse_nd_check_format
@xfail_on_sparsetrain("csr_matrix/row_sparse_array check the buffers when built (ShapeError), "
                      "so the malformed arrays never reach check_format")
def test_sparse_nd_check_format():
    shape = rand_shape_2d()
    for stype in ["csr", "row_sparse"]:
        arr, _ = rand_sparse_ndarray(shape, stype)
        arr.check_format()
        arr = mx.nd.sparse.zeros(stype, shape)
        arr.check_format()
    shape = (3, 4)
    data_list = [7, 8, 9]
    # indptr values beyond the number of stored values
    a = mx.nd.sparse.csr_matrix((data_list, [0, 2, 1], [0, 5, 2, 3]), shape=shape)
    assertRaises(MXNetError, a.check_format)
    # indices not ascending within a row
    a = mx.nd.sparse.csr_matrix((data_list, [2, 1, 1], [0, 2, 2, 3]), shape=shape)
    assertRaises(MXNetError, a.check_format)
    # indptr not ending at the number of indices
    a = mx.nd.sparse.csr_matrix((data_list, [1, 2, 1], [0, 2, 2, 4]), shape=shape)
    assertRaises(MXNetError, a.check_format)
    # negative indptr
    a = mx.nd.sparse.csr_matrix((data_list, [0, 2, 1], [0, -2, 2, 3]), shape=shape)
    assertRaises(MXNetError, a.check_format)
    # row_sparse: an index past the last row
    shape = (3, 2)
    data_list = [[1, 2], [3, 4]]
    a = mx.nd.sparse.row_sparse_array((data_list, [1, 4]), shape=shape)
    assertRaises(MXNetError, a.check_format)
    # row_sparse: indices not ascending
    a = mx.nd.sparse.row_sparse_array((data_list, [1, 0]), shape=shape)
    assertRaises(MXNetError, a.check_format)
    # row_sparse: a negative index
    a = mx.nd.sparse.row_sparse_array((data_list, [1, -2]), shape=shape)
    assertRaises(MXNetError, a.check_format)


# upstream: test_sparse_ndarray.py::test_sparse_nd_norm
def test_sparse_nd_norm():
    def check_sparse_nd_norm(stype, shape, density, **kwargs):
        data, _ = rand_sparse_ndarray(shape, stype, density)
        norm = data.norm(**kwargs)
        expected_norm = data.tostype('default').norm(**kwargs)
        assert_almost_equal(norm.asnumpy(), expected_norm.asnumpy())

    shape = (5, 5)
    for stype in ['row_sparse', 'csr']:
        for density in [0, 0.5, 1]:
            check_sparse_nd_norm(stype, shape, density, axis=None, keepdims=False, ord=2)
    # the fallback (upstream runs it with the last stype and density of the loop)
    check_sparse_nd_norm(stype, shape, density, axis=0, keepdims=False, ord=2)
    check_sparse_nd_norm(stype, shape, density, axis=None, keepdims=True, ord=2)


# upstream: test_sparse_ndarray.py::test_sparse_fc
def test_sparse_fc():
    def check_sparse_fc(batch_size, dim_in, dim_out, stype):
        data = rand_ndarray((batch_size, dim_in), stype, density=0.5)
        weight = rand_ndarray((dim_out, dim_in), 'row_sparse', density=1)
        bias = rand_ndarray((dim_out, 1), 'row_sparse', density=1)
        out = mx.nd.sparse.FullyConnected(data, weight, num_hidden=dim_out, bias=bias)
        data_dns = data.tostype('default')
        weight_dns = weight.tostype('default')
        out_dns = mx.nd.FullyConnected(data_dns, weight_dns, num_hidden=dim_out, bias=bias)
        assert_almost_equal(out.asnumpy(), out_dns.asnumpy())

    check_sparse_fc(5, 10, 8, 'default')
    check_sparse_fc(5, 10, 8, 'csr')


# upstream: test_sparse_ndarray.py::test_sparse_getnnz
def test_sparse_getnnz():
    def check_sparse_getnnz(density, axis):
        shape = rand_shape_2d()
        data = rand_ndarray(shape, 'csr', density=density)
        data_sp = data.asscipy()
        result = mx.nd.contrib.getnnz(data, axis=axis)
        expected_result = data_sp.getnnz(axis=axis)
        assert_almost_equal(result.asnumpy(), expected_result)

    for d in [0, 0.5, 1]:
        for a in [1, None]:
            check_sparse_getnnz(d, a)
