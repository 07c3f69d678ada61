"""Checks that need more than the schema: the graph (operators, inputs, parameters, cycles,
reachability), metrics and targets, the optimizer, the number of features, and each parameter's
storage type, size and initializer. Each failure is a ``ConfigError`` naming the key."""
from __future__ import annotations

import os
import warnings

from ..base import ConfigError, ShapeError, SparseTrainError, did_you_mean
from ..initializer import NAME_RULE_SUFFIXES, PARAMETER_STYPES
from ..validation import check_fits_memory, join_path, message
from . import factories
from .graph import build_symbol, canonical_op, locate_shape_error, make_initializer, multiplier_keywords, op_order
from ..io.base import named_format


def _public_ops() -> list[str]:
    from ..ops import all_ops

    return [n for n, op in all_ops().items() if not op.hidden]


def _check_op(name: str, path: str, want_loss: bool):
    from ..ops import all_ops

    ops = all_ops()
    op = ops.get(canonical_op(name))
    if op is None or op.hidden:
        prefix = "sparse." if name.startswith("sparse.") else ""  # (the hint spelled as the config does)
        hint = did_you_mean(name, [prefix + c for c in _public_ops()])
        raise ConfigError(f"{path}: unknown operator {name!r}{hint}")
    if want_loss and not op.is_loss:
        losses = [n for n, o in ops.items() if o.is_loss]
        raise ConfigError(f"{path}: {name!r} is not a loss operator; use one of {', '.join(losses)}")
    if not want_loss and op.is_loss:
        raise ConfigError(f"{path}: {name!r} is a loss operator; declare it under model.loss")
    return op


def _check_params(op, params: dict, path: str):
    for key, value in params.items():
        if key not in op.params:
            hint = did_you_mean(key, op.params)
            allowed = ", ".join(op.params) or "none"
            raise ConfigError(f"{join_path([key], path)}: unknown parameter of {op.name}{hint}; allowed: {allowed}")
        want = _wrong_type(op.params[key], value)
        if want:
            raise ConfigError(f"{join_path([key], path)}: {op.name}'s {key} must be {want} (got {value!r})")


