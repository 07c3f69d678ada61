"""The harness MXNet 1.9.1's own unit tests need, for either library.

``MXNET_UPSTREAM_LIB=mxnet`` runs the ported tests on the real MXNet (see
``tools/mxnet_upstream.sh``); the default is ``sparsetrain``. Everything a test uses comes from
here: ``mx``, the ``mx.test_utils`` names MXNet's test files star-import, and the few helpers
of MXNet's ``tests/python/unittest/common.py`` / ``test_utils`` that sparsetrain does not ship
(written here against the public API, so both libraries run the same helper).
"""
from __future__ import annotations

import contextlib
import importlib
import os
import random

import numpy as np
import pytest

LIB = os.environ.get("MXNET_UPSTREAM_LIB", "sparsetrain")
if LIB not in ("sparsetrain", "mxnet"):
    raise RuntimeError(f"MXNET_UPSTREAM_LIB must be 'sparsetrain' or 'mxnet', got {LIB!r}")
mx = importlib.import_module(LIB)
ON_MXNET = LIB == "mxnet"
_tu = importlib.import_module(LIB + ".test_utils")

# the mxnet.test_utils names the ported tests use (``from mxnet.test_utils import *``)
rand_ndarray = _tu.rand_ndarray
rand_sparse_ndarray = _tu.rand_sparse_ndarray
rand_shape_2d = _tu.rand_shape_2d
rand_shape_3d = _tu.rand_shape_3d
rand_shape_nd = _tu.rand_shape_nd
same = _tu.same
almost_equal = _tu.almost_equal
assert_almost_equal = _tu.assert_almost_equal
default_context = _tu.default_context
random_arrays = _tu.random_arrays
random_sample = _tu.random_sample
check_symbolic_forward = _tu.check_symbolic_forward
check_symbolic_backward = _tu.check_symbolic_backward
check_numeric_gradient = _tu.check_numeric_gradient
Context = mx.Context
MXNetError = mx.base.MXNetError


def xfail_on_sparsetrain(reason: str):
    """A deliberate difference from MXNet (listed in README's MXNet compatibility section):
    expected to fail on sparsetrain, must pass on MXNet."""
    return pytest.mark.xfail(not ON_MXNET, reason=reason, strict=True)


def seed_all(seed: int) -> None:
    """What MXNet's ``with_seed`` does before a test: seed numpy, ``random`` and ``mx.random``."""
    np.random.seed(seed)
    random.seed(seed)
    mx.random.seed(seed)


@contextlib.contextmanager
def random_seed(seed):
    """``common.random_seed``: run a block under ``seed``, then continue from a fresh seed."""
    seed_all(seed)
    try:
        yield
    finally:
        seed_all(np.random.randint(0, 2**31))


def assertRaises(expected_exception, func, *args, **kwargs):
    """``common.assertRaises``."""
    with pytest.raises(expected_exception):
        func(*args, **kwargs)


def assert_exception(f, exception_type, *args, **kwargs):
    """``test_utils.assert_exception``."""
    with pytest.raises(exception_type):
        f(*args, **kwargs)


def assign_each(the_input, function):
    """``test_utils.assign_each``: ``function`` applied to every element (numpy)."""
    if function is None:
        return np.array(the_input)
    return np.vectorize(function, otypes=[np.float64])(the_input).reshape(np.shape(the_input))


def assign_each2(input1, input2, function):
    """``test_utils.assign_each2``: ``function(a, b)`` element by element (numpy)."""
    if function is None:
        return np.array(input1)
    return np.vectorize(function, otypes=[np.float64])(input1, input2)


