"""train.threads / train.deterministic: several threads training one model on the compiled engine."""
import contextlib
import pathlib

import numpy as np
import pytest
import scipy.sparse as sp

import sparsetrain as st
from sparsetrain.base import ConfigError
from sparsetrain.engines.compiled import thread_kernels as tk
from sparsetrain.engines.compiled.thread_count import describe_threads
from sparsetrain.engines.compiled.threads import ROUND_ROWS, _shares

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG, LOGREG = str(ROOT / "configs" / "linreg.yaml"), str(ROOT / "configs" / "logreg.yaml")

ROWS, FEATURES = 6000, 400
OPTIMIZERS = {
    "sgd": {"learning_rate": 0.1},
    "sgd_mom": {"learning_rate": 0.05, "momentum": 0.9, "wd": 1e-4},
    "adagrad": {"learning_rate": 0.2},
    "adam": {"learning_rate": 0.02},
    "ftrl": {"learning_rate": 0.2, "lamda1": 1e-4},
}


def _data(seed=0):
    rng = np.random.default_rng(seed)
    nnz_per_row = 8
    cols = np.minimum(rng.zipf(1.3, size=(ROWS, nnz_per_row)) - 1, FEATURES - 1)
    x = sp.csr_matrix((np.ones(ROWS * nnz_per_row, np.float32), cols.ravel(),
                       np.arange(0, ROWS * nnz_per_row + 1, nnz_per_row)), shape=(ROWS, FEATURES))
    x.sum_duplicates()
    x.data[:] = 1.0
    w = rng.normal(size=FEATURES)
    y = (x @ w + rng.normal(scale=0.5, size=ROWS) > 0).astype(np.float32)
    return st.nd.sparse.csr_matrix((x.data, x.indices, x.indptr), shape=x.shape), y


def _symbol(model, bias=True, features=FEATURES):
    data = st.sym.Variable("data", stype="csr")
    weight = st.sym.Variable("weight", stype="row_sparse", shape=(features, 1))
    pred = st.sym.sparse.dot(data, weight)
    if model == "fm":  # a generated plan: pred + Σ_f ((X·V)_f² − (X²·V²)_f)
        v = st.sym.Variable("factor_weight", stype="row_sparse", shape=(features, 4))
        pair = st.sym.elemwise_sub(st.sym.square(st.sym.sparse.dot(data, v)),
                                   st.sym.sparse.dot(st.sym.square(data), st.sym.square(v)))
        pred = st.sym.elemwise_add(pred, st.sym.sum(pair, axis=1, keepdims=True))
    if bias:
        pred = st.sym.broadcast_add(pred, st.sym.Variable("bias", shape=(1,)))
    return st.sym.LogisticRegressionOutput(data=pred, label=st.sym.Variable("label"), name="out")


def _train(model="linear", opt="sgd", batch_size=32, threads=1, deterministic=False, epochs=2, metric="log_loss",
           data=None, bias=True, shuffle=True, **params):
    st.random.seed(3)
    x, y = _data() if data is None else data
    it = st.io.NDArrayIter(x, y, batch_size, shuffle=shuffle, last_batch_handle="pad", label_name="label")
    mod = st.mod.Module(_symbol(model, bias, x.shape[1]), data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.01))
    name = "sgd" if opt.startswith("sgd") else opt
    mod.init_optimizer(optimizer=name, optimizer_params=dict(OPTIMIZERS[opt], rescale_grad=1.0 / batch_size,
                                                             **params))
    m = st.metric.create(metric)
    stats = []
    for epoch in range(epochs):
        m.reset()
        stats.append(mod.run_epoch(it, m, engine="compiled", epoch=epoch, threads=threads,
                                   deterministic=deterministic))
    params = {k: v.asnumpy() for k, v in mod.get_params()[0].items()}
    return params, m, stats, mod


# Each optimizer rule is its own generated plan for the FM (a cold compile of several seconds): the default
# run trains the FM with AdaGrad only (two plans: with and without a bias), the linear kernels with every
# rule; the FM with the other rules is slow (and in test_deterministic_every_rule).
FM_SLOW = pytest.mark.slow


@pytest.mark.parametrize("model,opt,batch_size", [
    ("linear", "sgd", 1), ("linear", "adagrad", 32), ("linear", "adam", 256), ("linear", "ftrl", 1),
    ("linear", "sgd_mom", 32), ("fm", "adagrad", 1), ("fm", "adagrad", 32),
    pytest.param("fm", "sgd", 1, marks=FM_SLOW), pytest.param("fm", "adam", 32, marks=FM_SLOW)])
def test_deterministic_runs_are_bit_identical(model, opt, batch_size, monkeypatch):
    from sparsetrain.engines.compiled import threads

    monkeypatch.setattr(threads, "ROUND_ROWS", 512)  # many rounds, many merges
    first, m1, _, _ = _train(model, opt, batch_size, threads=2, deterministic=True)
    second, m2, _, _ = _train(model, opt, batch_size, threads=2, deterministic=True)
    for name in first:
        assert np.array_equal(first[name], second[name]), name
    assert m1.get() == m2.get()
    one, _, _, _ = _train(model, opt, batch_size, threads=1)
    assert any(not np.array_equal(first[n], one[n]) for n in one)  # two threads did run


