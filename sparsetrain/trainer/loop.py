"""The one epoch loop, the single-process run, and ``fit`` (which picks single-process or Ray).

``run_epochs`` is the loop every run goes through: per epoch it asks an *epoch executor* to
train (this process's :class:`LocalEpochs`, or the distributed driver's cluster), stops at once on
a non-finite loss or metric, scores ``data.eval``, appends the ``metrics.jsonl`` record and writes
the checkpoint through the :class:`~.rundir.RunDir`. An executor has:

* ``module``: a bound Module holding the parameters after each epoch (scored on ``data.eval``);
* ``run_epoch(epoch, reporter) -> record``: one pass over the training data; the record holds
  ``epoch``, the train metrics, ``samples``, ``seconds``, ``data_seconds``, ``engine`` (and
  whatever else the executor reports); ``batches``: how many batches (steps) that pass had;
* ``epoch_rows``: rows per epoch if known (for the progress bar), ``batch_rows``: what a batch
  needs, for the "no batches" message;
* ``save(prefix, epoch)``: write the checkpoint files; ``checkpoint_fields()``: the rest of
  ``checkpoint.json`` (:func:`~.runfiles.checkpoint_state`).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from ..base import (ConfigError, DataFormatError, NonFiniteError, OutputError, ShapeError, SparseTrainError,
                    StorageTypeError)
from ..config import Config, make_optimizer
from ..config.graph import locate_shape_error
from ..interrupts import handling_interrupts, raise_if_interrupted
from .data import ensure_generated, stdin_names, write_feature_names
from .iterators import make_iter
from .metrics import BestEpoch, Progressive, best_values, make_metric, metric_values, record_metrics, target_misses
from .reporter import Reporter
from .plot import require_matplotlib, write_plot
from .rundir import RunDir
from .runfiles import checked_params, checkpoint_state, rng_from_json
from .warmstart import warm_start


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says where to resume from."""


@dataclass
class TrainResult:
    output_dir: str
    history: list[dict]
    missed_targets: list[str] = field(default_factory=list)
    engine: str = "graph"
    engine_reason: str = ""
    resumed_from: int | None = None
    checkpoint: str | None = None
    targets: dict = field(default_factory=dict)
    restarts: int = 0
    best_epoch: int | None = None  # checkpoint number of the best epoch (checkpoint.json's ``best``)
    stopped_early: bool = False

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}

    @property
    def ok(self) -> bool:
        return not self.missed_targets

    @property
    def best(self) -> dict:
        """``{metric key: best value over the epochs}``, each in its metric's direction."""
        return best_values(self.history)

    def target_status(self) -> dict:
        """``{target key: (relation, wanted value, met)}`` for every ``train.target``."""
        from ..metric import target_relation

        missed = {m.split(" ")[1] for m in self.missed_targets}
        return {k: (target_relation(k), want, k not in missed) for k, want in self.targets.items()}


def _labels_per_row(shape) -> str:
    k = int(shape[0]) if shape else 1
    return f"{k} label{'s' if k != 1 else ''}"


def checkpoint_hint(run: RunDir, resume: bool = False) -> str:
    """What a failed or stopped run leaves: its last complete checkpoint (``resume``: and how to go on
    from it), or that none was written."""
    if not run.checkpoint:
        return "no checkpoint was written"
    return f"the last complete checkpoint is {run.checkpoint}" + ("; continue with --resume" if resume else "")


def is_interrupt(e: BaseException) -> bool:
    """A Ctrl-C that surfaced as another exception (numba's dispatcher turns it into a SystemError)."""
    while e is not None:
        if isinstance(e, KeyboardInterrupt):
            return True
        e = e.__cause__ or e.__context__
    return False


def no_batches(epoch: int, batch_rows: str) -> SparseTrainError:
    """The error of an epoch without a batch (``batch_rows``: the executor's words for a batch)."""
    return SparseTrainError(f"epoch {epoch} had no batches: the training data has fewer rows than {batch_rows}")


