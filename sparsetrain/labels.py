"""Label conventions: what a model's label values mean, decided in this one place.

* **binary** models (``LogisticRegressionOutput``) take a label column with two values and map
  the larger one to 1 and the smaller one to 0 (scikit-learn's ``LabelBinarizer`` rule), so
  ``{0, 1}``, ``{-1, +1}`` and ``{1, 2}`` all train the same model. The two values come from
  ``data.label_values`` or, when it is not given, from the training data (the first two distinct
  values in file order; the run's ``config.yaml`` records them, so ``predict``/``evaluate`` and the
  eval set use the same mapping). A third value is a ``DataFormatError`` naming file:line. A
  training set holding a single value is read with the usual pair it belongs to (0 or 1: ``{0, 1}``;
  -1: ``{-1, +1}``).
* **text labels** (CSV/TSV only): a label field that does not read as a number is text (unquoted,
  stripped of spaces and tabs), e.g. ``yes``/``no``, ``click``/``noclick``, ``>50K``/``<=50K``; a
  binary model takes two such values as it takes two numbers. A label value is a number when it
  reads as one and text otherwise, so a pair may mix them (``[0, "yes"]``: the number 0 and the
  text ``yes``; ``1`` in the file then matches the number 1, never a text). Which value is
  positive, when ``data.label_values`` does not say: of two numbers the larger; otherwise the one
  named like a positive class (:data:`POSITIVE_NAMES`: yes, true, 1, pos, positive, click, ...,
  case ignored) when exactly one is, else the later in sorted text order (``>50K`` after
  ``<=50K``, ``spam`` after ``ham``). The CSV reader maps text pairs to 0/1 itself
  (:class:`TextLabels`) so every later stage (memory, disk cache, stream) sees numbers; a text
  label for a regression or softmax model is an error naming file:line.
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

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .base import ConfigError, DataFormatError, quoted

#: The task of each loss operator: which label convention it reads.
TASKS = {"LogisticRegressionOutput": "binary", "SoftmaxOutput": "multiclass",
         "LinearRegressionOutput": "regression", "MAERegressionOutput": "regression"}

#: Text label values read as the positive class (lower-cased) when the other value is not one of them.
POSITIVE_NAMES = frozenset({"1", "+1", "yes", "y", "true", "t", "pos", "positive", "click", "clicked", "clicks",
                            "buy", "bought", "converted", "success", "spam", "fraud"})

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
    """A label value in its shortest form: a float32 one as the float32 it is (`44.693577`, not the
    float64 digits `44.69357681274414` of the same number)."""
    if isinstance(v, str):
        return v
    v = float(v)
    if v.is_integer():
        return str(int(v))
    single = np.float32(v)
    return str(single) if float(single) == v else repr(v)


def label_value(v) -> float | str:
    """A label value as the readers compare it: a number when it reads as a finite one, else its text
    (stripped). ``True``/``False`` are refused by the schema before this."""
    if isinstance(v, str):
        text = v.strip(" \t")
        try:
            x = float(text)
        except ValueError:
            return text
        return x if np.isfinite(x) else text
    return float(v)


def binary_pair(a, b) -> tuple:
    """``(negative, positive)`` of two distinct label values seen in the data (see the module docstring)."""
    if not isinstance(a, str) and not isinstance(b, str):
        return (a, b) if a < b else (b, a)
    named = [v for v in (a, b) if _fmt(v).lower() in POSITIVE_NAMES]
    if len(named) == 1:
        pos = named[0]
        return (b if pos is a else a), pos
    lo, hi = sorted((a, b), key=_fmt)
    return lo, hi


def third_value(value, values) -> str:
    """The message for a label outside a binary model's two values."""
    neg, pos = values
    shown = quoted(value) if isinstance(value, str) else _fmt(value)
    return f"label {shown} is a third value; this binary model's labels are {_fmt(neg)} (→ 0) and {_fmt(pos)} (→ 1)"


