"""How ``sparsetrain fit`` shows a run: the status line for slow steps (loading, compiling), the
progress bar and epoch lines (a trainer reporter), and the final table. rich loads inside the
functions that draw, so importing this module costs what :mod:`sparsetrain.cli` may pay at startup."""
from __future__ import annotations

import contextlib
import threading
import time

import click


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _stderr_console(quiet: bool):
    from rich.console import Console

    # markup off: what goes to stderr is plain text, and config paths such as
    # ``data.label_values: [negative, positive]`` must not be read as rich's ``[style]`` tags
    return Console(stderr=True, quiet=quiet, highlight=False, soft_wrap=True, markup=False)


# -- fit ------------------------------------------------------------------------------------------------

COMPILING = "compiling kernels (one time)…"
BUSY_AFTER = 1.0  # seconds before a slow step (loading a file) shows its status line


class StatusLine:
    """One status line on stderr for slow steps before or between epochs: a rich spinner on a terminal,
    otherwise a plain line (each text once). Steps nest (a compilation while a file loads): the
    innermost is shown. Thread-safe: numba reports compilations from whichever thread compiles."""

    def __init__(self, console, spinner: bool):
        self.console = console
        self.spinner = spinner
        self._texts: list[str] = []
        self._status = None
        self._printed: set[str] = set()
        self._lock = threading.RLock()

    def push(self, text: str) -> None:
        with self._lock:
            self._texts.append(text)
            self._show()

    def pop(self, text: str) -> None:
        with self._lock:
            if text in self._texts:
                del self._texts[len(self._texts) - 1 - self._texts[::-1].index(text)]
            self._show()

    @property
    def active(self) -> bool:
        return bool(self._texts)

    def clear(self) -> None:
        with self._lock:
            self._texts.clear()
            self._show()

    def _show(self) -> None:
        if not self._texts:
            if self._status is not None:
                self._status.stop()
                self._status = None
            return
        text = self._texts[-1]
        if not self.spinner:
            if text not in self._printed:
                self._printed.add(text)
                self.console.print(text)
        elif self._status is None:
            self._status = self.console.status(text)
            self._status.start()
        else:
            self._status.update(text)


