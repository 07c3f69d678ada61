"""Compiled kernel that parses CSV/TSV text into hashed CSR rows, and its pure-Python reference.

A line is split into fields as Python's ``csv`` module does with its defaults (``doublequote``,
no ``skipinitialspace``, ``strict=False``): a field that starts with the quote character runs to
the next lone quote (``""`` inside is one quote) and whatever follows it up to the delimiter is
appended; a quote elsewhere is an ordinary character. A line ends at ``\\n`` (a ``\\r`` before it
is dropped), so a quoted field cannot hold a newline (an unterminated quote is an error). Blank
lines are skipped. Each column has a role (``ROLE_*``):

- the label column: a decimal number (see ``_decimal_kernels``), required; a field that is not
  a number is a *text label*: the label is a NaN whose low 32 bits are ``murmurhash3_32`` of the
  (unquoted, stripped) text (``TEXT_LABEL``; a number label is never NaN), and the first row of
  each new text in the chunk (compared by its bytes: another text of the same hash is new) is
  listed as *slow* (``SLOW_LABEL_TEXT``) for the caller to name it; a file without the label
  column (``label_col`` -1: rows ``predict`` scores) has labels NaN;
- the weight column (optional): the row's importance weight, a decimal number >= 0; an empty
  field is weight 1 (as a Vowpal Wabbit line without one);
- a numeric column: a decimal number, feature id ``hash_size + k`` (``k``: its place in the list
  of numeric columns), ``log1p`` optionally applied (``sign(x) * log(1 + |x|)``); an empty field
  or a value 0 is no entry;
- a categorical column: a non-empty field ``v`` of column ``c`` is the feature
  ``murmurhash3_32("c=v") & (hash_size - 1)`` with value 1 (hashed from the bytes, see
  ``_hash_kernels``); an empty field is no entry;
- a cross of two categorical columns ``a``, ``b``: the feature ``"a=va^b=vb"`` hashed likewise,
  present when both fields are non-empty.

Missing trailing fields are empty; more fields than columns is an error. Within a row the ids
are sorted and colliding hashed features are summed (as scikit-learn's ``FeatureHasher``).

:func:`parse_csv_chunk` never raises: it stops at the first malformed line with an error code
and a byte span; the caller writes the message (file, line, column, value). Numbers with more
than 18 significant digits are listed as *slow* for the caller to convert with Python's float.
"""
from __future__ import annotations

import csv
import io
import math

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from ..kernels.numba_cache import drop_stale_callers
from ..labels import TEXT_LABEL  # (the bits of a text label: a label convention)
from ._csv_field_kernels import (LOG1P_INTS, count_lanes, count_value, int_feature, signed_log1p, split_line,
                                 split_quoted, strip)
from ._decimal_kernels import NONFINITE, NOT_A_NUMBER, SLOW, parse_float, plain_int
from ._hash_kernels import LANES, PAD, hash_lanes, mm_feed_padded, mm_finish, murmurhash3_32
from ._scan_kernels import (I_ERR, I_ERR_AUX, I_ERR_END, I_ERR_START, I_LINES, I_NNZ, I_NSLOW,  # noqa: F401
                            I_ROWS, N_COMMON, compiles_avx2, popcount, record_error)
from ._sort_kernels import SORT_LANES, sort_ids, sort_row

ROLE_SKIP = 0
ROLE_LABEL = 1
ROLE_NUMERIC = 2
ROLE_CATEGORICAL = 3
ROLE_WEIGHT = 4

OK = 0
E_QUOTE = 1  # unterminated quoted field (span: the field to the line's end)
E_FIELDS = 2  # more fields than columns (aux: the number of columns)
E_LABEL_MISSING = 3
E_LABEL = 4  # label is not a number (span: the raw field)
E_LABEL_NONFINITE = 5
E_VALUE = 6  # numeric field is not a number (aux: column)
E_VALUE_NONFINITE = 7
E_LINE_TOO_LONG = 8  # aux: max_line
E_LABEL_RANGE = 9
E_VALUE_RANGE = 10
E_NO_NEWLINE = 11
E_WEIGHT = 12  # the weight is not a number (aux: column)
E_WEIGHT_NEGATIVE = 13  # or not finite, or below 0

# info slots: the parsers' common ones (``_scan_kernels``)
N_INFO = N_COMMON

