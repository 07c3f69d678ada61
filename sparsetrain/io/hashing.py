"""Feature hashing: the one hash function of the raw data formats (CSV/TSV, Vowpal Wabbit).

A hashed feature's column id is ``murmurhash3_32(key, HASH_SEED) % 2**hash_bits`` where
``murmurhash3_32`` is MurmurHash3 x86 32-bit (unsigned) of the UTF-8 bytes of ``key``, the same
number as ``sklearn.utils.murmurhash3_32(key, seed=0, positive=True)``. The keys:

- CSV/TSV categorical column ``c`` with value ``v``: ``c=v`` (e.g. ``c1=68fd1e64``);
- CSV/TSV cross of columns ``a`` and ``b``: ``a=va^b=vb``;
- Vowpal Wabbit feature ``f`` in namespace ``ns``: ``ns^f`` (``f`` alone in the default
  namespace, i.e. after a bare ``|``); a cross of namespaces: ``ns1^f1^ns2^f2``.

So the same string gets the same id on every machine, in ``fit`` and in ``predict``.
"""
from __future__ import annotations

import numpy as np

from . import _hash_kernels as HK

__all__ = ["HASH_SEED", "feature_id", "hash_strings", "murmurhash3_32"]

#: The seed of every feature hash (documented in the README; changing it changes every model).
HASH_SEED = 0


def _bytes(key) -> np.ndarray:
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return np.frombuffer(raw, dtype=np.uint8) if raw else np.zeros(0, np.uint8)


def murmurhash3_32(key, seed: int = HASH_SEED) -> int:
    """MurmurHash3 x86 32-bit of ``key`` (str: its UTF-8 bytes, or bytes), in [0, 2**32)."""
    b = _bytes(key)
    return int(HK.murmurhash3_32(b, 0, len(b), seed))


def feature_id(key, hash_bits: int) -> int:
    """The column id of the hashed feature ``key`` in a space of ``2**hash_bits``."""
    return murmurhash3_32(key) & ((1 << hash_bits) - 1)


def hash_strings(keys, hash_bits: int) -> np.ndarray:
    """:func:`feature_id` of many keys at once (int64 array)."""
    raw = [k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in keys]
    offsets = np.zeros(len(raw) + 1, np.int64)
    np.cumsum([len(r) for r in raw], out=offsets[1:])
    buf = np.frombuffer(b"".join(raw), dtype=np.uint8) if offsets[-1] else np.zeros(1, np.uint8)
    return HK.hash_many(buf, offsets, HASH_SEED, (1 << hash_bits) - 1)
