"""Streamed epochs against in-memory epochs on the compiled engine, and the memory streaming takes.

    python -m benchmarks.stream [--rows 500000] [--features 1000000] [--batch-sizes 256 1] [--repeat 4]
                                [--chunk-mb MiB] [--also-chunk-mb MiB ...] [--workers N] [--ahead N] [--against REV ...] [--trace]
                                [--page-cache fresh|keep]
    python -m benchmarks.stream --rss [--rss-gb 0.75 1.5]
    python -m benchmarks.stream --beside [--batch-sizes 1] [--repeat 7]

Speed (samples/s of streamed and disk-cached epochs against in-memory ones): one LibSVM file (``benchmarks/_work/reg_full_<rows>x<features>.libsvm``, made with
``generate_libsvm`` as ``benchmarks.run`` makes it; zipf columns, 23 nnz/row); a linear regression
(row-sparse weight, plain SGD as ``benchmarks.run``, ``rescale_grad = 1/batch``, ``last_batch: discard``)
trained one epoch at a time through ``Module.run_epoch(engine="compiled")`` from an ``NDArrayIter``
over the parsed file (parsed once, not timed) and from a ``LibSVMIter`` over the file (parsed every
epoch, timed: that is the point) and from an ``NDArrayIter`` over the file's disk cache
(``io/disk_cache.py``, memory-mapped; built on the first run), in turn after one untimed warm-up
epoch of each. Prints samples/s and the ratios streamed / in-memory (target ≥ 0.8) and disk /
in-memory (target ≥ 0.9) with the machine's load, each epoch's CPU seconds (all threads) and the CPU
seconds other processes used meanwhile (a streamed epoch needs both cores).
A fourth, interleaved variant streams with only the parser threads parsing (``io/pipeline.py``'s
``CORE_SHARE.any_thread`` off: the trainer sleeps until a parser thread has parsed its next chunk), as
before session 30: what parsing on any thread gives.
Ratios are printed for the best epochs, as the median of the per-round ratios and as the median over
the clean rounds (other processes used < ``CLEAN`` CPU s beside both epochs of the ratio).
Where a streamed epoch's time goes (Linux, ``/proc/self/task/*/schedstat``; median over the epochs): the
training thread on a core (training, cutting the pieces, and parsing while it waits for its next
chunk), waiting for one (run queue) and asleep (waiting for a parser thread's chunk); the other threads
that used CPU ("parsers": the parser threads) on a core and waiting for one; the rest of the process's
CPU; and
the core-seconds no process used (cores × wall less the machine's busy time). ``--ahead N``: chunks
in flight beyond one per parser thread (``io/pipeline.py``'s ``AHEAD``), to try a deeper pipeline.
``--trace``: each streamed epoch's threads are traced (timestamps around every parse, every piece's
training and the trainer's sleeps) and the idle core-milliseconds (the cores less the threads with work:
the trainer unless asleep, a thread inside a parse) are printed by phase (median over the epochs): before
the first piece trains, while chunks parse, after the last parse ends (the trainer alone with what is
left), with the trainer's wall time split into training, parsing, sleeping and the rest (cutting pieces,
the engine's Python between calls); the trace itself costs a little CPU.
``--also-chunk-mb MiB [MiB ...]``: further streamed variants reading chunks of these sizes, interleaved with
the others in the same process (the parse kernel's speed moves from one process to the next: chunk sizes
compared across processes are not). ``--against REV [REV ...]``: the LibSVM kernel modules of each git revision (copied as
``benchmarks.parse_kernel`` does) parse a further interleaved variant of the streamed epoch (and a
parse-alone line of its own): kernel changes A/B'd inside the streamed epoch, in one process.

The page cache: a streamed epoch maps the file's pages into the process and out again every pass, which
costs ~0.02 CPU s a pass of this file more when its page cache holds it in 4 KiB pages than in 2 MiB ones
(``benchmarks.parse_kernel --page-cache``; this VM's DAMON splits and evicts cold page-cache pages over hours,
so a file's state depends on when it was last read cold). ``--page-cache fresh`` (the default) first drops the
file's cached pages and reads them back as a first sparsetrain run on the file does (mostly 2 MiB pages), before
anything else reads it, so that runs compare; ``keep`` leaves the cache as found. The share in 2 MiB pages is
printed as found, after that and at the end (every variant's epochs run interleaved, in that same state).

Parse speed inside the pipeline: the file read through ``LibSVMReader`` (the streamed epoch's
chunk size and parser threads), wall and CPU, and what two cores allow: a streamed epoch needs
the parse CPU plus the in-memory epoch's CPU, so its time is at least the larger of the training
alone and (parse CPU + training CPU) / cores; the bound on the ratio is printed beside it.

Memory (``--rss``): files of the given sizes (GB of text) are generated, and for each a child
process streams one epoch; its peak RSS (``ru_maxrss``) is printed against the model's size (the weight,
and momentum, float32). The target: peak ≤ model + 300 MB, and the same for both sizes.
What the other core's work costs the training (``--beside``): the training thread's CPU seconds of in-memory
epochs alone and with another thread busy beside them the whole epoch, in turn each round: parsing the file
(``LibSVMReader``, one parser thread), a loop of arithmetic on registers (no memory traffic: what two busy cores
cost each other on this machine, e.g. a lower clock or shared execution units), and a loop reading a 64 MiB
array (memory and shared-cache traffic). A streamed epoch trains beside the parse: its training thread's CPU
for the same rows is the "parse" line's, not the "alone" one's.
Nothing here is a test: no timing is asserted anywhere.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time

import numpy as np

WORK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_work")
#: CPU seconds other processes may use beside an epoch for its round to count as clean
CLEAN = 0.03


def _file(rows: int, features: int, nnz: int = 23) -> str:
    from sparsetrain.io.synthetic import generate_libsvm

    path = os.path.join(WORK, f"reg_full_{rows}x{features}.libsvm")
    if not os.path.exists(path):
        os.makedirs(WORK, exist_ok=True)
        generate_libsvm(path, rows=rows, features=features, nnz_per_row=nnz, columns="zipf", zipf_a=1.2,
                        task="regression", target="random", noise=0.1, seed=0)
    return path


def _module(it, features: int, batch: int):
    import sparsetrain as st

    data = st.sym.Variable("data", stype="csr")
    w = st.sym.Variable("weight", stype="row_sparse", shape=(features, 1), init=st.initializer.Zero())
    pred = st.sym.broadcast_add(st.sym.sparse.dot(data, w), st.sym.Variable("bias", shape=(1,)))
    loss = st.sym.LinearRegressionOutput(data=pred, label=st.sym.Variable("label"), name="out")
    mod = st.mod.Module(loss, data_names=["data"], label_names=["label"])
    mod.bind(it.provide_data, it.provide_label)
    mod.init_params()
    lr = 0.05 if batch == 1 else 0.25
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": lr,
                                                          "rescale_grad": 1.0 / batch})
    return mod


def _epoch(mod, it, waits: list | None = None) -> tuple[float, int, str]:
    """One epoch: (seconds, samples, the engine's reason); ``waits`` receives the seconds the
    training thread waited for data (a streamed epoch: for the parser)."""
    import sparsetrain as st

    stats = mod.run_epoch(it, st.metric.create("mse"), engine="compiled")
    if waits is not None:
        waits.append(stats.data_seconds)
    return stats.seconds, stats.samples, mod.engine_choice[1]


def _schedstat() -> dict:
    """{thread id: (seconds on a core, seconds waiting in the run queue)} of this process's threads
    (Linux; empty elsewhere)."""
    out = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/schedstat") as f:
                run, wait, _ = f.read().split()
        except (OSError, ValueError):
            continue
        out[tid] = (int(run) / 1e9, int(wait) / 1e9)
    return out


def _where(before: dict, after: dict, wall: float, cpu: float, machine_busy, cores: int) -> dict:
    """One streamed epoch's time by thread (see the module's doc); ``machine_busy``: the machine's busy
    CPU seconds meanwhile, or None."""
    main = str(threading.get_native_id())
    if main not in before or main not in after:
        return {}
    d = {tid: (after[tid][0] - r, after[tid][1] - w) for tid, (r, w) in before.items() if tid in after}
    run, wait = d.pop(main)
    parsers = [v for v in d.values() if v[0] > 0.001]
    out = {"trainer on a core": run, "trainer in the run queue": wait, "trainer asleep": wall - run - wait,
           "parsers on a core": sum(v[0] for v in parsers), "parsers in the run queue": sum(v[1] for v in parsers),
           "rest of the process": cpu - run - sum(v[0] for v in parsers)}
    if machine_busy is not None:
        out["idle core-seconds"] = max(0.0, cores * wall - machine_busy)
    return out


class _Trace:
    """``--trace``: timestamps of a streamed epoch's parses, pieces' training and the trainer's sleeps (the
    functions wrapped in place: this is a benchmark)."""

    def __init__(self):
        from sparsetrain.engines.compiled import stream
        from sparsetrain.io import pipeline

        self.events: list = []  # (thread id, kind, start, end)
        self.on = False
        trace = self
        execute, run_epoch = pipeline._Task.execute, stream.run_epoch

        def traced_execute(task):
            t0 = time.perf_counter()
            try:
                return execute(task)
            finally:
                trace.add("parse", t0)

        def traced_run_epoch(view, train_data, run_piece, *args, **kw):
            def piece(*a):
                t0 = time.perf_counter()
                try:
                    return run_piece(*a)
                finally:
                    trace.add("train", t0)
            return run_epoch(view, train_data, piece, *args, **kw)

        class Condition(threading.Condition):
            def wait(self, timeout=None):
                t0 = time.perf_counter()
                try:
                    return super().wait(timeout)
                finally:
                    trace.add("sleep", t0)

        pipeline._Task.execute, stream.run_epoch = traced_execute, traced_run_epoch
        pipeline.CORE_SHARE._cond = Condition()  # (nothing waits on it between epochs)

    def add(self, kind: str, t0: float) -> None:
        if self.on:
            self.events.append((threading.get_native_id(), kind, t0, time.perf_counter()))

    def epoch(self, start: float, end: float, cores: int) -> dict:
        """Idle core-ms by phase and the trainer's ms by activity of the epoch in ``[start, end]``."""
        me = threading.get_native_id()
        events, self.events = self.events, []
        points, spent = [], {"training": 0.0, "parsing": 0.0, "asleep": 0.0}
        for tid, kind, a, b in events:
            if tid == me:
                spent[{"train": "training", "parse": "parsing", "sleep": "asleep"}[kind]] += b - a
                if kind == "sleep":
                    points += [(a, -1), (b, 1)]
            elif kind == "parse":
                points += [(a, 1), (b, -1)]
        trains = [a for tid, kind, a, b in events if kind == "train"]
        parses = [b for tid, kind, a, b in events if kind == "parse"]
        if not trains or not parses:
            return {}
        phases = (("before the first piece trains", start, min(trains)), ("while chunks parse", min(trains), max(parses)),
                  ("after the last parse", max(parses), end))
        idle = dict.fromkeys((name for name, _, _ in phases), 0.0)
        busy, last = 1, start  # the trainer has work unless asleep

        def account(t0, t1):
            for name, lo, hi in phases:
                if min(t1, hi) > max(t0, lo):
                    idle[name] += (min(t1, hi) - max(t0, lo)) * max(0, cores - busy)

        for t, d in sorted(points):
            t = min(max(t, start), end)
            account(last, t)
            last, busy = t, busy + d
        account(last, end)
        out = {f"idle core-ms {k}": 1e3 * v for k, v in idle.items()}
        out.update({f"trainer ms {k}": 1e3 * v for k, v in spent.items()})
        out["trainer ms on the rest"] = 1e3 * (end - start) - sum(out[f"trainer ms {k}"] for k in spent)
        return out


