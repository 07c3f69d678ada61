"""``LibSVMIter``: mini-batches streamed from a LibSVM file, as MXNet's ``mx.io.LibSVMIter``.

The file is parsed chunk by chunk by :class:`~sparsetrain.io.libsvm.LibSVMReader` (on worker
threads, ahead of the consumer), so memory stays bounded whatever the file size. Batches are
CSR data (``CSRNDArray`` of shape ``(batch_size, num_features)``) and dense labels.

Differences from MXNet, all on purpose:
- works when the file (or the part) is smaller than one batch, and for any batch size;
- ``round_batch=False`` gives a short last batch instead of one padded with stale rows;
- ``last_batch_handle`` ('pad', 'discard' or 'roll_over', as ``NDArrayIter``) may replace
  ``round_batch``;
- ``reset()`` always restarts from the first row (MXNet continues after the rows that padded
  the previous epoch's last batch);
- ``zero_based`` ('auto' by default, as scikit-learn) instead of always zero-based indices;
- with ``label_libsvm``, labels are dense, ``(batch_size,) + label_shape``, and the label file
  is split into the same rows as the data file when ``num_parts > 1``;
- ``shuffle_window`` shuffles a stream in bounded memory (rows within consecutive windows).
"""
from __future__ import annotations

import contextlib
import functools
import os

import numpy as np

from ..base import DataFormatError, ShapeError
from ..ndarray import CSRNDArray, NDArray
from .base import ALL_WEIGHTS_ZERO, STDIN_NAME, DataBatch, DataDesc, DataIter, display_name
from .chunks import STREAM_CHUNK_SIZE
from .libsvm import DEFAULT_MAX_LINE_BYTES, LibSVMBlock, LibSVMReader
from .stream_rows import ChainedReader, EpochPiece, Rows, counting

__all__ = ["LibSVMIter"]

_LAST_BATCH = ("pad", "discard", "roll_over")


def _densify(block: LibSVMBlock, width: int, dtype) -> np.ndarray:
    """The rows of a label-file block as a dense (rows, width) array."""
    out = np.zeros((block.num_rows, width), dtype=dtype)
    rows = np.repeat(np.arange(block.num_rows), np.diff(block.indptr))
    out[rows, block.indices] = block.data
    return out


