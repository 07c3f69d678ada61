"""The LibSVM parse kernel alone, A/B against the kernel of a git revision, in one process.

    python -m benchmarks.parse_kernel [--against REV] [--mb 48] [--chunk-mb 4] [--rounds 4] [--repeat 7]
                                      [--shape file|binary|negative|long|crlf]
    python -m benchmarks.parse_kernel --page-cache show|cold [FILE]

The first ``--mb`` MB of the streamed-epoch benchmark's file (``benchmarks.stream``: 500k × 1M,
zipf, 23 nnz/row, float32 values) are read into memory and cut into ``--chunk-mb`` chunks ending at
a newline; each variant's ``parse_chunk`` parses every chunk into one set of reused output arrays
(as a streamed epoch does with its ``BufferPool``), thread CPU time, best of ``--repeat`` passes,
in ``--rounds`` alternating rounds. ``--against REV``: the kernel modules (``_libsvm_kernels``,
``_libsvm_simd``, ``_decimal_kernels``, ``_scan_kernels``) of git revision REV, copied into a temporary package, as
variant B; both variants' outputs must be equal, byte for byte (checked on every chunk). Prints
ns per row and MB/s per core for each. Nothing here is a test: no timing is asserted.

``--page-cache``: a streamed pass maps the file's pages into the process and releases them behind it (every
epoch), which costs per page-table entry: ~18 ms of CPU a pass of the benchmark's 142 MiB file when its page
cache holds 4 KiB pages, ~1 ms when it holds 2 MiB ones (benchmarks/RESULTS.md, session 35, pipe). How the
cache holds a file depends on how it was read into it (sparsetrain's map asks for huge pages; this VM's DAMON
pageout splits and evicts cold ones over hours), so a streamed-epoch number means little without it: ``show``
prints the share of FILE (default: the stream benchmark's) that maps as 2 MiB pages; ``cold`` drops the file's
cached pages (``POSIX_FADV_DONTNEED``) and reads it back through a sparsetrain chunk pass, as a first run of
sparsetrain on a file not in the cache does, then shows the share.
"""
from __future__ import annotations

import argparse
import atexit
import importlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODULES = ("_libsvm_kernels", "_libsvm_simd", "_decimal_kernels", "_scan_kernels")


def _kernel_at(rev: str, package: str = "ab_kernels"):
    """The ``_libsvm_kernels`` module of git revision ``rev`` (with its siblings), as a fresh package
    named ``package`` (one per revision a process loads)."""
    tmp = tempfile.mkdtemp(prefix="parse_kernel_")
    atexit.register(shutil.rmtree, tmp, True)  # the copies and numba's cache of them go with the process
    pkg = os.path.join(tmp, package)
    os.makedirs(pkg)
    open(os.path.join(pkg, "__init__.py"), "w").close()
    for name in MODULES:
        got = subprocess.run(["git", "show", f"{rev}:sparsetrain/io/{name}.py"], cwd=ROOT, capture_output=True,
                             text=True)
        if got.returncode == 0:  # (a module newer than REV is skipped)
            # the copies get a cache of their own in ``tmp``: the package's stale-cache check has nothing to do
            text = re.sub(r"^from \.\.kernels\.numba_cache import drop_stale_callers$",
                          "drop_stale_callers = lambda name: None", got.stdout, flags=re.M)
            with open(os.path.join(pkg, name + ".py"), "w") as f:
                f.write(text)
    sys.path.insert(0, tmp)
    return importlib.import_module(f"{package}._libsvm_kernels")


# --shape: the file's text rewritten into other common shapes (each value of the file is 0.dddddd)
SHAPES = {
    "file": lambda t: t,
    "binary": lambda t: re.sub(rb":[0-9.]+", b":1", t),  # idx:1
    "negative": lambda t: t.replace(b":0.", b":-0."),  # -0.dddddd
    "long": lambda t: re.sub(rb"(:[0-9.]+)", rb"\g<1>1234567", t),  # 15 digits
    "crlf": lambda t: t.replace(b"\n", b"\r\n"),
}


def _chunks(path: str, mb: float, chunk_mb: float, shape: str = "file") -> list[np.ndarray]:
    with open(path, "rb") as f:
        text = f.read(int(mb * 1e6))
    text = SHAPES[shape](text[: text.rfind(b"\n") + 1])
    buf = np.frombuffer(text, np.uint8)
    out, p, step = [], 0, int(chunk_mb * (1 << 20))
    while p < len(buf):
        e = min(len(buf), p + step)
        e = len(buf) if e == len(buf) else int(np.flatnonzero(buf[e - 1:] == 10)[0]) + e
        out.append(buf[p:e].copy())
        p = e
    return out


