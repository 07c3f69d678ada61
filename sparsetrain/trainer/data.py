"""The training data of a config: generated when asked, kept in memory or streamed, as iterators."""
from __future__ import annotations

import json
import os

import numpy as np

from .. import labels as labels_mod
from ..base import ConfigError, DataFormatError, SparseTrainError
from ..config import Config
from ..fileio import write_atomic
from ..io.base import ALL_WEIGHTS_ZERO, STDIN_NAME, display_name

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
    if _index_base_unknown(cfg, "-"):
        return "data.zero_based: auto"
    return None


def stdin_pass_first(cfg: Config) -> str | None:
    """Why stdin's disk cache (``data.cache: disk``) is written whole before the first epoch trains;
    ``None``: the first epoch trains on the rows as they are written (:class:`_StdinCacheEpochs`)."""
    if cfg.data.shuffle:
        return "data.shuffle draws from every row"
    if _index_base_unknown(cfg, "-"):
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


def _index_base_unknown(cfg: Config, path: str) -> bool:
    return cfg.data.format_of(path) == "libsvm" and cfg.data.zero_based == "auto"



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


def ensure_generated(cfg: Config, reporter) -> None:
    """Write ``data.generate`` data unless the file exists with the same options."""
    from ..io import synthetic

    gen = cfg.data.generate
    path = cfg.resolve(gen.path)
    meta_path = path + ".gen.json"
    wanted = gen.generator_kwargs()
    if os.path.exists(path) and os.path.exists(meta_path):
        try:
            with open(meta_path, encoding="utf-8") as f:
                if json.load(f) == wanted:
                    reporter.note(f"using generated data {path}")
                    return
        except (OSError, ValueError):
            pass
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    reporter.generate_start(path, gen.rows)
    result = synthetic.generate(path, progress=reporter.generate_progress, **wanted)
    reporter.generate_end(result)
    write_atomic(meta_path, json.dumps(wanted, sort_keys=True))


def text_labels(cfg: Config, task: str | None = None) -> labels_mod.TextLabels:
    """What a CSV reader does with text labels under this config (:class:`~sparsetrain.labels.TextLabels`;
    ``task``: ``"any"`` keeps them, for rows scored without their labels)."""
    values = cfg.data.label_values
    return labels_mod.TextLabels(task or labels_mod.task_of(cfg.model.loss.op),
                                 None if values is None else tuple(labels_mod.label_value(v) for v in values))


def reader_for(cfg: Config, path: str, *, streaming: bool = False, labels=None, names=None, chunk_size=None):
    """A block reader of one CSV/TSV, Vowpal Wabbit or LibSVM file (``-``: stdin) as the config describes;
    ``streaming``: for a pass in bounded memory (a streamed epoch, building the disk cache), in the
    chunks of ``io.chunks.STREAM_CHUNK_SIZE``, as ``LibSVMIter`` reads a LibSVM file; ``chunk_size``:
    other chunks; ``names``: a CSV/VW reader's ``chunk_tap`` (see :func:`stdin_names`)."""
    from .. import io as st_io
    from ..io.chunks import DEFAULT_CHUNK_SIZE, STREAM_CHUNK_SIZE

    fmt, dtype = cfg.data.format_of(path), _data_dtype(cfg)
    chunk_size = chunk_size or (STREAM_CHUNK_SIZE if streaming else DEFAULT_CHUNK_SIZE)
    if fmt == "csv":
        from ..io.csv_reader import CSVReader

        reader = CSVReader(path, cfg.csv_schema(), dtype, chunk_size=chunk_size,
                           max_line_bytes=cfg.data.max_line_bytes, labels=labels or text_labels(cfg))
        reader.chunk_tap = names
        return reader
    if fmt == "vw":
        from ..io.vw_reader import VWReader

        reader = VWReader(path, cfg.data.hash_bits, crosses=cfg.data.crosses, dtype=dtype, chunk_size=chunk_size,
                          max_line_bytes=cfg.data.max_line_bytes)
        reader.chunk_tap = names
        return reader
    if path == "-" and cfg.data.zero_based == "auto":
        from ..config.validate import STDIN_ZERO_BASED

        raise ConfigError(STDIN_ZERO_BASED)
    return st_io.LibSVMReader(path, num_features=cfg.num_features, zero_based=cfg.data.zero_based, dtype=dtype,
                              num_labels=1, chunk_size=chunk_size, max_line_bytes=cfg.data.max_line_bytes)


