"""MXNet 1.9.1 ``tests/python/unittest/test_optimizer.py``, its tests of the optimizers sparsetrain
claims (SGD with its csr fallback and float16 master copies, SGD's lazy and standard updates on
row_sparse weights/gradients, Adam, FTRL, AdaGrad), ported to run on sparsetrain
or MXNet. The reference optimizers are upstream's Python ones (subclasses of
``mx.optimizer.Optimizer``, compared with ``compare_optimizer``)."""
import math

import numpy as np
import pytest

from ._harness import compare_optimizer, mx


class PySGD(mx.optimizer.Optimizer):
    """upstream's Python reference of SGD (with multi_precision, float16 weights keep a float32 master copy)."""

    def __init__(self, learning_rate=0.01, momentum=0.0, multi_precision=False, **kwargs):
        super(PySGD, self).__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum
        self.multi_precision = multi_precision

    def create_state(self, index, weight):
        momentum = None
        if self.multi_precision and weight.dtype == np.float16:
            if self.momentum != 0.0:
                momentum = mx.nd.zeros(weight.shape, weight.context, dtype=np.float32)
            return (momentum, mx.nd.array(weight, ctx=weight.context, dtype=np.float32))
        if self.momentum != 0.0:
            momentum = mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype)
        return momentum

    def create_state_multi_precision(self, index, weight):
        return self.create_state(index, weight)

    def update(self, index, weight, grad, state):
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        self._update_count(index)
        if isinstance(state, (list, tuple)):
            grad32 = mx.nd.array(grad, ctx=grad.context, dtype=np.float32)
            mom, weight32 = state
            if self.momentum == 0.0:
                if self.clip_gradient is not None:
                    weight32[:] = ((1 - lr * wd) * weight32 -
                                   lr * mx.nd.clip(grad32 * self.rescale_grad, -self.clip_gradient, self.clip_gradient))
                else:
                    weight32[:] = (1 - lr * wd) * weight32 - lr * self.rescale_grad * grad32
            else:
                if self.clip_gradient is not None:
                    mom[:] = (self.momentum * mom - lr * wd * weight32 -
                              lr * mx.nd.clip(grad32 * self.rescale_grad, -self.clip_gradient, self.clip_gradient))
                else:
                    mom[:] = self.momentum * mom - lr * wd * weight32 - lr * self.rescale_grad * grad32
                weight32 += mom
            weight32.astype(weight.dtype).copyto(weight)
            return
        if self.momentum == 0.0:
            if self.clip_gradient is not None:
                weight[:] = ((1 - lr * wd) * weight -
                             lr * mx.nd.clip(grad * self.rescale_grad, -self.clip_gradient, self.clip_gradient))
            else:
                weight[:] = (1 - lr * wd) * weight - lr * self.rescale_grad * grad
        else:
            mom = state
            if self.clip_gradient is not None:
                mom[:] = (self.momentum * mom - lr * wd * weight -
                          lr * mx.nd.clip(grad * self.rescale_grad, -self.clip_gradient, self.clip_gradient))
                weight += mom
            else:
                mom[:] = self.momentum * mom - lr * wd * weight - lr * self.rescale_grad * grad
                weight += mom

    def update_multi_precision(self, index, weight, grad, state):
        self.update(index, weight, grad, state)


# upstream: test_optimizer.py::test_sgd (float16 runs with multi_precision=True; csr: MXNet's fallback)
@pytest.mark.slow  # 1,100 comparisons in three dtypes
def test_sgd():
    shape = (3, 4, 5)
    for dtype in [np.float16, np.float32, np.float64]:
        for kwarg in _options([{}, {'momentum': 0.9}],
                              [{}, {'clip_gradient': 0.4}, {'clip_gradient': 0.5}],
                              [{}, {'rescale_grad': 0.14}, {'rescale_grad': 0.8}],
                              [{}, {'wd': 0.03}, {'wd': 0.05}, {'wd': 0.07}],
                              [{}, {'multi_precision': False}, {'multi_precision': True}]):
            if dtype == np.float16 and not kwarg.get('multi_precision'):
                continue
            if dtype == np.float16:
                compare_optimizer(PySGD(**kwarg), mx.optimizer.SGD(**kwarg), shape, dtype, rtol=1e-3)
            else:
                compare_optimizer(PySGD(**kwarg), mx.optimizer.SGD(**kwarg), shape, dtype)
            if dtype != np.float16:
                compare_optimizer(PySGD(**kwarg), mx.optimizer.SGD(**kwarg), shape[:2], dtype,
                                  w_stype='csr', g_stype='csr')


