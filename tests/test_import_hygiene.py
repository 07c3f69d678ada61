"""Start-up stays light: ``sparsetrain --help`` (and ``import sparsetrain``) import neither numba, scipy,
ray nor rich's tables and progress bars, so a command starts fast; the library loads on first use."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
HEAVY = ("numba", "scipy", "ray", "rich.table", "rich.progress", "sparsetrain.ops", "sparsetrain.ndarray")

PROBE = """
import json, sys
{body}
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def loaded_after(body: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    code = PROBE.format(body=body, heavy=HEAVY)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


CLI_HELP = """
import contextlib, io
from sparsetrain.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main([{args}])
    except SystemExit:
        pass
assert "Usage" in out.getvalue(), out.getvalue()
"""


@pytest.mark.parametrize("args", ["'--help'", "'fit', '--help'", "'evaluate', '--help'", "'--version'"])
def test_help_imports_nothing_heavy(args):
    assert loaded_after(CLI_HELP.format(args=args) if "version" not in args else
                        "from sparsetrain.cli import main\ntry:\n    main(['--version'])\nexcept SystemExit:\n    pass"
                        ) == []


def test_import_sparsetrain_and_its_cli_import_nothing_heavy():
    assert loaded_after("import sparsetrain, sparsetrain.cli") == []


def test_the_io_package_loads_its_parts_on_first_use():
    # the config schema imports io.base and io.synthetic_options; neither may pull in the parsers' kernels
    assert loaded_after("import sparsetrain.io, sparsetrain.io.base, sparsetrain.io.synthetic_options") == []
    assert "numba" in loaded_after("from sparsetrain.io import load_libsvm")


# Validating a config builds and checks its graph (the operator registry) but runs no kernel: no numba,
# no scipy; a CSV data section reads its schema from io/csv_schema.py, not the reader's kernels.
@pytest.mark.parametrize("config", ["linreg.yaml", "fm.yaml", "wide.yaml", "criteo_like.yaml"])
def test_config_validation_imports_neither_numba_nor_scipy(config):
    loaded = loaded_after(f"from sparsetrain.config import load_config\nload_config({str(ROOT / 'configs' / config)!r})")
    assert "numba" not in loaded and "scipy" not in loaded, loaded


def test_the_library_still_loads_on_first_use():
    loaded = loaded_after("import sparsetrain as mx\nx = mx.nd.array([1.0, 2.0])\nassert mx.sym.Variable('a') is not None"
                          "\nassert callable(mx.set_strict_stypes) and mx.MXNetError is mx.SparseTrainError")
    assert "sparsetrain.ops" in loaded and "sparsetrain.ndarray" in loaded
    assert "scipy" not in loaded and "numba" not in loaded  # a dense array and a graph need neither


def test_sparse_kernels_load_on_first_use():
    loaded = loaded_after("import sparsetrain as mx\nx = mx.nd.sparse.csr_matrix(([1.0], [0], [0, 1]), shape=(1, 2))"
                          "\nw = mx.nd.ones((2, 1))\ny = mx.nd.sparse.dot(x, w)\nassert y.asnumpy()[0, 0] == 1.0")
    assert "numba" in loaded


def test_reading_libsvm_into_an_iterator_imports_no_scipy_sparse():
    # a warm `fit` of a LibSVM config: the parser (numba) and NDArrayIter, but not scipy.sparse
    probe = ("import sys\nfrom sparsetrain.io import NDArrayIter, load_libsvm\n"
             f"X, y = load_libsvm({str(ROOT / 'data' / 'linreg.libsvm')!r}, num_features=100, zero_based=True)\n"
             "it = NDArrayIter(X, y, 1)\nprint(__import__('json').dumps(['scipy.sparse' in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [False]

