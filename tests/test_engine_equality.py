"""Compiled engine == graph engine: parameters and per-epoch metrics, over the supported matrix."""
import itertools

import numpy as np
import pytest

import sparsetrain as st

OUTPUTS = {
    "LinearRegressionOutput": ("regression", "mse"),
    "MAERegressionOutput": ("regression", "mae"),
    "LogisticRegressionOutput": ("binary", "accuracy"),
    "SoftmaxOutput": ("multiclass", "ce"),
}
OPTIMIZERS = {
    "sgd": {"learning_rate": 0.05},
    "sgd_mom": {"learning_rate": 0.02, "momentum": 0.9, "wd": 1e-3, "clip_gradient": 5.0},
    "adagrad": {"learning_rate": 0.1, "wd": 1e-4},
    "adam": {"learning_rate": 0.01},
    "ftrl": {"learning_rate": 0.1, "lamda1": 0.001},
}


def _data(task, rows=37, features=20, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = st.test_utils.rand_ndarray((rows, features), "csr", 0.2)
    dense = x.asnumpy()
    w = rng.normal(size=(features, classes if task == "multiclass" else 1))
    score = dense @ w
    if task == "regression":
        y = score[:, 0]
    elif task == "binary":
        y = (score[:, 0] > np.median(score[:, 0])).astype(np.float32)
    else:
        y = score.argmax(axis=1).astype(np.float32)
    return x, y.astype(np.float32)


def _train(engine, output, opt, batch_size, last_batch, shuffle, bias=True, epochs=3, **loss_params):
    task, metric_name = OUTPUTS[output]
    st.random.seed(11)
    x, y = _data(task)
    k = 3 if output == "SoftmaxOutput" else 1
    it = st.io.NDArrayIter(x, y, batch_size, shuffle=shuffle, last_batch_handle=last_batch, label_name="label")
    data = st.sym.Variable("data", stype="csr")
    weight = st.sym.Variable("weight", stype="row_sparse", shape=(20, k))
    pred = st.sym.sparse.dot(data, weight)
    if bias:
        pred = st.sym.broadcast_add(pred, st.sym.Variable("bias", shape=(k,)))
    loss = getattr(st.sym, output)(data=pred, label=st.sym.Variable("label"), name="out", **loss_params)
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.1))
    name = "sgd" if opt.startswith("sgd") else opt
    mod.init_optimizer(optimizer=name, optimizer_params=dict(OPTIMIZERS[opt]))
    metric = st.metric.create(metric_name)
    history = []
    for epoch in range(epochs):
        metric.reset()
        mod.run_epoch(it, metric, engine=engine, epoch=epoch)
        history.append(metric.get()[1])
    assert mod.engine_choice[0] == engine, mod.engine_choice
    return {k: v.asnumpy() for k, v in mod.get_params()[0].items()}, history


CASES = list(itertools.product(OUTPUTS, OPTIMIZERS, [1, 4], ["pad", "discard", "roll_over"]))