@pytest.mark.slow
@pytest.mark.parametrize("model", ["linear", "fm"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [1, 256])
def test_deterministic_every_rule(model, opt, batch_size):
    # one-sample steps at the batch-32 rates make the FM with momentum diverge, one thread too
    lr = OPTIMIZERS[opt]["learning_rate"] * (0.2 if batch_size == 1 else 1.0)
    first = _train(model, opt, batch_size, threads=2, deterministic=True, learning_rate=lr)[0]
    second = _train(model, opt, batch_size, threads=2, deterministic=True, learning_rate=lr)[0]
    for name in first:
        assert np.array_equal(first[name], second[name]), name


@pytest.mark.parametrize("model,opt,batch_size", [("linear", "sgd", 1), ("linear", "adam", 32),
                                                  ("fm", "adagrad", 32), ("linear", "ftrl", 256)])
@pytest.mark.parametrize("deterministic", [False, True])
def test_two_threads_reach_the_loss_of_one(model, opt, batch_size, deterministic):
    _, one, stats1, _ = _train(model, opt, batch_size, threads=1, epochs=3)
    _, two, stats2, _ = _train(model, opt, batch_size, threads=2, deterministic=deterministic, epochs=3)
    loss1, loss2 = one.get()[1], two.get()[1]
    assert np.isfinite(loss2)
    # Hogwild loses an update now and then; deterministic merges rounds of private rows (README): under
    # plain SGD a row both shares touched gets the mean of their changes, and on this small data (one
    # round, nearly every row in both shares) that is about half the step for most rows
    tolerance = 0.05 if not deterministic else 0.20 if opt == "sgd" else 0.10
    assert abs(loss2 - loss1) <= tolerance * loss1, (loss1, loss2)
    # samples and metric instances counted once, whatever the threads
    assert [s.samples for s in stats2] == [s.samples for s in stats1] == [ROWS] * 3
    assert two.num_inst == one.num_inst


@pytest.mark.parametrize("model,opt,batch_size", [("linear", "adagrad", 1), ("linear", "adam", 8), ("fm", "adagrad", 1),
                                                  pytest.param("fm", "sgd_mom", 8, marks=FM_SLOW),
                                                  pytest.param("fm", "ftrl", 1, marks=FM_SLOW)])
def test_deterministic_is_one_thread_when_the_shares_touch_other_rows(model, opt, batch_size, monkeypatch):
    """The semantics: each share trains from the round's parameters and its changes all land. When the
    two shares of a round touch disjoint rows (no bias), that is one thread's training exactly."""
    from sparsetrain.engines.compiled import threads

    monkeypatch.setattr(threads, "ROUND_ROWS", ROWS)  # one round: the first half of the rows, the second half
    x, y = _data()
    xs = sp.csr_matrix((x.data.asnumpy(), x.indices.asnumpy(), x.indptr.asnumpy()), shape=x.shape)
    half = np.arange(ROWS) >= ROWS // 2
    cols = xs.indices % (FEATURES // 2) + np.repeat(half, np.diff(xs.indptr)) * (FEATURES // 2)
    xs = sp.csr_matrix((xs.data, cols, xs.indptr), shape=xs.shape)
    xs.sum_duplicates()
    data = (st.nd.sparse.csr_matrix((xs.data, xs.indices, xs.indptr), shape=xs.shape), y)
    one = _train(model, opt, batch_size, data=data, bias=False, shuffle=False, epochs=1)[0]
    two = _train(model, opt, batch_size, threads=2, deterministic=True, data=data, bias=False, shuffle=False,
                 epochs=1)[0]
    for name in one:
        assert np.array_equal(one[name], two[name]), name


@pytest.mark.parametrize("model,batch_size", [("linear", 1), ("linear", 32), ("fm", 8)])
@pytest.mark.parametrize("deterministic", [False, True])
def test_every_batch_is_applied_once_with_its_own_scale(model, batch_size, deterministic):
    """N threads train the schedule of one: every batch once, each update one whole batch's gradient
    scaled by rescale_grad = 1/batch_size. AdaGrad with lr 0 (the same gradients on any schedule) on
    rows that each touch their own columns: the histories are one thread's exactly, Hogwild included
    (no two batches share a row, so no update can be lost)."""
    rows = 2048
    x = sp.csr_matrix((np.linspace(0.5, 1.5, 2 * rows).astype(np.float32), np.arange(2 * rows),
                       np.arange(0, 2 * rows + 1, 2)), shape=(rows, 2 * rows))
    y = (np.arange(rows) % 3 == 0).astype(np.float32)
    data = (st.nd.sparse.csr_matrix((x.data, x.indices, x.indptr), shape=x.shape), y)
    kw = dict(data=data, bias=False, learning_rate=0.0, epochs=1)
    _, m1, _, one = _train(model, "adagrad", batch_size, **kw)
    _, m2, _, two = _train(model, "adagrad", batch_size, threads=2, deterministic=deterministic, **kw)
    for index, history in one.view().updater.states.items():
        assert np.array_equal(two.view().updater.states[index].asnumpy(), history.asnumpy()), index
    assert m2.num_inst == m1.num_inst


@pytest.mark.parametrize("model", ["linear", "fm"])
def test_deterministic_adds_every_threads_adagrad_history(model, monkeypatch):
    """AdaGrad's history is a sum of squared gradients: with lr 0 (the same gradients on any schedule)
    two deterministic threads must end with one thread's history — not the mean of the threads' changes."""
    from sparsetrain.engines.compiled import threads

    monkeypatch.setattr(threads, "ROUND_ROWS", 512)
    _, _, _, one = _train(model, "adagrad", 8, learning_rate=0.0, epochs=1)
    _, _, _, two = _train(model, "adagrad", 8, threads=2, deterministic=True, learning_rate=0.0, epochs=1)
    histories = one.view().updater.states
    assert histories
    for index, history in histories.items():  # AdaGrad: one state, the history
        np.testing.assert_allclose(two.view().updater.states[index].asnumpy(), history.asnumpy(), rtol=1e-5)


@pytest.mark.parametrize("model", ["linear", "fm"])
def test_one_thread_is_todays_result(model):
    params, m, _, _ = _train(model, "adagrad", 32, threads=1)
    st.random.seed(3)
    x, y = _data()
    it = st.io.NDArrayIter(x, y, 32, shuffle=True, last_batch_handle="pad", label_name="label")
    mod = st.mod.Module(_symbol(model), data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.01))
    mod.init_optimizer(optimizer="adagrad", optimizer_params=dict(OPTIMIZERS["adagrad"], rescale_grad=1 / 32))
    metric = st.metric.create("log_loss")
    for epoch in range(2):  # no threads argument: the engine as it ran before train.threads
        metric.reset()
        mod.run_epoch(it, metric, engine="compiled", epoch=epoch)
    for name, value in mod.get_params()[0].items():
        assert np.array_equal(value.asnumpy(), params[name]), name
    assert metric.get() == m.get()
    assert "threads" not in mod.view().engine_state


def test_auc_and_progressive_with_threads():
    from sparsetrain.trainer.metrics import Progressive

    _, m1, _, _ = _train("linear", "sgd", 32, threads=1, metric="auc")
    _, m2, _, _ = _train("linear", "sgd", 32, threads=2, metric="auc")
    assert abs(m1.get()[1] - m2.get()[1]) < 0.02
    st.random.seed(3)
    x, y = _data()
    it = st.io.NDArrayIter(x, y, 32, label_name="label")
    mod = st.mod.Module(_symbol("linear"), data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Zero())
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.0})
    progressive = Progressive(["log_loss"])
    mod.run_epoch(it, st.metric.create("log_loss"), engine="compiled", progressive=progressive, threads=2)
    assert progressive.values()["progressive_log_loss"] == pytest.approx(np.log(2), rel=1e-6)  # every row once


