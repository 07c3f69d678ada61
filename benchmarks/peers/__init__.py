"""One module per peer. Each runs inside a measurement subprocess and returns a plain dict.

``mxnet_peer`` is special: it is executed as a script by the python of
``benchmarks/_work/mxnet-venv`` (MXNet 1.9.1 needs numpy 1.23.x), so it imports nothing
from this package at module level.
"""