def _unit_is_none(weights):
    """Importance weights that are all 1 (or absent) as ``None``: the unweighted fast path."""
    return None if weights is None or np.all(weights == 1.0) else np.asarray(weights, np.float64)


def _cached_rows(cfg: Config, data, indices, indptr, labels, weights):
    """The arrays of a disk cache (``io/disk_cache.py``) as ``(CSRNDArray, labels, importance weights or
    None)``, as :func:`load_file` returns a file."""
    from ..ndarray import CSRNDArray

    X = CSRNDArray(data, indices, indptr, (len(indptr) - 1, cfg.num_features))
    return X, np.asarray(labels, dtype=_data_dtype(cfg)), _unit_is_none(weights)


def _load_disk_cached(cfg: Config, path: str):
    """One data file as ``(CSRNDArray, labels, importance weights or None)`` memory-mapped from its disk
    cache (``data.cache: disk``)."""
    import dataclasses

    from ..io.disk_cache import load_cached

    fmt, dtype = cfg.data.format_of(path), _data_dtype(cfg)
    options = {"format": fmt, "dtype": dtype, "num_features": cfg.num_features}
    if fmt == "libsvm":
        options["zero_based"] = cfg.data.zero_based
    elif fmt == "csv":
        options["csv"] = json.loads(json.dumps(dataclasses.asdict(cfg.csv_schema()), default=str))
        spec = text_labels(cfg)
        if spec.maps:  # the cache holds the labels mapped to 0/1
            options["label_values"] = list(spec.values)
    else:
        options.update(hash_bits=cfg.data.hash_bits, crosses=[list(c) for c in cfg.data.crosses])
    return _cached_rows(cfg, *load_cached(path, options, lambda: reader_for(cfg, path, streaming=True), dtype,
                                          cfg.num_features))


class _IndexBase:
    """LibSVM on stdin under ``data.zero_based: auto``: the rows pass once, read as zero-based with one more
    column allowed (the largest id of a one-based stream); once they have all passed, the base is decided
    as for a file (:func:`~sparsetrain.io.load_libsvm`: one-based, ids shifted down by one, unless id 0
    occurs), and a zero-based stream with id ``num_features`` is refused, naming its row."""

    def __init__(self, cfg: Config):
        self.cfg, self.num_features = cfg, cfg.num_features
        self.smallest: int | None = None
        self.boundary_row: int | None = None  # the first row with id num_features

    def reader(self):
        from .. import io as st_io
        from ..io.chunks import STREAM_CHUNK_SIZE

        cfg, nf = self.cfg, self.num_features
        return st_io.LibSVMReader("-", num_features=None if nf is None else nf + 1, zero_based=True,
                                  dtype=_data_dtype(cfg), num_labels=1, chunk_size=STREAM_CHUNK_SIZE,
                                  max_line_bytes=cfg.data.max_line_bytes)

    def watch(self, blocks):
        """``blocks``, noting their smallest id and the first row holding id ``num_features``."""
        rows = 0
        for block in blocks:
            if block.nnz:
                ids = block.indices[:block.nnz]
                low = int(ids.min())
                self.smallest = low if self.smallest is None else min(self.smallest, low)
                if self.boundary_row is None and self.num_features is not None and int(ids.max()) == self.num_features:
                    at = int(np.flatnonzero(ids == self.num_features)[0])
                    self.boundary_row = rows + int(np.searchsorted(block.indptr, at, side="right")) - 1
            rows += block.num_rows
            yield block

    def shift(self) -> int:
        """1 for a one-based stream (no id 0), else 0; a zero-based stream's id ``num_features`` is an error."""
        if self.smallest is not None and self.smallest > 0:
            return 1
        if self.boundary_row is not None:
            raise DataFormatError(f"{row_locator(self.cfg, '-')(self.boundary_row)}: feature index "
                                  f"'{self.num_features}' is out of range for num_features={self.num_features} "
                                  "(stdin has index 0, so it is zero-based)")
        return 0


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
        from ..io.libsvm_iter import EpochPiece

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
    cache = StdinCache(_data_dtype(cfg), cfg.num_features)
    first = _stream_iter(cfg, ["-"], _Teed(reader, cache), transform, batch_size, last_batch, shuffle_window=0)

    def make_cached():
        X, y, weights = _cached_rows(cfg, *cache.arrays())
        return st_io.NDArrayIter(X, label_map(cfg).apply(y, row_locator(cfg, "-")), batch_size=batch_size,
                                 shuffle=False, last_batch_handle=last_batch, data_name=cfg.data_name,
                                 label_name=cfg.label_name, sample_weight=weights, checked_csr=True)

    return _StdinCacheEpochs(first, cache, make_cached)


