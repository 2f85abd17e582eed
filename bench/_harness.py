"""Shared bits for the benchmarks: a real daemon (the tests' helper) and percentiles."""
from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from support.daemon import Daemon, free_port, wait_for  # noqa: E402,F401


def start_daemon(**kwargs) -> Daemon:
    root = Path(tempfile.mkdtemp(prefix="swampd-bench-"))
    return Daemon(root, **kwargs).start()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(name: str, latencies_s: list[float]) -> str:
    ms = [x * 1000 for x in latencies_s]
    return (f"{name}: n={len(ms)} p50={pct(ms, 50):.2f}ms p90={pct(ms, 90):.2f}ms "
            f"p99={pct(ms, 99):.2f}ms mean={statistics.fmean(ms):.2f}ms")
