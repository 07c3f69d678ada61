"""``model.preset`` expanded into ``variables``, ``ops`` and ``loss`` before validation.

A preset's graph (:mod:`.presets`) has every weight sized by ``data.num_features`` (or
``data.generate.features``, or ``2^data.hash_bits`` (its default when not given, for CSV/TSV and VW
data) plus a CSV file's ``data.numeric`` columns). ``variables``, ``ops`` and ``loss`` given beside
the preset extend it: a variable of the same name has its given keys replaced (e.g. ``weight:
{init: zero}``), an op of the same name is replaced and other ops are added, and the keys of
``loss`` replace the preset's (``loss: {op: LinearRegressionOutput}`` makes an ``fm``
a regression model). The expanded document is what the run directory's ``config.yaml`` holds.

Independently of presets, the loss's label variable need not be declared: it is added as
``{}`` (its shape comes from the data).
"""
from __future__ import annotations

import copy

from pydantic import ValidationError

from ..base import ConfigError
from ..io.base import named_format
from ..validation import format_validation_error, join_path
from .presets import BUILDERS, ZERO_START
from .schema import DataConfig, PresetOptions


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
    for key, value in (("data.num_features", data.get("num_features")),
                       ("data.generate.features", gen.get("features"))):
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
        if key != "preset" and (name is None or key not in BUILDERS[name].options):
            users = [p for p, preset in BUILDERS.items() if key in preset.options]
            raise ConfigError(f"{join_path(['model', key])}: only read by the {' / '.join(users)} preset"
                              + (f", not {name}" if name else "; set model.preset"))
    if name == "softmax" and opts.classes is None:
        raise ConfigError("model.classes: the softmax preset needs the number of classes (2 or more)")
    if name is not None:
        if name in ZERO_START:
            model.setdefault("init", "zero")
        variables, ops, loss = BUILDERS[name].build(_num_features(doc), opts)
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