@pytest.mark.parametrize("output,opt,batch_size,last_batch", CASES)
def test_compiled_equals_graph(output, opt, batch_size, last_batch):
    shuffle = batch_size == 4  # half the matrix reshuffles every epoch
    graph_params, graph_hist = _train("graph", output, opt, batch_size, last_batch, shuffle)
    comp_params, comp_hist = _train("compiled", output, opt, batch_size, last_batch, shuffle)
    np.testing.assert_allclose(comp_hist, graph_hist, rtol=1e-4, atol=1e-6)
    for name in graph_params:
        np.testing.assert_allclose(comp_params[name], graph_params[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("opt,batch_size,last_batch", [("sgd_mom", 4, "pad"), ("sgd", 5, "roll_over"),
                                                       ("sgd_mom", 1, "discard")])  # SGD: scale-sensitive
def test_compiled_equals_graph_softmax_batch_normalization(opt, batch_size, last_batch):
    graph_params, graph_hist = _train("graph", "SoftmaxOutput", opt, batch_size, last_batch, True,
                                      normalization="batch")
    comp_params, comp_hist = _train("compiled", "SoftmaxOutput", opt, batch_size, last_batch, True,
                                    normalization="batch")
    np.testing.assert_allclose(comp_hist, graph_hist, rtol=1e-4, atol=1e-6)
    for name in graph_params:
        np.testing.assert_allclose(comp_params[name], graph_params[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_compiled_equals_graph_without_bias_batch_32():
    g, gh = _train("graph", "LinearRegressionOutput", "adam", 32, "pad", True, bias=False)
    c, ch = _train("compiled", "LinearRegressionOutput", "adam", 32, "pad", True, bias=False)
    np.testing.assert_allclose(ch, gh, rtol=1e-4)
    np.testing.assert_allclose(c["weight"], g["weight"], rtol=1e-4, atol=1e-6)


def _module_for(symbol, stypes_weight="row_sparse"):
    x = st.test_utils.rand_ndarray((8, 20), "csr", 0.3)
    it = st.io.NDArrayIter(x, np.zeros(8, np.float32), 2, label_name="label")
    mod = st.mod.Module(symbol, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.1))
    mod.init_optimizer(optimizer="sgd")
    return mod, it


def test_an_op_without_a_fused_form_is_named():
    data = st.sym.Variable("data", stype="csr")
    weight = st.sym.Variable("weight", stype="row_sparse", shape=(20, 1))
    pred = st.sym.log1p(st.sym.sparse.dot(data, weight))
    loss = st.sym.LinearRegressionOutput(data=pred, label=st.sym.Variable("label"))
    mod, it = _module_for(loss)
    engine, reason = mod.choose_engine("auto", it)
    assert engine == "graph" and "log1p" in reason
    with pytest.raises(st.SparseTrainError, match="log1p"):
        mod.choose_engine("compiled", it)


def test_a_dense_weight_runs_as_a_generated_plan():
    data = st.sym.Variable("data", stype="csr")
    weight = st.sym.Variable("weight", shape=(20, 1))
    loss = st.sym.LinearRegressionOutput(data=st.sym.dot(data, weight), label=st.sym.Variable("label"))
    mod, it = _module_for(loss)
    engine, reason = mod.choose_engine("auto", it)
    assert engine == "compiled" and reason.startswith("generated plan")


def test_matcher_accepts_two_dots_summed():
    a = st.sym.Variable("data", stype="csr")
    w1 = st.sym.Variable("w1_weight", stype="row_sparse", shape=(20, 1))
    w2 = st.sym.Variable("w2_weight", stype="row_sparse", shape=(20, 1))
    pred = st.sym.elemwise_add(st.sym.sparse.dot(a, w1), st.sym.sparse.dot(a, w2))
    loss = st.sym.LinearRegressionOutput(data=pred, label=st.sym.Variable("label"))
    mod, it = _module_for(loss)
    assert mod.choose_engine("auto", it)[0] == "compiled"


def test_the_engine_line_names_the_multipliers_a_parameter_trains_with():
    # fit's 'engine compiled (...)' line lists the parameters with the lr_mult / wd_mult other than 1 their
    # optimizer applies (Optimizer.multipliers): the symbol's, and with a Module's named optimizer MXNet's
    # name rule (wd_mult 0 for a name ending neither in _weight nor in _gamma: 'weight', 'bias')
    a = st.sym.Variable("data", stype="csr")
    w = st.sym.Variable("weight", stype="row_sparse", shape=(20, 1), lr_mult=0.5)
    v = st.sym.Variable("fc_weight", stype="row_sparse", shape=(20, 1), wd_mult=2)
    pred = st.sym.broadcast_add(st.sym.elemwise_add(st.sym.sparse.dot(a, w), st.sym.sparse.dot(a, v)),
                                st.sym.Variable("bias", shape=(1,)))
    mod, it = _module_for(st.sym.LinearRegressionOutput(data=pred, label=st.sym.Variable("label")))
    assert mod.choose_engine("auto", it) == ("compiled", "LinearRegressionOutput(dot(data, weight (lr_mult 0.5, "
                                             "wd_mult 0)) + dot(data, fc_weight (wd_mult 2)) + bias (wd_mult 0))")
    # an optimizer object (as the CLI's) knows no names when made: the symbol's multipliers only; the line follows
    mod.init_optimizer(optimizer=st.optimizer.SGD(sym=mod.symbol), force_init=True)
    assert mod.choose_engine("auto", it)[1] == ("LinearRegressionOutput(dot(data, weight (lr_mult 0.5)) + "
                                                "dot(data, fc_weight (wd_mult 2)) + bias)")
    # the compile step's target (kept per binding, whatever the optimizer) names them plainly
    from sparsetrain.engines import compiled

    assert compiled.compile_model(mod.view()).reason == ("LinearRegressionOutput(dot(data, weight) + "
                                                         "dot(data, fc_weight) + bias)")


def test_compiled_engine_stops_on_nan_with_epoch_and_batch():
    st.random.seed(0)
    x, y = _data("regression")
    y[5] = np.nan
    it = st.io.NDArrayIter(x, y, 1, label_name="label")
    data = st.sym.Variable("data", stype="csr")
    weight = st.sym.Variable("weight", stype="row_sparse", shape=(20, 1))
    loss = st.sym.LinearRegressionOutput(data=st.sym.sparse.dot(data, weight), label=st.sym.Variable("label"))
    for engine in ("graph", "compiled"):
        mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(st.initializer.Normal(0.1))
        mod.init_optimizer(optimizer="sgd")
        with pytest.raises(st.base.NonFiniteError) as err:
            mod.run_epoch(it, st.metric.create("mse"), engine=engine, epoch=2)
        assert err.value.epoch == 2 and err.value.batch is not None


@pytest.mark.parametrize("batch_size", [1, 4])
def test_compiled_equals_graph_with_lr_schedule(batch_size):
    def run(engine):
        st.random.seed(5)
        x, y = _data("regression")
        it = st.io.NDArrayIter(x, y, batch_size, label_name="label")
        data = st.sym.Variable("data", stype="csr")
        weight = st.sym.Variable("weight", stype="row_sparse", shape=(20, 1))
        loss = st.sym.LinearRegressionOutput(data=st.sym.sparse.dot(data, weight), label=st.sym.Variable("label"))
        mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(st.initializer.Normal(0.1))
        sched = st.lr_scheduler.FactorScheduler(step=7, factor=0.5, base_lr=0.05)
        mod.init_optimizer(optimizer=st.optimizer.SGD(momentum=0.5, lr_scheduler=sched))
        for epoch in range(3):
            mod.run_epoch(it, st.metric.create("mse"), engine=engine, epoch=epoch)
        assert mod.engine_choice[0] == engine
        return mod.get_params()[0]["weight"].asnumpy()

    np.testing.assert_allclose(run("compiled"), run("graph"), rtol=1e-5, atol=1e-7)


def test_module_optimizer_by_name_follows_mxnet_wd_mult():
    data = st.sym.Variable("data", stype="csr")
    w = st.sym.Variable("fc_weight", stype="row_sparse", shape=(20, 1))
    b = st.sym.Variable("fc_bias", shape=(1,))
    loss = st.sym.LinearRegressionOutput(data=st.sym.broadcast_add(st.sym.sparse.dot(data, w), b),
                                         label=st.sym.Variable("label"))
    x, y = _data("regression")
    it = st.io.NDArrayIter(x, y, 4, label_name="label")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "wd": 0.5})
    names = mod._param_names
    assert mod.optimizer._get_wd(names.index("fc_weight")) == 0.5
    assert mod.optimizer._get_wd(names.index("fc_bias")) == 0.0


def test_multi_label_logistic_with_a_class_metric_is_left_to_the_graph_engine():
    """K > 1 logistic outputs are independent binary outputs, not classes: no fused log_loss/accuracy."""
    from sparsetrain.engines import compiled

    X = st.test_utils.rand_ndarray((32, 20), "csr", density=0.2)
    Y = st.nd.array((np.random.RandomState(0).rand(32, 3) > 0.5).astype(np.float32))
    data = st.sym.var("data", stype="csr")
    w = st.sym.var("weight", stype="row_sparse", shape=(20, 3))
    net = st.sym.LogisticRegressionOutput(st.sym.sparse.dot(data, w), st.sym.var("label"), name="out")
    it = st.io.NDArrayIter(X, Y, batch_size=8, label_name="label")
    mod = st.mod.Module(net, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.init.Normal(0.1))
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1})
    for name in ("log_loss", "accuracy"):
        match = compiled.match(mod.view(), it, st.metric.create(name))
        assert not match.ok and "multi-label" in match.reason
    assert compiled.match(mod.view(), it, st.metric.create("mse")).ok
