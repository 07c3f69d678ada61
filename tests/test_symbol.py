"""Symbols: names, arguments, groups, shape/stype inference, JSON, fallback policy, bad input."""
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain import nd
from sparsetrain.base import ShapeError, StorageFallbackWarning, StorageTypeError
from sparsetrain.symbol import BindError


def lro_network(feature_dimension=100):
    X = mx.sym.Variable("data", stype="csr")
    Y = mx.symbol.Variable("label")
    weight = mx.symbol.Variable("weight", stype="row_sparse", shape=(feature_dimension, 1),
                                init=mx.initializer.Normal(sigma=0.01))
    bias = mx.symbol.Variable("bias", shape=(1,))
    pred = mx.sym.broadcast_add(mx.sym.sparse.dot(X, weight), bias)
    return mx.sym.LinearRegressionOutput(data=pred, label=Y, name="lro")


def softmax_network(declare_weight_shape=True):
    data = mx.sym.var("data", stype="csr", shape=(32, 10000))
    weight = mx.sym.var("weight", stype="row_sparse", shape=(10000, 2) if declare_weight_shape else None)
    bias = mx.symbol.Variable("bias", shape=(2,))
    pred = mx.symbol.broadcast_add(mx.symbol.sparse.dot(data, weight), bias)
    return mx.symbol.SoftmaxOutput(data=pred, label=mx.symbol.Variable("label"), name="output")


def _fallback_warnings(record):
    return [w for w in record if issubclass(w.category, StorageFallbackWarning)]


# -- names, arguments, outputs --------------------------------------------------------------------

def test_automatic_names_in_a_fresh_process():
    code = (
        "import sparsetrain as mx\n"
        "a = mx.sym.Variable('a'); b = mx.sym.Variable('b', stype='csr'); c = mx.sym.Variable('c', stype='row_sparse')\n"
        "print(mx.sym.elemwise_add(a, a), mx.sym.sparse.negative(b), mx.sym.sparse.elemwise_add(c, c),"
        " mx.sym.dot(a, a), mx.sym.SoftmaxOutput(a))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["<Symbol", "elemwise_add0>", "<Symbol", "negative0>", "<Symbol", "elemwise_add1>",
                           "<Symbol", "dot0>", "<Symbol", "softmaxoutput0>"]


def test_automatic_name_counters_are_per_op():
    a = mx.sym.var("a")
    first = mx.sym.elemwise_add(a, a).name
    neg = mx.sym.negative(a).name
    second = mx.sym.elemwise_add(a, a).name
    n = int(re.fullmatch(r"elemwise_add(\d+)", first).group(1))
    assert second == f"elemwise_add{n + 1}"
    assert re.fullmatch(r"negative\d+", neg)
    assert mx.sym.elemwise_add(a, a, name="mine").name == "mine"
    assert repr(mx.sym.var("a")) == "<Symbol a>"


def test_list_arguments_and_outputs():
    lro = lro_network()
    assert lro.list_arguments() == ["data", "weight", "bias", "label"]
    assert lro.list_outputs() == ["lro_output"]
    out = softmax_network()
    assert out.list_arguments() == ["data", "weight", "bias", "label"]
    # MXNet creates the missing label argument of an output layer
    assert mx.sym.SoftmaxOutput(mx.sym.var("x"), name="sm").list_arguments() == ["x", "sm_label"]


def test_group():
    a, b = mx.sym.var("a"), mx.sym.var("b")
    d = mx.sym.elemwise_add(a, b, name="d")
    e = mx.sym.negative(a, name="e")
    g = mx.sym.Group([d, e])
    assert len(g) == 2
    assert g.list_outputs() == ["d_output", "e_output"]
    assert g.list_arguments() == ["a", "b"]
    assert g[1].name == "e" and g["d_output"].name == "d"
    ex = g.simple_bind(a=(2,), b=(2,))
    ex.arg_dict["a"][:] = nd.array([1, 2])
    ex.arg_dict["b"][:] = nd.array([10, 20])
    outs = ex.forward()
    np.testing.assert_array_equal(outs[0].asnumpy(), [11, 22])
    np.testing.assert_array_equal(outs[1].asnumpy(), [-1, -2])
    with pytest.raises(mx.SparseTrainError, match="group"):
        mx.sym.negative(g)


# -- shape inference ------------------------------------------------------------------------------

