"""Every op of SPEC §2.2 for every stype combination of its table row.

Each case checks (1) the registry's storage-type decision (output stype + dispatch
``sparse``/``dense``/``fallback``), (2) ``sparsetrain.nd.<op>`` against the dense numpy
computation, and (3) the same op through a bound symbol (value, output stype and the plan's
dispatch for the node).
"""
import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain import nd
from sparsetrain.ops import registry
from sparsetrain.ops.registry import infer_storage

pytestmark = pytest.mark.filterwarnings("ignore::sparsetrain.StorageFallbackWarning")

D, CSR, RSP = "default", "csr", "row_sparse"
SPARSE, DENSE, FALLBACK = "sparse", "dense", "fallback"



def _matrix(shape, positive=False, seed=0):
    r = np.random.default_rng(seed)
    x = r.uniform(0.5, 2.0, size=shape) * (1 if positive else r.choice([-1, 1], size=shape))
    x[r.random(shape) < 0.5] = 0.0  # scattered zeros
    if shape[0] > 2:
        x[1] = 0.0  # an all-zero row, so row_sparse stores fewer rows than there are
    return x.astype(np.float32)


A = _matrix((4, 5), seed=1)
B = _matrix((4, 5), seed=2)
C = _matrix((4, 5), seed=3)
POS = _matrix((4, 5), positive=True, seed=4)
W = _matrix((5, 3), seed=5)
WT = _matrix((4, 3), seed=6)  # for csrᵀ · dense: (4,5)ᵀ · (4,3)
ROW = np.array([[1.5, -2.0, 0.5, 3.0, 1.0]], dtype=np.float32)
COL = np.array([[2.0], [-1.0], [0.5], [4.0]], dtype=np.float32)
VEC = np.array([1.5, -2.0, 0.5, 3.0, 1.0], dtype=np.float32)


class Case:
    def __init__(self, op, stypes, arrays, ref, out_stype, dispatch, params=None, id=None):
        self.op, self.stypes, self.arrays, self.ref = op, tuple(stypes), arrays, ref
        self.out_stype, self.dispatch, self.params = out_stype, dispatch, params or {}
        self.id = id or f"{op}-{'-'.join(stypes)}" + "".join(f"-{k}={v}" for k, v in self.params.items())


CASES = []

# elemwise_add / elemwise_sub
for name, f in (("elemwise_add", np.add), ("elemwise_sub", np.subtract)):
    for stypes, out, disp in [
        ((D, D), D, DENSE), ((CSR, CSR), CSR, SPARSE), ((RSP, RSP), RSP, SPARSE),
        ((D, CSR), D, SPARSE), ((CSR, D), D, SPARSE), ((D, RSP), D, SPARSE), ((RSP, D), D, SPARSE),
        ((CSR, RSP), D, FALLBACK), ((RSP, CSR), D, FALLBACK),
    ]:
        CASES.append(Case(name, stypes, [A, B], f, out, disp))

# elemwise_mul
for stypes, out, disp in [
    ((D, D), D, DENSE), ((CSR, CSR), CSR, SPARSE), ((RSP, RSP), RSP, SPARSE),
    ((CSR, D), CSR, SPARSE), ((D, CSR), CSR, SPARSE), ((RSP, D), RSP, SPARSE), ((D, RSP), RSP, SPARSE),
    ((CSR, RSP), D, FALLBACK),
]:
    CASES.append(Case("elemwise_mul", stypes, [A, B], np.multiply, out, disp))

# unary with f(0) == 0: same stype as the input
ZERO_PRESERVING = {
    "negative": (np.negative, A), "abs": (np.abs, A), "sign": (np.sign, A), "square": (np.square, A),
    "sqrt": (np.sqrt, POS), "relu": (lambda x: np.maximum(x, 0), A), "_copy": (np.copy, A),
}
for name, (f, x) in ZERO_PRESERVING.items():
    for s, disp in ((D, DENSE), (CSR, SPARSE), (RSP, SPARSE)):
        CASES.append(Case(name, (s,), [x], f, s, disp))