SLOW_LABEL = 0
SLOW_VALUE = 1
SLOW_WEIGHT = 2
SLOW_LABEL_TEXT = 3  # the first row of a text label in the chunk (the row's label: TEXT_LABEL | hash)

_TEXTS_TRACKED = 8  # distinct text labels a chunk lists once; further ones are listed at every row
_TEXT_BYTES = 64  # (as is a text label longer than this)


@njit(cache=True, nogil=True, inline="always")
def _hash_field(states, c, src, s, e):
    """The murmur state after column ``c``'s ``name=`` prefix and ``src[s:e]``, which has ``PAD``
    bytes after ``e`` (the line loop sees to it); for an empty field, a state of no meaning (its
    entry is not kept). This, the field split, the row sort and the row emitter are inlined into
    the kernel's loop: as calls (27 of this one a row, each passing its arrays) they cost the
    kernel ~17 % (A/B, same output)."""
    h, cr, nc, ln = mm_feed_padded(np.uint64(states[c, 0]), np.uint64(states[c, 1]), states[c, 2], states[c, 3],
                                   src, s, e)
    return h, cr, nc, ln


#: whether the code numba compiles uses AVX2 (``_scan_kernels.compiles_avx2``: LLVM asked, for numba's CPU
#: name and features, on which its cache is keyed): the row emitter hashes the categorical columns LANES at
#: a time (``hash_lanes``), reads the numeric ones LANES at a time (``count_lanes``) and sorts a row by the
#: network (``sort_ids``). Without AVX2 LLVM lowers ``sort_ids``' masked load and store and ``count_lanes``'
#: compress a lane at a time (SSE 4.2: a branch a lane) and SSE2 has no unsigned 32-bit min/max: compiled
#: for SSE2 the kernel took 44 % more CPU with them than with the scalar loops and ``sort_row`` (RESULTS.md,
#: session 35, portable2).
WIDE = compiles_avx2()


@njit(cache=True, nogil=True, inline="always")
def _field_number(src, s, e, value_limit, raw_s, raw_e, slow_kind, slow_pos, slow, nslow, e_bad, e_nonfinite,
                  e_range):
    """``(value, code, nslow)`` of the number ``src[s:e]``: code OK or ``e_bad``/``e_nonfinite``/
    ``e_range``; a number too long for the fast parser is listed in ``slow`` as ``(slow_kind,
    slow_pos, raw_s, raw_e)`` and its value is 1 (replaced by the caller, never dropped as a 0)."""
    v, r, st = parse_float(src, s, e)
    if st == NOT_A_NUMBER or r != e:
        return v, e_bad, nslow
    if st == NONFINITE:
        return v, e_nonfinite, nslow
    if abs(v) >= value_limit:
        return v, e_range, nslow
    if st == SLOW:
        if nslow < slow.shape[0]:
            slow[nslow, 0] = slow_kind
            slow[nslow, 1] = slow_pos
            slow[nslow, 2] = raw_s
            slow[nslow, 3] = raw_e
        return 1.0, OK, nslow + 1
    return v, OK, nslow


@njit(cache=True, nogil=True)
def _text_label(src, s, e, raw_s, raw_e, row, label_bits, texts, text_bytes, slow, nslow):
    """Write the text label ``src[s:e]`` of ``row`` (``TEXT_LABEL | hash``); list its raw span as slow
    unless the chunk has listed the same text (``texts``: the count, then (hash, length) per text
    seen, its bytes in ``text_bytes``): a new text, or another text of the same hash, is named by
    the caller. Returns nslow."""
    h = np.int64(murmurhash3_32(src, s, e, 0))
    label_bits[row] = TEXT_LABEL | np.uint64(h)
    n = texts[0]
    width = text_bytes.shape[1]
    for t in range(n):
        if texts[1 + 2 * t] == h and texts[2 + 2 * t] == e - s and e - s <= width:
            same = True
            for i in range(e - s):
                if text_bytes[t, i] != src[s + i]:
                    same = False
                    break
            if same:
                return nslow
    if n < text_bytes.shape[0] and e - s <= width:
        texts[1 + 2 * n] = h
        texts[2 + 2 * n] = e - s
        for i in range(e - s):
            text_bytes[n, i] = src[s + i]
        texts[0] = n + 1
    if nslow < slow.shape[0]:
        slow[nslow, 0] = SLOW_LABEL_TEXT
        slow[nslow, 1] = row
        slow[nslow, 2] = raw_s
        slow[nslow, 3] = raw_e
    return nslow + 1


