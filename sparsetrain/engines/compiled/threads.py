"""Several threads training one model on the compiled engine (``train.threads``, ``train.deterministic``).

The runners hand every call of an epoch kernel (a block of consecutive batches, up to
``CHUNK_ROWS`` rows) to a :class:`ThreadTeam`, which runs the kernel on contiguous ranges of the
block's batches in ``N`` threads at once: the kernels are compiled ``nogil=True``. Each thread has
its own scratch buffers and metric sums; a range's optimizer update counts go on from the batches
before it in the block (Adam's bias correction sees the step a single thread would); samples and
metric instances are counted once.

* **Hogwild** (default): the block is cut into ``N × PIECES_PER_THREAD`` pieces (of at least
  ``MIN_PIECE_ROWS`` rows; a smaller block runs on the calling thread alone) that the threads
  take in turn, each updating the shared parameters and optimizer states in place, without locks.
  Two threads updating one row at the same moment may lose one of the two updates — rare for
  sparse data, except for rows nearly every sample touches (the bias). Results vary from run to run.
* **deterministic**: the block is cut into rounds of about ``ROUND_ROWS`` rows per thread and each
  round into ``N`` fixed shares, each trained from the round's parameters: thread 0 in place,
  thread ``j > 0`` on a private copy of the rows its share touches. After the round a row one
  share touched is copied back as that share left it; a row several shares touched gets the sum
  of their changes (a weight under an adaptive rule, a state the rule sums: ``Rule.sums``) or
  their mean (a running average; a weight under plain SGD), added in thread order
  (:mod:`.thread_kernels`): the same parameters on every run for a given ``N``, and one thread's when
  the shares touch disjoint rows.

One thread runs the kernel as it always did (the team is not used), so ``threads: 1`` is today's
result bit for bit. How many threads train (``train.threads: auto``) is :mod:`.thread_count`'s.
"""
from __future__ import annotations

import contextlib
import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

# deterministic: rows each thread trains on its private copy between two merges
ROUND_ROWS = 8192
# Hogwild: pieces of a block per thread, taken in turn (small enough to balance a busy machine's
# cores, large enough that a kernel call's overhead does not show)
PIECES_PER_THREAD = 8
# Hogwild: the fewest rows of a piece. A block of fewer than twice this runs on the calling thread
# alone: handing a few hundred batch-1 steps (~1 ms) to another thread costs more than it saves
# (the seed's 1,000-row epoch: 2.7 µs/step on one thread, several times that in two under load).
MIN_PIECE_ROWS = 512
# Hogwild at batch 1: the weight's first HEAD_ROWS rows train on each thread's own copy (folded into
# the shared rows every SYNC_ROWS rows, as the bias) when at least HEAD_SHARE of a block's stored entries
# fall there (zipf columns numbered by frequency, a vocabulary sorted by counts): the rows every
# sample writes, whose cache lines two cores would otherwise pass back and forth for every sample
HEAD_ROWS = 4096
HEAD_SHARE = 0.1
# rows of a block whose entries are counted for HEAD_SHARE
HEAD_SAMPLE_ROWS = 1024
# Hogwild: a thread folds its copies of the rows every sample writes (the bias, the head rows) into the
# shared ones, and takes them again, before a piece once it trained this many rows on them, and when it
# leaves the block. benchmarks/threads.py's 500k x 1M file at batch 1 (RESULTS.md session 34): a fold before
# every piece (~4,096 rows) 1.43x one thread, every 16,384 rows 1.48x, once per block 1.49x; the final
# log-loss -0.28 / -0.62 / -0.74 % against one thread's after 5 epochs (the staler copies' summed changes
# step further on the hot rows: -1.5 % / -1.8 % after the first epoch at 16,384 / per block)
SYNC_ROWS = 16384

__all__ = ["ThreadTeam", "team_for", "head_rows"]


def team_for(view, threads: int, deterministic: bool):
    """The :class:`ThreadTeam` of ``view``'s module (kept in its ``engine_state``); None for one thread."""
    if threads <= 1:
        return None
    team = view.engine_state.get("threads")
    if team is None or (team.threads, team.deterministic) != (threads, deterministic):
        if team is not None:
            team.close()
        team = view.engine_state["threads"] = ThreadTeam(threads, deterministic)
    return team


