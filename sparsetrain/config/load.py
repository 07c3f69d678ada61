"""Loading a config: YAML text -> ``--set`` overrides -> schema -> validation -> :class:`Config`."""
from __future__ import annotations

import os

import yaml
from pydantic import ValidationError

from ..base import ConfigError
from ..validation import format_validation_error, join_path
from .expand import expand as expand_preset
from .schema import Config, DataConfig
from .validate import count_num_features, resolve_num_features, validate_data, validate_graph, validate_parameters, validate_training
from .yaml_doc import parse_yaml, yaml_error_text


def load_config(path: str, overrides=(), *, check_files: bool = False) -> Config:
    """Read, override, validate. Raises ``ConfigError`` naming the file or the key path."""
    # (a data file given as the config, `fit data.csv`: say what writes a config for it)
    init = "" if str(path).endswith((".yaml", ".yml")) else (
        f"; for a data file, `sparsetrain init {path} --task binary|regression|multiclass --out CONFIG` writes one")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: cannot read config (not UTF-8 text: {e.reason} at byte {e.start}){init}") from None
    try:
        doc = parse_yaml(text, path)
    except yaml.YAMLError as e:
        raise ConfigError(f"{yaml_error_text(e, path)}{_bare_dash_hint(text, e)}{init}") from None
    if doc is None:
        raise ConfigError(f"{path}: the config is empty; it needs data and model keys at least (`sparsetrain init "
                          "DATA --task ... --out CONFIG` writes one for your data)")
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the config must be a mapping with data, model, optimizer, train keys{init}")
    for item in overrides or ():
        apply_override(doc, item)
        _absolutize_override_paths(doc, item)
    return config_from_dict(doc, source=path, check_files=check_files)


def _absolutize_override_paths(doc: dict, item: str) -> None:
    """Paths given with ``--set`` are command-line paths: relative to the working directory."""
    key = item.partition("=")[0].strip().replace("[", ".").replace("]", "")
    if not key.startswith(("data.train", "data.eval", "data.generate", "output")):
        return

    def fix(v):
        if isinstance(v, str) and v and v != "-" and not os.path.isabs(os.path.expanduser(v)):
            return os.path.abspath(v)
        return v

    data = doc.get("data") if isinstance(doc.get("data"), dict) else {}
    for name in ("train", "eval"):
        if key.startswith(f"data.{name}") and name in data:
            data[name] = [fix(v) for v in data[name]] if isinstance(data[name], list) else fix(data[name])
    gen = data.get("generate")
    if key.startswith("data.generate") and isinstance(gen, dict) and "path" in gen:
        gen["path"] = fix(gen["path"])
    if key == "output":
        doc["output"] = fix(doc.get("output"))


def config_from_dict(doc: dict, source: str | None = None, check_files: bool = False) -> Config:
    """Validate a parsed config document; ``source`` (the file it came from) anchors relative paths."""
    base_dir = os.path.dirname(os.path.abspath(source)) if source else os.getcwd()
    doc, notes = _count_features_for_preset(doc, base_dir)
    doc = expand_preset(doc)
    try:
        cfg = Config.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, Config)) from None
    cfg._source = source
    cfg._base_dir = base_dir
    cfg._notes = notes
    validate_graph(cfg)
    validate_training(cfg)
    validate_data(cfg)
    cfg._num_features = resolve_num_features(cfg)
    plan = cfg.plan()  # shape and storage-type inference: impossible shapes fail here, before any work
    validate_parameters(cfg, plan)
    if check_files:
        cfg.train_files() if cfg.data.generate is None else None
        cfg.eval_files()
    return cfg


def _count_features_for_preset(doc: dict, base_dir: str) -> tuple[dict, list[str]]:
    """A preset sizes its weights by ``data.num_features``: when LibSVM training data leaves it out,
    count it from the files first (a new document with it filled in, and the run-log line)."""
    model, data = doc.get("model"), doc.get("data")
    if not (isinstance(model, dict) and model.get("preset") and isinstance(data, dict)):
        return doc, []
    try:
        parsed = DataConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, DataConfig, ["data"])) from None
    counted = count_num_features(parsed, base_dir)
    if counted is None:
        return doc, []
    n, note = counted
    return {**doc, "data": {**data, "num_features": n}}, [note]


def _bare_dash_hint(text: str, e: yaml.YAMLError) -> str:
    """What to write when the line of a YAML error is ``key: -``: a bare dash opens a list (stdin is ``"-"``)."""
    import re

    mark = getattr(e, "problem_mark", None)
    lines = text.splitlines()
    if mark is None or mark.line >= len(lines):
        return ""
    m = re.match(r"\s*([\w.-]+):\s+-\s*(#.*)?$", lines[mark.line])
    return f" (a bare - starts a list; stdin is written in quotes: {m[1]}: \"-\")" if m else ""


def apply_override(doc: dict, item: str) -> None:
    """Apply one ``a.b[1].c=value`` (or ``a.b.1.c=value``) override; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. optimizer.learning_rate=0.1")
    key, _, raw = item.partition("=")
    try:
        if raw.strip() == "-":  # stdin (YAML would read a list holding null)
            value = "-"
        else:
            value = parse_yaml(raw, "--set", join_path(_split_key(key.strip(), item))) if raw.strip() else None
    except yaml.YAMLError as e:
        if raw.lstrip()[:1] in ("[", "{"):  # meant as a list or mapping, not as text (a file name '[a, b')
            why = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"--set {key.strip()}: {raw!r} is not a YAML list or mapping ({why})") from None
        value = raw  # (text YAML cannot read, as a file name may be)
    parts = _split_key(key.strip(), item)
    node = doc
    for depth, part in enumerate(parts[:-1]):
        here = join_path(parts[: depth + 1])
        nxt = parts[depth + 1]
        if isinstance(node, list):
            if not isinstance(part, int) or not -len(node) <= part < len(node):
                raise ConfigError(f"--set {key}: {here}: index out of range (the list has {len(node)} items)")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {join_path(parts[:depth])} is not a mapping")
        if isinstance(part, int):
            raise ConfigError(f"--set {key}: {join_path(parts[:depth])} is not a list")
        if node.get(part) is None:
            node[part] = [] if isinstance(nxt, int) else {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        if not isinstance(last, int) or not -len(node) <= last <= len(node):
            raise ConfigError(f"--set {key}: index out of range (the list has {len(node)} items)")
        if last == len(node):
            node.append(value)
        else:
            node[last] = value
    elif isinstance(node, dict):
        if isinstance(last, int):
            raise ConfigError(f"--set {key}: {join_path(parts[:-1])} is not a list")
        node[last] = value
    else:
        raise ConfigError(f"--set {key}: {join_path(parts[:-1])} is not a mapping")


def _split_key(key: str, item: str) -> list:
    if not key:
        raise ConfigError(f"--set {item!r}: empty key")
    parts: list = []
    for piece in key.split("."):
        name, _, rest = piece.partition("[")
        if name:
            parts.append(int(name) if name.lstrip("-").isdigit() and parts else name)
        elif not rest:
            raise ConfigError(f"--set {item!r}: empty key component")
        while rest:
            idx, sep, rest = rest.partition("]")
            if not sep or not idx.lstrip("-").isdigit():
                raise ConfigError(f"--set {item!r}: bad list index [{idx}")
            parts.append(int(idx))
            rest = rest[1:] if rest.startswith("[") else rest
            if rest:
                raise ConfigError(f"--set {item!r}: unexpected {rest!r} after an index")
    return parts
