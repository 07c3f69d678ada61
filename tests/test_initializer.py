"""Initializers: MXNet name rules, per-variable overrides, distributions, specs, reproducibility."""
import json

import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain import initializer as init
from sparsetrain.base import StorageTypeError
from sparsetrain.initializer import InitDesc


def _dense(shape, dtype=np.float32):
    return mx.nd.array(np.full(shape, 7.0), dtype=dtype)


def test_name_rules_like_mxnet():
    rule_values = {"fc_bias": 0.0, "bias": 0.0, "bn_gamma": 1.0, "bn_beta": 0.0,
                   "bn_moving_mean": 0.0, "bn_moving_var": 1.0}
    for name, value in rule_values.items():
        arr = _dense((3, 2))
        init.Normal(1.0)(InitDesc(name), arr)
        np.testing.assert_array_equal(arr.asnumpy(), np.full((3, 2), value, np.float32))
    arr = _dense((50, 40))
    init.Constant(0.25)("fc_weight", arr)  # plain name strings work too
    np.testing.assert_array_equal(arr.asnumpy(), 0.25)


def test_unknown_name_raises_naming_the_parameter():
    with pytest.raises(ValueError, match=r"'embed_table'.*init=.*weight.*bias"):
        init.Normal()(InitDesc("embed_table"), _dense((2, 2)))


def test_dense_is_filled_in_place():
    arr = _dense((4, 3))
    buf = arr._data
    init.Uniform(0.5)(InitDesc("w_weight"), arr)
    assert arr._data is buf and arr.dtype == np.float32
    assert np.all(np.abs(buf) <= 0.5) and not np.all(buf == 7.0)


def test_per_variable_init_wins_over_name_rule():
    arr = _dense((3,))
    init.Zero()(InitDesc("bias", {"init": init.Constant(2.0)}), arr)
    np.testing.assert_array_equal(arr.asnumpy(), 2.0)
    # MXNet's attribute: the JSON spec under '__init__', also on a name with no rule
    arr = _dense((3,))
    init.Zero()(InitDesc("table", {"__init__": init.One().dumps()}), arr)
    np.testing.assert_array_equal(arr.asnumpy(), 1.0)
    arr = _dense((3,))
    init.Zero()(InitDesc("w_weight", {"init": "ones"}), arr)
    np.testing.assert_array_equal(arr.asnumpy(), 1.0)


def test_row_sparse_is_initialized_in_full():
    mx.random.seed(5)
    arr = mx.nd.zeros((100, 3), stype="row_sparse")
    init.Normal(0.5)(InitDesc("weight"), arr)
    assert arr.stype == "row_sparse" and arr.shape == (100, 3)
    np.testing.assert_array_equal(arr._indices, np.arange(100))
    assert arr._indices.dtype == np.int64 and arr._data.shape == (100, 3) and arr._data.dtype == np.float32
    # same values as a dense parameter from the same seed
    mx.random.seed(5)
    dense = mx.nd.zeros((100, 3))
    init.Normal(0.5)(InitDesc("weight"), dense)
    np.testing.assert_array_equal(arr.asnumpy(), dense.asnumpy())
    bias = mx.nd.zeros((4, 1), stype="row_sparse")
    init.Normal(0.5)("bias", bias)
    np.testing.assert_array_equal(bias._indices, np.arange(4))
    np.testing.assert_array_equal(bias.asnumpy(), 0.0)


def test_csr_parameter_is_rejected():
    with pytest.raises(StorageTypeError):
        init.Normal()("weight", mx.nd.zeros((3, 3), stype="csr"))


def test_distributions_follow_their_parameters():
    mx.random.seed(0)
    arr = mx.nd.zeros((400, 250))
    init.Normal(sigma=0.2)("weight", arr)
    values = arr.asnumpy()
    assert abs(values.mean()) < 0.005 and abs(values.std() - 0.2) < 0.005
    init.Uniform(scale=0.3)("weight", arr)
    values = arr.asnumpy()
    assert values.min() >= -0.3 and values.max() <= 0.3
    assert abs(values.std() - 0.3 / np.sqrt(3)) < 0.005


@pytest.mark.parametrize("rnd_type,factor_type,magnitude", [
    ("uniform", "avg", 3), ("gaussian", "in", 2), ("uniform", "out", 1.5)])
def test_xavier_scale_matches_mxnet_formula(rnd_type, factor_type, magnitude):
    shape = (60, 30, 2, 2)
    fan_in, fan_out = 30 * 4, 60 * 4
    factor = {"avg": (fan_in + fan_out) / 2, "in": fan_in, "out": fan_out}[factor_type]
    scale = np.sqrt(magnitude / factor)
    mx.random.seed(1)
    arr = mx.nd.zeros(shape)
    init.Xavier(rnd_type, factor_type, magnitude)("conv_weight", arr)
    values = arr.asnumpy()
    if rnd_type == "uniform":
        assert np.abs(values).max() <= scale
        assert abs(values.std() - scale / np.sqrt(3)) < 0.03 * scale
    else:
        assert abs(values.std() - scale) < 0.03 * scale


def test_xavier_rejects_vectors_and_bad_options():
    with pytest.raises(ValueError, match="at least 2"):
        init.Xavier()("v_weight", mx.nd.zeros((5,)))
    with pytest.raises(ValueError):
        init.Xavier(rnd_type="normal")
    with pytest.raises(ValueError):
        init.Xavier(factor_type="sum")