def test_shares_split_rows_evenly_and_cover_the_block():
    ptr = np.array([0, 32, 64, 96, 128, 160, 170])
    assert _shares(ptr, 2) == [(0, 3), (3, 6)]
    assert _shares(ptr[:2], 2) == [(0, 1)]  # one batch: one share
    assert _shares(np.arange(0, 11), 3) == [(0, 4), (4, 7), (7, 10)]
    assert ROUND_ROWS >= 1


def test_shares_cut_at_the_first_boundary_at_or_past_each_share_of_the_rows():
    """``_shares`` on blocks of any batch sizes, also a round's slice of the boundaries (not starting at 0):
    cut ``j`` is the first boundary with at least ``j / threads`` of the rows before it, by exact integer
    arithmetic (its int target rounds a fraction up)."""
    rng = np.random.default_rng(5)
    for _ in range(500):
        sizes = rng.integers(1, 50, int(rng.integers(1, 40)))
        ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64) + int(rng.integers(0, 1000))
        threads = int(rng.integers(1, 10))
        lo, hi, n = int(ptr[0]), int(ptr[-1]), len(ptr) - 1
        cuts = [0]
        for j in range(1, threads):
            b = next(i for i in range(n + 1) if (int(ptr[i]) - lo) * threads >= (hi - lo) * j)
            cuts.append(min(max(b, cuts[-1]), n))
        cuts.append(n)
        assert _shares(ptr, threads) == [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a], (ptr, threads)