def _load_stdin_cached(cfg: Config, names=None, reader=None):
    """stdin as ``(CSRNDArray, labels, importance weights or None)``, read once into a disk cache private
    to this run (``io/disk_cache.py``: removed when the run ends) and memory-mapped (``names``: see
    :func:`reader_for`; ``reader``: stdin's reader, if made already). Under ``data.zero_based: auto`` (LibSVM)
    stdin is read by :class:`_IndexBase`'s reader, and none can have been made before: :func:`reader_for`
    refuses that stdin, and :func:`make_iter` parses a first chunk (:func:`_stdin_first_chunk`) only when
    :func:`stdin_pass_first` says the label values come first, which auto's reason precedes."""
    from ..io.disk_cache import stdin_cached

    base = None
    if _index_base_unknown(cfg, "-"):
        if reader is not None:
            raise ValueError("_load_stdin_cached: stdin under data.zero_based: auto is read by _IndexBase's own "
                             "reader, not one made before")
        base = _IndexBase(cfg)
        reader = base.reader()
    elif reader is None:
        reader = reader_for(cfg, "-", streaming=True, names=names)
    data, indices, indptr, labels, weights = stdin_cached(
        lambda: reader if base is None else base.watch(reader), _data_dtype(cfg), cfg.num_features,
        index_shift=None if base is None else base.shift)
    names = getattr(reader, "label_names", None)
    if names and np.isnan(labels).any():  # text labels kept as read (their pair was not known): now map them
        _resolve_binary_values(cfg, [(labels, names)])
        spec = text_labels(cfg)
        raw, labels = labels, spec.apply(np.asarray(labels))
        if (labels < 0).any():
            row = int(np.flatnonzero(labels < 0)[0])
            shown = labels_mod.shown_labels(raw[row:row + 1], names)
            value = str(shown[0]) if shown.dtype.kind in "US" else float(shown[0])
            raise DataFormatError(f"{row_locator(cfg, '-')(row)}: {labels_mod.third_value(value, spec.values)}")
    return _cached_rows(cfg, data, indices, indptr, labels, weights)


def _no_data_rows(cfg: Config, path: str) -> DataFormatError:
    """The error for a data file without rows, as the parsers say it of a file read into memory."""
    return DataFormatError(f"{display_name(path)}: no data rows" + (
        " (the file is empty or only has comments)" if path != "-" and cfg.data.format_of(path) == "libsvm" else ""))


