"""The fused epoch kernels against a straightforward numpy loop over the same batches.

The reference below is written independently of the kernels, on dense numpy copies of the (small)
inputs: a matmul makes the prediction, ``Xᵀ·grad`` the gradient, the gradient's rows are the
columns stored in the batch's CSR structure (explicit zeros included), and the optimizer formulas
come from ``optim_reference``.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from sparsetrain import lr_scheduler as lrs
from sparsetrain import optimizer as opt_mod
from sparsetrain.engines.compiled.epoch_loop import EpochResult, nonfinite
from sparsetrain.engines.compiled.runner import LinearEpochRunner, optimizer_fusable
from sparsetrain.kernels import optim_reference as ref
from sparsetrain.ndarray import NDArray, RowSparseNDArray

N_ROWS = 37
OUTPUTS = ["LinearRegressionOutput", "MAERegressionOutput", "LogisticRegressionOutput", "SoftmaxOutput"]
OPTIMIZERS = {
    "sgd": ("sgd", {"learning_rate": 0.1, "wd": 0.01}),
    "sgd_mom": ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "wd": 0.01, "clip_gradient": 0.8}),
    "adagrad": ("adagrad", {"learning_rate": 0.2, "wd": 0.01}),
    "adam": ("adam", {"learning_rate": 0.05, "wd": 0.01, "clip_gradient": 1.5}),
    "ftrl": ("ftrl", {"learning_rate": 0.3, "lamda1": 0.02, "wd": 0.01}),
}
METRICS_BY_OUTPUT = {
    "LinearRegressionOutput": ("mse", "rmse", "mae"),
    "MAERegressionOutput": ("mae", "mse"),
    "LogisticRegressionOutput": ("accuracy", "log_loss", "mse"),
    "SoftmaxOutput": ("accuracy", "ce"),
}


# -- data and schedules ----------------------------------------------------------------------

def random_csr(rng, n, d, density, dtype):
    """CSR with sorted indices, some empty rows and some explicit zero values."""
    x = sp.random(n, d, density=density, format="csr", random_state=rng, dtype=np.float64)
    x.data = rng.uniform(-1, 1, size=x.nnz)
    x.data[rng.random(x.nnz) < 0.15] = 0.0  # explicit zeros stay stored
    x.sort_indices()
    x.indices = x.indices.astype(np.int64)
    x.indptr = x.indptr.astype(np.int64)
    x.data = x.data.astype(dtype)
    return x


def make_labels(rng, output, n, k):
    if output == "SoftmaxOutput":
        return rng.integers(0, k, size=n).astype(np.float64)
    if output == "LogisticRegressionOutput":
        return rng.integers(0, 2, size=(n, k)).astype(np.float64)
    return rng.normal(size=(n, k))


def schedules(n, batch_size, mode, epochs, rng, shuffle=True):
    """(order, batch_ptr) per epoch, following NDArrayIter's last_batch_handle semantics."""
    out, carry = [], np.zeros(0, dtype=np.int64)
    for _ in range(epochs):
        perm = rng.permutation(n).astype(np.int64) if shuffle else np.arange(n, dtype=np.int64)
        if mode == "pad":
            nb = -(-n // batch_size)
            order = np.resize(perm, nb * batch_size)  # wraps around to the start
        elif mode == "discard":
            nb = n // batch_size
            order = perm[: nb * batch_size]
        else:  # roll_over: leftovers of the previous epoch come first
            seq = np.concatenate([carry, perm])
            nb = len(seq) // batch_size
            order, carry = seq[: nb * batch_size], seq[nb * batch_size:]
        out.append((order, np.arange(nb + 1, dtype=np.int64) * batch_size))
    return out


# -- the reference loop ---------------------------------------------------------------------

def ref_output(pred, output):
    if output == "LogisticRegressionOutput":
        return 1.0 / (1.0 + np.exp(-pred))
    if output == "SoftmaxOutput":
        e = np.exp(pred - pred.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return pred


def ref_metric(name, out, lab, output):
    """(sum contribution, num_inst contribution) of one batch, MXNet style."""
    n, k = out.shape
    if name in ("mse", "rmse", "mae"):
        diff = lab.reshape(n, -1) - out
        val = np.mean(diff**2) if name != "mae" else np.mean(np.abs(diff))
        return (np.sqrt(val) if name == "rmse" else val), 1
    if name == "accuracy":
        if k == 1:
            return float(np.sum((out[:, 0] > 0.5).astype(float) == lab[:, 0])), n
        return float(np.sum(out.argmax(axis=1) == lab.astype(int))), n
    if k == 1:
        y, p = lab[:, 0], out[:, 0]
        return float(-np.sum(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))), n
    return float(-np.sum(np.log(out[np.arange(n), lab.astype(int)] + 1e-12))), n


def ref_grad(out, lab, output, grad_scale):
    n, k = out.shape
    if output == "SoftmaxOutput":
        onehot = np.zeros_like(out)
        onehot[np.arange(n), lab.astype(int)] = 1.0
        return grad_scale * (out - onehot)
    diff = out - lab.reshape(n, k)
    return grad_scale / k * (np.sign(diff) if output == "MAERegressionOutput" else diff)


def ref_update(key, opt_kw, arrays, grad, lr, t, rows=None):
    name, _ = OPTIMIZERS[key] if key in OPTIMIZERS else (key, None)
    kw = dict(wd=opt_kw.get("wd", 0.0), rescale_grad=opt_kw.get("rescale_grad", 1.0),
              clip_gradient=opt_kw.get("clip_gradient"))

    def rule(*a):
        *arr, g = a
        if name == "sgd" and opt_kw.get("momentum", 0.0):
            return ref.sgd_mom(arr[0], arr[1], g, lr, opt_kw["momentum"], **kw)
        if name == "sgd":
            return (ref.sgd(arr[0], g, lr, **kw),)
        if name == "adagrad":
            return ref.adagrad(arr[0], arr[1], g, lr, eps=opt_kw.get("eps", 1e-7), **kw)
        if name == "adam":
            return ref.adam(arr[0], arr[1], arr[2], g, lr, t, eps=opt_kw.get("epsilon", 1e-8), **kw)
        return ref.ftrl(arr[0], arr[1], arr[2], g, lr, lamda1=opt_kw.get("lamda1", 0.01), beta=opt_kw.get("beta", 1.0),
                        **kw)

    if rows is None:
        return list(rule(*arrays, grad))
    return ref.lazy(rule, arrays, rows, grad)


def n_states(key, opt_kw):
    name = OPTIMIZERS[key][0] if key in OPTIMIZERS else key
    return {"sgd": 1 if opt_kw.get("momentum", 0.0) else 0, "adagrad": 1, "adam": 2, "ftrl": 2}[name]


class Reference:
    """The per-batch loop in float64 numpy; params and states are lists [weight or bias, *states]."""

    def __init__(self, terms, label, weights, bias, output, key, opt_kw, grad_scale=1.0, lr_of_step=None):
        self.terms, self.stored = [], []
        for x in terms:
            x = sp.csr_matrix(x)
            self.terms.append(x.toarray().astype(np.float64))
            stored = np.zeros(x.shape, dtype=bool)
            stored[np.repeat(np.arange(x.shape[0]), np.diff(x.indptr)), x.indices] = True
            self.stored.append(stored)
        self.label = np.asarray(label, dtype=np.float64)
        if self.label.ndim == 1:
            self.label = self.label[:, None]
        ns = n_states(key, opt_kw)
        self.params = [[np.array(w, dtype=np.float64)] + [np.zeros(np.shape(w))] * ns for w in weights]
        self.bias = None if bias is None else [np.array(bias, dtype=np.float64)] + [np.zeros(np.shape(bias))] * ns
        self.output, self.key, self.opt_kw, self.grad_scale = output, key, opt_kw, grad_scale
        self.steps = 0
        self.lr_of_step = lr_of_step or (lambda step: opt_kw["learning_rate"])

    def forward(self, rows):
        # products over stored entries only (as a CSR kernel: NaN in an unused weight row stays out)
        pred = sum(np.where(s[rows][:, :, None], x[rows][:, :, None] * p[0][None], 0.0).sum(axis=1)
                   for x, s, p in zip(self.terms, self.stored, self.params))
        if self.bias is not None:
            pred = pred + self.bias[0]
        return ref_output(np.asarray(pred), self.output)

    def epoch(self, order, batch_ptr, metrics, train=True):
        sums, counts = np.zeros(len(metrics)), np.zeros(len(metrics))
        for b in range(len(batch_ptr) - 1):
            rows = order[batch_ptr[b]:batch_ptr[b + 1]]
            out = self.forward(rows)
            lab = self.label[rows]
            for m, name in enumerate(metrics):
                s, c = ref_metric(name, out, lab if self.output != "SoftmaxOutput" else lab[:, 0], self.output)
                sums[m] += s
                counts[m] += c
            if not train:
                continue
            self.steps += 1
            lr = self.lr_of_step(self.steps)
            g = ref_grad(out, lab if self.output != "SoftmaxOutput" else lab[:, 0], self.output, self.grad_scale)
            for t, (x, p) in enumerate(zip(self.terms, self.params)):
                cols = np.flatnonzero(self.stored[t][rows].any(axis=0))  # explicit zeros included
                gw = (x[rows].T @ g)[cols]
                self.params[t] = ref_update(self.key, self.opt_kw, p, gw, lr, self.steps, rows=cols)
            if self.bias is not None:
                self.bias = ref_update(self.key, self.opt_kw, self.bias, g.sum(axis=0), lr, self.steps)
        return sums, counts


def state_arrays(state):
    if state is None:
        return []
    if isinstance(state, tuple):
        return [s.asnumpy() for s in state]
    return [state.asnumpy()]


def build(output, key, batch_size, has_bias, dtype, n_terms=1, seed=0, k=None):
    rng = np.random.default_rng(seed)
    k = k or (3 if output == "SoftmaxOutput" else 1)
    dims = [15, 8][:n_terms]
    terms = [random_csr(rng, N_ROWS, d, 0.25, dtype) for d in dims]
    label = make_labels(rng, output, N_ROWS, k)
    w0 = [rng.normal(scale=0.3, size=(d, k)).astype(dtype) for d in dims]
    b0 = rng.normal(scale=0.1, size=k).astype(dtype) if has_bias else None
    name, kw = OPTIMIZERS[key]
    opt_kw = dict(kw, rescale_grad=1.0 / batch_size)
    return rng, terms, label, w0, b0, name, opt_kw, k


def run_both(output, key, batch_size, has_bias, mode, dtype, n_terms=1, epochs=2, seed=0):
    rng, terms, label, w0, b0, name, opt_kw, k = build(output, key, batch_size, has_bias, dtype, n_terms, seed)
    weights = [RowSparseNDArray(w.copy(), np.arange(w.shape[0], dtype=np.int64), w.shape) for w in w0]
    bias = NDArray(b0.copy()) if has_bias else None
    updater = opt_mod.get_updater(opt_mod.create(name, **opt_kw))
    runner = LinearEpochRunner(output, [w.shape[0] for w in w0], k, has_bias=has_bias, dtype=dtype)
    reference = Reference(terms, label, w0, b0, output, key, opt_kw)
    metrics = METRICS_BY_OUTPUT[output]
    indices = list(range(n_terms + (1 if has_bias else 0)))
    results = []
    for order, batch_ptr in schedules(N_ROWS, batch_size, mode, epochs, rng):
        if len(batch_ptr) == 1:
            continue  # no complete batch in this epoch
        res = runner.fit_epoch(terms, label, order, batch_ptr, weights, bias, updater, indices, metrics)
        sums, counts = reference.epoch(order, batch_ptr, metrics)
        results.append((res, sums, counts))
    return runner, updater, weights, bias, reference, results, indices


def assert_same(runner, updater, weights, bias, reference, results, indices, rtol, atol):
    for res, sums, counts in results:
        assert res.ok
        np.testing.assert_array_equal(res.metric_counts, counts)
        np.testing.assert_allclose(res.metric_sums, sums, rtol=rtol, atol=atol)
    params = [(w, p) for w, p in zip(weights, reference.params)]
    if bias is not None:
        params.append((bias, reference.bias))
    for index, (obj, expected) in zip(indices, params):
        got = [obj.asnumpy()] + state_arrays(updater.states[index])
        assert len(got) == len(expected)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=rtol, atol=atol)
    steps = sum(r.num_batches for r, _, _ in results)
    assert all(updater.optimizer._index_update_count.get(i, 0) == steps for i in indices)


