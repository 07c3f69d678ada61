"""The ``data.*`` keys of the hashed formats (CSV/TSV, Vowpal Wabbit) and stdin, end to end:
config checks, training from CSV in memory and streamed, from stdin in a real subprocess."""
from __future__ import annotations

import os
import pathlib
import random
import subprocess
import sys

import numpy as np
import pytest
import yaml

from sparsetrain.base import ConfigError, DataFormatError
from sparsetrain.config import config_from_dict
from sparsetrain.trainer import make_iter, train

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
BITS = 8


def _write_tsv(path, rows=600, seed=0):
    rng = random.Random(seed)
    lines = []
    for _ in range(rows):
        c1, c2, n = rng.choice("abcdef"), rng.choice("xyz"), rng.random() * 3
        y = int(rng.random() < (0.85 if c1 in "abc" else 0.15))
        lines.append(f"{y}\t{n:.3f}\t{c1}\t{c2}")
    path.write_text("\n".join(lines) + "\n")


def _doc(train, **data):
    d = {"train": train, "csv": {"columns": ["y", "n", "c1", "c2"]}, "label": "y", "numeric": ["n"],
         "categorical": ["c1", "c2"], "crosses": [["c1", "c2"]], "hash_bits": BITS, "batch_size": 1}
    d.update(data)
    return {
        "data": d,
        "model": {"variables": {"data": {"stype": "csr"}, "label": {},
                                "weight": {"stype": "row_sparse", "shape": [2**BITS + 1, 1], "init": "zero"},
                                "bias": {"shape": [1]}},
                  "ops": [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]},
                          {"name": "pred", "op": "broadcast_add", "inputs": ["dot", "bias"]}],
                  "loss": {"name": "out", "op": "LogisticRegressionOutput", "data": "pred", "label": "label"}},
        "optimizer": {"name": "adagrad", "learning_rate": 0.1},
        "train": {"epochs": 1, "metrics": ["log_loss"]},
    }


def _cfg(tmp_path, doc):
    return config_from_dict(doc, source=str(tmp_path / "c.yaml"))


