"""``sparsetrain plot RUN``: every metric per epoch into an image (see :mod:`sparsetrain.trainer.plot`)."""
from __future__ import annotations

import sys

import click


def _plot(run, out):
    import os

    from .base import SparseTrainError
    from .trainer.plot import plot_metrics
    from .trainer.runfiles import METRICS_FILE, latest_default_run, load_metrics, load_state

    if os.path.isfile(run) and run.endswith((".yaml", ".yml")):  # a config: its run directory, as predict takes
        from .config import load_config

        run = latest_default_run(load_config(run))
    if not os.path.isdir(run):
        raise SparseTrainError(f"{run}: not a run directory")
    path = os.path.join(run, METRICS_FILE)
    if not os.path.exists(path):
        raise SparseTrainError(f"{path}: no metrics to plot (has the run finished an epoch?)")
    history = load_metrics(path)
    state = load_state(run) or {}
    best = (state.get("best") or {}).get("epoch") if (state.get("best") or {}).get("metric") else None
    out = out or os.path.join(run, "metrics.png")
    plot_metrics(history, out, best, title=os.path.basename(os.path.abspath(run)))
    click.echo(f"wrote {out}", err=True)
    return 0


@click.command("plot", short_help="Draw a run's metrics per epoch.")
@click.argument("run", type=click.Path(exists=True))
@click.option("--out", type=click.Path(dir_okay=False),
              help="Image file to write, in the format its extension names (.png, .pdf, .svg, ...; default: "
                   "RUN/metrics.png).")
def plot(run, out):
    """Draw every metric of RUN (a run directory, or a config: its run directory) per epoch (train,
    progressive and eval curves; the best epoch marked) into an image (PNG by default). Needs
    matplotlib: pip install 'sparsetrain[plot]'."""
    from .cli_run import run_command

    sys.exit(run_command(_plot, run, out))
