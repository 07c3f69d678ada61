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
    with pytest.raises(DataFormatError, match=rf"^{bad}:42: label 1.5 is not a class id 0..4$"):
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


def test_a_label_is_named_as_the_file_writes_it_not_in_float64_digits():
    # a float32 label read from '44.693577' was named 44.69357681274414 (data/linreg.libsvm on a binary model)
    y = np.array([0, 47.902225, 44.693577], dtype=np.float32)
    mapping = labels.label_map("binary", [0, float(y[1])])
    with pytest.raises(DataFormatError, match=r"^f:3: label 44.693577 is a third value; this binary model's labels "
                                              r"are 0 \(→ 0\) and 47.902225 \(→ 1\)$"):
        mapping.apply(y, lambda r: f"f:{r + 1}")


# -- text labels (CSV/TSV) ---------------------------------------------------------------------------------

CRITEO = ROOT / "data" / "criteo_like.tsv"


def _relabel_tsv(dst, mapping, rows=300, src=CRITEO):
    """The first ``rows`` rows of a TSV with their labels mapped (``mapping``: old label text -> new)."""
    head, *body = src.read_text().splitlines()[: rows + 1]
    out = [head] + [mapping.get(line.split("\t", 1)[0], line.split("\t", 1)[0]) + "\t" + line.split("\t", 1)[1]
                    for line in body]
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dst


def _csv_config(train, eval_=None, **data):
    doc = yaml.safe_load((ROOT / "configs" / "criteo_like.yaml").read_text())
    doc["data"].update(train=str(train), eval=str(eval_) if eval_ else None, batch_size=16, shuffle=False, **data)
    doc["train"].update(epochs=1, target={})
    return config_from_dict(doc, source=str(ROOT / "configs" / "criteo_like.yaml"))


@pytest.mark.parametrize("cache", ["memory", "stream", "disk"])
def test_two_string_labels_train_the_same_model_as_zero_one(tmp_path, cache):
    ref = _relabel_tsv(tmp_path / "ref.tsv", {})
    # quoted, padded and unicode texts: "nö" → 0, "yes" → 1 (a positive name)
    text = _relabel_tsv(tmp_path / "text.tsv", {"0": '"nö "', "1": "yes"})
    text_eval = _relabel_tsv(tmp_path / "text_eval.tsv", {"0": "nö", "1": "yes"}, src=CRITEO.with_name(
        "criteo_like_eval.tsv"))
    ref_eval = _relabel_tsv(tmp_path / "ref_eval.tsv", {}, src=CRITEO.with_name("criteo_like_eval.tsv"))
    notes = Notes()
    a = fit(_csv_config(ref, ref_eval, cache=cache), output_dir=str(tmp_path / "a"))
    b = fit(_csv_config(text, text_eval, cache=cache), output_dir=str(tmp_path / "b"), reporter=notes)
    pa, pb = _params(a), _params(b)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    assert {k: v for k, v in a.final.items() if "seconds" not in k} == {
        k: v for k, v in b.final.items() if "seconds" not in k}
    assert "eval_log_loss" in b.final
    assert [n for n in notes.notes if n.startswith("labels:")] == [
        "labels: yes → 1, nö → 0 (text labels: a positive name such as yes, true or click → 1, else the later "
        "in sorted order; set data.label_values: [negative, positive] to choose)"]
    saved = yaml.safe_load((tmp_path / "b" / "config.yaml").read_text(encoding="utf-8"))
    assert saved["data"]["label_values"] == ["nö", "yes"]
    # predict and evaluate read the run's mapping from its config.yaml
    model = load_trained(str(tmp_path / "b"))
    assert model.evaluate(str(text))["log_loss"] == pytest.approx(load_trained(str(tmp_path / "a")).evaluate(
        str(ref))["log_loss"])
    np.testing.assert_array_equal(model.predict(str(text)), model.predict(str(ref)))  # scored without labels
    cols = model.predict_columns(str(text))
    assert set(cols["label"].tolist()) == {"nö", "yes"}  # predict's table shows the labels as in the file
    with pytest.raises(DataFormatError, match=rf"^{ref}:2: label 0 is a third value; this binary model's labels are "
                                              r"nö \(→ 0\) and yes \(→ 1\)"):
        model.evaluate(str(ref))


def test_a_second_label_value_after_the_first_chunks_is_found_by_a_streamed_run(tmp_path):
    """A streamed file's labels are first read in small chunks (trainer/data.py LABEL_CHUNK_SIZE) until two
    values are seen: here every label is 3 until the last 200 rows (~1.2 MB in), which have 3 and 7 (3 alone
    has no usual pair: a search that stopped early would be an error)."""
    head, *body = CRITEO.read_text().splitlines()
    tail = [("7" if line.split("\t", 1)[0] == "1" else "3") + "\t" + line.split("\t", 1)[1] for line in body[-200:]]
    body = ["3\t" + line.split("\t", 1)[1] for line in body[:-200]] + tail
    late = tmp_path / "late.tsv"
    late.write_text("\n".join([head] + body) + "\n")
    a = fit(_csv_config(late, cache="stream"), output_dir=str(tmp_path / "a"))
    b = fit(_csv_config(late, cache="stream", label_values=[3, 7]), output_dir=str(tmp_path / "b"))
    assert yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())["data"]["label_values"] == [3.0, 7.0]
    pa, pb = _params(a), _params(b)
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])


