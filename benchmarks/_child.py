"""Run one measurement and print one JSON line: ``python -m benchmarks._child MODULE FUNC JSON``.

MODULE is a module under ``benchmarks`` (``peers.sklearn_peer``, ``_ours``, ...), FUNC a function
in it called with the JSON object as keyword arguments. The result dict is printed on stdout as
``BENCH_JSON {...}``; the parent adds the peak RSS of this process (from ``os.wait4``).

Failures are results too: ``{"status": "not available", "reason": ...}`` when the peer cannot
be imported, ``{"status": "error", "reason": ...}`` otherwise.
"""
from __future__ import annotations

import importlib
import json
import sys
import traceback

MARK = "BENCH_JSON "


class Unavailable(Exception):
    """Raised by a measurement when its implementation is not installed / not written yet."""

    def __init__(self, reason: str, status: str = "not available"):
        super().__init__(reason)
        self.reason = reason
        self.status = status


def peak_rss_mb() -> float | None:
    """This process's own peak RSS (``VmHWM``; reset at exec, unlike ``ru_maxrss``, which on
    Linux starts from the parent's RSS at fork)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return None


def emit(result: dict) -> None:
    result.setdefault("peak_rss_mb", peak_rss_mb())
    sys.stdout.write("\n" + MARK + json.dumps(result, default=_default) + "\n")
    sys.stdout.flush()


def _default(o):
    try:
        import numpy as np

        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
    except ImportError:  # pragma: no cover
        pass
    return str(o)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # run as ``-m benchmarks._child`` this module is ``__main__``; measurements raise the
    # Unavailable of ``benchmarks._child``, a different class object
    from benchmarks._child import Unavailable as _Unavailable

    modname, func = argv[0], argv[1]
    kwargs = json.loads(argv[2]) if len(argv) > 2 else {}
    try:
        mod = importlib.import_module("benchmarks." + modname)
        result = getattr(mod, func)(**kwargs)
        result.setdefault("status", "ok")
    except (Unavailable, _Unavailable) as e:
        result = {"status": e.status, "reason": e.reason}
    except ImportError as e:
        result = {"status": "not available", "reason": f"{type(e).__name__}: {e}"}
    except Exception as e:  # noqa: BLE001 - a failed measurement is a result, not a crash
        tb = traceback.format_exc(limit=6)
        sys.stderr.write(tb)
        result = {"status": "error", "reason": f"{type(e).__name__}: {e}"}
    emit(result)
    return 0 if result.get("status") == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
