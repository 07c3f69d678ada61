"""Storage types: constructors, conversions, assignment, reprs, buffers, arithmetic."""
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sparsetrain as mx
from sparsetrain import nd
from sparsetrain.base import ShapeError, StorageTypeError

STYPES = ("default", "csr", "row_sparse")
CLASSES = {"default": nd.NDArray, "csr": nd.CSRNDArray, "row_sparse": nd.RowSparseNDArray}
DENSE = np.array([[0.0, 1.5, 0.0], [0.0, 0.0, 0.0], [2.0, 0.0, -3.0]], dtype=np.float32)


def make(x, stype, dtype=None):
    return nd.array(x, dtype=dtype).tostype(stype)


# -- constructors ----------------------------------------------------------------------------

def test_float32_by_default():
    assert nd.array([[1, 2]]).dtype == np.float32
    assert nd.array(np.ones((2, 2), dtype=np.float64)).dtype == np.float32  # MXNet's rule
    assert nd.zeros((2, 2)).dtype == np.float32
    assert nd.ones((2, 2)).dtype == np.float32
    assert nd.arange(3).dtype == np.float32
    for stype in STYPES:
        assert nd.zeros((2, 2), stype=stype).dtype == np.float32
        assert nd.ones((2, 2), stype=stype).dtype == np.float32
    assert nd.sparse.csr_matrix(([1, 2], [0, 1], [0, 1, 2]), shape=(2, 2)).dtype == np.float32
    assert nd.sparse.csr_matrix(([1.0, 2.0], [0, 1], [0, 1, 2]), shape=(2, 2)).dtype == np.float32
    assert nd.sparse.row_sparse_array(([[1, 2]], [1]), shape=(2, 2)).dtype == np.float32
    assert nd.sparse.zeros("csr", (2, 3)).dtype == np.float32


def test_float64_on_request():
    for stype in STYPES:
        assert nd.zeros((2, 2), stype=stype, dtype="float64").dtype == np.float64
        assert make(DENSE, stype, dtype=np.float64).dtype == np.float64
    data = np.array([1.0, 2.0])  # an explicit float64 numpy array keeps its dtype
    assert nd.sparse.csr_matrix((data, [0, 1], [0, 1, 2]), shape=(2, 2)).dtype == np.float64


@pytest.mark.parametrize("stype", STYPES)
def test_zeros_and_ones(stype):
    z = nd.zeros((3, 4), stype=stype)
    assert isinstance(z, CLASSES[stype]) and z.stype == stype and z.shape == (3, 4)
    np.testing.assert_array_equal(z.asnumpy(), np.zeros((3, 4)))
    o = nd.ones((3, 4), stype=stype)
    assert o.stype == stype
    np.testing.assert_array_equal(o.asnumpy(), np.ones((3, 4)))


def test_sparse_zeros_are_empty():
    assert nd.zeros((5, 7), stype="csr").nnz == 0
    assert len(nd.zeros((5, 7), stype="row_sparse").indices.asnumpy()) == 0
    assert nd.sparse.zeros("row_sparse", (5, 7)).data.shape == (0, 7)


def test_arange_and_ctx():
    np.testing.assert_array_equal(nd.arange(1, 4).asnumpy(), [1, 2, 3])
    a = nd.array([1, 2], ctx=mx.cpu())
    assert a.context == mx.cpu() and repr(mx.cpu()) == "cpu(0)"
    assert nd.zeros((2,), ctx=mx.cpu(0)).shape == (2,)


