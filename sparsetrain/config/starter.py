"""``sparsetrain init``: look at a data file and write a commented config that ``fit`` runs as is.

:func:`sniff` reads the data once (format, rows, feature count, index base, label values; for
CSV/TSV the delimiter, header, label column and column types from the first lines, for Vowpal
Wabbit the namespaces — :mod:`.sniff_text`);
:func:`starter_config` turns that into YAML text for a task (``binary``, ``regression`` or
``multiclass``) and a model preset (default: ``logistic``, ``linear``, ``softmax``);
:func:`write_starter_config` checks the pair, writes the file atomically (never over an existing
one unless ``force``) and loads it back through :func:`~sparsetrain.config.load_config`, so a
config it writes is one ``fit`` accepts.

The label rules are :mod:`sparsetrain.labels`' (a binary task takes two values, the larger → 1;
a multiclass task takes class ids 0..K-1 or 1..K); the file records what was found
(``data.label_values``, ``data.label_base``), so a different file read later is held to it.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from ..base import ConfigError, DataFormatError
from ..labels import binary_pair, text_labels_of
from .presets import PRESETS
from .schema import format_from_name

TASKS = ("binary", "regression", "multiclass")
#: The preset each task starts from, and the presets each task may use.
DEFAULT_PRESET = {"binary": "logistic", "regression": "linear", "multiclass": "softmax"}
TASK_PRESETS = {"binary": ("logistic", "fm", "wide_deep"), "regression": ("linear", "fm", "wide_deep"),
                "multiclass": ("softmax",)}
_METRICS = {"binary": ["log_loss", "accuracy"], "regression": ["mse"], "multiclass": ["accuracy", "cross-entropy"]}
_OPTIMIZER = {"binary": ("adagrad", 0.1), "regression": ("adagrad", 0.5), "multiclass": ("adagrad", 0.1)}
_TARGET_EXAMPLE = {"binary": "eval_accuracy: 0.9", "regression": "eval_mse: 1.0", "multiclass": "eval_accuracy: 0.8"}
_MAX_SHOWN_LABELS = 10
_MAX_DISTINCT = 1000  # label values told apart by sniff (more only matter to a regression)


@dataclass
class DataSummary:
    """What :func:`sniff` found in a data file."""

    path: str
    format: str
    rows: int
    num_features: int
    zero_based: bool
    nnz: int
    labels: list = field(default_factory=list)  # the distinct label values, sorted (at most _MAX_DISTINCT), numbers
    texts: list[str] = field(default_factory=list)  # CSV/TSV: the distinct text labels (at most _MAX_DISTINCT)
    distinct_labels: int = 0
    label_min: float = 0.0
    label_max: float = 0.0
    label_std: float = 0.0  # the standard deviation of the labels (a regression's learning rate follows it)
    csv: object = None  # CSV/TSV: the sniffed :class:`~.sniff_text.CSVLayout`
    namespaces: list[str] = field(default_factory=list)  # Vowpal Wabbit: the named namespaces seen
    hash_bits: int | None = None  # CSV/TSV and VW: the buckets chosen for hashed features
    weighted_rows: int = 0  # Vowpal Wabbit: rows with an importance weight other than 1

    @property
    def integer_labels(self) -> bool:
        return all(float(v).is_integer() for v in self.labels)

    def label_text(self) -> str:
        """The label values found, as the config's comment shows them (``{0, 1}``)."""
        return _labels_text(self)


class _Labels:
    """The label values of a file, block by block (up to ``_MAX_DISTINCT`` distinct ones told apart)."""

    def __init__(self):
        self.values: set = set()
        self.texts: set = set()
        self.lo, self.hi = np.inf, -np.inf
        self.n, self.sum, self.sumsq = 0, 0.0, 0.0

    def add(self, y, names: dict | None = None) -> None:
        """Note the labels ``y``; ``names``: a CSV reader's hash -> text of its text labels (NaN in ``y``)."""
        if names is not None and y.size:
            text, hashes = text_labels_of(y)
            if text.any():
                if len(self.texts) <= _MAX_DISTINCT:
                    self.texts.update(names[int(h)] for h in np.unique(hashes[text]))
                y = y[~text]
        if y.size:
            self.lo, self.hi = min(self.lo, float(y.min())), max(self.hi, float(y.max()))
            y64 = np.asarray(y, np.float64)
            self.n, self.sum, self.sumsq = self.n + y.size, self.sum + float(y64.sum()), self.sumsq + float(y64 @ y64)
            if len(self.values) <= _MAX_DISTINCT:
                self.values.update(np.unique(y).tolist())

    def fill(self, s: DataSummary) -> DataSummary:
        ordered = sorted(self.values)
        s.labels, s.distinct_labels = [float(v) for v in ordered[:_MAX_DISTINCT]], len(ordered) + len(self.texts)
        s.texts = sorted(self.texts)[:_MAX_DISTINCT]
        s.label_min, s.label_max = float(self.lo), float(self.hi)
        if self.n:
            mean = self.sum / self.n
            s.label_std = float(np.sqrt(max(self.sumsq / self.n - mean * mean, 0.0)))
        return s


