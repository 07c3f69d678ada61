"""Parameter initializers, following MXNet 1.x's ``mxnet.initializer``.

An initializer is called as ``init(desc, arr)``: ``desc`` is an :class:`InitDesc` (a ``str``
holding the parameter name, with the variable's ``attrs``) or a plain name, and ``arr`` is a
sparsetrain array that is filled **in place**:

* a dense ``NDArray`` keeps its buffer (``arr._data[...] = values``);
* a ``RowSparseNDArray`` is made full — every row present (``indices = arange(rows)``) — as
  MXNet initialises row-sparse weights;
* a ``CSRNDArray`` cannot be a parameter and raises ``StorageTypeError``.

Which values a parameter gets:

1. a per-variable initializer wins: ``attrs['init']`` (what ``sym.Variable(init=...)`` stores)
   or ``attrs['__init__']`` (MXNet's JSON string); its ``_init_weight`` fills the array whatever
   the parameter's name;
2. otherwise the name decides, as MXNet: ``*bias``, ``*beta``, ``*moving_mean``,
   ``*moving_inv_var``, ``*moving_avg`` → 0; ``*gamma``, ``*moving_var`` → 1; ``*weight`` → the
   initializer's own rule (normal, uniform, ...);
3. any other name raises ``ValueError`` naming the parameter.

All randomness comes from ``sparsetrain.random.generator()``, so ``sparsetrain.random.seed(n)``
makes initial parameters bitwise reproducible. Values are drawn in float64 and stored in the
array's dtype (float32 unless the array is float64).

``init.dumps()`` gives MXNet's JSON spec (``'["normal", {"sigma": 0.01}]'``); :func:`load_spec`
and :func:`create` rebuild an initializer from it.
"""
from __future__ import annotations

import json
import math
import re

import numpy as np

from .base import StorageTypeError, did_you_mean

__all__ = [
    "InitDesc", "Initializer", "Normal", "Uniform", "Xavier", "Zero", "One", "Constant", "Mixed",
    "register", "create", "load_spec", "DEFAULT", "NAME_RULE_SUFFIXES", "PARAMETER_STYPES",
]

_REGISTRY: dict[str, type] = {}


def register(klass):
    """Class decorator: make ``klass`` available to :func:`create` under its lower-cased name."""
    _REGISTRY[klass.__name__.lower()] = klass
    return klass


def _alias(*names):
    def deco(klass):
        for n in names:
            _REGISTRY[n.lower()] = klass
        return klass

    return deco


class InitDesc(str):
    """A parameter name (``str``) carrying the variable's attributes, as MXNet's ``InitDesc``.

    ``attrs`` holds the variable's attributes (``'init'``/``'__init__'`` select a per-variable
    initializer). ``global_init`` is the initializer that received the call (set on first use),
    which composite initializers can delegate to, as in MXNet.
    """

    def __new__(cls, name, attrs=None, global_init=None):
        ret = super().__new__(cls, name)
        ret.attrs = dict(attrs) if attrs else {}
        ret.global_init = global_init
        return ret


# Name suffix -> method name; the order matters (``moving_var`` before a plain ``var`` rule, etc.).
_NAME_RULES = (
    ("weight", "_init_weight"),
    ("bias", "_init_bias"),
    ("gamma", "_init_gamma"),
    ("beta", "_init_beta"),
    ("moving_mean", "_init_zero"),
    ("moving_var", "_init_one"),
    ("moving_inv_var", "_init_zero"),
    ("moving_avg", "_init_zero"),
)
#: Parameter name endings that have a rule without a per-variable initializer.
NAME_RULE_SUFFIXES = tuple(suffix for suffix, _ in _NAME_RULES)
#: Storage types a parameter can have (initializers and optimizers write it in place; csr cannot be).
PARAMETER_STYPES = ("default", "row_sparse")


def _variable_init(desc):
    """The per-variable initializer named in ``desc.attrs``, or None."""
    attrs = getattr(desc, "attrs", None)
    if not attrs:
        return None
    spec = attrs.get("init")
    if spec is None or spec == "":
        spec = attrs.get("__init__")
    if spec is None or spec == "":
        return None
    return create(spec)


