"""The data iterators of a config (:func:`make_iter`): the rows in memory, memory-mapped from a disk cache or
streamed, as ``data.cache`` decides (:func:`cache_mode`); stdin read once, its first chunk parsed first for a
binary model's label values, its first epoch trained as its disk cache is written. The files, readers and
label mapping under them: :mod:`sparsetrain.trainer.data`."""
from __future__ import annotations

import os

from .. import labels as labels_mod
from ..base import ConfigError, DataFormatError
from ..config import Config
from ..io.base import STDIN_NAME
from .data import (cached_rows, data_dtype, index_base_unknown, label_map, label_transform, load_memory, reader_for,
                   resolve_binary_values, row_locator, stream_labels)

# Parsed CSR bytes per byte of text (float32 value + int64 index ≈ 12 bytes per ~10-byte LibSVM
# "idx:val " token; a ~6-byte hashed CSV/VW field makes an entry too), and the extra factor for
# compressed files.
_CSR_BYTES_PER_TEXT_BYTE = {"libsvm": 1.3, "csv": 2.0, "vw": 2.0}
_COMPRESSION_FACTOR = {".gz": 4.0, ".bz2": 5.0}


def _estimated_csr_bytes(cfg: Config, paths: list[str]) -> float:
    total = 0.0
    for p in paths:
        ext = os.path.splitext(p)[1].lower()
        total += (os.path.getsize(p) * _CSR_BYTES_PER_TEXT_BYTE[cfg.data.format_of(p)]
                  * _COMPRESSION_FACTOR.get(ext, 1.0))
    return total


def stdin_second_pass(cfg: Config) -> str | None:
    """Why a run over stdin needs its rows more than once (``None``: it does not): several epochs,
    a shuffle of all rows, or a binary model's label values to find (:func:`make_iter` first looks for
    them in the first chunk, :func:`_stdin_first_chunk`)."""
    if cfg.train.epochs != 1:
        return f"train.epochs: {cfg.train.epochs}"
    if cfg.data.shuffle and cfg.data.shuffle_window < 2:
        return "data.shuffle"
    if _binary_values_unknown(cfg):
        return "a binary model's label values"
    if index_base_unknown(cfg, "-"):
        return "data.zero_based: auto"
    return None


def stdin_pass_first(cfg: Config) -> str | None:
    """Why stdin's disk cache (``data.cache: disk``) is written whole before the first epoch trains;
    ``None``: the first epoch trains on the rows as they are written (:class:`_StdinCacheEpochs`)."""
    if cfg.data.shuffle:
        return "data.shuffle draws from every row"
    if index_base_unknown(cfg, "-"):
        return "data.zero_based: auto is decided from every index"
    if cfg.data.last_batch == "roll_over":
        return "data.last_batch: roll_over carries rows into the next epoch"
    if _binary_values_unknown(cfg):  # (last: make_iter first looks for them in the first chunk)
        return _VALUES_FIRST
    return None


_VALUES_FIRST = ("a binary model's label values are found in it: the first chunk does not hold two numbers "
                 "(data.label_values gives them)")


def _binary_values_unknown(cfg: Config) -> bool:
    return labels_mod.task_of(cfg.model.loss.op) == "binary" and cfg.data.label_values is None


class _FirstBlock:
    """A reader whose first block is parsed already (stdin's, for a binary model's label values before
    epoch 1): iterating it yields that block, then the rest; other attributes are the reader's."""

    def __init__(self, reader):
        self._reader, self._blocks = reader, iter(reader)
        self.first = next(self._blocks, None)

    def __iter__(self):
        blocks, self._blocks = self._blocks, None
        if blocks is None:  # a second pass: as the reader refuses it
            yield from self._reader
            return
        first, self.first = self.first, None
        if first is not None:
            yield first
        yield from blocks

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_reader", "_blocks", "first"):
            raise AttributeError(name)
        return getattr(self._reader, name)