def run_epochs(cfg: Config, run: RunDir, executor, reporter: Reporter, history: list[dict],
               eval_iter=None, compile_watch=None) -> list[dict]:
    """Epochs ``run.start_epoch .. train.epochs - 1`` (see the module docstring); returns ``history``.

    ``compile_watch``: a :class:`~sparsetrain.kernels.numba_cache.CompileWatch` entered for
    the run; time numba spends compiling is then taken out of an epoch's ``seconds`` (so samples/s
    is the training speed) and reported as ``compile_seconds``: the compilation since the previous
    record (the first record includes what compiled while the data loaded).
    """
    eval_metric = make_metric(cfg.metrics) if eval_iter is not None else None
    compiled = 0.0
    best = BestEpoch.from_config(cfg)
    for record in history:  # a resumed run decides as the uninterrupted one would have
        best.update(record)
    run.best = best
    if best.stop:
        reporter.stopped_early(_stopped_note(best, history))
        return history
    try:
        for epoch in range(run.start_epoch, cfg.train.epochs):
            raise_if_interrupted()  # a Ctrl-C whose KeyboardInterrupt a finalizer dropped (sparsetrain/interrupts.py)
            reporter.epoch_start(epoch, executor.epoch_rows)
            before = compile_watch.seconds if compile_watch is not None else 0.0
            try:
                record = executor.run_epoch(epoch, reporter)
            except NonFiniteError as e:
                raise NonFiniteError(f"{e}; {checkpoint_hint(run)}", epoch=e.epoch, batch=e.batch) from None
            raise_if_interrupted()  # before this epoch's checkpoint, as if it had stopped the epoch
            if record["samples"] == 0:
                raise no_batches(epoch, executor.batch_rows)
            bad = [k for k, v in record_metrics(record).items() if not math.isfinite(v)]
            if bad:
                raise NonFiniteError(f"metric {bad[0]} became non-finite in epoch {epoch}; {checkpoint_hint(run)}",
                                     epoch=epoch, batch=executor.batches - 1)
            if compile_watch is not None:
                during = compile_watch.seconds - before
                record["seconds"] = round(max(record["seconds"] - during, 0.0), 6)
            if eval_metric is not None:
                executor.module.score(eval_iter, eval_metric, epoch=epoch)
                record.update({f"eval_{k}": v for k, v in metric_values(cfg.metrics, eval_metric).items()})
            if compile_watch is not None:
                record["compile_seconds"] = round(compile_watch.seconds - compiled, 6)
                compiled = compile_watch.seconds
            best.update(record)
            run.append_metrics(record)
            run.write_checkpoint(epoch + 1, executor.save, {**executor.checkpoint_fields(), **best.state()})
            history.append(record)
            reporter.epoch_end(record)
            if cfg.train.plot:
                write_plot(run.path, history, best.epoch if best.key else None)
            if best.stop:
                reporter.stopped_early(_stopped_note(best, history))
                break
        raise_if_interrupted()
    except RunInterrupted:
        raise
    except OutputError as e:  # a full disk: what is safe, and how to go on once there is room
        raise OutputError(e.errno, f"{e.strerror}; {checkpoint_hint(run, resume=True)}", e.filename) from None
    except (KeyboardInterrupt, SystemError) as e:
        if not is_interrupt(e):
            raise
        raise RunInterrupted(checkpoint_hint(run, resume=True)) from None
    return history


def _stopped_note(best: BestEpoch, history: list[dict]) -> str:
    return (f"early stopping after epoch {history[-1]['epoch']}: {best.key} has not improved by more than "
            f"{best.min_delta:g} for {best.patience} epochs; the best is epoch {best.epoch - 1} "
            f"({best.key} {best.value:.6g}, checkpoint {best.epoch})")


def check_init_from(resume: bool, init_from: str | None, init_states: bool) -> None:
    if init_states and not init_from:
        raise ConfigError("--init-states needs --init-from RUN|PARAMS")
    if init_from and resume:
        raise ConfigError("--init-from starts a new run from trained parameters, --resume continues this run: "
                          "give one of them")


