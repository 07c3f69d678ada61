"""Label conventions (sparsetrain/labels.py): binary mapping, softmax label_base, file:line errors,
the metrics' label domains in both engines, and the same mapping for eval and ``evaluate``."""
from __future__ import annotations

import pathlib

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sparsetrain import labels
from sparsetrain.base import DataFormatError
from sparsetrain.config import config_from_dict
from sparsetrain.trainer import Reporter, fit, load_trained

ROOT = pathlib.Path(__file__).resolve().parents[1]
BINARY = ROOT / "data" / "binary.libsvm"
MULTI = ROOT / "data" / "multiclass.libsvm"


class Notes(Reporter):
    def __init__(self):
        self.notes = []

    def note(self, text):
        self.notes.append(text)


def _relabel(src, dst, mapping, comment=False):
    """Copy a LibSVM file with its labels mapped (``mapping``: old label text -> new)."""
    lines = src.read_text().splitlines()
    out = ["# relabelled copy"] if comment else []
    for line in lines:
        lab, _, rest = line.partition(" ")
        out.append(f"{mapping.get(lab, lab)} {rest}".rstrip())
    dst.write_text("\n".join(out) + "\n")
    return dst


def _config(name, train, eval_=None, **data):
    doc = yaml.safe_load((ROOT / "configs" / name).read_text())
    doc["data"]["train"] = str(train)
    doc["data"]["eval"] = str(eval_) if eval_ else None
    doc["data"].update(data)
    doc["data"]["shuffle"] = False
    doc["train"]["epochs"] = 2
    doc["train"]["target"] = {}
    return config_from_dict(doc, source=str(ROOT / "configs" / name))


def _params(result):
    from sparsetrain.module import load_params

    arg, _ = load_params(f"{result.checkpoint}")
    return {k: v.asnumpy() for k, v in arg.items()}


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_minus_one_plus_one_labels_train_the_same_model_as_zero_one(tmp_path, cache):
    pm = _relabel(BINARY, tmp_path / "pm.libsvm", {"0": "-1"})
    notes = Notes()
    a = fit(_config("logreg.yaml", BINARY, cache=cache), output_dir=str(tmp_path / "a"))
    b = fit(_config("logreg.yaml", pm, cache=cache), output_dir=str(tmp_path / "b"), reporter=notes)
    pa, pb = _params(a), _params(b)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    assert a.final["log_loss"] == b.final["log_loss"] and b.final["accuracy"] > 0.8
    assert [n for n in notes.notes if n.startswith("labels:")] == [
        "labels: 1 → 1, -1 → 0 (a binary model maps the larger of its two label values to 1; "
        "set data.label_values to choose)"]
    saved = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text())
    assert saved["data"]["label_values"] == [-1.0, 1.0]


def test_any_two_values_map_larger_to_one_and_explicit_values_choose(tmp_path):
    two = _relabel(BINARY, tmp_path / "two.libsvm", {"0": "3", "1": "7"})
    a = fit(_config("logreg.yaml", BINARY), output_dir=str(tmp_path / "a"))
    b = fit(_config("logreg.yaml", two), output_dir=str(tmp_path / "b"))
    np.testing.assert_array_equal(_params(a)["weight"], _params(b)["weight"])
    # data.label_values picks the positive value: 3 -> 1 learns the opposite sign
    c = fit(_config("logreg.yaml", two, label_values=[7, 3]), output_dir=str(tmp_path / "c"))
    assert np.corrcoef(_params(b)["weight"].ravel(), _params(c)["weight"].ravel())[0, 1] < -0.9


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_a_third_label_value_is_an_error_naming_file_and_line(tmp_path, cache):
    bad = _relabel(BINARY, tmp_path / "bad.libsvm", {}, comment=True)
    lines = bad.read_text().splitlines()
    lines[1500] = "2" + lines[1500][1:]  # line 1501; the comment makes it data row 1499
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=rf"^{bad}:1501: label 2 is a third value; this binary model's labels "
                                              r"are 0 \(→ 0\) and 1 \(→ 1\)"):
        fit(_config("logreg.yaml", bad, cache=cache), output_dir=str(tmp_path / "r"))


def test_the_eval_set_uses_the_training_mapping(tmp_path):
    pm = _relabel(BINARY, tmp_path / "pm.libsvm", {"0": "-1"})
    # eval written with 0/1: 0 is a third value for a model trained on -1/+1
    with pytest.raises(DataFormatError, match=r"binary_eval.libsvm:\d+: label 0 is a third value"):
        fit(_config("logreg.yaml", pm, ROOT / "data" / "binary_eval.libsvm"), output_dir=str(tmp_path / "r"))
    pm_eval = _relabel(ROOT / "data" / "binary_eval.libsvm", tmp_path / "pm_eval.libsvm", {"0": "-1"})
    result = fit(_config("logreg.yaml", pm, pm_eval), output_dir=str(tmp_path / "ok"))
    model = load_trained(result.output_dir)
    values = model.evaluate(str(pm_eval))
    assert values["accuracy"] == pytest.approx(result.final["eval_accuracy"])
    with pytest.raises(DataFormatError, match=r"binary_eval.libsvm:\d+: label 0 is a third value"):
        model.evaluate(str(ROOT / "data" / "binary_eval.libsvm"))
    assert model.predict(str(ROOT / "data" / "binary_eval.libsvm")).shape == (500,)  # predict ignores labels


