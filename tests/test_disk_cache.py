"""``data.cache: disk`` (io/disk_cache.py): parsed once into binary files, memory-mapped after; a cache
that is stale (file size, mtime, parse options) or damaged (truncated, altered) is rebuilt, never read."""
import errno
import os

import numpy as np
import pytest

import sparsetrain as st
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
        data, indices, indptr, labels = _load(path, reads)
    assert reads.count == 1
    assert isinstance(data, np.memmap) and isinstance(indices, np.memmap)
    X, y = _expected(path)
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
        data, indices, indptr, labels = _load(path, Reads(path))
    monkeypatch.setattr("builtins.open", real_open)
    X, _ = _expected(path)
    np.testing.assert_array_equal(indptr, X.indptr)
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