def eta_text(done: int, total, elapsed: float) -> str:
    """The time left at the rate so far, ``H:MM:SS`` (``-:--:--`` before there is a rate or a total)."""
    if not total or done <= 0 or elapsed <= 0:
        return "-:--:--"
    left = max(0.0, (total - done) * elapsed / done)
    h, rest = divmod(int(round(left)), 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


@contextlib.contextmanager
def busy(status: StatusLine, text: str):
    """``text`` on ``status`` when the block lasts more than :data:`BUSY_AFTER` seconds (a slow step:
    loading a large file, reading one through for ``init``)."""
    timer = threading.Timer(BUSY_AFTER, status.push, (text,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        timer.join()  # a status shown just now is taken down, not left behind
        status.pop(text)


@contextlib.contextmanager
def reading(path, what: str):
    """``"{what} {file} ({size})…"`` on stderr while the data file ``path`` is read through (``init``'s
    look at it, ``predict``'s and ``evaluate``'s scoring), when that lasts more than :data:`BUSY_AFTER`
    seconds; stdin is ``<stdin>``, without a size."""
    import os

    from .io.base import display_name
    from .validation import human_bytes

    err = _stderr_console(False)
    status = StatusLine(err, err.is_terminal)
    size = f" ({human_bytes(os.path.getsize(path))})" if path != "-" and os.path.isfile(path) else ""
    try:
        with busy(status, f"{what} {display_name(path)}{size}…"):
            yield
    finally:
        status.clear()


def _count_column():
    """The bar's ``done/total``: samples, or (a task with the field ``bytes``) bytes as ``1.2/3.4 MB``; nothing
    before the first of an unknown number (not ``0/?`` while a streamed epoch's byte total is on its way)."""
    from rich.progress import DownloadColumn, MofNCompleteColumn, ProgressColumn
    from rich.text import Text

    class Count(ProgressColumn):
        def __init__(self):
            super().__init__()
            self.rows, self.bytes = MofNCompleteColumn(), DownloadColumn()

        def render(self, task):
            if task.total is None and not task.completed:
                return Text("")
            return (self.bytes if task.fields.get("bytes") else self.rows).render(task)

    return Count()


class _FitReporter:
    """Renders ``trainer.train`` events: a progress bar per epoch (stderr), a line per epoch (stdout)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.err = _stderr_console(quiet)
        self.show_bar = not quiet and self.err.is_terminal
        self.wants_batches = self.show_bar
        self._last_draw = 0.0
        self.progress = None
        self.task = None
        self.total = None  # the bar's total: samples, or bytes in a streamed first epoch
        self.bytes_done = None  # bytes trained on in such an epoch (its bar counts them), else None
        self.metrics: list[str] = []
        self.status = StatusLine(self.err, self.show_bar)
        self._paused = None  # the progress bar hidden while a status line shows

    def _bar(self, description: str, total):
        self._stop()
        if not self.show_bar:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        # the ETA is ours (eta_text): rich's drops its speed samples whenever the total changes (a
        # streamed first epoch's bar turns from no total to the file's bytes)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), _count_column(),
                                 TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                 TextColumn("eta {task.fields[eta]}"), console=self.err, transient=True)
        self.progress.start()
        self.total, self.bytes_done = total, None
        self.task = self.progress.add_task(description, total=total, rate="", eta=eta_text(0, total, 0.0),
                                           bytes=False)
        self._t0 = time.perf_counter()

    def _stop(self):
        self._paused = None
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def busy(self, text):
        """``text`` as a status line when the step lasts more than :data:`BUSY_AFTER` seconds."""
        return busy(self.status, text)

    def compile_start(self):
        if self.progress is not None:  # one live display at a time: the bar comes back afterwards
            self.progress.stop()
            self._paused, self.progress = self.progress, None
        self.status.push(COMPILING)

    def compile_end(self, seconds):
        self.status.pop(COMPILING)
        if self._paused is not None and not self.status.active:
            self.progress, self._paused = self._paused, None
            self.progress.start()

    def run_start(self, info):
        self.metrics = info["metrics"]
        if info.get("output_note"):  # said even with --quiet: the run is not where it would have been
            click.echo(info["output_note"], err=True)
        if info["resumed_from"] is not None:  # said even with --quiet: it changes what the log means
            done, more = info["resumed_from"], info["epochs"]
            click.echo(f"resuming from epoch {done} ({info['output_dir']})"
                       + (f"; it has trained its {more} epochs (train.epochs): nothing to train, give "
                          "--epochs N to train on" if done == more else
                          f"; it has trained {done} epochs, more than train.epochs ({more}): nothing to train, "
                          f"give --epochs N (above {done}) to train on" if done > more else ""), err=True)
        self.err.print(f"engine {info['engine']} ({info['engine_reason']})")
        if info.get("threads"):
            self.err.print(f"threads {info['threads']}")

    def generate_start(self, path, rows):
        self.err.print(f"generating {rows} rows into {path}")
        self._bar("gen-data", rows)

    def generate_progress(self, rows_done, *_):
        if self.progress is not None:
            self.progress.update(self.task, completed=rows_done)

    def generate_end(self, result):
        self._stop()
        self.err.print(_describe_generated(result))

    def stypes(self, lines):
        for line in lines:  # asked for explicitly: printed even with --quiet
            click.echo(line, err=True)

    def epoch_start(self, epoch, total):
        self._bar(f"epoch {epoch}", total)

    def epoch_bytes(self, done, total):
        first = self.bytes_done is None
        self.total, self.bytes_done = total, done
        if self.progress is not None:
            self.progress.update(self.task, total=total, bytes=True)
            if first:  # said just after epoch_start drew the bar without a total: redraw it now
                self.progress.refresh()

    def batch_end(self, samples):
        now = time.perf_counter()
        if self.progress is not None and now - self._last_draw > 0.05:
            self._last_draw = now
            elapsed = max(now - self._t0, 1e-9)
            done = samples if self.bytes_done is None else self.bytes_done
            self.progress.update(self.task, completed=done, rate=f"{samples / elapsed:,.0f} samples/s",
                                 eta=eta_text(done, self.total, elapsed))

    def epoch_end(self, record):
        from .trainer import record_metrics

        self._stop()
        parts = [f"epoch {record['epoch']}"]
        parts += [f"{k} {_fmt(v)}" for k, v in record_metrics(record).items()]
        rate = record["samples"] / record["seconds"] if record["seconds"] > 0 else float("inf")
        parts.append(f"samples/s {rate:,.0f}")
        parts.append(f"time {record['seconds']:.3f}s")
        if record.get("compile_seconds"):
            parts.append(f"compile {record['compile_seconds']:.1f}s")
        click.echo("  ".join(parts))

    def note(self, text):
        self.err.print(text)

    def stopped_early(self, text):  # said even with --quiet: the epoch lines end before train.epochs
        click.echo(text, err=True)

    def close(self):
        self._stop()
        self.status.clear()


def _final_table(result):
    from rich.markup import escape
    from rich.table import Table

    from .trainer import record_metrics

    n = len(result.history)
    table = Table(title=f"{n} epoch{'' if n == 1 else 's'}, engine {result.engine}",
                  caption=f"run directory: {escape(str(result.output_dir))}")  # ('runs/[x]' is no markup)
    table.add_column("metric")
    table.add_column("final", justify="right")
    table.add_column("best", justify="right")
    table.add_column("target", justify="right")
    best, targets = result.best, result.target_status()
    for key, value in record_metrics(result.final).items():
        target = ""
        if key in targets:
            relation, want, met = targets[key]
            target = f"{relation} {want:g} " + ("[green]met[/green]" if met else "[red]missed[/red]")
        table.add_row(key, _fmt(value), _fmt(best[key]), target)
    seconds = sum(r["seconds"] for r in result.history)
    samples = sum(r["samples"] for r in result.history)
    table.add_row("time", f"{seconds:.3f}s", "", "")
    table.add_row("samples/s", f"{samples / seconds:,.0f}" if seconds > 0 else "-", "", "")
    compiled = sum(r.get("compile_seconds", 0.0) for r in result.history)
    if compiled:
        table.add_row("compile (one time)", f"{compiled:.1f}s", "", "")
    return table


def _describe_generated(result) -> str:
    from .validation import human_bytes

    if result.format == "csv":
        text = (f"wrote {result.path}: {result.rows} rows, {result.numeric} numeric + {result.categorical} "
                f"categorical columns, {human_bytes(result.bytes)}; planted model in {result.weights_path}")
        if result.planted_log_loss is not None:
            text += f" (its log-loss on these rows: {result.planted_log_loss:.4f})"
        return text
    text = (f"wrote {result.path}: {result.rows} rows, {result.features} features, {result.nnz} non-zeros, "
            f"{human_bytes(result.bytes)}")
    if getattr(result, "weights_path", None):
        text += f"; true weights in {result.weights_path}"
    return text
