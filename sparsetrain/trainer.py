"""The run driver behind ``sparsetrain fit`` / ``predict`` / ``evaluate``, usable from Python too.

``train(config)`` prepares the data (generating it when the config says so), builds the Module,
seeds, initializes and trains epoch by epoch, scores ``data.eval`` after every epoch and keeps a
run directory::

    <output>/config.yaml          the resolved config (defaults filled in, paths absolute)
    <output>/metrics.jsonl        one JSON object per epoch
    <output>/checkpoints/model-symbol.json, model-NNNN.params, model-NNNN.states
    <output>/checkpoint.json      the last complete checkpoint: epoch count and random state

``checkpoint.json`` is written (atomically) after the checkpoint files it points to, so a run
killed at any moment resumes from a complete checkpoint; ``train(config, resume=True)`` then
ends with the same parameters as an uninterrupted run.
"""
from __future__ import annotations

import glob as _glob
import json
import math
import os
from dataclasses import dataclass, field

import numpy as np

from .base import ConfigError, NonFiniteError, SparseTrainError
from .config import Config, config_from_dict, make_optimizer
from .fileio import write_atomic

CHECKPOINT_PREFIX = os.path.join("checkpoints", "model")
STATE_FILE = "checkpoint.json"
METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.yaml"

# Parsed CSR bytes per byte of LibSVM text (float32 value + int64 index ≈ 12 bytes per ~10-byte
# "idx:val " token), and the extra factor for compressed files.
_CSR_BYTES_PER_TEXT_BYTE = 1.3
_COMPRESSION_FACTOR = {".gz": 4.0, ".bz2": 5.0}


class Reporter:
    """Receives progress events from ``train``; the CLI renders them, the default ignores them.

    ``batch_end`` is only called when ``wants_batches`` is true (a per-batch call costs time).
    """

    wants_batches = False

    def run_start(self, info: dict) -> None: ...

    def generate_start(self, path: str, rows: int) -> None: ...

    def generate_progress(self, rows_done: int, *_) -> None: ...

    def generate_end(self, result) -> None: ...

    def stypes(self, lines: list[str]) -> None: ...

    def epoch_start(self, epoch: int, total_samples: int | None) -> None: ...

    def batch_end(self, samples_done: int) -> None: ...

    def epoch_end(self, record: dict) -> None: ...

    def note(self, text: str) -> None: ...


@dataclass
class TrainResult:
    output_dir: str
    history: list[dict]
    missed_targets: list[str] = field(default_factory=list)
    engine: str = "graph"
    engine_reason: str = ""
    resumed_from: int | None = None
    checkpoint: str | None = None

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def ok(self) -> bool:
        return not self.missed_targets


# -- small file helpers ----------------------------------------------------------------------------

def _rng_to_json(state: dict) -> dict:
    name, keys, pos, has_gauss, cached = state["numpy"]
    return {"generator": state["generator"],
            "numpy": [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)]}


def _rng_from_json(doc: dict) -> dict:
    name, keys, pos, has_gauss, cached = doc["numpy"]
    return {"generator": doc["generator"], "numpy": (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)}


# -- data ------------------------------------------------------------------------------------------

def _estimated_csr_bytes(paths: list[str]) -> float:
    total = 0.0
    for p in paths:
        ext = os.path.splitext(p)[1].lower()
        total += os.path.getsize(p) * _CSR_BYTES_PER_TEXT_BYTE * _COMPRESSION_FACTOR.get(ext, 1.0)
    return total


def cache_mode(cfg: Config, paths: list[str]) -> str:
    """``memory`` or ``stream`` for these files under ``data.cache`` (``auto`` keeps what fits the budget)."""
    mode = cfg.data.cache
    if mode == "auto":
        fits = _estimated_csr_bytes(paths) <= cfg.data.memory_budget_mb * 2**20
        mode = "memory" if fits or cfg.data.shuffle else "stream"
    if mode == "stream" and len(paths) > 1:
        raise ConfigError(f"data.cache: streaming reads one file, got {len(paths)}; "
                          "set data.cache: memory or concatenate the files")
    return mode


