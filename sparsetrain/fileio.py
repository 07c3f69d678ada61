"""Atomic file writes: a reader (or a killed run) never sees a half-written file.

:func:`open_atomic` is the one writer: the content goes to a temporary file in the target's
directory (compressed when the name ends in ``.gz`` or ``.bz2``), which is renamed into place
only when the ``with`` block ends without an error; on any error it is removed. Failures are
:class:`~sparsetrain.base.OutputError` naming the path asked for (never the temporary name):
a missing directory, a full disk, no permission. :func:`write_atomic` writes a payload (:func:`write_changed`:
unless the file holds it already), :func:`write_npz` an uncompressed ``.npz`` of arrays (checkpoints)
straight into the file. :class:`Syncs` lets several synced writes wait for the disk at once.

A symbolic link is followed (the file it names is replaced; the link stays), and a target that
is not a regular file — a device such as ``/dev/stdout`` or ``/dev/null``, a named pipe
(``--out >(gzip > p.gz)``) — is written in place: renaming a file over it would replace the
device or pipe itself (as root, ``/dev/stdout`` for every process) and the output would never
reach its reader.
"""
from __future__ import annotations

import bz2
import contextlib
import errno
import gzip
import io
import os
import socket
import stat
import struct
import sys
import tempfile
import threading
import zipfile
import zlib

import numpy as np

from .base import ConfigError, OutputError

# What numpy/zipfile raise on a damaged .npz (a flipped bit may even name an unknown compression
# method): the readers of .params and .states files turn these into one line naming the file.
DAMAGED_NPZ_ERRORS = (OSError, ValueError, EOFError, OverflowError, NotImplementedError, zipfile.BadZipFile,
                      zlib.error, struct.error)

__all__ = ["Syncs", "directories_for", "open_atomic", "write_atomic", "write_changed", "write_npz", "write_stdout"]


def refuse_to_replace(path, force: bool) -> None:
    """A command's ``--out`` file that exists is replaced only with ``--force`` (``init``, ``gen-data``)."""
    if not force and os.path.exists(path):
        raise ConfigError(f"--out: {os.fspath(path)} exists; pass --force to replace it")


@contextlib.contextmanager
def directories_for(path):
    """The missing directories of ``path``'s directory, made for the block (``mkdir -p``; a failure is an
    ``OutputError`` naming ``path``) and removed again while empty if the block fails: a command's output
    (``gen-data --out new/x.libsvm``, as ``predict``/``export``/``init --out`` and a run directory)."""
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    made = []
    parent = directory
    while not os.path.isdir(parent) and parent != os.path.dirname(parent):
        made.append(parent)
        parent = os.path.dirname(parent)
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise OutputError(e.errno, f"cannot create the directory {directory} ({e.strerror or e})", os.fspath(path)) \
            from None
    try:
        yield
    except BaseException:
        for d in made:  # (deepest first)
            try:
                os.rmdir(d)
            except OSError:
                break
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


def _output_error(e: OSError, path: str) -> OutputError:
    reason = "no space left on device" if e.errno == errno.ENOSPC else (e.strerror or str(e))
    return OutputError(e.errno, f"cannot write ({reason})", path)


class _Output:
    """The file :func:`open_atomic` yields: a call that fails to write (``write``, or ``flush``/``seek``
    writing the buffer: np.savez's zip writer calls them) is an OutputError naming the path; an
    operation the file does not support stays ``io.UnsupportedOperation`` (callers test with it)."""

    def __init__(self, f, path: str):
        self._f = f
        self._path = path

    def __getattr__(self, name):  # (only for a name not found on the instance: a method wrapped once, kept)
        attr = getattr(self._f, name)
        if not callable(attr):
            return attr  # (not kept: e.g. ``closed`` changes)

        def call(*args, **kwargs):
            try:
                return attr(*args, **kwargs)
            except io.UnsupportedOperation:
                raise
            except OSError as e:
                raise _output_error(e, self._path) from e

        self.__dict__[name] = call
        return call


def _compressor(raw, path: str, compress: bool):
    if compress and path.endswith(".gz"):
        return gzip.GzipFile(filename=os.path.basename(path)[:-3], mode="wb", compresslevel=6, fileobj=raw, mtime=0)
    if compress and path.endswith(".bz2"):
        return bz2.BZ2File(raw, "wb")
    return raw


