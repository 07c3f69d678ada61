"""LibSVM reading and writing: scikit-learn parity, the compiled kernel against the pure-Python
reference parser, chunk-split invariance, error messages, byte-range parts, round trips."""
from __future__ import annotations

import bz2
import gzip
import math
import os
import re
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsetrain.base import DataFormatError
from sparsetrain.io import LibSVMReader, dump_libsvm, load_libsvm
from sparsetrain.io import _libsvm_kernels as K
from sparsetrain.io import _decimal_kernels as D
from sparsetrain.io.chunks import DEFAULT_MAX_LINE_BYTES, ChunkSource
from sparsetrain.io.libsvm_parse import Settings, iter_parsed

sklearn_datasets = pytest.importorskip("sklearn.datasets")
load_svmlight_file = sklearn_datasets.load_svmlight_file

HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def write(tmp_path, content: bytes, name="x.libsvm"):
    p = tmp_path / name
    p.write_bytes(content)
    return str(p)


def assert_same_as_sklearn(path, dtype="float64", **kw):
    X, y = load_libsvm(path, dtype=dtype, **kw)
    skw = {"n_features" if k == "num_features" else k: v for k, v in kw.items()}
    Xs, ys = load_svmlight_file(path, dtype=dtype, **skw)
    Xs = sp.csr_matrix(Xs)
    assert X.shape == Xs.shape
    assert X.stype == "csr" and X.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(X._indptr, Xs.indptr)
    np.testing.assert_array_equal(X._indices, Xs.indices)
    np.testing.assert_array_equal(X._data, Xs.data)  # bit-exact, explicit zeros included
    assert np.signbit(X._data).tolist() == np.signbit(Xs.data).tolist()
    np.testing.assert_array_equal(y, ys.astype(dtype))
    return X, y


# ------------------------------------------------------------------------------------------
# scikit-learn parity on hand-written edge cases

EDGE_CASES = {
    "basic": b"1 1:0.5 3:2\n-1 2:1.5\n",
    "scientific_labels": b"1e3 1:1\n-2.5E-2 2:1\n+3.0e+1 3:4\n.5 1:1\n5. 2:2\n",
    "qid": b"3 qid:1 1:0.5 4:1\n2 qid:1 2:1\n1 qid:2 1:1 3:1\n",
    "comments": b"# header\n1 1:1 # trailing\n# middle\n2 2:2#glued\n3 #only label\n",
    "blank_lines": b"\n\n1 1:1\n\n\n2 2:2\n\n",
    "tabs_and_spaces": b"1\t1:1\t \t2:2\n  2   3:3    \n\t3 1:1\n",
    "crlf": b"1 1:1 2:2\r\n2 3:3\r\n\r\n3 1:4\r\n",
    "explicit_zeros": b"1 1:0 2:0.0 3:-0\n0 2:0e5\n",
    "zero_based_auto_zero": b"1 0:1 2:2\n2 1:1\n",
    "zero_based_auto_one": b"1 1:1 3:2\n2 2:1\n",
    "label_only_rows": b"1\n2\n3 1:1\n",
    "no_trailing_newline": b"1 1:1\n2 2:2",
    "signs_and_leading_zeros": b"-1 +1:-1.5 002:+2 0010:-0.25\n",
    "long_mantissas": b"0.1234567890123456789012345 1:3.141592653589793238462643383279 2:1e-320\n"
    b"-3.4028234663852886e38 3:2.2250738585072011e-308 4:4.9406564584124654e-324 5:3.4028235e38\n",
    "repr_floats": b"237139.44687426958 1:0.30000000000000004 2:1.0000000000000002\n",
    "float32_halfway": b"1 1:16777217 2:0.1 3:3.4028235e38\n",
    "big_indices": b"1 1:1 123456789:2\n",
    "comment_no_space": b"1 1:1#c:2 x\n",
    "vertical_tab_formfeed": b"1\x0b1:1\x0c2:2\n",
}


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_matches_sklearn_on_edge_cases(tmp_path, name, dtype):
    path = write(tmp_path, EDGE_CASES[name])
    assert_same_as_sklearn(path, dtype=dtype)


@pytest.mark.parametrize("zero_based", [True, False, "auto"])
def test_matches_sklearn_for_each_zero_based_mode(tmp_path, zero_based):
    path = write(tmp_path, b"1 1:1 3:2\n2 2:1 5:7\n")
    assert_same_as_sklearn(path, zero_based=zero_based)
    assert_same_as_sklearn(path, zero_based=zero_based, num_features=10)


def test_zero_based_auto_decides_per_file(tmp_path):
    one = write(tmp_path, b"1 1:1\n2 2:1\n", "one.libsvm")
    zero = write(tmp_path, b"1 0:1\n2 2:1\n", "zero.libsvm")
    assert load_libsvm(one)[0].shape == (2, 2)  # shifted down
    assert load_libsvm(zero)[0].shape == (2, 3)
    # a zero-based decision can come from the last chunk only
    lines = b"".join(b"%d %d:1\n" % (i, i % 50 + 1) for i in range(2000)) + b"9 0:1\n"
    many = write(tmp_path, lines, "late_zero.libsvm")
    X, _ = assert_same_as_sklearn(many)
    assert X._indices.min() == 0 and load_libsvm(many, chunk_size=512)[0].shape == X.shape


def test_file_without_features_is_zero_based_with_one_column(tmp_path):
    assert_same_as_sklearn(write(tmp_path, b"1\n2\n"))


def test_generated_file_matches_sklearn(tmp_path):
    from sparsetrain.io.synthetic import generate_libsvm

    path = str(tmp_path / "gen.libsvm")
    generate_libsvm(path, 3000, 5000, nnz_per_row=20, columns="zipf", noise=0.5, seed=3)
    for chunk_size in (4096, 1 << 20):
        X, y = load_libsvm(path, dtype="float64", chunk_size=chunk_size)
        Xs, ys = load_svmlight_file(path, dtype="float64")
        assert X.shape == Xs.shape
        assert (X.asscipy() != Xs).nnz == 0
        np.testing.assert_array_equal(y, ys)


