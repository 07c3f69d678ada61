"""Optimizers and learning-rate schedules against the plain-numpy references of their formulas."""
from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sparsetrain import lr_scheduler as lrs
from sparsetrain import optimizer as opt_mod
from sparsetrain.base import DataFormatError, SparseTrainError, StorageTypeError
from sparsetrain.kernels import optim as K
from sparsetrain.kernels import optim_reference as ref
from sparsetrain.ndarray import CSRNDArray, NDArray, RowSparseNDArray

D, C = 12, 3  # weight rows, row length

# name, constructor kwargs, reference rule, states, kwargs the reference needs from the constructor
OPTIMIZERS = {
    "sgd": ("sgd", {}, 0),
    "sgd_mom": ("sgd", {"momentum": 0.9}, 1),
    "adagrad": ("adagrad", {"eps": 1e-7}, 1),
    "adam": ("adam", {"beta1": 0.8, "beta2": 0.95, "epsilon": 1e-6}, 2),
    "ftrl": ("ftrl", {"lamda1": 0.05, "beta": 0.5}, 2),
}
COMMON = [
    {"learning_rate": 0.1},
    {"learning_rate": 0.05, "wd": 0.03, "rescale_grad": 0.5, "clip_gradient": 0.3},
]


def ref_step(key, params, arrays, grad, lr, t):
    """One reference update of ``arrays`` (weight, *states) with gradient ``grad`` (float64)."""
    name, extra, _ = OPTIMIZERS[key]
    kw = dict(wd=params.get("wd", 0.0), rescale_grad=params.get("rescale_grad", 1.0),
              clip_gradient=params.get("clip_gradient"))
    if key == "sgd":
        return (ref.sgd(arrays[0], grad, lr, **kw),)
    if key == "sgd_mom":
        return ref.sgd_mom(arrays[0], arrays[1], grad, lr, extra["momentum"], **kw)
    if key == "adagrad":
        return ref.adagrad(arrays[0], arrays[1], grad, lr, eps=extra["eps"], **kw)
    if key == "adam":
        return ref.adam(arrays[0], arrays[1], arrays[2], grad, lr, t, beta1=extra["beta1"], beta2=extra["beta2"],
                        eps=extra["epsilon"], **kw)
    return ref.ftrl(arrays[0], arrays[1], arrays[2], grad, lr, lamda1=extra["lamda1"], beta=extra["beta"], **kw)


def make_opt(key, params, **more):
    name, extra, _ = OPTIMIZERS[key]
    return opt_mod.create(name, **{**extra, **params, **more})


def state_list(state):
    if state is None:
        return []
    if isinstance(state, tuple):
        return [s.asnumpy() for s in state]
    return [state.asnumpy()]


def full_rsp(w):
    return RowSparseNDArray(w.copy(), np.arange(w.shape[0], dtype=np.int64), w.shape)


@pytest.mark.parametrize("params", COMMON, ids=["plain", "wd_clip_rescale"])
@pytest.mark.parametrize("key", list(OPTIMIZERS))
@pytest.mark.parametrize("mode", ["dense", "rsp_rsp", "dense_rsp"])
def test_matches_reference_over_steps(key, params, mode):
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=(D, C)).astype(np.float32)
    weight = NDArray(w0.copy()) if mode in ("dense", "dense_rsp") else full_rsp(w0)
    opt = make_opt(key, params)
    updater = opt_mod.get_updater(opt)
    arrays = [w0.astype(np.float64)] + [np.zeros((D, C))] * OPTIMIZERS[key][2]
    for step in range(1, 7):
        g = rng.normal(scale=2.0, size=(D, C)).astype(np.float32)
        if mode == "dense":
            updater(0, NDArray(g), weight)
            arrays = list(ref_step(key, params, arrays, g, params["learning_rate"], step))
        else:
            rows = np.sort(rng.choice(D, size=4, replace=False)).astype(np.int64)
            updater(0, RowSparseNDArray(g[rows].copy(), rows, (D, C)), weight)
            arrays = ref.lazy(lambda *a: ref_step(key, params, list(a[:-1]), a[-1], params["learning_rate"], step),
                              arrays, rows, g[rows].astype(np.float64))
    got = [weight.asnumpy()] + state_list(updater.states[0])
    assert len(got) == len(arrays)
    for g_, r_ in zip(got, arrays):
        np.testing.assert_allclose(g_, r_, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize("key", list(OPTIMIZERS))
def test_lazy_update_leaves_absent_rows_and_states_untouched(key):
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=(D, C)).astype(np.float32)
    weight = full_rsp(w0)
    opt = make_opt(key, {"learning_rate": 0.1, "wd": 0.1})
    updater = opt_mod.get_updater(opt)
    # first touch every row, so that states are non-zero everywhere
    updater(0, RowSparseNDArray(np.ones((D, C), np.float32), np.arange(D), (D, C)), weight)
    before = [weight.asnumpy()] + state_list(updater.states[0])
    rows = np.array([1, 4, 9], dtype=np.int64)
    updater(0, RowSparseNDArray(rng.normal(size=(3, C)).astype(np.float32), rows, (D, C)), weight)
    after = [weight.asnumpy()] + state_list(updater.states[0])
    absent = np.setdiff1d(np.arange(D), rows)
    for b, a in zip(before, after):
        np.testing.assert_array_equal(a[absent], b[absent])  # bitwise: not touched at all
    assert not np.array_equal(after[0][rows], before[0][rows])
    if key != "sgd":
        assert not np.array_equal(after[1][rows], before[1][rows])


