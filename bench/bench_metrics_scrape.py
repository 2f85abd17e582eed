"""``/metrics`` scrape time with 10,000 runs in the registry (and 100, 1,000 for the trend).

A real daemon on a registry filled beforehand (``_registry_fill``); each
scrape is a GET over a kept-alive HTTP connection, timed from request to
last byte.  Baseline, in the same run and on the same connection: a GET of
a static file of the dashboard (the transport's own cost, no registry work).

    .venv/bin/python bench/bench_metrics_scrape.py [N ...]
"""
from __future__ import annotations

import http.client
import sys
import tempfile
import time
from pathlib import Path

from _harness import Daemon, pct
from _registry_fill import fill

SCRAPES = 50


def timed_gets(port: int, path: str, n: int) -> tuple[list[float], int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    times, size = [], 0
    for _ in range(n):
        started = time.perf_counter()
        conn.request("GET", path)
        body = conn.getresponse().read()
        times.append(time.perf_counter() - started)
        size = len(body)
    conn.close()
    return times, size


def main(sizes: list[int]) -> None:
    print(f"{'runs':>7} {'scrape p50':>11} {'p90':>9} {'max':>9} {'bytes':>7} | {'static GET p50 (baseline)':>26}")
    for runs in sizes:
        root = Path(tempfile.mkdtemp(prefix="swampd-bench-metrics-"))
        daemon = Daemon(root)
        fill(daemon.state_dir, runs)
        daemon.start()
        try:
            timed_gets(daemon.port, "/metrics", 5)  # warm up
            scrape, size = timed_gets(daemon.port, "/metrics", SCRAPES)
            static, _ = timed_gets(daemon.port, "/static/dashboard.css", SCRAPES)
            print(f"{runs:>7} {pct(scrape, 50) * 1000:>9.2f}ms {pct(scrape, 90) * 1000:>7.2f}ms "
                  f"{max(scrape) * 1000:>7.2f}ms {size:>7} | {pct(static, 50) * 1000:>24.2f}ms")
        finally:
            daemon.cleanup()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100, 1000, 10000])
