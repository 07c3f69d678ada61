"""The optimizer-state file: data only (an ``.npz`` of arrays plus one JSON document), never pickle.

A run directory is shared, downloaded and attached to bug reports; loading one must never run
code. The file is a zip written by ``np.savez`` and read back with ``np.load(allow_pickle=False)``:

* ``meta``: UTF-8 JSON (as a uint8 array) —
  ``{"format": "sparsetrain-optimizer-states", "version": 1, "states": [...], "progress": ...,
  "optimizer": ...}``; ``states`` lists each parameter's ``index`` (int or str) and how its state
  is structured (``None``, one array, or a tuple of ``parts`` arrays; a tuple with a ``None`` or a
  tuple inside — a float16 weight's master copy beside the rule's states — also its ``layout``:
  a list of each part's position, ``null`` or such a list);
* ``s<i>_<j>``: part ``j`` of the ``i``-th listed state.

``progress`` is what exact resume needs besides the arrays: the optimizer's update counts per
index (Adam's bias-correction step), ``num_update``, its learning-rate scheduler's position, and the
name of the update rule the states belong to (``rule``: :func:`check_states` refuses another's).
``optimizer`` (with ``dump_optimizer``) holds the optimizer's class and plain attributes, to
rebuild it without unpickling. A pickled file of an older version is refused with one line.
"""
from __future__ import annotations

import io
import json

import numpy as np

from .base import ConfigError, DataFormatError
from .fileio import DAMAGED_NPZ_ERRORS, write_npz
from .optimizer_buffers import state_arrays, state_parts

FORMAT = "sparsetrain-optimizer-states"
VERSION = 1
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_MAGIC = b"\x80"


# -- plain data <-> JSON (dict keys may be ints, tuples stay tuples) -------------------------------

_SKIP = object()


def _plain(value):
    """``value`` as JSON-able data, or ``_SKIP`` when it is not plain data (objects, arrays)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        if any(v is _SKIP for v in items):
            return _SKIP
        return {"tuple": items} if isinstance(value, tuple) else items
    if isinstance(value, dict):
        pairs = [[_plain(k), _plain(v)] for k, v in value.items()]
        if any(k is _SKIP or v is _SKIP for k, v in pairs):
            return _SKIP
        return {"dict": pairs}
    return _SKIP


def _unplain(value):
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    if isinstance(value, dict):
        if "tuple" in value:
            return tuple(_unplain(v) for v in value["tuple"])
        return {_key(_unplain(k)): _unplain(v) for k, v in value["dict"]}
    return value


def _key(k):
    return tuple(k) if isinstance(k, list) else k


def _plain_attrs(obj, skip=()) -> dict:
    out = {}
    for name, value in vars(obj).items():
        if name in skip or name.startswith("_packed"):
            continue
        p = _plain(value)
        if p is not _SKIP:
            out[name] = p
    return out


# -- optimizer progress and configuration ----------------------------------------------------------

def scheduler_state(scheduler) -> dict | None:
    """The scheduler's class and plain attributes (its position: ``count``, decayed ``base_lr``...)."""
    if scheduler is None:
        return None
    return {"class": type(scheduler).__name__, "attrs": _plain_attrs(scheduler)}


def _restore_scheduler(current, saved: dict | None, source: str):
    from . import lr_scheduler as lrs

    if saved is None:
        return current
    cls = getattr(lrs, saved["class"], None)
    if not (isinstance(cls, type) and issubclass(cls, lrs.LRScheduler)):
        raise DataFormatError(f"{source}: unknown learning-rate scheduler {saved['class']!r}")
    if current is None or type(current) is not cls:
        current = cls.__new__(cls)
    for name, value in saved["attrs"].items():
        setattr(current, name, _unplain(value))
    return current


def optimizer_progress(opt) -> dict:
    """Update counts (per index and the maximum), the scheduler's position, and the update rule whose
    states these are (:func:`check_states`)."""
    return {"num_update": int(opt.num_update), "begin_num_update": int(opt.begin_num_update),
            "index_update_count": _plain(dict(opt._index_update_count)),
            "lr_scheduler": scheduler_state(opt.lr_scheduler), "rule": opt.rule_name}