def test_sgd_momentum_decays_absent_rows_only_without_lazy_update():
    w0 = np.ones((D, C), np.float32)
    rows = np.array([2], dtype=np.int64)
    grad = RowSparseNDArray(np.ones((1, C), np.float32), rows, (D, C))
    results = {}
    for lazy in (True, False):
        weight = full_rsp(w0)
        opt = opt_mod.SGD(learning_rate=0.1, momentum=0.9, wd=0.5, lazy_update=lazy)
        up = opt_mod.get_updater(opt)
        up(0, grad, weight)
        up(0, grad, weight)
        results[lazy] = weight.asnumpy()
    absent = np.setdiff1d(np.arange(D), rows)
    np.testing.assert_array_equal(results[True][absent], w0[absent])
    # standard update: absent rows see weight decay and momentum: two steps of g = 0
    w, m = ref.sgd_mom(w0[absent], np.zeros_like(w0[absent]), 0.0, 0.1, 0.9, wd=0.5)
    w, m = ref.sgd_mom(w, m, 0.0, 0.1, 0.9, wd=0.5)
    np.testing.assert_allclose(results[False][absent], w, rtol=1e-6)
    np.testing.assert_allclose(results[False][rows], results[True][rows], rtol=1e-6)


def test_dense_weight_with_row_sparse_grad_is_lazy():
    w0 = np.arange(D * C, dtype=np.float32).reshape(D, C)
    weight = NDArray(w0.copy())
    opt = opt_mod.Adam(learning_rate=0.01, wd=0.1)
    up = opt_mod.get_updater(opt)
    rows = np.array([0, 7], dtype=np.int64)
    up(0, RowSparseNDArray(np.ones((2, C), np.float32), rows, (D, C)), weight)
    changed = np.flatnonzero((weight.asnumpy() != w0).any(axis=1))
    np.testing.assert_array_equal(changed, rows)
    assert isinstance(up.states[0][0], NDArray) and up.states[0][0].shape == (D, C)


def test_clip_gradient_bounds_the_rescaled_gradient():
    weight = NDArray(np.zeros(4, np.float32))
    opt = opt_mod.SGD(learning_rate=1.0, rescale_grad=0.5, clip_gradient=0.25)
    opt.update(0, weight, NDArray(np.array([100.0, -100.0, 0.2, -0.3], np.float32)), None)
    # rescaled: 50, -50, 0.1, -0.15 -> clipped to ±0.25
    np.testing.assert_allclose(weight.asnumpy(), [-0.25, 0.25, -0.1, 0.15], rtol=1e-6)


@pytest.mark.parametrize("clip", [None, 0, -1.0])
def test_clip_gradient_none_zero_negative_disable_clipping(clip):
    weight = NDArray(np.zeros(2, np.float32))
    opt_mod.SGD(learning_rate=1.0, clip_gradient=clip).update(0, weight, NDArray(np.array([5.0, -7.0], np.float32)), None)
    np.testing.assert_allclose(weight.asnumpy(), [-5.0, 7.0])


def test_adam_clips_after_adding_weight_decay_as_mxnet():
    w = np.array([10.0], np.float32)
    opt = opt_mod.Adam(learning_rate=0.1, wd=1.0, clip_gradient=0.5, beta1=0.5, beta2=0.5, epsilon=0.0)
    weight = NDArray(w.copy())
    opt.update(0, weight, NDArray(np.array([0.0], np.float32)), opt.create_state(0, weight))
    # r = clip(0 + 1.0 * 10) = 0.5; m = 0.25, v = 0.125; lr_t = 0.1*sqrt(0.5)/0.5
    expected = 10.0 - 0.1 * np.sqrt(0.5) / 0.5 * 0.25 / np.sqrt(0.125)
    np.testing.assert_allclose(weight.asnumpy(), [expected], rtol=1e-6)


def test_adam_counts_steps_per_parameter():
    opt = opt_mod.Adam(learning_rate=0.01)
    up = opt_mod.get_updater(opt)
    a, b = NDArray(np.zeros(3, np.float32)), NDArray(np.zeros(3, np.float32))
    g = NDArray(np.ones(3, np.float32))
    for _ in range(3):
        up(0, g, a)
    up(1, g, b)
    assert opt._index_update_count == {0: 3, 1: 1} and opt.num_update == 3
    # parameter 1 took its first step: bias-corrected step size is lr * (sqrt(1-β2)/(1-β1)) * 1/(1+eps)
    np.testing.assert_allclose(b.asnumpy(), -0.01 * np.ones(3), rtol=1e-5)


def test_ftrl_zeroes_weights_below_l1_threshold():
    weight = NDArray(np.array([0.3, -0.3], np.float32))
    state = opt_mod.FTRL(lamda1=1.0).create_state(0, weight)
    opt = opt_mod.FTRL(lamda1=1.0, learning_rate=0.1)
    opt.update(0, weight, NDArray(np.array([0.01, -5.0], np.float32)), state)
    w, z, n = ref.ftrl(np.array([0.3, -0.3]), 0, 0, np.array([0.01, -5.0]), 0.1, lamda1=1.0)
    assert w[0] == 0.0 and w[1] != 0.0
    np.testing.assert_allclose(weight.asnumpy(), w, rtol=1e-6)


def test_multidimensional_weight_rows():
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=(5, 2, 3)).astype(np.float32)
    weight = RowSparseNDArray(w0.copy(), np.arange(5), w0.shape)
    rows = np.array([1, 3], dtype=np.int64)
    g = rng.normal(size=(2, 2, 3)).astype(np.float32)
    opt = opt_mod.SGD(learning_rate=0.1, momentum=0.5)
    state = opt.create_state(0, weight)
    opt.update(0, weight, RowSparseNDArray(g, rows, w0.shape), state)
    expected, _ = ref.lazy(lambda w, m, gg: ref.sgd_mom(w, m, gg, 0.1, 0.5), [w0, np.zeros_like(w0)], rows, g)
    np.testing.assert_allclose(weight.asnumpy(), expected, rtol=1e-6)


