"""``LinearEpochRunner.batch_gradients`` (one batch, forward + backward, no update) against the graph
engine's ``Executor.grad_dict`` and the :mod:`sparsetrain.metric` classes.

Each case builds the equivalent symbol — ``Σ_t sparse.dot(csr, row_sparse weight) [+ bias]`` into an
output layer — binds it with ``simple_bind``, runs ``forward(is_train=True)``/``backward()`` and
compares the weights' row-sparse gradients (row ids and values), the bias gradient and the metrics.
The batches hold explicit zeros (a column stored only as 0.0 is still a gradient row), an empty
row, and the weights' rows outside the batch are NaN (they must not leak into anything).
"""
from __future__ import annotations

import itertools
import zlib

import numpy as np
import pytest
import scipy.sparse as sp
from test_compiled_kernels import make_labels, random_csr

import sparsetrain as st
from sparsetrain import optimizer as opt_mod
from sparsetrain.engines.compiled import kernels as K
from sparsetrain.engines.compiled.runner import BatchGradients, EpochResult, LinearEpochRunner
from sparsetrain.ndarray import CSRNDArray, NDArray, RowSparseNDArray

DIMS = [30, 12]
METRICS = {
    "LinearRegressionOutput": ("mse", "rmse", "mae"),
    "MAERegressionOutput": ("mae", "mse"),
    "LogisticRegressionOutput": ("accuracy", "log_loss", "mse"),
    "SoftmaxOutput": ("accuracy", "ce"),
}


# -- data --------------------------------------------------------------------------------------

def batch_csr(rng, n, d, dtype=np.float32):
    """A batch of ``n`` rows with explicit zeros, an empty row (n > 1) and a column stored only as 0."""
    x = random_csr(rng, n, d, 0.25, dtype).tolil()
    if n > 1:
        x[n - 1, :] = 0  # an empty row (lil drops its entries)
    x = x.tocsr()
    x.sort_indices()
    dense_cols = set(x.indices.tolist())
    free = [c for c in range(d) if c not in dense_cols]
    data, indices, indptr = list(x.data), list(x.indices), x.indptr.copy()
    if free:  # append an explicit zero in a column nothing else stores, to row 0
        pos = int(np.searchsorted(indices[indptr[0]:indptr[1]], free[0])) + int(indptr[0])
        data.insert(pos, 0.0)
        indices.insert(pos, free[0])
        indptr[1:] += 1
    return sp.csr_matrix((np.array(data, dtype=dtype), np.array(indices, dtype=np.int64), indptr.astype(np.int64)),
                         shape=(n, d))


def nan_outside(rng, x, d, k, dtype=np.float32):
    """Weights whose rows outside the batch's stored columns are NaN."""
    w = np.full((d, k), np.nan, dtype=dtype)
    used = np.unique(x.indices[: x.indptr[-1]])
    w[used] = rng.normal(scale=0.5, size=(len(used), k)).astype(dtype)
    return w


def case_data(output, n, k, n_terms, has_bias, seed):
    rng = np.random.default_rng(seed)
    terms = [batch_csr(rng, n, d) for d in DIMS[:n_terms]]
    weights = [nan_outside(rng, x, d, k) for x, d in zip(terms, DIMS)]
    bias = rng.normal(scale=0.2, size=k).astype(np.float32) if has_bias else None
    label = make_labels(rng, output, n, k).astype(np.float32)
    return terms, label, weights, bias


# -- the graph engine ------------------------------------------------------------------------

def graph_engine(output, terms, label, weights, bias, k, grad_scale=1.0, normalization="null"):
    """(outputs, {weight name: row_sparse grad}, bias grad or None) of forward/backward on the graph."""
    n = terms[0].shape[0]
    pred = None
    shapes = {}
    for t, (x, w) in enumerate(zip(terms, weights)):
        term = st.sym.sparse.dot(st.sym.Variable(f"data{t}", stype="csr"),
                                 st.sym.Variable(f"w{t}", stype="row_sparse", shape=w.shape))
        pred = term if pred is None else st.sym.elemwise_add(pred, term)
        shapes[f"data{t}"] = x.shape
    if bias is not None:
        pred = st.sym.broadcast_add(pred, st.sym.Variable("bias", shape=(k,)))
    kw = {"grad_scale": grad_scale}
    if output == "SoftmaxOutput":
        kw["normalization"] = normalization
    loss = getattr(st.sym, output)(data=pred, label=st.sym.Variable("label"), name="out", **kw)
    shapes["label"] = (n,) if output == "SoftmaxOutput" else (n, k)
    reqs = {f"w{t}": "write" for t in range(len(terms))}
    if bias is not None:
        reqs["bias"] = "write"
    ex = loss.simple_bind(grad_req=reqs, **shapes)
    for t, (x, w) in enumerate(zip(terms, weights)):
        ex.set_input(f"data{t}", CSRNDArray(x.data, x.indices.astype(np.int64), x.indptr.astype(np.int64), x.shape))
        ex.set_input(f"w{t}", RowSparseNDArray(w.copy(), np.arange(w.shape[0], dtype=np.int64), w.shape))
    if bias is not None:
        ex.set_input("bias", NDArray(bias.copy()))
    ex.set_input("label", NDArray(label.reshape(shapes["label"]).copy()))
    ex.forward(is_train=True)
    ex.backward()
    wgrads = [ex.grad_dict[f"w{t}"] for t in range(len(terms))]
    return ex.outputs[0].asnumpy(), wgrads, (ex.grad_dict["bias"].asnumpy() if bias is not None else None)


