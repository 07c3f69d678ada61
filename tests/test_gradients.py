"""Gradients of every op against central finite differences (float64), through bound symbols.

``check_gradients`` binds the symbol in float64, runs backward with a random head gradient
and compares each requested argument gradient with ``d sum(out * head) / d arg`` computed by
central differences over every entry of the argument (its dense view, for sparse arguments).
"""
import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain import nd

pytestmark = pytest.mark.filterwarnings("ignore::sparsetrain.StorageFallbackWarning")

D, CSR, RSP = "default", "csr", "row_sparse"
F64 = np.float64


def _matrix(shape, seed, positive=False, zeros=True):
    r = np.random.default_rng(seed)
    x = r.uniform(0.5, 2.0, size=shape) * (1 if positive else r.choice([-1, 1], size=shape))
    if zeros:
        x[r.random(shape) < 0.4] = 0.0
        if len(shape) == 2 and shape[0] > 2:
            x[1] = 0.0
    return x


def _f64(x, stype):
    return nd.array(x, dtype=F64).tostype(stype)


def check_gradients(sym, inputs, wrt, eps=1e-6, rtol=1e-6, atol=1e-8, head_seed=0):
    """``inputs``: name -> (numpy value, stype). Returns the executor after the analytic backward."""
    shapes = {n: x.shape for n, (x, _) in inputs.items()}
    ex = sym.simple_bind(mx.cpu(), grad_req={n: "write" for n in wrt},
                         type_dict={n: "float64" for n in inputs}, **shapes)
    for n, (x, s) in inputs.items():
        assert ex.arg_dict[n].stype == s and ex.arg_dict[n].dtype == F64
        ex.arg_dict[n][:] = _f64(x, s)
    out = ex.forward(is_train=True)[0]
    assert out.dtype == F64
    head = np.random.default_rng(head_seed).normal(size=out.shape)
    ex.backward(out_grads=[nd.array(head, dtype=F64)])
    analytic = {n: ex.grad_dict[n].asnumpy().copy() for n in wrt}
    for n in wrt:
        x, s = inputs[n]
        assert ex.grad_dict[n].stype == (RSP if s == RSP else D)
        assert ex.grad_dict[n].dtype == F64
        numeric = np.zeros(x.shape)
        for idx in np.ndindex(*x.shape):
            vals = []
            for delta in (eps, -eps):
                xp = x.copy()
                xp[idx] += delta
                ex.arg_dict[n][:] = _f64(xp, s)
                vals.append(float((ex.forward()[0].asnumpy() * head).sum()))
            numeric[idx] = (vals[0] - vals[1]) / (2 * eps)
        ex.arg_dict[n][:] = _f64(x, s)
        np.testing.assert_allclose(analytic[n], numeric, rtol=rtol, atol=atol, err_msg=f"gradient of {n!r}")
    return ex


def _vars(stypes):
    return [mx.sym.var(f"x{i}", stype=s) for i, s in enumerate(stypes)]


def _run(op, stypes, arrays, params=None, wrt=None, **kw):
    sym = getattr(mx.sym, op)(*_vars(stypes), **(params or {}))
    names = [f"x{i}" for i in range(len(stypes))]
    inputs = {n: (x, s) for n, x, s in zip(names, arrays, stypes)}
    return check_gradients(sym, inputs, names if wrt is None else wrt, **kw)


A = _matrix((4, 5), 1)
B = _matrix((4, 5), 2)
NZ = _matrix((4, 5), 3, zeros=False)  # no zeros: for ops that are not differentiable at 0
POS = _matrix((4, 5), 4, positive=True, zeros=False)
W = _matrix((5, 3), 5)
WT = _matrix((4, 3), 6)

ELEMWISE_STYPES = [(D, D), (CSR, CSR), (RSP, RSP), (D, CSR), (CSR, D), (D, RSP), (RSP, D), (CSR, RSP)]


