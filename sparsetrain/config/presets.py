"""Model presets: ``model.preset`` expanded into ``variables``, ``ops`` and ``loss`` before validation.

A preset writes the graph a user would otherwise write by hand (the configs in ``configs/``):
the data input is a CSR variable, weights that a ``sparse.dot`` reads are ``row_sparse`` (lazy
updates of the rows a batch touches), every weight is sized by ``data.num_features`` (or
``data.generate.features``, or ``2^data.hash_bits`` (its default when not given, for CSV/TSV and VW data) plus a CSV
file's ``data.numeric`` columns).
``variables``, ``ops`` and ``loss`` given beside the preset extend it: a variable of the same name has its given keys replaced (e.g.
``weight: {init: zero}``), an op of the same name is replaced and other ops are added, and the
keys of ``loss`` replace the preset's (``loss: {op: LinearRegressionOutput}`` makes an ``fm``
a regression model). The expanded document is what the run directory's ``config.yaml`` holds.

Independently of presets, the loss's label variable need not be declared: it is added as
``{}`` (its shape comes from the data).

To add a preset: a name in ``schema.PRESETS`` (and its options in ``schema.PresetOptions``), its
builder returning ``(variables, ops, loss)`` and the options it reads in :data:`BUILDERS` here, and a
test in ``tests/test_presets.py`` that compares it with a hand-written graph (docs/ARCHITECTURE.md
lists what else names the presets).
"""
from __future__ import annotations

import copy

from pydantic import ValidationError

from ..base import ConfigError
from ..validation import format_validation_error, join_path
from ..io.base import named_format
from .schema import DataConfig, PresetOptions

# Presets whose parameters start at zero unless model.init says otherwise (fm's factors have their own
# init), as the shipped configs and VW/scikit-learn start: a row no training row touches stays zero, so
# `export` lists the rows the data trained, not 2**18 hashed rows of initial noise. wide_deep's layers
# need random starts (model.init's default).
ZERO_START = ("linear", "logistic", "softmax", "fm")


def _linear(d: int, k: int, loss_op: str):
    variables = {"data": {"stype": "csr"}, "label": {}, "weight": {"stype": "row_sparse", "shape": [d, k]},
                 "bias": {"shape": [k]}}
    ops = [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]},
           {"name": "pred", "op": "broadcast_add", "inputs": ["dot", "bias"]}]
    return variables, ops, {"op": loss_op, "data": "pred", "label": "label"}


def _fm(d: int, opts: PresetOptions):
    """b + X·w + Σ_f ((X·V)_f² − (X²·V²)_f): Rendle's factorization machine with the ½ folded into V
    (V = V_rendle / √2), as configs/fm.yaml."""
    variables = {"data": {"stype": "csr"}, "label": {},
                 "linear_weight": {"stype": "row_sparse", "shape": [d, 1]},
                 "factors": {"stype": "row_sparse", "shape": [d, opts.k], "init": {"normal": {"sigma": 0.01}}},
                 "bias": {"shape": [1]}}
    ops = [{"name": "linear", "op": "sparse.dot", "inputs": ["data", "linear_weight"]},
           {"name": "xv", "op": "sparse.dot", "inputs": ["data", "factors"]},
           {"name": "xv_sq", "op": "square", "inputs": ["xv"]},
           {"name": "x_sq", "op": "square", "inputs": ["data"]},
           {"name": "v_sq", "op": "square", "inputs": ["factors"]},
           {"name": "x2v2", "op": "sparse.dot", "inputs": ["x_sq", "v_sq"]},
           {"name": "pair", "op": "elemwise_sub", "inputs": ["xv_sq", "x2v2"]},
           {"name": "pairwise", "op": "sum", "inputs": ["pair"], "params": {"axis": 1, "keepdims": True}},
           {"name": "sum", "op": "elemwise_add", "inputs": ["linear", "pairwise"]},
           {"name": "pred", "op": "broadcast_add", "inputs": ["sum", "bias"]}]
    return variables, ops, {"op": "LogisticRegressionOutput", "data": "pred", "label": "label"}


def _wide_deep(d: int, opts: PresetOptions):
    """X·w + relu(...relu(X·E)·H_1...)·p + b, as configs/wide.yaml for ``hidden: [8]``."""
    widths = list(opts.hidden)
    variables = {"data": {"stype": "csr"}, "label": {},
                 "wide_weight": {"stype": "row_sparse", "shape": [d, 1]},
                 "embed_weight": {"stype": "row_sparse", "shape": [d, widths[0]]}}
    ops = [{"name": "wide", "op": "sparse.dot", "inputs": ["data", "wide_weight"]},
           {"name": "embed", "op": "sparse.dot", "inputs": ["data", "embed_weight"]},
           {"name": "hidden", "op": "relu", "inputs": ["embed"]}]
    last = "hidden"
    for i, (a, b) in enumerate(zip(widths, widths[1:]), start=1):
        variables[f"layer{i}_weight"] = {"shape": [a, b]}
        ops += [{"name": f"layer{i}", "op": "dot", "inputs": [last, f"layer{i}_weight"]},
                {"name": f"hidden{i}", "op": "relu", "inputs": [f"layer{i}"]}]
        last = f"hidden{i}"
    variables["proj_weight"] = {"shape": [widths[-1], 1]}
    variables["bias"] = {"shape": [1]}
    ops += [{"name": "deep", "op": "dot", "inputs": [last, "proj_weight"]},
            {"name": "sum", "op": "elemwise_add", "inputs": ["wide", "deep"]},
            {"name": "pred", "op": "broadcast_add", "inputs": ["sum", "bias"]}]
    return variables, ops, {"op": "LogisticRegressionOutput", "data": "pred", "label": "label"}