class PySparseSGD(mx.optimizer.Optimizer):
    """upstream's Python reference of the lazy SGD update: rows whose gradient is all zero are skipped."""

    def __init__(self, learning_rate=0.01, momentum=0.0, **kwargs):
        super(PySparseSGD, self).__init__(learning_rate=learning_rate, **kwargs)
        self.momentum = momentum

    def create_state(self, index, weight):
        if self.momentum == 0.0:
            return None
        return mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype)

    def update(self, index, weight, grad, state):
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        self._update_count(index)
        num_rows = weight.shape[0]
        if self.momentum == 0.0:
            for row in range(num_rows):
                grad_row = grad[row].asnumpy()
                if mx.test_utils.almost_equal(grad_row, np.zeros_like(grad_row)):
                    continue
                if self.clip_gradient is not None:
                    weight[row] = ((1 - lr * wd) * weight[row] -
                                   lr * mx.nd.clip(grad[row] * self.rescale_grad,
                                                   -self.clip_gradient, self.clip_gradient))
                else:
                    weight[row] = (1 - lr * wd) * weight[row] - lr * self.rescale_grad * grad[row]
        else:
            mom = state
            for row in range(num_rows):
                grad_row = grad[row].asnumpy()
                if mx.test_utils.almost_equal(grad_row, np.zeros_like(grad_row)):
                    continue
                if self.clip_gradient is not None:
                    mom[row] = (self.momentum * mom[row] - lr * wd * weight[row] -
                                lr * mx.nd.clip(grad[row] * self.rescale_grad,
                                                -self.clip_gradient, self.clip_gradient))
                    weight[row] += mom[row]
                else:
                    mom[row] = self.momentum * mom[row] - lr * wd * weight[row] - lr * self.rescale_grad * grad[row]
                    weight[row] += mom[row]


def _options(*lists):
    """Every combination of the option dicts, merged (upstream's nested loops)."""
    combos = [{}]
    for options in lists:
        combos = [dict(c, **o) for c in combos for o in options]
    return combos


# upstream: test_optimizer.py::test_sparse_sgd
def test_sparse_sgd():
    shape = (3, 4, 5)
    for kwarg in _options([{}, {'momentum': 0.9}],
                          [{}, {'clip_gradient': 0.4}, {'clip_gradient': 0.5}],
                          [{}, {'rescale_grad': 0.14}, {'rescale_grad': 0.8}],
                          [{}, {'wd': 0.03}, {'wd': 0.05}, {'wd': 0.07}],
                          [{}, {'multi_precision': False}, {'multi_precision': True}]):
        compare_optimizer(PySparseSGD(**kwarg), mx.optimizer.SGD(**kwarg), shape, np.float32,
                          w_stype='row_sparse', g_stype='row_sparse')
        compare_optimizer(PySparseSGD(**kwarg), mx.optimizer.SGD(**kwarg), shape, np.float32,
                          w_stype='default', g_stype='row_sparse')


# upstream: test_optimizer.py::test_std_sparse_sgd
def test_std_sparse_sgd():
    shape = (3, 4, 5)
    for kwarg in _options([{'momentum': 0.0}, {'momentum': 0.9}],
                          [{}, {'clip_gradient': 0.4}, {'clip_gradient': 0.5}],
                          [{}, {'rescale_grad': 0.14}, {'rescale_grad': 0.8}],
                          [{}, {'wd': 0.03}, {'wd': 0.05}, {'wd': 0.07}]):
        compare_optimizer(PySGD(**kwarg), mx.optimizer.SGD(lazy_update=False, **kwarg), shape, np.float32,
                          w_stype='row_sparse', g_stype='row_sparse')
        compare_optimizer(PySGD(**kwarg), mx.optimizer.SGD(lazy_update=False, **kwarg), shape, np.float32,
                          w_stype='default', g_stype='row_sparse')


