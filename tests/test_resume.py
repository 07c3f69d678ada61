"""Exact resume: a run stopped after epoch k and resumed equals the uninterrupted run, bit for bit,
for every optimizer × learning-rate scheduler × engine; optimizer-state files are data only."""
from __future__ import annotations

import json
import os
import pathlib
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from sparsetrain import trainer
from sparsetrain.base import DataFormatError
from sparsetrain.cli import main
from sparsetrain.config import load_config

ROOT = pathlib.Path(__file__).resolve().parents[1]
LINREG = str(ROOT / "configs" / "linreg.yaml")
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}

OPTIMIZERS = {
    "sgd": ["optimizer.momentum=0.0"],
    "sgd_mom": [],  # the config's SGD(lr 0.05, momentum 0.9)
    "adagrad": ["optimizer.name=adagrad", "optimizer.momentum=null", "optimizer.learning_rate=0.5"],
    "adam": ["optimizer.name=adam", "optimizer.momentum=null", "optimizer.learning_rate=0.05"],
    "ftrl": ["optimizer.name=ftrl", "optimizer.momentum=null", "optimizer.learning_rate=0.5"],
}
# Each changes the rate during the first 2 epochs (1000 updates each) and again after the resume.
SCHEDULERS = {
    "none": None,
    "factor": "{factor: {step: 700, factor: 0.7}}",
    "multifactor": "{multifactor: {step: [500, 1500, 2500, 3500], factor: 0.6}}",
    "poly": "{poly: {max_update: 5000, pwr: 2}}",
    "cosine": "{cosine: {max_update: 5000, warmup_steps: 300}}",
}
ENGINES = ("compiled", "graph")
FAST = [("adam", "none", "compiled"), ("adam", "none", "graph"), ("sgd", "factor", "compiled"),
        ("sgd", "factor", "graph"), ("sgd_mom", "multifactor", "graph"), ("ftrl", "poly", "compiled"),
        ("adagrad", "cosine", "graph")]
ALL = [(o, s, e) for o in OPTIMIZERS for s in SCHEDULERS for e in ENGINES]


def overrides(opt: str, sched: str) -> list[str]:
    out = list(OPTIMIZERS[opt]) + ["train.target={}"]
    if SCHEDULERS[sched]:
        out.append(f"optimizer.lr_scheduler={SCHEDULERS[sched]}")
    return out


def fit(out, opt, sched, engine, epochs, resume=False):
    cfg = load_config(LINREG, overrides(opt, sched) + [f"train.epochs={epochs}"])
    trainer.train(cfg, output_dir=str(out), resume=resume, engine=engine)


def params(out, epoch) -> dict:
    with np.load(out / "checkpoints" / f"model-{epoch:04d}.params", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def metrics(out) -> list[dict]:
    keep = ("epoch", "mse", "samples")
    return [{k: r[k] for k in keep} for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())]


def assert_same_run(a, b, epoch):
    pa, pb = params(a, epoch), params(b, epoch)
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
    assert metrics(a) == metrics(b)


def check_resume(tmp_path, opt, sched, engine, first=2, total=4):
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(straight, opt, sched, engine, total)
    fit(resumed, opt, sched, engine, first)
    fit(resumed, opt, sched, engine, total, resume=True)
    assert_same_run(straight, resumed, total)


@pytest.mark.parametrize("opt,sched,engine", FAST)
def test_resume_equals_uninterrupted_run(tmp_path, opt, sched, engine):
    check_resume(tmp_path, opt, sched, engine)


@pytest.mark.slow
@pytest.mark.parametrize("opt,sched,engine", [c for c in ALL if c not in FAST])
def test_resume_equals_uninterrupted_run_every_combination(tmp_path, opt, sched, engine):
    check_resume(tmp_path, opt, sched, engine)


@pytest.mark.slow
@pytest.mark.parametrize("first", [1, 3])
def test_resume_after_any_epoch(tmp_path, first):
    check_resume(tmp_path, "adam", "factor", "compiled", first=first, total=5)


def test_engine_switch_on_resume_is_exact_at_batch_1(tmp_path):
    straight, switched = tmp_path / "straight", tmp_path / "switched"
    fit(straight, "adam", "factor", "graph", 4)
    fit(switched, "adam", "factor", "compiled", 2)
    fit(switched, "adam", "factor", "graph", 4, resume=True)
    pa, pb = params(straight, 4), params(switched, 4)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
    assert metrics(straight)[2:] == metrics(switched)[2:]  # epochs 0-1 were measured by the other engine


