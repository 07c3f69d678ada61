"""The config schema: one pydantic model per section, the single source of every default.

The CLI (``gen-data``'s options), the README's reference (``reference.py``) and the validators
all read these models; nothing else writes a default or a range down again.
"""
from __future__ import annotations

import copy
import glob as _glob
import os
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .. import initializer
from ..base import ConfigError
from ..io.base import DEFAULT_MAX_LINE_BYTES, named_format
from ..io.synthetic_options import SyntheticOptions, check_given, not_read
from ..validation import NumbersNotBools
from . import factories, graph
from .presets import BUILDERS, PRESETS, ZERO_START, listed


def format_from_name(path: str) -> str:
    """What ``data.format: auto`` reads a data file as: :func:`named_format`, else ``libsvm``."""
    return named_format(path) or "libsvm"


def _as_list(v):
    if v is None or isinstance(v, list):
        return v
    if isinstance(v, (str, os.PathLike)):
        return [os.fspath(v)]
    return v


def _zero_based(v):
    if isinstance(v, str) and v.lower() in ("auto", "true", "false"):
        return {"auto": "auto", "true": True, "false": False}[v.lower()]
    if isinstance(v, bool) or v == "auto":
        return v
    raise ValueError("must be auto, true or false")


PathList = Annotated[list[str] | None, BeforeValidator(_as_list)]
ZeroBased = Annotated[Literal["auto"] | bool, BeforeValidator(_zero_based)]


def _auto_or_count(what: str):
    """A validator of ``auto`` or a whole number of ``what`` ≥ 1 (``"2"`` from ``--set`` included)."""
    def check(v):
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v.strip())
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"must be auto or a whole number of {what} >= 1")
        return v
    return check


Threads = Annotated[Literal["auto"] | int, BeforeValidator(_auto_or_count("threads"))]
SyncEvery = Annotated[Literal["auto"] | int, BeforeValidator(_auto_or_count("batches"))]


class _Strict(NumbersNotBools):
    # a number is finite everywhere (`learning_rate: .inf` trained until the loss was NaN), and no true/false
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class GenerateConfig(SyntheticOptions):
    """Synthetic data written by ``sparsetrain gen-data`` before training (regenerated when options change)."""

    path: str = Field(description="File to write: LibSVM rows (the true weights go beside it) or, with "
                      "`format: csv`, a TSV or CSV file (its planted model goes beside it).")

    @model_validator(mode="after")
    def _only_what_is_read(self):
        try:
            check_given(self, self.model_fields_set)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self


class CSVConfig(_Strict):
    """How a CSV/TSV file is split into fields (as Python's `csv` module reads it)."""

    delimiter: str | None = Field(None, description="Field separator, one character; default tab for `.tsv` "
                                  "files, else comma.")
    quote: str = Field('"', description="Quote character (`\"\"` inside a quoted field is one quote).")
    header: bool | None = Field(None, description="The first line holds the column names (and is no data); "
                                "default: true unless `columns` names the fields (`gen-data` writes a header line).")
    columns: list[str] | None = Field(None, description="Column names in file order (instead of a header).")

    def has_header(self) -> bool:
        """``header``, or its default: a header line unless ``columns`` names the fields."""
        return self.columns is None if self.header is None else self.header


