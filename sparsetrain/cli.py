"""``sparsetrain``: the command line (click + rich). Thin: parse, call the library, render.

Exit codes: 0 success; 1 runtime failure (bad data, NaN/inf loss, missed ``train.target``);
2 usage or configuration error. Errors are one line on stderr, never a traceback
(``SPARSETRAIN_DEBUG=1`` re-raises them for debugging).
"""
from __future__ import annotations

import json
import math
import os
import re
import sys

import click

from .base import ConfigError
from .cli_export import export as export_command
from .cli_fit_display import (  # fit's rendering (StatusLine, COMPILING: also for tests)
    COMPILING, StatusLine, _describe_generated, _final_table, _FitReporter, _stderr_console, reading)
from .cli_init import init_command
from .cli_plot import plot as plot_command
from .cli_run import EXIT_RUNTIME, EXIT_USAGE, interrupted, run_command, say_error

# What this module imports at the top is what every command (``--help`` included) pays for: click, the
# error types and the commands' light modules. rich, the schema-generated options and the library load
# inside the commands that use them (tests/test_import_hygiene.py).

# OpenBLAS (numpy's and scipy's, one each; numba's BLAS check imports scipy's) starts a thread per core that
# busy-waits 2^28 cycles (~0.1 s) after it starts, and after each call, before it sleeps: ~0.25 CPU s of
# every command that trains or reads data, on the core our parser and training threads use. 2^4 cycles
# lets those threads sleep at once; BLAS still runs on every core (OPENBLAS_NUM_THREADS is not touched; a
# dense product's speed did not change). A value the user set is kept. Set before numpy loads it.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")


class _Stopped(Exception):
    """A command's ``KeyboardInterrupt`` (Ctrl-C or SIGTERM), kept from click, which writes a blank line
    before it (for a terminal's ``^C``) also when stderr is a file and the signal a SIGTERM."""