def test_row_sparse_weight_that_is_not_full_is_made_full():
    weight = RowSparseNDArray(np.ones((2, C), np.float32), np.array([1, 4], np.int64), (D, C))
    opt = opt_mod.SGD(learning_rate=0.5)
    opt.update(0, weight, RowSparseNDArray(np.ones((1, C), np.float32), np.array([4], np.int64), (D, C)), None)
    np.testing.assert_array_equal(weight._indices, np.arange(D))
    expected = np.zeros((D, C), np.float32)
    expected[1] = 1.0
    expected[4] = 0.5
    np.testing.assert_array_equal(weight.asnumpy(), expected)


def test_float64_weights():
    weight = NDArray(np.ones((D, C), np.float64))
    opt = opt_mod.AdaGrad(learning_rate=0.1)
    up = opt_mod.get_updater(opt)
    g = np.full((D, C), 0.5)
    up(0, NDArray(g), weight)
    w, _ = ref.adagrad(np.ones((D, C)), np.zeros((D, C)), g, 0.1)
    assert weight.dtype == np.float64 and up.states[0].dtype == np.float64
    np.testing.assert_allclose(weight.asnumpy(), w, rtol=1e-12)


def test_non_contiguous_gradient_is_accepted():
    weight = NDArray(np.zeros((4, 2), np.float32))
    g = np.arange(16, dtype=np.float32).reshape(4, 4)[:, ::2]
    opt_mod.SGD(learning_rate=1.0).update(0, weight, NDArray(g), None)
    np.testing.assert_array_equal(weight.asnumpy(), -g)


@pytest.mark.parametrize("weight_dtype, grad_dtype", [(np.float16, np.float16), (np.float32, np.float16),
                                                       (np.float32, np.int64), (np.int32, np.int32),
                                                       (np.float32, np.complex64)])
def test_a_weight_or_gradient_the_kernels_cannot_take_is_refused_naming_the_parameter(weight_dtype, grad_dtype):
    """Optimizer.update (the Python API; the CLI's parameters are float32/float64) refuses, before any kernel
    compiles, what the update kernels do not take: float16 raised numba's bare NotImplementedError('float16'),
    an integer gradient compiled an integer update (an integer weight was truncated: 1 - 0.1 -> 0)."""
    opt = opt_mod.Adam(learning_rate=0.1, param_idx2name={0: "fm_v"})
    weight = NDArray(np.ones((D, C), weight_dtype))
    state = opt.create_state(0, weight)
    if weight_dtype == np.float32:  # the check is kept per parameter: a weight once accepted, a new gradient dtype
        opt.update(0, weight, NDArray(np.zeros((D, C), np.float32)), state)  # (a zero gradient: Adam leaves it)
    with pytest.raises(StorageTypeError) as e:
        opt.update(0, weight, NDArray(np.ones((D, C), grad_dtype)), state)
    assert str(e.value) == (f"optimizer update of 'fm_v': the update kernels take float32 or float64 weights and "
                            f"gradients, got weight {np.dtype(weight_dtype)}, gradient {np.dtype(grad_dtype)}" +
                            ("; a float16 weight trains through a float32 master copy with multi_precision=True"
                             if weight_dtype == np.float16 else ""))
    np.testing.assert_array_equal(weight.asnumpy(), 1)
    strided = NDArray(np.ones((D, 2 * C), np.float32)[:, ::2])
    sgd = opt_mod.SGD()
    sgd.update(3, NDArray(np.ones((D, C), np.float32)), NDArray(np.ones((D, C), np.float32)), None)
    with pytest.raises(StorageTypeError, match=r"^optimizer update of parameter 3: its weight's buffer is strided"):
        sgd.update(3, strided, NDArray(np.ones((D, C), np.float32)), None)


def test_the_kernel_dtype_check_keeps_no_weight_buffer_alive():
    """Optimizer._accepted remembers which weight buffer was checked; it held the buffer itself, so a buffer a
    parameter had replaced (set_params, a rebind) lived on until the parameter's next update."""
    import gc
    import weakref

    opt = opt_mod.SGD(learning_rate=0.1)
    weight = NDArray(np.ones((D, C), np.float32))
    opt.update(0, weight, NDArray(np.ones((D, C), np.float32)), None)
    old = weakref.ref(weight._data)
    weight._data = np.ones((D, C), np.float32)  # the parameter's buffer replaced
    gc.collect()
    assert old() is None
    opt.update(0, weight, NDArray(np.ones((D, C), np.float32)), None)  # the new buffer is checked and updated
    np.testing.assert_allclose(weight.asnumpy(), 0.9)
    weight._data = np.ones((D, 2 * C), np.float32)[:, ::2]  # ... and one the kernels refuse is refused
    with pytest.raises(StorageTypeError, match="strided"):
        opt.update(0, weight, NDArray(np.ones((D, C), np.float32)), None)


def test_csr_gradient_is_rejected():
    weight = NDArray(np.zeros((2, 2), np.float32))
    csr = CSRNDArray(np.ones(1, np.float32), np.zeros(1, np.int64), np.array([0, 1, 1], np.int64), (2, 2))
    with pytest.raises(StorageTypeError):
        opt_mod.SGD().update(0, weight, csr, None)


def test_kernel_rows_over_all_rows_equals_dense_kernel():
    rng = np.random.default_rng(2)
    w = rng.normal(size=(D, C)).astype(np.float32)
    g = rng.normal(size=(D, C)).astype(np.float32)
    rule = K.RULES["adam"]
    h = rule.pack(1.0, 0.5, 0.9, 0.999, 1e-8)
    a, ma, va = w.copy(), np.zeros_like(w), np.zeros_like(w)
    b, mb, vb = w.copy(), np.zeros_like(w), np.zeros_like(w)
    rule.update_dense(a, ma, va, g, 0.01, 0.1, 3, h)
    rule.update_rows(b, mb, vb, np.arange(D, dtype=np.int64), g, 0.01, 0.1, 3, h)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)


HYPER = {"sgd": (), "sgd_mom": (0.8,), "adagrad": (1e-6,), "adam": (0.8, 0.9, 1e-6), "ftrl": (0.01, 1.0)}


