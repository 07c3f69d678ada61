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



# -- whole commands, as a user runs them ------------------------------------------------------------------
# A light command (any command's --help, --version, infer-stypes, one stopped by a usage or configuration
# error) starts without numba, scipy, llvmlite or ray: they load only when a command reads data or trains.
# Each case is a new process running the `sparsetrain` command (`python -m sparsetrain` as runpy runs it);
# at exit it writes which of those it loaded. The command's own output and exit code are checked too, so a
# case cannot pass by failing early.
NOT_AT_STARTUP = ("numba", "llvmlite", "scipy", "ray")

COMMAND = """
import atexit, json, os, runpy, sys
def report():
    with open(os.environ["LOADED_REPORT"], "w") as f:
        json.dump(sorted(m for m in {heavy!r} if m in sys.modules), f)
atexit.register(report)
sys.argv = ["sparsetrain", *{args!r}]
runpy.run_module("sparsetrain", run_name="__main__", alter_sys=True)
"""


def command_loads(args: list[str], tmp_path, code: int = 0, expect: str = "") -> list[str]:
    """What of :data:`NOT_AT_STARTUP` ``sparsetrain ARGS`` loaded (its exit code ``code``, ``expect`` in its
    output)."""
    report = tmp_path / "loaded.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "LOADED_REPORT": str(report)}
    p = subprocess.run([sys.executable, "-c", COMMAND.format(heavy=NOT_AT_STARTUP, args=args)], cwd=tmp_path,
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == code, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert expect in p.stdout + p.stderr, (expect, p.stdout[-2000:], p.stderr[-2000:])
    return json.loads(report.read_text())


def _command_names() -> list[str]:
    from sparsetrain.cli import main

    return sorted(main.commands)


@pytest.mark.parametrize("args", [["--help"], ["--version"], *([name, "--help"] for name in _command_names())],
                         ids=" ".join)
def test_every_commands_help_starts_without_numba_scipy_or_ray(args, tmp_path):
    assert command_loads(args, tmp_path, expect="sparsetrain") == []


@pytest.mark.parametrize("config, fmt", [("linreg.yaml", "table"), ("fm.yaml", "json"), ("wide.yaml", "log"),
                                         ("criteo_like.yaml", "dot")])
def test_infer_stypes_starts_without_numba_scipy_or_ray(config, fmt, tmp_path):
    out = "digraph" if fmt == "dot" else "csr"
    assert command_loads(["infer-stypes", str(ROOT / "configs" / config), "--format", fmt], tmp_path,
                         expect=out) == []


@pytest.mark.parametrize("args, code, expect", [
    (["fit", "CONFIG", "--set", "optimizer.nme=0.1"], 2, "optimizer.nme"),  # a mistyped key
    (["fit", "missing.yaml"], 2, "missing.yaml"),
    (["gen-data", "--rows", "10", "--out", "x.libsvm"], 2, "--features"),  # an option missing for the format
    (["predict", "no-run", "DATA"], 2, "no-run"),
    (["export", "no-run"], 2, "no-run"),
], ids=["fit-bad-key", "fit-no-config", "gen-data-usage", "predict-no-run", "export-no-run"])
def test_a_command_stopped_by_bad_input_starts_without_numba_scipy_or_ray(args, code, expect, tmp_path):
    args = [str(ROOT / "configs" / "linreg.yaml") if a == "CONFIG" else str(ROOT / "data" / "linreg.libsvm")
            if a == "DATA" else a for a in args]
    assert command_loads(args, tmp_path, code=code, expect=expect) == []


def test_export_of_a_run_without_feature_names_starts_without_numba(tmp_path):
    # writing the weights needs no data reader: numba loads only to read a run's kept feature names
    run = tmp_path / "run"
    command_loads(["fit", str(ROOT / "configs" / "linreg.yaml"), "-q", "--output", str(run)],
                  tmp_path)
    assert command_loads(["export", str(run), "--out", str(tmp_path / "w.csv")], tmp_path, expect="wrote") == []
    assert (tmp_path / "w.csv").read_text().count("\n") > 2


@pytest.mark.parametrize("given, kept", [(None, "4"), ("28", "28")])
def test_the_command_lets_openblas_threads_sleep_unless_told_otherwise(given, kept):
    # the command sets OpenBLAS's spin before numpy (and so OpenBLAS) loads; a value the user gave stays
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    if given is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = given
    probe = ("import json, os, sys\nimport sparsetrain.cli\nbefore = 'numpy' in sys.modules\nimport numpy\n"
             "print(json.dumps([before, os.environ.get('OPENBLAS_THREAD_TIMEOUT')]))")
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == [False, kept]