def head_rows(indices, indptr, order, lo, hi, num_rows) -> int:
    """How many of a weight's first rows Hogwild's threads train on their own copies, judged by the
    CSR rows ``order[lo:hi]``: :data:`HEAD_ROWS` (at most ``num_rows``) when at least :data:`HEAD_SHARE`
    of their entries fall there, else 0."""
    from .thread_kernels import entries_below

    rows = min(HEAD_ROWS, int(num_rows))
    below, total = entries_below(indices, indptr, order, lo, hi, rows)
    return rows if total and below >= HEAD_SHARE * total else 0


def _shares(batch_ptr, threads: int) -> list:
    """``[(b0, b1), ...]``: at most ``threads`` non-empty contiguous batch ranges of about equal rows."""
    n = batch_ptr.shape[0] - 1
    lo, hi = int(batch_ptr[0]), int(batch_ptr[-1])
    cuts = [0]
    for j in range(1, threads):
        # the first boundary at or past j/threads of the rows, sought as an int (a float casts batch_ptr, O(batches))
        b = int(np.searchsorted(batch_ptr, lo - (lo - hi) * j // threads, side="left"))
        cuts.append(min(max(b, cuts[-1]), n))
    cuts.append(n)
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


#: a generated plan's arguments of parameter ``t``: ``p{t}`` and its optimizer states ``s1_{t}``, ``s2_{t}``
_TRIO = ("p", "s1_", "s2_")

_LINE = 128  # bytes: a cache line, or two (adjacent-line prefetch pairs them)


def _isolated(shape, dtype) -> np.ndarray:
    """An empty C-contiguous array whose cache lines hold nothing else: two threads' small arrays
    (a one-element bias, a scratch scalar written every sample) from separate ``np.empty`` calls can
    share a 64-byte line, which the two cores then pass back and forth on every write."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + 2 * _LINE, np.uint8)
    start = -raw.ctypes.data % _LINE
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class _Group:
    """A weight and its optimizer states (``rule``'s; absent ones empty), as 2-D arrays, whose touched
    rows are one CSR input's columns (``indices``/``indptr``), or every row (``indices`` None).
    ``means[a]``: array ``a``'s merged change is the threads' mean (a running average; the weight under
    a rule that is not ``Rule.adaptive``, as Hogwild's ``_fold_dense``), else their sum."""

    def __init__(self, rule, arrays, indices=None, indptr=None):
        kept = [(a, i == 0 or rule.states[i - 1] not in rule.sums) for i, a in enumerate(arrays) if a.size]
        self.arrays = [a.reshape(a.shape[0] if a.ndim > 1 else 1, -1) for a, _ in kept]
        self.originals = [a for a, _ in kept]
        self.means = [mean if i > 0 else not rule.adaptive for i, (_, mean) in enumerate(kept)]
        self.indices, self.indptr = indices, indptr


class _Owned:
    """Hogwild: thread ``j``'s copies of ``parts`` (:meth:`ThreadTeam._own`): ``copies`` (each part's
    arrays), trained in place of the shared ones; :meth:`before` each piece (:meth:`trains`) folds them
    every :data:`SYNC_ROWS` rows and starts them again from the shared values."""

    def __init__(self, team, j, parts, rule):
        self.team, self.j, self.parts, self.rule = team, j, parts, rule
        self.pairs = [team._own_dense(j, key, arrays) for key, arrays in parts]
        self.copies = [mine for mine, _ in self.pairs]
        self.rows = 0  # trained since the copies were taken

    def trains(self, piece, batch_ptr):
        """``piece(b0, b1)`` (training the batches ``b0:b1`` of ``batch_ptr`` on :attr:`copies`) with
        :meth:`before` each call."""
        def call(b0, b1):
            self.before(int(batch_ptr[b1] - batch_ptr[b0]))
            return piece(b0, b1)
        return call

    def before(self, rows: int) -> None:
        """A piece of ``rows`` rows is about to train."""
        if self.rows >= SYNC_ROWS and self.parts:
            self.fold()
            for key, arrays in self.parts:  # the same buffers, the shared values again
                self.team._own_dense(self.j, key, arrays)
            self.rows = 0
        self.rows += rows

    def fold(self) -> None:
        for (_, arrays), (mine, start) in zip(self.parts, self.pairs):
            self.team._fold_dense(arrays, mine, start, self.rule)


class ThreadTeam:
    """``threads`` threads (the caller's and ``threads - 1`` pool threads) sharing epoch kernels."""

    def __init__(self, threads: int, deterministic: bool = False):
        self.threads = int(threads)
        self.deterministic = bool(deterministic)
        self._pool = ThreadPoolExecutor(self.threads - 1, thread_name_prefix="sparsetrain-train")
        self._scratch: dict = {}  # (thread, key) -> arrays reused between calls
        self._marks: dict = {}  # parameter group -> int64 array of -1 (deterministic)
        self._fold = threading.Lock()  # Hogwild: one thread at a time adds its dense parameters' changes
        self._width = 1  # Hogwild: the threads training the current block's pieces at once (_fold_dense)

    def close(self):
        self._pool.shutdown(wait=True)

    def _buffer(self, j, key, like, fill=None):
        """Thread ``j``'s own array shaped like ``like`` (kept between calls), on cache lines of its own."""
        buf = self._scratch.get((j, key))
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype:
            buf = _isolated(like.shape, like.dtype)
            if fill is not None:
                buf.fill(fill)
            self._scratch[(j, key)] = buf
        return buf

    @staticmethod
    def _once(thread):
        """``call(j, b0, b1)``: ``thread(j)``'s piece on the batches ``b0:b1``, alone."""
        def call(j, b0, b1):
            with thread(j) as piece:
                return piece(b0, b1)
        return call

    def _run(self, shares, call):
        """``call(j, b0, b1)`` for every share, share 0 on this thread; the results in share order."""
        futures = [self._pool.submit(call, j, b0, b1) for j, (b0, b1) in enumerate(shares) if j > 0]
        first = call(0, *shares[0])
        return [first] + [f.result() for f in futures]

    def _rounds(self, batch_ptr) -> list:
        """``[(r0, r1), ...]``: the block's batches as rounds (one, or rounds of about
        ``ROUND_ROWS`` rows per thread when deterministic: the copies are merged after each)."""
        n = batch_ptr.shape[0] - 1
        if not self.deterministic:
            return [(0, n)]
        cuts = [0]
        while cuts[-1] < n:
            b = cuts[-1]
            e = int(np.searchsorted(batch_ptr, batch_ptr[b] + ROUND_ROWS * self.threads, side="left"))
            cuts.append(min(max(e, b + 1), n))
        return list(zip(cuts, cuts[1:]))

    def _pulled(self, pieces, thread):
        """Hogwild: each thread takes the next piece until none is left (a thread that gets less CPU
        on a busy machine does fewer), entering ``thread(j)`` (a context yielding ``piece(*args)``) at
        its first piece and leaving it after its last: its set-up and its copies of the rows every
        sample writes once per block, not per piece; the results in piece order."""
        taken = itertools.count()  # next() is atomic under the GIL
        results = [None] * len(pieces)

        def work(j):
            with contextlib.ExitStack() as stack:
                piece = None
                for i in iter(lambda: next(taken), None):
                    if i >= len(pieces):
                        return
                    if piece is None:
                        piece = stack.enter_context(thread(j))
                    results[i] = piece(*pieces[i])

        futures = [self._pool.submit(work, j) for j in range(1, self.threads)]
        work(0)
        for f in futures:
            f.result()
        return results

    def _execute(self, groups, order, batch_ptr, thread):
        """Every round of the block in threads: ``(status, samples)``, ``status`` the block index of
        the first batch whose output or metric was non-finite (the rounds after it do not run), else -1.
        ``thread(j)``: thread ``j``'s context for its pieces (its set-up; Hogwild: its copies of the rows
        every sample writes, folded into the shared ones when it leaves), yielding ``piece(b0, b1) ->
        (status, samples)`` that trains the batches ``b0:b1``."""
        call = self._once(thread)
        samples = 0
        for r0, r1 in self._rounds(batch_ptr):
            if not self.deterministic:
                rows = int(batch_ptr[-1] - batch_ptr[0])
                shares = _shares(batch_ptr, min(self.threads * PIECES_PER_THREAD, max(1, rows // MIN_PIECE_ROWS)))
                self._width = min(self.threads, len(shares))
                results = [call(0, *shares[0])] if len(shares) < 2 else self._pulled(shares, thread)
            else:
                shares = [(r0 + a, r0 + b) for a, b in _shares(batch_ptr[r0:r1 + 1], self.threads)]
                results = [call(0, r0, r1)] if len(shares) < 2 else self._merged(groups, order, batch_ptr, shares,
                                                                                call)
            samples += sum(int(done) for _, done in results)
            for (b0, _), (status, _) in zip(shares, results):
                if status >= 0:
                    return b0 + int(status), samples
        return -1, samples

    # -- each thread's metric sums ------------------------------------------------------------------
    def _metric_sums(self, sums, counts):
        """Each thread's own metric sums and instance counts, shaped like ``sums``/``counts``, all 0."""
        return ([self._buffer(j, "sums", sums, 0.0) for j in range(self.threads)],
                [self._buffer(j, "insts", counts, 0.0) for j in range(self.threads)])

    @staticmethod
    def _add_metric_sums(own_sums, own_counts, sums, counts):
        """Add the threads' sums and counts to ``sums``/``counts`` in thread order (the same result on
        every run) and leave theirs at 0 for the next block."""
        for s, c in zip(own_sums, own_counts):
            sums[:] += s
            counts[:] += c
            s.fill(0.0)
            c.fill(0.0)

    # -- Hogwild: the dense parameters (the bias) on each thread's own copy ------------------------
    def _own_dense(self, j, key, arrays):
        """Thread ``j``'s copies of a dense parameter and its states (``arrays``; empty ones stay), and
        of their values now: a piece trains its copy, :meth:`_fold_dense` adds the change after."""
        mine = tuple(self._buffer(j, ("dense", key, i), a) if a.size else a for i, a in enumerate(arrays))
        start = tuple(self._buffer(j, ("dense0", key, i), a) if a.size else a for i, a in enumerate(arrays))
        for m, s, a in zip(mine, start, arrays):
            m[...] = a
            s[...] = a
        return mine, start

    def _fold_dense(self, arrays, mine, start, rule):
        """Add a piece's change of a dense parameter to the shared one (``arrays``): a state the rule
        sums (AdaGrad's history: every update lands) gets the change added, and so does the weight
        under an adaptive rule (``Rule.adaptive``); under plain SGD the weight gets the change over the
        number of threads training the block's pieces at once (the mean of concurrent pieces' changes,
        as local SGD's model averaging; a block run whole on one thread gets its whole change):
        a row every sample writes (the bias) converges within a piece at SGD's fixed step, and two
        pieces' changes from the same start, both added, land it past its optimum by as much as it
        was off (large-b1 regression mse +10 to +95 % over one thread, by how the threads were
        scheduled; the mean: −5 to −1 %). A running average (momentum, Adam's moments) takes the
        thread's value, as the last writer's would be. A diverged piece (inf - inf) folds in as NaN without
        numpy's warning: the loss check stops the epoch with its one line."""
        with self._fold, np.errstate(invalid="ignore", over="ignore"):
            for i, (a, m, s) in enumerate(zip(arrays, mine, start)):
                if not a.size:
                    continue
                if i == 0 and not rule.adaptive:
                    a += (m - s) / self._width
                elif i == 0 or rule.states[i - 1] in rule.sums:
                    a += m - s
                else:
                    a[...] = m

    @contextlib.contextmanager
    def _own(self, j, parts, rule):
        """Hogwild: thread ``j``'s own copies of ``parts`` (``[(key, arrays)]``: a parameter and its states
        that every sample writes) for its pieces of a block to train, as an :class:`_Owned` (``copies``
        in order); each copy's change is folded into the shared arrays (:meth:`_fold_dense`) every
        :data:`SYNC_ROWS` rows (:meth:`_Owned.before`) and when the thread leaves the block."""
        owned = _Owned(self, j, parts, rule)
        yield owned
        owned.fold()

    # -- the linear family's kernels (runner.LinearEpochRunner) -------------------------------
    def _head(self, one_sample, batches, model, update, rule) -> int:
        """Hogwild: how many of the weight's first rows each thread trains on its own copy (0: none);
        ``one_sample``: whether the block runs the batch-1 loop (the one that reads them). Only for an
        adaptive rule (``Rule.adaptive``): two pieces' changes of a hot row, each trained from the same
        stale copy and both added, overshoot under plain SGD."""
        if self.deterministic or not update.train or not one_sample or not rule.adaptive:
            return 0
        lo = int(batches.batch_ptr[0])
        return head_rows(batches.indices[0], batches.indptr[0], batches.order, lo,
                         min(int(batches.batch_ptr[-1]), lo + HEAD_SAMPLE_ROWS), model.weights[0].shape[0])

    def run_linear(self, kernel, batches, model, update, metrics, scratch, pred, rule):
        """``kernel(batches, model, update, metrics, scratch, pred)`` over the block, in threads
        (``rule``: the optimizer rule the kernel is bound to). Hogwild: each thread trains the bias and
        the head rows (:data:`HEAD_ROWS`) on its own copy, added to the shared ones every
        :data:`SYNC_ROWS` rows and after its last piece of the block."""
        groups = []
        loop, one_sample = kernel.select(batches, model, update, metrics, scratch, pred)  # once per block
        head = self._head(one_sample, batches, model, update, rule)
        if self.deterministic:
            groups = [_Group(rule, (model.weights[t], model.states1[t], model.states2[t]), batches.indices[t],
                             batches.indptr[t]) for t in range(len(model.weights))]
            if model.has_bias:
                groups.append(_Group(rule, (model.bias, model.bias_s1, model.bias_s2)))
        sums, counts = self._metric_sums(metrics.sums, metrics.counts)

        @contextlib.contextmanager
        def thread(j):
            mine = model
            if j > 0 and self.deterministic:
                nt = len(model.weights)
                trios = [self._privates(j, t, groups[t], (model.weights[t], model.states1[t], model.states2[t]))
                         for t in range(nt)]
                bias = (model.bias, model.bias_s1, model.bias_s2)
                if model.has_bias:
                    bias = self._privates(j, nt, groups[nt], bias)
                mine = model._replace(weights=tuple(x[0] for x in trios), states1=tuple(x[1] for x in trios),
                                      states2=tuple(x[2] for x in trios), bias=bias[0], bias_s1=bias[1],
                                      bias_s2=bias[2])
            own = scratch if j == 0 and self.deterministic else type(scratch)(*(
                self._buffer(j, ("scratch", i), a, -1 if i == 0 else None) for i, a in enumerate(scratch)))
            step = self._buffer(j, "counts", update.counts)  # written every batch: a line of its own
            mets = metrics._replace(sums=sums[j], counts=counts[j])
            # Hogwild: the rows every sample writes (the bias, the head rows) on this thread's copies
            owned = []  # (the model's fields, the shared arrays)
            if not self.deterministic and model.has_bias and update.train:
                owned.append((("bias", "bias_s1", "bias_s2"), (model.bias, model.bias_s1, model.bias_s2)))
            if head:
                owned.append((("head", "head_s1", "head_s2"), tuple(a[:head] if a.size else a for a in (
                    model.weights[0], model.states1[0], model.states2[0]))))
            with self._own(j, [(fields[0], shared) for fields, shared in owned], rule) as own_rows:
                for (fields, _), copy in zip(owned, own_rows.copies):
                    mine = mine._replace(**dict(zip(fields, copy)))

                def piece(b0, b1):
                    lrs = update.lrs[b0:b1] if update.lrs.shape[0] > 1 else update.lrs
                    np.add(update.counts, b0, out=step)
                    return loop(batches._replace(batch_ptr=batches.batch_ptr[b0:b1 + 1]), mine,
                                update._replace(lrs=lrs, counts=step), mets, own, pred)

                yield own_rows.trains(piece, batches.batch_ptr)

        result = self._execute(groups, batches.order, batches.batch_ptr, thread)
        self._add_metric_sums(sums, counts, metrics.sums, metrics.counts)
        return result

    # -- generated plans (plan_runner.PlanRunner) ---------------------------------------------
    def run_plan(self, fn, args: list, names: list, rule):
        """``fn(*args)`` (a generated ``plan_epoch`` bound to the optimizer rule ``rule``; ``names``: its
        argument names) over the block, in threads."""
        at = {name: i for i, name in enumerate(names)}
        batch_ptr = args[at["batch_ptr"]]
        n_params = sum(1 for name in names if name.startswith("rows"))
        groups = []
        if self.deterministic:
            for t in range(n_params):
                arrays = [args[at[f"{p}{t}"]] for p in _TRIO]
                sparse = args[at[f"rows{t}"]].shape[0] == 0  # a row-sparse parameter: its batch's columns
                groups.append(_Group(rule, arrays, args[at["xi"]], args[at["xp"]]) if sparse else _Group(rule, arrays))
        msums, mcounts = self._metric_sums(args[at["msums"]], args[at["mcounts"]])
        lrs, counts = args[at["lrs"]], args[at["counts"]]
        # Hogwild: the dense parameters (every sample writes them) on each thread's own copy
        dense = [] if self.deterministic or not args[at["train"]] else [
            t for t in range(n_params) if args[at[f"rows{t}"]].shape[0] > 0]

        @contextlib.contextmanager
        def thread(j):
            mine = list(args)
            step = mine[at["counts"]] = self._buffer(j, "counts", counts)  # written every batch: a line of its own
            mine[at["msums"]], mine[at["mcounts"]] = msums[j], mcounts[j]
            if j > 0 or not self.deterministic:
                mine[at["slot"]] = self._buffer(j, "slot", args[at["slot"]], -1)
            if j > 0:
                for t, group in enumerate(groups):  # deterministic: this thread's private rows
                    trio = self._privates(j, t, group, [args[at[f"{p}{t}"]] for p in _TRIO])
                    for p, arr in zip(_TRIO, trio):
                        mine[at[f"{p}{t}"]] = arr
            parts = [(("plan", t), tuple(args[at[f"{p}{t}"]] for p in _TRIO)) for t in dense]
            with self._own(j, parts, rule) as own_rows:
                for t, copy in zip(dense, own_rows.copies):
                    for p, arr in zip(_TRIO, copy):
                        mine[at[f"{p}{t}"]] = arr

                def piece(b0, b1):
                    mine[at["batch_ptr"]] = batch_ptr[b0:b1 + 1]
                    mine[at["lrs"]] = lrs[b0:b1] if lrs.shape[0] > 1 else lrs
                    np.add(counts, b0, out=step)
                    return fn(*mine)

                yield own_rows.trains(piece, batch_ptr)

        result = self._execute(groups, args[at["order"]], batch_ptr, thread)
        self._add_metric_sums(msums, mcounts, args[at["msums"]], args[at["mcounts"]])
        return result

    # -- deterministic: private rows and the ordered merge ---------------------------------------
    def _mark(self, g: int, rows: int):
        """Parameter group ``g``'s int64 array of -1, one per row (its rows' positions during a merge)."""
        mark = self._marks.get(g)
        if mark is None or mark.shape[0] != rows:
            mark = self._marks[g] = np.full(rows, -1, np.int64)
        return mark

    def _private(self, j, g, a, group):
        """Thread ``j``'s private copy of array ``a`` of parameter group ``g`` (its original shape)."""
        return self._buffer(j, ("private", g, a), group.originals[a])

    def _privates(self, j, g, group, trio):
        """``trio`` (a weight and its two states; empty ones stay) with thread ``j``'s private copies."""
        mine = iter(self._private(j, g, a, group) for a in range(len(group.originals)))
        return tuple(next(mine) if arr.size else arr for arr in trio)

    def _each(self, tasks):
        """Run the callables ``tasks`` in the team's threads (each touches its own arrays)."""
        self._pulled([(i,) for i in range(len(tasks))], lambda j: contextlib.nullcontext(lambda i: tasks[i]()))

    def _merged(self, groups, order, batch_ptr, shares, call):
        """Run ``call`` for every share; with ``groups`` (deterministic), thread ``j > 0`` on its
        private copy of the rows its share touches, then merge (:mod:`.thread_kernels`)."""
        if not groups:
            return self._run(shares, call)
        from .thread_kernels import (add_changes, apply_changes, copy_owned, copy_rows, gather_rows, split_shared,
                                     touched_rows)

        n = len(shares)
        touched = [[None] * n for _ in groups]
        marks = [self._mark(g, group.arrays[0].shape[0]) for g, group in enumerate(groups)]
        seen = [np.broadcast_to(np.uint8(0), mark.shape) for mark in marks]  # the shape of a byte per row
        for j in range(n):  # made here, not in the tasks: the dict of buffers is not shared by threads
            for g in range(len(groups)):
                self._buffer(j, ("seen", g), seen[g], 0)
                self._buffer(j, ("touched", g), marks[g])

        def touch(g, j):
            group = groups[g]
            mine = self._buffer(j, ("seen", g), seen[g], 0)  # this thread's: all 0 again after
            out = self._buffer(j, ("touched", g), marks[g])
            b0, b1 = shares[j]
            k = touched_rows(group.indices, group.indptr, order, batch_ptr[b0], batch_ptr[b1], mine, out)
            touched[g][j] = out[:k]

        tasks = []
        for g, group in enumerate(groups):
            if group.indices is None:  # a dense parameter: every row
                touched[g] = [np.arange(group.arrays[0].shape[0], dtype=np.int64)] * n
            else:
                tasks += [lambda g=g, j=j: touch(g, j) for j in range(n)]
        self._each(tasks)
        everyone = [np.concatenate(touched[g]) for g in range(len(groups))]
        try:
            shared, counts = [], []
            for g, rows in enumerate(everyone):  # marks[g][r]: the thread owning r, or r's place in shared
                owner = np.repeat(np.arange(n, dtype=np.int64), [t.shape[0] for t in touched[g]])
                out, cnt = np.empty(rows.shape[0], np.int64), np.empty(rows.shape[0], np.float64)
                k = split_shared(rows, owner, marks[g], out, cnt)
                shared.append(out[:k])
                counts.append(cnt[:k])
            olds = {}

            def save(g, a):
                arr = groups[g].arrays[a]
                old = olds[(g, a)] = np.empty((shared[g].shape[0], arr.shape[1]), np.float64)
                gather_rows(arr, shared[g], old)

            def copy_in(g, a, j):  # a private copy starts from the round's values, of every shared row too
                arr = groups[g].arrays[a]
                mine = self._private(j, g, a, groups[g]).reshape(arr.shape)
                copy_rows(arr, mine, touched[g][j])
                copy_rows(arr, mine, shared[g])  # (a share that did not touch one then adds no change)

            def merge(g, a):
                arr = groups[g].arrays[a]
                old = olds[(g, a)]
                acc = np.zeros_like(old)
                privates = [arr] + [self._private(j, g, a, groups[g]).reshape(arr.shape) for j in range(1, n)]
                for j in range(n):  # in thread order: the same sums on every run
                    add_changes(privates[j], shared[g], old, acc)
                apply_changes(arr, shared[g], old, acc, counts[g], groups[g].means[a])
                for j in range(1, n):  # the rows only thread j touched: as it left them
                    copy_owned(privates[j], arr, touched[g][j], marks[g], j)

            pairs = [(g, a) for g, group in enumerate(groups) for a in range(len(group.arrays))]
            self._each([lambda g=g, a=a: save(g, a) for g, a in pairs]
                       + [lambda g=g, a=a, j=j: copy_in(g, a, j) for g, a in pairs for j in range(1, n)])
            results = self._run(shares, call)
            self._each([lambda g=g, a=a: merge(g, a) for g, a in pairs])
        finally:
            for rows, mark in zip(everyone, marks):
                mark[rows] = -1
        return results