def sniff(path: str, label: str | None = None) -> DataSummary:
    """Read ``path`` once, chunk by chunk (bounded memory): rows, features, the label values (up to
    ``_MAX_DISTINCT`` distinct ones are told apart). LibSVM: features = largest index + 1 and the
    index base (zero-based when an index 0 occurs, as scikit-learn decides). CSV/TSV and Vowpal Wabbit:
    the layout from the first lines (:mod:`.sniff_text`; ``label``: the CSV label column by name),
    then the whole file through the compiled reader with it. ``DataFormatError`` for unreadable data."""
    fmt = format_from_name(path)
    if fmt != "libsvm":
        return _sniff_hashed(path, fmt, label)
    from ..io import LibSVMReader

    if label is not None:
        raise ConfigError("--label: names a CSV/TSV column; a LibSVM label is the first token of each line")
    rows = nnz = 0
    lo, hi = None, -1
    labels = _Labels()
    for block in LibSVMReader(path, zero_based=True, num_labels=1):  # raw indices: the base is decided below
        rows += block.num_rows
        nnz += block.nnz
        if block.nnz:
            lo = int(block.indices.min()) if lo is None else min(lo, int(block.indices.min()))
            hi = max(hi, int(block.indices.max()))
        labels.add(block.labels.ravel())
    if rows == 0:
        raise DataFormatError(f"{path}: no data rows (the file is empty or only has comments)")
    zero_based = lo is None or lo == 0
    num_features = max(hi + 1 if zero_based else hi, 1)
    return labels.fill(DataSummary(path, fmt, rows, num_features, zero_based, nnz))


def _sniff_hashed(path: str, fmt: str, label: str | None) -> DataSummary:
    from . import sniff_text

    layout, namespaces = None, []
    if fmt == "csv":
        layout = sniff_text.sniff_csv(path, label)
        bits = layout.hash_bits
    else:
        if label is not None:
            raise ConfigError("--label: names a CSV/TSV column; a Vowpal Wabbit label is the first token of each line")
        namespaces = sniff_text.sniff_vw_namespaces(path)
        bits = sniff_text.DEFAULT_HASH_BITS
    rows, nnz, blocks, weighted = sniff_text.hashed_summary(path, fmt, layout, bits)
    if rows == 0:
        raise DataFormatError(f"{path}: no data rows")
    labels = _Labels()
    for y, names in blocks:
        labels.add(y, names)
    num_features = (1 << bits) + (len(layout.numeric) if layout is not None else 0)
    s = DataSummary(path, fmt, rows, num_features, True, nnz, csv=layout, namespaces=namespaces, hash_bits=bits,
                    weighted_rows=weighted)
    return labels.fill(s)


def _num(v: float):
    return int(v) if float(v).is_integer() else float(v)


def _labels_text(s: DataSummary) -> str:
    if s.distinct_labels > _MAX_SHOWN_LABELS:
        many = f"more than {_MAX_DISTINCT}" if s.distinct_labels > _MAX_DISTINCT else str(s.distinct_labels)
        return f"{s.label_min:.6g}..{s.label_max:.6g} ({many} distinct values)"
    return "{" + ", ".join([f"{_num(v):.6g}" if isinstance(_num(v), float) else str(_num(v)) for v in s.labels]
                           + [repr(t) for t in s.texts]) + "}"


