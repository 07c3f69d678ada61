"""Raw click data: parse + hash throughput and training from the text file, against peers, one run.

    python -m benchmarks.raw_data [--rows 1000000] [--bits 20] [--only parse|train] [--repeat 2] [--pairs 3] [--page-cache fresh|keep]
                                  [--commands]

Data: ``gen-data --format csv`` (``sparsetrain.io.synthetic_csv``), a Criteo-like TSV with a header,
label + 13 integer + 26 categorical columns (zipf over 10,000 values per column, 10 % missing),
planted logistic model; generated once into ``benchmarks/_work/``.

**parse** (page cache warm): the whole file into a CSR matrix of ``2**bits + 13`` columns —
categorical ``c=v`` hashed, numeric columns as values — by

- ours: ``sparsetrain.io.csv_reader.load_csv`` on one parser thread (``workers=1``, the SPEC's
  one-core number) and on the default thread count;
- pandas + scikit-learn: ``pandas.read_csv`` (categoricals as ``str``), ``"c=" + column`` keys,
  ``FeatureHasher(2**bits, input_type="string", alternate_sign=False)`` on each row's present keys,
  the numeric columns ``hstack`` ed after the hashed block.

Both give the same matrix up to the hash convention: FeatureHasher puts a key at
``abs(signed murmurhash3_32) % 2**bits``, ours at ``unsigned murmurhash3_32 % 2**bits``
(= scikit-learn's ``murmurhash3_32(key, 0, positive=True)``); the benchmark checks that both have
the same entries per row and the same sorted values per row on the first 2,000 rows.

**train**: logistic regression, batch 1, one epoch over the text file, with ``2**bits`` hashed
buckets and one quadratic interaction (the cross of ``c1`` and ``c2``):

- ours: ``sparsetrain.trainer.train`` with the config below (AdaGrad lr 0.05, the compiled
  engine's fused epoch, ``train.threads: auto``), three times: ``data.cache: stream`` (what a single
  pass over a text file wants: parsed chunks train as they arrive, the parse of the next chunks on the
  parser threads overlapped with training), the same with ``train.threads: 1`` (one training thread:
  the parse keeps the other core while a piece trains; ``auto`` trains each piece on every core, and
  the parse then runs only while the trainer waits) and ``data.cache: memory`` (the whole file
  parsed into one matrix, then the epoch); time = the whole call, after a warm-up run on a small file for
  numba's cache; log-loss = the epoch's progressive log-loss; each run also prints its epoch's
  seconds and how long the epoch waited for parsed chunks, and a *stage* line the CPU seconds of
  the streamed parse alone (one parser thread, blocks dropped), so parse and training CPU can be
  told apart;
- Vowpal Wabbit (``pip install vowpalwabbit``): the same rows converted (untimed) to VW text
  (``|a c1=..`` ``|b c2=..`` ``|c`` the other categoricals, ``|n i1:log1p(x)``...), labels ±1,
  one pass from the text file ``--loss_function logistic -b bits -q ab`` (VW's default adaptive,
  normalized, invariant updates); time = the parse+learn pass; log-loss = VW's average
  progressive loss;
- ours on that same VW file (``data.format: vw``, ``crosses: [[a, b]]``, ``2**bits`` buckets; the
  numeric columns hashed as VW does, ``n^i1`` with value ``log1p(x)``), streamed: both tools read
  the same bytes.

The page cache: a streamed pass maps every page of the file into the process and releases it behind
the parse, one entry per page: a file cached in 4 KiB pages costs ~0.04 CPU s a pass of the TSV more
than one in 2 MiB pages. A file just written or read cold is cached mostly in 2 MiB pages; on this VM
a kernel thread (DAMON) splits and evicts cold page-cache pages over hours, so the benchmark's TSV sat
at 1 % in 2 MiB pages (session 35). ``--page-cache fresh`` (the default) drops both data files' cache
and reads them back first (the TSV through sparsetrain's chunk pass, as a first run on the file reads
it), ``keep`` leaves the cache as it is; each run prints the share in 2 MiB pages.

The ratio: VW's wall moves a lot from minute to minute on a shared VM (1.6–3.3 s in one hour of
session 34) and ours less, so one pair of runs says little. ``--pairs N`` (default 3) runs ours
(TSV, ``stream``, default threads) and VW one after the other N times, in turn first (ours first in
odd pairs, VW in even ones), and prints every pair's ratio, their range and median. Each run of a
pair also prints its own CPU and the CPU other processes used meanwhile (``/proc/stat``'s busy time
less ours; when not clean, the process that used the most and what the run read from the disk), and its
system CPU and page faults (first touches of new memory cost this VM a few µs to ~60 µs a page): a run
is *clean* when others used under 5 % of a core over it (+ 0.03 s: ``/proc/stat`` counts 10 ms ticks) and
its data came from the page cache, and the
ratio is given again over the pairs whose two runs were clean (on this shared VM other work took a core for
minutes: both sides slowed, VW's two threads and our two cores unevenly). VW runs in this process
through its Python module, ``Workspace("-d FILE ...")``, which runs the same driver as the ``vw``
command (parser thread + learner, no cache file: one pass over the text, as a user runs it), after
one untimed run on the 20,000-row file (as ours after its warm-up: the first run in a process
pays first touches of its memory). Each run of the pairs starts just after its file was read whole
(this VM's DAMON pages out file pages it sampled idle for a minute, by a sampled guess: VW's 396 MB
text was read from the disk by a run right after a full read, session 36).

``--commands`` (train) also times both tools as whole commands, each a new process as a user starts
it: ``python -m sparsetrain fit bench.yaml`` (the same config; Python's start-up, imports, numba's
cache loads and the run directory included) against ``python -m vowpalwabbit -d FILE ...`` (the
pip package's command line: the same driver, Python's start-up and the module's import included).

Prints the numbers, the ratios, and the machine's load average (other work on the machine slows
both sides; the ratios are the point).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "_work")
NUMERIC, CATEGORICAL = 13, 26


def data_file(rows: int) -> str:
    from sparsetrain.io.synthetic import generate

    path = os.path.join(WORK, f"criteo_like_{rows}.tsv")
    if not os.path.exists(path):
        os.makedirs(WORK, exist_ok=True)
        t = time.perf_counter()
        r = generate(path, format="csv", rows=rows, numeric=NUMERIC, categorical=CATEGORICAL, task="binary",
                     cardinality="zipf", vocabulary=10_000, seed=7)
        print(f"generated {path}: {r.bytes / 1e6:.0f} MB in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return path


def _schema(bits, crosses=()):
    from sparsetrain.io.csv_reader import CSVSchema

    return CSVSchema(header=True, label="label", numeric=[f"i{k + 1}" for k in range(NUMERIC)],
                     categorical=[f"c{j + 1}" for j in range(CATEGORICAL)], crosses=list(crosses), hash_bits=bits)


def _warm(path):
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(16 << 20)
        while f.readinto(buf):
            pass


def ours_parse(path, bits, workers):
    from sparsetrain.io.csv_reader import load_csv

    t = time.perf_counter()
    X, y, _ = load_csv(path, _schema(bits), "float32", workers=workers)
    return time.perf_counter() - t, X.asscipy(), y


def pandas_parse(path, bits):
    import pandas as pd
    import scipy.sparse as sp
    from sklearn.feature_extraction import FeatureHasher

    cats = [f"c{j + 1}" for j in range(CATEGORICAL)]
    nums = [f"i{k + 1}" for k in range(NUMERIC)]
    t = time.perf_counter()
    df = pd.read_csv(path, sep="\t", dtype={c: str for c in cats})
    keys = [(c + "=" + df[c]).to_numpy(dtype=object) for c in cats]
    rows = [[k for k in row if isinstance(k, str)] for row in zip(*keys)]
    hashed = FeatureHasher(2**bits, input_type="string", alternate_sign=False, dtype=np.float32).transform(rows)
    numeric = sp.csr_matrix(np.nan_to_num(df[nums].to_numpy(dtype=np.float32)))
    X = sp.hstack([hashed, numeric], format="csr")
    y = df["label"].to_numpy(dtype=np.float32)
    return time.perf_counter() - t, X, y


def _same_matrix(A, B, rows=2000):
    A, B = A[:rows].tocsr(), B[:rows].tocsr()
    A.eliminate_zeros()
    B.eliminate_zeros()
    if not np.array_equal(np.diff(A.indptr), np.diff(B.indptr)):
        return False
    return all(np.array_equal(np.sort(A.data[A.indptr[i]:A.indptr[i + 1]]), np.sort(B.data[B.indptr[i]:B.indptr[i + 1]]))
               for i in range(A.shape[0]))


def bench_parse(path, bits, repeat):
    size = os.path.getsize(path)
    _warm(path)
    ours_parse(path, bits, 1)  # numba's cache
    res = {}
    for name, workers in (("ours (1 thread)", 1), ("ours (default threads)", None)):
        best = math.inf
        for _ in range(repeat):
            c0 = time.process_time()
            s, X, y = ours_parse(path, bits, workers)
            if s < best:
                best, cpu = s, time.process_time() - c0
        res[name] = (best, cpu)
    print(f"file {path}: {size / 1e6:.0f} MB, {X.shape[0]} rows, {X.nnz} entries")
    try:
        c0 = time.process_time()
        s, Xp, yp = pandas_parse(path, bits)
        res["pandas + FeatureHasher"] = (s, time.process_time() - c0)
        same = _same_matrix(X, Xp) and np.array_equal(y, yp)
        print(f"same matrix (entries per row, values per row, labels; first 2000 rows): {same}")
    except ImportError as e:
        print(f"pandas + FeatureHasher: not available ({e})")
    # on a loaded machine the wall clock measures the load: the process CPU time is the work done
    for name, (s, cpu) in res.items():
        print(f"  {name:26s} {s:7.2f} s  {size / 1e6 / s:7.1f} MB/s wall;  process CPU {cpu:6.2f} s  "
              f"{size / 1e6 / cpu:7.1f} MB per CPU second")
    if "pandas + FeatureHasher" in res:
        ps, pc = res["pandas + FeatureHasher"]
        for name in ("ours (1 thread)", "ours (default threads)"):
            print(f"  ratio pandas+FeatureHasher / {name}: {ps / res[name][0]:.1f}x wall, "
                  f"{pc / res[name][1]:.1f}x CPU  (target >= 10x)")
    return res


def _train_config(path, bits, lr, tmp, cache="stream", fmt="csv", threads="auto"):
    from sparsetrain.config import config_from_dict

    return config_from_dict(_train_doc(path, bits, lr, tmp, cache, fmt, threads), source=os.path.join(tmp, "bench.yaml"))


def _train_doc(path, bits, lr, tmp, cache="stream", fmt="csv", threads="auto"):
    if fmt == "csv":
        d = 2**bits + NUMERIC
        data = {"format": "csv", "csv": {"header": True}, "label": "label",
                "numeric": [f"i{k + 1}" for k in range(NUMERIC)], "log1p": True,
                "categorical": [f"c{j + 1}" for j in range(CATEGORICAL)], "crosses": [["c1", "c2"]]}
    else:  # the file to_vw wrote: namespaces a (c1) and b (c2) crossed as `vw -q ab`
        d = 2**bits
        data = {"format": "vw", "crosses": [["a", "b"]]}
    doc = {
        "data": {"train": path, **data, "hash_bits": bits, "batch_size": 1, "cache": cache},
        "model": {"variables": {"data": {"stype": "csr"}, "label": {},
                                "weight": {"stype": "row_sparse", "shape": [d, 1], "init": "zero"},
                                "bias": {"shape": [1]}},
                  "ops": [{"name": "dot", "op": "sparse.dot", "inputs": ["data", "weight"]},
                          {"name": "pred", "op": "broadcast_add", "inputs": ["dot", "bias"]}],
                  "loss": {"name": "out", "op": "LogisticRegressionOutput", "data": "pred", "label": "label"}},
        "optimizer": {"name": "adagrad", "learning_rate": lr},
        "train": {"epochs": 1, "metrics": ["log_loss"], "engine": "compiled", "threads": threads},
        "output": tmp,
    }
    return doc


def ours_train(path, bits, lr, cache="stream", fmt="csv", threads="auto"):
    import tempfile

    from sparsetrain.trainer import Reporter, train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = _train_config(path, bits, lr, tmp, cache, fmt, threads)
        t = time.perf_counter()
        result = train(cfg, output_dir=os.path.join(tmp, "run"), reporter=Reporter())
        return time.perf_counter() - t, result.final["log_loss"], result.engine, result.final


def stream_parse(path, bits):
    """The parse of a streamed epoch alone: the file's chunks parsed on one thread, each block dropped."""
    from sparsetrain.io.chunks import STREAM_CHUNK_SIZE
    from sparsetrain.io.csv_reader import CSVReader

    rows = 0
    for block in CSVReader(path, _schema(bits, [["c1", "c2"]]), "float32", chunk_size=STREAM_CHUNK_SIZE, workers=1):
        rows += block.num_rows
    return rows