def _pass(K, chunks, out):
    """Parse every chunk into ``out``; (thread CPU seconds, rows, a list of each chunk's output)."""
    data, indices, row_ends, labels, slow = out
    rows = 0
    t = time.thread_time()
    for buf in chunks:
        info = K.parse_chunk(buf, 1, K.ZERO_BASED, 1_000_000, -1, K.FLOAT32_LIMIT, 1 << 20, 0, data, indices,
                             row_ends, labels, slow)
        rows += int(info[K.I_ROWS])
    return time.thread_time() - t, rows


def _digest(K, chunks, out) -> list:
    data, indices, row_ends, labels, slow = out
    res = []
    for buf in chunks:
        info = K.parse_chunk(buf, 1, K.ZERO_BASED, 1_000_000, -1, K.FLOAT32_LIMIT, 1 << 20, 0, data, indices,
                             row_ends, labels, slow)
        r, z = int(info[K.I_ROWS]), int(info[K.I_NNZ])
        res.append((info[: K.N_INFO].tobytes(), data[:z].tobytes(), indices[:z].tobytes(), row_ends[:r].tobytes(),
                    labels[:r].tobytes()))
    return res


def huge_share(path: str) -> float:
    """The share of ``path``'s bytes that its page cache maps as 2 MiB pages (Linux: ``FilePmdMapped`` of a
    fresh map of it, all its pages mapped; 0 where that cannot be read). Pages not cached are read in as a
    sparsetrain pass reads them (the map asks for huge pages)."""
    import mmap

    from sparsetrain.io.chunks import _huge_pages, populate

    size = os.path.getsize(path)
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        _huge_pages(mm)
        buf = np.frombuffer(mm, np.uint8)
        populate(buf)  # every page mapped, as a streamed pass maps its chunks
        start = f"{buf.ctypes.data:x}-"
        del buf
        with open("/proc/self/smaps") as f:
            vma = f.read().split("\n" + start, 1)[1]
        kb = int(vma.split("FilePmdMapped:", 1)[1].split()[0])
        return kb * 1024 / size
    except (OSError, IndexError, ValueError):
        return 0.0
    finally:
        mm.close()


def read_cold(path: str) -> None:
    """Drop ``path``'s pages from the page cache and read it back through a streaming chunk pass of
    sparsetrain's (a map asking for huge pages, each chunk populated and released), as the first run of
    sparsetrain on a file not in the cache reads it."""
    from sparsetrain.io.chunks import STREAM_CHUNK_SIZE, ChunkSource, populate

    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    for buf, _ in ChunkSource(path, STREAM_CHUNK_SIZE).chunks(release_after=2):
        populate(buf)


def main(argv=None) -> int:
    from sparsetrain.io import _libsvm_kernels as current

    from .stream import _file

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--against", help="a git revision whose kernel is variant B")
    ap.add_argument("--mb", type=float, default=48.0)
    ap.add_argument("--chunk-mb", type=float, default=4.0)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="file",
                    help="the text rewritten: binary values, negative ones, 15-digit ones, CRLF line ends")
    ap.add_argument("--page-cache", choices=("show", "cold"),
                    help="show the share of FILE cached as 2 MiB pages; cold: drop its cache, read it back as sparsetrain does")
    ap.add_argument("file", nargs="?", help="--page-cache's file (default: the stream benchmark's)")
    args = ap.parse_args(argv)
    if args.page_cache:
        path = args.file or _file(500_000, 1_000_000)
        if args.page_cache == "cold":
            read_cold(path)
        print(f"{path}: {huge_share(path):.0%} of its bytes cached as 2 MiB pages")
        return 0
    chunks = _chunks(_file(500_000, 1_000_000), args.mb, args.chunk_mb, args.shape)
    size = sum(len(c) for c in chunks)
    n = max(len(c) for c in chunks)
    out = (np.empty(n // 4 + 1, np.float32), np.empty(n // 4 + 1, np.int64), np.empty(n // 2 + 1, np.int64),
           np.empty(n // 2 + 1, np.float64), np.empty((64, 4), np.int64))
    variants = {"this tree": current}
    if args.against:
        variants[f"at {args.against}"] = _kernel_at(args.against)
        digests = [_digest(K, chunks, out) for K in variants.values()]
        if digests[0] != digests[1]:
            print("the two kernels' outputs differ", file=sys.stderr)
            return 1
        print("outputs equal on every chunk")
    best = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, K in variants.items():
            _pass(K, chunks[:1], out)  # compiled / loaded, caches warm
            times = []
            for _ in range(args.repeat):
                t, rows = _pass(K, chunks, out)
                times.append(t)
            best[name].append(min(times))
    print(f"{size / 1e6:.1f} MB ({args.shape}) in {len(chunks)} chunks, {rows:,} rows; load {os.getloadavg()[0]:.2f}")
    for name, ts in best.items():
        per_round = ", ".join(f"{t / rows * 1e9:.0f}" for t in ts)
        print(f"{name:>16}: ns/row per round {per_round}; best {min(ts) / rows * 1e9:.0f} ns/row = "
              f"{size / min(ts) / 1e6:,.0f} MB/s per core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
