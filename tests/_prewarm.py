"""Compile, beside a default test run on a cold numba cache, the heaviest kernels it reaches later.

On a cold cache most of the default run is numba compiling, one kernel at a time in the pytest
process, while the second core of a 2-core machine (CI's) idles. conftest.py starts this script in a
second process when a run collects the whole default suite. It compiles, into numba's on-disk cache
and in the order the run reaches them, what the run would otherwise compile itself: the engine
kernels of the shipped configs (generated plans among them; ``sparsetrain.trainer.warmup.warm_up``, as
a first ``fit``'s warm-up child does) and the CSV and Vowpal Wabbit parsers in float32 and float64.
The run then loads them from the cache. Nothing depends on it: a kernel the run reaches first it
compiles itself, as without this script; the run ends it when it ends. ``SPARSETRAIN_TEST_PREWARM=0``
turns it off.

A step that fails is printed to stderr, its first line ``step: error``, which conftest shows at the end
of the run: the run is only slower for it.
"""
from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile
import traceback

ROOT = pathlib.Path(__file__).resolve().parents[1]
# the order the default run reaches them (tests/ in file order): test_checkpoint_files trains linreg at
# batch 50 (softmax's SGD-with-momentum batch loop), test_cli every shipped config (criteo_like from CSV),
# test_csv parses float64 CSV, test_disk_cache streams Vowpal Wabbit, test_sample_weight loads it in float64
CONFIGS = ["linreg.yaml", "softmax.yaml", "criteo_like.yaml", "fm.yaml", "logreg.yaml", "wide.yaml"]


def warm_config(name: str) -> None:
    from sparsetrain.config import load_config
    from sparsetrain.trainer.warmup import warm_up

    warm_up(load_config(str(ROOT / "configs" / name)))


def parse_csv(tmp: pathlib.Path, dtype: str) -> None:
    from sparsetrain.io.csv_reader import CSVSchema, load_csv

    path = tmp / "t.csv"
    path.write_text('y,n1,c1,n2,c2\n1,0.5,a,2,"b,c"\n0,,x,3.25,y\n')
    schema = CSVSchema(header=True, label="y", numeric=["n1", "n2"], categorical=["c1", "c2"],
                       crosses=[["c1", "c2"]], hash_bits=6, log1p=["n2"])
    load_csv(path, schema, dtype=dtype)


def parse_vw(tmp: pathlib.Path, dtype: str) -> None:
    from sparsetrain.io.vw_reader import load_vw

    path = tmp / "t.vw"
    path.write_text("1 2 'a|u x:0.5 y |i z\n-1 |u x\n")
    load_vw(path, 8, crosses=[["u", "i"]], dtype=dtype)


def steps(tmp: pathlib.Path) -> list:
    """``(name, call)`` in the order the default run needs them."""
    out = [(f"config {n}", lambda n=n: warm_config(n)) for n in CONFIGS[:3]]
    out.append(("csv float32", lambda: parse_csv(tmp, "float32")))
    out += [(f"config {n}", lambda n=n: warm_config(n)) for n in CONFIGS[3:]]
    out += [("csv float64", lambda: parse_csv(tmp, "float64")), ("vw float32", lambda: parse_vw(tmp, "float32")),
            ("vw float64", lambda: parse_vw(tmp, "float64"))]
    return out


def main() -> int:
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="sparsetrain-prewarm-"))
    failed = 0
    try:
        for name, call in steps(tmp):
            try:
                call()
            except Exception as e:  # noqa: BLE001 - reported, the others still run
                failed += 1
                print(f"{name}: {type(e).__name__}: {e}\n{traceback.format_exc()}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
