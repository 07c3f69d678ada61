"""Per-row sample (importance) weights: a row of weight w counts as w rows — in the loss
gradients (graph executor), in the metrics, through NDArrayIter / LibSVMIter batches, and end to
end from a Vowpal Wabbit file with importance weights against a hand-computed reference."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

import sparsetrain as st
from sparsetrain import metric as M
from sparsetrain.config import config_from_dict
from sparsetrain.io.csv_reader import CSVSchema, load_csv
from sparsetrain.io.vw_reader import load_vw
from sparsetrain.trainer import make_iter, train

LOSSES = {
    "LinearRegressionOutput": {},
    "MAERegressionOutput": {},
    "LogisticRegressionOutput": {},
    "SoftmaxOutput": {},
    "SoftmaxOutput-batch": {"normalization": "batch"},
}


def _grads(op, x, y, sample_weight=None):
    name, _, _ = op.partition("-")
    k = 3 if name == "SoftmaxOutput" else 1
    data, label = st.sym.Variable("data"), st.sym.Variable("label")
    pred = st.sym.dot(data, st.sym.Variable("weight"))
    out = getattr(st.sym, name)(data=pred, label=label, name="out", **LOSSES[op])
    ex = out.simple_bind(data=x.shape, label=y.shape, weight=(x.shape[1], k), type_dict={"data": "float64"})
    rng = np.random.default_rng(1)
    ex.arg_dict["weight"][:] = rng.normal(size=(x.shape[1], k))
    ex.arg_dict["data"][:] = x
    ex.arg_dict["label"][:] = y
    ex.forward(is_train=True)
    ex.backward(sample_weight=sample_weight)
    return ex.grad_dict["weight"].asnumpy()


@pytest.mark.parametrize("op", sorted(LOSSES))
def test_weight_two_gives_the_gradient_of_the_row_twice(op):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4))
    y = np.array([1.0, 0.0, 2.0 if op.startswith("Softmax") else 1.0])
    weighted = _grads(op, x, y, sample_weight=np.array([2.0, 1.0, 0.0]))
    dup = _grads(op, x[[0, 0, 1]], y[[0, 0, 1]])
    if op == "SoftmaxOutput-batch":  # normalisation divides by the rows of the batch: 3 both times
        np.testing.assert_allclose(weighted, dup, rtol=1e-6)
    else:
        np.testing.assert_allclose(weighted, dup, rtol=1e-6)
    np.testing.assert_allclose(_grads(op, x, y, np.ones(3)), _grads(op, x, y), rtol=1e-12)


def test_sgd_at_batch_one_steps_by_the_summed_gradient():
    x = st.nd.sparse.csr_matrix(np.array([[1.0, 0.0, 2.0]]))
    y = np.array([1.0])
    steps = []
    for w in (None, np.array([2.0])):
        st.random.seed(0)
        data = st.sym.Variable("data", stype="csr")
        pred = st.sym.sparse.dot(data, st.sym.Variable("weight", stype="row_sparse", shape=(3, 1)))
        out = st.sym.LogisticRegressionOutput(data=pred, label=st.sym.Variable("label"), name="out")
        mod = st.mod.Module(out, data_names=["data"], label_names=["label"])
        it = st.io.NDArrayIter(x, y, 1, label_name="label", sample_weight=w)
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(st.init.Zero())
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5})
        mod.run_epoch(it, M.create("log_loss"), engine="graph")
        steps.append(mod.get_params()[0]["weight"].asnumpy())
    # p = 0.5 at zero weights: the step is lr * w * (y - p) * x
    np.testing.assert_allclose(steps[0][:, 0], 0.5 * 0.5 * np.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(steps[1], 2 * steps[0])


@pytest.mark.parametrize("name", ["log_loss", "accuracy", "ce", "mse", "rmse", "mae", "auc"])
def test_an_integer_weight_counts_as_that_many_rows_in_a_metric(name):
    rng = np.random.default_rng(3)
    labels = np.array([1, 0, 1, 1, 0, 0], np.float64)
    preds = rng.uniform(0.05, 0.95, size=6)
    w = np.array([2, 1, 0, 3, 1, 2], np.float64)
    rows = np.repeat(np.arange(6), w.astype(int))
    weighted, dup = M.create(name), M.create(name)
    weighted.update([st.nd.array(labels)], [st.nd.array(preds)], sample_weight=w)
    dup.update([st.nd.array(labels[rows])], [st.nd.array(preds[rows])])
    assert weighted.get()[1] == pytest.approx(dup.get()[1], rel=1e-6)
    plain = M.create(name)
    plain.update([st.nd.array(labels)], [st.nd.array(preds)], sample_weight=np.ones(6))
    ref = M.create(name)
    ref.update([st.nd.array(labels)], [st.nd.array(preds)])
    assert plain.get()[1] == pytest.approx(ref.get()[1], rel=1e-9)


def test_weighted_auc_equals_scikit_learn_with_ties_and_fractional_weights():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 200).astype(np.float64)
    scores = np.round(rng.uniform(size=200), 1)  # many ties
    w = rng.uniform(0, 3, 200)
    m = M.create("auc")
    m.update([labels[:90]], [scores[:90]])  # an unweighted batch first: its rows count once
    m.update([labels[90:]], [scores[90:]], sample_weight=w[90:])
    full = np.r_[np.ones(90), w[90:]]
    assert m.get()[1] == pytest.approx(roc_auc_score(labels, scores, sample_weight=full), rel=1e-12)


def test_custom_metrics_refuse_weights_and_wrong_lengths_are_errors():
    with pytest.raises(ValueError, match="does not take sample weights"):
        M.CustomMetric(lambda y, p: 0.0, name="mine").update([np.zeros(2)], [np.zeros(2)], sample_weight=np.ones(2))
    with pytest.raises(ValueError, match="LogLoss: 3 sample weights for 2 rows"):
        M.create("log_loss").update([np.zeros(2)], [np.full(2, 0.5)], sample_weight=np.ones(3))


def test_ndarray_iter_serves_weights_in_batch_order_shuffled_and_padded():
    x = np.arange(7, dtype=np.float32).reshape(7, 1)
    st.random.seed(2)
    it = st.io.NDArrayIter(x, np.arange(7), batch_size=3, shuffle=True, sample_weight=np.arange(7) * 10.0)
    seen = 0
    for batch in it:
        np.testing.assert_array_equal(batch.sample_weight, batch.data[0].asnumpy()[:, 0] * 10.0)
        seen += 1
    assert seen == 3
    assert st.io.NDArrayIter(x, np.arange(7), batch_size=3).next().sample_weight is None
    with pytest.raises(ValueError, match=r"sample_weight\[2\] is -1.0"):
        st.io.NDArrayIter(x, np.arange(7), sample_weight=[1, 1, -1, 1, 1, 1, 1])
    with pytest.raises(st.base.ShapeError, match=r"sample_weight has shape \(3,\), expected \(7,\)"):
        st.io.NDArrayIter(x, np.arange(7), sample_weight=[1, 1, 1])


BITS = 6
VW = "1 2 |u a b\n0 |u c\n1 0.5 'r3|u a c\n0 3 |u b\n1 |u a\n"
# the same rows as CSV: the weight in column w (empty: 1), the features as categorical columns
CSV = "y,w,f1,f2\n1,2,a,b\n0,,c,\n1,0.5,a,c\n0,3,b,\n1,,a,\n"
CSV_KEYS = {"data": {"train": "d.csv", "csv": {"header": True}, "label": "y", "weight_column": "w",
                     "categorical": ["f1", "f2"]}}


def _vw_cfg(tmp_path, cache, batch_size, fmt="vw", edit=None):
    (tmp_path / "d.vw").write_text(VW)
    (tmp_path / "d.csv").write_text(CSV)
    doc = {
        "data": {"train": "d.vw", "hash_bits": BITS, "batch_size": batch_size, "cache": cache,
                 "label_values": [0, 1], **(CSV_KEYS["data"] if fmt == "csv" else {})},
        "model": {"variables": {"data": {"stype": "csr"}, "label": {},
                                "weight": {"stype": "row_sparse", "shape": [2**BITS, 1], "init": "zero"},
                                "bias": {"shape": [1], "init": "zero"}},
                  "ops": [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]},
                          {"name": "pred", "op": "broadcast_add", "inputs": ["dot", "bias"]}],
                  "loss": {"name": "out", "op": "LogisticRegressionOutput", "data": "pred", "label": "label"}},
        "optimizer": {"name": "sgd", "learning_rate": 0.5},
        "train": {"epochs": 2, "metrics": ["log_loss", "accuracy"]},
    }
    if edit is not None:
        edit(doc)
    return config_from_dict(doc, source=str(tmp_path / "c.yaml"))


def _reference_epoch2(path):
    """One full-batch weighted SGD step from zero weights, then the weighted log loss / accuracy."""
    if str(path).endswith(".csv"):
        X, y, w = load_csv(path, CSVSchema(header=True, label="y", weight_column="w", categorical=["f1", "f2"],
                                           hash_bits=BITS), dtype="float64")
    else:
        X, y, w = load_vw(path, BITS, dtype="float64")
    X = X.asnumpy()
    g = w * (0.5 - y)  # p = 0.5 everywhere at zero weights
    lr_b = 0.5 / len(y)  # rescale_grad = 1 / batch size
    weight, bias = -lr_b * X.T @ g, -lr_b * g.sum()
    p = 1 / (1 + np.exp(-(X @ weight + bias)))
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    acc = ((p > 0.5) == y).astype(float)
    return float(w @ loss / w.sum()), float(w @ acc / w.sum())


@pytest.mark.parametrize("fmt", ["vw", "csv"])
@pytest.mark.parametrize("cache", ["memory", "stream", "disk"])
def test_importance_weights_train_as_the_hand_reference(tmp_path, monkeypatch, cache, fmt):
    monkeypatch.setenv("SPARSETRAIN_CACHE_DIR", str(tmp_path / "cache"))  # data.cache: disk keeps the weights
    cfg = _vw_cfg(tmp_path, cache, batch_size=5, fmt=fmt)
    it, _ = make_iter(cfg, cfg.train_files(), for_training=True)
    batch = next(iter(it))
    np.testing.assert_array_equal(batch.sample_weight, [2, 1, 0.5, 3, 1])
    result = train(cfg, output_dir=str(tmp_path / f"run-{cache}"))
    assert result.engine == "compiled"  # the linear kernels apply the weights, in memory and streamed
    assert result.history[0]["log_loss"] == pytest.approx(np.log(2))
    loss, acc = _reference_epoch2(tmp_path / f"d.{fmt}")
    assert result.history[1]["log_loss"] == pytest.approx(loss, rel=1e-5)
    assert result.history[1]["accuracy"] == pytest.approx(acc, rel=1e-9)


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_weighted_data_trains_compiled_on_linear_kernels_and_generated_plans(tmp_path, cache):
    cfg = _vw_cfg(tmp_path, cache, batch_size=1)
    assert train(cfg, output_dir=str(tmp_path / "run")).engine == "compiled"

    def second_term(doc):  # dot + sum over a (D, 2) table: a generated plan (its weighted variant)
        m = doc["model"]
        m["variables"]["v"] = {"stype": "row_sparse", "shape": [2**BITS, 2], "init": "zero"}
        m["ops"] += [{"name": "xv", "op": "sparse.dot", "inputs": ["data", "v"]},
                     {"name": "s", "op": "sum", "inputs": ["xv"], "params": {"axis": 1, "keepdims": True}},
                     {"name": "pred2", "op": "broadcast_add", "inputs": ["pred", "s"]}]
        m["loss"]["data"] = "pred2"

    result = train(_vw_cfg(tmp_path, cache, batch_size=1, edit=second_term), output_dir=str(tmp_path / "run-fm"))
    assert result.engine == "compiled" and result.engine_reason.startswith("generated plan"), result.engine_reason


def test_evaluate_weights_the_metrics_of_a_vw_file_with_importance(tmp_path):
    from sparsetrain.trainer import load_trained

    cfg = _vw_cfg(tmp_path, "memory", batch_size=5)
    train(cfg, output_dir=str(tmp_path / "run"))
    model = load_trained(str(tmp_path / "run"), epoch=1)  # after one step: the reference's weights
    loss, acc = _reference_epoch2(tmp_path / "d.vw")
    got = model.evaluate(str(tmp_path / "d.vw"), ["log_loss", "accuracy"])
    assert got["log_loss"] == pytest.approx(loss, rel=1e-5) and got["accuracy"] == pytest.approx(acc)


# ---- the compiled engine's linear kernels apply the weights as the graph engine does

WEIGHTED_OUTPUTS = {
    "LogisticRegressionOutput": ["log_loss", "accuracy", "auc"],
    "LinearRegressionOutput": ["mse", "rmse", "mae"],
    "SoftmaxOutput": ["ce", "accuracy"],
}


def _weighted_train(engine, output, opt, batch_size, weights, epochs=2):
    rng = np.random.default_rng(4)
    st.random.seed(11)
    x = st.test_utils.rand_ndarray((29, 12), "csr", 0.3)
    score = x.asnumpy() @ rng.normal(size=(12, 3))
    k = 3 if output == "SoftmaxOutput" else 1
    y = {"SoftmaxOutput": score.argmax(axis=1), "LinearRegressionOutput": score[:, 0]}.get(
        output, (score[:, 0] > np.median(score[:, 0])).astype(float))
    it = st.io.NDArrayIter(x, y.astype(np.float32), batch_size, shuffle=batch_size > 1, label_name="label",
                           sample_weight=weights)
    data = st.sym.Variable("data", stype="csr")
    pred = st.sym.broadcast_add(st.sym.sparse.dot(data, st.sym.Variable("weight", stype="row_sparse", shape=(12, k))),
                                st.sym.Variable("bias", shape=(k,)))
    loss = getattr(st.sym, output)(data=pred, label=st.sym.Variable("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.1))
    mod.init_optimizer(optimizer=opt, optimizer_params={"learning_rate": 0.1})
    metric = M.create(WEIGHTED_OUTPUTS[output])
    history = []
    for epoch in range(epochs):
        metric.reset()
        mod.run_epoch(it, metric, engine=engine, epoch=epoch)
        history.append(dict(metric.get_name_value()))
    assert mod.engine_choice[0] == engine, mod.engine_choice
    return {k: v.asnumpy() for k, v in mod.get_params()[0].items()}, history


@pytest.mark.parametrize("output", sorted(WEIGHTED_OUTPUTS))
@pytest.mark.parametrize("opt", ["sgd", "adagrad"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_compiled_linear_kernels_weight_rows_as_the_graph_engine(output, opt, batch_size):
    weights = np.random.default_rng(2).choice([0.0, 0.5, 1.0, 2.0, 3.5], size=29)
    graph_params, graph_hist = _weighted_train("graph", output, opt, batch_size, weights)
    comp_params, comp_hist = _weighted_train("compiled", output, opt, batch_size, weights)
    for g, c in zip(graph_hist, comp_hist):
        assert c.keys() == g.keys()
        for name in g:
            assert c[name] == pytest.approx(g[name], rel=1e-4, abs=1e-6), name
    for name in graph_params:
        np.testing.assert_allclose(comp_params[name], graph_params[name], rtol=1e-4, atol=1e-5, err_msg=name)
    # weights all 1 train exactly as no weights (the kernels' unweighted path)
    ones, _ = _weighted_train("compiled", output, opt, batch_size, np.ones(29), epochs=1)
    plain, _ = _weighted_train("compiled", output, opt, batch_size, None, epochs=1)
    for name in plain:
        np.testing.assert_allclose(ones[name], plain[name], rtol=1e-6, atol=1e-7, err_msg=name)


def test_compiled_sgd_at_batch_one_steps_weight_two_as_twice_the_gradient():
    x = st.nd.sparse.csr_matrix(np.array([[1.0, 0.0, 2.0]]))
    steps = []
    for w in (None, np.array([2.0])):
        data = st.sym.Variable("data", stype="csr")
        pred = st.sym.sparse.dot(data, st.sym.Variable("weight", stype="row_sparse", shape=(3, 1)))
        out = st.sym.LogisticRegressionOutput(data=pred, label=st.sym.Variable("label"), name="out")
        mod = st.mod.Module(out, data_names=["data"], label_names=["label"])
        it = st.io.NDArrayIter(x, np.array([1.0]), 1, label_name="label", sample_weight=w)
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(st.init.Zero())
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.5})
        mod.run_epoch(it, M.create("log_loss"), engine="compiled")
        assert mod.engine_choice[0] == "compiled"
        steps.append(mod.get_params()[0]["weight"].asnumpy())
    np.testing.assert_allclose(steps[0][:, 0], 0.5 * 0.5 * np.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(steps[1], 2 * steps[0])


def test_both_compiled_runners_take_one_float64_weight_per_row():
    # one check (epoch_loop.row_weights) for the hand kernels and the generated plans: a ShapeError naming the
    # counts, and any numeric weights as float64 rows
    from sparsetrain.engines import compiled
    from sparsetrain.engines.compiled.epoch_loop import row_weights

    assert row_weights(None, 3) is None
    sw = row_weights(np.array([[1], [2], [3]], np.int32), 3)
    assert sw.dtype == np.float64 and sw.shape == (3,) and sw.flags.c_contiguous
    x = st.nd.sparse.csr_matrix(np.eye(3, dtype=np.float32))
    y = st.nd.array(np.zeros(3, np.float32))
    data = st.sym.Variable("data", stype="csr")
    xw = st.sym.sparse.dot(data, st.sym.Variable("weight", stype="row_sparse", shape=(3, 1)))
    plan_pred = st.sym.broadcast_add(xw, st.sym.sum(st.sym.sparse.dot(data, st.sym.Variable(
        "v_weight", stype="row_sparse", shape=(3, 2))), axis=1, keepdims=True))
    for pred, kind in ((xw, "linear"), (plan_pred, "plan")):
        mod = st.mod.Module(st.sym.LinearRegressionOutput(pred, st.sym.Variable("label"), name="out"),
                            data_names=["data"], label_names=["label"])
        it = st.io.NDArrayIter(x, y, 1, label_name="label")
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(st.init.Zero())
        mod.init_optimizer(optimizer="sgd")
        view = mod.view()
        found = compiled.match(view, it, M.create("mse"))
        assert found.ok and (found.plan is not None) == (kind == "plan"), found.reason
        runner = compiled.prepare(view, found)
        order, batch_ptr = np.arange(3), np.arange(4)
        with pytest.raises(st.base.ShapeError, match="sample_weight has 2 values for 3 rows"):
            if kind == "plan":
                runner.fit(view, x, y, order, batch_ptr, np.array([1], np.int64), sample_weight=np.ones(2))
            else:
                runner.runner.fit_epoch([x], y, order, batch_ptr, [view.arrays["weight"]], None, view.updater,
                                        [view.index("weight")], sample_weight=np.ones(2))
