"""The benchmark harness's plumbing (no timing, no torch/MXNet needed; a few seconds)."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import pytest

from benchmarks import _data, run
from benchmarks._child import MARK


def test_parse_result_takes_last_json_line():
    out = "noise\nBENCH_JSON {\"a\": 1}\nmore noise\n" + MARK + json.dumps({"b": 2}) + "\ntrailer\n"
    assert run.parse_result(out) == {"b": 2}
    assert run.parse_result("no result here") is None
    assert run.parse_result(MARK + "{not json") is None


def test_run_subprocess_reports_json_rss_and_errors(tmp_path):
    env = run.child_env()
    ok = run.run_subprocess([sys.executable, "-c",
                             f"print('x'); print({MARK!r} + '{{\"status\": \"ok\", \"v\": 3}}')"],
                            env, timeout=60)
    assert ok["status"] == "ok" and ok["v"] == 3
    assert ok["peak_rss_mb"] > 0 and ok["wall_seconds"] > 0
    bad = run.run_subprocess([sys.executable, "-c", "import sys; sys.exit('boom')"], env, 60)
    assert bad["status"] == "error" and "boom" in bad["reason"]
    slow = run.run_subprocess([sys.executable, "-c", "import time; time.sleep(30)"], env, 0.5)
    assert slow["status"] == "error" and "timed out" in slow["reason"]


def test_child_reports_unavailable_and_errors():
    env = run.child_env()
    code = ("from benchmarks._child import Unavailable\n"
            "def f(**kw):\n    raise Unavailable('not yet', 'pending')\n")
    # a measurement that raises Unavailable is a result, not a crash
    res = run.run_subprocess([sys.executable, "-c",
                              code + "import benchmarks._child as c, sys\n"
                              "sys.modules['benchmarks.fake'] = type(sys)('fake')\n"
                              "sys.modules['benchmarks.fake'].f = f\n"
                              "c.main(['fake', 'f', '{}'])"], env, 60)
    assert res["status"] == "pending" and res["reason"] == "not yet"
    res = run.run_subprocess([sys.executable, "-m", "benchmarks._child", "no_such_module", "f",
                              "{}"], env, 60)
    assert res["status"] == "not available"


def _fake_results():
    ok = {"status": "ok"}
    return [
        {**ok, "workload": "parse", "impl": "ours", "parse_seconds": 0.5, "mb_per_s": 400.0},
        {**ok, "workload": "parse", "impl": "sklearn", "parse_seconds": 4.0, "mb_per_s": 50.0,
         "peak_rss_mb": 900.0},
        {"workload": "parse", "impl": "mxnet", "status": "not available",
         "reason": "mxnet_env.sh failed: no wheel"},
        {**ok, "workload": "seed", "impl": "ours (module)", "us_per_step": 50.0,
         "train_seconds": 0.5, "final_loss": 0.3, "loss_name": "mse"},
        {**ok, "workload": "seed", "impl": "mxnet", "us_per_step": 800.0, "train_seconds": 8.0,
         "final_loss": 0.13, "loss_name": "mse"},
        {"workload": "large-b256", "impl": "ours", "status": "pending", "reason": "not written"},
        {**ok, "workload": "large-b256", "impl": "torch", "epoch_seconds": 0.6, "rows": 1000,
         "final_loss": 3.0, "loss_name": "mse"},
        {**ok, "workload": "large-b256@500", "impl": "torch", "epoch_seconds": 0.3, "rows": 500,
         "scaling": True},
        {**ok, "workload": "large-b1", "impl": "ours", "epoch_seconds": 0.04, "rows": 1000},
        {**ok, "workload": "large-b1@500", "impl": "ours", "epoch_seconds": 0.02, "rows": 500,
         "scaling": True},
    ]


def test_ratios_targets_and_pending():
    rs = {(x["workload"], x["ours"], x["peer"]): x for x in run.ratios(_fake_results())}
    p = rs[("parse", "ours", "sklearn")]
    assert p["speedup"] == pytest.approx(8.0) and p["target"] == 10.0 and p["met"] is False
    assert rs[("parse", "ours", "mxnet")]["speedup"] is None
    assert rs[("parse", "ours", "mxnet")]["why"] == "not available"
    s = rs[("seed", "ours (module)", "mxnet")]
    assert s["speedup"] == pytest.approx(16.0) and s["met"] is True
    assert rs[("large-b256", "ours", "torch")]["why"] == "pending"
    assert not any("@" in w for w, _, _ in rs)  # scaling points are not ratio rows


def test_scaling_series_and_markdown(tmp_path):
    results = _fake_results()
    series = run.scaling_series(results)
    assert series["regression, batch 256"]["torch"] == [(500, 0.3), (1000, 0.6)]
    assert series["regression, batch 1"]["ours"] == [(500, 0.02), (1000, 0.04)]
    meta = {"date": "2026-01-01", "mode": "quick", "argv": "--quick", "generator": "g",
            "machine": {"cpu": "cpu", "cores": 2, "ram_gb": 24.0, "os": "linux",
                        "python": "3.11", "numpy": "2"},
            "docvars": {**run.SIZES["quick"], "lr_r1": 0.1, "lr_r256": 0.2, "lr_l1": 0.3,
                        "lr_l256": 0.4},
            "notes": ["a note"], "plot": "epoch_time_vs_rows.png"}
    md = run.render_markdown(results, meta)
    assert "## Peers (measured 2026-01-01)" in md and "## Ours (measured 2026-01-01)" in md
    assert "not available: mxnet_env.sh failed: no wheel" in md
    assert "pending: not written" in md
    assert "| parse | ours | sklearn | 8.00x | >= 10x MISSED |" in md
    assert "![epoch time vs rows](epoch_time_vs_rows.png)" in md
    pytest.importorskip("matplotlib")
    png = run.plot(results, str(tmp_path / "p.png"))
    assert png and os.path.getsize(png) > 1000


def test_best_of_keeps_fastest_and_largest_rss():
    tries = [{"status": "ok", "epoch_seconds": 2.0, "peak_rss_mb": 100.0},
             {"status": "ok", "epoch_seconds": 1.0, "peak_rss_mb": 90.0},
             {"status": "error", "reason": "x"}]
    b = run.best_of(tries, "large-b1")
    assert b["epoch_seconds"] == 1.0 and b["peak_rss_mb"] == 100.0 and b["tries"] == [2.0, 1.0]
    assert run.best_of([{"status": "error"}], "seed")["status"] == "error"


def test_select_by_workload_and_impl():
    ms = run.plan(run.SIZES["quick"], None, None)
    sel = run.select(ms, ["large-b256"])
    assert {m.workload for m in sel} == {"large-b256"}
    sel = run.select(ms, ["large-b256", "torch"])
    assert [(m.workload, m.impl) for m in sel] == [("large-b256", "torch")]
    sel = run.select(ms, ["scaling"])
    assert sel and all(m.scaling for m in sel)
    sel = run.select(ms, ["mxnet"])
    assert {m.impl for m in sel} == {"mxnet", "mxnet (in-memory)"}
    with pytest.raises(SystemExit):
        run.select(ms, ["nonsense"])


def test_data_helpers(tmp_path):
    pytest.importorskip("sklearn")
    path = tmp_path / "x.libsvm"
    path.write_text("1.5 0:1 3:2\n-2 1:0.5\n0 2:1 3:1\n")
    _data.ensure_npz(str(path), 4)
    data, indices, indptr, y, shape = _data.load_arrays(str(path))
    assert shape == (3, 4) and list(indptr) == [0, 2, 3, 5]
    w = np.array([1.0, 2.0, 3.0, 4.0])
    pred = _data.csr_predict(data, indices, indptr, w, np.array([0.5]))
    assert pred == pytest.approx([1 + 8 + 0.5, 1 + 0.5, 3 + 4 + 0.5])
    assert _data.mse([1.0, 2.0], [1.0, 4.0]) == pytest.approx(2.0)
    assert _data.log_loss([0.0, 0.0], [1, 0]) == pytest.approx(np.log(2))
    head = _data.head_file(str(path), str(tmp_path / "h.libsvm"), 2)
    assert open(head).read() == "1.5 0:1 3:2\n-2 1:0.5\n"


# ---------------------------------------------------------------------------------------------
# benchmarks/dist.py and the RESULTS.md section it owns


def test_results_md_keeps_the_dist_section(tmp_path, monkeypatch):
    block = f"{run.DIST_START}\n## Distributed training\n\n| a | b |\n{run.DIST_END}"
    old = "# Benchmark results\n\nold tables\n\n" + block + "\n\n## Trailer\n"
    assert run.find_block(old) == block
    assert run.find_block("no markers") is None
    assert run.find_block(run.DIST_START + " unterminated") is None
    new = run.keep_blocks("# Benchmark results\n\nnew tables\n", old)
    # the run's own tables are replaced; the dist section and the sections after it are kept
    assert new.endswith(block + "\n\n## Trailer\n") and "new tables" in new and "old tables" not in new
    assert run.keep_blocks("# fresh\n", "# no block\n") == "# fresh\n"
    # replace_block replaces in place, or appends when there is no block yet
    b2 = f"{run.DIST_START}\nnew\n{run.DIST_END}\n"
    assert run.replace_block(old, b2) == old.replace(block, b2.strip())
    assert run.replace_block("", b2) == b2
    assert run.replace_block("# T\n", b2) == "# T\n\n" + b2

    # run.main's --out path: the rewritten file keeps the block and the sections after it
    out = tmp_path / "RESULTS.md"
    out.write_text(old)
    monkeypatch.setattr(run, "WORK", str(tmp_path / "work"))
    monkeypatch.setattr(run, "peer_status", lambda setup, log: {})
    monkeypatch.setattr(run, "prepare_data", lambda cfg, mode, need, log: None)
    monkeypatch.setattr(run, "plan", lambda cfg, data, warm: [])
    monkeypatch.setattr(run, "datagen", lambda: (None, "fake"))
    monkeypatch.setattr(run, "machine", lambda: {"cpu": "cpu", "cores": 2, "ram_gb": 8.0,
                                                 "os": "linux", "python": "3.11"})
    assert run.main(["--quick", "--no-setup", "--no-warmup", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Benchmark results") and "old tables" not in text
    assert text.rstrip("\n").endswith(block + "\n\n## Trailer") and text.count(run.DIST_START) == 1


def _fake_dist_results():
    from benchmarks import dist

    def row(name, kv, w, sps, ms, bps=None, mse=3.1):
        r = {"run": name, "kvstore": kv, "workers": w, "servers": 0 if kv == "local" else 1,
             "status": "ok", "samples_per_s": sps, "epoch_seconds": 20000 / sps,
             "ms_per_step": ms, "first_epoch_seconds": 1.0, "call_seconds": 5.0,
             "final_mse": mse, "engine": "compiled",
             "data_path": dist.Run(name, kv, w, cache="stream" if name == "local stream" else "memory").data_path()}
        if bps:
            r.update(bytes_per_step=bps, mb_per_epoch=bps * 78 / 1e6, mb_per_s=4.0, blocks=4, sync_every=20,
                     bytes_per_block=bps * 20, worker_seconds=1.0, wait_seconds=0.1)
        return r

    return [row("local compiled", "local", 1, 1e6, 0.25),
            row("local stream", "local", 1, 8e5, 0.3),
            row("dist_async 1w", "dist_async", 1, 6e5, 0.4, 45000, mse=3.12),
            row("dist_async 2w", "dist_async", 2, 8e5, 0.6, 90000, mse=3.6),
            row("dist_sync 1w", "dist_sync", 1, 5e5, 0.5, 45000),
            {"run": "dist_sync 2w", "kvstore": "dist_sync", "workers": 2, "servers": 1,
             "status": "error", "reason": "ActorFailure: worker 1 died",
             "data_path": "stream"}]


def test_dist_plan_rows_and_section():
    from benchmarks import dist

    names = [r.name for r in dist.plan([1, 2], [1])]
    assert names == ["local compiled", "local stream", "dist_async 1w", "dist_async 2w", "dist_sync 1w",
                     "dist_sync 2w"]
    assert [r.name for r in dist.plan([2], [1, 2], local_stream=False)] == [
        "local compiled", "dist_async 2w, 1 servers", "dist_sync 2w, 1 servers",
        "dist_async 2w, 2 servers", "dist_sync 2w, 2 servers"]
    both = dist.plan([2], [1], local_stream=False, worker_caches=("memory", "stream"))
    assert [(r.name, r.cache) for r in both] == [
        ("local compiled", "memory"), ("local stream", "stream"), ("dist_async 2w", "memory"),
        ("dist_sync 2w", "memory"), ("dist_async 2w stream", "stream"), ("dist_sync 2w stream", "stream")]
    doc = dist.config_doc("/x.libsvm", 10, 256, 0.25, 2, "dist_sync")
    assert doc["train"]["kvstore"] == "dist_sync" and doc["data"]["batch_size"] == 256
    assert "rescale_grad" not in doc["optimizer"]  # the runners' default (1/batch)
    s = dist.summarize([{"seconds": 2.0, "samples": 1000, "mse": 5.0},
                        {"seconds": 1.0, "samples": 1024, "mse": 4.0, "bytes_per_step": 1000,
                         "engine": "compiled", "blocks": 3, "wait_seconds": 0.5}], wall=10.0, batch_size=256, workers=2)
    assert s["samples_per_s"] == 1024 and s["steps"] == 2 and s["mb_per_epoch"] == 0.002
    assert s["first_epoch_seconds"] == 2.0 and s["setup_seconds"] == 7.0
    assert s["blocks"] == 3 and s["wait_seconds"] == 0.5
    # the timed epoch: the fastest after the first (the mse: the last epoch's)
    s = dist.summarize([{"seconds": 0.1, "samples": 100, "mse": 5.0}, {"seconds": 0.5, "samples": 100, "mse": 4.0},
                        {"seconds": 0.8, "samples": 100, "mse": 3.0}], wall=2.0, batch_size=10, workers=1)
    assert s["timed_epoch"] == 1 and s["epoch_seconds"] == 0.5 and s["train_mse"] == 3.0

    results = _fake_dist_results()
    table = dist.rows(results)
    assert table[0][5] == "1x" and table[2][5] == "0.6x" and table[2][7] == "45,000"
    assert table[5][-1].startswith("error: ActorFailure")
    meta = {"date": "2026-01-01", "argv": "--quick", "ray": "2.x", "ray_where": "local",
            "load": "0 / 0 / 0", "data": "f.libsvm", "rows": 20000, "features": 100000,
            "nnz": 23, "mb": 5.9, "batch_size": 256, "lr": 0.25, "epochs": 2, "repeat": 1,
            "cores": 2, "machine": {"cpu": "cpu", "cores": 2, "ram_gb": 8.0, "os": "linux",
                                    "python": "3.11"}}
    sec = dist.render_section(results, meta)
    assert sec.startswith(run.DIST_START) and sec.rstrip().endswith(run.DIST_END)
    assert "--address" in sec and "| dist_async 2w |" in sec
    # the workers keep their parts in memory: compared with the single process in memory
    assert "dist_async 1 worker vs the single-process compiled epoch, data in memory: 0.60x (target >= 0.5x), met" in sec
    assert "dist_async 2 workers vs 1 worker, parts in memory: 1.33x (target >= 1.2x), met" in sec
    assert "final mse of dist_async 2w vs one process: +16.1% (target within 2 %), missed" in sec
    # the section survives a rewrite by run.py and is replaced, not duplicated, by dist.py
    md = run.keep_blocks("# Benchmark results\n", run.replace_block("# old\n", sec))
    assert md.count(run.DIST_START) == 1
    assert run.replace_block(md, sec).count(run.DIST_START) == 1


def test_cost_model_adds_up():
    from benchmarks import cost_model as cm

    m = cm.Inputs(compute=0.010, rows_per_block=10000, pull_bytes=1e5, push_bytes=1e5, rtt=0.001, link=1e9,
                  server_cost=1e-9)
    # one worker: the block's one call (1 + 0.2 ms) is in flight while the next block trains: 10 ms per block
    assert cm.predict(m, 1) == pytest.approx(10000 / 0.010)
    assert cm.predict(cm.Inputs(**{**vars(m), "rtt": 0.012}), 1) == pytest.approx(10000 / 0.0122)
    # many workers on one server: the server's bytes bound it; 4 servers share them
    assert cm.predict(m, 128, 1) == pytest.approx(128 * 10000 / (128 * 2e5 * 2e-9))
    assert cm.predict(m, 128, 4) == pytest.approx(4 * cm.predict(m, 128, 1))
    # two workers on two shared cores: the CPU of both (compute, both ends of two calls, the server)
    cpu = 2 * (0.010 + 0.002) + 2 * 2e5 * 1e-9
    assert cm.predict(m, 2, cores=2) == pytest.approx(2 * 10000 / max(0.010, cpu / 2))
    # measured CPU per block (the worker's process, parser threads included, and the server's) replaces the estimate
    measured = cm.Inputs(**{**vars(m), "worker_cpu": 0.015, "server_cpu": 0.002})
    assert cm.predict(measured, 1, cores=2) == pytest.approx(10000 / 0.010)
    assert cm.predict(measured, 2, cores=2) == pytest.approx(2 * 10000 / (2 * 0.017 / 2))
    rows = cm.projection(m)
    assert [(r["network"], r["workers"]) for r in rows][:3] == [("10 Gbit/s", 8), ("10 Gbit/s", 32),
                                                                 ("10 Gbit/s", 128)]
    assert all(r["16 servers"] >= r["1 servers"] for r in rows)
    check = cm.check(m, {1: 10000 / 0.010}, cores=2)
    assert check[0]["error"] == pytest.approx(0.0, abs=1e-9)
    # blocks of half the rows moving 0.7 x the bytes: half the training, the other CPU by the bytes
    half = measured.block(5000, 1.4e5)
    assert (half.compute, half.worker_cpu, half.server_cpu) == pytest.approx((0.005, 0.005 + 0.005 * 0.7, 0.002 * 0.7))
    assert half.pull_bytes + half.push_bytes == pytest.approx(1.4e5)
    got = cm.check(measured, {2: (1e6, 5000, 1.4e5)}, cores=2)[0]
    assert got["predicted"] == pytest.approx(cm.predict(half, 2, cores=2)) and got["measured"] == 1e6
    assert "| 10 Gbit/s | 8 |" in cm.projection_table(m)
