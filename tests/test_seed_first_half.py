"""The seed tutorial's first half (shared/seed/), line for line with ``import sparsetrain as mx``.

Automatic names use per-process counters, so the reprs the seed prints are checked in a fresh
interpreter running the tutorial's code; values, stypes and warnings are checked in-process.
"""
import logging
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain import StorageFallbackWarning

SEED_FIRST_HALF = textwrap.dedent("""
    import sparsetrain as mx
    a = mx.sym.Variable('a')
    b = mx.sym.Variable('b', stype='csr')
    c = mx.sym.Variable('c', stype='row_sparse')
    print(repr((a, b, c)))
    shape = (2,2)
    b_exec = b.simple_bind(ctx=mx.cpu(), b=shape)
    c_exec = c.simple_bind(ctx=mx.cpu(), c=shape)
    b_exec.forward()
    c_exec.forward()
    print(b_exec.outputs, c_exec.outputs)
    print('---')
    b_exec.arg_dict['b'][:] = mx.nd.ones(shape).tostype('csr')
    b_exec.forward()
    eval_b = b_exec.outputs[0]
    print({'eval_b': eval_b, 'eval_b.asnumpy()': eval_b.asnumpy()})
    print('---')
    d = mx.sym.elemwise_add(a, a)
    e = mx.sym.sparse.negative(b)
    f = mx.sym.sparse.elemwise_add(c, c)
    print({'d':d, 'e':e, 'f':f})
    add_exec = mx.sym.Group([d, e, f]).simple_bind(ctx=mx.cpu(), a=shape, b=shape, c=shape)
    add_exec.forward()
    dense_add = add_exec.outputs[0]
    csr_add = add_exec.outputs[1]
    rsp_add = add_exec.outputs[2]
    print({'dense_add.stype': dense_add.stype, 'csr_add.stype':csr_add.stype, 'rsp_add.stype': rsp_add.stype})
    csr_log = mx.sym.log(a)
    csr_rsp_add = mx.sym.elemwise_add(b, c)
    fallback_exec = mx.sym.Group([csr_rsp_add, csr_log]).simple_bind(ctx=mx.cpu(), a=shape, b=shape, c=shape)
    fallback_exec.forward()
    fallback_add = fallback_exec.outputs[0]
    fallback_log = fallback_exec.outputs[1]
    print('---')
    print({'fallback_add': fallback_add, 'fallback_log': fallback_log})
""")


@pytest.fixture(scope="module")
def seed_run():
    proc = subprocess.run([sys.executable, "-c", SEED_FIRST_HALF], capture_output=True, text=True, check=True)
    return proc.stdout.split("---\n"), proc.stderr


def test_seed_reprs_in_a_fresh_process(seed_run):
    (first, second, third, fourth), _ = seed_run
    assert first == (
        "(<Symbol a>, <Symbol b>, <Symbol c>)\n"
        "[\n<CSRNDArray 2x2 @cpu(0)>] [\n<RowSparseNDArray 2x2 @cpu(0)>]\n"
    )
    assert second == (
        "{'eval_b': \n<CSRNDArray 2x2 @cpu(0)>, 'eval_b.asnumpy()': array([[1., 1.],\n"
        "       [1., 1.]], dtype=float32)}\n"
    )
    assert third == (
        "{'d': <Symbol elemwise_add0>, 'e': <Symbol negative0>, 'f': <Symbol elemwise_add1>}\n"
        "{'dense_add.stype': 'default', 'csr_add.stype': 'csr', 'rsp_add.stype': 'row_sparse'}\n"
    )
    assert fourth == (
        "{'fallback_add': \n[[0. 0.]\n [0. 0.]]\n<NDArray 2x2 @cpu(0)>, "
        "'fallback_log': \n[[-inf -inf]\n [-inf -inf]]\n<NDArray 2x2 @cpu(0)>}\n"
    )


def test_seed_fallback_warns_once_in_a_fresh_process(seed_run):
    _, stderr = seed_run
    assert stderr.count("StorageFallbackWarning") == 1  # csr + row_sparse; log(a) is dense
    assert "elemwise_add" in stderr and "(csr, row_sparse)" in stderr


def test_variables_and_bind_with_sparse_arrays():
    a = mx.sym.Variable("a")
    b = mx.sym.Variable("b", stype="csr")
    c = mx.sym.Variable("c", stype="row_sparse")
    assert (repr(a), repr(b), repr(c)) == ("<Symbol a>", "<Symbol b>", "<Symbol c>")
    shape = (2, 2)
    b_exec = b.simple_bind(ctx=mx.cpu(), b=shape)
    c_exec = c.simple_bind(ctx=mx.cpu(), c=shape)
    b_exec.forward()
    c_exec.forward()
    assert repr(b_exec.outputs) == "[\n<CSRNDArray 2x2 @cpu(0)>]"
    assert repr(c_exec.outputs) == "[\n<RowSparseNDArray 2x2 @cpu(0)>]"
    assert b_exec.outputs[0].stype == "csr" and c_exec.outputs[0].stype == "row_sparse"
    np.testing.assert_array_equal(b_exec.outputs[0].asnumpy(), np.zeros(shape))

    b_exec.arg_dict["b"][:] = mx.nd.ones(shape).tostype("csr")
    b_exec.forward()
    eval_b = b_exec.outputs[0]
    assert repr(eval_b) == "\n<CSRNDArray 2x2 @cpu(0)>"
    assert eval_b.stype == "csr"
    assert eval_b.asnumpy().dtype == np.float32
    np.testing.assert_array_equal(eval_b.asnumpy(), np.ones(shape, dtype=np.float32))


