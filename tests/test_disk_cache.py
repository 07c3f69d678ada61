"""``data.cache: disk`` (io/disk_cache.py): parsed once into binary files, memory-mapped after; a cache
that is stale (file size, mtime, parse options) or damaged (truncated, altered) is rebuilt, never read."""
import contextlib
import errno
import gc
import os
import pathlib
import threading

import numpy as np
import pytest

import sparsetrain as st
from sparsetrain.base import ConfigError, DataFormatError
from sparsetrain.io import disk_cache

FEATURES = 12


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(disk_cache.CACHE_ENV, str(tmp_path / "cache"))


def _write(path, rows=40, seed=0):
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        cols = np.sort(rng.choice(FEATURES, size=int(rng.integers(0, 5)), replace=False))
        lines.append(" ".join([f"{rng.normal():.4f}"] + [f"{c + 1}:{rng.uniform(0.1, 1):.3f}" for c in cols]))
    path.write_text("\n".join(lines) + "\n")
    return path


class Reads:
    """``read_blocks`` for load_cached, counting the parses."""

    def __init__(self, path, **kw):
        self.path, self.kw, self.count = path, kw, 0

    def __call__(self):
        self.count += 1
        kw = dict(num_features=FEATURES, zero_based=False, chunk_size=64, num_labels=1)
        kw.update(self.kw)
        return iter(st.io.LibSVMReader(self.path, **kw))


def _load(path, reads, options=None, dtype="float32"):
    return disk_cache.load_cached(path, options or {"zero_based": False, "num_features": FEATURES, "dtype": dtype},
                                  reads, dtype, FEATURES)


def _expected(path):
    X, y = st.io.load_libsvm(path, num_features=FEATURES, zero_based=False)
    return X.asscipy(), y


def test_parsed_once_then_memory_mapped_and_equal_to_the_parser(tmp_path):
    path = _write(tmp_path / "d.libsvm")
    reads = Reads(path)
    for _ in range(3):
        data, indices, indptr, labels, weights = _load(path, reads)
    assert reads.count == 1
    assert isinstance(data, np.memmap) and isinstance(indices, np.memmap)
    X, y = _expected(path)
    np.testing.assert_array_equal(weights, np.ones(len(y)))  # (LibSVM rows have weight 1)
    np.testing.assert_array_equal(indptr, X.indptr)
    np.testing.assert_array_equal(indices, X.indices)
    np.testing.assert_array_equal(data, X.data)
    np.testing.assert_array_equal(labels.astype(np.float32), y)


def test_a_changed_file_is_parsed_again(tmp_path):
    path = _write(tmp_path / "d.libsvm")
    reads = Reads(path)
    _load(path, reads)
    _write(path, rows=41)  # size
    assert len(_load(path, reads)[2]) == 42 and reads.count == 2
    st_ = os.stat(path)
    os.utime(path, ns=(st_.st_atime_ns, st_.st_mtime_ns + 10**9))  # mtime only
    _load(path, reads)
    assert reads.count == 3
    _load(path, reads)
    assert reads.count == 3


@pytest.mark.parametrize("option", [{"zero_based": True}, {"num_features": FEATURES + 1}, {"dtype": "float64"}])
def test_other_parse_options_get_their_own_cache(tmp_path, option):
    path = _write(tmp_path / "d.libsvm")
    reads = Reads(path)
    base = {"zero_based": False, "num_features": FEATURES, "dtype": "float32"}
    _load(path, reads, base)
    _load(path, reads, {**base, **option})
    assert reads.count == 2
    _load(path, reads, base)
    assert reads.count == 2


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_a_damaged_cache_is_rebuilt_not_read(tmp_path, damage):
    path = _write(tmp_path / "d.libsvm")
    reads = Reads(path)
    _load(path, reads)
    where = disk_cache.cache_path(path, {"zero_based": False, "num_features": FEATURES, "dtype": "float32"})
    target = os.path.join(where, "data.bin")
    if damage == "truncate":
        with open(target, "r+b") as f:
            f.truncate(os.path.getsize(target) - 4)
    elif damage == "flip":
        raw = bytearray(open(target, "rb").read())
        raw[5] ^= 0xFF
        open(target, "wb").write(bytes(raw))
    else:
        open(os.path.join(where, "manifest.json"), "w").write("{not json")
    data, *_ = _load(path, reads)
    assert reads.count == 2
    np.testing.assert_array_equal(data, _expected(path)[0].data)