def test_text_label_values_choose_the_positive_class_and_a_third_value_names_file_and_line(tmp_path):
    text = _relabel_tsv(tmp_path / "t.tsv", {"0": ">50K", "1": "<=50K"}, rows=60)
    # sorted order: ">50K" after "<=50K" → 1; label_values turns it round
    assert labels.binary_pair("<=50K", ">50K") == ("<=50K", ">50K")
    assert labels.binary_pair("click", "noclick") == ("noclick", "click")
    assert labels.binary_pair(0.0, "yes") == (0.0, "yes") and labels.binary_pair(2.0, -1.0) == (-1.0, 2.0)
    cfg = _csv_config(text, label_values=[">50K", "<=50K"])
    ref = _relabel_tsv(tmp_path / "r.tsv", {}, rows=60)
    np.testing.assert_array_equal(_params(fit(cfg, output_dir=str(tmp_path / "a")))["weight"],
                                  _params(fit(_csv_config(ref), output_dir=str(tmp_path / "b")))["weight"])
    lines = text.read_text().splitlines()
    lines[41] = "maybe" + lines[41][lines[41].index("\t"):]
    text.write_text("\n".join(lines) + "\n")
    for cache in ("memory", "stream", "disk"):
        with pytest.raises(DataFormatError, match=rf"^{text}:42: label 'maybe' is a third value; this binary model's "
                                                  r"labels are >50K \(→ 0\) and <=50K \(→ 1\)"):
            fit(_csv_config(text, label_values=[">50K", "<=50K"], cache=cache), output_dir=str(tmp_path / cache))
    # a number among text values is a value of its own: 1 is not 'yes'
    lines[41] = "1" + lines[41][lines[41].index("\t"):]
    text.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=rf"^{text}:42: label 1 is a third value"):
        fit(_csv_config(text, label_values=[">50K", "<=50K"]), output_dir=str(tmp_path / "d"))


def test_two_texts_of_one_hash_are_an_error_naming_both(tmp_path):
    from sparsetrain.io.hashing import murmurhash3_32

    assert murmurhash3_32("v40595") == murmurhash3_32("v114311")
    text = _relabel_tsv(tmp_path / "t.tsv", {"0": "v40595", "1": "v114311"}, rows=40)
    first = 2 + [line.split("\t")[0] for line in text.read_text().splitlines()[1:]].index("v114311")
    with pytest.raises(DataFormatError, match=rf"^{text}:{first}: the labels 'v40595' and 'v114311' have the same "
                                              r"hash \(MurmurHash3\), so they cannot be told apart"):
        fit(_csv_config(text), output_dir=str(tmp_path / "r"))


def test_a_text_label_for_a_regression_model_is_an_error_naming_file_and_line(tmp_path):
    text = _relabel_tsv(tmp_path / "t.tsv", {"0": "no"}, rows=40)
    doc = yaml.safe_load((ROOT / "configs" / "criteo_like.yaml").read_text())
    doc["data"].update(train=str(text), eval=None)
    doc["model"]["loss"]["op"] = "LinearRegressionOutput"
    doc["train"].update(epochs=1, target={}, metrics=["rmse"])
    first = 2 + [line.split("\t")[0] for line in text.read_text().splitlines()[1:]].index("no")
    with pytest.raises(DataFormatError, match=rf"^{text}:{first}: label column 'label': 'no' is not a number \(a "
                                              r"regression label must be a number\)"):
        fit(config_from_dict(doc, source=str(ROOT / "configs" / "criteo_like.yaml")), output_dir=str(tmp_path / "r"))