def test_one_label_value_alone_is_read_with_its_usual_pair_or_refused(tmp_path):
    found = labels.BinaryValues()
    found.add(np.array([-1.0, -1.0]))
    assert found.values("x") == (-1.0, 1.0)
    found = labels.BinaryValues()
    found.add(np.array([5.0]))
    with pytest.raises(DataFormatError, match="every label is 5; a binary model needs two label values"):
        found.values("data.train")


def test_softmax_label_base_one_trains_like_zero_based_ids(tmp_path):
    shifted = _relabel(MULTI, tmp_path / "m1.libsvm", {str(k): str(k + 1) for k in range(5)})
    notes = Notes()
    a = fit(_config("softmax.yaml", MULTI), output_dir=str(tmp_path / "a"))
    b = fit(_config("softmax.yaml", shifted, label_base=1), output_dir=str(tmp_path / "b"), reporter=notes)
    np.testing.assert_array_equal(_params(a)["weight"], _params(b)["weight"])
    assert "labels: class ids 1..5 → 0..4" in notes.notes
    with pytest.raises(DataFormatError, match=rf"^{shifted}:\d+: label 5 is not a class id 0..4; for labels 1..K set "
                                              "data.label_base: 1"):
        fit(_config("softmax.yaml", shifted), output_dir=str(tmp_path / "c"))


@pytest.mark.parametrize("cache", ["memory", "stream"])
def test_softmax_label_out_of_range_names_file_and_line(tmp_path, cache):
    bad = _relabel(MULTI, tmp_path / "bad.libsvm", {})
    lines = bad.read_text().splitlines()
    lines[41] = "1.5" + lines[41][1:]
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=rf"^{bad}:42: label 1.5 is not a class id 0..4"):
        fit(_config("softmax.yaml", bad, cache=cache), output_dir=str(tmp_path / "r"))


def test_metrics_refuse_labels_outside_their_domain():
    from sparsetrain import metric

    p = np.array([0.2, 0.9])
    for name in ("log_loss", "accuracy", "auc", "ce"):
        with pytest.raises(ValueError, match="needs (labels 0 or 1|class ids 0..1), got -1"):
            metric.create(name).update([np.array([-1.0, 1.0])], [p])
    with pytest.raises(ValueError, match="accuracy needs class ids 0..2, got 3"):
        metric.create("accuracy").update([np.array([3.0])], [np.array([[0.2, 0.3, 0.5]])])


@pytest.mark.parametrize("engine", ["compiled", "graph"])
def test_both_engines_refuse_minus_one_labels_for_log_loss(engine):
    import sparsetrain as st
    from sparsetrain import io, metric
    from sparsetrain.module import Module

    X, y = io.load_libsvm(str(BINARY), num_features=200, zero_based=True)
    y = np.where(y > 0, 1.0, -1.0).astype(np.float32)
    cfg = _config("logreg.yaml", BINARY)
    mod = Module(cfg.build_symbol(), data_names=["data"], label_names=["label"])
    it = io.NDArrayIter(X, y, batch_size=32, data_name="data", label_name="label")
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params(initializer=st.initializer.Zero())
    mod.init_optimizer(optimizer="sgd")
    with pytest.raises(ValueError, match="log_loss needs labels 0 or 1, got -1"):
        mod.run_epoch(it, metric.create("log_loss"), engine=engine)


@settings(max_examples=60, deadline=None)
@given(pair=st.lists(st.sampled_from([-2, -1, 0, 1, 2, 7, 100]), min_size=2, max_size=2, unique=True),
       picks=st.lists(st.integers(0, 1), min_size=1, max_size=40))
def test_binary_mapping_matches_scikit_learns_label_binarizer(pair, picks):
    from sklearn.preprocessing import LabelBinarizer

    y = np.array([pair[i] for i in picks], dtype=np.float32)
    found = labels.BinaryValues()
    for chunk in np.array_split(y, 3):
        found.add(chunk)
    if len(set(picks)) == 1 and y[0] not in (0, 1, -1):
        with pytest.raises(DataFormatError, match="a binary model needs two label values"):
            found.values("y")
        return
    mapping = labels.label_map("binary", found.values("y"))
    got = mapping.apply(y, lambda r: f"f:{r + 1}")
    if len(set(picks)) == 2:
        want = LabelBinarizer().fit(y).transform(y).ravel()
        np.testing.assert_array_equal(got, want)
    third = np.append(y, 99.0)
    with pytest.raises(DataFormatError, match=rf"^f:{len(y) + 1}: label 99 is a third value"):
        mapping.apply(third, lambda r: f"f:{r + 1}")