@pytest.mark.parametrize("op", ["elemwise_add", "elemwise_sub", "elemwise_mul"])
@pytest.mark.parametrize("stypes", ELEMWISE_STYPES, ids=lambda s: "-".join(s))
def test_elemwise_binary(op, stypes):
    _run(op, stypes, [A, B])


def test_elemwise_div():
    _run("elemwise_div", (D, D), [A, POS])


@pytest.mark.parametrize("op,x", [("negative", A), ("abs", A), ("sign", NZ), ("square", A), ("_copy", A),
                                  ("tanh", A), ("log1p", POS), ("expm1", A)])
@pytest.mark.parametrize("stype", [D, CSR, RSP])
def test_zero_preserving_unary(op, x, stype):
    _run(op, (stype,), [x])


@pytest.mark.parametrize("op,x", [("relu", NZ), ("sqrt", POS), ("log", POS), ("exp", A), ("sigmoid", A)])
def test_unary_dense(op, x):
    _run(op, (D,), [x])


@pytest.mark.parametrize("op", ["exp", "sigmoid"])
@pytest.mark.parametrize("stype", [CSR, RSP])
def test_unary_fallback_gradient(op, stype):
    _run(op, (stype,), [A])


@pytest.mark.parametrize("stypes,arrays,params", [
    ((D, D), [A, W], {}),
    ((CSR, D), [A, W], {}),
    ((CSR, RSP), [A, W], {}),
    ((CSR, D), [A, WT], {"transpose_a": True}),
    ((D, D), [A, WT], {"transpose_a": True}),
    ((D, CSR), [A, W], {}),
    ((RSP, D), [A, W], {}),
    ((D, D), [A, W.T.copy()], {"transpose_b": True}),
    ((D, D), [A.T.copy(), W.T.copy()], {"transpose_a": True, "transpose_b": True}),
], ids=lambda v: "-".join(v) if isinstance(v, tuple) else (str(v) if isinstance(v, dict) else "arrays"))
def test_dot(stypes, arrays, params):
    _run("dot", stypes, arrays, params)


ROW, COL, VEC = _matrix((1, 5), 7, zeros=False), _matrix((4, 1), 8, zeros=False), _matrix((5,), 9, zeros=False)


@pytest.mark.parametrize("op", ["broadcast_add", "broadcast_sub", "broadcast_mul", "broadcast_div"])
@pytest.mark.parametrize("vec", [ROW, COL, VEC, NZ], ids=["row", "col", "vec", "full"])
def test_broadcast(op, vec):
    _run(op, (D, D), [A, vec])


@pytest.mark.parametrize("op", ["broadcast_mul", "broadcast_div"])
@pytest.mark.parametrize("vec", [ROW, COL], ids=["row", "col"])
def test_broadcast_csr(op, vec):
    _run(op, (CSR, D), [A, vec])


@pytest.mark.parametrize("op", ["sum", "mean"])
@pytest.mark.parametrize("params", [{}, {"axis": 0}, {"axis": 1}, {"axis": 1, "keepdims": True}], ids=str)
@pytest.mark.parametrize("stype", [D, CSR])
def test_reductions(op, params, stype):
    _run(op, (stype,), [A], params)


@pytest.mark.parametrize("stypes", [(RSP, RSP, RSP), (D, D), (RSP, D), (CSR, CSR)], ids=lambda s: "-".join(s))
def test_add_n(stypes):
    _run("add_n", stypes, [A, B, NZ][: len(stypes)])


@pytest.mark.parametrize("src", [D, CSR, RSP])
@pytest.mark.parametrize("dst", [D, CSR, RSP])
def test_cast_storage(src, dst):
    _run("cast_storage", (src,), [A], {"stype": dst})


@pytest.mark.parametrize("stype,params", [
    (D, {"begin": (1, 2), "end": (3, 4)}), (CSR, {"begin": (1,), "end": (3,)}), (CSR, {"begin": (0, 1), "end": (2, 4)}),
], ids=str)
def test_slice(stype, params):
    _run("slice", (stype,), [A], params)


