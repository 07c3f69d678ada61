#!/usr/bin/env bash
# Create benchmarks/_work/mxnet-venv with MXNet 1.9.1 (the last release; it needs numpy 1.23.x:
# numpy >= 1.24 removed the `np.bool` alias that mxnet 1.9.1 uses at import time).
#
#   bash benchmarks/mxnet_env.sh            # create (no-op if it already works)
#   MXNET_PYTHON=python3.10 bash benchmarks/mxnet_env.sh
#
# Exit code 0 and the last line "ok <python>" when `import mxnet` works; non-zero otherwise,
# with pip's / python's own error on stderr. benchmarks/run.py calls this script and reports
# the failure reason as "not available" for the MXNet rows.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${MXNET_VENV:-$here/_work/mxnet-venv}"
py="${MXNET_PYTHON:-python3}"

check() {
    "$venv/bin/python" - <<'PY'
import warnings
warnings.filterwarnings("ignore")
import mxnet, numpy
assert mxnet.__version__ == "1.9.1", mxnet.__version__
print("ok", mxnet.__version__, "numpy", numpy.__version__)
PY
}

if [ -x "$venv/bin/python" ] && check >/dev/null 2>&1; then
    check
    exit 0
fi

mkdir -p "$(dirname "$venv")"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade "pip<25" >&2 || true
"$venv/bin/python" -m pip install "numpy==1.23.5" "mxnet==1.9.1" >&2
check
