"""``sparsetrain export RUN``: the trained weights, readably (see :mod:`sparsetrain.trainer.export`)."""
from __future__ import annotations

import sys

import click


def _export(run, fmt, out, top, epoch, last, all_rows=False):
    import os

    from .cli_fit_display import reading
    from .trainer import load_trained
    from .trainer.export import FORMATS, export_model, write_export
    from .trainer.predictions import format_for

    fmt = format_for(out, fmt, FORMATS, "export")
    model = load_trained(run, epoch=epoch, last=last)
    run_path = run if os.path.isdir(run) else os.path.dirname(os.path.dirname(os.path.abspath(model.prefix)))
    doc = export_model(model, run_path, top, all_rows)  # (its rows are made as they are written)
    for name, p in doc["parameters"].items():
        if "left_out" in p:
            click.echo(f"note: {name}: left out {p['left_out']}", err=True)
    if not out or out == "-":  # the text streams out as it is made: no status line among it on a terminal
        write_export(doc, None, fmt)
        return 0
    with reading(model.params_path, "exporting"):  # a model of a million rows takes seconds
        write_export(doc, out, fmt)
    rows = sum(len(p.get("rows", p.get("values", []))) for p in doc["parameters"].values())
    click.echo(f"wrote {len(doc['parameters'])} parameters ({rows} rows) of {model.params_path} to {out}", err=True)
    return 0


@click.command("export", short_help="Write a run's trained weights as JSON or CSV.")
@click.argument("run", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["json", "csv"]),
              help="json: one document with the model config and every parameter's non-zero rows; csv: one line "
              "per value (parameter, index, feature, output, value) after '#' comment lines with the config "
              "(default: from --out's extension, else json).")
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True), help="Write here (default or '-': stdout).")
@click.option("--top", type=click.IntRange(min=1), help="Only the K rows of largest magnitude (L2 norm) of each "
              "weight matrix (default: every non-zero row, none of a matrix that starts random); biases are always "
              "written whole.")
@click.option("--all", "all_rows", is_flag=True, help="Also every row of a weight matrix that starts non-zero (an "
              "FM's or wide&deep's random factors), which the default leaves out: trained or not, each row is non-zero.")
@click.option("--epoch", type=click.IntRange(min=1), help="Checkpoint N of the run (default: the best epoch).")
@click.option("--last", is_flag=True, help="The run's last checkpoint instead of its best one.")
def export(run, fmt, out, top, epoch, last, all_rows):
    """Write the trained weights of RUN (a run directory, config or checkpoint prefix) readably: the
    non-zero rows of every parameter with their feature index (and name, when the run kept
    feature_names.json), the biases, and the model's expanded config."""
    from .cli_run import run_command

    sys.exit(run_command(_export, run, fmt, out, top, epoch, last, all_rows))