def test_engine_switch_on_resume_agrees_to_float32_rounding(tmp_path):
    """Batches of 32: the engines sum a batch's gradient in another order (README's resume section)."""
    extra = ["data.batch_size=32", "data.shuffle=true"]

    def run(out, engine, epochs, resume=False):
        cfg = load_config(LINREG, overrides("adam", "factor") + extra + [f"train.epochs={epochs}"])
        trainer.train(cfg, output_dir=str(out), resume=resume, engine=engine)

    straight, switched, same = tmp_path / "straight", tmp_path / "switched", tmp_path / "same"
    run(straight, "graph", 4)
    run(switched, "compiled", 2)
    run(switched, "graph", 4, resume=True)
    run(same, "graph", 2)
    run(same, "graph", 4, resume=True)
    assert_same_run(straight, same, 4)  # on one engine: exact
    pa, pb = params(straight, 4), params(switched, 4)
    for k in pa:
        if pa[k].dtype.kind == "f":
            np.testing.assert_allclose(pb[k], pa[k], rtol=1e-5, atol=1e-5 * np.abs(pa[k]).max(), err_msg=k)


# -- the state file is data only -------------------------------------------------------------------

class _CreatesAFile:
    """Unpickling this creates ``path``: what a crafted ``.states`` file could do."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickled_states_file_is_refused_without_unpickling(tmp_path):
    out = tmp_path / "run"
    fit(out, "sgd_mom", "none", "compiled", 1)
    marker = tmp_path / "pwned"
    (out / "checkpoints" / "model-0001.states").write_bytes(pickle.dumps(_CreatesAFile(str(marker))))
    with pytest.raises(DataFormatError, match="old pickled optimizer-state file; refusing to unpickle it"):
        fit(out, "sgd_mom", "none", "compiled", 2, resume=True)
    assert not marker.exists()
    sets = [x for a in overrides("sgd_mom", "none") for x in ("--set", a)]
    r = CliRunner().invoke(main, ["fit", LINREG, *sets, "--output", str(out), "--resume", "--epochs", "2", "--quiet"])
    assert r.exit_code == 1 and not marker.exists()
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and "model-0001.states is an old pickled optimizer-state file" in lines[0]


def test_states_file_is_an_npz_without_objects(tmp_path):
    out = tmp_path / "run"
    fit(out, "adam", "factor", "graph", 1)
    path = out / "checkpoints" / "model-0001.states"
    with np.load(path, allow_pickle=False) as z:  # raises if any array needed pickle
        meta = json.loads(bytes(z["meta"]).decode())
        assert all(z[k].dtype != object for k in z.files)
    assert meta["format"] == "sparsetrain-optimizer-states"
    assert meta["progress"]["num_update"] == 1000
    assert meta["progress"]["lr_scheduler"]["class"] == "FactorScheduler"


def test_truncated_states_file_is_a_clean_error(tmp_path):
    out = tmp_path / "run"
    fit(out, "adam", "none", "compiled", 1)
    path = out / "checkpoints" / "model-0001.states"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFormatError, match="model-0001.states: corrupt optimizer-state file"):
        fit(out, "adam", "none", "compiled", 2, resume=True)


def test_every_bit_flipped_states_file_is_a_clean_error_or_loads(tmp_path):
    # A flipped byte anywhere in a .states file: either it still loads (a flip inside an array's
    # values) or it is one DataFormatError naming the file -- never zlib/struct/... internals.
    from sparsetrain import optimizer_states

    out = tmp_path / "run"
    fit(out, "adam", "none", "compiled", 1)
    blob = (out / "checkpoints" / "model-0001.states").read_bytes()
    for pos in range(0, len(blob), max(1, len(blob) // 400)):
        damaged = bytearray(blob)
        damaged[pos] ^= 0xFF
        try:
            optimizer_states.loads(bytes(damaged), source="model-0001.states")
        except DataFormatError as e:
            assert str(e).startswith("model-0001.states"), str(e)


# -- a real kill -9 --------------------------------------------------------------------------------

def test_kill_9_then_resume_equals_uninterrupted_run(tmp_path):
    args = overrides("adam", "factor")
    cmd = [sys.executable, "-m", "sparsetrain.cli", "fit", LINREG, "--engine", "graph", "--epochs", "6", "--quiet"]
    cmd += [x for a in args for x in ("--set", a)]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--output", str(killed)], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    state = killed / "checkpoint.json"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if state.exists() and json.loads(state.read_text() or "{}").get("epoch", 0) >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = json.loads(state.read_text())["epoch"]
    assert 2 <= done < 6
    subprocess.run(cmd + ["--output", str(killed), "--resume"], env=ENV, check=True, stdout=subprocess.DEVNULL)
    straight = tmp_path / "straight"
    fit(straight, "adam", "factor", "graph", 6)
    assert_same_run(straight, killed, 6)
