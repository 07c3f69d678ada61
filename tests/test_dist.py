"""Distributed training on a local Ray (2 CPUs): parameter servers, workers, faults."""
import json
import pathlib

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import sparsetrain as mx  # noqa: E402
from sparsetrain import kvstore  # noqa: E402
from sparsetrain.config import load_config  # noqa: E402
from sparsetrain.dist import train_distributed  # noqa: E402
from sparsetrain.dist.driver import ActorFailure  # noqa: E402
from sparsetrain.module import load_params  # noqa: E402

LINREG = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml")
SYNC = ["train.kvstore=dist_sync", "data.batch_size=10", "train.epochs=2", "optimizer.learning_rate=0.5"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=200 * 2**20, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sync")
    cfg = load_config(LINREG, SYNC)
    return cfg, train_distributed(cfg, output_dir=str(out), workers=2, servers=2)


def _reference(cfg, num_workers, epochs):
    """One process, one optimizer, batch i = rows of batch i of every part, concatenated."""
    from sparsetrain.config import make_optimizer
    from sparsetrain.io import LibSVMIter
    from sparsetrain.ndarray.sparse import csr_matrix
    import scipy.sparse as sp

    bs = cfg.data.batch_size
    parts = []
    for r in range(num_workers):
        it = LibSVMIter(cfg.train_files()[0], (cfg.num_features,), batch_size=bs, num_parts=num_workers, part_index=r,
                        data_name="data", label_name="label", last_batch_handle="discard")
        parts.append([(b.data[0].asscipy(), b.label[0].asnumpy()) for b in it])
    steps = max(len(p) for p in parts)
    batches = []
    for i in range(steps):
        here = [p[i] for p in parts if i < len(p)]
        batches.append((mx.io.DataBatch([csr_matrix(sp.vstack([x for x, _ in here], format="csr"))],
                                        [mx.nd.array(np.concatenate([y for _, y in here]))]),
                        [len(y) for _, y in here]))
    mx.random.seed(cfg.train.seed)
    mod = mx.mod.Module(cfg.build_symbol(), data_names=["data"], label_names=["label"])
    it = LibSVMIter(cfg.train_files()[0], (cfg.num_features,), batch_size=bs * num_workers, data_name="data",
                    label_name="label")
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(initializer=cfg.initializer())
    opt = make_optimizer(cfg)
    opt.rescale_grad = 1.0 / (bs * num_workers)
    mod.init_optimizer(optimizer=opt)
    metric = mx.metric.create("mse")
    history = []
    for _ in range(epochs):
        metric.reset()
        for b, sizes in batches:
            mod.forward(b, is_train=True)
            # each worker's metric sees its own part of the combined batch (MSE is a mean per batch)
            out, lab = mod.get_outputs()[0].asnumpy(), b.label[0].asnumpy()
            for lo, hi in zip(np.cumsum([0] + sizes[:-1]), np.cumsum(sizes)):
                metric.update([mx.nd.array(lab[lo:hi])], [mx.nd.array(out[lo:hi])])
            mod.backward()
            mod.update()
        history.append(metric.get()[1])
    return mod.get_params()[0], history


def test_dist_sync_two_workers_equals_one_process_with_the_combined_batch(sync_run):
    cfg, result = sync_run
    want, history = _reference(cfg, 2, 2)
    got, _ = load_params(result.checkpoint)
    for name in want:
        np.testing.assert_allclose(got[name].asnumpy(), want[name].asnumpy(), rtol=1e-4, atol=1e-4)
    assert [r["mse"] for r in result.history] == pytest.approx(history, rel=1e-4)
    lines = [json.loads(x) for x in (pathlib.Path(result.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1] and lines[0]["workers"] == 2 and lines[0]["bytes_per_step"] > 0


def test_dist_checkpoint_is_an_ordinary_checkpoint(sync_run):
    from sparsetrain.trainer import load_trained

    cfg, result = sync_run
    model = load_trained(result.output_dir)
    assert model.epoch == 2
    mse = model.evaluate(cfg.train_files()[0], ["mse"])["mse"]
    assert np.isfinite(mse) and mse < result.history[0]["mse"]
    # the optimizer states round-trip into a single-process Module
    mod = mx.mod.Module.load(str(pathlib.Path(result.output_dir) / "checkpoints" / "model"), 2,
                             load_optimizer_states=True, data_names=["data"], label_names=["label"])
    assert mod._preload_opt_states


def test_dist_async_converges_on_the_seed_regression(tmp_path):
    # the seed's own settings: batch 1, SGD lr 0.05 momentum 0.9, 10 epochs; two workers push
    # without waiting for each other (the order of updates varies from run to run)
    from sparsetrain.trainer import Reporter

    class Progress(Reporter):
        wants_batches = True
        seen: list = []

        def batch_end(self, samples_done):
            self.seen.append(samples_done)

    cfg = load_config(LINREG, ["train.kvstore=dist_async"])
    reporter = Progress()
    result = train_distributed(cfg, output_dir=str(tmp_path), workers=2, servers=1, reporter=reporter)
    assert result.history[-1]["mse"] < 1, [r["mse"] for r in result.history]
    # the driver polled both workers' progress while the epochs ran: counts across the workers
    assert reporter.seen and max(reporter.seen) <= 1000 and any(s > 0 for s in reporter.seen)


def test_row_sparse_pull_returns_exactly_the_rows_and_push_touches_only_pushed_rows():
    kv = kvstore.create("dist_sync", num_servers=2)
    try:
        assert kv.type == "dist_sync" and kv.rank == 0 and kv.num_workers == 1
        w = np.arange(20, dtype=np.float32).reshape(10, 2)
        kv.init(3, mx.nd.array(w).tostype("row_sparse"))
        kv.init(4, mx.nd.array(np.ones(2, np.float32)))
        out = mx.nd.sparse.zeros("row_sparse", (10, 2))
        kv.row_sparse_pull(3, out=out, row_ids=mx.nd.array([7, 1, 3, 1, 9]))
        np.testing.assert_array_equal(out.indices.asnumpy(), [1, 3, 7, 9])
        np.testing.assert_array_equal(out.data.asnumpy(), w[[1, 3, 7, 9]])
        kv.set_optimizer(mx.optimizer.SGD(learning_rate=1.0, momentum=0.5, wd=0.1))
        g = mx.nd.sparse.row_sparse_array((np.full((2, 2), 0.5, np.float32), np.array([2, 8])), shape=(10, 2))
        kv.push(3, g)
        full = mx.nd.sparse.zeros("row_sparse", (10, 2))
        kv.row_sparse_pull(3, out=full, row_ids=np.arange(10))
        after = full.data.asnumpy()
        untouched = [r for r in range(10) if r not in (2, 8)]
        np.testing.assert_array_equal(after[untouched], w[untouched])  # wd and momentum skipped them too
        np.testing.assert_allclose(after[[2, 8]], w[[2, 8]] - (0.5 + 0.1 * w[[2, 8]]), rtol=1e-6)
        dense = mx.nd.zeros((2,))
        kv.pull(4, out=dense)
        np.testing.assert_array_equal(dense.asnumpy(), [1, 1])
        values, states, _ = kv.gather()
        np.testing.assert_array_equal(values[3], after)
        assert states[3].shape == (10, 2) and not states[3][untouched].any()
    finally:
        kv.close()


def test_a_dead_worker_fails_fast_and_restarts_recover_the_same_result(sync_run, tmp_path):
    cfg, clean = sync_run
    fault = {"worker": 1, "epoch": 1, "batch": 5}
    with pytest.raises(ActorFailure, match=r"worker 1 died.*last complete checkpoint is .*model-0001\.params"):
        train_distributed(cfg, output_dir=str(tmp_path / "fail"), workers=2, servers=2, _fault=fault)
    state = json.loads((tmp_path / "fail" / "checkpoint.json").read_text())
    assert state["epoch"] == 1 and not (tmp_path / "fail" / "checkpoints" / "model-0002.params").exists()
    result = train_distributed(cfg, output_dir=str(tmp_path / "ok"), workers=2, servers=2, max_restarts=1,
                               _fault=fault)
    assert result.restarts == 1
    assert [r["epoch"] for r in result.history] == [0, 1]
    assert result.history[-1]["mse"] == pytest.approx(clean.history[-1]["mse"], rel=1e-5)
    a, _ = load_params(result.checkpoint)
    b, _ = load_params(clean.checkpoint)
    for name in a:
        np.testing.assert_allclose(a[name].asnumpy(), b[name].asnumpy(), rtol=1e-5, atol=1e-6)


def test_a_dead_server_fails_fast_and_restarts_recover(sync_run, tmp_path):
    cfg, clean = sync_run
    fault = {"worker": 0, "epoch": 1, "batch": 3, "kill": "server"}
    with pytest.raises(ActorFailure, match=r"parameter server died.*last complete checkpoint is .*model-0001"):
        train_distributed(cfg, output_dir=str(tmp_path / "fail"), workers=2, servers=2, _fault=fault)
    assert not (tmp_path / "fail" / "checkpoints" / "model-0002.params").exists()
    result = train_distributed(cfg, output_dir=str(tmp_path / "ok"), workers=2, servers=2, max_restarts=2,
                               _fault=fault)
    assert result.restarts == 1
    assert result.history[-1]["mse"] == pytest.approx(clean.history[-1]["mse"], rel=1e-5)


def test_compiled_and_graph_workers_train_the_same_model(sync_run, tmp_path):
    cfg, compiled = sync_run
    assert compiled.history[0]["engine"] == "compiled"
    graph = train_distributed(cfg, output_dir=str(tmp_path), workers=2, servers=2, engine="graph")
    assert graph.history[0]["engine"] == "graph"
    a, _ = load_params(compiled.checkpoint)
    b, _ = load_params(graph.checkpoint)
    for name in a:
        np.testing.assert_allclose(a[name].asnumpy(), b[name].asnumpy(), rtol=1e-4, atol=1e-5)
    assert [r["mse"] for r in graph.history] == pytest.approx([r["mse"] for r in compiled.history], rel=1e-4)


def test_resume_a_distributed_run_continues_exactly_from_its_checkpoint(tmp_path):
    """Weights, optimizer states, and the servers' step counts: Adam's bias correction and the
    scheduler depend on them, so a resumed run continues them (they are saved in the .states file)."""
    from sparsetrain import optimizer_states

    adam = ["optimizer={name: adam, learning_rate: 0.05, lr_scheduler: {factor: {step: 20, factor: 0.5}}}"]
    base = ["train.kvstore=dist_sync", "data.batch_size=50"] + adam
    clean = train_distributed(load_config(LINREG, base + ["train.epochs=2"]), output_dir=str(tmp_path / "clean"),
                              workers=2, servers=2)
    train_distributed(load_config(LINREG, base + ["train.epochs=1"]), output_dir=str(tmp_path / "r"),
                      workers=2, servers=2)
    states = (tmp_path / "r" / "checkpoints" / "model-0001.states").read_bytes()
    progress = optimizer_states.loads(states)[1]
    assert progress["num_update"] == clean.history[0]["steps"] and progress["lr_scheduler"] is not None
    resumed = train_distributed(load_config(LINREG, base + ["train.epochs=2"]), output_dir=str(tmp_path / "r"),
                                workers=2, servers=2, resume=True)
    assert resumed.resumed_from == 1 and [r["epoch"] for r in resumed.history] == [0, 1]
    assert resumed.history[-1]["mse"] == pytest.approx(clean.history[-1]["mse"], rel=1e-6)


def test_a_distributed_run_can_be_continued_on_one_machine(tmp_path):
    from sparsetrain.trainer import train

    first = load_config(LINREG, SYNC[:-2] + ["train.epochs=1", SYNC[-1]])
    train_distributed(first, output_dir=str(tmp_path), workers=2, servers=2)
    local = load_config(LINREG, ["data.batch_size=10", "train.epochs=2", "optimizer.learning_rate=0.5"])
    result = train(local, output_dir=str(tmp_path), resume=True)
    assert result.resumed_from == 1 and [r["epoch"] for r in result.history] == [0, 1]
    assert result.history[1]["mse"] < result.history[0]["mse"]


def test_non_finite_loss_on_a_worker_stops_the_run(tmp_path):
    from sparsetrain.base import NonFiniteError

    cfg = load_config(LINREG, ["train.kvstore=dist_async", "data.batch_size=10", "train.epochs=3",
                               "optimizer.learning_rate=1e6"])
    with pytest.raises(NonFiniteError, match=r"worker \d: the loss became non-finite at epoch \d batch \d+"):
        train_distributed(cfg, output_dir=str(tmp_path), workers=2, servers=1)


def test_module_trains_through_a_dist_kvstore_like_through_the_local_updater():
    """Module.init_optimizer(kvstore=...) + Module.prepare: the MXNet user-code path."""
    X = mx.test_utils.rand_ndarray((200, 50), "csr", density=0.05)
    y = mx.nd.array(X.asnumpy() @ np.arange(1, 51, dtype=np.float32))
    data = mx.sym.var("data", stype="csr")
    w = mx.sym.var("weight", stype="row_sparse", shape=(50, 1))
    net = mx.sym.LinearRegressionOutput(mx.sym.sparse.dot(data, w), mx.sym.var("label"), name="out")

    def train(kv):
        mx.random.seed(3)
        it = mx.io.NDArrayIter(X, y, batch_size=20, label_name="label")
        mod = mx.mod.Module(net, data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params(mx.init.Normal(0.01))
        mod.init_optimizer(kvstore=kv, optimizer=mx.optimizer.SGD(learning_rate=0.1, momentum=0.9,
                                                                   rescale_grad=1 / 20))
        for _ in range(3):
            it.reset()
            for batch in it:
                mod.prepare(batch)
                mod.forward(batch, is_train=True)
                mod.backward()
                mod.update()
        return mod.get_params()[0]["weight"].asnumpy()

    kv = kvstore.create("dist_sync", num_servers=2)
    try:
        np.testing.assert_allclose(train(kv), train("local"), rtol=1e-5, atol=1e-6)
    finally:
        kv.close()


def test_cli_fit_with_workers_writes_one_metrics_file_and_a_checkpoint(tmp_path):
    from click.testing import CliRunner

    from sparsetrain.cli import main

    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["fit", LINREG, "--workers", "2", "--servers", "2", "--epochs", "2", "-q",
                                    "--set", "data.batch_size=10", "--set", "optimizer.learning_rate=0.5",
                                    "--output", str(out)])
    assert res.exit_code == 1, res.output  # the 2-epoch run misses the config's target (mse < 1)
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1] and lines[0]["kvstore"] == "dist_sync"
    assert "epoch 1  mse" in res.output and "workers" not in res.output.split("epoch 1")[1]
    assert (out / "checkpoints" / "model-0002.params").exists()


def test_joining_a_cluster_with_too_few_cpus_for_the_workers_fails_at_once(tmp_path):
    from sparsetrain.base import SparseTrainError

    cfg = load_config(LINREG, SYNC)
    # the fixture's Ray has 2 CPUs; on a cluster (--address) each worker reserves one
    with pytest.raises(SparseTrainError, match=r"--workers 3: the Ray cluster has 2 CPUs"):
        train_distributed(cfg, output_dir=str(tmp_path), workers=3, servers=1, address="auto")
    lines = (tmp_path / "metrics.jsonl")
    assert not lines.exists() or lines.read_text() == ""


def test_early_stopping_and_the_best_epoch_on_a_distributed_run(tmp_path):
    """The loop is the one of a single process: an eval set with negated labels gets worse as the model
    learns, so epoch 0 is the best, training stops after one more epoch and checkpoint 1 is kept."""
    from sparsetrain import io as st_io

    X, y = st_io.load_libsvm(LINREG.replace("configs/linreg.yaml", "data/linreg.libsvm"))
    st_io.dump_libsvm(X, -np.asarray(y), str(tmp_path / "neg.libsvm"), zero_based=False)
    cfg = load_config(LINREG, SYNC[:-2] + ["train.epochs=5", SYNC[-1], f"data.eval={tmp_path / 'neg.libsvm'}",
                                           "train.keep_checkpoints=1", "train.target={}",
                                           "train.early_stopping={metric: eval_mse, patience: 1}"])
    result = train_distributed(cfg, output_dir=str(tmp_path / "run"), workers=2, servers=1)
    assert [r["epoch"] for r in result.history] == [0, 1] and result.stopped_early
    assert result.history[1]["eval_mse"] > result.history[0]["eval_mse"]
    state = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert state["best"] == {"epoch": 1, "metric": "eval_mse", "value": result.history[0]["eval_mse"]}
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.params")) == [
        "model-0001.params", "model-0002.params"]


def test_a_distributed_run_warm_starts_from_a_trained_run(sync_run, tmp_path):
    cfg, clean = sync_run
    one = load_config(LINREG, SYNC[:-2] + ["train.epochs=1", SYNC[-1]])
    warm = train_distributed(one, output_dir=str(tmp_path), workers=2, servers=2, init_from=clean.output_dir)
    assert warm.history[0]["mse"] < clean.history[-1]["mse"] < clean.history[0]["mse"]
