"""Metrics against numpy / scikit-learn references, including MXNet's per-batch averaging."""
import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

import sparsetrain as mx
from sparsetrain import metric


def _batches(seed=0, sizes=(4, 7, 1, 5), cols=1):
    rng = np.random.default_rng(seed)
    out = []
    for n in sizes:
        out.append((rng.normal(size=(n,)).astype(np.float32), rng.normal(size=(n, cols)).astype(np.float32)))
    return out


@pytest.mark.parametrize("name,batch_fn,label_shape", [
    ("mse", lambda d: np.mean(d ** 2), "flat"),
    ("rmse", lambda d: np.sqrt(np.mean(d ** 2)), "column"),
    ("mae", lambda d: np.mean(np.abs(d)), "flat"),
])
def test_regression_metrics_average_per_batch(name, batch_fn, label_shape):
    m = metric.create(name)
    batches = _batches()
    for label, pred in batches:
        lab = label if label_shape == "flat" else label.reshape(-1, 1)
        m.update([mx.nd.array(lab)], [mx.nd.array(pred)])
    per_batch = [batch_fn(pred[:, 0].astype(np.float64) - label) for label, pred in batches]
    got_name, value = m.get()
    assert got_name == name and m.num_inst == len(batches)
    np.testing.assert_allclose(value, np.mean(per_batch), rtol=1e-6)
    # per-batch averaging differs from the per-sample mean when batch sizes differ
    all_d = np.concatenate([pred[:, 0] - label for label, pred in batches]).astype(np.float64)
    assert abs(value - batch_fn(all_d)) > 1e-4


def test_mse_batch_of_one_and_numpy_inputs():
    m = metric.MSE()
    m.update([mx.nd.array([[2.0]])], [mx.nd.array([[5.0]])])
    m.update([np.array([1.0])], [np.array([[1.5]])])
    assert m.get() == ("mse", pytest.approx((9.0 + 0.25) / 2))
    m.update(mx.nd.array([0.0]), mx.nd.array([1.0]))  # single arrays are wrapped
    assert m.num_inst == 3


def test_regression_label_must_fit_prediction():
    with pytest.raises(ValueError, match=r"\(3,\).*\(2, 1\)"):
        metric.MSE().update([np.zeros(3)], [np.zeros((2, 1))])
    with pytest.raises(ValueError, match="1 label.*2 prediction"):
        metric.MSE().update([np.zeros(2)], [np.zeros(2), np.zeros(2)])


def test_reset_and_nan_before_update():
    m = metric.RMSE()
    assert math.isnan(m.get()[1])
    m.update([np.ones(2)], [np.zeros(2)])
    assert m.get()[1] == pytest.approx(1.0)
    m.reset()
    assert m.num_inst == 0 and math.isnan(m.get()[1])
    assert m.get_name_value()[0][0] == "rmse"


def test_accuracy_argmax_and_threshold_against_sklearn():
    rng = np.random.default_rng(1)
    m = metric.create("acc")
    all_true, all_pred = [], []
    for n in (5, 9, 3):
        scores = rng.random((n, 4)).astype(np.float32)
        labels = rng.integers(0, 4, n).astype(np.float32)
        m.update([mx.nd.array(labels)], [mx.nd.array(scores)])
        all_true.append(labels)
        all_pred.append(scores.argmax(1))
    assert m.get() == ("accuracy", pytest.approx(accuracy_score(np.concatenate(all_true), np.concatenate(all_pred))))
    assert m.num_inst == 17  # samples, not batches

    binary = metric.Accuracy()
    probs = np.array([[0.9], [0.2], [0.5], [0.7]], np.float32)  # 0.5 is class 0
    labels = np.array([[1], [0], [1], [0]], np.float32)
    binary.update([labels], [probs])
    binary.update([np.array([1.0, 0.0])], [np.array([0.8, 0.6])])
    assert binary.get()[1] == pytest.approx(3 / 6)


def test_cross_entropy_against_numpy():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(12, 3))
    probs = (np.exp(logits) / np.exp(logits).sum(1, keepdims=True)).astype(np.float32)
    labels = rng.integers(0, 3, 12)
    for name in ("ce", "CE", "cross-entropy"):
        m = metric.create(name)
        m.update([mx.nd.array(labels[:5])], [mx.nd.array(probs[:5])])
        m.update([mx.nd.array(labels[5:])], [mx.nd.array(probs[5:])])
        ref = -np.log(probs[np.arange(12), labels].astype(np.float64) + 1e-12).mean()
        assert m.get() == ("cross-entropy", pytest.approx(ref, rel=1e-6))
    with pytest.raises(ValueError, match="class ids 0..2"):
        metric.CrossEntropy().update([np.array([3.0])], [probs[:1]])


