"""The one chunk pipeline of every text format (LibSVM, CSV/TSV, Vowpal Wabbit).

A :class:`~sparsetrain.io.chunks.ChunkSource` cuts a file (or a byte-range part of it) into
chunks of whole lines; :func:`parse_chunks` hands each chunk to a format's compiled kernel on a
process-wide pool of parser threads (the kernels release the GIL, so parsing runs beside
training) and gives the parsed jobs back in file order, with their byte range and the lines
before them. A pass's first chunk is parsed by the thread that consumes it (it waits for it anyway), the
others by the parser threads; a parse no parser thread has started yet runs on the thread that needs it
next, or on a training thread that waits for its next chunk (a streamed epoch's trainer), rather
than that thread sleeping: fewer threads runnable at once, none idle while a parse waits. While threads train beside them (``training``: a streamed epoch's piece), no more
chunks parse at once than the cores those threads leave (``CORE_SHARE``). Up to ``workers + 1`` chunks are in flight, so memory stays bounded by a few
chunks and their output, whatever the file size.

A format supplies ``run(job)`` (worker thread: allocate the job's arrays, call its kernel, set
``job.lines``) and checks each returned job on the calling thread (file:line messages). The
parsed rows travel on as :class:`ParsedChunk` s: CSR arrays, labels, optional per-row weights
and the chunk's byte range (what a streamed epoch's progress bar counts).
"""
from __future__ import annotations

import collections
import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from ..base import DataFormatError
from .chunks import ChunkSource, populate, release

__all__ = ["BufferPool", "ChunkJob", "ParsedChunk", "cancel", "default_workers", "executor", "parse_chunks",
           "room", "submit", "training"]


def default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


_POOL_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_POOL_PID = 0