def load_file(cfg: Config, path: str, cached: bool = False, labels=None, unlabeled: bool = False, names=None):
    """One data file, whole, as ``(CSRNDArray, labels, importance weights or None)`` (weights: a
    Vowpal Wabbit file's or a CSV ``weight_column``, ``None`` when every row has weight 1); ``cached``: through the disk
    cache; ``labels``: a CSV file's :class:`~sparsetrain.labels.TextLabels` (default: the config's); ``unlabeled``:
    rows without a label (a CSV file without the label column, a VW line starting with ``|``) are read with label
    NaN (``predict``), not refused; ``names``: stdin's :func:`stdin_names`."""
    from .. import io as st_io

    if cached:
        X, y, w = _load_stdin_cached(cfg, names) if path == "-" else _load_disk_cached(cfg, path)
        if X.shape[0] == 0:
            raise _no_data_rows(cfg, path)
        return X, y, w
    fmt = cfg.data.format_of(path)
    if fmt == "csv":
        from ..io.csv_reader import load_csv

        X, y, w = load_csv(path, cfg.csv_schema(), _data_dtype(cfg), max_line_bytes=cfg.data.max_line_bytes,
                           labels=labels or text_labels(cfg), unlabeled=unlabeled)
        return X, y, _unit_is_none(w)
    if fmt == "vw":
        from ..io.vw_reader import load_vw

        X, y, w = load_vw(path, cfg.data.hash_bits, crosses=cfg.data.crosses, dtype=_data_dtype(cfg),
                          max_line_bytes=cfg.data.max_line_bytes, unlabeled=unlabeled)
        return X, y, _unit_is_none(w)
    if path == "-":
        from ..io.text_pipeline import load_blocks

        X, y, w = load_blocks(reader_for(cfg, path), _data_dtype(cfg))
        return X, y, _unit_is_none(w)
    X, y = st_io.load_libsvm(path, num_features=cfg.num_features, zero_based=cfg.data.zero_based,
                             dtype=_data_dtype(cfg), max_line_bytes=cfg.data.max_line_bytes)
    return X, y, None


def _load_memory(cfg: Config, paths: list[str], for_training: bool, note, cached: bool = False, names=None,
                 stdin_reader=None):
    if for_training and any(p != "-" and cfg.data.format_of(p) == "csv" for p in paths):
        # a CSV reader maps text labels as it reads: the two values first (usually from the first chunk)
        _resolve_binary_values(cfg, (item for p in paths for item in _stream_labels(cfg, p)))
    parts, labels, weights = [], [], []
    for p in paths:
        X, y, w = (load_file(cfg, p, cached, names=names) if stdin_reader is None else
                   _load_stdin_cached(cfg, names, stdin_reader))
        parts.append(X)
        labels.append(np.asarray(y))
        weights.append(w)
    if for_training:
        _resolve_binary_values(cfg, ((y, None) for y in labels))
    mapping = label_map(cfg)
    if for_training:
        _say_mapping(mapping, note)
    labels = [mapping.apply(y, row_locator(cfg, p)) for p, y in zip(paths, labels)]
    weight = None
    if any(w is not None for w in weights):
        weight = np.concatenate([np.ones(len(y)) if w is None else w for y, w in zip(labels, weights)])
        if not weight.any():  # (every weighted metric would be 0/0)
            raise DataFormatError(f"{', '.join(map(display_name, paths))}: {ALL_WEIGHTS_ZERO}")
    if len(parts) == 1:
        return parts[0], labels[0], weight
    return _stack_rows(parts, _data_dtype(cfg)), np.concatenate(labels), weight


def _stack_rows(parts, dtype):
    """The rows of several parsed CSR matrices (canonical, of one width) as one, each array copied once
    (no check: scipy's ``vstack`` would scan and convert the indices again)."""
    from ..ndarray import CSRNDArray

    sizes = [x.nnz for x in parts]
    offsets = np.cumsum([0] + sizes[:-1])
    data = np.concatenate([x._data[:n] for x, n in zip(parts, sizes)]).astype(dtype, copy=False)
    indices = np.concatenate([x._indices[:n] for x, n in zip(parts, sizes)])
    indptr = np.concatenate([np.zeros(1, np.int64)] + [x._indptr[1:] + off for x, off in zip(parts, offsets)])
    return CSRNDArray(data, indices, indptr, (len(indptr) - 1, parts[0].shape[1]))


