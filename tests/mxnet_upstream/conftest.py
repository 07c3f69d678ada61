"""MXNet 1.9.1's unit tests, ported: every test starts from a seed derived from its name
(MXNet's ``with_seed``, made reproducible), and runs in a temporary directory (tests write files)."""
import zlib

import pytest

from ._harness import LIB, seed_all


def pytest_report_header(config):
    return f"mxnet_upstream: running on {LIB}"


@pytest.fixture(autouse=True)
def _with_seed(request, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seed_all(zlib.crc32(request.node.nodeid.encode()) % (2**31))
    yield
