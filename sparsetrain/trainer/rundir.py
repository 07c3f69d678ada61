"""The run directory a run writes: where it goes, its lock, its files' writes, its checkpoints and how it
resumes (the files and their readers: :mod:`.runfiles`). ``<run>/.lock`` holds the pid of the process using
the directory (while it runs).

Rules: one process per run directory (an exclusive ``flock`` on ``.lock``; the kernel drops it when
the holder dies, so a stale lock never blocks). A directory that holds a run is never cleared by
surprise: a new run there needs ``overwrite``; ``resume`` continues it. With the default naming
(no ``--output``, no ``output:`` key) a new run goes to ``runs/<name>-2/``, ``-3/``, ... instead.
Every file is written atomically; ``checkpoint.json`` is written after the files it points to are
synced to the disk, so a run killed at any moment resumes from a complete checkpoint. The waits for the
disk overlap (:class:`~sparsetrain.fileio.Syncs`): ``config.yaml``'s under the first epoch, a checkpoint's
files' and the epoch's ``metrics.jsonl`` line's with each other. ``train.keep_checkpoints`` bounds
how many epochs' checkpoint files are kept, besides the best epoch's.
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import fcntl
import glob
import json
import math
import os
from contextlib import contextmanager

from ..base import ConfigError, OutputError, SparseTrainError
from ..fileio import Syncs, write_atomic
from ..interrupts import deferred
from .runfiles import (CHECKPOINT_PREFIX, CONFIG_FILE, METRICS_FILE, STATE_FILE, checkpoint_files, has_checkpoint,
                       holds_run, latest_run, load_metrics, load_run_config, load_state)

LOCK_FILE = ".lock"
_TMP_PREFIX = ".tmp-"  # fileio.write_atomic's temporary files


class RunDirectoryLocked(SparseTrainError):
    """Another live process is using the run directory."""


@contextmanager
def writing(path: str):
    """Turn a failed write (disk full, permissions) into one line naming ``path``."""
    try:
        yield
    except OutputError:  # (fileio's writers name their file and reason already)
        raise
    except OSError as e:
        reason = "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        named = e.filename2 or e.filename  # the file that failed, unless it is a temporary one
        if named and not os.path.basename(str(named)).startswith(_TMP_PREFIX):
            path = str(named)
        raise OutputError(e.errno, f"cannot write ({reason})", path) from None



def _not_over_the_config(cfg, path: str) -> None:
    """A ``ConfigError`` when the run would write its ``config.yaml`` over the config file it runs
    (``fit config.yaml --output .``: ``--overwrite`` replaced the user's file, comments and all)."""
    source, target = getattr(cfg, "source", None), os.path.join(path, CONFIG_FILE)
    if source and os.path.exists(source) and os.path.exists(target) and os.path.samefile(source, target):
        raise ConfigError(f"--output {path}: the run writes its config.yaml there, over your config {source}; "
                          "choose another directory with --output")


def _make_run_dir(path: str) -> str | None:
    """Make ``path`` (and its missing parents); the top-most directory this made, ``None`` if it existed."""
    made, parent = None, path
    while parent and not os.path.isdir(parent):
        made, parent = parent, os.path.dirname(parent)
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as e:  # (it said "/proc/x: file not found")
        raise OutputError(e.errno, f"cannot create the run directory ({e.strerror})", path) from None
    return made


def _remove_if_empty(path: str, top: str) -> None:
    """Remove ``path`` and its parents up to ``top`` while they are empty (a run that failed before writing
    anything leaves no ``runs/NAME/`` it made: a mistyped ``--set`` did)."""
    while True:
        try:
            os.rmdir(path)
        except OSError:  # not empty (the run wrote files), or gone
            return
        if path == top:
            return
        path = os.path.dirname(path)



# -- the lock -------------------------------------------------------------------------------------------

def _lock(path: str) -> int | None:
    """An exclusive lock on ``path/.lock`` (the file holds our pid); None when another process has it.

    A Ctrl-C does not split taking the lock from arranging its release (:func:`interrupts.deferred`),
    and a lock still held when the process exits is released then (:func:`_release_held`): an
    interrupt that lands before the caller's ``with`` or ``try`` never leaves a ``.lock`` behind."""
    lock_path = os.path.join(path, LOCK_FILE)
    with deferred():
        while True:
            with writing(lock_path):
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as e:
                os.close(fd)
                if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return None
                raise
            try:  # the holder may have removed the file between our open and our lock: lock the new one
                same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                _held[fd] = (path, os.getpid())
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
            os.close(fd)


_held: dict[int, tuple[str, int]] = {}  # lock fd -> (run directory, pid of the process that took it)


@atexit.register
def _release_held() -> None:
    """The locks this process still holds at exit (not a forked child's: its parent holds them)."""
    for fd, (path, pid) in list(_held.items()):
        if pid == os.getpid():
            _unlock(path, fd)


def _holder(path: str) -> str:
    try:
        with open(os.path.join(path, LOCK_FILE), encoding="utf-8") as f:
            pid = f.read().strip()
    except OSError:
        pid = ""
    return f"pid {pid}" if pid.isdigit() else "another process"


# -- the directory ----------------------------------------------------------------------------------------

class RunDir:
    """A locked run directory. Make one with :meth:`open`; ``close()`` (or ``with``) releases it."""

    def __init__(self, path: str, lock_fd: int, *, fresh: bool, note: str | None = None, keep: int | None = 2,
                 made: str | None = None):
        self.path = path
        self._made = made  # the top-most directory open() made for this run (removed by close() while empty)
        self.prefix = os.path.join(path, CHECKPOINT_PREFIX)
        self.note = note  # why the run went here (default naming), for the header
        self.fresh = fresh
        self.keep = keep
        self.state: dict | None = None  # checkpoint.json when resuming (or restarting)
        self.checkpoint: str | None = None  # the .params file of the last complete checkpoint
        self.best = None  # the run loop's metrics.BestEpoch
        self._lock_fd = lock_fd
        self._begun = False  # begin() wrote config.yaml
        self._syncs = Syncs()  # files written whose fsync (and rename) is still running

    # life cycle ------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, cfg, output_dir: str | None = None, *, resume: bool = False, overwrite: bool = False) -> "RunDir":
        """Choose, lock and check the run directory of ``cfg``.

        ``output_dir`` (else the config's ``output``, else ``runs/<config name>/``). A directory that
        holds a run needs ``resume`` or ``overwrite`` (a ``ConfigError`` naming both and
        ``--output``), except under the default naming, where a new run takes the next free
        ``runs/<name>-K/`` (and ``resume`` the latest one). Leftover temporary files are removed.
        """
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite exclude each other: continue the run or replace it")
        keep = cfg.train.keep_checkpoints
        explicit = output_dir is not None or cfg.output is not None
        base = os.path.abspath(output_dir or cfg.output_dir())
        if explicit or overwrite:
            path, note = base, None
            if not resume:  # (resuming a run from its own saved config.yaml is fine)
                _not_over_the_config(cfg, path)
        elif resume:
            path, note = latest_run(base), None
        else:
            return cls._open_next_free(base, keep)
        made = _make_run_dir(path)
        fd = _lock(path)
        if fd is None:
            raise RunDirectoryLocked(f"{path}: another sparsetrain run ({_holder(path)}) is using this run "
                                     "directory; wait for it or choose another --output")
        run = cls(path, fd, fresh=not resume, note=note, keep=keep, made=made)
        try:
            run._remove_temporaries()
            if resume:
                run.state = run._resume_state()
                run.checkpoint = run.params_path(run.start_epoch)
                run.check_resumable(cfg)
            elif not overwrite and holds_run(path):
                if not os.path.isdir(os.path.dirname(run.prefix)) and not any(  # a run makes checkpoints/ first
                        os.path.exists(os.path.join(path, n)) for n in (METRICS_FILE, STATE_FILE)):
                    raise ConfigError(f"{path} holds a config.yaml that no run wrote (no checkpoints/ beside it): "
                                      "choose another directory with --output (--overwrite would replace it)")
                if not has_checkpoint(path):  # --resume has nothing to continue: do not send the user there
                    raise ConfigError(f"{path} holds a run that stopped before its first checkpoint: start it "
                                      "again with --overwrite, or choose another directory with --output")
                raise ConfigError(f"{path} already holds a run: continue it with --resume, replace it with "
                                  "--overwrite, or choose another directory with --output")
        except BaseException:
            run.close()
            raise
        return run

    @classmethod
    def _open_next_free(cls, base: str, keep) -> "RunDir":
        k = 1
        while True:
            path = base if k == 1 else f"{base}-{k}"
            k += 1
            if holds_run(path):
                continue
            made = _make_run_dir(path)
            fd = _lock(path)
            if fd is None:
                continue
            if holds_run(path):  # another run finished here between our look and our lock
                _unlock(path, fd)
                continue
            note = None if path == base else f"{base} holds an earlier run; this run goes to {path}"
            run = cls(path, fd, fresh=True, note=note, keep=keep, made=made)
            run._remove_temporaries()
            return run

    def close(self) -> None:
        """Release the lock (and remove the lock file, and the directories open() made if nothing was written).
        A new run that ends before its first complete checkpoint (an error, a Ctrl-C, a full disk at the first
        checkpoint) first removes what it wrote since :meth:`begin`: the same command runs again once the cause is
        fixed (a bad line in the first epoch, a distributed run's workers refusing the data, a full disk at the
        first checkpoint's files, left a run that only ``--overwrite`` replaced). Nothing there could be resumed.
        Writes still finishing are waited for first (their failures dropped: see :meth:`__exit__`)."""
        with contextlib.suppress(Exception):
            self._syncs.wait()
        if self._lock_fd is not None:
            if self._begun and self.fresh and not has_checkpoint(self.path):
                self._remove_unfinished()
            _unlock(self.path, self._lock_fd)
            self._lock_fd = None
            if self._made is not None:
                _remove_if_empty(self.path, self._made)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        try:
            if exc_type is None:  # (a run that trained nothing, its config.yaml's write still finishing)
                self.wait_for_writes()
        finally:
            self.close()

    def wait_for_writes(self) -> None:
        """Wait until every file written so far is in place and synced; a failure is an ``OutputError``."""
        self._syncs.wait()

    def _remove_unfinished(self) -> None:
        """What a new run that wrote no checkpoint leaves: its ``config.yaml``, the metrics line of an epoch whose
        checkpoint failed, the checkpoint's symbol file (its ``.params``/``.states`` are gone: :meth:`write_checkpoint`)."""
        checkpoints = os.path.dirname(self.prefix)
        for p in (os.path.join(self.path, METRICS_FILE), os.path.join(self.path, CONFIG_FILE), f"{self.prefix}-symbol.json"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)
        with contextlib.suppress(OSError):  # (unless something else is in it)
            os.rmdir(checkpoints)

    def begin(self, config_yaml: str) -> None:
        """Write ``config.yaml``; a fresh run first removes an earlier run's files (``overwrite``).

        Called once the data is loaded and the model built, so a run that fails before that leaves
        the directory as it was. The file is written here; its fsync and rename run under the first epoch
        (:meth:`wait_for_writes`: before anything else is written, and by a caller that reads it)."""
        if self.fresh:
            earlier = [os.path.join(self.path, n) for n in (STATE_FILE, METRICS_FILE)]
            for p in list(checkpoint_files(self.path)) + earlier:
                if os.path.exists(p):
                    os.unlink(p)
        os.makedirs(os.path.dirname(self.prefix), exist_ok=True)
        path = os.path.join(self.path, CONFIG_FILE)
        with writing(path), self._syncs.deferring():
            write_atomic(path, config_yaml)
        self._begun = True

    # resume ------------------------------------------------------------------------------------------------
    def _resume_state(self) -> dict:
        state = load_state(self.path)
        if state is None:
            found = sorted(checkpoint_files(self.path))
            if found:
                raise SparseTrainError(
                    f"--resume: {os.path.join(self.path, STATE_FILE)} is missing although {found[-1]} exists; "
                    "the run directory is incomplete: restore the file, or start over with --overwrite")
            if holds_run(self.path):  # config.yaml of a run that failed or was stopped in its first epoch
                raise ConfigError(f"--resume: {self.path} has no checkpoint to resume from (its run stopped "
                                  "before the first one); start it again with --overwrite")
            raise ConfigError(f"--resume: {self.path} has no checkpoint to resume from; "
                              "start the run without --resume")
        params = self.params_path(int(state["epoch"]))
        if not os.path.exists(params):
            raise SparseTrainError(f"--resume: {os.path.join(self.path, STATE_FILE)} names {params}, which is "
                                   "missing; restore it, or start over with --overwrite")
        return state

    def check_resumable(self, cfg) -> None:
        """A ``ConfigError`` when ``cfg`` differs from the run's saved config (beyond what may change)."""
        import yaml

        path = os.path.join(self.path, CONFIG_FILE)
        saved = load_run_config(self.path)
        if saved is None:
            return
        now = _comparable(yaml.safe_load(cfg.to_yaml()))
        saved = _with_defaults(_comparable(saved), now)
        if (now.get("data") or {}).get("label_values") is None:  # read from the same training data again
            for doc in (saved, now):
                (doc.get("data") or {}).pop("label_values", None)
        for section in ("data", "model", "optimizer", "train"):
            a, b = saved.get(section), now.get(section)
            if a != b:
                keys = sorted(k for k in set(a or {}) | set(b or {}) if (a or {}).get(k) != (b or {}).get(k))
                key = keys[0] if keys else ""
                there, here = ((doc or {}).get(key) if key else doc for doc in (a, b))
                # (a default that changed since the run began differs too: the run's own config resumes it)
                raise ConfigError(f"--resume: {section}.{key} differs from the run's {path} ({_flow(there)} there, "
                                  f"{_flow(here)} here); resume with the same config (only train.epochs may "
                                  f"change), e.g. the run's own: sparsetrain fit {path} --output {self.path} --resume")

    @property
    def start_epoch(self) -> int:
        return int(self.state["epoch"]) if self.state else 0

    # files ---------------------------------------------------------------------------------------------------
    def params_path(self, epoch: int) -> str:
        return f"{self.prefix}-{epoch:04d}.params"

    def states_path(self, epoch: int) -> str:
        return f"{self.prefix}-{epoch:04d}.states"

    def read_metrics(self, upto: int) -> list[dict]:
        """The records of epochs before ``upto``; later ones (written after the checkpoint) are dropped."""
        path = os.path.join(self.path, METRICS_FILE)
        if not os.path.exists(path):
            return []
        kept = [rec for rec in load_metrics(path) if rec.get("epoch", upto) < upto]
        with writing(path):
            write_atomic(path, "".join(map(_metrics_line, kept)))
        return kept

    def append_metrics(self, record: dict) -> None:
        """Append the epoch's record; its fsync runs beside the checkpoint's (:meth:`write_checkpoint` waits)."""
        path = os.path.join(self.path, METRICS_FILE)
        self.wait_for_writes()
        with writing(path):
            f = open(path, "a", encoding="utf-8")
            try:
                f.write(_metrics_line(record))
                f.flush()
            except BaseException:
                f.close()
                raise

        def sync():
            try:
                os.fsync(f.fileno())
            finally:
                f.close()

        self._syncs.start(sync, path)

    def write_checkpoint(self, epoch: int, save, state: dict) -> str:
        """``save(prefix, epoch)`` writes the checkpoint files (their fsyncs overlap, and the metrics line's);
        once they are synced and in place, ``checkpoint.json`` (``state`` plus ``epoch`` and ``prefix``),
        then older checkpoints beyond ``keep`` are removed. Returns the ``.params`` path. A failure (a full
        disk, Ctrl-C) removes what this checkpoint wrote: files that ``checkpoint.json`` does not name
        would make ``--resume`` call the directory incomplete."""
        path = os.path.join(self.path, STATE_FILE)
        try:
            with writing(self.params_path(epoch)):
                with self._syncs.deferring():
                    save(self.prefix, epoch)
                self.wait_for_writes()
            with writing(path):
                write_atomic(path, json.dumps({"epoch": epoch, "prefix": CHECKPOINT_PREFIX, **state}))
        except BaseException:
            with contextlib.suppress(Exception):  # (none may land after the removal)
                self._syncs.wait()
            for p, e in checkpoint_files(self.path).items():
                if e == epoch:
                    with contextlib.suppress(OSError):
                        os.unlink(p)
            raise
        self.checkpoint = self.params_path(epoch)
        self._prune(epoch, (state.get("best") or {}).get("epoch"))
        return self.checkpoint

    def reload(self) -> None:
        """Take ``checkpoint.json`` as it is now (a restart continues from the last complete checkpoint)."""
        self.state = load_state(self.path)
        self.checkpoint = self.params_path(self.start_epoch) if self.state else None

    def _prune(self, latest: int, best: int | None = None) -> None:
        if not self.keep:
            return
        keep = set(range(latest - self.keep + 1, latest + 1)) | {best}
        for p, epoch in checkpoint_files(self.path).items():
            if epoch not in keep:
                try:
                    os.unlink(p)
                except FileNotFoundError:
                    pass

    def _remove_temporaries(self) -> None:
        """Temporary files of a killed writer (ours: we hold the lock)."""
        for d in (self.path, os.path.dirname(self.prefix)):
            for p in glob.glob(os.path.join(glob.escape(d), _TMP_PREFIX + "*")):
                try:
                    os.unlink(p)
                except OSError:
                    pass


def _unlock(path: str, fd: int) -> None:
    _held.pop(fd, None)
    try:
        os.unlink(os.path.join(path, LOCK_FILE))  # before unlocking: a waiter then locks a fresh file
    except OSError:
        pass
    os.close(fd)


def _metrics_line(record: dict) -> str:
    """An epoch record as one line of JSON: a metric the data left undefined (``eval_auc`` of one class,
    NaN) is ``null`` (NaN is no JSON; ``jq`` and other readers refuse it)."""
    return json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v
                       for k, v in record.items()}) + "\n"


