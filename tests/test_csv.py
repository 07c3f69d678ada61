"""CSV/TSV with a schema: the compiled chunk parser against a reference built on Python's csv
module and against pandas + scikit-learn's murmurhash (hypothesis tables with quoting, empty fields,
unicode, CRLF), errors with file:line,
parts, compression and training from CSV."""
from __future__ import annotations

import bz2
import csv
import gzip
import io
import math
import weakref

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from sparsetrain.base import ConfigError, DataFormatError
from sparsetrain.engines.compiled.kernels import csr_check
from sparsetrain.io import _csv_kernels as CK
from sparsetrain.io.csv_reader import CSVReader, CSVSchema, load_csv
from sparsetrain.io.hashing import HASH_SEED, feature_id

sk_murmur = pytest.importorskip("sklearn.utils").murmurhash3_32

COLUMNS = ["y", "n1", "c1", "n2", "c2", "skip"]


def _schema(bits=6, **kw):
    base = dict(columns=COLUMNS, label="y", numeric=["n1", "n2"], categorical=["c1", "c2"], crosses=[["c1", "c2"]],
                hash_bits=bits, log1p=["n2"])
    base.update(kw)
    return CSVSchema(**base)


def _dense(X):
    return X.asscipy().toarray()


def _reference_dense(text, schema, delimiter=","):
    labels, rows = CK.parse_reference(text, schema.columns, schema.label, schema.numeric, schema.categorical,
                                      schema.crosses, schema.hash_bits, schema.log1p, delimiter, schema.header)
    out = np.zeros((len(rows), schema.num_features))
    for i, r in enumerate(rows):
        for j, v in r.items():
            out[i, j] = v
    return np.array(labels), out


_cell_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"), max_size=6)
_number = st.one_of(st.integers(-1000, 10**6).map(str), st.floats(-1e6, 1e6, allow_nan=False).map(repr),
                    st.just(""), st.just("0"), st.just(" 2 "))


def _assert_reads_as_reference(path, text, chunks):
    """``text`` written to ``path`` loads (12 hash bits, in chunks of each size) as the reference reads it."""
    path.write_bytes(text.encode())
    y_ref, X_ref = _reference_dense(text, _schema(bits=12), ",")
    for chunk in chunks:
        X, y, _ = load_csv(path, _schema(bits=12), dtype="float64", chunk_size=chunk)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(_dense(X), X_ref)


@st.composite
def _table(draw):
    rows = []
    for _ in range(draw(st.integers(1, 12))):
        row = [str(draw(st.integers(0, 1))), draw(_number), draw(_cell_text), draw(_number), draw(_cell_text),
               draw(_cell_text)]
        cut = draw(st.integers(2, 6))  # trailing fields may be missing
        rows.append(row[:cut] if draw(st.integers(0, 4)) == 0 else row)
    return rows


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_table(), st.sampled_from([",", "\t", ";"]), st.sampled_from(["\n", "\r\n"]),
       st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]), st.booleans(), st.integers(1, 64))
def test_kernel_equals_csv_module_reference(tmp_path_factory, rows, delim, newline, quoting, header, chunk):
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter=delim, lineterminator=newline, quoting=quoting)
    if header:
        w.writerow(COLUMNS)
    w.writerows(rows)
    text = out.getvalue()
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_bytes(text.encode("utf-8"))
    schema = _schema(delimiter=delim, header=header, columns=None if header else COLUMNS)
    ref_schema = _schema(delimiter=delim, header=header)
    y_ref, X_ref = _reference_dense(text, ref_schema, delim)
    X, y, _ = load_csv(path, schema, dtype="float64", chunk_size=chunk)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(_dense(X), X_ref, rtol=1e-15, atol=0)
    S = X.asscipy()
    # canonical rows with ids in range: what CSVReader.rows_checked promises the compiled engine
    assert csr_check(S.indices.astype(np.int64), S.indptr.astype(np.int64), S.shape[1], S.shape[0]) == 2


def _pandas_reference(path, schema, delimiter, header):
    """The rows of ``path`` as ``(labels, dense matrix)`` from an independent reference: the fields as
    ``pandas.read_csv`` reads them (quoting, CRLF, blank lines, missing trailing fields), the hashed ids as
    scikit-learn's ``murmurhash3_32(key, seed=0, positive=True) % 2**hash_bits``, repeats summed."""
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(path, sep=delimiter, header=0 if header else None, names=list(COLUMNS), dtype=str,
                        na_filter=False, quotechar='"', doublequote=True, encoding="utf-8", engine="c")
    size = 1 << schema.hash_bits
    X = np.zeros((len(frame), schema.num_features))
    for i, row in enumerate(frame.itertuples(index=False)):
        vals = dict(zip(COLUMNS, row))  # (a missing trailing field is "" under na_filter=False)
        keys = [f"{c}={vals[c]}" for c in schema.categorical if vals[c]]
        keys += [f"{a}={vals[a]}^{b}={vals[b]}" for a, b in schema.crosses if vals[a] and vals[b]]
        for key in keys:
            X[i, sk_murmur(key, seed=0, positive=True) % size] += 1.0
        for k, c in enumerate(schema.numeric):
            x = float(vals[c]) if vals[c].strip(" \t") else 0.0
            X[i, size + k] = math.copysign(math.log1p(abs(x)), x) if c in schema.log1p else x
    return frame[schema.label].astype(float).to_numpy(), X


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_table(), st.sampled_from([",", "\t", ";"]), st.sampled_from(["\n", "\r\n"]),
       st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]), st.booleans(), st.integers(1, 64))
