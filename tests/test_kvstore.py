"""The in-process kvstore (``kvstore.create('local')``) and what needs no Ray."""
import subprocess
import sys

import numpy as np
import pytest

import sparsetrain as mx
from sparsetrain import kvstore
from sparsetrain.base import SparseTrainError, StorageTypeError


def test_local_push_sums_and_pull_copies_out():
    kv = kvstore.create("local")
    assert kv.type == "local" and kv.rank == 0 and kv.num_workers == 1
    kv.init("w", mx.nd.ones((2, 3)))
    kv.push("w", [mx.nd.ones((2, 3)), mx.nd.ones((2, 3)) * 2])
    out = mx.nd.zeros((2, 3))
    kv.pull("w", out=out)
    np.testing.assert_array_equal(out.asnumpy(), np.full((2, 3), 3.0))


def test_local_row_sparse_pull_and_lazy_optimizer_update():
    kv = kvstore.create("local")
    w = np.arange(12, dtype=np.float32).reshape(6, 2)
    kv.init(0, mx.nd.array(w).tostype("row_sparse"))
    kv.set_optimizer(mx.optimizer.SGD(learning_rate=1.0, wd=0.5, momentum=0.9))
    g = mx.nd.sparse.row_sparse_array((np.ones((1, 2), np.float32), np.array([4])), shape=(6, 2))
    kv.push(0, g)
    out = mx.nd.sparse.zeros("row_sparse", (6, 2))
    kv.row_sparse_pull(0, out=out, row_ids=mx.nd.array([5, 4, 0, 4]))
    np.testing.assert_array_equal(out.indices.asnumpy(), [0, 4, 5])
    np.testing.assert_allclose(out.data.asnumpy(), [w[0], w[4] - (1 + 0.5 * w[4]), w[5]])


def test_local_errors_are_clear():
    kv = kvstore.create("local")
    with pytest.raises(SparseTrainError, match="key 'x' was not initialized"):
        kv.push("x", mx.nd.ones((1,)))
    kv.init("x", mx.nd.ones((3, 1)))
    with pytest.raises(SparseTrainError, match="already initialized"):
        kv.init("x", mx.nd.ones((3, 1)))
    with pytest.raises(StorageTypeError, match="row_sparse out"):
        kv.row_sparse_pull("x", out=mx.nd.zeros((3, 1)), row_ids=[0])
    with pytest.raises(IndexError, match=r"row ids must be in \[0, 3\)"):
        kv.row_sparse_pull("x", out=mx.nd.sparse.zeros("row_sparse", (3, 1)), row_ids=[3])
    with pytest.raises(ValueError, match="unknown kvstore type 'dist_foo'"):
        kvstore.create("dist_foo")


def test_nothing_but_sparsetrain_dist_imports_ray():
    code = ("import sys, sparsetrain, sparsetrain.cli, sparsetrain.trainer, sparsetrain.kvstore, "
            "sparsetrain.module, sparsetrain.engines.compiled, sparsetrain.io\n"
            "sparsetrain.kvstore.create('local')\n"
            "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_dist_flags_without_workers_on_a_local_config_are_a_usage_error(tmp_path):
    from click.testing import CliRunner

    from sparsetrain.cli import main

    res = CliRunner().invoke(main, ["fit", str(__import__("pathlib").Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml"), "--servers", "2", "--output", str(tmp_path)])
    assert res.exit_code == 2
    assert "--servers only applies to distributed training" in res.output


def test_without_ray_distributed_training_says_how_to_install_it(tmp_path):
    config = str(__import__("pathlib").Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml")
    code = ("import sys; sys.modules['ray'] = None\n"  # as if the dist extra were not installed
            "from sparsetrain.cli import main\n"
            f"sys.exit(main(['fit', {config!r}, '--workers', '2', '--output', {str(tmp_path)!r}],"
            " standalone_mode=False))")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 1, res.stderr
    assert res.stderr.strip().splitlines()[-1] == (
        "error: distributed training needs Ray: install sparsetrain[dist] (pip install 'ray>=2.9')")