def test_gen_data_s_csv_reads_with_the_obvious_config(tmp_path):
    """gen-data writes a header line; ``csv.header`` defaults to true unless ``columns`` names the fields,
    so a config naming its columns and nothing of ``data.csv`` reads it (it said 'data.csv: give `columns`
    (the names in file order) or `header: true`')."""
    from click.testing import CliRunner

    from sparsetrain.cli import main
    from sparsetrain.io.csv_reader import load_csv

    out = tmp_path / "g.csv"
    res = CliRunner().invoke(main, ["gen-data", "--format", "csv", "--rows", "20", "--numeric", "2",
                                    "--categorical", "2", "--task", "binary", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    doc = _doc(str(out), label="label", numeric=["i1", "i2"], categorical=["c1", "c2"], crosses=[])
    del doc["data"]["csv"]
    doc["model"]["variables"]["weight"]["shape"] = [2**BITS + 2, 1]
    cfg = _cfg(tmp_path, doc)
    assert cfg.data.csv.header is None and cfg.csv_schema().header
    X, y, _ = load_csv(str(out), cfg.csv_schema())
    assert X.shape[0] == 20 and set(np.unique(y)) <= {0.0, 1.0}
    doc["data"]["csv"] = {"columns": ["label", "i1", "i2", "c1", "c2"]}  # columns given: the first line is data
    assert not _cfg(tmp_path, doc).csv_schema().header


def test_csv_num_features_is_hash_buckets_plus_numeric_columns(tmp_path):
    _write_tsv(tmp_path / "d.tsv")
    cfg = _cfg(tmp_path, _doc("d.tsv"))
    assert cfg.data_format() == "csv" and cfg.num_features == 2**BITS + 1
    doc = _doc("d.tsv", num_features=10)
    with pytest.raises(ConfigError, match=r"data.num_features: 10 but the csv data has 2\*\*hash_bits \+ "
                                          r"len\(numeric\) = 257"):
        _cfg(tmp_path, doc)


@pytest.mark.parametrize("change, words", [
    ({"train": "d.libsvm"}, "data.label: only for csv or vw data"),
    ({"csv": {"header": False}}, "data.csv: give `columns`"),
    ({"crosses": [["c1", "n"]]}, r"data.crosses\[0\]: 'n' is not one of data.categorical"),
    ({"categorical": ["c1", "c2", "c9"]}, "data.categorical: no column 'c9' in data.csv.columns"),
    ({"weight_column": "wt"}, "data.weight_column: no column 'wt' in data.csv.columns"),
    ({"weight_column": "n"}, "data.numeric: column 'n' is already in data.weight_column"),
    ({"hash_bits": 40}, "data.hash_bits"),
    # a schema of no feature column trained a model of its bias alone, silently
    ({"numeric": [], "categorical": [], "crosses": []}, r"data.numeric, data.categorical: both empty, so the rows "
                                                        r"would have no features; name the feature columns"),
    ({"train": "-", "format": "csv", "cache": "memory"}, "data.cache: memory: stdin is read once"),
    ({"train": "-", "format": "csv", "shuffle": True, "cache": "stream"}, "data.shuffle: .* data.cache: disk"),
])
def test_config_errors_name_the_key(tmp_path, change, words):
    _write_tsv(tmp_path / "d.tsv")
    (tmp_path / "d.libsvm").write_text("1 1:1\n")
    with pytest.raises(ConfigError, match=words):
        _cfg(tmp_path, _doc(**{"train": "d.tsv", **change}))


def test_streamed_stdin_is_one_epoch_and_libsvm_stdin_needs_zero_based(tmp_path):
    doc = _doc("-", format="csv", cache="stream")
    doc["train"]["epochs"] = 3
    with pytest.raises(ConfigError, match=r"train.epochs: 3: stdin \('-'\) streamed is read once; set 1, or "
                                          r"data.cache: disk \(or auto\)"):
        _cfg(tmp_path, doc)
    for cache in ("disk", "auto"):  # kept in a disk cache for the run
        doc["data"]["cache"] = cache
        _cfg(tmp_path, doc)
    doc = _doc("-", format="libsvm")
    for k in ("csv", "label", "numeric", "categorical", "crosses", "hash_bits"):
        del doc["data"][k]
    doc["data"]["num_features"] = 10
    doc["model"]["variables"]["weight"]["shape"] = [10, 1]
    doc["data"]["cache"] = "stream"
    with pytest.raises(ConfigError, match=r"data.zero_based: auto needs all of stdin's feature indices .* set "
                                          r"data.zero_based: true or false, or data.cache: disk \(or auto\)"):
        _cfg(tmp_path, doc)
    for cache in ("disk", "auto"):  # decided from the disk cache
        doc["data"]["cache"] = cache
        _cfg(tmp_path, doc)


def test_memory_and_stream_iterators_give_the_same_batches(tmp_path):
    _write_tsv(tmp_path / "d.tsv", rows=100)
    batches = []
    for cache in ("memory", "stream"):
        cfg = _cfg(tmp_path, _doc("d.tsv", cache=cache, batch_size=16))
        it, _ = make_iter(cfg, cfg.train_files(), for_training=True)
        batches.append([(b.data[0].asscipy().toarray(), b.label[0].asnumpy()) for b in it])
    assert len(batches[0]) == len(batches[1]) == 7
    for (xa, ya), (xb, yb) in zip(*batches):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_training_from_csv_learns(tmp_path):
    _write_tsv(tmp_path / "d.tsv", rows=3000)
    doc = _doc("d.tsv")
    doc["train"]["epochs"] = 2
    result = train(_cfg(tmp_path, doc), output_dir=str(tmp_path / "run"))
    assert result.final["log_loss"] < 0.5  # the planted rule's entropy is 0.42; a constant model has 0.69


def test_fit_reads_stdin_once_in_a_subprocess(tmp_path):
    _write_tsv(tmp_path / "d.tsv", rows=300)
    doc = _doc("-", format="csv", csv={"columns": ["y", "n", "c1", "c2"], "delimiter": "\t"}, label_values=[0, 1])
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(doc))
    with open(tmp_path / "d.tsv", "rb") as f:
        proc = subprocess.run([sys.executable, "-m", "sparsetrain.cli", "fit", str(tmp_path / "c.yaml"), "-q",
                               "--output", str(tmp_path / "run")], stdin=f, capture_output=True, text=True,
                              env=ENV, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "epoch 0" in proc.stdout and "log_loss" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "sparsetrain.cli", "fit", str(tmp_path / "c.yaml"), "-q",
                          "--output", str(tmp_path / "run2")], input="1\t2\ta\tb\nx\t1\ta\tb\n",
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert bad.returncode == 1 and ("error: <stdin>:2: label 'x' is a third value; this binary model's labels are 0 "
                                    "(→ 0) and 1 (→ 1)") in bad.stderr


def test_a_stream_is_read_once(tmp_path):
    from sparsetrain.io.csv_reader import CSVReader, CSVSchema

    r = CSVReader("-", CSVSchema(columns=["y", "x"], numeric=["x"]))
    r._stdin_read = True
    with pytest.raises(DataFormatError, match="<stdin>: a stream can be read once"):
        list(r)


def test_a_dumped_libsvm_config_reloads(tmp_path):
    # every key of a dumped config is "set": only values other than the defaults count as given
    from sparsetrain.config import load_config

    cfg = load_config(str(ROOT / "configs" / "logreg.yaml"))
    doc = yaml.safe_load(cfg.to_yaml(str(tmp_path / "run")))
    assert config_from_dict(doc, source=str(tmp_path / "c.yaml")).data_format() == "libsvm"


def test_keep_feature_names_writes_the_id_to_names_map(tmp_path):
    import json

    from sparsetrain.io.feature_names import feature_names_doc, read_feature_names, vw_feature_keys
    from sparsetrain.io.hashing import feature_id

    _write_tsv(tmp_path / "d.tsv", rows=200)
    doc = _doc("d.tsv", keep_feature_names=True)
    result = train(_cfg(tmp_path, doc), output_dir=str(tmp_path / "run"))
    names = read_feature_names(tmp_path / "run" / "feature_names.json")
    assert names[feature_id("c1=a", BITS)] == ["c1=a"] or "c1=a" in names[feature_id("c1=a", BITS)]
    assert "c1=b^c2=z" in names[feature_id("c1=b^c2=z", BITS)]
    assert names[2**BITS] == ["n"]
    keys = {k for v in names.values() for k in v}
    assert len(keys) == 6 + 3 + 18 + 1 and result.final
    # collisions are listed: 4 keys in 2 buckets
    d = feature_names_doc(["a", "b", "c", "d"], 1, 2)
    assert d["collisions"] == sorted(int(k) for k, v in d["names"].items() if len(v) > 1) and d["collisions"]
    assert json.loads(json.dumps(d)) == d
    (tmp_path / "a.vw").write_text("1 |u x y:2 |i z\n0 | w\n")
    assert vw_feature_keys(tmp_path / "a.vw", [["u", "i"]]) == {"u^x", "u^y", "i^z", "w", "u^x^i^z", "u^y^i^z"}


def test_export_names_each_hashed_row_with_every_key_that_hashes_to_it(tmp_path):
    """keep_feature_names, then ``export`` as a user runs them: with 16 buckets the 6 + 3 values and 18 crosses
    collide, and each exported row names the keys scikit-learn's murmurhash3_32 puts in its bucket."""
    import json

    from click.testing import CliRunner

    from sparsetrain.cli import main

    sk_murmur = pytest.importorskip("sklearn.utils").murmurhash3_32
    _write_tsv(tmp_path / "d.tsv", rows=200)
    doc = _doc("d.tsv", keep_feature_names=True, hash_bits=4)
    doc["model"] = {"preset": "logistic"}
    train(_cfg(tmp_path, doc), output_dir=str(tmp_path / "run"))
    keys = ([f"c1={a}" for a in "abcdef"] + [f"c2={b}" for b in "xyz"]
            + [f"c1={a}^c2={b}" for a in "abcdef" for b in "xyz"])
    buckets: dict[int, set] = {}
    for k in keys:
        buckets.setdefault(sk_murmur(k, seed=0, positive=True) % 16, set()).add(k)
    saved = json.loads((tmp_path / "run" / "feature_names.json").read_text())
    assert saved["collisions"] == sorted(i for i, ks in buckets.items() if len(ks) > 1) and saved["collisions"]
    res = CliRunner().invoke(main, ["export", str(tmp_path / "run"), "--all"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["parameters"]["weight"]["rows"]
    named = {r["index"]: set(r["feature"]) for r in rows}
    assert named == {**{i: ks for i, ks in buckets.items()}, 16: {"n"}}


def test_vw_training_with_importance_and_tags_in_memory_and_streamed(tmp_path):
    # importance weights themselves: tests/test_sample_weight.py
    (tmp_path / "d.vw").write_text("1 |u a b\n0 |u c\n1 2 |u a\n1 1 'tag|u a\n")
    doc = _doc("d.vw", crosses=[["u", "u"]])
    for k in ("csv", "label", "numeric", "categorical"):
        del doc["data"][k]
    doc["model"]["variables"]["weight"]["shape"] = [2**BITS, 1]
    losses = []
    for cache in ("memory", "stream"):
        doc["data"]["cache"] = cache
        cfg = _cfg(tmp_path, doc)
        assert cfg.data_format() == "vw" and cfg.num_features == 2**BITS
        it, _ = make_iter(cfg, cfg.train_files(), for_training=True)
        assert [float(b.sample_weight[0]) for b in it] == [1, 1, 2, 1]
        losses.append(train(cfg, output_dir=str(tmp_path / f"run-{cache}")).final["log_loss"])
    assert losses[0] > 0 and losses[0] == pytest.approx(losses[1], rel=1e-6)


def test_predict_reads_a_csv_with_header_from_stdin(tmp_path):
    # the run's config names no delimiter (the .tsv suffix said tab) and no columns (the header did):
    # from a pipe the header line is consumed and sniffed, from a redirected file it is re-read
    _write_tsv(tmp_path / "d.tsv", rows=200)
    body = (tmp_path / "d.tsv").read_text()
    (tmp_path / "h.tsv").write_text("y\tn\tc1\tc2\n" + body)
    doc = _doc("h.tsv", csv={"header": True})
    train(_cfg(tmp_path, doc), output_dir=str(tmp_path / "run"))
    cmd = [sys.executable, "-m", "sparsetrain.cli", "predict", str(tmp_path / "run")]
    want = subprocess.run(cmd + [str(tmp_path / "h.tsv")], capture_output=True, text=True, env=ENV, timeout=300)
    piped = subprocess.run(cmd + ["-"], input=(tmp_path / "h.tsv").read_text(), capture_output=True, text=True,
                           env=ENV, timeout=300)
    with open(tmp_path / "h.tsv") as f:
        redirected = subprocess.run(cmd + ["-"], stdin=f, capture_output=True, text=True, env=ENV, timeout=300)
    assert want.returncode == 0, want.stderr
    assert len(want.stdout.splitlines()) == 201  # the header row, then 200 predictions
    assert piped.stdout == want.stdout and redirected.stdout == want.stdout, (piped.stderr, redirected.stderr)
