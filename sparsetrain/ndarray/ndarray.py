"""The three storage types: dense ``NDArray``, ``CSRNDArray`` and ``RowSparseNDArray``.

Each wraps numpy buffers (``_data``, plus ``_indices``/``_indptr`` for the sparse ones) and keeps
object identity across ``x[:] = y`` so that an executor holding an array sees new values.
Arithmetic goes through the operator registry (``sparsetrain.ops``), like the ``nd.*`` functions.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..base import Context, ShapeError, StorageTypeError, cpu

DEFAULT_DTYPE = np.float32
INDEX_DTYPE = np.int64


def _shape_str(shape) -> str:
    return "x".join(str(s) for s in shape)


def _as_index(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=INDEX_DTYPE)


class BaseArray:
    """What the three storage types share: shape/dtype accessors, conversions, operators."""

    __slots__ = ()
    stype = "default"

    # -- description -------------------------------------------------------------------
    @property
    def context(self):
        """The context given at creation (``ctx=``, ``copyto(ctx)``); computation is on the CPU."""
        return getattr(self, "_ctx", None) or cpu()

    ctx = context
    _num_aux = 0  # MXNet's count of auxiliary buffers (csr: indptr and indices; row_sparse: indices)

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.shape[0]

    # -- conversions ---------------------------------------------------------------------
    def tostype(self, stype: str):
        return cast_storage(self, stype)

    def as_in_context(self, ctx):
        return self if ctx == self.context else placed(self.copy(), ctx)

    def copyto(self, other):
        if isinstance(other, BaseArray):
            other[:] = self
            return other
        return placed(self.copy(), other)

    def astype(self, dtype, copy=True):
        """This array in ``dtype``: a new array, or this one when ``copy=False`` and the dtype is already ``dtype``."""
        if not copy and np.dtype(dtype) == self.dtype:
            return self
        return placed(self._astype(np.dtype(dtype)), getattr(self, "_ctx", None))

    def asscalar(self):
        if self.size != 1:
            raise ShapeError(f"asscalar needs an array of size 1, got shape {self.shape}")
        return self.asnumpy().reshape(-1)[0]

    def wait_to_read(self):
        return None

    def __array__(self, dtype=None, copy=None):
        """numpy interop (``np.asarray(x)``, ``np.all(csr)``): the dense values."""
        out = self.asnumpy()
        return out if dtype is None else out.astype(dtype, copy=False)

    # -- arithmetic and comparisons through the operator registry (see ``apply_binary``) --
    def __add__(self, o):
        return apply_binary(self, o, "add")

    def __radd__(self, o):
        return apply_binary(o, self, "add")

    def __sub__(self, o):
        return apply_binary(self, o, "sub")

    def __rsub__(self, o):
        return apply_binary(o, self, "sub")

    def __mul__(self, o):
        return apply_binary(self, o, "mul")

    def __rmul__(self, o):
        return apply_binary(o, self, "mul")

    def __truediv__(self, o):
        return apply_binary(self, o, "div")

    def __rtruediv__(self, o):
        return apply_binary(o, self, "div")

    def __pow__(self, o):
        return apply_binary(self, o, "pow")

    def __rpow__(self, o):
        return apply_binary(o, self, "pow")

    def __eq__(self, o):
        return apply_binary(self, o, "eq")

    def __ne__(self, o):
        return apply_binary(self, o, "ne")

    def __gt__(self, o):
        return apply_binary(self, o, "gt")

    def __ge__(self, o):
        return apply_binary(self, o, "ge")

    def __lt__(self, o):
        return apply_binary(self, o, "lt")

    def __le__(self, o):
        return apply_binary(self, o, "le")

    def __neg__(self):
        from ..ops.imperative import invoke

        return invoke("negative", [self], {})[0]

    def __iadd__(self, o):
        self[:] = self + o
        return self

    def __isub__(self, o):
        self[:] = self - o
        return self

    def __imul__(self, o):
        self[:] = self * o
        return self

    def __itruediv__(self, o):
        self[:] = self / o
        return self

    __hash__ = object.__hash__

    def __bool__(self):
        if self.size != 1:
            raise ValueError("the truth value of an array with more than one element is ambiguous")
        return bool(self.asscalar())

    # -- shared assignment ------------------------------------------------------------
    def reshape(self, *shape, **kwargs):
        raise StorageTypeError(
            f"reshape is not supported for {self.stype} arrays (as in MXNet); use .tostype('default') first"
        )

    def _check_full_slice(self, key, what="assignment to the whole array (x[:] = y)"):
        if not (isinstance(key, slice) and key == slice(None)):
            raise IndexError(f"{type(self).__name__} only supports {what}")

    def _value_as(self, value, stype):
        """``value`` (array of any stype, numpy, or scalar) converted to this array's shape and ``stype``."""
        if isinstance(value, numbers.Number):
            return cast_storage(NDArray(np.full(self.shape, value, dtype=self.dtype)), stype)
        if not isinstance(value, BaseArray):
            value = np.asarray(value, dtype=self.dtype)
            if value.shape != self.shape:
                raise ShapeError(
                    f"cannot assign an array of shape {value.shape} to an array of shape {self.shape}"
                )
            return cast_storage(NDArray(value), stype)
        if value.shape != self.shape:
            raise ShapeError(
                f"cannot assign an array of shape {value.shape} to an array of shape {self.shape}"
            )
        return cast_storage(value, stype)


