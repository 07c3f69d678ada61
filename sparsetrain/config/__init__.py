"""The YAML run configuration: typed schema, ``--set`` overrides, graph validation, symbol building.

``load_config(path, overrides)`` reads a file with YAML's safe loader, applies ``a.b.c=value``
overrides (values parsed as YAML), validates everything that can be checked without data — keys,
types, operator names and parameters, inputs, cycles, shapes (by running shape and storage-type
inference), each parameter's initializer and size against the machine's memory — and returns a
:class:`Config`. Every problem is a :class:`sparsetrain.ConfigError` whose message starts with the
key path, e.g. ``model.ops[1].inputs[0]: unknown symbol 'wieght' (did you mean 'weight'?)``.
Anchors, aliases and ``<<`` merge keys work; a number in exponent form is a number as in YAML 1.2
(``1e-8``, which YAML 1.1 reads as a string), and a number key (or a number in an initializer's or
scheduler's parameters) given ``true``/``false`` (or YAML 1.1's ``yes``/``no``) is an error, not 1 or 0;
a key given twice in one mapping, and a document that
expands past a million nodes through aliases, are errors naming the file and line. A key set to
``null`` (or left empty: ``target:`` with its entries commented out) is, for a section, list or
mapping, its default as if left out (``train.target: null`` is no target, ``data.csv: null`` the
default splitting, a variable ``label:`` declared with no keys); where ``null`` has a meaning of
its own the table says so (``keep_checkpoints``); a value that takes no ``null`` is an error
naming the key and its default (``data.batch_size: ... (got null; leave the key out for its
default, 32)``).

Paths written inside a config file (``data.train``, ``data.eval``, ``data.generate.path``,
``output``) are resolved against the directory that holds the config file, so a config works
from any working directory. Paths given on the command line (``--output``, and path values of
``--set data.train=...`` and friends) are relative to the working directory, as usual for
command-line arguments.

The package, one job per module: ``schema`` (the pydantic models, the single source of defaults),
``load`` (YAML, ``--set`` overrides), ``errors`` (one-line error text), ``validate`` (checks beyond
the schema), ``graph`` (op order, symbol, shape/stype plan), ``factories`` (optimizer, scheduler),
``reference`` (the README's reference: ``python -m sparsetrain.config --markdown``), ``presets``
(the graph of each ``model.preset``: the one list of their names), ``expand`` (``model.preset``
expanded into variables/ops/loss before validation), ``starter`` (``sparsetrain init``: a commented
config written from a look at the data).
"""
from .factories import LR_SCHEDULERS, make_lr_scheduler, make_optimizer, optimizer_params
from .graph import fallback_hint
from .load import apply_override, config_from_dict, load_config
from .reference import markdown_reference
from .schema import (
    Config,
    CSVConfig,
    DataConfig,
    GenerateConfig,
    LossConfig,
    ModelConfig,
    OpConfig,
    OptimizerConfig,
    TrainConfig,
    VariableConfig,
)

__all__ = [
    "Config", "CSVConfig", "DataConfig", "GenerateConfig", "LossConfig", "ModelConfig", "OpConfig", "OptimizerConfig",
    "TrainConfig", "VariableConfig", "LR_SCHEDULERS", "apply_override",
    "config_from_dict", "fallback_hint", "load_config", "make_lr_scheduler", "make_optimizer", "markdown_reference",
    "optimizer_params",
]
