"""Tampered checkpoints: predict/evaluate on a damaged or inconsistent .params file is one clean line."""
from __future__ import annotations

import io
import json
import pathlib
import shutil

import numpy as np
import pytest
from test_cli import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")
DATA = ROOT / "data" / "linreg.libsvm"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("ckpt") / "run"
    assert cli("fit", LINREG, "--output", out, "--epochs", 2, "-q", "--set", "data.batch_size=50").exit_code == 1
    return out


@pytest.fixture
def run(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def params_file(run_dir) -> pathlib.Path:
    state = json.loads((run_dir / "checkpoint.json").read_text())
    return run_dir / f"{state['prefix']}-{state['epoch']:04d}.params"


def rewrite(path, change):
    """Load the npz entries, let ``change(entries)`` edit them, write them back."""
    with np.load(path) as z:
        entries = {k: z[k] for k in z.files}
    change(entries)
    buf = io.BytesIO()
    np.savez(buf, **entries)
    path.write_bytes(buf.getvalue())


def assert_clean_failure(run_dir, path):
    for cmd in ("predict", "evaluate"):
        res = cli(cmd, run_dir, DATA)
        assert res.exit_code == 1, (cmd, res.stdout, res.stderr)
        lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
        assert len(lines) == 1 and str(path) in lines[0], res.stderr
        assert "internal error" not in res.stderr and "Traceback" not in res.stderr
        assert res.stdout == ""


def _ids(e):
    """The weight's row ids as a file of an earlier version stores them (int64, every row written out;
    a file written now has none for a weight that holds every row)."""
    assert "arg:weight:indices" not in e
    return np.arange(len(e["arg:weight:data"]), dtype=np.int64)


def _reorder(e):
    e["arg:weight:indices"] = _ids(e)[::-1].copy()


def _duplicate(e):
    idx = _ids(e)
    idx[1] = idx[0]
    e["arg:weight:indices"] = idx


def _out_of_range(e):
    idx = _ids(e)
    idx[-1] = 100  # the weight has 100 rows
    e["arg:weight:indices"] = idx


def _negative(e):
    idx = _ids(e)
    idx[0] = -1
    e["arg:weight:indices"] = idx


def _missing_bias(e):
    for k in [k for k in e if k.startswith("arg:bias:")]:
        del e[k]


def _nan_weight(e):
    w = e["arg:weight:data"].copy()
    w[3] = np.nan
    e["arg:weight:data"] = w


def _short_data(e):
    e["arg:weight:data"] = e["arg:weight:data"][:-1]


def _bad_stype(e):
    e["arg:weight:stype"] = np.array("diagonal")


TAMPER = {"rows out of order": _reorder, "duplicate rows": _duplicate, "row id out of range": _out_of_range,
          "negative row id": _negative, "bias missing": _missing_bias, "NaN weight": _nan_weight,
          "fewer values than rows": _short_data, "unknown stype": _bad_stype}


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_an_inconsistent_params_file_is_refused(run, how):
    path = params_file(run)
    rewrite(path, TAMPER[how])
    assert_clean_failure(run, path)


@pytest.mark.parametrize("keep", [0.0, 0.1, 0.5, 0.99])
def test_a_truncated_or_empty_params_file_is_refused(run, keep):
    path = params_file(run)
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])
    assert_clean_failure(run, path)


def test_a_bit_flip_in_the_weights_fails_the_zip_crc(run):
    path = params_file(run)
    raw = bytearray(path.read_bytes())
    with np.load(path) as z:
        weights = z["arg:weight:data"].tobytes()
    at = bytes(raw).find(weights)
    assert at > 0
    raw[at + len(weights) // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    assert_clean_failure(run, path)


def test_an_unknown_compression_method_is_refused(run):
    path = params_file(run)
    raw = bytearray(path.read_bytes())
    central = bytes(raw).find(b"PK\x01\x02")  # the first central-directory entry
    assert central > 0
    raw[central + 10] = 99  # its compression method (zipfile: NotImplementedError)
    path.write_bytes(bytes(raw))
    assert_clean_failure(run, path)


def test_an_untampered_run_still_predicts(run):
    assert cli("predict", run, DATA).exit_code == 0


def test_a_params_file_of_the_earlier_format_loads_the_same(run):
    """Before session 33 a row-sparse weight's row ids were always written, as int64: such a file
    predicts what the file written now (no ids for a weight holding every row) predicts."""
    path = params_file(run)
    now = cli("predict", run, DATA)
    assert now.exit_code == 0
    rewrite(path, lambda e: e.update({"arg:weight:indices": _ids(e)}))
    before = cli("predict", run, DATA)
    assert before.exit_code == 0 and before.stdout == now.stdout


def test_row_ids_are_stored_narrow_or_not_at_all(tmp_path):
    from sparsetrain.ndarray.ndarray import CSRNDArray, NDArray, RowSparseNDArray
    from sparsetrain.params_file import load_params, save_params

    every = RowSparseNDArray(np.arange(8, dtype=np.float32).reshape(4, 2), np.arange(4, dtype=np.int64), (4, 2))
    some = RowSparseNDArray(np.ones((2, 2), np.float32), np.array([1, 3], np.int64), (5, 2))
    none = RowSparseNDArray(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), (5, 2))
    csr = CSRNDArray(np.array([1.0, 2.0], np.float32), np.array([0, 2], np.int64), np.array([0, 1, 2], np.int64), (2, 3))
    params = {"every": every, "some": some, "none": none, "csr": csr, "b": NDArray(np.ones(3, np.float32))}
    path = tmp_path / "x.params"
    save_params(str(path), params)
    with np.load(path) as z:
        assert "arg:every:indices" not in z.files
        assert z["arg:some:indices"].dtype == np.int32 and z["arg:csr:indices"].dtype == np.int32
    back, _ = load_params(str(path))
    for name, a in params.items():
        b = back[name]
        assert b.stype == a.stype and b.shape == a.shape and np.array_equal(b.asnumpy(), a.asnumpy()), name
        if a.stype != "default":
            assert b._indices.dtype == np.int64 and np.array_equal(b._indices, a._indices), name