class NDArray(BaseArray):
    """A dense array (storage type ``default``)."""

    __slots__ = ("_data", "_ctx", "__weakref__")
    stype = "default"

    def __init__(self, data: np.ndarray):
        self._data = data

    @property
    def shape(self):
        return self._data.shape

    @property
    def handle(self):
        return self._data

    def asnumpy(self) -> np.ndarray:
        return np.array(self._data)

    def copy(self):
        return NDArray(self._data.copy())

    def _astype(self, dtype):
        return NDArray(self._data.astype(dtype))

    def reshape(self, *shape, **kwargs):
        """A reshaped view; as in MXNet, ``0`` copies the input's dimension and ``-1`` is inferred."""
        one = len(shape) == 1 and not isinstance(shape[0], numbers.Integral)  # reshape((2, 3)), not reshape(2, 3)
        shape = kwargs.get("shape", shape[0] if one else shape)
        shape = _shape_tuple(shape) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)
        target = tuple(self.shape[i] if d == 0 and i < self.ndim else d for i, d in enumerate(shape))
        try:
            return NDArray(self._data.reshape(target))
        except ValueError:
            raise ShapeError(f"cannot reshape an array of shape {self.shape} to {shape}") from None

    @property
    def T(self):
        return NDArray(self._data.T)

    def __getitem__(self, key):
        if isinstance(key, BaseArray):
            key = key.asnumpy().astype(np.int64)
        out = self._data[key]
        return NDArray(out) if isinstance(out, np.ndarray) else NDArray(np.asarray(out, dtype=self.dtype))

    def __setitem__(self, key, value):
        if isinstance(key, slice) and key == slice(None):
            if isinstance(value, NDArray) and value.stype == "default":
                if value.shape != self.shape:
                    raise ShapeError(
                        f"cannot assign an array of shape {value.shape} to an array of shape {self.shape}"
                    )
                self._data[...] = value._data
            elif isinstance(value, numbers.Number):
                self._data[...] = value
            else:
                self._data[...] = self._value_as(value, "default")._data
            return
        if isinstance(value, BaseArray):
            value = value.asnumpy()
        self._data[key] = value

    def __repr__(self) -> str:
        return f"\n{self._data}\n<NDArray {_shape_str(self.shape)} @{self.context}>"

    def __iter__(self):
        for i in range(self.shape[0]):
            yield self[i]

    def __float__(self):
        return float(self.asscalar())


class BaseSparseNDArray(NDArray):
    """What the sparse storage types share; as in MXNet they are ``NDArray`` subclasses.

    Dense-only operations (``reshape``, element indexing) raise; ``check_format`` validates the
    buffers (MXNet's ``MXNDArraySyncCheckFormat``).
    """

    __slots__ = ()

    reshape = BaseArray.reshape

    # every sparse stype has ``_shape`` and ``_indices`` (csr: column ids, a slot; row_sparse: row ids, a property)
    @property
    def shape(self):
        return self._shape

    @property
    def data(self) -> NDArray:
        return NDArray(self._data)

    @property
    def indices(self) -> NDArray:
        return NDArray(self._indices)

    @property
    def handle(self):
        return self

    def __float__(self):
        return float(self.asscalar())

    def check_format(self, full_check=True):
        """Raise ``SparseFormatError`` when the buffers do not describe a valid array of ``shape``.

        ``full_check=False`` checks only the buffer sizes (O(1)); ``True`` also checks the index
        values (sorted, unique, in range; O(nnz)).
        """
        problem = self._format_problem(bool(full_check))
        if problem:
            raise SparseFormatError(f"invalid {self.stype} array of shape {self.shape}: {problem}")

    def __repr__(self) -> str:
        return f"\n<{type(self).__name__} {_shape_str(self.shape)} @{self.context}>"