def _stdin_first_chunk(cfg: Config, names, streamed: bool) -> _FirstBlock:
    """stdin's streaming reader with its first chunk parsed: a binary model's label values (the config gives
    none) are decided from it when it holds two numbers; a later third value is an error naming its row, as
    in a file. Otherwise they stay unknown, for the disk cache to find, or (``streamed``: nothing holds the
    rows) a ``ConfigError`` saying what to give. (Text labels are mapped by the CSV reader as it parses,
    ahead of this chunk: they need their values before it starts.)"""
    reader = _FirstBlock(reader_for(cfg, "-", streaming=True, names=names))
    if reader.first is None:
        raise DataFormatError(f"{STDIN_NAME}: no data rows")
    found = labels_mod.BinaryValues()
    found.add(reader.first.labels, getattr(reader, "label_names", None))
    text = any(isinstance(v, str) for v in found.seen)
    if found.done and not text:
        cfg.data.label_values = list(found.values(STDIN_NAME))
    elif streamed:
        shown = ", ".join(repr(v) if isinstance(v, str) else f"{v:g}" for v in found.seen)
        raise ConfigError(f"data.label_values: {STDIN_NAME} is streamed once and its first chunk "
                          f"({reader.first.num_rows} rows) has the label value(s) {shown}: give the two, e.g. "
                          f"data.label_values: [{shown if text and found.done else '0, 1'}], or set data.cache: "
                          "disk (or auto) to find them in its disk cache")
    return reader

def cache_mode(cfg: Config, paths: list[str], parts: int = 1, once: bool = False) -> str:
    """``memory``, ``disk`` or ``stream`` for these files under ``data.cache`` (``auto`` keeps what fits
    the budget in memory, else caches it on disk for several epochs or shuffling, else streams it;
    stdin, ``-``, is read once: ``disk`` or ``stream``, and ``auto`` is ``disk`` when the run needs a
    second pass, see :func:`stdin_second_pass`). ``parts``: a process holds one of that many parts of
    the files (a distributed worker), so ``auto`` weighs that share against the budget. ``once``: the
    rows are read once, in file order (one training epoch, no shuffle), so ``auto`` streams them:
    the parse of the next chunk overlaps training on this one, where loading them first would not."""
    mode = cfg.data.cache
    if paths == ["-"]:
        if mode == "auto":
            return "disk" if stdin_second_pass(cfg) else "stream"
        return mode
    if mode == "auto":  # too big for the budget: a disk cache pays back from the second epoch (or to shuffle)
        fits = _estimated_csr_bytes(cfg, paths) / max(1, parts) <= cfg.data.memory_budget_mb * 2**20
        mode = "stream" if once else "memory" if fits else "disk" if cfg.data.shuffle or cfg.train.epochs > 1 \
            else "stream"
    if mode == "stream" and "-" in paths and len(paths) > 1:
        raise ConfigError("data.train: stdin ('-') is read alone, not with other files")
    return mode


class _Teed:
    """A reader whose blocks are written to a :class:`~sparsetrain.io.disk_cache.StdinCache` as they pass;
    every other attribute is the reader's."""

    def __init__(self, reader, cache):
        self._reader, self._cache = reader, cache

    def __iter__(self):
        return self._cache.tee(iter(self._reader))

    def __getattr__(self, name):
        return getattr(self._reader, name)