@contextlib.contextmanager
def open_atomic(path, *, compress: bool = True, make_dirs: bool = False, fsync: bool = False):
    """Open ``path`` for writing bytes, atomically (see the module docstring).

    compress: a name ending in ``.gz`` (gzip level 6) or ``.bz2`` is compressed.
    make_dirs: create missing directories; otherwise a missing directory is an error.
    fsync: flush the data to the disk before the rename (durable across a power cut).
    """
    path = os.fspath(path)
    if _not_a_regular_file(path):
        with _open_in_place(path, compress) as f:
            yield f
        return
    if path.endswith((os.sep, os.altsep or os.sep)):  # ("out/" of no directory: realpath drops the "/", and the
        # rename wrote a file "out", as open("out/", "wb") would not)
        raise _output_error(IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)), path)
    directory = os.path.dirname(os.path.realpath(path))  # a link's target is replaced, not the link
    if make_dirs:
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as e:
            raise _output_error(e, path) from None
    elif not os.path.isdir(directory):
        raise OutputError(errno.ENOENT, f"cannot write: the directory {directory} does not exist", path)
    try:
        fd, tmp = _temporary(path, directory)
    except OSError as e:
        raise _output_error(e, path) from None
    try:
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; these are ordinary outputs
        except OSError as e:
            os.close(fd)
            raise _output_error(e, path) from e
        raw = os.fdopen(fd, "wb")
        try:
            f = _compressor(raw, path, compress)  # (gzip writes its header here)
        except OSError as e:
            raw.close()
            raise _output_error(e, path) from e

        def finish():
            raw.flush()
            if fsync:
                os.fsync(raw.fileno())
            raw.close()
            os.replace(tmp, os.path.realpath(path))

        syncs = getattr(_deferring, "syncs", None) if fsync else None
        if syncs is not None:  # the content is written now (a full disk says so now), the fsync and rename later
            def finish_later():
                try:
                    finish()
                except BaseException:
                    with contextlib.suppress(OSError):
                        raw.close()
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise

            def hand_off():
                raw.flush()
                try:
                    syncs.start(finish_later, path)
                except BaseException:  # (no thread: the file is not finished; its temporary goes below)
                    raw.close()
                    raise

        with _writing(f, raw, path, finish if syncs is None else hand_off) as out:
            yield out
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _host_tag(name: str) -> str:
    """This machine in a temporary file's name: its host name (shortened, no dots: they end a name's parts)
    and a digest of the whole name, so that two hosts whose shortened names agree (``node-a.x`` and
    ``node-a_x``, or long names alike in their first characters) never take each other's files for theirs."""
    return f"{name[:24].replace('.', '_') or 'host'}_{zlib.crc32(name.encode()):08x}"


_HOST = _host_tag(socket.gethostname())


def _temporary(path: str, directory: str) -> tuple[int, str]:
    """A new temporary file for ``path`` in ``directory`` (``.tmp-NAME.HOST-PID.XXXXXXXX``), after removing
    those that processes of this machine which are gone left for the same name: a SIGKILL, the OOM killer
    (nothing ran to remove them; a gen-data killed so left its 250 MB beside the output for good). Another
    machine's (a shared file system) and a live process's are left alone."""
    prefix = f".tmp-{os.path.basename(path)[:80]}.{_HOST}-"
    with contextlib.suppress(OSError), os.scandir(directory) as entries:
        for entry in entries:
            pid = entry.name[len(prefix):].split(".", 1)[0] if entry.name.startswith(prefix) else ""
            if pid.isdigit() and not _running(int(pid)):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
    return tempfile.mkstemp(prefix=f"{prefix}{os.getpid()}.", dir=directory)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # (signal 0: only asks whether the process exists)
    except ProcessLookupError:
        return False
    except OSError:  # another user's
        pass
    return True


def _not_a_regular_file(path: str) -> bool:
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)  # (follows links)
    except OSError:
        return False  # nothing there yet (or unreachable: the write says why)


@contextlib.contextmanager
def _open_in_place(path: str, compress: bool):
    """A device, pipe or directory at ``path``, opened for writing as it is (see the module docstring)."""
    try:
        raw = open(path, "wb")
        f = _compressor(raw, path, compress)
    except OSError as e:
        raise _output_error(e, path) from None
    with _writing(f, raw, path, raw.close) as out:
        yield out


@contextlib.contextmanager
def _writing(f, raw, path: str, finish):
    """The ``with`` block's writes to ``f`` (a compressor over ``raw``, or ``raw`` itself): on an error in
    it both are closed and the error goes on; after it the compressor writes its end and ``finish()``
    completes the file (an ``OSError`` there is an ``OutputError`` naming ``path``)."""
    try:
        yield _Output(f, path)
    except BaseException:
        for h in (f, raw):
            with contextlib.suppress(Exception):
                h.close()
        raise
    try:
        if f is not raw:
            f.close()  # a compressor writes its end; the raw file stays open
        finish()
    except OSError as e:
        with contextlib.suppress(Exception):
            raw.close()
        raise _output_error(e, path) from e


