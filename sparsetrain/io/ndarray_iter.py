"""``NDArrayIter``: mini-batches over in-memory dense or CSR arrays, as MXNet's ``mx.io.NDArrayIter``.

Unlike MXNet, CSR inputs support every ``last_batch_handle`` mode and ``shuffle``.

How an epoch is laid out: ``reset()`` fixes the epoch's sample order (a permutation from
``sparsetrain.random.generator()`` when ``shuffle``, else ``0..n-1``) and, when shuffling,
gathers every source into that order once (dense rows or CSR rows — MXNet also keeps shuffled
copies). Batches are then contiguous windows of those arrays: views for dense data, and for CSR
views of ``data``/``indices`` with an ``indptr`` row from a table built at ``reset()``, so a
batch costs a few microseconds whatever its size. Only the padded last batch (``pad``) and the
carried-over first batch (``roll_over``) are gathered row by row.
"""
from __future__ import annotations

import numbers
import sys
from collections import OrderedDict

import numpy as np

from ..base import ShapeError
from ..ndarray.creation import array
from ..ndarray.ndarray import INDEX_DTYPE, BaseArray, CSRNDArray, NDArray, RowSparseNDArray
from ..ndarray.sparse import csr_matrix
from .base import DataBatch, DataDesc, DataIter

__all__ = ["NDArrayIter", "csr_take_rows"]

_LAST_BATCH_MODES = ("pad", "discard", "roll_over")


def csr_take_rows(data: np.ndarray, indices: np.ndarray, indptr: np.ndarray, rows: np.ndarray):
    """Rows ``rows`` (any order, repeats allowed) of the CSR matrix ``(data, indices, indptr)``.

    Returns new ``(data, indices, indptr)`` buffers; ``indptr`` is int64 starting at 0.
    Vectorised: O(len(rows) + nnz of the taken rows).
    """
    rows = np.asarray(rows, dtype=INDEX_DTYPE)
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    out_indptr = np.empty(len(rows) + 1, dtype=INDEX_DTYPE)
    out_indptr[0] = 0
    np.cumsum(lengths, out=out_indptr[1:])
    nnz = int(out_indptr[-1])
    # element e of output row r comes from position starts[r] + (e - out_indptr[r])
    positions = np.repeat(starts - out_indptr[:-1], lengths)
    positions += np.arange(nnz, dtype=INDEX_DTYPE)
    return data[positions], indices[positions], out_indptr


# Per-batch construction without the public constructors' argument normalisation (a batch of
# size 1 must cost a few microseconds). Used only while the classes have exactly these slots;
# otherwise the ordinary constructors run.
_CSR_SLOTS = ("_data", "_indices", "_indptr", "_shape")
_BATCH_SLOTS = ("data", "label", "pad", "index", "provide_data", "provide_label", "sample_weight")
_FAST_CSR = tuple(s for s in CSRNDArray.__slots__ if s != "__weakref__") == _CSR_SLOTS
_FAST_BATCH = tuple(DataBatch.__slots__) == _BATCH_SLOTS


def _csr_view(values, indices, indptr, shape, _new=object.__new__, _cls=CSRNDArray):
    """A ``CSRNDArray`` over existing buffers (``shape`` already a tuple of ints)."""
    if not _FAST_CSR:
        return CSRNDArray(values, indices, indptr, shape)
    out = _new(_cls)
    out._data = values
    out._indices = indices
    out._indptr = indptr
    out._shape = shape
    return out


def _batch(data: list, label: list, pad: int, sample_weight=None, _new=object.__new__, _cls=DataBatch) -> DataBatch:
    """A ``DataBatch`` owning the lists ``data`` and ``label``."""
    if not _FAST_BATCH:
        return DataBatch(data, label, pad=pad, sample_weight=sample_weight)
    out = _new(_cls)
    out.data = data
    out.label = label
    out.pad = pad
    out.index = None
    out.provide_data = None
    out.provide_label = None
    out.sample_weight = sample_weight
    return out


def _issparse(value) -> bool:
    """A scipy sparse matrix? Without importing scipy (a warm ``fit`` need not): one exists only
    once ``scipy.sparse`` is imported."""
    sp = sys.modules.get("scipy.sparse")
    return sp is not None and sp.issparse(value)


