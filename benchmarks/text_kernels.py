"""A/B and phase profile of the CSV/TSV and Vowpal Wabbit parse kernels (issue 18).

    python -m benchmarks.text_kernels [--format csv|vw] [--mb 24] [--repeat 7] [--rounds 3] [VARIANT ...]
    python -m benchmarks.text_kernels --phases [--mb 24] [--repeat 7]

Data: a prefix of ``--mb`` MB (whole lines) of the file ``benchmarks.raw_data`` trains on
(``benchmarks/_work/criteo_like_1000000.tsv``, or its ``.vw`` twin; run ``python -m
benchmarks.raw_data`` once to make them), cut into the streamed epoch's chunks (4 MiB, at line
ends), with the benchmark's schema (label, 13 numeric columns with ``log1p``, 26 categorical,
the cross ``c1 x c2``; VW: ``-b 20 -q ab``).

**A/B** (the default): each VARIANT is a source tree that holds a ``sparsetrain`` package: a path
(``.`` is this checkout, the default) or ``git:REF`` (the tree of a commit, exported into
``/tmp``). Every variant runs in its own process (its own numba cache beside its sources), the
variants one after another in ``--rounds`` rounds (alternating, so that a slow minute of the
machine hits every variant alike). A process parses the prefix with the reader's ``_run``
(``CSVReader`` / ``VWReader``: the chunk's row count, the pooled output arrays and the kernel,
as a streamed epoch's parser thread does) ``--repeat`` times after a warm-up, and prints the best
thread CPU time per row and a digest of its output (indices, values, row ends, labels and
weights of every chunk): a change to a kernel must keep the digest.

**--phases** (this checkout only): the CSV kernel's work stage by stage, each stage a kernel that
does the ones before it plus one more, built from the kernel module's own functions, so the
differences are what each stage costs: the newline count, the line and field split, the 26
categorical hashes and the cross, the row sort, then the whole kernel (label, numeric columns,
stores) as ``CSVReader._run`` calls it.

Every figure is thread CPU time (``time.thread_time``), the best of ``--repeat``; run it under
``/work/wt/bin/quiet`` and quote it with the load average it prints. Nothing here asserts a time.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.path.join(HERE, "_work")
CHUNK = 4 << 20


def _prefix(fmt: str, mb: float):
    """The data prefix's chunks (uint8 arrays ending in a newline; the first holds the header)."""
    import numpy as np

    path = os.path.join(WORK, "criteo_like_1000000." + ("tsv" if fmt == "csv" else "vw"))
    if not os.path.exists(path):
        sys.exit(f"{path} is missing: run `python -m benchmarks.raw_data --only parse` once to make it")
    with open(path, "rb") as f:
        raw = f.read(int(mb * 1e6))
    raw = raw[: raw.rindex(b"\n") + 1]
    chunks, p = [], 0
    while p < len(raw):
        e = raw.find(b"\n", min(p + CHUNK, len(raw) - 1)) + 1
        chunks.append(np.frombuffer(raw[p:e], np.uint8).copy())
        p = e
    return path, chunks


def _reader(fmt: str, path: str):
    if fmt == "csv":
        from sparsetrain.io.csv_reader import CSVReader, CSVSchema

        schema = CSVSchema(header=True, label="label", numeric=[f"i{k + 1}" for k in range(13)], log1p=True,
                           categorical=[f"c{j + 1}" for j in range(26)], crosses=[["c1", "c2"]], hash_bits=20)
        return CSVReader(path, schema, "float32", workers=1)
    from sparsetrain.io.vw_reader import VWReader

    return VWReader(path, 20, crosses=[["a", "b"]], dtype="float32", workers=1)


