"""The numba kernels a generated plan calls, under public names (plans are generated outside
this package, in the plan cache): the optimizer rules, the metrics and the output layers' gradient."""
from __future__ import annotations

from ...kernels.metrics import batch_metrics, metric_inst
from ...kernels.optim import RULES
from .kernels import _output_grad as output_grad

__all__ = ["RULES", "batch_metrics", "metric_inst", "output_grad"]