def rule_arrays(rule, w, fill=(0.1, 0.2)):
    """The weight and its states for ``rule`` (empty where the rule has fewer)."""
    states = [np.full_like(w, fill[i]) for i in range(len(rule.states))]
    return [w.copy()] + states + [np.empty((0,) + w.shape[1:], w.dtype)] * (2 - len(states))


def test_rules_table_covers_every_optimizer_and_hyper_name():
    assert set(K.RULES) == set(HYPER)
    for name, rule in K.RULES.items():
        assert rule.name == name and len(rule.hyper) == len(HYPER[name]) and len(rule.states) <= 2
    for opt, want in [(opt_mod.SGD(), "sgd"), (opt_mod.SGD(momentum=0.5), "sgd_mom"), (opt_mod.AdaGrad(), "adagrad"),
                      (opt_mod.Adam(), "adam"), (opt_mod.FTRL(), "ftrl")]:
        assert opt.rule is K.RULES[want]
        assert len(opt.hyper()) == 2 + len(K.RULES[want].hyper)


@pytest.mark.parametrize("name", list(HYPER))
@pytest.mark.parametrize("clip", [None, 0.4])
def test_every_loop_of_every_rule_matches_its_reference(name, clip):
    """flat, rows_2d, outer_rows and the entry points against the rule record's numpy reference."""
    rule = K.RULES[name]
    rng = np.random.default_rng(6)
    w = rng.normal(size=(D, C)).astype(np.float64)
    h = rule.pack(0.7, clip, *HYPER[name])
    lr, wd, t = 0.05, 0.01, 3
    lr_t = rule.rate(lr, t, h)
    rows = np.array([0, 5, 6, 11], dtype=np.int64)
    g = rng.normal(scale=2.0, size=(len(rows), C))
    ref_arrays = rule.reference(w[rows], [np.full((len(rows), C), f) for f in (0.1, 0.2)][:len(rule.states)],
                                g, lr, wd, t, h)
    want = [x.copy() for x in rule_arrays(rule, w)[:1 + len(rule.states)]]
    for a, r in zip(want, ref_arrays):
        a[rows] = r
    # the lazy row update (entry point and loop), untouched rows unchanged
    for run in (lambda a: rule.update_rows(*a, rows, g, lr, wd, t, h),
                lambda a: rule.rows_2d(*a, rows, g, lr_t, wd, h)):
        arrays = rule_arrays(rule, w)
        run(arrays)
        for got, exp in zip(arrays, want):
            np.testing.assert_allclose(got, exp, rtol=1e-12, atol=1e-12)
    # the one-sample outer-product loop: row rows[p] gets coef[p] * g_row
    coef, g_row = rng.normal(size=len(rows)), rng.normal(size=C)
    a, b = rule_arrays(rule, w), rule_arrays(rule, w)
    rule.outer_rows(*a, rows, coef, 1, 4, g_row, lr_t, wd, h)
    rule.rows_2d(*b, rows[1:4], coef[1:4, None] * g_row[None, :], lr_t, wd, h)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    # dense: flat over 1-D arrays and the entry point over any rank
    gd = rng.normal(size=(D, C))
    exp = rule.reference(w, [np.full((D, C), f) for f in (0.1, 0.2)][:len(rule.states)], gd, lr, wd, t, h)
    a, b = rule_arrays(rule, w), rule_arrays(rule, w)
    rule.update_dense(*a, gd, lr, wd, t, h)
    rule.flat(*[x.reshape(-1) for x in b], gd.reshape(-1), lr_t, wd, h)
    for x, y, e in zip(a, b, exp):
        np.testing.assert_allclose(x, e, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(x, y)


def test_unknown_rule_raises_instead_of_running_another():
    """An optimizer naming a rule that does not exist must fail, never update by another rule."""

    class Bogus(opt_mod.SGD):
        rule_name = "bogus"

    opt = Bogus(learning_rate=0.1)
    w = NDArray(np.ones((D, C), np.float32))
    with pytest.raises(SparseTrainError, match="unknown optimizer rule 'bogus'"):
        opt.update(0, w, NDArray(np.ones((D, C), np.float32)), None)
    np.testing.assert_array_equal(w.asnumpy(), 1.0)
    with pytest.raises(SparseTrainError, match="unknown optimizer rule"):
        K.rule("adamw")


def test_unknown_rule_is_refused_by_the_fused_kernel():
    """Before the rules table a bad kind ran FTRL (a bare ``else``) or updated nothing."""
    from sparsetrain.engines.compiled.runner import LinearEpochRunner

    class Bogus(opt_mod.SGD):
        rule_name = "bogus"

    runner = LinearEpochRunner("LinearRegressionOutput", [4], 1, has_bias=False, dtype=np.float64)
    x = CSRNDArray(np.ones(2), np.array([0, 1], np.int64), np.array([0, 1, 2], np.int64), (2, 4))
    w = np.ones((4, 1))
    up = opt_mod.get_updater(Bogus(learning_rate=0.1))
    with pytest.raises(SparseTrainError, match="unknown optimizer rule 'bogus'"):
        runner.fit_epoch([x], np.zeros(2), np.arange(2), np.array([0, 1, 2]), [w], None, up, [0])
    np.testing.assert_array_equal(w, 1.0)


def test_optimizer_without_a_rule_cannot_update():
    """A subclass that names no rule and does not override ``update`` fails loudly (no default rule)."""

    class NoRule(opt_mod.Optimizer):
        pass

    w = NDArray(np.ones((D, C), np.float32))
    with pytest.raises(NotImplementedError, match="NoRule has no update rule"):
        NoRule().update(0, w, NDArray(np.ones((D, C), np.float32)), None)
    np.testing.assert_array_equal(w.asnumpy(), 1.0)


# A range for every hyper-parameter name a rule declares (a new rule's new name needs one here).
HYPER_RANGES = {"momentum": (0.0, 0.99), "float_stable_eps": (1e-8, 1e-3), "beta1": (0.0, 0.99),
                "beta2": (0.0, 0.999), "epsilon": (1e-8, 1e-3), "lamda1": (0.0, 1.0), "beta": (0.1, 2.0)}


def test_every_rule_has_a_reference_and_ranges():
    for name, rule in K.RULES.items():
        assert callable(rule.reference), name
        assert all(h in HYPER_RANGES for h in rule.hyper), (name, rule.hyper)


@pytest.mark.parametrize("name", list(K.RULES))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_step_matches_its_numpy_reference(name, data):
    """Each rule's scalar step (as every loop inlines it) against the rule record's numpy reference."""
    rule = K.RULES[name]
    f = lambda lo, hi: st.floats(lo, hi, allow_nan=False, allow_infinity=False)  # noqa: E731
    w, g = data.draw(f(-10, 10)), data.draw(f(-100, 100))
    states = [data.draw(f(0, 10)) for _ in rule.states]  # non-negative suits every state (histories, n)
    lr, wd, t = data.draw(f(1e-4, 1.0)), data.draw(st.one_of(st.just(0.0), f(0, 0.1))), data.draw(st.integers(1, 1000))
    clip = data.draw(st.one_of(st.none(), f(0.01, 10)))
    h = rule.pack(data.draw(f(0.01, 2.0)), clip, *(data.draw(f(*HYPER_RANGES[n])) for n in rule.hyper))
    padded = states + [0.0] * (2 - len(states))
    got = rule.step(w, padded[0], padded[1], g, rule.rate(lr, t, h), wd, h)
    want = rule.reference(np.array([w]), [np.array([s]) for s in states], np.array([g]), lr, wd, t, h)
    if name == "ftrl":  # its weight jumps at |z| = lamda1: stay clear of rounding across it
        assume(abs(abs(float(want[1][0])) - h[2]) > 1e-9)
    assert len(want) == 1 + len(rule.states)
    for x, y in zip(got, want):
        np.testing.assert_allclose(x, y[0], rtol=1e-9, atol=1e-12)
    for unused in got[len(want):]:  # a state the rule does not keep comes back unchanged
        assert unused == 0.0


# -- registry, learning rate, counting -----------------------------------------------------

@pytest.mark.parametrize("name,cls", [("sgd", opt_mod.SGD), ("SGD", opt_mod.SGD), ("AdaGrad", opt_mod.AdaGrad),
                                      ("adam", opt_mod.Adam), ("Ftrl", opt_mod.FTRL), ("FTRL", opt_mod.FTRL)])
def test_create_is_case_insensitive(name, cls):
    assert type(opt_mod.create(name)) is cls


def test_create_unknown_name():
    with pytest.raises(ValueError, match="Cannot find optimizer 'sgdd'"):
        opt_mod.create("sgdd")


def test_mxnet_defaults():
    assert opt_mod.SGD().learning_rate == 0.01 and opt_mod.SGD().momentum == 0.0 and opt_mod.SGD().lazy_update
    assert opt_mod.AdaGrad().float_stable_eps == 1e-7
    adam = opt_mod.Adam()
    assert (adam.learning_rate, adam.beta1, adam.beta2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-8)
    ftrl = opt_mod.FTRL()
    assert (ftrl.learning_rate, ftrl.lamda1, ftrl.beta) == (0.1, 0.01, 1)
    assert opt_mod.Ftrl is opt_mod.FTRL


def test_set_learning_rate():
    opt = opt_mod.SGD(learning_rate=0.1)
    opt.set_learning_rate(0.2)
    assert opt.learning_rate == 0.2
    sched = opt_mod.SGD(lr_scheduler=lrs.FactorScheduler(step=2))
    with pytest.raises(UserWarning):
        sched.set_learning_rate(0.2)


def test_learning_rate_overrides_scheduler_base_lr():
    sched = lrs.FactorScheduler(step=10, base_lr=1.0)
    with pytest.warns(UserWarning):
        opt = opt_mod.SGD(learning_rate=0.3, lr_scheduler=sched)
    assert opt.learning_rate == 0.3 and sched.base_lr == 0.3


def test_param_idx2name_sets_wd_mult_as_mxnet():
    opt = opt_mod.SGD(learning_rate=1.0, wd=0.5, param_idx2name={0: "fc_weight", 1: "fc_bias"})
    assert opt._get_wd(0) == 0.5 and opt._get_wd(1) == 0.0
    opt.set_lr_mult({"fc_weight": 2.0})
    opt._update_count(0)
    assert opt._get_lr(0) == 2.0
    w, b = NDArray(np.ones(2, np.float32)), NDArray(np.ones(2, np.float32))
    zero = NDArray(np.zeros(2, np.float32))
    opt.update(0, w, zero, None)
    opt.update(1, b, zero, None)
    np.testing.assert_allclose(w.asnumpy(), 1 - 2.0 * 0.5)
    np.testing.assert_allclose(b.asnumpy(), 1.0)


def test_optimizer_with_factor_scheduler_uses_num_update():
    sched = lrs.FactorScheduler(step=2, factor=0.5, base_lr=1.0)
    opt = opt_mod.SGD(lr_scheduler=sched)
    weight = NDArray(np.zeros(1, np.float32))
    g = NDArray(np.ones(1, np.float32))
    for _ in range(6):
        opt.update(0, weight, g, None)
    # updates 1,2 at lr 1; 3,4 at 0.5; 5,6 at 0.25
    np.testing.assert_allclose(weight.asnumpy(), [-(1 + 1 + 0.5 + 0.5 + 0.25 + 0.25)])
    assert opt.num_update == 6


# -- schedulers ---------------------------------------------------------------------------

def test_factor_scheduler_sequence_and_stop():
    s = lrs.FactorScheduler(step=2, factor=0.1, stop_factor_lr=0.005, base_lr=1.0)
    got = [s(n) for n in range(1, 9)]
    np.testing.assert_allclose(got, [1, 1, 0.1, 0.1, 0.01, 0.01, 0.005, 0.005])


def test_factor_scheduler_validates():
    with pytest.raises(ValueError):
        lrs.FactorScheduler(step=0)
    with pytest.raises(ValueError):
        lrs.FactorScheduler(step=1, factor=1.5)


def test_factor_scheduler_warmup():
    s = lrs.FactorScheduler(step=5, factor=0.5, base_lr=1.0, warmup_steps=4, warmup_begin_lr=0.2)
    np.testing.assert_allclose([s(n) for n in range(0, 4)], [0.2, 0.4, 0.6, 0.8])
    # as MXNet, the decay counts updates from 0, warm-up included
    assert s(4) == 1.0 and s(5) == 1.0 and s(6) == 0.5 and s(11) == 0.25


def test_multifactor_scheduler_sequence():
    s = lrs.MultiFactorScheduler(step=[2, 5], factor=0.5, base_lr=1.0)
    np.testing.assert_allclose([s(n) for n in range(1, 8)], [1, 1, 0.5, 0.5, 0.5, 0.25, 0.25])
    with pytest.raises(ValueError):
        lrs.MultiFactorScheduler(step=[3, 2])


SCHEDULERS = [
    lambda: lrs.FactorScheduler(step=3, factor=0.7, stop_factor_lr=0.1, base_lr=1.0),
    lambda: lrs.FactorScheduler(step=1, factor=0.9, stop_factor_lr=1e-3, base_lr=1.0, warmup_steps=5,
                                warmup_begin_lr=0.1),
    lambda: lrs.MultiFactorScheduler(step=[4, 9, 10], factor=0.3, base_lr=0.5, warmup_steps=3),
    lambda: lrs.PolyScheduler(max_update=20, base_lr=0.5, pwr=2, warmup_steps=2),
    lambda: lrs.CosineScheduler(max_update=15, base_lr=0.5, final_lr=0.01),
]


@pytest.mark.parametrize("make", SCHEDULERS, ids=["factor", "factor_warmup", "multifactor", "poly", "cosine"])
@pytest.mark.parametrize("counts", [(0, 0), (3, 1)], ids=["fresh", "uneven"])
def test_scheduled_learning_rates_equal_per_step_calls(make, counts):
    opt = opt_mod.SGD(lr_scheduler=make(), param_idx2name={0: "a_weight", 1: "b_weight"})
    opt.set_lr_mult({1: 0.5})
    for index, n in enumerate(counts):
        for _ in range(n):
            opt._update_count(index)
    planned = opt.scheduled_learning_rates([0, 1], 30)
    live = copy.deepcopy(opt)
    per_step = np.array([[(live._update_count(i), live._get_lr(i))[1] for i in (0, 1)] for _ in range(30)])  # (update's order)
    np.testing.assert_array_equal(planned, per_step)
    # planning changed nothing; advancing brings the optimizer where the per-step calls left it
    opt.advance_update_counts([0, 1], 30)
    assert opt._index_update_count == live._index_update_count and opt.num_update == live.num_update
    assert opt.learning_rate == live.learning_rate


# -- updater states ------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(OPTIMIZERS))
def test_updater_states_round_trip(key):
    rng = np.random.default_rng(5)
    grads = [RowSparseNDArray(rng.normal(size=(2, C)).astype(np.float32),
                              np.sort(rng.choice(D, 2, replace=False)).astype(np.int64), (D, C)) for _ in range(6)]
    w0 = rng.normal(size=(D, C)).astype(np.float32)
    straight = full_rsp(w0)
    up = opt_mod.get_updater(make_opt(key, {"learning_rate": 0.1}))
    for g in grads:
        up(0, g, straight)

    resumed = full_rsp(w0)
    up1 = opt_mod.get_updater(make_opt(key, {"learning_rate": 0.1}))
    for g in grads[:3]:
        up1(0, g, resumed)
    blob = up1.get_states(dump_optimizer=True)
    assert isinstance(blob, bytes)
    up2 = opt_mod.get_updater(make_opt(key, {"learning_rate": 123.0}))
    up2.set_states(blob)  # restores the optimizer (with its update counts) too
    for g in grads[3:]:
        up2(0, g, resumed)
    np.testing.assert_array_equal(resumed.asnumpy(), straight.asnumpy())


def test_set_states_refills_existing_state_objects_in_place():
    opt = opt_mod.SGD(momentum=0.9)
    up = opt_mod.get_updater(opt)
    w = NDArray(np.zeros(3, np.float32))
    up(0, NDArray(np.ones(3, np.float32)), w)
    held = up.states[0]
    blob = up.get_states()
    held._data[:] = 0
    up.set_states(blob)
    assert up.states[0] is held
    np.testing.assert_allclose(held.asnumpy(), -0.01)
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:  # data only: an npz of arrays and JSON
        np.testing.assert_allclose(z["s0_0"], -0.01)


def test_save_states_writes_the_file_get_states_returns(tmp_path):
    up = opt_mod.get_updater(opt_mod.SGD(momentum=0.9))
    up(0, NDArray(np.ones(3, np.float32)), NDArray(np.zeros(3, np.float32)))
    path = tmp_path / "x.states"
    up.save_states(str(path), dump_optimizer=True)
    with np.load(path, allow_pickle=False) as a, np.load(io.BytesIO(up.get_states(True)), allow_pickle=False) as b:
        assert a.files == b.files
        for k in a.files:
            np.testing.assert_array_equal(a[k], b[k])


def test_states_round_trip_update_counts_and_scheduler():
    """Adam's bias-correction step and a stateful schedule's position come back (exact resume)."""
    def make():
        return opt_mod.Adam(learning_rate=0.1, lr_scheduler=lrs.FactorScheduler(step=2, factor=0.5, base_lr=0.1))

    rng = np.random.default_rng(9)
    grads = [NDArray(rng.normal(size=(D, C)).astype(np.float32)) for _ in range(7)]
    straight, resumed = NDArray(np.zeros((D, C), np.float32)), NDArray(np.zeros((D, C), np.float32))
    up = opt_mod.get_updater(make())
    for g in grads:
        up(0, g, straight)
    up1 = opt_mod.get_updater(make())
    for g in grads[:3]:
        up1(0, g, resumed)
    up2 = opt_mod.get_updater(make())
    up2.set_states(up1.get_states())
    assert up2.optimizer._index_update_count == {0: 3} and up2.optimizer.lr_scheduler.count == 2
    for g in grads[3:]:
        up2(0, g, resumed)
    np.testing.assert_array_equal(resumed.asnumpy(), straight.asnumpy())


def test_the_states_of_an_optimizer_without_a_rule_restore():
    """An optimizer of MXNet's API written in Python (no rule; its own create_state and update) restores the states
    it saved: they are checked against no rule's count."""
    class PyMomentum(opt_mod.Optimizer):
        def create_state(self, index, weight):
            return NDArray(np.zeros(weight.shape, weight.dtype))

        def update(self, index, weight, grad, state):
            self._update_count(index)
            state._data[:] = 0.5 * state._data + grad.asnumpy()
            weight._data[:] -= state._data

    up1 = opt_mod.get_updater(PyMomentum())
    weight = NDArray(np.ones(3, np.float32))
    up1(0, NDArray(np.ones(3, np.float32)), weight)
    up2 = opt_mod.get_updater(PyMomentum())
    up2.set_states(up1.get_states())
    np.testing.assert_array_equal(up2.states[0].asnumpy(), [1.0, 1.0, 1.0])
    assert up2.optimizer._index_update_count == {0: 1}


def test_pickled_states_are_refused():
    up = opt_mod.get_updater(opt_mod.SGD(momentum=0.9))
    with pytest.raises(DataFormatError, match="x.states is an old pickled optimizer-state file"):
        up.set_states(pickle.dumps({0: np.zeros(3)}), source="x.states")


def test_updater_accepts_lists_of_indices():
    opt = opt_mod.SGD(learning_rate=1.0)
    up = opt_mod.get_updater(opt)
    a, b = NDArray(np.zeros(2, np.float32)), NDArray(np.zeros(2, np.float32))
    up([0, 1], [NDArray(np.ones(2, np.float32)), NDArray(np.full(2, 2.0, np.float32))], [a, b])
    np.testing.assert_array_equal(a.asnumpy(), [-1, -1])
    np.testing.assert_array_equal(b.asnumpy(), [-2, -2])
    assert set(up.states) == {0, 1} and opt.num_update == 1


# -- per-parameter multipliers (MXNet's lr_mult / wd_mult) ----------------------------------------

def _linear_symbol(**weight_mults):
    import sparsetrain as sp

    data = sp.sym.Variable("data", stype="csr")
    weight = sp.sym.Variable("weight", stype="row_sparse", shape=(20, 1), **weight_mults)
    pred = sp.sym.broadcast_add(sp.sym.sparse.dot(data, weight), sp.sym.Variable("bias", shape=(1,)))
    return sp.sym.LinearRegressionOutput(data=pred, label=sp.sym.Variable("label"), name="out")


def test_variable_multipliers_scale_lr_and_wd_as_mxnet():
    """``Variable(lr_mult=a, wd_mult=b)``: the optimizer given the symbol steps with lr·a and decays with wd·b
    (MXNet's ``__lr_mult__`` / ``__wd_mult__`` attributes); the others keep lr and MXNet's name rule for wd."""
    symbol = _linear_symbol(lr_mult=0.25, wd_mult=3.0)
    assert symbol.get_internals()["weight"].list_attr()["__lr_mult__"] == "0.25"
    opt = opt_mod.SGD(learning_rate=0.4, wd=0.1, sym=symbol, param_idx2name={0: "weight", 1: "bias"})
    w, b = NDArray(np.full(2, 2.0, np.float32)), NDArray(np.full(2, 2.0, np.float32))
    g = NDArray(np.full(2, 0.5, np.float32))
    opt.update(0, w, g, None)
    opt.update(1, b, g, None)
    np.testing.assert_allclose(w.asnumpy(), 2.0 - 0.4 * 0.25 * (0.5 + 0.1 * 3.0 * 2.0), rtol=1e-6)
    np.testing.assert_allclose(b.asnumpy(), 2.0 - 0.4 * 0.5, rtol=1e-6)  # no _weight suffix: wd_mult 0


def test_multipliers_are_the_ones_the_updates_apply():
    # Optimizer.multipliers: what infer-stypes and the engine line show; _get_lr/_get_wd and the fused loops use it
    symbol = _linear_symbol(lr_mult=0.25, wd_mult=3.0)
    named = opt_mod.SGD(learning_rate=0.4, wd=0.1, sym=symbol, param_idx2name={0: "weight", 1: "bias"})
    assert named.multipliers(0) == named.multipliers("weight") == (0.25, 3.0)
    assert named.multipliers(1) == named.multipliers("bias") == (1.0, 0.0)  # MXNet's name rule: default_wd_mult
    assert [opt_mod.default_wd_mult(n) for n in ("fc_weight", "bn_gamma", "fc_bias", "weight", "bn_beta")] == [
        1.0, 1.0, 0.0, 0.0, 0.0]
    np.testing.assert_array_equal(named.weight_decays([0, 1]), [0.1 * 3.0, 0.0])
    np.testing.assert_array_equal(named.scheduled_learning_rates([0, 1], 1, compact=True), [[0.4 * 0.25, 0.4]])
    # made without names (the CLI's optimizer, config.make_optimizer) and given them later by Module.init_optimizer:
    # no name rule, the same by name before as by index after
    plain = opt_mod.SGD(learning_rate=0.4, wd=0.1, sym=symbol)
    before = [plain.multipliers(n) for n in ("weight", "bias")]
    plain.idx2name = {0: "weight", 1: "bias"}
    assert [plain.multipliers(i) for i in (0, 1)] == before == [(0.25, 3.0), (1.0, 1.0)]
    plain.set_wd_mult({1: 0.5})
    assert plain.multipliers(1) == (1.0, 0.5) and plain._get_wd(1) == 0.1 * 0.5


def _module_run(engine, symbol, epochs=3):
    import sparsetrain as sp

    sp.random.seed(11)
    rng = np.random.default_rng(0)
    x = sp.test_utils.rand_ndarray((37, 20), "csr", 0.2)
    y = (x.asnumpy() @ rng.normal(size=20)).astype(np.float32)
    it = sp.io.NDArrayIter(x, y, 4, shuffle=True, label_name="label")
    mod = sp.mod.Module(symbol, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(sp.initializer.Normal(0.1))
    mod.init_optimizer(optimizer="adagrad", optimizer_params={"learning_rate": 0.1, "wd": 1e-4})
    for epoch in range(epochs):
        mod.run_epoch(it, sp.metric.create("mse"), engine=engine, epoch=epoch)
    assert mod.engine_choice[0] == engine
    return {k: v.asnumpy() for k, v in mod.get_params()[0].items()}


def test_compiled_engine_applies_lr_mult_as_the_graph_engine():
    """The multiplier is a runtime rate (the fused kernel of test_engine_equality's adagrad case, no new compile)."""
    symbol = _linear_symbol(lr_mult=0.3)
    graph, compiled = _module_run("graph", symbol), _module_run("compiled", symbol)
    plain = _module_run("graph", _linear_symbol())
    assert not np.allclose(graph["weight"], plain["weight"], rtol=1e-3)  # the multiplier changed the training
    for name in graph:
        np.testing.assert_allclose(compiled[name], graph[name], rtol=1e-4, atol=1e-5, err_msg=name)


def _fit_linreg(out, *sets):
    import pathlib

    from click.testing import CliRunner

    from sparsetrain.cli import main

    config = pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml"
    args = ["fit", str(config), "--output", str(out), "--epochs", "2", "-q", "--set", "data.batch_size=50"]
    return CliRunner().invoke(main, args + [x for s in sets for x in ("--set", s)])


def test_config_lr_mult_trains_alike_on_both_engines(tmp_path):
    """``model.variables.NAME.lr_mult`` reaches the graph, the optimizer and both engines (one thread)."""
    from sparsetrain.params_file import load_params

    params = {}
    for name, sets in (("compiled", ["model.variables.weight.lr_mult=0.2", "train.engine=compiled"]),
                       ("graph", ["model.variables.weight.lr_mult=0.2", "train.engine=graph"]),
                       ("plain", ["train.engine=compiled"])):
        result = _fit_linreg(tmp_path / name, *sets)
        assert result.exit_code in (0, 1), result.output  # 1: configs/linreg.yaml's target, missed in 2 epochs
        params[name] = {k: v.asnumpy() for k, v in load_params(tmp_path / name / "checkpoints/model-0002.params")[0].items()}
    symbol = (tmp_path / "compiled" / "checkpoints" / "model-symbol.json").read_text()
    assert '"__lr_mult__": 0.2' in symbol and "__wd_mult__" not in symbol  # only what the config sets
    for key in params["graph"]:
        np.testing.assert_allclose(params["compiled"][key], params["graph"][key], rtol=1e-4, atol=1e-5, err_msg=key)
    assert not np.allclose(params["compiled"]["weight"], params["plain"]["weight"], rtol=1e-2)


@pytest.mark.parametrize("key,value,message", [
    ("weight.lr_mult", "0", "model.variables.weight.lr_mult: Input should be greater than 0"),
    ("weight.wd_mult", "-1", "model.variables.weight.wd_mult: Input should be greater than or equal to 0"),
    ("data.lr_mult", "2", "model.variables.data.lr_mult: 'data' is the model's data input, not a trained parameter"),
])
def test_a_bad_multiplier_names_its_key(tmp_path, key, value, message):
    result = _fit_linreg(tmp_path / "run", f"model.variables.{key}={value}")
    assert result.exit_code == 2 and message in result.output, result.output


def test_module_multipliers_match_mxnet():
    """Module + ``optimizer='sgd'`` with ``lr_mult`` / ``wd_mult`` on Variables: the parameters MXNet 1.9.1
    ends with on the same script (run in benchmarks/_work/mxnet-venv; before the multipliers reached the
    optimizer sparsetrain ended at weight [1.506, 1.418, ...], bias 0.958)."""
    import sparsetrain as mx

    rng = np.random.RandomState(0)
    x = rng.rand(8, 5).astype(np.float32)
    y = x @ np.arange(1, 6, dtype=np.float32)
    w = mx.sym.Variable("fc_weight", shape=(5, 1), lr_mult=0.25, wd_mult=3.0)
    b = mx.sym.Variable("fc_bias", shape=(1,), lr_mult=2.0)
    net = mx.sym.LinearRegressionOutput(mx.sym.broadcast_add(mx.sym.dot(mx.sym.Variable("data"), w), b),
                                        mx.sym.Variable("label"), name="out")
    it = mx.io.NDArrayIter(x, y, 4, label_name="label")
    mod = mx.mod.Module(net, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(mx.init.One())
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "wd": 0.05})
    for batch in it:
        mod.forward(batch, is_train=True)
        mod.backward()
        mod.update()
    arg = mod.get_params()[0]
    np.testing.assert_allclose(arg["fc_weight"].asnumpy().ravel(), [1.124754, 1.101888, 1.16472, 1.183351, 1.102457],
                               atol=2e-6)
    np.testing.assert_allclose(arg["fc_bias"].asnumpy(), [1.948864], atol=2e-6)
