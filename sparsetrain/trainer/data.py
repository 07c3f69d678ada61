"""The training data of a config: generated when asked, its files read whole (or through a disk cache),
their readers for streaming, stdin's disk cache, and their labels mapped; the iterators over them are in
:mod:`sparsetrain.trainer.iterators`."""
from __future__ import annotations

import json
import os

import numpy as np

from .. import labels as labels_mod
from ..base import ConfigError, DataFormatError, SparseTrainError
from ..config import Config
from ..fileio import write_atomic
from ..io.base import ALL_WEIGHTS_ZERO, STDIN_NAME, display_name


def index_base_unknown(cfg: Config, path: str) -> bool:
    return cfg.data.format_of(path) == "libsvm" and cfg.data.zero_based == "auto"


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

    fmt, dtype = cfg.data.format_of(path), data_dtype(cfg)
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


def cached_rows(cfg: Config, data, indices, indptr, labels, weights):
    """The arrays of a disk cache (``io/disk_cache.py``) as ``(CSRNDArray, labels, importance weights or
    None)``, as :func:`load_file` returns a file."""
    from ..ndarray import CSRNDArray

    X = CSRNDArray(data, indices, indptr, (len(indptr) - 1, cfg.num_features))
    return X, np.asarray(labels, dtype=data_dtype(cfg)), _unit_is_none(weights)


