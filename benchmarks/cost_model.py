"""A cost model of distributed block training (issue 17, item 3), fed by measurements.

    python -m benchmarks.cost_model                     # measure here (quick workload), check, project
    python -m benchmarks.cost_model --from-json FILE    # the inputs saved by a benchmarks.dist run

What one worker does per block (``train.sync_every`` batches, ``dist_async``): it trains the block
(``compute`` seconds: the compiled engine and the worker's side of the exchange), then pushes the block's
change (one call to every server, in parallel), whose answer — the rows of the block after next — is
awaited only after the next block has trained. Per block:

* worker:  ``t_w = max(compute, rtt + (push_bytes + pull_bytes) / link)``: the exchange hides under the
  next block's training unless it takes longer;
* a server, with ``W`` workers and ``S`` servers, receives and answers ``W`` blocks' bytes / ``S``
  per block period and spends ``server_cost`` seconds per byte applying and reading rows, and its
  link carries the same bytes: ``t_s = W * bytes / S * (server_cost + 1 / link)``;
* the machine: with ``C`` cores shared by everything (a local run), the CPU seconds of a period
  cannot exceed ``C`` times its length. They are *measured*, not derived: ``worker_cpu``, the CPU
  seconds of a worker's whole process per block in the 1-worker run (its training thread, the parser
  threads when it streams its part, the rows a block needs, its side of the Ray calls), and
  ``server_cpu``, the server process's per block (applying pushes, reading pulls, its side of the
  calls), and ``ray_cpu``, Ray's daemons' (the raylet handles every call and object-store transfer) with the
  driver's: ``cpu = W * (worker_cpu + server_cpu + ray_cpu)``. Processes outside the run are not modelled:
  ``benchmarks/dist.py`` reports the cores they used during each run checked.

Samples/s = ``W * rows_per_block / max(t_w, t_s, cpu / C)``. A run whose blocks are smaller (``sync_every:
auto`` cuts a worker's part into at least 8 blocks, so 2 workers on a small file train blocks of half the
rows) is predicted from the same measurements with its own rows and bytes per block (``Inputs.block``):
training time per row, the worker's other CPU and the server's per byte. On one machine ``link`` is the
measured copy bandwidth through Ray's object store and ``rtt`` the measured actor round trip;
on a cluster
``rtt`` is the network round trip plus the call's CPU (assumption: 0.2 ms + the measured local
call), ``link`` 10 or 1 Gbit/s, one core per worker and a core per server (no sharing). Nothing
here is asserted; ``benchmarks/dist.py`` prints the model's prediction beside its measured 1- and
2-worker runs.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass

GBIT = 1e9 / 8  # bytes/s of 1 Gbit/s
NETWORK_RTT = 2e-4  # seconds a datacenter round trip adds to a call (assumption)


@dataclass
class Inputs:
    """The measured quantities the model starts from."""

    compute: float          # seconds of training per block on a worker (its kernels, nothing else)
    rows_per_block: int     # sync_every x batch_size
    pull_bytes: float       # bytes a worker pulls per block (row ids, values, optimizer states)
    push_bytes: float       # bytes a worker pushes per block
    rtt: float              # seconds of an actor round trip here (call + answer, tiny payload)
    link: float             # bytes/s moved through Ray's object store here
    server_cost: float      # server seconds per byte of a block (apply a push, read a pull)
    worker_cpu: float = 0.0  # CPU seconds of a worker's process per block (all its threads; 0: not measured)
    server_cpu: float = 0.0  # CPU seconds of the server's process per block (0: not measured)
    ray_cpu: float = 0.0     # CPU seconds of Ray's daemons (raylet: calls, object store) and the driver per block

    @property
    def bytes(self) -> float:
        return self.pull_bytes + self.push_bytes

    def block(self, rows: int, moved: float) -> "Inputs":
        """The inputs for blocks of ``rows`` rows moving ``moved`` bytes (a run with more workers cuts a small
        file into smaller blocks: ``train.sync_every: auto``): the training time scales with the rows, the
        worker's other CPU (the rows a block needs, its changes, its side of the calls) and the server's with
        the bytes."""
        r, b = rows / self.rows_per_block, moved / max(self.bytes, 1.0)
        compute = self.compute * r
        worker_cpu = compute + max(0.0, self.worker_cpu - self.compute) * b if self.worker_cpu else 0.0
        return Inputs(compute=compute, rows_per_block=int(rows), pull_bytes=self.pull_bytes * b,
                      push_bytes=self.push_bytes * b, rtt=self.rtt, link=self.link, server_cost=self.server_cost,
                      worker_cpu=worker_cpu, server_cpu=self.server_cpu * b, ray_cpu=self.ray_cpu * b)


def predict(m: Inputs, workers: int, servers: int = 1, cores: float | None = None,
            link: float | None = None, rtt: float | None = None) -> float:
    """Samples/s of ``workers`` workers and ``servers`` servers (``cores``: shared by all, else one each;
    ``link``/``rtt``: the network's instead of the measured local ones)."""
    link = link or m.link
    rtt = m.rtt if rtt is None else rtt
    t_w = max(m.compute, rtt + m.bytes / link)  # one call per block, in flight while the next block trains
    t_s = workers * m.bytes / servers * (m.server_cost + 1.0 / link)
    period = max(t_w, t_s)
    if cores:
        if m.worker_cpu:
            cpu = workers * (m.worker_cpu + m.server_cpu + m.ray_cpu)
        else:  # an older input file: the training time and both ends of two calls, the server's bytes
            cpu = workers * (m.compute + 2 * m.rtt) + workers * m.bytes * m.server_cost
        period = max(period, cpu / cores)
    return workers * m.rows_per_block / period


def projection(m: Inputs) -> list[dict]:
    """Samples/s for 8, 32 and 128 workers on 10 and 1 Gbit/s with 1, 4 and 16 servers."""
    out = []
    for gbit in (10, 1):
        for w in (8, 32, 128):
            row = {"network": f"{gbit} Gbit/s", "workers": w}
            for s in (1, 4, 16):
                row[f"{s} servers"] = predict(m, w, s, link=gbit * GBIT, rtt=m.rtt + NETWORK_RTT)
            out.append(row)
    return out


def projection_table(m: Inputs) -> str:
    rows = projection(m)
    head = "| network | workers | 1 server | 4 servers | 16 servers |\n|---|---|---|---|---|\n"
    return head + "\n".join(f"| {r['network']} | {r['workers']} | {r['1 servers']:,.0f} | {r['4 servers']:,.0f} | "
                            f"{r['16 servers']:,.0f} |" for r in rows)


# -- measuring the inputs here ------------------------------------------------------------------

def measure_transport(block_bytes: int, repeat: int = 20) -> tuple[float, float, float]:
    """``(rtt, link, server_cost)`` measured on the running Ray: an actor's empty round trip, the
    bandwidth of a payload through the object store, and a parameter server's seconds per byte for
    applying a push of about ``block_bytes`` and reading it back."""
    import numpy as np
    import ray

    from sparsetrain.dist.kvstore import start_servers
    from sparsetrain.optimizer import SGD
    import pickle

    srv = start_servers(1, 1, "dist_async")[0]
    try:
        n = max(1, block_bytes // 24)  # per row: its id asked (8 bytes), value + momentum state (8) both ways
        rows = np.arange(n, dtype=np.int64)
        ray.get(srv.init.remote(0, np.zeros((n, 1), np.float32), 0, True))
        ray.get(srv.set_optimizer.remote(pickle.dumps(SGD(learning_rate=0.1, momentum=0.9))))
        ray.get(srv.ping.remote())

        def best(fn):
            times = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            return sorted(times)[len(times) // 4]  # a low quartile: the machine is shared

        rtt = best(lambda: ray.get(srv.ping.remote()))
        payload = np.ones(block_bytes // 4, np.float32)
        move = best(lambda: ray.get(ray.put(payload)))
        link = payload.nbytes / max(move, 1e-9)
        change = {0: (None, np.full((n, 1), 1e-3, np.float32), (np.zeros((n, 1), np.float32),), None)}
        pull = best(lambda: ray.get(srv.pull_block.remote({0: rows}, False, 0, 0, 0)))
        # a push carries the values of the rows its block read (no row ids): each after a read of the block
        push = best(lambda: (ray.get(srv.pull_block.remote({0: rows}, False, 0, 0, 0)),
                             ray.get(srv.push_block.remote(0, (0, 0), ray.put(change), 1)))) - pull
        moved = rows.nbytes + 2 * 8 * n  # the rows asked for, their values and states both ways
        server_cost = max(0.0, push + pull - 2 * rtt - moved / link) / moved
    finally:
        ray.kill(srv)
    return rtt, link, server_cost


def inputs_from_run(one: dict, rtt: float, link: float, server_cost: float) -> Inputs:
    """The model's inputs from a 1-worker ``dist_async`` record of ``metrics.jsonl`` (the timed epoch)."""
    blocks = max(1, int(one["blocks"]))
    compute = (float(one["worker_seconds"]) - float(one["wait_seconds"])) / blocks
    per_block = float(one["bytes_per_block"])
    rows = int(one["samples"]) / blocks
    return Inputs(compute=compute, rows_per_block=int(rows), pull_bytes=per_block / 2, push_bytes=per_block / 2,
                  rtt=rtt, link=link, server_cost=server_cost,
                  worker_cpu=float(one.get("worker_cpu_seconds", 0.0)) / blocks,
                  server_cpu=float(one.get("server_cpu_seconds", 0.0)) / blocks,
                  ray_cpu=float(one.get("ray_cpu_seconds", 0.0)) / blocks)


def check(m: Inputs, measured: dict, cores: int) -> list[dict]:
    """Predicted vs measured samples/s on this machine for each worker count measured: ``{workers: samples/s}``,
    or ``{workers: (samples/s, rows per block, bytes per block[, cores others used])}`` when that run's blocks
    differ from ``m``'s (:meth:`Inputs.block`: the rows and bytes of a block are counts, not timings); *cores
    others used*: the CPU seconds per second that processes outside the run took during its timed epoch
    (measured; reported beside the error, not predicted: the model is of a machine the run has to itself)."""
    out = []
    for w, got in sorted(measured.items()):
        inputs, busy = m, 0.0
        if isinstance(got, tuple):
            got, rows, moved, *rest = got
            inputs = m.block(rows, moved)
            busy = float(rest[0]) if rest else 0.0
        want = predict(inputs, w, 1, cores=cores)
        out.append({"workers": w, "predicted": want, "measured": got, "error": want / got - 1, "others": busy})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.cost_model", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from-json", metavar="FILE", help="a benchmarks.dist raw results file (cost_model field)")
    args = ap.parse_args(argv)
    if not args.from_json:
        from benchmarks import dist

        return dist.main(["--quick", "--workers", "1", "2", "--no-local-stream"])
    with open(args.from_json, encoding="utf-8") as f:
        doc = json.load(f)
    model = doc.get("meta", doc).get("cost_model")
    if not model:
        raise SystemExit(f"{args.from_json}: no cost_model inputs (written by python -m benchmarks.dist)")
    m = Inputs(**model["inputs"])
    print(json.dumps(asdict(m), indent=1))
    print(projection_table(m))
    return 0


if __name__ == "__main__":
    sys.exit(main())