class DataConfig(_Strict):
    """Where the data comes from and how it is batched."""

    train: PathList = Field(None, description="Training data file(s): a path, a list of paths or a glob "
                            "(`.gz`/`.bz2` read transparently), or `-` for stdin (read once: streamed for one epoch, or "
                            "kept with `cache: disk`; see `cache`). Give this or `generate`.")
    generate: GenerateConfig | None = Field(None, description="Generate the training data (gen-data options "
                                            "plus `path`) instead of reading `train`.")
    eval: PathList = Field(None, description="Evaluation data file(s) in the training data's format (a path, a "
                           "list of paths or a glob), scored after every epoch.")
    num_features: int | None = Field(None, gt=0, description="Number of features; defaults to "
                                     "`generate.features`, else to what the model's declared shapes imply, else "
                                     "(LibSVM) to the training files' largest index + 1 (one pass, said in the log).")
    zero_based: ZeroBased = Field("auto", description="Feature indices start at 0 (`true`), 1 (`false`), or "
                                  "decide from the file (`auto`, as scikit-learn).")
    cache: Literal["auto", "memory", "stream", "disk"] = Field(
        "auto", description="`memory` parses the file once and keeps it; `stream` re-reads it every epoch in "
        "bounded memory (on the compiled engine too: the next chunks parse while one trains, same batches and "
        "parameters as in memory); `disk` parses it once into a binary cache under `$SPARSETRAIN_CACHE_DIR` "
        "(default `~/.cache/sparsetrain`; rebuilt when the file or the parse options change) and memory-maps "
        "it, in this run and later ones; `auto` streams a file read once (`train.epochs: 1` without `shuffle`: "
        "the parse overlaps training), else keeps it in memory when it fits `memory_budget_mb`, else uses "
        "`disk` for several epochs or `shuffle`, else `stream` (the run log says which when it is not `memory`). "
        "stdin (`train: -`) is read once: `stream`, or `disk` into a cache private to the run (removed when it "
        "ends) for several epochs, `shuffle`, a binary model's label values or LibSVM's `zero_based: auto`; "
        "`auto` is `disk` when the run needs one of these, else `stream`; `memory` is refused.")
    memory_budget_mb: float = Field(1024, gt=0, description="Budget for `cache: auto`: the parsed CSR size is "
                                    "estimated from the file size.")
    max_line_bytes: int = Field(DEFAULT_MAX_LINE_BYTES, gt=0, description="The longest line a data file may have, "
                                "in bytes; a longer one is an error naming its line (bounds the memory one line "
                                "can take).")
    batch_size: int = Field(32, gt=0, description="Rows per batch.")
    last_batch: Literal["pad", "discard", "roll_over"] = Field("pad", description="What to do with a short "
                                                                "last batch, as MXNet's `last_batch_handle`.")
    shuffle: bool = Field(False, description="Shuffle rows every epoch: all of them in memory or on disk; a "
                          "stream (`cache: stream`, stdin) within windows of `shuffle_window` rows.")
    shuffle_window: int = Field(0, ge=0, description="With `shuffle` on a stream: rows are shuffled within "
                                "consecutive windows of this many rows, anew every epoch (the first window's "
                                "rows in a random order, then the next window's...; deterministic for a "
                                "`train.seed`), so memory holds about one window and a row moves less than a "
                                "window; 0: a stream is not shuffled. Data in memory or on disk is shuffled "
                                "whole.")
    input: str = Field("data", description="Model variable fed with the feature rows (CSR): not the label, not a "
                       "parameter (those have an init or a name ending in `weight`/`bias`).")
    format: Literal["auto", "libsvm", "csv", "vw"] = Field("auto", description="File format; `auto` decides "
                                                            "from the file name: `.csv`/`.tsv` → csv, `.vw` → "
                                                            "vw, else libsvm (`.gz`/`.bz2` suffixes ignored). A "
                                                            "format given applies to every train and eval file; "
                                                            "one named as another format (`x.libsvm` under csv) "
                                                            "is an error.")
    csv: CSVConfig = Field(default_factory=CSVConfig, description="CSV/TSV field splitting.")
    label: str | None = Field(None, description="CSV/TSV: the label column (default the first column).")
    weight_column: str | None = Field(None, description="CSV/TSV: a column of per-row importance weights "
                                      "(numbers >= 0; empty is 1) that scale each row's gradient and metrics, as "
                                      "Vowpal Wabbit's importance.")
    id_column: str | None = Field(None, description="CSV/TSV: a column of row ids (e.g. a Kaggle `id`), no "
                                  "feature: `predict` writes it as its first column instead of the row number.")
    numeric: list[str] = Field(default_factory=list, description="CSV/TSV: numeric columns, one feature "
                               "each (id `2**hash_bits + k` for the k-th); empty or 0 is no entry.")
    log1p: bool | list[str] = Field(False, description="CSV/TSV: numeric columns (or `true`: all) that "
                                    "become `sign(x)·log(1+|x|)`.")
    categorical: list[str] = Field(default_factory=list, description="CSV/TSV: string columns hashed "
                                   "into `2**hash_bits` buckets (key `column=value`, value 1).")
    crosses: list[list[str]] = Field(default_factory=list, description="Hashed pairwise crosses: CSV/TSV "
                                     "categorical column pairs (key `a=va^b=vb`), or Vowpal Wabbit namespace "
                                     "pairs (as `vw -q ab`).")
    hash_bits: int = Field(18, ge=1, le=31, description="CSV/TSV and VW: hashed features fall in "
                           "`2**hash_bits` buckets (MurmurHash3, seed 0; see the README).")
    keep_feature_names: bool = Field(False, description="CSV/TSV and VW: save `feature_names.json` (hashed "
                                     "id → the names that hash to it) in the run directory (one more pass "
                                     "over the training files, in Python; stdin's are collected as it is "
                                     "parsed, and written when training ends).")
    label_values: list[float | str] | None = Field(
        None, min_length=2, max_length=2, description="A binary model's two label values `[negative, positive]`, "
        "mapped to 0 and 1: numbers, or (CSV/TSV) texts such as `['no', 'yes']`; default: the two values of the "
        "training data, of two numbers the larger → 1 (so `{0, 1}`, `{-1, +1}` and `{1, 2}` all work), of texts a "
        "positive name (yes, true, click, ...) or else the later in sorted order → 1. A third value is an error.")
    label_base: Literal[0, 1] = Field(0, description="A softmax model's first class id: `0` (ids 0..K-1) or `1` "
                                      "(ids 1..K, mapped to 0..K-1).")

    @field_validator("label_values", mode="before")
    @classmethod
    def _no_yaml_booleans(cls, v):
        # YAML reads unquoted no/yes/off/on/false/true as booleans, which pydantic would take as 0 and 1
        if isinstance(v, (list, tuple)) and any(isinstance(x, bool) for x in v):
            raise ValueError(f"{list(v)}: YAML read unquoted no/yes/off/on/true/false as booleans; quote text label "
                             "values, e.g. ['no', 'yes']")
        return v

    @field_validator("train")
    @classmethod
    def _some_files(cls, v):
        if v is not None and not v:
            raise ValueError("give at least one file (or a glob)")
        return v

    @model_validator(mode="after")
    def _one_source(self):
        if self.train is None and self.generate is None:
            raise ValueError("give `train` (LibSVM files) or `generate` (synthetic data)")
        if self.train is not None and self.generate is not None:
            raise ValueError("give either `train` or `generate`, not both")
        return self

    def format_of(self, path: str) -> str:
        """``libsvm``, ``csv`` or ``vw``: ``format``, or what the file name says (stdin, ``-``:
        what the training file's name says, e.g. for ``predict RUN -``)."""
        if self.format != "auto":
            return self.format
        if path == "-":
            src = self.generate.path if self.generate is not None else next(
                (p for p in self.train or () if p != "-"), None)
            return self.format_of(src) if src is not None else "libsvm"
        return format_from_name(path)


