"""Read Vowpal Wabbit text files into hashed CSR rows, labels and importance weights.

:class:`VWReader` streams a file (or one byte-range part of it; ``-`` reads stdin once) as
:class:`~sparsetrain.io.libsvm_parse.LibSVMBlock` s whose ``weights`` attribute holds each
row's importance (1 when absent); :func:`load_vw` reads a whole file. The grammar and the
hashed keys (``ns^feature``, crosses ``a^fa^b^fb``) are in ``_vw_kernels``; the feature space
is ``2**hash_bits`` columns. Malformed lines are a ``DataFormatError`` naming file:line.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..base import ConfigError, DataFormatError, quoted
from . import _vw_kernels as VK
from .base import token_text
from .chunks import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_LINE_BYTES
from .text_pipeline import (HashedTextReader, TextJob, count_newlines, finite_limit, keep_parsed, line_of, load_blocks)

__all__ = ["VWReader", "load_vw"]

_MESSAGES = {
    VK.E_NO_BAR: "no '|' in the line (expected: label [importance] [tag]|namespace feature[:value] ...)",
    VK.E_BASE: ("base (initial prediction) {q} is not supported: sparsetrain has no per-row offset on the margin "
                "(drop the third number before '|'; a tag starts with ' or touches the '|')"),
    VK.E_LABEL_IS_TAG: ("the line has no label: {q} touches the '|', so it is the tag, as in Vowpal Wabbit "
                        "(put a space before the '|')"),
    VK.E_LABEL: "label {q} is not a number",
    VK.E_NO_LABEL: "the line has no label (fit and evaluate need one; predict scores such lines)",
    VK.E_IMPORTANCE: "importance weight {q} is not a number >= 0 (a tag starts with ' or touches the '|')",
    VK.E_HEADER: ("more than label, importance and tag before the first '|': {q} "
                  "(a tag starts with ' or touches the '|')"),
    VK.E_VALUE: "feature {q}: the value after ':' is not a number",
    VK.E_SCALE: "namespace scale {q} is not a number",
    VK.E_NONFINITE: "{q} is not finite (or too large for {dtype})",
    VK.E_LINE_TOO_LONG: "line is longer than max_line_bytes={aux}",
}


class VWReader(HashedTextReader):
    """Stream a Vowpal Wabbit text file as blocks of hashed rows (see the module docstring).

    hash_bits: features fall in ``2**hash_bits`` columns; crosses: pairs of namespace names
    (``[["a", "b"]]`` is ``vw -q ab`` with namespaces named ``a`` and ``b``).
    """

    importance_weights = True  # blocks carry ``weights`` (see LibSVMIter.importance_weighted)

    def __init__(self, path, hash_bits: int = 18, *, crosses: Sequence[Sequence[str]] = (), dtype="float32",
                 chunk_size: int = DEFAULT_CHUNK_SIZE, num_parts: int = 1, part_index: int = 0,
                 workers: int | None = None, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, unlabeled: bool = False):
        self.unlabeled = unlabeled  # a line without a label is a row labelled NaN (predict), not an error
        if isinstance(hash_bits, bool) or not isinstance(hash_bits, int) or not 1 <= hash_bits <= 31:
            raise ConfigError(f"data.hash_bits: must be an integer in [1, 31], got {hash_bits!r}")
        names: list[str] = []
        pairs = []
        for i, pair in enumerate(crosses):
            if len(pair) != 2:
                raise ConfigError(f"data.crosses[{i}]: a cross is a pair of namespaces, got {list(pair)}")
            ids = []
            for ns in pair:
                if ns not in names:
                    names.append(ns)
                ids.append(names.index(ns))
            pairs.append(ids)
        self.crosses = [tuple(p) for p in crosses]
        raw = [n.encode("utf-8") for n in names]
        self._names = np.frombuffer(b"".join(raw) or b"\0", np.uint8)
        self._offs = np.zeros(len(raw) + 1, np.int64)
        np.cumsum([len(r) for r in raw], out=self._offs[1:])
        self._a = np.array([p[0] for p in pairs], np.int64)
        self._b = np.array([p[1] for p in pairs], np.int64)
        self.hash_bits = hash_bits
        self._open(path, dtype, chunk_size, max_line_bytes, num_parts, part_index, workers)

    @property
    def num_features(self) -> int:
        return 1 << self.hash_bits

    def _run(self, job: TextJob) -> TextJob:
        buf = job.buf
        rows = int(count_newlines(buf))
        room = len(buf) // 2 + 1
        job.data, job.indices, indptr, job.labels, job.weights = self._room(
            ((room, self.dtype), (room, np.int64), (rows + 1, np.int64), (rows, np.float64), (rows, np.float64)))
        indptr[0] = 0
        while True:
            info = VK.parse_vw_chunk(buf, self.hash_bits, self.source.max_line_bytes, finite_limit(self.dtype),
                                     self._names, self._offs, self._a, self._b, job.data, job.indices,
                                     indptr[1:], job.labels, job.weights, self.unlabeled)
            if info[VK.I_ERR] != VK.E_ROOM:
                break
            room = max(2 * room, int(info[VK.I_ROOM]))
            job.data, job.indices = np.empty(room, self.dtype), np.empty(room, np.int64)
        job.info = info
        job.lines = int(info[VK.I_LINES])
        if info[VK.I_ERR] == VK.OK and info[VK.I_SLOW]:
            self._run_reference(job, indptr)
        elif info[VK.I_ERR] == VK.OK:
            keep_parsed(job, indptr, int(info[VK.I_ROWS]), int(info[VK.I_NNZ]))
        return job

    def _run_reference(self, job: TextJob, indptr) -> None:
        """A chunk with numbers of more than 18 digits: parsed again in Python, exactly."""
        text = bytes(job.buf).decode("utf-8", "surrogateescape")
        labels, weights, rows = VK.parse_reference(text, self.hash_bits, self.crosses, finite_limit(self.dtype),
                                                   self.unlabeled)
        keys = [sorted(r) for r in rows]
        job.indptr = np.zeros(len(rows) + 1, np.int64)
        np.cumsum([len(k) for k in keys], out=job.indptr[1:])
        job.indices = np.array([j for k in keys for j in k], np.int64)
        job.data = np.array([r[j] for r, k in zip(rows, keys) for j in k], self.dtype)
        job.labels = np.array(labels, np.float64)
        job.weights = np.array(weights, np.float64)

    def _check(self, job: TextJob, begin: int, cache: dict) -> None:
        info = job.info
        code = int(info[VK.I_ERR])
        if code == VK.OK:
            return
        if code == VK.E_NO_NEWLINE:
            raise AssertionError("parse_vw_chunk needs a buffer that ends with a newline")
        start, end, aux = int(info[VK.I_ERR_START]), int(info[VK.I_ERR_END]), int(info[VK.I_ERR_AUX])
        token = token_text(job.buf, start, end)
        msg = _MESSAGES.get(code, "malformed line (error {code})").format(q=quoted(token), aux=aux,
                                                                          dtype=self.dtype.name, code=code)
        raise DataFormatError(f"{self.display}:{line_of(self.source, begin, job, start, cache)}: {msg}")

def load_vw(path, hash_bits: int = 18, *, crosses=(), dtype="float32", **kwargs):
    """The whole file as ``(CSRNDArray, labels, importance weights)``."""
    X, y, w = load_blocks(VWReader(path, hash_bits, crosses=crosses, dtype=dtype, **kwargs), dtype)
    return X, y, w.astype(dtype)