def test_kernel_equals_a_pandas_and_scikit_learn_reference(tmp_path_factory, rows, delim, newline, quoting, header,
                                                           chunk):
    """Issue 18's test: hypothesis tables (quoted fields, doubled quotes, empty and missing trailing fields,
    unicode, CRLF) read as pandas splits them and scikit-learn hashes them — a reference that shares no
    code with the parser or its own ``parse_reference``."""
    out = io.StringIO(newline="")
    w = csv.writer(out, delimiter=delim, lineterminator=newline, quoting=quoting)
    if header:
        w.writerow(COLUMNS)
    w.writerows(rows)
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_bytes(out.getvalue().encode("utf-8"))
    schema = _schema(bits=10, delimiter=delim, header=header, columns=None if header else COLUMNS)
    y_ref, X_ref = _pandas_reference(path, schema, delim, header)
    X, y, _ = load_csv(path, schema, dtype="float64", chunk_size=chunk)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_allclose(_dense(X), X_ref, rtol=1e-15, atol=0)


def test_long_fields_across_64_byte_blocks_equal_the_reference(tmp_path):
    """The field split reads separators from 64-byte blocks: fields and lines of every length around
    and across block bounds, quoted lines among plain ones, CRLF lines, in one chunk and in many."""
    rng = np.random.default_rng(5)
    lines = []
    for i in range(400):
        cells = ["".join(rng.choice(list("abcxyz0123"), int(rng.integers(0, 90)))) for _ in range(3)]
        row = [str(i % 2), str(int(rng.integers(0, 10**6))), cells[0], "", cells[1], cells[2]]
        if i % 7 == 3:
            row[2] = '"' + cells[0] + ',""q"""'
        lines.append(",".join(row[: int(rng.integers(2, 7))]) + ("\r\n" if i % 5 == 1 else "\n"))
    text = "".join(lines)
    _assert_reads_as_reference(tmp_path / "long.csv", text, chunks=(1 << 20, 977))


def test_a_field_starting_with_a_quote_is_seen_at_every_offset_of_a_block(tmp_path):
    """The split finds a quote that starts a field from bit masks (one past a separator, or the line's
    start), also across a 64-byte block's end; a line with more fields than columns is an error
    wherever its fields end."""
    text = ""
    for r, target in enumerate(list(range(64)) * 2):  # the line's one quoted field starts at byte `target` of a block
        head, n2, quoted = f"{r % 2},{target},", str(r % 5), '"x,""y"' if r < 64 else '"q"z'
        pad = (target - len(text) - len(head) - len(n2) - 2) % 64
        text += head + "a" * pad + "," + n2 + "," + quoted + ",b\n"
        assert (len(text) - len(quoted) - 3) % 64 == target
    _assert_reads_as_reference(tmp_path / "q.csv", text, chunks=(1 << 20, 333))
    for pad in (0, 50, 61, 62, 63, 64, 65, 130):
        bad = tmp_path / f"bad{pad}.csv"
        bad.write_text("1,2,a,3,b,c\n" + "1," + "9" * pad + ",a,3,b,c,extra,more\n")
        with pytest.raises(DataFormatError, match=r":2: more than the 6 columns"):
            load_csv(bad, _schema())