class Initializer:
    """Base class. Subclasses pass their constructor arguments to ``super().__init__(**kwargs)``
    (they make up ``dumps()``) and implement ``_init_weight(name, arr)`` writing into a numpy
    buffer of ``arr``'s shape — see :meth:`_fill`.
    """

    def __init__(self, **kwargs):
        self._kwargs = kwargs

    # -- spec ----------------------------------------------------------------------------------
    def dumps(self) -> str:
        """MXNet's JSON spec of this initializer: ``'["name", {kwargs}]'``."""
        return json.dumps([type(self).__name__.lower(), self._kwargs])

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Initializer) and self.dumps() == other.dumps()

    __hash__ = object.__hash__

    # -- dispatch ------------------------------------------------------------------------------
    def __call__(self, desc, arr) -> None:
        """Fill ``arr`` in place for the parameter ``desc`` (an :class:`InitDesc` or a name)."""
        if isinstance(desc, InitDesc) and desc.global_init is None:
            desc.global_init = self
        override = _variable_init(desc)
        if override is not None:
            override._init_weight(desc, arr)
            return
        name = str(desc)
        for suffix, method in _NAME_RULES:
            if name.endswith(suffix):
                getattr(self, method)(desc, arr)
                return
        self._init_default(desc, arr)

    def check(self, name, shape, by_name: bool = True) -> None:
        """Raise ``ValueError`` where filling parameter ``name`` of ``shape`` would, without allocating it.

        ``by_name=False`` for a per-variable initializer, which always applies its weight rule."""
        name = str(name)
        if by_name:
            rule = next((method for suffix, method in _NAME_RULES if name.endswith(suffix)), None)
            if rule is None and type(self)._init_default is Initializer._init_default:
                self._init_default(name, None)  # raises: no rule for this name
            if rule != "_init_weight":
                return
        self._check_weight(name, tuple(shape))

    def _check_weight(self, name, shape) -> None:
        """What ``_init_weight`` would reject for ``shape`` (nothing, unless a subclass says so)."""

    # -- rules ----------------------------------------------------------------------------------
    def _init_weight(self, name, arr) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not define a weight rule")

    def _init_bias(self, name, arr) -> None:
        _fill(arr, 0.0)

    def _init_gamma(self, name, arr) -> None:
        _fill(arr, 1.0)

    def _init_beta(self, name, arr) -> None:
        _fill(arr, 0.0)

    def _init_zero(self, name, arr) -> None:
        _fill(arr, 0.0)

    def _init_one(self, name, arr) -> None:
        _fill(arr, 1.0)

    def _init_default(self, name, arr) -> None:
        raise ValueError(
            f"Unknown initialization pattern for parameter {str(name)!r}: default initialization "
            "covers names ending in 'weight' (the initializer), 'bias' (0), 'gamma' (1) and "
            "'beta' (0). Give the variable an initializer (sym.Variable(name, init=...)) or use a "
            "name ending in 'weight' or 'bias'."
        )


def _fill(arr, values) -> None:
    """Write ``values`` (a scalar or an array of ``arr.shape``) into ``arr`` in place.

    A row-sparse array becomes full: all rows present, in order.
    """
    stype = getattr(arr, "stype", None)
    if stype == "default":
        arr._data[...] = values
    elif stype == "row_sparse":
        if np.isscalar(values) and values == 0:
            full = np.zeros(arr.shape, dtype=arr.dtype)  # calloc'd: the kernel zeroes pages on first touch
        else:
            full = np.empty(arr.shape, dtype=arr.dtype)
            full[...] = values
        arr._data = full
        arr._indices = None  # every row; the ids are made only if something reads them
    elif stype == "csr":
        raise StorageTypeError("cannot initialize a csr array as a parameter; declare it 'default' or 'row_sparse'")
    elif isinstance(arr, np.ndarray):
        arr[...] = values
    else:
        raise TypeError(f"cannot initialize an object of type {type(arr).__name__}; expected a sparsetrain array")


def _rng():
    from .random import generator

    return generator()


def _at_least(cls: str, name: str, value, low: float, strict: bool = False) -> float:
    """``value`` as a float, finite and at least ``low`` (above it when ``strict``); else a ``ValueError``."""
    v = float(value)
    if not math.isfinite(v) or v < low or (strict and v == low):
        raise ValueError(f"{cls}: {name} must be a finite number {'>' if strict else '>='} {low:g}, got {v!r}")
    return v


