"""MXNet 1.9.1 ``tests/python/unittest/test_kvstore.py`` (the local KVStore: dense and row_sparse
values, ``row_sparse_pull``, ``_set_updater``), ported to run on sparsetrain or MXNet."""
import numpy as np

from ._harness import assert_almost_equal, mx, rand_ndarray

shape = (4, 4)
keys = [5, 7, 11]
str_keys = ['b', 'c', 'd']


def init_kv(stype='default'):
    kv = mx.kv.create()
    kv.init(3, mx.nd.zeros(shape=shape, stype=stype))
    kv.init(keys, [mx.nd.zeros(shape=shape, stype=stype)] * len(keys))
    return kv


def init_kv_with_str(stype='default'):
    kv = mx.kv.create()
    kv.init('a', mx.nd.zeros(shape, stype=stype))
    kv.init(str_keys, [mx.nd.zeros(shape=shape, stype=stype)] * len(keys))
    return kv


def check_diff_to_scalar(A, x):
    assert np.sum(np.abs((A - x).asnumpy())) == 0


# upstream: test_kvstore.py::test_single_kv_pair
def test_single_kv_pair():
    def check_single_kv_pair(kv, key):
        kv.push(key, mx.nd.ones(shape))
        val = mx.nd.empty(shape)
        kv.pull(key, out=val)
        check_diff_to_scalar(val, 1)

    check_single_kv_pair(init_kv(), 3)
    check_single_kv_pair(init_kv_with_str(), 'a')


# upstream: test_kvstore.py::test_row_sparse_pull
def test_row_sparse_pull():
    kv = init_kv_with_str('row_sparse')
    kv.init('e', mx.nd.ones(shape).tostype('row_sparse'))

    def check_row_sparse_pull(kv, count):
        num_rows = shape[0]
        vals = []
        row_ids = []
        all_row_ids = np.arange(num_rows)
        for _ in range(count):
            vals.append(mx.nd.zeros(shape).tostype('row_sparse'))
            row_id = np.random.randint(num_rows, size=num_rows)
            row_ids.append(mx.nd.array(row_id, dtype='int64'))
        row_ids_to_pull = row_ids[0] if len(row_ids) == 1 else row_ids
        vals_to_pull = vals[0] if len(vals) == 1 else vals

        kv.row_sparse_pull('e', out=vals_to_pull, row_ids=row_ids_to_pull)
        for val, row_id in zip(vals, row_ids):
            retained = val.asnumpy()
            excluded_row_ids = np.setdiff1d(all_row_ids, row_id.asnumpy())
            for row in range(num_rows):
                expected_val = np.zeros_like(retained[row])
                expected_val += 0 if row in excluded_row_ids else 1
                assert_almost_equal(retained[row], expected_val)

    check_row_sparse_pull(kv, 1)
    check_row_sparse_pull(kv, 4)


# upstream: test_kvstore.py::test_init
def test_init():
    def check_init(kv, key):
        kv.init(key, mx.nd.ones(shape) * 4)
        a = mx.nd.zeros(shape)
        kv.pull(key, out=a)
        check_diff_to_scalar(a, 4)

    check_init(mx.kv.create(), 3)
    check_init(mx.kv.create(), 'a')


# upstream: test_kvstore.py::test_list_kv_pair
def test_list_kv_pair():
    def check_list_kv_pair(kv, key):
        kv.push(key, [mx.nd.ones(shape) * 4] * len(key))
        val = [mx.nd.empty(shape)] * len(key)
        kv.pull(key, out=val)
        for v in val:
            check_diff_to_scalar(v, 4)

    check_list_kv_pair(init_kv(), keys)
    check_list_kv_pair(init_kv_with_str(), str_keys)


# upstream: test_kvstore.py::test_aggregator
def test_aggregator():
    def check_aggregator(kv, key, key_list):
        num_devs = 4
        devs = [mx.Context('cpu', i) for i in range(num_devs)]
        vals = [mx.nd.ones(shape, d) for d in devs]
        kv.push(key, vals)
        kv.pull(key, out=vals)
        for v in vals:
            check_diff_to_scalar(v, num_devs)

        vals = [[mx.nd.ones(shape, d) * 2.0 for d in devs]] * len(key_list)
        kv.push(key_list, vals)
        kv.pull(key_list, out=vals)
        for vv in vals:
            for v in vv:
                check_diff_to_scalar(v, num_devs * 2.0)

    check_aggregator(init_kv(), 3, keys)
    check_aggregator(init_kv_with_str(), 'a', str_keys)


# upstream: test_kvstore.py::test_sparse_aggregator
def test_sparse_aggregator():
    stype = 'row_sparse'
    kv = init_kv_with_str(stype)
    num_devs = 4
    devs = [mx.Context('cpu', i) for i in range(num_devs)]

    vals = [rand_ndarray(shape, stype).copyto(devs[i]) for i in range(num_devs)]
    expected_sum = np.zeros(shape)
    for v in vals:
        expected_sum += v.asnumpy()
    all_rows = mx.nd.array(np.arange(shape[0]), dtype='int64')
    kv.push('a', vals)
    kv.row_sparse_pull('a', out=vals, row_ids=[all_rows] * len(vals))
    result_sum = np.zeros(shape)
    for v in vals:
        result_sum += v.asnumpy()
    assert_almost_equal(result_sum, expected_sum * num_devs)

    vals = [[rand_ndarray(shape, stype).copyto(devs[i]) for i in range(num_devs)]] * len(keys)
    expected_sum = np.zeros(shape)
    for v in vals[0]:
        expected_sum += v.asnumpy()
    kv.push(str_keys, vals)
    kv.row_sparse_pull(str_keys, out=vals, row_ids=[[all_rows] * num_devs] * len(vals))
    for vv in vals:
        result_sum = np.zeros(shape)
        for v in vv:
            result_sum += v.asnumpy()
        assert_almost_equal(result_sum, expected_sum * num_devs)


def updater(key, recv, local):
    local += recv


# upstream: test_kvstore.py::test_updater
def test_updater():
    def check_updater(kv, key, key_list):
        num_devs = 4
        devs = [mx.Context('cpu', i) for i in range(num_devs)]
        vals = [mx.nd.ones(shape, d) for d in devs]
        kv.push(key, vals)
        kv.pull(key, out=vals)
        for v in vals:
            check_diff_to_scalar(v, num_devs)

        vals = [[mx.nd.ones(shape, d) for d in devs]] * len(key_list)
        num_push = 4
        for _ in range(num_push):
            kv.push(key_list, vals)
        kv.pull(key_list, out=vals)
        for vv in vals:
            for v in vv:
                check_diff_to_scalar(v, num_devs * num_push)

    kv = init_kv()
    kv._set_updater(updater)
    check_updater(kv, 3, keys)

    str_kv = init_kv_with_str()
    str_kv._set_updater(updater)
    check_updater(str_kv, 'a', str_keys)


# upstream: test_kvstore.py::test_get_type
def test_get_type():
    kvtype = 'local_allreduce_cpu'
    kv = mx.kv.create(kvtype)
    assert kv.type == kvtype