def _page_cache(path: str, mode: str) -> None:
    """``--page-cache``: the file's page cache made fresh (dropped and read back as sparsetrain reads a file not
    cached) or kept; prints the share in 2 MiB pages as found and now (see the module's doc)."""
    from .parse_kernel import huge_share, read_cold

    found = huge_share(path)
    if mode == "fresh":
        read_cold(path)
    print(f"page cache ({mode}): {found:.0%} of the file in 2 MiB pages as found, {huge_share(path):.0%} now")


def beside(args) -> None:
    """``--beside``: the training thread's CPU of in-memory epochs alone and beside other work (see the module's doc)."""
    from numba import njit

    import sparsetrain as st

    @njit(nogil=True)
    def arithmetic(n):
        x = 1.0
        for _ in range(n):
            x = x * 1.0000001 + 1e-9
        return x

    @njit(nogil=True)
    def read(a):
        s = 0.0
        for i in range(0, a.shape[0], 8):  # a float64 per 64-byte line
            s += a[i]
        return s

    path = args.file or _file(args.rows, args.features)
    _page_cache(path, args.page_cache)
    X, y = st.io.load_libsvm(path, num_features=args.features, zero_based=True)
    big = np.ones(64 << 17)
    arithmetic(10), read(big[:8])
    reader = st.io.LibSVMReader(path, num_features=args.features, zero_based=True, num_labels=1, workers=1)
    stop = threading.Event()
    work = {"arithmetic": lambda: arithmetic(2_000_000), "memory": lambda: read(big),
            "parse": lambda: all(not stop.is_set() for _ in reader)}

    def busy(kind):
        while not stop.is_set():
            work[kind]()

    for batch in args.batch_sizes:
        it = st.io.NDArrayIter(X, y, batch, last_batch_handle="discard", label_name="label")
        mod = _module(it, args.features, batch)
        metric = st.metric.create("mse")
        mod.run_epoch(it, metric, engine="compiled")
        cpu = {kind: [] for kind in ("alone", "parse", "arithmetic", "memory")}
        for _ in range(args.repeat):
            for kind in cpu:
                thread = None
                if kind != "alone":
                    stop.clear()
                    thread = threading.Thread(target=busy, args=(kind,))
                    thread.start()
                    time.sleep(0.02)  # under way before the epoch starts
                c0 = time.thread_time()
                mod.run_epoch(it, metric, engine="compiled")
                cpu[kind].append(time.thread_time() - c0)
                if thread is not None:
                    stop.set()
                    thread.join()
        alone = np.median(cpu["alone"])
        print(f"batch {batch:>4}: the training thread's CPU s per in-memory epoch (median of {args.repeat}, min): "
              + ", ".join(f"{kind} {np.median(v):.4f} ({min(v):.4f}, {np.median(v) / alone:.2f}x)" for kind, v in cpu.items())
              + f"   load {os.getloadavg()[0]:.1f}")


