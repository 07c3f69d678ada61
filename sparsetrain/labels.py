"""Label conventions: what a model's label values mean, decided in this one place.

* **binary** models (``LogisticRegressionOutput``) take a label column with two values and map
  the larger one to 1 and the smaller one to 0 (scikit-learn's ``LabelBinarizer`` rule), so
  ``{0, 1}``, ``{-1, +1}`` and ``{1, 2}`` all train the same model. The two values come from
  ``data.label_values`` or, when it is not given, from the training data (the first two distinct
  values in file order; the run's ``config.yaml`` records them, so ``predict``/``evaluate`` and the
  eval set use the same mapping). A third value is a ``DataFormatError`` naming file:line. A
  training set holding a single value is read with the usual pair it belongs to (0 or 1: ``{0, 1}``;
  -1: ``{-1, +1}``).
* **multiclass** models (``SoftmaxOutput`` with class-id labels) take class ids ``0..K-1``, or
  ``1..K`` with ``data.label_base: 1``; anything else (out of range, not an integer) is an error
  naming file:line.
* **regression** models take any number.

The metrics' label domains (``log_loss``: 0/1; ``accuracy``: 0/1 for a binary prediction,
class ids ``0..K-1`` for K columns) are checked by :func:`binary_domain_error` and
:func:`class_domain_error`, which the metrics and the compiled engine call.

Readers report where a bad row is through a *locator*: ``locate(row) -> "file:line"`` for a row
index counted from the start of the file; :func:`libsvm_locator` counts LibSVM data rows
(comment and blank lines are skipped, as the parser does) and only reads the file when an error
is reported.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .base import ConfigError, DataFormatError

#: The task of each loss operator: which label convention it reads.
TASKS = {"LogisticRegressionOutput": "binary", "SoftmaxOutput": "multiclass",
         "LinearRegressionOutput": "regression", "MAERegressionOutput": "regression"}

#: The pairs a single observed value is read with (the usual binary conventions).
_SINGLE_VALUE_PAIRS = {0.0: (0.0, 1.0), 1.0: (0.0, 1.0), -1.0: (-1.0, 1.0)}

Locator = Callable[[int], str]


def task_of(loss_op: str) -> str:
    """``binary``, ``multiclass`` or ``regression``: the label convention of a loss operator."""
    name = loss_op[len("sparse."):] if loss_op.startswith("sparse.") else loss_op
    return TASKS.get(name, "regression")


def libsvm_locator(path: str, max_line_bytes: int | None = None) -> Locator:
    """``row -> "path:line"`` for the ``row``-th data row (0-based) of a LibSVM file."""

    def locate(row: int) -> str:
        from .io.chunks import DEFAULT_MAX_LINE_BYTES, ChunkSource

        line = ChunkSource(path, max_line_bytes=max_line_bytes or DEFAULT_MAX_LINE_BYTES).line_of_row(row)
        return f"{path} (row {row + 1})" if line is None else f"{path}:{line}"

    return locate


def _fmt(v) -> str:
    v = float(v)
    return str(int(v)) if v.is_integer() else repr(v)


def _first_row(bad: np.ndarray) -> int:
    """The row of the first True entry of a (rows,) or (rows, k) mask."""
    return int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0])


@dataclass(frozen=True)
class LabelMap:
    """How label values read from files become the values a model trains on.

    ``task``: ``binary``, ``multiclass`` or ``regression``; ``values``: for ``binary``, the file
    values that become 0 and 1; ``base``: the first class id of a ``multiclass`` file; ``classes``:
    its number of classes K (``None``: not checked).
    """

    task: str
    values: tuple[float, float] | None = None
    base: int = 0
    classes: int | None = None

    def apply(self, y: np.ndarray, locate: Locator, first_row: int = 0) -> np.ndarray:
        """``y`` mapped to the model's labels; ``y[i]`` is row ``first_row + i`` of the file ``locate``
        names. A value outside the mapping raises ``DataFormatError`` naming its file:line."""
        if self.task == "binary":
            if self.values is None:
                raise ValueError("LabelMap.apply: a binary map needs its two values (see binary_values)")
            neg, pos = self.values
            is_pos = y == pos
            bad = ~(is_pos | (y == neg))
            if bad.any():
                r = _first_row(bad)
                value = y.reshape(y.shape[0], -1)[r][bad.reshape(bad.shape[0], -1)[r]][0]
                raise DataFormatError(f"{locate(first_row + r)}: label {_fmt(value)} is a third value; this binary "
                                      f"model's labels are {_fmt(neg)} (→ 0) and {_fmt(pos)} (→ 1)")
            if neg == 0.0 and pos == 1.0:
                return y
            return is_pos.astype(y.dtype)
        if self.task == "multiclass":
            if y.ndim == 2 and y.shape[1] > 1:  # a probability per class (SoftmaxOutput's other label form)
                return y
            ids = y - self.base if self.base else y
            bad = ids != np.floor(ids)
            bad |= ids < 0
            if self.classes is not None:
                bad |= ids >= self.classes
            if bad.any():
                r = _first_row(bad)
                value = y.reshape(y.shape[0], -1)[r][bad.reshape(bad.shape[0], -1)[r]][0]
                top = f"{self.base + self.classes - 1}" if self.classes is not None else "K"
                hint = "" if self.base else "; for labels 1..K set data.label_base: 1"
                raise DataFormatError(f"{locate(first_row + r)}: label {_fmt(value)} is not a class id "
                                      f"{self.base}..{top}{hint}")
            return ids
        return y

    def note(self) -> str | None:
        """The run-log line that says how labels are mapped (``None`` when they are used as they are)."""
        if self.task == "binary" and self.values is not None and self.values != (0.0, 1.0):
            neg, pos = self.values
            return (f"labels: {_fmt(pos)} → 1, {_fmt(neg)} → 0 (a binary model maps the larger of its two label "
                    "values to 1; set data.label_values to choose)")
        if self.task == "multiclass" and self.base:
            return f"labels: class ids {self.base}..{self.base + (self.classes or 0) - 1} → 0..{(self.classes or 1) - 1}"
        return None


class BinaryValues:
    """Finds the two label values of binary training data, chunk by chunk (stops needing more once
    two are seen: the mapping is then fixed and a third value is caught by :meth:`LabelMap.apply`)."""

    def __init__(self):
        self.seen: list[float] = []

    @property
    def done(self) -> bool:
        return len(self.seen) >= 2

    def add(self, y: np.ndarray) -> None:
        if self.done or y.size == 0:
            return
        flat = y.ravel()
        values, first = np.unique(flat, return_index=True)
        for v in values[np.argsort(first)]:
            v = float(v)
            if v not in self.seen:
                self.seen.append(v)
                if self.done:
                    return

    def values(self, where: str) -> tuple[float, float]:
        """``(value → 0, value → 1)``; ``where`` names the data in the error for data without labels."""
        if len(self.seen) >= 2:
            lo, hi = sorted(self.seen[:2])
            return lo, hi
        if self.seen and self.seen[0] in _SINGLE_VALUE_PAIRS:
            return _SINGLE_VALUE_PAIRS[self.seen[0]]
        if self.seen:
            raise DataFormatError(f"{where}: every label is {_fmt(self.seen[0])}; a binary model needs two label "
                                  "values (or set data.label_values: [negative, positive])")
        raise DataFormatError(f"{where}: no labels to learn from")


def label_map(task: str, values=None, base: int = 0, classes: int | None = None) -> LabelMap:
    """A :class:`LabelMap` (``values``: a binary model's ``[value → 0, value → 1]``, e.g. from
    ``data.label_values``)."""
    if task == "binary" and values is not None:
        neg, pos = (float(v) for v in values)
        if neg == pos:
            raise ConfigError(f"data.label_values: the two values must differ, got {list(values)}")
        return LabelMap(task, (neg, pos))
    return LabelMap(task, None, int(base), classes)


# -- the metrics' label domains ------------------------------------------------------------------------------

def binary_domain_error(metric: str, labels: np.ndarray) -> str | None:
    """Why ``labels`` are not 0/1 labels for ``metric`` (``None`` when they are)."""
    lab = np.asarray(labels)
    bad = (lab != 0) & (lab != 1)
    if bad.any():
        return (f"{metric} needs labels 0 or 1, got {_fmt(lab[bad].ravel()[0])} (map -1/+1 or other two-valued "
                "labels to 0/1 first; sparsetrain fit does it)")
    return None


def class_domain_error(metric: str, labels: np.ndarray, classes: int) -> str | None:
    """Why ``labels`` are not class ids ``0..classes-1`` for ``metric`` (``None`` when they are)."""
    lab = np.asarray(labels)
    bad = (lab < 0) | (lab >= classes) | (lab != np.floor(lab))
    if bad.any():
        return f"{metric} needs class ids 0..{classes - 1}, got {_fmt(lab[bad].ravel()[0])}"
    return None
