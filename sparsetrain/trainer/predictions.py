"""``predict``'s output: a table with a header, written as CSV, TSV or ``.npy``.

Columns, in order:

* ``row`` -- the data row (0-based, blank and comment lines not counted); a reader that knows an id
  column (CSV input) passes its values as ``ids`` and the column is named after it instead;
* ``label`` (``label_0``, ``label_1``, ... for multi-column labels) -- when the data has labels;
* ``prediction`` -- every model: its score before the output layer's link, that is the loss layer's
  input (``prediction_0``, ... for several outputs): a regression output's value itself, logistic
  regression's log-odds (margin), softmax's logits, one per class -- Vowpal Wabbit's raw predictions
  and scikit-learn's ``decision_function``;
* ``LogisticRegressionOutput``: then ``probability`` (of class 1, the sigmoid of ``prediction``) and
  ``class`` (1 when ``probability`` is above 0.5); for multi-label models ``prediction_k``,
  ``probability_k`` and ``class_k`` per output;
* ``SoftmaxOutput``: ``prediction_0`` ... ``prediction_{K-1}``, ``probability_0`` ...
  ``probability_{K-1}`` and ``class`` (the most probable), numbered as the data's class ids (``_1`` ...
  ``_K`` and ``class`` 1..K with ``data.label_base: 1``).
"""
from __future__ import annotations

import io
import os
import sys

import numpy as np

from ..base import ConfigError, SparseTrainError
from ..fileio import write_atomic, write_stdout

FORMATS = ("csv", "tsv", "npy")


def prediction_columns(loss_op: str, outputs: np.ndarray, labels: np.ndarray | None = None, ids=None,
                       id_name: str = "row", label_base: int = 0, scores: np.ndarray | None = None) -> dict:
    """``{column name: 1-D array}`` in output order (see the module docstring); ``scores``: the loss
    layer's input, shaped as ``outputs`` (``None``: ``outputs`` itself, right for regression outputs
    only); ``label_base``: a softmax model's first class id in the data."""
    out = np.asarray(outputs)
    if out.ndim == 1:
        out = out.reshape(-1, 1)
    if scores is None and loss_op in ("SoftmaxOutput", "LogisticRegressionOutput"):
        raise ValueError(f"{loss_op}: predict's table needs the scores before the link")
    score = out if scores is None else np.asarray(scores).reshape(out.shape)
    n, k = out.shape
    cols: dict[str, np.ndarray] = {id_name: np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids)}
    if labels is not None:
        lab = np.asarray(labels)
        if lab.ndim == 2 and lab.shape[1] == 1:
            lab = lab[:, 0]
        if lab.ndim == 1:
            cols["label"] = lab
        else:
            cols.update({f"label_{j}": lab[:, j] for j in range(lab.shape[1])})
    if loss_op == "SoftmaxOutput":
        cols.update({f"prediction_{j + label_base}": score[:, j] for j in range(k)})
        cols.update({f"probability_{j + label_base}": out[:, j] for j in range(k)})
        cols["class"] = out.argmax(axis=1).astype(np.int64) + label_base
        return cols
    for j in range(k):
        suffix = "" if k == 1 else f"_{j}"
        cols[f"prediction{suffix}"] = score[:, j]
        if loss_op == "LogisticRegressionOutput":
            cols[f"probability{suffix}"] = out[:, j]
            cols[f"class{suffix}"] = (out[:, j] > 0.5).astype(np.int64)
    return cols


def _text(cols: dict, sep: str) -> str:
    """A header line, then one line per row; numbers in their shortest exact form (float32 outputs
    and labels read back to the same float32)."""
    names = list(cols)
    if any(sep in name for name in names):
        raise SparseTrainError(f"a column name contains the separator {sep!r}: {names}")
    texts = [_quoted(np.asarray(v).astype(str), sep) if np.asarray(v).dtype.kind in "UO" else np.asarray(v).astype(str)
             for v in cols.values()]
    return "".join([sep.join(names) + "\n"] + [sep.join(row) + "\n" for row in zip(*texts)])


def _quoted(values: np.ndarray, sep: str) -> list[str]:
    """Strings (an id column) as the ``csv`` module writes them: a field holding the separator, a
    quote or a line break in quotes, its quotes doubled."""
    return ['"' + v.replace('"', '""') + '"' if (sep in v or '"' in v or "\n" in v or "\r" in v) else v
            for v in values.tolist()]


def _npy(cols: dict) -> bytes:
    """A structured array: one named field per column (``np.load(f)['probability_1']``)."""
    n = len(next(iter(cols.values()))) if cols else 0
    dtype = [(name, np.asarray(v).dtype if np.asarray(v).dtype.kind in "iufbU" else "U64") for name, v in cols.items()]
    arr = np.empty(n, dtype=dtype)
    for name, v in cols.items():
        arr[name] = v
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def format_for(out: str | None, fmt: str | None, formats=FORMATS, command: str = "predict") -> str:
    """``fmt``, else from ``out``'s extension (one of ``formats``, ``.gz``/``.bz2`` looked through: the
    writer compresses; another one is an error), else the first of ``formats``; ``command`` writes them.
    A ``fmt`` that ``out``'s extension contradicts (``--format csv --out w.json``) is an error too."""
    ext = ""
    if out and out != "-":
        ext = os.path.splitext(out.lower().removesuffix(".gz").removesuffix(".bz2"))[1]
    if fmt is not None:
        if fmt not in formats:
            raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(formats)}")
        if ext[1:] in formats and ext[1:] != fmt:  # (w.json holding CSV)
            raise ConfigError(f"--out {out}: the name says {ext[1:]}, but --format is {fmt}; give --format "
                              f"{ext[1:]} or another name")
        return fmt
    if ext[1:] in formats:
        return ext[1:]
    if ext:  # a name that promises another format (.parquet, .json) would hold CSV
        raise ConfigError(f"--out {out}: {command} writes {', '.join(formats)} (by the extension: "
                          f"{', '.join('.' + f for f in formats)}; none: {formats[0]}), not {ext}; or give "
                          "--format")
    return formats[0]


def write_predictions(cols: dict, out: str | None, fmt: str = "csv") -> None:
    """Write the table to ``out`` (atomically) or to stdout (``None`` or ``-``)."""
    payload = _npy(cols) if fmt == "npy" else _text(cols, "\t" if fmt == "tsv" else ",")
    if out is None or out == "-":
        if isinstance(payload, bytes) and sys.stdout.isatty():
            raise ConfigError("--format npy writes binary data; give --out FILE or redirect stdout")
        write_stdout(payload)
        return
    write_atomic(out, payload, compress=True)
