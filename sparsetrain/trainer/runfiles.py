"""A run directory's files: their names, and reading them (``predict``, ``evaluate``, ``export``, ``plot``,
warm starts, ``--resume``); :mod:`.rundir` is the directory a run writes.

::

    <run>/config.yaml          the resolved config (defaults filled in, paths absolute)
    <run>/metrics.jsonl        one JSON object per epoch
    <run>/checkpoints/model-symbol.json, model-NNNN.params, model-NNNN.states
    <run>/checkpoint.json      the last complete checkpoint: epoch, random state, rows owed, cluster,
                               and ``best``: the best epoch's checkpoint ({epoch, metric, value})
    <run>/metrics.png          the metrics per epoch (``train.plot`` / ``fit --plot``)
    <run>/feature_names.json   feature index -> name(s), when the run kept a name map (read by ``export``)
"""
from __future__ import annotations

import glob
import json
import os
import re

import numpy as np

from ..base import SparseTrainError

CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.jsonl"
STATE_FILE = "checkpoint.json"
PLOT_FILE = "metrics.png"
CHECKPOINT_PREFIX = os.path.join("checkpoints", "model")
CHECKPOINT_RE = re.compile(r"model-(\d+)\.(params|states)$")


def holds_run(path: str) -> bool:
    """True when ``path`` has the files of a finished or partial run."""
    if any(os.path.exists(os.path.join(path, n)) for n in (CONFIG_FILE, METRICS_FILE, STATE_FILE)):
        return True
    return bool(checkpoint_files(path))


def has_checkpoint(path: str) -> bool:
    return os.path.exists(os.path.join(path, STATE_FILE)) or bool(checkpoint_files(path))


def checkpoint_files(path: str) -> dict[str, int]:
    """``{file: epoch}`` of the ``model-NNNN.params/.states`` files of a run directory."""
    found = {}
    for p in glob.glob(os.path.join(glob.escape(path), CHECKPOINT_PREFIX + "-*")):
        m = CHECKPOINT_RE.search(p)
        if m:
            found[p] = int(m.group(1))
    return found


def latest_run(base: str) -> str:
    """The most recent run of the default naming: ``base``, ``base-2``, ... (the highest that holds a run)."""
    pattern = re.compile(re.escape(os.path.basename(base)) + r"-(\d+)$")
    numbered = []
    for p in glob.glob(glob.escape(base) + "-*"):
        m = pattern.match(os.path.basename(p))
        if m and holds_run(p):
            numbered.append((int(m.group(1)), p))
    return max(numbered)[1] if numbered else base


def latest_default_run(cfg) -> str:
    """The run directory ``predict``/``evaluate CONFIG`` read: the config's output, else its latest run."""
    base = os.path.abspath(cfg.output_dir())
    return base if cfg.output is not None else latest_run(base)


def checked_params(path: str, param_names: list[str]) -> tuple[dict, dict]:
    """The parameters of a checkpoint file, every one of ``param_names`` present and finite; otherwise
    one ``SparseTrainError`` naming the file (a damaged file too: see ``module.load_params``)."""
    from ..module import load_params

    if not os.path.exists(path):
        raise SparseTrainError(f"{path}: checkpoint file not found")
    arg, aux = load_params(path)
    missing = [n for n in param_names if n not in arg]
    if missing:
        raise SparseTrainError(f"{path}: parameter {missing[0]!r} is missing from the checkpoint")
    for name, value in arg.items():
        values = value.asnumpy() if value.stype == "default" else value.data.asnumpy()
        if not np.isfinite(values).all():
            raise SparseTrainError(f"{path}: parameter {name!r} holds NaN or infinite values; "
                                   "predictions from it would be NaN")
    return arg, aux


def load_metrics(path: str) -> list[dict]:
    """The records of a ``metrics.jsonl`` file, up to a line cut short by a kill; a ``null`` metric is NaN."""
    from .metrics import RECORD_FIELDS

    records = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                rec = json.loads(line)
            except ValueError:
                break
            records.append({k: float("nan") if v is None and k not in RECORD_FIELDS else v for k, v in rec.items()})
    return records


def _read_run_file(path: str, name: str, parse, errors: tuple, describe):
    """``parse(file object)`` of the file ``name`` of a run directory, or None when it is not there; an
    error in ``errors`` is one ``SparseTrainError``, ``describe(file path, error)``."""
    file = os.path.join(path, name)
    if not os.path.exists(file):
        return None
    try:
        with open(file, encoding="utf-8") as f:
            return parse(f)
    except errors as e:
        raise SparseTrainError(describe(file, e)) from None


def load_state(path: str) -> dict | None:
    """``checkpoint.json`` of a run directory, or None when there is none."""
    def parse(f):
        doc = json.load(f)
        int(doc["epoch"])
        return doc

    return _read_run_file(path, STATE_FILE, parse, (OSError, ValueError, KeyError, TypeError),
                          lambda file, e: f"{file}: unreadable checkpoint state ({e}); remove it to start over")


def load_run_config(path: str) -> dict | None:
    """``config.yaml`` of a run directory as a document, or None when there is none; a damaged one is
    one line naming it (and the line YAML stopped at)."""
    import yaml

    from ..config.yaml_doc import yaml_error_text

    def describe(file, e):
        if isinstance(e, yaml.YAMLError):
            return f"{yaml_error_text(e, file)} (an unreadable run config)"
        return f"{file}: unreadable run config ({e})"  # (a UnicodeDecodeError is a ValueError)

    doc = _read_run_file(path, CONFIG_FILE, yaml.safe_load, (yaml.YAMLError, OSError, ValueError), describe)
    if doc is not None and not isinstance(doc, dict):
        raise SparseTrainError(f"{os.path.join(path, CONFIG_FILE)}: unreadable run config (not a mapping of data, "
                               "model, optimizer, train)")
    data = (doc or {}).get("data")
    generate = data.get("generate") if isinstance(data, dict) else None
    if isinstance(generate, dict):  # earlier versions wrote every gen-data option, the other format's too, which
        from ..io.synthetic_options import not_read  # data.generate refuses: keep what the generator read

        for key in not_read(generate.get("format"), generate.get("task")):
            generate.pop(key, None)
    return doc


# -- checkpoint.json fields -------------------------------------------------------------------------------------

def rng_to_json(state: dict) -> dict:
    name, keys, pos, has_gauss, cached = state["numpy"]
    return {"generator": state["generator"],
            "numpy": [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(cached)]}


def rng_from_json(doc: dict) -> dict:
    name, keys, pos, has_gauss, cached = doc["numpy"]
    return {"generator": doc["generator"], "numpy": (name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached)}


def checkpoint_state(rng: dict, *, roll_over=None, kvstore: str = "local", workers: int = 1,
                     servers: int = 0) -> dict:
    """The fields of ``checkpoint.json`` besides ``epoch``/``prefix``, the same for every kind of run."""
    return {"rng": rng_to_json(rng), "roll_over": roll_over, "kvstore": kvstore, "workers": workers,
            "servers": servers}