class _Main(click.Group):
    """A group whose errors are one ``error: ...`` line on stderr, with the documented exit codes."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as e:
            raise _Stopped(str(e)) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args=args, prog_name="sparsetrain", complete_var=complete_var,
                              standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:  # click >= 8.2: bare group invocation
            click.echo(e.ctx.get_help(), err=True)
            rv = EXIT_USAGE
        except click.UsageError as e:
            cmd = e.ctx.command_path if e.ctx is not None else "sparsetrain"
            say_error(f"{e.format_message()} (see '{cmd} --help')")
            rv = EXIT_USAGE
        except click.Abort as e:  # click's answer to Ctrl-C; a run's interruption says where to resume from
            rv = interrupted(str(e.__cause__ or ""))
        except click.ClickException as e:
            say_error(e.format_message())
            rv = e.exit_code
        except (KeyboardInterrupt, _Stopped) as e:  # Ctrl-C or SIGTERM; a run says where to resume from
            rv = interrupted(str(e))
        except OSError as e:  # writing --help or --version to a full or closed stdout
            say_error(f"<stdout>: {e.strerror or e}")
            rv = EXIT_RUNTIME
        rv = rv if isinstance(rv, int) else 0
        if standalone_mode:
            sys.exit(rv)
        return rv


def _load(config_path, overrides):
    from .config import load_config

    return load_config(config_path, list(overrides))


def _fit(config_path, overrides, epochs, output, resume, overwrite, verbose_stypes, engine, seed, quiet,
         strict_stypes, workers=None, servers=None, address=None, max_restarts=None, init_from=None,
         init_states=False, plot=False):
    from . import trainer

    overrides = list(overrides)
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    if seed is not None:
        overrides.append(f"train.seed={seed}")
    if strict_stypes:
        overrides.append("train.strict_stypes=true")
    if plot:
        overrides.append("train.plot=true")
    cfg = _load(config_path, overrides)
    if engine is not None:
        cfg.train.engine = engine
    reporter = _FitReporter(quiet)
    try:
        # SPARSETRAIN_INFER_STORAGE_TYPE_VERBOSE_LOGGING=1 is honoured by the executor itself at bind
        result = trainer.fit(cfg, output_dir=output, resume=resume, overwrite=overwrite, engine=engine,
                             verbose_stypes=verbose_stypes and not _env_verbose(), reporter=reporter,
                             workers=workers, servers=servers, address=address, max_restarts=max_restarts,
                             init_from=init_from, init_states=init_states)
    finally:
        reporter.close()
    if not quiet:
        from rich.console import Console

        Console(highlight=False).print(_final_table(result))
    if result.missed_targets:
        say_error("; ".join(result.missed_targets))
        return EXIT_RUNTIME
    return 0


def _env_verbose() -> bool:
    return os.environ.get("SPARSETRAIN_INFER_STORAGE_TYPE_VERBOSE_LOGGING", "0") not in ("", "0")


# -- infer-stypes --------------------------------------------------------------------------------------

def _infer_stypes(config_path, overrides, fmt, backward, batch_size):
    from rich.console import Console
    from rich.markup import escape as rich_escape
    from rich.table import Table

    from .symbol.graph import format_log, format_parameter, format_shape

    cfg = _load(config_path, overrides)
    plan, rows, grads, params = cfg.describe(batch_size=batch_size, backward=backward)
    out = Console(highlight=False, soft_wrap=True)
    esc = rich_escape  # (a name or file name with [brackets] is text, not rich markup that rich drops)
    # the parameters with the lr_mult / wd_mult they train with (model.variables.NAME.lr_mult) other than 1
    named = "parameters: " + ", ".join(format_parameter(p["name"], p["lr_mult"], p["wd_mult"]) for p in params)
    if fmt == "json":
        doc = {"nodes": [_json_row(r) for r in rows], "parameters": params}
        if backward:
            doc["gradients"] = grads
        click.echo(json.dumps(doc, indent=2))
    elif fmt == "log":
        for line in format_log(rows, grads):
            click.echo(line)
        click.echo(named)
    elif fmt == "dot":
        click.echo(plan.to_dot(backward, {r["name"]: r["hint"] for r in rows if r["hint"]},
                               {p["name"]: (p["lr_mult"], p["wd_mult"]) for p in params}))
    else:
        table = Table(title=f"{esc(cfg.name)}: storage types (batch size {batch_size or cfg.data.batch_size})")
        for col in ("#", "node", "op", "dispatch", "inputs", "outputs"):
            table.add_column(col)
        for row in rows:
            ins = "\n".join(f"{esc(e['name'].removesuffix('_output'))}: {e['stype']} {format_shape(e['shape'])}"
                            for e in row["inputs"])
            outs = "\n".join(f"{e['stype']} {format_shape(e['shape'])}" for e in row["outputs"])
            dispatch = row["dispatch"]
            if dispatch == "fallback":
                dispatch = f"[bold red]FALLBACK[/bold red]\n{esc(row['hint'])}"
            name = f"[dim]{esc(row['name'])}[/dim]" if row["backward"] else esc(row["name"])
            table.add_row(str(row["index"]), name, row["op"], dispatch, ins, outs)
        out.print(table)
        out.print(esc(named))
        for g in grads:
            out.print(f"gradient of {esc(g['argument'])}: {g['stype']} {format_shape(g['shape'])}")
        fallbacks = [r for r in rows if r["dispatch"] == "fallback"]
        if fallbacks:
            out.print(f"[bold red]{len(fallbacks)} fallback node(s)[/bold red]: "
                      + esc("; ".join(f"{r['name']}: {r['hint']}" for r in fallbacks)))
    return 0


def _json_row(row) -> dict:
    return {"index": row["index"], "name": row["name"], "op": row["op"], "dispatch": row["dispatch"],
            "backward": row["backward"], "fallback": row["dispatch"] == "fallback", "hint": row["hint"],
            "inputs": [{"name": e["name"], "stype": e["stype"], "shape": list(e["shape"] or ())}
                       for e in row["inputs"]],
            "outputs": [{"stype": e["stype"], "shape": list(e["shape"] or ())} for e in row["outputs"]]}


# -- gen-data --------------------------------------------------------------------------------------------

def _gen_data(options, out, quiet, force, given=()):
    from .cli_schema import cli_text
    from .io.base import named_format
    from .fileio import directories_for, refuse_to_replace
    from .io.synthetic_options import SyntheticOptions, check_given, check_options

    try:
        checked = check_options(**options)
        check_given(checked, given)
    except ConfigError as e:  # (a message led by a field's name, `noise: ...`, names the option: --noise)
        raise click.UsageError(cli_text(re.sub(r"^(\w+):", r"`\1`:", str(e)), SyntheticOptions)) from None
    options = checked.generator_kwargs()
    read_as = named_format(out)
    if read_as not in (None, options["format"]):
        # (fit, init and predict would read it as another format; a csv file named as no format needs data.format)
        raise click.UsageError(f"--out {out}: the name reads as {read_as} data (as fit, init and predict read it), "
                               f"but --format {options['format']} writes {options['format']} rows; "
                               + ("name it .csv or .tsv" if options["format"] == "csv" else
                                  "name it another way or give --format csv" if read_as == "csv" else
                                  "name it another way (gen-data writes no vw data)"))
    refuse_to_replace(out, force)
    from .io import synthetic  # (numba and scipy.sparse: only once the options are good)

    rows = options["rows"]
    err = _stderr_console(quiet)
    progress = None
    task_id = None
    if not quiet and err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        progress = Progress(TextColumn("gen-data"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            TextColumn("eta"), TimeRemainingColumn(), console=err, transient=True)
        progress.start()
        task_id = progress.add_task("rows", total=rows)
    try:
        with directories_for(out):  # (as predict, export and init make their --out's)
            result = synthetic.generate(out, **options, progress=(lambda done, *_: progress.update(task_id, completed=done))
                                        if progress else None)
    finally:
        if progress is not None:
            progress.stop()
    click.echo(_describe_generated(result))
    return 0


# -- predict / evaluate ------------------------------------------------------------------------------------

def _predict(model_path, data_path, out, fmt, epoch, last):
    from .trainer import load_trained
    from .trainer.predictions import format_for, write_predictions

    model = load_trained(model_path, epoch=epoch, last=last)
    fmt = format_for(out, fmt)
    with reading(data_path, "predicting"):
        cols = model.predict_columns(data_path)
    write_predictions(cols, out, fmt)
    if out and out != "-":
        click.echo(f"wrote {len(next(iter(cols.values())))} predictions to {out}", err=True)
    return 0


def _evaluate(model_path, data_path, metrics, as_json, epoch=None, last=False):
    from . import metric  # noqa: F401 (its metrics enter the catalogue)
    from .metric_catalogue import scoring_info
    from .trainer import load_trained

    for name in metrics:  # (the option's name, not the library call's argument)
        try:
            scoring_info(name)
        except ValueError as e:
            raise ConfigError(f"--metric {name}: {e}") from None
    model = load_trained(model_path, epoch=epoch, last=last)
    with reading(data_path, "scoring"):
        values = model.evaluate(data_path, list(metrics) or None)
    if as_json:  # (an undefined metric, auc of one class, is null: NaN is not JSON)
        click.echo(json.dumps({k: v if math.isfinite(v) else None for k, v in values.items()}))
    else:
        for name, value in values.items():
            click.echo(f"{name} {value:.6g}")
    return 0


# -- commands ------------------------------------------------------------------------------------------------

_SET_HELP = ("Override a config key, e.g. --set optimizer.learning_rate=0.1 or --set model.ops[1].op=dot; "
             "the value is parsed as YAML. Repeatable.")


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name=None, version=__import__("sparsetrain").__version__, prog_name="sparsetrain")
def main():
    """Train sparse models (linear, logistic, softmax, factorization machines, wide & deep, or any
    graph of sparse ops) on LibSVM, CSV/TSV or Vowpal Wabbit data, from a YAML config.

    \b
      # a config for your data; train it (runs/my/: metrics, checkpoints); predict with it
      sparsetrain init data/binary.libsvm --task binary --out my.yaml
      sparsetrain fit my.yaml
      sparsetrain predict runs/my data/binary_eval.libsvm --out preds.csv
      # the seed model to MSE < 1; each node's storage types; synthetic data
      sparsetrain fit configs/linreg.yaml
      sparsetrain infer-stypes configs/linreg.yaml
      sparsetrain gen-data --rows 1000 --features 100 --density 0.01 --out data/x.libsvm
    """


@main.command(short_help="Train the model a YAML config describes.")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=_SET_HELP)
@click.option("--epochs", type=click.IntRange(min=1), help="Number of epochs (default: the config's train.epochs).")
@click.option("--output", type=click.Path(file_okay=False), help="Run directory for metrics.jsonl, config.yaml and "
              "checkpoints (default: the config's `output`, else runs/<config name>/).")
@click.option("--resume", is_flag=True, help="Continue from the last complete checkpoint in the run directory; "
              "the final parameters equal those of an uninterrupted run. Without a checkpoint: exit 2.")
@click.option("--overwrite", is_flag=True, help="Replace the run in --output (without it, fitting into a directory "
              "that holds a run is refused; with the default runs/<name>/ the new run goes to runs/<name>-2/, ...).")
@click.option("--verbose-stypes", is_flag=True, help="Log every node's storage types and dispatch when binding "
              "(also SPARSETRAIN_INFER_STORAGE_TYPE_VERBOSE_LOGGING=1).")
@click.option("--strict-stypes", is_flag=True, help="Fail instead of falling back to dense kernels.")
@click.option("--engine", type=click.Choice(["auto", "compiled", "graph"]), help="Execution engine (default: the "
              "config's train.engine): compiled (whole epochs as fused numba kernels: linear, logistic, softmax, FM, "
              "wide & deep, any graph whose ops have a fused form), graph (the general interpreter), or auto.")
@click.option("--seed", type=int, help="Random seed (default: the config's train.seed).")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, engine line or final table; only the "
              "per-epoch lines, errors, what was asked for (--verbose-stypes) and what changes what the lines "
              "mean (the run directory taken, resuming, an early stop).")
@click.option("--workers", type=click.IntRange(min=1), help="Distributed training on Ray with N data-parallel "
              "workers (default 2 when train.kvstore is dist_sync/dist_async; with kvstore local this switches "
              "to dist_sync). Needs the dist extra: pip install 'sparsetrain[dist]'.")
@click.option("--servers", type=click.IntRange(min=1), help="Parameter-server actors, each holding a row range "
              "of every row_sparse weight (default 1).")
@click.option("--address", metavar="ADDR", help="Join an existing Ray cluster (e.g. 'auto' or 'head-node:6379') "
              "instead of starting a local one sized to this machine.")
@click.option("--max-restarts", type=click.IntRange(min=0), help="When a worker or server dies, restart every "
              "actor from the last complete checkpoint up to K times instead of failing (default 0).")
@click.option("--init-from", type=click.Path(exists=True), metavar="RUN|PARAMS", help="Start from trained "
              "parameters: a run directory (its best checkpoint) or a model-NNNN.params file; shapes and stypes "
              "must match the model. Optimizer states start fresh unless --init-states.")
@click.option("--init-states", is_flag=True, help="With --init-from: also take the optimizer states and update "
              "counts saved beside the parameters (the .states file), to continue training exactly.")
@click.option("--plot", is_flag=True, help="Write metrics.png into the run directory after every epoch (same as "
              "--set train.plot=true; needs matplotlib: pip install 'sparsetrain[plot]').")
def fit(config, overrides, epochs, output, resume, overwrite, verbose_stypes, strict_stypes, engine, seed, quiet,
        workers, servers, address, max_restarts, init_from, init_states, plot):
    """Train the model in CONFIG; exit 1 if train.target is missed or the loss becomes NaN/inf.

    With train.kvstore dist_sync/dist_async (or --workers N) the run is distributed on Ray:
    parameter servers hold the weights, workers train on parts of the LibSVM file.
    """
    sys.exit(run_command(_fit, config, overrides, epochs, output, resume, overwrite, verbose_stypes, engine, seed,
                         quiet, strict_stypes, workers, servers, address, max_restarts, init_from, init_states, plot))


@main.command("infer-stypes", short_help="Show each node's shapes, storage types and dispatch.")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=_SET_HELP)
@click.option("--format", "fmt", type=click.Choice(["table", "log", "json", "dot"]), default="table",
              show_default=True, help="table (rich), log (the verbose binding log), json (one document: an object per "
              "node, the parameters, with --backward the gradients) or dot (Graphviz; fallback nodes in red).")
@click.option("--backward", is_flag=True, help="Include the gradient nodes and each parameter's gradient stype.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Batch size for the shapes (default: "
              "data.batch_size).")
def infer_stypes(config, overrides, fmt, backward, batch_size):
    """Infer every node's shapes, storage types and dispatch (sparse, dense or fallback) without data."""
    sys.exit(run_command(_infer_stypes, config, overrides, fmt, backward, batch_size))


