"""``mx.sym`` / ``mx.sym.sparse`` as MXNet 1.9.1 documents them, with ``import sparsetrain as mx``."""
import warnings

import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain.base import StorageFallbackWarning


def test_namespaces():
    for ns in (mx.sym, mx.sym.sparse):
        assert callable(ns.dot) and callable(ns.elemwise_add) and callable(ns.reshape)
    assert callable(mx.sym._internal._square_sum) and callable(mx.sym._internal._mul_scalar)
    assert callable(mx.sym.contrib.SparseEmbedding) and callable(mx.sym.contrib.getnnz)
    assert mx.sym.concat is mx.sym.Concat


def test_executor_outputs_exist_at_simple_bind():
    a = mx.sym.var("a", stype="csr")
    b = mx.sym.var("b", stype="row_sparse")
    c = mx.sym.var("c")
    group = mx.sym.Group([mx.sym.sparse.negative(a), mx.sym.sparse.elemwise_add(b, b), mx.sym.dot(a, c)])
    ex = group.simple_bind(mx.cpu(), a=(3, 4), b=(3, 4), c=(4, 2))
    assert [o.shape for o in ex.outputs] == [(3, 4), (3, 4), (3, 2)]
    assert [o.stype for o in ex.outputs] == ["csr", "row_sparse", "default"]
    assert not any(o.asnumpy().any() for o in ex.outputs)
    ex.forward()
    assert [o.stype for o in ex.outputs] == ["csr", "row_sparse", "default"]


def test_out_is_accepted_on_symbol_functions():
    x = mx.sym.var("x")
    assert mx.sym.negative(x, out=None).list_arguments() == ["x"]


@pytest.mark.parametrize("namespace", ["nd", "sym"])
def test_argument_errors_are_the_same_in_nd_and_sym(namespace):
    ns = getattr(mx, namespace)
    arg = mx.nd.ones((2, 2)) if namespace == "nd" else mx.sym.var("x")
    with pytest.raises(TypeError, match="unknown argument 'trnspose_a'.*did you mean 'transpose_a'"):
        ns.dot(arg, arg, trnspose_a=True)
    with pytest.raises(TypeError, match="given twice"):
        ns.dot(arg, arg, False, transpose_a=True)
    with pytest.raises(TypeError, match="positional arguments"):
        ns.negative(arg, 1, 2)


def test_dot_forward_stype_in_storage_inference():
    x = mx.sym.var("x", stype="csr")
    w = mx.sym.var("w")
    for fs in ("default", "csr", "row_sparse"):
        _, out_stypes, _ = mx.sym.dot(x, w, forward_stype=fs).infer_storage_type()
        assert out_stypes == [fs]
    _, out_stypes, _ = mx.sym.dot(x, w).infer_storage_type()
    assert out_stypes == ["default"]


def test_scalar_stype_inference():
    x = mx.sym.var("x", stype="row_sparse")
    cases = {x * 2: "row_sparse", x + 0: "row_sparse", x + 1: "default", 1 - x: "default", x ** 2: "default"}
    for sym, want in cases.items():
        assert sym.infer_storage_type()[1] == [want]


def test_reshape_symbol():
    x = mx.sym.var("x")
    for sym in (mx.sym.reshape(x, shape=(0, -1)), x.reshape((0, -1))):
        ex = sym.simple_bind(mx.cpu(), x=(2, 3, 4))
        ex.forward(x=mx.nd.array(np.arange(24).reshape(2, 3, 4)))
        np.testing.assert_array_equal(ex.outputs[0].asnumpy(), np.arange(24).reshape(2, 12))
    with pytest.raises(ValueError):
        mx.sym.reshape(x, shape=(5, -1)).infer_shape(x=(2, 3, 4))