@pytest.mark.parametrize("weight_stype", [D, RSP])
def test_embedding_sparse_grad(weight_stype):
    ids = np.array([[0, 4], [2, 2]], dtype=np.float64)
    data = mx.sym.var("data")
    weight = mx.sym.var("weight", stype=weight_stype)
    sym = mx.sym.Embedding(data, weight, input_dim=6, output_dim=3, sparse_grad=True)
    ex = check_gradients(sym, {"data": (ids, D), "weight": (_matrix((6, 3), 10), weight_stype)}, ["weight"])
    if weight_stype == RSP:
        np.testing.assert_array_equal(ex.grad_dict["weight"].indices.asnumpy(), [0, 2, 4])


def test_embedding_dense_grad():
    ids = np.array([1, 1, 3], dtype=np.float64)
    sym = mx.sym.Embedding(mx.sym.var("data"), mx.sym.var("weight"), input_dim=4, output_dim=2)
    check_gradients(sym, {"data": (ids, D), "weight": (_matrix((4, 2), 11), D)}, ["weight"])


# -- the sparse paths of the linear model -------------------------------------------------------

def _explicit_zero_batch():
    # column 3 occurs only as an explicitly stored zero; columns 1, 2, 6, 7 never occur
    return nd.sparse.csr_matrix((np.array([1.5, 0.0, -2.0, 0.5]), np.array([0, 3, 5, 0]), np.array([0, 2, 3, 4])),
                                shape=(3, 8), dtype=F64)


def test_dot_csr_rsp_gradient_rows_are_the_batch_columns():
    x = _explicit_zero_batch()
    data = mx.sym.var("data", stype=CSR)
    weight = mx.sym.var("weight", stype=RSP)
    ex = mx.sym.dot(data, weight).simple_bind(data=(3, 8), weight=(8, 2), grad_req={"weight": "write"},
                                              type_dict={"data": "float64", "weight": "float64"})
    ex.arg_dict["data"][:] = x
    assert ex.arg_dict["data"].nnz == 4  # the explicit zero survives assignment
    w = np.arange(16, dtype=F64).reshape(8, 2) / 7
    ex.arg_dict["weight"][:] = nd.array(w, dtype=F64).tostype(RSP)
    out = ex.forward(is_train=True)[0]
    np.testing.assert_allclose(out.asnumpy(), x.asnumpy() @ w, rtol=1e-12)
    head = np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.25]])
    ex.backward(out_grads=[nd.array(head, dtype=F64)])
    g = ex.grad_dict["weight"]
    assert g.stype == RSP and g.dtype == F64
    np.testing.assert_array_equal(g.indices.asnumpy(), [0, 3, 5])
    np.testing.assert_allclose(g.asnumpy(), x.asnumpy().T @ head, rtol=1e-12)
    np.testing.assert_array_equal(g.data.asnumpy()[1], [0.0, 0.0])  # row 3 present, value zero


def test_dot_csr_dense_gradient_is_dense():
    x = _explicit_zero_batch()
    ex = mx.sym.dot(mx.sym.var("data", stype=CSR), mx.sym.var("weight")).simple_bind(
        data=(3, 8), weight=(8, 2), grad_req={"weight": "write"}, type_dict={"data": "float64", "weight": "float64"})
    ex.arg_dict["data"][:] = x
    ex.forward(is_train=True)
    ex.backward()
    g = ex.grad_dict["weight"]
    assert g.stype == D
    np.testing.assert_allclose(g.asnumpy(), x.asnumpy().T @ np.ones((3, 2)), rtol=1e-12)


