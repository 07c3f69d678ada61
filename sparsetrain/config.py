"""The YAML run configuration: typed schema, ``--set`` overrides, graph validation, symbol building.

``load_config(path, overrides)`` reads a file with ``yaml.safe_load``, applies ``a.b.c=value``
overrides (values parsed as YAML), validates everything that can be checked without data — keys,
types, operator names, inputs, cycles, shapes (by running shape and storage-type inference) —
and returns a :class:`Config`. Every problem is a :class:`sparsetrain.ConfigError` whose message
starts with the key path, e.g. ``model.ops[1].inputs[0]: unknown symbol 'wieght' (did you mean
'weight'?)``.

Paths written inside a config file (``data.train``, ``data.eval``, ``data.generate.path``,
``output``) are resolved against the directory that holds the config file, so a config works
from any working directory. Paths given on the command line (``--output``, and path values of
``--set data.train=...`` and friends) are relative to the working directory, as usual for
command-line arguments.

The schema below is the single source of defaults; ``python -m sparsetrain.config --markdown``
prints the reference that the README's "Configuration reference" section holds.
"""
from __future__ import annotations

import glob as _glob
import os
import re
import sys
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .base import ConfigError, ShapeError, SparseTrainError, did_you_mean

# Metrics where a smaller value is better; ``train.target`` means "final value below the target" for
# these and "final value at least the target" for every other metric (accuracy, auc, ...).
LOWER_IS_BETTER = frozenset({"mse", "rmse", "mae", "log_loss", "logloss", "ce", "cross-entropy", "nll_loss",
                             "loss"})

# Metrics chosen when ``train.metrics`` is not given, by loss operator.
DEFAULT_METRICS = {
    "LinearRegressionOutput": ["mse"],
    "MAERegressionOutput": ["mae"],
    "LogisticRegressionOutput": ["log_loss"],
    "SoftmaxOutput": ["accuracy"],
}

# Parameter names the initializer knows without a per-variable ``init`` (MXNet's naming rule).
_NAME_RULE_SUFFIXES = ("weight", "bias", "gamma", "beta", "moving_mean", "moving_var", "moving_inv_var",
                       "moving_avg")

LR_SCHEDULERS = {"factor": "FactorScheduler", "multifactor": "MultiFactorScheduler", "poly": "PolyScheduler",
                 "cosine": "CosineScheduler"}


def _as_list(v):
    if v is None or isinstance(v, list):
        return v
    if isinstance(v, (str, os.PathLike)):
        return [os.fspath(v)]
    return v


def _zero_based(v):
    if isinstance(v, str) and v.lower() in ("auto", "true", "false"):
        return {"auto": "auto", "true": True, "false": False}[v.lower()]
    if isinstance(v, bool) or v == "auto":
        return v
    raise ValueError("must be auto, true or false")