def test_gzip_and_bz2_are_read_transparently(tmp_path):
    content = EDGE_CASES["comments"] + EDGE_CASES["basic"]
    plain = write(tmp_path, content, "p.libsvm")
    gz = tmp_path / "p.libsvm.gz"
    gz.write_bytes(gzip.compress(content))
    bz = tmp_path / "p.bz2"
    bz.write_bytes(bz2.compress(content))
    X0, y0 = load_libsvm(plain)
    for path in (gz, bz):
        for chunk_size in (7, 1 << 20):
            X, y = load_libsvm(path, chunk_size=chunk_size)
            assert (X.asscipy() != X0.asscipy()).nnz == 0
            np.testing.assert_array_equal(y, y0)


def test_labels_and_values_follow_dtype(tmp_path):
    path = write(tmp_path, b"0.1 1:0.1\n")
    X32, y32 = load_libsvm(path)
    X64, y64 = load_libsvm(path, dtype="float64")
    assert X32.dtype == np.float32 and y32.dtype == np.float32 and y32[0] == np.float32(0.1)
    assert X64.dtype == np.float64 and y64.dtype == np.float64 and y64[0] == 0.1


def test_multilabel_rows_give_2d_labels(tmp_path):
    X, y = load_libsvm(write(tmp_path, b"1,2,3 1:1\n4,5,6.5e0\n"))
    np.testing.assert_array_equal(y, [[1, 2, 3], [4, 5, 6.5]])


def test_num_features_pads_columns(tmp_path):
    X, _ = load_libsvm(write(tmp_path, b"1 0:1\n"), num_features=7)
    assert X.shape == (1, 7)


# ------------------------------------------------------------------------------------------
# Errors: one line, file:line, the offending token quoted

ERROR_CASES = [
    # (content, kwargs, line, message fragment)
    (b"1 1:1\n2 abc:1\n", {}, 2, "feature index 'abc' is not an integer"),
    (b"1 1:1\n\n2 1.5:1\n", {}, 3, "feature index '1.5' is not an integer"),
    (b"1 :1\n", {}, 1, "feature index is empty"),
    (b"1 1:1 5\n", {}, 1, "feature '5' has no ':'"),
    (b"1 1:1\nx 1:1\n", {}, 2, "label 'x' is not a number"),
    (b"1 1:1\n1:1 2:2\n", {}, 2, "label '1:1' is not a number (is the label missing?)"),
    (b"1 1:x\n", {}, 1, "feature value 'x' is not a number"),
    (b"1 1:1:2\n", {}, 1, "feature value '1:2' is not a number"),
    (b"1 1:\n", {}, 1, "feature value '' is not a number"),
    (b"1 1:1e\n", {}, 1, "feature value '1e' is not a number"),
    (b"1 1:1_0\n", {}, 1, "feature value '1_0' is not a number"),
    (b"# c\n1 1:nan\n", {}, 2, "feature value 'nan' is not finite"),
    (b"1 1:-Infinity\n", {}, 1, "feature value '-Infinity' is not finite"),
    (b"1 1:1e400\n", {}, 1, "feature value '1e400' is not finite"),
    (b"1 1:1\ninf 1:1\n", {}, 2, "label 'inf' is not finite"),
    (b"1e999 1:1\n", {}, 1, "label '1e999' is not finite"),
    (b"1 1:1\r\n2 3:1 2:1\r\n", {}, 2, "feature index '2' is not greater than the previous index 3"),
    (b"1 1:1 1:2\n", {}, 1, "feature index '1' is not greater than the previous index 1"),
    (b"1 -1:1\n", {}, 1, "feature index '-1' is negative"),
    (b"1 1:1\n1 0:1\n", {"zero_based": False}, 2, "feature index '0' is 0 in a one-based file"),
    (b"1 0:1 9:1\n", {"num_features": 9}, 1, "feature index '9' is out of range for num_features=9"),
    (b"1 1:1 10:1\n", {"num_features": 9, "zero_based": False}, 1, "feature index '10' is out of range"),
    (b"1 1:1 11:1\n", {"num_features": 9}, 1, "feature index '11' is out of range for num_features=9"),
    (b"1 9:1\n2 0:1\n", {"num_features": 9}, 1, "feature index '9' is out of range for num_features=9 (the file has index 0"),
    (b"1 99999999999999999999:1\n", {}, 1, "feature index '99999999999999999999' is too large"),
    (b"1 qid:x 1:1\n", {}, 1, "qid 'x' is not an integer"),
    (b"1 1:3.4028236e38\n", {}, 1, "feature value '3.4028236e38' is too large for float32"),
    (b"1 1:1\n-1e39 1:1\n", {}, 2, "label '-1e39' is too large for float32"),
    (b"1 1:1.00000000000000000000000001e39\n", {}, 1, "feature value '1.00000000000000000000000001e39' is too large"),
    (b"1 2:1 qid:3\n", {}, 1, "feature index 'qid' is not an integer"),
    (b"1 1:1\n1,2 1:1\n", {}, 2, "expected 1 label per row (as on the first row), found 2 in '1,2'"),
    (b"1,2 1:1\n1 1:1\n", {}, 2, "expected 2 labels per row (as on the first row), found 1 in '1'"),
    (b"1,,2 1:1\n", {}, 1, "label '1,,2' is not a number"),
    (b"1 1:1\n. 1:1\n", {}, 2, "label '.' is not a number"),
    (b"1 1:.\n", {}, 1, "feature value '.' is not a number"),
    (b"- 1:1\n", {}, 1, "label '-' is not a number"),
]


@pytest.mark.parametrize("content,kwargs,line,fragment", ERROR_CASES)
@pytest.mark.parametrize("chunk_size", [3, 1 << 20])
def test_errors_name_file_line_and_token(tmp_path, content, kwargs, line, fragment, chunk_size):
    path = write(tmp_path, content)
    with pytest.raises(DataFormatError) as err:
        load_libsvm(path, chunk_size=chunk_size, **kwargs)
    msg = str(err.value)
    assert msg.startswith(f"{path}:{line}: "), msg
    assert fragment in msg, msg
    assert "\n" not in msg
    assert isinstance(err.value, ValueError)