# unary with f(0) != 0: sparse input falls back to dense
NOT_ZERO_PRESERVING = {"log": (np.log, POS), "exp": (np.exp, A), "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), A)}
for name, (f, x) in NOT_ZERO_PRESERVING.items():
    for s, disp in ((D, DENSE), (CSR, FALLBACK), (RSP, FALLBACK)):
        CASES.append(Case(name, (s,), [x], f, D, disp))

# dot
for stypes, arrays, params, ref, out, disp in [
    ((D, D), [A, W], {}, lambda a, b: a @ b, D, DENSE),
    ((CSR, D), [A, W], {}, lambda a, b: a @ b, D, SPARSE),
    ((CSR, RSP), [A, W], {}, lambda a, b: a @ b, D, SPARSE),
    ((CSR, D), [A, WT], {"transpose_a": True}, lambda a, b: a.T @ b, RSP, SPARSE),
    ((D, D), [A, WT], {"transpose_a": True}, lambda a, b: a.T @ b, D, DENSE),
    ((D, CSR), [A, W], {}, lambda a, b: a @ b, D, FALLBACK),
    ((RSP, D), [A, W], {}, lambda a, b: a @ b, D, FALLBACK),
    ((D, RSP), [A, W], {}, lambda a, b: a @ b, D, FALLBACK),
    ((CSR, CSR), [A, W], {}, lambda a, b: a @ b, D, FALLBACK),
    ((CSR, RSP), [A, WT], {"transpose_a": True}, lambda a, b: a.T @ b, D, FALLBACK),
    ((CSR, D), [A, W.T.copy()], {"transpose_b": True}, lambda a, b: a @ b.T, D, FALLBACK),
]:
    CASES.append(Case("dot", stypes, arrays, ref, out, disp, params))

# broadcast_*
BFUNCS = {"broadcast_add": np.add, "broadcast_sub": np.subtract, "broadcast_mul": np.multiply,
          "broadcast_div": np.divide}
for name, f in BFUNCS.items():
    for vec, tag in ((ROW, "row"), (COL, "col"), (VEC, "vec")):
        CASES.append(Case(name, (D, D), [A, vec], f, D, DENSE, id=f"{name}-d-d-{tag}"))
        if name in ("broadcast_mul", "broadcast_div"):
            CASES.append(Case(name, (CSR, D), [A, vec], f, CSR, SPARSE, id=f"{name}-csr-d-{tag}"))
        else:
            CASES.append(Case(name, (CSR, D), [A, vec], f, D, FALLBACK, id=f"{name}-csr-d-{tag}"))

# sum / mean
for name, f in (("sum", np.sum), ("mean", np.mean)):
    for axis in (None, 0, 1):
        ref = (lambda x, f=f, axis=axis: np.atleast_1d(f(x, axis=axis)))
        params = {} if axis is None else {"axis": axis}
        CASES.append(Case(name, (D,), [A], ref, D, DENSE, params))
        CASES.append(Case(name, (CSR,), [A], ref, D, SPARSE, params))
        CASES.append(Case(name, (RSP,), [A], ref, D, FALLBACK, params))
    CASES.append(Case(name, (CSR,), [A], lambda x, f=f: f(x, axis=1, keepdims=True), D, SPARSE,
                      {"axis": 1, "keepdims": True}))

# add_n
for stypes, out, disp in [
    ((RSP, RSP, RSP), RSP, SPARSE), ((RSP, RSP), RSP, SPARSE), ((D, D, D), D, DENSE),
    ((RSP, D, RSP), D, SPARSE), ((CSR, CSR), D, FALLBACK),
]:
    CASES.append(Case("add_n", stypes, [A, B, C][: len(stypes)], lambda *xs: np.sum(xs, axis=0), out, disp))

# cast_storage
for src in (D, CSR, RSP):
    for dst in (D, CSR, RSP):
        disp = DENSE if src == dst == D else SPARSE
        CASES.append(Case("cast_storage", (src,), [A], np.copy, dst, disp, {"stype": dst}))

# slice
CASES += [
    Case("slice", (CSR,), [A], lambda x: x[1:3], CSR, SPARSE, {"begin": (1,), "end": (3,)}),
    Case("slice", (CSR,), [A], lambda x: x[0:2], CSR, SPARSE, {"begin": (0, None), "end": (2, None)}),
    Case("slice", (D,), [A], lambda x: x[1:3, 2:4], D, DENSE, {"begin": (1, 2), "end": (3, 4)}),
    Case("slice", (CSR,), [A], lambda x: x[1:3, 2:4], D, FALLBACK, {"begin": (1, 2), "end": (3, 4)}),
]

# Embedding (forward; the sparse gradient is in test_gradients.py)
IDS = np.array([[0, 4], [2, 2]], dtype=np.float32)
CASES.append(Case("Embedding", (D, D), [IDS, W], lambda i, w: w[i.astype(int)], D, DENSE,
                  {"input_dim": 5, "output_dim": 3, "sparse_grad": True}))

# output layers: d -> d, forward is the prediction
LABEL = np.arange(4, dtype=np.float32).reshape(4, 1)
CASES += [
    Case("LinearRegressionOutput", (D, D), [COL, LABEL], lambda x, y: x, D, DENSE),
    Case("MAERegressionOutput", (D, D), [COL, LABEL], lambda x, y: x, D, DENSE),
    Case("LogisticRegressionOutput", (D, D), [COL, LABEL], lambda x, y: 1 / (1 + np.exp(-x)), D, DENSE),
    Case("SoftmaxOutput", (D, D), [A, np.array([0, 1, 4, 2], dtype=np.float32)],
         lambda x, y: np.exp(x) / np.exp(x).sum(axis=1, keepdims=True), D, DENSE),
]


def _arr(x, stype):
    return nd.array(x).tostype(stype)


def _expected(case):
    with np.errstate(divide="ignore", invalid="ignore"):
        return case.ref(*[x.astype(np.float64) for x in case.arrays])


def _check_value(out, case):
    np.testing.assert_allclose(out.asnumpy(), _expected(case), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_storage_inference_follows_the_table(case):
    op = registry.get(case.op)
    d = infer_storage(op, case.stypes, {**op.params, **case.params})
    assert d.out_stypes == (case.out_stype,)
    assert d.mode == case.dispatch


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_imperative_matches_numpy(case):
    fn = getattr(nd, case.op)
    inputs = [_arr(x, s) for x, s in zip(case.arrays, case.stypes)]
    before = [x.asnumpy().copy() for x in inputs]
    out = fn(*inputs, **case.params)
    assert out.stype == case.out_stype
    assert out.dtype == np.float32
    _check_value(out, case)
    for x, b in zip(inputs, before):  # inputs are never modified
        np.testing.assert_array_equal(x.asnumpy(), b)
    if case.op in ("elemwise_add", "elemwise_mul", "dot", "negative", "sum"):
        assert getattr(nd.sparse, case.op)(*inputs, **case.params).stype == case.out_stype


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bound_symbol_matches_numpy(case):
    names = [f"x{i}" for i in range(len(case.arrays))]
    variables = [mx.sym.var(n, stype=s) for n, s in zip(names, case.stypes)]
    sym = getattr(mx.sym.sparse, case.op)(*variables, **case.params)
    ex = sym.simple_bind(mx.cpu(), grad_req="null", **{n: x.shape for n, x in zip(names, case.arrays)})
    for n, x, s in zip(names, case.arrays, case.stypes):
        assert ex.arg_dict[n].stype == s
        ex.arg_dict[n][:] = _arr(x, s)
    for _ in range(2):  # the second forward reuses the plan and must give the same answer
        out = ex.forward()[0]
        assert out.stype == case.out_stype
        _check_value(out, case)
    node = sym._outputs[0][0]
    assert ex.plan.dispatch[node.uid].mode == case.dispatch
    assert sym.infer_storage_type()[1] == [case.out_stype]
    assert tuple(sym.infer_shape(**{n: x.shape for n, x in zip(names, case.arrays)})[1][0]) == \
        np.shape(_expected(case))


def test_every_public_op_of_the_table_is_covered():
    covered = {c.op for c in CASES}
    table = {"elemwise_add", "elemwise_sub", "elemwise_mul", "negative", "abs", "sign", "square", "sqrt",
             "relu", "_copy", "log", "exp", "sigmoid", "dot", "broadcast_add", "broadcast_sub",
             "broadcast_mul", "broadcast_div", "sum", "mean", "add_n", "cast_storage", "slice", "Embedding",
             "LinearRegressionOutput", "LogisticRegressionOutput", "MAERegressionOutput", "SoftmaxOutput"}
    assert table <= covered
    for name in table:
        assert hasattr(nd, name) and hasattr(nd.sparse, name)
        assert hasattr(mx.sym, name) and hasattr(mx.sym.sparse, name)


def test_rsp_results_have_sorted_unique_indices():
    a, b = _arr(A, RSP), _arr(B, RSP)
    for out in (nd.elemwise_add(a, b), nd.elemwise_sub(a, b), nd.elemwise_mul(a, b), nd.add_n(a, b, a)):
        idx = out.indices.asnumpy()
        assert idx.dtype == np.int64
        assert np.all(np.diff(idx) > 0)


def test_csr_times_dense_row_and_csr_dot_transpose_structure():
    csr = _arr(A, CSR)
    out = nd.broadcast_mul(csr, nd.array(ROW))
    np.testing.assert_array_equal(out.indices.asnumpy(), csr.indices.asnumpy())
    g = nd.dot(csr, nd.array(WT), transpose_a=True)
    assert g.stype == RSP
    np.testing.assert_array_equal(g.indices.asnumpy(), np.flatnonzero((A != 0).any(axis=0)))


def test_elemwise_div_dense():
    out = nd.elemwise_div(nd.array(A), nd.array(POS + 1))
    np.testing.assert_allclose(out.asnumpy(), A / (POS + 1), rtol=1e-6)


def test_float64_inputs_stay_float64():
    a = nd.array(A, dtype=np.float64).tostype(CSR)
    w = nd.array(W, dtype=np.float64)
    assert nd.dot(a, w).dtype == np.float64
    assert nd.elemwise_add(a, a).dtype == np.float64
    assert nd.sum(a).dtype == np.float64


def test_shape_errors_name_the_op():
    with pytest.raises(mx.ShapeError, match=r"dot.*\(2, 3\).*\(4, 1\)"):
        nd.dot(nd.ones((2, 3)), nd.ones((4, 1)))
    with pytest.raises(mx.ShapeError, match="elemwise_add"):
        nd.elemwise_add(nd.ones((2, 3)), nd.ones((3, 2)))
    with pytest.raises(mx.ShapeError, match="broadcast_add"):
        nd.broadcast_add(nd.ones((2, 3)), nd.ones((2, 2)))


def test_unknown_op_argument_has_a_hint():
    with pytest.raises(TypeError, match="did you mean 'transpose_[ab]'"):
        nd.dot(nd.ones((2, 2)), nd.ones((2, 2)), transpose_x=True)
    with pytest.raises(KeyError, match="did you mean"):
        registry.get("elemwise_ad")


# -- the numba kernels of sparse dot against their scipy/numpy reference ------------------------

def test_a_score_that_overflows_the_logistic_link_gives_0_without_a_warning():
    # predict of a row scoring -1e37 printed numpy's "RuntimeWarning: overflow encountered in exp" and its
    # source line on stderr; fit's eval set one "warning:" line
    import warnings

    x = np.array([[-1e37], [-100.0], [0.0], [100.0]], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = nd.LogisticRegressionOutput(nd.array(x), nd.zeros((4,))).asnumpy()
    np.testing.assert_array_equal(got[:, 0], [0.0, 0.0, 0.5, 1.0])  # (float32: exp(100) is inf)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from sparsetrain.kernels import sparse_dot  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 6), d=st.integers(1, 40), k=st.integers(1, 3), density=st.floats(0, 1),
       keep_rows=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_sparse_dot_kernels_match_reference(n, d, k, density, keep_rows, seed):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, d)) * (r.random((n, d)) < density)
    m = nd.sparse.csr_matrix(x, dtype=np.float64)
    m._data[: len(m._data) // 3] = 0.0  # explicit zeros still count as present columns
    data, indices, indptr = m._data, m._indices, m._indptr
    w = r.normal(size=(d, k))
    ref = sparse_dot.csr_dense_dot_reference(data, indices, indptr, w, d)
    np.testing.assert_allclose(sparse_dot.csr_dense_dot(data, indices, indptr, w), ref, atol=1e-12)
    rows = np.flatnonzero(r.random(d) < keep_rows).astype(np.int64)
    w_rsp = np.zeros_like(w)
    w_rsp[rows] = w[rows]
    np.testing.assert_allclose(sparse_dot.csr_rsp_dot(data, indices, indptr, np.ascontiguousarray(w[rows]), rows, d),
                               sparse_dot.csr_dense_dot_reference(data, indices, indptr, w_rsp, d), atol=1e-12)
    g = r.normal(size=(n, k))
    out_rows, values = sparse_dot.csr_t_dense_dot_rsp(data, indices, indptr, g, d)
    np.testing.assert_array_equal(out_rows, np.unique(indices))
    full = np.zeros((d, k))
    full[out_rows] = values
    np.testing.assert_allclose(full, m.asscipy().T @ g, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
@pytest.mark.parametrize("num_cols", [4, 1000])  # the dense-mask path and the np.unique path
def test_unique_columns_takes_int32_and_int64_indices(dtype, num_cols):
    from sparsetrain.kernels.sparse_dot import unique_columns

    got = unique_columns(np.array([3, 1, 3, 0], dtype=dtype), num_cols)
    assert got.dtype == np.int64 and got.tolist() == [0, 1, 3]
