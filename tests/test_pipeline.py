"""The one chunk pipeline (io/pipeline.py): every format's chunks come back in file order, with
the byte range they cover (what a streamed epoch's progress counts) and their rows."""
import ctypes
import errno
import gzip
import os

import numpy as np
import pytest

from sparsetrain.io import LibSVMReader, pipeline
from sparsetrain.io.csv_reader import CSVReader, CSVSchema
from sparsetrain.io.vw_reader import VWReader


def _libsvm(tmp_path, rows=200):
    lines = [f"{i % 3} {i % 7 + 1}:{i} {i % 11 + 8}:0.5" for i in range(rows)]
    path = tmp_path / "x.libsvm"
    path.write_text("\n".join(lines) + "\n")
    return path


def _readers(tmp_path):
    p = _libsvm(tmp_path)
    c = tmp_path / "x.csv"
    c.write_text("".join(f"{i % 2},{i},c{i % 5}\n" for i in range(200)))
    v = tmp_path / "x.vw"
    v.write_text("".join(f"{i % 2} 2 |a f{i % 9}:{i} g\n" for i in range(200)))
    schema = CSVSchema(columns=["y", "n", "c"], label="y", numeric=["n"], categorical=["c"], hash_bits=6)
    return {
        "libsvm": (p, lambda **kw: LibSVMReader(p, num_features=20, zero_based=False, **kw)),
        "csv": (c, lambda **kw: CSVReader(c, schema, **kw)),
        "vw": (v, lambda **kw: VWReader(v, 8, **kw)),
    }


@pytest.mark.parametrize("fmt", ["libsvm", "csv", "vw"])
def test_chunks_tile_the_file_in_order_with_their_byte_ranges(tmp_path, fmt):
    path, make = _readers(tmp_path)[fmt]
    size = path.stat().st_size
    blocks = list(make(chunk_size=300))
    assert len(blocks) > 5
    assert blocks[0].offset == 0 and blocks[-1].end == size
    # a streaming pass's first chunk is half a chunk (its parse is waited for), the others whole
    assert blocks[0].end <= 150 < max(b.end - b.offset for b in blocks[1:]) <= 300
    for a, b in zip(blocks, blocks[1:]):
        assert a.end == b.offset
    whole = list(make(chunk_size=1 << 20))
    assert len(whole) == 1 and whole[0].end == size
    assert sum(b.num_rows for b in blocks) == whole[0].num_rows == 200
    np.testing.assert_array_equal(np.concatenate([b.labels[:, 0] for b in blocks]), whole[0].labels[:, 0])
    np.testing.assert_array_equal(np.concatenate([b.indices for b in blocks]), whole[0].indices)


@pytest.mark.parametrize("fmt", ["libsvm", "csv", "vw"])
def test_parts_have_byte_ranges_inside_their_part(tmp_path, fmt):
    path, make = _readers(tmp_path)[fmt]
    ends = []
    rows = 0
    for k in range(3):
        blocks = list(make(chunk_size=200, num_parts=3, part_index=k))
        rows += sum(b.num_rows for b in blocks)
        ends.append((blocks[0].offset, blocks[-1].end))
    assert rows == 200
    assert ends[0][0] == 0 and ends[0][1] == ends[1][0] and ends[1][1] == ends[2][0]
    assert ends[2][1] == path.stat().st_size


def test_weights_travel_with_the_rows(tmp_path):
    _, make = _readers(tmp_path)["vw"]
    blocks = list(make(chunk_size=300))
    assert all(b.weights is not None and len(b.weights) == b.num_rows for b in blocks)
    assert np.all(np.concatenate([b.weights for b in blocks]) == 2)


def test_compressed_offsets_count_decompressed_bytes(tmp_path):
    p = _libsvm(tmp_path)
    raw = p.read_bytes()
    gz = tmp_path / "x.libsvm.gz"
    gz.write_bytes(gzip.compress(raw))
    blocks = list(LibSVMReader(gz, num_features=20, zero_based=False, chunk_size=256))
    assert blocks[-1].end == len(raw) and blocks[0].offset == 0


