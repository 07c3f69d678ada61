"""Validation at the boundary, shared by every layer (config, gen-data options, ...).

Pydantic errors as one line that starts with the key path, and the machine's memory for the size
checks that turn an absurd size into an error naming the key instead of a ``MemoryError``.
"""
from __future__ import annotations

import inspect
import os
import re
import types
import typing

from pydantic import BaseModel, ValidationError, field_validator

from .base import did_you_mean

# pydantic inserts the member type of a union into an error's location; these are not config keys
_UNION_TAGS = {"str", "int", "float", "bool", "list[str]", "dict[str,any]", "none", "literal['auto']",
               "function-before[_as_list(), nullable[list[str]]]", "nullable[list[str]]"}


_PLAIN_KEY = re.compile(r"[\w<>-]+")


def join_path(parts, base: str = "") -> str:
    """``['model', 'ops', 1, 'inputs']`` -> ``model.ops[1].inputs``; odd keys quoted (``data[' x']``).

    ``base`` is a path already joined, which ``parts`` extend."""
    out = base
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif isinstance(p, str) and _PLAIN_KEY.fullmatch(p):
            out += ("." if out else "") + p
        else:
            out += f"[{p!r}]"
    return out


def message(e: BaseException) -> str:
    """The first line of an exception's text (a ``KeyError``'s without the quotes)."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def format_validation_error(e: ValidationError, root: type[BaseModel], prefix=()) -> str:
    """One line for a pydantic error of ``root.model_validate``: the key path, what is wrong, the value.

    ``prefix`` is the key path of ``root`` itself (e.g. ``["data", "generate"]``)."""
    errors = e.errors(include_url=False)
    # a mistyped key first: it explains the "required key is missing" that comes with it (rowz: rows)
    first = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
    loc = [p for p in first["loc"] if not (isinstance(p, str) and (p.lower().replace(" ", "") in _UNION_TAGS
                                                                      or p.startswith("function-")))]
    path = join_path([*prefix, *loc])
    kind = first["type"]
    if kind == "extra_forbidden":
        allowed = allowed_keys(root, loc[:-1])
        hint = did_you_mean(loc[-1], allowed)
        msg = f"unknown key{hint}; allowed: {', '.join(allowed)}" if allowed else f"unknown key{hint}"
    elif kind == "missing":
        msg = "required key is missing"
    else:
        msg = re.sub(r" or instance of \w+", "", first["msg"])
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if first.get("input", ...) is None:  # (a key left empty in YAML)
            msg += f" (got null{_default_text(root, loc)})"
        elif "input" in first and kind not in ("model_type",) and not isinstance(first["input"], (dict, list)):
            msg += f" (got {_short(first['input'])}{_closest_choice(first)})"
    more = len({tuple(x["loc"]) for x in errors}) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return f"{path}: {msg}{suffix}" if path else f"{msg}{suffix}"


def _default_text(root: type[BaseModel], loc) -> str:
    """``; leave the key out for its default, 32`` for the field at ``loc`` under ``root`` (``""`` for none)."""
    model = _model_at(root, loc[:-1])
    field = (getattr(model, "model_fields", None) or {}).get(loc[-1]) if loc else None
    if field is None or field.is_required() or field.default_factory is not None:
        return ""
    default = field.default
    shown = str(default).lower() if isinstance(default, bool) else "null" if default is None else default
    return f"; leave the key out for its default, {shown}"


def _model_at(root: type[BaseModel], loc):
    """The schema model at ``loc`` under ``root`` (None when ``loc`` leads elsewhere)."""
    model: typing.Any = root
    mapping = False  # the previous key was a ``dict[str, Model]`` field: this part is a user's name
    for part in loc:
        if isinstance(part, int) or mapping:
            mapping = False
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return None
        ann = fields[part].annotation
        mapping = typing.get_origin(ann) is dict
        model = _model_in(ann)
    return model


def _closest_choice(error) -> str:
    """``; did you mean 'x'`` for a value that is not one of a fixed set (``cache: strem``), or ``""``."""
    expected = (error.get("ctx") or {}).get("expected")
    if error["type"] not in ("literal_error", "enum") or not isinstance(expected, str):
        return ""
    hint = did_you_mean(error["input"], re.findall(r"'([^']*)'", expected))
    return f"; {hint.strip()[1:-1]}" if hint else ""


def _short(value, limit: int = 80) -> str:
    text = str(value).lower() if isinstance(value, bool) else repr(value)  # (as YAML writes it: true, not True)
    return text if len(text) <= limit else text[:limit] + "..."


def allowed_keys(root: type[BaseModel], loc) -> list[str]:
    """Field names of the schema model at ``loc`` under ``root`` (for "did you mean" on unknown keys)."""
    return list(getattr(_model_at(root, loc), "model_fields", {}) or [])


def _model_in(ann):
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _members(ann) -> list:
    """The types an annotation admits, None included (a union's members; ``Annotated``'s type)."""
    if typing.get_origin(ann) is typing.Annotated:
        return _members(typing.get_args(ann)[0])
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        return [k for a in typing.get_args(ann) for k in _members(a)]
    return [ann]


def _kinds(ann) -> list:
    """The types an annotation admits besides None."""
    return [k for k in _members(ann) if k is not type(None)]


def _numbers(ann) -> bool:
    """Whether the annotation ``ann`` takes numbers and nothing else (``int``, ``float | None``, constrained)."""
    kinds = _kinds(ann)
    return bool(kinds) and all(k in (int, float) for k in kinds)


def _holds_numbers(ann) -> bool:
    """Whether ``ann`` is a list of numbers or a mapping to numbers (``shape``, ``train.target``), or None."""
    return any(typing.get_origin(k) in (list, dict) and _numbers(typing.get_args(k)[-1]) for k in _kinds(ann))


def refuse_bools(value, path: str) -> None:
    """A ``ConfigError`` naming the key path (below ``path``, a joined one) of the first true/false in ``value``
    (a mapping or list of numbers and names, such as an initializer's or a scheduler's parameters, none of
    which is a switch): Python takes them as 1 and 0."""
    from .base import ConfigError

    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, bool):
            raise ConfigError(f"{join_path([key], path)}: must be a number, not true/false (got {str(item).lower()})")
        refuse_bools(item, join_path([key], path))


def keyword_names(cls) -> set[str]:
    """The keyword parameters ``cls(...)`` takes: those its ``__init__`` names and its bases' (a subclass
    passes ``**kwargs`` on to them)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and klass is not object:
            names |= {p.name for p in list(inspect.signature(init).parameters.values())[1:]
                      if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    return names


def refuse_unknown_keywords(cls, params, path: str, what: str, allowed: bool = True) -> None:
    """A ``ConfigError`` naming the key path (below ``path``) of the first key of the mapping ``params`` that
    ``cls`` does not take, ``not a parameter of WHAT``, with the closest one and (``allowed``) the list; the
    constructor's own ``unexpected keyword argument`` said neither the key path nor what was meant."""
    from .base import ConfigError

    if not isinstance(params, dict):
        return
    accepted = keyword_names(cls)
    for key in params:
        if key not in accepted:
            listed = f"; allowed: {', '.join(sorted(accepted))}" if allowed else ""
            raise ConfigError(f"{join_path([key], path)}: not a parameter of {what}{did_you_mean(key, accepted)}"
                              f"{listed}")


class NumbersNotBools(BaseModel):
    """A base of the schemas: a number field (or a list of numbers, a mapping to them) refuses ``true``/``false``,
    which pydantic takes as 1 and 0 (``epochs: yes`` trained one epoch, ``learning_rate: true`` at 1.0)."""

    @field_validator("*", mode="before")
    @classmethod
    def _not_a_bool(cls, v, info):
        ann = cls.model_fields[info.field_name].annotation
        if isinstance(v, bool) and _numbers(ann):
            raise ValueError("must be a number, not true/false")
        if isinstance(v, (list, dict)) and _holds_numbers(ann):
            bad = next((k for k, x in (v.items() if isinstance(v, dict) else enumerate(v)) if isinstance(x, bool)),
                       None)
            if bad is not None:
                raise ValueError(f"must be numbers, not true/false (got {str(v[bad]).lower()} at {join_path([bad])})")
        return v

    @field_validator("*", mode="before")
    @classmethod
    def _null_is_the_default(cls, v, info):
        """``null`` (YAML's empty value: ``target:`` with its entries commented out) for a section, list or mapping
        that takes no null is its default, as if the key were left out (``lr_scheduler: null`` and
        ``early_stopping: null`` were the default, ``target: null`` and ``csv: null`` errors); a named section of
        a mapping (``variables: {label: null}``) is its defaults. A value that takes no null stays an error
        (:func:`format_validation_error` says the default)."""
        field = cls.model_fields[info.field_name]
        if v is None and field.default_factory is not None and type(None) not in _members(field.annotation):
            return field.default_factory()
        if isinstance(v, dict) and None in v.values():
            of = [typing.get_args(k)[1] for k in _kinds(field.annotation) if typing.get_origin(k) is dict]
            if of and isinstance(of[0], type) and issubclass(of[0], BaseModel):
                return {k: {} if x is None else x for k, x in v.items()}
        return v


def physical_memory() -> int | None:
    """Bytes of RAM on this machine, or ``None`` where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def human_bytes(n: float) -> str:
    """``7.3 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def check_fits_memory(nbytes: float, what: str) -> None:
    """Raise ``ValueError`` naming ``what`` when ``nbytes`` exceed this machine's RAM."""
    ram = physical_memory()
    if ram is not None and nbytes > ram:
        raise ValueError(f"{what}: {human_bytes(nbytes)} is more than this machine's memory ({human_bytes(ram)})")
