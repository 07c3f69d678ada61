"""Compiled kernel that parses Vowpal Wabbit text lines into hashed CSR rows, and its
pure-Python reference.

Grammar (one line; blank lines are skipped)::

    [label [importance]] [tag]|namespace[:scale] feature[:value] ... |namespace2 ...

- before the first ``|``, split at whitespace as Vowpal Wabbit splits it: the last token is the
  tag (ignored) when it starts with ``'`` or touches the ``|`` (``1 2 'x|a``, ``1 x|a``,
  ``1 2 x|a``; ``1|a`` is a tag ``1`` and no label, ``1 2|a`` a tag ``2``); the tokens before it
  are the label (a number), an optional importance weight (a number >= 0, default 1) and VW's
  base (an initial prediction: not supported, an error, as is a fourth token). A line with no
  label (``|a x``, ``'row17|a x``) is an error, or a row labelled NaN when asked (``unlabeled``:
  rows ``predict`` scores);
- ``|`` directly followed by a name starts that namespace (``|user``); a ``|`` followed by
  whitespace starts the default namespace (no name); ``:scale`` multiplies its values;
- a feature is ``name`` (value 1) or ``name:value``; a value 0 is no entry;
- the feature ``f`` in namespace ``ns`` is hashed as ``ns^f`` (``f`` alone in the default
  namespace): ``murmurhash3_32(key) & (2**hash_bits - 1)``, value ``value * scale``;
- crosses (``vw -q``): for each pair of namespaces ``(a, b)``, every feature of ``a`` times
  every feature of ``b`` (distinct pairs only when ``a == b``), key ``a^fa^b^fb``, value the
  product.

Within a row ids are sorted and collisions summed. :func:`parse_vw_chunk` never raises; it
stops at the first malformed line with an error code and a byte span. Numbers with more than
18 significant digits make it report ``I_SLOW``: the caller then parses that chunk with
:func:`parse_reference` (Python's float), which gives exactly the same rows otherwise.
"""
from __future__ import annotations

import math
import re

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

from ..kernels.numba_cache import drop_stale_callers
from ._decimal_kernels import NONFINITE, NOT_A_NUMBER, POW10, SLOW, parse_float
from ._hash_kernels import mm_feed, mm_feed_words, mm_finish, mm_start
from ._scan_kernels import (I_ERR, I_ERR_AUX, I_ERR_END, I_ERR_START, I_LINES, I_NNZ, I_NSLOW,  # noqa: F401
                            I_ROWS, N_COMMON, is_space, next_sep, record_error, seps_from)
from ._sort_kernels import sort_row

OK = 0
E_NO_BAR = 1  # a line without '|'
E_LABEL = 2  # label not a number (span: the token)
E_IMPORTANCE = 3  # importance not a number >= 0
E_HEADER = 4  # more than label, importance, base, tag before the first '|' (or a base not a number)
E_VALUE = 5  # feature value not a number (span: the token)
E_SCALE = 6  # namespace scale not a number
E_NONFINITE = 7  # a nan/inf or out-of-range number (span: the token)
E_LINE_TOO_LONG = 8
E_ROOM = 9  # the output arrays are full: parse again with more room (I_ROOM says how much)
E_NO_NEWLINE = 10
E_NO_LABEL = 11  # no label: the header is empty or only a tag (span: the header; ``unlabeled`` reads NaN)
E_BASE = 12  # a third number before the tag: VW's base (initial prediction), not supported (span: the token)
E_LABEL_IS_TAG = 13  # E_NO_LABEL where the only token is a number touching the '|' (``1|a``: VW's tag; span: it)

# info slots: the parsers' common ones (``_scan_kernels``), plus the room needed after E_ROOM
I_SLOW = I_NSLOW  # numbers of more than 18 digits seen
I_ROOM = N_COMMON
N_INFO = N_COMMON + 1

_SEED = 0
_CARET = np.frombuffer(b"^", np.uint8).copy()
# a byte's class in a feature token (one table load per byte instead of six compares)
_ENDS, _COLON = 1, 2
_CLASS = np.zeros(256, np.uint8)
_CLASS[[32, 9, 13, 11, 12, 124]] = _ENDS  # is_space, or '|'
_CLASS[58] = _COLON