def test_csr_matrix_constructors():
    x = nd.sparse.csr_matrix(([1.0, 2.0, 3.0], [1, 0, 2], [0, 1, 1, 3]), shape=(3, 3))
    np.testing.assert_array_equal(x.asnumpy(), [[0, 1, 0], [0, 0, 0], [2, 0, 3]])
    np.testing.assert_array_equal(x.data.asnumpy(), [1, 2, 3])
    np.testing.assert_array_equal(x.indices.asnumpy(), [1, 0, 2])
    np.testing.assert_array_equal(x.indptr.asnumpy(), [0, 1, 1, 3])
    assert x.indices.dtype == np.int64 and x.indptr.dtype == np.int64
    from_scipy = nd.sparse.csr_matrix(sp.csr_matrix(DENSE))
    np.testing.assert_array_equal(from_scipy.asnumpy(), DENSE)
    np.testing.assert_array_equal(nd.sparse.csr_matrix(DENSE).asnumpy(), DENSE)
    assert nd.sparse.csr_matrix((2, 3)).shape == (2, 3)
    with pytest.raises(ShapeError, match="inconsistent csr"):
        nd.sparse.csr_matrix(([1.0], [0, 1], [0, 1]), shape=(1, 2))


def test_row_sparse_array_constructors():
    x = nd.sparse.row_sparse_array(([[1.0, 2.0], [3.0, 4.0]], [0, 2]), shape=(4, 2))
    np.testing.assert_array_equal(x.asnumpy(), [[1, 2], [0, 0], [3, 4], [0, 0]])
    np.testing.assert_array_equal(x.indices.asnumpy(), [0, 2])
    assert x.indices.dtype == np.int64
    # unsorted indices are sorted together with their rows
    y = nd.sparse.row_sparse_array(([[3.0, 4.0], [1.0, 2.0]], [2, 0]), shape=(4, 2))
    np.testing.assert_array_equal(y.asnumpy(), x.asnumpy())
    np.testing.assert_array_equal(y.indices.asnumpy(), [0, 2])
    with pytest.raises(ShapeError, match="unique"):
        nd.sparse.row_sparse_array(([[1.0, 2.0], [3.0, 4.0]], [1, 1]), shape=(4, 2))
    with pytest.raises(ShapeError):
        nd.sparse.row_sparse_array(([[1.0, 2.0]], [7]), shape=(4, 2))
    assert nd.sparse.row_sparse_array((3, 2)).shape == (3, 2)


def test_unknown_stype_is_a_clear_error():
    with pytest.raises(StorageTypeError, match="'csc'.*'default', 'csr', 'row_sparse'"):
        nd.zeros((2, 2), stype="csc")
    with pytest.raises(StorageTypeError, match="dense"):
        nd.ones((2, 2)).tostype("dense")


# -- conversions -----------------------------------------------------------------------------

@pytest.mark.parametrize("src", STYPES)
@pytest.mark.parametrize("dst", STYPES)
def test_conversion_round_trips(src, dst):
    x = make(DENSE, src)
    y = x.tostype(dst)
    assert y.stype == dst and isinstance(y, CLASSES[dst])
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.asnumpy(), DENSE)
    np.testing.assert_array_equal(y.tostype(src).asnumpy(), DENSE)
    np.testing.assert_array_equal(nd.cast_storage(x, stype=dst).asnumpy(), DENSE)
    np.testing.assert_array_equal(nd.cast_storage(x, dst).asnumpy(), DENSE)  # positional, as MXNet


def test_sparse_structure_after_conversion():
    csr = make(DENSE, "csr")
    assert csr.nnz == 3
    np.testing.assert_array_equal(csr.indptr.asnumpy(), [0, 1, 1, 3])
    rsp = make(DENSE, "row_sparse")
    np.testing.assert_array_equal(rsp.indices.asnumpy(), [0, 2])
    assert rsp.data.shape == (2, 3)
    np.testing.assert_array_equal(csr.tostype("row_sparse").indices.asnumpy(), [0, 2])


def test_asscipy():
    m = make(DENSE, "csr").asscipy()
    assert sp.issparse(m) and m.format == "csr"
    np.testing.assert_array_equal(m.toarray(), DENSE)


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                  elements=st.sampled_from([0.0, 0.0, 0.0, 1.0, -2.5, 3.25])),
       st.sampled_from(STYPES), st.sampled_from(STYPES))