@njit(cache=True, nogil=True, inline="always")
def _emit_row(src, fs, fe, rs, re_, line_start, le, value_limit, label_col, num_cols, log1p, cat_cols,
              prefix_states, cross_a, cross_b, cross_mid, cross_mid_off, lanes, data, indices, labels, rows,
              nnz, slow, nslow, keys, buckets, hash_bits, weight_col, weights):
    """The label and entries of one split row (fields ``src[fs[c]:fe[c]]``, raw spans ``rs``/``re_``
    in the chunk for messages and slow numbers): ``(code, err_start, err_end, aux, nnz, nslow)``.
    (30 arguments at most: CPython passes more as a tuple, which numba's inliner cannot take.)"""
    hash_size = np.int64(1) << hash_bits
    mask = hash_size - 1
    # ---- the label (label_col -1: the file has none, rows scored without labels: NaN)
    if label_col < 0:
        labels[rows] = np.nan
    else:
        ls, lend = strip(src, fs[label_col], fe[label_col])
        if ls == lend:
            return E_LABEL_MISSING, line_start, le, label_col, nnz, nslow
        iv, plain = plain_int(src, ls, lend)
        if plain:  # the common 0/1 label without the general number parser
            labels[rows] = iv
        else:
            v, code, nslow = _field_number(src, ls, lend, value_limit, rs[label_col], re_[label_col], SLOW_LABEL,
                                           rows, slow, nslow, E_LABEL, E_LABEL_NONFINITE, E_LABEL_RANGE)
            if code == E_LABEL:  # a text label: the caller writes it (``_text_label``)
                labels[rows] = np.nan
            elif code != OK:
                return code, rs[label_col], re_[label_col], label_col, nnz, nslow
            else:
                labels[rows] = v
    # ---- the importance weight
    if weight_col >= 0:
        ws, we = strip(src, fs[weight_col], fe[weight_col])
        if ws == we:
            weights[rows] = 1.0
        else:
            v, code, nslow = _field_number(src, ws, we, value_limit, rs[weight_col], re_[weight_col], SLOW_WEIGHT,
                                           rows, slow, nslow, E_WEIGHT, E_WEIGHT_NEGATIVE, E_WEIGHT_NEGATIVE)
            if code == OK and v < 0.0:
                code = E_WEIGHT_NEGATIVE
            if code != OK:
                return code, rs[weight_col], re_[weight_col], weight_col, nnz, nslow
            weights[rows] = v
    # ---- hashed features (value 1): categorical columns and crosses, then sorted and counted
    row_start = nnz
    # (an empty field is hashed too and its entry not kept: no branch per field, whose outcome
    # varies from row to row, i.e. mispredicts)
    # (the row's ids are sorted below: stored in any order)
    ncat = len(cat_cols)
    for g in range(0, ncat, LANES):  # LANES fields at once (WIDE); a field too long for that, one at a time
        active = min(LANES, ncat - g)
        if WIDE:
            got = hash_lanes(src, fs, fe, lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], g, active, indices, nnz,
                             mask, lanes[8, np.uint64(g)])
            nnz += got & 0xFFFFFFFF
            long_ = got >> 32
        else:
            long_ = (np.int64(1) << active) - 1
        while long_ != 0:
            c = np.uint64(cat_cols[np.uint64(g + trailing_zeros(long_))])
            h, cr, nc, ln = _hash_field(prefix_states, c, src, fs[c], fe[c])
            indices[np.uint64(nnz)] = mm_finish(h, cr, nc, ln) & mask
            nnz += fe[c] > fs[c]
            long_ &= long_ - 1
    for i in range(len(cross_a)):
        a = np.uint64(cross_a[i])
        b = np.uint64(cross_b[i])
        h, cr, nc, ln = _hash_field(prefix_states, a, src, fs[a], fe[a])
        h, cr, nc, ln = mm_feed_padded(h, cr, nc, ln, cross_mid, cross_mid_off[i], cross_mid_off[i + 1])
        h, cr, nc, ln = mm_feed_padded(h, cr, nc, ln, src, fs[b], fe[b])
        indices[np.uint64(nnz)] = mm_finish(h, cr, nc, ln) & mask
        nnz += (fe[a] > fs[a]) & (fe[b] > fs[b])
    repeats = True
    if WIDE and nnz - row_start <= SORT_LANES:
        repeats = sort_ids(indices, data, row_start, nnz - row_start) != 0
    if repeats:  # (rare: ~3e-4 of the benchmark's rows) or a row of more than SORT_LANES ids
        nnz = sort_row(indices, data, row_start, nnz, keys, data, buckets, hash_bits, True)
    # ---- numeric columns, after every hashed id: LANES fields at once (WIDE); a group with a field that is not
    # a count of at most 8 digits again one field at a time (a value 0 is written and not kept, as above)
    nnum = len(num_cols)
    every = (np.int64(1) << LANES) - 1
    for g in range(0, nnum, LANES):
        end = min(g + LANES, nnum)
        odd = every
        if WIDE:
            got = count_lanes(src, fs, fe, lanes[5], lanes[6], g, end - g, LOG1P_INTS, lanes[7], indices, data, nnz,
                              hash_size + g, lanes[9, np.uint64(g)])
            odd = got >> (2 * LANES)
            if odd == 0:
                kept = np.uint64(got & every)
                fix = (got >> LANES) & every
                while fix != 0:  # a log1p beyond the table's counts
                    i = np.uint64(trailing_zeros(fix))
                    at = nnz + popcount(kept & ((np.uint64(1) << i) - np.uint64(1)))
                    data[np.uint64(at)] = signed_log1p(float(lanes[7, np.uint64(g) + i]))
                    fix &= fix - 1
                nnz += popcount(kept)
        if odd != 0:
            for k in range(g, end):
                c = np.uint64(num_cols[k])
                iv, plain = count_value(src, fs[c], fe[c])
                if plain:
                    v = int_feature(iv, log1p[k])
                else:
                    vs, ve = strip(src, fs[c], fe[c])
                    iv, plain = plain_int(src, vs, ve)
                    if vs == ve:
                        v = 0.0
                    elif plain:
                        v = int_feature(iv, log1p[k])
                    else:
                        v, code, nslow = _field_number(src, vs, ve, value_limit, rs[c], re_[c], SLOW_VALUE, nnz,
                                                       slow, nslow, E_VALUE, E_VALUE_NONFINITE, E_VALUE_RANGE)
                        if code != OK:
                            return code, rs[c], re_[c], c, nnz, nslow
                        if log1p[k]:
                            v = signed_log1p(v)
                indices[np.uint64(nnz)] = hash_size + k
                data[np.uint64(nnz)] = v
                nnz += v != 0.0
    return OK, 0, 0, 0, nnz, nslow


