#!/usr/bin/env bash
# Run the ported MXNet 1.9.1 unit tests (tests/mxnet_upstream/) against the real MXNet 1.9.1 in
# benchmarks/_work/mxnet-venv (created by benchmarks/mxnet_env.sh; pytest and scipy are installed
# into it here). Extra arguments go to pytest; the slow tests are included.
#
#   bash tools/mxnet_upstream.sh            # all of them
#   bash tools/mxnet_upstream.sh -k dot     # some
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MXNET_VENV:-$root/benchmarks/_work/mxnet-venv}"
bash "$root/benchmarks/mxnet_env.sh" >/dev/null
"$venv/bin/python" -c "import pytest, scipy" 2>/dev/null || "$venv/bin/python" -m pip install --quiet pytest "scipy<1.12"
cd "$root"
MXNET_UPSTREAM_LIB=mxnet exec "$venv/bin/python" -m pytest -q -p no:cacheprovider -W ignore \
    -m "slow or not slow" tests/mxnet_upstream "$@"