def test_merge_kernels_match_the_numpy_reference():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        old = rng.normal(size=(50, 3)).astype(dtype)
        touched = [rng.permutation(np.unique(rng.integers(0, 50, size=n))) for n in (20, 30, 5)]
        finals = [old.copy() for _ in touched]
        for f, rows in zip(finals, touched):
            f[rows] += rng.normal(size=(rows.size, 3)).astype(dtype)
        for mean in (False, True):
            arr = finals[0].copy()  # thread 0 works in place
            rows = np.concatenate(touched)
            owner = np.repeat(np.arange(3), [t.size for t in touched])
            mark = np.full(50, -1, np.int64)
            shared, cnt = np.empty(rows.size, np.int64), np.empty(rows.size)
            k = tk.split_shared(rows, owner, mark, shared, cnt)
            shared, cnt = shared[:k], cnt[:k]
            counts = np.bincount(rows, minlength=50)
            assert sorted(shared) == list(np.flatnonzero(counts > 1))
            assert np.array_equal(cnt, counts[shared])
            before = np.empty((shared.size, 3))
            tk.gather_rows(old, shared, before)
            for j, mine in enumerate(touched):  # a thread that did not touch a shared row holds its old value
                other = np.setdiff1d(shared, mine)
                (arr if j == 0 else finals[j])[other] = old[other]
            acc = np.zeros_like(before)
            for j in range(3):
                tk.add_changes(arr if j == 0 else finals[j], shared, before, acc)
            tk.apply_changes(arr, shared, before, acc, cnt, mean)
            for j in (1, 2):
                tk.copy_owned(finals[j], arr, touched[j], mark, j)
            want = tk.merge_reference(old, finals, touched, mean)
            np.testing.assert_allclose(arr, want, rtol=1e-6)
            for j, mine in enumerate(touched):  # one thread's rows: exactly as it left them
                only = mine[counts[mine] == 1]
                assert np.array_equal(arr[only], finals[j][only])
            untouched = counts == 0
            assert np.array_equal(arr[untouched], old[untouched])


def test_touched_rows_are_the_distinct_columns():
    x = sp.random(40, 30, density=0.2, format="csr", random_state=1)
    order = np.random.default_rng(1).permutation(40).astype(np.int64)
    seen = np.zeros(30, np.uint8)
    out = np.empty(30, np.int64)
    n = tk.touched_rows(x.indices.astype(np.int64), x.indptr.astype(np.int64), order, 5, 25, seen, out)
    assert sorted(out[:n]) == sorted(set(x[order[5:25]].indices))
    assert not seen.any()


@pytest.mark.parametrize("value", [0, -1, "many", 1.5, True])
def test_bad_thread_counts_name_the_key(value):
    from sparsetrain.config.load import load_config

    with pytest.raises(ConfigError, match=r"^train\.threads: must be auto or a whole number of threads >= 1"):
        load_config(LINREG, overrides=[f"train.threads={value}"])


def test_header_says_what_runs():
    assert describe_threads(2, False, "compiled") == "2, Hogwild (lock-free)"
    assert describe_threads(2, True, "compiled").startswith("2, deterministic")
    assert describe_threads(1, False, "compiled") == "1"
    assert "graph engine runs one thread" in describe_threads(2, False, "graph")
    assert describe_threads(2, False, "compiled, dist_sync", distributed=True).startswith("1 per worker")