def test_conversion_property(x, src, dst):
    a = make(x, src)
    b = a.tostype(dst)
    np.testing.assert_array_equal(b.asnumpy(), x)
    if dst == "csr":
        np.testing.assert_array_equal(b.asscipy().toarray(), x)
        assert np.all(np.diff(b.indptr.asnumpy()) >= 0)
    if dst == "row_sparse":
        idx = b.indices.asnumpy()
        assert np.all(np.diff(idx) > 0)
        assert set(idx) == set(np.flatnonzero(x.any(axis=1))) or src == "csr"


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=5),
                  elements=st.floats(-5, 5, width=64)), st.sampled_from(STYPES))
def test_float64_round_trip_is_exact(x, stype):
    a = nd.array(x, dtype=np.float64).tostype(stype)
    assert a.dtype == np.float64
    np.testing.assert_array_equal(a.tostype("default").asnumpy(), x)


# -- assignment ------------------------------------------------------------------------------

@pytest.mark.parametrize("dst", STYPES)
@pytest.mark.parametrize("src", STYPES)
def test_assign_every_stype_pair(dst, src):
    target = nd.zeros((3, 3), stype=dst)
    target[:] = make(DENSE, src)
    assert target.stype == dst
    np.testing.assert_array_equal(target.asnumpy(), DENSE)


@pytest.mark.parametrize("dst", STYPES)
def test_assign_scalars_and_numpy(dst):
    target = nd.zeros((2, 2), stype=dst)
    target[:] = 2
    np.testing.assert_array_equal(target.asnumpy(), np.full((2, 2), 2.0))
    target[:] = 0.0
    np.testing.assert_array_equal(target.asnumpy(), np.zeros((2, 2)))
    target[:] = np.array([[1.0, 0.0], [0.0, 4.0]])
    np.testing.assert_array_equal(target.asnumpy(), [[1, 0], [0, 4]])
    assert target.stype == dst and target.dtype == np.float32


@pytest.mark.parametrize("dst", STYPES)
@pytest.mark.parametrize("src", STYPES + ("numpy",))
def test_assign_wrong_shape_is_a_clear_error(dst, src):
    target = nd.zeros((2, 2), stype=dst)
    value = np.ones((3, 3)) if src == "numpy" else nd.ones((3, 3), stype=src)
    with pytest.raises(ShapeError, match=r"\(3, 3\).*\(2, 2\)"):
        target[:] = value


def test_assignment_keeps_identity_and_copies():
    target = nd.zeros((3, 3), stype="csr")
    source = make(DENSE, "csr")
    ident = id(target)
    target[:] = source
    assert id(target) == ident
    source._data[:] = 99  # mutate the source: the target holds its own copy
    np.testing.assert_array_equal(target.asnumpy(), DENSE)


def test_dense_partial_assignment():
    a = nd.zeros((2, 3))
    a[1] = 5
    a[0, 1:] = nd.array([1, 2])
    np.testing.assert_array_equal(a.asnumpy(), [[0, 1, 2], [5, 5, 5]])


def test_sparse_partial_assignment_is_rejected():
    with pytest.raises(IndexError, match="whole array"):
        nd.zeros((2, 2), stype="csr")[0:1] = 1


# -- reprs, copy, reshape, slicing -------------------------------------------------------------

def test_reprs():
    assert repr(nd.zeros((2, 2), stype="csr")) == "\n<CSRNDArray 2x2 @cpu(0)>"
    assert repr(nd.zeros((2, 2), stype="row_sparse")) == "\n<RowSparseNDArray 2x2 @cpu(0)>"
    assert repr(nd.zeros((2, 2))) == "\n[[0. 0.]\n [0. 0.]]\n<NDArray 2x2 @cpu(0)>"
    assert repr(nd.zeros((3,))).endswith("<NDArray 3 @cpu(0)>")
    assert repr([nd.zeros((2, 2), stype="csr")]) == "[\n<CSRNDArray 2x2 @cpu(0)>]"


@pytest.mark.parametrize("stype", STYPES)
def test_copy_is_independent(stype):
    a = make(DENSE, stype)
    b = a.copy()
    assert b.stype == stype and b is not a
    b[:] = 7
    np.testing.assert_array_equal(a.asnumpy(), DENSE)
    c = a.copyto(nd.zeros((3, 3), stype="default"))
    np.testing.assert_array_equal(c.asnumpy(), DENSE)