def create_sparse_array(shape, stype, data_init=None, rsp_indices=None, dtype=None,
                        modifier_func=None, density=0.5, shuffle_csr_indices=False):
    """``test_utils.create_sparse_array``: a random sparse array whose stored values are
    ``data_init`` (if given) and then ``modifier_func``-mapped; row_sparse keeps ``rsp_indices``."""
    if stype == "row_sparse":
        if rsp_indices is not None:
            rows = np.unique(np.asarray(rsp_indices, dtype=np.int64))
            dense = np.zeros(shape)
            dense[rows] = np.random.uniform(-1, 1, size=(len(rows),) + tuple(shape[1:]))
            arr = mx.nd.array(dense, dtype=dtype or np.float32).tostype("row_sparse")
        else:
            arr = rand_ndarray(shape, stype, density=density, dtype=dtype)
    elif stype == "csr":
        arr = rand_ndarray(shape, stype, density=density, dtype=dtype)
    else:
        raise ValueError(f"unknown storage type {stype!r}")
    dense = arr.asnumpy()
    mask = np.zeros(shape, dtype=bool)
    if stype == "row_sparse":
        mask[arr.indices.asnumpy()] = True
    else:
        mask = dense != 0
    if data_init is not None:
        dense[mask] = data_init
    if modifier_func is not None:
        dense[mask] = assign_each(dense[mask], modifier_func)
    out = mx.nd.array(dense, dtype=arr.dtype)
    if stype == "row_sparse":
        keep = arr.indices
        return mx.nd.sparse.retain(out.tostype("row_sparse"), keep) if len(keep) else out.tostype(stype)
    return out.tostype(stype)


def create_sparse_array_zd(shape, stype, density, data_init=None, rsp_indices=None, dtype=None,
                           modifier_func=None, shuffle_csr_indices=False):
    """``test_utils.create_sparse_array_zd``: as ``create_sparse_array``; density 0 gives zeros."""
    if stype == "row_sparse":
        density = 0.0
        if rsp_indices is not None and len(rsp_indices) > 0:
            density = 1.0
            rsp_indices = [int(i) for i in rsp_indices]
        else:
            return mx.nd.zeros(shape, stype=stype, dtype=dtype or np.float32)
    elif density == 0:
        return mx.nd.zeros(shape, stype=stype, dtype=dtype or np.float32)
    return create_sparse_array(shape, stype, data_init=data_init, rsp_indices=rsp_indices,
                               dtype=dtype, modifier_func=modifier_func, density=density,
                               shuffle_csr_indices=shuffle_csr_indices)


def compare_ndarray_tuple(t1, t2, rtol=None, atol=None):
    """``test_utils.compare_ndarray_tuple``: states of two optimizers are equal."""
    if t1 is None or t2 is None:
        return
    if isinstance(t1, tuple):
        for s1, s2 in zip(t1, t2):
            compare_ndarray_tuple(s1, s2, rtol, atol)
    else:
        tols = {k: v for k, v in (("rtol", rtol), ("atol", atol)) if v is not None}
        assert_almost_equal(t1.asnumpy(), t2.asnumpy(), **tols)


def compare_optimizer(opt1, opt2, shape, dtype, w_stype="default", g_stype="default",
                      rtol=1e-4, atol=1e-5, compare_states=True):
    """``test_utils.compare_optimizer`` (1.x): one update of ``opt1`` on dense copies and of
    ``opt2`` on arrays of ``w_stype``/``g_stype``; states and weights must agree."""
    if w_stype == "default":
        w2 = mx.random.uniform(shape=shape, ctx=default_context(), dtype=dtype)
        w1 = w2.copyto(default_context())
    else:
        w2 = rand_ndarray(shape, w_stype, density=1, dtype=dtype)
        w1 = w2.copyto(default_context()).tostype("default")
    if g_stype == "default":
        g2 = mx.random.uniform(shape=shape, ctx=default_context(), dtype=dtype)
        g1 = g2.copyto(default_context())
    else:
        g2 = rand_ndarray(shape, g_stype, dtype=dtype)
        g1 = g2.copyto(default_context()).tostype("default")
    state1 = opt1.create_state_multi_precision(0, w1)
    state2 = opt2.create_state_multi_precision(0, w2)
    if compare_states:
        compare_ndarray_tuple(state1, state2)
    opt1.update_multi_precision(0, w1, g1, state1)
    opt2.update_multi_precision(0, w2, g2, state2)
    if compare_states:
        compare_ndarray_tuple(state1, state2, rtol=rtol, atol=atol)
    assert_almost_equal(w1.asnumpy(), w2.asnumpy(), rtol=rtol, atol=atol)