def test_buffer_pool_hands_out_arrays_again_only_when_nothing_refers_to_them():
    from sparsetrain.io.pipeline import BufferPool

    pool = BufferPool(limit=2)
    spec = ((100, np.float32), (50, np.int64))
    a, b = pool.take(spec)
    assert a.dtype == np.float32 and len(a) >= 100 and b.dtype == np.int64 and len(b) >= 50
    view = a[:10]  # a block's view keeps the whole set in use
    del a, b
    c, d = pool.take(spec)
    assert not np.shares_memory(c, view)
    del c, d
    del view
    e, f = pool.take(spec)  # the first set (or the second) is free again: no new set beyond the limit
    assert len(pool._sets) == 2
    del e, f
    big = pool.take(((1000, np.float32), (50, np.int64)))  # a free set too small is replaced
    assert len(big[0]) >= 1000 and len(pool._sets) == 2


def test_blocks_kept_by_a_consumer_are_never_overwritten_by_later_chunks(tmp_path):
    """The reader parses into arrays of earlier chunks only when nothing refers to them: blocks
    kept (list(reader)) hold what was parsed into them, equal to a whole-file load."""
    from sparsetrain.io import load_libsvm

    path = _libsvm(tmp_path, rows=3000)
    reader = LibSVMReader(path, num_features=20, zero_based=False, chunk_size=512)
    for _ in range(2):  # the second pass runs with a warm pool
        kept = list(reader)
        assert len(kept) > 20
        X, y = load_libsvm(path, num_features=20, zero_based=False)
        assert np.array_equal(np.concatenate([b.indices for b in kept]), X.indices)
        assert np.array_equal(np.concatenate([b.data for b in kept]), X.data)
        assert np.array_equal(np.concatenate([b.labels[:, 0] for b in kept]), y)
        streamed = [(b.data.copy(), b.indices.copy()) for b in reader]  # one at a time: the pool recycles
        assert all(np.array_equal(d, k.data) and np.array_equal(i, k.indices) for (d, i), k in zip(streamed, kept))


