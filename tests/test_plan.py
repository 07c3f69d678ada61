"""Generated plans (engines/compiled/plan.py) == the graph engine, in float64.

Every model here is outside the linear family, so the compiled engine runs it as a generated
plan. The optimizer, batch size, last-batch mode and metrics are arguments of a plan, not part of
its cache key: the fixed cases share a handful of generated functions (cached on disk). The
property test draws random graphs from the fused op set; its deep variant is ``slow``.
"""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st_

import sparsetrain as st
from sparsetrain.base import SparseTrainError
from sparsetrain.ops.elemwise import UNARY, UNARY_FUSED
from test_engine_equality import OPTIMIZERS  # the optimizer settings both engine tests use

F64 = "float64"
ROWS, FEATURES = 23, 12
IDS, FIELDS = 9, 3  # Embedding's ids: FIELDS per row, in [0, IDS) (and a few outside, clipped)
METRIC = {"LinearRegressionOutput": "mse", "MAERegressionOutput": "mae",
          "LogisticRegressionOutput": "log_loss", "SoftmaxOutput": "ce"}


def _var(name, **kw):
    return st.sym.Variable(name, dtype=F64, **kw)


def _data(output, classes, seed=0, source="csr"):
    """``source``: csr features, or ``ids`` — (ROWS, FIELDS) Embedding ids (``ids1``: (ROWS,))."""
    rng = np.random.default_rng(seed)
    if source == "csr":
        dense = rng.uniform(0.1, 1.0, size=(ROWS, FEATURES)) * (rng.random((ROWS, FEATURES)) < 0.3)
        dense[3] = 0.0  # an empty row
        x = st.nd.array(dense, dtype=np.float64).tostype("csr")
    else:
        ids = rng.integers(0, IDS, size=(ROWS, FIELDS)).astype(np.float64)
        ids[2, 0], ids[5, 1] = -2, IDS + 3  # out of range: clipped to the table, as the graph engine does
        ids[7, 2] = 4.7  # truncated
        dense = np.zeros((ROWS, IDS))
        np.add.at(dense, (np.arange(ROWS)[:, None], np.clip(ids.astype(np.int64), 0, IDS - 1)), 1.0)
        x = st.nd.array(ids[:, 0] if source == "ids1" else ids, dtype=np.float64)
    score = dense @ rng.normal(size=(dense.shape[1], classes))
    if output == "SoftmaxOutput":
        y = score.argmax(axis=1)
    elif output == "LogisticRegressionOutput":
        y = score[:, 0] > np.median(score[:, 0])
    else:
        y = score[:, 0]
    return x, y.astype(np.float64)


def fm(k=4):
    """A factorization machine: X·w + b + Σ_f ((X·V)_f² − (X²·V²)_f)."""
    data = _var("data", stype="csr")
    w = _var("w_weight", stype="row_sparse", shape=(FEATURES, 1))
    v = _var("v_weight", stype="row_sparse", shape=(FEATURES, k))
    pairs = st.sym.elemwise_sub(st.sym.square(st.sym.dot(data, v)),
                                st.sym.dot(st.sym.square(data), st.sym.square(v)))
    pred = st.sym.elemwise_add(st.sym.dot(data, w), st.sym.sum(pairs, axis=1, keepdims=True))
    return st.sym.broadcast_add(pred, _var("bias", shape=(1,)))


def wide_deep(classes=1):
    """configs/wide.yaml's model: X·w + relu(X·E)·p + b (K outputs)."""
    data = _var("data", stype="csr")
    wide = st.sym.dot(data, _var("wide_weight", stype="row_sparse", shape=(FEATURES, classes)))
    hidden = st.sym.relu(st.sym.dot(data, _var("embed_weight", stype="row_sparse", shape=(FEATURES, 3))))
    deep = st.sym.dot(hidden, _var("proj_weight", shape=(3, classes)))
    return st.sym.broadcast_add(st.sym.elemwise_add(wide, deep), _var("bias", shape=(classes,)))