def run_info(cfg: Config, run: RunDir, engine: str, reason: str, threads: tuple[int, str] | None = None) -> dict:
    """What ``Reporter.run_start`` receives; ``threads``: the threads that train and why
    (:attr:`LocalEpochs.threads_chosen`), else ``train.threads`` without a row count (a distributed
    run: one thread per worker)."""
    from ..engines.compiled.thread_count import choose_threads, describe_threads

    count, why = threads or choose_threads(cfg.train.threads)
    threads = describe_threads(count, cfg.train.deterministic, engine, distributed=cfg.train.kvstore != "local",
                               why=why)
    return {"output_dir": run.path, "engine": engine, "engine_reason": reason, "threads": threads,
            "resumed_from": run.start_epoch if run.state is not None else None, "epochs": cfg.train.epochs,
            "config": cfg.source, "metrics": cfg.metrics, "output_note": run.note}


def _bytes_and_samples(reporter: Reporter, train_iter, samples: int) -> None:
    """``batch_end`` of a streamed epoch whose rows are not known yet, after its bytes so far."""
    reporter.epoch_bytes(*train_iter.byte_progress())
    reporter.batch_end(samples)


def streamed_rows(cfg: Config) -> int | None:
    """About how many rows a streamed epoch of the training files has (each file's size over the
    length of its first lines; a compressed file's lines when its first chunk holds them all:
    :func:`~sparsetrain.io.chunks.estimate_rows`); None when one is stdin or a larger compressed file."""
    from ..io.chunks import estimate_rows

    total = 0
    for path in cfg.train_files():
        rows = None if path == "-" else estimate_rows(path)
        if rows is None:
            return None
        total += rows
    return total


def parses_next_epoch(train_iter) -> bool:
    """Whether ``train_iter``'s next epoch parses its text beside training (a streamed epoch: a
    ``LibSVMIter``'s every epoch; stdin's disk cache's first, ``parses_next_epoch``)."""
    from ..io import LibSVMIter

    parses = getattr(train_iter, "parses_next_epoch", None)
    return parses() if parses is not None else isinstance(train_iter, LibSVMIter)