def _as_source(value, name: str) -> BaseArray:
    """``value`` as a dense ``NDArray`` or a ``CSRNDArray`` with at least one dimension."""
    if isinstance(value, RowSparseNDArray):
        raise TypeError(
            f"NDArrayIter input {name!r} is row_sparse; convert it with .tostype('csr') or .tostype('default')"
        )
    elif isinstance(value, NDArray):  # dense or csr
        out = value
    elif _issparse(value):
        out = csr_matrix(value)
    else:
        try:
            out = array(value)
        except (TypeError, ValueError) as e:
            raise TypeError(
                f"NDArrayIter input {name!r} of type {type(value).__name__} is not an array "
                f"(expected NDArray, CSRNDArray, numpy or scipy.sparse): {e}"
            ) from None
    if out.ndim == 0:
        raise ShapeError(f"NDArrayIter input {name!r} is a scalar; it needs a first (batch) axis")
    return out


def _init_data(data, allow_empty: bool, default_name: str) -> list[tuple[str, BaseArray]]:
    """MXNet's canonical form: a sorted list of ``(name, array)``.

    A single array is named ``default_name``; a list of n > 1 arrays ``_0_<default_name>`` ...;
    a dict keeps its keys.
    """
    if data is None:
        if not allow_empty:
            raise ValueError("NDArrayIter needs data")
        return []
    if isinstance(data, (BaseArray, np.ndarray)) or _issparse(data):
        data = [data]
    if isinstance(data, (list, tuple)):
        if not data and not allow_empty:
            raise ValueError("NDArrayIter needs at least one data array")
        if len(data) == 1:
            data = OrderedDict([(default_name, data[0])])
        else:
            data = OrderedDict((f"_{i}_{default_name}", d) for i, d in enumerate(data))
    if not isinstance(data, dict):
        raise TypeError(
            "NDArrayIter data/label must be an array (NDArray, CSRNDArray, numpy, scipy.sparse), "
            f"a list of arrays or a dict of name -> array; got {type(data).__name__}"
        )
    if not data and not allow_empty:
        raise ValueError("NDArrayIter needs at least one data array")
    return sorted((str(k), _as_source(v, str(k))) for k, v in data.items())


class _Source:
    """One input (data or label) and its arrays for the current epoch."""

    __slots__ = ("name", "orig", "is_csr", "values", "indices", "indptr", "windows", "lo", "hi",
                 "row_shape", "ncols", "batch_shape", "_layout")

    def __init__(self, name: str, orig: BaseArray):
        self.name = name
        self.orig = orig
        self.is_csr = isinstance(orig, CSRNDArray)
        self.row_shape = tuple(orig.shape[1:])
        self.ncols = orig.shape[1] if self.is_csr else None
        self.batch_shape = None
        self._layout = None

    def arrange(self, order, start: int, n_windows: int, batch_size: int) -> None:
        """Lay the epoch out: rows in ``order`` (None: as stored), windows from ``start``. A CSR input's
        windows are made when the first batch is iterated (:meth:`window`): the compiled engine reads
        :meth:`NDArrayIter.epoch_rows` and the original arrays, so an epoch it runs copies nothing
        (500k rows at batch 1: ~10 ms an epoch; shuffled, the whole matrix)."""
        o = self.orig
        if not self.is_csr:
            self.values = o._data if order is None else o._data[order]
            return
        self.batch_shape = (int(batch_size), int(self.ncols))
        self._layout = (order, start, n_windows, batch_size)

    def _lay_out(self) -> None:
        order, start, n_windows, batch_size = self._layout
        self._layout = None
        o = self.orig
        if order is None:
            self.values, self.indices, self.indptr = o._data, o._indices, o._indptr
        else:
            self.values, self.indices, self.indptr = csr_take_rows(o._data, o._indices, o._indptr, order)
        firsts = start + batch_size * np.arange(n_windows, dtype=INDEX_DTYPE)
        self.lo = self.indptr[firsts]
        self.hi = self.indptr[firsts + batch_size]
        # row j: the rebased indptr of window j, so a batch needs no arithmetic
        self.windows = self.indptr[firsts[:, None] + np.arange(batch_size + 1, dtype=INDEX_DTYPE)] - self.lo[:, None]

    def window(self, j: int, pos: int, batch_size: int) -> BaseArray:
        if not self.is_csr:
            return NDArray(self.values[pos : pos + batch_size])
        if self._layout is not None:
            self._lay_out()
        lo, hi = self.lo.item(j), self.hi.item(j)
        return _csr_view(self.values[lo:hi], self.indices[lo:hi], self.windows[j], self.batch_shape)

    def gather(self, ids: np.ndarray) -> BaseArray:
        """Rows ``ids`` of the original array (used for the padded and carried-over batches)."""
        o = self.orig
        if not self.is_csr:
            return NDArray(o._data[ids])
        values, indices, indptr = csr_take_rows(o._data, o._indices, o._indptr, ids)
        return CSRNDArray(values, indices, indptr, (len(ids), self.ncols))


