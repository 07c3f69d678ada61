"""The progress protocol between the run loop and whoever shows it (the CLI renders it)."""
from __future__ import annotations

import contextlib


class Reporter:
    """Receives progress events from ``fit``/``train``; the CLI renders them, the default ignores them.

    ``batch_end`` is only called when ``wants_batches`` is true (a per-batch call costs time).
    """

    wants_batches = False

    def run_start(self, info: dict) -> None:
        """``info``: ``output_dir``, ``engine``, ``engine_reason``, ``resumed_from`` (epoch or None),
        ``epochs``, ``config``, ``metrics`` and ``output_note`` (why the run went to ``output_dir``, or None)."""

    def generate_start(self, path: str, rows: int) -> None: ...

    def generate_progress(self, rows_done: int, *_) -> None: ...

    def generate_end(self, result) -> None: ...

    def stypes(self, lines: list[str]) -> None: ...

    def epoch_start(self, epoch: int, total_samples: int | None) -> None: ...

    def batch_end(self, samples_done: int) -> None: ...

    def epoch_bytes(self, done: int, total: int) -> None:
        """A streamed epoch whose rows are not known yet (the first): ``done`` of the data file's ``total``
        bytes trained on, known upfront; said once before the first batch (``done`` 0), then before each
        ``batch_end``. A front end's bar counts bytes in such an epoch (its rows in the next)."""

    def epoch_end(self, record: dict) -> None: ...

    def note(self, text: str) -> None: ...

    def stopped_early(self, text: str) -> None:
        """Early stopping ended the run before ``train.epochs``: ``text`` says at which epoch and why (a
        front end shows it even where it keeps other notes back: the epoch lines end early)."""
        self.note(text)

    def busy(self, text: str):
        """A context manager around something that may take a while before the first epoch (loading a
        file): a front end shows ``text`` as a status line when it lasts more than about a second."""
        return contextlib.nullcontext()

    def compile_start(self) -> None:
        """numba began compiling kernels (they were not in its on-disk cache)."""

    def compile_end(self, seconds: float) -> None:
        """That compilation ended after ``seconds``."""