def test_forward_shape_inference():
    arg_shapes, out_shapes, aux = lro_network().infer_shape(data=(32, 100))
    assert arg_shapes == [(32, 100), (100, 1), (1,), (32, 1)]  # label shape comes from the data
    assert out_shapes == [(32, 1)]
    assert aux == []
    arg_shapes, out_shapes, _ = softmax_network().infer_shape()
    assert arg_shapes == [(32, 10000), (10000, 2), (2,), (32,)]
    assert out_shapes == [(32, 2)]


def test_backward_shape_inference_of_dot():
    dot = mx.sym.dot(mx.sym.var("data"), mx.sym.var("weight"))
    assert dot.infer_shape(data=(32, 10000)) == (None, None, None)
    arg_shapes, out_shapes, _ = dot.infer_shape_partial(data=(32, 10000))
    assert arg_shapes == [(32, 10000), (10000, 0)]
    assert out_shapes == [(32, 0)]
    # with k known from the weight, everything is known
    assert dot.infer_shape(data=(32, 10000), weight=(10000, 3))[1] == [(32, 3)]
    # and the data's inner dimension is inferred back from the weight
    assert dot.infer_shape_partial(weight=(10000, 3))[0] == [(0, 10000), (10000, 3)]


def test_what_bias_and_softmax_can_and_cannot_infer():
    out = softmax_network(declare_weight_shape=False)
    # a (2,) bias does not pin k: broadcasting (32, k) with (2,) allows k = 1 as well as k = 2
    assert out.infer_shape() == (None, None, None)
    arg_shapes, out_shapes, _ = out.infer_shape_partial()
    assert arg_shapes[:3] == [(32, 10000), (10000, 0), (2,)]
    assert out_shapes == [None]
    with pytest.raises(BindError, match=r"weight"):
        out.simple_bind()
    # giving k anywhere on the weight completes the graph, including the label
    arg_shapes, out_shapes, _ = out.infer_shape(weight=(10000, 2))
    assert arg_shapes == [(32, 10000), (10000, 2), (2,), (32,)]
    assert out_shapes == [(32, 2)]


def test_positional_shapes():
    arg_shapes, _, _ = mx.sym.dot(mx.sym.var("a"), mx.sym.var("b")).infer_shape((2, 3), (3, 4))
    assert arg_shapes == [(2, 3), (3, 4)]


def test_incompatible_shapes_name_the_node():
    a = mx.sym.var("a", shape=(2, 3))
    b = mx.sym.var("b", shape=(4, 1))
    sym = mx.sym.dot(a, b, name="scores")
    with pytest.raises(ShapeError, match=r"node 'scores' \(dot\).*\(2, 3\).*\(4, 1\)"):
        sym.infer_shape()
    with pytest.raises(ShapeError, match="'scores'"):
        mx.sym.dot(mx.sym.var("a"), mx.sym.var("b"), name="scores").simple_bind(a=(2, 3), b=(4, 1))
    with pytest.raises(ShapeError, match="'a'"):  # a given shape that contradicts the declared one
        mx.sym.negative(a).simple_bind(a=(5, 5))


def test_a_dot_input_its_gradient_cannot_take_is_refused_at_bind_naming_it():
    """dot's forward takes a 1-D rhs ((n, k) · (k,)), its gradient does not (2-D dots): binding for
    training names the input (the rule is dot's ``gradient_shapes``), and binding without gradients works."""
    x, w = mx.sym.var("x", shape=(3, 4)), mx.sym.var("w", shape=(4,))
    with pytest.raises(ShapeError, match=re.escape("argument 'w': [4] is 1-D: dot's gradient needs 2-D inputs "
                                                   "(e.g. [4, 1]); it is input 1 of node 'scores' (dot)")):
        mx.sym.dot(x, w, name="scores").simple_bind(grad_req={"w": "write"})
    with pytest.raises(ShapeError, match=re.escape("node 'scores' (dot): input 0 (flat_output) [12] is 1-D: dot's "
                                                   "gradient needs 2-D inputs (e.g. [1, 12])")):
        mx.sym.dot(mx.sym.reshape(x, shape=(-1,), name="flat"), mx.sym.var("v", shape=(12, 1)),
                   name="scores").simple_bind(grad_req={"v": "write"})
    ex = mx.sym.dot(x, w, name="scores").simple_bind(grad_req="null")
    assert ex.forward()[0].shape == (3,)


def test_shape_of_unknown_argument_is_a_bind_error():
    with pytest.raises(BindError, match=r"cannot infer the shape of argument\(s\) \['data'\]"):
        mx.sym.negative(mx.sym.var("data")).simple_bind()


# -- storage-type inference ---------------------------------------------------------------------