def test_reshape():
    a = nd.arange(6)
    assert a.reshape((2, 3)).shape == (2, 3)
    assert a.reshape(3, 2).shape == (3, 2)
    assert a.reshape(shape=(6, 1)).shape == (6, 1)
    assert a.reshape((-1, 2)).shape == (3, 2)
    assert a.reshape((2, 3)).reshape((0, -1)).shape == (2, 3)  # MXNet: 0 copies the dimension
    assert a.reshape(np.int64(6)).shape == (6,)
    np.testing.assert_array_equal(a.reshape((2, 3)).asnumpy(), np.arange(6).reshape(2, 3))
    with pytest.raises(ShapeError, match=r"\(6,\).*\(4, 2\)"):
        a.reshape((4, 2))
    with pytest.raises(StorageTypeError, match="reshape"):
        nd.ones((2, 3), stype="csr").reshape((3, 2))


def test_csr_row_slicing():
    csr = make(DENSE, "csr")
    np.testing.assert_array_equal(csr[1:3].asnumpy(), DENSE[1:3])
    assert csr[1:3].stype == "csr"
    np.testing.assert_array_equal(csr[2].asnumpy(), DENSE[2:3])


# -- arithmetic ------------------------------------------------------------------------------

B = np.array([[1.0, 2.0, 0.0], [0.0, 3.0, 0.0], [4.0, 0.0, 5.0]], dtype=np.float32)


@pytest.mark.filterwarnings("ignore::sparsetrain.StorageFallbackWarning")
@pytest.mark.parametrize("stype", STYPES)
def test_arithmetic_operators(stype):
    a = make(DENSE, stype)
    b = nd.array(B)
    np.testing.assert_allclose((a + b).asnumpy(), DENSE + B)
    np.testing.assert_allclose((a - b).asnumpy(), DENSE - B)
    np.testing.assert_allclose((b - a).asnumpy(), B - DENSE)
    np.testing.assert_allclose((a * b).asnumpy(), DENSE * B)
    np.testing.assert_allclose((a * 2).asnumpy(), DENSE * 2)
    np.testing.assert_allclose((2 * a).asnumpy(), DENSE * 2)
    np.testing.assert_allclose((a / 2).asnumpy(), DENSE / 2)
    np.testing.assert_allclose((a + 1).asnumpy(), DENSE + 1)
    np.testing.assert_allclose((1 - a).asnumpy(), 1 - DENSE)
    np.testing.assert_allclose((-a).asnumpy(), -DENSE)
    np.testing.assert_allclose((b / (b + 1)).asnumpy(), B / (B + 1))
    np.testing.assert_allclose((1 / (b + 1)).asnumpy(), 1 / (B + 1))


@pytest.mark.parametrize("stype", ("csr", "row_sparse"))
def test_scaling_keeps_sparse_stype(stype):
    a = make(DENSE, stype)
    assert (a * 2).stype == stype
    assert (2 * a).stype == stype  # multiplication commutes: scalar * sparse stays sparse
    assert (a / 2).stype == stype
    assert (-a).stype == stype
    assert (a + a).stype == stype


def test_broadcasting_operators():
    a = nd.array(B)
    row = nd.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose((a + row).asnumpy(), B + [[1, 2, 3]])
    np.testing.assert_allclose((a * row).asnumpy(), B * [[1, 2, 3]])


def test_in_place_operators_keep_identity():
    a = nd.ones((2, 2))
    ident = id(a)
    a += 1
    a *= 3
    a -= 1
    a /= 5
    assert id(a) == ident
    np.testing.assert_allclose(a.asnumpy(), np.ones((2, 2)))


def test_row_sparse_indexing_is_whole_array_only():
    x = nd.ones((3, 2), stype="row_sparse")
    assert x[:] is x
    with pytest.raises(IndexError, match=r"whole array x\[:\] as an index"):
        x[1]