def _pass(reader, chunks, digest=None):
    """Thread CPU seconds of parsing every chunk (rows, entries); ``digest`` (a hashlib object)
    takes the output."""
    from sparsetrain.io._scan_kernels import I_ERR
    from sparsetrain.io.text_pipeline import TextJob

    cpu = rows = nnz = 0
    for i, buf in enumerate(chunks):
        job = TextJob(buf, 0, i == 0)
        t = time.thread_time()
        reader._run(job)
        cpu += time.thread_time() - t
        if int(job.info[I_ERR]) != 0:
            raise SystemExit(f"chunk {i}: kernel error {job.info.tolist()}")
        rows += len(job.indptr) - 1
        nnz += len(job.indices)
        if digest is not None:
            for a in (job.indices, job.data, job.indptr, job.labels, job.weights):
                if a is not None:
                    digest.update(a.tobytes())
    return cpu, rows, nnz


def child(fmt: str, mb: float, repeat: int, label: str) -> None:
    import sparsetrain

    path, chunks = _prefix(fmt, mb)
    reader = _reader(fmt, path)
    d = hashlib.sha1()
    _, rows, nnz = _pass(reader, chunks, d)  # compiles or loads numba's cache; the digest
    best = min(_pass(reader, chunks)[0] for _ in range(repeat))
    src = os.path.dirname(os.path.dirname(sparsetrain.__file__))
    print(f"  {label:24s} {best / rows * 1e9:7.0f} ns/row  ({best:.3f} s; {rows} rows, {nnz} entries, "
          f"digest {d.hexdigest()[:12]}; sources {src})", flush=True)