def row_locator(cfg: Config, path: str):
    """``row -> "file:line"`` of a data file's rows (a CSV header line is no row; stdin: the row)."""
    if path == "-":
        return lambda row: f"{STDIN_NAME} (row {row + 1})"
    locate = labels_mod.libsvm_locator(path, cfg.data.max_line_bytes)
    if cfg.data.format_of(path) == "csv" and cfg.data.csv.has_header():
        return lambda row: locate(row + 1)
    return locate


def num_classes(cfg: Config) -> int | None:
    """The number of output columns of the config's model (K of a softmax model); ``None`` if unknown."""
    symbol = cfg.build_symbol()
    try:
        _, out_shapes, _ = symbol.infer_shape_partial(**{cfg.data_name: (1, cfg.num_features)})
    except (SparseTrainError, ValueError):  # the config was validated; an odd graph just skips the range check
        return None
    shape = out_shapes[0] if out_shapes else None
    return int(shape[-1]) if shape and len(shape) > 1 and shape[-1] else None


def label_map(cfg: Config) -> labels_mod.LabelMap:
    """How the config's model reads label values (see :mod:`sparsetrain.labels`): a binary model's
    ``data.label_values`` (resolved from the training data by :func:`make_iter`), a softmax model's
    ``data.label_base`` and number of classes."""
    task = labels_mod.task_of(cfg.model.loss.op)
    if task == "binary" and cfg.data.label_values is None:
        raise ConfigError("data.label_values: not known yet; build the training iterator first (it reads them "
                          "from the training data)")
    if task == "binary" and any(isinstance(labels_mod.label_value(v), str) for v in cfg.data.label_values):
        other = next((p for p in cfg.train_files() if cfg.data.format_of(p) != "csv"), None)
        if other is not None:
            raise ConfigError(f"data.label_values: {cfg.data.label_values}: text label values are read from CSV/TSV "
                              f"data only, and {other} is {cfg.data.format_of(other)} data")
    classes = num_classes(cfg) if task == "multiclass" else None
    return labels_mod.label_map(task, cfg.data.label_values, cfg.data.label_base, classes)


def _resolve_binary_values(cfg: Config, label_arrays) -> None:
    """Fix a binary model's ``data.label_values`` from the training labels, once: ``(labels, names)``
    pairs of arrays or chunks (``names``: a CSV reader's text labels, or None)."""
    if labels_mod.task_of(cfg.model.loss.op) != "binary" or cfg.data.label_values is not None:
        return
    found = labels_mod.BinaryValues()
    for y, names in label_arrays:
        found.add(y, names)
        if found.done:
            break
    cfg.data.label_values = list(found.values("data.train"))


def _say_mapping(mapping, note) -> None:
    text = mapping.note()
    if text and note is not None:
        note(text)


#: The chunks in which a streamed file's labels are first read (a binary model's ``data.label_values``).
LABEL_CHUNK_SIZE = 256 << 10


def _stream_labels(cfg: Config, path: str):
    """The training labels of a streamed file, chunk by chunk (read until two values are seen), as
    ``(labels, names)`` (``names``: the CSV reader's hash -> text of its text labels, else None)."""
    from ..io import LibSVMReader

    if path == "-":
        raise ConfigError("data.label_values: stdin ('-') is streamed once, so a binary model cannot look at its "
                          "labels first: give the two label values, e.g. data.label_values: [0, 1], or set "
                          "data.cache: disk (or auto) to read it once into a disk cache")
    # small chunks on one parser thread: the first rows usually hold both values, and a streamed
    # epoch's chunks (4 MiB, two in flight) would parse ~35k rows into fresh arrays before training starts
    if cfg.data.format_of(path) != "libsvm":
        reader = reader_for(cfg, path, chunk_size=LABEL_CHUNK_SIZE)
        reader.workers = 1
    else:
        reader = LibSVMReader(path, num_features=cfg.num_features, zero_based=cfg.data.zero_based,
                              max_line_bytes=cfg.data.max_line_bytes, chunk_size=LABEL_CHUNK_SIZE)
    rows = 0
    for block in reader:
        rows += block.num_rows
        yield block.labels, getattr(reader, "label_names", None)
    if not rows:  # (not 'no labels to learn from': the file has no rows)
        raise _no_data_rows(cfg, path)


