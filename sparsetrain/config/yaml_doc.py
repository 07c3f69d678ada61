"""YAML text to plain data, safely: the safe loader, no duplicate keys, a bounded document.

Anchors and aliases let a few lines stand for an exponentially large document (a "billion
laughs"); everything after loading walks the document as a tree, so :func:`parse_yaml` counts
the nodes the document expands to — in time linear in its text — and refuses more than
``MAX_NODES``, naming the key where the expansion happens. A key given twice in one mapping
(which YAML loaders silently resolve to the last one) is refused with both line numbers.
"""
from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, ScalarNode, SequenceNode

from ..base import ConfigError
from ..validation import join_path

#: Most nodes (scalars, lists, mappings) a config may expand to; the shipped ones have a few hundred.
MAX_NODES = 1_000_000
#: Deepest nesting of ``[...]``/``{...}``: PyYAML's scanner slows down quadratically with it, and its
#: composer recurses once per level.
MAX_FLOW_DEPTH = 100

_MERGE_TAG = "tag:yaml.org,2002:merge"
_BRACKETS = re.compile(r"[\[\]{}]")


class _Loader(yaml.SafeLoader):
    """The safe loader, reading a number in exponent form without a dot or an exponent sign (``1e-8``,
    ``1.0e5``) as a float, as YAML 1.2 does; PyYAML's YAML 1.1 rules read it as a string."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float",
                              re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def parse_yaml(text: str, where: str, base: str = ""):
    """The data of the YAML document ``text``, from the file ``where`` or, for ``where="--set"``, the value
    of an override of the key ``base``; error messages start with ``file:line: key.path`` or ``--set key.path``.

    Raises ``yaml.YAMLError`` for invalid YAML and ``ConfigError`` for a duplicate key, a recursive
    alias, a document nested too deeply or one expanding to more than ``MAX_NODES`` nodes."""
    _check_flow_depth(text, where, base)
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_nodes(root, where, base)
        return loader.construct_document(root)
    except RecursionError:
        raise ConfigError(f"{where} {base}: the YAML is nested too deeply" if where == "--set" else
                          f"{where}: the YAML is nested too deeply") from None
    finally:
        loader.dispose()


def yaml_error_text(e: yaml.YAMLError, path: str) -> str:
    """``path:line: invalid YAML: problem`` for a parse error of the file ``path``."""
    mark = getattr(e, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark is not None else path
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    return f"{where}: invalid YAML: {problem}"


def _check_flow_depth(text: str, where: str, base: str) -> None:
    depth = 0
    for m in _BRACKETS.finditer(text):  # brackets inside quoted strings count too: harmless at this bound
        depth += 1 if m[0] in "[{" else -1
        if depth > MAX_FLOW_DEPTH:
            line = text.count("\n", 0, m.start()) + 1
            at = f"--set {base}" if where == "--set" else f"{where}:{line}"
            raise ConfigError(f"{at}: the YAML nests lists/mappings more than {MAX_FLOW_DEPTH} levels deep")


def _children(node):
    """``(label, child)`` pairs: a mapping's keys and values (labelled by the key), a list's items."""
    if isinstance(node, MappingNode):
        for key, value in node.value:
            label = key.value if isinstance(key, ScalarNode) else "?"
            yield label, key
            yield label, value
    elif isinstance(node, SequenceNode):
        yield from enumerate(node.value)


def _check_nodes(root, where: str, base: str) -> None:
    size: dict[int, int] = {}  # id(node) -> nodes it expands to, itself included
    path_of: dict[int, tuple] = {id(root): ()}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:  # depth first, iterative; each distinct node is expanded once
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(child)] for _, child in _children(node))
            continue
        if key in size:
            continue
        if key in on_path:
            raise ConfigError(f"{_at(where, base, node, path_of[key])}: an alias refers to a node that contains it "
                              "(a recursive YAML document)")
        on_path.add(key)
        stack.append((node, True))
        path = path_of[key]
        if isinstance(node, MappingNode):
            _check_duplicate_keys(node, path, where, base)
        for label, child in _children(node):
            path_of.setdefault(id(child), path + (label,))
            stack.append((child, False))
    total = size[id(root)]
    if total > MAX_NODES:
        node = root
        while True:  # name the innermost key that alone expands past the bound
            big = next((c for _, c in _children(node) if size[id(c)] > MAX_NODES), None)
            if big is None:
                break
            node = big
        raise ConfigError(f"{_at(where, base, node, path_of[id(node)])}: expands to {size[id(node)]:,} YAML nodes "
                          f"through anchors and aliases (at most {MAX_NODES:,})")


def _check_duplicate_keys(node: MappingNode, path: tuple, where: str, base: str) -> None:
    seen: dict[tuple, int] = {}
    for key, _ in node.value:
        if not isinstance(key, ScalarNode) or key.tag == _MERGE_TAG:
            continue
        line = key.start_mark.line + 1
        if (key.tag, key.value) in seen:
            raise ConfigError(f"{_at(where, base, key, path + (key.value,))}: duplicate key (first given at "
                              f"line {seen[key.tag, key.value]}; YAML would silently keep only the last)")
        seen[key.tag, key.value] = line


def _at(where: str, base: str, node, path: tuple) -> str:
    """``file:line: key.path``, or ``--set key.path`` for an override's value (one line, no line number)."""
    if where == "--set":
        return f"--set {join_path(path, base)}"
    return f"{where}:{node.start_mark.line + 1}: {join_path(path, base) or 'the document'}"
