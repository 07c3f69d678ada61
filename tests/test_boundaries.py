"""Public boundaries: no module imports another package's private names; no import cycle into engines."""
from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sparsetrain"

# Crossings that other work of issue 14 removes (the ndarray layer's); this list may only shrink:
# delete an entry when its crossing is gone.
KNOWN = {
    ("sparsetrain/ops/elemwise.py", "sparsetrain.ndarray.ndarray", "_as_index"),
}


def _module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _package_of(path: pathlib.Path) -> str:
    rel = path.relative_to(ROOT)
    return ".".join(rel.parent.parts)


def _resolve(path: pathlib.Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package_of(path).split(".")
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_module(name: str) -> bool:
    path = PACKAGE.parent / name.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").is_file()


def _package_of_module(name: str) -> str:
    """The package that holds module (or subpackage) ``name``."""
    return name.rpartition(".")[0]


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_crossings(path: pathlib.Path) -> list[tuple[str, str, str]]:
    """``(file, module, name)`` for each private name ``path`` imports from outside its package.

    A private name is one with a leading underscore: a module (``import x._y``, ``from x import
    _y`` where ``_y`` is a module) or a name in a module (``from x.y import _z``). Within one
    package (``sparsetrain/io/*`` importing ``sparsetrain.io._libsvm_kernels``) is allowed.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    own = _package_of(path)
    found = []
    modules = {}  # local name -> a sparsetrain module of another package, for ``alias._name``
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _resolve(path, node)
            for a in node.names:
                full = f"{base}.{a.name}"
                if full.startswith("sparsetrain") and _is_module(full) and _package_of_module(full) != own:
                    modules[a.asname or a.name] = full
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("sparsetrain.") and a.asname and _package_of_module(a.name) != own:
                    modules[a.asname] = a.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules \
                and _private(node.attr):
            found.append((str(path.relative_to(ROOT)), modules[node.value.id], node.attr))
        if isinstance(node, ast.ImportFrom):
            module = _resolve(path, node)
            if not module.startswith("sparsetrain"):
                continue
            target_pkg = module if (PACKAGE.parent / module.replace(".", "/")).is_dir() else module.rpartition(".")[0]
            crosses = target_pkg != own
            names = [a.name for a in node.names]
            for part in module.split(".")[1:]:  # a private module on the way
                if _private(part) and crosses:
                    found.append((str(path.relative_to(ROOT)), module, part))
            for name in names:
                if _private(name) and crosses:
                    found.append((str(path.relative_to(ROOT)), module, name))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "sparsetrain" and any(_private(p) for p in parts[1:]) and \
                        ".".join(parts[:-1]) != own:
                    found.append((str(path.relative_to(ROOT)), alias.name, parts[-1]))
    return found


FILES = sorted(PACKAGE.rglob("*.py"))


def test_the_scanner_sees_crossings():
    import tempfile

    with tempfile.TemporaryDirectory(dir=PACKAGE / "dist") as d:
        probe = pathlib.Path(d) / "probe.py"
        probe.write_text("from ...optimizer import _weight_buffer\nfrom .. import kvstore\n"
                         "from ..kvstore import first_line\nimport sparsetrain.io._libsvm_kernels\n")
        got = {(m, n) for _, m, n in private_crossings(probe)}
    assert got == {("sparsetrain.optimizer", "_weight_buffer"),
                   ("sparsetrain.io._libsvm_kernels", "_libsvm_kernels")}


def test_no_module_imports_another_packages_private_names():
    found = {c for path in FILES for c in private_crossings(path)}
    new = sorted(found - KNOWN)
    assert not new, "private names imported across packages:\n" + "\n".join(map(str, new))


@pytest.mark.parametrize("engine_file", sorted((PACKAGE / "engines").rglob("*.py")), ids=lambda p: p.name)
def test_engines_do_not_import_module(engine_file):
    """Module finds engines through ``sparsetrain.engines``; an engine sees a ``ModuleView``."""
    tree = ast.parse(engine_file.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _resolve(engine_file, node)
            assert module != "sparsetrain.module", f"{engine_file.name} imports sparsetrain.module"
            if module == "sparsetrain":
                assert "module" not in [a.name for a in node.names]


def test_module_does_not_import_an_engine():
    tree = ast.parse((PACKAGE / "module.py").read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            module = _resolve(PACKAGE / "module.py", node)
            assert not module.startswith("sparsetrain.engines.compiled"), module


def _module_private_attributes() -> set[str]:
    tree = ast.parse((PACKAGE / "module.py").read_text(encoding="utf-8"))
    return {node.attr for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self"
            and isinstance(node.ctx, ast.Store) and _private(node.attr)}


@pytest.mark.parametrize("path", sorted((PACKAGE / "engines").rglob("*.py")) + sorted((PACKAGE / "dist").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(PACKAGE)))
def test_engines_and_dist_use_only_the_module_view(path):
    """Was: the compiled engine read ``mod._exec``/``_param_names``/``_updater`` and wrote ``mod._compiled_runner``."""
    private = _module_private_attributes()
    assert {"_exec", "_param_names", "_updater"} <= private
    tree = ast.parse(path.read_text(encoding="utf-8"))
    used = sorted({node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in private
                   and not (isinstance(node.value, ast.Name) and node.value.id == "self")})
    assert not used, f"{path.name} reaches into Module: {used}"


def test_module_view_shares_the_modules_arrays():
    import numpy as np

    import sparsetrain as st

    data = st.sym.var("data", stype="csr")
    w = st.sym.var("weight", stype="row_sparse", shape=(5, 1))
    net = st.sym.LinearRegressionOutput(st.sym.sparse.dot(data, w), st.sym.var("label"), name="out")
    X = st.test_utils.rand_ndarray((4, 5), "csr", density=0.5)
    it = st.io.NDArrayIter(X, np.zeros(4, np.float32), batch_size=2, label_name="label")
    mod = st.mod.Module(net, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    mod.init_optimizer(optimizer="adagrad")
    view = mod.view()
    assert view.param_names == ("weight",) and view.index("weight") == 0
    assert view.arg_stypes["data"] == "csr" and view.grad_stypes == {"weight": "row_sparse"}
    assert view.optimizer is mod.optimizer and view.updater is not None
    view.arrays["weight"]._data[...] = 7.0  # in place: the module sees it
    assert (mod.get_params()[0]["weight"].asnumpy() == 7.0).all()
    view.engine_state["x"] = 1
    assert mod.view().engine_state == {"x": 1}