def label_transform(cfg: Config, path: str, *, for_training: bool = True, note=None):
    """The ``label_transform`` of a ``LibSVMIter`` over ``path`` (a training file fixes a binary
    model's label values first, reading it until two values are seen)."""
    if for_training:
        _resolve_binary_values(cfg, _stream_labels(cfg, path))
    mapping = label_map(cfg)
    if for_training:
        _say_mapping(mapping, note)
    if mapping.task == "regression":
        return None
    return lambda y, locate: mapping.apply(y, locate)


def _data_dtype(cfg: Config) -> str:
    v = cfg.model.variables.get(cfg.data_name)
    return (v.dtype if v is not None and v.dtype else "float32")


def make_iter(cfg: Config, paths: list[str], *, for_training: bool, batch_size: int | None = None, note=None,
              names=None):
    """A data iterator over ``paths`` (LibSVM, CSV/TSV or Vowpal Wabbit; ``-`` is stdin) as the config
    describes; ``(iter, rows or None)``; ``names``: stdin's :func:`stdin_names`, collecting the feature
    names as stdin passes.

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
        X, y, weight = _load_memory(cfg, paths, for_training, note, cached=mode == "disk", names=names,
                                    stdin_reader=stdin_reader)
        it = st_io.NDArrayIter(X, y, batch_size=batch_size, shuffle=cfg.data.shuffle and for_training,
                               last_batch_handle=last_batch, data_name=cfg.data_name, label_name=cfg.label_name,
                               sample_weight=weight, checked_csr=True)  # the parsers' rows (or their disk cache)
        rows = X.shape[0]
        return it, ((rows // batch_size) * batch_size if last_batch == "discard" else rows)
    reader = None
    if len(paths) > 1 and for_training:  # one stream, file after file
        _resolve_binary_values(cfg, (item for p in paths for item in _stream_labels(cfg, p)))
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


FEATURE_NAMES_FILE = "feature_names.json"


def stdin_names(cfg: Config):
    """``data.keep_feature_names`` with stdin (``data.train: -``): an ``io.feature_names.KeysTap`` that
    collects the names as stdin's reader parses it (stdin is read once), for :func:`make_iter` and
    then :func:`write_feature_names`; else None."""
    from ..io.feature_names import KeysTap

    if not cfg.data.keep_feature_names or cfg.train_files() != ["-"]:
        return None
    fmt = cfg.data.format_of("-")
    return KeysTap(fmt, cfg.csv_schema() if fmt == "csv" else None, cfg.data.crosses)


def write_feature_names(cfg: Config, run_dir: str, names=None) -> str:
    """``data.keep_feature_names``: the hashed id -> names map of the training files, as
    ``<run_dir>/feature_names.json`` (format: ``io/feature_names.py``; stdin's names: those ``names``,
    its :func:`stdin_names`, collected as it passed)."""
    from ..io import feature_names as fn

    keys: set[str] = set()
    for path in cfg.train_files():
        if path == "-":
            keys |= names.keys
        elif cfg.data.format_of(path) == "csv":
            plan = reader_for(cfg, path).plan()
            keys |= fn.csv_feature_keys(path, cfg.csv_schema(), plan.columns, plan.delimiter)
        else:
            keys |= fn.vw_feature_keys(path, cfg.data.crosses)
    numeric = cfg.data.numeric if cfg.data_format() == "csv" else ()
    doc = fn.feature_names_doc(keys, cfg.data.hash_bits, cfg.num_features, numeric)
    out = os.path.join(run_dir, FEATURE_NAMES_FILE)
    write_atomic(out, json.dumps(doc, ensure_ascii=False))
    return out