class SparseFormatError(ShapeError):
    """A sparse array whose buffers are inconsistent (``check_format``)."""


class CSRNDArray(BaseSparseNDArray):
    """A 2-D compressed-sparse-row array (storage type ``csr``), compatible with scipy's layout."""

    __slots__ = ("_indices", "_indptr", "_shape")
    _num_aux = 2
    stype = "csr"

    def __init__(self, data, indices, indptr, shape):
        self._data = data
        self._indices = indices
        self._indptr = indptr
        self._shape = tuple(int(s) for s in shape)

    @property
    def indptr(self) -> NDArray:
        return NDArray(self._indptr)

    @property
    def nnz(self) -> int:
        return int(self._indptr[-1])

    def asscipy(self):
        import scipy.sparse as sp

        return sp.csr_matrix((self._data, self._indices, self._indptr), shape=self._shape)

    def asnumpy(self) -> np.ndarray:
        out = np.zeros(self._shape, dtype=self.dtype)
        rows = np.repeat(np.arange(self._shape[0]), np.diff(self._indptr))
        np.add.at(out, (rows, self._indices), self._data)
        return out

    def copy(self):
        return CSRNDArray(self._data.copy(), self._indices.copy(), self._indptr.copy(), self._shape)

    def _astype(self, dtype):
        return CSRNDArray(self._data.astype(dtype), self._indices.copy(), self._indptr.copy(), self._shape)

    def __getitem__(self, key):
        """Rows: ``x[i]`` (a 1-row CSRNDArray, ``-n <= i < n``) or ``x[a:b]`` (continuous, clipped)."""
        n = self._shape[0]
        if isinstance(key, (int, np.integer)):
            i = int(key) + n if key < 0 else int(key)
            if not 0 <= i < n:
                raise IndexError(f"row {key} is out of range for a CSRNDArray with {n} rows")
            key = slice(i, i + 1)
        elif isinstance(key, tuple):
            raise ValueError("multi-dimensional indexing is not supported for CSRNDArray")
        elif not isinstance(key, slice):
            raise ValueError(f"CSRNDArray supports x[i] and x[a:b] only, got {key!r}")
        if key.step is not None:
            raise ValueError("CSRNDArray only supports continuous slicing on axis 0")
        start, stop, _ = key.indices(n)
        stop = max(stop, start)
        lo, hi = self._indptr[start], self._indptr[stop]
        return CSRNDArray(
            self._data[lo:hi], self._indices[lo:hi], self._indptr[start : stop + 1] - lo,
            (stop - start, self._shape[1]),
        )

    def __iter__(self):
        for i in range(self._shape[0]):
            yield self[i]

    @property
    def T(self):
        """The transpose, as a CSRNDArray."""
        m = self.asscipy().T.tocsr()
        m.sort_indices()
        return CSRNDArray(m.data.astype(self.dtype, copy=False), _as_index(m.indices), _as_index(m.indptr), m.shape)

    def _format_problem(self, full: bool) -> str:
        rows, cols = self._shape
        indptr, indices = self._indptr, self._indices
        if self._data.ndim != 1 or indices.ndim != 1 or indptr.ndim != 1:
            return "data, indices and indptr must be 1-D"
        if len(indptr) != rows + 1:
            return f"indptr has {len(indptr)} entries, expected {rows + 1}"
        if len(indices) != len(self._data):
            return f"{len(indices)} indices for {len(self._data)} values"
        if not full:
            return ""
        if indptr[0] != 0 or indptr[-1] != len(indices) or np.any(np.diff(indptr) < 0):
            return "indptr must start at 0, be non-decreasing and end at nnz"
        if len(indices) and (indices.min() < 0 or indices.max() >= cols):
            return f"column indices must be in [0, {cols})"
        starts = np.zeros(len(indices), dtype=bool)
        starts[indptr[:-1][np.diff(indptr) > 0]] = True
        if len(indices) > 1 and np.any((np.diff(indices) <= 0) & ~starts[1:]):
            return "column indices must be sorted and unique within each row"
        return ""

    def __setitem__(self, key, value):
        self._check_full_slice(key)
        src = value if isinstance(value, CSRNDArray) else self._value_as(value, "csr")
        if src.shape != self.shape:
            raise ShapeError(f"cannot assign an array of shape {src.shape} to an array of shape {self.shape}")
        self._data = src._data.astype(self.dtype, copy=True)
        self._indices = src._indices.copy()
        self._indptr = src._indptr.copy()



