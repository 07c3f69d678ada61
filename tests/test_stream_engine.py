"""Streamed epochs on the compiled engine (engines/compiled/stream.py): the same batches give the
same parameters as in memory, across chunk boundaries, for every last-batch mode, with parts,
compressed files and generated plans; the graph engine iterating the same stream is the reference.

Chunks are tiny (a few rows each, some smaller than a batch) so that batches span chunks."""
import bz2
import gzip

import numpy as np
import pytest

import sparsetrain as st
from sparsetrain.base import NonFiniteError

ROWS, FEATURES = 53, 12


def _write(tmp_path, rows=ROWS, seed=0, compress=False):
    """A LibSVM file of ``rows`` random rows; ``compress``: True or "gz" (gzip), "bz2"."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        cols = np.sort(rng.choice(FEATURES, size=int(rng.integers(0, 5)), replace=False))
        feats = " ".join(f"{c + 1}:{rng.uniform(0.1, 1):.3f}" for c in cols)
        lines.append(f"{rng.integers(0, 2)} {feats}".strip())
    text = ("\n".join(lines) + "\n").encode()
    kind = "gz" if compress is True else compress
    path = tmp_path / (f"d.libsvm.{kind}" if kind else "d.libsvm")
    path.write_bytes({"gz": gzip.compress, "bz2": bz2.compress}[kind](text) if kind else text)
    return path


def _model(kind, dtype="float32"):
    data = st.sym.Variable("data", stype="csr", dtype=dtype)
    w = st.sym.Variable("weight", stype="row_sparse", shape=(FEATURES, 1), dtype=dtype)
    pred = st.sym.broadcast_add(st.sym.sparse.dot(data, w), st.sym.Variable("bias", shape=(1,), dtype=dtype))
    if kind == "plan":  # not the linear family: a generated plan
        v = st.sym.Variable("v_weight", stype="row_sparse", shape=(FEATURES, 2), dtype=dtype)
        pred = st.sym.elemwise_add(pred, st.sym.sum(st.sym.square(st.sym.dot(data, v)), axis=1, keepdims=True))
    return st.sym.LogisticRegressionOutput(data=pred, label=st.sym.Variable("label", dtype=dtype), name="out")


def _train(it, engine, kind="linear", epochs=3, dtype="float32", metrics=("log_loss", "auc")):
    st.random.seed(5)
    mod = st.mod.Module(_model(kind, dtype), data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(st.initializer.Normal(0.1))
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 0.1, "momentum": 0.9})
    metric = st.metric.create(list(metrics) if kind == "linear" else ["log_loss"])
    history, samples = [], []
    for epoch in range(epochs):
        metric.reset()
        stats = mod.run_epoch(it, metric, engine=engine, epoch=epoch)
        history.append([v for _, v in metric.get_name_value()])
        samples.append(stats.samples)
    assert mod.engine_choice[0] == engine, mod.engine_choice
    return {k: v.asnumpy() for k, v in mod.get_params()[0].items()}, history, samples


def _stream(path, bs, last, chunk=40, **kw):
    handle = None if last == "short" else last
    return st.io.LibSVMIter(path, (FEATURES,), batch_size=bs, label_name="label", zero_based=False,
                            round_batch=last != "short", last_batch_handle=handle, chunk_size=chunk, **kw)


def _memory(path, bs, last, dtype="float32"):
    X, y = st.io.load_libsvm(path, num_features=FEATURES, zero_based=False, dtype=dtype)
    return st.io.NDArrayIter(X, y, bs, last_batch_handle=last, label_name="label")


def _assert_equal(a, b, exact=True):
    pa, ha, sa = a
    pb, hb, sb = b
    assert sa == sb
    if exact:  # metric sums are added per call: the grouping differs, the parameters may not
        np.testing.assert_allclose(ha, hb, rtol=1e-12)
    else:
        np.testing.assert_allclose(ha, hb, rtol=1e-5, atol=1e-6)
    for name in pa:
        if exact:
            np.testing.assert_array_equal(pa[name], pb[name], err_msg=name)
        else:
            np.testing.assert_allclose(pa[name], pb[name], rtol=1e-5, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("bs", [1, 4, 7, 60])
@pytest.mark.parametrize("last", ["pad", "discard", "roll_over"])
def test_streamed_equals_in_memory_bit_for_bit(tmp_path, bs, last):
    path = _write(tmp_path)
    if bs > ROWS and last == "discard":
        pytest.skip("no batch at all")
    streamed = _train(_stream(path, bs, last), "compiled")
    _assert_equal(streamed, _train(_memory(path, bs, last), "compiled"))


@pytest.mark.parametrize("bs,last", [(4, "short"), (7, "roll_over"), (1, "pad"), (5, "pad")])
def test_streamed_compiled_equals_streamed_graph(tmp_path, bs, last):
    path = _write(tmp_path)
    _assert_equal(_train(_stream(path, bs, last), "compiled"), _train(_stream(path, bs, last), "graph"), exact=False)


@pytest.mark.parametrize("part", [0, 1, 2])
def test_parts_and_compressed_files_stream_as_the_graph_engine_iterates(tmp_path, part):
    path = _write(tmp_path, compress=part == 1)
    make = lambda: _stream(path, 4, "roll_over", num_parts=3, part_index=part)  # noqa: E731
    _assert_equal(_train(make(), "compiled"), _train(make(), "graph"), exact=False)


@pytest.mark.parametrize("bs,last", [(3, "pad"), (5, "roll_over")])
def test_generated_plans_stream(tmp_path, bs, last):
    path = _write(tmp_path)
    streamed = _train(_stream(path, bs, last, dtype="float64"), "compiled", kind="plan", dtype="float64")
    in_memory = _train(_memory(path, bs, last, dtype="float64"), "compiled", kind="plan", dtype="float64")
    _assert_equal(streamed, in_memory)
    _assert_equal(streamed, _train(_stream(path, bs, last, dtype="float64"), "graph", kind="plan", dtype="float64"),
                  exact=False)


def test_streamed_epoch_counts_and_progress(tmp_path):
    path = _write(tmp_path)
    it = _stream(path, 4, "pad")
    mod = st.mod.Module(_model("linear"), data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    mod.init_optimizer()
    seen = []
    stats = mod.run_epoch(it, st.metric.create("log_loss"), engine="compiled", batch_end_callback=seen.append)
    assert stats.samples == ROWS and stats.batches == -(-ROWS // 4) and stats.engine == "compiled"
    assert seen == sorted(seen) and seen[-1] == ROWS
    done, total = it.byte_progress()
    assert total == path.stat().st_size and done == total


@pytest.mark.parametrize("room", [True, False])
def test_a_batch_spanning_chunks_opens_the_next_chunks_piece(tmp_path, monkeypatch, room):
    """A batch whose rows span chunks joins the piece of the chunk that completes it (its earlier rows
    written after that chunk's, in the room of the parsed arrays): one piece a chunk, its rows as
    batch-by-batch iteration gives them. Without such room it is a piece of its own (a copy)."""
    from sparsetrain.io import stream_rows

    if not room:
        monkeypatch.setattr(stream_rows, "_room", lambda a, n: None)
    path = _write(tmp_path)
    it = _stream(path, 4, "pad", chunk=150)  # 2-8 rows a chunk (the first, half a chunk, 1-4)
    ends = np.cumsum([0] + [b.num_rows for b in it._data_reader])
    chunks = int(np.sum(ends[1:] // 4 > ends[:-1] // 4))  # those in which a batch ends
    it.reset()
    batches, pieces = [], 0
    for piece in it.epoch_pieces():
        pieces += 1
        x, y = piece.data[0][1].asnumpy(), piece.label[0][1].asnumpy()
        for b in range(len(piece.batch_ptr) - 1):
            rows = piece.order[piece.batch_ptr[b]:piece.batch_ptr[b + 1]]
            batches.append((x[rows], y[rows]))
    assert chunks > 5 and len(batches) == -(-ROWS // 4)
    assert pieces == chunks + 1 if room else pieces > chunks + 1  # (+ the padded last batch's)
    it.reset()
    for (x, y), batch in zip(batches, it, strict=True):
        np.testing.assert_array_equal(x, batch.data[0].asnumpy())
        np.testing.assert_array_equal(y, batch.label[0].asnumpy())
    _assert_equal(_train(_stream(path, 4, "pad", chunk=150), "compiled"), _train(_memory(path, 4, "pad"), "compiled"))


def _diverge(it, engine):
    data = st.sym.Variable("data", stype="csr")
    w = st.sym.Variable("weight", stype="row_sparse", shape=(FEATURES, 1))
    loss = st.sym.LinearRegressionOutput(data=st.sym.sparse.dot(data, w), label=st.sym.Variable("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    mod.init_optimizer(optimizer_params={"learning_rate": 1e18})
    with pytest.raises(NonFiniteError) as err:
        for epoch in range(3):
            mod.run_epoch(it, st.metric.create("mse"), engine=engine, epoch=epoch)
    return err.value


def test_a_diverging_batch_is_counted_from_the_epoch_start(tmp_path):
    path = _write(tmp_path)
    err = _diverge(_stream(path, 2, "pad", chunk=30), "compiled")
    ref = _diverge(_stream(path, 2, "pad", chunk=30), "graph")
    assert (err.epoch, err.batch) == (ref.epoch, ref.batch) and err.batch > 0
    assert f"batch {ref.batch}" in str(err)


def test_parameters_gone_non_finite_in_the_last_update_stop_the_streamed_epoch_as_in_memory(tmp_path):
    """The pieces train unchecked and the parameters are scanned once after the last: an update that
    makes them non-finite (the outputs before it finite) stops the epoch with the in-memory error."""
    path = _write(tmp_path)

    def error(it):
        data = st.sym.Variable("data", stype="csr")
        w = st.sym.Variable("weight", stype="row_sparse", shape=(FEATURES, 1), init=st.initializer.Zero())
        loss = st.sym.LinearRegressionOutput(data=st.sym.sparse.dot(data, w), label=st.sym.Variable("label"),
                                             name="out")
        mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
        mod.bind(it.provide_data, it.provide_label)
        mod.init_params()
        mod.init_optimizer(optimizer_params={"learning_rate": 3e38})  # one float32 update overflows
        with pytest.raises(NonFiniteError) as err:
            mod.run_epoch(it, st.metric.create("mse"), engine="compiled")
        return err.value

    streamed, memory = error(_stream(path, 25, "discard", chunk=30)), error(_memory(path, 25, "discard"))
    assert "parameters ['weight'] became non-finite during epoch 0" in str(streamed)
    assert (str(streamed), streamed.batch) == (str(memory), memory.batch)


def _config(path, *extra):
    import pathlib

    from sparsetrain.config import load_config

    linreg = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml")
    return load_config(linreg, [
        f"data.train={path}", "data.eval=null", f"data.num_features={FEATURES}", "data.zero_based=false",
        "data.cache=stream", "data.batch_size=4", "data.last_batch=roll_over", "data.shuffle=false",
        f"model.variables.weight={{stype: row_sparse, shape: [{FEATURES}, 1], init: zero}}",
        "optimizer={name: sgd, learning_rate: 0.1}", "train.metrics=[mse]", "train.target={}", *extra])


def test_fit_streams_on_the_compiled_engine_its_first_epoch_counting_bytes(tmp_path):
    from sparsetrain.trainer import Reporter, fit

    class Seen(Reporter):
        wants_batches = True

        def __init__(self):
            self.bytes, self.starts, self.info = [], [], None

        def run_start(self, info):
            self.info = info

        def epoch_start(self, epoch, total):
            self.starts.append(total)

        def epoch_bytes(self, done, total):
            self.bytes.append((len(self.starts), done, total))

    seen = Seen()
    path = _write(tmp_path)
    result = fit(_config(path, "train.epochs=2"), output_dir=str(tmp_path / "run"), reporter=seen)
    assert [r["engine"] for r in result.history] == ["compiled", "compiled"]
    assert "streamed" in seen.info["engine_reason"]
    size = path.stat().st_size  # known before the first chunk is parsed; epoch 1 knows its rows
    assert seen.starts[0] is None and seen.bytes[0] == (1, 0, size) and seen.bytes[-1] == (1, size, size)
    assert [d for _, d, _ in seen.bytes] == sorted(d for _, d, _ in seen.bytes)
    assert seen.starts[1] == result.history[0]["samples"] == 52  # 1 row rolls over


def test_a_malformed_line_mid_stream_names_file_line_and_keeps_the_last_checkpoint(tmp_path):
    import json

    from sparsetrain.base import DataFormatError
    from sparsetrain.trainer import fit

    path = _write(tmp_path, rows=400)
    out = tmp_path / "run"
    fit(_config(path, "train.epochs=1"), output_dir=str(out))
    before = (out / "checkpoint.json").read_text()
    lines = path.read_text().splitlines()
    lines[300] = "1 3:0.5 x:1"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=rf"{path}:301: feature index 'x' is not an integer"):
        fit(_config(path, "train.epochs=3"), output_dir=str(out), resume=True)
    assert (out / "checkpoint.json").read_text() == before
    assert json.loads(before)["epoch"] == 1


def test_a_resume_with_no_epoch_left_parses_none_of_the_stream(tmp_path):
    # was: the trainer parsed the stream's first chunks to see it held a batch before finding nothing to train
    from sparsetrain.trainer import fit

    path = _write(tmp_path)
    out = tmp_path / "run"
    fit(_config(path, "train.epochs=1"), output_dir=str(out))
    path.write_text("")  # parsed, an empty file is an error ("no data rows")
    result = fit(_config(path, "train.epochs=1"), output_dir=str(out), resume=True)
    assert result.resumed_from == 1 and len(result.history) == 1


def test_several_files_stream_one_after_the_other_as_in_memory(tmp_path):
    from sparsetrain.trainer import fit

    parts = []
    for k in range(3):
        (tmp_path / f"p{k}").mkdir()
        parts.append(_write(tmp_path / f"p{k}", rows=9 + 4 * k, seed=k, compress=k == 1))
    glob = f"[{', '.join(str(p) for p in parts)}]"
    runs = {}
    for cache in ("stream", "memory"):
        cfg = _config(parts[0], "train.epochs=2", f"data.train={glob}", f"data.cache={cache}")
        result = fit(cfg, output_dir=str(tmp_path / cache))
        assert [r["engine"] for r in result.history] == ["compiled", "compiled"]
        runs[cache] = result
    assert [r["samples"] for r in runs["stream"].history] == [r["samples"] for r in runs["memory"].history]
    np.testing.assert_allclose([r["mse"] for r in runs["stream"].history],
                               [r["mse"] for r in runs["memory"].history], rtol=1e-6)


def test_a_bad_label_in_the_second_file_names_that_file(tmp_path):
    from sparsetrain.base import DataFormatError
    from sparsetrain.config import load_config
    from sparsetrain.trainer import fit
    import pathlib

    a = _write(tmp_path)
    (tmp_path / "b").mkdir()
    b = _write(tmp_path / "b", rows=20, seed=1)
    lines = b.read_text().splitlines()
    lines[6] = "7 1:0.5"
    b.write_text("\n".join(lines) + "\n")
    logreg = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "logreg.yaml")
    cfg = load_config(logreg, [f"data.train=[{a}, {b}]", "data.eval=null", f"data.num_features={FEATURES}",
                               "data.zero_based=false", "data.cache=stream", "data.label_values=[0, 1]",
                               "data.batch_size=4", "data.shuffle=false", "train.epochs=1", "train.target={}",
                               f"model.variables.weight={{stype: row_sparse, shape: [{FEATURES}, 1], init: zero}}"])
    with pytest.raises(DataFormatError, match=rf"{b}:7"):
        fit(cfg, output_dir=str(tmp_path / "run"))


@pytest.mark.parametrize("kind", ["linear", "plan"])
def test_the_engine_keeps_no_streamed_chunk_alive(tmp_path, kind):
    """A streamed epoch's memory is a few chunks: the kernels do not remember a piece's buffers
    (they would keep their chunks alive), so the reader parses into the same few arrays again."""
    path = _write(tmp_path, rows=600)
    dtype = "float64" if kind == "plan" else "float32"
    it = _stream(path, 1, "pad", dtype=dtype)  # every piece is a view of a chunk's arrays
    _train(it, "compiled", kind=kind, epochs=2, dtype=dtype, metrics=("log_loss",))
    sets = len(it._data_reader._pool._sets)  # the most ever in use at once (up to the pool's limit, 16)
    assert sets <= 10, sets  # 120 chunks a pass: parsed ahead, queued and training


@pytest.mark.parametrize("bs,last", [(4, "roll_over"), (1, "pad"), (5, "discard")])
def test_a_shuffled_stream_trains_as_the_graph_engine_iterates_it(tmp_path, bs, last):
    """data.shuffle_window: the compiled engine's pieces hold the shuffled windows' batches, in the
    order batch-by-batch iteration gives them (same seed, same parameters)."""
    path = _write(tmp_path, rows=120)
    make = lambda: _stream(path, bs, last, shuffle_window=25)  # noqa: E731
    # (log_loss only: auc breaks ties among equal scores by order, and float32 vs float64 scores tie differently)
    shuffled = _train(make(), "compiled", metrics=("log_loss",))
    _assert_equal(shuffled, _train(make(), "graph", metrics=("log_loss",)), exact=False)
    with pytest.raises(AssertionError):  # and the order did change what was learnt
        _assert_equal(shuffled, _train(_stream(path, bs, last), "compiled", metrics=("log_loss",)), exact=False)


def test_every_streamed_format_reads_the_stream_chunk_size(tmp_path):
    """One source of truth for a stream's chunk size (io.chunks.STREAM_CHUNK_SIZE): LibSVM files
    read one after the other, Vowpal Wabbit and CSV streams, not the whole-file loads' larger chunks."""
    import pathlib

    from sparsetrain.config import load_config
    from sparsetrain.io.chunks import STREAM_CHUNK_SIZE
    from sparsetrain.trainer.iterators import make_iter

    linreg = pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml"
    a, b = _write(tmp_path), _write(tmp_path / "..", seed=1)
    (tmp_path / "d.vw").write_text("1 |a x y\n0 |a z\n")
    (tmp_path / "d.csv").write_text("1,a\n0,b\n")
    cases = {"libsvm files": [f"data.train=[{a}, {b}]", "data.zero_based=false"],
             "vw": [f"data.train={tmp_path / 'd.vw'}", "data.hash_bits=6"],
             "csv": [f"data.train={tmp_path / 'd.csv'}", "data.hash_bits=6", "data.categorical=[c]",
                     "data.csv.columns=[y, c]"]}
    for name, sets in cases.items():
        cfg = load_config(str(linreg), sets + ["data.cache=stream", "data.num_features=" +
                                               ("12" if name == "libsvm files" else "64"),
                                               "model.variables.weight.shape=[" +
                                               ("12" if name == "libsvm files" else "64") + ", 1]"])
        it, _ = make_iter(cfg, cfg.train_files(), for_training=True)
        reader = it._data_reader
        readers = getattr(reader, "readers", [reader])
        assert [r.source.chunk_size for r in readers] == [STREAM_CHUNK_SIZE] * len(readers), name


@pytest.mark.parametrize("kind", ["gz", "bz2"])
@pytest.mark.parametrize("bs,last", [(7, "roll_over"), (4, "pad")])
def test_compressed_files_stream_bit_identical_to_in_memory(tmp_path, kind, bs, last):
    path = _write(tmp_path, compress=kind)
    _assert_equal(_train(_stream(path, bs, last), "compiled"), _train(_memory(path, bs, last), "compiled"))


def test_a_malformed_line_chunks_into_the_stream_stops_there_with_the_last_checkpoint(tmp_path):
    """A bad line in the third chunk of a streamed epoch (its first chunks already trained): the error
    names file:line counted across the chunks, and the last complete checkpoint is untouched."""
    import json

    from sparsetrain.base import DataFormatError
    from sparsetrain.io.chunks import STREAM_CHUNK_SIZE
    from sparsetrain.trainer import fit

    path = tmp_path / "big.libsvm"
    count = int(2.6 * STREAM_CHUNK_SIZE / 15)  # lines of 15 to 17 bytes: more than 2.5 chunks
    lines = [f"{i % 2} {i % 11 + 1}:0.5 12:0.25" for i in range(count)]
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 2.5 * STREAM_CHUNK_SIZE
    out = tmp_path / "run"
    fit(_config(path, "train.epochs=1"), output_dir=str(out))
    before = (out / "checkpoint.json").read_text()
    bad = count - 10_000  # past two chunks
    lines[bad] = "1 3:0.5 x:1"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=rf"{path}:{bad + 1}: feature index 'x' is not an integer"):
        fit(_config(path, "train.epochs=3"), output_dir=str(out), resume=True)
    assert (out / "checkpoint.json").read_text() == before
    assert json.loads(before)["epoch"] == 1