PathList = Annotated[list[str] | None, BeforeValidator(_as_list)]
ZeroBased = Annotated[Literal["auto"] | bool, BeforeValidator(_zero_based)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GenerateConfig(_Strict):
    """Synthetic data written by ``sparsetrain gen-data`` before training (regenerated when options change)."""

    path: str = Field(description="LibSVM file to write (the true weights go beside it).")
    rows: int = Field(gt=0, description="Number of rows.")
    features: int = Field(gt=0, description="Number of features (columns).")
    density: float | None = Field(None, gt=0, le=1, description="Fraction of non-zeros per row "
                                  "(give this or `nnz_per_row`).")
    nnz_per_row: int | None = Field(None, gt=0, description="Non-zeros per row (instead of `density`).")
    task: Literal["regression", "binary", "multiclass"] = Field("regression", description="Label type.")
    classes: int = Field(2, ge=2, description="Number of classes for `multiclass`.")
    target: Literal["arange", "random"] = Field("arange", description="True weights: `arange` is the seed's "
                                                "[1..D]; `random` draws them.")
    noise: float = Field(0.0, ge=0, description="Standard deviation of Gaussian label noise.")
    columns: Literal["uniform", "zipf"] = Field("uniform", description="Column distribution of the non-zeros.")
    zipf_a: float = Field(1.2, gt=1, description="Zipf exponent for `columns: zipf`.")
    seed: int = Field(0, description="Random seed of the generator.")
    zero_based: bool = Field(True, description="Write zero-based feature indices.")

    @model_validator(mode="after")
    def _one_sparsity(self):
        if (self.density is None) == (self.nnz_per_row is None):
            raise ValueError("give exactly one of density and nnz_per_row")
        return self

    def generator_kwargs(self) -> dict:
        return self.model_dump(exclude={"path"})


class DataConfig(_Strict):
    """Where the data comes from and how it is batched."""

    train: PathList = Field(None, description="Training LibSVM file(s): a path, a list of paths or a glob "
                            "(`.gz`/`.bz2` read transparently). Give this or `generate`.")
    generate: GenerateConfig | None = Field(None, description="Generate the training data (gen-data options "
                                            "plus `path`) instead of reading `train`.")
    eval: PathList = Field(None, description="Evaluation LibSVM file(s), scored after every epoch.")
    num_features: int | None = Field(None, gt=0, description="Number of features; defaults to "
                                     "`generate.features`, else to what the model's declared shapes imply.")
    zero_based: ZeroBased = Field("auto", description="Feature indices start at 0 (`true`), 1 (`false`), or "
                                  "decide from the file (`auto`, as scikit-learn).")
    cache: Literal["auto", "memory", "stream"] = Field("auto", description="`memory` parses the file once and "
                                                      "keeps it; `stream` re-reads it every epoch in bounded "
                                                      "memory; `auto` keeps it when it fits `memory_budget_mb` (always when "
                                                      "`shuffle` is on).")
    memory_budget_mb: float = Field(1024, gt=0, description="Budget for `cache: auto`: the parsed CSR size is "
                                    "estimated from the file size.")
    batch_size: int = Field(32, gt=0, description="Rows per batch.")
    last_batch: Literal["pad", "discard", "roll_over"] = Field("pad", description="What to do with a short "
                                                                "last batch, as MXNet's `last_batch_handle`.")
    shuffle: bool = Field(False, description="Shuffle rows every epoch (needs the data in memory).")
    input: str = Field("data", description="Model variable fed with the feature rows (CSR).")

    @model_validator(mode="after")
    def _one_source(self):
        if self.train is None and self.generate is None:
            raise ValueError("give `train` (LibSVM files) or `generate` (synthetic data)")
        if self.train is not None and self.generate is not None:
            raise ValueError("give either `train` or `generate`, not both")
        return self


class VariableConfig(_Strict):
    """One model variable (input, label or parameter)."""

    stype: Literal["default", "csr", "row_sparse"] = Field("default", description="Storage type.")
    shape: list[Annotated[int, Field(gt=0)]] | None = Field(None, description="Shape; data and label shapes "
                                                             "come from the data.")
    init: str | dict[str, Any] | None = Field(None, description="Initializer for a parameter, e.g. `zero` or "
                                              "`{normal: {sigma: 0.01}}`; overrides `model.init`.")
    dtype: Literal["float32", "float64"] | None = Field(None, description="Element type (float32 by default).")


class OpConfig(_Strict):
    """One operator node."""

    name: str = Field(description="Node name; later ops and the loss refer to it.")
    op: str = Field(description="Registry operator name (`sparse.dot` and `dot` are the same).")
    inputs: list[str] = Field(description="Variable or op names, in the operator's input order.")
    params: dict[str, Any] = Field(default_factory=dict, description="Operator parameters, e.g. "
                                   "`{transpose_a: true}`.")


class LossConfig(_Strict):
    """The output layer."""

    name: str = Field("output", description="Node name of the loss.")
    op: str = Field(description="`LinearRegressionOutput`, `LogisticRegressionOutput`, "
                    "`MAERegressionOutput` or `SoftmaxOutput`.")
    data: str = Field(description="The op (or variable) whose output is the prediction.")
    label: str = Field("label", description="The label variable.")
    params: dict[str, Any] = Field(default_factory=dict, description="Loss parameters, e.g. `{grad_scale: 1}`.")


class ModelConfig(_Strict):
    """The symbol graph."""

    variables: dict[str, VariableConfig] = Field(description="Variables by name.")
    ops: list[OpConfig] = Field(description="Operator nodes (any order; cycles are rejected).")
    loss: LossConfig = Field(description="The loss / output layer.")
    init: str | dict[str, Any] = Field(default_factory=lambda: {"uniform": {"scale": 0.01}},
                                       description="Initializer of parameters without their own `init` "
                                       "(MXNet Module's default); names ending in `bias` start at zero.")


class OptimizerConfig(BaseModel):
    """The optimizer; keys besides these are passed on to it and checked by it (e.g. `beta1`, `lamda1`)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    name: str = Field("sgd", description="`sgd`, `adagrad`, `adam`, `ftrl`, ...")
    learning_rate: float | None = Field(None, gt=0, description="Learning rate; default the optimizer's own "
                                        "(sgd 0.01, adagrad 0.01, adam 0.001, ftrl 0.1).")
    momentum: float | None = Field(None, ge=0, lt=1, description="Momentum (SGD).")
    wd: float = Field(0.0, ge=0, description="Weight decay.")
    clip_gradient: float | None = Field(None, gt=0, description="Clip each gradient element to ±this.")
    rescale_grad: float | None = Field(None, gt=0, description="Gradient scale; default 1/batch_size.")
    lr_scheduler: dict[str, dict[str, Any]] | None = Field(None, description="e.g. `{factor: {step: 1000, "
                                                           "factor: 0.9}}` (factor, multifactor, poly, cosine).")

    def optimizer_params(self, batch_size: int) -> dict:
        params = {k: v for k, v in self.model_dump(exclude={"name", "lr_scheduler"}).items() if v is not None}
        params.setdefault("rescale_grad", 1.0 / batch_size)
        if self.lr_scheduler:
            params["lr_scheduler"] = make_lr_scheduler(self.lr_scheduler, self.learning_rate or 0.01)
        return params


class TrainConfig(_Strict):
    """The training loop."""

    epochs: int = Field(10, gt=0, description="Number of epochs.")
    metrics: list[str] | None = Field(None, description="Metrics reported per epoch; default from the loss "
                                      "(mse, mae, log_loss or accuracy).")
    seed: int = Field(0, description="Seeds initialization and shuffling.")
    kvstore: Literal["local", "dist_sync", "dist_async"] = Field(
        "local", description="Parameter store: `local` trains in this process; `dist_sync` / `dist_async` "
        "train on Ray with parameter servers and `--workers N` workers (needs `sparsetrain[dist]`).")
    engine: Literal["auto", "compiled", "graph"] = Field("auto", description="`compiled` fuses whole epochs "
                                                        "of linear models; `graph` runs any graph; `auto` "
                                                        "picks `compiled` when the model matches.")
    target: dict[str, float] = Field(default_factory=dict, description="Final metric values to reach, e.g. "
                                     "`{mse: 1.0}` (below it for error metrics, at least it for accuracy/auc); "
                                     "`eval_<metric>` targets the eval set. A miss makes `fit` exit 1.")
    strict_stypes: bool = Field(False, description="Make every storage fallback an error.")


class Config(_Strict):
    """A whole run: data, model, optimizer, training and output."""

    data: DataConfig
    model: ModelConfig
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    output: str | None = Field(None, description="Run directory; default `runs/<config name>/`.")

    # set by load_config; not part of the schema
    _source: str | None = None
    _base_dir: str = "."
    _num_features: int | None = None

    # -- derived values ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return os.path.splitext(os.path.basename(self._source))[0] if self._source else "run"

    @property
    def source(self) -> str | None:
        return self._source

    @property
    def num_features(self) -> int:
        return self._num_features

    @property
    def data_name(self) -> str:
        return self.data.input

    @property
    def label_name(self) -> str:
        return self.model.loss.label

    @property
    def metrics(self) -> list[str]:
        return list(self.train.metrics or DEFAULT_METRICS.get(_canonical_op(self.model.loss.op), ["mse"]))

    @property
    def param_names(self) -> list[str]:
        return [n for n in self.model.variables if n not in (self.data_name, self.label_name)]

    def resolve(self, path: str) -> str:
        """A path from this config, made absolute against the config file's directory."""
        path = os.path.expanduser(path)
        return path if os.path.isabs(path) else os.path.normpath(os.path.join(self._base_dir, path))

    def train_files(self) -> list[str]:
        if self.data.generate is not None:
            return [self.resolve(self.data.generate.path)]
        return _expand(self, self.data.train, "data.train")

    def eval_files(self) -> list[str]:
        return _expand(self, self.data.eval, "data.eval") if self.data.eval else []

    def output_dir(self) -> str:
        return self.resolve(self.output) if self.output else os.path.join("runs", self.name)

    # -- graph ----------------------------------------------------------------------------------
    def build_symbol(self):
        """The model as a ``Symbol``, built through the public ``sparsetrain.sym`` API."""
        from . import initializer as init_mod
        from . import symbol as sym

        m = self.model
        handles = {}
        for name, v in m.variables.items():
            init = None
            if v.init is not None:
                try:
                    init = init_mod.create(v.init)
                except (ValueError, TypeError, KeyError, SparseTrainError) as e:
                    raise ConfigError(f"model.variables.{name}.init: {_msg(e)}") from None
            handles[name] = sym.Variable(name, stype=v.stype, shape=tuple(v.shape) if v.shape else None,
                                         init=init, dtype=v.dtype)
        for i in _op_order(self):
            spec = m.ops[i]
            fn = getattr(sym, _canonical_op(spec.op))
            try:
                handles[spec.name] = fn(*[handles[x] for x in spec.inputs], name=spec.name,
                                        **_params(spec.params))
            except (TypeError, ValueError, SparseTrainError) as e:
                raise ConfigError(f"model.ops[{i}]: {_msg(e)}") from None
        loss = m.loss
        try:
            return getattr(sym, _canonical_op(loss.op))(handles[loss.data], handles[loss.label], name=loss.name,
                                                        **_params(loss.params))
        except (TypeError, ValueError, SparseTrainError) as e:
            raise ConfigError(f"model.loss: {_msg(e)}") from None

    def initializer(self):
        from . import initializer as init_mod

        try:
            return init_mod.create(self.model.init)
        except (ValueError, TypeError, KeyError, SparseTrainError) as e:
            raise ConfigError(f"model.init: {_msg(e)}") from None

    def plan(self, batch_size: int | None = None, for_training: bool = True):
        """Shape + storage-type inference of the whole graph (forward and backward), without data."""
        from .symbol import build_plan

        symbol = self.build_symbol()
        b = batch_size or self.data.batch_size
        shapes = {self.data_name: (b, self._num_features), self.label_name: (b,)}
        grad_req = {n: ("write" if for_training and n in self.param_names else "null")
                    for n in symbol.list_arguments()}
        try:
            return build_plan(symbol, shapes, {}, grad_req)
        except (ShapeError, SparseTrainError) as e:
            raise ConfigError(_locate_shape_error(self, _msg(e))) from None

    def describe(self, batch_size: int | None = None, backward: bool = False):
        """What ``infer-stypes`` prints: ``(plan, rows, gradients)``.

        ``rows`` are ``Plan.describe`` records plus ``hint`` (for fallback nodes: which input stype
        to change to get a kernel); ``gradients`` lists each parameter's gradient stype and shape.
        """
        plan = self.plan(batch_size=batch_size, for_training=True)
        params = {n.name: n.params for n in plan.forward + plan.backward if n.op is not None}
        variables = {n.name for n in plan.args}
        rows = plan.describe(with_backward=backward)
        for row in rows:
            row["hint"] = (fallback_hint(row["op"], params.get(row["name"], {}), row["inputs"], variables)
                           if row["dispatch"] == "fallback" else None)
        grads = []
        if backward:
            for arg, (node, i) in plan.grad_entries.items():
                grads.append({"argument": arg, "stype": plan.stypes[(node.uid, i)],
                              "shape": list(plan.shapes.get((node.uid, i)) or ()),
                              "node": node.name if node.op is not None else None})
        return plan, rows, grads

    def to_yaml(self, output_dir: str | None = None) -> str:
        """The resolved config (defaults filled in, paths absolute) as YAML."""
        doc = self.model_dump(mode="json")
        if doc["data"]["generate"] is not None:
            doc["data"]["generate"]["path"] = self.resolve(doc["data"]["generate"]["path"])
        if doc["data"]["train"] is not None:
            doc["data"]["train"] = self.train_files()
        if doc["data"]["eval"] is not None:
            doc["data"]["eval"] = self.eval_files()
        doc["data"]["num_features"] = self._num_features
        doc["train"]["metrics"] = self.metrics
        doc["output"] = os.path.abspath(output_dir or self.output_dir())
        return yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)