def _wrong_type(default, value) -> str | None:
    """What ``value`` should be, judged by the type of the parameter's registered default; ``None`` if fine."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if default is None:
        return None
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, int):
        return None if number and float(value).is_integer() else "an integer"
    if isinstance(default, float):
        return None if number else "a number"
    if isinstance(default, str):
        return None if isinstance(value, str) else "a string (quote it, e.g. 'null')"
    if isinstance(default, tuple):
        return None if isinstance(value, (list, tuple)) else "a list"
    return None


def validate_graph(cfg) -> None:
    """Names, operators, inputs, parameters, cycles, unused variables and ops that do not feed the loss."""
    m = cfg.model
    if not m.variables:
        raise ConfigError("model.variables: declare at least the data input, the label and one parameter")
    defined: dict[str, str] = {}
    for name in m.variables:
        defined[name] = join_path(["model", "variables", name])
    for i, spec in enumerate(m.ops):
        where = f"model.ops[{i}]"
        if spec.name in defined:
            raise ConfigError(f"{where}.name: {spec.name!r} is already defined at {defined[spec.name]}")
        defined[spec.name] = where
    if m.loss.name in defined:
        raise ConfigError(f"model.loss.name: {m.loss.name!r} is already defined at {defined[m.loss.name]}")
    for i, spec in enumerate(m.ops):
        where = f"model.ops[{i}]"
        op = _check_op(spec.op, f"{where}.op", want_loss=False)
        _check_params(op, spec.params, f"{where}.params")  # before the inputs: params may omit one (no_bias)
        if op.variadic:
            if not spec.inputs:
                raise ConfigError(f"{where}.inputs: {op.name} needs at least one input")
        elif len(spec.inputs) != len(op.inputs_for(spec.params)):
            names = op.inputs_for(spec.params)
            raise ConfigError(f"{where}.inputs: {op.name} takes {len(names)} input(s) "
                              f"({', '.join(names)}), got {len(spec.inputs)}")
        for k, x in enumerate(spec.inputs):
            if x not in defined:
                raise ConfigError(f"{where}.inputs[{k}]: unknown symbol {x!r}{did_you_mean(x, defined)}")
            if x == spec.name:
                raise ConfigError(f"{where}.inputs[{k}]: op {spec.name!r} uses its own output")
    loss_op = _check_op(m.loss.op, "model.loss.op", want_loss=True)
    _check_params(loss_op, m.loss.params, "model.loss.params")
    if m.loss.data not in defined:
        raise ConfigError(f"model.loss.data: unknown symbol {m.loss.data!r}{did_you_mean(m.loss.data, defined)}")
    if m.loss.label not in m.variables:
        raise ConfigError(f"model.loss.label: {m.loss.label!r} is not a variable"
                          f"{did_you_mean(m.loss.label, m.variables)}; declare it under model.variables")
    if cfg.data.input not in m.variables:
        raise ConfigError(f"data.input: {cfg.data.input!r} is not a model variable"
                          f"{did_you_mean(cfg.data.input, m.variables)}")
    _check_data_input(cfg)
    op_order(cfg)  # raises on cycles
    used = {x for spec in m.ops for x in spec.inputs} | {m.loss.data, m.loss.label}
    for name in m.variables:
        if name not in used:
            raise ConfigError(f"{join_path(['model', 'variables', name])}: declared but not used by any op or the loss"
                              f"{did_you_mean(name, used & set(m.variables))}")
    for name, v in m.variables.items():
        if name in (cfg.data.input, m.loss.label):
            for key in multiplier_keywords(v):
                raise ConfigError(f"{join_path(['model', 'variables', name, key])}: {name!r} is the model's "
                                  f"{'data input' if name == cfg.data.input else 'label'}, not a trained parameter")
            continue
        if v.init is None and not name.endswith(NAME_RULE_SUFFIXES):
            raise ConfigError(f"{join_path(['model', 'variables', name])}: give it an init, or a name ending in 'weight' (gets "
                              f"model.init) or 'bias' (starts at zero)")
    for name, v in m.variables.items():
        if name not in (cfg.data.input, m.loss.label) and v.stype not in PARAMETER_STYPES:
            raise ConfigError(f"{join_path(['model', 'variables', name, 'stype'])}: a parameter cannot be {v.stype!r} (initializers and "
                              f"optimizers write it in place); use {' or '.join(map(repr, PARAMETER_STYPES))}")
    label, data = m.variables[m.loss.label], m.variables[cfg.data.input]  # what the readers hand over
    if label.stype != "default":
        raise ConfigError(f"{join_path(['model', 'variables', m.loss.label, 'stype'])}: {label.stype!r}: labels are "
                          "read as a dense array; use 'default' (or leave stype out)")
    if data.stype == "row_sparse":
        raise ConfigError(f"{join_path(['model', 'variables', cfg.data.input, 'stype'])}: 'row_sparse': the data is "
                          "read as csr rows; use 'csr' (or 'default': dense)")
    reachable = _reachable(cfg)
    for i, spec in enumerate(m.ops):
        if spec.name not in reachable:
            raise ConfigError(f"model.ops[{i}]: {spec.name!r} does not feed the loss (model.loss.data is "
                              f"{m.loss.data!r})")


def _check_data_input(cfg) -> None:
    """``data.input`` naming the label or a parameter while another variable can only be the input (stype
    csr, or no init and no name rule): said of ``data.input``, not of the variable left without an init."""
    m, name = cfg.model, cfg.data.input
    inputs = [n for n, v in m.variables.items()
              if n != m.loss.label and (v.stype == "csr" or (v.init is None and not n.endswith(NAME_RULE_SUFFIXES)))]
    if name in inputs or (name != m.loss.label and not inputs):
        return
    what = "the label (model.loss.label)" if name == m.loss.label else "a parameter (it has an init or a name ending " \
        "in 'weight' or 'bias')"
    allowed = f": {' or '.join(map(repr, inputs))}" if inputs else ""
    hint = "; a CSV column of importance weights is data.weight_column" if "weight" in name.lower() else ""
    raise ConfigError(f"data.input: {name!r} is {what}; data.input names the model variable fed with the feature "
                      f"rows{allowed}{hint}")


def _reachable(cfg) -> set:
    by_name = {spec.name: spec for spec in cfg.model.ops}
    seen, stack = set(), [cfg.model.loss.data]
    while stack:
        n = stack.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in by_name:
            stack.extend(by_name[n].inputs)
    return seen


def validate_training(cfg) -> None:
    """Metrics, targets, cache/shuffle, the optimizer and the initializer (built once to check them)."""
    from .. import metric as metric_mod
    from ..metric_catalogue import scoring_info

    for k, name in enumerate(cfg.metrics):
        try:
            scoring_info(name)
            why = metric_mod.not_applicable(name, canonical_op(cfg.model.loss.op))
        except (ValueError, KeyError, TypeError, SparseTrainError) as e:
            raise ConfigError(f"train.metrics[{k}]: {message(e)}") from None
        if why:
            raise ConfigError(f"train.metrics[{k}]: {why}")
    known = _known_keys(cfg)
    for key, value in cfg.train.target.items():
        _check_metric_key(cfg, key, known, join_path(['train', 'target', key]))
        why = metric_mod.unreachable(key, value)
        if why:  # (eval_accuracy: 90, a percentage, trained every epoch to miss it)
            raise ConfigError(f"{join_path(['train', 'target', key])}: {value:g} can never be reached ({why})")
    stop = cfg.train.early_stopping
    if stop is not None and stop.metric is not None:
        _check_metric_key(cfg, stop.metric, known, "train.early_stopping.metric", show_value=True)
    if cfg.train.progressive and cfg.train.kvstore != "local":
        raise ConfigError(f"train.progressive: progressive validation runs with kvstore local only (got "
                          f"{cfg.train.kvstore}); turn it off for distributed training")
    if cfg.data.shuffle and cfg.data.shuffle_window < 2 and cfg.data.train == ["-"] and cfg.data.cache == "stream":
        also = f" (and train.epochs: 1, not {cfg.train.epochs}: stdin is read once)" if cfg.train.epochs != 1 else ""
        raise ConfigError("data.shuffle: stdin streamed (data.cache: stream) is shuffled within data.shuffle_window "
                          "rows (memory holds one window): set data.shuffle_window (e.g. 100000), data.cache: disk "
                          f"(all rows, kept in a disk cache), or data.shuffle: false{also}")
    if cfg.data.shuffle and cfg.data.shuffle_window < 2 and cfg.data.cache == "stream":
        raise ConfigError("data.shuffle: a stream is shuffled within data.shuffle_window rows (memory holds one "
                          "window): set data.shuffle_window (e.g. 100000), or data.cache to memory, disk or auto")
    if cfg.data.shuffle_window and not cfg.data.shuffle:
        raise ConfigError(f"data.shuffle_window: {cfg.data.shuffle_window} shuffles only with data.shuffle: true")
    try:
        with warnings.catch_warnings():  # built here only to check it: its warnings come when training builds it
            warnings.simplefilter("ignore")
            factories.make_optimizer(cfg)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, SparseTrainError) as e:
        raise ConfigError(f"optimizer: {message(e)}") from None
    cfg.initializer()


#: Why stdin is not trained distributed (``train.kvstore: dist_*``, or ``--workers``: checked by ``trainer.fit``).
STDIN_DISTRIBUTED = ("data.train: '-' (stdin): distributed training splits a LibSVM file into byte-range parts, one "
                     "a worker; give a file (or train stdin with train.kvstore: local)")
#: Why stdin streamed cannot have ``data.zero_based: auto`` (also said by the trainer's reader).
STDIN_ZERO_BASED = ("data.zero_based: auto needs all of stdin's feature indices before training (index 0 "
                    "anywhere makes it zero-based), and data.cache: stream reads it once: set data.zero_based: "
                    "true or false, or data.cache: disk (or auto) to keep it in a disk cache for the run")

_HASHED_KEYS = ("label", "weight_column", "id_column", "numeric", "log1p", "categorical", "hash_bits",
                "keep_feature_names")


def validate_data(cfg) -> None:
    """The data format's keys (CSV schema, hashing) and stdin's limits."""
    d = cfg.data
    fmt = cfg.data_format()
    for key, paths in (("data.train", d.train), ("data.eval", d.eval)):
        # one schema reads them all: one format; a name saying another than data.format is a mistake too
        named = {p: named_format(p) or d.format_of(p) for p in paths or () if p != "-"}
        odd = next((p for p, f in named.items() if f != fmt), None)
        if odd is not None and d.format != "auto":
            raise ConfigError(f"{key}: {odd!r} is named as {named[odd]} data, but data.format is {fmt}; give {fmt} "
                              "files (data.format applies to every file whose name says no other format)")
        if odd is not None:
            hint = "" if named_format(odd) else f" (or set data.format: {fmt})"
            raise ConfigError(f"{key}: {odd!r} reads as {named[odd]} data by its name, the training data as {fmt}; "
                              f"give files of one format{hint}")
    gen = d.generate
    if gen is not None:  # the file written is read back in data.format: gen-data's --out name rule, for a config
        if d.format not in ("auto", gen.format):
            raise ConfigError(f"data.format: {d.format}, but data.generate.format writes {gen.format} rows; set "
                              f"data.format: {gen.format} (or auto)")
        named = named_format(gen.path)
        if named not in (None, gen.format) or d.format_of(gen.path) != gen.format:
            how = f"is named as {named} data" if named else f"reads as {d.format_of(gen.path)} data by its name"
            to = "name it .csv or .tsv" if gen.format == "csv" else "name it another way"
            raise ConfigError(f"data.generate.path: {gen.path!r} {how}, but data.generate.format writes "
                              f"{gen.format} rows; {to}" + ("" if named else f" (or set data.format: {gen.format})"))
    # a key set to something else than its default (a dumped and reloaded config sets every key)
    given = {k for k in _HASHED_KEYS + ("crosses",) if getattr(d, k) != type(d).model_fields[k].get_default(
        call_default_factory=True)}
    if d.csv != type(d.csv)():  # (a dumped and reloaded config has the default)
        given.add("csv")
    how = f"data.format: {fmt}" if d.format == fmt else "from the file name; stdin has none"
    if d.format == "auto" and d.train != ["-"]:
        how = "from the file name"
    if fmt == "libsvm":
        for key in _HASHED_KEYS + ("crosses", "csv"):
            if key in given:
                formats = "csv" if key in ("id_column", "csv") else "csv or vw"
                raise ConfigError(f"data.{key}: only for {formats} data (the data is read as libsvm, {how}); "
                                  f"set data.format: {formats}")
    elif fmt == "csv":
        cfg.csv_schema().check()
        if d.csv.columns is None and not d.csv.has_header():
            raise ConfigError("data.csv: give `columns` (the names in file order) or `header: true`")
        if d.csv.columns is not None:
            cfg.csv_schema().check_columns(d.csv.columns, "data.csv.columns")
    elif fmt == "vw":
        if "csv" in given:
            raise ConfigError(f"data.csv: only for csv data (the data is read as vw, {how})")
        for key in ("label", "weight_column", "id_column", "numeric", "log1p", "categorical"):
            if key in given:
                what = {"weight_column": "carry their importance", "id_column": "carry their tag"}.get(
                    key, "name their features")
                raise ConfigError(f"data.{key}: only for csv data (Vowpal Wabbit lines {what})")
        for i, pair in enumerate(d.crosses):
            if len(pair) != 2:
                raise ConfigError(f"data.crosses[{i}]: a cross is a pair of namespaces, got {pair}")
    if fmt != "libsvm" and cfg.train.kvstore != "local":
        raise ConfigError(f"train.kvstore: {cfg.train.kvstore} reads LibSVM data only; the data is {fmt}")
    stdin = d.train is not None and "-" in d.train
    if stdin:
        if d.train != ["-"]:
            raise ConfigError("data.train: '-' (stdin) cannot be combined with files")
        if cfg.train.kvstore != "local":
            raise ConfigError(STDIN_DISTRIBUTED)
        if d.cache == "memory":
            raise ConfigError("data.cache: memory: stdin is read once, as a stream (data.cache: stream) or into a "
                              "disk cache kept for the run (data.cache: disk)")
        if cfg.train.epochs != 1 and d.cache == "stream":
            raise ConfigError(f"train.epochs: {cfg.train.epochs}: stdin ('-') streamed is read once; set 1, or "
                              "data.cache: disk (or auto) to keep it in a disk cache for the run")
        if fmt == "libsvm" and d.zero_based == "auto" and d.cache == "stream":
            raise ConfigError(STDIN_ZERO_BASED)
    if d.eval is not None and "-" in d.eval:
        raise ConfigError("data.eval: '-' (stdin) is only for data.train")
    from ..labels import task_of

    op = canonical_op(cfg.model.loss.op)  # a label key this model does not read is no silent no-op
    if d.label_values is not None and task_of(op) != "binary":
        raise ConfigError(f"data.label_values: only for a binary model (LogisticRegressionOutput); this model's "
                          f"output is {op}")
    if d.label_base != 0 and task_of(op) != "multiclass":
        raise ConfigError(f"data.label_base: only for a softmax model (SoftmaxOutput); this model's output is {op}")


def hashed_num_features(cfg) -> int | None:
    """The feature count the hashed formats imply (None for LibSVM)."""
    fmt = cfg.data_format()
    if fmt == "csv":
        return (1 << cfg.data.hash_bits) + len(cfg.data.numeric)
    if fmt == "vw":
        return 1 << cfg.data.hash_bits
    return None


def _known_keys(cfg) -> list[str]:
    """The metric keys a record may hold (``eval_`` ones even without ``data.eval``: they get their own error)."""
    keys = list(cfg.metrics)
    if cfg.train.progressive:
        keys += [f"progressive_{m}" for m in cfg.metrics]
    return keys + [f"eval_{m}" for m in cfg.metrics]


def _check_metric_key(cfg, key: str, known: list[str], path: str, show_value: bool = False) -> None:
    where = f"{path}: {key!r}" if show_value else path
    if key not in known:
        if key.startswith("progressive_") and key[len("progressive_"):] in cfg.metrics:
            raise ConfigError(f"{where}: needs train.progressive: true")
        raise ConfigError(f"{where}: not a reported metric{did_you_mean(key, known)}; reported: {', '.join(known)}")
    if key.startswith("eval_") and not cfg.data.eval:
        raise ConfigError(f"{where}: needs data.eval (evaluation data scored after every epoch)")


def resolve_num_features(cfg) -> int:
    """``data.num_features``, else ``data.generate.features``, else what the declared shapes imply
    (CSV/TSV: ``2**hash_bits + len(numeric)``; Vowpal Wabbit: ``2**hash_bits``)."""
    hashed = hashed_num_features(cfg)
    if hashed is not None:
        if cfg.data.num_features is not None and cfg.data.num_features != hashed:
            what = "2**hash_bits + len(numeric)" if cfg.data_format() == "csv" else "2**hash_bits"
            raise ConfigError(f"data.num_features: {cfg.data.num_features} but the {cfg.data_format()} data has "
                              f"{what} = {hashed} features")
        return hashed
    if cfg.data.num_features is not None:
        if cfg.data.generate is not None and cfg.data.generate.features != cfg.data.num_features:
            raise ConfigError(f"data.num_features: {cfg.data.num_features} but data.generate.features is "
                              f"{cfg.data.generate.features}")
        return cfg.data.num_features
    if cfg.data.generate is not None:
        return cfg.data.generate.features
    from ..symbol import build_plan

    symbol = build_symbol(cfg)
    b = cfg.data.batch_size
    try:
        plan = build_plan(symbol, {cfg.data_name: (b, 0), cfg.label_name: (b,)}, {}, {}, require_shapes=False)
    except (ShapeError, SparseTrainError) as e:
        raise ConfigError(locate_shape_error(cfg, message(e))) from None
    for node in plan.args:
        if node.name == cfg.data_name:
            shape = plan.shapes.get((node.uid, 0))
            if shape and len(shape) == 2 and shape[1]:
                return int(shape[1])
    counted = count_num_features(cfg.data, cfg._base_dir)
    if counted is None:
        raise ConfigError("data.num_features: required (the model's declared shapes do not determine it)")
    n, note = counted
    cfg._notes.append(note)
    return n


def count_num_features(data, base_dir: str) -> tuple[int, str] | None:
    """For LibSVM training files and no ``data.num_features``: the files' largest feature index + 1
    (one streamed pass) and the run-log line that says so; ``None`` when the data does not tell
    (generated or hashed data, or a stream that can only be read once)."""
    if data.num_features is not None or data.generate is not None or not data.train:
        return None
    if data.format_of(data.train[0]) != "libsvm" or "-" in data.train:
        return None
    from ..io.libsvm import libsvm_num_features
    from .schema import expand_paths

    files = expand_paths(base_dir, data.train, "data.train")
    n = libsvm_num_features(files, data.zero_based, max_line_bytes=data.max_line_bytes)
    where = os.path.basename(files[0]) + (f" and {len(files) - 1} more" if len(files) > 1 else "")
    return n, (f"data.num_features: {n}, read from the training data ({where}: largest feature index + 1); "
               "set it to fix it")




def validate_parameters(cfg, plan) -> None:
    """Each parameter's shape (from shape inference) against the machine's memory and its initializer."""
    itemsize = {"float32": 4, "float64": 8}
    shapes = {node.name: plan.shapes.get((node.uid, 0)) for node in plan.args}
    global_init = None
    for name in cfg.param_names:
        shape, v = shapes.get(name), cfg.model.variables[name]
        if not shape:
            continue
        dtype = v.dtype or "float32"
        try:
            check_fits_memory(_prod(shape) * itemsize[dtype], f"shape {list(shape)} ({dtype})")
        except ValueError as e:
            raise ConfigError(f"{join_path(['model', 'variables', name])}: {e}") from None
        if v.init is not None:
            path, by_name = join_path(["model", "variables", name, "init"]), False
            init = make_initializer(v.init, path)
        else:
            path, by_name = "model.init", True
            init = global_init = global_init or cfg.initializer()
        try:
            init.check(name, shape, by_name=by_name)
        except (ValueError, TypeError, SparseTrainError) as e:
            raise ConfigError(f"{path}: {message(e)}") from None


def _prod(shape) -> int:
    out = 1
    for n in shape:
        out *= int(n)
    return out
