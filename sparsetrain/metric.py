"""Evaluation metrics, following MXNet 1.x's ``mxnet.metric``.

Every metric takes ``update(labels, preds)`` with two equally long lists of arrays (sparsetrain
arrays or numpy; a single array is wrapped in a list), accumulates ``sum_metric`` and
``num_inst``, and reports ``get() -> (name, sum_metric / num_inst)`` — ``nan`` before any update.
``reset()`` starts over; ``get_name_value()`` returns ``[(name, value)]``.

What ``num_inst`` counts differs, as in MXNet:

* ``MSE``, ``RMSE``, ``MAE`` count **batches**: each (label, pred) pair adds the batch's mean
  error (RMSE: the square root of the batch's MSE) and ``num_inst += 1``. The epoch value is the
  mean of per-batch values, which equals the per-sample mean only when all batches have the same
  size (a padded last batch counts as a full one).
* ``Accuracy``, ``CrossEntropy``, ``LogLoss`` count **samples**.
* ``AUC`` keeps every (label, score) seen since ``reset()`` and computes the ROC AUC over all of
  them in ``get()``.

``update`` runs once per batch and is written to be cheap at batch size 1.

**Sample weights** (``update(labels, preds, sample_weight=w)``, one weight >= 0 per row, e.g. Vowpal
Wabbit importance weights; :func:`update_metric` passes them only when there are any): a row of
weight ``w`` counts as ``w`` rows. The sample-counting metrics add ``sum(w_i * value_i)`` and
``num_inst += sum(w_i)`` (a weighted mean over the epoch, as VW's average loss); ``MSE``/``RMSE``/
``MAE`` take the batch's weighted mean ``sum(w_i * err_i) / sum(w_i)`` (a batch of total weight 0
counts nothing); ``AUC`` counts a (positive, negative) pair with weight ``w_p * w_n``
(scikit-learn's ``roc_auc_score(..., sample_weight=w)``). ``CustomMetric`` refuses weights.
"""
from __future__ import annotations

import math

import numpy

from .labels import binary_domain_error, class_domain_error
from .ndarray.ndarray import NDArray

__all__ = [
    "EvalMetric", "MSE", "RMSE", "MAE", "Accuracy", "CrossEntropy", "LogLoss", "AUC",
    "CompositeEvalMetric", "CustomMetric", "np", "register", "create",
    "MetricInfo", "info", "info_of", "catalogue", "lower_is_better", "best", "target_met", "target_relation",
    "not_applicable", "unreachable", "default_metrics", "update_metric",
]

from .metric_catalogue import (  # noqa: F401  (re-exported: mx.metric's registry API)
    ANY_OUTPUT,
    BINARY,
    MULTICLASS,
    REGRESSION,
    MetricInfo,
    best,
    catalogue,
    default_metrics,
    entry,
    info,
    info_of,
    lower_is_better,
    not_applicable,
    register,
    target_met,
    target_relation,
    unreachable,
)


def _np(x) -> numpy.ndarray:
    """The values of ``x`` as numpy, without copying dense arrays."""
    if type(x) is NDArray:
        return x._data
    if type(x) is numpy.ndarray:
        return x
    if hasattr(x, "asnumpy"):
        return x.asnumpy()
    return numpy.asarray(x)


def _pairs(labels, preds):
    """``labels`` and ``preds`` as equally long lists (single arrays are wrapped)."""
    if type(labels) is not list:
        labels = list(labels) if isinstance(labels, tuple) else [labels]
    if type(preds) is not list:
        preds = list(preds) if isinstance(preds, tuple) else [preds]
    if len(labels) != len(preds):
        raise ValueError(
            f"metric update got {len(labels)} label array(s) but {len(preds)} prediction array(s); "
            "they must pair up"
        )
    return labels, preds


def update_metric(metric, labels, preds, sample_weight=None) -> None:
    """``metric.update(labels, preds)``, with ``sample_weight=`` only when there are weights (so
    metrics written without that argument keep working on unweighted data)."""
    if sample_weight is None:
        metric.update(labels, preds)
    else:
        metric.update(labels, preds, sample_weight=sample_weight)