@njit(cache=True, nogil=True)
def _token_bits_tail(buf, b):
    """:func:`_token_bits` of a block that runs past the buffer's end (its bytes there count as none)."""
    ends = np.uint64(0)
    colons = np.uint64(0)
    for k in range(len(buf) - b):
        c = buf[np.uint64(b + k)]
        end = (c == 32) | (c == 9) | (c == 13) | (c == 11) | (c == 12) | (c == 124) | (c == 10)
        ends |= np.uint64(end) << np.uint64(k)
        colons |= np.uint64(c == 58) << np.uint64(k)
    return ends, colons


@njit(cache=True, nogil=True, inline="always")
def _token_bits(buf, b):
    """Bit masks of the 64 bytes from ``b``: where a feature token ends (whitespace, ``|``, a newline)
    and where a ``:`` is; a loop of constant length that LLVM vectorizes (the last, partial block is a
    call: a loop of variable length inlined here keeps LLVM from vectorizing the scan)."""
    if b + 64 > len(buf):
        return _token_bits_tail(buf, b)
    ends = np.uint64(0)
    colons = np.uint64(0)
    for k in range(64):
        c = buf[np.uint64(b + k)]
        end = (c == 32) | (c == 9) | (c == 13) | (c == 11) | (c == 12) | (c == 124) | (c == 10)
        ends |= np.uint64(end) << np.uint64(k)
        colons |= np.uint64(c == 58) << np.uint64(k)
    return ends, colons


@njit(cache=True, nogil=True, inline="always")
def _digits(buf, r, e, mant):
    """``(r, mant)`` after the run of decimal digits from ``buf[r]`` (before ``e``), each appended to ``mant``."""
    u = np.uint64
    while r < e:
        d = u(buf[u(r)]) - u(48)
        if d > u(9):
            break
        mant = mant * 10 + np.int64(d)
        r += 1
    return r, mant


@njit(cache=True, nogil=True, inline="always")
def _plain_decimal(buf, s, e):
    """``(value, True)`` when ``buf[s:e]`` is ``[-]digits[.digits]`` of 1 to 15 digits, else ``(0.0,
    False)``: the usual value of a VW line (``1``, ``-1``, ``0.693147``), read inline as
    ``mant / POW10[nfrac]`` (Clinger's fast path: exact, the value :func:`parse_float` gives)."""
    u = np.uint64
    neg = s < e and buf[u(s)] == 45
    p = s + 1 if neg else s
    r, mant = _digits(buf, p, e, 0)
    ndig = r - p
    nfrac = 0
    if r < e and buf[u(r)] == 46:
        fs = r + 1
        r, mant = _digits(buf, fs, e, mant)
        nfrac = r - fs
        ndig += nfrac
    if r != e or ndig == 0 or ndig > 15:
        return 0.0, False
    v = float(mant) / POW10[u(nfrac)]
    return (-v if neg else v), True


@njit(cache=True, nogil=True, inline="always")
def _number(buf, s, e, limit):
    """(value, status): status 0 ok, 1 slow, 2 not a number, 3 not finite / out of range."""
    if s == e:
        return 0.0, 2
    v, plain = _plain_decimal(buf, s, e)
    if plain and abs(v) < limit:
        return v, 0
    v, r, st = parse_float(buf, s, e)
    if st == NOT_A_NUMBER or r != e:
        return 0.0, 2
    if st == NONFINITE or abs(v) >= limit:
        return 0.0, 3
    if st == SLOW:
        return 0.0, 1
    return v, 0


@njit(cache=True, nogil=True, inline="always")
def _field_number(buf, s, e, limit, bad, bs, info, rows, slow):
    """The number at ``buf[s:e]`` as (value, status) — status 0 ok, 1 slow — or, where it is not a number
    (error ``bad``) or not finite (``E_NONFINITE``), the error recorded at ``buf[bs:e]`` and status -1."""
    v, st = _number(buf, s, e, limit)
    if st == 2:
        record_error(info, bad, bs, e, 0, rows, slow)
        return v, -1
    if st == 3:
        record_error(info, E_NONFINITE, bs, e, 0, rows, slow)
        return v, -1
    return v, st