def test_error_line_numbers_deep_in_a_large_file(tmp_path):
    good = b"".join(b"%d 1:1 %d:2.5\n" % (i, i % 97 + 2) for i in range(20000))
    path = write(tmp_path, good + b"# note\n\n7 3:1 2:1\n" + good)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:20003: feature index '2'")):
        load_libsvm(path, chunk_size=4096)
    reader = LibSVMReader(path, zero_based=True, num_parts=3, part_index=1, chunk_size=4096)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:20003: ")):
        for _ in reader:
            pass


@pytest.mark.parametrize("content", [b"", b"\n\n", b"# just a comment\n  \n#another"])
def test_file_without_rows_is_an_error(tmp_path, content):
    path = write(tmp_path, content)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}: no data rows")):
        load_libsvm(path)


def test_bad_arguments(tmp_path):
    path = write(tmp_path, b"1 1:1\n")
    with pytest.raises(ValueError, match="zero_based"):
        load_libsvm(path, zero_based="maybe")
    with pytest.raises(ValueError, match="dtype"):
        load_libsvm(path, dtype="int32")
    with pytest.raises(ValueError, match="num_features"):
        load_libsvm(path, num_features=0)
    with pytest.raises(FileNotFoundError):
        load_libsvm(str(tmp_path / "missing.libsvm"))


@pytest.mark.parametrize("dtype,shown", [("int32", "int32"), (int, "int64"), ("float16", "float16"), ("U5", "<U5"),
                                         ("bogus", "'bogus'")])
def test_a_dtype_or_label_dtype_that_is_no_float32_or_float64_is_named(tmp_path, dtype, shown):
    # LibSVMReader(label_dtype=...) was not checked: 'U5' handed out the labels as text, float16 as float16, and
    # int32 failed at the first block in numpy's 'Cannot cast array data from dtype('float64') to dtype('int32')'
    path = write(tmp_path, b"1 1:1\n")
    with pytest.raises(ValueError, match=re.escape(f"label_dtype must be float32 or float64, got {shown}")):
        LibSVMReader(path, 2, True, label_dtype=dtype)
    with pytest.raises(ValueError, match=re.escape(f"dtype must be float32 or float64, got {shown}")):
        LibSVMReader(path, 2, True, dtype=dtype)
    with pytest.raises(ValueError, match=re.escape(f"dtype must be float32 or float64, got {shown}")):
        load_libsvm(path, dtype=dtype)


# ------------------------------------------------------------------------------------------
# Kernel vs the pure-Python reference parser, and chunk-split invariance

_num = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=64).map(repr),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(lambda x: repr(float(x))),
    st.integers(0, 25).flatmap(lambda k: st.decimals(allow_nan=False, allow_infinity=False, places=k)).map(str),
    st.sampled_from(["1e5", "-2.5E-3", ".5", "5.", "+7", "-0", "0e0", "1e-330", "nan", "inf", "x", "1e", "", "--1",
                     ".", "-", "+.", "-.5", "0.", "-.e1", "1.e2"]),
)
_ws = st.sampled_from([" ", "  ", "\t", " \t", "\r "])


@st.composite
def _line(draw):
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["", "  ", "# comment", "\t# c: 1:2"]))
    labels = ",".join(draw(st.lists(_num, min_size=1, max_size=1 if draw(st.booleans()) else 3)))
    parts = [labels]
    if draw(st.integers(0, 6)) == 0:
        parts.append("qid:" + draw(st.sampled_from(["1", "42", "x", "-3"])))
    idx = draw(st.integers(-1, 3))
    for _ in range(draw(st.integers(0, 6))):
        idx += draw(st.integers(-1, 40)) if draw(st.integers(0, 15)) == 0 else draw(st.integers(1, 40))
        sep = ":" if draw(st.integers(0, 40)) else draw(st.sampled_from(["", "::", "="]))
        parts.append(f"{idx}{sep}{draw(_num)}")
    text = draw(_ws).join(parts)
    if draw(st.integers(0, 5)) == 0:
        text += " # trailing 3:4"
    return text


_text = st.lists(_line(), min_size=0, max_size=12).map(lambda ls: "\n".join(ls).encode())


def _kernel_parse(path, chunk_size, mode=K.AUTO_BASED, index_limit=-1, dtype=np.float64):
    """The streaming pipeline (LibSVMReader's), raw indices."""
    limit = K.FLOAT32_LIMIT if dtype == np.float32 else math.inf
    settings = Settings(mode, index_limit, -1, limit, DEFAULT_MAX_LINE_BYTES, np.dtype(dtype))
    blocks = [  # a chunk of blank lines gives a row-less block (of label width 1): skip it, as LibSVMReader does
        b for b, _ in iter_parsed(
            ChunkSource(path, chunk_size), begin=0, end_hint=None, n_labels=0, num_features=None,
            settings=settings, workers=2,
        ) if len(b.labels)
    ]
    if not blocks:
        return np.zeros((0, 1)), np.zeros(1, np.int64), np.zeros(0, np.int64), np.zeros(0)
    labels = np.concatenate([b.labels for b in blocks])
    indptr = np.concatenate([[0]] + [b.indptr[1:] + sum(x.nnz for x in blocks[:i]) for i, b in enumerate(blocks)])
    return labels, indptr, np.concatenate([b.indices for b in blocks]), np.concatenate([b.data for b in blocks])


def _outcome_kernel(path, chunk_size, **kw):
    try:
        return ("ok",) + tuple(a.tolist() for a in _kernel_parse(path, chunk_size, **kw))
    except DataFormatError as e:
        m = re.match(r".*?:(\d+): (.*)$", str(e))
        return ("error", int(m.group(1)), m.group(2))


def _outcome_load(path, chunk_size, dtype=np.float64):
    """load_libsvm (the memory-mapped two-pass path for a plain file), zero-based."""
    try:
        X, y = load_libsvm(path, zero_based=True, dtype=dtype, chunk_size=chunk_size)
    except DataFormatError as e:
        if str(e).endswith("no data rows (the file is empty or only has comments)"):
            return ("ok", [], [0], [], [])
        m = re.match(r".*?:(\d+): (.*)$", str(e))
        return ("error", int(m.group(1)), m.group(2))
    labels = y.reshape(len(y), -1).astype(np.float64)
    return ("ok", labels.tolist(), X._indptr.tolist(), X._indices.tolist(), X._data.astype(np.float64).tolist())