@pytest.mark.slow
def test_every_single_byte_flip_and_truncation_is_clean_or_harmless(trained, tmp_path):
    """Deep: flip each byte (one bit) and cut at every 7th length; the answer is the untampered one or one
    clean error line naming the file."""
    clean = cli("predict", trained, DATA).stdout
    path = params_file(trained)
    raw = path.read_bytes()
    variants = [raw[:n] for n in range(0, len(raw), 7)]
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x04
        variants.append(bytes(flipped))
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    target = params_file(run)
    for content in variants:
        target.write_bytes(content)
        res = cli("predict", run, DATA)
        if res.exit_code == 0:
            assert res.stdout == clean
        else:
            assert res.exit_code == 1 and "internal error" not in res.stderr and str(target) in res.stderr


def test_the_symbol_file_is_written_only_when_it_changes(tmp_path):
    """Every epoch's checkpoint writes the same ``model-symbol.json``: once there, it is not rewritten (no
    write, no fsync); other bytes replace it."""
    from sparsetrain.fileio import write_changed

    path = tmp_path / "model-symbol.json"
    write_changed(str(path), b'{"nodes": []}')
    first = path.stat().st_ino
    write_changed(str(path), b'{"nodes": []}')
    assert path.stat().st_ino == first  # (write_atomic renames a new file into place)
    write_changed(str(path), b'{"nodes": [1]}')
    assert path.read_bytes() == b'{"nodes": [1]}' and path.stat().st_ino != first
    write_changed(str(path), b'{"nodes": ')  # a prefix of what is there is other bytes too
    assert path.read_bytes() == b'{"nodes": '


def test_checkpoint_json_is_written_after_the_files_it_names_are_synced(tmp_path, monkeypatch):
    """The checkpoint's archives and the epoch's metrics line wait for the disk at once, on threads of their own
    (``config.yaml`` under the epoch); ``checkpoint.json`` is renamed into place only after all are synced."""
    import os
    import threading

    from sparsetrain.config import load_config
    from sparsetrain.fileio import write_npz
    from sparsetrain.trainer.rundir import RunDir

    events, real_fsync, real_replace = [], os.fsync, os.replace

    def fsync(fd):
        real_fsync(fd)
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        events.append(("fsync", name.split(".tmp-")[-1].split(".")[0], threading.current_thread().name))

    def replace(src, dst, *a, **kw):
        real_replace(src, dst, *a, **kw)
        events.append(("replace", os.path.basename(dst), threading.current_thread().name))

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)

    def save(prefix, epoch):
        for ext in ("params", "states"):
            write_npz(f"{prefix}-{epoch:04d}.{ext}", {"w": np.arange(1000.0)})

    cfg = load_config(LINREG)
    with RunDir.open(cfg, str(tmp_path / "r")) as run:
        run.begin(cfg.to_yaml(run.path))
        run.append_metrics({"epoch": 0, "mse": 1.0})
        run.write_checkpoint(1, save, {})
    after = [e for e in events if e[0] == "replace" and e[1] == "checkpoint.json"]
    last = events.index(after[0])
    synced = {name for kind, name, _ in events[:last] if kind == "fsync"}
    assert {"config", "metrics", "model-0001"} <= synced  # (model-0001: both archives' temporary files)
    assert sum(1 for kind, name, _ in events[:last] if kind == "fsync" and name == "model-0001") == 2
    assert all(thread != "MainThread" for kind, name, thread in events[:last] if name != "checkpoint")
    assert np.load(tmp_path / "r" / "checkpoints" / "model-0001.states")["w"][-1] == 999.0
    assert (tmp_path / "r" / "config.yaml").read_text() == cfg.to_yaml(str(tmp_path / "r"))
    assert not list((tmp_path / "r").rglob(".tmp-*"))


