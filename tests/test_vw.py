"""Vowpal Wabbit text format: the compiled parser against the hand-written reference
(namespaces, scales, importance, tags, crosses), the hashed keys, errors with file:line."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsetrain.base import DataFormatError
from sparsetrain.engines.compiled.kernels import csr_check
from sparsetrain.io import _vw_kernels as VK
from sparsetrain.io.vw_reader import VWReader, load_vw

sk_murmur = pytest.importorskip("sklearn.utils").murmurhash3_32

_name = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters="|: \t\r\n\x0b\x0c"),
                min_size=1, max_size=5)
_value = st.one_of(st.integers(-5, 5).map(str), st.floats(-100, 100, allow_nan=False).map(repr), st.just("0.5"))


@st.composite
def _line(draw):
    head = [draw(st.sampled_from(["1", "-1", "0", "0.25", "3e2"]))]
    if draw(st.booleans()):
        head.append(draw(st.sampled_from(["2", "0.5", "0", "1"])))
    text = " ".join(head)
    tag = draw(st.sampled_from([None, "'t1", "tag", "'x", "7"]))  # VW's tag: starts with ' or touches the '|'
    if tag is None:
        text += draw(st.sampled_from([" ", "  ", "\t"]))
    elif tag.startswith("'"):
        text += " " + tag + draw(st.sampled_from(["", " "]))
    else:
        text += " " + tag
    for k in range(draw(st.integers(1, 3))):
        ns = draw(st.sampled_from(["", "a", "b", "user"]))
        if ns and draw(st.integers(0, 4)) == 0:
            ns += ":" + draw(st.sampled_from(["2", "0.5", "-1"]))
        text += ("|" if k == 0 else draw(st.sampled_from(["|", " |"]))) + ns
        for _ in range(draw(st.integers(0, 4))):
            f = draw(_name)
            if draw(st.booleans()):
                f += ":" + draw(_value)
            text += draw(st.sampled_from([" ", "\t", "  "])) + f
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_line(), min_size=1, max_size=8), st.sampled_from(["\n", "\r\n"]), st.integers(1, 64),
       st.sampled_from([[], [["a", "b"]], [["a", "a"], ["user", "b"]]]))
def test_kernel_equals_reference(tmp_path_factory, lines, newline, chunk, crosses):
    text = newline.join(lines) + newline
    path = tmp_path_factory.mktemp("vw") / "t.vw"
    path.write_bytes(text.encode("utf-8"))
    labels, weights, rows = VK.parse_reference(text.replace("\r\n", "\n"), 8, crosses)
    X, y, w = load_vw(path, 8, crosses=crosses, dtype="float64", chunk_size=chunk)
    ref = np.zeros((len(rows), 256))
    for i, r in enumerate(rows):
        for j, v in r.items():
            ref[i, j] = v
    S = X.asscipy()
    np.testing.assert_allclose(S.toarray(), ref, rtol=1e-12, atol=1e-12)
    assert y.tolist() == labels and w.tolist() == weights
    # canonical rows with ids in range: what VWReader.rows_checked promises the compiled engine
    assert csr_check(S.indices.astype(np.int64), S.indptr.astype(np.int64), S.shape[1], S.shape[0]) == 2


def test_keys_are_namespace_caret_feature_and_crosses_join_them(tmp_path):
    p = tmp_path / "a.vw"
    p.write_text("1 3 'r1|u alice city:2 |i:0.5 book\n")
    X, y, w = load_vw(p, 20, crosses=[["u", "i"]], dtype="float64")
    h = lambda s: sk_murmur(s, 0, positive=True) % 2**20  # noqa: E731
    want = {h("u^alice"): 1.0, h("u^city"): 2.0, h("i^book"): 0.5,
            h("u^alice^i^book"): 0.5, h("u^city^i^book"): 1.0}
    S = X.asscipy()
    assert dict(zip(S.indices.tolist(), S.data.tolist())) == want
    assert y.tolist() == [1.0] and w.tolist() == [3.0]
    p.write_text("0 | plain\n")
    assert load_vw(p, 20)[0].asscipy().indices.tolist() == [h("plain")]


@pytest.mark.parametrize("text, line, words", [
    ("1 |a x\nno bar here\n", 2, "no '|'"),
    ("1 |a x\n\nabc |a x\n", 3, "label 'abc' is not a number"),
    ("1 -2 |a x\n", 1, "importance weight '-2'"),
    ("1 2 tag extra |a x\n", 1, "more than label, importance and tag"),
    ("1 2 tag |a x\n", 1, "more than label, importance and tag before the first '|': '1 2 tag '"),
    ("1 tag |a x\n", 1, "importance weight 'tag' is not a number >= 0 (a tag starts with ' or touches the '|')"),
    ("1 |a x\n1 2 3 |a x\n", 2, "base (initial prediction) '3' is not supported: sparsetrain has no per-row offset"),
    ("1 2 0 'r7|a x\n", 1, "base (initial prediction) '0' is not supported"),
    ("1 |a x\n1|a x\n", 2, "the line has no label: '1' touches the '|', so it is the tag, as in Vowpal Wabbit"),
    ("1 |a x:y\n", 1, "feature 'x:y'"),
    ("1 |a:q x\n", 1, "namespace scale 'q'"),
    ("1 |a x:nan\n", 1, "not finite"),
    ("|a x\n", 1, "the line has no label (fit and evaluate need one"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, words):
    p = tmp_path / "bad.vw"
    p.write_text(text)
    with pytest.raises(DataFormatError) as e:
        load_vw(p, 10)
    assert f"bad.vw:{line}:" in str(e.value) and words in str(e.value)


@pytest.mark.parametrize("head, label, weight", [
    ("1 2 'x|", 1.0, 2.0), ("1 x|", 1.0, 1.0), ("1 2 x|", 1.0, 2.0), ("1 |", 1.0, 1.0),
    ("1 2|", 1.0, 1.0),  # ``2`` touches the '|': VW's tag, not the importance
    ("1 2 |", 1.0, 2.0), ("1 'x |", 1.0, 1.0), ("-1 0.5 'x y|", None, None), ("0.5\t3 |", 0.5, 3.0),
])
def test_tags_as_vw_reads_them(tmp_path, head, label, weight):
    """The last token before the first '|' is the tag when it starts with ' or touches the '|'
    (Vowpal Wabbit's parser); the tokens before it are label and importance."""
    p = tmp_path / "t.vw"
    text = f"{head}a f g:2\n"
    p.write_text(text)
    if label is None:  # four tokens: the tag and three before it, of which ``'x`` is not a base
        with pytest.raises(DataFormatError, match="more than label, importance and tag"):
            load_vw(p, 10)
        with pytest.raises(VK.VWReferenceError):
            VK.parse_reference(text, 10)
        return
    X, y, w = load_vw(p, 10, dtype="float64")
    labels, weights, rows = VK.parse_reference(text, 10)
    assert y.tolist() == labels == [label] and w.tolist() == weights == [weight]
    S = X.asscipy()
    assert dict(zip(S.indices.tolist(), S.data.tolist())) == rows[0] and len(rows[0]) == 2


@pytest.mark.parametrize("text", ["1 2 3 |a x\n", "1 2 3 'r|a x\n", "1|a x\n", "1 2 3 4 |a x\n", "1 tag |a x\n"])
def test_the_reference_refuses_what_the_kernel_refuses(text):
    with pytest.raises(VK.VWReferenceError):
        VK.parse_reference(text, 10)


def test_init_on_a_file_with_a_base_names_its_line(tmp_path):
    from test_cli_errors import cli, one_error_line

    data = tmp_path / "b.vw"
    data.write_text("1 |a x\n0 1 0.5 |a y\n")
    res = cli("init", data, "--task", "binary", "--out", tmp_path / "c.yaml")
    assert res.exit_code == 1 and not (tmp_path / "c.yaml").exists()  # a data error, as every command's
    assert one_error_line(res.stderr).startswith(f"error: {data}:2: base (initial prediction) '0.5' is not supported")


def test_long_numbers_take_the_exact_path(tmp_path):
    p = tmp_path / "a.vw"
    p.write_text("0.12345678901234567890123 |a x:1.00000000000000000000001\n")
    X, y, _ = load_vw(p, 10, dtype="float64")
    assert y[0] == float("0.12345678901234567890123") and X.asscipy().data.tolist() == [1.0]


def test_many_crosses_grow_the_output(tmp_path):
    feats = " ".join(f"f{i}" for i in range(60))
    p = tmp_path / "a.vw"
    p.write_text(f"1 |a {feats} |b {feats}\n" * 3)
    X, _, _ = load_vw(p, 24, crosses=[["a", "b"]], chunk_size=64)
    _, _, rows = VK.parse_reference(p.read_text(), 24, [["a", "b"]])
    assert X.shape == (3, 2**24) and X.asscipy().getnnz(axis=1).tolist() == [len(r) for r in rows]
    assert len(rows[0]) > 3700  # 120 features + 3600 crosses, less a collision or two


def test_parts_hold_every_row_once(tmp_path):
    p = tmp_path / "a.vw"
    p.write_text("".join(f"{i % 2} |a x{i % 13} |b y{i % 7}:{i}\n" for i in range(400)))
    X, y, _ = load_vw(p, 12)
    got = [b.to_csr(X.shape[1]).asscipy().toarray() for k in range(3)
           for b in VWReader(p, 12, num_parts=3, part_index=k, chunk_size=100)]
    np.testing.assert_array_equal(np.vstack(got), X.asscipy().toarray())


def test_unlabeled_lines_are_rows_labelled_nan_only_when_asked(tmp_path):
    p = tmp_path / "a.vw"
    labelled = "1 'r1|u alice city:2 |i:0.5 book\n-1 2 |u bob\n"
    p.write_text(labelled)
    X, y, w = load_vw(p, 20, crosses=[["u", "i"]])
    # VW scores lines without a label (``|...``, ``'tag|...``): the same rows, label NaN, weight 1
    p.write_text("'r1|u alice city:2 |i:0.5 book\n|u bob\n")
    for chunk in (64, 1 << 20):  # (a tiny chunk: several kernel calls)
        Xu, yu, wu = load_vw(p, 20, crosses=[["u", "i"]], unlabeled=True, chunk_size=chunk)
        assert (Xu.asscipy() != X.asscipy()).nnz == 0
        assert np.isnan(yu).all() and wu.tolist() == [1.0, 1.0]
    labels, weights, rows = VK.parse_reference(p.read_text(), 20, [["u", "i"]], unlabeled=True)
    assert np.isnan(labels).all() and weights == [1.0, 1.0] and rows == VK.parse_reference(labelled, 20, [["u", "i"]])[2]
    with pytest.raises(DataFormatError, match=r"a\.vw:1: the line has no label \(fit"):  # (said: label "'r1" is not a number)
        load_vw(p, 20)
    p.write_text("'r1 extra|u alice\n")  # the tag is the last token (``extra``): the label is "'r1"
    with pytest.raises(DataFormatError, match="label \"'r1\" is not a number"):
        load_vw(p, 20, unlabeled=True)


def test_a_streamed_vw_file_whose_weights_are_all_zero_is_named(tmp_path):
    # (here, not with the CSV cases in test_cli_usability: the default run reaches this file after
    # tests/_prewarm.py has compiled the VW parser, and test_cli_usability before)
    from test_cli_errors import cli, one_error_line

    from sparsetrain.io.base import ALL_WEIGHTS_ZERO

    data = tmp_path / "w.vw"
    data.write_text("1 0 |f a b\n0 0 |f c\n1 0 |f a\n")
    config = tmp_path / "c.yaml"
    config.write_text(f"data: {{train: {data}, hash_bits: 4, batch_size: 2, cache: stream}}\n"
                      "model: {preset: logistic}\ntrain: {epochs: 1}\n")
    res = cli("fit", config, "-q", "--output", tmp_path / "r")
    assert one_error_line(res.stderr) == f"error: {data}: {ALL_WEIGHTS_ZERO}"
