"""docs/ARCHITECTURE.md names files by path: each one must exist, so the map stays true."""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"


def _named_paths(text: str) -> set[str]:
    """Back-quoted tokens that look like a file or folder path (``a/b.py``, ``io/``, ``x.py``)."""
    tokens = re.findall(r"`([^`\s]+)`", text)
    return {t for t in tokens if re.fullmatch(r"[\w./-]+", t) and t.endswith((".py", "/", ".md"))}


def _exists(path: str) -> bool:
    """A path from the repository root or from ``sparsetrain/``; a bare file name (as the layer
    table lists a folder's files) anywhere in the package."""
    if any((base / path).exists() for base in (ROOT, ROOT / "sparsetrain")):
        return True
    return "/" not in path.rstrip("/") and any((ROOT / "sparsetrain").rglob(path.rstrip("/")))


def test_every_path_the_architecture_doc_names_exists():
    paths = _named_paths(DOC.read_text())
    assert len(paths) > 30, "the doc should name the files of every layer"
    missing = sorted(p for p in paths if not _exists(p))
    assert not missing, f"docs/ARCHITECTURE.md names files that do not exist: {missing}"


def test_the_check_would_notice_a_missing_file():
    assert not _exists("engines/compiled/no_such_module.py")
    assert "engines/compiled/no_such_module.py" in _named_paths("see `engines/compiled/no_such_module.py`")


# The layer table: each row's second column places files and folders; a module may import from its own
# row and the rows above it. The imports that go the other way on purpose (the doc names each one, made
# inside the function that needs it); an entry whose import is gone fails the test, so the list shrinks.
UPWARD = {
    ("sparsetrain.ndarray.ndarray", "sparsetrain.ops.imperative"),  # NDArray methods run registered ops
    ("sparsetrain.ndarray.arith", "sparsetrain.ops.imperative"),  # x + y, x == 1
    ("sparsetrain.kvstore", "sparsetrain.dist.kvstore"),  # kvstore.create("dist_sync"): Ray only when asked
    ("sparsetrain.trainer.loop", "sparsetrain.dist"),  # fit --workers
}
PACKAGE = ROOT / "sparsetrain"


def _layer_rows(text: str) -> list[list[str]]:
    """The paths of each row of the table under ``## Layers``, in order (``sparsetrain/io/``, ...)."""
    section = text.split("## Layers", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|") for line in section.splitlines() if line.startswith("| ")][1:]  # (the header)
    return [re.findall(r"`(sparsetrain/[\w./]+)`", cells[2]) for cells in rows]


def _module(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: pathlib.Path) -> set[str]:
    """The package modules ``path`` imports, at its top or inside a function (``from x import y``: the
    module ``x.y`` when there is one, else ``x``)."""
    import ast

    here = _module(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module or ""
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for name in names:
            if name.split(".")[0] == "sparsetrain":
                while name != "sparsetrain" and not (ROOT / name.replace(".", "/")).with_suffix(".py").is_file() \
                        and not (ROOT / name.replace(".", "/") / "__init__.py").is_file():
                    name = name.rpartition(".")[0]
                found.add(name)
    return found


def layer_violations(rows: list[list[str]], files) -> tuple[list[str], list[tuple[str, str]]]:
    """``(unplaced modules, (importer, imported) pairs that import from a lower row)``; the package's
    ``__init__``/``__main__`` are the front end (the last row)."""
    def row_of(module: str):
        if module in ("sparsetrain", "sparsetrain.__main__"):
            return len(rows) - 1
        path = module.replace(".", "/")
        best = None
        for i, placed in enumerate(rows):
            for p in placed:
                p = p.removesuffix(".py").rstrip("/")
                if (path == p or path.startswith(p + "/")) and (best is None or len(p) > best[1]):
                    best = (i, len(p))
        return best and best[0]

    unplaced, upward = [], []
    for f in files:
        src = _module(f)
        if row_of(src) is None:
            unplaced.append(src)
            continue
        for dst in sorted(_imports(f)):
            if dst != "sparsetrain" and row_of(dst) is not None and row_of(dst) > row_of(src):
                upward.append((src, dst))
    return sorted(unplaced), sorted(set(upward))


def test_every_import_follows_the_layer_table():
    rows = _layer_rows(DOC.read_text())
    assert len(rows) >= 10 and all(rows), "every row of the layer table places some files"
    unplaced, upward = layer_violations(rows, sorted(PACKAGE.rglob("*.py")))
    assert not unplaced, f"modules the layer table of docs/ARCHITECTURE.md does not place: {unplaced}"
    assert not sorted(set(upward) - UPWARD), "imports from a lower layer (move the code, or the module's row): " \
        f"{sorted(set(upward) - UPWARD)}"
    assert not sorted(UPWARD - set(upward)), f"gone: drop them from UPWARD and the doc: {sorted(UPWARD - set(upward))}"


def test_the_layer_check_sees_an_upward_import_and_an_unplaced_module():
    base, reader = PACKAGE / "base.py", PACKAGE / "io" / "csv_reader.py"  # (csv_reader imports base)
    assert layer_violations([["sparsetrain/base.py"], ["sparsetrain/io/"]], [base, reader]) == ([], [])
    unplaced, upward = layer_violations([["sparsetrain/io/"], ["sparsetrain/base.py"]], [base, reader, PACKAGE / "cli.py"])
    assert ("sparsetrain.io.csv_reader", "sparsetrain.base") in upward and unplaced == ["sparsetrain.cli"]


# Modules that import each other, directly or around a circle (a package's ``__init__`` aside, and the UPWARD
# imports): none but these; an entry whose circle is gone fails the test, so the list shrinks.
KNOWN_CIRCLES = [
    ["sparsetrain.ndarray.arith", "sparsetrain.ndarray.creation", "sparsetrain.ndarray.ndarray",
     "sparsetrain.ndarray.sparse", "sparsetrain.ndarray.storage"],
]


def import_circles(graph: dict) -> list[list[str]]:
    """The strongly connected sets of more than one module of ``graph`` (module -> the modules it imports),
    each sorted (Tarjan's algorithm, without recursion)."""
    index, low, stack, on_stack, circles = {}, {}, [], set(), []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, targets = work[-1]
            for w in targets:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    circle = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        circle.append(w)
                        if w == v:
                            break
                    if len(circle) > 1:
                        circles.append(sorted(circle))
    return sorted(circles)


def test_no_module_imports_its_own_importers():
    def package(module: str) -> bool:
        return (ROOT / module.replace(".", "/") / "__init__.py").is_file()

    graph = {}
    for f in sorted(PACKAGE.rglob("*.py")):
        src = _module(f)
        graph[src] = {d for d in _imports(f) if d != src and not package(d) and (src, d) not in UPWARD}
    circles = import_circles(graph)
    new = [c for c in circles if c not in KNOWN_CIRCLES]
    assert not new, f"modules that import each other (move what they share to the lower one): {new}"
    assert not [c for c in KNOWN_CIRCLES if c not in circles], "a known circle is gone: drop it from KNOWN_CIRCLES"


def test_the_circle_check_sees_a_circle():
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert import_circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    assert import_circles({"a": {"b", "x"}, "b": {"a"}, "c": {"d"}, "d": {"c", "a"}}) == [["a", "b"], ["c", "d"]]