def _row_weights(sample_weight, rows: int, metric: str):
    """``sample_weight`` as float64 (rows,), or ``None``."""
    if sample_weight is None:
        return None
    w = numpy.asarray(_np(sample_weight), dtype=numpy.float64).ravel()
    if w.size != rows:
        raise ValueError(f"{metric}: {w.size} sample weights for {rows} rows")
    return w


def _weighted_error(metric: str, lab, prd, w, kind: str):
    """``(batch value, counted)`` of a regression metric with row weights ``w``: the weighted mean
    over rows of each row's mean error (squared for mse/rmse, absolute for mae)."""
    diff = numpy.subtract(_label_like(lab, prd), prd, dtype=numpy.float64)
    rows = diff.shape[0] if diff.ndim else 1
    w = _row_weights(w, rows, metric)
    per_row = (numpy.abs(diff) if kind == "mae" else diff * diff).reshape(rows, -1).mean(axis=1)
    total = float(w.sum())
    if total == 0.0:
        return 0.0, 0
    value = float(w @ per_row) / total
    return (math.sqrt(value) if kind == "rmse" else value), 1


def _label_like(label: numpy.ndarray, pred: numpy.ndarray) -> numpy.ndarray:
    """A regression label reshaped to its prediction's shape ((n,) and (n, 1) both fit (n, 1))."""
    if label.shape == pred.shape:
        return label
    if label.size != pred.size:
        raise ValueError(
            f"label of shape {label.shape} does not match prediction of shape {pred.shape}"
        )
    return label.reshape(pred.shape)


def _positive_prob(pred: numpy.ndarray, metric: str) -> numpy.ndarray:
    """Probability of class 1 from a binary prediction: (n,), (n, 1) or (n, 2) (column 1)."""
    if pred.ndim == 1:
        return pred
    if pred.ndim == 2 and pred.shape[1] == 1:
        return pred[:, 0]
    if pred.ndim == 2 and pred.shape[1] == 2:
        return pred[:, 1]
    raise ValueError(
        f"{metric} needs binary predictions of shape (n,), (n, 1) or (n, 2); got {pred.shape}"
    )


class EvalMetric:
    """Base class: accumulates ``sum_metric`` over ``num_inst`` (see the module docstring).

    Subclasses implement ``update(labels, preds)``. ``output_names``/``label_names`` are kept for
    MXNet compatibility (``update_dict`` uses them to pick arrays by name).
    """

    def __init__(self, name, output_names=None, label_names=None, **kwargs):
        self.name = str(name)
        self.output_names = output_names
        self.label_names = label_names
        self._kwargs = kwargs
        self.reset()

    def __str__(self) -> str:
        return f"EvalMetric: {dict(self.get_name_value())}"

    def get_config(self) -> dict:
        """The arguments that rebuild this metric with :func:`create`."""
        config = dict(self._kwargs)
        config.update({"metric": type(self).__name__, "name": self.name,
                       "output_names": self.output_names, "label_names": self.label_names})
        return config

    def update_dict(self, label: dict, pred: dict) -> None:
        """``update`` with arrays given by name (``output_names``/``label_names`` select them)."""
        preds = [pred[n] for n in self.output_names] if self.output_names is not None else list(pred.values())
        labels = [label[n] for n in self.label_names] if self.label_names is not None else list(label.values())
        self.update(labels, preds)

    def update(self, labels, preds, sample_weight=None) -> None:
        """Add a batch: lists of label and prediction arrays; ``sample_weight``: one weight per row
        (see the module docstring)."""
        raise NotImplementedError

    def reset(self) -> None:
        self.num_inst = 0
        self.sum_metric = 0.0

    def get(self):
        """``(name, value)``; ``value`` is ``nan`` when nothing was accumulated since ``reset()``."""
        if self.num_inst == 0:
            return (self.name, float("nan"))
        return (self.name, self.sum_metric / self.num_inst)

    def get_name_value(self):
        name, value = self.get()
        if not isinstance(name, list):
            name, value = [name], [value]
        return list(zip(name, value))