def check_states(opt, states: dict, progress: dict | None, source: str) -> None:
    """That ``states`` (and ``progress``) are states ``opt`` keeps: saved by the same update rule (a file
    that names it), with as many arrays per parameter as the rule keeps (any file; under ``multi_precision``
    one more where a float16 weight's master copy is kept beside them).

    Unchecked, another rule's states would train on as this rule's (AdaGrad's history as momentum), and
    too few arrays would let a compiled kernel write past their end. Another rule is a ``ConfigError``;
    another count (a file without the rule's name: older, or damaged) a ``DataFormatError``."""
    saved = (progress or {}).get("rule")
    if saved is not None and saved != opt.rule_name:
        raise ConfigError(f"{source}: these are the optimizer states of the {saved!r} update rule; this run's "
                          f"optimizer ({type(opt).__name__}) applies {opt.rule_name!r}: give the same optimizer "
                          "(and momentum), or start its states fresh (fit: without --init-states)")
    if opt.rule_name is None:
        return  # (an optimizer without a rule, e.g. a Python one of MXNet's API, keeps what its create_state makes)
    keeps = len(opt.rule.states)
    # under multi_precision a float16 weight's state is (its float32 master copy, the rule's states), nested:
    # its arrays counted (the file does not say the weight's dtype: the rule's count, or one more)
    master = bool(getattr(opt, "multi_precision", False))
    for index, state in states.items():
        n = len(state_arrays(state)) if master else len(state_parts(state))
        if n != keeps and not (master and n == keeps + 1):
            name = getattr(opt, "idx2name", {}).get(index, index)
            kept = f"{keeps} (and a float16 weight its float32 master copy)" if master else f"{keeps}"
            raise DataFormatError(f"{source}: parameter {name!r} has {n} optimizer state arrays; this run's "
                                  f"optimizer ({type(opt).__name__}) keeps {kept}: the file is damaged or was "
                                  "saved by another optimizer")


def restore_progress(opt, progress: dict, source: str) -> None:
    opt.num_update = int(progress["num_update"])
    opt.begin_num_update = int(progress["begin_num_update"])
    opt._index_update_count = _unplain(progress["index_update_count"])
    if progress.get("lr_scheduler") is not None:
        opt.lr_scheduler = _restore_scheduler(opt.lr_scheduler, progress["lr_scheduler"], source)


def merge_progress(parts) -> dict | None:
    """One progress record for an optimizer split over several copies that each update some
    indices (the shards of parameter servers): the furthest copy's counters and scheduler, and
    each index's largest update count. ``None`` entries (no optimizer) are skipped."""
    parts = [p for p in parts if p is not None]
    if not parts:
        return None
    furthest = max(parts, key=lambda p: p["num_update"])
    counts: dict = {}
    for p in parts:
        for index, n in _unplain(p["index_update_count"]).items():
            counts[index] = max(counts.get(index, 0), n)
    return {**furthest, "index_update_count": _plain(counts)}


def optimizer_config(opt) -> dict:
    """The optimizer's registered name and plain attributes (what ``dump_optimizer`` saves)."""
    return {"class": type(opt).__name__, "attrs": _plain_attrs(opt, skip=("lr_scheduler",)),
            "lr_scheduler": scheduler_state(opt.lr_scheduler)}


def optimizer_from_config(config: dict, current, source: str):
    """An optimizer as :func:`optimizer_config` saved it; ``current`` (the optimizer it replaces) supplies what was
    not plain data, and its ``opt_registry`` (every registered optimizer class by name) the saved class."""
    cls = current.opt_registry.get(str(config["class"]).lower())
    if cls is None:
        raise DataFormatError(f"{source}: unknown optimizer {config['class']!r}")
    opt = current if type(current) is cls else cls()
    for name, value in config["attrs"].items():
        setattr(opt, name, _unplain(value))
    opt.lr_scheduler = _restore_scheduler(opt.lr_scheduler if config["lr_scheduler"] else None,
                                          config["lr_scheduler"], source)
    return opt