# Each preset of ``schema.PRESETS`` (tests/test_presets.py holds the two to each other): its builder,
# ``(num_features, options) -> (variables, ops, loss)``, and the options it reads (others given beside it
# are an error).
BUILDERS = {
    "linear": (lambda d, opts: _linear(d, 1, "LinearRegressionOutput"), ()),
    "logistic": (lambda d, opts: _linear(d, 1, "LogisticRegressionOutput"), ()),
    "softmax": (lambda d, opts: _linear(d, opts.classes, "SoftmaxOutput"), ("classes",)),
    "fm": (_fm, ("k",)),
    "wide_deep": (_wide_deep, ("hidden",)),
}


def _hashed(data: dict) -> bool:
    """The training data is CSV/TSV or VW (its features hashed): ``data.format``, or under ``auto`` what the
    training file's name says, or the format ``data.generate`` writes."""
    fmt = data.get("format", "auto")
    if fmt != "auto":
        return fmt in ("csv", "vw")
    if isinstance(data.get("generate"), dict):
        return data["generate"].get("format") == "csv"
    train = data.get("train")
    first = train[0] if isinstance(train, list) and train else train
    return isinstance(first, str) and named_format(first) in ("csv", "vw")


def _num_features(doc: dict) -> int:
    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    gen = data.get("generate") if isinstance(data.get("generate"), dict) else {}
    for key, value in (("data.num_features", data.get("num_features")), ("data.generate.features", gen.get("features"))):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key}: must be a positive integer (got {value!r})")
            return value
    bits = data.get("hash_bits")
    if bits is None and _hashed(data):
        bits = DataConfig.model_fields["hash_bits"].default  # what the reader hashes into when it is not given
    if isinstance(bits, int) and not isinstance(bits, bool) and 0 < bits <= 32:
        numeric = data.get("numeric")  # CSV/TSV only (validate_data refuses it for other formats)
        return 2 ** bits + (len(numeric) if isinstance(numeric, list) else 0)
    raise ConfigError("data.num_features: required by model.preset (it sizes the weights); give the number of "
                      "features (`sparsetrain init DATA` writes it)")


def expand(doc: dict) -> dict:
    """The config document with ``model.preset`` expanded and the loss's label variable declared
    (a new document; ``doc`` is not changed). Errors are ``ConfigError`` naming the ``model...`` key."""
    model = doc.get("model")
    if not isinstance(model, dict):
        return doc
    doc = copy.deepcopy(doc)
    model = doc["model"]
    given = {k: model.pop(k) for k in list(model) if k in PresetOptions.model_fields}
    try:
        opts = PresetOptions.model_validate(given)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, PresetOptions, ["model"])) from None
    name = opts.preset
    for key in given:
        if key != "preset" and (name is None or key not in BUILDERS[name][1]):
            users = [p for p, (_, keys) in BUILDERS.items() if key in keys]
            raise ConfigError(f"{join_path(['model', key])}: only read by the {' / '.join(users)} preset"
                              + (f", not {name}" if name else "; set model.preset"))
    if name == "softmax" and opts.classes is None:
        raise ConfigError("model.classes: the softmax preset needs the number of classes (2 or more)")
    if name is not None:
        if name in ZERO_START:
            model.setdefault("init", "zero")
        variables, ops, loss = BUILDERS[name][0](_num_features(doc), opts)
        model["variables"] = _merge_variables(variables, model.get("variables"))
        model["ops"] = _merge_ops(ops, model.get("ops"))
        model["loss"] = _merge_mapping(loss, model.get("loss"), "model.loss")
    loss = model.get("loss")
    variables = model.get("variables")
    if isinstance(loss, dict) and isinstance(variables, dict):
        label = loss.get("label", "label")
        if isinstance(label, str) and label not in variables:
            variables[label] = {}
    return doc


def _checked(given, kind: type, key: str, what: str):
    if given is not None and not isinstance(given, kind):
        raise ConfigError(f"{key}: must be {what} (got {given!r})")
    return given


def _merge_mapping(base: dict, given, key: str) -> dict:
    return {**base, **_checked(given, dict, key, "a mapping")} if given is not None else base


def _merge_variables(base: dict, given) -> dict:
    out = dict(base)
    for name, spec in (_checked(given, dict, "model.variables", "a mapping of name -> variable") or {}).items():
        key = join_path(["model", "variables", name])
        out[name] = _merge_mapping(base.get(name, {}), spec, key)
    return out


def _merge_ops(base: list, given) -> list:
    """The preset's ops with a given op of the same name replacing it; other given ops are added."""
    out = list(base)
    index = {op["name"]: i for i, op in enumerate(base)}
    for spec in _checked(given, list, "model.ops", "a list of op mappings") or []:
        name = spec.get("name") if isinstance(spec, dict) else None
        if name in index:
            out[index[name]] = spec
        else:
            out.append(spec)
    return out