def test_default_head_gradient_keeps_float64():
    x = nd.sparse.csr_matrix((np.array([0.1234567891, 0.3, 0.7]), [0, 2, 2], [0, 2, 3]), shape=(2, 3), dtype=F64)
    ex = mx.sym.dot(mx.sym.var("X", stype=CSR), mx.sym.var("W", stype=RSP)).simple_bind(
        X=(2, 3), W=(3, 1), grad_req={"W": "write"}, type_dict={"X": "float64", "W": "float64"})
    ex.arg_dict["X"][:] = x
    ex.arg_dict["W"][:] = nd.ones((3, 1), dtype=F64).tostype(RSP)
    ex.forward(is_train=True)
    ex.backward()  # head gradient of ones, created by the executor
    np.testing.assert_allclose(ex.grad_dict["W"].asnumpy().ravel(), x.asnumpy().sum(axis=0), rtol=1e-14)


@pytest.mark.parametrize("stype", [RSP, CSR])
def test_backward_of_a_sparse_output_without_out_grads(stype):
    c = mx.sym.var("c", stype=stype)
    ex = mx.sym.elemwise_add(c, c).simple_bind(c=(3, 2))
    ex.arg_dict["c"][:] = nd.array([[1, 2], [0, 0], [3, 4]])
    ex.forward(is_train=True)
    ex.backward()
    np.testing.assert_array_equal(ex.grad_dict["c"].asnumpy(), np.full((3, 2), 2.0))


def test_seed_linear_model_gradients():
    x = _explicit_zero_batch()
    data = mx.sym.var("data", stype=CSR)
    weight = mx.sym.var("weight", stype=RSP, shape=(8, 1))
    bias = mx.sym.var("bias", shape=(1,))
    pred = mx.sym.broadcast_add(mx.sym.sparse.dot(data, weight), bias)
    # the network without its loss layer, so finite differences see sum(pred * head)
    check_gradients(pred, {"data": (x.asnumpy(), CSR), "weight": (_matrix((8, 1), 12), RSP),
                           "bias": (np.array([0.3]), D)}, ["weight", "bias"])


# -- output layers: MXNet's formulas --------------------------------------------------------------

def _bind_loss(sym, data, label):
    ex = sym.simple_bind(data=data.shape, label=label.shape, type_dict={"data": "float64", "label": "float64"},
                         grad_req={"data": "write"})
    ex.arg_dict["data"][:] = nd.array(data, dtype=F64)
    ex.arg_dict["label"][:] = nd.array(label, dtype=F64)
    out = ex.forward(is_train=True)[0].asnumpy()
    ex.backward(out_grads=[nd.array(np.full(data.shape, 123.0), dtype=F64)])  # head gradient is ignored
    return out, ex.grad_dict["data"].asnumpy()


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("op,fwd,grad", [
    ("LinearRegressionOutput", lambda x: x, lambda o, y: o - y),
    ("MAERegressionOutput", lambda x: x, lambda o, y: np.sign(o - y)),
    ("LogisticRegressionOutput", _sigmoid, lambda o, y: o - y),
])
@pytest.mark.parametrize("shape,label_shape", [((4, 1), (4,)), ((4, 1), (4, 1)), ((4, 3), (4, 3))], ids=str)
@pytest.mark.parametrize("grad_scale", [1.0, 2.5])
def test_regression_outputs(op, fwd, grad, shape, label_shape, grad_scale):
    r = np.random.default_rng(3)
    data, label = r.normal(size=shape), r.normal(size=label_shape)
    sym = getattr(mx.sym, op)(data=mx.sym.var("data"), label=mx.sym.var("label"), grad_scale=grad_scale)
    out, g = _bind_loss(sym, data, label)
    np.testing.assert_allclose(out, fwd(data), rtol=1e-12)
    num_output = np.prod(shape) / shape[0]
    expected = grad_scale / num_output * grad(fwd(data), label.reshape(shape))
    np.testing.assert_allclose(g, expected, rtol=1e-12)


