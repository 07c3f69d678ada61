"""How many threads train on the compiled engine (``train.threads``, ``auto`` included) and how the run
header says it; the threads themselves are :mod:`.threads`'s :class:`~.threads.ThreadTeam`."""
from __future__ import annotations

import os

__all__ = ["available_cores", "resolve_threads", "choose_threads", "describe_threads"]

# train.threads: auto: an epoch of fewer rows trains on one thread, the same result run after run.
# benchmarks/threads.py --sweep-rows (2 cores, logistic, AdaGrad, RESULTS.md session 32): on 1,000-8,000
# rows two Hogwild threads were 0.78-1.07x as fast as one at batch 1 and saved at most 0.56 ms per
# epoch at batch 32/256; from 16,000 rows they were 1.12-1.64x faster at every batch size; at batch 1
# they start to pay between 10,000 and 12,000 rows (1.03x -> 1.11x)
AUTO_MIN_ROWS = 10_000
# train.threads: auto on a streamed epoch (its text parsed again beside training, every epoch): the parse
# takes cores too. Per row it costs about as much CPU as the training or more (RESULTS.md session 33:
# LibSVM 500k x 1M, TSV 1M rows), so half the cores train (at least one), the parse keeps the rest: one
# thread on 2 cores, which trained a streamed epoch as fast as two or faster at batch 1 and 256 while two
# threads stayed faster on the same data in memory (benchmarks/threads.py --streamed)
STREAMED_SHARE = 2


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def resolve_threads(threads, rows: int | None = None, estimated: bool = False, streamed: bool = False) -> int:
    """``train.threads`` as a number (:func:`choose_threads`)."""
    return choose_threads(threads, rows, estimated, streamed)[0]


def choose_threads(threads, rows: int | None = None, estimated: bool = False,
                   streamed: bool = False) -> tuple[int, str]:
    """``(threads, why)``: ``train.threads`` as a number, and for ``auto`` why (the run header's words).

    ``auto`` is ``$SPARSETRAIN_THREADS`` when set, else one thread when the epoch has fewer than
    :data:`AUTO_MIN_ROWS` rows (``rows``; ``estimated``: a streamed file's, from its size and its first
    lines), else, when the epoch is ``streamed`` (its text parsed beside training), the cores the parse
    leaves (:data:`STREAMED_SHARE`: one of two), else :func:`available_cores` (``rows`` None: not known
    upfront, stdin or a compressed stream longer than its first chunk; the trainer chooses again once an
    epoch has counted them). A number is taken as it is; more than the cores is said (a note: the
    threads then share cores)."""
    if threads != "auto":
        return int(threads), _beyond_cores(int(threads))
    env = os.environ.get("SPARSETRAIN_THREADS", "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            from ...base import ConfigError

            raise ConfigError(f"SPARSETRAIN_THREADS must be a whole number of threads >= 1, got {env!r}")
        return int(env), "; ".join(filter(None, ("auto: $SPARSETRAIN_THREADS", _beyond_cores(int(env)))))
    cores = available_cores()
    count = None if rows is None else f"{'about ' if estimated else ''}{rows:,} row{'s' if rows != 1 else ''}"
    if cores > 1 and rows is not None and rows < AUTO_MIN_ROWS:
        return 1, f"auto: {count} < {AUTO_MIN_ROWS:,}"
    if cores > 1 and streamed:
        train = max(1, cores // STREAMED_SHARE)
        parse = "a core" if cores - train == 1 else f"{cores - train} of {_cores(cores)}"
        return train, f"auto: streamed, the parse takes {parse}"
    if rows is None:
        return cores, f"auto: {_cores(cores)}; the rows are not known upfront"
    return cores, f"auto: {_cores(cores)}, {count}" + (f" >= {AUTO_MIN_ROWS:,}" if cores > 1 else "")


def _beyond_cores(threads: int) -> str:
    cores = available_cores()
    return f"more than the {_cores(cores)} this process may use" if threads > cores else ""


def _cores(n: int) -> str:
    return f"{n} core{'s' if n != 1 else ''}"


def describe_threads(threads: int, deterministic: bool, engine: str, distributed: bool = False, why: str = "") -> str:
    """The run header's threads line: what really runs (``why``: :func:`choose_threads`'s reason)."""
    if distributed:
        return "1 per worker (train.threads applies to training in one process)" if threads > 1 else "1 per worker"
    if threads > 1 and engine != "compiled":
        return f"1 (the {engine} engine runs one thread; train.threads: {threads} applies to the compiled engine)"
    said = f"{threads} ({why})" if why else f"{threads}"
    if threads == 1:
        return said
    mode = "deterministic (private rows, merged in thread order)" if deterministic else "Hogwild (lock-free)"
    return f"{said}, {mode}"
