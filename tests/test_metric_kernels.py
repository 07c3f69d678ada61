"""The fused metric kernels (sparsetrain/kernels/metrics.py) against their reference, the metric
classes of sparsetrain.metric; the fused AUC against the graph engine and scikit-learn."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hst
from sklearn.metrics import roc_auc_score

import sparsetrain as st
from sparsetrain import metric
from sparsetrain.engines.compiled.runner import LinearEpochRunner
from sparsetrain.kernels.metrics import FUSED_METRICS, NUM_CODES, batch_metrics, metric_inst


def fused(name, out, label, order):
    """``(value, num_inst, scores)`` of one batch through the kernel."""
    code = FUSED_METRICS[metric.info(name).fused]
    codes = np.array([code], np.int64)
    values = np.zeros(NUM_CODES)
    scores = np.full(len(order), np.nan)
    assert batch_metrics(out, label, order, 0, len(order), codes, values, scores)
    return values[0], metric_inst(code, len(order)), scores


@pytest.mark.parametrize("name,k", [("mse", 1), ("mse", 3), ("rmse", 2), ("mae", 1), ("accuracy", 1),
                                    ("accuracy", 4), ("log_loss", 1), ("ce", 3)])
@given(seed=hst.integers(0, 2**31 - 1), n=hst.integers(1, 40))
@settings(max_examples=25, deadline=None)
def test_batch_metrics_equal_the_metric_classes(name, k, seed, n):
    rng = np.random.default_rng(seed)
    rows = 60
    order = rng.integers(0, rows, n).astype(np.int64)
    if name in ("accuracy", "ce") and k > 1 or name == "log_loss" and k > 1:
        p = rng.random((n, k)).astype(np.float32)
        out = p / p.sum(axis=1, keepdims=True)
        label = rng.integers(0, k, (rows, 1)).astype(np.float32)
    elif name in ("accuracy", "log_loss", "ce"):
        out = rng.random((n, 1)).astype(np.float32)
        label = rng.integers(0, 2, (rows, 1)).astype(np.float32)
    else:
        out = rng.normal(size=(n, k)).astype(np.float32)
        label = rng.normal(size=(rows, k)).astype(np.float32)
    value, inst, _ = fused(name, out, label, order)
    ref = metric.create(name)
    ref.update([label[order] if k == 1 or name in ("mse", "rmse", "mae") else label[order, 0]], [out])
    assert inst == ref.num_inst
    # (float32 predictions: the kernel's and the class's sums of logs differ in the 9th digit for some
    # draws, e.g. log_loss at seed 3987, n 35: 1.45e-9 relative)
    np.testing.assert_allclose(value, ref.sum_metric, rtol=1e-7, atol=1e-12)


def test_auc_kernel_collects_the_probability_of_class_1_by_position():
    out1 = np.array([[0.2], [0.9], [0.4]], np.float32)
    out2 = np.array([[0.8, 0.2], [0.1, 0.9], [0.6, 0.4]], np.float32)
    label = np.zeros((5, 1), np.float32)
    order = np.array([4, 0, 2], np.int64)
    for out in (out1, out2):
        value, inst, scores = fused("auc", out, label, order)
        assert value == 0 and inst == 0
        np.testing.assert_array_equal(scores, np.float32([0.2, 0.9, 0.4]).astype(np.float64))


def _tied_binary(seed, rows=300, features=6):
    """Binary data whose scores tie a lot: few features, values in {0, 1}."""
    rng = np.random.default_rng(seed)
    x = (rng.random((rows, features)) < 0.4).astype(np.float32)
    y = ((x @ rng.normal(size=features) + rng.normal(scale=0.5, size=rows)) > 0).astype(np.float32)
    return x, y


@pytest.mark.parametrize("seed", [0, 1])
def test_fused_auc_equals_scikit_learn_with_ties(seed):
    import scipy.sparse as sp

    x, y = _tied_binary(seed)
    runner = LinearEpochRunner("LogisticRegressionOutput", [x.shape[1]], 1, has_bias=True)
    w = np.round(np.random.default_rng(seed).normal(size=(x.shape[1], 1)), 1).astype(np.float32)
    b = np.zeros(1, np.float32)
    order = np.arange(len(y), dtype=np.int64)
    batch_ptr = np.append(np.arange(0, len(y), 7), len(y)).astype(np.int64)
    res = runner.score([sp.csr_matrix(x)], y, order, batch_ptr, [w], b, metrics=("auc", "log_loss"))
    probs = 1 / (1 + np.exp(-(x @ w[:, 0]).astype(np.float64)))
    assert len(np.unique(res.scores)) < len(y) / 4  # many ties
    np.testing.assert_allclose(res.metrics["auc"], roc_auc_score(y, res.scores), rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.scores, probs, rtol=1e-5)  # the model's float32 probabilities


@pytest.mark.parametrize("batch_size,last_batch", [(1, "discard"), (16, "pad"), (32, "roll_over")])
def test_auc_trains_compiled_and_equals_the_graph_engine(batch_size, last_batch):
    x, y = _tied_binary(3, rows=200)
    results = {}
    for engine in ("compiled", "graph"):
        st.random.seed(0)
        data = st.sym.Variable("data", stype="csr")
        weight = st.sym.Variable("weight", stype="row_sparse", shape=(x.shape[1], 1))
        bias = st.sym.Variable("bias", shape=(1,))
        pred = st.sym.broadcast_add(st.sym.sparse.dot(data, weight), bias)
        loss = st.sym.LogisticRegressionOutput(data=pred, label=st.sym.Variable("label"))
        it = st.io.NDArrayIter(st.nd.sparse.csr_matrix(x), y, batch_size, label_name="label",
                               last_batch_handle=last_batch)
        mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(st.initializer.Normal(0.1))
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5})
        m = metric.CompositeEvalMetric(["auc", "log_loss"])
        values = []
        for epoch in range(2):
            m.reset()
            mod.run_epoch(it, m, engine=engine, epoch=epoch)
            values.append(m.get()[1])
        assert mod.engine_choice[0] == engine, mod.engine_choice
        results[engine] = values, {k: v.asnumpy() for k, v in mod.get_params()[0].items()}
    (cv, cp), (gv, gp) = results["compiled"], results["graph"]
    np.testing.assert_allclose(cv, gv, rtol=1e-5, atol=1e-6)
    for k in cp:
        np.testing.assert_allclose(cp[k], gp[k], rtol=1e-4, atol=1e-5)