def _parse_speed(path, features, chunk_mb, repeat, workers=None) -> float:
    """Best CPU seconds of reading the file through the streaming reader (printed with MB/s)."""
    import sparsetrain as st
    from sparsetrain.io.chunks import STREAM_CHUNK_SIZE

    size = os.path.getsize(path)
    best_wall = best_cpu = float("inf")
    # one reader for every pass, as a streamed epoch's iterator: its chunks parse into the arrays of the
    # previous pass's (io/pipeline.py's BufferPool); a new reader per pass would count the page faults of
    # fresh arrays (0.02-0.03 s CPU here) that a streamed epoch does not pay
    reader = st.io.LibSVMReader(path, num_features=features, zero_based=True, num_labels=1,
                                chunk_size=int(chunk_mb * 2**20) if chunk_mb else STREAM_CHUNK_SIZE, workers=workers)
    for _ in range(repeat + 1):  # the first pass warms the page cache
        t0, c0 = time.perf_counter(), time.process_time()
        for _block in reader:
            pass
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    print(f"parse alone ({reader.workers} parser threads): {best_wall:.3f}s wall = {size / best_wall / 1e6:,.0f} MB/s, "
          f"{best_cpu:.3f}s CPU = {size / best_cpu / 1e6:,.0f} MB/s per core   load {os.getloadavg()[0]:.1f}")
    return best_cpu