@njit(cache=True, nogil=True)
def lane_table(cat_cols, prefix_states, num_cols, log1p):
    """The columns as lanes of :func:`hash_lanes` and :func:`count_lanes`, a multiple of ``LANES`` (a last
    group's spare lanes repeat the first column): rows 0-4 the categorical columns and their prefix states'
    h, carry, ncarry, length; rows 5-7 the numeric columns, their log1p flags and a row for their integers;
    rows 8 and 9 at each group's first lane: 1 where the group's categorical (8) or numeric (9) columns are
    consecutive (the field spans read by one vector load each, not gathered)."""
    ncat, nnum = len(cat_cols), len(num_cols)
    nl = (max(ncat, nnum) + LANES - 1) // LANES * LANES
    lanes = np.zeros((10, nl), np.int64)
    for g in range(0, nl, LANES):
        for row, cols in ((8, cat_cols), (9, num_cols)):
            end = min(g + LANES, len(cols))
            lanes[row, g] = end > g
            for i in range(g + 1, end):
                if cols[i] != cols[g] + (i - g):
                    lanes[row, g] = 0
    for i in range(nl):
        if ncat > 0:
            c = cat_cols[i if i < ncat else 0]
            lanes[0, i] = c
            for k in range(4):
                lanes[1 + k, i] = prefix_states[c, k]
        if nnum > 0:
            lanes[5, i] = num_cols[i if i < nnum else 0]
            lanes[6, i] = log1p[i] if i < nnum else False
    return lanes