def _outcome_reference(text, dtype=np.float64, **kw):
    if dtype == np.float32:
        kw["value_limit"] = K.FLOAT32_LIMIT
    try:
        r = K.parse_reference(text, **kw)
    except K.ReferenceError_ as e:
        return ("error", e.line + 1, e.code, e.token.decode("ascii", "backslashreplace"))
    if not len(r["labels"]):
        return ("ok", [], [0], [], [])
    data = r["data"].astype(dtype).astype(np.float64)
    return ("ok", r["labels"].tolist(), r["indptr"].tolist(), r["indices"].tolist(), data.tolist())


_CODE_WORDS = {
    K.E_LABEL: "is not a number", K.E_LABEL_NONFINITE: "is not finite", K.E_LABEL_COUNT: "label",
    K.E_MISSING_COLON: "has no ':'", K.E_INDEX_NOT_INT: "feature index", K.E_INDEX_NEGATIVE: "is negative",
    K.E_INDEX_ZERO: "one-based", K.E_INDEX_ORDER: "not greater than", K.E_INDEX_RANGE: "out of range",
    K.E_INDEX_OVERFLOW: "too large", K.E_VALUE: "is not a number", K.E_VALUE_NONFINITE: "is not finite",
    K.E_QID: "qid", K.E_LABEL_RANGE: "too large", K.E_VALUE_RANGE: "too large",
}


def _assert_same_outcome(got, want):
    assert got[0] == want[0], (got, want)
    if want[0] == "ok":
        assert got[1:] == want[1:]
        return
    _, line, code, token = want
    assert got[1] == line, (got, want)
    assert _CODE_WORDS[code] in got[2], (got, want)
    if token:
        assert f"'{token[:57]}" in got[2], (got, want)


@HYP
@given(text=_text, chunk_size=st.sampled_from([1, 2, 5, 13, 64, 1 << 20]))
def test_kernel_matches_reference_parser(tmp_path, text, chunk_size):
    path = write(tmp_path, text)
    _assert_same_outcome(_outcome_kernel(path, chunk_size), _outcome_reference(text))


@HYP
@given(text=_text, chunk_size=st.sampled_from([1, 3, 17, 1 << 20]), dtype=st.sampled_from([np.float32, np.float64]))
def test_load_libsvm_matches_reference_parser(tmp_path, text, chunk_size, dtype):
    path = write(tmp_path, text)
    want = _outcome_reference(text, dtype=dtype, zero_based=K.ZERO_BASED)
    got = _outcome_load(path, chunk_size, dtype=dtype)
    if want[0] == "ok" and dtype == np.float32:
        want = want[:1] + (np.array(want[1], dtype=np.float32).astype(np.float64).tolist(),) + want[2:]
    _assert_same_outcome(got, want)
    gz = tmp_path / "x.libsvm.gz"
    gz.write_bytes(gzip.compress(text))
    _assert_same_outcome(_outcome_load(str(gz), chunk_size, dtype=dtype), want)


@HYP
@given(text=_text, limit=st.integers(1, 60))
def test_kernel_matches_reference_one_based_with_limit(tmp_path, text, limit):
    path = write(tmp_path, text)
    got = _outcome_kernel(path, 7, mode=K.ONE_BASED, index_limit=limit)
    _assert_same_outcome(got, _outcome_reference(text, zero_based=K.ONE_BASED, index_limit=limit))


@HYP
@given(
    rows=st.lists(
        st.tuples(
            st.floats(-1e6, 1e6, allow_nan=False),
            st.dictionaries(st.integers(0, 200), st.floats(allow_nan=False, allow_infinity=False), max_size=8),
        ),
        min_size=1,
        max_size=20,
    ),
    sizes=st.lists(st.integers(1, 300), min_size=1, max_size=4),
)
def test_any_chunk_split_gives_the_same_result(tmp_path, rows, sizes):
    lines = []
    for label, feats in rows:
        lines.append(" ".join([repr(label)] + [f"{k}:{v!r}" for k, v in sorted(feats.items())]))
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    X0, y0 = load_libsvm(path, dtype="float64")
    for size in sizes:
        X, y = load_libsvm(path, dtype="float64", chunk_size=size)
        np.testing.assert_array_equal(X._indptr, X0._indptr)
        np.testing.assert_array_equal(X._indices, X0._indices)
        np.testing.assert_array_equal(X._data, X0._data)
        np.testing.assert_array_equal(y, y0)
        assert X.shape == X0.shape


# Rows for the kernel's fast path (parse_chunk: pairs of at most 8 bytes, one space apart), each with
# at most one thing it must leave to the byte loop, which has to give the same result.
_short_num = st.one_of(
    st.integers(0, 99_999_999).map(str),
    st.integers(0, 7).flatmap(lambda k: st.integers(0, 10 ** min(7 - k, 7) - 1).map(
        lambda i, k=k: f"{i}." + "".join(str((i * 7 + j) % 10) for j in range(k)))),
    st.sampled_from(["0.5", "1", "0", "007", ".5", "5.", "0.000001", "99999999", "1.000000"]),
)
_odd = st.sampled_from(["-0.5", "1e5", "123456789", "0.12345678", ".", "1.2.3", "x", "", "+1", "-", "1:2",
                        "nan", "0.5#c", "1\t", "5\r"])


@st.composite
def _fast_row_text(draw):
    n = draw(st.integers(1, 20))
    idx = sorted(draw(st.lists(st.integers(0, 99_999_999), min_size=n, max_size=n, unique=True)))
    pairs = [f"{i}:{draw(_short_num)}" for i in idx]
    how = draw(st.integers(0, 12))
    k = draw(st.integers(0, n - 1))
    if how == 0:
        pairs[k] = pairs[k].split(":")[0] + ":" + draw(_odd)
    elif how == 1:
        pairs[k] = draw(st.sampled_from(["-1", "x", "", "123456789", "0.5", "00000000001"])) + ":1"
    elif how == 2 and n > 1:
        pairs[k], pairs[k - 1] = pairs[k - 1], pairs[k]  # not ascending (or equal)
    sep = " " if draw(st.integers(0, 6)) else draw(st.sampled_from(["  ", "\t", " \t"]))
    end = draw(st.sampled_from(["", "", "", " ", "\r", " # c"]))
    return draw(st.sampled_from(["1", "-3.1353974", "0.25", "7"])) + " " + sep.join(pairs) + end


