"""MXNet's calling convention for generated operator functions, shared by ``nd.*`` and ``sym.*``."""
from __future__ import annotations

from ..base import ArgumentError, did_you_mean


def parse_call(op, args, kwargs) -> tuple[list, dict]:
    """``(inputs, params)`` of a call ``op(*args, **kwargs)``.

    Inputs come first by position, then the op's parameters in declaration order; either may also
    be given by keyword. For a fixed-arity op, ``inputs`` has one slot per input the params use
    (``op.inputs_for``), ``None`` where the caller gave nothing (the symbol layer creates a
    variable there, ``nd`` refuses).
    """
    n = len(args) if op.variadic else len(op.input_names)
    inputs, extra = list(args[:n]), args[n:]
    names = list(op.params)
    if len(extra) > len(names):
        raise TypeError(f"{op.name} takes inputs {', '.join(op.input_names)} and parameters "
                        f"{', '.join(names) or '(none)'}; got {len(args)} positional arguments")
    params = dict(zip(names, extra))
    if not op.variadic:
        inputs += [None] * (len(op.input_names) - len(inputs))
    for k, v in kwargs.items():
        if k in op.input_names and not op.variadic:
            pos = op.input_names.index(k)
            if inputs[pos] is not None:
                raise ArgumentError(f"{op.name}: input {k!r} given twice")
            inputs[pos] = v
        elif k in op.params:
            if k in params:
                raise ArgumentError(f"{op.name}: argument {k!r} given twice")
            params[k] = v
        else:
            allowed = list(op.input_names) + list(op.params)
            raise ArgumentError(f"{op.name}: unknown argument {k!r}{did_you_mean(k, allowed)}; "
                                f"allowed: {', '.join(allowed)}")
    if not op.variadic:
        kept = op.inputs_for(params)
        for name, x in zip(op.input_names, inputs):
            if name not in kept and x is not None:
                raise TypeError(f"{op.name}: input {name!r} is not used with these parameters")
        inputs = [x for name, x in zip(op.input_names, inputs) if name in kept]
    return inputs, params