def field_fm(k=3, stype="row_sparse", op="Embedding", sparse_grad=True):
    """A factorization machine over field ids (``FIELDS`` ids per row, one-hot features):
    Σ_f w[id_f] + Σ_k ((Σ_f E[id_f, k])² − Σ_f E[id_f, k]²) + b, from Embedding."""
    ids = _var("data")
    embed = getattr(st.sym.contrib, op) if op == "SparseEmbedding" else st.sym.Embedding
    kw = {} if op == "SparseEmbedding" else {"sparse_grad": sparse_grad}
    e = embed(ids, _var("t_weight", stype=stype, shape=(IDS, k)), input_dim=IDS, output_dim=k, **kw)
    linear = st.sym.sum(embed(ids, _var("w_weight", stype=stype, shape=(IDS, 1)), input_dim=IDS, output_dim=1, **kw),
                        axis=1)
    pairs = st.sym.elemwise_sub(st.sym.square(st.sym.sum(e, axis=1)), st.sym.sum(st.sym.square(e), axis=1))
    pred = st.sym.elemwise_add(linear, st.sym.sum(pairs, axis=1, keepdims=True))
    return st.sym.broadcast_add(pred, _var("bias", shape=(1,)))


def train(pred, output, engine, opt="adagrad", batch_size=4, last_batch="pad", epochs=2, classes=1,
          metrics=None, source="csr", weights=None):
    st.random.seed(3)
    x, y = _data(output, classes, source=source)
    it = st.io.NDArrayIter(x, y, batch_size, shuffle=batch_size > 1, last_batch_handle=last_batch,
                           label_name="label", sample_weight=weights)
    loss = getattr(st.sym, output)(data=pred, label=_var("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.3))
    name = "sgd" if opt.startswith("sgd") else opt
    mod.init_optimizer(optimizer=name, optimizer_params=dict(OPTIMIZERS[opt]))
    metric = st.metric.create(metrics or [METRIC[output]])
    history = []
    for epoch in range(epochs):
        metric.reset()
        mod.run_epoch(it, metric, engine=engine, epoch=epoch)
        history.append([v for _, v in metric.get_name_value()])
    choice = mod.engine_choice
    assert choice[0] == engine, choice
    if engine == "compiled":
        assert choice[1].startswith("generated plan"), choice
    params = {k: v.asnumpy() for k, v in mod.get_params()[0].items()}
    assert all(v.dtype == np.float64 for v in params.values())
    return params, history


def assert_same(make, output, **kw):
    graph_params, graph_hist = train(make(), output, "graph", **kw)
    plan_params, plan_hist = train(make(), output, "compiled", **kw)
    np.testing.assert_allclose(plan_hist, graph_hist, rtol=1e-9, atol=1e-12)
    for name in graph_params:
        np.testing.assert_allclose(plan_params[name], graph_params[name], rtol=1e-9, atol=1e-12, err_msg=name)


# Each optimizer is its own generated function (its update bound in), each a cold compile of several
# seconds: the default run trains each structure with one rule, or with rules another test compiles for
# the same structure (the output layer and sparse_grad are arguments of a plan, not part of its source);
# the other combinations (the same lowering, another rule; the rules themselves are checked in
# test_optimizer) are slow.
SLOW = pytest.mark.slow


@pytest.mark.parametrize("opt,batch_size,last_batch", [
    # sgd at batch 1: test_a_factorization_machine_wider_than_the_register_sums_equals_graph
    pytest.param("sgd", 1, "pad", marks=SLOW), pytest.param("sgd_mom", 4, "pad", marks=SLOW),
    ("adagrad", 5, "roll_over"),
    pytest.param("adam", 6, "discard", marks=SLOW), pytest.param("ftrl", 4, "pad", marks=SLOW),
])
def test_factorization_machine_plan_equals_graph(opt, batch_size, last_batch):
    assert_same(fm, "LogisticRegressionOutput", opt=opt, batch_size=batch_size, last_batch=last_batch,
                metrics=["log_loss", "accuracy", "mse", "auc"])


@pytest.mark.parametrize("batch_size", [1, 5])
def test_a_factorization_machine_wider_than_the_register_sums_equals_graph(batch_size):
    """k > REGISTER_WIDTH: the csr dots sum in the activation buffers instead of locals."""
    from sparsetrain.engines.compiled.plan_source import REGISTER_WIDTH

    assert_same(lambda: fm(REGISTER_WIDTH + 1), "LogisticRegressionOutput", opt="sgd", batch_size=batch_size,
                epochs=1, metrics=["log_loss", "accuracy", "mse", "auc"])


@pytest.mark.parametrize("stype,op,sparse_grad,opt,batch_size,last_batch", [
    ("row_sparse", "Embedding", True, "adagrad", 4, "pad"),
    pytest.param("row_sparse", "SparseEmbedding", True, "sgd", 1, "pad", marks=SLOW),  # Embedding's lowering
    ("default", "Embedding", True, "adam", 5, "roll_over"),  # a dense table with a row_sparse gradient
    ("default", "Embedding", False, "adam", 3, "discard"),  # a dense gradient: every row updated (the same plan)
    pytest.param("default", "Embedding", True, "sgd_mom", 5, "roll_over", marks=SLOW),
])
def test_embedding_plan_equals_graph(stype, op, sparse_grad, opt, batch_size, last_batch):
    assert_same(lambda: field_fm(3, stype, op, sparse_grad), "LogisticRegressionOutput", opt=opt,
                batch_size=batch_size, last_batch=last_batch, source="ids", metrics=["log_loss", "auc"])


def test_embedding_of_one_id_per_row_plan_equals_graph():
    def make():  # (batch,) ids -> (batch, k) -> a dense layer: softmax over 3 classes
        e = st.sym.Embedding(_var("data"), _var("t_weight", stype="row_sparse", shape=(IDS, 4)), input_dim=IDS,
                             output_dim=4, sparse_grad=True)
        return st.sym.dot(st.sym.tanh(e), _var("head_weight", shape=(4, 3)))
    assert_same(make, "SoftmaxOutput", opt="adagrad", classes=3, source="ids1", metrics=["ce", "accuracy"])


def test_embedding_ids_are_read_by_embedding_only():
    from sparsetrain.engines import compiled

    x, y = _data("LinearRegressionOutput", 1, source="ids")
    it = st.io.NDArrayIter(x, y, 4, label_name="label")
    e = st.sym.Embedding(_var("data"), _var("t_weight", shape=(IDS, 2)), input_dim=IDS, output_dim=2)
    pred = st.sym.elemwise_add(st.sym.sum(e, axis=1), st.sym.dot(_var("data"), _var("d_weight", shape=(FIELDS, 2))))
    loss = st.sym.LinearRegressionOutput(data=st.sym.sum(pred, axis=1, keepdims=True), label=_var("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.3))
    mod.init_optimizer(optimizer="sgd")
    reason = compiled.why_not_fused(mod.view(), it, st.metric.create("mse"))
    assert "dot" in reason and "Embedding ids only" in reason and "\n" not in reason


@pytest.mark.parametrize("output,classes,opt", [
    ("LinearRegressionOutput", 1, "sgd_mom"), ("MAERegressionOutput", 1, "sgd_mom"),  # one plan: the same forward
    ("LogisticRegressionOutput", 1, "ftrl"), ("SoftmaxOutput", 3, "adagrad"),
    pytest.param("MAERegressionOutput", 1, "adam", marks=SLOW)])
def test_wide_deep_plan_equals_graph_for_every_output(output, classes, opt):
    assert_same(lambda: wide_deep(classes), output, opt=opt, classes=classes)


# importance weights: 0 (a row that only counts in no metric), fractions and weights > 1
WEIGHTS = np.random.default_rng(5).choice([0.0, 0.25, 1.0, 2.0, 3.5], size=ROWS)


# the weighted variant is one more plan per structure and rule: the default run weights one (every metric a
# plan computes; its unweighted plan is test_wide_deep_plan_equals_graph_for_every_output's logistic case)
@pytest.mark.parametrize("make,opt,batch_size,metrics", [
    (wide_deep, "ftrl", 4, ["log_loss", "accuracy", "mse", "auc", "mae", "rmse"]),
    pytest.param(fm, "adagrad", 5, ["log_loss", "accuracy", "mse", "auc"], marks=SLOW),
    pytest.param(wide_deep, "adam", 4, ["log_loss", "mae", "rmse"], marks=SLOW),
])
def test_weighted_plans_equal_graph(make, opt, batch_size, metrics):
    # the weighted variant of a plan scales each row's gradient and weights the metrics, as the graph engine
    assert_same(make, "LogisticRegressionOutput", opt=opt, batch_size=batch_size, last_batch="roll_over",
                metrics=metrics, weights=WEIGHTS)
    # all weights 1 train exactly as no weights (the unweighted plan, generated without them)
    ones, ones_hist = train(make(), "LogisticRegressionOutput", "compiled", opt=opt, batch_size=batch_size,
                            metrics=metrics, weights=np.ones(ROWS))
    plain, plain_hist = train(make(), "LogisticRegressionOutput", "compiled", opt=opt, batch_size=batch_size,
                              metrics=metrics)
    np.testing.assert_allclose(ones_hist, plain_hist, rtol=1e-12)
    for name in plain:
        np.testing.assert_allclose(ones[name], plain[name], rtol=1e-12, err_msg=name)


def test_only_weighted_data_generates_the_weighted_plan():
    from sparsetrain.engines.compiled.plan import lower
    from sparsetrain.engines.compiled.plan_source import generate

    x, y = _data("LogisticRegressionOutput", 1)
    it = st.io.NDArrayIter(x, y, 4, label_name="label")
    loss = st.sym.LogisticRegressionOutput(data=fm(), label=_var("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.3))
    spec = lower(mod.view())
    assert "sample_weight" not in generate(spec, "adagrad")
    assert "batch_metrics_weighted(" in generate(spec, "adagrad", weighted=True)


def test_a_parameter_gone_non_finite_by_the_epoch_end_stops_a_plan_as_the_hand_kernels():
    # a plan scans the parameters it trained once, after its last batch (epoch_loop.check_params, the hand kernels'
    # scan): an inf in the factor row of a feature no row has never reaches a prediction, only that scan
    x, y = _data("LogisticRegressionOutput", 1)
    dense = x.asnumpy()
    dense[:, -1] = 0.0
    it = st.io.NDArrayIter(st.nd.array(dense, dtype=np.float64).tostype("csr"), y, 5, label_name="label")
    loss = st.sym.LogisticRegressionOutput(data=fm(), label=_var("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.3))
    args, aux = mod.get_params()
    v = args["v_weight"].asnumpy()
    v[-1, 0] = np.inf
    mod.set_params({**args, "v_weight": st.nd.array(v, dtype=np.float64).tostype("row_sparse")}, aux)
    mod.init_optimizer(optimizer="adagrad", optimizer_params=dict(OPTIMIZERS["adagrad"]))
    with pytest.raises(st.base.NonFiniteError, match=r"^parameters \['v_weight'\] became non-finite during epoch 1$"):
        mod.run_epoch(it, st.metric.create("log_loss"), engine="compiled", epoch=1)
    assert mod.engine_choice[1].startswith("generated plan")


def _linear():
    data = _var("data", stype="csr")
    return st.sym.broadcast_add(st.sym.dot(data, _var("w_weight", stype="row_sparse", shape=(FEATURES, 1))),
                                _var("bias", shape=(1,)))


def test_the_compile_step_selects_the_hand_kernel_the_output_names(monkeypatch):
    # one entry point: the output layer's fused form names the linear family's hand kernel; without that
    # attribute the same model compiles to a generated plan, which trains it to the same parameters
    from sparsetrain.engines import compiled
    from sparsetrain.ops.registry import get as get_op

    def run(expect):
        st.random.seed(3)
        x, y = _data("LinearRegressionOutput", 1)
        it = st.io.NDArrayIter(x, y, 4, shuffle=True, label_name="label")
        loss = st.sym.LinearRegressionOutput(data=_linear(), label=_var("label"), name="out")
        mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(st.initializer.Normal(0.3))
        mod.init_optimizer(optimizer="sgd", optimizer_params=dict(OPTIMIZERS["sgd_mom"]))
        target = compiled.compile_model(mod.view())
        assert target.ok and (target.plan is None) == (expect == "kernel"), target
        for epoch in range(2):
            mod.run_epoch(it, st.metric.create("mse"), engine="compiled", epoch=epoch)
        assert mod.engine_choice[1].startswith("generated plan") == (expect == "plan"), mod.engine_choice
        return {k: v.asnumpy() for k, v in mod.get_params()[0].items()}

    kernel = run("kernel")
    op = get_op("LinearRegressionOutput")
    monkeypatch.setattr(op, "fused", dataclasses.replace(op.fused, epoch_kernels=()))
    plan = run("plan")
    for name in kernel:
        np.testing.assert_allclose(plan[name], kernel[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_a_dense_table_gets_dense_updates_as_on_the_graph_engine():
    # dot(csr, dense W): a dense gradient, every row updated (momentum and wd move untouched rows)
    def make():
        data = _var("data", stype="csr")
        return st.sym.broadcast_add(st.sym.dot(data, _var("w_weight", shape=(FEATURES, 1))), _var("bias", shape=(1,)))
    assert_same(make, "LinearRegressionOutput", opt="sgd_mom", batch_size=4)


# -- random graphs from the fused op set ----------------------------------------------------------

UNARIES = ["negative", "square", "abs", "relu", "sigmoid", "tanh"]


@st_.composite
def graphs(draw):
    """A random model: dots of the csr data with row-sparse tables, then unary, element-wise,
    broadcast, dense-dot and reduce steps, ending in the output's width. Returns (build, output, classes)."""
    output = draw(st_.sampled_from(list(METRIC)))
    classes = 3 if output == "SoftmaxOutput" else 1
    width = draw(st_.integers(1, 3))
    steps = draw(st_.lists(st_.tuples(st_.sampled_from(["unary", "binary", "broadcast", "dense_dot", "sqrt"]),
                                      st_.sampled_from(UNARIES), st_.sampled_from(["add", "sub", "mul"]),
                                      st_.integers(0, 10)), min_size=1, max_size=4))
    square_table = draw(st_.booleans())
    source = draw(st_.sampled_from(["csr", "ids"]))  # dots of csr features, or Embeddings of field ids
    end = draw(st_.sampled_from(["sum", "mean", "dot"])) if classes == 1 else "dot"
    # auc (an epoch metric: the plan collects every score) where the output is binary
    metrics = [METRIC[output]] + (["auc"] if output == "LogisticRegressionOutput" and draw(st_.booleans()) else [])

    def build():
        if source == "ids":  # (batch, FIELDS, width) embeddings, reduced over the fields or the width
            table = _var("t0_weight", stype="row_sparse", shape=(IDS, width))
            e = st.sym.Embedding(_var("data"), table, input_dim=IDS, output_dim=width, sparse_grad=True)
            acts = [(st.sym.sum(e, axis=1), width)]
            if square_table:
                acts += [(st.sym.mean(st.sym.elemwise_mul(e, st.sym.tanh(e)), axis=1), width),
                         (st.sym.sum(st.sym.square(e), axis=2), FIELDS)]
        else:
            data = _var("data", stype="csr")
            table = _var("t0_weight", stype="row_sparse", shape=(FEATURES, width))
            acts = [(st.sym.dot(data, table), width)]
            if square_table:
                acts.append((st.sym.dot(st.sym.square(data), st.sym.square(table)), width))
        for n, (kind, unary, binary, pick) in enumerate(steps):
            x, w = acts[pick % len(acts)]
            if kind == "unary":
                acts.append((getattr(st.sym, unary)(x), w))
            elif kind == "sqrt":
                acts.append((st.sym.sqrt(st.sym.sigmoid(x)), w))
            elif kind == "binary":
                same = [a for a in acts if a[1] == w]
                other = same[(pick // 2) % len(same)][0]
                acts.append((getattr(st.sym, "elemwise_" + binary)(x, other), w))
            elif kind == "broadcast":
                p = _var(f"b{n}_weight", shape=(w,) if pick % 2 else (1, w))
                acts.append((getattr(st.sym, "broadcast_" + binary)(x, p), w))
            else:
                acts.append((st.sym.dot(x, _var(f"d{n}_weight", shape=(w, 2))), 2))
        x, w = acts[-1]
        if end == "dot":
            return st.sym.dot(x, _var("head_weight", shape=(w, classes)))
        return getattr(st.sym, end)(x, axis=1, keepdims=True)

    return build, output, classes, metrics, source


def _check_random_graph(case, opt, batch_size):
    build, output, classes, metrics, source = case
    assert_same(build, output, opt=opt, batch_size=batch_size, classes=classes, metrics=metrics, source=source)


@settings(max_examples=3, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(graphs(), st_.sampled_from(list(OPTIMIZERS)), st_.sampled_from([1, 3, 8]))
def test_random_graphs_plan_equals_graph(case, opt, batch_size):
    _check_random_graph(case, opt, batch_size)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(graphs(), st_.sampled_from(list(OPTIMIZERS)), st_.sampled_from([1, 2, 3, 8, 32]))
def test_random_graphs_plan_equals_graph_deep(case, opt, batch_size):
    _check_random_graph(case, opt, batch_size)


# -- what is not fused: one clear line -----------------------------------------------------------

def _module(pred, output="LinearRegressionOutput"):
    x, y = _data(output, 1)
    it = st.io.NDArrayIter(x, y, 4, label_name="label")
    loss = getattr(st.sym, output)(data=pred, label=_var("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.3))
    mod.init_optimizer(optimizer="sgd")
    return mod, it


@pytest.mark.parametrize("make,named", [
    (lambda d, t: st.sym.sum(st.sym.log1p(st.sym.square(st.sym.dot(d, t))), axis=1, keepdims=True), "log1p"),
    (lambda d, t: st.sym.sum(st.sym.sign(st.sym.dot(d, t)), axis=1, keepdims=True), "sign"),
    (lambda d, t: st.sym.sum(st.sym.dot(d, t, transpose_b=False, forward_stype="row_sparse"), axis=1,
                             keepdims=True), "forward_stype"),
    (lambda d, t: st.sym.sum(st.sym.dot(st.sym.exp(d), t), axis=1, keepdims=True), "exp"),
])
def test_unfused_models_name_what_stops_them(make, named):
    from sparsetrain.engines import compiled

    pred = make(_var("data", stype="csr"), _var("t_weight", stype="row_sparse", shape=(FEATURES, 2)))
    mod, it = _module(pred)
    reason = compiled.why_not_fused(mod.view(), it, st.metric.create("mse"))
    assert named in reason and "\n" not in reason
    with pytest.raises(SparseTrainError, match=named):
        mod.choose_engine("compiled", it, st.metric.create("mse"))
    assert mod.choose_engine("auto", it, st.metric.create("mse"))[0] == "graph"


def test_reductions_fuse_over_the_feature_axis_only():
    from sparsetrain.ops import registry

    form = registry.get("mean").fused
    assert form.refuses({"axis": 1}) is None and form.refuses({"axis": (-1,)}) is None
    assert "axis=0" in form.refuses({"axis": 0}) and "exclude" in form.refuses({"axis": 1, "exclude": True})


def test_a_metric_without_a_fused_form_keeps_a_plan_off():
    from sparsetrain.engines import compiled

    mod, it = _module(fm(), "LogisticRegressionOutput")
    assert compiled.why_not_fused(mod.view(), it, st.metric.create(["log_loss", "accuracy", "auc"])) == ""
    custom = st.metric.CustomMetric(lambda label, pred: 0.0, name="zero")
    reason = compiled.why_not_fused(mod.view(), it, st.metric.create(["log_loss", custom]))
    assert "'zero'" in reason and "\n" not in reason
    assert mod.choose_engine("auto", it, st.metric.create(["log_loss", "auc"]))[0] == "compiled"
    mod, it = _module(fm())  # a regression output: auc needs a binary one, and says so
    reason = compiled.why_not_fused(mod.view(), it, st.metric.create(["mse", "auc"]))
    assert "'auc'" in reason and "binary" in reason and "\n" not in reason


# -- the fused forms agree with the registry's numpy formulas --------------------------------------

@pytest.mark.parametrize("name", sorted(UNARY_FUSED))
def test_unary_fused_forms_match_the_numpy_formulas(name):
    forward, partial = UNARY_FUSED[name]
    f, deriv, _ = UNARY.get(name, (None, None, None))
    if name == "negative":
        deriv = lambda x, y: -np.ones_like(x)  # noqa: E731
    if name == "_copy":
        deriv = lambda x, y: np.ones_like(x)  # noqa: E731
    xs = np.array([-1.7, -0.3, 0.0, 0.4, 2.5]) if name not in ("sqrt", "log") else np.array([0.2, 1.0, 3.5])
    for x in xs:
        y = eval(forward, {"math": math, "abs": abs}, {"a": x})  # noqa: S307 (our own table)
        assert y == pytest.approx(float(f(np.array([x]))[0]), rel=1e-12, abs=1e-15)
        d = eval(partial, {"math": math}, {"a": x, "y": y})  # noqa: S307
        assert d == pytest.approx(float(deriv(np.array([x]), np.array([y]))[0]), rel=1e-12, abs=1e-15)


# -- a config with Embedding: field ids in a LibSVM file (column f holds the id of field f) ----------

FIELD_FM_CONFIG = """
data: {train: ids.libsvm, num_features: 2, zero_based: true, batch_size: 8, shuffle: false}
model:
  variables:
    data:   {}
    label:  {}
    table:  {stype: row_sparse, shape: [50, 4], init: {normal: {sigma: 0.1}}}
    bias:   {shape: [1]}
  ops:
    - {name: emb,   op: Embedding, inputs: [data, table], params: {input_dim: 50, output_dim: 4, sparse_grad: true}}
    - {name: sq,    op: square, inputs: [emb]}
    - {name: s1,    op: sum, inputs: [emb], params: {axis: 1}}
    - {name: s1sq,  op: square, inputs: [s1]}
    - {name: s2,    op: sum, inputs: [sq], params: {axis: 1}}
    - {name: pair,  op: elemwise_sub, inputs: [s1sq, s2]}
    - {name: pairs, op: sum, inputs: [pair], params: {axis: 1, keepdims: true}}
    - {name: pred,  op: broadcast_add, inputs: [pairs, bias]}
  loss: {name: out, op: LogisticRegressionOutput, data: pred, label: label}
optimizer: {name: adagrad, learning_rate: 0.1}
train: {epochs: 2, metrics: [log_loss, accuracy], seed: 0, threads: 1}
"""


def test_a_config_with_embedding_runs_compiled_and_says_so(tmp_path):
    import json

    from click.testing import CliRunner

    from sparsetrain.cli import main

    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 30, 200), rng.integers(30, 50, 200)
    (tmp_path / "ids.libsvm").write_text("".join(f"{int(u % 3 == i % 3)} 0:{u} 1:{i}\n" for u, i in zip(users, items)))
    (tmp_path / "fm.yaml").write_text(FIELD_FM_CONFIG)
    runs, header = {}, {}
    for engine in ("auto", "graph"):
        res = CliRunner().invoke(main, ["fit", str(tmp_path / "fm.yaml"), "--output", str(tmp_path / engine),
                                        "--set", f"train.engine={engine}", "--set", "model.variables.table.lr_mult=0.5"])
        assert res.exit_code == 0, res.output
        runs[engine] = [json.loads(line) for line in (tmp_path / engine / "metrics.jsonl").read_text().splitlines()]
        header[engine] = res.output
    assert "engine compiled (generated plan: LogisticRegressionOutput, parameters table (lr_mult 0.5), bias)" in \
        header["auto"]
    assert [r["engine"] for r in runs["auto"]] == ["compiled"] * 2
    for got, want in zip(runs["auto"], runs["graph"]):  # float32: the same to rounding
        assert got["log_loss"] == pytest.approx(want["log_loss"], rel=1e-5)


def test_the_plan_cache_is_an_installations_own(tmp_path, monkeypatch):
    """Two installations (virtualenvs, checkouts) sharing a plan cache keep their plans apart: numba's code for a
    plan refers to the kernels of the installation that compiled it (one with a module the other lacks failed
    with ModuleNotFoundError), and the staleness check compares only file times."""
    import os

    from sparsetrain.engines.compiled import plan_runner

    monkeypatch.setenv("SPARSETRAIN_PLAN_CACHE", str(tmp_path))
    here = plan_runner.cache_dir()
    package = os.path.dirname(st.__file__)
    installation, kernels = os.path.split(os.path.relpath(here, tmp_path))
    assert installation == plan_runner.installation_tag(package) and kernels == f"kernels-{plan_runner.kernels_digest()}"
    assert plan_runner.installation_tag(str(tmp_path / "other" / "sparsetrain")) != plan_runner.installation_tag(package)
    monkeypatch.setattr(st, "__version__", "0.0.0-other")
    assert plan_runner.cache_dir() != here


def test_plans_compiled_against_other_kernels_are_kept_apart(tmp_path, monkeypatch):
    """Within one installation, the plan cache's directory is named by the content of every module whose kernels
    a plan calls (the modules plan_kernels names and, transitively, theirs), not by file times: an edit of any
    of them makes the plans anew, whatever the times say (a checkout, a copy, a wheel set them)."""
    import os
    import shutil

    from sparsetrain.engines.compiled import plan_runner

    digest = plan_runner.kernels_digest()
    assert plan_runner.kernels_digest() is digest  # (read once per process)
    for module in plan_runner.PLAN_CALLS:
        plan_runner.kernels_digest.cache_clear()
        copy = tmp_path / f"{module.__name__}.py"
        shutil.copy2(module.__file__, copy)  # the same times
        copy.write_bytes(copy.read_bytes() + b"\n# edited\n")
        os.utime(copy, ns=(os.stat(module.__file__).st_atime_ns, os.stat(module.__file__).st_mtime_ns))
        monkeypatch.setattr(module, "__file__", str(copy))
        assert plan_runner.kernels_digest() != digest, module.__name__
        monkeypatch.undo()
    plan_runner.kernels_digest.cache_clear()
    assert plan_runner.kernels_digest() == digest