@HYP
@given(rows=st.lists(_fast_row_text(), min_size=1, max_size=8), dtype=st.sampled_from([np.float32, np.float64]),
       limit=st.sampled_from([-1, 50_000_000, 100_000_000]), chunk_size=st.sampled_from([37, 1 << 20]))
def test_fast_path_rows_match_reference_parser(tmp_path, rows, dtype, limit, chunk_size):
    text = ("\n".join(rows) + "\n").encode()
    path = write(tmp_path, text)
    got = _outcome_kernel(path, chunk_size, mode=K.ZERO_BASED, index_limit=limit, dtype=dtype)
    _assert_same_outcome(got, _outcome_reference(text, dtype=dtype, zero_based=K.ZERO_BASED, index_limit=limit))


def _fast_rows():
    """``K._fast_row`` as this CPU compiles it and, where that is the AVX-512 VBMI path
    (``_scan_kernels.VBMI``), also compiled with the other CPUs' primitives (the tzcnt listing, the gather)."""
    from types import FunctionType

    from numba import njit

    from sparsetrain.io import _libsvm_simd as S
    from sparsetrain.io import _scan_kernels as SK

    if not SK.VBMI:
        return [K._fast_row]
    g = dict(vars(K), flatten=SK.flatten_scalar, convert_pairs=S.convert_pairs_gather, VBMI=False)
    g["_convert"] = njit(inline="always")(FunctionType(K._convert.py_func.__code__, g))
    return [K._fast_row, njit(FunctionType(K._fast_row.py_func.__code__, g))]


