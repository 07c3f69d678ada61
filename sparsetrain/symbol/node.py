"""The nodes of a symbol's graph and their order: what the graph passes, the executor and the compiled
engine walk (:mod:`.symbol`'s ``Symbol`` is a list of output entries ``(Node, index)`` over them)."""
from __future__ import annotations

import itertools

_uid = itertools.count()


class Node:
    """One graph node: a variable (``op is None``) or an operator applied to input entries."""

    __slots__ = ("op", "name", "inputs", "params", "attrs", "uid")

    def __init__(self, op, name, inputs=(), params=None, attrs=None):
        self.op = op
        self.name = name
        self.inputs = tuple(inputs)  # (Node, output index) entries
        self.params = params or {}
        self.attrs = attrs or {}
        self.uid = next(_uid)

    @property
    def is_variable(self) -> bool:
        return self.op is None

    @property
    def num_outputs(self) -> int:
        return 1 if self.op is None else self.op.num_outputs

    def output_name(self, i: int) -> str:
        if self.op is None:
            return self.name
        return f"{self.name}_output" if self.op.num_outputs == 1 else f"{self.name}_output{i}"


def topo_order(entries) -> list[Node]:
    """Nodes reachable from ``entries`` in depth-first post-order (inputs before users)."""
    order, seen = [], set()
    for root, _ in entries:
        if root.uid in seen:
            continue
        stack = [(root, iter(root.inputs))]
        seen.add(root.uid)
        while stack:
            node, it = stack[-1]
            for child, _ in it:
                if child.uid not in seen:
                    seen.add(child.uid)
                    stack.append((child, iter(child.inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order