class VariableConfig(_Strict):
    """One model variable (input, label or parameter)."""

    stype: Literal["default", "csr", "row_sparse"] = Field("default", description="Storage type.")
    shape: list[Annotated[int, Field(gt=0)]] | None = Field(None, description="Shape; data and label shapes "
                                                             "come from the data.")
    init: str | dict[str, Any] | None = Field(None, description="Initializer for a parameter, e.g. `zero` or "
                                              "`{normal: {sigma: 0.01}}`; overrides `model.init`.")
    dtype: Literal["float32", "float64"] | None = Field(None, description="Element type (float32 by default).")
    lr_mult: float = Field(1.0, gt=0, description="A parameter's learning-rate multiplier: it "
                           "trains at the optimizer's learning rate × this (MXNet's `lr_mult`), e.g. small for a "
                           "factorization machine's factors beside the larger steps its linear weights take.")
    wd_mult: float = Field(1.0, ge=0, description="A parameter's weight-decay multiplier: its "
                           "decay is `optimizer.wd` × this (MXNet's `wd_mult`; 0: no decay).")


class OpConfig(_Strict):
    """One operator node."""

    name: str = Field(description="Node name; later ops and the loss refer to it.")
    op: str = Field(description="Registry operator name (`sparse.dot` and `dot` are the same).")
    inputs: list[str] = Field(description="Variable or op names, in the operator's input order.")
    params: dict[str, Any] = Field(default_factory=dict, description="Operator parameters, e.g. "
                                   "`{transpose_a: true}`.")