def test_fast_path_long_rows_match_reference_parser(tmp_path):
    """Rows longer than the fast path's position lists (``POSITIONS``: converted in parts), valid or with a
    pair it must refuse in a later part, read as the reference parser reads them (by every path of
    ``_fast_rows``)."""
    rng = np.random.default_rng(3)

    def row(n, label="0.5"):
        idx = np.sort(rng.choice(10 ** 7, n, replace=False))
        return [f"{i}:{v}" for i, v in zip(idx, rng.integers(0, 10 ** 6, n) / 10 ** rng.integers(0, 7, n))]

    rows = []
    for n in (K.POSITIONS // 2 - 1, K.POSITIONS // 2, K.POSITIONS // 2 + 1, 300, 1000):
        rows.append("1 " + " ".join(row(n)))
        rows.append("2 " + " ".join(row(n)) + " ")
        rows.append("3 " + " ".join(row(n)) + "\r")
    for n, at, bad in ((1000, 700, "5:x"), (1000, 999, "1:1"), (400, 250, "7:1  8:1"), (500, 300, "1e3:1")):
        pairs = row(n)
        pairs[at] = bad
        rows.append("4 " + " ".join(pairs))
    valid = len(rows) - 4
    for fast_row in _fast_rows():  # each path reads the valid ones itself, not only the byte loop
        for n, r in enumerate(rows):
            text = ("12345678 " + r[2:] + "\n").encode()  # (the fast path reads 8 bytes before a colon)
            buf = np.frombuffer(text, np.uint8).copy()
            out_i, out_v = np.empty(len(text), np.int64), np.empty(len(text), np.float32)
            cpos, spos = np.empty((2, K._POS_ROOM), np.int64)
            ok, end, prev, nnz = fast_row(buf, np.int64(9), np.int64(-1), np.int64(0), np.int64(0), K._NO_LIMIT,
                                          np.int64(-1), out_i, out_v, cpos, spos)
            if n >= valid:
                assert not ok and prev == -1 and nnz == 0
                continue
            want = K.parse_reference(text, zero_based=K.ZERO_BASED)
            assert ok and end == len(text) - 1 and nnz == len(want["indices"]) and prev == want["indices"][-1]
            assert out_i[:nnz].tolist() == want["indices"].tolist()
            assert out_v[:nnz].tolist() == want["data"].astype(np.float32).tolist()
    for n, want in enumerate([rows[:valid]] + [[rows[0], bad] for bad in rows[valid:]]):
        text = ("\n".join(want) + "\n").encode()
        path = write(tmp_path, text, f"x{n}.libsvm")
        got = _outcome_kernel(path, 1 << 20, mode=K.ZERO_BASED, index_limit=-1, dtype=np.float32)
        _assert_same_outcome(got, _outcome_reference(text, dtype=np.float32, zero_based=K.ZERO_BASED, index_limit=-1))


def test_flatten_lists_the_bits_of_a_mask():
    """The fast path's two ways of listing a block's separator positions (the vector compress where the
    CPU has one, the tzcnt loop elsewhere) list every bit set, ascending, after the positions already there."""
    from numba import njit

    from sparsetrain.io import _scan_kernels as SK

    ways = [njit(lambda m, base, pos, n: SK.flatten_scalar(m, base, pos, n))]
    if SK.VBMI:
        ways.append(njit(lambda m, base, pos, n: SK.flatten_bits(m, base, pos, n)))
    rng = np.random.default_rng(5)
    masks = [0, 1, 1 << 63, (1 << 64) - 1, 0x5555555555555555] + [int(x) for x in rng.integers(0, 1 << 63, 20)]
    masks += [int(x) & int(y) & int(z) for x, y, z in rng.integers(0, 1 << 63, (20, 3))]
    for flatten in ways:
        for m in masks:
            pos = np.full(3 + 64, -7, np.int64)
            n = flatten(np.uint64(m), np.int64(1000), pos, np.int64(3))
            want = [1000 + k for k in range(64) if m >> k & 1]
            assert n == 3 + len(want) and pos[3:n].tolist() == want and pos[:3].tolist() == [-7] * 3


def test_eq_masks_of_a_block():
    """``eq_mask64`` (a whole 64-byte block) and ``eq_mask_tail`` (a block that runs past the buffer's end,
    whose bytes there count as none): bit k set where the block's byte k is any of the three values."""
    from numba import njit

    from sparsetrain.io import _scan_kernels as SK

    @njit
    def mask(buf, b):
        return SK.eq_mask64(buf, b, 58, 32, 10) if b + 64 <= len(buf) else SK.eq_mask_tail(buf, b, 58, 32, 10)

    rng = np.random.default_rng(7)
    buf = rng.choice(np.array([58, 32, 10, 48, 49, 0, 255], np.uint8), 200)
    for b in (0, 5, 64, 100, 136, 150, 199, 200):
        want = sum(1 << k for k in range(min(64, len(buf) - b)) if buf[b + k] in (58, 32, 10))
        assert mask(buf, np.int64(b)) == want, b


def test_newlines_counted_by_blocks():
    """``count_newlines`` (64-byte blocks' masks counted, the last partial block byte by byte) counts as
    ``bytes.count`` for buffers of every length around the block size, of slices starting anywhere, and of
    buffers of nothing but newlines or none."""
    from sparsetrain.io import _scan_kernels as SK

    rng = np.random.default_rng(9)
    buf = rng.choice(np.array([10, 9, 48, 0, 255], np.uint8), 600)
    for a in (0, 1, 63, 64, 65):
        for n in (0, 1, 63, 64, 65, 127, 128, 129, 200, 535):
            part = buf[a:a + n]
            assert SK.count_newlines(part) == part.tobytes().count(b"\n"), (a, n)
    for fill in (10, 11):
        assert SK.count_newlines(np.full(300, fill, np.uint8)) == (300 if fill == 10 else 0)


def test_convert_pairs_gather_and_permute_agree():
    """The fast path's two conversions of LANES pairs (words by a byte permute where the CPU has AVX-512
    VBMI, by a scalar load each elsewhere): the same entries and the same mask of broken pairs, for every window."""
    from numba import njit

    from sparsetrain.io import _libsvm_simd as S

    @njit
    def gather(buf, cpos, spos, j0, k, out_i, out_v):
        return S.convert_pairs_gather(buf, cpos, spos, j0, k, out_i, out_v, 0, -1, 0, 10 ** 6, -1)

    @njit
    def permute(buf, cpos, spos, j0, k, out_i, out_v):
        return S.convert_pairs_permute(buf, cpos, spos, j0, k, out_i, out_v, 0, -1, 0, 10 ** 6, -1)

    calls = [gather] + ([permute] if K.VBMI else [])
    rng = np.random.default_rng(7)
    pairs = [f"{i}:{v}" for i, v in zip(np.sort(rng.choice(10 ** 6, 40, replace=False)), rng.integers(0, 10 ** 6, 40) / 1e3)]
    pairs[17] = "12:5"  # not ascending
    pairs[30] = pairs[30].split(":")[0] + ":x"
    text = ("12345678 " + " ".join(pairs) + "\n").encode()
    buf = np.frombuffer(text, np.uint8).copy()
    cpos = np.flatnonzero(buf == 58).astype(np.int64)
    spos = np.concatenate([[8], np.flatnonzero((buf == 32) | (buf == 10))[1:]]).astype(np.int64)
    cpos, spos = np.concatenate([cpos, np.zeros(S.LANES, np.int64)]), np.concatenate([spos, np.zeros(S.LANES, np.int64)])
    for j0 in range(0, 40, 3):
        k = min(S.LANES, 40 - j0)
        got = []
        for call in calls:
            out_i, out_v = np.zeros(64, np.int64), np.zeros(64, np.float32)
            bad = call(buf, cpos, spos, j0, k, out_i, out_v)
            got.append((bad, out_i[:k].tolist(), out_v[:k].tolist()))
        want_bad = sum(1 << q for q in range(k) if j0 + q in (17, 30))
        assert got[0][0] == want_bad and all(g == got[0] for g in got), (j0, got)
        for q in range(k):
            if not want_bad >> q & 1:
                i, v = pairs[j0 + q].split(":")
                assert (got[0][1][q], got[0][2][q]) == (int(i), float(np.float32(float(v)))), (j0, q)


def test_vbmi_path_only_where_numba_compiles_with_vbmi():
    """``_scan_kernels.VBMI`` (the byte-permute path, which LLVM cannot compile without AVX-512 VBMI: it
    aborts the process) follows the features numba compiles with, not the host's alone: the host,
    NUMBA_ENABLE_AVX=0, NUMBA_CPU_FEATURES without VBMI, NUMBA_CPU_NAME (each a fresh interpreter)."""
    import subprocess
    import sys

    from numba.core.codegen import get_host_cpu_features

    host = get_host_cpu_features()
    no_vbmi = ",".join(f for f in host.split(",") if f not in ("+avx512vbmi", "+avx512vbmi2")) + ",-avx512vbmi"
    script = ("from numba.core.registry import cpu_target; from sparsetrain.io._scan_kernels import VBMI; "
              "print(VBMI, cpu_target.target_context.codegen().magic_tuple()[2])")
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CPU_", "NUMBA_ENABLE_AVX"))}
    for env in ({}, {"NUMBA_ENABLE_AVX": "0"}, {"NUMBA_CPU_FEATURES": no_vbmi}, {"NUMBA_CPU_NAME": "haswell"}):
        out = subprocess.run([sys.executable, "-c", script], env={**base, **env}, capture_output=True, text=True,
                             check=True, cwd=os.path.dirname(os.path.dirname(os.path.dirname(K.__file__)))).stdout.split()
        features = out[1].split(",") if len(out) > 1 else []
        has = "+avx512vbmi" in features and "+avx512vbmi2" in features and "-avx512vbmi" not in features
        assert out[0] == str(has and "NUMBA_CPU_NAME" not in env), (env, out[0])


def test_fast_path_records_the_boundary_index_span():
    """parse_chunk's I_BOUND_START/END: the byte span of the first index equal to boundary_index, whichever
    of its paths reads the row."""
    text = b"1 1:0.5 2:0.25 3:1 5:2\n2 3:1 5:0.5 7:0.125\n3 5:1 99999999:0.5\n"
    buf = np.frombuffer(text, np.uint8).copy()  # writable, as the readers' buffers: no read-only kernel variant
    out = (np.empty(16, np.float64), np.empty(16, np.int64), np.empty(8, np.int64), np.empty(8, np.float64),
           np.empty((4, 4), np.int64))
    for b in (5, 7, 99999999, 4):
        info = K.parse_chunk(buf, 1, K.ZERO_BASED, -1, b, math.inf, 1 << 20, 0, *out)
        assert info[K.I_ERR] == K.OK and info[K.I_NNZ] == 9
        at = text.find(f" {b}:".encode())
        want = (at + 1, at + 1 + len(str(b))) if at >= 0 else (-1, -1)
        assert (info[K.I_BOUND_START], info[K.I_BOUND_END]) == want, b


def test_exact_conversion_of_hard_numbers():
    rng = np.random.default_rng(0)
    toks = [repr(float(x)) for x in rng.standard_normal(2000) * 10.0 ** rng.integers(-300, 300, 2000)]
    toks += [repr(float(np.float32(x))) for x in rng.random(500)]
    toks += ["2.4703282292062327e-324", "2.4703282292062328e-324", "9007199254740993", "1e23",
             "2.2250738585072011e-308", "1.7976931348623157e308", "0.30000000000000004", "1" * 30,
             "0." + "0" * 30 + "123456789", "123456789012345678901234567890e-10"]
    for tok in toks:
        buf = np.frombuffer(tok.encode(), np.uint8).copy()  # writable, as the readers' buffers
        v, end, status = D.parse_float(buf, 0, len(buf))
        assert end == len(buf)
        if status == 0:
            assert v == float(tok) and math.copysign(1, v) == math.copysign(1, float(tok)), tok
        else:
            assert status == 1, tok  # left to Python; never a wrong value


# ------------------------------------------------------------------------------------------
# Byte-range parts


def _all_rows(path, **kw):
    out = []
    for b in LibSVMReader(path, zero_based=True, **kw):
        for r in range(b.num_rows):
            out.append((b.labels[r, 0], tuple(b.indices[b.indptr[r]: b.indptr[r + 1]])))
    return out


@pytest.mark.parametrize("chunk_size", [1, 16, 1 << 20])
def test_parts_hold_every_line_exactly_once(tmp_path, chunk_size):
    rng = np.random.default_rng(1)
    lines = []
    for i in range(60):
        k = int(rng.integers(0, 40)) if i % 7 else 300  # some lines much longer than a chunk
        cols = np.sort(rng.choice(1000, size=k, replace=False))
        lines.append(f"{i} " + " ".join(f"{c}:{c % 9 + 1}" for c in cols))
        if i % 11 == 0:
            lines.append("# comment")
        if i % 13 == 0:
            lines.append("")
    path = write(tmp_path, ("\n".join(lines) + "\n").encode())
    whole = _all_rows(path, chunk_size=chunk_size)
    assert [r[0] for r in whole] == list(range(60))
    for num_parts in (1, 2, 3, 4, 5, 7, 16, 59, 200):
        got = []
        for part in range(num_parts):
            got += _all_rows(path, num_parts=num_parts, part_index=part, chunk_size=chunk_size)
        assert got == whole, num_parts


def test_part_ranges_are_line_aligned_and_cover_the_file(tmp_path):
    content = b"1 1:1\n" + b"2 " + b"3:4 " * 500 + b"\n3\n" + b"4 5:6\n" * 10
    path = write(tmp_path, content)
    starts = {0} | {i + 1 for i, c in enumerate(content) if c == 10}
    for num_parts in range(1, 40):
        begins = [ChunkSource(path).part_range(num_parts, k)[0] for k in range(num_parts)]
        assert all(b in starts or b == len(content) for b in begins)
        assert begins == sorted(begins)


def test_parts_of_a_gzip_file(tmp_path):
    content = b"".join(b"%d %d:1\n" % (i, i) for i in range(500))
    path = tmp_path / "p.gz"
    path.write_bytes(gzip.compress(content))
    whole = _all_rows(str(path))
    got = []
    for part in range(6):
        got += _all_rows(str(path), num_parts=6, part_index=part, chunk_size=64)
    assert got == whole and len(whole) == 500


def test_reader_start_row_and_rows_before(tmp_path):
    path = write(tmp_path, b"# c\n0 1:1\n\n1 2:1\n2 3:1\n3 4:1\n")
    r = LibSVMReader(path, start_row=2, zero_based=True)
    assert [b.labels[:, 0].tolist() for b in r] == [[2.0, 3.0]]
    assert r.rows_before() == 2
    p = LibSVMReader(path, num_parts=2, part_index=1, zero_based=True)
    first = next(iter(p)).labels[0, 0]
    assert p.rows_before() == int(first)


def test_reader_resolves_zero_based_auto_over_the_whole_file(tmp_path):
    path = write(tmp_path, b"1 1:1\n" * 100 + b"2 0:1\n")
    reader = LibSVMReader(path, num_parts=4, part_index=0, chunk_size=64)
    assert reader.zero_based is True
    assert next(iter(reader)).indices[0] == 1
    one = write(tmp_path, b"1 1:1\n" * 100, "one.libsvm")
    reader = LibSVMReader(one, num_parts=4, part_index=0, chunk_size=64)
    assert reader.zero_based is False and next(iter(reader)).indices[0] == 0


# ------------------------------------------------------------------------------------------
# Writing and round trips


@st.composite
def _matrix_and_labels(draw):
    n = draw(st.integers(1, 12))
    d = draw(st.integers(1, 30))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    width = 32 if dtype == np.float32 else 64
    vals = st.floats(allow_nan=False, allow_infinity=False, width=width)
    dense = np.array(draw(st.lists(st.lists(vals, min_size=d, max_size=d), min_size=n, max_size=n)), dtype=dtype)
    mask = np.array(draw(st.lists(st.lists(st.booleans(), min_size=d, max_size=d), min_size=n, max_size=n)))
    m = sp.csr_matrix(np.where(mask, dense, 0))
    # keep some explicit zeros as stored entries
    m = sp.csr_matrix((np.where(mask, dense, 0)[mask], np.nonzero(mask)[1], np.r_[0, np.cumsum(mask.sum(1))]), shape=(n, d))
    k = draw(st.sampled_from([0, 1, 3]))
    labels = np.array(draw(st.lists(vals, min_size=n * max(k, 1), max_size=n * max(k, 1))), dtype=dtype)
    y = labels if k == 0 else labels.reshape(n, max(k, 1))
    return m, y, dtype


@HYP
@given(case=_matrix_and_labels(), zero_based=st.booleans(), suffix=st.sampled_from(["", ".gz"]))
def test_dump_load_round_trip(tmp_path, case, zero_based, suffix):
    m, y, dtype = case
    path = str(tmp_path / f"rt.libsvm{suffix}")
    dump_libsvm(m, y, path, zero_based=zero_based)
    X, y2 = load_libsvm(path, num_features=m.shape[1], zero_based=zero_based, dtype=dtype)
    np.testing.assert_array_equal(X._indptr, m.indptr)
    np.testing.assert_array_equal(X._indices, m.indices)
    np.testing.assert_array_equal(X._data, m.data)
    assert np.signbit(X._data).tolist() == np.signbit(m.data).tolist()
    want = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y  # one label per row reads back 1-D
    np.testing.assert_array_equal(y2, want)
    assert y2.shape == want.shape


def test_dump_accepts_every_matrix_kind(tmp_path):
    from sparsetrain.ndarray.sparse import csr_matrix

    dense = np.array([[0, 1.5, 0], [2, 0, 0.25]])
    y = np.array([1, 0])
    want = "1 1:1.5\n0 0:2.0 2:0.25\n"
    for X in (dense, sp.csr_matrix(dense), sp.coo_matrix(dense), csr_matrix(dense, dtype=np.float64)):
        path = tmp_path / "k.libsvm"
        dump_libsvm(X, y, str(path))
        assert path.read_text() == want
    dump_libsvm(dense, y, str(path), zero_based=False)
    assert path.read_text() == "1 2:1.5\n0 1:2.0 3:0.25\n"
    assert [f.name for f in tmp_path.iterdir()] == ["k.libsvm"]  # no temporary left behind


def test_dump_rejects_bad_input(tmp_path):
    path = str(tmp_path / "bad.libsvm")
    with pytest.raises(ValueError, match="nan or inf"):
        dump_libsvm(np.array([[np.nan]]), [1], path)
    with pytest.raises(ValueError, match="nan or inf"):
        dump_libsvm(np.array([[1.0]]), [np.inf], path)
    with pytest.raises(ValueError, match="rows"):
        dump_libsvm(np.eye(2), [1, 2, 3], path)
    with pytest.raises(ValueError, match="zero_based"):
        dump_libsvm(np.eye(2), [1, 2], path, zero_based="auto")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_load_from_a_pipe(tmp_path):
    fifo = str(tmp_path / "pipe")
    os.mkfifo(fifo)
    content = EDGE_CASES["comments"] + EDGE_CASES["basic"] * 1000

    def writer():
        with open(fifo, "wb") as f:
            f.write(content)

    t = threading.Thread(target=writer)
    t.start()
    try:
        X, y = load_libsvm(fifo, chunk_size=1000)
    finally:
        t.join()
    X0, y0 = load_libsvm(write(tmp_path, content))
    assert (X.asscipy() != X0.asscipy()).nnz == 0
    np.testing.assert_array_equal(y, y0)
    with pytest.raises(ValueError, match="regular file"):
        LibSVMReader(fifo)


def _load_in_child(path, queue):
    queue.put(load_libsvm(path)[0].shape)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_loading_works_in_a_forked_child(tmp_path):
    import multiprocessing

    path = write(tmp_path, EDGE_CASES["basic"] * 100)
    load_libsvm(path)  # the parent's thread pool exists before the fork
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_load_in_child, args=(path, queue))
    child.start()
    try:
        assert queue.get(timeout=60) == (200, 3)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            child.kill()