def test_init_writes_text_label_values_that_fit_trains_and_refuses_them_for_regression(tmp_path):
    from click.testing import CliRunner

    from sparsetrain.cli import main

    data = _relabel_tsv(tmp_path / "d.tsv", {"0": "noclick", "1": "click"}, rows=80)
    res = CliRunner().invoke(main, ["init", str(data), "--task", "binary", "--out", str(tmp_path / "c.yaml")])
    assert res.exit_code == 0, res.output
    doc = yaml.safe_load((tmp_path / "c.yaml").read_text(encoding="utf-8"))
    assert doc["data"]["label_values"] == ["noclick", "click"]
    res = CliRunner().invoke(main, ["fit", str(tmp_path / "c.yaml"), "--epochs", "1", "--output", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["init", str(data), "--task", "regression", "--out", str(tmp_path / "x.yaml")])
    assert res.exit_code == 2 and "has text labels ({'click', 'noclick'}); a regression label must be a number" \
        in res.output


def test_text_label_values_on_libsvm_data_are_a_config_error(tmp_path):
    from sparsetrain.base import ConfigError

    with pytest.raises(ConfigError, match=r"^data.label_values: \['no', 'yes'\]: text label values are read from "
                                          r"CSV/TSV data only, and .*binary.libsvm is libsvm data"):
        fit(_config("logreg.yaml", BINARY, label_values=["no", "yes"]), output_dir=str(tmp_path / "r"))


def _drop_label(src, dst, header=True):
    """``src`` (a TSV whose first column is the label) without its label column (and without its header)."""
    lines = [line.split("\t", 1)[1] for line in src.read_text().splitlines()]
    dst.write_text("\n".join(lines if header else lines[1:]) + "\n", encoding="utf-8")
    return dst


def test_predict_scores_a_file_without_the_label_column_and_fit_and_evaluate_refuse_it(tmp_path):
    from sparsetrain.base import ConfigError
    from sparsetrain.io.csv_reader import load_csv

    ref = _relabel_tsv(tmp_path / "ref.tsv", {}, rows=120)
    test = _drop_label(ref, tmp_path / "test.tsv")  # a Kaggle test file: the header lacks the label
    fit(_csv_config(ref), output_dir=str(tmp_path / "run"))
    model = load_trained(str(tmp_path / "run"))
    np.testing.assert_array_equal(model.predict(str(test)), model.predict(str(ref)))
    cols, want = model.predict_columns(str(test)), model.predict_columns(str(ref))
    assert list(cols) == [c for c in want if c != "label"]  # no labels: no label column
    for c in cols:
        np.testing.assert_array_equal(cols[c], want[c])
    with pytest.raises(ConfigError, match=r"data.label: no column 'label' in the header of .*test.tsv"):
        model.evaluate(str(test))
    with pytest.raises(ConfigError, match=r"data.label: no column 'label' in the header of .*test.tsv"):
        fit(_csv_config(test), output_dir=str(tmp_path / "run2"))
    # ``csv.columns`` (no header): a first line one field short of them is the file without its label
    cfg = _csv_config(ref)
    names = ref.read_text().split("\n", 1)[0].split("\t")
    schema = cfg.csv_schema()
    schema.header, schema.columns = False, names
    X, y, _ = load_csv(_drop_label(ref, tmp_path / "bare.tsv", header=False), schema, unlabeled=True)
    schema.header = True
    Xr, yr, _ = load_csv(ref, schema)
    assert (X.asscipy() != Xr.asscipy()).nnz == 0 and np.isnan(y).all() and not np.isnan(yr).any()
    schema.header = False
    with pytest.raises(DataFormatError, match=r"bare.tsv:1: column 'i13'"):  # (fields shifted: an error)
        load_csv(tmp_path / "bare.tsv", schema)
    # predict's ids come from the same columns (the label dropped before the id column)
    from sparsetrain.trainer.predict import csv_ids

    cats = [f"c{j}" for j in range(1, 26)]
    ids = [line.split("\t")[-1] for line in ref.read_text().splitlines()[1:]]
    cfg = _csv_config(ref, categorical=cats, crosses=[], id_column="c26", csv={"header": False, "columns": names})
    assert csv_ids(cfg, str(tmp_path / "bare.tsv"), len(ids)).tolist() == ids


def test_a_row_without_a_label_shows_an_empty_label_beside_text_and_number_labels():
    y = np.array([1.0, np.nan, labels.text_label_bits("yes").view(np.float64)])
    assert labels.shown_labels(y, {}).tolist() == ["1", "", "?"]
    assert labels.shown_labels(y, {int(labels.text_label_bits("yes")) & 0xFFFFFFFF: "yes"}).tolist() == ["1", "", "yes"]


def test_text_labels_are_told_from_a_missing_label_in_one_place():
    # labels.text_labels_of serves BinaryValues, init's label summary, shown_labels and TextLabels.apply: a
    # NaN that is not TEXT_LABEL | hash (a row without a label) is no text (BinaryValues looked it up as one)
    y = np.array([labels.text_label_bits("yes"), np.float64(np.nan).view(np.uint64), np.float64(0.0).view(np.uint64),
                  labels.text_label_bits("no")], np.uint64).view(np.float64)
    names = {int(labels.text_label_bits(t) & np.uint64(0xFFFFFFFF)): t for t in ("yes", "no")}
    text, hashes = labels.text_labels_of(y)
    assert text.tolist() == [True, False, False, True]
    assert [names[int(h)] for h in hashes[text]] == ["yes", "no"]
    assert labels.shown_labels(y, names).tolist() == ["yes", "", "0", "no"]
    assert labels.TextLabels("binary", ("no", "yes")).apply(y).tolist() == [1.0, -1.0, -1.0, 0.0]
    found = labels.BinaryValues()
    found.add(y[:3], names)  # (was a KeyError: the NaN's low bits named no text)
    assert found.seen[0] == "yes"