class LocalEpochs:
    """The epoch executor of a single-process run: ``Module.run_epoch`` on either engine."""

    def __init__(self, cfg: Config, module, train_iter, engine: str, epoch_rows: int | None):
        self.module = module
        self.train_iter = train_iter
        self.engine = engine
        self.epoch_rows = epoch_rows
        self.batches = 0
        self.names = cfg.metrics
        self.metric = make_metric(cfg.metrics)
        self.progressive = Progressive(cfg.metrics) if cfg.train.progressive else None
        self.batch_rows = self.batch_words(cfg)
        from ..engines.compiled.thread_count import choose_threads

        self._threads_given = (cfg.train.threads, cfg.train.deterministic)
        rows, estimated = (epoch_rows, False) if epoch_rows is not None else (streamed_rows(cfg), True)
        # what train.threads: auto decided from: chosen again once either changes (_rechoose)
        self._rows_known, self._parses = rows is not None, parses_next_epoch(train_iter)
        self._use(choose_threads(cfg.train.threads, rows, estimated, self._parses))

    @staticmethod
    def batch_words(cfg: Config) -> str:
        return f"data.batch_size ({cfg.data.batch_size}) with last_batch {cfg.data.last_batch!r}"

    def _use(self, chosen: tuple[int, str]) -> None:
        self.threads_chosen = chosen  # (threads, why): the header's
        self.threads = {"threads": chosen[0], "deterministic": self._threads_given[1]} if chosen[0] > 1 else {}

    def _rechoose(self, epoch: int, reporter: Reporter) -> None:
        """``train.threads: auto`` again before ``epoch`` when what it was decided from has changed since:
        the rows, not known upfront (stdin), now counted; the epoch no longer parses (stdin's disk cache,
        complete). A different count is said as the header says it."""
        from ..engines.compiled.thread_count import choose_threads, describe_threads

        parses = parses_next_epoch(self.train_iter)
        if self._rows_known and parses == self._parses:
            return
        self._rows_known, self._parses = True, parses
        count, why = choose_threads(self._threads_given[0], self.epoch_rows, False, parses)
        engine = self.module.engine_choice[0]
        if count != self.threads_chosen[0] and engine == "compiled":
            threads = describe_threads(count, self._threads_given[1], engine, why=why)
            reporter.note(f"from epoch {epoch}: threads {threads}")
        self._use((count, why))

    def run_epoch(self, epoch: int, reporter: Reporter) -> dict:
        if self.batches:  # an epoch has run: its rows are known
            self._rechoose(epoch, reporter)
        self.metric.reset()
        if self.progressive is not None:
            self.progressive.reset()
        extra = {"progressive": self.progressive} if self.progressive is not None else {}
        callback = reporter.batch_end if reporter.wants_batches else None
        total = (self.train_iter.byte_progress()[1] if callback is not None and self.epoch_rows is None
                 and hasattr(self.train_iter, "byte_progress") else None)
        if total:  # (known before the first chunk is parsed: the bar has a total from the start)
            reporter.epoch_bytes(0, total)
            callback = functools.partial(_bytes_and_samples, reporter, self.train_iter)
        stats = self.module.run_epoch(self.train_iter, self.metric, engine=self.engine, epoch=epoch,
                                      batch_end_callback=callback, **self.threads, **extra)
        self.epoch_rows = stats.samples
        self.batches = stats.batches
        progressive = self.progressive.values() if self.progressive is not None else {}
        return {"epoch": epoch, **metric_values(self.names, self.metric), **progressive, "samples": stats.samples,
                "seconds": round(stats.seconds, 6), "data_seconds": round(stats.data_seconds, 6),
                "engine": self.module.engine_choice[0]}

    def save(self, prefix: str, epoch: int) -> None:
        self.module.save_checkpoint(prefix, epoch, save_optimizer_states=True)

    def checkpoint_fields(self) -> dict:
        from .. import random as st_random

        carry = self.train_iter.roll_over_state() if hasattr(self.train_iter, "roll_over_state") else None
        return checkpoint_state(st_random.get_state(), roll_over=carry)