class RowSparseNDArray(BaseSparseNDArray):
    """Rows ``indices`` (sorted, unique, int64) of an array; ``data`` has shape ``(len(indices),) + shape[1:]``.

    An array holding every row (``indices=None``: a weight after initialisation) keeps no row ids:
    ``_indices`` makes ``0 .. rows - 1`` on first use (8 MB for 2^20 rows, which the compiled engine
    never reads) and keeps them; :attr:`_every_row` answers without making them.
    """

    __slots__ = ("_ids", "_shape")
    _num_aux = 1
    stype = "row_sparse"

    def __init__(self, data, indices, shape):
        self._data = data
        self._ids = indices
        self._shape = tuple(int(s) for s in shape)

    @property
    def _indices(self) -> np.ndarray:
        if self._ids is None:
            self._ids = np.arange(self._shape[0], dtype=INDEX_DTYPE)
        return self._ids

    @_indices.setter
    def _indices(self, ids) -> None:
        """Set the row ids; ``None`` means every row (``data`` must then have ``shape[0]`` rows)."""
        self._ids = ids

    @property
    def _every_row(self) -> bool:
        """Whether every row is present (the ids, sorted and unique, are ``0 .. rows - 1``)."""
        ids, rows = self._ids, self._shape[0]
        return ids is None or (len(ids) == rows and (rows == 0 or (ids[0] == 0 and ids[-1] == rows - 1)))

    def _ids_copy(self):
        return None if self._ids is None else self._ids.copy()

    def asnumpy(self) -> np.ndarray:
        if self._ids is None:
            return self._data.copy()
        out = np.zeros(self._shape, dtype=self.dtype)
        out[self._ids] = self._data
        return out

    def copy(self):
        return RowSparseNDArray(self._data.copy(), self._ids_copy(), self._shape)

    def _astype(self, dtype):
        return RowSparseNDArray(self._data.astype(dtype), self._ids_copy(), self._shape)

    def retain(self, indices):
        """The rows of ``indices`` that are present, as a new row-sparse array."""
        idx = _as_index(indices.asnumpy() if isinstance(indices, BaseArray) else indices)
        keep = np.isin(self._indices, idx)
        return RowSparseNDArray(self._data[keep], self._indices[keep], self._shape)

    def __setitem__(self, key, value):
        self._check_full_slice(key)
        src = value if isinstance(value, RowSparseNDArray) else self._value_as(value, "row_sparse")
        if src.shape != self.shape:
            raise ShapeError(f"cannot assign an array of shape {src.shape} to an array of shape {self.shape}")
        self._data = src._data.astype(self.dtype, copy=True)
        self._ids = src._ids_copy()

    def __getitem__(self, key):
        self._check_full_slice(key, "the whole array x[:] as an index")
        return self

    def __iter__(self):
        raise TypeError("RowSparseNDArray is not iterable (as in MXNet); use .tostype('default')")

    @property
    def T(self):
        return NDArray(self.asnumpy().T)

    def _format_problem(self, full: bool) -> str:
        if self._ids is None:
            if self._data.shape != self._shape:
                return f"data of shape {self._data.shape} does not fit every row of shape {self._shape}"
            return ""
        if self._indices.ndim != 1 or self._data.shape != (len(self._indices),) + self._shape[1:]:
            return f"data of shape {self._data.shape} does not fit {len(self._indices)} indices and shape {self._shape}"
        if not full or not len(self._indices):
            return ""
        if self._indices[0] < 0 or self._indices[-1] >= self._shape[0]:
            return f"row indices must be in [0, {self._shape[0]})"
        if np.any(np.diff(self._indices) <= 0):
            return "row indices must be sorted and unique"
        return ""


# -- what the classes and the constructors (creation.py) share --------------------------------

def placed(arr, ctx):
    """``arr``, recorded as created on ``ctx`` (MXNet's ``.context``); ``None`` keeps the default."""
    if ctx is not None:
        if not isinstance(ctx, Context):
            raise TypeError(f"ctx must be a Context such as mx.cpu(), got {ctx!r}")
        arr._ctx = ctx
    return arr


def _shape_tuple(shape):
    return (int(shape),) if isinstance(shape, numbers.Integral) else tuple(int(s) for s in shape)


from .arith import apply_binary  # noqa: E402  (the operators above call it; it needs the constructors)
from .storage import cast_storage  # noqa: E402  (tostype() calls it; it needs the classes)