def metric_reference(names, label, out):
    sums, counts = [], []
    for name in names:
        m = st.metric.create(name)
        m.update([NDArray(label)], [NDArray(out)])
        sums.append(m.sum_metric)
        counts.append(m.num_inst)
    return np.array(sums), np.array(counts, dtype=np.float64)


def assert_matches_graph(got: BatchGradients, output, terms, label, weights, bias, k, metrics, **graph_kw):
    out, wgrads, bgrad = graph_engine(output, terms, label, weights, bias, k, **graph_kw)
    assert got.finite and got.ok and got.num_samples == terms[0].shape[0]
    assert len(got.rows) == len(got.values) == len(terms)
    for t, (rows, values, g) in enumerate(zip(got.rows, got.values, wgrads)):
        assert g.stype == "row_sparse"
        assert rows.dtype == np.int64 and values.dtype == np.float32 and values.shape == (len(rows), k)
        np.testing.assert_array_equal(rows, g._indices, err_msg=f"term {t} rows")
        np.testing.assert_array_equal(rows, np.unique(terms[t].indices))  # explicit zeros included
        np.testing.assert_allclose(values, g._data, rtol=2e-5, atol=2e-6, err_msg=f"term {t} values")
        assert np.all(np.diff(rows) > 0)
    if bias is None:
        assert got.bias is None
    else:
        assert got.bias.shape == (k,)
        np.testing.assert_allclose(got.bias, bgrad, rtol=2e-5, atol=2e-6)
    sums, counts = metric_reference(metrics, label, out)
    assert got.metric_names == list(metrics)
    np.testing.assert_array_equal(got.metric_counts, counts)
    np.testing.assert_allclose(got.metric_sums, sums, rtol=1e-4, atol=1e-6)


# -- the matrix --------------------------------------------------------------------------------

REGRESSION_CASES = list(itertools.product(
    ["LinearRegressionOutput", "MAERegressionOutput", "LogisticRegressionOutput"],
    [1, 3],            # K
    [1, 2],            # dot terms
    [True, False],     # bias
    [1, 7],            # batch rows
))


@pytest.mark.parametrize("output,k,n_terms,has_bias,n", REGRESSION_CASES)
def test_regression_outputs_match_graph_engine(output, k, n_terms, has_bias, n):
    seed = zlib.crc32(repr((output, k, n_terms, has_bias, n)).encode())
    terms, label, weights, bias = case_data(output, n, k, n_terms, has_bias, seed)
    metrics = METRICS[output] if k == 1 else ("mse", "mae")  # accuracy/log_loss need one output
    runner = LinearEpochRunner(output, DIMS[:n_terms], k, has_bias=has_bias, grad_scale=1.5 if n == 7 else 1.0)
    got = runner.batch_gradients(terms, label, weights, bias, metrics)
    assert_matches_graph(got, output, terms, label, weights, bias, k, metrics, grad_scale=runner.grad_scale)


@pytest.mark.parametrize("normalization,n_terms,has_bias,n", list(itertools.product(
    ["null", "batch"], [1, 2], [True, False], [1, 7])))
def test_softmax_matches_graph_engine(normalization, n_terms, has_bias, n):
    k = 3
    seed = zlib.crc32(repr((normalization, n_terms, has_bias, n)).encode())
    terms, label, weights, bias = case_data("SoftmaxOutput", n, k, n_terms, has_bias, seed)
    runner = LinearEpochRunner("SoftmaxOutput", DIMS[:n_terms], k, has_bias=has_bias, normalization=normalization)
    got = runner.batch_gradients(terms, label, weights, bias, METRICS["SoftmaxOutput"])
    assert_matches_graph(got, "SoftmaxOutput", terms, label, weights, bias, k, METRICS["SoftmaxOutput"],
                         normalization=normalization)


