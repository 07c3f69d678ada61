"""Streamed epochs on the compiled engine: parsed chunks feed the same epoch kernels and
generated plans as an in-memory epoch.

A streaming iterator (``LibSVMIter``, which also reads CSV and Vowpal Wabbit files) hands an
epoch over as pieces (``epoch_pieces()``): runs of whole batches over the rows of one parsed
chunk, in the ``epoch_rows`` form of an in-memory iterator, with the batches that span two
chunks (and a padded, short or rolled-over last batch) cut exactly as batch-by-batch iteration
cuts them. So the same batches give the same parameters as in memory. Each piece runs through
the in-memory epoch of the engine (``run_piece``); the parser threads parse the chunks ahead
(io/pipeline.py) and a second thread here builds the next pieces, while the kernel trains on
the current one. Memory stays bounded by a few chunks and the model.
"""
from __future__ import annotations

import queue
import threading
import time

from ...base import NonFiniteError
from ...io.pipeline import help_until, training, wake
from ..base import EpochStats, Unsupported

__all__ = ["iterator_unsupported", "run_epoch", "streams"]

#: What the run header adds for a streamed epoch.
HEADER = "streamed: the next chunks parse while this one trains"

#: Pieces built ahead of the one training (each holds at most a parsed chunk's rows).
PREFETCH = 2


def streams(train_data) -> bool:
    """Whether ``train_data`` hands its epochs over as pieces (a streaming iterator)."""
    return hasattr(train_data, "epoch_pieces")


def iterator_unsupported(train_data, data_names, ids: bool = False) -> Unsupported | None:
    """What in ``train_data`` keeps a model whose data inputs are ``data_names`` off the compiled
    engine, or None: it must hand over whole epochs (``epoch_rows``) or pieces of them
    (``epoch_pieces``), with the inputs as csr (``ids``: Embedding's ids, dense or csr)."""
    if train_data is None:
        return None
    if streams(train_data):
        provided = {d.name for d in train_data.provide_data}  # a streaming iterator's data are csr
        missing = [x for x in data_names if x not in provided]
        return Unsupported("data", missing[0], "is not an input of the iterator") if missing else None
    if not hasattr(train_data, "epoch_rows"):
        return Unsupported("data", type(train_data).__name__,
                           "cannot hand over whole epochs (use NDArrayIter, LibSVMIter or data.cache: memory)")
    held = dict(getattr(train_data, "data", []))
    for x in data_names:
        if x not in held or (held[x].stype != "csr" and not (ids and held[x].stype == "default")):
            return Unsupported("data", x, "is not held as csr by the iterator")
    return None


class _Prefetch:
    """Iterate ``items`` on a daemon thread, ``depth`` items ahead; errors arrive in order."""

    _END = object()

    def __init__(self, items, depth: int = PREFETCH):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="sparsetrain-stream", daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                wake()  # the consumer may be parsing or asleep in help_until
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for item in self._items:
                if not self._put((True, item)):
                    return
            self._put((True, self._END))
        except BaseException as e:  # handed to the consumer, raised there
            self._put((False, e))
        finally:
            close = getattr(self._items, "close", None)
            if close is not None and self._stop.is_set():
                close()

    def __iter__(self):
        return self

    def __next__(self):
        help_until(lambda: not self._queue.empty())  # waiting for a piece, this thread parses chunks ahead
        ok, item = self._queue.get()
        if not ok:
            self._stop.set()
            raise item
        if item is self._END:
            self._stop.set()
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the producer (the iterator it reads is closed on its thread) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._thread.join()


def _shifted(e: NonFiniteError, epoch: int, batches_before: int) -> NonFiniteError:
    """``e`` (raised for a piece) with its batch counted from the start of the epoch."""
    if e.batch is None or not batches_before:
        return e
    batch = e.batch + batches_before
    text = str(e).replace(f"epoch {epoch} batch {e.batch}", f"epoch {epoch} batch {batch}")
    return NonFiniteError(text, epoch=e.epoch, batch=batch)


def run_epoch(train_data, run_piece, batch_end_callback=None, epoch: int = 0, threads: int = 1) -> EpochStats:
    """One streamed epoch of ``train_data`` (an iterator with ``epoch_pieces``).

    ``run_piece(piece, batch_end_callback, last)`` trains one piece as an in-memory epoch and
    returns its :class:`~..base.EpochStats` (``last``: the epoch's last piece, after which the
    parameters are checked for NaN/inf, as after an in-memory epoch); ``batch_end_callback(samples)``
    receives the samples done in the whole epoch so far; ``threads``: how many threads train a piece
    (``train.threads``), the cores the parser threads leave to training while a piece trains."""
    start = time.perf_counter()
    train_data.reset()
    samples = batches = 0
    waited = 0.0
    # the parser threads leave the training threads their cores all epoch: between pieces this thread
    # parses the next chunks itself (_Prefetch), so two cores have two busy threads, not three
    with training(threads):
        pieces = _Prefetch(train_data.epoch_pieces())
        try:
            t0 = time.perf_counter()
            piece = next(pieces, None)
            while piece is not None:
                following = next(pieces, None)  # known before training: whether this piece ends the epoch
                waited += time.perf_counter() - t0
                callback = None
                if batch_end_callback is not None:
                    def callback(n, before=samples):
                        batch_end_callback(before + n)
                try:
                    stats = run_piece(piece, callback, following is None)
                except NonFiniteError as e:
                    raise _shifted(e, epoch, batches) from None
                samples += stats.samples
                batches += stats.batches
                t0 = time.perf_counter()
                piece = following
        finally:
            pieces.close()
    return EpochStats(samples, batches, time.perf_counter() - start, waited, "compiled")