def test_a_full_disk_warns_once_and_leaves_no_cache(tmp_path, monkeypatch):
    path = _write(tmp_path / "d.libsvm")
    real_open = open

    def full(file, mode="r", *a, **kw):
        if str(file).endswith("labels.bin") and "w" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(file, mode, *a, **kw)

    monkeypatch.setattr("builtins.open", full)
    with pytest.warns(UserWarning, match="cannot write the cache of .*No space left on device"):
        data, indices, indptr, labels, weights = _load(path, Reads(path))
    monkeypatch.setattr("builtins.open", real_open)
    X, _ = _expected(path)
    np.testing.assert_array_equal(indptr, X.indptr)
    np.testing.assert_array_equal(weights, np.ones(len(labels)))  # (as a cache read back gives them)
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(cache.iterdir())


def test_fit_with_a_disk_cache_equals_memory_and_shuffles(tmp_path):
    import pathlib

    from sparsetrain.config import load_config
    from sparsetrain.trainer import fit

    path = _write(tmp_path / "d.libsvm", rows=60)
    linreg = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml")
    results = {}
    for cache in ("memory", "disk", "disk"):
        cfg = load_config(linreg, [
            f"data.train={path}", "data.eval=null", f"data.num_features={FEATURES}", "data.zero_based=false",
            f"data.cache={cache}", "data.batch_size=4", "data.shuffle=true", "train.epochs=2", "train.seed=3",
            f"model.variables.weight={{stype: row_sparse, shape: [{FEATURES}, 1], init: zero}}",
            "optimizer={name: sgd, learning_rate: 0.05}", "train.metrics=[mse]", "train.target={}"])
        out = tmp_path / f"run-{cache}-{len(results)}"
        results[str(out)] = (cache, fit(cfg, output_dir=str(out)).history)
    histories = [h for _, h in results.values()]
    assert histories[0][-1]["engine"] == "compiled"
    for h in histories[1:]:
        np.testing.assert_allclose([r["mse"] for r in h], [r["mse"] for r in histories[0]], rtol=1e-6)
    assert any((tmp_path / "cache").iterdir())


# -- stdin (data.train: "-") with data.cache: disk: read once into a cache private to the run ----------------

@contextlib.contextmanager
def _stdin_pipe(text: str, write=None):
    """File descriptor 0 reading ``text`` from a pipe, as `cat data | sparsetrain fit ...` gives it (the
    readers open /dev/stdin, which click's CliRunner ``input=`` does not reach); ``write(fd)``: what
    writes the pipe instead, on its own thread."""
    r, w = os.pipe()
    write = write or (lambda fd: os.write(fd, text.encode()))

    def feed():
        with contextlib.suppress(BrokenPipeError):  # a run that stopped reading (a config error) closed it
            write(w)
        os.close(w)

    writer = threading.Thread(target=feed)
    writer.start()
    saved = os.dup(0)
    os.dup2(r, 0)
    os.close(r)
    try:
        yield
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        writer.join()