def shown_labels(y: np.ndarray, names: dict) -> np.ndarray:
    """Labels as a table shows them: ``y`` itself, or with text labels (NaN, see :class:`TextLabels`;
    ``names``: hash -> text) strings, numbers in their shortest form; a row without a label (another
    NaN: a Vowpal Wabbit line ``|a x`` that ``predict`` scores) an empty string."""
    flat = np.asarray(y, np.float64).reshape(len(y), -1)[:, 0]
    if not np.isnan(flat).any():
        return y
    text, hashes = text_labels_of(flat)
    return np.array([names.get(int(h), "?") if t else "" if v != v else _fmt(v)
                     for v, t, h in zip(flat.tolist(), text, hashes)])


#: The bits of a text label in the float64 labels the CSV reader yields before mapping them (a quiet NaN;
#: the low 32 bits, :data:`_HASH_BITS`, hold the text's MurmurHash3), see :class:`TextLabels`. The CSV
#: kernel (``io/_csv_kernels.py``) writes them; the readers and this module read them.
TEXT_LABEL = np.uint64(0x7FF8_0001_0000_0000)
_HASH_BITS = np.uint64(0xFFFFFFFF)


def text_labels_of(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(is_text, hashes)`` of float64 labels ``y`` (flattened): which are text labels (the CSV reader's
    ``TEXT_LABEL | hash`` NaNs, see :class:`TextLabels`; another NaN, a row without a label, is none) and
    each one's hash (the key of a reader's ``label_names``)."""
    flat = np.asarray(y, np.float64).ravel()
    text = np.isnan(flat)
    if not text.any():
        return text, np.zeros(flat.shape, np.uint64)
    bits = flat.view(np.uint64)
    text &= (bits & ~_HASH_BITS) == TEXT_LABEL
    return text, bits & _HASH_BITS


def text_label_bits(text: str) -> np.uint64:
    """The bits of the text label ``text`` in the CSV reader's float64 labels (:data:`TEXT_LABEL`)."""
    from .io.hashing import murmurhash3_32

    return TEXT_LABEL | np.uint64(murmurhash3_32(text))


@dataclass(frozen=True)
class TextLabels:
    """What the CSV reader does with labels that are text (see the module docstring).

    ``task``: the model's (``binary``, ``multiclass``, ``regression``), ``None`` (text is an error:
    labels read as numbers) or ``"any"`` (kept as they are: rows scored without their labels);
    ``values``: a binary model's ``(negative, positive)`` (:func:`label_value` s), ``None`` while the
    training data is read to find them (text labels are kept, named by the reader in ``names``).
    """

    task: str | None = None
    values: tuple | None = None
    names: dict | None = field(default=None, compare=False)  # where a reader records hash -> text (None: its own)

    @property
    def maps(self) -> bool:
        """The reader maps every label to 0/1 (a binary pair with a text value)."""
        return self.task == "binary" and self.values is not None and any(isinstance(v, str) for v in self.values)

    def why_not_text(self) -> str:
        if self.task == "regression":
            return "a regression label must be a number"
        if self.task == "multiclass":
            return "a softmax model's label must be a class id 0..K-1"
        return "labels are read as numbers: map string labels to numbers first, e.g. 0 and 1"

    def apply(self, y: np.ndarray) -> np.ndarray:
        """0/1 for each label of ``y`` (float64, text labels as ``TEXT_LABEL | hash``), -1 for a third value
        (a text value matches its bits, a NaN; a number value never matches a NaN)."""
        out = np.full(y.shape, -1.0)
        bits = y.view(np.uint64)
        for code, v in enumerate(self.values):
            out[bits == text_label_bits(v) if isinstance(v, str) else y == v] = code
        return out


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
    shown: tuple | None = None  # a text pair's values (the reader mapped them to 0/1): for the run log

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
                raise DataFormatError(f"{locate(first_row + r)}: {third_value(value, self.values)}")
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
                # (K itself, of labels 1..K; not a fraction, a negative or a larger number)
                hint = "; for labels 1..K set data.label_base: 1" if not self.base and value == self.classes else ""
                raise DataFormatError(f"{locate(first_row + r)}: label {_fmt(value)} is not a class id "
                                      f"{self.base}..{top}{hint}")
            return ids
        return y

    def note(self) -> str | None:
        """The run-log line that says how labels are mapped (``None`` when they are used as they are)."""
        if self.task == "binary" and self.shown is not None:
            neg, pos = self.shown
            return (f"labels: {_fmt(pos)} → 1, {_fmt(neg)} → 0 (text labels: a positive name such as yes, true "
                    "or click → 1, else the later in sorted order; set data.label_values: [negative, positive] "
                    "to choose)")
        if self.task == "binary" and self.values is not None and self.values != (0.0, 1.0):
            neg, pos = self.values
            return (f"labels: {_fmt(pos)} → 1, {_fmt(neg)} → 0 (a binary model maps the larger of its two label "
                    "values to 1; set data.label_values to choose)")
        if self.task == "multiclass" and self.base:
            last = self.base + (self.classes or 0) - 1
            return f"labels: class ids {self.base}..{last} → 0..{(self.classes or 1) - 1}"
        return None