@njit(cache=True, nogil=True)
def _ns_id(buf, s, e, names, offs):
    """The index of namespace ``buf[s:e]`` in the cross namespace list, or -1."""
    for i in range(len(offs) - 1):
        a, b = offs[i], offs[i + 1]
        if b - a == e - s:
            same = True
            for j in range(b - a):
                if names[a + j] != buf[s + j]:
                    same = False
                    break
            if same:
                return i
    return -1


@njit(cache=True, nogil=True, inline="always")
def _ns_state(buf, ns_s, ns_e):
    """The hash state after a feature's namespace prefix ``ns^`` (nothing for the default namespace)."""
    h, c, n, ln = mm_start(_SEED)
    if ns_e > ns_s:
        h, c, n, ln = mm_feed(h, c, n, ln, buf, ns_s, ns_e)
        h, c, n, ln = mm_feed(h, c, n, ln, _CARET, 0, 1)
    return h, c, n, ln


@njit(cache=True, nogil=True)
def parse_vw_chunk(buf, hash_bits, max_line, value_limit, cross_names, cross_offs, cross_a, cross_b,
                   data, indices, row_ends, labels, weights, unlabeled=False):
    """Parse the lines of ``buf`` (np.uint8 ending with a newline). cross_names/cross_offs: the
    crossed namespaces' names (bytes, offsets); cross_a/cross_b: pairs of their indices.
    data/indices: room for entries (E_ROOM when they do not suffice: ``info[I_ROOM]`` is the
    room needed so far); row_ends (``indptr[1:]``), labels, weights: room for the rows.
    unlabeled: a line with no label (``|a x``, ``'tag|a x``) is a row with label NaN (rows
    scored, as ``vw -t`` does), not an error.

    Arrays are indexed by unsigned ints (``u(i)``), as in the CSV kernel: numba adds a wrap-around
    check to every index of a signed int; every index here is >= 0."""
    u = np.uint64
    n = len(buf)
    info = np.zeros(N_INFO, np.int64)
    if n == 0:
        return info
    if buf[u(n - 1)] != 10:
        info[I_ERR] = E_NO_NEWLINE
        return info
    room = max(16, n // 2 + 2)
    f_ns_s = np.empty(room, np.int64)
    f_ns_e = np.empty(room, np.int64)
    f_nm_s = np.empty(room, np.int64)
    f_nm_e = np.empty(room, np.int64)
    f_val = np.empty(room, np.float64)
    f_nsid = np.empty(room, np.int64)
    f_id = np.empty(room, np.int64)  # the feature's hashed id
    f_st = np.empty((room, 4), np.uint64)  # the murmur state after its key ``ns^name`` (a cross goes on from it)
    keys = np.empty(len(indices), np.int64)  # a row's entries, to sort
    vals = np.empty(len(indices), np.float64)
    buckets = np.empty(64, np.int64)
    _parse_lines(buf, hash_bits, max_line, value_limit, cross_names, cross_offs, cross_a, cross_b, data, indices,
                 row_ends, labels, weights, unlabeled, info, f_ns_s, f_ns_e, f_nm_s, f_nm_e, f_val, f_nsid, f_id, f_st,
                 keys, vals, buckets)
    return info


@njit(cache=True, nogil=True, _nrt=False)
def _parse_lines(buf, hash_bits, max_line, value_limit, cross_names, cross_offs, cross_a, cross_b, data, indices,
                 row_ends, labels, weights, unlabeled, info, f_ns_s, f_ns_e, f_nm_s, f_nm_e, f_val, f_nsid, f_id, f_st,
                 keys, vals, buckets):
    """:func:`parse_vw_chunk`'s loop over the lines, given its scratch arrays (a row's features
    ``f_*``, the row sort's ``keys``/``vals``/``buckets``). Compiled without numba's reference counts
    (``_nrt=False``: it allocates nothing), as the CSV kernel's loop: with them, inlined helpers' array
    arguments cost an atomic add and subtract each per call, left in the loop's branches."""
    u = np.uint64
    n = len(buf)
    mask = (np.int64(1) << hash_bits) - 1
    cap = len(indices)
    rows = 0
    nnz = 0
    lines = 0
    need = 0
    slow = 0
    p = 0
    nl_b, nl_m = seps_from(buf, 0, 10)  # the newline cursor (64-byte blocks' newline bits)
    tb = -64  # the block of the token masks
    t_ends = np.uint64(0)
    t_colons = np.uint64(0)
    while p < n:
        line_start = p
        e, nl_b, nl_m = next_sep(buf, nl_b, nl_m, 10)
        if e - line_start > max_line:
            record_error(info, E_LINE_TOO_LONG, line_start, e, max_line, rows, slow)
            return
        q = p
        while q < e and is_space(buf[u(q)]):
            q += 1
        if q == e:
            lines += 1
            p = e + 1
            continue
        bar = q
        while bar < e and buf[u(bar)] != 124:
            bar += 1
        if bar == e:
            record_error(info, E_NO_BAR, line_start, e, 0, rows, slow)
            return
        # ---- header: [label [importance [base]]] [tag], as VW splits it: the last token is the tag
        # when it starts with ``'`` or touches the ``|``; the rest are the simple label's numbers
        ntok = 0
        s0 = e0 = s1 = e1 = s2 = e2 = 0
        ls = le = 0
        t = q
        while t < bar:
            while t < bar and is_space(buf[u(t)]):
                t += 1
            if t >= bar:
                break
            ts = t
            while t < bar and not is_space(buf[u(t)]):
                t += 1
            if ntok == 0:
                s0, e0 = ts, t
            elif ntok == 1:
                s1, e1 = ts, t
            elif ntok == 2:
                s2, e2 = ts, t
            ls, le = ts, t
            ntok += 1
        tagged = ntok > 0 and (le == bar or buf[u(ls)] == 39)
        nw = ntok - 1 if tagged else ntok
        label = np.nan
        weight = 1.0
        if nw == 0 and not unlabeled:
            v, st = _number(buf, ls, le, value_limit)
            if tagged and le == bar and st != 2:  # ``1|a x``: VW reads the ``1`` as the tag
                record_error(info, E_LABEL_IS_TAG, ls, le, 0, rows, slow)
            else:
                record_error(info, E_NO_LABEL, q, bar, 0, rows, slow)
            return
        if nw > 3:
            record_error(info, E_HEADER, q, bar, 0, rows, slow)
            return
        if nw >= 1:
            v, st = _field_number(buf, s0, e0, value_limit, E_LABEL, s0, info, rows, slow)
            if st < 0:
                return
            slow += st == 1
            label = v
        if nw >= 2:
            v, st = _field_number(buf, s1, e1, value_limit, E_IMPORTANCE, s1, info, rows, slow)
            if st < 0:
                return
            if v < 0:
                record_error(info, E_IMPORTANCE, s1, e1, 0, rows, slow)
                return
            slow += st == 1
            weight = v
        if nw == 3:
            v, st = _number(buf, s2, e2, value_limit)
            if st == 2:
                record_error(info, E_HEADER, q, bar, 0, rows, slow)
            else:
                record_error(info, E_BASE, s2, e2, 0, rows, slow)
            return
        # ---- namespaces and features
        nf = 0
        t = bar
        ns_s = 0
        ns_e = 0
        scale = 1.0
        nsid = -1
        nh, nc0, nn, nl = mm_start(_SEED)  # the hash state after the namespace's ``ns^``
        while t < e:
            c = buf[u(t)]
            if c == 124:  # a namespace
                t += 1
                ns_s = t
                while t < e and not is_space(buf[u(t)]) and buf[u(t)] != 58 and buf[u(t)] != 124:
                    t += 1
                ns_e = t
                scale = 1.0
                if t < e and buf[u(t)] == 58:
                    t += 1
                    ss = t
                    while t < e and not is_space(buf[u(t)]) and buf[u(t)] != 124:
                        t += 1
                    v, st = _field_number(buf, ss, t, value_limit, E_SCALE, ss, info, rows, slow)
                    if st < 0:
                        return
                    slow += st == 1
                    scale = v
                nsid = _ns_id(buf, ns_s, ns_e, cross_names, cross_offs)
                nh, nc0, nn, nl = _ns_state(buf, ns_s, ns_e)
                continue
            if is_space(c):
                t += 1
                continue
            fs = t
            colon = -1
            if t - tb >= 64:
                tb = t - (t & 63)
                t_ends, t_colons = _token_bits(buf, tb)
            sh = np.uint64(t - tb)
            ends = t_ends >> sh
            if ends != 0:  # the token ends in this block: its end and first ':' from the masks
                t += np.int64(trailing_zeros(ends))
                colons = (t_colons >> sh) & ((np.uint64(1) << np.uint64(t - fs)) - np.uint64(1))
                if colons != 0:
                    colon = fs + np.int64(trailing_zeros(colons))
            else:  # it runs into the next block: byte by byte
                while t < e:
                    k = _CLASS[buf[u(t)]]
                    if k == _ENDS:  # whitespace or '|'
                        break
                    if k == _COLON and colon < 0:
                        colon = t
                    t += 1
            v = 1.0
            nm_e = t
            if colon >= 0:
                nm_e = colon
                v, st = _field_number(buf, colon + 1, t, value_limit, E_VALUE, fs, info, rows, slow)
                if st < 0:
                    return
                slow += st == 1
            v *= scale
            if v == 0.0 or nm_e == fs:
                continue
            f_ns_s[u(nf)] = ns_s
            f_ns_e[u(nf)] = ns_e
            f_nm_s[u(nf)] = fs
            f_nm_e[u(nf)] = nm_e
            f_val[u(nf)] = v
            f_nsid[u(nf)] = nsid
            h, cr, nc, ln = mm_feed_words(nh, nc0, nn, nl, buf, fs, nm_e)
            f_id[u(nf)] = mm_finish(h, cr, nc, ln) & mask
            f_st[u(nf), 0] = h
            f_st[u(nf), 1] = cr
            f_st[u(nf), 2] = nc
            f_st[u(nf), 3] = ln
            nf += 1
        # ---- entries: features, then crosses
        count = nf
        for k in range(len(cross_a)):
            na = 0
            nb = 0
            for i in range(nf):
                na += f_nsid[u(i)] == cross_a[u(k)]
                nb += f_nsid[u(i)] == cross_b[u(k)]
            count += na * (na - 1) // 2 if cross_a[u(k)] == cross_b[u(k)] else na * nb
        need += count
        if nnz + count > cap or need > cap:
            info[I_ROOM] = need
            record_error(info, E_ROOM, line_start, e, 0, rows, slow)
            info[I_ROOM] = need + (n - e) // 2  # and a guess for the rest
            return
        row_start = nnz
        for i in range(nf):
            indices[u(nnz)] = f_id[u(i)]
            data[u(nnz)] = f_val[u(i)]
            nnz += 1
        for k in range(len(cross_a)):
            for i in range(nf):
                if f_nsid[u(i)] != cross_a[u(k)]:
                    continue
                h0, c0, n0, l0 = mm_feed(f_st[u(i), 0], f_st[u(i), 1], np.int64(f_st[u(i), 2]),
                                         np.int64(f_st[u(i), 3]), _CARET, 0, 1)
                j0 = i + 1 if cross_a[u(k)] == cross_b[u(k)] else 0
                for j in range(j0, nf):
                    if f_nsid[u(j)] != cross_b[u(k)]:
                        continue
                    h, cr, nc, ln = h0, c0, n0, l0
                    if f_ns_e[u(j)] > f_ns_s[u(j)]:
                        h, cr, nc, ln = mm_feed(h, cr, nc, ln, buf, f_ns_s[u(j)], f_ns_e[u(j)])
                        h, cr, nc, ln = mm_feed(h, cr, nc, ln, _CARET, 0, 1)
                    h, cr, nc, ln = mm_feed(h, cr, nc, ln, buf, f_nm_s[u(j)], f_nm_e[u(j)])
                    indices[u(nnz)] = mm_finish(h, cr, nc, ln) & mask
                    data[u(nnz)] = f_val[u(i)] * f_val[u(j)]
                    nnz += 1
        nnz = sort_row(indices, data, row_start, nnz, keys, vals, buckets, hash_bits, False)
        labels[u(rows)] = label
        weights[u(rows)] = weight
        row_ends[u(rows)] = nnz
        rows += 1
        lines += 1
        p = e + 1
    info[I_ROWS] = rows
    info[I_NNZ] = nnz
    info[I_LINES] = lines
    info[I_SLOW] = slow


# ---------------------------------------------------------------------------------------
# Pure-Python reference (also the exact path for chunks with very long numbers)

_NUM_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_SPACES = re.compile(r"[ \t\r\x0b\x0c]+")


class VWReferenceError(Exception):
    """(line index, message) of a malformed line."""

    def __init__(self, line, message):
        super().__init__(line, message)
        self.line, self.message = line, message


def _ref_number(tok: str, what: str, lineno: int, limit: float) -> float:
    if not _NUM_RE.match(tok):
        raise VWReferenceError(lineno, f"{what} {tok!r} is not a number")
    v = float(tok)
    if not math.isfinite(v) or abs(v) >= limit:
        raise VWReferenceError(lineno, f"{what} {tok!r} is not finite or out of range")
    return v


def parse_reference(text: str, hash_bits: int, crosses=(), value_limit=math.inf, unlabeled=False):
    """``(labels, weights, rows)`` of Vowpal Wabbit ``text``, each row a dict id -> value, the
    slow obvious way (str.split, Python floats, :func:`hashing.murmurhash3_32`); ``unlabeled``: as
    :func:`parse_vw_chunk`."""
    from .hashing import murmurhash3_32

    mask = (1 << hash_bits) - 1
    labels, weights, rows = [], [], []
    for lineno, line in enumerate(text.split("\n")):
        if not line.strip(" \t\r\x0b\x0c"):
            continue
        if "|" not in line:
            raise VWReferenceError(lineno, "no '|' (a line is: label [importance] [tag]|namespace features...)")
        head, _, rest = line.partition("|")
        toks = _SPACES.split(head.strip(" \t\r\x0b\x0c")) if head.strip(" \t\r\x0b\x0c") else []
        if toks and (not head[-1] in " \t\r\x0b\x0c" or toks[-1].startswith("'")):
            tag = toks.pop()  # VW's tag: starts with ' or touches the '|'
            if not toks and not unlabeled and not tag.startswith("'") and _NUM_RE.match(tag):
                raise VWReferenceError(lineno, f"label {tag!r} touches the '|', so it is the tag")
        if not toks and not unlabeled:
            raise VWReferenceError(lineno, "label is missing")
        if len(toks) > 3:
            raise VWReferenceError(lineno, "more than label, importance, base and tag before '|'")
        label = _ref_number(toks[0], "label", lineno, value_limit) if toks else math.nan
        weight = 1.0
        if len(toks) >= 2:
            weight = _ref_number(toks[1], "importance", lineno, value_limit)
            if weight < 0:
                raise VWReferenceError(lineno, f"importance {toks[1]!r} is negative")
        if len(toks) == 3:
            raise VWReferenceError(lineno, f"base {toks[2]!r} is not supported")
        feats = []  # (namespace, name, value)
        for seg in ("|" + rest).split("|")[1:]:
            seg = seg.rstrip("\r")
            ws = re.search(r"[ \t\r\x0b\x0c]", seg)
            ns_tok, body = (seg[: ws.start()], seg[ws.start():]) if ws else (seg, "")
            ns, _, sc = ns_tok.partition(":")
            scale = _ref_number(sc, "namespace scale", lineno, value_limit) if ":" in ns_tok else 1.0
            for tok in body.split():
                name, colon, val = tok.partition(":")
                v = _ref_number(val, "feature value", lineno, value_limit) if colon else 1.0
                v *= scale
                if v != 0 and name:
                    feats.append((ns, name, v))
        row: dict[int, float] = {}

        def add(key, v):
            j = murmurhash3_32(key) & mask
            row[j] = row.get(j, 0.0) + v

        keys = [(ns, (f"{ns}^{name}" if ns else name), v) for ns, name, v in feats]
        for _, key, v in keys:
            add(key, v)
        for a, b in crosses:
            for i, (nsa, ka, va) in enumerate(keys):
                if nsa != a:
                    continue
                for j, (nsb, kb, vb) in enumerate(keys):
                    if nsb == b and (a != b or j > i):
                        add(f"{ka}^{kb}", va * vb)
        labels.append(label)
        weights.append(weight)
        rows.append(row)
    return labels, weights, rows


# numba keys a cached kernel on its own file: drop this module's when a kernel it calls from another file is newer
drop_stale_callers(__name__)