# -- loading ----------------------------------------------------------------------------------------

def load_config(path: str, overrides=(), *, check_files: bool = False) -> Config:
    """Read, override, validate. Raises ``ConfigError`` naming the file or the key path."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config ({e.strerror or e})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the config must be a mapping with data, model, optimizer, train keys")
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
        if isinstance(v, str) and v and not os.path.isabs(os.path.expanduser(v)):
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
    try:
        cfg = Config.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(_format_validation_error(e, doc)) from None
    cfg._source = source
    cfg._base_dir = os.path.dirname(os.path.abspath(source)) if source else os.getcwd()
    _validate_graph(cfg)
    _validate_training(cfg)
    cfg._num_features = _resolve_num_features(cfg)
    cfg.plan()  # shape and storage-type inference: impossible shapes fail here, before any work
    if check_files:
        cfg.train_files() if cfg.data.generate is None else None
        cfg.eval_files()
    return cfg


def apply_override(doc: dict, item: str) -> None:
    """Apply one ``a.b[1].c=value`` (or ``a.b.1.c=value``) override; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. optimizer.learning_rate=0.1")
    key, _, raw = item.partition("=")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    parts = _split_key(key.strip(), item)
    node = doc
    for depth, part in enumerate(parts[:-1]):
        here = _join_path(parts[: depth + 1])
        nxt = parts[depth + 1]
        if isinstance(node, list):
            if not isinstance(part, int) or not -len(node) <= part < len(node):
                raise ConfigError(f"--set {key}: {here}: index out of range (the list has {len(node)} items)")
            node = node[part]
            continue
        if not isinstance(node, dict):
            raise ConfigError(f"--set {key}: {_join_path(parts[:depth])} is not a mapping")
        if isinstance(part, int):
            raise ConfigError(f"--set {key}: {_join_path(parts[:depth])} is not a list")
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
            raise ConfigError(f"--set {key}: {_join_path(parts[:-1])} is not a list")
        node[last] = value
    else:
        raise ConfigError(f"--set {key}: {_join_path(parts[:-1])} is not a mapping")


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