# -- the matrix --------------------------------------------------------------------------------
# Every rule binds its own epoch kernel, compiled per dtype, per loop (batch 1 or batches) and per number
# of dot terms (a few CPU seconds each on a cold numba cache). The float32 kernels of every rule and
# both loops are the ones training runs, compiled by the rest of the suite anyway: the float32 matrix
# runs every rule on both loops. The loop matrix (the schedules, the bias, the last batch) runs by default
# on kernels the suite compiles anyway: sgd in float64 (tight tolerances; the float64 tests below train
# with it) and adam (two states and a rate of its own) in float32; the other rules and adam in float64 with
# ``-m slow``. Each rule's step, row and dense loops are checked against its reference in float64 by
# tests/test_optimizer.py. Two dot terms compile a kernel of their own: one rule with a state per term.

TOLERANCE = {np.float64: {"rtol": 1e-9, "atol": 1e-11}, np.float32: {"rtol": 2e-4, "atol": 2e-5}}


def rules_for(*default):
    """``OPTIMIZERS``' keys as parameters, those not in ``default`` marked slow."""
    return [k if k in default else pytest.param(k, marks=pytest.mark.slow) for k in OPTIMIZERS]


@pytest.mark.parametrize("mode", ["pad", "discard", "roll_over"])
@pytest.mark.parametrize("has_bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("batch_size", [1, 3, 32])
@pytest.mark.parametrize("key, dtype", [("sgd", np.float64), ("adam", np.float32)] + [
    pytest.param(k, np.float64, marks=pytest.mark.slow) for k in OPTIMIZERS if k != "sgd"])
@pytest.mark.parametrize("output", OUTPUTS)
def test_fused_epochs_match_numpy_loop(output, key, dtype, batch_size, has_bias, mode):
    out = run_both(output, key, batch_size, has_bias, mode, dtype)
    assert_same(*out, **TOLERANCE[dtype])


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("key", list(OPTIMIZERS))
@pytest.mark.parametrize("output", OUTPUTS)
def test_fused_epochs_match_numpy_loop_float32(output, key, batch_size):
    out = run_both(output, key, batch_size, True, "pad", np.float32)
    assert_same(*out, **TOLERANCE[np.float32])


@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("key", rules_for("sgd_mom"))  # a state per term
def test_two_dot_terms(key, batch_size):
    """Training, then scoring and predicting with the trained kernel (a forward pass after training runs it)."""
    out = run_both("LinearRegressionOutput", key, batch_size, True, "roll_over", np.float64, n_terms=2)
    assert_same(*out, **TOLERANCE[np.float64])
    runner, _, weights, bias, reference, _, _ = out
    _, terms, label, *_ = build("LinearRegressionOutput", key, batch_size, True, np.float64, n_terms=2)
    order, bp = schedules(N_ROWS, 4, "pad", 1, np.random.default_rng(1))[0]
    metrics = METRICS_BY_OUTPUT["LinearRegressionOutput"]
    res = runner.score(terms, label, order, bp, weights, bias, metrics)
    sums, _ = reference.epoch(order, bp, metrics, train=False)
    np.testing.assert_allclose(res.metric_sums, sums, rtol=1e-10)
    np.testing.assert_allclose(runner.predict(terms, weights, bias, batch_size=5),
                               reference.forward(np.arange(N_ROWS)), rtol=1e-10)


def test_regression_with_several_outputs():
    rng = np.random.default_rng(7)
    x = random_csr(rng, N_ROWS, 10, 0.3, np.float64)
    y = rng.normal(size=(N_ROWS, 2))
    w0, b0 = rng.normal(size=(10, 2)), np.zeros(2)
    weight, bias = NDArray(w0.copy()), NDArray(b0.copy())
    opt_kw = {"learning_rate": 0.1, "rescale_grad": 0.25}
    updater = opt_mod.get_updater(opt_mod.SGD(**opt_kw))
    runner = LinearEpochRunner("LinearRegressionOutput", [10], 2, dtype=np.float64, grad_scale=2.0)
    reference = Reference([x], y, [w0], b0, "LinearRegressionOutput", "sgd", opt_kw, grad_scale=2.0)
    order, bp = schedules(N_ROWS, 4, "discard", 1, rng)[0]
    res = runner.fit_epoch([x], y, order, bp, [weight], bias, updater, [0, 1], ("mse", "mae"))
    sums, counts = reference.epoch(order, bp, ("mse", "mae"))
    np.testing.assert_allclose(res.metric_sums, sums, rtol=1e-10)
    np.testing.assert_allclose(weight.asnumpy(), reference.params[0][0], rtol=1e-10)
    np.testing.assert_allclose(bias.asnumpy(), reference.bias[0], rtol=1e-10)


def test_softmax_batch_normalization_divides_by_batch():
    rng = np.random.default_rng(8)
    x = random_csr(rng, N_ROWS, 10, 0.3, np.float64)
    y = rng.integers(0, 4, size=N_ROWS).astype(np.float64)
    w0 = rng.normal(size=(10, 4))
    runs = {}
    for norm, lr in (("null", 0.1), ("batch", 0.5)):
        weight = NDArray(w0.copy())
        updater = opt_mod.get_updater(opt_mod.SGD(learning_rate=lr))
        runner = LinearEpochRunner("SoftmaxOutput", [10], 4, has_bias=False, dtype=np.float64, normalization=norm)
        order, bp = np.arange(N_ROWS - 2), np.array([0, 5, 10, 15, 20, 25, 30, 35])
        runner.fit_epoch([x], y, order, bp, [weight], None, updater, [0], ("ce",))
        runs[norm] = weight.asnumpy()
    # with batches of 5: lr 0.5 / 5 == lr 0.1
    np.testing.assert_allclose(runs["batch"], runs["null"], rtol=1e-12)


def test_learning_rate_schedule_per_batch():
    # sgd: the float64 batch loop the matrix above compiles (a rule of its own would be one more compile)
    rng, terms, label, w0, b0, name, opt_kw, k = build("LinearRegressionOutput", "sgd", 2, True, np.float64)
    sched = lrs.FactorScheduler(step=3, factor=0.5, base_lr=opt_kw["learning_rate"])
    opt = opt_mod.create(name, lr_scheduler=sched, **opt_kw)
    updater = opt_mod.get_updater(opt)
    weights, bias = [NDArray(w0[0].copy())], NDArray(b0.copy())
    runner = LinearEpochRunner("LinearRegressionOutput", [w0[0].shape[0]], k, dtype=np.float64)
    check = lrs.FactorScheduler(step=3, factor=0.5, base_lr=opt_kw["learning_rate"])
    reference = Reference(terms, label, w0, b0, "LinearRegressionOutput", "sgd", opt_kw, lr_of_step=check)
    for order, bp in schedules(N_ROWS, 2, "pad", 2, rng):
        runner.fit_epoch(terms, label, order, bp, weights, bias, updater, [0, 1], ("mse",))
        reference.epoch(order, bp, ("mse",))
    np.testing.assert_allclose(weights[0].asnumpy(), reference.params[0][0], rtol=1e-10)
    np.testing.assert_allclose(bias.asnumpy(), reference.bias[0], rtol=1e-10)
    assert opt.num_update == 38 and sched.base_lr == check.base_lr


def test_fused_updates_equal_optimizer_class_updates():
    """The compiled loop and per-batch ``Updater`` calls (what the graph engine does) agree."""
    rng, terms, label, w0, b0, name, opt_kw, k = build("LogisticRegressionOutput", "adam", 3, True, np.float32)
    x = terms[0]
    weights, bias = [RowSparseNDArray(w0[0].copy(), np.arange(15), w0[0].shape)], NDArray(b0.copy())
    updater = opt_mod.get_updater(opt_mod.create(name, **opt_kw))
    runner = LinearEpochRunner("LogisticRegressionOutput", [15], 1)
    order, bp = schedules(N_ROWS, 3, "pad", 1, rng)[0]
    runner.fit_epoch(terms, label, order, bp, weights, bias, updater, [0, 1], ())

    w2, b2 = RowSparseNDArray(w0[0].copy(), np.arange(15), w0[0].shape), NDArray(b0.copy())
    up2 = opt_mod.get_updater(opt_mod.create(name, **opt_kw))
    lab = label.astype(np.float32)
    for b in range(len(bp) - 1):
        rows = order[bp[b]:bp[b + 1]]
        xb = x[rows]
        out = 1 / (1 + np.exp(-(xb @ w2.asnumpy() + b2.asnumpy())))
        g = (out - lab[rows]).astype(np.float32)
        cols = np.unique(xb.indices)
        up2(0, RowSparseNDArray(np.ascontiguousarray((xb.T @ g)[cols], dtype=np.float32), cols, w2.shape), w2)
        up2(1, NDArray(g.sum(axis=0)), b2)
    np.testing.assert_allclose(weights[0].asnumpy(), w2.asnumpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bias.asnumpy(), b2.asnumpy(), rtol=1e-5, atol=1e-6)
    for s1, s2 in zip(updater.states[0], up2.states[0]):
        np.testing.assert_allclose(s1.asnumpy(), s2.asnumpy(), rtol=1e-5, atol=1e-7)


# -- forward only ------------------------------------------------------------------------------

@pytest.mark.parametrize("output", OUTPUTS)
def test_score_and_predict(output):
    # one dot term: a fresh runner's forward pass runs sgd's float64 batch loop, which the matrix compiles (two
    # terms: test_two_dot_terms)
    rng, terms, label, w0, b0, name, opt_kw, k = build(output, "sgd", 4, True, np.float64)
    runner = LinearEpochRunner(output, [15], k, dtype=np.float64)
    weights, bias = [NDArray(w.copy()) for w in w0], NDArray(b0.copy())
    reference = Reference(terms, label, w0, b0, output, "sgd", opt_kw)
    order, bp = schedules(N_ROWS, 4, "pad", 1, rng)[0]
    metrics = METRICS_BY_OUTPUT[output]
    res = runner.score(terms, label, order, bp, weights, bias, metrics)
    sums, counts = reference.epoch(order, bp, metrics, train=False)
    np.testing.assert_allclose(res.metric_sums, sums, rtol=1e-10)
    np.testing.assert_allclose(runner.predict(terms, weights, bias, batch_size=5),
                               reference.forward(np.arange(N_ROWS)), rtol=1e-10)
    np.testing.assert_array_equal(weights[0].asnumpy(), w0[0])  # untouched


def test_scoring_after_training_runs_the_trained_rule_kernel(monkeypatch):
    """A forward pass after training reuses the kernel training compiled (no second epoch kernel for a
    first run with eval data), with the same metrics as a fresh runner's forward pass."""
    from sparsetrain.engines.compiled import runner as runner_mod

    called = []

    def spy(name, kernel):
        def run(*args):
            called.append(name)
            return kernel(*args)
        return run

    monkeypatch.setattr(runner_mod, "EPOCH_KERNELS", {n: spy(n, k) for n, k in runner_mod.EPOCH_KERNELS.items()})
    rng, terms, label, w0, b0, name, opt_kw, k = build("LinearRegressionOutput", "adam", 3, True, np.float32)
    weights, bias = [NDArray(w0[0].copy())], NDArray(b0.copy())
    updater = opt_mod.get_updater(opt_mod.create(name, **opt_kw))
    runner = LinearEpochRunner("LinearRegressionOutput", [w0[0].shape[0]], k)
    order, bp = schedules(N_ROWS, 3, "pad", 1, rng)[0]
    runner.fit_epoch(terms, label, order, bp, weights, bias, updater, [0, 1], ("mse",))
    after = runner.score(terms, label, order, bp, weights, bias, ("mse", "mae"))
    fresh = LinearEpochRunner("LinearRegressionOutput", [w0[0].shape[0]], k).score(
        terms, label, order, bp, weights, bias, ("mse", "mae"))
    assert called == ["adam", "adam", "sgd"]
    np.testing.assert_array_equal(after.metric_sums, fresh.metric_sums)
    np.testing.assert_array_equal(after.metric_counts, fresh.metric_counts)


# -- non-finite detection --------------------------------------------------------------------

def test_nan_prediction_stops_before_applying_the_batch():
    # sgd at batch 1: the float64 batch-1 loop the matrix above compiles
    rng, terms, label, w0, b0, name, opt_kw, k = build("LinearRegressionOutput", "sgd", 1, True, np.float64)
    x = terms[0]
    order = np.arange(N_ROWS, dtype=np.int64)
    bp = np.arange(N_ROWS + 1, dtype=np.int64)
    # a column that only a later row uses: make its weight NaN
    first_use = {}
    for r in range(N_ROWS):
        for c in x.indices[x.indptr[r]:x.indptr[r + 1]]:
            first_use.setdefault(int(c), r)
    col, row = max(first_use.items(), key=lambda kv: kv[1])
    w_bad = w0[0].copy()
    w_bad[col] = np.nan
    weights, bias = [NDArray(w_bad.copy())], NDArray(b0.copy())
    updater = opt_mod.get_updater(opt_mod.create(name, **opt_kw))
    runner = LinearEpochRunner("LinearRegressionOutput", [15], 1, dtype=np.float64)
    res = runner.fit_epoch(terms, label, order, bp, weights, bias, updater, [0, 1], ("mse",))
    assert not res.ok and res.nonfinite_batch == row and res.num_batches == row and res.num_samples == row
    assert updater.optimizer.num_update == row
    reference = Reference(terms, label, [w_bad], b0, "LinearRegressionOutput", "sgd", opt_kw)
    reference.epoch(order[:row], bp[:row + 1], ("mse",))
    np.testing.assert_allclose(weights[0].asnumpy(), reference.params[0][0], rtol=1e-12)


def test_divergence_is_reported_with_its_batch():
    rng, terms, label, w0, b0, name, opt_kw, k = build("LinearRegressionOutput", "sgd", 2, True, np.float32)
    weights, bias = [NDArray(w0[0].copy() * 100)], NDArray(b0.copy())
    updater = opt_mod.get_updater(opt_mod.SGD(learning_rate=1e6))
    runner = LinearEpochRunner("LinearRegressionOutput", [15], 1)
    failed = None
    for epoch, (order, bp) in enumerate(schedules(N_ROWS, 2, "discard", 50, rng)):
        res = runner.fit_epoch(terms, label, order, bp, weights, bias, updater, [0, 1], ("mse",))
        if not res.ok:
            failed = (epoch, res)
            break
    assert failed is not None
    epoch, res = failed
    assert res.nonfinite_batch is not None
    assert res.num_batches == res.nonfinite_batch and np.isnan(res.metrics["mse"]) == (res.num_batches == 0)


def test_the_parameter_scan_names_each_buffer_with_a_nan_or_inf_by_its_index():
    # epoch_loop.nonfinite, in check_params: the one scan of the in-memory, plan and streamed epochs (their
    # errors: test_stream_engine.py, test_plan.py); a huge finite value is finite
    big = np.full((3, 2), np.finfo(np.float64).max)
    bufs = [np.zeros(4, np.float32), np.array([1.0, np.nan]), big, np.array([[0.0], [-np.inf]]), np.empty((0, 2))]
    assert nonfinite([7, 3, 5, 0, 9], bufs) == [3, 0]
    assert nonfinite([], []) == []


# -- validation and helpers --------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors():
    x = sp.csr_matrix(np.eye(3, dtype=np.float32))
    runner = LinearEpochRunner("LinearRegressionOutput", [3], 1)
    w, b = NDArray(np.zeros((3, 1), np.float32)), NDArray(np.zeros(1, np.float32))
    up = opt_mod.get_updater(opt_mod.SGD())
    y = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="row ids outside"):
        runner.fit_epoch([x], y, np.array([0, 5]), np.array([0, 2]), [w], b, up, [0, 1])
    with pytest.raises(ValueError, match="increasing boundaries"):
        runner.fit_epoch([x], y, np.array([0, 1]), np.array([0, 0, 2]), [w], b, up, [0, 1])
    with pytest.raises(ValueError, match="increasing boundaries"):  # as many batches as rows, one of them empty
        runner.fit_epoch([x], y, np.arange(3), np.array([0, 2, 2, 3]), [w], b, up, [0, 1])
    with pytest.raises(Exception, match="columns"):
        runner.fit_epoch([sp.csr_matrix(np.eye(3, 4, dtype=np.float32))], y, np.arange(3), np.array([0, 3]),
                         [w], b, up, [0, 1])
    bad = (np.ones(1, np.float32), np.array([7]), np.array([0, 1, 1, 1]))
    with pytest.raises(Exception, match="column index outside"):
        runner.fit_epoch([bad], y, np.arange(3), np.array([0, 3]), [w], b, up, [0, 1])
    with pytest.raises(ValueError, match="needs probabilities"):
        runner.score([x], y, np.arange(3), np.array([0, 3]), [w], b, ("log_loss",))
    soft = LinearEpochRunner("SoftmaxOutput", [3], 2, has_bias=False)
    with pytest.raises(Exception, match="class indices"):
        soft.score([x], np.array([0, 1, 2.0]), np.arange(3), np.array([0, 3]), [NDArray(np.zeros((3, 2), np.float32))],
                   None, ("accuracy",))
    with pytest.raises(Exception, match="weight rows"):
        LinearEpochRunner("LinearRegressionOutput", [0], 1)
    with pytest.raises(ValueError, match="unknown output"):
        LinearEpochRunner("HingeOutput", [3], 1)
    with pytest.raises(Exception, match="C-contiguous float32"):
        runner.fit_epoch([x], y, np.arange(3), np.array([0, 3]), [NDArray(np.zeros((3, 1)))], b, up, [0, 1])