@njit(cache=True, nogil=True)
def parse_csv_chunk(buf, delim, quote, skip_first, max_line, value_limit, roles, label_col, num_cols, log1p,
                    cat_cols, prefix_states, cross_a, cross_b, cross_mid, cross_mid_off, hash_bits,
                    scratch, data, indices, row_ends, labels, nnz_base, slow, weight_col, weights):
    """Parse the lines of ``buf`` (np.uint8 ending with a newline) into caller-allocated arrays.

    roles: ROLE_* per column; label_col: the label's column (-1: none, labels NaN); num_cols: the numeric columns in
    feature order (with ``log1p`` flags); cat_cols: the categorical columns; prefix_states:
    (columns, 4) murmur states after ``name=`` (``_hash_kernels``); crosses: column pairs
    ``cross_a[i]``, ``cross_b[i]`` and the bytes ``^b=`` between the two values in
    ``cross_mid[cross_mid_off[i]:cross_mid_off[i + 1]]``. scratch: room for ``len(buf) + PAD`` bytes
    (a smaller one is replaced by a fresh array).
    data/indices: room for rows * (numeric + categorical + crosses) entries; row_ends: room for
    the rows (``indptr[1:]``, offset by ``nnz_base``); labels: room for the rows; weight_col: the
    weight column (-1: none) and ``weights`` room for the rows (or empty). slow:
    (k, 4) table of (kind, position, raw field start, end) numbers for the caller to convert.
    skip_first: the first line is a header. Returns ``info`` (I_* slots).

    A line in which no field starts with a quote is split in place (its fields are spans of
    ``buf``); one with a quoted field, or one that ends less than ``PAD`` bytes before the buffer's
    end (the field hash reads up to ``PAD`` bytes past a field), is unquoted into ``scratch`` first.
    """
    n = len(buf)
    info = np.zeros(N_INFO, np.int64)
    if n == 0:
        return info
    if buf[n - 1] != 10:
        info[I_ERR] = E_NO_NEWLINE
        return info
    ncols = len(roles)
    fs = np.zeros(ncols + LANES, np.int64)  # field spans (in buf, or in scratch for a quoted line; LANES spare:
    fe = np.zeros(ncols + LANES, np.int64)  # ``hash_lanes``, ``count_lanes`` load a group of columns at once)
    rs = np.empty(ncols, np.int64)  # raw spans in buf (for messages)
    re_ = np.empty(ncols, np.int64)
    keys = np.empty(len(cat_cols) + len(cross_a) + 1, np.int64)  # a row's hashed entries, to sort
    buckets = np.empty(64, np.int64)
    pos = np.empty(ncols + 80, np.int64)  # a line's separator positions (split_line)
    if len(scratch) < n + PAD:
        scratch = np.empty(n + PAD, np.uint8)
    mid = np.zeros(len(cross_mid) + PAD, np.uint8)  # the crosses' middle bytes, padded for the field hash
    mid[:len(cross_mid)] = cross_mid
    lanes = lane_table(cat_cols, prefix_states, num_cols, log1p)
    texts = np.zeros(1 + 2 * _TEXTS_TRACKED, np.int64)
    text_bytes = np.empty((_TEXTS_TRACKED, _TEXT_BYTES), np.uint8)
    _parse_lines(buf, delim, quote, skip_first, max_line, value_limit, label_col, num_cols, log1p, cat_cols,
                 prefix_states, cross_a, cross_b, mid, cross_mid_off, hash_bits, scratch, data, indices,
                 row_ends, labels, labels.view(np.uint64), nnz_base, slow, weight_col, weights, info, fs, fe, rs, re_,
                 keys, buckets, texts, text_bytes, pos, lanes)
    return info


