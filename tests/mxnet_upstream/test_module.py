"""MXNet 1.9.1 ``tests/python/unittest/test_module.py``, its sparse tests (a factorization machine
trained with sparse SGD/Adam/AdaGrad, a row_sparse weight's initializer), ported to run on
sparsetrain or MXNet."""
import numpy as np
import pytest

from ._harness import mx, rand_ndarray, seed_all


# upstream: test_module.py::test_factorization_machine_module (@with_seed(11))
@pytest.mark.slow  # three optimizers, 10-20 epochs each over a 10000-feature model
def test_factorization_machine_module():
    seed_all(11)

    def check_factorization_machine_module(optimizer=None, num_epochs=None):
        def fm(factor_size, feature_dim, init):
            x = mx.symbol.Variable("data", stype='csr')
            v = mx.symbol.Variable("v", shape=(feature_dim, factor_size), init=init, stype='row_sparse')
            w1_weight = mx.symbol.var('w1_weight', shape=(feature_dim, 1), init=init, stype='row_sparse')
            w1_bias = mx.symbol.var('w1_bias', shape=(1))
            w1 = mx.symbol.broadcast_add(mx.symbol.dot(x, w1_weight), w1_bias)

            v_s = mx.symbol._internal._square_sum(data=v, axis=1, keepdims=True)
            x_s = mx.symbol.square(data=x)
            bd_sum = mx.sym.dot(x_s, v_s)

            w2 = mx.symbol.dot(x, v)
            w2_squared = 0.5 * mx.symbol.square(data=w2)

            w_all = mx.symbol.Concat(w1, w2_squared, dim=1)
            sum1 = mx.symbol.sum(data=w_all, axis=1, keepdims=True)
            sum2 = 0.5 * mx.symbol.negative(bd_sum)
            model = mx.sym.elemwise_add(sum1, sum2)

            y = mx.symbol.Variable("label")
            return mx.symbol.LinearRegressionOutput(data=model, label=y)

        init = mx.initializer.Normal(sigma=0.01)
        factor_size = 4
        feature_dim = 10000
        model = fm(factor_size, feature_dim, init)

        num_batches = 5
        batch_size = 64
        num_samples = batch_size * num_batches
        csr_nd = rand_ndarray((num_samples, feature_dim), 'csr', 0.1)
        label = mx.nd.ones((num_samples, 1))
        train_iter = mx.io.NDArrayIter(data=csr_nd, label={'label': label}, batch_size=batch_size,
                                       last_batch_handle='discard')
        mod = mx.mod.Module(symbol=model, data_names=['data'], label_names=['label'])
        mod.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label)
        mod.init_params(initializer=init)
        if optimizer == 'sgd':
            sgd = mx.optimizer.SGD(momentum=0.1, clip_gradient=5.0, learning_rate=0.01,
                                   rescale_grad=1.0 / batch_size)
            mod.init_optimizer(optimizer=sgd)
            num_epochs = num_epochs or 10
            expected_accuracy = 0.02
        elif optimizer == 'adam':
            adam = mx.optimizer.Adam(clip_gradient=5.0, learning_rate=0.001, rescale_grad=1.0 / batch_size)
            mod.init_optimizer(optimizer=adam)
            num_epochs = num_epochs or 10
            expected_accuracy = 0.05
        elif optimizer == 'adagrad':
            adagrad = mx.optimizer.AdaGrad(clip_gradient=5.0, learning_rate=0.01, rescale_grad=1.0 / batch_size)
            mod.init_optimizer(optimizer=adagrad)
            num_epochs = num_epochs or 20
            expected_accuracy = 0.09
        else:
            raise AssertionError("Unsupported optimizer type '" + optimizer + "' specified")
        metric = mx.metric.create('MSE')
        for _ in range(num_epochs):
            train_iter.reset()
            metric.reset()
            for batch in train_iter:
                mod.forward(batch, is_train=True)
                mod.update_metric(metric, batch.label)
                mod.backward()
                mod.update()
        if num_epochs > 1:
            assert metric.get()[1] < expected_accuracy

    check_factorization_machine_module('sgd')
    check_factorization_machine_module('adam')
    check_factorization_machine_module('adagrad')


# upstream: test_module.py::test_module_initializer
def test_module_initializer():
    def regression_model(m):
        x = mx.symbol.var("data", stype='csr')
        v = mx.symbol.var("v", shape=(m, 1), init=mx.init.Uniform(scale=.1), stype='row_sparse')
        model = mx.symbol.dot(lhs=x, rhs=v)
        y = mx.symbol.Variable("label")
        return mx.symbol.LinearRegressionOutput(data=model, label=y, name="out")

    n, m = 128, 100
    model = regression_model(m)
    data = mx.nd.zeros(shape=(n, m), stype='csr')
    label = mx.nd.zeros((n, 1))
    iterator = mx.io.NDArrayIter(data=data, label={'label': label}, batch_size=n, last_batch_handle='discard')
    mod = mx.mod.Module(symbol=model, data_names=['data'], label_names=['label'])
    mod.bind(data_shapes=iterator.provide_data, label_shapes=iterator.provide_label)
    mod.init_params()
    v = mod._arg_params['v']
    assert v.stype == 'row_sparse'
    assert np.sum(v.asnumpy()) != 0