def test_empty_schedule_changes_nothing():
    x = sp.csr_matrix(np.eye(3, dtype=np.float32))
    runner = LinearEpochRunner("LinearRegressionOutput", [3], 1)
    w, b = NDArray(np.ones((3, 1), np.float32)), NDArray(np.ones(1, np.float32))
    up = opt_mod.get_updater(opt_mod.Adam(lr_scheduler=lrs.FactorScheduler(step=1, factor=0.5, base_lr=0.001)))
    res = runner.fit_epoch([x], np.zeros(3, np.float32), np.arange(3), np.array([0]), [w], b, up, [0, 1])
    assert res.ok and res.num_batches == 0 and np.isnan(res.metrics["mse"])
    assert up.optimizer.num_update == 0 and (w.asnumpy() == 1).all()


def test_state_of_another_dtype_is_rejected():
    x = sp.csr_matrix(np.eye(3, dtype=np.float32))
    runner = LinearEpochRunner("LinearRegressionOutput", [3], 1, has_bias=False)
    w = NDArray(np.ones((3, 1), np.float32))
    up = opt_mod.get_updater(opt_mod.SGD(momentum=0.9))
    up.states[0] = NDArray(np.zeros((3, 1), np.float64))
    with pytest.raises(Exception, match="does not match its weight"):
        runner.fit_epoch([x], np.zeros(3, np.float32), np.arange(3), np.array([0, 3]), [w], None, up, [0])