def _load_disk_cached(cfg: Config, path: str):
    """One data file as ``(CSRNDArray, labels, importance weights or None)`` memory-mapped from its disk
    cache (``data.cache: disk``)."""
    import dataclasses

    from ..io.disk_cache import load_cached

    fmt, dtype = cfg.data.format_of(path), data_dtype(cfg)
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
    return cached_rows(cfg, *load_cached(path, options, lambda: reader_for(cfg, path, streaming=True), dtype,
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
                                  dtype=data_dtype(cfg), num_labels=1, chunk_size=STREAM_CHUNK_SIZE,
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


def _load_stdin_cached(cfg: Config, names=None, reader=None):
    """stdin as ``(CSRNDArray, labels, importance weights or None)``, read once into a disk cache private
    to this run (``io/disk_cache.py``: removed when the run ends) and memory-mapped (``names``: see
    :func:`reader_for`; ``reader``: stdin's reader, if made already). Under ``data.zero_based: auto`` (LibSVM)
    stdin is read by :class:`_IndexBase`'s reader, and none can have been made before: :func:`reader_for`
    refuses that stdin, and :func:`~sparsetrain.trainer.iterators.make_iter` parses a first chunk
    (:func:`~sparsetrain.trainer.iterators._stdin_first_chunk`) only when
    :func:`~sparsetrain.trainer.iterators.stdin_pass_first` says the label values come first, which auto's reason
    precedes."""
    from ..io.disk_cache import stdin_cached

    base = None
    if index_base_unknown(cfg, "-"):
        if reader is not None:
            raise ValueError("_load_stdin_cached: stdin under data.zero_based: auto is read by _IndexBase's own "
                             "reader, not one made before")
        base = _IndexBase(cfg)
        reader = base.reader()
    elif reader is None:
        reader = reader_for(cfg, "-", streaming=True, names=names)
    data, indices, indptr, labels, weights = stdin_cached(
        lambda: reader if base is None else base.watch(reader), data_dtype(cfg), cfg.num_features,
        index_shift=None if base is None else base.shift)
    names = getattr(reader, "label_names", None)
    if names and np.isnan(labels).any():  # text labels kept as read (their pair was not known): now map them
        resolve_binary_values(cfg, [(labels, names)])
        spec = text_labels(cfg)
        raw, labels = labels, spec.apply(np.asarray(labels))
        if (labels < 0).any():
            row = int(np.flatnonzero(labels < 0)[0])
            shown = labels_mod.shown_labels(raw[row:row + 1], names)
            value = str(shown[0]) if shown.dtype.kind in "US" else float(shown[0])
            raise DataFormatError(f"{row_locator(cfg, '-')(row)}: {labels_mod.third_value(value, spec.values)}")
    return cached_rows(cfg, data, indices, indptr, labels, weights)


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

        X, y, w = load_csv(path, cfg.csv_schema(), data_dtype(cfg), max_line_bytes=cfg.data.max_line_bytes,
                           labels=labels or text_labels(cfg), unlabeled=unlabeled)
        return X, y, _unit_is_none(w)
    if fmt == "vw":
        from ..io.vw_reader import load_vw

        X, y, w = load_vw(path, cfg.data.hash_bits, crosses=cfg.data.crosses, dtype=data_dtype(cfg),
                          max_line_bytes=cfg.data.max_line_bytes, unlabeled=unlabeled)
        return X, y, _unit_is_none(w)
    if path == "-":
        from ..io.text_pipeline import load_blocks

        X, y, w = load_blocks(reader_for(cfg, path), data_dtype(cfg))
        return X, y, _unit_is_none(w)
    X, y = st_io.load_libsvm(path, num_features=cfg.num_features, zero_based=cfg.data.zero_based,
                             dtype=data_dtype(cfg), max_line_bytes=cfg.data.max_line_bytes)
    return X, y, None


def load_memory(cfg: Config, paths: list[str], for_training: bool, note, cached: bool = False, names=None,
                 stdin_reader=None):
    if for_training and any(p != "-" and cfg.data.format_of(p) == "csv" for p in paths):
        # a CSV reader maps text labels as it reads: the two values first (usually from the first chunk)
        resolve_binary_values(cfg, (item for p in paths for item in stream_labels(cfg, p)))
    parts, labels, weights = [], [], []
    for p in paths:
        X, y, w = (load_file(cfg, p, cached, names=names) if stdin_reader is None else
                   _load_stdin_cached(cfg, names, stdin_reader))
        parts.append(X)
        labels.append(np.asarray(y))
        weights.append(w)
    if for_training:
        resolve_binary_values(cfg, ((y, None) for y in labels))
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
    return _stack_rows(parts, data_dtype(cfg)), np.concatenate(labels), weight


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
    ``data.label_values`` (resolved from the training data by :func:`~sparsetrain.trainer.iterators.make_iter`),
    a softmax model's ``data.label_base`` and number of classes."""
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


def resolve_binary_values(cfg: Config, label_arrays) -> None:
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


def stream_labels(cfg: Config, path: str):
    """The training labels of a streamed file, chunk by chunk (read until two values are seen), as
    ``(labels, names)`` (``names``: the CSV reader's hash -> text of its text labels, else None)."""
    from ..io import LibSVMReader

    if path == "-":
        raise ConfigError("data.label_values: stdin ('-') is streamed once, so a binary model cannot look at its "
                          "labels first: give the two label values, e.g. data.label_values: [0, 1], or set "
                          "data.cache: disk (or auto) to read it once into a disk cache")
    # small chunks on one parser thread: the first rows usually hold both values, and a streamed
    # epoch's chunks (8 MiB, two in flight) would parse ~70k rows into fresh arrays before training starts
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
        resolve_binary_values(cfg, stream_labels(cfg, path))
    mapping = label_map(cfg)
    if for_training:
        _say_mapping(mapping, note)
    if mapping.task == "regression":
        return None
    return lambda y, locate: mapping.apply(y, locate)


def data_dtype(cfg: Config) -> str:
    v = cfg.model.variables.get(cfg.data_name)
    return (v.dtype if v is not None and v.dtype else "float32")


FEATURE_NAMES_FILE = "feature_names.json"


def stdin_names(cfg: Config):
    """``data.keep_feature_names`` with stdin (``data.train: -``): an ``io.feature_names.KeysTap`` that
    collects the names as stdin's reader parses it (stdin is read once), for
    :func:`~sparsetrain.trainer.iterators.make_iter` and then :func:`write_feature_names`; else None."""
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
