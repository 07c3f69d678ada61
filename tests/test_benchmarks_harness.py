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