def test_composition_and_storage_type_inference():
    a = mx.sym.Variable("a")
    b = mx.sym.Variable("b", stype="csr")
    c = mx.sym.Variable("c", stype="row_sparse")
    d = mx.sym.elemwise_add(a, a)
    e = mx.sym.sparse.negative(b)
    f = mx.sym.sparse.elemwise_add(c, c)
    assert repr(d).startswith("<Symbol elemwise_add") and repr(e).startswith("<Symbol negative")
    shape = (2, 2)
    add_exec = mx.sym.Group([d, e, f]).simple_bind(ctx=mx.cpu(), a=shape, b=shape, c=shape)
    add_exec.forward()
    dense_add, csr_add, rsp_add = add_exec.outputs
    assert {"dense_add.stype": dense_add.stype, "csr_add.stype": csr_add.stype, "rsp_add.stype": rsp_add.stype} == \
        {"csr_add.stype": "csr", "dense_add.stype": "default", "rsp_add.stype": "row_sparse"}


def test_storage_type_fallback_values_and_warning():
    a = mx.sym.Variable("a")
    b = mx.sym.Variable("b", stype="csr")
    c = mx.sym.Variable("c", stype="row_sparse")
    shape = (2, 2)
    csr_log = mx.sym.log(a)
    csr_rsp_add = mx.sym.elemwise_add(b, c)
    fallback_exec = mx.sym.Group([csr_rsp_add, csr_log]).simple_bind(ctx=mx.cpu(), a=shape, b=shape, c=shape)
    with pytest.warns(StorageFallbackWarning, match=r"elemwise_add.*\(csr, row_sparse\).*\(default\)"):
        fallback_exec.forward()
    fallback_add, fallback_log = fallback_exec.outputs
    assert fallback_add.stype == "default" and fallback_log.stype == "default"
    np.testing.assert_array_equal(fallback_add.asnumpy(), np.zeros(shape))
    np.testing.assert_array_equal(fallback_log.asnumpy(), np.full(shape, -np.inf))
    assert repr(fallback_add) == "\n[[0. 0.]\n [0. 0.]]\n<NDArray 2x2 @cpu(0)>"
    assert repr(fallback_log) == "\n[[-inf -inf]\n [-inf -inf]]\n<NDArray 2x2 @cpu(0)>"
    with warnings.catch_warnings():
        warnings.simplefilter("error", StorageFallbackWarning)
        fallback_exec.forward()  # once per node: the second forward is silent


def _seed_softmax_network():
    data = mx.sym.var("data", stype="csr", shape=(32, 10000))
    weight = mx.sym.var("weight", stype="row_sparse", shape=(10000, 2))
    bias = mx.symbol.Variable("bias", shape=(2,))
    dot = mx.symbol.sparse.dot(data, weight)
    pred = mx.symbol.broadcast_add(dot, bias)
    y = mx.symbol.Variable("label")
    return mx.symbol.SoftmaxOutput(data=pred, label=y, name="output")


EXPECTED_DOT_BLOCK = [
    "node 2 dot: sparse",
    "    input 0: csr (32, 10000)",
    "    input 1: row_sparse (10000, 2)",
    "    output 0: default (32, 2)",
]


@pytest.mark.parametrize("env_var", ["SPARSETRAIN_INFER_STORAGE_TYPE_VERBOSE_LOGGING",
                                     "MXNET_INFER_STORAGE_TYPE_VERBOSE_LOGGING"])
def test_verbose_storage_type_log(env_var, monkeypatch, caplog):
    monkeypatch.delenv("SPARSETRAIN_INFER_STORAGE_TYPE_VERBOSE_LOGGING", raising=False)
    monkeypatch.delenv("MXNET_INFER_STORAGE_TYPE_VERBOSE_LOGGING", raising=False)
    monkeypatch.setenv(env_var, "1")
    output = _seed_softmax_network()
    caplog.set_level(logging.INFO, logger="sparsetrain.stypes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StorageFallbackWarning)
        executor = output.simple_bind(ctx=mx.cpu())
    lines = [r.getMessage() for r in caplog.records if r.name == "sparsetrain.stypes"]
    start = lines.index("node 2 dot: sparse")
    assert lines[start:start + 4] == EXPECTED_DOT_BLOCK
    headers = [line for line in lines if line.startswith("node ")]
    # forward nodes in topological order, then the backward graph
    assert headers[:3] == ["node 2 dot: sparse", "node 4 broadcast_add: dense", "node 6 SoftmaxOutput: dense"]
    assert any("_backward_SoftmaxOutput" in h for h in headers[3:])
    i = lines.index("node 6 SoftmaxOutput: dense")
    assert lines[i + 2] == "    input 1: default (32,)"  # label shape inferred from the data
    # the weight gradient of dot(csr, row_sparse) is row_sparse
    grad_dot = [k for k, line in enumerate(lines) if line.startswith("node ") and " dot: sparse" in line][1:]
    assert any(lines[k + 3] == "    output 0: row_sparse (10000, 2)" for k in grad_dot)
    assert executor.arg_dict["label"].shape == (32,)


def test_no_verbose_log_by_default(monkeypatch, caplog):
    monkeypatch.delenv("SPARSETRAIN_INFER_STORAGE_TYPE_VERBOSE_LOGGING", raising=False)
    monkeypatch.delenv("MXNET_INFER_STORAGE_TYPE_VERBOSE_LOGGING", raising=False)
    caplog.set_level(logging.INFO, logger="sparsetrain.stypes")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StorageFallbackWarning)
        _seed_softmax_network().simple_bind(ctx=mx.cpu())
    assert not [r for r in caplog.records if r.name == "sparsetrain.stypes"]
