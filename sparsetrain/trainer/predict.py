"""Trained models: load a run directory, config or checkpoint, and predict or evaluate LibSVM data."""
from __future__ import annotations

import contextlib
import glob
import os
from dataclasses import dataclass, field

import numpy as np

from ..base import ConfigError, SparseTrainError
from ..config import config_from_dict
from ..labels import TextLabels
from .metrics import make_metric, metric_values
from .runfiles import (CHECKPOINT_PREFIX, CONFIG_FILE, STATE_FILE, checked_params, latest_default_run, load_run_config,
                       load_state)



@dataclass
class TrainedModel:
    """A checkpoint with what is needed to feed it: input names, number of features, index base."""

    prefix: str
    epoch: int
    data_name: str
    label_name: str
    num_features: int
    zero_based: object = "auto"
    metrics: list[str] = field(default_factory=list)
    batch_size: int = 256
    loss_op: str = ""
    label_values: list | None = None  # a binary model's data.label_values (None: from the data scored)
    label_base: int = 0
    config: object = None  # the run's Config when loaded from a run directory: the data format and schema

    @property
    def params_path(self) -> str:
        return f"{self.prefix}-{self.epoch:04d}.params"

    def _module(self, data_iter, path: str, scores: bool = False):
        """A bound module; ``scores``: a second output, the loss layer's input (see :meth:`_scored`)."""
        from ..base import DataFormatError, ShapeError
        from ..io.base import display_name
        from ..module import Module
        from ..symbol import Group
        from ..symbol import load as load_symbol

        sym = load_symbol(f"{self.prefix}-symbol.json")
        if scores:
            sym = Group([sym, sym.get_children()[0]])
        mod = Module(sym, data_names=[self.data_name], label_names=[self.label_name])
        names = [a for a in sym.list_arguments() if a not in (self.data_name, self.label_name)]
        arg, aux = checked_params(self.params_path, names)
        try:
            mod.bind(data_iter.provide_data, data_iter.provide_label, for_training=False)
        except ShapeError as e:  # e.g. two labels per row for a one-output model: a fact about the file
            raise DataFormatError(f"{display_name(path)}: its rows do not fit the model: "
                                  f"{getattr(e, 'detail', e)}") from None
        try:
            mod.set_params(arg, aux, allow_extra=True)
        except ShapeError as e:
            raise SparseTrainError(f"{self.params_path}: {e}") from None
        return mod

    def read(self, path: str, with_labels: bool = False, with_ids: bool = False, label_names: dict | None = None):
        """``(X, labels, ids or None, importance weights or None)`` of a data file. The one place a
        reader is chosen: with ``with_ids``, a CSV/TSV file with a ``data.id_column`` returns its
        values as ``ids`` (one more pass, in Python); other rows are numbered; a Vowpal Wabbit file's
        importance weights weight ``evaluate``'s metrics. ``with_labels``: labels mapped as in
        training (see :mod:`sparsetrain.labels`); otherwise as in the file (a CSV file's text labels as
        NaN, named in ``label_names``: hash -> text)."""
        from .. import io as st_io
        from .. import labels
        from ..base import DataFormatError
        from ..io.base import STDIN_NAME

        ids = None
        wants_ids = with_ids and self.config is not None and self.config.data.id_column is not None
        if path == "-" and (wants_ids or self._auto_base()):
            # a second pass over the data (the ids; the index base of LibSVM under zero_based: auto, as
            # when training): keep stdin in a file
            with _stdin_copy(self.config) as copy:
                try:
                    return self.read(copy, with_labels, with_ids, label_names)
                except DataFormatError as e:  # the copy is stdin to the user
                    raise DataFormatError(str(e).replace(copy, STDIN_NAME)) from None
        if self.config is not None:  # the training data's format (CSV schema, hashing), '-' for stdin
            from .data import load_file, row_locator

            from ..io.base import named_format

            # data.format: auto reads a file by its name; a name that says another format is a mistake anyway
            trained, named = self.config.data_format(), self.config.data.format_of(path)
            named = named_format(path) or named if path != "-" else named
            if named != trained:
                raise ConfigError(f"{path}: read as {named} data by its name, but this model was trained on "
                                  f"{trained} data; give a {trained} file")

            # rows scored without their labels: a text label is no error
            keep = TextLabels("any", names={} if label_names is None else label_names)
            X, y, weights = load_file(self.config, path, labels=None if with_labels else keep,
                                      unlabeled=not with_labels)
            locate = row_locator(self.config, path)
            if wants_ids and self.config.data.format_of(path) == "csv":
                ids = csv_ids(self.config, path, X.shape[0])
        else:
            X, y = st_io.load_libsvm(path, num_features=self.num_features, zero_based=self.zero_based)
            locate, weights = labels.libsvm_locator(path), None
        if with_labels and weights is not None and not weights.any():  # (evaluate's metrics would be 0/0)
            from ..io.base import ALL_WEIGHTS_ZERO, display_name

            raise DataFormatError(f"{display_name(path)}: {ALL_WEIGHTS_ZERO}")
        y = np.asarray(y)
        task = labels.task_of(self.loss_op)
        if with_labels and task != "regression":
            values = self.label_values
            if task == "binary" and values is None:
                found = labels.BinaryValues()
                found.add(y)
                values = found.values(path)
            classes = self._output_columns() if task == "multiclass" else None
            mapping = labels.label_map(task, values, self.label_base, classes)
            y = mapping.apply(y, locate)
        return X, y, ids, weights

    def _auto_base(self) -> bool:
        """LibSVM data (the run's format; a checkpoint prefix's) whose index base is decided by reading it."""
        fmt = self.config.data_format() if self.config is not None else "libsvm"
        return fmt == "libsvm" and self.zero_based == "auto"

    def _iter(self, path: str, with_labels: bool = False, data=None):
        """The rows of ``path`` (or of ``data``, what :meth:`read` returned) as an iterator."""
        from .. import io as st_io

        X, y, _, weights = data if data is not None else self.read(path, with_labels)
        return st_io.NDArrayIter(X, y, batch_size=min(self.batch_size, max(1, X.shape[0])), shuffle=False,
                                 last_batch_handle="pad", data_name=self.data_name, label_name=self.label_name,
                                 sample_weight=weights)

    def _output_columns(self) -> int | None:
        """How many columns the model outputs a row (a multiclass model's classes; 1 for a one-dimensional
        output), from its symbol before any data is read; None when the symbol does not say."""
        from ..symbol import load as load_symbol

        sym = load_symbol(f"{self.prefix}-symbol.json")
        _, out_shapes, _ = sym.infer_shape_partial(**{self.data_name: (1, self.num_features)})
        shape = out_shapes[0] if out_shapes else None
        if not shape or (len(shape) > 1 and not shape[-1]):
            return None
        return int(shape[-1]) if len(shape) > 1 else 1

    def _outputs(self, it, path: str) -> np.ndarray:
        out = self._module(it, path).predict(it)
        return out.asnumpy() if hasattr(out, "asnumpy") else np.zeros((0, 1))

    def _scored(self, it, path: str) -> tuple[np.ndarray, np.ndarray]:
        """``(outputs, scores)``: the model's output and its score before the loss layer's link (the
        loss layer's input: a regression output's own value, logistic regression's log-odds, softmax's
        logits); a head that is no loss layer is its own score."""
        from ..ops import registry

        if not (registry.exists(self.loss_op) and registry.get(self.loss_op).is_loss):
            out = self._outputs(it, path)
            return out, out
        outs = self._module(it, path, scores=True).predict(it, always_output_list=True)
        if not outs:
            return np.zeros((0, 1)), np.zeros((0, 1))
        out, score = (o.asnumpy() for o in outs)
        return out, score.reshape(out.shape)

    def predict(self, path: str) -> np.ndarray:
        """Model outputs for every row of a LibSVM file: ``(rows,)`` or ``(rows, classes)``."""
        arr = self._outputs(self._iter(path), path)
        return arr[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr

    def predict_columns(self, path: str, id_name: str = "row") -> dict:
        """``predict``'s table for a data file: ``{column: values}`` (see :mod:`.predictions`)."""
        from .predictions import prediction_columns

        from ..labels import shown_labels

        names: dict = {}
        data = self.read(path, with_ids=True, label_names=names)
        outputs, scores = self._scored(self._iter(path, data=data), path)
        if data[2] is not None:
            id_name = self.config.data.id_column
        y = data[1]
        unlabeled = np.isnan(y).all() and not names and len(y)  # a file without labels: no label column
        return prediction_columns(self.loss_op, outputs, None if unlabeled else shown_labels(y, names), data[2],
                                  id_name, label_base=self.label_base, scores=scores)

    def evaluate(self, path: str, metrics: list[str] | None = None) -> dict:
        from .. import metric as metric_mod

        from ..metric_catalogue import scoring_info

        names = list(metrics or self.metrics)
        for k, name in enumerate(names):  # before reading the data: a mistyped name fails at once
            try:
                scoring_info(name)
            except (ValueError, TypeError) as e:
                raise ConfigError(f"metrics[{k}]: {e}") from None
        metric = make_metric(names)
        columns = self._output_columns()
        for n in names:  # e.g. auc on a regression model: a usage error, not a failure inside the metric
            why = metric_mod.not_applicable(n, self.loss_op, columns)
            if why:
                raise ConfigError(why)  # ("metric 'auc' does not apply to ...": it names the metric)
        it = self._iter(path, with_labels=True)
        mod = self._module(it, path)
        mod.score(it, metric)
        return metric_values(names, metric)


def run_checkpoint(path: str, state: dict, epoch: int | None = None, last: bool = False) -> int:
    """Which checkpoint of the run directory ``path`` to use: ``epoch`` (a checkpoint number:
    ``model-NNNN.params``, written after that many epochs), the last one (``last``), else the best
    one marked in ``checkpoint.json`` (the last one when none is marked)."""
    if epoch is not None and last:
        raise ConfigError("--epoch and --last exclude each other")
    prefix = os.path.join(path, state.get("prefix", CHECKPOINT_PREFIX))
    if epoch is None:
        best = state.get("best") or {}
        return int(state["epoch"]) if last or "epoch" not in best else int(best["epoch"])
    if not os.path.exists(f"{prefix}-{epoch:04d}.params"):
        kept = _epochs(prefix)
        raise ConfigError(f"--epoch {epoch}: {path} has no checkpoint of epoch {epoch}; it keeps "
                          f"{', '.join(map(str, kept)) or 'none'} (train.keep_checkpoints)")
    return epoch


def _epochs(prefix: str) -> list[int]:
    found = []
    for p in glob.glob(f"{glob.escape(prefix)}-*.params"):
        num = p[: -len(".params")].rsplit("-", 1)[1]
        if num.isdigit():
            found.append(int(num))
    return sorted(found)


def load_trained(path: str, epoch: int | None = None, last: bool = False) -> TrainedModel:
    """A run directory, a config file (its latest run directory) or a checkpoint prefix (``dir/model``).

    From a run directory: the best checkpoint marked in ``checkpoint.json`` (the last one when none
    is marked), the last one with ``last``, or checkpoint ``epoch`` (see :func:`run_checkpoint`)."""
    from ..config import load_config
    from ..metric import default_metrics

    if os.path.isfile(path) and path.endswith((".yaml", ".yml")):
        path = latest_default_run(load_config(path))
        if not os.path.isdir(path):
            raise SparseTrainError(f"{path}: no run directory for this config; run `sparsetrain fit` first")
    if os.path.isdir(path):
        state = load_state(path)
        if state is None:
            raise SparseTrainError(f"{path}: no complete checkpoint ({STATE_FILE} missing)")
        doc = load_run_config(path)
        if doc is None:
            raise SparseTrainError(f"{path}: {CONFIG_FILE} is missing (the run's config, needed to read data for it)")
        cfg = config_from_dict(doc, source=os.path.join(path, CONFIG_FILE))
        chosen = run_checkpoint(path, state, epoch, last)
        return TrainedModel(os.path.join(path, state.get("prefix", CHECKPOINT_PREFIX)), chosen,
                            cfg.data_name, cfg.label_name, cfg.num_features, cfg.data.zero_based, cfg.metrics,
                            max(cfg.data.batch_size, 256), cfg.model.loss.op, cfg.data.label_values,
                            cfg.data.label_base, cfg)
    prefix = path
    m = epoch
    if path.endswith(".params"):
        prefix, _, num = path[: -len(".params")].rpartition("-")
        m = int(num) if num.isdigit() else m
    if not os.path.exists(f"{prefix}-symbol.json"):  # a usage error (exit 2), as plot's missing RUN
        raise ConfigError(f"{path}: not a run directory, config or checkpoint prefix "
                          f"({prefix}-symbol.json not found)")
    if m is None:
        epochs = _epochs(prefix)
        if not epochs:
            raise SparseTrainError(f"{prefix}: no {prefix}-NNNN.params checkpoint found")
        m = epochs[-1]
    from ..symbol import load as load_symbol

    sym = load_symbol(f"{prefix}-symbol.json")
    loss_op, label = _loss_head(sym)
    attrs = sym.attr_dict()
    data = next((n for n in sym.list_arguments() if attrs.get(n, {}).get("stype") == "csr"), None)
    if data is None:
        raise SparseTrainError(f"{prefix}-symbol.json: no csr input variable to feed")
    arg_shapes, _, _ = sym.infer_shape_partial(**{data: (1, 0)})
    shape = dict(zip(sym.list_arguments(), arg_shapes)).get(data)
    if not shape or not shape[1]:
        raise SparseTrainError(f"{prefix}-symbol.json: the model does not determine the number of features")
    return TrainedModel(prefix, m, data, label, int(shape[1]), "auto", default_metrics(loss_op),
                        256, loss_op)


def _loss_head(sym) -> tuple[str, str]:
    """``(operator name, label variable)`` of the symbol's output node, read from its public JSON
    (``op`` is ``""`` and the label ``"label"`` when the output is not a loss layer)."""
    import json

    from ..ops import registry

    doc = json.loads(sym.tojson())
    nodes = doc["nodes"]
    head = nodes[doc["heads"][0][0]]
    op = head["op"] if head["op"] != "null" else ""
    if op and registry.exists(op) and registry.get(op).is_loss and len(head["inputs"]) > 1:
        return op, nodes[head["inputs"][1][0]]["name"]
    return op, "label"


def csv_ids(cfg, path: str, rows: int) -> np.ndarray:
    """The ``data.id_column`` field of every data row of a CSV/TSV file (a string array), split as
    the reader splits lines (the ``csv`` module per line; blank lines skipped, missing fields empty);
    ``rows``: how many data rows the reader found."""
    import csv
    import io

    from ..base import DataFormatError
    from ..io.chunks import opened_data
    from ..io.csv_reader import read_header, scored_columns

    s = cfg.csv_schema()
    delim = s.delimiter_for(path)
    # (a file scored without its label column: csv.columns less the label, as the reader takes them)
    columns = scored_columns(s, path, delim) if s.columns is not None else read_header(path, delim, s.quote)[0]
    k = columns.index(s.id_column)
    ids = []
    with opened_data(path) as raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
        lines = (ln for ln in text if ln.strip())
        if s.header:
            next(lines, None)
        for ln in lines:
            fields = next(csv.reader([ln.rstrip("\r\n")], delimiter=delim, quotechar=s.quote), [])
            ids.append(fields[k] if k < len(fields) else "")
    if len(ids) != rows:
        raise DataFormatError(f"{path}: {len(ids)} rows hold an id ({s.id_column}), the reader found {rows}")
    return np.array(ids, dtype=str)


@contextlib.contextmanager
def _stdin_copy(cfg):
    """A temporary copy of stdin named like the training file of the run's config ``cfg`` (``.csv``/``.tsv``:
    the reader takes the format and the delimiter from the name; ``None``, a checkpoint prefix's model:
    ``.libsvm``), removed afterwards."""
    import shutil
    import sys
    import tempfile

    from ..io.base import plain_name

    suffix = ".libsvm"
    if cfg is not None:
        names = [p for p in (cfg.data.train or []) if p != "-"] + ([cfg.data.generate.path] if cfg.data.generate
                                                                    else [])
        ext = os.path.splitext(plain_name(names[0]))[1] if names else ""
        suffix = ext if cfg.data.format_of(f"x{ext}") == cfg.data_format() else {"csv": ".csv", "vw": ".vw"}.get(
            cfg.data_format(), ".libsvm")
    with tempfile.NamedTemporaryFile(prefix="sparsetrain-stdin-", suffix=suffix) as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
        f.flush()
        yield f.name