@njit(cache=True, nogil=True, _nrt=False)
def _parse_lines(buf, delim, quote, skip_first, max_line, value_limit, label_col, num_cols, log1p, cat_cols,
                 prefix_states, cross_a, cross_b, cross_mid, cross_mid_off, hash_bits, scratch, data, indices,
                 row_ends, labels, label_bits, nnz_base, slow, weight_col, weights, info, fs, fe, rs, re_, keys,
                 buckets, texts, text_bytes, pos, lanes):
    """:func:`parse_csv_chunk`'s loop over the lines, given its scratch arrays (``fs`` ... ``text_bytes``).
    Compiled without numba's reference counts (``_nrt=False``: it allocates nothing). With them, the
    inlined helpers' array arguments (the row emitter's 20, the split's 3) cost an atomic add and
    subtract each per row, which numba's pruning of reference counts leaves in this loop's branches:
    ~60 a row, ~30 % of the kernel's CPU (A/B, same output)."""
    n = len(buf)
    ncols = len(rs)
    nslow = 0
    rows = 0
    nnz = 0
    lines = 0
    p = 0
    if skip_first:
        while buf[p] != 10:
            p += 1
        p += 1
        lines = 1
    while p < n:
        line_start = p
        e, status = split_line(buf, p, delim, quote, fs, fe, ncols, pos)
        if e - line_start > max_line:
            record_error(info, E_LINE_TOO_LONG, line_start, e, max_line, rows, nslow)
            return
        le = e
        if le > p and buf[le - 1] == 13:
            le -= 1
        if le == p:  # blank line
            p = e + 1
            lines += 1
            continue
        if status == 2:
            record_error(info, E_FIELDS, line_start, le, ncols, rows, nslow)
            return
        if e + PAD > n:  # the buffer's last line(s): split (copied) into scratch, which has PAD to spare
            status = 1
        # one call of the (inlined) row emitter for both kinds of line: its fields are spans of
        # ``buf``, or of ``scratch`` once unquoted (two inlined copies doubled the compile time)
        src, raw_s, raw_e = buf, fs, fe
        code, es, ee, aux = OK, 0, 0, 0
        if status != 0:
            status, es, aux = split_quoted(buf, p, le, delim, quote, scratch, fs, fe, rs, re_, ncols)
            code = OK if status == 0 else (E_QUOTE if status == 1 else E_FIELDS)
            ee = le
            src, raw_s, raw_e = scratch, rs, re_
        if code == OK:
            code, es, ee, aux, nnz, nslow = _emit_row(
                src, fs, fe, raw_s, raw_e, line_start, le, value_limit, label_col, num_cols, log1p, cat_cols,
                prefix_states, cross_a, cross_b, cross_mid, cross_mid_off, lanes, data, indices, labels, rows,
                nnz, slow, nslow, keys, buckets, hash_bits, weight_col, weights)
        if code != OK:
            record_error(info, code, es, ee, aux, rows, nslow)
            return
        if labels[rows] != labels[rows] and label_col >= 0:  # NaN: a text label (a number label is never NaN)
            ls, lend = strip(src, fs[label_col], fe[label_col])
            nslow = _text_label(src, ls, lend, raw_s[label_col], raw_e[label_col], rows, label_bits, texts, text_bytes,
                                slow, nslow)
        row_ends[rows] = nnz_base + nnz
        rows += 1
        lines += 1
        p = e + 1
    info[I_ROWS] = rows
    info[I_NNZ] = nnz
    info[I_LINES] = lines
    info[I_NSLOW] = nslow


# ---------------------------------------------------------------------------------------
# Pure-Python reference: Python's csv module, hashlib-free hashing via hashing.murmurhash3_32


def parse_reference(text: str, columns, label, numeric, categorical, crosses, hash_bits, log1p=(),
                    delimiter=",", header=False, weight_column=None):
    """Rows of ``text`` as ``(labels, rows)``, each row a dict id -> value (a dict, no order),
    using ``csv.reader`` for the fields and :func:`hashing.murmurhash3_32` for the ids; with a
    ``weight_column``, ``(labels, rows, weights)``."""
    from .hashing import murmurhash3_32

    size = 1 << hash_bits
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    labels, rows, weights = [], [], []
    for i, fields in enumerate(reader):
        if header and i == 0:
            continue
        if not fields:
            continue
        vals = dict(zip(columns, fields))
        labels.append(float(vals[label]))
        if weight_column is not None:
            w = vals.get(weight_column, "").strip(" \t")
            weights.append(float(w) if w else 1.0)
            if not weights[-1] >= 0 or weights[-1] == math.inf:
                raise ValueError(f"weight {w!r}")
        row: dict[int, float] = {}
        for c in categorical:
            if vals.get(c, ""):
                j = murmurhash3_32(f"{c}={vals[c]}") % size
                row[j] = row.get(j, 0.0) + 1.0
        for a, b in crosses:
            if vals.get(a, "") and vals.get(b, ""):
                j = murmurhash3_32(f"{a}={vals[a]}^{b}={vals[b]}") % size
                row[j] = row.get(j, 0.0) + 1.0
        for k, c in enumerate(numeric):
            t = vals.get(c, "").strip(" \t")
            if t and float(t) != 0:
                x = float(t)
                row[size + k] = math.copysign(math.log1p(abs(x)), x) if c in log1p else x
        rows.append(row)
    return (labels, rows) if weight_column is None else (labels, rows, weights)


# numba keys a cached kernel on its own file: drop this module's when a kernel it calls from another file is newer
drop_stale_callers(__name__)