@register
class Normal(Initializer):
    """Weights drawn from N(0, ``sigma``²)."""

    def __init__(self, sigma=0.01):
        super().__init__(sigma=sigma)
        self.sigma = _at_least("Normal", "sigma", sigma, 0.0)

    def _init_weight(self, name, arr):
        _fill(arr, _rng().normal(0.0, self.sigma, size=arr.shape))


@register
class Uniform(Initializer):
    """Weights drawn uniformly from [-``scale``, ``scale``)."""

    def __init__(self, scale=0.07):
        super().__init__(scale=scale)
        self.scale = _at_least("Uniform", "scale", scale, 0.0)

    def _init_weight(self, name, arr):
        _fill(arr, _rng().uniform(-self.scale, self.scale, size=arr.shape))


@register
class Xavier(Initializer):
    """Xavier/Glorot initialization, MXNet's formula.

    For a weight of shape ``(out, in, *k)``: ``fan_in = in·prod(k)``, ``fan_out = out·prod(k)``;
    ``factor`` is their mean (``factor_type='avg'``), ``fan_in`` ('in') or ``fan_out`` ('out');
    ``scale = sqrt(magnitude / factor)``; values are uniform in [-scale, scale]
    (``rnd_type='uniform'``) or N(0, scale²) (``'gaussian'``). Needs at least 2 dimensions.
    """

    def __init__(self, rnd_type="uniform", factor_type="avg", magnitude=3):
        if rnd_type not in ("uniform", "gaussian"):
            raise ValueError(f"Xavier: rnd_type must be 'uniform' or 'gaussian', got {rnd_type!r}")
        if factor_type not in ("avg", "in", "out"):
            raise ValueError(f"Xavier: factor_type must be 'avg', 'in' or 'out', got {factor_type!r}")
        super().__init__(rnd_type=rnd_type, factor_type=factor_type, magnitude=magnitude)
        self.rnd_type = rnd_type
        self.factor_type = factor_type
        self.magnitude = _at_least("Xavier", "magnitude", magnitude, 0.0, strict=True)

    def _check_weight(self, name, shape):
        if len(shape) < 2:
            raise ValueError(
                f"Xavier initializer cannot be applied to vector {str(name)!r} of shape {shape}; "
                "it needs at least 2 dimensions"
            )

    def _init_weight(self, name, arr):
        shape = arr.shape
        self._check_weight(name, shape)
        hw_scale = float(np.prod(shape[2:])) if len(shape) > 2 else 1.0
        fan_in, fan_out = shape[1] * hw_scale, shape[0] * hw_scale
        factor = {"avg": (fan_in + fan_out) / 2.0, "in": fan_in, "out": fan_out}[self.factor_type]
        scale = np.sqrt(self.magnitude / factor)
        if self.rnd_type == "uniform":
            _fill(arr, _rng().uniform(-scale, scale, size=shape))
        else:
            _fill(arr, _rng().normal(0.0, scale, size=shape))


@register
@_alias("zeros")
class Zero(Initializer):
    """Weights set to 0."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, name, arr):
        _fill(arr, 0.0)


@register
@_alias("ones")
class One(Initializer):
    """Weights set to 1."""

    def __init__(self):
        super().__init__()

    def _init_weight(self, name, arr):
        _fill(arr, 1.0)


@register
class Constant(Initializer):
    """Weights set to ``value``: a scalar, or an array (list) broadcastable to the weight's shape."""

    def __init__(self, value):
        if hasattr(value, "asnumpy"):
            value = value.asnumpy()
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        try:
            finite = bool(np.all(np.isfinite(np.asarray(value, dtype=np.float64))))
        except (TypeError, ValueError):
            finite = True  # (not numbers: _values says what is wrong when the weight is filled)
        if not finite:
            raise ValueError(f"Constant: value must be finite, got {value!r}")
        super().__init__(value=value)
        self.value = value

    def _check_weight(self, name, shape):
        self._values(name, shape)

    def _values(self, name, shape):
        try:
            value = np.asarray(self.value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"Constant initializer: value {self.value!r} is not a number or a list of "
                             "numbers") from None
        try:
            return np.broadcast_to(value, shape)
        except ValueError:
            raise ValueError(
                f"Constant initializer: value of shape {value.shape} does not broadcast to "
                f"parameter {str(name)!r} of shape {tuple(shape)}"
            ) from None

    def _init_weight(self, name, arr):
        _fill(arr, self._values(name, arr.shape))


