"""``sparsetrain init``: write a starter config for a data file (the work is in ``config/starter.py``).

Only click is imported here; the library is imported when the command runs.
"""
from __future__ import annotations

import sys

import click


@click.command("init", short_help="Write a starter config for a data file.")
@click.argument("data", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--task", required=True, metavar="TASK",
              help="binary (two label values: of numbers the larger, of CSV/TSV texts a name such as yes/click "
                   "or else the later in sorted order, is the positive class), regression, or multiclass "
                   "(class ids 0..K-1 or 1..K).")
@click.option("--preset", metavar="PRESET", help="The model: linear, logistic, softmax, fm or wide_deep "
              "(default: logistic for binary, linear for regression, softmax for multiclass).")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The config file to write.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("--label", metavar="COLUMN", help="CSV/TSV: the label column (default: a header name such as "
              "label, click or target, else the first column).")
def init_command(data, task, preset, out, force, label):
    """Look at DATA (LibSVM: rows, features, index base, label values; CSV/TSV: also the delimiter,
    header, label column and numeric vs categorical columns; Vowpal Wabbit: the namespaces) and
    write a commented config that `sparsetrain fit` runs as is."""
    from .cli_run import run_command

    sys.exit(run_command(_init, data, task, preset, out, force, label))


def _init(data, task, preset, out, force, label) -> int:
    from .base import ConfigError
    from .cli_fit_display import reading
    from .config.starter import write_starter_config

    if data == "-":  # (DATA allows '-' to say this, where click would say "File '-' does not exist")
        raise ConfigError("DATA: init reads a file, not stdin ('-'): the config it writes names the file to train "
                          "on; save the data to a file first (a config may still train on stdin: data.train: '-')")

    command = " ".join(["sparsetrain init", data, "--task", task] + (["--preset", preset] if preset else [])
                       + (["--label", label] if label else []) + ["--out", out])
    with reading(data, "reading"):  # init reads the whole file: a large one takes seconds
        _, summary = write_starter_config(data, task, out, preset=preset, force=force, command=command, label=label)
    click.echo(f"wrote {out}: {summary.format}, {summary.rows} rows, {summary.num_features} features, "
               f"{summary.distinct_labels} label value{'' if summary.distinct_labels == 1 else 's'}; train it with: "
               f"sparsetrain fit {out}")
    if task in ("binary", "multiclass") and summary.distinct_labels == 1:  # (legal: fit maps it; but say so)
        click.echo(f"warning: {data} has one label value {summary.label_text()}: a binary model learns from "
                   "rows of both classes" if task == "binary" else
                   f"warning: {data} has one class {summary.label_text()}: a multiclass model learns from rows of "
                   "several classes", err=True)
    return 0
