"""Status calls per second and latency, 4 client processes, against a bare stdlib baseline.

The baseline is a standard-library threaded XML-RPC server answering a
constant, measured in the same run on the same machine, so the ratio says
what swampd's validation, registry read and struct building cost.
"""
from __future__ import annotations

import multiprocessing
import socketserver
import threading
import time
from xmlrpc.server import SimpleXMLRPCServer

from _harness import free_port, pct, start_daemon, wait_for

CLIENTS = 4
SECONDS = 5.0


def _client(url: str, method: str, args: tuple, start_at: float, seconds: float, out) -> None:
    from swampd.clients.rpc import connect

    proxy = connect(url, timeout=30)
    call = proxy
    for part in method.split("."):
        call = getattr(call, part)
    latencies = []
    time.sleep(max(0.0, start_at - time.time()))
    end = time.perf_counter() + seconds
    while (t0 := time.perf_counter()) < end:
        call(*args)
        latencies.append(time.perf_counter() - t0)
    out.put(latencies)


def measure(url: str, method: str, args: tuple) -> tuple[float, list[float]]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 0.5
    procs = [ctx.Process(target=_client, args=(url, method, args, start_at, SECONDS, out)) for _ in range(CLIENTS)]
    for p in procs:
        p.start()
    latencies = [x for _ in procs for x in out.get(timeout=SECONDS + 60)]
    for p in procs:
        p.join()
    return len(latencies) / SECONDS, latencies


class _Baseline(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True


def main() -> None:
    port = free_port()
    baseline = _Baseline(("127.0.0.1", port), logRequests=False, allow_none=False)
    baseline.register_function(lambda a, b: {"state": 2, "status": "Viewer is up"}, "agentMonitor.getViewer")
    threading.Thread(target=baseline.serve_forever, daemon=True).start()
    base_rate, base_lat = measure(f"http://127.0.0.1:{port}/", "agentMonitor.getViewer", ("p", "CodeDX"))
    baseline.shutdown()

    daemon = start_daemon()
    try:
        daemon.api.launchViewer({"projectid": "bench", "viewer": "CodeDX"})
        wait_for(lambda: daemon.api.getViewer("bench", "CodeDX")["state"] == 2, 60, what="READY")
        rate, lat = measure(daemon.url, "agentMonitor.getViewer", ("bench", "CodeDX"))
    finally:
        daemon.cleanup()

    print(f"getViewer with {CLIENTS} client processes for {SECONDS:g}s each")
    for name, r, l in (("stdlib baseline (constant)", base_rate, base_lat), ("swampd (READY viewer)", rate, lat)):
        print(f"  {name:<28} {r:8.0f} calls/s  p50={pct(l, 50) * 1000:6.2f}ms  p99={pct(l, 99) * 1000:6.2f}ms")
    print(f"  ratio swampd/baseline: rate {rate / base_rate:.2f}x, "
          f"p50 {pct(lat, 50) / pct(base_lat, 50):.2f}x, p99 {pct(lat, 99) / pct(base_lat, 99):.2f}x")


if __name__ == "__main__":
    main()