class LossConfig(_Strict):
    """The output layer."""

    name: str = Field("output", description="Node name of the loss.")
    op: str = Field(description="`LinearRegressionOutput`, `LogisticRegressionOutput`, "
                    "`MAERegressionOutput` or `SoftmaxOutput`.")
    data: str = Field(description="The op (or variable) whose output is the prediction.")
    label: str = Field("label", description="The label variable.")
    params: dict[str, Any] = Field(default_factory=dict, description="Loss parameters, e.g. `{grad_scale: 1}`.")


class PresetOptions(_Strict):
    """A model preset and its options (``config/expand.py`` expands them into ``variables``, ``ops``
    and ``loss``; the weights are sized by ``data.num_features``)."""

    preset: Literal[PRESETS] | None = Field(None, description="A ready-made model: " + listed(
                                            f"`{name}` ({p.about})" for name, p in BUILDERS.items()) + ". "
                                            "Its weights have `data.num_features` rows (CSV/TSV and VW: "
                                            "`2**data.hash_bits`, 18 bits unless given, plus the numeric columns). "
                                            "`variables`, `ops` and `loss` given beside it extend or replace its "
                                            "parts by name; `infer-stypes` shows the expanded graph. The "
                                            "parameters of " + listed((f"`{n}`" for n in ZERO_START), "and") +
                                            " (those with an `init` of their own aside) start at zero unless "
                                            "`model.init` is given, so that `export` lists the rows training "
                                            "touched.")
    classes: int | None = Field(None, ge=2, description="Number of classes of the `softmax` preset.")
    k: int = Field(8, gt=0, description="Factors per feature of the `fm` preset.")
    hidden: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [8], min_length=1,
                                                      description="Layer widths of the `wide_deep` preset's deep "
                                                      "part (the first is the embedding width).")


class ModelConfig(PresetOptions):
    """The symbol graph: `variables`, `ops` and `loss`, or a `preset` (which may be extended by them)."""

    variables: dict[str, VariableConfig] = Field(description="Variables by name (the label variable may be left "
                                                 "out: it is declared for you). Not needed with a `preset`.")
    ops: list[OpConfig] = Field(description="Operator nodes (any order; cycles are rejected). Not needed with a "
                                "`preset`.")
    loss: LossConfig = Field(description="The loss / output layer. Not needed with a `preset`.")
    init: str | dict[str, Any] = Field(default_factory=lambda: copy.deepcopy(initializer.DEFAULT),
                                       description="Initializer of parameters without their own `init` "
                                       f"(MXNet Module's default; `zero` under every `preset` but "
                                       f"{listed(f'`{n}`' for n in PRESETS if n not in ZERO_START)}); "
                                       "names ending in `bias` start at zero.")


