"""Model presets: the graph each ``model.preset`` name stands for, and the one list of their names.

A preset writes the graph a user would otherwise write by hand (the configs in ``configs/``):
the data input is a CSR variable, weights that a ``sparse.dot`` reads are ``row_sparse`` (lazy
updates of the rows a batch touches), every weight has ``num_features`` rows. :mod:`.expand` sizes
them and expands ``model.preset`` into ``variables``, ``ops`` and ``loss`` before validation.

:data:`BUILDERS` is the one source of the preset names: the schema's ``model.preset`` choices and its
description, ``sparsetrain init``'s ``--preset`` check and the config it writes read it here.

To add a preset: its builder returning ``(variables, ops, loss)``, its entry in :data:`BUILDERS` (the
options it reads and what it is), its options in ``schema.PresetOptions``, and a test in
``tests/test_presets.py`` that compares it with a hand-written graph (docs/ARCHITECTURE.md lists what
else names the presets).
"""
from __future__ import annotations

from typing import Callable, NamedTuple

# Presets whose parameters start at zero unless model.init says otherwise (fm's factors have their own
# init), as the shipped configs and VW/scikit-learn start: a row no training row touches stays zero, so
# `export` lists the rows the data trained, not 2**18 hashed rows of initial noise. wide_deep's layers
# need random starts (model.init's default).
ZERO_START = ("linear", "logistic", "softmax", "fm")


def _linear(d: int, k: int, loss_op: str):
    variables = {"data": {"stype": "csr"}, "label": {}, "weight": {"stype": "row_sparse", "shape": [d, k]},
                 "bias": {"shape": [k]}}
    ops = [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]},
           {"name": "pred", "op": "broadcast_add", "inputs": ["dot", "bias"]}]
    return variables, ops, {"op": loss_op, "data": "pred", "label": "label"}


def _fm(d: int, opts):
    """b + X·w + Σ_f ((X·V)_f² − (X²·V²)_f): Rendle's factorization machine with the ½ folded into V
    (V = V_rendle / √2), as configs/fm.yaml."""
    variables = {"data": {"stype": "csr"}, "label": {},
                 "linear_weight": {"stype": "row_sparse", "shape": [d, 1]},
                 "factors": {"stype": "row_sparse", "shape": [d, opts.k], "init": {"normal": {"sigma": 0.01}}},
                 "bias": {"shape": [1]}}
    ops = [{"name": "linear", "op": "sparse.dot", "inputs": ["data", "linear_weight"]},
           {"name": "xv", "op": "sparse.dot", "inputs": ["data", "factors"]},
           {"name": "xv_sq", "op": "square", "inputs": ["xv"]},
           {"name": "x_sq", "op": "square", "inputs": ["data"]},
           {"name": "v_sq", "op": "square", "inputs": ["factors"]},
           {"name": "x2v2", "op": "sparse.dot", "inputs": ["x_sq", "v_sq"]},
           {"name": "pair", "op": "elemwise_sub", "inputs": ["xv_sq", "x2v2"]},
           {"name": "pairwise", "op": "sum", "inputs": ["pair"], "params": {"axis": 1, "keepdims": True}},
           {"name": "sum", "op": "elemwise_add", "inputs": ["linear", "pairwise"]},
           {"name": "pred", "op": "broadcast_add", "inputs": ["sum", "bias"]}]
    return variables, ops, {"op": "LogisticRegressionOutput", "data": "pred", "label": "label"}


def _wide_deep(d: int, opts):
    """X·w + relu(...relu(X·E)·H_1...)·p + b, as configs/wide.yaml for ``hidden: [8]``."""
    widths = list(opts.hidden)
    variables = {"data": {"stype": "csr"}, "label": {},
                 "wide_weight": {"stype": "row_sparse", "shape": [d, 1]},
                 "embed_weight": {"stype": "row_sparse", "shape": [d, widths[0]]}}
    ops = [{"name": "wide", "op": "sparse.dot", "inputs": ["data", "wide_weight"]},
           {"name": "embed", "op": "sparse.dot", "inputs": ["data", "embed_weight"]},
           {"name": "hidden", "op": "relu", "inputs": ["embed"]}]
    last = "hidden"
    for i, (a, b) in enumerate(zip(widths, widths[1:]), start=1):
        variables[f"layer{i}_weight"] = {"shape": [a, b]}
        ops += [{"name": f"layer{i}", "op": "dot", "inputs": [last, f"layer{i}_weight"]},
                {"name": f"hidden{i}", "op": "relu", "inputs": [f"layer{i}"]}]
        last = f"hidden{i}"
    variables["proj_weight"] = {"shape": [widths[-1], 1]}
    variables["bias"] = {"shape": [1]}
    ops += [{"name": "deep", "op": "dot", "inputs": [last, "proj_weight"]},
            {"name": "sum", "op": "elemwise_add", "inputs": ["wide", "deep"]},
            {"name": "pred", "op": "broadcast_add", "inputs": ["sum", "bias"]}]
    return variables, ops, {"op": "LogisticRegressionOutput", "data": "pred", "label": "label"}


class Preset(NamedTuple):
    """A preset: its builder, ``(num_features, options) -> (variables, ops, loss)`` (``options``: a
    ``schema.PresetOptions``), the options it reads (others given beside it are an error) and what it
    is (the schema's ``model.preset`` description)."""

    build: Callable
    options: tuple[str, ...]
    about: str


#: Every preset by name, in the order the schema and ``sparsetrain init`` list them.
BUILDERS = {
    "linear": Preset(lambda d, opts: _linear(d, 1, "LinearRegressionOutput"), (), "regression"),
    "logistic": Preset(lambda d, opts: _linear(d, 1, "LogisticRegressionOutput"), (), "binary"),
    "softmax": Preset(lambda d, opts: _linear(d, opts.classes, "SoftmaxOutput"), ("classes",), "`classes` classes"),
    "fm": Preset(_fm, ("k",), "a factorization machine with `k` factors, binary"),
    "wide_deep": Preset(_wide_deep, ("hidden",), "a linear part plus an embedding MLP of `hidden` widths, binary"),
}

#: The preset names (``model.preset``'s choices).
PRESETS = tuple(BUILDERS)


def listed(items, last: str = "or") -> str:
    """``items`` as a sentence lists them: ``a, b or c``."""
    items = list(items)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} {last} {items[-1]}"