def speed(args) -> None:
    import sparsetrain as st
    from sparsetrain.io import libsvm_parse, pipeline
    from sparsetrain.io.pipeline import CORE_SHARE

    from .parse_kernel import huge_share
    from .threads import cpu_clock, foreign_seconds

    path = args.file or _file(args.rows, args.features)
    _page_cache(path, args.page_cache)
    trace = _Trace() if args.trace else None
    if args.ahead is not None:
        pipeline.AHEAD = args.ahead
    X, y = st.io.load_libsvm(path, num_features=args.features, zero_based=True)
    print(f"file {path}: {os.path.getsize(path) / 2**20:.0f} MiB, {X.shape[0]} rows; load {os.getloadavg()}")
    os.environ.setdefault("SPARSETRAIN_CACHE_DIR", os.path.join(WORK, "cache"))
    from sparsetrain.io.disk_cache import load_cached
    from sparsetrain.ndarray import CSRNDArray

    t0 = time.perf_counter()
    data, indices, indptr, labels, _ = load_cached(
        path, {"format": "libsvm", "zero_based": True, "num_features": args.features, "dtype": "float32"},
        lambda: iter(st.io.LibSVMReader(path, num_features=args.features, zero_based=True, num_labels=1)),
        "float32", args.features)
    print(f"disk cache ready in {time.perf_counter() - t0:.2f}s (built on the first run)")
    parse_cpu = _parse_speed(path, args.features, args.chunk_mb, args.repeat, args.workers)
    kernel = {}  # the variant -> the kernel module its chunks parse with (--against)
    other_parse_cpu = {}
    if args.against:
        from .parse_kernel import _kernel_at

        this = libsvm_parse.K
        kernel = {name: this for name in ("memory", "stream", "disk", "parser threads only")}
        for rev in args.against:
            libsvm_parse.K = kernel[f"stream at {rev}"] = _kernel_at(rev, f"ab_kernels_{rev}")
            print(f"at {rev}: ", end="")
            other_parse_cpu[rev] = _parse_speed(path, args.features, args.chunk_mb, args.repeat, args.workers)
        libsvm_parse.K = this
    cores = len(os.sched_getaffinity(0))
    size = os.path.getsize(path)
    Xd, yd = CSRNDArray(data, indices, indptr, X.shape), labels.astype(np.float32)
    for batch in args.batch_sizes:
        memory = st.io.NDArrayIter(X, y, batch, last_batch_handle="discard", label_name="label")
        disk = st.io.NDArrayIter(Xd, yd, batch, last_batch_handle="discard", label_name="label")
        streamed = st.io.LibSVMIter(path, (args.features,), batch_size=batch, label_name="label",
                                    zero_based=True, last_batch_handle="discard", workers=args.workers,
                                    **_chunk(args.chunk_mb))
        # "parser threads only": the same streamed epoch with only the parser threads parsing (io/pipeline.py's
        # CORE_SHARE.any_thread off), to show what the consumer and the waiting trainer parsing gives
        iters = {"memory": memory, "stream": streamed, "disk": disk, "parser threads only": streamed}
        for rev in args.against or []:
            iters[f"stream at {rev}"] = streamed
        for mb in args.also_chunk_mb or []:
            iters[f"stream, {mb:g} MiB chunks"] = st.io.LibSVMIter(
                path, (args.features,), batch_size=batch, label_name="label", zero_based=True,
                last_batch_handle="discard", workers=args.workers, **_chunk(mb))
        mods = {name: _module(it, args.features, batch) for name, it in iters.items()}
        for name in mods:  # warm-up: kernels loaded, page cache warm
            libsvm_parse.K = kernel.get(name, libsvm_parse.K)
            _epoch(mods[name], iters[name])
        times = {name: [] for name in iters}
        cpu = {name: [] for name in iters}
        waits: list = []
        reasons = {}
        foreign = {name: [] for name in iters}
        where: dict = {}
        traced: dict = {}
        for _ in range(args.repeat):
            for name in iters:  # interleaved: a burst of load hits every kind alike
                CORE_SHARE.any_thread = name != "parser threads only"
                libsvm_parse.K = kernel.get(name, libsvm_parse.K)
                if trace is not None:
                    trace.on = name == "stream"
                c0, start, threads0, w0 = time.process_time(), cpu_clock(), _schedstat(), time.perf_counter()
                seconds, samples, reasons[name] = _epoch(mods[name], iters[name], waits if name == "stream" else None)
                wall, threads1, end = time.perf_counter() - w0, _schedstat(), cpu_clock()
                if trace is not None and name == "stream":
                    trace.on = False
                    for k, v in trace.epoch(w0, w0 + wall, cores).items():
                        traced.setdefault(k, []).append(v)
                cpu[name].append(time.process_time() - c0)
                foreign[name].append(foreign_seconds(start))
                if name == "stream":
                    busy = None if start is None else end[0] - start[0]
                    for k, v in _where(threads0, threads1, wall, cpu[name][-1], busy, cores).items():
                        where.setdefault(k, []).append(v)
                times[name].append(samples / seconds)
        CORE_SHARE.any_thread = True
        libsvm_parse.K = kernel.get("stream", libsvm_parse.K)
        m, s, d, e = (max(times[name]) for name in ("memory", "stream", "disk", "parser threads only"))
        med = {name: np.median(np.array(times[name]) / np.array(times["memory"])) for name in times}
        mc, sc, dc = (min(cpu[name]) for name in ("memory", "stream", "disk"))
        bound = mc / max(mc, (parse_cpu + mc) / cores)  # CPU seconds: the load inflates wall times, not these
        print(f"batch {batch:>4}: in memory {m:>11,.0f}/s  streamed {s:>11,.0f}/s  ratio {s / m:.2f} (target >= 0.8)"
              f"  disk cache {d:>11,.0f}/s  ratio {d / m:.2f} (target >= 0.9)  load {os.getloadavg()[0]:.1f}")
        print(f"            CPU s/epoch: in memory {mc:.3f}, streamed {sc:.3f}, disk {dc:.3f}; on {cores} cores the "
              f"streamed ratio is at most {bound:.2f} (parse CPU + training CPU over the cores); 0.8 needs a parse of "
              f"<= {cores * mc / 0.8 - mc:.3f} CPU s ({size / (cores * mc / 0.8 - mc) / 1e6:,.0f} MB/s per core) with "
              f"perfect overlap")
        print(f"            streamed with only the parser threads parsing: {e:>11,.0f}/s  ratio {e / m:.2f}; "
              f"median of the rounds' ratios: streamed {med['stream']:.2f}, parser threads only "
              f"{med['parser threads only']:.2f}, disk {med['disk']:.2f}")
        for rev in args.against or []:
            name = f"stream at {rev}"
            a, ac = max(times[name]), min(cpu[name])
            print(f"            streamed with the kernel at {rev}: {a:>11,.0f}/s  ratio {a / m:.2f} (median of the "
                  f"rounds' {med[name]:.2f}), CPU s/epoch {ac:.3f} (this tree's {sc:.3f}); parse alone "
                  f"{other_parse_cpu[rev]:.3f} CPU s (this tree's {parse_cpu:.3f})")
        for mb in args.also_chunk_mb or []:
            name = f"stream, {mb:g} MiB chunks"
            a, ac = max(times[name]), min(cpu[name])
            print(f"            streamed with {mb:g} MiB chunks: {a:>11,.0f}/s  ratio {a / m:.2f} (median of the rounds' "
                  f"{med[name]:.2f}), CPU s/epoch {ac:.3f} (the default chunks' {sc:.3f})")
        print(f"            the streamed epoch's training thread waited {min(waits):.3f}s for parsed chunks (best epoch)")
        if foreign["stream"][0] is not None:
            # a round counts where no other process took CPU beside this variant's epoch or the in-memory one
            clean = {name: [t / m_ for t, m_, f, fm in zip(times[name], times["memory"], foreign[name], foreign["memory"])
                            if f < CLEAN and fm < CLEAN] for name in times if name != "memory"}
            print(f"            median of the clean rounds' ratios (other processes < {CLEAN} CPU s in both epochs): "
                  + ", ".join(f"{name} {np.median(r):.2f} ({len(r)} of {args.repeat})" if r else f"{name} - (0)"
                              for name, r in clean.items()))
            print("            other processes' CPU s per epoch (median, max): " + ", ".join(
                f"{name} {np.median(f):.2f} {max(f):.2f}" for name, f in foreign.items()))
        if where:
            print("            where a streamed epoch's time went (s, median): " + ", ".join(
                f"{k} {np.median(v):.3f}" for k, v in where.items()))
        if traced:
            print("            traced streamed epochs (median): " + ", ".join(
                f"{k} {np.median(v):.1f}" for k, v in traced.items()))
        print(f"            streamed engine: {reasons['stream']}")
    print(f"page cache at the end: {huge_share(path):.0%} of the file in 2 MiB pages")