class _BatchMeanError(EvalMetric):
    """A regression error **averaged over batches** as MXNet: each update adds the batch's value
    (:meth:`batch`, of ``label - pred`` in float64; :meth:`one` for a one-element batch) and
    counts one instance. Labels of shape (n,) fit predictions (n, 1)."""

    def update(self, labels, preds, sample_weight=None) -> None:
        labels, preds = _pairs(labels, preds)
        for label, pred in zip(labels, preds):
            lab, prd = _np(label), _np(pred)
            if sample_weight is not None:  # the batch's weighted mean (see the module docstring)
                kind = type(self).__name__
                value, counted = _weighted_error(kind, lab, prd, sample_weight, kind.lower())
                self.sum_metric += value
                self.num_inst += counted
                continue
            if prd.size == 1 and lab.size == 1:
                self.sum_metric += self.one(lab.item() - prd.item())
            else:
                diff = numpy.subtract(_label_like(lab, prd), prd, dtype=numpy.float64).ravel()
                self.sum_metric += self.batch(diff) if diff.size else 0.0
            self.num_inst += 1


@entry("mse", lower_is_better=True, outputs=REGRESSION | BINARY, fused="mse")
class MSE(_BatchMeanError):
    """Mean squared error, averaged over batches: each update adds the batch's mean of ``(label - pred)²``."""

    def __init__(self, name="mse", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    @staticmethod
    def one(d):
        return d * d

    @staticmethod
    def batch(diff):
        return float(diff @ diff) / diff.size


@entry("rmse", lower_is_better=True, outputs=REGRESSION | BINARY, fused="rmse")
class RMSE(_BatchMeanError):
    """Root mean squared error, averaged over batches: each update adds ``sqrt(batch MSE)`` (not
    the square root of the epoch MSE)."""

    def __init__(self, name="rmse", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    @staticmethod
    def one(d):
        return abs(d)

    @staticmethod
    def batch(diff):
        return math.sqrt(float(diff @ diff) / diff.size)


@entry("mae", lower_is_better=True, outputs=REGRESSION | BINARY, fused="mae")
class MAE(_BatchMeanError):
    """Mean absolute error, averaged over batches: each update adds the batch's mean of ``|label - pred|``."""

    def __init__(self, name="mae", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    @staticmethod
    def one(d):
        return abs(d)

    @staticmethod
    def batch(diff):
        return float(numpy.abs(diff).mean())


@entry("accuracy", "acc", outputs=BINARY | MULTICLASS, fused="accuracy", at_most=1)
class Accuracy(EvalMetric):
    """Fraction of correctly classified samples (counts samples).

    Predictions of shape (n, k) with k > 1 are class scores: the predicted class is the argmax
    along ``axis``. Predictions of shape (n,) or (n, 1) are probabilities of class 1: the
    predicted class is ``pred > 0.5``. Labels are class indices, shape (n,) or (n, 1).
    """

    def __init__(self, axis=1, name="accuracy", output_names=None, label_names=None):
        super().__init__(name, axis=axis, output_names=output_names, label_names=label_names)
        self.axis = axis

    def update(self, labels, preds, sample_weight=None) -> None:
        labels, preds = _pairs(labels, preds)
        for label, pred in zip(labels, preds):
            lab, prd = _np(label), _np(pred)
            if prd.ndim >= 2 and prd.shape[self.axis] > 1:
                predicted = prd.argmax(axis=self.axis).ravel()
                classes = prd.shape[self.axis]
            else:
                predicted = (prd > 0.5).ravel()
                classes = 2
            lab = lab.ravel()
            if lab.size != predicted.size:
                raise ValueError(
                    f"Accuracy: {lab.size} labels for {predicted.size} predictions "
                    f"(label shape {_np(label).shape}, prediction shape {prd.shape})"
                )
            why = class_domain_error("accuracy", lab, classes)
            if why:
                raise ValueError(why)
            right = predicted == lab.astype(numpy.int64)
            w = _row_weights(sample_weight, lab.size, "Accuracy")
            if w is None:
                self.sum_metric += int(numpy.count_nonzero(right))
                self.num_inst += lab.size
            else:
                self.sum_metric += float(w @ right)
                self.num_inst += float(w.sum())


@entry("cross-entropy", "ce", "cross_entropy", lower_is_better=True, outputs=BINARY | MULTICLASS,
        fused="log_loss")
class CrossEntropy(EvalMetric):
    """Mean of ``-log(p[label] + eps)`` over samples, for softmax outputs (n, k) and class-index
    labels; a binary output (n,) or (n, 1) is read as the probability of class 1.
    """

    def __init__(self, eps=1e-12, name="cross-entropy", output_names=None, label_names=None):
        super().__init__(name, eps=eps, output_names=output_names, label_names=label_names)
        self.eps = eps

    def update(self, labels, preds, sample_weight=None) -> None:
        labels, preds = _pairs(labels, preds)
        for label, pred in zip(labels, preds):
            lab, prd = _np(label).ravel(), _np(pred)
            n = prd.shape[0] if prd.ndim else 1
            if lab.size != n:
                raise ValueError(f"CrossEntropy: {lab.size} labels for {n} predictions (shape {prd.shape})")
            cls = lab.astype(numpy.int64)
            classes = 2 if prd.ndim == 1 or (prd.ndim == 2 and prd.shape[1] == 1) else prd.shape[1]
            why = class_domain_error("cross-entropy", lab, classes)
            if why:
                raise ValueError(why)
            if classes == 2 and (prd.ndim == 1 or prd.shape[1] == 1):
                p1 = prd.reshape(-1).astype(numpy.float64)
                prob = numpy.where(cls == 1, p1, 1.0 - p1)
            else:
                prob = prd[numpy.arange(n), cls].astype(numpy.float64)
            loss = -numpy.log(prob + self.eps)
            w = _row_weights(sample_weight, n, "CrossEntropy")
            self.sum_metric += float(loss.sum() if w is None else w @ loss)
            self.num_inst += n if w is None else float(w.sum())


@entry("log_loss", "binary_cross_entropy", lower_is_better=True, outputs=BINARY | MULTICLASS, binary=True,
        fused="log_loss")
class LogLoss(EvalMetric):
    """Binary log loss for a sigmoid output: mean over samples of
    ``-(y·log p + (1 - y)·log(1 - p))`` with ``p`` clipped to ``[eps, 1 - eps]`` (scikit-learn's
    ``log_loss``). ``p`` is the prediction (n,)/(n, 1), or column 1 of an (n, 2) prediction;
    labels are 0/1.
    """

    def __init__(self, eps=1e-12, name="log_loss", output_names=None, label_names=None):
        super().__init__(name, eps=eps, output_names=output_names, label_names=label_names)
        self.eps = eps

    def update(self, labels, preds, sample_weight=None) -> None:
        labels, preds = _pairs(labels, preds)
        for label, pred in zip(labels, preds):
            lab = _np(label).ravel().astype(numpy.float64)
            p = numpy.clip(_positive_prob(_np(pred), "LogLoss").astype(numpy.float64), self.eps, 1.0 - self.eps)
            if lab.size != p.size:
                raise ValueError(f"LogLoss: {lab.size} labels for {p.size} predictions")
            why = binary_domain_error("log_loss", lab)
            if why:
                raise ValueError(why)
            loss = -(lab * numpy.log(p) + (1.0 - lab) * numpy.log1p(-p))
            w = _row_weights(sample_weight, lab.size, "LogLoss")
            self.sum_metric += float(loss.sum() if w is None else w @ loss)
            self.num_inst += lab.size if w is None else float(w.sum())


def roc_auc(labels: numpy.ndarray, scores: numpy.ndarray, sample_weight=None) -> float:
    """Binary ROC AUC with tied scores counted half (the Mann-Whitney U statistic; equal to
    scikit-learn's ``roc_auc_score``). ``nan`` when only one class is present (or has weight 0).
    ``sample_weight``: a (positive, negative) pair counts ``w_p * w_n``.
    """
    labels = numpy.asarray(labels).ravel() != 0
    scores = numpy.asarray(scores, dtype=numpy.float64).ravel()
    if sample_weight is not None:
        return _weighted_roc_auc(labels, scores, numpy.asarray(sample_weight, dtype=numpy.float64).ravel())
    n_pos = int(numpy.count_nonzero(labels))
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = numpy.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    starts = numpy.flatnonzero(numpy.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = numpy.r_[starts[1:], scores.size]
    # rank (1-based) of each tie group = the mean of the ranks it spans
    ranks = numpy.repeat((starts + ends + 1) / 2.0, ends - starts)
    pos_rank_sum = float(ranks[labels[order]].sum())
    return (pos_rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _weighted_roc_auc(labels, scores, w) -> float:
    order = numpy.argsort(scores, kind="mergesort")
    s, pos, w = scores[order], labels[order], w[order]
    wp, wn = numpy.where(pos, w, 0.0), numpy.where(pos, 0.0, w)
    total_p, total_n = float(wp.sum()), float(wn.sum())
    if total_p == 0.0 or total_n == 0.0:
        return float("nan")
    starts = numpy.flatnonzero(numpy.r_[True, s[1:] != s[:-1]])
    group_p, group_n = numpy.add.reduceat(wp, starts), numpy.add.reduceat(wn, starts)
    below_n = numpy.cumsum(group_n) - group_n  # negative weight of strictly lower scores
    return float(group_p @ (below_n + 0.5 * group_n)) / (total_p * total_n)


@entry("auc", outputs=BINARY, binary=True, fused="auc", at_most=1)
class AUC(EvalMetric):
    """Binary ROC AUC over every sample seen since ``reset()`` (ties count half, as
    scikit-learn's ``roc_auc_score``); ``nan`` until both classes have been seen.

    Scores are the prediction (n,)/(n, 1) or column 1 of an (n, 2) prediction; labels are 0/1.
    ``update`` only stores copies of the batch, ``get()`` sorts everything seen: O(n log n).
    """

    def __init__(self, name="auc", output_names=None, label_names=None):
        super().__init__(name, output_names=output_names, label_names=label_names)

    def reset(self) -> None:
        super().reset()
        self._labels: list[numpy.ndarray] = []
        self._scores: list[numpy.ndarray] = []
        self._weights: list[numpy.ndarray] | None = None  # None while every update is unweighted

    def update(self, labels, preds, sample_weight=None) -> None:
        labels, preds = _pairs(labels, preds)
        for label, pred in zip(labels, preds):
            lab = numpy.array(_np(label), dtype=numpy.float64).ravel()
            score = numpy.array(_positive_prob(_np(pred), "AUC"), dtype=numpy.float64)
            if lab.size != score.size:
                raise ValueError(f"AUC: {lab.size} labels for {score.size} predictions")
            why = binary_domain_error("auc", lab)
            if why:
                raise ValueError(why)
            w = _row_weights(sample_weight, lab.size, "AUC")
            if w is not None and self._weights is None:
                self._weights = [numpy.ones(x.size) for x in self._labels]
            if self._weights is not None:
                self._weights.append(numpy.ones(lab.size) if w is None else w.copy())
            self._labels.append(lab)
            self._scores.append(score)
            self.num_inst += lab.size

    def get(self):
        if self.num_inst == 0:
            return (self.name, float("nan"))
        weights = numpy.concatenate(self._weights) if self._weights is not None else None
        return (self.name, roc_auc(numpy.concatenate(self._labels), numpy.concatenate(self._scores), weights))


@entry("composite")
class CompositeEvalMetric(EvalMetric):
    """Several metrics updated together; ``get()`` returns ``([names], [values])``."""

    def __init__(self, metrics=None, name="composite", output_names=None, label_names=None):
        self.metrics = [create(m) for m in (metrics or [])]
        super().__init__(name, output_names=output_names, label_names=label_names)

    def add(self, metric) -> None:
        self.metrics.append(create(metric))

    def get_metric(self, index: int) -> EvalMetric:
        try:
            return self.metrics[index]
        except IndexError:
            raise ValueError(f"metric index {index} is out of range: there are {len(self.metrics)} metrics") from None

    def update_dict(self, labels, preds) -> None:
        for metric in self.metrics:
            metric.update_dict(labels, preds)

    def update(self, labels, preds, sample_weight=None) -> None:
        for metric in self.metrics:
            update_metric(metric, labels, preds, sample_weight)

    def reset(self) -> None:
        for metric in getattr(self, "metrics", []):
            metric.reset()

    def get(self):
        names, values = [], []
        for metric in self.metrics:
            name, value = metric.get()
            if isinstance(name, list):
                names.extend(name)
                values.extend(value)
            else:
                names.append(name)
                values.append(value)
        return (names, values)

    def get_config(self) -> dict:
        config = super().get_config()
        config["metrics"] = [m.get_config() for m in self.metrics]
        return config


class CustomMetric(EvalMetric):
    """A metric from ``feval(label, pred)`` over numpy arrays, returning either a value (averaged
    over calls) or ``(sum_metric, num_inst)``.
    """

    def __init__(self, feval, name=None, allow_extra_outputs=False, output_names=None, label_names=None):
        if name is None:
            name = getattr(feval, "__name__", "custom")
            if name.startswith("<"):
                name = f"custom({name})"
        super().__init__(name, feval=feval, allow_extra_outputs=allow_extra_outputs,
                         output_names=output_names, label_names=label_names)
        self._feval = feval
        self._allow_extra_outputs = allow_extra_outputs

    def update(self, labels, preds, sample_weight=None) -> None:
        if sample_weight is not None:
            raise ValueError(f"custom metric {self.name!r} does not take sample weights (importance weights)")
        if not isinstance(labels, (list, tuple)):
            labels = [labels]
        if not isinstance(preds, (list, tuple)):
            preds = [preds]
        if not self._allow_extra_outputs or len(preds) < len(labels):
            labels, preds = _pairs(labels, preds)
        for label, pred in zip(labels, preds):
            result = self._feval(_np(label), _np(pred))
            if isinstance(result, tuple):
                self.sum_metric += result[0]
                self.num_inst += result[1]
            else:
                self.sum_metric += result
                self.num_inst += 1

    def get_config(self):
        raise NotImplementedError("a CustomMetric wraps a Python function and cannot be serialized")


def np(numpy_feval, name=None, allow_extra_outputs=False):
    """A :class:`CustomMetric` from a function of numpy arrays (MXNet's ``metric.np``)."""

    def feval(label, pred):
        return numpy_feval(label, pred)

    feval.__name__ = numpy_feval.__name__
    return CustomMetric(feval, name, allow_extra_outputs)


def create(metric, *args, **kwargs) -> EvalMetric:
    """A metric from a name (case-insensitive: ``'mse'``, ``'rmse'``, ``'mae'``, ``'acc'`` /
    ``'accuracy'``, ``'ce'`` / ``'cross-entropy'``, ``'log_loss'``, ``'auc'``), a callable
    ``feval(label, pred)`` (a :class:`CustomMetric`), a list of any of these (a
    :class:`CompositeEvalMetric`) or a metric instance (returned as is).
    """
    if isinstance(metric, EvalMetric):
        return metric
    if isinstance(metric, str):
        return info(metric).klass(*args, **kwargs)
    if isinstance(metric, (list, tuple)):
        composite = CompositeEvalMetric()
        for m in metric:
            composite.add(create(m, *args, **kwargs))
        return composite
    if callable(metric):
        return CustomMetric(metric, *args, **kwargs)
    raise TypeError(f"cannot make a metric from {type(metric).__name__} {metric!r}")