def test_softmax_output_with_probability_label():
    data = mx.sym.var("data")
    label = mx.sym.var("label")
    sym = mx.sym.SoftmaxOutput(data, label)
    arg_shapes, out_shapes, _ = sym.infer_shape(data=(3, 4), label=(3, 4))
    assert out_shapes == [(3, 4)]
    ex = sym.simple_bind(mx.cpu(), data=(3, 4), label=(3, 4))
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    p = np.random.default_rng(1).dirichlet(np.ones(4), size=3).astype(np.float32)
    ex.forward(is_train=True, data=mx.nd.array(x), label=mx.nd.array(p))
    ex.backward()
    out = ex.outputs[0].asnumpy()
    np.testing.assert_allclose(out, np.exp(x) / np.exp(x).sum(1, keepdims=True), rtol=1e-5)
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), out - p, rtol=1e-5, atol=1e-7)
    # class ids still work, and a label fitting neither form is refused
    ex = sym.simple_bind(mx.cpu(), data=(3, 4), label=(3,))
    ex.forward(is_train=True, data=mx.nd.array(x), label=mx.nd.array([0, 3, 1]))
    ex.backward()
    np.testing.assert_allclose(ex.grad_dict["data"].asnumpy(), out - np.eye(4)[[0, 3, 1]], rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError):
        sym.infer_shape(data=(3, 4), label=(3, 5))