def _check_task(s: DataSummary, task: str) -> dict:
    """The label keys the task needs, or a ``ConfigError`` when the labels do not fit it."""
    if task == "binary":
        if s.distinct_labels > 2:
            raise ConfigError(f"--task binary: {s.path} has more than two label values ({_labels_text(s)}); use "
                              "--task multiclass or regression")
        if s.distinct_labels == 2:
            return {"label_values": [v if isinstance(v, str) else _num(v)
                                     for v in binary_pair(*s.labels, *s.texts)]}
        return {}
    if s.texts:
        raise ConfigError(f"--task {task}: {s.path} has text labels ({_labels_text(s)}); "
                          f"{'a regression label' if task == 'regression' else 'a class id'} must be a number "
                          "(two texts are a binary model's labels: --task binary)")
    if task == "multiclass":
        if not s.integer_labels or (s.labels and s.labels[0] < 0):
            raise ConfigError(f"--task multiclass: {s.path} has labels {_labels_text(s)}, not class ids 0..K-1 "
                              "or 1..K")
        lo, hi = int(s.labels[0]), int(s.labels[-1])
        base = 0 if lo == 0 else 1
        if lo > 1:
            raise ConfigError(f"--task multiclass: {s.path}'s class ids start at {lo}; they must start at 0 or 1")
        classes = hi - base + 1
        if classes < 2:
            raise ConfigError(f"--task multiclass: {s.path} has a single class {_labels_text(s)}")
        return {"label_base": base, "classes": classes}
    return {}


def _check_task_and_preset(task: str, preset: str | None) -> str:
    """The preset to write (the task's default for ``None``); a ``ConfigError`` for an unknown task or
    preset, or a preset that does not fit the task."""
    from ..base import did_you_mean

    if task not in TASKS:
        hint = did_you_mean(task, TASKS).replace(" (", "; ").rstrip(")")
        raise ConfigError(f"--task: must be one of {', '.join(TASKS)} (got {task!r}{hint})")
    preset = preset or DEFAULT_PRESET[task]
    if preset not in PRESETS:
        raise ConfigError(f"--preset: unknown preset {preset!r}{did_you_mean(preset, PRESETS)}; the presets: "
                          f"{', '.join(PRESETS)}")
    if preset not in TASK_PRESETS[task]:
        raise ConfigError(f"--preset: {preset} does not fit --task {task}; use {' or '.join(TASK_PRESETS[task])}")
    return preset


def starter_config(s: DataSummary, task: str, preset: str, out: str, command: str = "") -> str:
    """The commented YAML text of a config for the data ``s``, ``task`` and ``preset`` (checked by
    :func:`_check_task_and_preset`; ``out``: where it will be written, the data path is made relative to it)."""
    keys = _check_task(s, task)
    train = _data_path(s.path, out)
    opt, lr = _OPTIMIZER[task]
    lines = [
        f"# Written by `{command or 'sparsetrain init'}`.",
        f"# Data: {_data_text(s)}, {s.nnz} non-zeros, labels {_labels_text(s)}.",
        f"# Train it: sparsetrain fit {out}",
        f"# See the model's graph: sparsetrain infer-stypes {out}",
        "data:",
        _line(f"  train: {_yaml(train)}", "a relative path is read from this file's directory"),
        _line("  eval: null", "a held-out file scored after every epoch"),
    ]
    if s.format == "libsvm":
        lines += [
            _line(f"  num_features: {s.num_features}", "largest feature index + 1; eval/predict data must fit it"),
            _line(f"  zero_based: {'true' if s.zero_based else 'false'}",
                  f"feature indices start at {0 if s.zero_based else 1}"),
        ]
    else:
        lines += _hashed_lines(s)
    if "label_values" in keys and any(isinstance(v, str) for v in keys["label_values"]):
        neg, pos = (json.dumps(v, ensure_ascii=False) if isinstance(v, str) else v for v in keys["label_values"])
        lines.append(_line(f"  label_values: [{neg}, {pos}]", f"binary labels: {neg} → 0, {pos} → 1 (a name such "
                           "as yes/click, else the later in sorted order)"))
    elif "label_values" in keys:
        neg, pos = keys["label_values"]
        lines.append(_line(f"  label_values: [{neg}, {pos}]", f"binary labels: {neg} → 0, {pos} → 1 (the larger "
                           "is the positive class)"))
    if keys.get("label_base"):
        lines.append(_line("  label_base: 1", "class ids 1..K in the file (trained as 0..K-1)"))
    lines += [
        "  batch_size: 32",
        _line("  shuffle: true", "needs the data in memory (data.cache: auto keeps what fits)"),
        "model:",
        _line(f"  preset: {preset}", f"{' | '.join(PRESETS)}; variables/ops/loss extend it"),
    ]
    if preset == "softmax":
        lines.append(_line(f"  classes: {keys['classes']}", "class ids found in the data"))
    if preset == "fm":
        lines.append(_line("  k: 8", "factors per feature"))
    if preset == "wide_deep":
        lines.append(_line("  hidden: [8]", "widths of the deep part (the first is the embedding)"))
    if task == "regression" and preset in ("fm", "wide_deep"):
        lines.append(_line("  loss: {op: LinearRegressionOutput}", "the preset's output, made a regression"))
    lr_line = f"  learning_rate: {lr}"
    if task == "regression":
        lr, lr_comment, mults = _regression_rates(s, preset)
        lr_line = _line(f"  learning_rate: {lr:g}", lr_comment)
        if mults:
            lines.append("  variables:")
            lines += [_line(f"    {name}: {{lr_mult: {mult:g}}}", comment) for name, mult, comment in mults]
    lines += [
        "optimizer:",
        f"  name: {opt}",
        lr_line,
        "train:",
        "  epochs: 10",
        f"  metrics: [{', '.join(_METRICS[task])}]",
        "  seed: 0",
        _line(f"  # target: {{{_TARGET_EXAMPLE[task]}}}", "final values to reach; a miss makes fit exit 1"),
        "",
    ]
    return "\n".join(lines)