def test_infer_storage_type():
    args, outs, aux = softmax_network().infer_storage_type()
    assert args == ["csr", "row_sparse", "default", "default"]
    assert outs == ["default"]
    a, b, c = mx.sym.var("a"), mx.sym.var("b", stype="csr"), mx.sym.var("c", stype="row_sparse")
    g = mx.sym.Group([mx.sym.elemwise_add(a, a), mx.sym.negative(b), mx.sym.elemwise_add(c, c),
                      mx.sym.elemwise_add(b, c), mx.sym.log(b), mx.sym.dot(b, a, transpose_a=True)])
    assert g.infer_storage_type()[1] == ["default", "csr", "row_sparse", "default", "default", "row_sparse"]
    # stypes given at inference override the declared ones
    assert mx.sym.negative(a).infer_storage_type(a="csr")[1] == ["csr"]


def test_backward_stypes_in_the_plan():
    ex = softmax_network().simple_bind(grad_req={"weight": "write", "bias": "write"})
    rows = {r["op"]: r for r in ex.plan.describe() if r["backward"]}
    dot_grad = [r for r in ex.plan.describe() if r["backward"] and r["op"] == "dot"]
    assert len(dot_grad) == 1
    assert dot_grad[0]["dispatch"] == "sparse"
    assert dot_grad[0]["outputs"][0]["stype"] == "row_sparse"
    assert "_backward_SoftmaxOutput" in rows
    assert ex.grad_dict["weight"].stype == "row_sparse" and ex.grad_dict["bias"].stype == "default"
    assert "data" not in ex.grad_dict


def test_unknown_stype_strings():
    with pytest.raises(StorageTypeError, match="'dense'"):
        mx.sym.var("x", stype="dense")
    with pytest.raises(StorageTypeError, match="'coo'"):
        mx.sym.negative(mx.sym.var("x")).infer_storage_type(x="coo")
    with pytest.raises(StorageTypeError, match="'sparse'"):
        mx.sym.negative(mx.sym.var("x")).simple_bind(x=(2, 2), stype_dict={"x": "sparse"})
    with pytest.raises(StorageTypeError, match="'rsp'"):
        nd.cast_storage(nd.ones((2, 2)), stype="rsp")


# -- JSON -----------------------------------------------------------------------------------------

def test_json_round_trip_gives_identical_outputs():
    sym = lro_network(feature_dimension=6)
    text = sym.tojson()
    loaded = mx.sym.load_json(text)
    assert loaded.tojson() == text
    assert loaded.list_arguments() == sym.list_arguments()
    assert loaded.list_outputs() == sym.list_outputs()
    assert loaded.infer_storage_type() == sym.infer_storage_type()
    mx.random.seed(3)
    x = mx.test_utils.rand_ndarray((4, 6), "csr", 0.5)
    w = mx.test_utils.rand_ndarray((6, 1), "row_sparse", 0.7)
    results = []
    for s in (sym, loaded):
        ex = s.simple_bind(data=(4, 6), label=(4, 1), grad_req={"weight": "write", "bias": "write"})
        ex.arg_dict["data"][:] = x
        ex.arg_dict["weight"][:] = w
        ex.arg_dict["bias"][:] = 0.25
        ex.arg_dict["label"][:] = nd.ones((4, 1))
        out = ex.forward(is_train=True)[0].asnumpy()
        ex.backward()
        results.append((out, ex.grad_dict["weight"].asnumpy(), ex.grad_dict["bias"].asnumpy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_json_keeps_params_and_file_round_trip(tmp_path):
    sym = mx.sym.sum(mx.sym.slice(mx.sym.var("x", stype="csr"), begin=(1,), end=(3,)), axis=1, keepdims=True)
    path = tmp_path / "sym.json"
    sym.save(str(path))
    loaded = mx.sym.load(str(path))
    x = nd.array(np.arange(12).reshape(4, 3)).tostype("csr")
    outs = []
    for s in (sym, loaded):
        ex = s.simple_bind(x=(4, 3))
        ex.arg_dict["x"][:] = x
        outs.append(ex.forward()[0].asnumpy())
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], [[12], [21]])


def test_load_json_rejects_garbage():
    with pytest.raises(mx.SparseTrainError, match="not a sparsetrain symbol"):
        mx.sym.load_json('{"nodes": [{"name": "x"}]}')


# -- storage fallback policy ----------------------------------------------------------------------

def _fallback_symbol():
    b = mx.sym.var("b", stype="csr")
    c = mx.sym.var("c", stype="row_sparse")
    return mx.sym.elemwise_add(b, c, name="mixed_add")