@pytest.mark.parametrize("shape", ["flat", "column", "two"])
def test_log_loss_against_sklearn(shape):
    rng = np.random.default_rng(3)
    p = rng.uniform(0.02, 0.98, 30)
    y = (rng.random(30) < p).astype(np.float32)
    pred = {"flat": p, "column": p.reshape(-1, 1), "two": np.stack([1 - p, p], 1)}[shape].astype(np.float32)
    m = metric.create("log_loss")
    m.update([mx.nd.array(y[:11])], [mx.nd.array(pred[:11])])
    m.update([mx.nd.array(y[11:])], [mx.nd.array(pred[11:])])
    assert m.get()[0] == "log_loss"
    assert m.get()[1] == pytest.approx(log_loss(y, pred.reshape(30, -1)[:, -1].astype(np.float64)), rel=1e-6)


def test_auc_against_sklearn_with_ties():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200).astype(np.float32)
    scores = np.round(rng.random(200) * 0.5 + y * 0.3, 1).astype(np.float32)  # many ties
    m = metric.create("AUC")
    for lo in range(0, 200, 37):
        m.update([mx.nd.array(y[lo: lo + 37])], [mx.nd.array(scores[lo: lo + 37].reshape(-1, 1))])
    assert m.get()[0] == "auc"
    assert m.get()[1] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    two_col = metric.AUC()
    two_col.update([y], [np.stack([1 - scores, scores], 1)])
    assert two_col.get()[1] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_auc_edge_cases():
    m = metric.AUC()
    m.update([np.ones(3)], [np.array([0.1, 0.5, 0.9])])
    assert math.isnan(m.get()[1])  # one class only
    m.update([np.zeros(1)], [np.array([0.5])])
    assert m.get()[1] == pytest.approx(roc_auc_score([1, 1, 1, 0], [0.1, 0.5, 0.9, 0.5]))
    m.reset()
    assert m.num_inst == 0 and math.isnan(m.get()[1])
    with pytest.raises(ValueError, match="0/1"):
        m.update([np.array([2.0])], [np.array([0.3])])


def test_composite_and_create_forms():
    comp = metric.create(["mse", "MAE", metric.RMSE()])
    assert isinstance(comp, metric.CompositeEvalMetric)
    comp.update([np.array([1.0, 3.0])], [np.array([[0.0], [0.0]])])
    names, values = comp.get()
    assert names == ["mse", "mae", "rmse"]
    assert values == pytest.approx([5.0, 2.0, math.sqrt(5.0)])
    assert comp.get_name_value() == list(zip(names, values))
    assert comp.get_metric(1).name == "mae"
    comp.reset()
    assert all(math.isnan(v) for v in comp.get()[1])
    same = metric.MSE()
    assert metric.create(same) is same
    for name, klass in [("accuracy", metric.Accuracy), ("Acc", metric.Accuracy), ("rmse", metric.RMSE),
                        ("auc", metric.AUC), ("log_loss", metric.LogLoss)]:
        assert isinstance(metric.create(name), klass)
    with pytest.raises(ValueError, match="unknown metric 'f3'"):
        metric.create("f3")


def test_custom_metric_from_callable():
    def max_err(label, pred):
        return float(np.max(np.abs(label - pred.ravel())))

    m = metric.create(max_err)
    m.update([np.array([1.0, 2.0])], [np.array([1.5, 2.0])])
    m.update([np.array([0.0])], [np.array([2.0])])
    assert m.get() == ("max_err", pytest.approx((0.5 + 2.0) / 2))
    pair = metric.np(lambda label, pred: (float(np.sum(label == pred)), label.size), name="hits")
    pair.update([np.array([1.0, 2.0, 3.0])], [np.array([1.0, 0.0, 3.0])])
    assert pair.get() == ("hits", pytest.approx(2 / 3))


def test_seed_tutorial_metric_via_module_outputs():
    # update_metric hands the executor's outputs (NDArray (n, 1)) and the batch labels (n,)
    m = metric.create("MSE")
    out = mx.nd.array(np.array([[1.0], [2.0]]))
    m.update([mx.nd.array([1.5, 1.0])], [out])
    assert m.get() == ("mse", pytest.approx((0.25 + 1.0) / 2))