class _StdinCacheEpochs:
    """stdin with ``data.cache: disk`` whose first epoch trains while its cache is written (nothing needs
    every row first: :func:`stdin_pass_first`): epoch 1 streams the rows as they are parsed (a
    ``LibSVMIter`` over stdin's reader, each block written to the cache as it passes); once the cache is
    complete, the next :meth:`reset` turns to it, memory-mapped, through an ``NDArrayIter`` in file order,
    as a file with ``data.cache: disk`` is read, so the same batches train. To the compiled engine it is a
    stream throughout (``epoch_pieces``: the parsed pieces, then each epoch as one piece of the cache), so
    the engine's choice does not change between epochs. Other attributes are the current iterator's."""

    def __init__(self, first, cache, make_cached):
        self._first, self._cache, self._make_cached = first, cache, make_cached
        self._cached = None
        self.batch_size = first.batch_size

    @property
    def _current(self):
        return self._first if self._cached is None else self._cached

    @property
    def provide_data(self):
        return self._first.provide_data

    @property
    def provide_label(self):
        return self._first.provide_label

    def parses_next_epoch(self) -> bool:
        """Whether the next epoch parses stdin (the cache is not complete yet): ``train.threads: auto``."""
        return self._cached is None and not self._cache.done

    def reset(self) -> None:
        if self._cached is None and self._cache.done:
            self._cached = self._make_cached()  # (an NDArrayIter starts reset)
        else:
            self._current.reset()

    def __iter__(self):
        return self

    def __next__(self):
        return self._current.next()

    def next(self):
        return self._current.next()

    def epoch_pieces(self):
        if self._cached is None:
            yield from self._first.epoch_pieces()
            return
        from ..io.stream_rows import EpochPiece

        it = self._cached
        order, batch_ptr, pad = it.epoch_rows()
        yield EpochPiece(it.data, it.label, order, batch_ptr, pad, it.sample_weight, checked_csr=True)

    def __getattr__(self, name):
        if name.startswith("__") or name in ("_first", "_cached"):
            raise AttributeError(name)
        return getattr(self._current, name)


def _stdin_cache_epochs(cfg: Config, batch_size: int, last_batch: str, note, reader):
    """The training iterator of stdin with ``data.cache: disk`` when its first epoch trains as the cache
    is written (see :class:`_StdinCacheEpochs`), from ``reader``: stdin's streaming reader."""
    from .. import io as st_io
    from ..io.disk_cache import StdinCache

    transform = label_transform(cfg, "-", for_training=True, note=note)
    cache = StdinCache(data_dtype(cfg), cfg.num_features)
    first = _stream_iter(cfg, ["-"], _Teed(reader, cache), transform, batch_size, last_batch, shuffle_window=0)

    def make_cached():
        X, y, weights = cached_rows(cfg, *cache.arrays())
        return st_io.NDArrayIter(X, label_map(cfg).apply(y, row_locator(cfg, "-")), batch_size=batch_size,
                                 shuffle=False, last_batch_handle=last_batch, data_name=cfg.data_name,
                                 label_name=cfg.label_name, sample_weight=weights, checked_csr=True)

    return _StdinCacheEpochs(first, cache, make_cached)