# -- a row-sparse array holding every row keeps no row ids -----------------------------------

def _full_rsp(rows=5, cols=2):
    return nd.RowSparseNDArray(np.arange(rows * cols, dtype=np.float32).reshape(rows, cols), None, (rows, cols))


def test_a_full_row_sparse_array_makes_its_ids_only_when_read(tmp_path):
    from sparsetrain.params_file import load_params, save_params

    a = _full_rsp()
    assert a._every_row and a._ids is None
    np.testing.assert_array_equal(a.asnumpy(), a._data)
    b = a.copy()
    a.check_format()
    (tmp_path / "p").mkdir()
    save_params(str(tmp_path / "p" / "x.params"), {"w": a})
    assert a._ids is None and b._ids is None  # neither the copy, the check nor the checkpoint made ids
    assert load_params(str(tmp_path / "p" / "x.params"))[0]["w"]._ids is None
    np.testing.assert_array_equal(a._indices, np.arange(5))  # made on first read, int64, kept
    assert a._indices.dtype == np.int64 and a._indices is a._indices
    np.testing.assert_array_equal(a.retain(nd.array([1, 3])).asnumpy(), b.retain(nd.array([1, 3])).asnumpy())
    with pytest.raises(nd.sparse.SparseFormatError, match="every row"):
        nd.RowSparseNDArray(np.zeros((4, 2), np.float32), None, (5, 2)).check_format(full_check=False)


def test_initialised_row_sparse_weight_has_no_ids_until_read():
    from sparsetrain import initializer

    for init in (initializer.Zero(), initializer.Uniform(0.1)):
        w = nd.zeros((6, 3), stype="row_sparse")
        init(initializer.InitDesc("w_weight"), w)
        assert w._ids is None and w._data.shape == (6, 3) and w._every_row
        assert (w.asnumpy() == 0).all() == isinstance(init, initializer.Zero)


def test_a_compiled_streamed_fit_never_makes_a_full_weights_ids(tmp_path, monkeypatch):
    """Train, checkpoint: nothing reads the row ids of the weight (every row), so none are made."""
    from sparsetrain.config import config_from_dict
    from sparsetrain.module import Module
    from sparsetrain.trainer import train

    made = []
    prop = nd.RowSparseNDArray._indices

    def read(self):
        if self._ids is None:
            made.append(self.shape)
        return prop.fget(self)

    monkeypatch.setattr(nd.RowSparseNDArray, "_indices", property(read, prop.fset))
    modules, init_params = [], Module.init_params
    monkeypatch.setattr(Module, "init_params", lambda self, *a, **k: (modules.append(self), init_params(self, *a, **k)))
    rng = np.random.default_rng(0)
    rows = [f"{int(c < 3)}\t{c}" for c in rng.integers(0, 6, 200)]
    (tmp_path / "d.tsv").write_text("\n".join(rows) + "\n")
    doc = {"data": {"train": "d.tsv", "format": "csv", "csv": {"columns": ["y", "c"]}, "label": "y",
                    "categorical": ["c"], "hash_bits": 6, "batch_size": 1, "cache": "stream"},
           "model": {"variables": {"data": {"stype": "csr"}, "label": {},
                                   "weight": {"stype": "row_sparse", "shape": [64, 1], "init": "zero"},
                                   "bias": {"shape": [1]}},
                     "ops": [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]},
                             {"name": "pred", "op": "broadcast_add", "inputs": ["dot", "bias"]}],
                     "loss": {"name": "out", "op": "LogisticRegressionOutput", "data": "pred", "label": "label"}},
           "optimizer": {"name": "adagrad", "learning_rate": 0.1},
           "train": {"epochs": 1, "metrics": ["log_loss"], "engine": "compiled"}}
    result = train(config_from_dict(doc, source=str(tmp_path / "c.yaml")), output_dir=str(tmp_path / "run"))
    assert result.engine == "compiled" and result.final["log_loss"] < 0.6
    weight = modules[0]._arg_params["weight"]
    assert made == [] and weight._ids is None and weight.asnumpy().any()  # trained, still without ids
