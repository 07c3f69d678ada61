"""A diverging run stops at the same epoch and batch on every engine, with the batch named."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest

import sparsetrain as st
from sparsetrain.base import NonFiniteError
from sparsetrain.engines.base import check_metric

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _diverge(engine, lr=2.0, epochs=6, batch_size=1):
    """The seed model (linreg.yaml) with a learning rate that makes it diverge; the NonFiniteError."""
    from sparsetrain import trainer
    from sparsetrain.config import load_config, make_optimizer

    cfg = load_config(str(ROOT / "configs" / "linreg.yaml"),
                      [f"optimizer.learning_rate={lr}", f"data.batch_size={batch_size}"])
    it, _ = trainer.make_iter(cfg, [cfg.resolve(p) for p in cfg.data.train], for_training=True)
    st.random.seed(0)
    mod = st.module.Module(cfg.build_symbol(), data_names=[cfg.data_name], label_names=[cfg.label_name])
    mod.bind(it.provide_data, it.provide_label, for_training=True)
    mod.init_params(initializer=cfg.initializer())
    mod.init_optimizer(kvstore="local", optimizer=make_optimizer(cfg))
    metric = trainer.make_metric(["mse"])
    for epoch in range(epochs):
        metric.reset()
        try:
            mod.run_epoch(it, metric, engine=engine, epoch=epoch)
        except NonFiniteError as e:
            return e, mod
    raise AssertionError(f"{engine}: the run did not diverge")


@pytest.mark.parametrize("lr,batch_size", [(2.0, 1), (40.0, 8)])
def test_engines_stop_at_the_same_epoch_and_batch(lr, batch_size):
    """Was epoch 1 batch 959 (compiled: its float32 mse overflowed) vs epoch 4 batch 91 (graph)."""
    compiled, cmod = _diverge("compiled", lr, batch_size=batch_size)
    graph, gmod = _diverge("graph", lr, batch_size=batch_size)
    assert cmod.engine_choice[0] == "compiled" and gmod.engine_choice[0] == "graph"
    assert (compiled.epoch, compiled.batch) == (graph.epoch, graph.batch)
    assert f"epoch {graph.epoch} batch {graph.batch}" in str(compiled)
    assert f"epoch {graph.epoch} batch {graph.batch}" in str(graph)
    for name, w in gmod.get_params()[0].items():  # the failing batch was applied by neither engine
        np.testing.assert_allclose(cmod.get_params()[0][name].asnumpy(), w.asnumpy(), rtol=1e-4)


def test_a_metric_overflow_names_epoch_and_batch():
    """A float64 overflow in a metric (finite float64 predictions, d² > 1.8e308) stops that batch."""
    metric = st.metric.create(["mse", "mae"])
    metric.update([np.array([0.0])], [np.array([1e100])])
    check_metric(metric, 3, 7)
    metric.update([np.array([0.0])], [np.array([1e200])])
    with pytest.raises(NonFiniteError, match=r"epoch 3 batch 8 \(metric mse is inf\)") as err:
        check_metric(metric, 3, 8)
    assert (err.value.epoch, err.value.batch) == (3, 8)
    # the config keys to change, as every other error names its key
    assert str(err.value).endswith("(optimizer.learning_rate) or clip gradients (optimizer.clip_gradient)")


def test_graph_engine_stops_on_a_metric_overflow_before_the_update():
    """float64 weights: the prediction stays finite while mse overflows; the graph engine used to
    go on and report only 'metric mse became non-finite in epoch N' at the end of the epoch."""
    sym = st.sym
    data = sym.Variable("data", stype="csr")
    w = sym.Variable("weight", stype="row_sparse", shape=(4, 1), dtype=np.float64)
    out = sym.LinearRegressionOutput(sym.sparse.dot(data, w), sym.Variable("label"), name="out")
    X = st.nd.sparse.csr_matrix(np.eye(4)[[0, 1, 2, 3]].astype(np.float64))
    y = np.array([0.0, 0.0, 0.0, 0.0])
    it = st.io.NDArrayIter(X, y, batch_size=1, label_name="label")
    mod = st.module.Module(out, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(arg_params={"weight": st.nd.array(np.array([[1.0], [1e200], [1.0], [1.0]]), dtype=np.float64)})
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.0})
    with pytest.raises(NonFiniteError, match=r"epoch 0 batch 1 \(metric mse is inf\)"):
        mod.run_epoch(it, st.metric.create("mse"), engine="graph")


@pytest.mark.parametrize("checkpoint", [None, "runs/x/checkpoints/model-0001.params"])
def test_a_non_finite_epoch_metric_says_what_checkpoint_is_left(checkpoint):
    """The epoch loop's messages say the same about the checkpoint (trainer.loop.checkpoint_hint); this one
    said nothing when no checkpoint was written, where the loss's said so."""
    from types import SimpleNamespace

    from sparsetrain.config import load_config
    from sparsetrain.trainer import Reporter
    from sparsetrain.trainer.loop import run_epochs

    cfg = load_config(str(ROOT / "configs" / "linreg.yaml"), ["train.epochs=1", "train.target={}"])
    run = SimpleNamespace(start_epoch=0, checkpoint=checkpoint, best=None)
    executor = SimpleNamespace(epoch_rows=1, batches=1, run_epoch=lambda epoch, reporter: {
        "epoch": epoch, "samples": 1, "seconds": 0.0, "mse": float("nan")})
    with pytest.raises(NonFiniteError) as err:
        run_epochs(cfg, run, executor, Reporter(), [])
    left = f"the last complete checkpoint is {checkpoint}" if checkpoint else "no checkpoint was written"
    assert str(err.value) == f"metric mse became non-finite in epoch 0; {left}"