class OptimizerConfig(NumbersNotBools):
    """The optimizer; keys besides these are passed on to it and checked by it (e.g. `beta1`, `lamda1`)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True, allow_inf_nan=False)

    name: str = Field("sgd", description="`sgd`, `adagrad`, `adam`, `ftrl`, ...")
    learning_rate: float | None = Field(None, gt=0, description="Learning rate; default the optimizer's own "
                                        "(sgd 0.01, adagrad 0.01, adam 0.001, ftrl 0.1).")
    momentum: float | None = Field(None, ge=0, lt=1, description="Momentum (SGD).")
    wd: float = Field(0.0, ge=0, description="Weight decay.")
    clip_gradient: float | None = Field(None, gt=0, description="Clip each gradient element to ±this.")
    rescale_grad: float | None = Field(None, gt=0, description="Gradient scale; default 1/batch_size.")
    lr_scheduler: dict[str, dict[str, Any]] | None = Field(None, description="e.g. `{factor: {step: 1000, "
                                                           "factor: 0.9}}` (factor, multifactor, poly, cosine).")

    def optimizer_params(self, batch_size: int, sync_workers: int = 1) -> dict:
        """Keyword arguments of the optimizer (see :func:`~sparsetrain.config.factories.optimizer_params`)."""
        return factories.optimizer_params(self, batch_size, sync_workers)


class EarlyStoppingConfig(_Strict):
    """Stop when a metric has not improved for `patience` epochs; the best epoch is kept."""

    metric: str | None = Field(None, description="The metric key to watch, as in `metrics.jsonl` "
                               "(`eval_log_loss`, `mse`, `progressive_auc`, ...); its direction comes from the "
                               "metric catalogue. Default: `eval_<first metric>` with `data.eval`, else the first "
                               "training metric.")
    patience: int = Field(2, ge=1, description="Epochs without improvement before training stops.")
    min_delta: float = Field(0.0, ge=0, description="The least change that counts as an improvement.")


class TrainConfig(_Strict):
    """The training loop."""

    epochs: int = Field(10, gt=0, description="Number of epochs.")
    metrics: list[str] | None = Field(None, description="Metrics reported per epoch; default from the loss "
                                      "(mse, mae, log_loss or accuracy).")
    seed: int = Field(0, ge=0, description="Seeds initialization and shuffling.")
    kvstore: Literal["local", "dist_sync", "dist_async"] = Field(
        "local", description="Parameter store: `local` trains in this process; `dist_sync` / `dist_async` "
        "train on Ray with parameter servers and `--workers N` workers (needs `sparsetrain[dist]`).")
    engine: Literal["auto", "compiled", "graph"] = Field("auto", description="`compiled` runs whole epochs "
                                                        "as fused numba kernels (linear family, FM, wide & deep: "
                                                        "any graph whose ops, loss, metrics and optimizer have a "
                                                        "fused form); `graph` runs any graph; `auto` picks "
                                                        "`compiled` when the model has a fused form.")
    target: dict[str, float] = Field(default_factory=dict, description="Final metric values to reach, e.g. "
                                     "`{mse: 1.0}` (below it for error metrics, at least it for accuracy/auc); "
                                     "`eval_<metric>` targets the eval set, `progressive_<metric>` the progressive "
                                     "metrics. A miss makes `fit` exit 1; a target no run can reach (`accuracy: "
                                     "90`, `mse: 0`) is a config error.")
    strict_stypes: bool = Field(False, description="Make every storage fallback an error.")
    keep_checkpoints: int | None = Field(2, ge=1, description="How many of the latest epochs' checkpoints "
                                         "the run directory keeps (`null` keeps every one); the best epoch's "
                                         "is kept besides these.")
    early_stopping: EarlyStoppingConfig | None = Field(None, description="e.g. `{metric: eval_log_loss, "
                                                       "patience: 2, min_delta: 0}`: stop when the metric has not "
                                                       "improved for `patience` epochs.")
    progressive: bool = Field(False, description="Add `progressive_<metric>`: each training row scored "
                              "before it is trained on (Vowpal Wabbit's progressive validation).")
    plot: bool = Field(False, description="Write `metrics.png` (every metric per epoch) into the run "
                       "directory after each epoch (needs matplotlib: `sparsetrain[plot]`).")
    threads: Threads = Field("auto", description="Threads that train one model on the compiled engine "
                             "(Hogwild: lock-free updates, each thread on its share of every block of "
                             "batches); `auto` = the cores this process may use, one thread when an epoch "
                             "has fewer than 10,000 rows, half the cores (one of two) when the epoch is "
                             "streamed: its parse takes the rest (`$SPARSETRAIN_THREADS` when set). The graph "
                             "engine and distributed workers run one thread.")
    sync_every: SyncEvery = Field("auto", description="Distributed workers: batches trained locally per "
                                  "block between two exchanges with the parameter servers (pull the block's "
                                  "rows, push their change); `auto` = about 65536 rows per block, and 8 blocks "
                                  "per epoch for a worker's part of up to 65536 rows (fewer, larger ones above).")
    max_staleness: int = Field(4, ge=0, description="`dist_async`: how many blocks a worker may run ahead of "
                               "the slowest worker (0: none, the workers go block by block together).")
    push_dtype: Literal["float32", "float16"] = Field("float32", description="Distributed workers: the type "
                                                      "of the pushed changes on the wire (`float16` halves "
                                                      "the bytes, rounding each change).")
    deterministic: bool = Field(False, description="With `threads` > 1: the same parameters on every run "
                                "for a given thread count (each thread trains a private copy of the rows it "
                                "touches over its share of a block; the copies are merged in thread order).")


class Config(_Strict):
    """A whole run: data, model, optimizer, training and output."""

    data: DataConfig
    model: ModelConfig
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: str | None = Field(None, description="Run directory; default `runs/<config name>/`.")

    # set by load_config; not part of the schema
    _source: str | None = None
    _base_dir: str = "."
    _num_features: int | None = None
    _notes: list = []  # run-log lines about values decided while loading (e.g. num_features read from the data)

    # -- derived values ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return os.path.splitext(os.path.basename(self._source))[0] if self._source else "run"

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def num_features(self) -> int:
        return self._num_features

    @property
    def notes(self) -> list[str]:
        """Run-log lines about values decided while loading the config (e.g. ``num_features`` read
        from the training data)."""
        return list(self._notes)

    @property
    def data_name(self) -> str:
        return self.data.input

    @property
    def label_name(self) -> str:
        return self.model.loss.label

    @property
    def metrics(self) -> list[str]:
        from ..metric import default_metrics  # the loss operator's registration names them

        return list(self.train.metrics or default_metrics(graph.canonical_op(self.model.loss.op)))

    @property
    def metric_keys(self) -> list[str]:
        """Every metric key an epoch record holds: ``<metric>``, ``progressive_<metric>`` (with
        ``train.progressive``) and ``eval_<metric>`` (with ``data.eval``)."""
        names = self.metrics
        keys = list(names)
        if self.train.progressive:
            keys += [f"progressive_{m}" for m in names]
        if self.data.eval:
            keys += [f"eval_{m}" for m in names]
        return keys

    @property
    def best_metric(self) -> str | None:
        """The record key that picks the best epoch: ``train.early_stopping.metric`` (default
        ``eval_<first metric>`` with ``data.eval``, else the first metric); without early stopping,
        ``eval_<first metric>`` when there is ``data.eval``, else ``None`` (the last epoch is the best)."""
        stop = self.train.early_stopping
        if stop is not None and stop.metric:
            return stop.metric
        if self.data.eval:
            return f"eval_{self.metrics[0]}"
        return self.metrics[0] if stop is not None else None

    @property
    def param_names(self) -> list[str]:
        return [n for n in self.model.variables if n not in (self.data_name, self.label_name)]

    def resolve(self, path: str) -> str:
        """A path from this config, made absolute against the config file's directory."""
        return resolve_path(self._base_dir, path)

    def data_format(self) -> str:
        """The training data's format (``libsvm``, ``csv`` or ``vw``)."""
        if self.data.generate is not None:
            return self.data.format_of(self.data.generate.path)
        return self.data.format_of(self.data.train[0])

    def csv_schema(self):
        """The ``data.*`` CSV/TSV keys as an ``io.csv_schema.CSVSchema``."""
        from ..io.csv_schema import CSVSchema

        d = self.data
        return CSVSchema(columns=d.csv.columns, label=d.label, numeric=d.numeric, categorical=d.categorical,
                         crosses=d.crosses, hash_bits=d.hash_bits, log1p=d.log1p, delimiter=d.csv.delimiter,
                         quote=d.csv.quote, header=d.csv.has_header(), weight_column=d.weight_column,
                         id_column=d.id_column, key="data")

    def train_files(self) -> list[str]:
        if self.data.generate is not None:
            return [self.resolve(self.data.generate.path)]
        return expand_paths(self._base_dir, self.data.train, "data.train")

    def eval_files(self) -> list[str]:
        return expand_paths(self._base_dir, self.data.eval, "data.eval") if self.data.eval else []

    def output_dir(self) -> str:
        return self.resolve(self.output) if self.output else os.path.join("runs", self.name)

    # -- graph (built in graph.py) -----------------------------------------------------------------
    def build_symbol(self):
        """The model as a ``Symbol``, built through the public ``sparsetrain.sym`` API."""
        return graph.build_symbol(self)

    def initializer(self):
        """The initializer of parameters without their own ``init`` (``model.init``)."""
        return graph.make_initializer(self.model.init, "model.init")

    def plan(self, batch_size: int | None = None, for_training: bool = True):
        """Shape + storage-type inference of the whole graph (forward and backward), without data."""
        return graph.plan(self, batch_size=batch_size, for_training=for_training)

    def describe(self, batch_size: int | None = None, backward: bool = False):
        """What ``infer-stypes`` prints: ``(plan, rows, gradients, parameters)``.

        ``rows`` are ``Plan.describe`` records plus ``hint`` (for fallback nodes: which input stype
        to change to get a kernel); ``gradients`` lists each parameter's gradient stype and shape (with
        ``backward``); ``parameters`` each parameter's name, stype, shape, ``lr_mult`` and ``wd_mult`` (those
        the run's optimizer applies: :meth:`~sparsetrain.optimizer.Optimizer.multipliers`).
        """
        return graph.describe(self, batch_size=batch_size, backward=backward)

    def to_yaml(self, output_dir: str | None = None) -> str:
        """The resolved config (defaults filled in, paths absolute) as YAML."""
        doc = self.model_dump(mode="json")
        if doc["data"]["generate"] is not None:  # what the generator reads: check_given refuses the rest
            doc["data"]["generate"]["path"] = self.resolve(doc["data"]["generate"]["path"])
            for key in not_read(self.data.generate.format, self.data.generate.task):
                del doc["data"]["generate"][key]
        if doc["data"]["train"] is not None:
            doc["data"]["train"] = self.train_files()
        if doc["data"]["eval"] is not None:
            doc["data"]["eval"] = self.eval_files()
        doc["data"]["num_features"] = self._num_features
        for key in PresetOptions.model_fields:  # a preset is expanded into the graph written here
            doc["model"].pop(key, None)
        doc["train"]["metrics"] = self.metrics
        doc["output"] = os.path.abspath(output_dir or self.output_dir())
        return yaml.dump(doc, Dumper=_DUMPER, sort_keys=False, default_flow_style=None)


