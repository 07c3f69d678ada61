"""LibSVM fuzzing against scikit-learn's ``load_svmlight_file``: on any text, both accept with
the same matrix and labels, or both reject.

The text is made of LibSVM-like lines (labels, qid, ``idx:val`` features, comments, the
separators) with random byte edits, so that it is often malformed in small ways.
``load_libsvm`` decides from the first data row whether labels are multi-label, so a file it
reads with 2-D labels is compared with ``load_svmlight_file(multilabel=True)`` and one with
1-D labels with ``multilabel=False``; always with ``query_id=True``, so that scikit-learn
checks that a qid is an integer as the grammar says (it skips the qid's value otherwise).

Where we differ from scikit-learn on purpose (each is SPEC §4 or documented in README):

- ``nan``/``inf`` (and numbers beyond float64, which Python's ``float`` turns into inf) are
  rejected with the line, where scikit-learn loads them;
- numbers and indices with ``_`` (``1_0``: Python's ``float``/``int`` accept them) are not
  LibSVM numbers for us;
- multi-label rows: every row must have as many labels as the first (a ``(rows, k)`` label
  array, in the file's order); scikit-learn's ``multilabel=True`` reads a sorted set of class
  ids of any size per row, none included (``qid:1 1:2``), its default ``multilabel=False``
  exactly one label;
- a file without data rows is an error for us, an empty matrix for scikit-learn.

The default run is bounded (CI); ``python -m pytest -m slow tests/test_libsvm_fuzz.py`` runs a
deeper one.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsetrain.base import DataFormatError
from sparsetrain.io import load_libsvm

sklearn_datasets = pytest.importorskip("sklearn.datasets")

_NUMBERS = ["1", "-1", "0", "2.5", "-0.5", ".5", "5.", "+3", "1e3", "2E-2", "007", "-0", "0.1234567890123456789",
            "nan", "inf", "-Infinity", "1e400", "1_0", "x", "", "1.5e", "--1", "."]
_EDIT_BYTES = list(" \t\r:,#.-+e_0123456789qidnax") + ["\x0b", "\x0c", "qid:", "1:1"]


@st.composite
def _line(draw):
    kind = draw(st.integers(0, 12))
    if kind == 0:
        return draw(st.sampled_from(["", "   ", "# comment 1:2", "\t#"]))
    n_labels = 1 if kind > 3 else draw(st.integers(1, 3))
    parts = [",".join(draw(st.sampled_from(_NUMBERS)) if draw(st.integers(0, 6)) == 0 else str(draw(st.integers(-2, 3)))
                      for _ in range(n_labels))]
    if draw(st.integers(0, 8)) == 0:
        parts.append("qid:" + draw(st.sampled_from(["1", "12", "-3", "x", ""])))
    idx = draw(st.integers(-1, 2))
    for _ in range(draw(st.integers(0, 5))):
        idx += draw(st.integers(1, 9)) if draw(st.integers(0, 12)) else draw(st.integers(-2, 0))
        value = draw(st.sampled_from(_NUMBERS)) if draw(st.integers(0, 5)) == 0 else str(draw(st.integers(1, 99)) / 8)
        parts.append(f"{idx}:{value}")
    text = draw(st.sampled_from([" ", "\t", "  ", " \r"])).join(parts)
    if draw(st.integers(0, 6)) == 0:
        text += draw(st.sampled_from([" # c", "#x 1:2", " #"]))
    for _ in range(draw(st.integers(0, 2)) if draw(st.integers(0, 2)) == 0 else 0):  # a few random byte edits
        pos = draw(st.integers(0, len(text)))
        op = draw(st.integers(0, 2))
        if op == 0:
            text = text[:pos] + draw(st.sampled_from(_EDIT_BYTES)) + text[pos:]
        elif op == 1:
            text = text[:pos] + text[pos + 1:]
        else:
            text = text[:pos] + draw(st.sampled_from(_EDIT_BYTES)) + text[pos + 1:]
    return text


_files = st.builds(lambda lines, crlf, last_nl: (("\r\n" if crlf else "\n").join(lines) + ("\n" if last_nl else "")),
                   st.lists(_line(), min_size=1, max_size=6), st.booleans(), st.booleans()).map(str.encode)


def _ours(path):
    try:
        X, y = load_libsvm(path, dtype="float64")
    except DataFormatError as e:
        return "error", str(e)
    return "ok", X.asscipy(), y


def _sklearn(path, multilabel):
    try:
        X, y = sklearn_datasets.load_svmlight_file(path, dtype=np.float64, multilabel=multilabel, query_id=True)[:2]
    except Exception as e:  # ValueError mostly; anything it refuses counts as a rejection
        return "error", f"{type(e).__name__}: {e}"
    return "ok", sp.csr_matrix(X), y


def _data_text(content: bytes) -> bytes:
    """The file without comments: where a token can matter."""
    return b"\n".join(line.split(b"#", 1)[0] for line in content.split(b"\n"))


def _intended_difference(content: bytes, ours, sk_single, sk_multi) -> str | None:
    """Why ``ours`` may reject what scikit-learn accepts (see the module docstring), or None."""
    data = _data_text(content)
    accepted = [(r, multi) for r, multi in ((sk_single, False), (sk_multi, True)) if r[0] == "ok"]
    if not accepted:
        return None
    for (_, X, y), multi in accepted:
        labels = np.array([v for t in y for v in t], float) if multi else y
        if not (np.isfinite(X.data).all() and np.isfinite(labels).all()):
            return "nan/inf"
    if b"_" in data:
        return "underscore in a number"
    if re.search(r"no data rows", ours[1]):
        return "no data rows"
    if "label" in ours[1] and "per row" in ours[1] and sk_multi[0] == "ok":
        return "a different number of labels than the first row"
    if "is the label missing?" in ours[1] and sk_multi[0] == "ok":
        return "a row without a label"
    return None


def _check_against_sklearn(tmp_path, content: bytes):
    path = tmp_path / "fuzz.libsvm"
    path.write_bytes(content)
    ours = _ours(str(path))
    sk_single, sk_multi = _sklearn(str(path), False), _sklearn(str(path), True)
    if ours[0] == "ok":
        X, y = ours[1], ours[2]
        sk = sk_multi if y.ndim == 2 else sk_single
        assert sk[0] == "ok", (content, "we accept, scikit-learn rejects", sk[1])
        Xs, ys = sk[1], sk[2]
        assert X.shape == Xs.shape, content
        np.testing.assert_array_equal(X.indptr, Xs.indptr)
        np.testing.assert_array_equal(X.indices, Xs.indices)
        np.testing.assert_array_equal(X.data, Xs.data)
        if y.ndim == 2:
            assert [tuple(sorted(r)) for r in y.tolist()] == [tuple(t) for t in ys], content
        else:
            np.testing.assert_array_equal(y, ys)
        return
    why = _intended_difference(content, ours, sk_single, sk_multi)
    if why is None:
        assert sk_single[0] == "error" and sk_multi[0] == "error", (content, "we reject, scikit-learn accepts", ours[1])
    # the message names the file, and the line when it is about a token
    assert ours[1].startswith(str(path)), ours[1]


@given(content=_files)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_same_outcome_as_sklearn(tmp_path, content):
    _check_against_sklearn(tmp_path, content)


@pytest.mark.slow
@given(content=_files)
@settings(max_examples=5000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_same_outcome_as_sklearn_deep(tmp_path, content):
    _check_against_sklearn(tmp_path, content)


@pytest.mark.parametrize("content", [
    b"1 3:1,2\n",  # a value where one number is expected
    b"1,2 3:1,2\n",
    b"1 1:1\n2,3 2:1\n",  # the first row has one label
    b"1,2 1:1\n3 2:1\n",  # ... or two
    b"1,,2 1:1\n", b"1, 1:1\n", b",1 1:1\n",
])
def test_commas_only_between_the_labels_of_a_row(tmp_path, content):
    path = tmp_path / "x.libsvm"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=re.escape(str(path)) + r":\d+: "):
        load_libsvm(str(path))
    assert _sklearn(str(path), False)[0] == "error"


def test_intended_differences_are_what_the_docstring_says(tmp_path):
    for content, why in [(b"1 1:nan\n", "nan/inf"), (b"1 1:1e400\n", "nan/inf"), (b"1_0 1:1\n", "underscore in a number"),
                         (b"# only\n", "no data rows"), (b"1,2 1:1\n3 2:1\n", "a different number of labels"),
                         (b"qid:1 1:2\n", "a row without a label")]:
        path = tmp_path / "d.libsvm"
        path.write_bytes(content)
        ours = _ours(str(path))
        assert ours[0] == "error"
        assert _intended_difference(content, ours, _sklearn(str(path), False), _sklearn(str(path), True)).startswith(why)
    assert math.isinf(float("1e400"))


_FLOAT32_LIMIT = 3.4028235677973366e38  # |x| from which a double rounds to float32 infinity
_VALUE_TOKENS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["1e-7", "-0.0", "1.5e+10", "0.1234567890123456789", "123456789012345678", "1234567890123456",
                     ".5", "5.", "0", "-0", "0.000001", "99999999.99999999", "3.4028235e38", "1e-46"]),
    st.builds(lambda a, b, z: f"{a}.{'0' * z}{b}", st.integers(0, 10**9), st.integers(0, 10**12), st.integers(0, 9)),
)


@given(values=st.lists(_VALUE_TOKENS, min_size=1, max_size=12), tail=st.sampled_from(["", "/", ":", "a", "\x2e"]),
       where=st.integers(0, 11))
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_values_are_python_floats_rounded_to_float32(tmp_path, values, tail, where):
    """Each value is ``float(token)`` cast to float32 (as scikit-learn reads it), whatever its digits
    (the kernel's inline digit runs, the exact slow paths, long mantissas); a byte just outside
    '0'..'9' ('/' and ':' border the digits in ASCII) after a value makes it malformed."""
    path = tmp_path / "values.libsvm"
    tokens = list(values)
    if tail:
        tokens[where % len(tokens)] += tail
    path.write_text("1 " + " ".join(f"{i}:{v}" for i, v in enumerate(tokens)) + "\n")
    expected = [float(v) for v in values]
    if tail or any(abs(x) >= _FLOAT32_LIMIT for x in expected):
        if tail == "\x2e" and "." not in values[where % len(values)] and "e" not in values[where % len(values)].lower():
            return  # "5" + "." is the number "5."
        with pytest.raises(DataFormatError, match=r"values\.libsvm:1: feature value"):
            load_libsvm(str(path), zero_based=True, dtype="float32")
        return
    X, _ = load_libsvm(str(path), zero_based=True, dtype="float32")
    np.testing.assert_array_equal(X.asscipy().toarray()[0], np.array(expected, np.float64).astype(np.float32))