def test_factorization_machine_graph_stypes():
    """MXNet's FM model: _square_sum + dot + Concat; the gradients of the row_sparse weights stay row_sparse."""
    k, dim = 3, 20
    x = mx.sym.var("data", stype="csr")
    v = mx.sym.var("v", shape=(dim, k), stype="row_sparse")
    w1 = mx.sym.var("w1_weight", shape=(dim, 1), stype="row_sparse")
    linear = mx.sym.dot(x, w1)
    v_s = mx.sym._internal._square_sum(data=v, axis=1, keepdims=True)
    bd_sum = mx.sym.dot(mx.sym.square(data=x), v_s)
    w2_squared = 0.5 * mx.sym.square(data=mx.sym.dot(x, v))
    w_all = mx.sym.Concat(linear, w2_squared, dim=1)
    model = mx.sym.elemwise_add(mx.sym.sum(data=w_all, axis=1, keepdims=True), 0.5 * mx.sym.negative(bd_sum))
    model = mx.sym.LinearRegressionOutput(data=model, label=mx.sym.var("label"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", StorageFallbackWarning)
        ex = model.simple_bind(mx.cpu(), grad_req={"v": "write", "w1_weight": "write"}, data=(8, dim), label=(8, 1))
        csr = mx.test_utils.rand_ndarray((8, dim), "csr", density=0.3)
        ex.arg_dict["data"][:] = csr
        ex.arg_dict["v"][:] = mx.nd.array(np.random.default_rng(0).normal(size=(dim, k)))
        ex.arg_dict["w1_weight"][:] = mx.nd.array(np.random.default_rng(1).normal(size=(dim, 1)))
        ex.forward(is_train=True)
        ex.backward()
    assert ex.grad_dict["v"].stype == "row_sparse" and ex.grad_dict["w1_weight"].stype == "row_sparse"
    xd, vd, wd = csr.asnumpy(), ex.arg_dict["v"].asnumpy(), ex.arg_dict["w1_weight"].asnumpy()
    want = xd @ wd + 0.5 * ((xd @ vd) ** 2).sum(1, keepdims=True) - 0.5 * (xd ** 2) @ (vd ** 2).sum(1, keepdims=True)
    np.testing.assert_allclose(ex.outputs[0].asnumpy(), want, rtol=1e-4, atol=1e-5)


# -- mx.test_utils' symbol checks, used as MXNet's sparse operator tests use them -----------------

from sparsetrain.test_utils import (  # noqa: E402
    check_numeric_gradient, check_symbolic_backward, check_symbolic_forward, rand_ndarray, rand_sparse_ndarray,
)


@pytest.mark.parametrize("lhs_stype, rhs_stype", [("default", "default"), ("default", "row_sparse"),
                                                  ("row_sparse", "default"), ("row_sparse", "row_sparse")])
def test_elemwise_add_forward_backward_and_numeric_gradient(lhs_stype, rhs_stype):
    shape = (3, 4)
    lhs, rhs = mx.sym.var("lhs", stype=lhs_stype), mx.sym.var("rhs", stype=rhs_stype)
    location = {"lhs": rand_ndarray(shape, lhs_stype, density=0.5), "rhs": rand_ndarray(shape, rhs_stype, density=0.5)}
    out_np = location["lhs"].asnumpy() + location["rhs"].asnumpy()
    test = mx.sym.sparse.elemwise_add(lhs, rhs)
    check_symbolic_forward(test, location, [out_np])
    check_numeric_gradient(test, location)
    grad_stypes = {n: "row_sparse" for n, s in (("lhs", lhs_stype), ("rhs", rhs_stype)) if s == "row_sparse"}
    check_symbolic_backward(test, location, [out_np], [out_np, out_np], grad_stypes=grad_stypes)
    with pytest.raises(AssertionError):
        check_symbolic_forward(test, location, [out_np + 1])


@pytest.mark.parametrize("trans_lhs", [False, True])
@pytest.mark.parametrize("rhs_stype", ["default", "row_sparse"])
def test_sparse_dot_symbolic_checks(trans_lhs, rhs_stype):
    lhs_nd = rand_ndarray((6, 5), "csr", density=0.4)
    rhs_nd = rand_ndarray((6 if trans_lhs else 5, 3), rhs_stype, density=0.6)
    out_np = (lhs_nd.asnumpy().T if trans_lhs else lhs_nd.asnumpy()) @ rhs_nd.asnumpy()
    out = mx.sym.sparse.dot(mx.sym.var("lhs", stype="csr"), mx.sym.var("rhs", stype=rhs_stype), transpose_a=trans_lhs)
    location = {"lhs": lhs_nd, "rhs": rhs_nd}
    check_symbolic_forward(out, location, [out_np], rtol=1e-3, atol=1e-4)
    expected = (lhs_nd.asnumpy() if trans_lhs else lhs_nd.asnumpy().T) @ out_np
    check_symbolic_backward(out, location, [out_np], {"rhs": expected}, grad_req={"lhs": "null", "rhs": "write"},
                            rtol=1e-3, atol=1e-4)


def test_sparse_retain_numeric_gradient_and_crop():
    rsp, (values, indices) = rand_sparse_ndarray((5, 3), "row_sparse", density=0.6)
    assert np.array_equal(rsp.indices.asnumpy(), indices)
    idx = mx.nd.array([0, 3], dtype="int64")
    sym = mx.sym.sparse.retain(data=mx.sym.var("data"), indices=mx.sym.var("indices"))
    check_numeric_gradient(sym, [rsp, idx], grad_nodes=["data"], grad_stype_dict={"data": "row_sparse"})
    csr, (indptr, _, _) = rand_sparse_ndarray((6, 4), "csr", density=0.5)
    assert np.array_equal(csr.indptr.asnumpy(), indptr)
    assert mx.test_utils.same(mx.nd.crop(csr, begin=(1,), end=(4,)).asnumpy(), csr.asnumpy()[1:4])


def test_symbolic_checks_fail_on_wrong_expectations():
    x = mx.sym.var("x")
    location = {"x": mx.nd.array([[1.0, 2.0]])}
    check_numeric_gradient(mx.sym.square(x), location)
    check_symbolic_backward(mx.sym.square(x), location, [mx.nd.ones((1, 2))], {"x": [[2.0, 4.0]]})
    with pytest.raises(AssertionError):
        check_symbolic_backward(mx.sym.square(x), location, [mx.nd.ones((1, 2))], {"x": [[1.0, 1.0]]})


def test_fully_connected_takes_a_column_bias():
    # MXNet accepts the bias as (num_hidden,) or (num_hidden, 1); the gradient has the bias's shape
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(4, 3)), rng.normal(size=(2, 3)), rng.normal(size=(2, 1))
    net = mx.sym.FullyConnected(mx.sym.Variable("x"), mx.sym.Variable("w"), mx.sym.Variable("b"), num_hidden=2)
    args = {"x": mx.nd.array(x), "w": mx.nd.array(w), "b": mx.nd.array(b)}
    grads = {k: mx.nd.zeros(v.shape) for k, v in args.items()}
    exe = net.bind(mx.cpu(), args=args, args_grad=grads)
    exe.forward(is_train=True)
    np.testing.assert_allclose(exe.outputs[0].asnumpy(), x @ w.T + b.T, rtol=1e-5)
    exe.backward([mx.nd.ones((4, 2))])
    assert grads["b"].shape == (2, 1)
    np.testing.assert_allclose(grads["b"].asnumpy(), np.full((2, 1), 4.0))
    out = mx.nd.FullyConnected(mx.nd.array(x), mx.nd.array(w), mx.nd.array(b), num_hidden=2)
    np.testing.assert_allclose(out.asnumpy(), x @ w.T + b.T, rtol=1e-5)