# libyaml's emitter where PyYAML was built with it (a run writes its config.yaml: ~4x faster than the Python
# emitter); the same documents (it folds long quoted strings elsewhere)
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def resolve_path(base_dir: str, path: str) -> str:
    """A path from a config, made absolute against the config file's directory ``base_dir``."""
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(base_dir, path))


def expand_paths(base_dir: str, paths, key: str) -> list[str]:
    """Config paths made absolute against ``base_dir``, globs expanded (a path that names a file as it is
    stays that file: 'train[2024].csv' said "no file matches", and so did the run's own config.yaml, which
    lists the files found); a missing file is a ``ConfigError`` naming ``key[k]``."""
    out = []
    for k, p in enumerate(paths):
        if p == "-":  # stdin
            out.append(p)
            continue
        full = resolve_path(base_dir, p)
        if _glob.has_magic(full) and not os.path.exists(full):  # (a file named 'x[1].csv' is that file)
            matches = sorted(_glob.glob(full))
            if not matches:
                where = "" if full == p else f" (resolved to {full})"
                raise ConfigError(f"{key}[{k}]: no file matches {p!r}{where}")
            out.extend(matches)
        else:
            if not os.path.exists(full):
                where = "" if full == p else f" (resolved against the config's directory to {full})"
                raise ConfigError(f"{key}[{k}]: file not found: {p!r}{where}")
            if os.path.isdir(full):
                raise ConfigError(f"{key}[{k}]: {full} is a directory; give its files or a glob "
                                  f"({os.path.join(p, '*')!r})")
            out.append(full)
    return out

