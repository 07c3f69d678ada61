"""``metrics.png``: every metric of a run per epoch (train, progressive and eval), best epoch marked.

matplotlib is an optional dependency (the ``plot`` extra) imported only when a plot is drawn;
without it, :func:`plot_metrics` raises one ``SparseTrainError`` saying how to install it.
"""
from __future__ import annotations

import io
import os

from ..base import ConfigError, SparseTrainError
from ..fileio import write_atomic
from ..metric_catalogue import RECORD_PREFIXES as _PREFIXES
from .metrics import record_metrics
from .rundir import writing
from .runfiles import PLOT_FILE

def require_matplotlib() -> None:
    """A ``SparseTrainError`` saying how to install matplotlib when it is missing."""
    _pyplot()


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise SparseTrainError("plotting needs matplotlib: pip install 'sparsetrain[plot]'") from None
    matplotlib.use("Agg", force=True)  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def _image_format(plt, path: str) -> str:
    """The image format ``path``'s extension names (``png`` without one); an extension matplotlib
    cannot write is an error naming the ones it can (a .pdf name got PNG bytes)."""
    ext = os.path.splitext(path)[1].lower().lstrip(".")
    if not ext:
        return "png"
    known = plt.figure().canvas.get_supported_filetypes()
    plt.close("all")
    if ext not in known:
        raise ConfigError(f"{path}: matplotlib cannot write .{ext} images; use one of "  # (a usage error, exit 2,
                          f"{', '.join('.' + k for k in sorted(known))}")  # as predict's and export's --out)
    return ext


def _base_name(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix):]
    return key


def plot_metrics(history: list[dict], path: str, best_epoch: int | None = None, title: str | None = None) -> str:
    """Draw every metric of ``history`` (``metrics.jsonl`` records) per epoch into ``path`` (PNG, or
    the format its extension names: ``.pdf``, ``.svg``, ...), one panel per metric with its train,
    ``progressive_`` and ``eval_`` curves; ``best_epoch`` (a checkpoint number: the record of epoch
    ``best_epoch - 1``) is marked. Written atomically."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fmt = _image_format(plt, path)
    keys = list(dict.fromkeys(k for r in history for k in record_metrics(r)))
    names = list(dict.fromkeys(_base_name(k) for k in keys))
    if not names:
        raise SparseTrainError(f"{path}: nothing to plot (no epoch has a metric)")
    fig, axes = plt.subplots(len(names), 1, figsize=(7, 2.6 * len(names) + 0.6), squeeze=False, sharex=True)
    try:
        for ax, name in zip(axes[:, 0], names):
            for key in (name, f"progressive_{name}", f"eval_{name}"):
                points = [(r["epoch"], r[key]) for r in history if key in r]
                if points:
                    xs, ys = zip(*points)
                    label = {name: "train"}.get(key, key[: -len(name) - 1])
                    ax.plot(xs, ys, marker="o", markersize=3, label=label)
            if best_epoch is not None:
                ax.axvline(best_epoch - 1, color="grey", linestyle="--", linewidth=1,
                           label=f"best (epoch {best_epoch - 1})")
            ax.set_ylabel(name)
            ax.grid(True, alpha=0.3)
            ax.legend(loc="best", fontsize="small")
        axes[-1, 0].set_xlabel("epoch")
        axes[-1, 0].xaxis.set_major_locator(MaxNLocator(integer=True))  # (not epoch 0.25, 0.5, ...)
        if title:
            fig.suptitle(title, fontsize="medium")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=100)
    finally:
        plt.close(fig)
    with writing(path):
        write_atomic(path, buf.getvalue())
    return path


def write_plot(run_path: str, history: list[dict], best_epoch: int | None = None) -> str:
    """``<run>/metrics.png`` for ``fit --plot`` (after every epoch)."""
    return plot_metrics(history, os.path.join(run_path, PLOT_FILE), best_epoch, title=os.path.basename(run_path))