def ensure_generated(cfg: Config, reporter: Reporter) -> None:
    """Write ``data.generate`` data unless the file exists with the same options."""
    from .io import synthetic

    gen = cfg.data.generate
    path = cfg.resolve(gen.path)
    meta_path = path + ".gen.json"
    wanted = gen.generator_kwargs()
    if os.path.exists(path) and os.path.exists(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                if json.load(f) == wanted:
                    reporter.note(f"using generated data {path}")
                    return
        except (OSError, ValueError):
            pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    reporter.generate_start(path, gen.rows)
    result = synthetic.generate_libsvm(path, progress=reporter.generate_progress, **wanted)
    reporter.generate_end(result)
    write_atomic(meta_path, json.dumps(wanted, sort_keys=True))


def _load_memory(cfg: Config, paths: list[str]):
    import scipy.sparse as sp

    from . import io as st_io
    from .ndarray.sparse import csr_matrix

    parts, labels = [], []
    for p in paths:
        X, y = st_io.load_libsvm(p, num_features=cfg.num_features, zero_based=cfg.data.zero_based,
                                 dtype=_data_dtype(cfg))
        parts.append(X)
        labels.append(np.asarray(y))
    if len(parts) == 1:
        return parts[0], labels[0]
    X = sp.vstack([x.asscipy() for x in parts], format="csr")
    return csr_matrix(X, dtype=_data_dtype(cfg)), np.concatenate(labels)


def _data_dtype(cfg: Config) -> str:
    v = cfg.model.variables.get(cfg.data_name)
    return (v.dtype if v is not None and v.dtype else "float32")


def make_iter(cfg: Config, paths: list[str], *, for_training: bool, batch_size: int | None = None):
    """A data iterator over LibSVM ``paths`` as the config describes; ``(iter, rows or None)``."""
    from . import io as st_io

    batch_size = batch_size or cfg.data.batch_size
    mode = cache_mode(cfg, paths)
    last_batch = cfg.data.last_batch if for_training else "pad"
    if mode == "memory":
        X, y = _load_memory(cfg, paths)
        it = st_io.NDArrayIter(X, y, batch_size=batch_size, shuffle=cfg.data.shuffle and for_training,
                               last_batch_handle=last_batch, data_name=cfg.data_name, label_name=cfg.label_name)
        rows = X.shape[0]
        return it, ((rows // batch_size) * batch_size if last_batch == "discard" else rows)
    it = st_io.LibSVMIter(data_libsvm=paths[0], data_shape=(cfg.num_features,), batch_size=batch_size,
                          round_batch=last_batch != "discard", data_name=cfg.data_name,
                          label_name=cfg.label_name, zero_based=cfg.data.zero_based,
                          last_batch_handle=last_batch)
    return it, None


# -- metrics ---------------------------------------------------------------------------------------

def make_metric(names: list[str]):
    """One metric object for ``run_epoch`` / ``score`` that updates all of ``names``."""
    from . import metric as metric_mod

    return metric_mod.CompositeEvalMetric([metric_mod.create(n) for n in names])


def metric_values(names: list[str], metric) -> dict:
    """``{config name: value}`` (keys as written in ``train.metrics``, e.g. ``acc`` stays ``acc``)."""
    return {n: float(v) for n, v in zip(names, metric.get()[1])}


def target_misses(targets: dict, final: dict) -> list[str]:
    """Messages for every ``train.target`` the final epoch record misses."""
    from . import metric as metric_mod

    missed = []
    for key, want in targets.items():
        got = final.get(key)
        if not metric_mod.target_met(key, got, want):
            relation = metric_mod.target_relation(key)
            missed.append(f"target {key} {relation} {want:g} missed: final {key} is {got:.6g}" if got is not None
                          else f"target {key} missed: no value")
    return missed


# -- the run ----------------------------------------------------------------------------------------

def _load_state(output_dir: str) -> dict | None:
    path = os.path.join(output_dir, STATE_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise SparseTrainError(f"{path}: unreadable checkpoint state ({e}); remove it to start over") from None


def _comparable(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    # may change on resume: engines give the same parameters, and a distributed run's checkpoints
    # are ordinary ones (a dist run can be continued on one machine and vice versa)
    for key in ("epochs", "engine", "kvstore"):
        doc.get("train", {}).pop(key, None)
    doc.pop("output", None)
    return doc


def _check_resumable(cfg: Config, output_dir: str) -> None:
    import yaml

    path = os.path.join(output_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        saved = _comparable(yaml.safe_load(f) or {})
    now = _comparable(yaml.safe_load(cfg.to_yaml()))
    for section in ("data", "model", "optimizer", "train"):
        a, b = saved.get(section), now.get(section)
        if a != b:
            keys = sorted(k for k in set(a or {}) | set(b or {}) if (a or {}).get(k) != (b or {}).get(k))
            raise ConfigError(f"--resume: {section}.{keys[0] if keys else ''} differs from the run's {path}; "
                              "resume with the same config (only train.epochs may change)")


def _reset_run_dir(output_dir: str) -> None:
    for name in (STATE_FILE, METRICS_FILE):
        p = os.path.join(output_dir, name)
        if os.path.exists(p):
            os.unlink(p)
    for p in _glob.glob(os.path.join(output_dir, CHECKPOINT_PREFIX + "-*")):
        os.unlink(p)


def _append_metrics(output_dir: str, record: dict) -> None:
    with open(os.path.join(output_dir, METRICS_FILE), "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _read_metrics(output_dir: str, upto: int) -> list[dict]:
    path = os.path.join(output_dir, METRICS_FILE)
    if not os.path.exists(path):
        return []
    kept = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                break  # a line cut short by a kill
            if rec.get("epoch", upto) < upto:
                kept.append(rec)
    write_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
    return kept


def train(config: Config, output_dir: str | None = None, resume: bool = False, engine: str | None = None,
          verbose_stypes: bool = False, reporter: Reporter | None = None) -> TrainResult:
    """Train the model ``config`` describes; see the module docstring for the run directory."""
    from . import random as st_random
    from .module import Module
    from .ops import set_strict_stypes

    cfg = config
    reporter = reporter or Reporter()
    engine = engine or cfg.train.engine
    output_dir = os.path.abspath(output_dir or cfg.output_dir())
    if cfg.train.kvstore != "local":
        raise ConfigError(f"train.kvstore: {cfg.train.kvstore} trains on Ray: call "
                          "sparsetrain.dist.train_distributed(config, workers=N) (what `sparsetrain fit` does), "
                          "or use kvstore: local")
    os.makedirs(os.path.join(output_dir, os.path.dirname(CHECKPOINT_PREFIX)), exist_ok=True)

    state = _load_state(output_dir) if resume else None
    if state is not None:
        _check_resumable(cfg, output_dir)
    else:  # a fresh run (or nothing complete to resume): no stale metrics or checkpoints
        _reset_run_dir(output_dir)
    write_atomic(os.path.join(output_dir, CONFIG_FILE), cfg.to_yaml(output_dir))

    if cfg.data.generate is not None:
        ensure_generated(cfg, reporter)
    st_random.seed(cfg.train.seed)  # before the iterators: one that shuffles draws from this stream
    train_iter, epoch_rows = make_iter(cfg, cfg.train_files(), for_training=True)
    eval_files = cfg.eval_files()
    eval_iter = make_iter(cfg, eval_files, for_training=False)[0] if eval_files else None

    symbol = cfg.build_symbol()
    prefix = os.path.join(output_dir, CHECKPOINT_PREFIX)
    start_epoch = 0
    if state is not None:
        start_epoch = int(state["epoch"])
        module = Module.load(prefix, start_epoch, load_optimizer_states=True, data_names=[cfg.data_name],
                             label_names=[cfg.label_name])
    else:
        if resume:
            reporter.note(f"no checkpoint in {output_dir}; starting from epoch 0")
        module = Module(symbol, data_names=[cfg.data_name], label_names=[cfg.label_name])
    previous_strict = set_strict_stypes(cfg.train.strict_stypes)
    try:
        module.bind(train_iter.provide_data, train_iter.provide_label, for_training=True)
        if verbose_stypes:
            reporter.stypes(cfg.plan().log_lines())
        module.init_params(initializer=cfg.initializer())
        # an optimizer object: the config's wd applies to every parameter, whatever its name
        module.init_optimizer(kvstore="local", optimizer=make_optimizer(cfg))
        if state is not None:
            st_random.set_state(_rng_from_json(state["rng"]))
            if hasattr(train_iter, "set_roll_over_state"):  # last_batch roll_over: the rows owed to this epoch
                train_iter.set_roll_over_state(state.get("roll_over"))
        history = _read_metrics(output_dir, start_epoch) if state is not None else []
        engine_name, reason = module.choose_engine(engine, train_iter)
        reporter.run_start({"output_dir": output_dir, "engine": engine_name, "engine_reason": reason,
                            "resumed_from": start_epoch if state is not None else None,
                            "epochs": cfg.train.epochs, "config": cfg.source, "metrics": cfg.metrics})
        metrics = make_metric(cfg.metrics)
        eval_metrics = make_metric(cfg.metrics) if eval_iter is not None else None
        checkpoint = f"{prefix}-{start_epoch:04d}.params" if state is not None else None
        for epoch in range(start_epoch, cfg.train.epochs):
            metrics.reset()
            reporter.epoch_start(epoch, epoch_rows)
            try:
                stats = module.run_epoch(train_iter, metrics, engine=engine, epoch=epoch,
                                         batch_end_callback=reporter.batch_end if reporter.wants_batches else None)
            except NonFiniteError as e:
                where = (f"; the last good checkpoint is {checkpoint}" if checkpoint
                         else "; no checkpoint was written")
                raise NonFiniteError(f"{e}{where}", epoch=e.epoch, batch=e.batch) from None
            if stats.batches == 0:
                raise SparseTrainError(f"epoch {epoch} had no batches: the training data has fewer rows than "
                                       f"data.batch_size ({cfg.data.batch_size}) with last_batch "
                                       f"{cfg.data.last_batch!r}")
            epoch_rows = stats.samples
            values = metric_values(cfg.metrics, metrics)
            record = {"epoch": epoch, **values, "samples": stats.samples,
                      "seconds": round(stats.seconds, 6), "data_seconds": round(stats.data_seconds, 6)}
            bad = [k for k, v in values.items() if not math.isfinite(v)]
            if bad:
                raise NonFiniteError(f"metric {bad[0]} became non-finite in epoch {epoch}" +
                                     (f"; the last good checkpoint is {checkpoint}" if checkpoint else ""),
                                     epoch=epoch, batch=stats.batches - 1)
            if eval_metrics is not None:
                module.score(eval_iter, eval_metrics, epoch=epoch)
                record.update({f"eval_{k}": v for k, v in metric_values(cfg.metrics, eval_metrics).items()})
            record["engine"] = module.engine_choice[0]
            _append_metrics(output_dir, record)
            module.save_checkpoint(prefix, epoch + 1, save_optimizer_states=True)
            checkpoint = f"{prefix}-{epoch + 1:04d}.params"
            carry = train_iter.roll_over_state() if hasattr(train_iter, "roll_over_state") else None
            write_atomic(os.path.join(output_dir, STATE_FILE), json.dumps(
                {"epoch": epoch + 1, "prefix": CHECKPOINT_PREFIX, "rng": _rng_to_json(st_random.get_state()),
                 "roll_over": carry}))
            history.append(record)
            reporter.epoch_end(record)
    finally:
        set_strict_stypes(previous_strict)
    engine_name, reason = module.engine_choice
    missed = target_misses(cfg.train.target, history[-1]) if history else []
    return TrainResult(output_dir, history, missed, engine_name, reason,
                       start_epoch if state is not None else None, checkpoint)


# -- trained models: predict / evaluate ---------------------------------------------------------

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

    def _module(self, data_iter):
        from .module import Module

        mod = Module.load(self.prefix, self.epoch, data_names=[self.data_name], label_names=[self.label_name])
        mod.bind(data_iter.provide_data, data_iter.provide_label, for_training=False)
        mod.init_params()
        return mod

    def _iter(self, path: str):
        from . import io as st_io

        X, y = st_io.load_libsvm(path, num_features=self.num_features, zero_based=self.zero_based)
        return st_io.NDArrayIter(X, y, batch_size=min(self.batch_size, max(1, X.shape[0])), shuffle=False,
                                 last_batch_handle="pad", data_name=self.data_name, label_name=self.label_name)

    def predict(self, path: str) -> np.ndarray:
        """Model outputs for every row of a LibSVM file: ``(rows,)`` or ``(rows, classes)``."""
        it = self._iter(path)
        out = self._module(it).predict(it)
        arr = out.asnumpy() if hasattr(out, "asnumpy") else np.zeros((0, 1))
        return arr[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr

    def evaluate(self, path: str, metrics: list[str] | None = None) -> dict:
        from . import metric as metric_mod

        it = self._iter(path)
        names = list(metrics or self.metrics)
        try:
            metric = make_metric(names)
        except (ValueError, TypeError) as e:
            raise ConfigError(f"metric: {e}") from None
        mod = self._module(it)
        shape = mod.output_shapes[0][1]
        for n in names:  # e.g. auc on a regression model: a usage error, not a failure inside the metric
            why = metric_mod.not_applicable(n, self.loss_op, int(shape[-1]) if len(shape) > 1 else 1)
            if why:
                raise ConfigError(f"metric: {why}")
        mod.score(it, metric)
        return metric_values(names, metric)


def load_trained(path: str) -> TrainedModel:
    """A run directory, a config file (its run directory) or a checkpoint prefix (``dir/model``)."""
    import yaml

    from .config import load_config
    from .metric import default_metrics

    if os.path.isfile(path) and path.endswith((".yaml", ".yml")):
        cfg = load_config(path)
        path = cfg.output_dir()
        if not os.path.isdir(path):
            raise SparseTrainError(f"{path}: no run directory for this config; run `sparsetrain fit` first")
    if os.path.isdir(path):
        state = _load_state(path)
        if state is None:
            raise SparseTrainError(f"{path}: no complete checkpoint ({STATE_FILE} missing)")
        with open(os.path.join(path, CONFIG_FILE), encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        cfg = config_from_dict(doc, source=os.path.join(path, CONFIG_FILE))
        return TrainedModel(os.path.join(path, state.get("prefix", CHECKPOINT_PREFIX)), int(state["epoch"]),
                            cfg.data_name, cfg.label_name, cfg.num_features, cfg.data.zero_based, cfg.metrics,
                            max(cfg.data.batch_size, 256), cfg.model.loss.op)
    prefix = path
    m = None
    if path.endswith(".params"):
        prefix, _, num = path[: -len(".params")].rpartition("-")
        m = int(num) if num.isdigit() else None
    if not os.path.exists(f"{prefix}-symbol.json"):
        raise SparseTrainError(f"{path}: not a run directory, config or checkpoint prefix "
                               f"({prefix}-symbol.json not found)")
    if m is None:
        epochs = sorted(int(p.rsplit("-", 1)[1][:-len(".params")]) for p in _glob.glob(f"{_glob.escape(prefix)}-*.params"))
        if not epochs:
            raise SparseTrainError(f"{prefix}: no {prefix}-NNNN.params checkpoint found")
        m = epochs[-1]
    from .symbol import load as load_symbol

    sym = load_symbol(f"{prefix}-symbol.json")
    head = sym._outputs[0][0]
    label = head.inputs[1][0].name if head.op is not None and head.op.is_loss else "label"
    args = {n.name: n for n in sym._nodes() if n.is_variable}
    data = next((n for n, v in args.items() if v.attrs.get("stype") == "csr"), None)
    if data is None:
        raise SparseTrainError(f"{prefix}-symbol.json: no csr input variable to feed")
    arg_shapes, _, _ = sym.infer_shape_partial(**{data: (1, 0)})
    shape = dict(zip(sym.list_arguments(), arg_shapes)).get(data)
    if not shape or not shape[1]:
        raise SparseTrainError(f"{prefix}-symbol.json: the model does not determine the number of features")
    loss_op = head.op.name if head.op is not None else ""
    return TrainedModel(prefix, m, data, label, int(shape[1]), "auto", default_metrics(loss_op),
                        256, loss_op)


__all__ = ["train", "TrainResult", "Reporter", "load_trained", "TrainedModel", "make_iter", "cache_mode",
           "target_misses", "make_metric", "metric_values"]
