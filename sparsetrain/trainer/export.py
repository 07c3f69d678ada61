"""``sparsetrain export``: a trained model's weights, readably — the non-zero rows of every parameter
with their feature index (and name, where the run kept a name map), the biases, and the model's
expanded config; as JSON or CSV, optionally only the ``top`` rows by magnitude.

The name map is ``<run>/feature_names.json`` (``data.keep_feature_names``; its format is
:mod:`sparsetrain.io.feature_names`'s: ``names`` maps a feature index to the names hashed to it).
It labels the rows of every parameter with one row per feature
(first dimension ``num_features``).

JSON: ``{"checkpoint", "epoch", "num_features", "model", "parameters": {name: {"shape", "stype",
"rows": [{"index", "feature"?, "values": [...]}]}}}``; a 1-D parameter (a bias) has ``"values"``
(every element) instead of ``"rows"``. CSV: ``#`` comment lines with the model config (YAML) and each
parameter's shape and stype, then ``parameter,index,feature,output,value``, one line per element of
each exported row (a bias: ``index`` is the element, ``output`` 0). :func:`read_export` reads
either back into dense arrays.
"""
from __future__ import annotations

import csv
import io
import json
import os

import numpy as np

from ..base import ConfigError, DataFormatError
from ..fileio import write_atomic
from .data import FEATURE_NAMES_FILE
from .rundir import load_run_config

FORMATS = ("json", "csv")


def read_feature_names(run_path: str) -> dict[int, list[str]]:
    """``{feature index: [names]}`` from ``<run>/feature_names.json`` (format:
    :mod:`sparsetrain.io.feature_names`); empty when there is none."""
    from ..io.feature_names import read_feature_names as read_names

    path = os.path.join(run_path, FEATURE_NAMES_FILE)
    if not os.path.exists(path):
        return {}
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


def export_model(model, run_path: str | None = None, top: int | None = None) -> dict:
    """The export document (see the module docstring) of a :class:`~.predict.TrainedModel`; ``run_path``:
    its run directory (the model config and the name map come from there), ``top``: keep only the
    ``top`` rows of largest L2 norm of each 2-D parameter (biases are kept whole)."""
    from ..module import load_params

    if top is not None and top < 1:
        raise ConfigError(f"--top {top}: must be at least 1")
    arg, _ = load_params(model.params_path)
    names = read_feature_names(run_path) if run_path else {}
    model_cfg = (load_run_config(run_path) or {}).get("model") if run_path else None
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
            named = value.shape[0] == model.num_features and names
            out = []
            for k in order:
                row = {"index": int(idx[k])}
                if named and int(idx[k]) in names:
                    row["feature"] = "|".join(names[int(idx[k])])
                row["values"] = [float(t) for t in _texts(rows[k])]
                out.append(row)
            entry["rows"] = out
        params[name] = entry
    return {"checkpoint": model.params_path, "epoch": model.epoch, "num_features": model.num_features,
            "model": model_cfg, "parameters": params}


def to_csv(doc: dict) -> str:
    import yaml

    buf = io.StringIO()
    if doc.get("model") is not None:
        buf.write("# model (expanded config):\n")
        for line in yaml.safe_dump(doc["model"], sort_keys=False, default_flow_style=None).splitlines():
            buf.write(f"#   {line}\n")
    buf.write(f"# checkpoint: {doc['checkpoint']} (epoch {doc['epoch']})\n")
    for name, p in doc["parameters"].items():
        buf.write(f"# parameter {name}: shape {json.dumps(p['shape'])} stype {p['stype']}\n")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["parameter", "index", "feature", "output", "value"])
    for name, p in doc["parameters"].items():
        if "values" in p:
            for i, v in enumerate(p["values"]):
                writer.writerow([name, i, "", 0, repr(v)])
            continue
        for row in p["rows"]:
            for j, v in enumerate(row["values"]):
                writer.writerow([name, row["index"], row.get("feature", ""), j, repr(v)])
    return buf.getvalue()


def write_export(doc: dict, out: str | None, fmt: str) -> str:
    """The document as ``fmt`` text, written to ``out`` (atomically) when given; returns the text."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    text = json.dumps(doc, indent=1) + "\n" if fmt == "json" else to_csv(doc)
    if out and out != "-":
        write_atomic(out, text, compress=True)
    return text


def read_export(path: str) -> dict[str, np.ndarray]:
    """``{parameter: dense float32 array}`` from an exported JSON or CSV file (rows not exported are zero)."""
    from ..io.chunks import opened_data

    with opened_data(path) as f:  # (export --out NAME.gz/.bz2 writes it compressed)
        text = f.read().decode("utf-8")
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
    lines = text.splitlines()
    for line in lines:
        if line.startswith("# parameter "):
            head, _, rest = line[len("# parameter "):].partition(": shape ")
            arrays[head] = np.zeros(json.loads(rest.split(" stype ")[0]), np.float32)
    for rec in csv.DictReader(line for line in lines if not line.startswith("#")):
        arr = arrays[rec["parameter"]]
        if arr.ndim == 1:
            arr[int(rec["index"])] = float(rec["value"])
        else:
            arr.reshape(arr.shape[0], -1)[int(rec["index"]), int(rec["output"])] = float(rec["value"])
    return arrays