# The factors' rate of an fm regression: this over the non-zeros per row (see _regression_rates).
FM_FACTOR_RATE = 0.2


def _regression_rates(s: DataSummary, preset: str) -> tuple[float, str, list]:
    """A regression's ``(learning_rate, its comment, [(variable, lr_mult, comment), ...])``.

    AdaGrad moves a weight by about the learning rate per update, whatever the error: with labels of
    another scale than 1 a fixed rate learns far too slowly (data/linreg.libsvm, std 34: linear mse 1027
    after 10 epochs at 0.5, 0.58 at 17), so a model's linear weights and bias train at 0.5 × the labels'
    std. The other parts have rates of their own (``lr_mult``, measured in benchmarks/RESULTS.md, 10
    epochs, 1 thread): fm's factors diverge at the linear rate (its pairwise term sums products of two
    factors over a row; linreg 1452 at 17 for every weight), and learn at FM_FACTOR_RATE / non-zeros per
    row (linreg 0.61, a generated CSV 0.0034, within 2 × of linear; a planted-interaction set 0.0078,
    linear 2.4); wide_deep's embedding MLP learns at 0.5 (its dense projection scales the output), so its
    wide weights and bias get the multiplier (std), whatever its ``hidden`` widths.
    """
    if s.label_std <= 0:
        return 0.5, "the labels are constant", []
    rule = f"0.5 × the labels' standard deviation ({s.label_std:.3g})"
    linear = float(f"{0.5 * s.label_std:.2g}")
    if preset == "linear":
        return linear, rule, []
    if preset == "fm":
        per_row = max(s.nnz / s.rows, 1.0)  # (a pair needs two non-zeros; rows of none: the linear part)
        mult = float(f"{FM_FACTOR_RATE / per_row / linear:.2g}")
        return linear, f"{rule}: linear weights and bias", [
            ("factors", mult, f"lr_mult × learning_rate = {FM_FACTOR_RATE} / {per_row:.3g} non-zeros per row")]
    deep = 0.5
    mult = float(f"{linear / deep:.2g}")
    return deep, "the embedding MLP's; the wide part's: lr_mult", [
        (name, mult, f"lr_mult × learning_rate = {rule}") for name in ("wide_weight", "bias")]


def _data_text(s: DataSummary) -> str:
    if s.format == "libsvm":
        base = "zero-based" if s.zero_based else "one-based"
        return f"libsvm, {s.rows} rows, {s.num_features} features ({base} indices)"
    if s.format == "csv":
        from .sniff_text import display_delimiter

        c = s.csv
        return (f"csv ({display_delimiter(c.delimiter)}-separated, {'a header line' if c.header else 'no header'}), "
                f"{s.rows} rows, {len(c.numeric)} numeric + {len(c.categorical)} categorical columns")
    weighted = f", {s.weighted_rows} rows with importance weights" if s.weighted_rows else ""
    return f"vw, {s.rows} rows, namespaces {', '.join(s.namespaces) or '(default only)'}{weighted}"


def _flow(names) -> str:
    return "[" + ", ".join(_yaml(n) for n in names) + "]"