def test_ids_are_scikit_learn_murmurhash_of_column_equals_value(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('y,n1,c1,n2,c2,skip\n1,3,"x,""y",,é☃,zz\n', encoding="utf-8")
    X, y, _ = load_csv(p, _schema(bits=20, header=True, columns=None))
    size = 2**20
    want = {sk_murmur('c1=x,"y', 0, positive=True) % size: 1.0, sk_murmur("c2=é☃", 0, positive=True) % size: 1.0,
            sk_murmur('c1=x,"y^c2=é☃', 0, positive=True) % size: 1.0, size + 0: 3.0}
    got = dict(zip(X.asscipy().indices.tolist(), X.asscipy().data.tolist()))
    assert got == want and y.tolist() == [1.0]
    assert feature_id("c2=é☃", 20) in got


def test_feature_space_is_hash_buckets_then_numeric_columns():
    s = _schema(bits=4)
    assert s.num_features == 16 + 2


def test_log1p_is_signed(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("1,,,-3,,\n1,,,4,,\n")
    X, _, _ = load_csv(p, _schema(), dtype="float64")
    np.testing.assert_allclose(X.asscipy().data, [-math.log1p(3), math.log1p(4)])


def test_long_numbers_are_converted_as_python_float(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text('0.12345678901234567890123,"1.0000000000000000000001",,,,\n')
    X, y, _ = load_csv(p, _schema(), dtype="float64")
    assert y[0] == float("0.12345678901234567890123") and X.asscipy().data.tolist() == [1.0]


def test_numeric_fields_of_every_shape_equal_the_reference(tmp_path):
    """The kernel's digits-only fast path and its fallbacks (spaces, signs, fractions, 16+ digits)."""
    cells = ["", " ", "0", "-0", "007", " 12 ", "-3", "+4", "1e2", "0.0", "-0.0", "9" * 15, "9" * 16, "1" * 19,
             "0000000000000000000005", "9" * 20, "3.", "\t8", "12345678", "99999999", "1234567", "123456789",
             "1023", "1024", "5000", "00001024"]
    text = "".join(f"1,{a},u,{b},v,\n" for a, b in zip(cells, cells[::-1]))
    p = tmp_path / "a.csv"
    p.write_text(text)
    X, y, _ = load_csv(p, _schema(), dtype="float64")
    np.testing.assert_array_equal(_dense(X), _reference_dense(text, _schema())[1])


def test_lane_groups_of_consecutive_columns_are_flagged():
    """``lane_table``'s rows 8 (categorical) and 9 (numeric): at each group's first lane, 1 where the group's
    columns are consecutive and ascending (the kernel then loads their field spans at once), else 0."""
    states = np.zeros((60, 4), np.int64)
    cases = [(np.arange(3, 29), [1, 1, 0]), (np.array([5, 6, 8]), [0, 0, 0]), (np.array([6, 5]), [0, 0, 0]),
             (np.array([7]), [1, 0, 0]), (np.r_[np.arange(10, 26), [40, 41]], [1, 1, 0]),
             (np.r_[np.arange(10, 26), [41, 40]], [1, 0, 0]), (np.r_[np.arange(10, 25), [30]], [0, 0, 0])]
    for cols, want in cases:
        cols = cols.astype(np.int64)
        for cat, num in ((cols, cols[:0]), (cols[:0], cols)):
            lanes = CK.lane_table(cat, states, num, np.zeros(len(num), np.bool_))
            got = [int(lanes[8 if len(cat) else 9, g]) if g < lanes.shape[1] else 0 for g in (0, 16, 32)]
            assert got == want, cols
            assert not lanes[9 if len(cat) else 8].any()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_numeric_columns_in_lane_groups_equal_the_reference(tmp_path, dtype):
    """More numeric columns than one lane group (``LANES``: ``count_lanes`` where ``WIDE``), listed in another
    order than the file's, log1p on every third: rows of counts only (the lanes' path), rows with a log1p of a
    count beyond the table, and rows with one field of any other shape in either group (that group one field
    at a time) equal the reference; a bad field in the second group names its column."""
    rng = np.random.default_rng(5)
    n = CK.LANES + 5
    columns = ["y"] + [f"n{k}" for k in range(n)] + ["c"]
    numeric = [f"n{k}" for k in rng.permutation(n)]
    schema = CSVSchema(columns=columns, label="y", numeric=numeric, categorical=["c"], hash_bits=10,
                       log1p=numeric[::3])
    counts = ["", "0", "1", "7", "42", "1023", "1024", "5000", "12345678", "99999999", "00000000", "007"]
    other = [" 3", "-2", "1.5", "123456789", "1e3", "4 ", "0.0"]
    lines = []
    for i in range(60):
        cells = [counts[j] for j in rng.integers(0, len(counts), n)]
        if i % 3 == 2:
            cells[int(rng.integers(0, n))] = other[int(rng.integers(0, len(other)))]
        lines.append(",".join([str(i % 2)] + cells + ["u"]) + "\n")
    text = "".join(lines)
    p = tmp_path / "wide.csv"
    p.write_text(text)
    X, y, _ = load_csv(p, schema, dtype=dtype)
    y_ref, X_ref = _reference_dense(text, schema)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(_dense(X), X_ref.astype(dtype))
    bad = numeric[CK.LANES + 1]
    cells = ["1"] * n
    cells[columns.index(bad) - 1] = "x1"
    p.write_text(text + ",".join(["0"] + cells + ["u"]) + "\n")
    with pytest.raises(DataFormatError) as e:
        load_csv(p, schema)
    assert "wide.csv:61:" in str(e.value) and f"column '{bad}': 'x1' is not a number" in str(e.value)


@pytest.mark.parametrize("text, line, words", [
    ("1,2,a,3,b,c\n1,2,a,3,b,c,extra\n", 2, "more than the 6 columns"),
    ("1,2,a\nx,2,a\n", 2, "label column 'y': 'x' is not a number"),
    ("1,2,a\n,2,a\n", 2, "label column 'y' is empty"),
    ("1,2,a\n\n1,abc,a\n", 3, "column 'n1': 'abc' is not a number"),
    ("1,2,a\n1,1234567:,a,,,\n", 2, "column 'n1': '1234567:' is not a number"),
    ("1,2,a\n1,/,a,,,\n", 2, "column 'n1': '/' is not a number"),
    ("1,2,a\n1,nan,a\n", 2, "column 'n1': 'nan' is not finite"),
    ('1,2,"a\n1,2,a\n', 1, "unterminated quoted field"),
    ("1,2,a\r\n1,2,a\r\n1,1e999,a\r\n", 3, "not finite"),
])
def test_malformed_lines_name_file_and_line(tmp_path, text, line, words):
    p = tmp_path / "bad.csv"
    p.write_text(text, newline="")
    with pytest.raises(DataFormatError) as e:
        load_csv(p, _schema())
    assert f"bad.csv:{line}:" in str(e.value) and words in str(e.value)


def test_error_line_counts_across_chunks_and_parts(tmp_path):
    lines = [f"1,{i},a,,," for i in range(500)]
    lines[321] = "1,zzz,a,,,"
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"bad.csv:322: column 'n1': 'zzz'"):
        load_csv(p, _schema(), chunk_size=100)
    blocks = []
    with pytest.raises(DataFormatError, match=r"bad.csv:322:"):
        for part in range(3):
            blocks += list(CSVReader(p, _schema(), num_parts=3, part_index=part, chunk_size=64))


def test_parts_hold_every_row_once_and_compressed_files_read_the_same(tmp_path):
    text = "".join(f"{i % 2},{i},v{i % 7},{i % 3},w{i % 5},\n" for i in range(1000))
    p = tmp_path / "a.csv"
    p.write_text(text)
    X, y, _ = load_csv(p, _schema())
    rows = []
    for part in range(4):
        for b in CSVReader(p, _schema(), num_parts=4, part_index=part, chunk_size=300):
            rows.append(b.to_csr(X.shape[1]).asscipy().toarray())
    np.testing.assert_array_equal(np.vstack(rows), _dense(X))
    for opener, ext in ((gzip.open, ".gz"), (bz2.open, ".bz2")):
        q = tmp_path / ("a.csv" + ext)
        with opener(q, "wt") as f:
            f.write(text)
        Xc, yc, _ = load_csv(q, _schema(), chunk_size=500)
        np.testing.assert_array_equal(_dense(Xc), _dense(X))
        np.testing.assert_array_equal(yc, y)


def test_tsv_files_default_to_tab_and_header_names_are_checked(tmp_path):
    p = tmp_path / "a.tsv"
    p.write_text("y\tn1\tc1\n1\t2\tq\n")
    X, y, _ = load_csv(p, CSVSchema(header=True, label="y", numeric=["n1"], categorical=["c1"], hash_bits=3))
    assert y.tolist() == [1.0] and X.shape == (1, 9)
    with pytest.raises(ConfigError, match=r"data.categorical: no column 'c1x' in the header of .*did you mean 'c1'"):
        load_csv(p, CSVSchema(header=True, label="y", categorical=["c1x"], hash_bits=3))
    with pytest.raises(ConfigError, match=r"data.numeric: no column 'zz' in the header of .*\(columns: y, n1, c1\)"):
        load_csv(p, CSVSchema(header=True, label="y", numeric=["zz"], hash_bits=3))


def test_a_header_line_read_as_data_says_to_set_header(tmp_path):
    # csv.columns given for a file whose first line names them: line 1 is data, and its error says why
    from sparsetrain.labels import TextLabels

    p = tmp_path / "h.csv"
    p.write_text("click,n,c\nyes,2,q\nno,3,r\n")
    hint = r" \(if line 1 holds the column names, set data.csv.header: true\)$"
    named = dict(columns=["y", "n1", "c1"], label="y", categorical=["c1"], hash_bits=3)
    with pytest.raises(DataFormatError, match=r"h.csv:1: column 'n1': 'n' is not a number" + hint):
        load_csv(p, CSVSchema(numeric=["n1"], **named))
    with pytest.raises(DataFormatError, match=r"h.csv:1: label column 'y': 'click' is not a number \(a regression "
                                              r"label must be a number\)" + hint):
        load_csv(p, CSVSchema(**named), labels=TextLabels("regression"))
    with pytest.raises(DataFormatError, match=r"h.csv:1: label 'click' is a third value; .*" + hint):
        load_csv(p, CSVSchema(**named), labels=TextLabels("binary", ("no", "yes")))
    p.write_text("0,2,q\n1,x,r\n")  # (a later line: no hint)
    with pytest.raises(DataFormatError, match=r"h.csv:2: column 'n1': 'x' is not a number$"):
        load_csv(p, CSVSchema(numeric=["n1"], **named))


def test_schema_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"data.crosses\[0\]: 'n1' is not one of data.categorical"):
        _schema(crosses=[["n1", "c1"]]).check()
    with pytest.raises(ConfigError, match=r"data.log1p: 'c1' is not one of data.numeric"):
        _schema(log1p=["c1"]).check()
    with pytest.raises(ConfigError, match=r"data.categorical: column 'n1' is already in data.numeric"):
        _schema(categorical=["n1"]).check()
    with pytest.raises(ConfigError, match=r"data.numeric, data.categorical: both empty, so the rows would have no "
                                          r"features; name the feature columns"):
        _schema(numeric=[], categorical=[], crosses=[], log1p=[]).check()
    _schema(numeric=[], crosses=[], log1p=[]).check()  # hashed columns alone
    _schema(categorical=[], crosses=[]).check()  # numeric columns alone


# ---- a weight column: per-row importance weights


def test_weight_column_is_read_per_row_as_the_reference_does(tmp_path):
    text = ('1,2,a,1.5,b,0.5\n0,,b,,a,\n1,3,"a",,,"2"\n0,1,c,4,d,0.12345678901234567890123\n'
            "1,1,c,4,d, 0 \n")
    p = tmp_path / "w.csv"
    p.write_text(text)
    schema = _schema(weight_column="skip")
    X, y, w = load_csv(p, schema, dtype="float64", chunk_size=16)
    labels, rows, weights = CK.parse_reference(text, COLUMNS, "y", schema.numeric, schema.categorical,
                                               schema.crosses, schema.hash_bits, schema.log1p, ",",
                                               weight_column="skip")
    assert w.tolist() == weights == [0.5, 1.0, 2.0, float("0.12345678901234567890123"), 0.0]
    assert y.tolist() == labels
    assert len(rows) == X.shape[0]
    # the weight column is no feature
    np.testing.assert_array_equal(_dense(X), _dense(load_csv(p, _schema(), dtype="float64")[0]))
    assert load_csv(p, _schema())[2] is None


@pytest.mark.parametrize("cell", ["-1", "abc", "inf", "-1.0000000000000000000001"])
def test_a_bad_weight_names_file_line_and_column(tmp_path, cell):
    p = tmp_path / "w.csv"
    p.write_text(f"1,2,a,1,b,1\n0,2,a,1,b,{cell}\n")
    with pytest.raises(DataFormatError, match=rf"w.csv:2: weight column 'skip': '{cell}' is not a finite number >= 0"):
        load_csv(p, _schema(weight_column="skip"))


def test_weight_column_schema_errors():
    with pytest.raises(ConfigError, match=r"data.weight_column: column 'y' is the label"):
        _schema(weight_column="y").check()
    with pytest.raises(ConfigError, match=r"data.numeric: column 'n1' is already in data.weight_column"):
        _schema(weight_column="n1").check()
    with pytest.raises(ConfigError, match=r"data.weight_column: no column 'skp' in data.csv.columns.*did you mean 'skip'"):
        _schema(weight_column="skp").check_columns(COLUMNS, "data.csv.columns")


@pytest.mark.parametrize("bits", [1, 6, 7, 20, 31])
def test_the_row_sort_orders_ids_and_sums_repeats_as_numpy_does(bits):
    rng = np.random.default_rng(bits)
    keys, vals, buckets = np.empty(80, np.int64), np.empty(80), np.empty(64, np.int64)
    for n in [0, 1, 2, 5, 27, 80]:
        for unit in (True, False):
            for _ in range(20):
                ids = rng.integers(0, 2**bits, n)
                if n > 2:  # repeats, as colliding hashes make them
                    ids[rng.integers(0, n, n // 3)] = ids[0]
                v = np.ones(n) if unit else rng.integers(-3, 4, n).astype(float)
                indices = np.concatenate([[-7], ids, [-9]])
                data = np.concatenate([[5.0], np.full(n, np.nan) if unit else v, [6.0]])  # unit: data unread
                end = CK.sort_row(indices, data, 1, 1 + n, keys, vals, buckets, bits, unit)
                want, where = np.unique(ids, return_inverse=True)
                np.testing.assert_array_equal(indices[1:end], want)
                np.testing.assert_array_equal(data[1:end], np.bincount(where, v, len(want)))
                assert (indices[0], indices[-1], data[0], data[-1]) == (-7, -9, 5.0, 6.0)


@njit
def _sort_ids(indices, data, start, n):
    return CK.sort_ids(indices, data, start, n)


@pytest.mark.parametrize("bits", [1, 20, 31])
def test_the_sorting_network_orders_ids_and_flags_repeats(bits):
    """``sort_ids`` (the CSV kernel's bitonic network, rows of up to SORT_LANES ids) sorts as numpy, sets
    the span's values to 1 (float32 and float64), stores nothing outside its span and says whether an id
    repeats."""
    rng = np.random.default_rng(bits)
    for n in range(CK.SORT_LANES + 1):
        for _ in range(10):
            ids = rng.integers(0, 2**bits, n)
            if n > 2 and rng.random() < 0.3:
                ids[rng.integers(0, n)] = ids[rng.integers(0, n)]
            indices = np.concatenate([[-7], ids, [-9] * 40])
            data = np.full(len(indices), 5.0, np.float32 if n % 2 else np.float64)
            repeats = _sort_ids(indices, data, 1, n)
            np.testing.assert_array_equal(indices[1:1 + n], np.sort(ids))
            assert indices[0] == -7 and (indices[1 + n:] == -9).all()
            assert data.tolist() == [5.0] + [1.0] * n + [5.0] * 40
            assert repeats == (len(np.unique(ids)) < n)


def test_a_streamed_pass_parses_into_the_arrays_of_chunks_no_longer_held(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("".join(f"{i % 2},{i},v{i % 7},{i % 3},w{i % 5},\n" for i in range(3000)))
    X, y, _ = load_csv(p, _schema())
    reader = CSVReader(p, _schema(), chunk_size=4096, workers=1)
    rows, seen, reused = [], [], 0
    for b in reader:  # each block dropped before the next: its arrays serve a later chunk
        rows.append(b.to_csr(X.shape[1]).asscipy().toarray())
        owner = b.indices if b.indices.base is None else b.indices.base
        reused += any(r() is owner for r in seen)
        seen.append(weakref.ref(owner))
    np.testing.assert_array_equal(np.vstack(rows), _dense(X))
    assert len(rows) > 10 and reused > len(rows) / 2
    held = list(CSVReader(p, _schema(), chunk_size=4096, workers=1))  # blocks kept: never shared
    assert not any(np.shares_memory(a.indices, b.indices) for a, b in zip(held, held[1:]))
    np.testing.assert_array_equal(np.vstack([b.to_csr(X.shape[1]).asscipy().toarray() for b in held]), _dense(X))


def test_a_streamed_batch_spanning_chunks_is_written_after_the_next_chunks_rows(tmp_path):
    """A CSV chunk's arrays are its own (``spare``, as a LibSVM chunk's): a batch that spans two chunks
    opens the piece of the chunk completing it, one piece a chunk, with the batches iteration gives."""
    from sparsetrain.io import LibSVMIter

    p = tmp_path / "a.csv"
    p.write_text("".join(f"{i % 2},{i},v{i % 7},{i % 3},w{i % 5},\n" for i in range(300)))
    make = lambda: LibSVMIter(p, (_schema().num_features,), batch_size=7, label_name="y",  # noqa: E731
                              reader=CSVReader(p, _schema(), chunk_size=1024, workers=1))
    it = make()
    chunks = sum(1 for _ in it._data_reader)
    it.reset()
    got = []
    for piece in it.epoch_pieces():
        x, y = piece.data[0][1].asnumpy(), piece.label[0][1].asnumpy()
        got += [(x[piece.order[a:b]], y[piece.order[a:b]]) for a, b in zip(piece.batch_ptr, piece.batch_ptr[1:])]
        chunks -= 1
    assert chunks == -1  # one piece a chunk, and the padded last batch's
    for (x, y), batch in zip(got, make(), strict=True):
        np.testing.assert_array_equal(x, batch.data[0].asnumpy())
        np.testing.assert_array_equal(y, batch.label[0].asnumpy())


@pytest.mark.parametrize("header", [True, False])
@pytest.mark.parametrize("opener", [open, gzip.open])
def test_a_byte_order_mark_is_no_part_of_the_first_line(tmp_path, header, opener):
    # open_data skips it for every reader: the kernels read a headerless file's first label as '\ufeff0' (init saw
    # three label values), only the header readers stripped it; init, the CSV and LibSVM readers now agree
    from sparsetrain.config.starter import sniff
    from sparsetrain.io import load_libsvm

    rows = "".join(f"{i % 2},{i}.5,c{i % 3}\n" for i in range(8)) + "1,x,c0\n"
    text = ("y,n,c\n" if header else "") + rows
    for name, data in (("plain.csv", text.encode()), ("bom.csv", b"\xef\xbb\xbf" + text.encode())):
        with opener(tmp_path / name, "wb") as f:
            f.write(data)
    schema = CSVSchema(columns=None if header else ["y", "n", "c"], header=header, label="y", numeric=["n"],
                       categorical=["c"], hash_bits=6)
    errors = []
    for name in ("plain.csv", "bom.csv"):
        with pytest.raises(DataFormatError) as e:
            load_csv(str(tmp_path / name), schema)
        errors.append(str(e.value).replace(name, "f"))
    assert errors[0] == errors[1] and f"f:{10 if header else 9}: column 'n'" in errors[0]
    (tmp_path / "plain.csv").write_text(text[:text.index("1,x")])
    with opener(tmp_path / "bom.csv", "wb") as f:
        f.write(b"\xef\xbb\xbf" + text[:text.index("1,x")].encode())
    plain, bom = load_csv(str(tmp_path / "plain.csv"), schema), load_csv(str(tmp_path / "bom.csv"), schema)
    np.testing.assert_array_equal(_dense(plain[0]), _dense(bom[0]))
    np.testing.assert_array_equal(plain[1], bom[1])
    summary = sniff(str(tmp_path / "bom.csv"))
    assert summary.distinct_labels == 2 and summary.csv.label == ("y" if header else summary.csv.columns[0])
    (tmp_path / "bom.libsvm").write_bytes(b"\xef\xbb\xbf1 1:0.5\n0 x:1\n")
    with pytest.raises(DataFormatError, match=r"bom\.libsvm:2: feature index 'x'"):
        load_libsvm(str(tmp_path / "bom.libsvm"))


def _read_stdin_pipe(data: bytes, schema):
    """The rows ``CSVReader('-', schema)`` reads from a pipe on fd 0 holding ``data``."""
    import os

    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    saved = os.dup(0)
    os.dup2(r, 0)
    os.close(r)
    try:
        return sum(b.num_rows for b in CSVReader("-", schema))
    finally:
        os.dup2(saved, 0)
        os.close(saved)


@pytest.mark.parametrize("compress, words", [
    (gzip.compress, "compressed data from a pipe is not supported; pipe it through zcat/bzcat or give the file"),
    (bz2.compress, "compressed data from a pipe is not supported; pipe it through zcat/bzcat or give the file"),
    (lambda b: __import__("lzma").compress(b), "xz data; sparsetrain reads UTF-8 text, .gz and .bz2: decompress it"),
], ids=["gz", "bz2", "xz"])
def test_a_compressed_pipe_with_a_header_is_named_as_the_other_readers_name_it(compress, words):
    # the header line was read from the pipe as names: "data.label: no column 'y' in the header of <stdin>
    # (columns: \x1f\x8b...)", where LibSVM and headerless CSV said what the bytes are
    text = b"y,n,c\n" + b"".join(b"%d,%d,c%d\n" % (i % 2, i, i % 3) for i in range(50))
    schema = CSVSchema(header=True, label="y", numeric=["n"], categorical=["c"], delimiter=",", hash_bits=6)
    assert _read_stdin_pipe(text, schema) == 50
    with pytest.raises(DataFormatError, match=f"^<stdin>: {words}"):
        _read_stdin_pipe(compress(text), schema)


@pytest.mark.parametrize("total_bytes", [None, 10, 400, 10**6])  # unknown, under, about right, far over
def test_blocks_stack_into_the_arrays_concatenation_gives(total_bytes):
    from sparsetrain.io.libsvm_parse import LibSVMBlock
    from sparsetrain.io.text_pipeline import concat_blocks

    rng = np.random.default_rng(5)
    blocks, offset = [], 0
    for k in range(7):
        lengths = rng.integers(0, 5, size=int(rng.integers(1, 9)))
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        nnz = int(indptr[-1])
        spare = int(rng.integers(0, 3))  # a pool's arrays are longer than the rows they hold
        weights = rng.uniform(0, 2, len(lengths) + spare) if k in (2, 5) else None
        blocks.append(LibSVMBlock(rng.normal(size=nnz + spare).astype(np.float32),
                                  rng.integers(0, 50, nnz + spare), indptr, rng.normal(size=(len(lengths), 1)),
                                  50, weights=weights, offset=offset, end=offset + 60))
        offset += 60
    data, indices, indptr, labels, weights = concat_blocks(iter(blocks), 50, np.dtype(np.float64),
                                                           np.dtype(np.float32), total_bytes)
    np.testing.assert_array_equal(data, np.concatenate([b.data[:b.nnz] for b in blocks]).astype(np.float64))
    np.testing.assert_array_equal(indices, np.concatenate([b.indices[:b.nnz] for b in blocks]))
    np.testing.assert_array_equal(np.diff(indptr), np.concatenate([np.diff(b.indptr) for b in blocks]))
    assert indptr[0] == 0 and labels.dtype == np.float32 and data.dtype == np.float64
    np.testing.assert_array_equal(labels, np.concatenate([b.labels[:, 0] for b in blocks]).astype(np.float32))
    np.testing.assert_array_equal(weights, np.concatenate([b.weights[:b.num_rows] if b.weights is not None
                                                           else np.ones(b.num_rows) for b in blocks]))
    assert concat_blocks(iter(blocks[:2]), 50)[4] is None  # no block with weights: none


def _guarded(nbytes: int):
    """``(mapping, array)``: ``nbytes`` of writable memory that end exactly where an inaccessible page
    starts (an anonymous mapping whose last page is ``mprotect``-ed to PROT_NONE): a read past the
    array's end is a segfault, not a read of whatever memory follows."""
    import ctypes
    import mmap

    page = mmap.PAGESIZE
    pages = -(-nbytes // page) + 1
    mm = mmap.mmap(-1, pages * page)
    whole = np.frombuffer(mm, np.uint8)
    libc = ctypes.CDLL(None, use_errno=True)
    guard = ctypes.c_void_p(whole.ctypes.data + (pages - 1) * page)
    assert libc.mprotect(guard, ctypes.c_size_t(page), 0) == 0, ctypes.get_errno()
    return mm, whole[(pages - 1) * page - nbytes: (pages - 1) * page]


@pytest.mark.skipif(not hasattr(__import__("mmap"), "PAGESIZE") or __import__("sys").platform != "linux",
                    reason="mprotect through ctypes: Linux")
def test_fields_at_the_very_end_of_a_buffer_read_nothing_past_it():
    """The field hash reads up to ``PAD`` bytes past a field (``_hash_kernels.mm_feed_padded`` and
    ``hash_lanes``); the kernel sends a buffer's last lines through its scratch (``len(buf) + PAD``) so
    that no read leaves the buffer: a buffer (and the scratch) ending at an inaccessible page, its last
    fields categorical and crossed, short, empty, missing, 8 bytes and longer, parse as the reference
    does (a read past the end would end this process with a segfault). The same texts followed by
    other bytes (a buffer that is a slice of a longer one, as a chunk of a mapped file) give the same
    ids: no byte past a field is hashed. In process: the kernel compiled once for the whole file."""
    from sparsetrain.io.csv_reader import _Plan

    columns = ["y", "n1", "c1", "n2", "c2"]  # the last field of a line is categorical
    schema = CSVSchema(columns=columns, label="y", numeric=["n1", "n2"], categorical=["c1", "c2"],
                       crosses=[["c1", "c2"], ["c2", "c1"]], hash_bits=20)
    plan = _Plan(schema, columns, ",")
    tails = ["", "a", "ab", "abc", "abcd", "abcdefg", "abcdefgh", "abcdefghi", "abcdefghijklmnopq"]
    texts = []
    for t in tails:
        for last in (f"1,2,x{t},3,{t}\n", f"0,2,{t}\n", f"1,,{t},,\n", f"1,5,{t}ij,0,{t}\n"):
            texts.append("0,1,u,2,vvvvvvvvvvv\n1,3,w,4," + t[::-1] + "\n" + last)
            texts.append(last)
    for text in texts:
        raw = text.encode()
        n = len(raw)
        labels_ref, rows_ref = CK.parse_reference(text, columns, "y", ["n1", "n2"], ["c1", "c2"],
                                                  schema.crosses, 20)
        _, buf = _guarded(n)  # (each mapping is unmapped when its arrays go)
        _, scratch = _guarded(n + CK.PAD)
        buf[:] = np.frombuffer(raw, np.uint8)
        longer = np.full(n + 4 * CK.PAD, 0x5A, np.uint8)  # the text, then other bytes
        longer[:n] = buf
        for b, s in ((buf, scratch), (longer[:n], np.zeros(n + CK.PAD, np.uint8))):
            rows = len(rows_ref)
            data, indices = np.empty(rows * plan.per_row), np.empty(rows * plan.per_row, np.int64)
            row_ends, labels = np.empty(rows, np.int64), np.empty(rows)
            info = CK.parse_csv_chunk(b, 44, 34, False, 1 << 20, 1e300, plan.roles, plan.label_col, plan.num_cols,
                                      plan.log1p, plan.cat_cols, plan.prefix_states, plan.cross_a, plan.cross_b,
                                      plan.cross_mid, plan.cross_mid_off, 20, s, data, indices, row_ends,
                                      labels, 0, np.empty((8, 4), np.int64), -1, np.empty(0))
            assert info[CK.I_ERR] == CK.OK and info[CK.I_ROWS] == rows, (text, info)
            starts = np.concatenate([[0], row_ends[:-1]])
            got = [dict(zip(indices[a:e].tolist(), data[a:e].tolist())) for a, e in zip(starts, row_ends)]
            assert got == rows_ref and labels.tolist() == labels_ref, text


_VECTOR_CHILD = """
import json, sys
import numpy as np
from numba import njit
from sparsetrain.io import _csv_kernels as CK, _hash_kernels as HK
from numba.core.registry import cpu_target

HK.GATHER = sys.argv[6] == "1"  # (read when the intrinsics below are compiled)
hash_lanes = njit(lambda *a: HK.hash_lanes(*a))
sort_ids = njit(lambda indices, data, a, n: CK.sort_ids(indices, data, a, n))
fields = [f.encode() for f in json.loads(sys.argv[1])]
prefixes = [np.frombuffer(p.encode(), np.uint8) for p in json.loads(sys.argv[2])]
buf = np.frombuffer(b"".join(fields) + bytes(HK.PAD), np.uint8)
fe = np.cumsum([len(f) for f in fields]).astype(np.int64)
fs = fe - [len(f) for f in fields]
states = np.array([HK.mm_feed(*HK.mm_start(int(sys.argv[3])), p, 0, len(p)) for p in prefixes], np.int64).T.copy()
cols = np.arange(len(fields), dtype=np.int64)
out, longs = [], []
for g in range(0, len(fields), HK.LANES):
    ids = np.full(HK.LANES + 1, -1, np.int64)
    got = hash_lanes(buf, fs, fe, cols, *states, g, min(HK.LANES, len(fields) - g), ids, 1, 2**31 - 1, 0)
    ids2 = np.full(HK.LANES + 1, -1, np.int64)  # the spans read as consecutive columns: the same
    assert hash_lanes(buf, fs, fe, cols, *states, g, min(HK.LANES, len(fields) - g), ids2, 1, 2**31 - 1, 1) == got
    assert (ids2 == ids).all()
    out.append(ids.tolist())
    longs.append(got)
sorted_, repeats = [], []
for ids in json.loads(sys.argv[4]):
    a = np.array([-7] + ids + [-9] * 40, np.int64)
    ones = np.zeros(len(a), np.float32)
    repeats.append(int(sort_ids(a, ones, 1, len(ids))))
    sorted_.append(a.tolist() + ones.tolist())
counts = [c.encode() for c in json.loads(sys.argv[5])]
text = np.frombuffer(b"".join(counts) + bytes(HK.PAD), np.uint8)
ce = np.cumsum([len(c) for c in counts]).astype(np.int64)
lanes = CK.lane_table(cols[:0], states.T, np.arange(len(counts), dtype=np.int64), np.arange(len(counts)) % 2 == 1)
count_lanes = njit(lambda *a: CK.count_lanes(*a))
entries = []
cs = np.concatenate([ce - [len(c) for c in counts], np.zeros(HK.LANES, np.int64)])  # (room for a group's load)
ce = np.concatenate([ce, np.zeros(HK.LANES, np.int64)])
for g in range(0, len(counts), HK.LANES):
    got = []
    for contiguous in (0, 1):  # the spans gathered by column, or read as consecutive columns: the same
        indices, data = np.full(HK.LANES, -1, np.int64), np.full(HK.LANES, -1.0, np.float32)
        got.append([count_lanes(text, cs, ce, lanes[5], lanes[6], g, min(HK.LANES, len(counts) - g), CK.LOG1P_INTS,
                                lanes[7], indices, data, 0, 100 + g, contiguous), indices.tolist(), data.tolist()])
    assert got[0] == got[1]
    entries.append(got[0])
print(json.dumps([cpu_target.target_context.codegen().magic_tuple()[1], CK.WIDE, HK.fast_gathers(), out,
                  longs, sorted_, repeats, entries]))
"""


@pytest.mark.parametrize("cpu, features, wide, gather", [("x86-64", "", False, False), ("haswell", "", True, False),
                                                          ("haswell", "", True, True)])
def test_the_vector_intrinsics_compile_and_agree_on_other_cpus(cpu, features, wide, gather):
    """``hash_lanes`` (``<16 x i32>``, stored compressed 8 lanes at a time), ``sort_ids`` (``<32 x i32>``, masked
    load and stores) and ``count_lanes`` (``<16 x i64>``, compressed likewise) are LLVM IR written for AVX-512
    registers, their lanes' loads gathers or a scalar load a lane (``_hash_kernels.GATHER``, by the CPU: neither
    CPU here has fast gathers, so the test sets it); LLVM must lower them for any CPU numba compiles for
    (NUMBA_CPU_NAME; a cache is never read across CPUs): compiled for generic x86-64 (SSE2) and for haswell
    (AVX2) in a fresh interpreter, the stored lanes the murmur hashes of their prefix and field (or flagged
    long), each row of ids sorted as numpy with its repeat flag and values 1, each count's entry as the kernel
    writes it, in lane order, nothing written past them. The
    kernel uses them (``WIDE``) only where the code numba compiles uses AVX2: haswell's name implies it
    (an empty NUMBA_CPU_FEATURES lists nothing), generic x86-64's does not."""
    import json
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(11)
    n = 2 * CK.LANES
    fields = ["".join(rng.choice(list("abcxyz019é"), int(rng.integers(0, 15)))) for _ in range(n)]
    prefixes = [f"c{i}" * int(rng.integers(1, 4)) + "=" for i in range(n)]
    rows = [rng.integers(0, 2**31, k).tolist() for k in (0, 1, 2, 5, 16, 17, 31, 32)]
    rows.append([5, 3, 5, 1] * 8)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_CPU_", "NUMBA_ENABLE_AVX"))}
    env.update(NUMBA_CPU_NAME=cpu, NUMBA_CPU_FEATURES=features)
    seed = HASH_SEED
    counts = ["", "0", "1", "42", "1023", "1024", "12345678", "99999999", "123456789", "-1", " 2", "1.5"]
    counts = [counts[i] for i in rng.integers(0, len(counts), 2 * CK.LANES + 3)]
    counts[:CK.LANES] = ["5", "5000", "", "77", "1", "0", "3", "99999999", "1023", "1024", "", "8", "0", "", "9", "12"]
    proc = subprocess.run([sys.executable, "-c", _VECTOR_CHILD, json.dumps(fields), json.dumps(prefixes), str(seed),
                           json.dumps(rows), json.dumps(counts), str(int(gather))], env=env, capture_output=True,
                          text=True,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(CK.__file__))))
    assert proc.returncode == 0, proc.stderr[-2000:]
    target, used, fast, out, longs, sorted_, repeats, entries = json.loads(proc.stdout)
    assert target == cpu and used == wide and not fast
    for g in range(0, n, CK.LANES):
        want, is_long = [], 0
        for i, (p, f) in enumerate(zip(prefixes[g:g + CK.LANES], fields[g:g + CK.LANES])):
            if (len(p.encode()) % 4 + len(f.encode())) // 4 > 2:
                is_long |= 1 << i
            elif f:
                want.append(sk_murmur((p + f).encode(), seed, positive=True) & (2**31 - 1))
        got = longs[g // CK.LANES]
        assert (got >> 32, got & 0xFFFFFFFF) == (is_long, len(want)), g
        assert out[g // CK.LANES] == [-1] + want + [-1] * (CK.LANES - len(want)), g
    for ids, got, rep in zip(rows, sorted_, repeats):
        n_ids = len(ids) + 41
        assert got[:n_ids] == [-7] + sorted(ids) + [-9] * 40 and rep == (len(set(ids)) < len(ids))
        assert got[n_ids:] == [0.0] + [1.0] * len(ids) + [0.0] * 40
    for g, (got, indices, data) in zip(range(0, len(counts), CK.LANES), entries):
        group = counts[g:g + CK.LANES]
        odd = sum(1 << k for k, c in enumerate(group) if not (c == "" or len(c) <= 8 and c.isdigit()))
        assert got >> 2 * CK.LANES == odd, g
        if odd:
            continue  # (the kernel writes such a group again, one field at a time)
        kept = [(k, int(c)) for k, c in enumerate(group) if c and int(c)]
        beyond = [k for k, v in kept if (g + k) % 2 and v >= len(CK.LOG1P_INTS)]  # (their log1p: the kernel's)
        assert (got >> CK.LANES) & (2**CK.LANES - 1) == sum(1 << k for k in beyond), g
        assert indices == [100 + g + k for k, _ in kept] + [-1] * (CK.LANES - len(kept)), g
        assert data[len(kept):] == [-1] * (CK.LANES - len(kept)), g
        for (k, v), d in zip(kept, data):
            assert k in beyond or d == np.float32(math.log1p(v) if (g + k) % 2 else v), (g, k)