def test_batch_sizes_and_input_types_on_one_runner():
    """Scratch grows and is reused across batch sizes; CSRNDArray, scipy and tuple inputs agree."""
    rng = np.random.default_rng(3)
    runner = LinearEpochRunner("LogisticRegressionOutput", DIMS, 1)
    previous = []
    for n in (5, 1, 64, 2, 300, 3):
        terms = [batch_csr(rng, n, d) for d in DIMS]
        weights = [nan_outside(rng, x, d, 1) for x, d in zip(terms, DIMS)]
        bias = np.array([0.1], np.float32)
        label = make_labels(rng, "LogisticRegressionOutput", n, 1).astype(np.float32)
        got = runner.batch_gradients(terms, label, weights, bias, ("accuracy", "log_loss"))
        assert_matches_graph(got, "LogisticRegressionOutput", terms, label, weights, bias, 1, ("accuracy", "log_loss"))
        as_nd = [CSRNDArray(x.data, x.indices, x.indptr, x.shape) for x in terms]
        as_tuple = [(x.data, x.indices.astype(np.int32), x.indptr) for x in terms]
        for other in (runner.batch_gradients(as_nd, NDArray(label), weights, bias, ("accuracy", "log_loss")),
                      runner.batch_gradients(as_tuple, label, weights, bias, ("accuracy", "log_loss"))):
            for a, b in zip(got.rows + got.values, other.rows + other.values):
                np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(got.bias, other.bias)
            np.testing.assert_array_equal(got.metric_sums, other.metric_sums)
        previous.append((got, [r.copy() for r in got.rows], [v.copy() for v in got.values], got.bias.copy()))
    for got, rows, values, b in previous:  # later calls did not overwrite earlier results
        for a, e in zip(got.rows + got.values, rows + values):
            np.testing.assert_array_equal(a, e)
        np.testing.assert_array_equal(got.bias, b)


def test_unsorted_and_repeated_columns():
    """Non-canonical CSR rows (columns out of order, a column twice) still give sorted unique rows."""
    x = sp.csr_matrix((np.array([0.5, 1.0, -2.0, 0.25, 0.0, 3.0], np.float32),
                       np.array([7, 2, 7, 9, 4, 2], np.int64), np.array([0, 4, 4, 6], np.int64)), shape=(3, 12))
    rng = np.random.default_rng(4)
    w = nan_outside(rng, x, 12, 2)
    label = rng.normal(size=(3, 2)).astype(np.float32)
    runner = LinearEpochRunner("LinearRegressionOutput", [12], 2)
    b = np.zeros(2, np.float32)
    got = runner.batch_gradients([x], label, [w], b, ("mse",))
    np.testing.assert_array_equal(got.rows[0], [2, 4, 7, 9])
    assert_matches_graph(got, "LinearRegressionOutput", [x], label, [w], b, 2, ("mse",))
    one = x[:1]  # one sample, not canonical: the hash-table path
    got1 = runner.batch_gradients([one], label[:1], [w], b, ())
    np.testing.assert_array_equal(got1.rows[0], [2, 7, 9])
    assert_matches_graph(got1, "LinearRegressionOutput", [one], label[:1], [w], b, 2, ())


def test_large_feature_space_reads_only_batch_rows():
    """2**20 rows of NaN except the batch's: nothing leaks; many rows take the radix-sort path."""
    rng = np.random.default_rng(5)
    d, n = 1 << 20, 256
    x = sp.random(n, d, density=2e-4, format="csr", random_state=rng, dtype=np.float32)
    x.indices = x.indices.astype(np.int64)
    x.indptr = x.indptr.astype(np.int64)
    w = nan_outside(rng, x, d, 1)
    label = rng.normal(size=n).astype(np.float32)
    runner = LinearEpochRunner("LinearRegressionOutput", [d], 1)
    got = runner.batch_gradients([x], label, [w], np.zeros(1, np.float32), ("mse",))
    assert got.finite and len(got.rows[0]) > 1000
    cols = np.unique(x.indices)
    np.testing.assert_array_equal(got.rows[0], cols)
    g = 1.0 * (np.asarray(x @ np.nan_to_num(w.astype(np.float64)))[:, 0] - label)
    expected = np.asarray(x.T.astype(np.float64) @ g)[cols]
    np.testing.assert_allclose(got.values[0][:, 0], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.bias, [g.sum()], rtol=1e-4)
    assert np.isfinite(got.values[0]).all()


@pytest.mark.parametrize("nq", [0, 1, 5, 32, 33, 1000, 20000])
def test_radix_sort_positions(nq):
    rng = np.random.default_rng(nq)
    keys = rng.choice(2**31 - 1, size=nq, replace=False).astype(np.int64)
    if nq > 2:
        keys[0] = 2**31 - 1
        keys[1] = 0
    pos = K._sort_positions(keys, nq)
    np.testing.assert_array_equal(pos, np.argsort(keys, kind="stable"))


