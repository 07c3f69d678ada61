"""Feature hashing: our MurmurHash3 x86 32-bit kernel against scikit-learn's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from sparsetrain.io import _hash_kernels as HK
from sparsetrain.io.hashing import HASH_SEED, feature_id, hash_strings, murmurhash3_32

sk_murmur = pytest.importorskip("sklearn.utils").murmurhash3_32


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.integers(0, 2**32 - 1), st.integers(1, 31))
def test_hash_equals_scikit_learn_on_random_unicode(s, seed, bits):
    assert murmurhash3_32(s, seed) == sk_murmur(s, seed, positive=True)
    if seed == HASH_SEED:
        assert feature_id(s, bits) == sk_murmur(s, HASH_SEED, positive=True) % 2**bits


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=12), max_size=20), st.integers(1, 31))
def test_hash_many_equals_one_by_one(keys, bits):
    got = hash_strings(keys, bits)
    assert got.tolist() == [sk_murmur(k, 0, positive=True) % 2**bits for k in keys]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=30), st.lists(st.integers(0, 30), max_size=4))
def test_feeding_in_pieces_equals_hashing_the_whole(data, cuts):
    buf = np.frombuffer(data, np.uint8) if data else np.zeros(0, np.uint8)
    bounds = sorted({0, len(data), *(min(c, len(data)) for c in cuts)})
    state = HK.mm_start(7)
    for a, b in zip(bounds, bounds[1:]):
        state = HK.mm_feed(*state, buf, a, b)
    assert HK.mm_finish(*state) == sk_murmur(data, 7, positive=True)


def _agrees_with_mm_feed(feed, prefix: bytes, buf, start: int, end: int) -> None:
    """``feed`` (a variant of ``mm_feed``), after ``prefix``'s bytes are pending, gives ``mm_feed``'s state for
    ``buf[start:end]``, and its hash is scikit-learn's of the bytes fed."""
    pre = np.frombuffer(prefix, np.uint8) if prefix else np.zeros(0, np.uint8)
    state = HK.mm_feed(*HK.mm_start(HASH_SEED), pre, 0, len(pre))
    ours = feed(*state, buf, start, end)
    assert [int(x) for x in ours] == [int(x) for x in HK.mm_feed(*state, buf, start, end)]
    assert HK.mm_finish(*ours) == murmurhash3_32(bytes(prefix) + bytes(buf[start:end]))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=9), st.binary(max_size=40), st.data())
def test_feeding_by_words_equals_feeding_by_bytes(prefix, body, data):
    """``mm_feed_words`` (4-byte loads, the CSV kernel's) gives ``mm_feed``'s state for any pending
    bytes, span and room after it, including spans that end at the buffer's end."""
    buf = np.frombuffer(body, np.uint8) if body else np.zeros(0, np.uint8)
    start = data.draw(st.integers(0, len(buf)))
    end = data.draw(st.integers(start, len(buf)))
    _agrees_with_mm_feed(HK.mm_feed_words, prefix, buf, start, end)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=9), st.binary(min_size=1, max_size=40), st.binary(min_size=HK.PAD, max_size=HK.PAD),
       st.data())
def test_feeding_padded_equals_feeding_by_bytes(prefix, body, pad, data):
    """``mm_feed_padded`` (the CSV kernel's field hash: unrolled blocks, reads up to ``PAD`` bytes past
    the span) gives ``mm_feed``'s state for any pending bytes and non-empty span, whatever the
    bytes after the span are."""
    buf = np.frombuffer(body + pad, np.uint8)
    start = data.draw(st.integers(0, len(body) - 1))
    end = data.draw(st.integers(start + 1, len(body)))
    _agrees_with_mm_feed(HK.mm_feed_padded, prefix, buf, start, end)


@njit
def _hash_lanes(src, fs, fe, cols, h0, carry0, ncarry0, length0, g, active, indices, nnz, mask, contiguous):
    return HK.hash_lanes(src, fs, fe, cols, h0, carry0, ncarry0, length0, g, active, indices, nnz, mask, contiguous)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=6), st.binary(max_size=14)), min_size=1, max_size=2 * HK.LANES),
       st.binary(min_size=HK.PAD, max_size=HK.PAD))
def test_hash_lanes_equal_murmur_of_prefix_and_field(pairs, pad):
    """``hash_lanes`` (the CSV kernel's categorical hashes, LANES fields at once): the lanes of non-empty
    fields store the murmur hash of their prefix then their field, in lane order after the entries before
    them, or are flagged as too long for two blocks (exactly those, and not stored), whatever bytes follow
    the fields; an empty field's lane stores nothing, nor do the lanes past ``active``, nor anything past
    the count returned. The fields' spans gathered by column and read as consecutive columns alike."""
    body = b"".join(field for _, field in pairs)
    buf = np.frombuffer(body + pad, np.uint8)
    ends = np.cumsum([len(f) for _, f in pairs])
    nl = -(-len(pairs) // HK.LANES) * HK.LANES
    fs = np.zeros(nl, np.int64)
    fe = np.zeros(nl, np.int64)
    fe[:len(pairs)] = ends
    fs[:len(pairs)] = ends - [len(f) for _, f in pairs]
    states = np.zeros((4, nl), np.int64)
    for i, (prefix, _) in enumerate(pairs):
        pre = np.frombuffer(prefix, np.uint8) if prefix else np.zeros(0, np.uint8)
        states[:, i] = HK.mm_feed(*HK.mm_start(HASH_SEED), pre, 0, len(pre))
    cols = np.arange(nl, dtype=np.int64)
    mask = 2**20 - 1
    for g, contiguous in ((g, c) for g in range(0, nl, HK.LANES) for c in (0, 1)):
        active = min(HK.LANES, len(pairs) - g)
        out = np.full(3 + HK.LANES + 3, -1, np.int64)
        got = _hash_lanes(buf, fs, fe, cols, states[0].copy(), states[1].copy(), states[2].copy(), states[3].copy(),
                          g, active, out, 3, mask, contiguous)
        longs = [(len(prefix) % 4 + len(field)) // 4 > 2 for prefix, field in pairs[g:g + active]]
        assert got >> 32 == sum(1 << lane for lane, is_long in enumerate(longs) if is_long)
        want = [sk_murmur(prefix + field, HASH_SEED, positive=True) & mask
                for (prefix, field), is_long in zip(pairs[g:g + active], longs) if field and not is_long]
        assert got & 0xFFFFFFFF == len(want)
        assert out.tolist() == [-1] * 3 + want + [-1] * (HK.LANES + 3 - len(want))
