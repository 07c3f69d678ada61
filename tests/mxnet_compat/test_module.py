"""``mx.mod.Module`` with sparse models as in MXNet 1.9.1's documentation and sparse tests."""
import numpy as np

import sparsetrain as mx


def _regression_model(m):
    x = mx.sym.var("data", stype="csr")
    v = mx.sym.var("v", shape=(m, 1), init=mx.init.Uniform(scale=0.1), stype="row_sparse")
    model = mx.sym.dot(lhs=x, rhs=v)
    return mx.sym.LinearRegressionOutput(data=model, label=mx.sym.var("label"), name="out")


def test_arg_params_after_init_params():
    n, m = 32, 20
    data = mx.nd.zeros(shape=(n, m), stype="csr")
    it = mx.io.NDArrayIter(data=data, label={"label": mx.nd.zeros((n, 1))}, batch_size=n,
                           last_batch_handle="discard")
    mod = mx.mod.Module(symbol=_regression_model(m), data_names=["data"], label_names=["label"])
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    mod.init_params()
    v = mod._arg_params["v"]
    assert v.stype == "row_sparse" and v.shape == (m, 1)
    assert np.sum(np.abs(v.asnumpy())) != 0
    np.testing.assert_array_equal(mod.get_params()[0]["v"].asnumpy(), v.asnumpy())


def test_factorization_machine_module_learns():
    """MXNet's FM Module test, smaller: _square_sum + Concat on csr data with row_sparse weights."""
    mx.random.seed(11)
    k, dim, batch, n_batches = 4, 200, 32, 4
    norm = mx.init.Normal(sigma=0.01)
    x = mx.sym.var("data", stype="csr")
    v = mx.sym.var("v", shape=(dim, k), init=norm, stype="row_sparse")
    w1 = mx.sym.var("w1_weight", shape=(dim, 1), init=norm, stype="row_sparse")
    v_s = mx.sym._internal._square_sum(data=v, axis=1, keepdims=True)
    bd_sum = mx.sym.dot(mx.sym.square(data=x), v_s)
    w2_squared = 0.5 * mx.sym.square(data=mx.sym.dot(x, v))
    w_all = mx.sym.Concat(mx.sym.dot(x, w1), w2_squared, dim=1)
    model = mx.sym.elemwise_add(mx.sym.sum(data=w_all, axis=1, keepdims=True), 0.5 * mx.sym.negative(bd_sum))
    model = mx.sym.LinearRegressionOutput(data=model, label=mx.sym.var("label"))

    csr = mx.test_utils.rand_ndarray((batch * n_batches, dim), "csr", 0.1)
    it = mx.io.NDArrayIter(data=csr, label={"label": mx.nd.ones((batch * n_batches, 1))},
                           batch_size=batch, last_batch_handle="discard")
    mod = mx.mod.Module(symbol=model, data_names=["data"], label_names=["label"])
    mod.bind(data_shapes=it.provide_data, label_shapes=it.provide_label)
    mod.init_params(initializer=norm)
    mod.init_optimizer(optimizer=mx.optimizer.SGD(momentum=0.1, clip_gradient=5.0, learning_rate=0.05,
                                                  rescale_grad=1.0 / batch))
    metric = mx.metric.create("MSE")
    history = []
    for _ in range(8):
        it.reset()
        metric.reset()
        for b in it:
            mod.forward(b, is_train=True)
            mod.update_metric(metric, b.label)
            mod.backward()
            mod.update()
        history.append(metric.get()[1])
    assert mod._arg_params["v"].stype == "row_sparse"
    assert history[-1] < 0.5 * history[0]