# -- the file --------------------------------------------------------------------------------------

def dumps(states: dict, progress: dict | None = None, optimizer: dict | None = None) -> bytes:
    """The file's bytes: ``states`` maps an index to ``None``, a numpy array or a tuple of them."""
    buf = io.BytesIO()
    np.savez(buf, **_entries(states, progress, optimizer))
    return buf.getvalue()


def save(path: str, states: dict, progress: dict | None = None, optimizer: dict | None = None) -> None:
    """The file :func:`dumps` describes, written atomically to ``path`` (no copy of it in memory)."""
    write_npz(path, _entries(states, progress, optimizer))


def _layout(state, parts: list):
    """How ``state`` (an array, ``None``, or a tuple of them, nested) is made of its arrays, appended to ``parts``:
    an array's position in ``parts``, ``None``, or a list of its parts' layouts."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return [_layout(s, parts) for s in state]
    parts.append(np.asarray(state))
    return len(parts) - 1


def _rebuilt(layout, parts: tuple):
    """The state :func:`_layout` described."""
    if isinstance(layout, list):
        return tuple(_rebuilt(x, parts) for x in layout)
    return None if layout is None else parts[layout]


def _entries(states: dict, progress: dict | None, optimizer: dict | None) -> dict:
    """The npz entries of the file (see the module docstring)."""
    arrays, listed = {}, []
    for i, (index, state) in enumerate(states.items()):
        if _plain(index) is _SKIP:
            raise TypeError(f"optimizer state index {index!r} is not an int or a string")
        if state is None:
            listed.append({"index": _plain(index), "parts": None})
            continue
        parts: list = []
        layout = _layout(state, parts)
        for j, part in enumerate(parts):
            arrays[f"s{i}_{j}"] = part
        entry = {"index": _plain(index), "parts": len(parts), "tuple": isinstance(state, (tuple, list))}
        if isinstance(layout, list) and layout != list(range(len(parts))):
            entry["layout"] = layout  # (a nested or None part: a float16 weight's master copy beside its states)
        listed.append(entry)
    meta = {"format": FORMAT, "version": VERSION, "states": listed, "progress": progress, "optimizer": optimizer}
    return {"meta": np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **arrays}


def loads(blob: bytes, source: str = "optimizer states"):
    """``(states, progress, optimizer config)`` from :func:`dumps`' bytes; never unpickles.

    ``source`` (a path) names the file in errors.
    """
    if not blob.startswith(_ZIP_MAGIC):
        if blob.startswith(_PICKLE_MAGIC):
            raise DataFormatError(f"{source} is an old pickled optimizer-state file; refusing to unpickle it "
                                  "(delete it or re-run without --resume)")
        raise DataFormatError(f"{source} is not a sparsetrain optimizer-state file")
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise DataFormatError(f"{source} is not a sparsetrain optimizer-state file")
            if meta.get("version") != VERSION:
                raise DataFormatError(f"{source}: optimizer-state format version {meta.get('version')!r} "
                                      f"is not supported (this sparsetrain reads version {VERSION})")
            states = {}
            for i, entry in enumerate(meta["states"]):
                index = _key(_unplain(entry["index"]))
                if entry["parts"] is None:
                    states[index] = None
                    continue
                parts = tuple(np.array(z[f"s{i}_{j}"]) for j in range(entry["parts"]))
                if "layout" in entry:
                    states[index] = _rebuilt(entry["layout"], parts)
                else:
                    states[index] = parts if entry.get("tuple") else parts[0]
    except DataFormatError:
        raise
    except (KeyError, TypeError, IndexError) + DAMAGED_NPZ_ERRORS as e:
        raise DataFormatError(f"{source}: corrupt optimizer-state file ({type(e).__name__}: {e})") from None
    return states, meta.get("progress"), meta.get("optimizer")