def test_cli_fit_with_threads(tmp_path):
    from click.testing import CliRunner

    from sparsetrain.cli import main

    args = ["fit", LOGREG, "--output", str(tmp_path / "run"), "--set", "train.epochs=1",
            "--set", "train.threads=2", "--set", "train.deterministic=true"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "threads 2, deterministic" in result.output
    result = CliRunner().invoke(main, args[:-4] + ["--output", str(tmp_path / "graph"), "--set", "train.engine=graph",
                                                   "--set", "train.threads=2"])
    assert result.exit_code == 0, result.output
    assert "threads 1 (the graph engine runs one thread" in result.output
    bad = CliRunner().invoke(main, args[:-2] + ["--set", "train.threads=0"])
    assert bad.exit_code == 2
    assert "train.threads" in bad.output


def test_auto_is_the_cores_unless_the_environment_says(monkeypatch):
    from sparsetrain.engines.compiled import thread_count as th

    monkeypatch.delenv("SPARSETRAIN_THREADS", raising=False)
    assert th.resolve_threads("auto") == th.available_cores() >= 1  # rows not known: the cores
    assert th.resolve_threads(3) == 3
    monkeypatch.setenv("SPARSETRAIN_THREADS", "2")
    assert th.choose_threads("auto", rows=10) == (2, "auto: $SPARSETRAIN_THREADS")
    monkeypatch.setenv("SPARSETRAIN_THREADS", "0")
    with pytest.raises(ConfigError, match="SPARSETRAIN_THREADS"):
        th.resolve_threads("auto")


def test_auto_is_one_thread_below_the_row_threshold(monkeypatch):
    from sparsetrain.config.schema import TrainConfig
    from sparsetrain.engines.compiled import thread_count as th

    monkeypatch.delenv("SPARSETRAIN_THREADS", raising=False)
    monkeypatch.setattr(th, "available_cores", lambda: 4)
    monkeypatch.setattr(th, "AUTO_MIN_ROWS", 1000)
    assert th.choose_threads("auto", rows=999) == (1, "auto: 999 rows < 1,000")
    assert th.choose_threads("auto", rows=999, estimated=True) == (1, "auto: about 999 rows < 1,000")
    assert th.choose_threads("auto", rows=1) == (1, "auto: 1 row < 1,000")  # one row, not "1 rows"
    assert th.choose_threads("auto", rows=1000) == (4, "auto: 4 cores, 1,000 rows >= 1,000")
    assert th.choose_threads("auto") == (4, "auto: 4 cores; the rows are not known upfront")
    assert th.choose_threads(2, rows=10) == (2, "")  # a number is taken as it is
    assert describe_threads(1, False, "compiled", why="auto: 999 rows < 1,000") == "1 (auto: 999 rows < 1,000)"
    assert describe_threads(4, False, "compiled", why="auto: 4 cores, 1,000 rows >= 1,000") == (
        "4 (auto: 4 cores, 1,000 rows >= 1,000), Hogwild (lock-free)")
    monkeypatch.undo()  # the schema's text (the README's config reference) says the real threshold
    assert f"fewer than {th.AUTO_MIN_ROWS:,} rows" in TrainConfig.model_fields["threads"].description


def test_auto_leaves_the_parse_its_cores_on_a_streamed_epoch(monkeypatch):
    """A streamed epoch parses beside training: auto trains on half the cores (one of two), after the
    small-epoch rule; a number and $SPARSETRAIN_THREADS are taken as they are."""
    from sparsetrain.engines.compiled import thread_count as th

    monkeypatch.delenv("SPARSETRAIN_THREADS", raising=False)
    cores = []
    monkeypatch.setattr(th, "available_cores", lambda: cores[-1])
    for n, expected in ((2, (1, "auto: streamed, the parse takes a core")),
                        (3, (1, "auto: streamed, the parse takes 2 of 3 cores")),
                        (8, (4, "auto: streamed, the parse takes 4 of 8 cores")),
                        (1, (1, "auto: 1 core; the rows are not known upfront"))):
        cores.append(n)
        assert th.choose_threads("auto", streamed=True) == expected  # stdin: rows not known
        if n > 1:
            assert th.choose_threads("auto", rows=500_000, estimated=True, streamed=True) == expected
    assert th.choose_threads("auto", rows=500_000, streamed=True) == (1, "auto: 1 core, 500,000 rows")
    cores.append(8)
    assert th.choose_threads("auto", rows=999, estimated=True, streamed=True) == (1, "auto: about 999 rows < 10,000")
    assert th.choose_threads("auto", rows=500_000) == (8, "auto: 8 cores, 500,000 rows >= 10,000")  # in memory
    assert th.choose_threads(2, streamed=True) == (2, "")
    monkeypatch.setenv("SPARSETRAIN_THREADS", "2")
    assert th.choose_threads("auto", streamed=True) == (2, "auto: $SPARSETRAIN_THREADS")


def test_a_streamed_files_rows_for_auto(tmp_path):
    """``auto`` on a streamed file decides from its rows estimated upfront: a plain file's from its size,
    a compressed one's counted in its first chunk when it ends there, else not known (the cores)."""
    import bz2
    import gzip

    from sparsetrain.config.load import load_config
    from sparsetrain.io.chunks import STREAM_CHUNK_SIZE
    from sparsetrain.trainer.loop import streamed_rows

    text = (ROOT / "data" / "linreg.libsvm").read_bytes()
    (tmp_path / "a.libsvm.gz").write_bytes(gzip.compress(text))
    (tmp_path / "b.libsvm.bz2").write_bytes(bz2.compress(text))
    (tmp_path / "big.libsvm.gz").write_bytes(gzip.compress(b"1 1:1\n" * (STREAM_CHUNK_SIZE // 6 + 1)))

    def rows(*paths):
        cfg = load_config(LINREG, overrides=[f"data.train={[str(tmp_path / p) for p in paths]}"])
        return streamed_rows(cfg)

    (tmp_path / "c.libsvm").write_bytes(text)
    assert rows("c.libsvm") == rows("a.libsvm.gz") == rows("b.libsvm.bz2") == 1000
    assert rows("c.libsvm", "a.libsvm.gz") == 2000
    assert rows("big.libsvm.gz") is None and rows("c.libsvm", "big.libsvm.gz") is None


def _fit(tmp_path, name, *sets, stdin=None, said="threads "):
    import contextlib

    from click.testing import CliRunner
    from test_disk_cache import _stdin_pipe

    from sparsetrain.cli import main

    out = tmp_path / name
    sets = ("train.epochs=2", "train.target={}") + sets
    with contextlib.nullcontext() if stdin is None else _stdin_pipe(stdin):
        result = CliRunner().invoke(main, ["fit", LINREG, "--output", str(out),
                                           *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    header = [line for line in result.output.splitlines() if line.startswith(said)]
    last = sorted((out / "checkpoints").glob("model-*.params"))[-1]
    return header, last.read_bytes()


def test_auto_trains_small_data_on_one_thread_and_says_so(tmp_path, monkeypatch):
    """README command 1's data (1,000 rows) with the default threads: one thread whatever the cores,
    the same parameters run after run, the header says why, for data in memory, on disk or streamed;
    a number of threads is honoured, and auto on enough rows is the cores."""
    from sparsetrain.engines.compiled import thread_count as th

    monkeypatch.delenv("SPARSETRAIN_THREADS", raising=False)
    monkeypatch.setattr(th, "available_cores", lambda: 2)
    threshold = th.AUTO_MIN_ROWS
    assert threshold > 1000
    least = f"{threshold:,}"
    first = _fit(tmp_path, "a")
    assert first == ([f"threads 1 (auto: 1,000 rows < {least})"], _fit(tmp_path, "b")[1])
    assert _fit(tmp_path, "disk", "data.cache=disk")[0] == [f"threads 1 (auto: 1,000 rows < {least})"]
    assert _fit(tmp_path, "stream", "data.cache=stream")[0] == [f"threads 1 (auto: about 1,000 rows < {least})"]
    assert _fit(tmp_path, "two", "train.threads=2")[0] == ["threads 2, Hogwild (lock-free)"]
    monkeypatch.setattr(th, "AUTO_MIN_ROWS", 1000)
    assert _fit(tmp_path, "cores")[0] == ["threads 2 (auto: 2 cores, 1,000 rows >= 1,000), Hogwild (lock-free)"]
    # streamed (the file, or stdin read once): the parse keeps a core; stdin's disk cache is not streamed after epoch 1
    streamed = "threads 1 (auto: streamed, the parse takes a core)"
    assert _fit(tmp_path, "streamed", "data.cache=stream")[0] == [streamed]
    text = (ROOT / "data" / "linreg.libsvm").read_text()
    stdin = ("data.train=-", "data.zero_based=true")
    assert _fit(tmp_path, "stdin", *stdin, "train.epochs=1", stdin=text)[0] == [streamed]
    # stdin's disk cache: its first epoch parses (streamed), the next reads the cache, the rows counted
    assert _fit(tmp_path, "stdin-disk", *stdin, stdin=text, said=("threads ", "from epoch "))[0] == [
        streamed, "from epoch 1: threads 2 (auto: 2 cores, 1,000 rows >= 1,000), Hogwild (lock-free)"]
    monkeypatch.setattr(th, "AUTO_MIN_ROWS", threshold)  # 1,000 rows: one thread, as the header said
    assert _fit(tmp_path, "stdin-small", *stdin, stdin=text, said=("threads ", "from epoch "))[0] == [streamed]


def test_kernels_release_the_gil():
    from sparsetrain.engines.compiled import plan_runner
    from sparsetrain.engines.compiled.kernels import EPOCH_KERNELS, _batch1_epoch, _linear_epoch
    from sparsetrain.kernels.optim import RULES

    for name, kernel in EPOCH_KERNELS.items():
        assert all(kernel.loop(t).targetoptions.get("nogil") for t in (_batch1_epoch, _linear_epoch)), name
        assert RULES[name].update_rows.targetoptions.get("nogil"), name
    _, _, _, mod = _train("fm", "adagrad", 32, threads=2, epochs=1)
    fn = plan_runner.load(mod.view().engine_state["plan"].spec, "adagrad")
    assert fn.targetoptions.get("nogil")


def test_a_small_hogwild_block_runs_on_the_calling_thread():
    # handing a few hundred batch-1 steps to another thread costs more than it saves: a block of fewer
    # than 2 x MIN_PIECE_ROWS rows runs whole on thread 0; a larger one is cut into pieces of at least
    # MIN_PIECE_ROWS rows that both threads take
    from sparsetrain.engines.compiled.threads import MIN_PIECE_ROWS, ThreadTeam

    team = ThreadTeam(2)
    try:
        for rows, pieces in ((2 * MIN_PIECE_ROWS - 1, 1), (4 * MIN_PIECE_ROWS, 4), (64 * MIN_PIECE_ROWS, 16)):
            calls = []
            batch_ptr = np.arange(rows + 1, dtype=np.int64)
            status, samples = team._execute([], np.arange(rows), batch_ptr, lambda j: contextlib.nullcontext(
                lambda b0, b1, j=j: calls.append((j, b0, b1)) or (-1, b1 - b0)))
            assert (status, samples) == (-1, rows) and len(calls) == pieces
            assert sorted((b0, b1) for _, b0, b1 in calls)[0][0] == 0
            assert all(b1 - b0 >= MIN_PIECE_ROWS for _, b0, b1 in calls)
            if pieces == 1:
                assert calls == [(0, 0, rows)]
    finally:
        team.close()


@pytest.mark.parametrize("model,batch_size", [("linear", 1), ("fm", 8)])
def test_hogwild_keeps_every_update_of_the_rows_every_sample_writes(model, batch_size):
    """Hogwild trains the bias (the linear batch-1 loop: also the weight's head rows, here all 400) on
    each thread's own copy and adds the change to the shared values (every SYNC_ROWS rows): no update of
    those rows is lost (the fm's factor rows stay shared and may lose some). AdaGrad with lr 0: their
    histories (sums of squared gradients) are one thread's."""
    _, _, _, one = _train(model, "adagrad", batch_size, learning_rate=0.0, epochs=1)
    _, _, _, two = _train(model, "adagrad", batch_size, threads=2, learning_rate=0.0, epochs=1)
    owned = [0, 1] if model == "linear" else [2]  # the weight and the bias; the fm's bias
    for index in owned:
        np.testing.assert_allclose(two.view().updater.states[index].asnumpy(),
                                   one.view().updater.states[index].asnumpy(), rtol=1e-5)
    owned = {key[1][1] for key in two.view().engine_state["threads"]._scratch if key[1][0] == "dense"}
    assert owned == ({"bias", "head"} if model == "linear" else {("plan", 2)})  # the fm's bias: its third



def test_hogwild_shares_the_head_rows_in_place_under_plain_sgd():
    """Under plain SGD the head rows train in place (only the bias on each thread's copy): two pieces'
    changes of a hot row, each from the same stale copy and both added, overshoot without an adaptive
    step (a squared loss ended +26 % above one thread that way)."""
    from sparsetrain.kernels.optim import RULES

    assert {name for name, rule in RULES.items() if rule.adaptive} == {"adagrad", "adam", "ftrl"}
    _, _, _, two = _train("linear", "sgd", 1, threads=2, epochs=1)
    owned = {key[1][1] for key in two.view().engine_state["threads"]._scratch if key[1][0] == "dense"}
    assert owned == {"bias"}

def test_head_rows_where_the_entries_are():
    from sparsetrain.engines.compiled.threads import HEAD_ROWS, HEAD_SHARE, head_rows

    rng = np.random.default_rng(0)
    n, k = 1000, 10
    order = np.arange(n, dtype=np.int64)
    indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
    head = np.sort(rng.choice(HEAD_ROWS, (n, k)), axis=1).astype(np.int64)  # zipf-like: the first rows
    spread = np.sort(rng.choice(1 << 20, (n, k)), axis=1).astype(np.int64)  # hashed: anywhere
    assert head_rows(head.ravel(), indptr, order, 0, n, 1 << 20) == HEAD_ROWS
    small = np.sort(head % 100, axis=1)
    assert head_rows(small.ravel(), indptr, order, 0, n, 100) == 100  # a small table: all of it
    assert head_rows(spread.ravel(), indptr, order, 0, n, 1 << 20) == 0
    mixed = np.where(np.arange(n * k).reshape(n, k) % 20 == 0, head, spread)  # 5 % of entries in the head
    assert 0.05 < HEAD_SHARE and head_rows(mixed.ravel(), indptr, order, 0, n, 1 << 20) == 0
    assert head_rows(head.ravel(), indptr, order, 0, 0, 1 << 20) == 0  # no rows: no entries


def test_the_loop_is_chosen_once_per_block(monkeypatch):
    """A threaded block's pieces all run the loop the block chose (``EpochKernel.select``): whether it
    runs the batch-1 loop is asked once per block, not again for every piece."""
    from sparsetrain.engines.compiled import kernels

    calls = []
    real = kernels.EpochKernel.select
    monkeypatch.setattr(kernels.EpochKernel, "select", lambda self, *a: calls.append(1) or real(self, *a))
    _, _, stats, _ = _train("linear", "adagrad", 1, threads=2, epochs=1)
    assert stats[0].samples == ROWS and len(calls) == 1  # 6,000 rows: one block, cut into 11 pieces


def test_a_dense_parameter_gets_the_mean_of_concurrent_changes_under_plain_sgd():
    """Two pieces that trained the bias from the same start: under plain SGD the shared bias gets the
    mean of their changes (each converged within its piece: the sum lands past the optimum), under an
    adaptive rule the sum; a summed state (AdaGrad's history) always the sum."""
    from sparsetrain.engines.compiled.threads import ThreadTeam
    from sparsetrain.kernels.optim import RULES

    team = ThreadTeam(2)
    team._width = 2  # as _execute sets it for a block whose pieces both threads train
    try:
        for rule, want in ((RULES["sgd"], 1.0), (RULES["adagrad"], 2.0)):
            shared = (np.zeros(1), np.zeros(1 if rule.states else 0), np.zeros(0))
            start = tuple(a.copy() for a in shared)
            for _ in range(2):  # two threads' pieces, both from `start`
                team._fold_dense(shared, tuple(a + 1.0 for a in start), start, rule)
            assert shared[0][0] == want
            if rule.states:
                assert shared[1][0] == 2.0
    finally:
        team.close()


def test_a_diverged_piece_folds_in_without_a_numpy_warning():
    # two Hogwild threads on a diverging run printed "warning: invalid value encountered in subtract"
    # before the one line saying the loss became non-finite
    import warnings

    from sparsetrain.engines.compiled.threads import ThreadTeam
    from sparsetrain.kernels.optim import RULES

    team = ThreadTeam(2)
    team._width = 2
    try:
        shared = (np.full(1, np.inf), np.zeros(0), np.zeros(0))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            team._fold_dense(shared, (np.full(1, np.inf), np.zeros(0), np.zeros(0)), (np.full(1, np.inf),) * 3,
                             RULES["sgd"])
        assert not np.isfinite(shared[0][0])
    finally:
        team.close()


def test_deterministic_merges_a_weight_by_the_mean_of_its_changes_under_plain_sgd():
    """Rows several shares touched: under plain SGD the weight gets the mean of the shares' changes (a
    hot row converges within a share at SGD's fixed step, and the sum of two shares' changes lands it
    past its optimum: the 500k-row regression at batch 1 ended at mse 51 against one thread's 0.79),
    under an adaptive rule their sum; a summed state the sum, a running average the mean."""
    from sparsetrain.engines.compiled.threads import _Group
    from sparsetrain.kernels.optim import RULES

    w, one, none = np.zeros((4, 1)), np.zeros((4, 1)), np.zeros(0)
    assert _Group(RULES["sgd"], (w, none, none)).means == [True]
    assert _Group(RULES["sgd_mom"], (w, one, none)).means == [True, True]
    assert _Group(RULES["adagrad"], (w, one, none)).means == [False, False]
    assert _Group(RULES["adam"], (w, one, one)).means == [False, True, True]


@pytest.mark.parametrize("model,opt,batch_size", [("linear", "sgd", 1), ("fm", "sgd", 8)])
def test_a_block_too_small_to_share_trains_as_one_thread(model, opt, batch_size):
    """A block of fewer than 2 x MIN_PIECE_ROWS rows runs whole on one thread: its copies of the rows
    every sample writes get their whole change back (no other piece ran beside it to average with)."""
    from sparsetrain.engines.compiled.threads import MIN_PIECE_ROWS

    x, y = _data()
    rows = 2 * MIN_PIECE_ROWS - 8  # whole batches of 8 too: the last batch is not padded past the limit
    small = x.asscipy()[:rows]
    data = (st.nd.sparse.csr_matrix((small.data, small.indices, small.indptr), shape=small.shape), y[:rows])
    one = _train(model, opt, batch_size, data=data, shuffle=False, epochs=1)[0]
    two = _train(model, opt, batch_size, threads=2, data=data, shuffle=False, epochs=1)[0]
    for name in one:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-5, atol=1e-7, err_msg=name)


def test_a_hogwild_thread_folds_its_copies_every_sync_rows_and_at_the_end(monkeypatch):
    """A thread's copies of the rows every sample writes go back to the shared rows before a piece
    once it trained SYNC_ROWS rows on them (and it starts again from the shared values, with the
    other threads' changes), and when it leaves the block: not after every piece."""
    from sparsetrain.engines.compiled import threads as th
    from sparsetrain.kernels.optim import RULES

    monkeypatch.setattr(th, "SYNC_ROWS", 100)
    team = th.ThreadTeam(2)
    try:
        shared = (np.zeros(3), np.zeros(3), np.zeros(0))
        with team._own(0, [("bias", shared)], RULES["adagrad"]) as own:
            (weight, history, _), = own.copies
            seen = []
            for rows in (60, 60, 60, 60):  # pieces of 60 rows: a fold before the third
                own.before(rows)
                weight += 1.0
                history += 2.0
                shared[0][0] += 10.0  # another thread's change meanwhile
                seen.append((shared[0].tolist(), weight.tolist()))
        assert seen[1] == ([20.0, 0, 0], [2.0, 2, 2])  # two pieces on the copy, nothing folded yet
        assert seen[2] == ([32.0, 2, 2], [23.0, 3, 3])  # folded (+2), the copy taken again (+ the other's 20)
        assert shared[0].tolist() == [42.0 + 2.0, 4, 4] and shared[1].tolist() == [8.0] * 3  # the last fold
    finally:
        team.close()


def test_more_threads_than_cores_is_said_in_the_header(monkeypatch):
    """``train.threads: 64`` on 2 cores runs as asked, and the run header's threads line says it is more
    than the cores (a note: a user may mean it); as many as the cores says nothing more."""
    from sparsetrain.engines.compiled import thread_count as th

    monkeypatch.delenv("SPARSETRAIN_THREADS", raising=False)
    monkeypatch.setattr(th, "available_cores", lambda: 2)
    count, why = th.choose_threads(64)
    assert (count, why) == (64, "more than the 2 cores this process may use")
    assert describe_threads(count, False, "compiled", why=why) == (
        "64 (more than the 2 cores this process may use), Hogwild (lock-free)")
    assert th.choose_threads(2) == (2, "")
    monkeypatch.setenv("SPARSETRAIN_THREADS", "3")
    assert th.choose_threads("auto") == (3, "auto: $SPARSETRAIN_THREADS; more than the 2 cores this process may use")
