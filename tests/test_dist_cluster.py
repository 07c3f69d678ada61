"""A multi-node Ray cluster on one machine (``ray.cluster_utils.Cluster``: a head and a second node),
joined with ``address`` as ``fit --address`` does: the same result as a local run."""
import pathlib

import numpy as np
import pytest

ray = pytest.importorskip("ray")

from sparsetrain.config import load_config  # noqa: E402
from sparsetrain.dist import train_distributed  # noqa: E402
from sparsetrain.module import load_params  # noqa: E402

LINREG = str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "linreg.yaml")
OVER = ["train.kvstore=dist_sync", "data.batch_size=10", "train.sync_every=6", "train.epochs=2",
        "optimizer.learning_rate=0.5"]


@pytest.mark.slow
def test_two_simulated_nodes_train_to_the_same_result_as_a_local_run(tmp_path):
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        pytest.skip("needs a process without a Ray session")
    cfg = load_config(LINREG, OVER)
    local = train_distributed(cfg, output_dir=str(tmp_path / "local"), workers=2, servers=2, num_cpus=2)
    assert not ray.is_initialized()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        joined = train_distributed(cfg, output_dir=str(tmp_path / "cluster"), workers=2, servers=2,
                                   address=cluster.address)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    assert joined.history[0]["workers"] == 2
    a, _ = load_params(joined.checkpoint)
    b, _ = load_params(local.checkpoint)
    for name in a:
        np.testing.assert_array_equal(a[name].asnumpy(), b[name].asnumpy())
    assert [r["mse"] for r in joined.history] == [r["mse"] for r in local.history]
