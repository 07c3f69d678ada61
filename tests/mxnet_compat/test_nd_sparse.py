"""``mx.nd`` / ``mx.nd.sparse`` as MXNet 1.9.1 documents them, run with ``import sparsetrain as mx``.

Each test states the MXNet behaviour it checks (from the API docs and the semantics of the
operator registrations), including the error cases.
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import sparsetrain as mx
from sparsetrain.base import DataFormatError, StorageFallbackWarning

STYPES = ("csr", "row_sparse")


def ones(shape, stype):
    return mx.nd.ones(shape).tostype(stype)


@pytest.fixture(autouse=True)
def _quiet_fallback():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StorageFallbackWarning)
        yield


# -- names --------------------------------------------------------------------------------------

def test_context_default_ctx_and_kv_alias():
    assert mx.Context.default_ctx == mx.cpu()
    assert mx.kv is mx.kvstore
    assert mx.nd.zeros((2, 2)).context == mx.Context.default_ctx


# -- class hierarchy and indexing ----------------------------------------------------------------

@pytest.mark.parametrize("stype", STYPES)
def test_sparse_arrays_are_ndarray_subclasses(stype):
    x = ones((3, 2), stype)
    assert isinstance(x, mx.nd.NDArray)
    assert isinstance(x, mx.nd.sparse.BaseSparseNDArray)
    assert not isinstance(mx.nd.ones((2, 2)), mx.nd.sparse.BaseSparseNDArray)
    assert repr(x).strip() == f"<{type(x).__name__} 3x2 @cpu(0)>"
    with pytest.raises(mx.StorageTypeError):
        x.reshape((6,))


def test_csr_row_indexing_and_iteration_end():
    dense = np.array([[1, 0, 2], [0, 0, 3], [4, 5, 6]], dtype=np.float32)
    c = mx.nd.array(dense).tostype("csr")
    assert c[1].stype == "csr" and c[1].shape == (1, 3)
    np.testing.assert_array_equal(c[1].asnumpy(), dense[1:2])
    np.testing.assert_array_equal(c[-1].asnumpy(), dense[2:3])
    np.testing.assert_array_equal(c[1:3].asnumpy(), dense[1:3])
    for bad in (3, 10, -4):
        with pytest.raises(IndexError):
            c[bad]
    with pytest.raises(ValueError):
        c[0:2:2]
    with pytest.raises(ValueError):
        c[0, 1]
    assert len(list(c)) == 3  # iteration stops at the last row


def test_np_all_on_csr_terminates():
    # Before the fix csr[i] for i >= rows returned an empty array, so numpy's sequence protocol
    # never stopped; run it in a child process so a regression fails by timeout, not by hanging.
    code = ("import numpy as np, sparsetrain as mx\n"
            "c = mx.nd.array([[1, 0], [0, 2]]).tostype('csr')\n"
            "print(bool(np.all(c)), bool(np.all(c + mx.nd.ones((2, 2)))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_row_sparse_indexing_is_whole_array_only():
    r = ones((3, 2), "row_sparse")
    assert r[:] is r
    with pytest.raises(IndexError):
        r[1]
    with pytest.raises(TypeError):
        list(r)


# -- check_format, .T ---------------------------------------------------------------------------

def test_check_format_accepts_valid_and_rejects_broken_buffers():
    mx.nd.sparse.csr_matrix(([1.0, 2.0], [0, 2], [0, 1, 2]), shape=(2, 3)).check_format()
    mx.nd.sparse.row_sparse_array(([[1.0], [2.0]], [0, 3]), shape=(4, 1)).check_format()
    broken = [
        mx.nd.sparse.CSRNDArray(np.ones(2, np.float32), np.array([2, 0]), np.array([0, 2, 2]), (2, 3)),  # unsorted
        mx.nd.sparse.CSRNDArray(np.ones(2, np.float32), np.array([0, 5]), np.array([0, 1, 2]), (2, 3)),  # column range
        mx.nd.sparse.CSRNDArray(np.ones(2, np.float32), np.array([0, 1]), np.array([0, 2, 1]), (2, 3)),  # indptr order
        mx.nd.sparse.RowSparseNDArray(np.ones((2, 1), np.float32), np.array([3, 1]), (4, 1)),  # unsorted rows
        mx.nd.sparse.RowSparseNDArray(np.ones((2, 1), np.float32), np.array([0, 4]), (4, 1)),  # row range
    ]
    for x in broken:
        x.check_format(full_check=False)  # sizes are right: the O(1) check passes
        with pytest.raises(mx.nd.sparse.SparseFormatError):
            x.check_format()
    wrong_size = mx.nd.sparse.CSRNDArray(np.ones(2, np.float32), np.array([0, 1]), np.array([0, 2]), (2, 3))
    with pytest.raises(ValueError):
        wrong_size.check_format(full_check=False)


def test_transpose():
    dense = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = mx.nd.array(dense).tostype("csr").T
    assert t.stype == "csr" and t.shape == (3, 2)
    t.check_format()
    np.testing.assert_array_equal(t.asnumpy(), dense.T)
    np.testing.assert_array_equal(mx.nd.array(dense).tostype("row_sparse").T.asnumpy(), dense.T)


# -- save / load --------------------------------------------------------------------------------

def test_save_load_keeps_storage_types(tmp_path):
    c = mx.nd.sparse.csr_matrix(([1.0, 2.0], [0, 2], [0, 1, 1, 2]), shape=(3, 3), dtype="float64")
    r = mx.nd.sparse.row_sparse_array(([[1.0, 2.0]], [2]), shape=(4, 2))
    d = mx.nd.array([[1, 2], [3, 4]])
    f = str(tmp_path / "arrays")
    mx.nd.save(f, {"c": c, "r": r, "d": d})
    back = mx.nd.load(f)
    assert sorted(back) == ["c", "d", "r"]
    for name, orig in (("c", c), ("r", r), ("d", d)):
        assert back[name].stype == orig.stype and back[name].dtype == orig.dtype
        assert back[name].shape == orig.shape
        np.testing.assert_array_equal(back[name].asnumpy(), orig.asnumpy())
    mx.nd.save(f, [c, d])
    lst = mx.nd.load(f)
    assert isinstance(lst, list) and [a.stype for a in lst] == ["csr", "default"]
    mx.nd.save(f, r)
    assert mx.nd.load(f)[0].stype == "row_sparse"


def test_save_file_is_data_only_and_load_rejects_other_files(tmp_path):
    f = str(tmp_path / "a")
    mx.nd.save(f, [mx.nd.ones((2, 2)).tostype("csr")])
    with np.load(f, allow_pickle=False) as z:  # loads without pickle
        assert "__header__" in z.files
    other = tmp_path / "b"
    other.write_text("not arrays")
    with pytest.raises(DataFormatError):
        mx.nd.load(str(other))
    with pytest.raises(TypeError):
        mx.nd.save(f, {1: mx.nd.ones(1)})
    with pytest.raises(TypeError):
        mx.nd.save(f, [np.ones(2)])


# -- constructors ------------------------------------------------------------------------------

def test_csr_from_coo():
    c = mx.nd.sparse.csr_matrix(([1.0, 2.0, 3.0], ([0, 2, 2], [1, 0, 2])), shape=(3, 4))
    expected = np.zeros((3, 4), np.float32)
    expected[0, 1], expected[2, 0], expected[2, 2] = 1, 2, 3
    assert c.stype == "csr" and c.dtype == np.float32
    np.testing.assert_array_equal(c.asnumpy(), expected)
    inferred = mx.nd.sparse.csr_matrix(([5.0], ([1], [2])))
    assert inferred.shape == (2, 3)
    dup = mx.nd.sparse.csr_matrix(([1.0, 2.0], ([0, 0], [1, 1])), shape=(1, 2))  # duplicates are summed
    np.testing.assert_array_equal(dup.asnumpy(), [[0, 3]])
    with pytest.raises(ValueError):
        mx.nd.sparse.csr_matrix(([1.0], ([5], [0])), shape=(2, 2))


@pytest.mark.parametrize("src_dtype", [np.float64, np.int64])
def test_array_source_keeps_its_dtype(src_dtype):
    dense = np.array([[1, 0], [0, 2]], dtype=src_dtype)
    assert mx.nd.sparse.csr_matrix(dense).dtype == src_dtype
    assert mx.nd.sparse.row_sparse_array(dense).dtype == src_dtype
    assert mx.nd.sparse.csr_matrix(sp.csr_matrix(dense)).dtype == src_dtype
    data = np.array([1, 2], dtype=src_dtype)
    assert mx.nd.sparse.csr_matrix((data, [0, 1], [0, 1, 2]), shape=(2, 2)).dtype == src_dtype
    assert mx.nd.sparse.row_sparse_array((data.reshape(2, 1), [0, 1]), shape=(2, 1)).dtype == src_dtype
    # lists give float32; dtype= wins
    assert mx.nd.sparse.csr_matrix([[1, 0], [0, 2]]).dtype == np.float32
    assert mx.nd.sparse.csr_matrix(dense, dtype="float32").dtype == np.float32


def test_contradictory_and_uninferable_shapes_raise_value_error():
    dense = np.ones((2, 2))
    cases = [
        lambda: mx.nd.sparse.csr_matrix(dense, shape=(3, 2)),
        lambda: mx.nd.sparse.csr_matrix(sp.csr_matrix(dense), shape=(2, 3)),
        lambda: mx.nd.sparse.csr_matrix(mx.nd.array(dense).tostype("csr"), shape=(1, 2)),
        lambda: mx.nd.sparse.csr_matrix((2, 2), shape=(3, 2)),
        lambda: mx.nd.sparse.row_sparse_array((2, 2), shape=(3, 2)),
        lambda: mx.nd.sparse.row_sparse_array(dense, shape=(3, 2)),
        lambda: mx.nd.sparse.csr_matrix(([], [], [0, 0])),  # no indices: shape cannot be inferred
        lambda: mx.nd.sparse.row_sparse_array((np.zeros((0, 2)), [])),
        lambda: mx.nd.sparse.csr_matrix(([1.0], [0], [0, 1]), shape=(2, 2)),  # indptr too short
        lambda: mx.nd.sparse.csr_matrix(mx.nd.ones((2, 2)).tostype("row_sparse")),
        lambda: mx.nd.sparse.row_sparse_array(mx.nd.ones((2, 2)).tostype("csr")),
        lambda: mx.nd.sparse.csr_matrix((1, 2, 3, 4, 5)),
    ]
    for case in cases:
        with pytest.raises(ValueError):
            case()


def test_shape_inference_from_buffers():
    assert mx.nd.sparse.csr_matrix(([1.0], [4], [0, 0, 1])).shape == (2, 5)
    assert mx.nd.sparse.row_sparse_array(([[1.0, 2.0]], [3])).shape == (4, 2)


# -- nd.sparse functions --------------------------------------------------------------------------

@pytest.mark.parametrize("stype", ("default",) + STYPES)
def test_sparse_zeros_like_keeps_stype(stype):
    x = ones((3, 2), stype).astype("float64")
    z = mx.nd.sparse.zeros_like(x)
    assert z.stype == stype and z.dtype == np.float64 and not z.asnumpy().any()


@pytest.mark.parametrize("name, f", [("add", np.add), ("subtract", np.subtract),
                                     ("multiply", np.multiply), ("divide", np.divide)])
@pytest.mark.parametrize("stype", STYPES)
def test_sparse_arithmetic_functions(name, f, stype):
    a = mx.nd.array([[1, 0, 2], [0, 3, 0]]).tostype(stype)
    b = mx.nd.array([[2, 2, 2], [2, 2, 2]]).tostype(stype)
    fn = getattr(mx.nd.sparse, name)
    np.testing.assert_allclose(fn(a, b).asnumpy(), f(a.asnumpy(), b.asnumpy()))
    np.testing.assert_allclose(fn(a, 2.0).asnumpy(), f(a.asnumpy(), 2.0))
    row = mx.nd.array([[1, 2, 4]])
    np.testing.assert_allclose(fn(a, row).asnumpy(), f(a.asnumpy(), row.asnumpy()))
    assert getattr(mx.nd, name)(2, 3) == f(2, 3)
    if name in ("add", "subtract", "multiply"):
        assert fn(a, b).stype == stype  # same-stype kernels keep the storage type


# -- scalar operators on every stype ------------------------------------------------------------

@pytest.mark.parametrize("stype", ("default",) + STYPES)
def test_scalar_ops_values_and_stypes(stype):
    dense = np.array([[1, 0, 2], [0, 0, 0], [0, 4, 0]], dtype=np.float32)
    x = mx.nd.array(dense).tostype(stype)
    sparse = stype != "default"
    cases = [
        (x * 2, dense * 2, stype), (2 * x, dense * 2, stype), (x / 2, dense / 2, stype),
        (-x, -dense, stype), (x + 0, dense, stype), (x - 0, dense, stype),
        (x + 1, dense + 1, "default"), (1 + x, dense + 1, "default"), (x - 1, dense - 1, "default"),
        (1 - x, 1 - dense, "default"), (x ** 2, dense ** 2, "default"), (2 ** x, 2 ** dense, "default"),
    ]
    for got, want, want_stype in cases:
        np.testing.assert_allclose(got.asnumpy(), want)
        assert got.stype == (want_stype if sparse else "default")
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose((2 / (x + 1)).asnumpy(), 2 / (dense + 1))


@pytest.mark.parametrize("stype", STYPES)
def test_internal_scalar_family(stype):
    x = mx.nd.array([[1, 0], [0, 3]]).tostype(stype)
    internal = mx.nd._internal
    for name, want, keeps in [("_mul_scalar", x.asnumpy() * 3, True), ("_div_scalar", x.asnumpy() / 3, True),
                              ("_plus_scalar", x.asnumpy() + 3, False), ("_minus_scalar", x.asnumpy() - 3, False),
                              ("_rminus_scalar", 3 - x.asnumpy(), False), ("_power_scalar", x.asnumpy() ** 3, False)]:
        out = getattr(internal, name)(x, scalar=3.0)
        np.testing.assert_allclose(out.asnumpy(), want)
        assert (out.stype == stype) == keeps
    assert mx.nd._internal._plus_scalar(x, scalar=0.0).stype == stype


def test_rdiv_and_power_scalar_fall_back_with_one_warning():
    x = mx.nd.array([[1.0, 2.0]]).tostype("csr")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StorageFallbackWarning)
        mx.set_strict_stypes(False)
        out = 4 / x
    assert out.stype == "default"
    np.testing.assert_allclose(out.asnumpy(), [[4.0, 2.0]])
    assert all(issubclass(w.category, StorageFallbackWarning) for w in caught)


# -- comparisons and ** with arrays ------------------------------------------------------------

@pytest.mark.parametrize("stype", STYPES)
def test_comparisons_follow_mxnet_result_stypes(stype):
    shape = (3, 4)
    x = mx.nd.zeros(shape, stype=stype)
    y = ones(shape, stype)
    zeros_, ones_ = np.zeros(shape), np.ones(shape)
    cases = [
        (x == y, zeros_, None), (0 == y, zeros_, "default"), (1 == y, ones_, stype),
        (x != y, ones_, None), (0 != y, ones_, stype), (1 != y, zeros_, "default"),
        (x > y, zeros_, None), (y > 0, ones_, stype), (0 > y, zeros_, stype), (y > 1, zeros_, stype),
        (x >= y, zeros_, None), (y >= 0, ones_, "default"), (0 >= y, zeros_, "default"), (y >= 1, ones_, stype),
        (x < y, ones_, None), (y < 0, zeros_, stype), (0 < y, ones_, stype), (y < 1, zeros_, "default"),
        (x <= y, ones_, None), (y <= 0, zeros_, "default"), (0 <= y, ones_, "default"), (y <= 1, ones_, "default"),
    ]
    for got, want, want_stype in cases:
        np.testing.assert_array_equal(got.asnumpy(), want)
        assert got.dtype == np.float32
        if want_stype is not None:
            assert got.stype == want_stype


def test_dense_comparisons_broadcast_and_numpy_operands():
    a = mx.nd.array([[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal((a > mx.nd.array([[2, 2, 2]])).asnumpy(), [[0, 0, 1], [1, 1, 1]])
    np.testing.assert_array_equal((a == np.array([[1, 0, 3], [0, 5, 0]])).asnumpy(), [[1, 0, 1], [0, 1, 0]])
    assert (a == None) is False  # noqa: E711  (not an array: Python's default, as MXNet)


@pytest.mark.parametrize("stype", STYPES)
def test_power_with_arrays_and_scalars(stype):
    shape = (2, 3)
    x = mx.nd.zeros(shape, stype=stype)
    y = ones(shape, stype)
    np.testing.assert_array_equal((x ** 2).asnumpy(), np.zeros(shape))
    np.testing.assert_array_equal((y ** 2).asnumpy(), np.ones(shape))
    np.testing.assert_array_equal((2 ** y).asnumpy(), np.full(shape, 2.0))
    np.testing.assert_array_equal((y ** y).asnumpy(), np.ones(shape))
    b = mx.nd.array([[2, 3, 0]])
    np.testing.assert_array_equal((mx.nd.full(shape, 2) ** b).asnumpy(), np.broadcast_to([[4, 8, 1]], shape))


# -- operator arguments --------------------------------------------------------------------------

@pytest.mark.parametrize("forward_stype", ["default", "csr", "row_sparse"])
@pytest.mark.parametrize("lhs_stype", ["default", "csr"])
@pytest.mark.parametrize("transpose_a", [False, True])
def test_dot_forward_stype(forward_stype, lhs_stype, transpose_a):
    lhs = mx.nd.array([[1, 0, 2], [0, 0, 3]]).tostype(lhs_stype)
    rhs = mx.nd.array(np.arange(4 if transpose_a else 6, dtype=np.float32).reshape(-1, 2))
    out = mx.nd.dot(lhs, rhs, transpose_a=transpose_a, forward_stype=forward_stype)
    a = lhs.asnumpy().T if transpose_a else lhs.asnumpy()
    assert out.stype == forward_stype
    np.testing.assert_allclose(out.asnumpy(), a @ rhs.asnumpy())
    with pytest.raises(mx.StorageTypeError):
        mx.nd.dot(lhs, rhs, transpose_a=transpose_a, forward_stype="dense")


def test_dot_stype_rules():
    csr = mx.nd.array([[1, 0, 2], [0, 0, 3]]).tostype("csr")
    dense = mx.nd.array(np.arange(6, dtype=np.float32).reshape(3, 2))
    left = mx.nd.array(np.arange(4, dtype=np.float32).reshape(2, 2))
    cases = [
        (mx.nd.dot(csr, dense), "default", csr.asnumpy() @ dense.asnumpy()),
        (mx.nd.dot(csr, dense.tostype("row_sparse")), "default", csr.asnumpy() @ dense.asnumpy()),
        (mx.nd.dot(csr, left, transpose_a=True), "row_sparse", csr.asnumpy().T @ left.asnumpy()),
        (mx.nd.dot(left, csr), "default", left.asnumpy() @ csr.asnumpy()),  # fallback (README: differences)
        (mx.nd.dot(left, csr, forward_stype="csr"), "csr", left.asnumpy() @ csr.asnumpy()),
    ]
    for out, stype, want in cases:
        assert out.stype == stype
        np.testing.assert_allclose(out.asnumpy(), want)


def test_out_argument_on_nd_functions():
    a, b = mx.nd.array([[1, 2]]), mx.nd.array([[3, 4]])
    out = mx.nd.zeros((1, 2))
    ret = mx.nd.elemwise_add(a, b, out=out)
    assert ret is out
    np.testing.assert_array_equal(out.asnumpy(), [[4, 6]])
    rsp_out = mx.nd.zeros((1, 2), stype="row_sparse")
    mx.nd.sparse.elemwise_add(a.tostype("row_sparse"), b.tostype("row_sparse"), out=rsp_out)
    assert rsp_out.stype == "row_sparse"
    np.testing.assert_array_equal(rsp_out.asnumpy(), [[4, 6]])


def test_slice_with_step():
    dense = np.arange(24, dtype=np.float32).reshape(4, 6)
    x = mx.nd.array(dense)
    np.testing.assert_array_equal(mx.nd.slice(x, begin=(0, 1), end=(4, 6), step=(2, 2)).asnumpy(), dense[0:4:2, 1:6:2])
    np.testing.assert_array_equal(mx.nd.slice(x, begin=(3,), end=(None,), step=(-1,)).asnumpy(), dense[::-1])
    np.testing.assert_array_equal(mx.nd.slice(x, begin=(None, 4), end=(None, 0), step=(None, -2)).asnumpy(),
                                  dense[:, 4:0:-2])
    c = x.tostype("csr")
    rows = mx.nd.slice(c, begin=(1,), end=(3,), step=(1,))
    assert rows.stype == "csr"
    np.testing.assert_array_equal(rows.asnumpy(), dense[1:3])
    stepped = mx.nd.slice(c, begin=(0,), end=(4,), step=(2,))  # not contiguous rows: dense fallback
    np.testing.assert_array_equal(stepped.asnumpy(), dense[0:4:2])
    with pytest.raises(ValueError):
        mx.nd.slice(x, begin=(0,), end=(2,), step=(0,))
    with pytest.raises(ValueError):
        mx.nd.slice(x, begin=(0,), end=(9,))


@pytest.mark.parametrize("stype", ["default", "csr"])
@pytest.mark.parametrize("op", ["sum", "mean"])
def test_sum_mean_exclude(stype, op):
    dense = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = mx.nd.array(dense).tostype(stype)
    f = getattr(mx.nd, op)
    ref = getattr(np, op)
    np.testing.assert_allclose(f(x, axis=1, exclude=True).asnumpy(), ref(dense, axis=0))
    np.testing.assert_allclose(f(x, axis=0, exclude=True, keepdims=True).asnumpy(), ref(dense, axis=1, keepdims=True))
    np.testing.assert_allclose(f(x, axis=(0, 1), exclude=True).asnumpy(), dense)
    assert f(x, axis=1).stype == "default"
    x3 = mx.nd.array(np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    np.testing.assert_allclose(f(x3, axis=1, exclude=True).asnumpy(), ref(x3.asnumpy(), axis=(0, 2)))


# -- item 4: operators of MXNet's sparse models -------------------------------------------------

def test_broadcast_to():
    x = mx.nd.array([[1], [2]])
    np.testing.assert_array_equal(mx.nd.broadcast_to(x, shape=(2, 3)).asnumpy(), [[1, 1, 1], [2, 2, 2]])
    np.testing.assert_array_equal(mx.nd.broadcast_to(x, shape=(0, 2)).asnumpy(), [[1, 1], [2, 2]])
    with pytest.raises(ValueError):
        mx.nd.broadcast_to(x, shape=(3, 3))


@pytest.mark.parametrize("stype", ("default",) + STYPES)
def test_norm(stype):
    dense = np.array([[3, 0], [0, -4]], dtype=np.float32)
    x = mx.nd.array(dense).tostype(stype)
    out = mx.nd.norm(x)
    assert out.stype == "default" and out.shape == (1,)
    np.testing.assert_allclose(out.asnumpy(), [5.0])
    np.testing.assert_allclose(mx.nd.norm(x, ord=1).asnumpy(), [7.0])
    np.testing.assert_allclose(mx.nd.norm(mx.nd.array(dense), axis=1).asnumpy(), [3, 4])
    with pytest.raises(ValueError):
        mx.nd.norm(x, ord=3)


def test_sparse_retain():
    r = mx.nd.sparse.row_sparse_array(([[1, 2], [3, 4], [5, 6]], [0, 2, 4]), shape=(6, 2))
    kept = mx.nd.sparse.retain(r, mx.nd.array([4, 0, 1], dtype="int64"))
    assert kept.stype == "row_sparse"
    np.testing.assert_array_equal(kept.indices.asnumpy(), [0, 4])
    np.testing.assert_array_equal(kept.asnumpy(), r.asnumpy() * np.array([1, 0, 0, 0, 1, 0])[:, None])
    np.testing.assert_array_equal(r.retain(mx.nd.array([2])).indices.asnumpy(), [2])


def test_square_sum():
    r = mx.nd.sparse.row_sparse_array(([[1, 2], [3, 4]], [1, 3]), shape=(5, 2))
    dense = r.asnumpy()
    kept = mx.nd._internal._square_sum(r, axis=1, keepdims=True)
    assert kept.stype == "row_sparse" and kept.shape == (5, 1)
    np.testing.assert_array_equal(kept.asnumpy(), (dense ** 2).sum(axis=1, keepdims=True))
    for kwargs in ({"axis": 0}, {"axis": 1}, {"axis": 0, "keepdims": True}):
        out = mx.nd._internal._square_sum(r, **kwargs)
        assert out.stype == "default"
        np.testing.assert_array_equal(out.asnumpy(), (dense ** 2).sum(**kwargs))
    np.testing.assert_array_equal(mx.nd._internal._square_sum(mx.nd.array(dense), axis=1).asnumpy(),
                                  (dense ** 2).sum(axis=1))


@pytest.mark.parametrize("fn", ["uniform", "normal", "gamma"])
@pytest.mark.parametrize("stype", STYPES)
def test_random_into_sparse_out(fn, stype):
    shape = (20, 10)
    dense_out, sparse_out = mx.nd.zeros(shape), mx.nd.zeros(shape, stype=stype)
    mx.random.seed(0)
    getattr(mx.nd.random, fn)(shape=shape, out=dense_out)
    mx.random.seed(0)
    ret = getattr(mx.nd.random, fn)(shape=shape, out=sparse_out)
    assert ret is sparse_out and sparse_out.stype == stype
    np.testing.assert_allclose(sparse_out.asnumpy(), dense_out.asnumpy())
    assert getattr(mx.random, fn)(shape=(2, 3)).shape == (2, 3)


def test_getnnz():
    c = mx.nd.sparse.csr_matrix(([1.0, 2.0, 3.0], [0, 2, 2], [0, 2, 2, 3]), shape=(3, 3))
    assert mx.nd.contrib.getnnz(c).asnumpy().tolist() == [3]
    assert mx.nd.contrib.getnnz(c, axis=1).asnumpy().tolist() == [2, 0, 1]
    assert mx.nd.contrib.getnnz(c, axis=0).asnumpy().tolist() == [1, 0, 2]
    assert mx.nd.contrib.getnnz(c).dtype == np.int64
    with pytest.raises(ValueError):
        mx.nd.contrib.getnnz(c, axis=2)


def test_fully_connected_csr_equals_dense():
    rng = np.random.default_rng(0)
    data = mx.test_utils.rand_ndarray((6, 8), "csr", density=0.3)
    weight, bias = mx.nd.array(rng.normal(size=(4, 8))), mx.nd.array(rng.normal(size=4))
    out = mx.nd.FullyConnected(data, weight, bias, num_hidden=4)
    assert out.stype == "default"
    np.testing.assert_allclose(out.asnumpy(), data.asnumpy() @ weight.asnumpy().T + bias.asnumpy(), rtol=1e-5)
    no_bias = mx.nd.FullyConnected(data, weight, num_hidden=4, no_bias=True)
    np.testing.assert_allclose(no_bias.asnumpy(), data.asnumpy() @ weight.asnumpy().T, rtol=1e-5)
    with pytest.raises(TypeError, match="bias"):
        mx.nd.FullyConnected(data, weight, bias, num_hidden=4, no_bias=True)
    with pytest.raises(ValueError):
        mx.nd.FullyConnected(data, weight, bias, num_hidden=5)


def test_sparse_embedding_with_row_sparse_weight():
    weight = mx.nd.sparse.row_sparse_array(([[1, 2], [3, 4]], [1, 3]), shape=(5, 2))
    idx = mx.nd.array([[3, 0], [1, 1]])
    for fn in (mx.nd.contrib.SparseEmbedding, mx.nd.Embedding):
        out = fn(idx, weight, input_dim=5, output_dim=2)
        np.testing.assert_array_equal(out.asnumpy(), weight.asnumpy()[idx.asnumpy().astype(int)])


@pytest.mark.parametrize("stype", ("default",) + STYPES)
def test_rounding_ops_follow_mxnet_and_keep_stype(stype):
    x = mx.nd.array([[-1.5, 1.5, -1.9], [1.9, 2.1, 0.0], [2.5, -2.5, 0.4]]).tostype(stype)
    want = {
        "round": [[-2, 2, -2], [2, 2, 0], [3, -3, 0]],  # n.5 away from zero
        "rint": [[-2, 1, -2], [2, 2, 0], [2, -3, 0]],  # n.5 -> n
        "ceil": np.ceil(x.asnumpy()), "floor": np.floor(x.asnumpy()),
        "trunc": np.trunc(x.asnumpy()), "fix": np.fix(x.asnumpy()),
    }
    for name, expected in want.items():
        out = getattr(mx.nd, name)(x)
        assert out.stype == stype
        np.testing.assert_array_equal(out.asnumpy(), expected)
