"""``mx.optimizer`` on sparse weights as MXNet 1.9.1 documents it, with ``import sparsetrain as mx``."""
import numpy as np
import pytest

import sparsetrain as mx


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("weight_stype, grad_stype", [("csr", "csr"), ("csr", "default"), ("default", "csr")])
def test_sgd_on_csr_falls_back_to_a_dense_update(momentum, weight_stype, grad_stype):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(4, 3)) * (rng.random((4, 3)) < 0.6)
    g = rng.normal(size=(4, 3)) * (rng.random((4, 3)) < 0.6)
    dense_opt = mx.optimizer.SGD(learning_rate=0.1, momentum=momentum, wd=0.01)
    sparse_opt = mx.optimizer.SGD(learning_rate=0.1, momentum=momentum, wd=0.01)
    wd, ws = mx.nd.array(w0), mx.nd.array(w0).tostype(weight_stype)
    sd, ss = dense_opt.create_state(0, wd), sparse_opt.create_state(0, ws)
    for _ in range(3):
        dense_opt.update_multi_precision(0, wd, mx.nd.array(g), sd)
        sparse_opt.update_multi_precision(0, ws, mx.nd.array(g).tostype(grad_stype), ss)
    assert ws.stype == weight_stype
    np.testing.assert_allclose(ws.asnumpy(), wd.asnumpy(), rtol=1e-6)


def test_updater_with_csr_weight():
    w = mx.nd.ones((2, 2)).tostype("csr")
    updater = mx.optimizer.get_updater(mx.optimizer.SGD(learning_rate=0.5))
    updater(0, mx.nd.ones((2, 2)).tostype("csr"), w)
    assert w.stype == "csr"
    np.testing.assert_allclose(w.asnumpy(), np.full((2, 2), 0.5))