class BinaryValues:
    """Finds the two label values of binary training data, chunk by chunk (stops needing more once
    two are seen: the mapping is then fixed and a third value is caught by :meth:`LabelMap.apply`)."""

    def __init__(self):
        self.seen: list[float] = []

    @property
    def done(self) -> bool:
        return len(self.seen) >= 2

    def add(self, y: np.ndarray, names: dict | None = None) -> None:
        """Note the values of ``y`` in order of first appearance; ``names``: hash -> text of the CSV
        reader's text labels (NaN entries of ``y``, see :class:`TextLabels`)."""
        if self.done or y.size == 0:
            return
        flat = y.ravel()
        text, hashes = text_labels_of(flat) if names is not None else (np.zeros(flat.shape, bool), None)
        found = []  # (first row, value)
        if not text.all():
            values, first = np.unique(flat[~text], return_index=True)
            found += zip(np.flatnonzero(~text)[first].tolist(), (float(v) for v in values))
        if text.any():
            hashes, first = np.unique(hashes[text], return_index=True)
            found += zip(np.flatnonzero(text)[first].tolist(), (names[int(h)] for h in hashes))
        for _, v in sorted(found, key=lambda f: f[0]):
            if v not in self.seen:
                self.seen.append(v)
                if self.done:
                    return

    def values(self, where: str) -> tuple[float, float]:
        """``(value → 0, value → 1)``; ``where`` names the data in the error for data without labels."""
        if len(self.seen) >= 2:
            return binary_pair(*self.seen[:2])
        if self.seen and self.seen[0] in _SINGLE_VALUE_PAIRS:
            return _SINGLE_VALUE_PAIRS[self.seen[0]]
        if self.seen:
            raise DataFormatError(f"{where}: every label is {_fmt(self.seen[0])}; a binary model needs two label "
                                  "values (or set data.label_values: [negative, positive])")
        raise DataFormatError(f"{where}: no labels to learn from")


def label_map(task: str, values=None, base: int = 0, classes: int | None = None) -> LabelMap:
    """A :class:`LabelMap` (``values``: a binary model's ``[value → 0, value → 1]``, e.g. from
    ``data.label_values``; with a text value the CSV reader has mapped the labels to 0/1 already)."""
    if task == "binary" and values is not None:
        neg, pos = (label_value(v) for v in values)
        if neg == pos:
            raise ConfigError(f"data.label_values: the two values must differ, got {list(values)}")
        if isinstance(neg, str) or isinstance(pos, str):
            return LabelMap(task, (0.0, 1.0), shown=(neg, pos))
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