def _chunk(chunk_mb) -> dict:
    return {"chunk_size": int(chunk_mb * 2**20)} if chunk_mb else {}


def _child(path: str, features: int, chunk_mb) -> None:
    import sparsetrain as st

    it = st.io.LibSVMIter(path, (features,), batch_size=256, label_name="label", zero_based=True,
                          **_chunk(chunk_mb),
                          last_batch_handle="discard")
    mod = _module(it, features, 256)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds, samples, _ = _epoch(mod, it)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{before * 1024} {peak * 1024} {samples} {seconds}")


def rss(args) -> None:
    from sparsetrain.io.synthetic import generate_libsvm

    features = args.features
    model = features * 4  # the float32 weight (plain SGD keeps no state)
    paths = list(args.rss_files or [])
    for gb in ([] if paths else args.rss_gb):
        rows = int(gb * 2**30 / 300)  # ~300 bytes per 23-entry row
        paths.append(os.path.join(WORK, f"stream_rss_{rows}x{features}.libsvm"))
        if not os.path.exists(paths[-1]):
            os.makedirs(WORK, exist_ok=True)
            generate_libsvm(paths[-1], rows=rows, features=features, nnz_per_row=23, columns="zipf", zipf_a=1.2,
                            task="regression", target="random", noise=0.1, seed=0)
    for path in paths:
        out = subprocess.run([sys.executable, "-m", "benchmarks.stream", "--child", path, "--features", str(features)]
                             + (["--chunk-mb", str(args.chunk_mb)] if args.chunk_mb else []),
                             capture_output=True, text=True, check=True).stdout.split()
        before, peak, samples, seconds = int(out[0]), int(out[1]), int(out[2]), float(out[3])
        print(f"{os.path.getsize(path) / 2**30:.2f} GiB file, {samples} rows in {seconds:.1f}s: peak RSS "
              f"{peak / 2**20:.0f} MiB (before the epoch {before / 2**20:.0f} MiB), model {model / 2**20:.0f} MiB, "
              f"peak - model {(peak - model) / 2**20:.0f} MiB (target <= 300)   load {os.getloadavg()[0]:.1f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--features", type=int, default=1_000_000)
    p.add_argument("--file", help="an existing zero-based LibSVM file of --features columns instead")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1])
    p.add_argument("--chunk-mb", type=float, help="LibSVMIter's chunk_size in MiB (default: its default)")
    p.add_argument("--workers", type=int, help="parser threads (default: LibSVMIter's, one per core)")
    p.add_argument("--also-chunk-mb", type=float, nargs="+", metavar="MiB",
                   help="further streamed variants with these chunk sizes, interleaved in the same process")
    p.add_argument("--ahead", type=int, help="chunks in flight beyond one per parser thread (io/pipeline.py's AHEAD)")
    p.add_argument("--against", nargs="+", metavar="REV",
                   help="git revisions whose LibSVM kernels parse further streamed variants (one each)")
    p.add_argument("--repeat", type=int, default=4)
    p.add_argument("--page-cache", choices=("fresh", "keep"), default="fresh",
                   help="the file's page cache dropped and read back first, as a first read leaves it (fresh), or as found")
    p.add_argument("--trace", action="store_true", help="trace the streamed epochs' threads: idle cores by phase")
    p.add_argument("--beside", action="store_true",
                   help="the training thread's CPU of in-memory epochs alone and beside a parse or other work")
    p.add_argument("--rss", action="store_true")
    p.add_argument("--rss-gb", type=float, nargs="+", default=[0.75, 1.5])
    p.add_argument("--rss-files", nargs="+", help="existing zero-based LibSVM files instead of generated ones")
    p.add_argument("--child")
    args = p.parse_args(argv)
    if args.child:
        _child(args.child, args.features, args.chunk_mb)
    elif args.rss:
        rss(args)
    elif args.beside:
        beside(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
