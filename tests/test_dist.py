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
LOGREG = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "logreg.yaml")
SYNC = ["train.kvstore=dist_sync", "data.batch_size=10", "train.sync_every=6", "train.epochs=2",
        "optimizer.learning_rate=0.5"]
ADAM = SYNC[:-1] + ["optimizer={name: adam, learning_rate: 0.05, lr_scheduler: {factor: {step: 20, factor: 0.5}}}"]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    from sparsetrain.dist.kvstore import ensure_ray

    started = ensure_ray(num_cpus=2)  # as a run starts its local Ray (2 CPUs, the product's settings)
    yield
    if started:
        import gc

        gc.collect()  # arrays still holding Ray's buffers let go of them while Ray is up (not at a later test)
        ray.shutdown()


@pytest.fixture(scope="module")
def sync_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("sync")
    cfg = load_config(LINREG, SYNC)
    return cfg, train_distributed(cfg, output_dir=str(out), workers=2, servers=2)


def _params(result) -> dict:
    """``{name: numpy value}`` of a run's last checkpoint."""
    return {name: v.asnumpy() for name, v in load_params(result.checkpoint)[0].items()}


def _block_reference(cfg, num_workers, epochs, per_block):
    """What dist_sync trains, written with one process's Module (graph engine, batch by batch).

    Worker r's batches are those of ``LibSVMIter(num_parts=N, part_index=r)``, cut into blocks of
    ``per_block``. Round k: every worker that has a k-th block trains it, batch after batch, with
    the configured optimizer (``rescale_grad`` 1/batch_size), starting from the round's parameters,
    optimizer states and update counts. Then each row of the row_sparse weight moves by the sum of the workers'
    changes (no row is touched often enough here to have its saturation measured), the dense bias by their
    sum times ``phi(s, k) = (1 - s**k) / ((1 - s) k)`` (``s``: the mean of the workers' ``(second half-block's
    change / first's)**2``; the mean at s = 0), the
    momentum state by the mean change of the workers whose block had that column (every worker's for the bias), and
    the update counts by all the round's batches."""
    from sparsetrain.config import make_optimizer
    from sparsetrain.io import LibSVMIter
    from sparsetrain.optimizer_buffers import state_buffer

    bs = cfg.data.batch_size
    parts = []
    for r in range(num_workers):
        it = LibSVMIter(cfg.train_files()[0], (cfg.num_features,), batch_size=bs, num_parts=num_workers, part_index=r,
                        data_name="data", label_name="label", last_batch_handle="discard")
        batches = list(it)
        parts.append([batches[i:i + per_block] for i in range(0, len(batches), per_block)])
    mx.random.seed(cfg.train.seed)
    mod = mx.mod.Module(cfg.build_symbol(), data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(initializer=cfg.initializer())
    mod.init_optimizer(optimizer=make_optimizer(cfg))
    updater = mod.view().updater
    names = list(mod.view().param_names)
    params = {n: v.asnumpy() for n, v in mod.get_params()[0].items()}
    states = {i: np.zeros_like(params[n]) for i, n in enumerate(names)}  # SGD momentum
    count = 0
    metric = mx.metric.create("mse")
    history = []
    for _ in range(epochs):
        metric.reset()
        for k in range(max(len(p) for p in parts)):
            changes = []
            for part in parts:
                if k >= len(part):
                    continue
                mod.set_params({n: mx.nd.array(v) for n, v in params.items()}, {})
                for i, n in enumerate(names):
                    updater.states[i] = mx.nd.array(states[i])
                    updater.optimizer._index_update_count[i] = count
                for j, batch in enumerate(part[k]):
                    if j == len(part[k]) // 2:
                        mid = mod.get_params()[0]["bias"].asnumpy()
                    mod.forward(batch, is_train=True)
                    metric.update(batch.label, mod.get_outputs())
                    mod.backward()
                    mod.update()
                cols = np.unique(np.concatenate([b.data[0].asscipy().indices for b in part[k]]))
                now = {n: v.asnumpy() for n, v in mod.get_params()[0].items()}
                # the bias's saturation: how much less its second half-block moved it than its first
                d1, d2 = mid - params["bias"], now["bias"] - mid
                s = np.clip(np.where(d1 != 0, d2 / np.where(d1 != 0, d1, 1), 1), 0, 1) ** 2
                if len(part[k]) < 2:  # a block of one batch measures nothing: taken as saturated
                    s = np.zeros_like(s)
                changes.append((cols, {n: now[n] - params[n] for n in names},
                                {i: state_buffer(updater.states[i]).reshape(states[i].shape) - states[i]
                                 for i in range(len(names))}, s))
            touched = np.zeros(params["weight"].shape[0])
            for cols, _, _, _ in changes:
                touched[cols] += 1
            s = sum(c[3] for c in changes) / len(changes)
            c = len(changes)
            phi = np.where(s < 1, (1 - s ** c) / np.where(s < 1, (1 - s) * c, 1), 1)
            for i, n in enumerate(names):
                dw = sum(c[1][n] for c in changes)
                ds = sum(c[2][i] for c in changes)
                div = touched[:, None] if n == "weight" else len(changes)
                with np.errstate(invalid="ignore", divide="ignore"):
                    params[n] = params[n] + (dw if n == "weight" else dw * phi).astype(np.float32)
                    states[i] = states[i] + np.where(div > 0, ds / np.maximum(div, 1), 0).astype(np.float32)
            count += sum(len(p[k]) for p in parts if k < len(p))
        history.append(metric.get()[1])
    return params, history


def test_dist_sync_two_workers_equals_the_round_of_blocks_trained_in_one_process(sync_run):
    cfg, result = sync_run
    want, history = _block_reference(cfg, 2, 2, cfg.train.sync_every)
    got, _ = load_params(result.checkpoint)
    for name in want:
        np.testing.assert_allclose(got[name].asnumpy(), want[name], rtol=1e-5, atol=1e-5)
    assert [r["mse"] for r in result.history] == pytest.approx(history, rel=1e-5)
    lines = [json.loads(x) for x in (pathlib.Path(result.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1] and lines[0]["workers"] == 2 and lines[0]["bytes_per_step"] > 0
    assert lines[0]["worker_cpu_seconds"] > 0 and lines[0]["server_cpu_seconds"] > 0
    # the distributed record's counters and timings are not metrics (the epoch line, the summary, the plot)
    from sparsetrain.trainer import record_metrics

    assert list(record_metrics(lines[0])) == ["mse"]


def test_a_second_run_on_the_same_ray_reuses_the_actors_and_trains_the_same(sync_run, tmp_path):
    """The module's Ray outlives the runs: a run that ended well leaves its actors idle, and the next run
    re-initializes them (the same processes) instead of starting new ones: the same result as ``sync_run``'s."""
    import os

    from sparsetrain.dist.driver import _Idle

    def idle_worker_pids():
        idle = _Idle.of(ray)
        workers = idle.take("workers", 1000)
        idle.give("workers", workers)
        return ray.get([w.__ray_call__.remote(lambda self: os.getpid()) for w in workers])

    cfg, first = sync_run
    before = idle_worker_pids()
    assert len(before) >= 2  # sync_run's workers at least
    again = train_distributed(cfg, output_dir=str(tmp_path), workers=2, servers=2)
    assert sorted(idle_worker_pids()) == sorted(before)  # two of them taken, given back after the run: no new ones
    a, b = _params(first), _params(again)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert [r["mse"] for r in again.history] == [r["mse"] for r in first.history]


def test_workers_that_keep_their_part_in_memory_train_as_workers_that_stream_it(sync_run, tmp_path):
    """``sync_run`` (data.cache auto: each worker keeps its part, cut into blocks, after the first epoch) against
    workers that parse their part again every epoch: the same parameters."""
    cfg, kept = sync_run
    streamed = train_distributed(load_config(LINREG, SYNC + ["data.cache=stream"]), output_dir=str(tmp_path),
                                 workers=2, servers=2)
    a, b = _params(kept), _params(streamed)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert [r["mse"] for r in kept.history] == [r["mse"] for r in streamed.history]


def test_float16_pushes_send_half_the_value_bytes_rounded_to_float16():
    kv = kvstore.create("dist_async", num_servers=2)
    try:
        kv.init(3, mx.nd.array(np.zeros((10, 2), np.float32)).tostype("row_sparse"))
        rows = np.array([1, 4, 8], dtype=np.int64)  # rows 1 and 4 on server 0, row 8 on server 1
        change = np.array([[0.1, -0.2], [1 / 3, 2.0], [1e-3, -5.0]], np.float32)
        sent = []
        for block, dtype in enumerate((None, np.float16)):
            kv.receive(kv.pull_block({3: rows}, block))  # the servers keep the rows they read for the block ...
            before = kv.bytes_pushed
            kv.receive(kv.push_block(block, {3: (rows, change, (), None)}, 1, dtype=dtype))
            sent.append(kv.bytes_pushed - before)
        assert sent == [change.nbytes, change.nbytes // 2]  # ... so its push carries the values only
        values, _, _ = kv.gather()
        np.testing.assert_array_equal(values[3][rows], change + change.astype(np.float16).astype(np.float32))
    finally:
        kv.close()


def test_float16_pushes_train_close_to_float32_pushes(sync_run, tmp_path):
    cfg, full = sync_run
    half = train_distributed(load_config(LINREG, SYNC + ["train.push_dtype=float16"]), output_dir=str(tmp_path),
                             workers=2, servers=2)
    a, b = _params(full), _params(half)
    for name, want in a.items():
        np.testing.assert_allclose(b[name], want, rtol=0, atol=5e-3 * np.abs(want).max())
        assert not np.array_equal(b[name], want)  # the pushes were rounded
    assert half.history[-1]["mse"] == pytest.approx(full.history[-1]["mse"], rel=0.01)
    # the same rows pushed: the row ids' bytes are equal, the values' (and momentum's) bytes halve
    assert half.history[-1]["bytes"] < full.history[-1]["bytes"]


@pytest.mark.parametrize("mode", ["dist_sync", "dist_async"])
def test_one_worker_trains_exactly_as_one_process(mode, tmp_path):
    """One worker, blocks of 7 batches, two servers: the single-process run (same batches, same optimizer
    and momentum states, same update counts), up to the float32 rounding of adding each block's change."""
    from sparsetrain.trainer import train

    over = ["data.batch_size=10", "train.epochs=2", "optimizer.learning_rate=0.5"]
    dist = train_distributed(load_config(LINREG, over + [f"train.kvstore={mode}", "train.sync_every=7"]),
                             output_dir=str(tmp_path / "d"), workers=1, servers=2)
    one = train(load_config(LINREG, over + ["train.threads=1"]), output_dir=str(tmp_path / "o"))
    a, _ = load_params(dist.checkpoint)
    b, _ = load_params(one.checkpoint)
    for name in a:
        np.testing.assert_allclose(a[name].asnumpy(), b[name].asnumpy(), rtol=1e-5, atol=2e-5)
    assert [r["mse"] for r in dist.history] == pytest.approx([r["mse"] for r in one.history], rel=1e-5)


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


def test_dist_async_converges_to_the_single_process_loss(tmp_path):
    """Two workers pushing blocks without waiting for each other (the order of updates varies from run
    to run) reach the loss of one process on the shipped binary data (logistic regression, SGD, 15 epochs: within
    0.6 % in two runs, and 30 epochs within 0.5 %)."""
    from sparsetrain.trainer import Reporter, load_trained, train

    class Progress(Reporter):
        wants_batches = True
        seen: list = []

        def batch_end(self, samples_done):
            self.seen.append(samples_done)

    over = ["optimizer={name: sgd, learning_rate: 2.0}", "data.shuffle=false", "train.epochs=15", "train.target={}",
            "data.eval=null"]
    reporter = Progress()
    dist = train_distributed(load_config(LOGREG, over + ["train.kvstore=dist_async"]), output_dir=str(tmp_path / "d"),
                             workers=2, servers=1, reporter=reporter)
    one = train(load_config(LOGREG, over + ["train.threads=1"]), output_dir=str(tmp_path / "o"))
    data = load_config(LOGREG).train_files()[0]
    got = load_trained(dist.output_dir).evaluate(data, ["log_loss"])["log_loss"]
    want = load_trained(one.output_dir).evaluate(data, ["log_loss"])["log_loss"]
    assert got == pytest.approx(want, rel=0.02)
    # the driver polled both workers' progress while the epochs ran: counts across the workers
    assert reporter.seen and max(reporter.seen) <= 2500 and any(s > 0 for s in reporter.seen)


def _zipf_config(path, kvstore):
    from benchmarks.dist import config_doc
    from sparsetrain.config import config_from_dict

    doc = config_doc(path, 20_000, 256, 0.25, 2, kvstore, cache="memory")
    doc["train"].update(threads=1, sync_every=39)
    return config_from_dict(doc)


@pytest.fixture(scope="module")
def zipf_data(tmp_path_factory):
    """The large benchmark's data scaled down (40k rows x 20k features, 23 zipf columns per row): its hottest
    columns are in almost every row, so every block brings them (and the bias) to where its data puts them.
    ``(path, final mse of one process)``."""
    from benchmarks.dist import final_mse
    from sparsetrain.io.synthetic import generate_libsvm
    from sparsetrain.trainer import train

    path = str(tmp_path_factory.mktemp("zipf") / "reg.libsvm")
    generate_libsvm(path, 40_000, 20_000, nnz_per_row=23, columns="zipf", zipf_a=1.2, target="random", seed=0)
    out = str(tmp_path_factory.mktemp("zipf-local"))
    train(_zipf_config(path, "local"), output_dir=out)
    return path, final_mse(out, path)


@pytest.mark.parametrize("mode", ["dist_async", "dist_sync"])
def test_two_workers_reach_the_single_process_loss_on_zipf_data(zipf_data, mode, tmp_path):
    """Blocks of 39 batches of 256 rows (10k rows, as the large benchmark's 31k) trained from the same (or stale)
    values: adding the two workers' changes of the rows each block saturates (the hottest columns, the bias)
    doubled their steps — dist_async ended at 2.4x the single-process mse, dist_sync 4 % above it."""
    from benchmarks.dist import final_mse

    path, want = zipf_data
    train_distributed(_zipf_config(path, mode), output_dir=str(tmp_path), workers=2, servers=1)
    assert final_mse(str(tmp_path), path) == pytest.approx(want, rel=0.02)


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


@pytest.fixture(scope="module")
def adam_run(tmp_path_factory):
    """2 epochs of dist_sync (2 workers, 2 servers, blocks of 6 batches) with Adam and a step scheduler: Adam's
    bias correction and the scheduler follow the servers' step counts, which a restart or a resume continues
    (they are saved in the .states file with the optimizer states)."""
    cfg = load_config(LINREG, ADAM)
    return cfg, train_distributed(cfg, output_dir=str(tmp_path_factory.mktemp("adam")), workers=2, servers=2)


def _assert_same_run(result, clean):
    assert [r["epoch"] for r in result.history] == [0, 1]
    assert [r["mse"] for r in result.history] == pytest.approx([r["mse"] for r in clean.history], rel=1e-6)
    a, _ = load_params(result.checkpoint)
    b, _ = load_params(clean.checkpoint)
    for name in a:
        np.testing.assert_allclose(a[name].asnumpy(), b[name].asnumpy(), rtol=1e-5, atol=1e-6)


def test_a_dead_worker_fails_fast_and_resume_continues_exactly_from_the_last_checkpoint(adam_run, tmp_path):
    """Worker 1 dies in epoch 1 (after pulling its first block's rows): the run fails with the last complete
    checkpoint (epoch 0's), whose states hold every worker's batches as steps; ``--resume`` ends at the
    uninterrupted run."""
    from sparsetrain import optimizer_states

    cfg, clean = adam_run
    fault = {"worker": 1, "epoch": 1, "batch": 5}
    with pytest.raises(ActorFailure, match=r"worker 1 died.*last complete checkpoint is .*model-0001\.params; "
                                           r"continue with --resume; --max-restarts N recovers automatically$"):
        train_distributed(cfg, output_dir=str(tmp_path), workers=2, servers=2, _fault=fault)
    state = json.loads((tmp_path / "checkpoint.json").read_text())
    assert state["epoch"] == 1 and not (tmp_path / "checkpoints" / "model-0002.params").exists()
    progress = optimizer_states.loads((tmp_path / "checkpoints" / "model-0001.states").read_bytes())[1]
    # every batch of every worker counts once, as in one process (the scheduler's steps)
    assert progress["num_update"] == clean.history[0]["batches"] and progress["lr_scheduler"] is not None
    resumed = train_distributed(cfg, output_dir=str(tmp_path), workers=2, servers=2, resume=True)
    assert resumed.resumed_from == 1 and resumed.restarts == 0
    _assert_same_run(resumed, clean)


def test_a_dead_server_fails_fast_and_restarts_recover_the_same_result(adam_run, tmp_path):
    cfg, clean = adam_run
    fault = {"worker": 0, "epoch": 1, "batch": 3, "kill": "server"}
    with pytest.raises(ActorFailure, match=r"parameter server died.*last complete checkpoint is .*model-0001"):
        train_distributed(cfg, output_dir=str(tmp_path / "fail"), workers=2, servers=2, _fault=fault)
    assert not (tmp_path / "fail" / "checkpoints" / "model-0002.params").exists()
    result = train_distributed(cfg, output_dir=str(tmp_path / "ok"), workers=2, servers=2, max_restarts=2,
                               _fault=fault)
    assert result.restarts == 1
    _assert_same_run(result, clean)


def test_compiled_and_graph_workers_train_the_same_model(sync_run, tmp_path):
    cfg, compiled = sync_run
    assert compiled.history[0]["engine"] == "compiled"
    graph = train_distributed(cfg, output_dir=str(tmp_path), workers=2, servers=1, engine="graph")
    assert graph.history[0]["engine"] == "graph"
    a, _ = load_params(compiled.checkpoint)
    b, _ = load_params(graph.checkpoint)
    for name in a:
        np.testing.assert_allclose(a[name].asnumpy(), b[name].asnumpy(), rtol=1e-4, atol=1e-5)
    assert [r["mse"] for r in graph.history] == pytest.approx([r["mse"] for r in compiled.history], rel=1e-4)


def test_a_distributed_run_can_be_continued_on_one_machine(sync_run, tmp_path):
    import shutil

    from sparsetrain.trainer import train

    _, dist = sync_run
    run = tmp_path / "run"
    shutil.copytree(dist.output_dir, run)  # the module's 2-epoch dist_sync run, continued here
    local = load_config(LINREG, ["data.batch_size=10", "train.epochs=3", "optimizer.learning_rate=0.5"])
    result = train(local, output_dir=str(run), resume=True)
    assert result.resumed_from == 2 and [r["epoch"] for r in result.history] == [0, 1, 2]
    assert result.history[2]["mse"] < result.history[1]["mse"]


def test_non_finite_loss_on_a_worker_stops_the_run(tmp_path):
    from sparsetrain.base import NonFiniteError

    cfg = load_config(LINREG, ["train.kvstore=dist_async", "data.batch_size=10", "train.epochs=1",
                               "optimizer.learning_rate=1e6"])  # the first block's loss is already inf
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
    res = CliRunner().invoke(main, ["fit", LINREG, "--workers", "2", "--servers", "2", "--epochs", "2",
                                    "--set", "data.batch_size=10", "--set", "optimizer.learning_rate=0.5",
                                    "--output", str(out)])
    assert res.exit_code == 1, res.output  # the 2-epoch run misses the config's target (mse < 1)
    # the header says how the run is distributed: 50 batches per worker, at least 8 blocks -> 6 batches
    assert "engine compiled, dist_sync, 2 workers, 2 servers, sync_every 6 batches" in res.output
    assert "workers' parts in memory after the first epoch" in res.output
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1] and lines[0]["kvstore"] == "dist_sync"
    epoch_line = next(x for x in res.output.splitlines() if x.startswith("epoch 1  mse"))
    assert "workers" not in epoch_line
    assert (out / "checkpoints" / "model-0002.params").exists()


def test_the_driver_resolves_sync_every_once_for_every_worker(tmp_path, monkeypatch):
    # train.sync_every: auto estimates the file's rows (a compressed file: its first chunk decompressed): the
    # driver does it once a run and the workers train with its number (they estimated it each, every restart)
    from click.testing import CliRunner

    from sparsetrain.cli import main
    from sparsetrain.dist import blocks

    calls = []

    def once(sync_every, batch_size, path, num_workers):
        calls.append((sync_every, batch_size, path, num_workers))
        return 7  # not auto's 6 (test above): what the workers train with is the driver's
    monkeypatch.setattr(blocks, "batches_per_block", once)
    res = CliRunner().invoke(main, ["fit", LINREG, "--workers", "2", "--epochs", "1", "--set", "data.batch_size=10",
                                    "--output", str(tmp_path / "run")])
    assert "dist_sync, 2 workers, 1 server, sync_every 7 batches" in res.output, res.output
    assert len(calls) == 1 and calls[0][:2] == ("auto", 10) and calls[0][2].endswith("linreg.libsvm") and calls[0][3] == 2


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
    warm = train_distributed(one, output_dir=str(tmp_path), workers=2, servers=1, init_from=clean.output_dir)
    assert warm.history[0]["mse"] < clean.history[-1]["mse"] < clean.history[0]["mse"]


@pytest.mark.parametrize("flags,overrides,message", [
    ([], ["data.num_features=120", "model.variables.weight.shape=[120, 1]"],
     "model-0002.params: parameter 'weight' has shape (100, 1), the model's is (120, 1)"),
    (["--init-states"], ["model.variables.weight.dtype=float64"],
     "model-0002.states: the optimizer states of parameter 'weight' are float32 (100, 1); the model's parameter "
     "is float64 (100, 1)"),
    (["--init-states"], ["optimizer={name: adam}"],
     "model-0002.states: these are the optimizer states of the 'sgd_mom' update rule; this run's optimizer (Adam) "
     "applies 'adam'"),
])
def test_a_distributed_warm_start_from_a_file_that_does_not_fit_is_one_line_and_writes_nothing(
        sync_run, tmp_path, flags, overrides, message):
    # the driver checks the parameters and the optimizer states with the local trainer's one check
    # (warmstart.check_states), before Ray or the run directory: the run's optimizer and its parameters' dtypes
    from click.testing import CliRunner

    from sparsetrain.cli import main
    from test_cli import one_error_line

    _, clean = sync_run
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["fit", LINREG, "--workers", "2", "--output", str(out), "--init-from",
                                    clean.output_dir, *flags, *[x for o in SYNC + overrides for x in ("--set", o)]])
    assert res.exit_code == 2, res.output
    line = one_error_line(res.stderr)
    assert message in line and clean.output_dir in line, line
    assert not out.exists()


def test_a_dead_worker_is_one_error_line_from_fit_naming_it_and_the_checkpoint(tmp_path, monkeypatch):
    # worker 1's process killed before the second epoch: fit ends non-zero with the driver's one line (no Ray
    # traceback, no raylet notice on stdout among the epoch lines), naming the worker and the checkpoint to resume
    from click.testing import CliRunner

    from sparsetrain.cli import main
    from sparsetrain.dist import driver
    from test_cli import one_error_line

    run_epoch = driver._run_epoch

    def killing(cluster, cfg, epoch, fault, reporter):
        if epoch == 1:
            ray.kill(cluster.workers[1])
        return run_epoch(cluster, cfg, epoch, fault, reporter)
    monkeypatch.setattr(driver, "_run_epoch", killing)
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["fit", LINREG, "--workers", "2", "--output", str(out),
                                    *[x for o in SYNC for x in ("--set", o)]])
    assert res.exit_code == 1, res.output
    line = one_error_line(res.stderr)
    assert line.startswith("error: distributed run failed: worker 1 died (") and line.endswith(
        f"the last complete checkpoint is {out / 'checkpoints' / 'model-0001.params'}; continue with --resume; "
        "--max-restarts N recovers automatically"), line
    assert "raylet" not in res.stdout and "epoch 0  mse" in res.stdout and "epoch 1  mse" not in res.stdout


def test_an_unreachable_address_fails_at_once_with_one_line(tmp_path):
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "sparsetrain.cli", "fit", LINREG, "--workers", "2", "--address",
                          f"127.0.0.1:{port}", "--output", str(tmp_path / "run")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert lines == [f"error: --address 127.0.0.1:{port}: cannot reach a Ray cluster there (connection refused); "
                     "start one with `ray start --head` or check the host and port"], res.stderr
    # under 30 s on an idle machine (Ray's own retries take minutes); a loaded one stretches every second
    import os

    assert time.monotonic() - start < 30 * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    assert not (tmp_path / "run").exists()  # nothing was written


def test_dist_benchmark_runs_on_a_tiny_file(tmp_path, monkeypatch):
    """benchmarks/dist.py's whole plumbing on this module's Ray: one local row (subprocess), one dist_sync
    row, --out."""
    from benchmarks import dist, run
    from sparsetrain.io.synthetic import generate_libsvm

    path = str(tmp_path / "tiny.libsvm")
    generate_libsvm(path, 2000, 1000, nnz_per_row=10, columns="zipf", task="regression",
                    target="random", noise=0.0, seed=0, zero_based=True)
    out = tmp_path / "RESULTS.md"
    out.write_text("# Benchmark results\n")
    monkeypatch.setattr(dist, "WORK", str(tmp_path / "work"))  # the raw results JSON
    code = dist.main(["--data", path, "--features", "1000", "--batch-size", "100", "--workers",
                      "1", "--epochs", "1", "--no-warmup", "--no-local-stream", "--out",
                      str(out)])
    assert code == 0
    text = out.read_text()
    assert text.startswith("# Benchmark results") and text.count(run.DIST_START) == 1
    assert "| local compiled |" in text and "| dist_sync 1w |" in text and "| dist_async 1w |" in text
    assert "**Cost model**" in text and "| 1 Gbit/s | 128 |" in text
    assert "error" not in text.split(run.DIST_START)[1].split("**How")[0]
    assert len(list((tmp_path / "work").glob("dist-results-*.json"))) == 1


def test_the_raylets_notices_stay_off_stdout_while_a_run_uses_ray(capsys):
    # a dead worker put Ray's "(raylet) A worker died or was killed ..." (one long line in colour) on fit's
    # stdout, among the epoch lines, before the driver's own one-line error; the quiet then lasted for the
    # whole process (a program's own Ray use after a fit lost them too): the driver restores Ray's printing
    from ray._private import worker

    from sparsetrain.dist.kvstore import quiet_raylet_notices

    def shown():
        worker.print_to_stdstream({"lines": ["A worker died or was killed"], "pid": "raylet", "is_err": False},
                                  ignore_prefix=False)
        worker.print_to_stdstream({"lines": ["a task's print"], "pid": 4321, "ip": "", "is_err": False},
                                  ignore_prefix=False)
        return capsys.readouterr().out

    ray_own = worker.print_to_stdstream
    unquiet = quiet_raylet_notices()
    quiet_raylet_notices()()  # (quiet already: nothing to undo)
    out = shown()
    assert "A worker died" not in out and "a task's print" in out
    unquiet()
    assert worker.print_to_stdstream is ray_own and "A worker died" in shown()