def _tree(variant: str) -> str:
    """The directory holding the variant's ``sparsetrain`` package."""
    if variant.startswith("git:"):
        ref = variant[4:]
        sha = subprocess.run(["git", "-C", ROOT, "rev-parse", ref], check=True, capture_output=True,
                             text=True).stdout.strip()
        out = os.path.join(tempfile.gettempdir(), f"text_kernels_{sha[:12]}")
        if not os.path.isdir(os.path.join(out, "sparsetrain")):
            os.makedirs(out, exist_ok=True)
            archive = subprocess.run(["git", "-C", ROOT, "archive", sha, "sparsetrain"], check=True,
                                     capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", out], input=archive, check=True)
        return out
    return os.path.abspath(variant)


def ab(fmt: str, mb: float, repeat: int, rounds: int, variants: list[str]) -> None:
    trees = [(v, _tree(v)) for v in variants]
    for r in range(rounds):
        print(f"round {r + 1}, load average {os.getloadavg()[0]:.1f}:", flush=True)
        for v, tree in trees:
            env = dict(os.environ, PYTHONPATH=tree)
            subprocess.run([sys.executable, os.path.abspath(__file__), "--child", "--format", fmt, "--mb", str(mb),
                            "--repeat", str(repeat), "--label", v], env=env, check=True, cwd=tree)


def phases(mb: float, repeat: int) -> None:
    """Thread CPU per row of the CSV kernel's stages (this checkout's kernel module)."""
    import numpy as np
    from numba import njit

    from sparsetrain.io import _csv_kernels as CK
    from sparsetrain.io import _libsvm_kernels as LK
    from sparsetrain.io._hash_kernels import LANES, PAD, hash_lanes, mm_feed_padded, mm_finish

    @njit(cache=False, nogil=True, _nrt=False)  # as the kernel's loop: no reference counts (session 31)
    def stages(buf, upto, delim, quote, ncols, cat_cols, states, cross_a, cross_b, mid, mid_off, hash_bits,
               indices, data, keys, buckets, fs, fe, pos, lanes):
        """Stage ``upto``: 1 split, 2 + hashes, 3 + sort; returns entries (to keep the work alive)."""
        mask = (np.int64(1) << hash_bits) - 1
        p = 0
        while buf[p] != 10:
            p += 1
        p += 1
        nnz = 0
        total = 0
        while p < len(buf):
            e, status = CK.split_line(buf, p, delim, quote, fs, fe, ncols, pos)
            total += fe[ncols - 1]
            if upto >= 2:
                start = nnz
                for g in range(0, len(cat_cols), LANES):  # (the benchmark's fields all fit two blocks)
                    nnz += hash_lanes(buf, fs, fe, lanes[0], lanes[1], lanes[2], lanes[3], lanes[4], g,
                                      min(LANES, len(cat_cols) - g), indices, nnz, mask, lanes[8, g]) & 0xFFFFFFFF
                for i in range(len(cross_a)):
                    a = np.uint64(cross_a[i])
                    b = np.uint64(cross_b[i])
                    h, cr, nc, ln = CK._hash_field(states, a, buf, fs[a], fe[a])
                    h, cr, nc, ln = mm_feed_padded(h, cr, nc, ln, mid, mid_off[i], mid_off[i + 1])
                    h, cr, nc, ln = mm_feed_padded(h, cr, nc, ln, buf, fs[b], fe[b])
                    indices[np.uint64(nnz)] = mm_finish(h, cr, nc, ln) & mask
                    nnz += (fe[a] > fs[a]) & (fe[b] > fs[b])
                if upto >= 3:
                    if nnz - start > CK.SORT_LANES or CK.sort_ids(indices, data, start, nnz - start):
                        nnz = CK.sort_row(indices, data, start, nnz, keys, data, buckets, hash_bits, True)
                else:
                    nnz = start  # the same slots again: no more memory than the sort stage touches
                    total += indices[np.uint64(nnz)]
            p = e + 1
        return nnz + total

    path, chunks = _prefix("csv", mb)
    # the field hash reads up to PAD bytes past a field: each chunk a view of a longer array
    chunks = [np.concatenate([b, np.zeros(PAD, np.uint8)])[: len(b)] for b in chunks]
    reader = _reader("csv", path)
    plan = reader.plan()
    mid = np.concatenate([plan.cross_mid, np.zeros(PAD, np.uint8)])
    n_rows = sum(int(LK.count_newlines(b)) for b in chunks) - 1
    room = max(len(b) for b in chunks)
    indices, data = np.empty(room, np.int64), np.empty(room, np.float32)
    keys, buckets = np.empty(64, np.int64), np.empty(64, np.int64)
    fs, fe = np.zeros(len(plan.roles) + LANES, np.int64), np.zeros(len(plan.roles) + LANES, np.int64)
    pos = np.empty(len(plan.roles) + 80, np.int64)
    lanes = CK.lane_table(plan.cat_cols, plan.prefix_states, plan.num_cols, plan.log1p)

    def stage(k):
        cpu = 0.0
        for buf in chunks:
            t = time.thread_time()
            if k == 0:
                LK.count_newlines(buf)
            else:
                stages(buf, k, ord(plan.delimiter), ord('"'), len(plan.roles), plan.cat_cols, plan.prefix_states,
                       plan.cross_a, plan.cross_b, mid, plan.cross_mid_off, 20, indices, data, keys,
                       buckets, fs, fe, pos, lanes)
            cpu += time.thread_time() - t
        return cpu

    names = ["newline count", "line + field split", "+ 26 hashes and the cross", "+ row sort"]
    print(f"CSV kernel stages, {sum(map(len, chunks)) / 1e6:.0f} MB, {n_rows} rows, load average "
          f"{os.getloadavg()[0]:.1f} (thread CPU per row, best of {repeat}; each stage includes the ones above "
          "except the newline count):")
    for k in range(4):
        stage(k)
        print(f"  {names[k]:28s} {min(stage(k) for _ in range(repeat)) / n_rows * 1e9:7.0f} ns/row", flush=True)
    _pass(reader, chunks)
    full = min(_pass(reader, chunks)[0] for _ in range(repeat))
    print(f"  {'whole CSVReader._run':28s} {full / n_rows * 1e9:7.0f} ns/row", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("variants", nargs="*", default=["."])
    ap.add_argument("--format", choices=["csv", "vw"], default="csv")
    ap.add_argument("--mb", type=float, default=24)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--phases", action="store_true")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--label", default="", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.format, a.mb, a.repeat, a.label)
    elif a.phases:
        phases(a.mb, a.repeat)
    else:
        ab(a.format, a.mb, a.repeat, a.rounds, a.variants)


if __name__ == "__main__":
    main()