def executor(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of parser threads, grown on demand (and made anew in a forked
    child, whose copy of the parent's pool has no threads)."""
    global _POOL, _POOL_SIZE, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_SIZE < workers or _POOL_PID != os.getpid():
            # a smaller pool may still be serving another reader: leave it to finish
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sparsetrain-parse")
            _POOL_SIZE = workers
            _POOL_PID = os.getpid()
        return _POOL


WAITING, RUNNING, DONE, CANCELLED = range(4)


class _Task:
    """One chunk's parse, run by whichever thread claims it first: a parser thread of the pool, the
    pipeline's consumer when it needs the chunk next (instead of sleeping until a parser thread is
    free), or a training thread that would otherwise wait (:meth:`_CoreShare.help_until`: a streamed
    epoch's trainer waiting for its next chunk). A thread claims a parse only when :class:`_CoreShare` lets one more start."""

    __slots__ = ("fn", "job", "workers", "share", "state", "counted", "value", "error", "here")

    def __init__(self, fn, job, workers: int, share: "_CoreShare"):
        self.fn, self.job, self.workers, self.share = fn, job, workers, share
        self.state = WAITING
        self.counted = True  # among the parses CORE_SHARE limits (not a training thread's own)
        self.value = self.error = None
        self.here = False  # offered to no parser thread: its consumer parses it (a pass's first chunk)

    def execute(self) -> None:
        """Run the claimed parse on this thread (errors are kept for :meth:`result`)."""
        value = error = None
        try:
            value = self.fn(self.job)
        except BaseException as e:  # raised by the consumer, in file order
            error = e
        self.share.finish(self, value, error)
        if error is not None and not isinstance(error, Exception):
            raise error  # an interrupt of this thread (a trainer's Ctrl-C) is this thread's too

    def run_claimed(self) -> None:
        """A parser thread's work item: this parse, unless another thread has claimed it meanwhile."""
        if self.share.claim(self, wait=True):
            self.execute()

    def result(self):
        """The parsed job: run here if no thread has started it yet, else waited for (a training thread
        parses the waiting chunks meanwhile: :meth:`_CoreShare.help_until`)."""
        if self.share.trains_here():
            self.share.help_until(lambda: self.state == DONE, first=self)
        elif self.share.any_thread and self.share.claim(self, wait=not self.here, slot=not self.here):
            self.execute()
        self.share.wait_done(self)
        value, error = self.value, self.error
        self.job = self.value = self.error = None  # a parsed chunk's arrays go back to its BufferPool once used
        if error is not None:
            raise error
        return value


class _CoreShare:
    """How many chunk parses may run at once: a reader's workers, but no more than the cores that
    no thread is training on (and at least one). A streamed epoch trains on one thread while the
    parser threads parse ahead; with as many parsers as cores the scheduler time-slices the
    training thread with them (3 runnable threads on 2 cores: the trainer gets about 2/3 of a core,
    and an epoch of the cheaper side still takes as long). While the trainer waits for data, it
    does not count, and every worker parses (the trainer itself among them: :meth:`help_until`).
    The parses waiting for a thread are here too (:class:`_Task`), oldest first."""

    def __init__(self):
        self._cond = threading.Condition()
        self._parsing = 0
        self._training = 0
        self._open: collections.deque = collections.deque()  # tasks submitted, maybe claimed since
        self._local = threading.local()  # .training: this thread is inside training()
        #: whether threads other than the parser threads parse (a consumer its next chunk, a waiting
        #: trainer the oldest waiting one); ``benchmarks/stream.py`` turns it off to compare
        self.any_thread = True
        self.cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def _allowed(self, workers: int) -> int:
        return max(1, min(workers, self.cores - self._training))

    def submit(self, task: _Task) -> None:
        with self._cond:
            self._drop_claimed()
            self._open.append(task)
            self._cond.notify_all()  # a thread in help_until may take it

    def _drop_claimed(self) -> None:
        """Drop the claimed (or cancelled) tasks at the head of the open queue (under the lock)."""
        while self._open and self._open[0].state != WAITING:
            self._open.popleft()

    def claim(self, task: _Task, wait: bool, slot: bool = True) -> bool:
        """Claim ``task`` for this thread once a parse may start; False when another thread has
        claimed it first (or it was cancelled), or, without ``wait``, when no parse may start now.
        Without ``slot``: at once, not counted among the parses allowed (as a waiting trainer's)."""
        with self._cond:
            if not slot and task.state == WAITING:
                task.state = RUNNING
                task.counted = False
                return True
            while task.state == WAITING:
                if self._parsing < self._allowed(task.workers):
                    task.state = RUNNING
                    self._parsing += 1
                    return True
                if not wait:
                    return False
                self._cond.wait()
            return False

    def trains_here(self) -> bool:
        """Whether the calling thread is inside :meth:`training` (a streamed epoch's trainer)."""
        return getattr(self._local, "training", False)

    def help_until(self, ready: Callable[[], bool], first: _Task | None = None) -> None:
        """Until ``ready()``, run ``first`` if no thread has claimed it, else the oldest parse no thread
        has claimed, on this thread, else sleep: a training thread waiting for data (a streamed epoch's
        trainer waiting for its next chunk). It parses on its own core, which :meth:`training` keeps
        from the parser threads, so its parses do not count among those allowed. ``ready`` is called
        under the share's lock; whatever makes it true notifies the share's condition (a finished
        parse does)."""
        while True:
            with self._cond:
                while not ready():
                    self._drop_claimed()
                    if self.any_thread and first is not None and first.state == WAITING:
                        task = first
                    elif self.any_thread and self._open:
                        task = self._open.popleft()
                    else:
                        self._cond.wait()
                        continue
                    task.state = RUNNING
                    task.counted = False
                    break
                else:
                    return
            task.execute()

    def finish(self, task: _Task, value, error) -> None:
        with self._cond:
            task.value, task.error = value, error
            task.state = DONE
            if task.counted:
                self._parsing -= 1
            self._cond.notify_all()

    def wait_done(self, task: _Task) -> None:
        with self._cond:
            while task.state == WAITING or task.state == RUNNING:
                self._cond.wait()

    def cancel(self, tasks) -> None:
        """Cancel the parses of ``tasks`` no thread has claimed and wait for the running ones."""
        with self._cond:
            for task in tasks:
                if task.state == WAITING:
                    task.state = CANCELLED
            while any(task.state == RUNNING for task in tasks):
                self._cond.wait()
            for task in tasks:
                task.job = task.value = task.error = None

    @contextlib.contextmanager
    def training(self, threads: int):
        with self._cond:
            self._training += threads
        outer, self._local.training = self.trains_here(), True
        try:
            yield
        finally:
            self._local.training = outer
            with self._cond:
                self._training -= threads
                self._cond.notify_all()


#: The process's share of cores between parsing and training (``CORE_SHARE.cores``: the cores it
#: counts; ``benchmarks/stream.py`` sets it high to compare with parsers on every core).
CORE_SHARE = _CoreShare()


def training(threads: int = 1):
    """A context in which ``threads`` threads train beside the parser threads (a streamed epoch's
    piece): while inside, as many cores fewer parse (see :class:`_CoreShare`)."""
    return CORE_SHARE.training(threads)


def submit(fn: Callable[[ChunkJob], ChunkJob], job: ChunkJob, workers: int, here: bool = False) -> _Task:
    """Queue the parse ``fn(job)``: a parser thread of the pool runs it, or the thread that asks for its
    :meth:`~_Task.result` first, or a waiting trainer (see :class:`_Task`). ``here``: no parser thread is
    offered it; the thread that asks for its result parses it, at once (a pass's first chunk, which that
    thread waits for anyway: the parser threads parse the next ones meanwhile)."""
    task = _Task(fn, job, workers, CORE_SHARE)
    task.here = here and CORE_SHARE.any_thread
    CORE_SHARE.submit(task)
    if not task.here:
        executor(workers).submit(task.run_claimed)
    return task


def cancel(tasks) -> None:
    """Cancel the parses of ``tasks`` no thread has started and wait for the running ones: a parse must
    not outlive its caller's bytes (a memory-mapped chunk whose file may be rewritten or truncated once
    the caller has returned, which a reader of its pages would die of: SIGBUS)."""
    CORE_SHARE.cancel(tasks)


def _refcount(arrays: tuple, i: int) -> int:
    return sys.getrefcount(arrays[i])


#: What :func:`_refcount` says of an array that only its set (a tuple) refers to.
_REFS_WHEN_FREE = _refcount((np.empty(1),), 0)


ROOM_STEP = 1 << 14  # elements: output room is rounded up to this


def room(n: int) -> int:
    """``n`` elements rounded up to a multiple of :data:`ROOM_STEP`: the parsers size a chunk's
    output arrays by it, so that chunks of about the same size ask a :class:`BufferPool` for the
    same lengths and fit the arrays an earlier chunk used."""
    return -(-int(n) // ROOM_STEP) * ROOM_STEP


class BufferPool:
    """Output arrays of parsed chunks, used again once nothing outside the pool refers to them.

    Streaming parses the whole file again every epoch; fresh arrays for every chunk cost a page
    fault per 4 KiB of output (the OS zeroes each new page), a large share of the parse time.
    A set of arrays is handed out again only when no array, view or batch made from it is alive
    anywhere (its reference counts say so), so a consumer that keeps its blocks (a whole-file
    load, a user holding a batch) is never affected: the pool then allocates new arrays. At most
    ``limit`` sets are kept; the pool is thread-safe.
    """

    def __init__(self, limit: int = 16):
        self.limit = limit
        self._sets: list[tuple] = []
        self._lock = threading.Lock()

    @staticmethod
    def _free(arrays: tuple) -> bool:
        return all(_refcount(arrays, i) == _REFS_WHEN_FREE for i in range(len(arrays)))

    def take(self, spec) -> tuple:
        """Arrays of at least ``n`` elements of ``dtype`` for each ``(n, dtype)`` of ``spec``
        (their contents are whatever a previous chunk left there), as a list: holding it marks
        them in use."""
        spec = [(int(n), np.dtype(dt)) for n, dt in spec]
        with self._lock:
            spare = None  # a free set too small for this chunk: replaced by the new one
            for k, arrays in enumerate(self._sets):
                if not self._free(arrays):
                    continue
                if all(len(a) >= n and a.dtype == dt for a, (n, dt) in zip(arrays, spec)):
                    return list(arrays)
                spare = k
            arrays = tuple(np.empty(n, dt) for n, dt in spec)
            if spare is not None:
                self._sets[spare] = arrays
            elif len(self._sets) < self.limit:
                self._sets.append(arrays)
            return list(arrays)


@dataclass
class ParsedChunk:
    """Rows parsed from one chunk of a file.

    ``data``, ``indices`` (int64 column ids, zero-based) and ``indptr`` (int64, starting at 0)
    are CSR arrays; ``labels`` is float64 of shape (rows, labels per row); ``weights`` the
    per-row sample weights of formats that have them (Vowpal Wabbit's importance), else None.
    ``offset``/``end``: the chunk's bytes in the (decompressed) file. ``spare``: ``data``, ``indices``
    and ``indptr`` are the start of arrays nothing else uses (a :class:`BufferPool`'s), whose room
    after them a consumer may write to (a streamed epoch joins a batch spanning two chunks there).
    """

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    labels: np.ndarray
    num_features: int | None = None
    weights: np.ndarray | None = None
    offset: int = 0
    end: int = 0
    spare: bool = False

    @property
    def num_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def to_csr(self, num_features: int | None = None):
        """The rows as a ``CSRNDArray`` (wrapping the arrays without copying)."""
        from ..ndarray.sparse import csr_matrix

        d = num_features or self.num_features
        if d is None:
            d = int(self.indices.max()) + 1 if len(self.indices) else 1
        return csr_matrix((self.data, self.indices, self.indptr), shape=(self.num_rows, d), dtype=self.data.dtype)


class ChunkJob:
    """One chunk on its way through the pipeline: its bytes and where they are in the file, and
    once parsed the format's output arrays, its kernel's report (``info``) and ``lines`` (the
    newlines it consumed, for the line numbers of the chunks after it)."""

    def __init__(self, buf, offset: int = 0, first: bool = False):
        self.buf = buf
        self.offset = offset  # byte offset of buf[0] in the (decompressed) file
        self.end = offset + len(buf)
        self.first = first  # the chunk starts at byte 0 of the file (a header line is there)
        self.lines_before = 0  # newlines between the pass's start and this chunk
        self.lines = 0
        self.data = self.indices = self.indptr = self.labels = self.weights = None
        self.info = None
        self.slow = None


#: Chunks in flight beyond one per worker (each: its bytes and its parsed arrays, a few MiB).
AHEAD = 1


def parse_chunks(source: ChunkSource, begin: int, end_hint: int | None, run: Callable[[ChunkJob], ChunkJob],
                 workers: int, make_job: Callable[..., ChunkJob] = ChunkJob) -> Iterator[ChunkJob]:
    """Parsed jobs of the lines in ``[begin, end)`` in file order, ``lines_before`` set from the
    ``lines`` of the jobs before. ``make_job(buf, offset, first)`` builds a job on the calling
    thread (in file order), ``run(job)`` parses it on a worker thread. An error of the source
    (corrupt compressed data, a line too long) is raised after the jobs before it."""
    ahead = workers + AHEAD  # chunks in flight (submitted, parsing or parsed) beyond the one handed out
    # a chunk is done with once the consumer asks past it: in flight are at most `ahead` more; its pages
    # leave the process on the next thread to start a parse (chunks.release), not on the consumer's; those
    # queued when the source ends (no parse follows: one release a pass) on the consumer's
    done: collections.deque = collections.deque()
    chunks = source.chunks(begin, end_hint, release_after=ahead + 2, release=done.append)

    def release_done():
        while done:
            try:
                pages = done.popleft()
            except IndexError:  # another thread took the last
                break
            release(pages)

    def parse(job):  # on the thread that parses: the pages of a mapped chunk in one call (chunks.populate)
        release_done()
        populate(job.buf)
        return run(job)

    pending: collections.deque = collections.deque()
    submitted = False
    lines_before = 0
    source_error = None
    first = begin == 0
    try:
        exhausted = False
        while True:
            while not exhausted and len(pending) < ahead:
                try:
                    buf, offset = next(chunks)
                except StopIteration:
                    exhausted = True
                    release_done()
                    break
                except DataFormatError as e:  # raised in file order, after the chunks before it
                    source_error = e
                    exhausted = True
                    break
                # the pass's first chunk is parsed by the consumer, which waits for it (a streamed epoch's
                # trainer: half a chunk, chunks._FIRST_STREAM_CHUNK), the next ones by the parser threads
                pending.append(submit(parse, make_job(buf, offset, first), workers, here=not submitted))
                first = False
                submitted = True
            if not pending:
                if source_error is not None:
                    raise source_error
                return
            job = pending.popleft().result()
            job.lines_before = lines_before  # the previous chunks parsed whole: exact counts
            yield job
            lines_before += job.lines
    finally:
        cancel(pending)
        done.clear()  # (views of the map, which closes with the chunks)
        chunks.close()
