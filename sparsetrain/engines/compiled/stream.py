"""Streamed epochs on the compiled engine: parsed chunks feed the same epoch kernels and
generated plans as an in-memory epoch.

A streaming iterator (``LibSVMIter``, which also reads CSV and Vowpal Wabbit files) hands an
epoch over as pieces (``epoch_pieces()``): runs of whole batches over the rows of one parsed
chunk, in the ``epoch_rows`` form of an in-memory iterator, with the batches that span two
chunks (and a padded, short or rolled-over last batch) cut exactly as batch-by-batch iteration
cuts them. So the same batches give the same parameters as in memory. Each piece runs through
the in-memory epoch of the engine (``run_piece``); the parser threads parse the chunks ahead
(io/pipeline.py) while the kernel trains on the current one, and the training thread, when its
next chunk is not parsed yet, parses waiting chunks itself. Memory stays bounded by a few chunks
and the model.
"""
from __future__ import annotations

import time

from ...base import NonFiniteError
from ...io.pipeline import training
from ..base import EpochStats, Unsupported
from .epoch_loop import check_params

__all__ = ["iterator_unsupported", "run_epoch", "streams"]

#: What the run header adds for a streamed epoch.
HEADER = "streamed: the next chunks parse while this one trains"


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


def _shifted(e: NonFiniteError, epoch: int, batches_before: int) -> NonFiniteError:
    """``e`` (raised for a piece) with its batch counted from the start of the epoch."""
    if e.batch is None or not batches_before:
        return e
    batch = e.batch + batches_before
    text = str(e).replace(f"epoch {epoch} batch {e.batch}", f"epoch {epoch} batch {batch}")
    return NonFiniteError(text, epoch=e.epoch, batch=batch)


def run_epoch(view, train_data, run_piece, params, batch_end_callback=None, epoch: int = 0,
              threads: int = 1) -> EpochStats:
    """One streamed epoch of ``train_data`` (an iterator with ``epoch_pieces``) of the module ``view``.

    ``run_piece(piece, batch_end_callback)`` trains one piece as an in-memory epoch (without the
    parameters' NaN/inf scan) and returns its :class:`~..base.EpochStats`; the trained parameters
    ``params`` (optimizer indices) are scanned after the last piece (:func:`~.epoch_loop.check_params`,
    as an in-memory epoch's end; which piece is the last is known only when the stream ends: a look ahead
    would wait for the next chunk's parse); ``batch_end_callback(samples)``
    receives the samples done in the whole epoch so far; ``threads``: how many threads train a piece
    (``train.threads``), the cores the parser threads leave to training while it trains."""
    start = time.perf_counter()
    train_data.reset()
    samples = batches = 0
    waited = 0.0
    # this thread cuts the pieces itself and, waiting for a chunk, parses the next ones (io/pipeline.py:
    # a training thread parses rather than sleeps) while the parser threads leave the training threads
    # their cores all epoch: two cores, two busy threads
    with training(threads):
        pieces = train_data.epoch_pieces()
        try:
            while True:
                t0 = time.perf_counter()
                piece = next(pieces, None)
                waited += time.perf_counter() - t0
                if piece is None:
                    break
                callback = None
                if batch_end_callback is not None:
                    def callback(n, before=samples):
                        batch_end_callback(before + n)
                try:
                    stats = run_piece(piece, callback)
                except NonFiniteError as e:
                    raise _shifted(e, epoch, batches) from None
                samples += stats.samples
                batches += stats.batches
        finally:
            pieces.close()
    check_params(view, params, epoch, batches)
    return EpochStats(samples, batches, time.perf_counter() - start, waited, "compiled")
