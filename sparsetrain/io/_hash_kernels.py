"""MurmurHash3 x86 32-bit (Austin Appleby's ``MurmurHash3_x86_32``) as compiled kernels.

The hash is fed in pieces (``mm_feed``) so that a key such as ``column=value`` is hashed
straight from the bytes it is made of, without building it: a state is ``(h, carry, ncarry,
length)`` (the running hash, up to three pending bytes, how many, the bytes fed so far),
:func:`mm_start` makes one, :func:`mm_feed` adds bytes, :func:`mm_finish` gives the hash.
:func:`murmurhash3_32` hashes one byte range. Results equal scikit-learn's
``sklearn.utils.murmurhash3_32(key, seed, positive=True)`` (``tests/test_hashing.py``).
Everything is computed in uint64 and masked to 32 bits.
"""
from __future__ import annotations

import numpy as np
from numba import njit

_M = np.uint64(0xFFFFFFFF)
_C1 = np.uint64(0xCC9E2D51)
_C2 = np.uint64(0x1B873593)
_N = np.uint64(0xE6546B64)
_F1 = np.uint64(0x85EBCA6B)
_F2 = np.uint64(0xC2B2AE35)
_U5 = np.uint64(5)


@njit(cache=True, nogil=True, inline="always")
def _rotl(x, r):
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & _M


@njit(cache=True, nogil=True, inline="always")
def _mix_k(k):
    k = (k * _C1) & _M
    k = _rotl(k, 15)
    return (k * _C2) & _M


@njit(cache=True, nogil=True, inline="always")
def _mix_h(h, k):
    h ^= _mix_k(k)
    h = _rotl(h, 13)
    return (h * _U5 + _N) & _M


@njit(cache=True, nogil=True)
def mm_start(seed):
    """The state before any byte: ``(h, carry, ncarry, length)``."""
    return np.uint64(seed) & _M, np.uint64(0), 0, 0


@njit(cache=True, nogil=True, inline="always")
def mm_feed(h, carry, ncarry, length, buf, start, end):
    """The state after feeding ``buf[start:end]``."""
    h = np.uint64(h)
    carry = np.uint64(carry)
    p = start
    # complete a pending block first
    while ncarry != 0 and p < end:
        carry |= np.uint64(buf[p]) << np.uint64(8 * ncarry)
        ncarry += 1
        p += 1
        if ncarry == 4:
            h = _mix_h(h, carry)
            carry = np.uint64(0)
            ncarry = 0
    while p + 4 <= end:
        k = (np.uint64(buf[p]) | (np.uint64(buf[p + 1]) << np.uint64(8)) | (np.uint64(buf[p + 2]) << np.uint64(16))
             | (np.uint64(buf[p + 3]) << np.uint64(24)))
        h = _mix_h(h, k)
        p += 4
    while p < end:
        carry |= np.uint64(buf[p]) << np.uint64(8 * ncarry)
        ncarry += 1
        p += 1
    return h, carry, ncarry, length + (end - start)


@njit(cache=True, nogil=True, inline="always")
def load32(buf, p):
    """The 4 bytes ``buf[p:p + 4]`` as a little-endian word (LLVM makes it one load)."""
    u = np.uint64(p)
    return (np.uint64(buf[u]) | (np.uint64(buf[u + np.uint64(1)]) << np.uint64(8))
            | (np.uint64(buf[u + np.uint64(2)]) << np.uint64(16)) | (np.uint64(buf[u + np.uint64(3)]) << np.uint64(24)))


@njit(cache=True, nogil=True, inline="always")
def mm_feed_words(h, carry, ncarry, length, buf, start, end):
    """:func:`mm_feed` of ``buf[start:end]`` by whole 4-byte loads, the same state: the pending bytes
    are joined to the first word by a shift, the last partial word is masked (no loop per byte;
    ~9 % less CPU for the CSV kernel). It reads the bytes before ``max(start, end) + 4``; where the
    buffer is shorter, or ``buf[start:end]`` cannot complete the pending block, it is :func:`mm_feed`."""
    n = end - start
    need = (4 - ncarry) & 3
    if n < need or start + 4 > len(buf) or end + 4 > len(buf):
        return mm_feed(h, carry, ncarry, length, buf, start, end)
    h = np.uint64(h)
    p = start
    if ncarry != 0:
        h = _mix_h(h, (np.uint64(carry) | (load32(buf, p) << np.uint64(8 * ncarry))) & _M)
        p += need
    while p + 4 <= end:
        h = _mix_h(h, load32(buf, p))
        p += 4
    r = end - p
    carry = load32(buf, p) & ((np.uint64(1) << np.uint64(8 * r)) - np.uint64(1))
    return h, carry, r, length + n


#: The bytes :func:`mm_feed_padded` may read past its range's end.
PAD = 8


@njit(cache=True, nogil=True, inline="always")
def mm_feed_padded(h, carry, ncarry, length, buf, start, end):
    """:func:`mm_feed` of a non-empty ``buf[start:end]`` where the buffer holds ``PAD`` bytes past
    ``end`` (the caller checks that once, e.g. per line): no check here. The pending bytes and
    the range are one stream of 4-byte blocks: block 0 is the carry joined to the first word by a
    shift, block ``i >= 1`` the word at ``start - ncarry + 4 * i``, the last partial block is the
    masked word after the last whole one. The first two blocks are mixed unrolled (a short key's
    blocks; a loop whose trip count varies by row mispredicts), each kept when the stream has it.
    For an empty range the state returned is not the state given (any state of the same shape):
    callers that drop an empty field's hash (the CSV kernel) do not branch on it."""
    u = np.uint64
    h = u(h)
    n = end - start
    total = ncarry + n
    nb = total >> 2  # whole blocks of the stream
    base = start - ncarry
    w0 = (u(carry) | (load32(buf, start) << u(8 * ncarry))) & _M
    h = _mix_h(h, w0) if nb >= 1 or n == 0 else h
    h = _mix_h(h, load32(buf, base + 4)) if nb >= 2 or n == 0 else h
    i = 2
    while i < nb:
        h = _mix_h(h, load32(buf, base + 4 * i))
        i += 1
    r = total & 3
    tail = load32(buf, base + 4 * max(nb, 1)) if nb != 0 or n == 0 else w0
    return h, tail & ((u(1) << u(8 * r)) - u(1)), r, length + n


@njit(cache=True, nogil=True, inline="always")
def mm_finish(h, carry, ncarry, length):
    """The 32-bit hash (as an int64 in [0, 2**32)) of the bytes fed."""
    h = np.uint64(h)
    carry = np.uint64(carry)
    if ncarry != 0:
        h ^= _mix_k(carry)
    h ^= np.uint64(length) & _M
    h ^= h >> np.uint64(16)
    h = (h * _F1) & _M
    h ^= h >> np.uint64(13)
    h = (h * _F2) & _M
    h ^= h >> np.uint64(16)
    return np.int64(h)


@njit(cache=True, nogil=True)
def murmurhash3_32(buf, start, end, seed):
    """MurmurHash3 x86 32-bit of ``buf[start:end]`` (uint8), unsigned, as an int64."""
    h, c, n, ln = mm_start(seed)
    h, c, n, ln = mm_feed(h, c, n, ln, buf, start, end)
    return mm_finish(h, c, n, ln)


@njit(cache=True, nogil=True)
def hash_many(buf, offsets, seed, mask):
    """``murmurhash3_32(buf[offsets[i]:offsets[i+1]]) & mask`` for every i."""
    n = len(offsets) - 1
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = murmurhash3_32(buf, offsets[i], offsets[i + 1], seed) & mask
    return out
