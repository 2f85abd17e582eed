"""A burst of 200 concurrent launches for one key: time until every caller has an answer.

8 client processes x 25 threads call launchViewer at the same instant.  It
prints the time to the last answer, answer latency percentiles, how many
launches were made (must be 1) and the time until the viewer is READY.
"""
from __future__ import annotations

import multiprocessing
import threading
import time

from _harness import pct, start_daemon, wait_for

PROCESSES, THREADS = 8, 25


def _client(url: str, start_at: float, out) -> None:
    from swampd.clients.rpc import connect

    results, lock = [], threading.Lock()

    def one() -> None:
        proxy = connect(url, timeout=60).agentMonitor
        time.sleep(max(0.0, start_at - time.time()))
        t0 = time.time()
        reply = proxy.launchViewer({"projectid": "burst", "viewer": "CodeDX"})
        with lock:
            results.append((t0, time.time(), reply["launched"]))

    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(results)


def main() -> None:
    daemon = start_daemon()
    try:
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        start_at = time.time() + 1.0
        procs = [ctx.Process(target=_client, args=(daemon.url, start_at, out)) for _ in range(PROCESSES)]
        for p in procs:
            p.start()
        results = [r for _ in procs for r in out.get(timeout=120)]
        for p in procs:
            p.join()
        last_answer = max(end for _, end, _ in results) - start_at
        latencies = [end - begin for begin, end, _ in results]
        launches = sum(1 for *_, launched in results if launched)
        wait_for(lambda: daemon.api.getViewer("burst", "CodeDX")["state"] == 2, 60, what="READY")
        ready_after = time.time() - start_at
        jobs = len(list(daemon.jobs_dir().iterdir()))
    finally:
        daemon.cleanup()
    print(f"burst of {len(results)} launchViewer calls ({PROCESSES} processes x {THREADS} threads), one key")
    print(f"  all answered after {last_answer * 1000:.0f} ms; per-call p50={pct(latencies, 50) * 1000:.1f}ms "
          f"p99={pct(latencies, 99) * 1000:.1f}ms")
    print(f"  launches made: {launches}; jobs started: {jobs}; viewer READY {ready_after:.2f}s after the burst")


if __name__ == "__main__":
    main()