def test_fallback_warns_once_per_node_across_forwards_and_binds():
    sym = _fallback_symbol()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(2):
            ex = sym.simple_bind(b=(2, 2), c=(2, 2))
            for _ in range(10):
                ex.forward(is_train=True)
                ex.backward()
    found = _fallback_warnings(record)
    assert len(found) == 1
    message = str(found[0].message)
    assert "'mixed_add'" in message and "elemwise_add" in message
    assert "(csr, row_sparse)" in message and "(default)" in message


def test_fallback_values_are_the_dense_result():
    sym = mx.sym.Group([_fallback_symbol(), mx.sym.log(mx.sym.var("a"))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ex = sym.simple_bind(a=(2, 2), b=(2, 2), c=(2, 2))
        ex.arg_dict["b"][:] = nd.array([[1, 0], [0, 2]]).tostype("csr")
        ex.arg_dict["c"][:] = nd.array([[0, 0], [3, 4]]).tostype("row_sparse")
        ex.arg_dict["a"][:] = nd.array([[1, np.e], [1, 1]])
        add, log = ex.forward()
    assert add.stype == "default" and log.stype == "default"
    np.testing.assert_array_equal(add.asnumpy(), [[1, 0], [3, 6]])
    np.testing.assert_allclose(log.asnumpy(), [[0, 1], [0, 0]], atol=1e-7)


def test_each_node_warns_once():
    b = mx.sym.var("b", stype="csr")
    c = mx.sym.var("c", stype="row_sparse")
    g = mx.sym.Group([mx.sym.elemwise_add(b, c), mx.sym.elemwise_sub(b, c)])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ex = g.simple_bind(b=(2, 2), c=(2, 2))
        for _ in range(5):
            ex.forward()
    assert len(_fallback_warnings(record)) == 2


def test_fallback_log_can_be_silenced(monkeypatch):
    monkeypatch.setenv("SPARSETRAIN_STORAGE_FALLBACK_LOG_VERBOSE", "0")
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ex = _fallback_symbol().simple_bind(b=(2, 2), c=(2, 2))
        ex.forward()
    assert _fallback_warnings(record) == []


def test_strict_mode_flag_on_simple_bind():
    with pytest.raises(StorageTypeError, match=r"'mixed_add' \(elemwise_add\).*\(csr, row_sparse\).*\(default\)"):
        _fallback_symbol().simple_bind(b=(2, 2), c=(2, 2), strict_stypes=True)
    # no fallback, no error
    ex = mx.sym.negative(mx.sym.var("b", stype="csr")).simple_bind(b=(2, 2), strict_stypes=True)
    assert ex.forward()[0].stype == "csr"


def test_strict_mode_global_switch():
    previous = mx.set_strict_stypes(True)
    try:
        with pytest.raises(StorageTypeError, match=r"'mixed_add' \(elemwise_add\)"):
            _fallback_symbol().simple_bind(b=(2, 2), c=(2, 2))
        with pytest.raises(StorageTypeError, match=r"log.*\(csr\)"):
            nd.log(nd.ones((2, 2)).tostype("csr"))
        with pytest.raises(StorageTypeError, match=r"dot"):  # a fallback in the backward graph
            data = mx.sym.var("data", stype="csr")
            mx.sym.dot(data, mx.sym.var("w", stype="row_sparse")).simple_bind(data=(2, 3), w=(3, 1))
    finally:
        mx.set_strict_stypes(previous)
    assert mx.set_strict_stypes(previous) is False


# -- bad input -------------------------------------------------------------------------------------

def test_unknown_argument_in_simple_bind():
    with pytest.raises(BindError, match=r"unknown argument 'wieght'.*did you mean 'weight'\?"):
        lro_network().simple_bind(data=(1, 100), wieght=(100, 1))
    with pytest.raises(BindError, match=r"'nonsense'.*\['data', 'weight', 'bias', 'label'\]"):
        lro_network().simple_bind(data=(1, 100), nonsense=(1,))
    with pytest.raises(BindError, match="'wieght'"):
        lro_network().infer_shape(data=(1, 100), wieght=(100, 1))


def test_bad_grad_req():
    with pytest.raises(BindError, match="'weight'.*'sometimes'"):
        lro_network().simple_bind(data=(1, 100), grad_req={"weight": "sometimes"})


def test_assigning_a_wrong_shape_into_an_argument_slot():
    ex = mx.sym.negative(mx.sym.var("x", stype="csr")).simple_bind(x=(2, 2))
    with pytest.raises(ShapeError, match=r"\(3, 3\).*\(2, 2\)"):
        ex.arg_dict["x"][:] = nd.ones((3, 3)).tostype("csr")
    with pytest.raises(ShapeError, match=r"\(3, 3\).*\(2, 2\)"):
        ex.forward(x=nd.ones((3, 3)))
    with pytest.raises(BindError, match="'y'"):
        ex.forward(y=nd.ones((2, 2)))


def test_forward_kwargs_and_bind():
    sym = mx.sym.elemwise_mul(mx.sym.var("a"), mx.sym.var("b"))
    ex = sym.simple_bind(a=(2,), b=(2,))
    out = ex.forward(a=nd.array([1, 2]), b=nd.array([3, 4]))[0]
    np.testing.assert_array_equal(out.asnumpy(), [3, 8])
    args = {"a": nd.array([1.0, 2.0]), "b": nd.array([3.0, 4.0])}
    grads = {"a": nd.zeros((2,)), "b": nd.zeros((2,))}
    ex2 = sym.bind(mx.cpu(), args=args, args_grad=grads)
    ex2.forward(is_train=True)
    ex2.backward(nd.ones((2,)))
    np.testing.assert_array_equal(grads["a"].asnumpy(), [3, 4])
    np.testing.assert_array_equal(grads["b"].asnumpy(), [1, 2])
    with pytest.raises(BindError, match=r"\['b'\]"):
        sym.bind(args={"a": nd.ones((2,))})


def test_simple_bind_allocates_zeros_of_declared_stypes_and_dtypes():
    ex = lro_network(8).simple_bind(data=(4, 8), type_dict={"weight": "float64"})
    assert ex.arg_dict["data"].stype == "csr" and ex.arg_dict["data"].nnz == 0
    assert ex.arg_dict["weight"].stype == "row_sparse" and ex.arg_dict["weight"].dtype == np.float64
    assert ex.arg_dict["label"].shape == (4, 1)
    assert ex.grad_dict["weight"].stype == "row_sparse"
    assert ex.aux_dict == {}
    for arr in ex.arg_dict.values():
        assert not arr.asnumpy().any()


# -- rand_ndarray ---------------------------------------------------------------------------------

@pytest.mark.parametrize("stype", ["default", "csr", "row_sparse"])
def test_rand_ndarray_is_seeded(stype):
    mx.random.seed(42)
    a = mx.test_utils.rand_ndarray((50, 40), stype, 0.1)
    mx.random.seed(42)
    b = mx.test_utils.rand_ndarray((50, 40), stype, 0.1)
    mx.random.seed(43)
    c = mx.test_utils.rand_ndarray((50, 40), stype, 0.1)
    assert a.stype == stype and a.shape == (50, 40) and a.dtype == np.float32
    np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    assert not np.array_equal(a.asnumpy(), c.asnumpy())


@pytest.mark.parametrize("density", [0.01, 0.1, 0.5])
def test_rand_ndarray_density(density):
    mx.random.seed(0)
    x = mx.test_utils.rand_ndarray((400, 250), "csr", density)
    assert abs(x.nnz / x.size - density) < 0.2 * density + 0.002
    r = mx.test_utils.rand_ndarray((2000, 5), "row_sparse", density)
    assert abs(len(r.indices.asnumpy()) / 2000 - density) < 0.3 * density + 0.01
    assert mx.test_utils.rand_ndarray((3, 3), "csr", 0.0).nnz == 0
    d = mx.test_utils.rand_ndarray((3, 3), "csr", 1.0)
    assert d.nnz == 9
    assert mx.test_utils.rand_ndarray((4, 4), "csr", 0.5, dtype="float64").dtype == np.float64


def test_rand_ndarray_rejects_bad_stype():
    with pytest.raises(StorageTypeError):
        mx.test_utils.rand_ndarray((2, 2), "dense", 0.5)


def test_executor_strict_flag_wins_over_the_global_switch():
    ex = _fallback_symbol().simple_bind(b=(2, 2), c=(2, 2), strict_stypes=False)
    previous = mx.set_strict_stypes(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StorageFallbackWarning)
            assert ex.forward()[0].stype == "default"
    finally:
        mx.set_strict_stypes(previous)


def test_out_grads_of_the_wrong_shape():
    ex = mx.sym.square(mx.sym.var("a"), name="sq").simple_bind(a=(2,))
    ex.forward(is_train=True)
    with pytest.raises(ShapeError, match=r"'sq_output'.*\(3,\).*\(2,\)"):
        ex.backward(nd.ones((3,)))