def test_same_seed_same_values_and_float32_output():
    values = []
    for _ in range(2):
        mx.random.seed(42)
        arr = mx.nd.zeros((10, 4))
        init.Xavier(rnd_type="gaussian")("weight", arr)
        values.append(arr.asnumpy())
    np.testing.assert_array_equal(values[0], values[1])
    assert values[0].dtype == np.float32
    arr64 = mx.nd.zeros((10, 4), dtype="float64")
    init.Normal()("weight", arr64)
    assert arr64.dtype == np.float64


def test_constant_scalar_and_array():
    arr = mx.nd.zeros((2, 3))
    init.Constant([1.0, 2.0, 3.0])("weight", arr)
    np.testing.assert_array_equal(arr.asnumpy(), [[1, 2, 3], [1, 2, 3]])
    with pytest.raises(ValueError, match="broadcast"):
        init.Constant([1.0, 2.0])("weight", arr)


def test_mixed_uses_first_matching_pattern():
    mixed = init.Mixed(["emb.*", ".*"], [init.Constant(3.0), init.Zero()])
    a, b = mx.nd.zeros((2,)), _dense((2,))
    mixed("emb_weight", a)
    mixed("fc_weight", b)
    np.testing.assert_array_equal(a.asnumpy(), 3.0)
    np.testing.assert_array_equal(b.asnumpy(), 0.0)
    with pytest.raises(ValueError, match="'fc_weight'.*patterns"):
        init.Mixed(["emb.*"], [init.One()])("fc_weight", b)
    with pytest.raises(ValueError):
        init.Mixed(["a", "b"], [init.One()])


@pytest.mark.parametrize("initializer", [
    init.Normal(0.03), init.Uniform(0.2), init.Xavier("gaussian", "in", 2), init.Zero(), init.One(),
    init.Constant(1.5), init.Constant([1.0, 2.0]), init.Mixed([".*bias", ".*"], [init.Zero(), init.Normal(0.1)]),
])
def test_dumps_load_spec_round_trip(initializer):
    spec = json.loads(initializer.dumps())
    assert isinstance(spec, list) and spec[0] == type(initializer).__name__.lower()
    rebuilt = init.load_spec(spec)
    assert type(rebuilt) is type(initializer) and rebuilt.dumps() == initializer.dumps()
    assert init.create(initializer.dumps()) == initializer


def test_dumps_format_is_mxnets():
    assert json.loads(init.Normal(0.01).dumps()) == ["normal", {"sigma": 0.01}]
    assert json.loads(init.Xavier().dumps()) == ["xavier", {"rnd_type": "uniform", "factor_type": "avg", "magnitude": 3}]


def test_create_forms():
    assert init.create("normal") == init.Normal()
    assert init.create("Xavier") == init.Xavier()
    assert init.create("zeros") == init.Zero() and init.create("ones") == init.One()
    assert init.create({"normal": {"sigma": 0.5}}) == init.Normal(0.5)
    assert init.create({"uniform": None}) == init.Uniform()
    assert init.create(["constant", {"value": 2}]) == init.Constant(2)
    assert init.create("normal", sigma=0.3) == init.Normal(0.3)
    same = init.One()
    assert init.create(same) is same
    with pytest.raises(ValueError, match="unknown initializer 'gauss'.*normal"):
        init.create("gauss")
    with pytest.raises(ValueError, match="bad arguments"):
        init.create({"normal": {"scale": 1}})
    with pytest.raises(ValueError):
        init.create({"normal": {}, "uniform": {}})


def test_symbol_json_keeps_variable_initializer():
    w = mx.sym.Variable("w", shape=(3, 2), init=init.Normal(0.5))
    loaded = mx.sym.load_json(w.tojson())
    node_attrs = json.loads(loaded.tojson())["nodes"][0]["attrs"]
    assert init.load_spec(node_attrs["init"]["__initializer__"]) == init.Normal(0.5)
    arr = mx.nd.zeros((3, 2))
    mx.random.seed(2)
    init.Zero()(InitDesc("w", {"init": init.load_spec(node_attrs["init"]["__initializer__"])}), arr)
    assert arr.asnumpy().std() > 0.1


def test_module_init_params_uses_variable_init():
    data = mx.sym.Variable("data", stype="csr")
    weight = mx.sym.Variable("weight", stype="row_sparse", shape=(6, 1), init=init.Constant(0.5))
    bias = mx.sym.Variable("bias", shape=(1,))
    out = mx.sym.LinearRegressionOutput(mx.sym.broadcast_add(mx.sym.sparse.dot(data, weight), bias),
                                        mx.sym.Variable("label"), name="lro")
    mod = mx.mod.Module(out, data_names=["data"], label_names=["label"])
    mod.bind(data_shapes=[("data", (2, 6))], label_shapes=[("label", (2, 1))])
    mod.init_params(initializer=init.Normal(1.0))
    args, _ = mod.get_params()
    np.testing.assert_array_equal(args["weight"].asnumpy(), 0.5)
    np.testing.assert_array_equal(args["weight"]._indices, np.arange(6))
    np.testing.assert_array_equal(args["bias"].asnumpy(), 0.0)