class PyAdam(mx.optimizer.Optimizer):
    """upstream's Python reference of Adam, row by row; ``lazy_update`` skips all-zero gradient rows."""

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8, lazy_update=True, **kwargs):
        super(PyAdam, self).__init__(learning_rate=learning_rate, **kwargs)
        self.beta1 = beta1
        self.beta2 = beta2
        self.epsilon = epsilon
        self.lazy_update = lazy_update

    def create_state(self, index, weight):
        return (mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype),
                mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype))

    def update(self, index, weight, grad, state):
        lr = self._get_lr(index)
        self._update_count(index)
        t = self._index_update_count[index]
        mean, variance = state
        wd = self._get_wd(index)
        num_rows = weight.shape[0]
        coef1 = 1. - self.beta1 ** t
        coef2 = 1. - self.beta2 ** t
        lr *= math.sqrt(coef2) / coef1
        for row in range(num_rows):
            all_zeros = mx.test_utils.almost_equal(grad[row].asnumpy(), np.zeros_like(grad[row].asnumpy()))
            if all_zeros and self.lazy_update:
                continue
            grad[row] = grad[row] * self.rescale_grad + wd * weight[row]
            if self.clip_gradient is not None:
                mx.nd.clip(grad[row], -self.clip_gradient, self.clip_gradient, out=grad[row])
            mean[row] *= self.beta1
            mean[row] += grad[row] * (1. - self.beta1)
            variance[row] *= self.beta2
            variance[row] += (1 - self.beta2) * mx.nd.square(grad[row], out=grad[row])
            weight[row] -= lr * mean[row] / (mx.nd.sqrt(variance[row]) + self.epsilon)


# upstream: test_optimizer.py::test_adam
@pytest.mark.slow  # 1,300 optimizer comparisons, the reference updating row by row in Python
def test_adam():
    shape = (3, 4, 5)
    for dtype in [np.float16, np.float32, np.float64]:
        for kwarg in _options([{}, {'clip_gradient': 0.4}, {'clip_gradient': 0.5}],
                              [{}, {'rescale_grad': 0.14}, {'rescale_grad': 0.8}],
                              [{}, {'wd': 0.03}, {'wd': 0.05}, {'wd': 0.07}],
                              [{}, {'multi_precision': False}, {'multi_precision': True}]):
            if dtype == np.float16 and not kwarg.get('multi_precision'):
                continue
            compare_optimizer(PyAdam(lazy_update=False, **kwarg), mx.optimizer.Adam(**kwarg), shape, dtype,
                              rtol=1e-4, atol=2e-5)
            compare_optimizer(PyAdam(**kwarg), mx.optimizer.Adam(**kwarg), shape, dtype,
                              w_stype='row_sparse', g_stype='row_sparse', rtol=1e-4, atol=2e-5)
            compare_optimizer(PyAdam(lazy_update=False, **kwarg), mx.optimizer.Adam(lazy_update=False, **kwarg),
                              shape, dtype, w_stype='row_sparse', g_stype='row_sparse', rtol=1e-4, atol=2e-5)
            compare_optimizer(PyAdam(**kwarg), mx.optimizer.Adam(**kwarg), shape, dtype,
                              w_stype='default', g_stype='row_sparse', rtol=1e-4, atol=2e-5)
            compare_optimizer(PyAdam(lazy_update=False, **kwarg), mx.optimizer.Adam(lazy_update=False, **kwarg),
                              shape, dtype, w_stype='default', g_stype='row_sparse', rtol=1e-4, atol=2e-5)