def test_gradients_are_what_a_fused_sgd_step_applies():
    """W - batch_gradients == fit_epoch's lazy SGD step (lr 1) on the same batch, on its rows."""
    rng = np.random.default_rng(6)
    x = batch_csr(rng, 6, 30)
    w = nan_outside(rng, x, 30, 3)
    label = rng.integers(0, 3, size=6).astype(np.float32)
    b = np.zeros(3, np.float32)
    runner = LinearEpochRunner("SoftmaxOutput", [30], 3)
    got = runner.batch_gradients([x], label, [w], b, ("ce",))
    w2, b2 = w.copy(), b.copy()
    runner.fit_epoch([x], label, np.arange(6), np.array([0, 6]), [w2], b2,
                     opt_mod.get_updater(opt_mod.SGD(learning_rate=1.0)), [0, 1], ("ce",), check_params=False)
    np.testing.assert_allclose(w2[got.rows[0]], w[got.rows[0]] - got.values[0], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(b2, b - got.bias, rtol=1e-6, atol=1e-7)


# -- non-finite and errors -----------------------------------------------------------------------

def test_nonfinite_output_is_flagged_not_raised():
    rng = np.random.default_rng(7)
    x = batch_csr(rng, 4, 30)
    w = nan_outside(rng, x, 30, 1)
    w[x.indices[0]] = np.nan  # a row the batch uses
    runner = LinearEpochRunner("LinearRegressionOutput", [30], 1)
    got = runner.batch_gradients([x], np.zeros(4, np.float32), [w], np.zeros(1, np.float32), ("mse",))
    assert not got.finite and not got.ok and got.bias is None and got.rows == [] and got.values == []
    res = got.epoch_result()
    assert isinstance(res, EpochResult) and not res.ok and res.nonfinite_batch == 0
    # the runner is fine afterwards
    w[x.indices[0]] = 0.5
    assert runner.batch_gradients([x], np.zeros(4, np.float32), [w], np.zeros(1, np.float32), ("mse",)).finite


def test_nonfinite_metric_is_flagged():
    rng = np.random.default_rng(8)
    x = batch_csr(rng, 3, 30)
    w = nan_outside(rng, x, 30, 1)
    runner = LinearEpochRunner("LinearRegressionOutput", [30], 1, has_bias=False)
    label = np.array([0.0, np.inf, 1.0], np.float32)
    assert not runner.batch_gradients([x], label, [w], None, ("mse",)).finite


def test_metrics_and_epoch_result():
    rng = np.random.default_rng(9)
    x = batch_csr(rng, 5, 30)
    w = nan_outside(rng, x, 30, 3)
    label = rng.integers(0, 3, size=5).astype(np.float32)
    runner = LinearEpochRunner("SoftmaxOutput", [30], 3, has_bias=False)
    got = runner.batch_gradients([x], label, [w], None, ["accuracy", "ce"])
    assert got.bias is None
    np.testing.assert_array_equal(got.metric_counts, [5, 5])
    res = got.epoch_result()
    assert res.num_batches == 1 and res.num_samples == 5 and res.ok
    assert res.metrics == pytest.approx(got.metrics)
    score = runner.score([x], label, np.arange(5), np.array([0, 5]), [w], None, ("accuracy", "ce"))
    np.testing.assert_allclose(score.metric_sums, got.metric_sums, rtol=1e-12)


def test_bad_inputs_raise():
    runner = LinearEpochRunner("LinearRegressionOutput", [4], 1)
    w, b = np.zeros((4, 1), np.float32), np.zeros(1, np.float32)
    empty = sp.csr_matrix((0, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="at least one row"):
        runner.batch_gradients([empty], np.zeros(0, np.float32), [w], b)
    x = sp.csr_matrix(np.eye(2, 4, dtype=np.float32))
    with pytest.raises(ValueError, match="labels"):
        runner.batch_gradients([x], None, [w], b)
    with pytest.raises(Exception, match="does not fit"):
        runner.batch_gradients([x], np.zeros(3, np.float32), [w], b)
    bad = (np.ones(1, np.float32), np.array([9]), np.array([0, 1, 1]))
    with pytest.raises(Exception, match="column index outside"):
        runner.batch_gradients([bad], np.zeros(2, np.float32), [w], b)
    # validated on every call: a buffer refilled in place is checked again
    data, ind, ptr = np.ones(1, np.float32), np.array([1], np.int64), np.array([0, 1, 1], np.int64)
    assert runner.batch_gradients([(data, ind, ptr)], np.zeros(2, np.float32), [w], b).finite
    ind[0] = 9
    with pytest.raises(Exception, match="column index outside"):
        runner.batch_gradients([(data, ind, ptr)], np.zeros(2, np.float32), [w], b)