def _with_defaults(saved: dict, now: dict) -> dict:
    """``saved`` (a run's config) with the schema's default for each key ``now`` has and it lacks (a key added
    since the run was written: it trained with that default)."""
    from pydantic import ValidationError

    from ..config.schema import Config

    try:
        filled = Config.model_validate(saved).model_dump(mode="json")
    except ValidationError:  # (a key since removed or changed: the comparison names it)
        return saved

    def fill(a: dict, defaults: dict, b: dict) -> None:
        for key, value in b.items():
            if key not in a and key in defaults:
                a[key] = defaults[key]
            elif isinstance(a.get(key), dict) and isinstance(value, dict) and isinstance(defaults.get(key), dict):
                fill(a[key], defaults[key], value)

    fill(saved, filled, now)
    return saved


def _flow(value, limit: int = 60) -> str:
    """A config value as one short line of YAML (``{uniform: {scale: 0.01}}``, ``zero``, ``null``)."""
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=10**6).strip().removesuffix("...").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _comparable(doc: dict) -> dict:
    doc = json.loads(json.dumps(doc))
    # may change on resume: engines give the same parameters, and a distributed run's checkpoints
    # are ordinary ones (a dist run can be continued on one machine and vice versa); how many
    # checkpoints are kept does not change the result; nor how distributed workers exchange their updates
    for key in ("epochs", "engine", "kvstore", "keep_checkpoints", "plot", "sync_every", "max_staleness", "push_dtype"):
        doc.get("train", {}).pop(key, None)
    doc.pop("output", None)
    return doc
