"""Command-line options generated from a pydantic schema, so that the CLI writes no default or range.

``@options_from_schema(Model)`` adds one ``--field-name`` option per field: its click type from the
annotation (a ``Literal`` becomes a choice, bounds become an ``IntRange``/``FloatRange``, a ``bool``
a ``--x/--no-x`` flag), its default, whether it is required, and its help from the field's
description. :func:`cli_text` rewrites a schema's messages for the command line (``nnz_per_row``
in backticks becomes ``--nnz-per-row``).
"""
from __future__ import annotations

import re
import typing

import annotated_types as at
import click
from pydantic import BaseModel


def option_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def cli_text(text: str, model: type[BaseModel]) -> str:
    """``text`` with backticked field names as options and other backticked words plain."""
    return re.sub(r"`([^`]*)`", lambda m: option_name(m[1]) if m[1] in model.model_fields else m[1], text)


def options_from_schema(model: type[BaseModel], flags: dict[str, str] | None = None):
    """A decorator adding one click option per field of ``model``; ``flags`` names boolean flag pairs
    (``{"zero_based": "--zero-based/--one-based"}``)."""
    flags = flags or {}

    def decorate(fn):
        for name, field in reversed(model.model_fields.items()):
            kind = _base_type(field.annotation)
            kwargs = {"help": cli_text(field.description or "", model)}
            if field.is_required():
                kwargs["required"] = True
            else:
                kwargs.update(default=field.default, show_default=field.default is not None)
            if kind is bool:
                decl = flags.get(name, f"{option_name(name)}/--no-{name.replace('_', '-')}")
            else:
                decl = option_name(name)
                kwargs["type"] = _click_type(kind, field.metadata)
            fn = click.option(decl, name, **kwargs)(fn)
        return fn

    return decorate


def _base_type(ann):
    """``int`` for ``Annotated[int, ...] | None``; the ``Literal`` itself for a literal."""
    if typing.get_origin(ann) is typing.Annotated:
        return _base_type(typing.get_args(ann)[0])
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if typing.get_origin(ann) is not typing.Literal and len(args) == 1:
        return _base_type(args[0])
    return ann


def _click_type(kind, metadata):
    if typing.get_origin(kind) is typing.Literal:
        return click.Choice([str(a) for a in typing.get_args(kind)])
    bounds = {}
    for m in metadata:
        if isinstance(m, at.Gt):
            bounds.update(min=m.gt, min_open=True)
        elif isinstance(m, at.Ge):
            bounds.update(min=m.ge)
        elif isinstance(m, at.Lt):
            bounds.update(max=m.lt, max_open=True)
        elif isinstance(m, at.Le):
            bounds.update(max=m.le)
    if kind is int:
        # an integer > n is an integer >= n + 1 (click's IntRange says so more plainly)
        if bounds.pop("min_open", False):
            bounds["min"] += 1
        if bounds.pop("max_open", False):
            bounds["max"] -= 1
        return click.IntRange(**bounds) if bounds else click.INT
    if kind is float:
        return click.FloatRange(**bounds) if bounds else click.FLOAT
    return click.STRING