@register
class Mixed(Initializer):
    """Choose the initializer by parameter name: the first regex in ``patterns`` that matches
    (``re.match``, i.e. anchored at the start) selects the initializer at the same position.

    A name matching no pattern raises ``ValueError``; end with ``'.*'`` for a default.
    """

    def __init__(self, patterns, initializers):
        patterns, initializers = list(patterns), [create(i) for i in initializers]
        if len(patterns) != len(initializers):
            raise ValueError(
                f"Mixed: {len(patterns)} patterns but {len(initializers)} initializers; they must pair up"
            )
        super().__init__()
        self._patterns = patterns
        self.map = list(zip([re.compile(p) for p in patterns], initializers))

    def dumps(self) -> str:
        return json.dumps(["mixed", {
            "patterns": self._patterns,
            "initializers": [json.loads(init.dumps()) for _, init in self.map],
        }])

    def __repr__(self) -> str:
        return f"Mixed({self._patterns!r}, {[init for _, init in self.map]!r})"

    def __call__(self, desc, arr) -> None:
        self._pick(desc)(desc, arr)

    def check(self, name, shape, by_name: bool = True) -> None:
        self._pick(name).check(name, shape, by_name)

    def _pick(self, desc) -> Initializer:
        name = str(desc)
        for prog, init in self.map:
            if prog.match(name):
                return init
        raise ValueError(
            f"Mixed initializer: parameter {name!r} matches none of the patterns {self._patterns}; "
            "add a '.*' pattern at the end with a default initializer"
        )


def load_spec(obj) -> Initializer:
    """Rebuild an initializer from ``json.loads(init.dumps())`` (``["name", {kwargs}]``) or the
    JSON string itself.
    """
    if isinstance(obj, str):
        obj = json.loads(obj)
    if not (isinstance(obj, (list, tuple)) and len(obj) == 2 and isinstance(obj[0], str)
            and isinstance(obj[1], dict)):
        raise ValueError(f'an initializer spec is ["name", {{kwargs}}], got {obj!r}')
    name, kwargs = obj
    return _build(name, kwargs)


def registered(name: str) -> type:
    """The initializer class :func:`create` makes for ``name`` (case-insensitive); ``ValueError`` naming the
    known ones."""
    klass = _REGISTRY.get(name.lower())
    if klass is None:
        raise ValueError(f"unknown initializer {name!r}{did_you_mean(name.lower(), _REGISTRY)}; known: "
                         f"{', '.join(sorted(_REGISTRY))}")
    return klass


def _build(name: str, kwargs: dict) -> Initializer:
    klass = registered(name)
    try:
        return klass(**kwargs)
    except TypeError as e:
        raise ValueError(f"bad arguments {kwargs!r} for initializer {name!r}: {e}") from None


#: What ``Module.init_params()`` and the config's ``model.init`` use when no initializer is given
#: (MXNet Module's default).
DEFAULT = {"uniform": {"scale": 0.01}}


def create(spec, **kwargs) -> Initializer:
    """An initializer from a name (``'normal'``, ``'Xavier'``), a one-key mapping
    (``{'normal': {'sigma': 0.01}}``, as in the YAML config), a spec list
    (``['normal', {'sigma': 0.01}]``), its JSON string, or an initializer (returned as is).

    ``kwargs`` are passed to the constructor when ``spec`` is a name.
    """
    if isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("["):
            return load_spec(text)
        return _build(text, kwargs)
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise ValueError(f"an initializer mapping has exactly one key (its name), got {spec!r}")
        ((name, params),) = spec.items()
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ValueError(f"initializer {name!r}: parameters must be a mapping, got {params!r}")
        return _build(str(name), {**params, **kwargs})
    if isinstance(spec, (list, tuple)):
        return load_spec(spec)
    raise TypeError(f"cannot make an initializer from {type(spec).__name__} {spec!r}")