def _hashed_lines(s: DataSummary) -> list[str]:
    """The ``data`` keys of a CSV/TSV or Vowpal Wabbit file (hashing instead of ``num_features``)."""
    lines = [_line(f"  format: {s.format}", "csv: CSV/TSV with the columns below; vw: Vowpal Wabbit text")]
    if s.format == "csv":
        c = s.csv
        if c.header:
            lines.append(_line(f"  csv: {{delimiter: {_yaml(c.delimiter)}, header: true}}", "names from line 1"))
        else:
            lines.append(_line(f"  csv: {{delimiter: {_yaml(c.delimiter)}, header: false,",
                               "no header line: the columns in file order"))
            lines.append(f"        columns: {_flow(c.columns)}}}")
        lines.append(_line(f"  label: {_yaml(c.label)}", "one of two texts per row" if s.texts else "a number per row"))
        if c.id_column is not None:
            lines.append(_line(f"  id_column: {_yaml(c.id_column)}", "row ids, no feature: predict's first column"))
        lines.append(_line(f"  numeric: {_flow(c.numeric)}", "one feature each (the value)"))
        if c.log1p:
            lines.append(_line(f"  log1p: {_flow(c.log1p)}", "counts (integers >= 0 up to 100 and more): "
                               "sign(x)·log(1+|x|)"))
        lines.append(_line(f"  categorical: {_flow(c.categorical)}", "strings hashed into 2**hash_bits buckets"))
        if c.ignored:
            lines.append(f"  # not used (empty in the first rows): {', '.join(c.ignored)}")
        if len(c.categorical) >= 2:
            a, b = c.categorical[:2]
            lines.append(_line(f"  # crosses: [[{_yaml(a)}, {_yaml(b)}]]", "hashed pairwise crosses of categorical "
                               "columns"))
        lines.append(_line(f"  hash_bits: {c.hash_bits}", f"{c.distinct} distinct categorical values in the first "
                           f"rows; num_features = 2**{c.hash_bits} + {len(c.numeric)}"))
    else:
        if len(s.namespaces) >= 2:
            a, b = s.namespaces[:2]
            lines.append(_line(f"  # crosses: [[{_yaml(a)}, {_yaml(b)}]]", f"as vw -q: every feature of {a} "
                               f"times every feature of {b}"))
        lines.append(_line(f"  hash_bits: {s.hash_bits}", f"as vw -b {s.hash_bits}: num_features = 2**{s.hash_bits}"))
    return lines


def _line(text: str, comment: str) -> str:
    """``text`` with ``comment`` at column 35, or on the line above when ``text`` is long."""
    if len(text) > 60:
        indent = text[: len(text) - len(text.lstrip())]
        return f"{indent}# {comment}\n{text}"
    return f"{text.ljust(34)} # {comment}"


def _data_path(data: str, out: str) -> str:
    """``data`` relative to the config's directory when they share more than the root, else absolute."""
    data, where = os.path.abspath(data), os.path.dirname(os.path.abspath(out))
    try:
        shared = os.path.commonpath([data, where])
    except ValueError:  # different drives
        return data
    return os.path.relpath(data, where) if shared != os.path.dirname(shared) else data


def _yaml(value: str) -> str:
    """``value`` as one line of YAML: unicode as it is (a column ``Größe``, not ``"Gr\\xF6\\xDFe"``), escaped
    where PyYAML would write a character that reads back otherwise (NEL, the unicode line separators)."""
    import yaml

    for unicode in (True, False):
        text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=unicode, width=1 << 30)
        text = text.strip().removesuffix("\n...").strip()
        if yaml.safe_load(text) == value:
            break
    return text


def write_starter_config(data: str, task: str, out: str, preset: str | None = None, force: bool = False,
                         command: str = "", label: str | None = None) -> tuple[str, DataSummary]:
    """Sniff ``data``, write the config to ``out`` (atomically; an existing file only with ``force``) and
    check that it loads. ``label``: a CSV/TSV file's label column (default: sniffed). Returns
    ``(text, summary)``."""
    from ..fileio import refuse_to_replace, write_atomic
    from .load import load_config

    refuse_to_replace(out, force)
    if os.path.isdir(out):
        raise ConfigError(f"--out: {out} is a directory; give a file name, e.g. {os.path.join(out, 'model.yaml')}")
    if not out.lower().endswith((".yaml", ".yml")):  # (fit reads any name; a .json or .csv name would mislead)
        raise ConfigError(f"--out: {out}: init writes a YAML config; name it .yaml or .yml")
    preset = _check_task_and_preset(task, preset)  # before reading what may be a large file
    summary = sniff(data, label)
    text = starter_config(summary, task, preset, out, command)
    write_atomic(out, text)
    load_config(out)  # what fit does first: a config init writes is one fit accepts
    return text, summary