def _init_sample_weight(weight, rows: int):
    """``sample_weight`` as a float64 numpy array of ``rows`` values >= 0 (``None`` stays ``None``)."""
    if weight is None:
        return None
    w = np.array(weight.asnumpy() if isinstance(weight, BaseArray) else weight, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != rows:
        raise ShapeError(f"NDArrayIter: sample_weight has shape {w.shape}, expected ({rows},): one weight per sample")
    if not np.all(np.isfinite(w)) or np.any(w < 0):
        bad = int(np.flatnonzero(~np.isfinite(w) | (w < 0))[0])
        raise ValueError(f"NDArrayIter: sample_weight[{bad}] is {float(w[bad])!r}; weights must be finite and >= 0")
    return w


class NDArrayIter(DataIter):
    """Iterate over mini-batches of in-memory arrays, as MXNet's ``NDArrayIter``.

    Parameters
    ----------
    data, label : array, list of arrays, or dict of name -> array
        Each array is a dense ``NDArray``, numpy array, ``CSRNDArray`` or scipy sparse matrix
        (converted to ``CSRNDArray``); numpy input becomes float32 (as ``nd.array``). All arrays
        must have the same number of rows (the first axis). Names: a single array is called
        ``data_name`` / ``label_name``; a list of n > 1 arrays ``_0_<name>``, ``_1_<name>``...;
        a dict keeps its keys. Sources are ordered by name, as MXNet.
    batch_size : int > 0
    shuffle : bool
        Draw a new sample order from ``sparsetrain.random.generator()`` at every ``reset()``
        (the constructor resets once). Shuffling keeps one reordered copy of every source.
    last_batch_handle : 'pad' | 'discard' | 'roll_over'
        What to do with the last ``n % batch_size`` samples of an epoch:
        ``pad`` yields a full last batch completed with samples from the start of the epoch's
        order, and ``DataBatch.pad`` says how many rows are such padding (0 for other batches);
        ``discard`` drops them; ``roll_over`` keeps them and serves them at the start of the next
        epoch (after ``reset()``), completed by that epoch's first samples, so every sample is
        seen once per epoch across epoch boundaries. Unlike MXNet, the carried-over batch
        reports ``pad = 0``: none of its rows are duplicates. ``hard_reset()`` drops the carry.
    data_name, label_name : str
    sample_weight : 1-D array of floats >= 0, optional
        One importance weight per sample, served as each batch's ``DataBatch.sample_weight``
        (float64, in the batch's row order): ``Module`` scales each row's loss gradient and its
        share of the loss metrics by it. ``None``: every sample counts once.
    checked_csr : bool
        The caller vouches that every CSR input is canonical (column ids strictly increase within
        a row) with ids inside its shape, e.g. a parser's rows: the compiled engine then does not
        check them again (an O(nnz) scan at the first epoch).
    layout : str
        Accepted for compatibility; the batch axis must be the first ('N' first).

    Batches are ``DataBatch(data=[...], label=[...], pad=...)`` with arrays in the order of
    ``provide_data`` / ``provide_label``; dense batches are views of the iterator's arrays, CSR
    batches share their buffers. ``self.data`` / ``self.label`` are the ``(name, array)`` lists
    of the inputs as given (converted), never reordered; ``self.idx`` is the current epoch's
    sample order (``arange`` without shuffle).
    """

    def __init__(self, data, label=None, batch_size=1, shuffle=False, last_batch_handle="pad",
                 data_name="data", label_name="softmax_label", layout="NCHW", sample_weight=None, checked_csr=False):
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
            raise TypeError(f"NDArrayIter batch_size must be an integer, got {batch_size!r}")
        if batch_size <= 0:
            raise ValueError(f"NDArrayIter batch_size must be positive, got {batch_size}")
        if last_batch_handle not in _LAST_BATCH_MODES:
            raise ValueError(
                f"NDArrayIter last_batch_handle must be one of {', '.join(_LAST_BATCH_MODES)}; "
                f"got {last_batch_handle!r}"
            )
        if layout.find("N") != 0:
            raise ValueError(f"NDArrayIter supports layouts with the batch axis first ('N...'), got {layout!r}")
        super().__init__(int(batch_size))
        self.data = _init_data(data, allow_empty=False, default_name=data_name)
        self.label = _init_data(label, allow_empty=True, default_name=label_name)
        first_name, first = self.data[0]
        self.num_data = int(first.shape[0])
        for kind, items in (("data", self.data), ("label", self.label)):
            for name, arr in items:
                if arr.shape[0] != self.num_data:
                    raise ShapeError(
                        f"NDArrayIter: {kind} {name!r} has {arr.shape[0]} rows but data {first_name!r} "
                        f"has {self.num_data}; every data and label array needs one row per sample"
                    )
        self.shuffle = bool(shuffle)
        self.checked_csr = bool(checked_csr)
        self.last_batch_handle = last_batch_handle
        self.layout = layout
        self.sample_weight = _init_sample_weight(sample_weight, self.num_data)
        self._sources = [_Source(n, a) for n, a in self.data + self.label]
        if self.sample_weight is not None:
            self._sources.append(_Source("sample_weight", NDArray(self.sample_weight)))
        self._n_data = len(self.data)
        self._n_label_end = len(self.data) + len(self.label)
        self._carry = np.zeros(0, dtype=INDEX_DTYPE)
        self._current_batch = None
        self.reset()

    # -- descriptors --------------------------------------------------------------------------
    @property
    def provide_data(self) -> list[DataDesc]:
        """Name, batch shape and dtype of each data array."""
        return [DataDesc(n, (self.batch_size,) + tuple(a.shape[1:]), a.dtype, self.layout) for n, a in self.data]

    @property
    def provide_label(self) -> list[DataDesc]:
        """Name, batch shape and dtype of each label array."""
        return [DataDesc(n, (self.batch_size,) + tuple(a.shape[1:]), a.dtype, self.layout) for n, a in self.label]

    # -- epochs -------------------------------------------------------------------------------
    def hard_reset(self) -> None:
        """Start a fresh epoch, dropping samples carried over by ``roll_over``."""
        self._carry = np.zeros(0, dtype=INDEX_DTYPE)
        self.reset()

    def roll_over_state(self) -> dict | None:
        """The samples ``roll_over`` carries into the next epoch (JSON-able), or None.

        Saved with a checkpoint so that a resumed run starts its next epoch as an uninterrupted
        one would (:meth:`set_roll_over_state`)."""
        if self.last_batch_handle != "roll_over" or not len(self._carry):
            return None
        return {"rows": self._carry.tolist()}

    def set_roll_over_state(self, state: dict | None) -> None:
        """Restore :meth:`roll_over_state` before the next :meth:`reset`."""
        rows = np.asarray((state or {}).get("rows", []), dtype=INDEX_DTYPE)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.num_data):
            raise ValueError(f"roll_over state names rows outside [0, {self.num_data})")
        self._carry = rows

    def reset(self) -> None:
        """Start a new epoch (reshuffling when ``shuffle``).

        With ``roll_over``, samples left over by a completed epoch open this one. Calling
        ``reset()`` again before finishing the epoch lays it out anew with the same carry.
        """
        n, bs = self.num_data, self.batch_size
        order = self._rng_permutation(n) if self.shuffle else None
        ids = order if order is not None else np.arange(n, dtype=INDEX_DTYPE)
        first_ids = last_ids = None
        start, pad = 0, 0
        pending = np.zeros(0, dtype=INDEX_DTYPE)
        carry = self._carry if self.last_batch_handle == "roll_over" else pending
        if len(carry):
            need = bs - len(carry)
            if n >= need:
                first_ids = np.concatenate([carry, ids[:need]])
                start = need
            else:
                start = n
                pending = np.concatenate([carry, ids])
        n_windows = (n - start) // bs
        tail = start + n_windows * bs
        if tail < n:
            if self.last_batch_handle == "pad":
                pad = bs - (n - tail)
                last_ids = np.concatenate([ids[tail:], np.resize(ids, pad)])
            elif self.last_batch_handle == "roll_over":
                pending = ids[tail:].copy()
        for src in self._sources:
            src.arrange(order, start, n_windows, bs)
        self._start = start
        self._n_windows = n_windows
        self._first = self._make_batch(first_ids, 0) if first_ids is not None else None
        self._last = self._make_batch(last_ids, pad) if last_ids is not None else None
        self._num_batches = n_windows + (first_ids is not None) + (last_ids is not None)
        self._pending_carry = pending
        self._next_batch = 0
        self._current_batch = None
        self._layout = (first_ids, ids, start, n_windows, last_ids, pad)
        self.idx = ids  # MXNet's attribute: this epoch's sample order (row ids of the inputs)

    @staticmethod
    def _rng_permutation(n: int) -> np.ndarray:
        from ..random import generator

        return generator().permutation(n).astype(INDEX_DTYPE, copy=False)

    def _make_batch(self, ids: np.ndarray, pad: int) -> DataBatch:
        arrays = [src.gather(ids) for src in self._sources]
        return self._split(arrays, pad)

    def _split(self, arrays: list, pad: int) -> DataBatch:
        nd, nl = self._n_data, self._n_label_end
        weight = arrays[nl]._data if len(arrays) > nl else None
        return _batch(arrays[:nd], arrays[nd:nl], pad, weight)

    # -- iteration ----------------------------------------------------------------------------
    def next(self) -> DataBatch:
        b = self._next_batch
        if b >= self._num_batches:
            if b == self._num_batches:
                # the epoch is complete: what did not fit is owed to the next one
                self._carry = self._pending_carry
                self._next_batch = b + 1
            raise StopIteration
        self._next_batch = b + 1
        if b == 0 and self._first is not None:
            batch = self._first
        elif b == self._num_batches - 1 and self._last is not None:
            batch = self._last
        else:
            j = b - (self._first is not None)
            bs = self.batch_size
            pos = self._start + j * bs
            arrays = [src.window(j, pos, bs) for src in self._sources]
            batch = self._split(arrays, 0)
        self._current_batch = batch
        return batch

    def epoch_rows(self):
        """This epoch as ``(order, batch_ptr, pad)`` over the rows of the original arrays, consumed.

        ``order[batch_ptr[b]:batch_ptr[b+1]]`` are the rows of batch ``b``, exactly the batches
        iteration would yield (``pad`` rows of padding in the last one). The epoch then counts as
        iterated, so ``roll_over`` carries the same samples as a full pass would. Used by the
        compiled engine, which runs whole epochs in one kernel.
        """
        first_ids, ids, start, n_windows, last_ids, pad = self._layout
        parts = [] if first_ids is None else [first_ids]
        parts.append(ids[start : start + n_windows * self.batch_size])
        if last_ids is not None:
            parts.append(last_ids)
        order = np.ascontiguousarray(np.concatenate(parts), dtype=INDEX_DTYPE)
        batch_ptr = np.arange(self._num_batches + 1, dtype=INDEX_DTYPE) * self.batch_size
        self._next_batch = self._num_batches
        self._current_batch = None
        try:
            self.next()
        except StopIteration:
            pass
        return order, batch_ptr, (pad if last_ids is not None else 0)