class PyFtrl(mx.optimizer.Optimizer):
    """upstream's Python reference of FTRL, row by row; ``lazy_update`` skips all-zero gradient rows."""

    def __init__(self, lamda1=0.01, learning_rate=0.1, beta=1, lazy_update=False, **kwargs):
        super(PyFtrl, self).__init__(**kwargs)
        self.lamda1 = lamda1
        self.beta = beta
        self.lr = learning_rate
        self.lazy_update = lazy_update

    def create_state(self, index, weight):
        return (mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype),  # dn
                mx.nd.zeros(weight.shape, weight.context, dtype=weight.dtype))  # n

    def update(self, index, weight, grad, state):
        self._update_count(index)
        wd = self._get_wd(index)
        lr = self._get_lr(index)
        num_rows = weight.shape[0]
        dn, n = state
        for row in range(num_rows):
            all_zeros = mx.test_utils.almost_equal(grad[row].asnumpy(), np.zeros_like(grad[row].asnumpy()))
            if all_zeros and self.lazy_update:
                continue
            grad[row] = grad[row] * self.rescale_grad
            if self.clip_gradient is not None:
                mx.nd.clip(grad[row], -self.clip_gradient, self.clip_gradient, out=grad[row])
            dn[row] += grad[row] - (mx.nd.sqrt(n[row] + grad[row] * grad[row]) - mx.nd.sqrt(n[row])) * weight[row] / lr
            n[row] += grad[row] * grad[row]
            weight[row] = (mx.nd.sign(dn[row]) * self.lamda1 - dn[row]) / \
                ((self.beta + mx.nd.sqrt(n[row])) / lr + wd) * (mx.nd.abs(dn[row]) > self.lamda1)


# upstream: test_optimizer.py::test_ftrl
def test_ftrl():
    shape = (3, 4, 5)
    kwargs = [{},
              {'clip_gradient': 0.5},
              {'clip_gradient': 0.4, 'rescale_grad': 0.14},
              {'rescale_grad': 0.8},
              {'clip_gradient': 0.5, 'wd': 0.07},
              {'clip_gradient': 0.4, 'rescale_grad': 0.14, 'wd': 0.03},
              {'rescale_grad': 0.8, 'wd': 0.05},
              {'rescale_grad': 0.8, 'wd': 0.05, 'lamda1': 0.01},
              {'clip_gradient': 0.5, 'wd': 0.07, 'lamda1': 1.0}]
    for kwarg in kwargs:
        compare_optimizer(PyFtrl(**kwarg), mx.optimizer.Ftrl(**kwarg), shape, np.float32)
        compare_optimizer(PyFtrl(lazy_update=True, **kwarg), mx.optimizer.Ftrl(**kwarg), shape,
                          np.float32, w_stype='row_sparse', g_stype='row_sparse')


class PyAdaGrad(mx.optimizer.Optimizer):
    """upstream's Python reference of AdaGrad."""

    def __init__(self, eps=1e-7, **kwargs):
        super(PyAdaGrad, self).__init__(**kwargs)
        self.float_stable_eps = eps

    def create_state(self, index, weight):
        return mx.nd.zeros(weight.shape, weight.context, stype=weight.stype)

    def update(self, index, weight, grad, state):
        self._update_count(index)
        lr = self._get_lr(index)
        wd = self._get_wd(index)
        history = state
        grad = grad * self.rescale_grad
        if self.clip_gradient is not None:
            grad = mx.nd.clip(grad, -self.clip_gradient, self.clip_gradient)
        history[:] += mx.nd.square(grad)
        div = grad / mx.nd.sqrt(history + self.float_stable_eps)
        weight[:] += (div + weight * wd) * -lr


# upstream: test_optimizer.py::test_adagrad
def test_adagrad():
    shape = (3, 4, 5)
    for kwarg in _options([{}, {'eps': 1e-8}],
                          [{}, {'clip_gradient': 0.4}, {'clip_gradient': 0.5}],
                          [{}, {'rescale_grad': 0.14}, {'rescale_grad': 0.8}],
                          [{}, {'wd': 0.0}]):
        compare_optimizer(PyAdaGrad(**kwarg), mx.optimizer.AdaGrad(**kwarg), shape, np.float32)
        if kwarg.get('wd', 0.0) == 0.0:
            compare_optimizer(PyAdaGrad(**kwarg), mx.optimizer.AdaGrad(**kwarg), shape, np.float32,
                              w_stype='row_sparse', g_stype='row_sparse')
            compare_optimizer(PyAdaGrad(**kwarg), mx.optimizer.AdaGrad(**kwarg), shape, np.float32,
                              g_stype='row_sparse')