def test_optimizer_fusable():
    assert optimizer_fusable(opt_mod.SGD(momentum=0.9), [True], [0]) == (True, "")
    ok, why = optimizer_fusable(opt_mod.SGD(momentum=0.9), [True, False], [0, 2])
    assert not ok and "parameter 2" in why and "dense" in why  # momentum would move every row
    assert optimizer_fusable(opt_mod.SGD(), [False], [0]) == (True, "")
    assert not optimizer_fusable(opt_mod.SGD(wd=0.1), [False], [0])[0]
    assert optimizer_fusable(opt_mod.AdaGrad(), [False], [0]) == (True, "")
    assert not optimizer_fusable(opt_mod.Adam(), [False], [0])[0]
    assert not optimizer_fusable(opt_mod.FTRL(), [False], [0])[0]
    assert optimizer_fusable(opt_mod.FTRL(), [True], [0]) == (True, "")
    assert not optimizer_fusable(opt_mod.SGD(lazy_update=False, momentum=0.5), [True], [0])[0]

    class Inherits(opt_mod.SGD):  # the same rule: fusable
        pass

    class Custom(opt_mod.SGD):
        def update(self, index, weight, grad, state):
            super().update(index, weight, grad, state)

    assert optimizer_fusable(Inherits(), [True], [0]) == (True, "")
    ok, why = optimizer_fusable(Custom(), [True], [0])
    assert not ok and "overrides update()" in why