def test_parses_leave_the_training_threads_their_cores():
    """While threads train beside the parser (a streamed epoch's piece), at most the cores they leave
    parse at once (at least one); otherwise every worker parses."""
    import threading
    import time

    from sparsetrain.io.pipeline import CORE_SHARE, _Task

    share = type(CORE_SHARE)()
    share.cores = 2
    lock = threading.Lock()
    now = [0, 0]  # parses running, the most seen at once

    def parse(_job):
        with lock:
            now[0] += 1
            now[1] = max(now[1], now[0])
        time.sleep(0.1)  # long enough for the started threads to overlap when allowed
        with lock:
            now[0] -= 1

    def most_at_once(workers):
        now[:] = [0, 0]
        # each thread asks for a parse's result first: it runs the parse itself once one more may start
        threads = [threading.Thread(target=_Task(parse, None, workers, share).result) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return now[1]

    assert most_at_once(2) == 2
    with share.training(1):
        assert most_at_once(2) == 1
        with share.training(2):  # no core left: one parse still runs
            assert most_at_once(2) == 1
    assert most_at_once(1) == 1


def test_a_consumer_that_stops_early_returns_only_after_every_running_parse(tmp_path):
    """A reader closed early (a bad line in the first chunk, an interrupted epoch) waits for the parse
    jobs already running: none may read a memory-mapped chunk after the caller has returned (the file
    may be rewritten or truncated by then, and reading its pages would kill the process: SIGBUS)."""
    import threading
    import time

    from sparsetrain.io.chunks import ChunkSource
    from sparsetrain.io.pipeline import ChunkJob, parse_chunks

    path = tmp_path / "x.libsvm"
    path.write_bytes(b"1 1:1\n" * 400)
    lock = threading.Lock()
    running = [0]

    def run(job):
        with lock:
            running[0] += 1
        time.sleep(0.05 if job.offset else 0.0)  # the later chunks are still parsing when the first is consumed
        with lock:
            running[0] -= 1
        return job

    jobs = parse_chunks(ChunkSource(str(path), 300), 0, None, run, 2, lambda buf, offset, first: ChunkJob(buf, offset))
    assert next(jobs).offset == 0
    jobs.close()
    assert running[0] == 0


def test_a_parse_no_parser_thread_has_started_runs_on_the_thread_that_needs_or_waits():
    """The consumer parses its next chunk itself rather than sleeping until a parser thread is free, and
    a thread waiting for data (a streamed epoch's trainer) runs the oldest waiting parse: the same
    result, on the calling thread, each parse once."""
    import threading

    from sparsetrain.io.pipeline import CORE_SHARE, _Task

    share = type(CORE_SHARE)()
    share.cores = 2
    ran = []

    def parse(job):
        ran.append((job, threading.current_thread().name))
        return job * 10

    me = threading.current_thread().name
    first, second = _Task(parse, 1, 2, share), _Task(parse, 2, 2, share)
    share.submit(first)
    share.submit(second)
    share.help_until(lambda: bool(ran))  # a waiting trainer runs the oldest waiting parse
    assert ran == [(1, me)]
    assert second.result() == 20 and first.result() == 10
    assert ran == [(1, me), (2, me)]
    second.run_claimed()  # a parser thread's item for a parse already done: nothing runs again
    assert len(ran) == 2
    share.any_thread = False  # only parser threads parse: the consumer waits for one
    third = _Task(parse, 3, 2, share)
    share.submit(third)
    got = []
    consumer = threading.Thread(target=lambda: got.append(third.result()))
    consumer.start()  # waits: no parser thread has taken the parse yet
    worker = threading.Thread(target=third.run_claimed, name="parser")
    worker.start()
    consumer.join()
    worker.join()
    assert got == [30] and ran[-1] == (3, "parser")


@pytest.mark.parametrize("any_thread", [True, False])
def test_a_pass_parses_its_first_chunk_on_the_consumers_thread(tmp_path, monkeypatch, any_thread):
    """The consumer waits for a pass's first chunk anyway: it parses it itself, and no parser thread is offered
    it (the parser threads take the next ones meanwhile); with only the parser threads parsing
    (``CORE_SHARE.any_thread`` off, benchmarks/stream.py's comparison) a parser thread does."""
    import threading

    from sparsetrain.io.chunks import ChunkSource

    monkeypatch.setattr(pipeline.CORE_SHARE, "any_thread", any_thread)
    path = _libsvm(tmp_path, rows=400)
    threads = {}

    def run(job):
        threads[job.offset] = threading.get_ident()
        return job

    jobs = list(pipeline.parse_chunks(ChunkSource(path, 600), 0, None, run, 2))
    assert len(jobs) > 5 and sorted(threads) == [j.offset for j in jobs]
    assert (threads[0] == threading.get_ident()) is any_thread


def test_a_training_thread_waiting_for_its_chunk_parses_the_next_meanwhile():
    """A streamed epoch's trainer (inside ``training``) whose next chunk a parser thread is still parsing
    runs the next waiting parse on its own thread instead of sleeping; a thread outside ``training``
    sleeps until its chunk is parsed."""
    import threading

    from sparsetrain.io.pipeline import CORE_SHARE, _Task

    share = type(CORE_SHARE)()
    share.cores = 2
    ran, started, release = [], threading.Event(), threading.Event()

    def parse(job):
        ran.append((job, threading.current_thread().name))
        if job == 1:  # the parser thread's parse goes on until the trainer has parsed the next chunk
            started.set()
            assert release.wait(10)
        if job == 2:
            release.set()
        return job * 10

    def run(trains):
        ran.clear()
        started.clear()
        release.clear()
        first, second = _Task(parse, 1, 2, share), _Task(parse, 2, 2, share)
        share.submit(first)
        share.submit(second)
        worker = threading.Thread(target=first.run_claimed, name="parser")
        worker.start()
        assert started.wait(10)
        if trains:
            with share.training(1):
                assert first.result() == 10
        else:  # nothing parses the second chunk here: let the parser thread finish the first
            release.set()
            assert first.result() == 10
        worker.join()
        assert second.result() == 20
        return ran

    me = threading.current_thread().name
    assert run(trains=True) == [(1, "parser"), (2, me)]
    assert run(trains=False) == [(1, "parser"), (2, me)]  # parsed only when asked for, after the first
    assert not share.trains_here()


def _huge_pages_advised() -> bool:
    """Whether this kernel takes ``MADV_HUGEPAGE`` (not one built without transparent huge pages)."""
    import mmap

    if not hasattr(mmap, "MADV_HUGEPAGE"):
        return False
    m = mmap.mmap(-1, mmap.PAGESIZE)
    try:
        m.madvise(mmap.MADV_HUGEPAGE)
        return True
    except OSError:
        return False
    finally:
        m.close()


def test_a_mapped_file_read_where_huge_pages_are_refused_or_unknown(tmp_path, monkeypatch):
    """A kernel that refuses ``MADV_HUGEPAGE`` (EINVAL: built without transparent huge pages) or a Python
    without the constant: the chunks are the same, nothing is said."""
    from sparsetrain.io import chunks, load_libsvm

    path = _libsvm(tmp_path, rows=300)
    X, _ = load_libsvm(path, num_features=20, zero_based=False)
    monkeypatch.setattr(chunks.mmap, "MADV_HUGEPAGE", -1, raising=False)  # an advice no kernel knows: EINVAL
    with pytest.raises(OSError):
        chunks.mmap.mmap(-1, chunks.mmap.PAGESIZE).madvise(-1)
    got = np.concatenate([b.indices for b in LibSVMReader(path, num_features=20, zero_based=False, chunk_size=4096)])
    assert np.array_equal(got, X.indices)
    monkeypatch.delattr(chunks.mmap, "MADV_HUGEPAGE")
    got = np.concatenate([b.indices for b in LibSVMReader(path, num_features=20, zero_based=False, chunk_size=4096)])
    assert np.array_equal(got, X.indices)


def test_a_streaming_pass_releases_the_pages_it_is_done_with_when_its_source_ends(tmp_path, monkeypatch):
    """The pages a pass is done with when its source ends, where no parse is left to take them out (every
    chunk here is parsed as soon as it is submitted), leave the process then, not with the map at the
    pass's end."""
    from sparsetrain.io import chunks

    path = _libsvm(tmp_path, rows=3000)
    released = []
    monkeypatch.setattr(chunks, "_madvise", lambda addr, length, advice: (
        advice == chunks.mmap.MADV_DONTNEED and released.append((addr, length))) or 0)
    align = 4 * chunks.mmap.PAGESIZE
    monkeypatch.setattr(chunks, "_RELEASE_ALIGN", align)
    submit = pipeline.submit

    def parsed_at_once(fn, job, workers, **kw):
        task = submit(fn, job, workers, **kw)
        if pipeline.CORE_SHARE.claim(task, wait=True):
            task.execute()
        return task

    monkeypatch.setattr(pipeline, "submit", parsed_at_once)
    reader = LibSVMReader(path, num_features=20, zero_based=False, chunk_size=4096)
    starts = [b.offset for b in reader]
    base = min(a for a, _ in released)  # the file's byte 0 (the first release starts there)
    last = base + starts[-(reader.workers + pipeline.AHEAD + 2)]
    assert len(starts) > 8 and max(a + n for a, n in released) == last - last % align


def test_a_streamed_mapped_file_maps_each_chunk_before_its_parse(tmp_path, monkeypatch):
    """A streaming pass over a plain file asks the OS to map each chunk's pages in one call
    (``MADV_POPULATE_READ``, page-aligned, covering the chunk) before the chunk is parsed; not for a
    compressed file's chunks (read into buffers) nor a whole-file load; a kernel that does not know the
    advice (EINVAL) turns it off for good, another failure (EIO) only for its chunk (it turned it off for
    the process too), and the rows are the same either way."""
    from sparsetrain.io import chunks, load_libsvm

    path = _libsvm(tmp_path, rows=3000)
    calls = []
    monkeypatch.setattr(chunks, "_madvise", lambda addr, length, advice: calls.append((addr, length, advice)) or 0)
    align = 4 * chunks.mmap.PAGESIZE  # where pages are released (2 MiB huge pages in use: more than this file)
    monkeypatch.setattr(chunks, "_RELEASE_ALIGN", align)
    reader = LibSVMReader(path, num_features=20, zero_based=False, chunk_size=4096)
    spans = [(b.offset, b.end) for b in reader]
    # the pages of the chunks the reader is done with leave the process on the parsing threads (MADV_DONTNEED)
    released = [c for c in calls if c[2] == chunks.mmap.MADV_DONTNEED]
    calls = [c for c in calls if c[2] != chunks.mmap.MADV_DONTNEED]
    assert len(spans) > 5 and len(calls) == len(spans)
    base = min(addr for addr, _, _ in calls)  # the map's first page: the file's byte 0
    for (begin, end), (addr, length, advice) in sorted(zip(spans, sorted(calls))):
        assert advice == chunks._MADV_POPULATE_READ and addr % chunks.mmap.PAGESIZE == 0
        assert addr - base == begin - begin % chunks.mmap.PAGESIZE and addr + length - base == end
    released.sort()
    # whole huge pages of the process's addresses (the map's start, the file's byte 0, may fall inside one)
    assert released and released[0][0] == base and all((a + n) % align == 0 for a, n, _ in released)
    assert all(a + n == b for (a, n, _), (b, _, _) in zip(released, released[1:]))  # no page twice, none skipped
    # only chunks parsed and checked, up to the last chunk a pass releases (the last ones go with the map)
    last = base + spans[-(reader.workers + pipeline.AHEAD + 2)][0]
    assert released[-1][0] + released[-1][1] == last - last % align
    if _huge_pages_advised() and os.path.exists("/proc/self/smaps"):  # the map asks for huge pages
        blocks = iter(reader)
        next(blocks)
        with open("/proc/self/smaps") as f:
            vma = f.read().split(str(path), 1)[1]
        assert "hg" in vma[vma.index("VmFlags:"):].split("\n", 1)[0].split()
        blocks.close()
    gz = tmp_path / "x.libsvm.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    calls.clear()
    X, _ = load_libsvm(path, num_features=20, zero_based=False)
    assert sum(b.nnz for b in LibSVMReader(gz, num_features=20, zero_based=False, chunk_size=4096)) == X.nnz
    assert calls == []
    def failing(code):
        def madvise(addr, length, advice):
            if advice == chunks._MADV_POPULATE_READ:  # (a release refused leaves the pages until the map closes)
                calls.append(advice)
            ctypes.set_errno(code)
            return -1
        return madvise

    monkeypatch.setattr(chunks, "_populate", True)  # (restored after the test)
    monkeypatch.setattr(chunks, "_madvise", failing(errno.EIO))
    assert np.array_equal(np.concatenate([b.indices for b in reader]), X.indices)
    assert len(calls) == len(spans) and chunks._populate
    calls.clear()
    monkeypatch.setattr(chunks, "_madvise", failing(errno.EINVAL))
    assert np.array_equal(np.concatenate([b.indices for b in reader]), X.indices)
    assert 1 <= len(calls) < len(spans) and chunks._populate is False  # (parses already past the check: a few)
