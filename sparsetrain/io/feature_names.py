"""Which names hash to which column: the ``feature_names.json`` of a run (``data.keep_feature_names``).

The file (written by ``fit`` into the run directory, read by ``export``) is JSON::

    {"format": "sparsetrain-feature-names/1",
     "hash_bits": 16, "num_features": 65549,
     "names": {"4711": ["c1=68fd1e64"], "65536": ["i1"], ...},
     "collisions": [123, 4560]}

``names`` maps each column id that occurs in the training data (as a decimal string, JSON's only
key type) to the sorted list of the keys that hash to it (``column=value``, ``a=va^b=vb``, ``ns^f``,
... exactly the strings of ``io/hashing.py``); a CSV numeric column's id lists its column name.
``collisions`` lists, ascending, the ids that more than one name hashes to.

The names are collected in one pass over the file in Python (the ``csv`` module, or the Vowpal
Wabbit reference parser's splitting), so it costs more than a training pass over large files. stdin,
read once, has its names collected from the chunks its reader parses (:class:`KeysTap`).
"""
from __future__ import annotations

import csv
import io
import json

import numpy as np

from .chunks import opened_data
from .hashing import hash_strings

FORMAT = "sparsetrain-feature-names/1"

__all__ = ["FORMAT", "KeysTap", "csv_feature_keys", "vw_feature_keys", "feature_names_doc", "read_feature_names"]


def _text_lines(path):
    with opened_data(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
        yield from text  # (a wrapper left to the garbage collector printed a ResourceWarning in fit)


def _buffer_lines(buf):
    """The lines of a chunk's bytes, split and decoded as :func:`_text_lines` reads a file."""
    with io.TextIOWrapper(io.BytesIO(bytes(buf)), encoding="utf-8", errors="replace", newline="") as text:
        yield from text


def csv_feature_keys(path, schema, columns, delimiter) -> set[str]:
    """The hashed keys (``column=value``, crosses ``a=va^b=vb``) of a CSV/TSV file."""
    keys: set[str] = set()
    _add_csv_keys(keys, _text_lines(path), schema, columns, delimiter, schema.header)
    return keys


def _add_csv_keys(keys: set, lines, schema, columns, delimiter, header: bool) -> None:
    index = {c: i for i, c in enumerate(columns)}
    cats = [(c, index[c]) for c in schema.categorical]
    crosses = [(a, index[a], b, index[b]) for a, b in schema.crosses]
    rows = csv.reader(lines, delimiter=delimiter, quotechar=schema.quote)
    if header:
        next(rows, None)
    for fields in rows:
        n = len(fields)
        for c, i in cats:
            if i < n and fields[i]:
                keys.add(f"{c}={fields[i]}")
        for a, i, b, j in crosses:
            if i < n and j < n and fields[i] and fields[j]:
                keys.add(f"{a}={fields[i]}^{b}={fields[j]}")


def vw_feature_keys(path, crosses=()) -> set[str]:
    """The hashed keys (``ns^f`` or ``f``, crosses ``ka^kb``) of a Vowpal Wabbit file."""
    keys: set[str] = set()
    _add_vw_keys(keys, _text_lines(path), crosses)
    return keys


def _add_vw_keys(keys: set, lines, crosses) -> None:
    for line in lines:
        if "|" not in line:
            continue
        by_ns: dict[str, list[str]] = {}
        for seg in line.rstrip("\r\n").split("|")[1:]:
            parts = seg.split()
            ns = "" if not seg or seg[0].isspace() else parts[0].partition(":")[0]
            feats = parts if ns == "" and (not seg or seg[0].isspace()) else parts[1:]
            for tok in feats:
                name = tok.partition(":")[0]
                if name:
                    key = f"{ns}^{name}" if ns else name
                    keys.add(key)
                    by_ns.setdefault(ns, []).append(key)
        for a, b in crosses:
            ka, kb = by_ns.get(a, []), by_ns.get(b, [])
            for i, x in enumerate(ka):
                for j, y in enumerate(kb):
                    if a != b or j > i:
                        keys.add(f"{x}^{y}")


class KeysTap:
    """The hashed keys of a stream read once (stdin), collected chunk by chunk as its reader parses it:
    a CSV/VW reader's ``chunk_tap``, called with the reader, each chunk's bytes (whole lines, in file
    order) and whether the chunk starts the stream. ``keys``: those of the chunks seen so far, as
    :func:`csv_feature_keys` / :func:`vw_feature_keys` find them in a file."""

    def __init__(self, fmt: str, schema=None, crosses=()):
        self.fmt, self.schema, self.crosses = fmt, schema, crosses
        self.keys: set[str] = set()

    def __call__(self, reader, buf, first: bool) -> None:
        if self.fmt == "csv":
            plan = reader.plan()
            _add_csv_keys(self.keys, _buffer_lines(buf), self.schema, plan.columns, plan.delimiter,
                          self.schema.header and first)
        else:
            _add_vw_keys(self.keys, _buffer_lines(buf), self.crosses)


def feature_names_doc(keys, hash_bits: int, num_features: int, numeric=()) -> dict:
    """The ``feature_names.json`` document of these hashed ``keys`` (and CSV ``numeric`` columns)."""
    keys = sorted(keys)
    ids = hash_strings(keys, hash_bits) if keys else np.zeros(0, np.int64)
    names: dict[int, list[str]] = {}
    for k, j in zip(keys, ids.tolist()):
        names.setdefault(j, []).append(k)
    for k, c in enumerate(numeric):
        names[(1 << hash_bits) + k] = [c]
    return {"format": FORMAT, "hash_bits": hash_bits, "num_features": num_features,
            "names": {str(j): names[j] for j in sorted(names)},
            "collisions": sorted(j for j, v in names.items() if len(v) > 1)}


def read_feature_names(path) -> dict[int, list[str]]:
    """``feature_names.json`` as a dict column id -> names."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if doc.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return {int(k): v for k, v in doc["names"].items()}