def _fit(*args, stdin=None):
    from click.testing import CliRunner

    from sparsetrain.cli import main

    linreg = pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml"
    base = ["fit", str(linreg), "--set", "data.eval=null", "--set", f"data.num_features={FEATURES}",
            "--set", "data.zero_based=false", "--set", "data.batch_size=4", "--set", "train.seed=3",
            "--set", f"model.variables.weight={{stype: row_sparse, shape: [{FEATURES}, 1], init: zero}}",
            "--set", "optimizer={name: sgd, learning_rate: 0.05}", "--set", "train.target={}"]
    with contextlib.nullcontext() if stdin is None else _stdin_pipe(stdin):
        return CliRunner().invoke(main, base + [str(a) for a in args], catch_exceptions=False)


def _stdin_caches(tmp_path):
    gc.collect()  # (a cache goes with its arrays)
    cache = tmp_path / "cache"
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


@pytest.mark.parametrize("shuffle", ["false", "true"])
def test_stdin_with_a_disk_cache_trains_epochs_as_the_file_does(tmp_path, shuffle):
    from sparsetrain.trainer import load_trained
    from sparsetrain.trainer.predict import checked_params

    path = _write(tmp_path / "d.libsvm", rows=60)
    common = ["--set", "data.cache=disk", "--set", f"data.shuffle={shuffle}", "--epochs", 3]
    from_file = _fit("--set", f"data.train={path}", "--output", tmp_path / "f", *common)
    from_stdin = _fit("--set", "data.train=-", "--output", tmp_path / "s", *common, stdin=path.read_text())
    assert from_file.exit_code == from_stdin.exit_code == 0, from_stdin.stderr
    assert from_stdin.stdout.count("epoch ") == 3
    (a, _), (b, _) = (checked_params(load_trained(str(tmp_path / r)).params_path, ["weight", "bias"]) for r in "fs")
    for name, value in a.items():
        np.testing.assert_array_equal(b[name].asnumpy(), value.asnumpy(), err_msg=name)
    assert [n for n in _stdin_caches(tmp_path) if not n.startswith("csr-")] == []  # the file's cache stays


def test_stdin_auto_caches_on_disk_when_it_needs_a_second_pass(tmp_path):
    text = _write(tmp_path / "d.libsvm", rows=20).read_text()
    res = _fit("--set", "data.train=-", "--epochs", 2, "--output", tmp_path / "a", stdin=text)
    assert res.exit_code == 0, res.stderr
    assert f"data.cache: auto: stdin is parsed once into a disk cache under {tmp_path / 'cache'} (for " \
           "train.epochs: 2; removed when the run ends)" in res.output
    res = _fit("--set", "data.train=-", "--epochs", 1, "--output", tmp_path / "b", stdin=text)
    assert res.exit_code == 0 and "data.cache: auto: stdin is streamed, read once" in res.output
    res = _fit("--set", "data.train=-", "--set", "data.cache=stream", "--epochs", 2, "--output", tmp_path / "c",
               stdin=text)
    assert res.exit_code == 2 and "data.cache: disk (or auto) to keep it" in res.stderr
    assert _stdin_caches(tmp_path) == []


def test_a_malformed_line_on_stdin_is_named_and_leaves_no_cache(tmp_path):
    good = _write(tmp_path / "d.libsvm", rows=30).read_text()
    res = _fit("--set", "data.train=-", "--set", "data.cache=disk", "--epochs", 2, "--output", tmp_path / "r",
               stdin=good + "1 3:x\n")
    assert res.exit_code == 1
    assert [ln for ln in res.stderr.splitlines() if ln.startswith("error:")] == [
        "error: <stdin>:31: feature value 'x' is not a number"]
    assert _stdin_caches(tmp_path) == []  # the interrupted first read left nothing a later run could read