def _synthetic_options(command):
    """gen-data's options, generated from the schema (:class:`~.io.synthetic_options.SyntheticOptions`)."""
    from .cli_schema import options_from_schema
    from .io.synthetic_options import SyntheticOptions

    def holder():
        pass

    options = options_from_schema(SyntheticOptions, flags={"zero_based": "--zero-based/--one-based"})(holder)
    command.params[:0] = reversed(options.__click_params__)  # click's order: the decorators' top first


class _LazyOptionsCommand(click.Command):
    """A command whose options are added on first use (its help, its parsing), not when ``sparsetrain``
    starts: ``add_options(command)`` is a decorator adding them (it imports what they are made from)."""

    def __init__(self, *args, add_options=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._add_options = add_options

    def get_params(self, ctx):
        if self._add_options is not None:
            add, self._add_options = self._add_options, None
            add(self)
        return super().get_params(ctx)


@main.command("gen-data", cls=_LazyOptionsCommand, add_options=_synthetic_options,
              short_help="Write synthetic LibSVM or Criteo-like TSV data.")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="File to write; the true "
              "weights (libsvm) or the planted model (csv) are written beside it.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def gen_data(out, force, quiet, **options):
    """Write synthetic data in chunks: LibSVM (the seed's y = X·[1..D]) with its true weights, or
    (--format csv) a Criteo-like TSV with a planted logistic model.

    \b
      sparsetrain gen-data --rows 1000 --features 100 --density 0.01 --out data/x.libsvm
      sparsetrain gen-data --format csv --rows 100000 --task binary --cardinality zipf --out clicks.tsv
    """
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = {k for k in options if ctx.get_parameter_source(k) not in (ParameterSource.DEFAULT,
                                                                       ParameterSource.DEFAULT_MAP)}
    sys.exit(run_command(_gen_data, options, out, quiet, force, given))


_EPOCH_HELP = ("Use checkpoint N of a run directory (model-000N.params, written after N epochs; default: the "
               "best epoch marked in checkpoint.json, else the last).")
_LAST_HELP = "Use the run's last checkpoint instead of its best one."
_DATA = click.Path(exists=True, dir_okay=False, allow_dash=True)


@main.command(short_help="Write a trained model's predictions for DATA.")
@click.argument("model", type=click.Path())
@click.argument("data", type=_DATA)
@click.option("--out", type=click.Path(dir_okay=False, allow_dash=True), help="Write the predictions here "
              "(default or '-': stdout).")
@click.option("--format", "fmt", type=click.Choice(["csv", "tsv", "npy"]), help="Output format (default: from "
              "--out's extension, else csv): a header row, then row, label, prediction (the score before the "
              "output's link: the value for regression, the log-odds for logistic, one logit per class for "
              "softmax), and for classifiers probability (one per class for softmax) and class.")
@click.option("--epoch", type=click.IntRange(min=1), help=_EPOCH_HELP)
@click.option("--last", is_flag=True, help=_LAST_HELP)
def predict(model, data, out, fmt, epoch, last):
    """Predict DATA (in the run's data format: LibSVM, CSV/TSV or Vowpal Wabbit; '-' reads stdin) with
    MODEL: a run directory, a config (its run directory) or a checkpoint prefix."""
    sys.exit(run_command(_predict, model, data, out, fmt, epoch, last))


@main.command(short_help="Print a trained model's metrics on DATA.")
@click.argument("model", type=click.Path())
@click.argument("data", type=_DATA)
@click.option("--metric", "metrics", multiple=True, help="Metric to compute: mse, rmse, mae, accuracy, "
              "cross-entropy (ce), log_loss or auc (repeatable; default: the run's train.metrics).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
@click.option("--epoch", type=click.IntRange(min=1), help=_EPOCH_HELP)
@click.option("--last", is_flag=True, help=_LAST_HELP)
def evaluate(model, data, metrics, as_json, epoch, last):
    """Score MODEL (run directory, config or checkpoint prefix) on DATA (in the run's data format:
    LibSVM, CSV/TSV or Vowpal Wabbit; '-' reads stdin) and print the metrics."""
    sys.exit(run_command(_evaluate, model, data, metrics, as_json, epoch, last))


main.add_command(init_command)
main.add_command(export_command)
main.add_command(plot_command)


if __name__ == "__main__":
    main()