COMPILE_PROBE = """
import collections, json, sys
from numba.core import event
seen = collections.defaultdict(list)
class Listener(event.Listener):
    def on_start(self, ev):
        pass
    def on_end(self, ev):
        d = ev.data["dispatcher"]
        seen[d.py_func.__module__ + "." + d.py_func.__qualname__].append(str(ev.data["args"]))
event.register("numba:compile", Listener())
from sparsetrain.base import DataFormatError
from sparsetrain.io import load_libsvm
load_libsvm(sys.argv[1])
try:
    load_libsvm(sys.argv[2])
except DataFormatError:
    pass
print(json.dumps(seen))
"""


@pytest.mark.slow  # a cold compile of the parser in a child process (~10 CPU s)
def test_a_cold_parse_compiles_each_kernel_once(tmp_path):
    """On an empty numba cache every parser kernel compiles once: no second specialisation for a literal
    argument (an error code, a position starting at 0), and the error recorder is inlined, not compiled."""
    import json
    import subprocess
    import sys

    good = write(tmp_path, EDGE_CASES["basic"], "good.libsvm")
    bad = write(tmp_path, b"1 1:2\n1 3:x\n", "bad.libsvm")
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    p = subprocess.run([sys.executable, "-c", COMPILE_PROBE, good, bad], capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0, p.stderr
    seen = json.loads(p.stdout.strip().splitlines()[-1])
    assert any(name.endswith("_parse_lines") for name in seen)
    ours = {name: sigs for name, sigs in seen.items() if name.startswith("sparsetrain.")}
    assert all(len(sigs) == 1 for sigs in ours.values()), {n: s for n, s in ours.items() if len(s) > 1}
    assert not any("Literal" in s for sigs in ours.values() for s in sigs)
    assert not any("record_error" in name for name in ours)


def test_eisel_lemire_table_is_the_128_bit_powers_of_five():
    """The table built at import (with shifts) against its definition: ⌈2**k / 5**-q⌉ truncated to 128 bits
    for q < 0 (as fast_float), 5**q scaled by a power of two into [2**127, 2**128) for q >= 0."""
    table = D._POW5_128
    for q in (-342, -300, -28, -27, -1, 0, 1, 27, 28, 100, 308):
        i = 2 * (q - D._EL_MIN_Q)
        got = (int(table[i]) << 64) | int(table[i + 1])
        assert 1 << 127 <= got < 1 << 128, q
        if q >= 0:
            power5 = 5**q
            while power5 < 1 << 127:
                power5 *= 2
            while power5 >= 1 << 128:
                power5 //= 2
            assert got == power5, q
        else:
            power5 = 5**-q
            z = power5.bit_length() if power5 & (power5 - 1) else power5.bit_length() - 1
            c = 2 ** (z + 127) // power5 + 1 if q >= -27 else 2 ** (2 * z + 128) // power5 + 1
            while c >= 1 << 128:
                c //= 2
            assert got == c, q