def test_a_killed_runs_stdin_cache_is_removed_by_the_next(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    orphan = tmp_path / "cache" / f"stdin-{int(dead.stdout)}-0123abcd"
    orphan.mkdir(parents=True)
    (orphan / "data.bin").write_bytes(b"x")
    text = _write(tmp_path / "d.libsvm", rows=8).read_text()
    res = _fit("--set", "data.train=-", "--set", "data.cache=disk", "--output", tmp_path / "r", stdin=text)
    assert res.exit_code == 0, res.stderr
    assert not orphan.exists()


def test_text_labels_on_stdin_are_found_in_its_disk_cache(tmp_path):
    from click.testing import CliRunner

    from sparsetrain.cli import main

    rows = "".join(f"{'yes' if i % 3 else 'no'}\t{i % 7}\tc{i % 5}\n" for i in range(40))
    config = tmp_path / "c.yaml"
    config.write_text("""data: {train: "-", format: csv, csv: {columns: [y, n, c], delimiter: "\\t"}, label: y,
       numeric: [n], categorical: [c], hash_bits: 6, cache: disk, batch_size: 4}
model: {preset: logistic}
optimizer: {name: sgd, learning_rate: 0.1}
train: {epochs: 2, metrics: [log_loss], seed: 0}
""")
    for text, code, line in ((rows, 0, "labels: yes → 1, no → 0"),
                             (rows + "maybe\t1\tc1\n", 1, "error: <stdin> (row 41): label 'maybe' is a third value")):
        with _stdin_pipe(text):
            res = CliRunner().invoke(main, ["fit", str(config), "--output", str(tmp_path / f"r{code}")],
                                     catch_exceptions=False)
        assert res.exit_code == code and line in res.output, res.output
    assert _stdin_caches(tmp_path) == []


def _params(run):
    from sparsetrain.trainer import load_trained
    from sparsetrain.trainer.predict import checked_params

    params, _ = checked_params(load_trained(str(run)).params_path, ["weight", "bias"])
    return {k: v.asnumpy() for k, v in params.items()}


@pytest.mark.parametrize("base", ["one", "zero"])
def test_stdin_zero_based_auto_is_decided_from_its_disk_cache(tmp_path, base):
    path = _write(tmp_path / "d.libsvm", rows=30)
    text = path.read_text()
    if base == "zero":  # the same rows zero-based (ids 0..11, id 0 among them)
        text = "".join(" ".join([ln.split()[0]] + [f"{int(t.split(':')[0]) - 1}:{t.split(':')[1]}"
                                                   for t in ln.split()[1:]]) + "\n" for ln in text.splitlines())
        assert " 0:" in text
    common = ["--set", "data.shuffle=true", "--epochs", 2]
    from_file = _fit("--set", f"data.train={path}", "--output", tmp_path / "f", *common)
    res = _fit("--set", "data.train=-", "--set", "data.zero_based=auto", "--output", tmp_path / "s", *common,
               stdin=text)
    assert from_file.exit_code == res.exit_code == 0, res.stderr
    assert "(for train.epochs: 2; removed when the run ends)" in res.output  # auto: a disk cache
    a, b = _params(tmp_path / "f"), _params(tmp_path / "s")
    for name in a:
        np.testing.assert_array_equal(b[name], a[name], err_msg=name)
    assert all(n.startswith("csr-") for n in _stdin_caches(tmp_path))  # the stdin cache went with the run


def test_stdin_zero_based_auto_alone_picks_the_disk_cache_and_checks_the_range(tmp_path):
    text = _write(tmp_path / "d.libsvm", rows=10).read_text()
    res = _fit("--set", "data.train=-", "--set", "data.zero_based=auto", "--epochs", 1, "--set", "data.shuffle=false",
               "--output", tmp_path / "a", stdin=text)
    assert res.exit_code == 0 and "(for data.zero_based: auto; removed when the run ends)" in res.output
    # id 0 makes it zero-based, so id 12 (one-based, the last column) is past num_features 12
    res = _fit("--set", "data.train=-", "--set", "data.zero_based=auto", "--output", tmp_path / "b",
               stdin=text + "1 0:1\n")
    assert res.exit_code == 1 and [ln for ln in res.stderr.splitlines() if ln.startswith("error:")] == [
        f"error: <stdin> (row {1 + next(i for i, ln in enumerate(text.splitlines()) if ' 12:' in ln)}): feature "
        "index '12' is out of range for num_features=12 (stdin has index 0, so it is zero-based)"]
    res = _fit("--set", "data.train=-", "--set", "data.zero_based=auto", "--set", "data.cache=stream", "--epochs", 1,
               "--output", tmp_path / "c", stdin=text)
    assert res.exit_code == 2 and "set data.zero_based: true or false, or data.cache: disk (or auto)" in res.stderr
    assert _stdin_caches(tmp_path) == []


@pytest.mark.parametrize("fmt, cache", [("csv", "stream"), ("csv", "disk"), ("vw", "stream")])
def test_feature_names_of_stdin_are_collected_as_it_is_read(tmp_path, monkeypatch, fmt, cache):
    from click.testing import CliRunner

    from sparsetrain.cli import main
    from sparsetrain.io import chunks

    monkeypatch.setattr(chunks, "STREAM_CHUNK_SIZE", 256)  # several chunks: the header is in the first only
    if fmt == "csv":
        text = "y\tn\tc\td\n" + "".join(f"{i % 2}\t{i % 7}\tc{i % 5}\td{i % 3}\n" for i in range(60))
        data = ("format: csv, csv: {header: true, delimiter: \"\\t\"}, label: y, numeric: [n], "
                "categorical: [c, d], crosses: [[c, d]]")
    else:
        text = "".join(f"{i % 2} |u a{i % 5} b:{i % 3} |i z{i % 4}\n" for i in range(60))
        data = "format: vw, crosses: [[u, i]]"
    (tmp_path / f"d.{fmt}").write_text(text)
    runs = {}
    for train, stdin in (("d." + fmt, None), ("'-'", text)):
        config = tmp_path / "c.yaml"
        config.write_text(f"data: {{train: {train}, {data}, hash_bits: 5, keep_feature_names: true, "
                          f"label_values: [0, 1], cache: {cache}, batch_size: 4}}\n"
                          "model: {preset: logistic}\noptimizer: {name: sgd, learning_rate: 0.1}\n"
                          "train: {epochs: 1, metrics: [log_loss], seed: 0}\n")
        out = tmp_path / ("s" if stdin else "f")
        with contextlib.nullcontext() if stdin is None else _stdin_pipe(stdin):
            res = CliRunner().invoke(main, ["fit", str(config), "--output", str(out)], catch_exceptions=False)
        assert res.exit_code == 0, res.output
        assert "feature names in" in res.output
        runs[out.name] = (out / "feature_names.json").read_text()
    assert runs["s"] == runs["f"] and ("c=c1^d=d1" if fmt == "csv" else "u^a1^i^z1") in runs["s"]


@contextlib.contextmanager
def _gated_stdin(head: str, tail: str, gate: threading.Event, waited: list):
    """stdin from a pipe that gives ``head``, then waits for ``gate`` (at most a minute: an iterator that
    waits for the whole stream before its first batch would hang here) before ``tail`` and the end."""
    def write(fd):
        os.write(fd, head.encode())
        waited.append(gate.wait(60))
        os.write(fd, tail.encode())

    with _stdin_pipe("", write):
        try:
            yield
        finally:
            gate.set()  # (before the writer is joined)


def _stdin_config(tmp_path, **data):
    from sparsetrain.config import load_config

    linreg = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml")
    return load_config(linreg, ["data.train=-", "data.format=libsvm", "data.eval=null", f"data.num_features={FEATURES}",
                                "data.zero_based=false", "data.batch_size=4", "data.cache=disk", "train.epochs=2",
                                f"model.variables.weight={{stype: row_sparse, shape: [{FEATURES}, 1], init: zero}}"]
                       + [f"data.{k}={v}" for k, v in data.items()])


def test_stdin_epoch_one_trains_while_its_disk_cache_is_written(tmp_path, monkeypatch):
    from sparsetrain.io import chunks
    from sparsetrain.trainer.iterators import make_iter

    monkeypatch.setattr(chunks, "STREAM_CHUNK_SIZE", 256)
    text = _write(tmp_path / "d.libsvm", rows=400).read_text()
    cut = text.index("\n", len(text) // 2) + 1
    gate, waited, notes = threading.Event(), [], []
    with _gated_stdin(text[:cut], text[cut:], gate, waited):
        it, rows = make_iter(_stdin_config(tmp_path), ["-"], for_training=True, note=notes.append)
        it.reset()
        first = it.next()  # before the second half of stdin is written
        gate.set()
        epochs = [[first] + list(it)]
        it.reset()  # the cache is complete: epoch 2 reads it
        epochs.append(list(it))
    assert waited == [True] and rows is None
    assert any(n.endswith("the first epoch trains on the rows as they are written") for n in notes), notes
    assert type(it._current).__name__ == "NDArrayIter"
    X, y = st.io.load_libsvm(tmp_path / "d.libsvm", num_features=FEATURES, zero_based=False)
    for batches in epochs:
        assert len(batches) == 100
        np.testing.assert_array_equal(np.concatenate([b.label[0].asnumpy() for b in batches]), y)
        np.testing.assert_array_equal(np.vstack([b.data[0].asnumpy() for b in batches]), X.asnumpy())
    del it, first, epochs
    assert _stdin_caches(tmp_path) == []


def test_an_interrupted_first_epoch_leaves_no_stdin_cache(tmp_path, monkeypatch):
    from sparsetrain.io import chunks
    from sparsetrain.trainer.iterators import make_iter

    monkeypatch.setattr(chunks, "STREAM_CHUNK_SIZE", 256)
    text = _write(tmp_path / "d.libsvm", rows=400).read_text()
    with _stdin_pipe(text):
        it, _ = make_iter(_stdin_config(tmp_path), ["-"], for_training=True)
        it.reset()
        for _ in range(10):
            it.next()
        it.reset()  # the first pass stopped before its end: the cache is not complete
        assert not it._cache.done
        del it
    assert _stdin_caches(tmp_path) == []  # nor a temporary directory


def test_what_needs_every_row_first_is_said(tmp_path):
    from sparsetrain.trainer.iterators import make_iter

    text = _write(tmp_path / "d.libsvm", rows=20).read_text()
    notes = []
    with _stdin_pipe(text):
        it, rows = make_iter(_stdin_config(tmp_path, shuffle="true"), ["-"], for_training=True, note=notes.append)
    assert rows == 20 and type(it).__name__ == "NDArrayIter"
    assert notes == [f"data.cache: disk: stdin's cache under {tmp_path / 'cache'} (removed when the run ends): "
                     "written whole before the first epoch trains: data.shuffle draws from every row"]


@pytest.mark.parametrize("cache", ["disk", "stream"])
def test_empty_stdin_is_named_as_stdin(tmp_path, cache):
    res = _fit("--set", "data.train=-", "--set", f"data.cache={cache}", "--epochs", 2 if cache == "disk" else 1,
               "--output", tmp_path / "r", stdin="")
    assert res.exit_code == 1 and res.stderr.splitlines()[-1] == "error: <stdin>: no data rows"  # was '-: ...'
    assert _stdin_caches(tmp_path) == []


def _binary_stdin(tmp_path, cache, labels, zero_based="false"):
    """make_iter over stdin holding rows with ``labels`` (4 rows a 256-byte chunk; one-based ids), a logistic
    model without data.label_values; ``(iterator, config)``."""
    from sparsetrain.trainer.iterators import make_iter

    from sparsetrain.config import load_config

    text = "".join(f"{y} {1 + i % 7}:1 {9 + i % 3}:0.5\n" for i, y in enumerate(labels))
    linreg = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml")
    cfg = load_config(linreg, ["data.train=-", "data.format=libsvm", "data.eval=null", f"data.num_features={FEATURES}",
                               f"data.zero_based={zero_based}", "data.batch_size=4", f"data.cache={cache}",
                               f"train.epochs={2 if cache == 'disk' else 1}", "model.loss.op=LogisticRegressionOutput",
                               "train.metrics=[log_loss]", "train.target={}",
                               f"model.variables.weight={{stype: row_sparse, shape: [{FEATURES}, 1], init: zero}}"])
    with _stdin_pipe(text):
        return make_iter(cfg, ["-"], for_training=True)[0], cfg


@pytest.mark.parametrize("cache", ["stream", "disk", "auto"])
def test_stdin_binary_label_values_come_from_the_first_chunk(tmp_path, monkeypatch, cache):
    # a binary model without data.label_values on stdin: streamed, it was a ConfigError; with a disk cache
    # (auto's choice, even for one epoch) the whole cache was written before the first epoch trained
    from sparsetrain.io import chunks

    monkeypatch.setattr(chunks, "STREAM_CHUNK_SIZE", 256)
    it, cfg = _binary_stdin(tmp_path, cache, [1, -1] * 30)
    assert cfg.data.label_values == [-1.0, 1.0]
    assert type(it).__name__ == ("_StdinCacheEpochs" if cache == "disk" else "LibSVMIter")
    it.reset()
    assert np.concatenate([b.label[0].asnumpy() for b in it]).tolist() == [1.0, 0.0] * 30
    it, _ = _binary_stdin(tmp_path, cache, [1, -1] * 30 + [2])  # a third value later: its row
    it.reset()
    with pytest.raises(DataFormatError, match=r"^<stdin>(:61| \(row 61\)): label 2 is a third value"):
        list(it)


def test_stdin_binary_label_values_not_in_the_first_chunk(tmp_path, monkeypatch):
    from sparsetrain.io import chunks

    monkeypatch.setattr(chunks, "STREAM_CHUNK_SIZE", 256)
    labels = [1] * 40 + [0] * 20
    with pytest.raises(ConfigError, match=r"^data.label_values: <stdin> is streamed once and its first chunk "
                                          r"\(\d+ rows\) has the label value\(s\) 1: give the two"):
        _binary_stdin(tmp_path, "stream", labels)
    for cache in ("disk", "auto"):  # the disk cache is written whole first, as before
        it, cfg = _binary_stdin(tmp_path, cache, labels)
        assert type(it).__name__ == "NDArrayIter" and cfg.data.label_values == [0.0, 1.0]
        assert it.label[0][1].asnumpy().ravel().tolist() == [1.0] * 40 + [0.0] * 20


def test_stdin_zero_based_auto_reads_its_own_reader_and_finds_binary_label_values_in_the_cache(tmp_path, monkeypatch):
    """Under data.zero_based: auto stdin's index base and a binary model's label values are both found in the disk
    cache, written whole first: make_iter parses no first chunk, so _load_stdin_cached is never given a reader
    there (it reads through _IndexBase's; one given is refused, not ignored)."""
    from sparsetrain.io import chunks
    from sparsetrain.trainer import data

    monkeypatch.setattr(chunks, "STREAM_CHUNK_SIZE", 256)
    for cache in ("disk", "auto"):
        it, cfg = _binary_stdin(tmp_path, cache, [1, -1] * 30, zero_based="auto")
        assert type(it).__name__ == "NDArrayIter" and cfg.data.label_values == [-1.0, 1.0]
        x = it.data[0][1]
        assert sorted(set(x.indices.asnumpy().tolist())) == [0, 1, 2, 3, 4, 5, 6, 8, 9, 10]  # one-based ids 1..7, 9..11
    with pytest.raises(ValueError, match="_IndexBase's own reader"):
        data._load_stdin_cached(cfg, reader=object())  # (before stdin is read)

