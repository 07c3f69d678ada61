"""Error text: pydantic validation errors as one line that starts with the config key path."""
from __future__ import annotations

import re
import typing

from pydantic import BaseModel, ValidationError

from ..base import did_you_mean

# pydantic inserts the member type of a union into an error's location; these are not config keys
_UNION_TAGS = {"str", "int", "float", "bool", "list[str]", "dict[str,any]", "none", "literal['auto']",
               "function-before[_as_list(), nullable[list[str]]]", "nullable[list[str]]"}


def join_path(parts) -> str:
    """``['model', 'ops', 1, 'inputs']`` -> ``model.ops[1].inputs``."""
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out


def message(e: BaseException) -> str:
    """The first line of an exception's text (a ``KeyError``'s without the quotes)."""
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


def format_validation_error(e: ValidationError, root: type[BaseModel]) -> str:
    """One line for a pydantic error of ``root.model_validate``: the key path, what is wrong, the value."""
    errors = e.errors(include_url=False)
    # prefer the most specific error (the longest location) of the first field that failed
    first = errors[0]
    loc = [p for p in first["loc"] if not (isinstance(p, str) and (p.lower().replace(" ", "") in _UNION_TAGS
                                                                      or p.startswith("function-")))]
    path = join_path(loc) or "config"
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
        if "input" in first and kind not in ("model_type",) and not isinstance(first["input"], (dict, list)):
            msg += f" (got {_short(first['input'])})"
    more = len({tuple(x["loc"]) for x in errors}) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return f"{path}: {msg}{suffix}"


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def allowed_keys(root: type[BaseModel], loc) -> list[str]:
    """Field names of the schema model at ``loc`` under ``root`` (for "did you mean" on unknown keys)."""
    model: typing.Any = root
    mapping = False  # the previous key was a ``dict[str, Model]`` field: this part is a user's name
    for part in loc:
        if isinstance(part, int) or mapping:
            mapping = False
            continue
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return []
        ann = fields[part].annotation
        mapping = typing.get_origin(ann) is dict
        model = _model_in(ann)
    return list(getattr(model, "model_fields", {}) or [])


def _model_in(ann):
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _model_in(arg)
        if found is not None:
            return found
    return None