def _join_path(parts) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


_UNION_TAGS = {"str", "int", "float", "bool", "list[str]", "dict[str,any]", "none", "literal['auto']",
               "function-before[_as_list(), nullable[list[str]]]", "nullable[list[str]]"}


def _format_validation_error(e: ValidationError, doc: dict) -> str:
    errors = e.errors(include_url=False)
    # prefer the most specific error (the longest location) of the first field that failed
    first = errors[0]
    loc = [p for p in first["loc"] if not (isinstance(p, str) and (p.lower().replace(" ", "") in _UNION_TAGS
                                                                      or p.startswith("function-")))]
    path = _join_path(loc) or "config"
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        hint = did_you_mean(loc[-1], allowed)
        msg = f"unknown key{hint}; allowed: {', '.join(allowed)}" if allowed else f"unknown key{hint}"
    elif kind == "missing":
        msg = "required key is missing"
    else:
        msg = re.sub(r" or instance of \w+", "", first["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if "input" in first and kind not in ("model_type",) and not isinstance(first["input"], (dict, list)):
            msg += f" (got {first['input']!r})"
    more = len({tuple(x["loc"]) for x in errors}) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return f"{path}: {msg}{suffix}"


def _allowed_keys(loc) -> list[str]:
    """Field names of the schema model at ``loc`` (for "did you mean" on unknown keys)."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int) or model is None:
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None:
            return []
        if part not in fields:
            # a dict value (variables.<name>): step into the value type
            if model is ModelConfig and loc and "variables" in loc:
                model = VariableConfig
                continue
            return []
        ann = fields[part].annotation
        model = _model_in(ann)
    return list(getattr(model, "model_fields", {}) or [])


def _model_in(ann):
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in getattr(ann, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


# -- graph validation ----------------------------------------------------------------------------

def _canonical_op(name: str) -> str:
    return name[len("sparse."):] if name.startswith("sparse.") else name


def _public_ops() -> list[str]:
    from .ops import all_ops

    return [n for n, op in all_ops().items() if not op.hidden]


def _check_op(name: str, path: str, want_loss: bool):
    from .ops import all_ops

    ops = all_ops()
    op = ops.get(_canonical_op(name))
    if op is None or op.hidden:
        choices = _public_ops()
        hint = did_you_mean(_canonical_op(name), choices)
        raise ConfigError(f"{path}: unknown operator {name!r}{hint}")
    if want_loss and not op.is_loss:
        losses = [n for n, o in ops.items() if o.is_loss]
        raise ConfigError(f"{path}: {name!r} is not a loss operator; use one of {', '.join(losses)}")
    if not want_loss and op.is_loss:
        raise ConfigError(f"{path}: {name!r} is a loss operator; declare it under model.loss")
    return op


def _check_params(op, params: dict, path: str):
    for key in params:
        if key not in op.params:
            hint = did_you_mean(key, op.params)
            allowed = ", ".join(op.params) or "none"
            raise ConfigError(f"{path}.{key}: unknown parameter of {op.name}{hint}; allowed: {allowed}")


def _params(params: dict) -> dict:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def _validate_graph(cfg: Config) -> None:
    m = cfg.model
    if not m.variables:
        raise ConfigError("model.variables: declare at least the data input, the label and one parameter")
    defined: dict[str, str] = {}
    for name in m.variables:
        defined[name] = f"model.variables.{name}"
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
        if op.variadic:
            if not spec.inputs:
                raise ConfigError(f"{where}.inputs: {op.name} needs at least one input")
        elif len(spec.inputs) != len(op.input_names):
            raise ConfigError(f"{where}.inputs: {op.name} takes {len(op.input_names)} input(s) "
                              f"({', '.join(op.input_names)}), got {len(spec.inputs)}")
        for k, x in enumerate(spec.inputs):
            if x not in defined:
                raise ConfigError(f"{where}.inputs[{k}]: unknown symbol {x!r}{did_you_mean(x, defined)}")
            if x == spec.name:
                raise ConfigError(f"{where}.inputs[{k}]: op {spec.name!r} uses its own output")
        _check_params(op, spec.params, f"{where}.params")
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
    _op_order(cfg)  # raises on cycles
    used = {x for spec in m.ops for x in spec.inputs} | {m.loss.data, m.loss.label}
    for name in m.variables:
        if name not in used:
            raise ConfigError(f"model.variables.{name}: declared but not used by any op or the loss")
    for name, v in m.variables.items():
        if name in (cfg.data.input, m.loss.label):
            continue
        if v.init is None and not name.endswith(_NAME_RULE_SUFFIXES):
            raise ConfigError(f"model.variables.{name}: give it an init, or a name ending in 'weight' (gets "
                              f"model.init) or 'bias' (starts at zero)")
    reachable = _reachable(cfg)
    for i, spec in enumerate(m.ops):
        if spec.name not in reachable:
            raise ConfigError(f"model.ops[{i}]: {spec.name!r} does not feed the loss (model.loss.data is "
                              f"{m.loss.data!r})")


def _reachable(cfg: Config) -> set:
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


def _op_order(cfg: Config) -> list[int]:
    """Indices of ``model.ops`` in dependency order; raises ``ConfigError`` on a cycle."""
    ops = cfg.model.ops
    index = {spec.name: i for i, spec in enumerate(ops)}
    state: dict[int, int] = {}
    order: list[int] = []

    def visit(i, trail):
        if state.get(i) == 2:
            return
        if state.get(i) == 1:
            cycle = trail[trail.index(i):] + [i]
            names = " -> ".join(ops[j].name for j in cycle)
            raise ConfigError(f"model.ops[{cycle[0]}]: cycle: {names}")
        state[i] = 1
        for x in ops[i].inputs:
            if x in index:
                visit(index[x], trail + [i])
        state[i] = 2
        order.append(i)

    for i in range(len(ops)):
        visit(i, [])
    return order


def _validate_training(cfg: Config) -> None:
    from . import metric as metric_mod

    for k, name in enumerate(cfg.metrics):
        try:
            metric_mod.create(name)
        except (ValueError, KeyError, TypeError, SparseTrainError) as e:
            raise ConfigError(f"train.metrics[{k}]: {_msg(e)}") from None
    known = cfg.metrics + [f"eval_{m}" for m in cfg.metrics]
    for key in cfg.train.target:
        if key not in known:
            raise ConfigError(f"train.target.{key}: not a reported metric{did_you_mean(key, known)}; "
                              f"reported: {', '.join(known)}")
        if key.startswith("eval_") and not cfg.data.eval:
            raise ConfigError(f"train.target.{key}: needs data.eval")
    if cfg.data.cache == "stream" and cfg.data.shuffle:
        raise ConfigError("data.shuffle: shuffling needs the data in memory; set data.cache to memory or auto")
    try:
        make_optimizer(cfg)
    except ConfigError:
        raise
    except (ValueError, TypeError, KeyError, SparseTrainError) as e:
        raise ConfigError(f"optimizer: {_msg(e)}") from None
    cfg.initializer()


def make_optimizer(cfg: Config):
    """The optimizer object the config describes (``rescale_grad`` defaults to 1/batch_size)."""
    import inspect

    from . import optimizer as opt_mod

    registry = getattr(getattr(opt_mod, "Optimizer", None), "opt_registry", {})
    cls = registry.get(cfg.optimizer.name.lower())
    if cls is None and registry:
        raise ConfigError(f"optimizer.name: unknown optimizer {cfg.optimizer.name!r}"
                          f"{did_you_mean(cfg.optimizer.name.lower(), registry)}; allowed: {', '.join(registry)}")
    if cls is not None:
        accepted = set()
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None:
                accepted |= {p for p in inspect.signature(init).parameters if p not in ("self", "kwargs")}
        for key in cfg.optimizer.optimizer_params(cfg.data.batch_size):
            if key not in accepted:
                raise ConfigError(f"optimizer.{key}: not a parameter of {cfg.optimizer.name}"
                                  f"{did_you_mean(key, accepted)}")
    return opt_mod.create(cfg.optimizer.name, **cfg.optimizer.optimizer_params(cfg.data.batch_size))


def make_lr_scheduler(spec: dict, base_lr: float):
    from . import lr_scheduler

    if len(spec) != 1:
        raise ConfigError("optimizer.lr_scheduler: give one scheduler, e.g. {factor: {step: 1000, factor: 0.9}}")
    (kind, params), = spec.items()
    cls_name = LR_SCHEDULERS.get(kind)
    if cls_name is None:
        raise ConfigError(f"optimizer.lr_scheduler.{kind}: unknown scheduler{did_you_mean(kind, LR_SCHEDULERS)}; "
                          f"allowed: {', '.join(LR_SCHEDULERS)}")
    try:
        return getattr(lr_scheduler, cls_name)(**{"base_lr": base_lr, **(params or {})})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"optimizer.lr_scheduler.{kind}: {_msg(e)}") from None


def fallback_hint(op_name: str, params: dict, inputs: list[dict], variables=()) -> str:
    """For a fallback node: the fewest input stype changes that give it a kernel (from the registry),
    preferring inputs that are ``variables`` (their stype is declared in the config) and sparse kernels."""
    import itertools

    from .ops import registry

    op = registry.get(op_name)
    current = [e["stype"] for e in inputs]
    best = None
    for combo in itertools.product(("default", "csr", "row_sparse"), repeat=len(current)):
        changes = [k for k, (a, b) in enumerate(zip(current, combo)) if a != b]
        if not changes:
            continue
        d = registry.infer_storage(op, combo, params)
        if d.mode == "fallback":
            continue
        declared = all(inputs[k].get("name") in variables for k in changes)
        key = (len(changes), not declared, d.mode != "sparse")
        if best is None or key < best[0]:
            best = (key, changes, combo, d.mode)
    if best is None:
        return f"{op_name} has no kernel for ({', '.join(current)})"
    _, changes, combo, mode = best
    parts = [f"input {k} ({inputs[k].get('name', k)}) from {current[k]} to {combo[k]}" for k in changes]
    return f"change {' and '.join(parts)} to use a {mode} kernel"


def _resolve_num_features(cfg: Config) -> int:
    if cfg.data.num_features is not None:
        if cfg.data.generate is not None and cfg.data.generate.features != cfg.data.num_features:
            raise ConfigError(f"data.num_features: {cfg.data.num_features} but data.generate.features is "
                              f"{cfg.data.generate.features}")
        return cfg.data.num_features
    if cfg.data.generate is not None:
        return cfg.data.generate.features
    from .symbol import build_plan

    symbol = cfg.build_symbol()
    b = cfg.data.batch_size
    try:
        plan = build_plan(symbol, {cfg.data_name: (b, 0), cfg.label_name: (b,)}, {}, {}, require_shapes=False)
    except (ShapeError, SparseTrainError) as e:
        raise ConfigError(_locate_shape_error(cfg, _msg(e))) from None
    for node in plan.args:
        if node.name == cfg.data_name:
            shape = plan.shapes.get((node.uid, 0))
            if shape and len(shape) == 2 and shape[1]:
                return int(shape[1])
    raise ConfigError("data.num_features: required (the model's declared shapes do not determine it)")


def _locate_shape_error(cfg: Config, message: str) -> str:
    for i, spec in enumerate(cfg.model.ops):
        if f"node {spec.name!r}" in message:
            message = re.sub(rf"^node {re.escape(repr(spec.name))} \([^)]*\): ", "", message)
            return f"model.ops[{i}] ({spec.name}, {_canonical_op(spec.op)}): {message}"
    if f"node {cfg.model.loss.name!r}" in message:
        message = re.sub(rf"^node {re.escape(repr(cfg.model.loss.name))} \([^)]*\): ", "", message)
        return f"model.loss ({cfg.model.loss.name}): {message}"
    return f"model: {message}"


def _expand(cfg: Config, paths, key: str) -> list[str]:
    out = []
    for k, p in enumerate(paths):
        full = cfg.resolve(p)
        if _glob.has_magic(full):
            matches = sorted(_glob.glob(full))
            if not matches:
                raise ConfigError(f"{key}[{k}]: no file matches {p!r} (resolved to {full})")
            out.extend(matches)
        else:
            if not os.path.exists(full):
                raise ConfigError(f"{key}[{k}]: file not found: {p!r} (resolved against the config's directory "
                                  f"to {full})")
            out.append(full)
    return out


def _msg(e: BaseException) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


# -- reference documentation --------------------------------------------------------------------

def _default_text(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return "`" + yaml.safe_dump(field.default_factory(), default_flow_style=True).strip() + "`"
    value = field.default
    return "`null`" if value is None else "`" + yaml.safe_dump(value, default_flow_style=True).strip().removesuffix(
        "\n...") + "`"


_DOC_TYPES = {
    ("DataConfig", "train"): "path, list of paths or glob", ("DataConfig", "eval"): "path, list of paths or glob",
    ("DataConfig", "zero_based"): "auto \\| true \\| false", ("DataConfig", "generate"): "mapping (`data.generate`)",
    ("ModelConfig", "variables"): "mapping name → variable", ("ModelConfig", "ops"): "list of op mappings",
    ("ModelConfig", "loss"): "mapping (`model.loss`)",
}


def markdown_reference() -> str:
    """The config reference (one table per section), generated from the schema."""
    sections = [("data", DataConfig), ("data.generate", GenerateConfig), ("model", ModelConfig),
                ("model.variables.<name>", VariableConfig), ("model.ops[i]", OpConfig), ("model.loss", LossConfig),
                ("optimizer", OptimizerConfig), ("train", TrainConfig)]
    lines = ["Generated from `sparsetrain/config.py` by `python -m tools.update_readme`; do not edit here.",
             "", _rst_to_md((__doc__ or "").split("\n\n")[1]), "", _rst_to_md((__doc__ or "").split("\n\n")[2]), "",
             "Top level: `data`, `model`, `optimizer`, `train`, `output` (run directory; default "
             "`runs/<config name>/`). Unknown keys are errors everywhere except `optimizer`, whose extra keys "
             "are passed to the optimizer and checked by it.", ""]
    for title, model in sections:
        lines += [f"### `{title}`", "", _rst_to_md(model.__doc__ or ""), "", "| key | type | default | meaning |",
                  "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            typ = _DOC_TYPES.get((model.__name__, name)) or _simple_type(field.annotation)
            desc = (field.description or "").replace("|", "\\|")
            lines.append(f"| `{name}` | {typ} | {_default_text(field)} | {desc} |")
        lines.append("")
    return "\n".join(lines)


def _rst_to_md(text: str) -> str:
    return " ".join(text.split()).replace("``", "`").replace(":class:", "")


def _simple_type(ann) -> str:
    import typing

    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is Annotated:
        return _simple_type(args[0])
    if origin is Literal:
        return " \\| ".join(str(a).lower() if isinstance(a, bool) else str(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        parts = [_simple_type(a) for a in args if a is not type(None)]
        return " \\| ".join(parts) + (" \\| null" if type(None) in args else "")
    if origin is list:
        return f"list of {_simple_type(args[0])}"
    if origin is dict:
        return "mapping"
    if isinstance(ann, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(ann.__name__, ann.__name__)
    return "any"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--markdown"]:
        sys.stdout.write(markdown_reference() + "\n")
        return 0
    if len(argv) >= 1:
        try:
            cfg = load_config(argv[0], argv[1:])
        except ConfigError as e:
            sys.stderr.write(f"error: {e}\n")
            return 2
        sys.stdout.write(cfg.to_yaml())
        return 0
    sys.stderr.write("usage: python -m sparsetrain.config --markdown | CONFIG [KEY=VALUE ...]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
