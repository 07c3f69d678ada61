"""Training runs behind ``sparsetrain fit`` / ``predict`` / ``evaluate``, usable from Python too.

``fit(config)`` trains in this process or on Ray; ``load_trained(run)`` predicts and evaluates.
One job per module:

* :mod:`.rundir` -- the run directory a run writes: where it goes, its lock, ``config.yaml``,
  ``metrics.jsonl``, checkpoints, ``checkpoint.json`` and the checks before resuming;
  :mod:`.runfiles` -- the run directory's file names and their readers (predict, export, plot,
  warm starts, resume);
* :mod:`.loop` -- the one epoch loop (``run_epochs``), the single-process run (``train``) and
  ``fit``; the distributed driver (:mod:`sparsetrain.dist.driver`) plugs its cluster into the loop;
* :mod:`.data` -- the training data: generated when asked, files read whole or by readers, labels mapped;
  :mod:`.iterators` -- the iterators over it (memory, disk cache or stream, as ``data.cache`` decides);
* :mod:`.metrics` -- metric objects, epoch records, targets, bests, the best epoch and early
  stopping (``BestEpoch``), progressive validation (``Progressive``);
* :mod:`.reporter` -- the progress events a front end (the CLI) renders;
* :mod:`.predict` -- trained models: which checkpoint (best, last, ``--epoch``), predict and evaluate;
  :mod:`.predictions` -- predict's table (columns per loss; csv, tsv, npy);
* :mod:`.warmstart` -- ``--init-from``: a new run from trained parameters (and optimizer states);
* :mod:`.export` -- the weights readably (``sparsetrain export``); :mod:`.plot` -- ``metrics.png``.
"""
from .data import ensure_generated, label_map, label_transform
from .iterators import cache_mode, make_iter
from .loop import LocalEpochs, RunInterrupted, TrainResult, fit, is_interrupt, run_epochs, run_info, train
from .metrics import RECORD_FIELDS, best_values, make_metric, metric_values, record_metrics, target_misses
from .predict import TrainedModel, load_trained
from .reporter import Reporter
from .rundir import RunDir, RunDirectoryLocked
from .runfiles import CHECKPOINT_PREFIX, CONFIG_FILE, METRICS_FILE, STATE_FILE

__all__ = ["fit", "train", "TrainResult", "Reporter", "RunInterrupted", "is_interrupt", "load_trained", "TrainedModel",
           "make_iter", "label_map", "label_transform",
           "cache_mode", "ensure_generated", "target_misses", "make_metric", "metric_values",
           "record_metrics", "best_values", "RECORD_FIELDS", "run_epochs", "run_info",
           "LocalEpochs", "RunDir", "RunDirectoryLocked", "CHECKPOINT_PREFIX", "CONFIG_FILE", "METRICS_FILE",
           "STATE_FILE"]
