"""Feature hashing: our MurmurHash3 x86 32-bit kernel against scikit-learn's."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=9), st.binary(max_size=40), st.data())
def test_feeding_by_words_equals_feeding_by_bytes(prefix, body, data):
    """``mm_feed_words`` (4-byte loads, the CSV kernel's) gives ``mm_feed``'s state for any pending
    bytes, span and room after it, including spans that end at the buffer's end."""
    buf = np.frombuffer(body, np.uint8) if body else np.zeros(0, np.uint8)
    start = data.draw(st.integers(0, len(buf)))
    end = data.draw(st.integers(start, len(buf)))
    pre = np.frombuffer(prefix, np.uint8) if prefix else np.zeros(0, np.uint8)
    state = HK.mm_feed(*HK.mm_start(HASH_SEED), pre, 0, len(pre))
    by_bytes = HK.mm_feed(*state, buf, start, end)
    by_words = HK.mm_feed_words(*state, buf, start, end)
    assert [int(x) for x in by_words] == [int(x) for x in by_bytes]
    assert HK.mm_finish(*by_words) == murmurhash3_32(bytes(prefix) + bytes(body[start:end]))


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
    pre = np.frombuffer(prefix, np.uint8) if prefix else np.zeros(0, np.uint8)
    state = HK.mm_feed(*HK.mm_start(HASH_SEED), pre, 0, len(pre))
    by_bytes = HK.mm_feed(*state, buf, start, end)
    padded = HK.mm_feed_padded(*state, buf, start, end)
    assert [int(x) for x in padded] == [int(x) for x in by_bytes]
    assert HK.mm_finish(*padded) == murmurhash3_32(bytes(prefix) + bytes(body[start:end]))