def test_epoch_result_combine():
    a = EpochResult(["mse"], np.array([2.0]), np.array([2.0]), 2, 6)
    b = EpochResult(["mse"], np.array([1.0]), np.array([1.0]), 1, 3, nonfinite_batch=1)
    c = EpochResult.combine([a, b])
    assert c.metrics == {"mse": 1.0} and c.num_batches == 3 and c.num_samples == 9 and c.nonfinite_batch == 1


def test_schedules_helper_covers_each_sample():
    rng = np.random.default_rng(0)
    for bs, mode in itertools.product([1, 3, 32], ["pad", "discard", "roll_over"]):
        epochs = schedules(N_ROWS, bs, mode, 3, rng)
        seen = np.concatenate([o for o, _ in epochs])
        if mode == "roll_over":
            assert len(seen) == (3 * N_ROWS) // bs * bs
        if mode == "pad":
            assert all(set(o) == set(range(N_ROWS)) for o, _ in epochs)


def test_the_linear_kernels_run_only_the_loop_a_run_uses(monkeypatch):
    # cold start: each loop is bound and compiled on its first call, so a batch-1 run (the batch-1
    # loop) must never call the batch loop, nor a mini-batch run the batch-1 loop
    import sparsetrain as st
    from sparsetrain.engines.compiled.kernels import EPOCH_KERNELS

    kernel = EPOCH_KERNELS["ftrl"]
    called = []
    bound = kernel.loop
    monkeypatch.setattr(kernel, "loop", lambda template: called.append(
        "single" if template.__name__ == "_batch1_epoch" else "batch") or bound(template))

    def fit(batch_size):
        x = st.nd.array(np.eye(4, dtype=np.float32)).tostype("csr")
        it = st.io.NDArrayIter(x, np.arange(4, dtype=np.float32), batch_size, label_name="label")
        pred = st.sym.broadcast_add(st.sym.dot(st.sym.Variable("data", stype="csr"),
                                               st.sym.Variable("w_weight", stype="row_sparse", shape=(4, 1))),
                                    st.sym.Variable("bias", shape=(1,)))
        mod = st.mod.Module(st.sym.LinearRegressionOutput(pred, st.sym.Variable("label"), name="out"),
                            data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params()
        mod.init_optimizer(optimizer="ftrl")
        mod.run_epoch(it, st.metric.create("mse"), engine="compiled")
        return mod.engine_choice

    assert fit(1)[0] == "compiled" and set(called) == {"single"}
    called.clear()
    fit(2)
    assert set(called) == {"batch"}


def _csr_check_loop(indices, indptr, num_cols, num_rows):
    """The CSR check as a plain loop (the reference of the kernels' numpy ``csr_check``)."""
    if len(indptr) != num_rows + 1 or indptr[0] != 0 or indptr[num_rows] > len(indices):
        return 0
    canonical = True
    for i in range(num_rows):
        if indptr[i + 1] < indptr[i]:
            return 0
        row = list(indices[indptr[i]:indptr[i + 1]])
        if any(c < 0 or c >= num_cols for c in row):
            return 0
        canonical = canonical and all(a < b for a, b in zip(row, row[1:]))
    return 2 if canonical else 1


def test_csr_check_and_max_batch_nnz_against_loops():
    # numpy versions (one numba compile fewer on a first run): every verdict of the plain loop, on
    # random structures with empty rows, duplicates, unsorted and out-of-range ids, broken indptr
    from sparsetrain.engines.compiled.kernels import csr_check, max_batch_nnz

    rng = np.random.default_rng(5)
    seen = set()
    for _ in range(400):
        rows, cols = int(rng.integers(0, 6)), int(rng.integers(1, 6))
        lengths = rng.integers(0, 4, rows)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.concatenate([np.sort(rng.choice(cols + 1, n, replace=n > cols + 1)) for n in lengths]
                                 + [np.zeros(0)]).astype(np.int64) - int(rng.integers(0, 2) * rng.integers(0, 2))
        if rng.random() < 0.3 and indices.size:
            indices = rng.permutation(indices)
        if rng.random() < 0.1 and rows:
            indptr[int(rng.integers(1, rows + 1))] -= 1
        if rng.random() < 0.1:
            indices = np.append(indices, 7)  # trailing entries past indptr[-1]: allowed
        want = _csr_check_loop(indices, indptr, cols, rows)
        seen.add(want)
        assert csr_check(indices, indptr, cols, rows) == want, (indices, indptr, cols, rows)
        if want and rows:
            order = rng.integers(0, rows, int(rng.integers(1, 9))).astype(np.int64)
            cuts = np.unique(np.concatenate([[0, order.size], rng.integers(1, order.size + 1, 3)]))
            best = max(sum(int(indptr[r + 1] - indptr[r]) for r in order[a:b]) for a, b in zip(cuts, cuts[1:]))
            assert max_batch_nnz(indptr, order, cuts.astype(np.int64)) == best
    assert seen == {0, 1, 2}


def test_the_batch_1_loop_sizes_no_scratch():
    """A call that runs the batch-1 loop (one-row batches, one canonical term, K = 1) sizes none of the batch
    loop's scratch (a streamed chunk seen once would count its rows for it); a call of larger batches does."""
    runner = LinearEpochRunner("LinearRegressionOutput", [20], 1)
    x = sp.csr_matrix(np.arange(1, 61, dtype=np.float32).reshape(6, 10) % 7, shape=(6, 20))
    weights, bias = [np.zeros((20, 1), np.float32)], np.zeros(1, np.float32)
    updater = opt_mod.get_updater(opt_mod.create("sgd", learning_rate=0.1))
    label, order = np.ones(6, np.float32), np.arange(6, dtype=np.int64)
    runner.fit_epoch([x], label, order, np.arange(7, dtype=np.int64), weights, bias, updater, [0, 1],
                     remember=False, checked_csr=True)
    assert runner._acc_buf.shape[0] == runner._out.shape[0] == 0
    runner.fit_epoch([x], label, order, np.array([0, 3, 6], np.int64), weights, bias, updater, [0, 1],
                     remember=False, checked_csr=True)
    assert runner._out.shape[0] == 3 and runner._acc_buf.shape[0] >= int(np.diff(x.indptr)[:3].sum())


def test_an_in_memory_epochs_scratch_bound_covers_every_batch():
    """A remembered buffer's scratch is sized once per batch size from its longest rows: at least the
    entries of the distinct rows of any batch (a batch may repeat a row: padding); a chunk seen once
    (remember=False) counts its largest batch."""
    from sparsetrain.engines.compiled.kernels import max_batch_nnz
    from sparsetrain.engines.compiled.runner import LinearEpochRunner

    rng = np.random.default_rng(3)
    runner = LinearEpochRunner("LinearRegressionOutput", [50], 1)
    for _ in range(200):
        rows = int(rng.integers(1, 40))
        indptr = np.concatenate([[0], np.cumsum(rng.integers(0, 12, rows))]).astype(np.int64)
        order = rng.integers(0, rows, int(rng.integers(1, 60))).astype(np.int64)
        cuts = np.unique(np.concatenate([[0, order.size], rng.integers(1, order.size + 1, 5)])).astype(np.int64)
        max_bs = int(np.diff(cuts).max())
        distinct = max(sum(int(indptr[r + 1] - indptr[r]) for r in set(order[a:b].tolist()))
                       for a, b in zip(cuts, cuts[1:]))
        bound = runner._batch_entries(indptr, order, cuts, max_bs, True)
        assert distinct <= bound <= int(np.sort(np.diff(indptr))[::-1][:max_bs].sum())
        assert runner._batch_entries(indptr, order, cuts, max_bs, False) == max_batch_nnz(indptr, order, cuts)


def test_what_a_runner_remembers_is_a_buffers_not_one_of_its_size():
    """The scratch bound and the 0/1 label check an in-memory epoch's blocks share are kept per buffer
    object: another dataset of the same size (an eval set, the next run in one process) is counted and
    checked again, not given the first one's bound or pass."""
    from sparsetrain.engines.compiled.runner import LinearEpochRunner

    runner = LinearEpochRunner("LogisticRegressionOutput", [50], 1)
    order, cuts = np.arange(4, dtype=np.int64), np.array([0, 2, 4], np.int64)
    short = np.array([0, 1, 2, 3, 4], np.int64)
    long = np.array([0, 9, 18, 27, 36], np.int64)
    assert runner._batch_entries(short, order, cuts, 2, True) == 2
    assert runner._batch_entries(long, order, cuts, 2, True) == 18
    assert runner._batch_entries(short, order, cuts, 2, True) == 2
    names, codes = runner._metric_codes(("log_loss",))
    good, bad = np.array([[0.0], [1.0], [1.0], [0.0]]), np.array([[0.0], [1.0], [-1.0], [0.0]])
    runner._check_label_domain(names, codes, good, True)
    with pytest.raises(ValueError, match="log_loss needs labels 0 or 1, got -1"):
        runner._check_label_domain(names, codes, bad, True)
    runner._check_label_domain(names, codes, good, True)
    with pytest.raises(ValueError, match="got -1"):  # refused again: a failed check is not remembered
        runner._check_label_domain(names, codes, bad, True)