def test_a_write_finishing_on_a_thread_that_fails_names_its_file_and_leaves_nothing(tmp_path, monkeypatch):
    """:class:`fileio.Syncs`: a file whose rename fails (a full disk) is an ``OutputError`` naming it at ``wait``,
    its temporary file removed; the other files of the batch are in place."""
    import errno
    import os

    from sparsetrain.base import OutputError
    from sparsetrain.fileio import Syncs, write_atomic, write_npz

    real = os.replace

    def replace(src, dst, *a, **kw):
        if str(dst).endswith("b.npz"):
            raise OSError(errno.ENOSPC, "No space left on device", src)
        return real(src, dst, *a, **kw)

    monkeypatch.setattr(os, "replace", replace)
    syncs = Syncs()
    with syncs.deferring():
        write_atomic(str(tmp_path / "a.txt"), "a")
        write_npz(str(tmp_path / "b.npz"), {"x": np.zeros(3)})
    with pytest.raises(OutputError) as e:
        syncs.wait()
    assert e.value.filename == str(tmp_path / "b.npz") and "no space left on device" in str(e.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    syncs.wait()  # (the failure is raised once)
    write_atomic(str(tmp_path / "c.txt"), "c")  # outside the block: written and renamed at once, as ever
    assert (tmp_path / "c.txt").read_text() == "c"


def test_nested_optimizer_states_round_trip():
    # multi_precision: a float16 weight's state is (master, rule states) — Adam's a tuple in a tuple, SGD's without
    # momentum (None, master); the file kept one level (a tuple inside was stacked into one array, a None refused)
    from sparsetrain import optimizer_states as F

    rng = np.random.default_rng(0)
    a, b, c = (rng.random((3, 2)).astype(np.float32) for _ in range(3))
    states = {0: (a, (b, c)), 1: (None, a), 2: (a, b), 3: a, 4: None, "w": ((a,), None, (b, (c, None)))}
    loaded = F.loads(F.dumps(states), "x")[0]

    def same(x, y):
        if isinstance(x, tuple):
            return isinstance(y, tuple) and len(x) == len(y) and all(same(p, q) for p, q in zip(x, y))
        return y is None if x is None else isinstance(y, np.ndarray) and np.array_equal(x, y) and x.dtype == y.dtype

    assert loaded.keys() == states.keys() and all(same(states[k], loaded[k]) for k in states), loaded


def test_two_deferred_writes_of_one_file_end_with_the_later_one(tmp_path, monkeypatch):
    # each write's fsync and rename ran on a thread of its own: the first write, slower to sync, was renamed
    # into place after the second and left the older content
    import os
    import threading
    import time

    from sparsetrain.fileio import Syncs, write_atomic

    real, first = os.fsync, threading.Event()

    def fsync(fd):
        if not first.is_set():
            first.set()
            time.sleep(0.3)
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "config.yaml"
    syncs = Syncs()
    with syncs.deferring():
        write_atomic(str(path), "first")
        write_atomic(str(path), "second")
        write_atomic(str(tmp_path / "other"), "x")  # (another file's does not wait for them)
    syncs.wait()
    assert path.read_text() == "second" and sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "other"]


def test_a_sync_thread_that_cannot_start_leaves_no_open_file_nor_temporary(tmp_path, monkeypatch):
    import os
    import threading

    from sparsetrain.fileio import Syncs, write_atomic

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    fds = len(os.listdir("/proc/self/fd"))
    monkeypatch.setattr(threading.Thread, "start", no_thread)
    with pytest.raises(RuntimeError), Syncs().deferring():
        write_atomic(str(tmp_path / "a.txt"), "a")
    assert len(os.listdir("/proc/self/fd")) == fds and os.listdir(tmp_path) == []


def test_the_state_count_is_checked_under_multi_precision_too():
    # a float16 weight's state is (master, the rule's states): one array more than the rule keeps; a float32
    # weight's, the rule's alone. The check was skipped under multi_precision (a state of too few arrays, e.g.
    # Adam's mean alone, went on to the update)
    import sparsetrain as st
    from sparsetrain import optimizer_states as F
    from sparsetrain.base import DataFormatError

    a = np.zeros((3, 1), np.float32)
    for opt, good, bad in [
        (st.optimizer.Adam(multi_precision=True), [(a, (a, a)), (a, a)], [a, (a,), (a, (a, a, a))]),
        (st.optimizer.SGD(multi_precision=True), [(None, a), None], [(None, (a, a))]),
        (st.optimizer.SGD(momentum=0.9, multi_precision=True), [(a, a), a], [None, (None, a, a, a)]),
    ]:
        F.check_states(opt, dict(enumerate(good)), {"rule": opt.rule_name}, "m.states")
        for state in bad:
            with pytest.raises(DataFormatError, match=r"^m.states: parameter 0 has \d optimizer state arrays; this "
                                                      r"run's optimizer \(\w+\) keeps \d \(and a float16 weight its "
                                                      r"float32 master copy\): the file is damaged"):
                F.check_states(opt, {0: state}, {"rule": opt.rule_name}, "m.states")