class LibSVMIter(DataIter):
    """Iterate over a LibSVM file in mini-batches of CSR data and dense labels.

    data_libsvm: the LibSVM file (``.gz``/``.bz2`` read transparently).
    data_shape: ``(num_features,)``; a feature index that does not fit is an error.
    label_libsvm: optional LibSVM file whose feature vectors are the labels (its own label
        column is ignored); it must have as many rows as ``data_libsvm``.
    label_shape: shape of one row's label; with ``label_libsvm=None`` each data row must carry
        ``prod(label_shape)`` comma-separated labels (one, by default).
    batch_size: rows per batch.
    round_batch: True pads the last batch with rows from the start of the file (or part),
        cycling if needed, and reports their count in ``DataBatch.pad``; False gives a short
        last batch.
    num_parts, part_index: read only part ``part_index`` of ``num_parts`` byte ranges of the
        file, aligned to line starts; the parts together hold every row exactly once.
    zero_based: True, False or "auto" (as scikit-learn, decided for the whole file).
    last_batch_handle: 'pad', 'discard' or 'roll_over' (leftover rows start the next epoch),
        overriding ``round_batch``.
    chunk_size: bytes parsed at a time; memory use is a few times this.
    shuffle_window: 0 or 1 reads the rows in file order; ``W`` > 1 shuffles them within
        consecutive windows of ``W`` rows, anew every epoch (rows ``0..W-1`` of the pass in a random
        order, then rows ``W..2W-1``, ...), so memory holds about one window: a row moves at most
        ``W - 1`` places. The order is drawn from ``sparsetrain.random`` at each :meth:`reset`
        (deterministic after ``sparsetrain.random.seed``). Rows rolled over from the previous epoch
        open the epoch unshuffled, as in ``NDArrayIter``.
    label_transform: ``f(labels, locate) -> labels`` applied to each parsed chunk's labels (a
        ``(rows, labels per row)`` array) before batching, e.g. a binary model's label mapping;
        ``locate(i)`` is ``"file:line"`` of the chunk's row ``i``, for its error messages.
    max_line_bytes: a longer line is an error naming it (a bound on the memory one line takes).
    reader: iterate this instead of a ``LibSVMReader`` of ``data_libsvm``: anything yielding
        ``LibSVMBlock`` s with one label per row (``CSVReader``, ``VWReader``, a stdin reader);
        ``data_libsvm`` then only names it in messages.
    refuse_zero_weights: a pass over the whole file (one part) whose rows all have importance
        weight 0 ends in an error naming the file (training or eval data: nothing to learn from or to measure).
    """

    def __init__(
        self,
        data_libsvm,
        data_shape,
        label_libsvm=None,
        label_shape=(1,),
        batch_size: int = 1,
        round_batch: bool = True,
        num_parts: int = 1,
        part_index: int = 0,
        data_name: str = "data",
        label_name: str = "softmax_label",
        dtype="float32",
        zero_based="auto",
        *,
        last_batch_handle: str | None = None,
        chunk_size: int = STREAM_CHUNK_SIZE,
        workers: int | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        reader=None,
        label_transform=None,
        shuffle_window: int = 0,
        refuse_zero_weights: bool = False,
    ):
        super().__init__(batch_size)
        if isinstance(data_shape, (int, np.integer)):
            data_shape = (int(data_shape),)
        data_shape = tuple(int(s) for s in data_shape)
        if len(data_shape) != 1 or data_shape[0] < 1:
            raise ShapeError(f"data_shape must be (num_features,), got {data_shape}")
        if isinstance(label_shape, (int, np.integer)):
            label_shape = (int(label_shape),)
        label_shape = tuple(int(s) for s in label_shape)
        if not label_shape or min(label_shape) < 1:
            raise ShapeError(f"label_shape must be a non-empty shape of positive sizes, got {label_shape}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        if isinstance(shuffle_window, bool) or not isinstance(shuffle_window, (int, np.integer)) or shuffle_window < 0:
            raise ValueError(f"shuffle_window must be a non-negative integer, got {shuffle_window!r}")
        self.shuffle_window = int(shuffle_window)
        self.refuse_zero_weights = refuse_zero_weights
        if last_batch_handle is None:
            self._last = "pad" if round_batch else "short"
        elif last_batch_handle in _LAST_BATCH:
            self._last = last_batch_handle
        else:
            raise ValueError(f"last_batch_handle must be one of {', '.join(_LAST_BATCH)}, got {last_batch_handle!r}")
        self.data_libsvm = data_libsvm
        self.label_libsvm = label_libsvm
        self.data_shape = data_shape
        self.label_shape = label_shape
        self.batch_size = int(batch_size)
        self.round_batch = round_batch
        self.num_parts = int(num_parts)
        self.part_index = int(part_index)
        self.data_name = data_name
        self.label_name = label_name
        self.dtype = np.dtype(dtype)
        self._label_width = int(np.prod(label_shape))
        self._provide_data = [DataDesc(data_name, (self.batch_size,) + data_shape, self.dtype)]
        self._provide_label = [DataDesc(label_name, self._label_batch_shape(self.batch_size), self.dtype)]
        if reader is not None and label_libsvm is not None:
            raise ValueError("label_libsvm needs the data in a LibSVM file, not a reader")
        self._data_reader = reader if reader is not None else LibSVMReader(
            data_libsvm, num_features=data_shape[0], zero_based=zero_based, dtype=self.dtype,
            num_labels=None if label_libsvm is not None else self._label_width,
            chunk_size=chunk_size, num_parts=num_parts, part_index=part_index, workers=workers,
            max_line_bytes=max_line_bytes, label_dtype=self.dtype if label_libsvm is None else None,
        )
        # rows the parser vouches for (canonical, ids within data_shape) need no check in the engine
        self._rows_checked = bool(getattr(self._data_reader, "rows_checked", False)) and (
            self._data_reader.num_features or data_shape[0] + 1) <= data_shape[0]
        self._label_zero_based = zero_based
        self._label_transform = label_transform
        self._label_reader: LibSVMReader | None = None
        self._byte_total: int | None = None
        self._byte_begin = 0
        self._chunk_size = chunk_size
        self._workers = workers
        self._max_line_bytes = max_line_bytes
        self._head: Rows | None = None  # the part's first rows, for padding
        self._carry: Rows | None = None  # roll_over leftovers
        self._stream = None
        self._peeked: tuple[list[Rows], object] | None = None  # (rows parsed ahead, the rest of their pass)
        self._queue: list[Rows] = []  # rows to batch before pulling more from the file
        self._cur: Rows | None = None  # the rows being batched, from ``_pos`` on
        self._pos = 0
        self._seen_rows = 0
        self._weighted = False  # a row of this pass had a non-zero importance weight
        self._bytes_done = 0
        self._exhausted = False
        self.reset()

    # -- descriptors -----------------------------------------------------------------------
    @property
    def provide_data(self) -> list[DataDesc]:
        return self._provide_data

    @property
    def provide_label(self) -> list[DataDesc]:
        return self._provide_label

    def _label_batch_shape(self, n: int) -> tuple:
        return (n,) if self.label_shape == (1,) else (n,) + self.label_shape

    # -- streaming -------------------------------------------------------------------------
    def _row_stream(self):
        """Yield ``Rows`` in file order (one per parsed chunk), labels already dense."""
        if self.label_libsvm is None:
            done = 0  # rows of this part read so far
            for block in self._data_reader:
                labels = block.labels.astype(self.dtype, copy=False).reshape(block.num_rows, self._label_width)
                if self._label_transform is not None:
                    labels = self._label_transform(labels, functools.partial(self._locate, done))
                done += block.num_rows
                weights = getattr(block, "weights", None)  # VW importance: None when all are 1
                if weights is not None and np.all(weights == 1.0):
                    weights = None
                yield Rows(block.data, block.indices, block.indptr, labels, block.end, weights,
                            getattr(block, "spare", False))
            return
        if self._label_reader is None:
            self._label_reader = LibSVMReader(
                self.label_libsvm, num_features=self._label_width, zero_based=self._label_zero_based,
                dtype=self.dtype, chunk_size=self._chunk_size, workers=self._workers,
                max_line_bytes=self._max_line_bytes,
                start_row=self._data_reader.rows_before() if self.num_parts > 1 else 0,
            )
        last_part = self.part_index == self.num_parts - 1
        with contextlib.closing(iter(self._label_reader)) as label_blocks:
            buffered: list[np.ndarray] = []
            have = 0
            for block in self._data_reader:
                while have < block.num_rows:
                    lb = next(label_blocks, None)
                    if lb is None:
                        raise DataFormatError(
                            f"{os.fspath(self.label_libsvm)}: has fewer rows than {os.fspath(self.data_libsvm)}"
                        )
                    dense = _densify(lb, self._label_width, self.dtype)
                    buffered.append(dense)
                    have += len(dense)
                stacked = np.concatenate(buffered) if len(buffered) > 1 else buffered[0]
                labels, rest = stacked[: block.num_rows], stacked[block.num_rows :]
                buffered, have = ([rest] if len(rest) else []), len(rest)
                yield Rows(block.data, block.indices, block.indptr, labels, block.end)
            if last_part and (have or next(label_blocks, None) is not None):
                raise DataFormatError(
                    f"{os.fspath(self.label_libsvm)}: has more rows than {os.fspath(self.data_libsvm)}"
                )

    def _windows(self, stream, rng):
        """The rows of ``stream`` in consecutive windows of ``shuffle_window`` rows, each shuffled."""
        w = self.shuffle_window
        parts: list[Rows] = []
        have = 0
        try:
            for rows in stream:
                pos = 0
                while pos < rows.n:
                    k = min(w - have, rows.n - pos)
                    part = rows if k == rows.n else rows.slice(pos, pos + k)
                    part.end = rows.end
                    parts.append(part)
                    have += k
                    pos += k
                    if have == w:
                        yield self._shuffled(parts, rng)
                        parts, have = [], 0
            if have:
                yield self._shuffled(parts, rng)
        finally:
            stream.close()

    @staticmethod
    def _shuffled(parts: list[Rows], rng) -> Rows:
        window = Rows.concat(parts)
        out = window.take(rng.permutation(window.n).astype(np.int64, copy=False))
        out.end = parts[-1].end
        return out

    def _locate(self, first: int, i: int) -> str:
        """``"file:line"`` of row ``first + i`` of this reader's part (only computed for an error)."""
        reader = self._data_reader
        if isinstance(reader, ChainedReader):
            return reader.locate(first + i)
        row = reader.rows_before() + first + i
        # a reader of another format knows its own lines (a CSV header, stdin)
        line = reader.line_of_row(row) if hasattr(reader, "line_of_row") else reader.source.line_of_row(row)
        name = display_name(self.data_libsvm)  # (stdin, '-', is <stdin>)
        return f"{name} (row {row + 1})" if line is None else f"{name}:{line}"

    def _pull(self) -> Rows | None:
        """The next parsed rows of the file, remembering the part's first rows for padding."""
        if self._exhausted:
            return None
        rows = next(self._stream, None)
        if rows is None:
            self._exhausted = True
            if self._seen_rows == 0 and self.num_parts == 1:
                raise self._no_rows()
            if self.refuse_zero_weights and not self._weighted and self.num_parts == 1:
                raise DataFormatError(f"{display_name(self.data_libsvm)}: {ALL_WEIGHTS_ZERO}")
            return None
        if self._seen_rows < self.batch_size:  # (re)build the head from this pass's first rows
            take = rows.slice(0, min(rows.n, self.batch_size - self._seen_rows)).copy()
            self._head = take if self._seen_rows == 0 else Rows.concat([self._head, take])
        self._seen_rows += rows.n
        self._weighted = self._weighted or rows.weights is None or bool(rows.weights.any())
        self._bytes_done = max(self._bytes_done, rows.end)
        return rows

    def _current(self) -> bool:
        """Make ``_cur`` a block with rows left at ``_pos``; False at the end of the epoch."""
        while self._cur is None or self._pos >= self._cur.n:
            rows = self._queue.pop(0) if self._queue else self._pull()
            if rows is None:
                self._cur = None
                return False
            self._cur, self._pos = rows, 0
        return True

    def roll_over_state(self) -> dict | None:
        """The rows ``roll_over`` carries into the next epoch (JSON-able: fewer than a batch), or
        None; saved with a checkpoint so that a resumed run continues exactly."""
        c = self._carry
        if self._last != "roll_over" or c is None or not c.n:
            return None
        return {"data": c.data.tolist(), "indices": c.indices.tolist(), "indptr": c.indptr.tolist(),
                "labels": c.labels.tolist(), "weights": None if c.weights is None else c.weights.tolist()}

    def set_roll_over_state(self, state: dict | None) -> None:
        """Restore :meth:`roll_over_state` before the next :meth:`reset`."""
        if not state:
            self._carry = None
            return
        labels = np.asarray(state["labels"], dtype=self.dtype)
        self._carry = Rows(np.asarray(state["data"], dtype=self.dtype), np.asarray(state["indices"], np.int64),
                            np.asarray(state["indptr"], np.int64), labels,
                            weights=None if state.get("weights") is None else np.asarray(state["weights"], np.float64))

    def has_rows(self, n: int) -> bool:
        """Whether a pass over the data holds ``n`` rows, found by parsing its first chunks now (a
        malformed line among them raises here); the next :meth:`reset`'s pass replays them, so
        nothing is parsed twice (nor stdin read twice)."""
        if self._peeked is None:
            self._peeked = ([], self._row_stream())
        ahead, rest = self._peeked
        have = sum(r.n for r in ahead)
        while have < n:
            rows = next(rest, None)
            if rows is None:
                if not have and self.num_parts == 1:
                    raise self._no_rows()
                break
            ahead.append(rows)
            have += rows.n
        return have >= n

    def _no_rows(self) -> DataFormatError:
        name = display_name(self.data_libsvm)  # stdin: as a stdin read into the disk cache says it
        return DataFormatError(f"{name}: no data rows" + ("" if name == STDIN_NAME else
                                                          " (the file is empty or only has comments)"))

    def _replay(self, ahead: list[Rows], rest):
        """The rows :meth:`has_rows` parsed ahead, then the rest of their pass."""
        try:
            yield from ahead
            ahead.clear()
            yield from rest
        finally:
            rest.close()

    def reset(self) -> None:
        if self._stream is not None:
            self._stream.close()
        self._stream = self._row_stream() if self._peeked is None else self._replay(*self._peeked)
        self._peeked = None
        if self.shuffle_window > 1:
            from ..random import generator

            # this epoch's order: its own generator, seeded from sparsetrain's here (the pieces of an
            # epoch are cut on another thread, which must not draw from a stream others use)
            rng = np.random.default_rng(int(generator().integers(2**63)))
            self._stream = self._windows(self._stream, rng)
        self._queue = [self._carry] if self._carry is not None else []
        self._carry = None
        self._cur = None
        self._pos = 0
        self._seen_rows = 0
        self._weighted = False
        self._bytes_done = 0
        self._exhausted = False
        self._current_batch = None

    def _batch(self, data, indices, indptr, labels, pad: int, weights=None) -> DataBatch:
        n = len(indptr) - 1
        # the arrays already have the CSR dtypes (values in dtype, int64 indices): wrap them
        x = CSRNDArray(data, indices, indptr, (n, self.data_shape[0]))
        y = NDArray(np.array(labels, dtype=self.dtype).reshape(self._label_batch_shape(n)))
        self._current_batch = DataBatch([x], [y], pad, None, self._provide_data, self._provide_label, weights)
        return self._current_batch

    def getdata(self):
        """The current batch's data array (MXNet's ``LibSVMIter`` returns the array, not a list)."""
        return self._require_current().data[0]

    def getlabel(self):
        """The current batch's label array."""
        return self._require_current().label[0]

    def next(self) -> DataBatch:
        cur, r0, bs = self._cur, self._pos, self.batch_size
        if cur is not None and r0 + bs <= cur.n:  # the common case: a batch within one block
            r1 = r0 + bs
            self._pos = r1
            ip = cur.indptr
            lo, hi = ip[r0], ip[r1]
            w = None if cur.weights is None else cur.weights[r0:r1]
            return self._batch(cur.data[lo:hi], cur.indices[lo:hi], ip[r0 : r1 + 1] - lo, cur.labels[r0:r1], 0, w)
        need = self.batch_size
        parts: list[Rows] = []
        while need and self._current():
            k = min(need, self._cur.n - self._pos)
            parts.append(self._cur.slice(self._pos, self._pos + k))
            self._pos += k
            need -= k
        pad = 0
        if need:
            if need == self.batch_size or self._last == "discard":
                raise StopIteration
            if self._last == "roll_over":
                self._carry = Rows.concat(parts).copy()
                raise StopIteration
            if self._last == "pad":
                parts.append(self._padding(need))
                pad = need
        batch = Rows.concat(parts)
        return self._batch(batch.data, batch.indices, batch.indptr, batch.labels, pad, batch.weights)

    def _padding(self, need: int) -> Rows:
        """``need`` rows from the start of the pass (cycling), to pad the last batch."""
        head = self._head
        reps = -(-need // head.n)
        filler = Rows.concat([head] * reps) if reps > 1 else head
        return filler.slice(0, need)

    # -- whole runs of batches, for the compiled engine --------------------------------------
    def byte_progress(self) -> tuple[int, int | None]:
        """``(bytes read, bytes of this pass)`` of the data file in this epoch, for a progress bar
        before the epoch's rows are known; the total is None where knowing it would take a pass
        over the data (compressed files, stdin, readers without a byte range)."""
        reader = self._data_reader
        if self._byte_total is None:
            source = getattr(reader, "source", None)
            if source is None or not hasattr(reader, "byte_range") or not source.mappable():
                return self._bytes_done, None
            begin, end = reader.byte_range()
            self._byte_begin = begin
            self._byte_total = (source.size() if end is None else min(end, source.size())) - begin
        return max(0, min(self._bytes_done - self._byte_begin, self._byte_total)), self._byte_total

    def epoch_pieces(self):
        """This epoch (from the last :meth:`reset`) as :class:`EpochPiece` s: runs of whole batches
        over the rows of one parsed chunk (or, where a batch spans chunks, a copy of its rows),
        exactly the batches :meth:`next` would give — padding, ``discard``, ``roll_over`` and a
        short last batch included — consumed as iteration would consume them. A batch that spans
        chunks opens the piece of the chunk that completes it, its earlier rows written after that
        chunk's in the room of its arrays (``Rows.joined``: one engine call a chunk), or, without
        such room, is a piece of its own (a copy of its rows)."""
        bs = self.batch_size
        pending: list[Rows] = []  # rows of a batch that spans chunks (fewer than bs)
        have = 0
        while True:
            rows = self._queue.pop(0) if self._queue else self._pull()
            if rows is None:
                break
            pos = lead = 0
            if have:
                pos = min(bs - have, rows.n)
                if have + pos < bs:  # the batch spans further chunks
                    pending.append(rows.slice(0, pos))
                    have += pos
                    continue
                joined = rows.joined(Rows.concat(pending))
                if joined is None:
                    pending.append(rows.slice(0, pos))
                    yield self._piece(Rows.concat(pending), 1, 0)
                else:  # the spanning batch is the piece's first: the earlier rows (after the chunk's), then these
                    rows, lead = joined, have
                pending, have = [], 0
            full = (rows.n - lead - pos) // bs
            if full or lead:
                yield self._piece(rows, full + (lead > 0), 0, -lead if lead else pos)
            rest = rows.n - lead - pos - full * bs
            if rest:
                end = rows.n - lead
                pending, have = [rows.slice(end - rest, end)], rest
        self._cur, self._pos, self._current_batch = None, 0, None
        if not have or self._last == "discard":
            return
        left = Rows.concat(pending)
        if self._last == "roll_over":
            self._carry = left.copy()
        elif self._last == "pad":
            yield self._piece(Rows.concat([left, self._padding(bs - have)]), 1, bs - have)
        else:  # a short last batch
            yield self._piece(left, 1, 0, size=have)

    @property
    def importance_weighted(self) -> bool:
        """Whether rows may carry importance weights (a Vowpal Wabbit reader, a CSV weight column): the
        compiled engine's generated plans, which do not apply them, leave such an iterator to the graph
        engine (the linear kernels take each piece's ``sample_weight``)."""
        reader = self._data_reader
        return any(getattr(r, "importance_weights", False) for r in getattr(reader, "readers", [reader]))

    def _piece(self, rows: Rows, batches: int, pad: int, first: int = 0, size: int | None = None) -> "EpochPiece":
        """``batches`` batches of ``size`` rows from row ``first`` of ``rows`` on; a negative ``first``: the first
        ``-first`` rows are the last of ``rows`` (a batch spanning chunks, joined)."""
        size = size or self.batch_size
        if first < 0:
            order = np.arange(first, first + batches * size, dtype=np.int64)
            order[:-first] += rows.n
        else:
            order = counting(first + batches * size)[first:]
        batch_ptr = counting(batches + 1) if size == 1 else np.arange(batches + 1, dtype=np.int64) * size
        x = CSRNDArray(rows.data, rows.indices, rows.indptr, (rows.n, self.data_shape[0]))
        y = NDArray(np.ascontiguousarray(rows.labels, dtype=self.dtype).reshape(self._label_batch_shape(rows.n)))
        return EpochPiece([(self.data_name, x)], [(self.label_name, y)], order, batch_ptr, pad, rows.weights,
                          self._rows_checked)

    def __del__(self):
        # the pass under way and one parsed ahead by has_rows: their parses cancelled, their maps closed
        peeked = getattr(self, "_peeked", None)
        for stream in (getattr(self, "_stream", None), peeked and peeked[1]):
            if stream is not None:
                with contextlib.suppress(Exception):
                    stream.close()