@handling_interrupts()
def train(config: Config, output_dir: str | None = None, resume: bool = False, engine: str | None = None,
          verbose_stypes: bool = False, reporter: Reporter | None = None, overwrite: bool = False,
          init_from: str | None = None, init_states: bool = False) -> TrainResult:
    """Train the model ``config`` describes in this process (``train.kvstore: local``).

    The run directory (see :mod:`.rundir`): ``output_dir``, else the config's ``output``, else
    ``runs/<config name>/`` (or the next free ``-K`` one). ``resume`` continues its last complete
    checkpoint and ends with the same parameters as an uninterrupted run; ``overwrite`` replaces a
    run that is there. ``init_from`` (a run directory or a ``.params`` file) starts a new run from
    trained parameters, with their optimizer states and update counts when ``init_states``
    (see :mod:`.warmstart`).
    """
    from .. import random as st_random
    from ..kernels.numba_cache import CompileWatch
    from ..io.base import display_name
    from ..module import Module
    from . import warmup
    from ..ops import set_strict_stypes

    cfg = config
    reporter = reporter or Reporter()
    engine = engine or cfg.train.engine
    check_init_from(resume, init_from, init_states)
    if cfg.train.plot:
        require_matplotlib()  # before the run directory is touched
    if cfg.train.kvstore != "local":
        raise ConfigError(f"train.kvstore: {cfg.train.kvstore} trains on Ray: call "
                          "sparsetrain.trainer.fit(config, workers=N) (what `sparsetrain fit` does), "
                          "or use kvstore: local")
    # warm: on a first run, the engine's kernels compile in a second process while this one compiles the parser
    with RunDir.open(cfg, output_dir, resume=resume, overwrite=overwrite) as run, \
            CompileWatch(reporter.compile_start, reporter.compile_end) as compile_watch, \
            warmup.started(cfg, engine) as warm:
        for text in cfg.notes:
            reporter.note(text)
        if cfg.data.generate is not None:
            ensure_generated(cfg, reporter)
        st_random.seed(cfg.train.seed)  # before the iterators: one that shuffles draws from this stream
        with reporter.busy(f"loading {', '.join(map(display_name, cfg.train_files()))}"):  # (stdin: <stdin>)
            stdin_keys = stdin_names(cfg)  # stdin's feature names are collected as it is read; a file's now
            train_iter, epoch_rows = make_iter(cfg, cfg.train_files(), for_training=True, note=reporter.note,
                                               names=stdin_keys)
            if parses_next_epoch(train_iter):
                warmup.load_parser(cfg)
        if cfg.data.keep_feature_names and stdin_keys is None:
            reporter.note(f"feature names in {write_feature_names(cfg, run.path)}")
        eval_files = cfg.eval_files()
        with reporter.busy(f"loading {', '.join(map(display_name, eval_files))}"):
            eval_iter = make_iter(cfg, eval_files, for_training=False)[0] if eval_files else None
        if eval_iter is not None:  # (else the first eval pass failed in the module's forward)
            per_row = [it.provide_label[0].shape[1:] for it in (train_iter, eval_iter)]
            if per_row[0] != per_row[1]:
                raise DataFormatError(f"{', '.join(eval_files)}: {_labels_per_row(per_row[1])} per row, the training "
                                      f"data {_labels_per_row(per_row[0])}")
        names = {"data_names": [cfg.data_name], "label_names": [cfg.label_name]}
        if run.state is not None:
            symbol = cfg.build_symbol()
            checked_params(run.checkpoint, [a for a in symbol.list_arguments() if a not in names["data_names"]
                                            + names["label_names"]])
            module = Module.load(run.prefix, run.start_epoch, load_optimizer_states=True, **names)
        else:
            module = Module(cfg.build_symbol(), **names)
        previous_strict = set_strict_stypes(cfg.train.strict_stypes)
        try:
            try:
                module.bind(train_iter.provide_data, train_iter.provide_label, for_training=True)
            except ShapeError as e:  # e.g. two labels per row for a one-output model: a fact about the data
                batch = ", ".join(f"{d.name} {tuple(d.shape)}"
                                  for d in train_iter.provide_data + train_iter.provide_label)
                raise DataFormatError(f"{', '.join(cfg.train_files())}: the data's batches ({batch}) do not fit the "
                                      f"model: {getattr(e, 'detail', e)}") from None
            except StorageTypeError as e:  # train.strict_stypes and a fallback: the config's op, as infer-stypes shows
                raise ConfigError(locate_shape_error(cfg, str(e))) from None
            if verbose_stypes:
                reporter.stypes(cfg.plan().log_lines())
            module.init_params(initializer=cfg.initializer())
            # an optimizer object: the config's wd applies to every parameter, whatever its name
            optimizer = make_optimizer(cfg)
            started_from = warm_start(module, init_from, optimizer if init_states else None) if init_from else None
            module.init_optimizer(kvstore="local", optimizer=optimizer)
            if started_from and started_from.states_path:
                module.load_optimizer_states(started_from.states_path)
            history = []
            if run.state is not None:
                st_random.set_state(rng_from_json(run.state["rng"]))
                if hasattr(train_iter, "set_roll_over_state"):  # last_batch roll_over: the rows owed to this epoch
                    train_iter.set_roll_over_state(run.state.get("roll_over"))
                history = run.read_metrics(run.start_epoch)
            # (last_batch discard) said before the header, as nothing will train; a stream parses its first
            # chunks to know (its first epoch replays them), so that a malformed line or an empty file among
            # them is an error before the header too, as in memory — unless a resume has no epoch left to train
            need = cfg.data.batch_size if cfg.data.last_batch == "discard" else 1
            if run.start_epoch < cfg.train.epochs and (
                    epoch_rows == 0 or (epoch_rows is None and not train_iter.has_rows(need))):
                raise no_batches(run.start_epoch, LocalEpochs.batch_words(cfg))
            executor = LocalEpochs(cfg, module, train_iter, engine, epoch_rows)
            # the engine that will really run (it depends on the metrics too); an engine asked for by
            # name that cannot run the model is refused here, before the run directory is touched
            engine_name, reason = module.choose_engine(engine, train_iter, executor.metric,
                                                       executor.progressive is not None)
            run.begin(cfg.to_yaml(run.path))
            reporter.run_start(run_info(cfg, run, engine_name, reason, executor.threads_chosen))
            if warm is not None and engine_name == "compiled":
                with compile_watch.counted():  # its kernels then load from numba's cache
                    warm.wait()
            run_epochs(cfg, run, executor, reporter, history, eval_iter, compile_watch)
            if stdin_keys is not None:
                reporter.note(f"feature names in {write_feature_names(cfg, run.path, stdin_keys)}")
        finally:
            set_strict_stypes(previous_strict)
    engine_name, reason = module.engine_choice
    missed = target_misses(cfg.train.target, history[-1]) if history else []
    return TrainResult(run.path, history, missed, engine_name, reason,
                       run.start_epoch if run.state is not None else None, run.checkpoint, dict(cfg.train.target),
                       best_epoch=run.best.epoch if run.best else None,
                       stopped_early=bool(run.best and run.best.stop))