def make_iter(cfg: Config, paths: list[str], *, for_training: bool, batch_size: int | None = None, note=None,
              names=None):
    """A data iterator over ``paths`` (LibSVM, CSV/TSV or Vowpal Wabbit; ``-`` is stdin) as the config
    describes; ``(iter, rows or None)``; ``names``: stdin's :func:`~sparsetrain.trainer.data.stdin_names`,
    collecting the feature names as stdin passes.

    Labels are mapped as :mod:`sparsetrain.labels` says; the training iterator (``for_training``)
    fixes a binary model's ``data.label_values`` from its data when the config does not give them
    and reports the mapping through ``note(text)`` (once); an eval iterator uses the same mapping.
    """
    from .. import io as st_io

    batch_size = batch_size or cfg.data.batch_size
    once = for_training and cfg.train.epochs == 1 and not cfg.data.shuffle
    mode = cache_mode(cfg, paths, once=once)
    stdin = for_training and paths == ["-"]
    stdin_reader = None  # stdin's reader with its first chunk parsed, for a binary model's label values
    if stdin and _binary_values_unknown(cfg) and (mode == "stream" or stdin_pass_first(cfg) == _VALUES_FIRST):
        stdin_reader = _stdin_first_chunk(cfg, names, streamed=cfg.data.cache == "stream")
        mode = cache_mode(cfg, paths, once=once)  # auto: streamed once the first chunk has settled them
    first = stdin_pass_first(cfg) if stdin and mode == "disk" else None
    if stdin and note is not None and mode == "disk":
        from ..io.disk_cache import cache_dir

        # "the first epoch", not "epoch 1": the epoch lines (and "from epoch 1: threads ...") count from 0
        how = ("the first epoch trains on the rows as they are written" if first is None else
               f"written whole before the first epoch trains: {first}")
        note(f"data.cache: auto: stdin is parsed once into a disk cache under {cache_dir()} (for "
             f"{stdin_second_pass(cfg)}; removed when the run ends); {how}" if cfg.data.cache == "auto" else
             f"data.cache: disk: stdin's cache under {cache_dir()} (removed when the run ends): {how}")
    elif stdin and note is not None and cfg.data.cache == "auto":
        note("data.cache: auto: stdin is streamed, read once (one epoch, no second pass; data.cache: disk keeps it)")
    elif for_training and note is not None and cfg.data.cache == "auto" and mode != "memory":
        from ..io.disk_cache import cache_dir
        from ..validation import human_bytes

        if once:
            note("data.cache: auto: one epoch in file order reads the data once: streamed, the parse of each "
                 "chunk overlapping training on the one before (data.cache: memory loads it all first)")
        else:
            where = {"disk": f"parsed once into the disk cache under {cache_dir()} and memory-mapped",
                     "stream": "streamed (read again every epoch)"}[mode]
            note(f"data.cache: auto: the data takes about {human_bytes(_estimated_csr_bytes(cfg, paths))} parsed, "
                 f"more than memory_budget_mb ({cfg.data.memory_budget_mb:g} MiB): {where}")
    last_batch = cfg.data.last_batch if for_training else "pad"
    if stdin and mode == "disk" and first is None:
        return _stdin_cache_epochs(cfg, batch_size, last_batch, note, stdin_reader or reader_for(
            cfg, "-", streaming=True, names=names)), None
    if mode in ("memory", "disk"):
        X, y, weight = load_memory(cfg, paths, for_training, note, cached=mode == "disk", names=names,
                                    stdin_reader=stdin_reader)
        it = st_io.NDArrayIter(X, y, batch_size=batch_size, shuffle=cfg.data.shuffle and for_training,
                               last_batch_handle=last_batch, data_name=cfg.data_name, label_name=cfg.label_name,
                               sample_weight=weight, checked_csr=True)  # the parsers' rows (or their disk cache)
        rows = X.shape[0]
        return it, ((rows // batch_size) * batch_size if last_batch == "discard" else rows)
    reader = None
    if len(paths) > 1 and for_training:  # one stream, file after file
        resolve_binary_values(cfg, (item for p in paths for item in stream_labels(cfg, p)))
    # (before the readers are made: a CSV reader maps text labels with the values)
    transform = label_transform(cfg, paths[0], for_training=for_training, note=note)
    if len(paths) > 1:
        reader = st_io.ChainedReader([reader_for(cfg, p, streaming=True) for p in paths], paths)
    elif paths[0] == "-" or cfg.data.format_of(paths[0]) != "libsvm":
        reader = stdin_reader or reader_for(cfg, paths[0], streaming=True, names=names)
    window = cfg.data.shuffle_window if cfg.data.shuffle and for_training else 0
    return _stream_iter(cfg, paths, reader, transform, batch_size, last_batch, window), None


def _stream_iter(cfg: Config, paths: list[str], reader, transform, batch_size: int, last_batch: str, shuffle_window):
    """The ``LibSVMIter`` streaming ``paths`` (through ``reader``, or a LibSVM file's own); training or eval
    data whose every row has weight 0 is refused as :func:`make_iter` refuses it in memory."""
    from .. import io as st_io

    return st_io.LibSVMIter(data_libsvm=paths[0] if len(paths) == 1 else ", ".join(paths),
                            data_shape=(cfg.num_features,), batch_size=batch_size,
                            round_batch=last_batch != "discard", data_name=cfg.data_name,
                            label_name=cfg.label_name, zero_based=cfg.data.zero_based,
                            last_batch_handle=last_batch, max_line_bytes=cfg.data.max_line_bytes, reader=reader,
                            label_transform=transform, shuffle_window=shuffle_window,
                            refuse_zero_weights=True)