def write_atomic(path: str, payload: bytes | str, *, compress: bool = False) -> None:
    """Write ``payload`` to ``path`` through a temp file in the same directory and ``os.replace``,
    synced to the disk; missing directories are created. ``compress``: as :func:`open_atomic` (a
    user's output named ``.gz``/``.bz2``)."""
    with open_atomic(path, compress=compress, make_dirs=True, fsync=True) as f:
        f.write(payload.encode("utf-8") if isinstance(payload, str) else payload)


def write_changed(path: str, payload: bytes) -> None:
    """:func:`write_atomic`, unless ``path`` holds exactly ``payload`` already (then nothing is written
    or synced: a file there was synced before it was renamed into place). A checkpoint's symbol file,
    the same every epoch."""
    try:
        with open(path, "rb") as f:
            if f.read(len(payload) + 1) == payload:
                return
    except OSError:
        pass
    write_atomic(path, payload)


def write_npz(path: str, arrays: dict) -> None:
    """``np.savez(path, **arrays)`` (uncompressed, each entry with its zip CRC) as :func:`write_atomic`
    writes: atomically, synced to the disk, missing directories created. The archive goes straight into
    the file (no copy of it in memory: a checkpoint's arrays are tens of MB)."""
    with open_atomic(path, compress=False, make_dirs=True, fsync=True) as f:
        np.savez(f, **arrays)


def write_stdout(payload: str | bytes) -> None:
    """Write ``payload`` to stdout whole, or raise (a nameless ``OSError``: the CLI says ``<stdout>``).

    Under ``PYTHONUNBUFFERED`` (``python -u``; container images often set it) stdout's binary layer is
    the raw file, whose ``write`` may take only part of the bytes (a disk that fills up mid-write), and
    the text layer drops the rest without an error: ``predict ... > p.csv`` on a full disk exited 0 with
    the file cut short. So the bytes go to the binary layer until it has taken them all."""
    out = sys.stdout
    buf = getattr(out, "buffer", None)
    if buf is None:  # (a text-only stream put in its place)
        out.write(payload if isinstance(payload, str) else payload.decode(out.encoding or "utf-8"))
        out.flush()
        return
    data = payload if isinstance(payload, bytes) else payload.encode(out.encoding or "utf-8", out.errors or "strict")
    out.flush()
    view = memoryview(data)
    while view:
        n = buf.write(view)
        if not n:  # (None: a non-blocking stdout that takes nothing now)
            raise OSError(errno.EIO, "stdout took no more bytes")
        view = view[n:]
    buf.flush()


_deferring = threading.local()  # .syncs: the Syncs whose deferring() block this thread is in


class Syncs:
    """Waits for the disk, overlapped: each step (an ``fsync``, then a rename into place) runs on a thread of its
    own, so that several files' waits overlap each other and whatever the caller does meanwhile (a run's
    checkpoint archives, its ``metrics.jsonl`` line: one wait instead of one after the other; its ``config.yaml``:
    under its first epoch). :meth:`wait` joins them and raises the first failure, an ``OutputError`` naming its
    file. Inside :meth:`deferring`, the synced atomic writes of this module (:func:`write_atomic`,
    :func:`write_npz`, ``open_atomic(fsync=True)``) write their content in the block as ever, and hand their
    fsync and rename to this object: the file appears (complete and synced) only then, and a failure there
    removes its temporary file, as a failure in the block does."""

    def __init__(self):
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._last: dict[str, threading.Thread] = {}  # path -> the thread of its latest step

    def start(self, step, path: str) -> None:
        """Run ``step()`` on a thread of its own; an ``OSError`` of it is an ``OutputError`` naming ``path``.
        Steps for one path run in the order they were started (two writes of one file: the later one is the
        file), steps for different paths at once."""
        before = self._last.get(path)

        def run():
            if before is not None:
                before.join()
            try:
                step()
            except OSError as e:
                self._errors.append(e if isinstance(e, OutputError) else _output_error(e, path))
            except BaseException as e:  # (kept for wait(): a thread's exception would be printed and lost)
                self._errors.append(e)

        thread = threading.Thread(target=run, name=f"sync {os.path.basename(path)}", daemon=True)
        thread.start()
        self._threads.append(thread)
        self._last[path] = thread

    @contextlib.contextmanager
    def deferring(self):
        """The synced atomic writes in the block finish on this object's threads (see the class docstring)."""
        outer = getattr(_deferring, "syncs", None)
        _deferring.syncs = self
        try:
            yield self
        finally:
            _deferring.syncs = outer

    def wait(self) -> None:
        """Join every step started; then raise the first failure, if any (the others are dropped)."""
        while self._threads:
            self._threads[0].join()
            del self._threads[0]
        self._last.clear()
        if self._errors:
            error, self._errors = self._errors[0], []
            raise error