def to_vw(path, out):
    """The TSV as VW text: |a c1, |b c2, |c other categoricals, |n log1p numerics; labels ±1."""
    import csv

    with open(path, newline="") as f, open(out, "w") as g:
        r = csv.reader(f, delimiter="\t")
        next(r)
        for row in r:
            y = "1" if row[0] == "1" else "-1"
            nums = " ".join(f"i{k + 1}:{math.copysign(math.log1p(abs(float(v))), float(v)):.6g}"
                            for k, v in enumerate(row[1:1 + NUMERIC]) if v and float(v) != 0)
            cats = row[1 + NUMERIC:]
            other = " ".join(f"c{j + 1}={v}" for j, v in enumerate(cats) if v and j >= 2)
            a = f"c1={cats[0]}" if cats[0] else ""
            b = f"c2={cats[1]}" if cats[1] else ""
            g.write(f"{y} |a {a} |b {b} |c {other} |n {nums}\n")


def _lines(path) -> int:
    from sparsetrain.io.text_pipeline import count_newlines

    return int(count_newlines(np.memmap(path, np.uint8, mode="r"))) if os.path.getsize(path) else 0


def vw_file(path) -> str:
    """The VW text of the TSV ``path``, made once; made again when its rows are not the TSV's (a copy
    cut short, or made from a prefix: one such file held 120,000 of 1M rows, session 33)."""
    vw_path = path[:-4] + ".vw"
    if not os.path.exists(vw_path) or _lines(vw_path) != _lines(path) - 1:  # (the TSV has a header line)
        t = time.perf_counter()
        to_vw(path, vw_path)
        print(f"wrote {vw_path} in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return vw_path


def _vw_args(vw_path, bits):
    return ["-d", vw_path, "--loss_function", "logistic", "-b", str(bits), "-q", "ab", "--quiet"]


def vw_train(vw_path, bits):
    """One pass of VW over ``vw_path``: ``Workspace`` with ``-d`` runs the ``vw`` command's driver (parse and
    learn, to the end of the file) before it returns."""
    import vowpalwabbit

    t = time.perf_counter()
    ws = vowpalwabbit.Workspace(arg_list=_vw_args(vw_path, bits))
    loss = ws.get_sum_loss() / ws.get_weighted_examples()
    ws.finish()
    return time.perf_counter() - t, loss


def _busy_seconds() -> float:
    """CPU seconds every core of the machine has been busy, all processes (``/proc/stat``; nan elsewhere)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return math.nan
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # (less idle and iowait)


def _read_from_disk() -> int:
    """Bytes this process has had read from the disk, not the page cache (``/proc/self/io``; 0 elsewhere)."""
    try:
        with open("/proc/self/io") as f:
            return int(next(line for line in f if line.startswith("read_bytes:")).split()[1])
    except (OSError, StopIteration, ValueError):
        return 0


def _process_times() -> dict:
    """``{pid: (command, CPU s)}`` of the machine's processes (``/proc``; empty elsewhere)."""
    tick, found = os.sysconf("SC_CLK_TCK"), {}
    for pid in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    stat = f.read()
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            found[pid] = (command or stat[stat.index("(") + 1:stat.rindex(")")], (int(fields[11]) + int(fields[12])) / tick)
    return found


def timed(fn):
    """``fn()``'s ``(result, wall s, our CPU s (this process and its children), others' CPU s meanwhile, the
    bytes read from the disk (the data not in the page cache), the process that used the most CPU meanwhile,
    (our system CPU s, our page faults))``."""
    import resource

    def ours():
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return (time.process_time() + kids.ru_utime + kids.ru_stime, me.ru_stime + kids.ru_stime,
                me.ru_minflt + kids.ru_minflt)

    p0 = _process_times()
    b0, (c0, s0, f0), d0, t0 = _busy_seconds(), ours(), _read_from_disk(), time.perf_counter()
    result = fn()
    wall, (c1, s1, f1) = time.perf_counter() - t0, ours()
    cpu = c1 - c0
    disk, others = _read_from_disk() - d0, max(_busy_seconds() - b0 - cpu, 0.0)
    used = sorted(((t - p0.get(pid, ("", 0.0))[1], command) for pid, (command, t) in _process_times().items()),
                  reverse=True)
    top = f"{used[0][1][:60]} {used[0][0]:.2f} s" if used and used[0][0] > 0 else ""
    return result, wall, cpu, others, disk, top, (s1 - s0, f1 - f0)


def _clean(wall, others, disk) -> bool:
    # others used under 5 % of a core (and /proc/stat's 10 ms ticks: 3 of slack), the data came from the cache
    return others < 0.05 * wall + 0.03 and disk < 1 << 20


def _run_line(name, wall, cpu, others, disk, top, faults) -> str:
    line = f"{name} {wall:5.2f} s wall, {cpu:5.2f} s CPU ({faults[0]:4.2f} system, {faults[1] / 1e3:.1f}k page faults; others {others:4.2f}"
    if not _clean(wall, others, disk):
        line += f"{f'; most: {top}' if top else ''}{f'; {disk / 1e6:.0f} MB read from the disk' if disk >= 1 << 20 else ''}"
    return line + ")"


def _ratios_line(ratios, what):
    return f"{min(ratios):.1f}x .. {max(ratios):.1f}x, median {statistics.median(ratios):.1f}x wall over {what}"


def bench_pairs(path, vw_path, bits, lr, pairs):
    """``pairs`` runs of ours (TSV, stream) and VW, in turn first, each just after its file was read (this VM
    pages out file pages idle for a minute, a sampled guess: VW's file was read from the disk right after a
    read); every pair's ratio, and over the clean ones."""
    sides = {"ours": (path, lambda: ours_train(path, bits, lr, "stream")[:2]), "vw": (vw_path, lambda: vw_train(vw_path, bits))}
    ratios, clean = [], []
    for k in range(pairs):
        runs = {}
        for name in (("ours", "vw") if k % 2 == 0 else ("vw", "ours")):
            _warm(sides[name][0])
            runs[name] = timed(sides[name][1])
        ((s, loss), _, *o), ((vs, vloss), _, *v) = runs["ours"], runs["vw"]  # (walls: the calls')
        ratios.append(vs / s)
        ok = _clean(s, *o[1:3]) and _clean(vs, *v[1:3])  # (o, v: CPU, others, disk, top, faults)
        if ok:
            clean.append(vs / s)
        print(f"  pair {k + 1} ({'ours' if k % 2 == 0 else 'VW'} first): {_run_line('ours (TSV, stream)', s, *o)}; "
              f"{_run_line('vowpalwabbit', vs, *v)}; ratio {vs / s:.1f}x wall{'' if ok else ' (not clean)'}; "
              f"log-loss ours/vw - 1: {100 * (loss / vloss - 1):+.1f} %")
    over_clean = _ratios_line(clean, f"the {len(clean)} clean pairs") if clean else "no pair clean"
    print(f"  ratio vw / ours (TSV, stream): {_ratios_line(ratios, f'{pairs} pairs')}; {over_clean}  (issue target >= 5x)")


def bench_commands(path, vw_path, bits, lr, pairs):
    """Both tools as whole commands, each run a new process, in turn first."""
    import subprocess
    import tempfile

    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        config = os.path.join(tmp, "bench.yaml")
        with open(config, "w") as f:
            yaml.safe_dump(_train_doc(path, bits, lr, tmp), f)
        commands = {"ours": [sys.executable, "-m", "sparsetrain", "fit", config, "--output", os.path.join(tmp, "run"),
                             "--overwrite", "-q"],
                    "vw": [sys.executable, "-m", "vowpalwabbit", *_vw_args(vw_path, bits)]}
        ratios = []
        for k in range(pairs):
            runs = {}
            for name in (("ours", "vw") if k % 2 == 0 else ("vw", "ours")):
                _warm(path if name == "ours" else vw_path)
                runs[name] = timed(lambda: subprocess.run(commands[name], capture_output=True, check=True))
            (_, s, *o), (_, vs, *v) = runs["ours"], runs["vw"]
            ratios.append(vs / s)
            print(f"  command pair {k + 1}: {_run_line('sparsetrain fit', s, *o)}; {_run_line('python -m vowpalwabbit', vs, *v)}; "
                  f"ratio {vs / s:.1f}x")
        print(f"  ratio vw / ours as whole commands: {_ratios_line(ratios, f'{pairs} pairs')}")


def page_cache(path, mode):
    """Make ``path``'s page cache warm: ``fresh`` drops it and reads the file back through a streaming chunk
    pass of sparsetrain's (as a first read leaves it: mostly 2 MiB pages), ``keep`` reads it as it is cached;
    prints the share the cache holds in 2 MiB pages (a streamed pass maps and releases every page of the file:
    ~0.04 CPU s more a pass of the TSV in 4 KiB pages, see benchmarks.parse_kernel --page-cache)."""
    from .parse_kernel import huge_share, read_cold

    if mode == "fresh":
        read_cold(path)
    _warm(path)
    print(f"  page cache ({mode}): {huge_share(path):.0%} of {os.path.basename(path)} in 2 MiB pages")


def bench_train(path, bits, lr, pairs=3, cache_mode="fresh", commands=False):
    small = data_file(20_000)
    ours_train(small, bits, lr)  # compile into numba's cache
    page_cache(path, cache_mode)
    runs = {}
    for name, cache, threads in (("stream", "stream", "auto"), ("stream, 1 thread", "stream", 1), ("memory", "memory", "auto")):
        c0 = time.process_time()
        s, loss, engine, record = ours_train(path, bits, lr, cache, threads=threads)
        runs[name] = (s, time.process_time() - c0, loss, engine, record)
    for name, (s, cpu, loss, engine, record) in runs.items():
        print(f"  ours ({engine}, data.cache: {name:16s}) {s:7.2f} s wall, {cpu:6.2f} s CPU  log_loss {loss:.4f}  "
              f"(epoch {record['seconds']:.2f} s, waiting for data {record['data_seconds']:.2f} s)")
    c0 = time.process_time()
    stream_parse(path, bits)
    print(f"  stage: parse + hash with the cross, streamed chunks on one thread: {time.process_time() - c0:.2f} s CPU")
    s, cpu, loss, _, _ = runs["stream"]
    try:
        import vowpalwabbit  # noqa: F401
    except ImportError as e:
        print(f"  vowpalwabbit: not available ({e})")
        return
    vw_path, small_vw = vw_file(path), vw_file(small)
    ours_train(small_vw, bits, lr, fmt="vw")  # numba's cache for the VW kernel
    vw_train(small_vw, bits)  # VW's first run in this process (its memory), as ours' warm-up
    page_cache(vw_path, cache_mode)
    c0 = time.process_time()
    ws, wloss, wengine, wrecord = ours_train(vw_path, bits, lr, "stream", "vw")
    wcpu = time.process_time() - c0
    c0 = time.process_time()
    vs, vloss = vw_train(vw_path, bits)
    vcpu = time.process_time() - c0
    print(f"  ours ({wengine}, the same VW file, stream) {ws:7.2f} s wall, {wcpu:6.2f} s CPU  log_loss {wloss:.4f}  "
          f"(epoch {wrecord['seconds']:.2f} s, waiting for data {wrecord['data_seconds']:.2f} s)")
    print(f"  vowpalwabbit (text, 1 pass)              {vs:7.2f} s wall, {vcpu:6.2f} s CPU  log_loss {vloss:.4f}")
    print(f"  ratio vw / ours (TSV, stream): {vs / s:.1f}x wall, {vcpu / cpu:.1f}x CPU  (issue target >= 5x); log-loss "
          f"ours/vw - 1: {100 * (loss / vloss - 1):+.1f} %  (target within 2 %)")
    if pairs > 0:
        bench_pairs(path, vw_path, bits, lr, pairs)
    if commands:
        bench_commands(path, vw_path, bits, lr, max(pairs, 1))
    s1, cpu1, loss1, _, _ = runs["stream, 1 thread"]
    print(f"  ratio vw / ours (TSV, stream, train.threads: 1): {vs / s1:.1f}x wall, {vcpu / cpu1:.1f}x CPU; log-loss "
          f"ours/vw - 1: {100 * (loss1 / vloss - 1):+.1f} %")
    print(f"  ratio vw / ours (VW file, stream): {vs / ws:.1f}x wall, {vcpu / wcpu:.1f}x CPU; log-loss ours/vw - 1: "
          f"{100 * (wloss / vloss - 1):+.1f} %")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--bits", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", choices=["parse", "train"])
    ap.add_argument("--pairs", type=int, default=3, help="runs of ours (TSV, stream) and VW one after the other")
    ap.add_argument("--commands", action="store_true", help="train: also both tools as whole commands, --pairs times")
    ap.add_argument("--page-cache", choices=("fresh", "keep"), default="fresh",
                    help="train: the data files' page cache dropped and read back first (fresh), or as it is (keep)")
    a = ap.parse_args(argv)
    path = data_file(a.rows)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if a.only in (None, "parse"):
        print("parse + hash:")
        bench_parse(path, a.bits, a.repeat)
    if a.only in (None, "train"):
        print(f"logistic regression, batch 1, one epoch from the text file, 2**{a.bits} buckets, cross c1 x c2:")
        bench_train(path, a.bits, a.lr, a.pairs, a.page_cache, a.commands)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