@handling_interrupts()
def fit(config: Config, output_dir: str | None = None, *, resume: bool = False, overwrite: bool = False,
        engine: str | None = None, verbose_stypes: bool = False, reporter: Reporter | None = None,
        workers: int | None = None, servers: int | None = None, address: str | None = None,
        max_restarts: int | None = None, init_from: str | None = None, init_states: bool = False) -> TrainResult:
    """Train ``config``: in this process, or on Ray when ``train.kvstore`` is ``dist_sync``/``dist_async``
    or ``workers`` is given (with ``kvstore: local``, ``workers`` switches to ``dist_sync``).

    ``servers``, ``address``, ``max_restarts``: see :func:`sparsetrain.dist.train_distributed`.
    Other arguments as :func:`train`.
    """
    cfg = config
    reporter = reporter or Reporter()
    if cfg.train.plot:
        require_matplotlib()  # before the run directory is touched
    dist_flags = [k for k, v in (("--workers", workers), ("--servers", servers), ("--address", address),
                                 ("--max-restarts", max_restarts)) if v is not None]
    if dist_flags and cfg.train.kvstore == "local":
        if workers is None:
            verb = "applies" if len(dist_flags) == 1 else "apply"
            raise ConfigError(f"{', '.join(dist_flags)} only {verb} to distributed training: give --workers N or "
                              "set train.kvstore: dist_sync (or dist_async)")
        cfg.train.kvstore = "dist_sync"
    if cfg.train.kvstore == "local":
        return train(cfg, output_dir=output_dir, resume=resume, engine=engine, verbose_stypes=verbose_stypes,
                     reporter=reporter, overwrite=overwrite, init_from=init_from, init_states=init_states)
    if cfg.train_files() == ["-"]:  # (--workers on a local config: the config's validation did not see it)
        from ..config.validate import STDIN_DISTRIBUTED

        raise ConfigError(STDIN_DISTRIBUTED)
    if cfg.data_format() != "libsvm":  # (the workers' byte-range parts are LibSVM parts)
        raise ConfigError(f"data.format: distributed training reads LibSVM files; this data is {cfg.data_format()} "
                          "(train it in one process, or convert it to LibSVM)")
    from ..dist import train_distributed

    if verbose_stypes:
        reporter.stypes(cfg.plan().log_lines())
    return train_distributed(cfg, output_dir=output_dir, resume=resume, overwrite=overwrite, engine=engine,
                             workers=workers or 2, servers=servers or 1, address=address,
                             max_restarts=max_restarts or 0, reporter=reporter, init_from=init_from,
                             init_states=init_states)