@pytest.mark.parametrize("kind", ["linear", "plan"])
def test_parsed_chunks_are_not_checked_again_by_the_engine(tmp_path, monkeypatch, kind):
    """The parser vouches for a LibSVM chunk's rows (canonical, ids within num_features): a streamed
    piece says so (``checked_csr``) and the kernels skip their O(nnz) CSR check; in-memory data is
    still checked. The hashed formats (VW, CSV) vouch too (their kernels sort and mask the ids)."""
    from sparsetrain.engines.compiled import kernels
    from sparsetrain.io.vw_reader import VWReader

    path = _write(tmp_path)
    dtype = "float64" if kind == "plan" else "float32"
    it = _stream(path, 4, "pad", dtype=dtype)
    assert all(piece.checked_csr for piece in it.epoch_pieces())
    calls = []
    real = kernels.csr_check
    monkeypatch.setattr(kernels, "csr_check", lambda *a: calls.append(1) or real(*a))
    monkeypatch.setattr("sparsetrain.engines.compiled.runner.csr_check", kernels.csr_check)
    streamed = _train(_stream(path, 4, "pad", dtype=dtype), "compiled", kind=kind, dtype=dtype, metrics=("log_loss",))
    assert not calls
    in_memory = _train(_memory(path, 4, "pad", dtype=dtype), "compiled", kind=kind, dtype=dtype, metrics=("log_loss",))
    assert calls
    _assert_equal(streamed, in_memory)
    (tmp_path / "d.vw").write_text("1 |a x y\n0 |a z\n")
    vw = st.io.LibSVMIter(tmp_path / "d.vw", (64,), batch_size=1, label_name="label",
                          reader=VWReader(tmp_path / "d.vw", hash_bits=6))
    assert all(piece.checked_csr for piece in vw.epoch_pieces())
