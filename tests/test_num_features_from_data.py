"""``data.num_features`` may be left out for LibSVM data (SPEC §10): it is read from the training
files (largest index + 1, one pass, said in the run log); eval or predict data with a larger
index is an error naming file:line."""
from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsetrain.base import ConfigError, DataFormatError
from sparsetrain.config import load_config
from sparsetrain.io import dump_libsvm, load_libsvm
from sparsetrain.io.libsvm import libsvm_num_features
from sparsetrain.ndarray.sparse import csr_matrix


def _write(path, rows: list[str]):
    path.write_text("".join(r + "\n" for r in rows))
    return str(path)


def _config(tmp_path, data: dict, model=None) -> str:
    doc = {"data": {"batch_size": 4, **data},
           "model": model or {"preset": "logistic"},
           "optimizer": {"name": "sgd", "learning_rate": 0.1},
           "train": {"epochs": 1, "metrics": ["log_loss"]},
           "output": str(tmp_path / "run")}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.lists(st.integers(0, 60), max_size=6), min_size=1, max_size=12),
       base=st.sampled_from([True, False, "auto"]))
def test_the_count_is_what_load_libsvm_makes_of_the_file(tmp_path_factory, rows, base):
    lines = []
    shift = 0 if base is True else 1
    for ids in rows:
        ids = sorted(set(ids))
        lines.append("1 " + " ".join(f"{i + shift}:1" for i in ids))
    path = _write(tmp_path_factory.mktemp("nf") / "x.libsvm", lines)
    X, _ = load_libsvm(path, zero_based=base)
    assert libsvm_num_features([path], base) == X.shape[1]


def test_several_files_take_the_largest_index(tmp_path):
    a = _write(tmp_path / "a.libsvm", ["1 0:1 3:2"])
    b = _write(tmp_path / "b.libsvm", ["0 9:1"])
    assert libsvm_num_features([a, b], True) == 10


def test_a_preset_reads_num_features_from_the_training_files_and_says_so(tmp_path):
    from sparsetrain.trainer import fit

    train = _write(tmp_path / "t.libsvm", ["1 0:1 7:1", "0 2:1", "1 0:1 4:2", "0 1:1"])
    cfg = load_config(_config(tmp_path, {"train": train, "zero_based": True}))
    assert cfg.num_features == 8
    assert cfg.notes == ["data.num_features: 8, read from the training data (t.libsvm: largest feature index + 1); "
                         "set it to fix it"]
    notes = []

    class Reporter:  # what the CLI's reporter shows in the run log
        def __getattr__(self, name):
            return lambda *a, **k: None

        def note(self, text):
            notes.append(text)

        def busy(self, text):
            import contextlib
            return contextlib.nullcontext()

    fit(cfg, output_dir=str(tmp_path / "run"), reporter=Reporter())
    assert cfg.notes[0] in notes
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["num_features"] == 8


def test_a_graph_whose_shapes_follow_the_data_reads_it_too(tmp_path):
    train = _write(tmp_path / "t.libsvm", ["1 1:1 5:1", "0 2:1"])  # one-based: 5 columns
    model = {"variables": {"data": {"stype": "csr"}, "fc_weight": {"init": "zero"}},
             "ops": [{"name": "fc", "op": "FullyConnected", "inputs": ["data", "fc_weight"],
                      "params": {"num_hidden": 1, "no_bias": True}}],
             "loss": {"name": "out", "op": "LogisticRegressionOutput", "data": "fc", "label": "label"}}
    cfg = load_config(_config(tmp_path, {"train": train, "zero_based": "auto"}, model))
    assert cfg.num_features == 5 and len(cfg.notes) == 1


def test_declared_shapes_win_over_reading_the_data(tmp_path):
    train = _write(tmp_path / "t.libsvm", ["1 0:1 2:1"])
    model = {"variables": {"data": {"stype": "csr"}, "weight": {"stype": "row_sparse", "shape": [50, 1]}},
             "ops": [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]}],
             "loss": {"name": "out", "op": "LogisticRegressionOutput", "data": "dot", "label": "label"}}
    cfg = load_config(_config(tmp_path, {"train": train, "zero_based": True}, model))
    assert cfg.num_features == 50 and cfg.notes == []


def test_eval_data_with_a_larger_index_names_its_file_and_line(tmp_path):
    from sparsetrain.trainer import fit

    train = _write(tmp_path / "t.libsvm", ["1 0:1 3:1", "0 2:1"])
    ev = _write(tmp_path / "e.libsvm", ["1 0:1", "0 1:1", "1 4:1"])
    cfg = load_config(_config(tmp_path, {"train": train, "eval": ev, "zero_based": True}))
    with pytest.raises(DataFormatError) as e:
        fit(cfg, output_dir=str(tmp_path / "run"))
    assert str(e.value).startswith(f"{ev}:3: "), str(e.value)


def test_malformed_training_data_is_reported_while_counting(tmp_path):
    train = _write(tmp_path / "t.libsvm", ["1 0:1", "0 x:1"])
    with pytest.raises(DataFormatError) as e:
        load_config(_config(tmp_path, {"train": train, "zero_based": True}))
    assert str(e.value).startswith(f"{train}:2: "), str(e.value)


def test_stdin_cannot_be_counted(tmp_path):
    with pytest.raises(ConfigError) as e:
        load_config(_config(tmp_path, {"train": "-", "zero_based": True}))
    assert str(e.value).startswith("data.num_features: required by model.preset"), str(e.value)
