"""The numba kernels a generated plan calls, under public names (plans are generated outside
this package, in the plan cache): the optimizer rules, the metrics, the output layers' gradient and
the prefetch hint."""
from __future__ import annotations

from ...kernels.metrics import batch_metrics, batch_metrics_weighted, metric_inst
from ...kernels.optim import RULES
from ...kernels.prefetch import prefetch_row
from .outputs import output_grad

__all__ = ["RULES", "batch_metrics", "batch_metrics_weighted", "metric_inst", "output_grad", "prefetch_row"]
