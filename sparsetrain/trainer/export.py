"""``sparsetrain export``: a trained model's weights, readably — the non-zero rows of every parameter
with their feature index (and name, where the run kept a name map), the biases, and the model's
expanded config; as JSON or CSV, optionally only the ``top`` rows by magnitude.

The name map is ``<run>/feature_names.json`` (``data.keep_feature_names``; its format is
:mod:`sparsetrain.io.feature_names`'s: ``names`` maps a feature index to the names hashed to it).
It labels the rows of every parameter with one row per feature
(first dimension ``num_features``).

A weight matrix the run starts non-zero (random factors of an FM or wide&deep model: their own
``init`` or ``model.init``) has every row non-zero whether training touched it or not: by default its
rows are left out, and its entry says so in ``"left_out"`` (``--top K`` writes its K largest rows,
``all_rows`` every one).

JSON: ``{"checkpoint", "epoch", "num_features", "model", "parameters": {name: {"shape", "stype",
"rows": [{"index", "feature"?, "values": [...]}], "left_out"?}}}``; a 1-D parameter (a bias) has ``"values"``
(every element) instead of ``"rows"``; ``feature`` is the list of the names hashed to the row (several where
they collide). CSV: ``#`` comment lines with the model config (YAML) and each parameter's shape and stype,
then ``parameter,index,feature,output,value``, one line per element of each exported row (a bias:
``index`` is the element, ``output`` 0); ``feature`` is the names joined by ``|``, a ``|`` or ``\`` inside a
name escaped by a ``\`` (:func:`feature_cell`, :func:`split_feature_cell`). :func:`read_export` reads
either back into dense arrays, :func:`read_export_names` the names of each index.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import os

import numpy as np

from ..base import ConfigError, DataFormatError
from ..fileio import open_atomic, write_stdout
from .data import FEATURE_NAMES_FILE
from .runfiles import CONFIG_FILE, load_run_config

FORMATS = ("json", "csv")


def read_feature_names(run_path: str) -> dict[int, list[str]]:
    """``{feature index: [names]}`` from ``<run>/feature_names.json`` (format:
    :mod:`sparsetrain.io.feature_names`); empty when there is none."""
    path = os.path.join(run_path, FEATURE_NAMES_FILE)
    if not os.path.exists(path):
        return {}
    from ..io.feature_names import read_feature_names as read_names  # (numba, for its data reader: only when kept)

    try:
        return {int(k): [str(x) for x in v] for k, v in read_names(path).items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as e:
        raise DataFormatError(f"{path}: unreadable feature name map ({e})") from None


def _texts(values: np.ndarray) -> list[str]:
    """Shortest exact decimal of each value (a float32 reads back unchanged)."""
    return list(np.asarray(values).astype(str))


def _rows(value) -> tuple[np.ndarray, np.ndarray]:
    """``(row indices, row values)`` of the non-zero rows of a 2-D parameter (dense or row_sparse)."""
    if value.stype == "row_sparse":
        idx, data = np.asarray(value.indices.asnumpy()), np.asarray(value.data.asnumpy())
    else:
        data = value.asnumpy()
        idx = np.arange(data.shape[0])
    data = data.reshape(len(idx), -1)
    keep = np.any(data != 0, axis=1)
    return idx[keep], data[keep]


class ExportRows(list):
    """The exported rows of one weight matrix (``[{"index", "feature"?, "values"}]``), each made as it is
    read: a list to ``json`` (its encoder writes them one by one) and to callers, never held whole (a
    million-row weight as dicts took hundreds of MB)."""

    def __init__(self, indices: np.ndarray, values: np.ndarray, order: np.ndarray, names: dict):
        super().__init__()
        self._indices, self._values, self._order, self._names = indices, values, order, names

    def _row(self, k) -> dict:
        index = int(self._indices[k])
        row = {"index": index}
        if index in self._names:
            row["feature"] = list(self._names[index])
        row["values"] = [float(t) for t in _texts(self._values[k])]
        return row

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self):
        return (self._row(k) for k in self._order)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._row(k) for k in self._order[i]]
        return self._row(self._order[i])

    def __eq__(self, other) -> bool:
        return list(self) == list(other)

    def __ne__(self, other) -> bool:
        return not self == other

    def __repr__(self) -> str:
        return f"ExportRows({len(self)} rows)"


def starting_nonzero(model, cfg) -> set[str]:
    """The parameters of ``model`` (a :class:`~.predict.TrainedModel`) with one row per feature whose rows
    start non-zero, as the initializers of ``cfg`` (its run's :class:`~sparsetrain.config.Config`; None:
    unknown, none) fill them (a variable's own ``init``, else ``model.init`` by its name): there, rows no
    training row touched are non-zero too. The probes' draws leave sparsetrain's random stream as it was."""
    from ..initializer import InitDesc
    from ..random import generator

    if cfg is None:
        return set()
    sym = cfg.build_symbol()
    shapes = dict(zip(sym.list_arguments(), sym.infer_shape_partial(**{model.data_name: (1, model.num_features)})[0]))
    init, found = cfg.initializer(), set()
    stream = generator().bit_generator
    drawn_from = stream.state
    try:
        for name, v in cfg.model.variables.items():
            shape = shapes.get(name)
            if (name in (model.data_name, model.label_name) or not shape or len(shape) != 2
                    or shape[0] != model.num_features):
                continue
            probe = np.zeros((16, int(shape[1])), np.float32)
            init(InitDesc(name, {} if v.init is None else {"init": v.init}), probe)
            if probe.any():
                found.add(name)
    finally:
        stream.state = drawn_from
    return found


def export_model(model, run_path: str | None = None, top: int | None = None, all_rows: bool = False) -> dict:
    """The export document (see the module docstring) of a :class:`~.predict.TrainedModel`; ``run_path``:
    its run directory (the model config and the name map come from there), ``top``: keep only the
    ``top`` rows of largest L2 norm of each 2-D parameter (biases are kept whole); ``all_rows``: also the
    rows of a weight that starts non-zero (:func:`starting_nonzero`). A weight's ``rows`` are an
    :class:`ExportRows`, made as they are read."""
    from ..config import config_from_dict
    from ..module import load_params

    if top is not None and top < 1:
        raise ConfigError(f"--top {top}: must be at least 1")
    if top is not None and all_rows:
        raise ConfigError("--top and --all exclude each other")
    arg, _ = load_params(model.params_path)
    names = read_feature_names(run_path) if run_path else {}
    run_doc = load_run_config(run_path) if run_path else None
    model_cfg = (run_doc or {}).get("model")
    random_start = set()
    if top is None and not all_rows:
        cfg = getattr(model, "config", None)  # a checkpoint prefix has none: its run directory's, as model_cfg
        if cfg is None and run_doc is not None:
            cfg = config_from_dict(run_doc, source=os.path.join(run_path, CONFIG_FILE))
        random_start = starting_nonzero(model, cfg)
    params = {}
    for name, value in arg.items():
        entry = {"shape": list(value.shape), "stype": value.stype}
        if len(value.shape) == 1:
            entry["values"] = [float(t) for t in _texts(value.asnumpy())]
        else:
            idx, rows = _rows(value)
            order = np.arange(len(idx))
            if top is not None:
                order = np.argsort(-np.linalg.norm(rows.astype(np.float64), axis=1), kind="stable")[:top]
            elif name in random_start:
                entry["left_out"] = (f"{len(idx)} rows: each starts non-zero (its init), trained or not; --top K "
                                     "writes the K largest, --all every row")
                order = order[:0]
            entry["rows"] = ExportRows(idx, rows, order, names if value.shape[0] == model.num_features else {})
        params[name] = entry
    return {"checkpoint": model.params_path, "epoch": model.epoch, "num_features": model.num_features,
            "model": model_cfg, "parameters": params}


def feature_cell(names) -> str:
    """The CSV ``feature`` cell of a row's names: joined by ``|``, each name's ``\\`` and ``|`` escaped
    by a ``\\`` (``c=a|b`` and ``d`` -> ``c=a\\|b|d``), so that :func:`split_feature_cell` reads the
    names back whatever they hold."""
    return "|".join(n.replace("\\", "\\\\").replace("|", "\\|") for n in names)


def split_feature_cell(cell: str) -> list[str]:
    """The names of a CSV ``feature`` cell (:func:`feature_cell`'s inverse; ``""`` is none)."""
    if not cell:
        return []
    names, cur, k = [], [], 0
    while k < len(cell):
        c = cell[k]
        if c == "\\" and k + 1 < len(cell):
            cur.append(cell[k + 1])
            k += 2
            continue
        if c == "|":
            names.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        k += 1
    names.append("".join(cur))
    return names


class _Lines(list):
    """What :class:`csv.writer` writes to: the lines it writes, kept in this list."""

    write = list.append


def _csv_chunks(doc: dict):
    """The CSV document as lines of text (:func:`_pieces` joins them)."""
    import yaml

    if doc.get("model") is not None:
        yield "# model (expanded config):\n"
        for line in yaml.safe_dump(doc["model"], sort_keys=False, default_flow_style=None).splitlines():
            yield f"#   {line}\n"
    yield f"# checkpoint: {doc['checkpoint']} (epoch {doc['epoch']})\n"
    for name, p in doc["parameters"].items():
        left_out = f" (left out: {p['left_out']})" if "left_out" in p else ""
        yield f"# parameter {name}: shape {json.dumps(p['shape'])} stype {p['stype']}{left_out}\n"
    lines = _Lines()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(["parameter", "index", "feature", "output", "value"])
    for name, p in doc["parameters"].items():
        if "values" in p:
            writer.writerows([name, i, "", 0, repr(v)] for i, v in enumerate(p["values"]))
        for row in p.get("rows", ()):
            feature = feature_cell(row.get("feature", ()))
            writer.writerows([name, row["index"], feature, j, repr(v)] for j, v in enumerate(row["values"]))
            yield from lines
            lines.clear()
    yield from lines


def _pieces(chunks):
    """``chunks`` of text joined into pieces of about :data:`_PIECE` characters."""
    pending, size = [], 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size >= _PIECE:
            yield "".join(pending)
            pending, size = [], 0
    yield "".join(pending)


_PIECE = 1 << 16  # characters written at a time


def export_text(doc: dict, fmt: str):
    """The document as ``fmt`` (json: as ``json.dumps(doc, indent=1)``, and a newline) in pieces of text."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    chunks = _csv_chunks(doc) if fmt == "csv" else itertools.chain(json.JSONEncoder(indent=1).iterencode(doc), ["\n"])
    return _pieces(chunks)


def write_export(doc: dict, out: str | None, fmt: str) -> None:
    """The document as ``fmt`` text, written as it is made (memory stays bounded) to ``out`` (atomically:
    an error leaves no partial file), or stdout when ``out`` is None or ``-``."""
    pieces = export_text(doc, fmt)
    if not out or out == "-":
        for piece in pieces:
            write_stdout(piece)
        return
    with open_atomic(out, compress=True, make_dirs=True, fsync=True) as f:
        for piece in pieces:
            f.write(piece.encode("utf-8"))


def _export_text(path: str) -> str:
    from ..io.chunks import opened_data

    with opened_data(path) as f:  # (export --out NAME.gz/.bz2 writes it compressed)
        return f.read().decode("utf-8")


def _csv_records(text: str):
    """``(comment lines, csv.DictReader of the rest)`` of an exported CSV file: the ``#`` lines are its
    head; the records after them are split only where the csv module splits them (a name may hold a
    quoted newline, ``\\r`` or ``\\x85``, which ``str.splitlines`` splits at)."""
    lines = io.StringIO(text, newline="\n")
    comments = []
    for line in lines:
        if not line.startswith("#"):
            return comments, csv.DictReader(itertools.chain([line], lines))
        comments.append(line)
    return comments, csv.DictReader([])


def read_export_names(path: str) -> dict[int, list[str]]:
    """``{feature index: [names]}`` of the named rows of an exported JSON or CSV file (export of a run that
    kept its feature names)."""
    text = _export_text(path)
    names: dict[int, list[str]] = {}
    if text.lstrip().startswith("{"):
        for p in json.loads(text)["parameters"].values():
            for row in p.get("rows", []):
                if "feature" in row:
                    names[row["index"]] = row["feature"]
        return names
    for rec in _csv_records(text)[1]:
        if rec["feature"]:
            names[int(rec["index"])] = split_feature_cell(rec["feature"])
    return names


def read_export(path: str) -> dict[str, np.ndarray]:
    """``{parameter: dense float32 array}`` from an exported JSON or CSV file (rows not exported are zero)."""
    text = _export_text(path)
    arrays: dict[str, np.ndarray] = {}
    if text.lstrip().startswith("{"):
        doc = json.loads(text)
        for name, p in doc["parameters"].items():
            arr = np.zeros(p["shape"], np.float32)
            if "values" in p:
                arr[:] = p["values"]
            for row in p.get("rows", []):
                arr[row["index"]] = np.asarray(row["values"], np.float32).reshape(arr.shape[1:])
            arrays[name] = arr
        return arrays
    comments, records = _csv_records(text)
    for line in comments:
        if line.startswith("# parameter "):
            head, _, rest = line[len("# parameter "):].rstrip("\r\n").partition(": shape ")
            arrays[head] = np.zeros(json.loads(rest.split(" stype ")[0]), np.float32)  # (then " (left out: ...)")
    for rec in records:
        arr = arrays[rec["parameter"]]
        if arr.ndim == 1:
            arr[int(rec["index"])] = float(rec["value"])
        else:
            arr.reshape(arr.shape[0], -1)[int(rec["index"]), int(rec["output"])] = float(rec["value"])
    return arrays