@pytest.mark.parametrize("normalization", ["null", "batch", "valid"])
@pytest.mark.parametrize("use_ignore", [False, True])
def test_softmax_output(normalization, use_ignore):
    r = np.random.default_rng(4)
    data = r.normal(size=(5, 3))
    label = np.array([0, 2, 1, -1 if use_ignore else 1, 2], dtype=F64)
    sym = mx.sym.SoftmaxOutput(data=mx.sym.var("data"), label=mx.sym.var("label"), grad_scale=1.5,
                               normalization=normalization, use_ignore=use_ignore, ignore_label=-1)
    out, g = _bind_loss(sym, data, label)
    p = np.exp(data - data.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(out, p, rtol=1e-12)
    onehot = np.zeros_like(p)
    valid = label >= 0
    onehot[np.flatnonzero(valid), label[valid].astype(int)] = 1
    expected = (p - onehot) * valid[:, None]
    scale = {"null": 1.0, "batch": 1.0 / 5, "valid": 1.0 / valid.sum()}[normalization]
    np.testing.assert_allclose(g, 1.5 * scale * expected, rtol=1e-12)


# -- accumulation and reuse --------------------------------------------------------------------

def test_grad_req_add_accumulates_dense_and_row_sparse():
    data = mx.sym.var("data", stype=CSR)
    weight = mx.sym.var("weight", stype=RSP)
    bias = mx.sym.var("bias")
    sym = mx.sym.broadcast_add(mx.sym.dot(data, weight), bias)
    ex = sym.simple_bind(data=(3, 8), weight=(8, 2), bias=(2,), grad_req={"weight": "add", "bias": "add"})
    x1 = _explicit_zero_batch().astype(np.float32)
    x2 = nd.sparse.csr_matrix((np.array([1.0, 1.0]), np.array([6, 0]), np.array([0, 1, 1, 2])), shape=(3, 8))
    expected_w = np.zeros((8, 2))
    for x in (x1, x2, x1):
        ex.arg_dict["data"][:] = x
        ex.forward(is_train=True)
        ex.backward()
        expected_w += x.asnumpy().T @ np.ones((3, 2))
    np.testing.assert_allclose(ex.grad_dict["weight"].asnumpy(), expected_w, rtol=1e-6)
    np.testing.assert_array_equal(ex.grad_dict["weight"].indices.asnumpy(), [0, 3, 5, 6])
    np.testing.assert_allclose(ex.grad_dict["bias"].asnumpy(), [9.0, 9.0])


def test_grad_req_write_overwrites():
    a = mx.sym.var("a")
    ex = mx.sym.square(a).simple_bind(a=(2,))
    ex.arg_dict["a"][:] = nd.array([1.0, 2.0])
    for _ in range(3):
        ex.forward(is_train=True)
        ex.backward()
    np.testing.assert_allclose(ex.grad_dict["a"].asnumpy(), [2.0, 4.0])


def test_argument_used_twice_sums_its_gradients():
    a = mx.sym.var("a")
    b = mx.sym.var("b")
    sym = mx.sym.elemwise_add(mx.sym.elemwise_mul(a, b), mx.sym.square(a))
    check_gradients(sym, {"a": (A, D), "b": (B, D)}, ["a", "b"])
    check_gradients(mx.sym.elemwise_mul(a, a), {"a": (A, D)}, ["a"])


def test_row_sparse_weight_used_twice():
    data = mx.sym.var("data", stype=CSR)
    weight = mx.sym.var("weight", stype=RSP)
    sym = mx.sym.elemwise_add(mx.sym.dot(data, weight), mx.sym.dot(data, weight))
    ex = check_gradients(sym, {"data": (A, CSR), "weight": (W, RSP)}, ["weight"])
    np.testing.assert_array_equal(ex.grad_dict["weight"].indices.asnumpy(), np.flatnonzero((A != 0).any(axis=0)))


def test_backward_needs_a_training_forward():
    ex = mx.sym.square(mx.sym.var("a")).simple_bind(a=(2,))
    ex.forward()
    with pytest.raises(RuntimeError, match="forward"):
        ex.backward()


# -- operators added for MXNet fidelity (issue 20) ------------------------------------------------

@pytest.mark.parametrize("op, x", [("_plus_scalar", A), ("_minus_scalar", A), ("_rminus_scalar", A),
                                   ("_mul_scalar", A), ("_div_scalar", A), ("_rdiv_scalar", NZ),
                                   ("_power_scalar", POS), ("_rpower_scalar", A)])
@pytest.mark.parametrize("stype", [D, CSR, RSP])
def test_scalar_family(op, x, stype):
    sym = getattr(mx.sym._internal, op)(mx.sym.var("x0", stype=stype), scalar=1.5)
    check_gradients(sym, {"x0": (x, stype)}, ["x0"], rtol=1e-5)


def test_scalar_symbol_operators():
    x = mx.sym.var("x0")
    sym = (2 - x) * 3 + (x ** 2) / 4 - 1 / (x + 5) + 2 ** x
    check_gradients(sym, {"x0": (A, D)}, ["x0"], rtol=1e-5)


def test_broadcast_power():
    _run("broadcast_power", [D, D], [POS, _matrix((1, 5), 7)], rtol=1e-5)


@pytest.mark.parametrize("op", ["broadcast_equal", "broadcast_greater", "broadcast_lesser_equal"])
def test_comparisons_have_zero_gradient(op):
    ex = _run(op, [D, D], [NZ, POS])  # no ties: the finite differences are 0 too
    assert not ex.grad_dict["x0"].asnumpy().any()


def test_broadcast_to():
    _run("broadcast_to", [D], [_matrix((4, 1), 8)], params={"shape": (4, 3)})


@pytest.mark.parametrize("params", [{}, {"ord": 1}, {"axis": 1}, {"axis": 0, "keepdims": True}])
def test_norm(params):
    _run("norm", [D], [NZ], params=params, rtol=1e-5)


@pytest.mark.parametrize("stype", [D, RSP])
@pytest.mark.parametrize("params", [{"axis": 1, "keepdims": True}, {"axis": 0}, {"axis": 1}])
def test_square_sum(stype, params):
    sym = mx.sym._internal._square_sum(mx.sym.var("x0", stype=stype), **params)
    check_gradients(sym, {"x0": (A, stype)}, ["x0"], rtol=1e-5)


def test_sum_exclude_and_slice_step_and_reshape():
    _run("sum", [D], [A], params={"axis": 1, "exclude": True})
    _run("mean", [D], [A], params={"axis": 0, "exclude": True, "keepdims": True})
    _run("slice", [D], [A], params={"begin": (0, 4), "end": (4, 0), "step": (2, -2)})
    _run("Reshape", [D], [A], params={"shape": (-1, 2)})


def test_concat_and_slice_axis():
    sym = mx.sym.Concat(mx.sym.var("x0"), mx.sym.var("x1"), dim=1)
    check_gradients(sym, {"x0": (A, D), "x1": (WT, D)}, ["x0", "x1"])
    _run("slice_axis", [D], [A], params={"axis": 1, "begin": 1, "end": -1})


@pytest.mark.parametrize("stype", [D, CSR])
def test_fully_connected(stype):
    sym = mx.sym.FullyConnected(mx.sym.var("x0", stype=stype), mx.sym.var("w"), mx.sym.var("b"), num_hidden=3)
    check_gradients(sym, {"x0": (A, stype), "w": (_matrix((3, 5), 9), D), "b": (_matrix((3,), 10), D)},
                    ["w", "b"] if stype == CSR else ["x0", "w", "b"])


def test_fully_connected_without_bias_has_no_bias_argument():
    sym = mx.sym.FullyConnected(mx.sym.var("x0", stype=CSR), num_hidden=3, no_bias=True, name="fc")
    assert sym.list_arguments() == ["x0", "fc_weight"]
    check_gradients(sym, {"x0": (A, CSR), "fc_weight": (_matrix((3, 5), 9), D)}, ["fc_weight"])
    assert mx.sym.FullyConnected(mx.sym.var("d"), num_hidden=2, name="f").list_arguments() == ["d", "f_weight", "f_bias"]


def test_sparse_embedding_and_retain():
    idx = np.array([[0, 3], [3, 1]], dtype=np.float64)
    sym = mx.sym.contrib.SparseEmbedding(mx.sym.var("d"), mx.sym.var("w", stype=RSP), input_dim=5, output_dim=3)
    ex = check_gradients(sym, {"d": (idx, D), "w": (_matrix((5, 3), 11), RSP)}, ["w"])
    assert sorted(ex.grad_dict["w"].indices.asnumpy().tolist()) == [0, 1, 3]
    sym = mx.sym._sparse_retain(mx.sym.var("x0", stype=RSP), mx.sym.var("i"))
    check_gradients(sym, {"x0": (A, RSP), "i": (np.array([0.0, 2.0]), D)}, ["x0"])


# -- a factorization machine: V's gradient stays row-sparse (no storage fallback) ------------------

def _fm_symbol():
    data = mx.sym.var("data", stype=CSR)
    w = mx.sym.var("w", stype=RSP)
    v = mx.sym.var("v", stype=RSP)
    pairs = mx.sym.elemwise_sub(mx.sym.square(mx.sym.dot(data, v)),
                                mx.sym.dot(mx.sym.square(data), mx.sym.square(v)))
    return mx.sym.elemwise_add(mx.sym.dot(data, w), mx.sym.sum(pairs, axis=1, keepdims=True))


def test_factorization_machine_gradients_are_row_sparse_without_fallback():
    from sparsetrain.ops.registry import set_strict_stypes

    x = _explicit_zero_batch()
    previous = set_strict_stypes(True)  # any storage fallback raises
    try:
        ex = check_gradients(_fm_symbol(), {"data": (x.asnumpy(), CSR), "w": (_matrix((8, 1), 13), RSP),
                                            "v": (_matrix((8, 3), 14), RSP)}, ["w", "v"])
    finally:
        set_strict_stypes(previous)
    g = ex.grad_dict["v"]
    assert g.stype == RSP
    np.testing.assert_array_equal(g.indices.asnumpy(), [0, 5])  # the columns the batch stores (dense input: no explicit zero)


def test_backward_unary_of_a_row_sparse_head_gradient_keeps_its_rows():
    # square(v) of a row-sparse v: the head gradient's rows, with f'(v) read from v's stored rows
    rows = np.array([1, 4])
    og = nd.sparse.row_sparse_array((np.array([[1.0, 2.0], [3.0, -1.0]]), rows), shape=(6, 2), dtype=F64)
    v = nd.sparse.row_sparse_array((np.array([[0.5, 1.0], [2.0, 3.0]]), np.array([1, 2])), shape=(6, 2), dtype=F64)
    out = nd._internal._backward_unary(og, v, nd.square(v), fn="square")
    assert out.stype == RSP
    np.testing.assert_array_equal(out.indices.asnumpy(), rows)
    np.testing.assert_allclose(out.asnumpy(), og.asnumpy() * 2 * v.asnumpy())


def test_add_n_of_dense_and_row_sparse_is_a_sparse_kernel():
    from sparsetrain.ops.registry import get, infer_storage

    assert infer_storage(get("add_n"), (D, RSP, D), {}).mode == "sparse"
    a = np.arange(12.0).reshape(6, 2)
    r = nd.sparse.row_sparse_array((np.array([[1.0, 1.0], [2.0, 2.0]]), np.array([0, 5])), shape=(6, 2))
    np.testing.assert_allclose(nd.add_n(nd.array(a), r, nd.array(a)).asnumpy(), 2 * a + r.asnumpy())
