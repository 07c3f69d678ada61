"""The README's configuration reference, generated from the schema (``python -m tools.update_readme``)."""
from __future__ import annotations

import sys
import types
import typing
from typing import Annotated, Literal

import yaml

from .schema import (
    CSVConfig,
    DataConfig,
    EarlyStoppingConfig,
    GenerateConfig,
    LossConfig,
    ModelConfig,
    OpConfig,
    OptimizerConfig,
    TrainConfig,
    VariableConfig,
)


def _default_text(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        if hasattr(value, "model_dump"):  # a section: its keys have their own table
            return "see below"
        return "`" + yaml.safe_dump(value, default_flow_style=True).strip() + "`"
    value = field.default
    return "`null`" if value is None else "`" + yaml.safe_dump(value, default_flow_style=True).strip().removesuffix(
        "\n...") + "`"


_DOC_TYPES = {
    ("DataConfig", "train"): "path, list of paths or glob", ("DataConfig", "eval"): "path, list of paths or glob",
    ("DataConfig", "zero_based"): "auto \\| true \\| false", ("DataConfig", "generate"): "mapping (`data.generate`)",
    ("DataConfig", "csv"): "mapping (`data.csv`)", ("DataConfig", "log1p"): "bool or list of columns",
    ("DataConfig", "crosses"): "list of pairs",
    ("ModelConfig", "variables"): "mapping name → variable", ("ModelConfig", "ops"): "list of op mappings",
    ("ModelConfig", "loss"): "mapping (`model.loss`)",
    ("TrainConfig", "early_stopping"): "mapping (`train.early_stopping`) \\| null",
}


def markdown_reference() -> str:
    """The config reference (one table per section), generated from the schema."""
    sections = [("data", DataConfig), ("data.csv", CSVConfig), ("data.generate", GenerateConfig),
                ("model", ModelConfig),
                ("model.variables.<name>", VariableConfig), ("model.ops[i]", OpConfig), ("model.loss", LossConfig),
                ("optimizer", OptimizerConfig), ("train", TrainConfig),
                ("train.early_stopping", EarlyStoppingConfig)]
    # the package docstring's second and third paragraphs say how paths and overrides resolve
    paragraphs = (sys.modules[__package__].__doc__ or "").split("\n\n")
    lines = ["Generated from `sparsetrain/config/schema.py` by `python -m tools.update_readme`; do not edit here.",
             "", _rst_to_md(paragraphs[1]), "", _rst_to_md(paragraphs[2]), "",
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
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is Annotated:
        return _simple_type(args[0])
    if origin is Literal:
        return " \\| ".join(str(a).lower() if isinstance(a, bool) else str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [_simple_type(a) for a in args if a is not type(None)]
        return " \\| ".join(parts) + (" \\| null" if type(None) in args else "")
    if origin is list:
        return f"list of {_simple_type(args[0])}"
    if origin is dict:
        return "mapping"
    if isinstance(ann, type):
        return {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}.get(ann.__name__, ann.__name__)
    return "any"

