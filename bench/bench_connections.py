"""What connection floods and large bodies cost the daemon (issue 9, findings 9 and 10).

Three scenarios against a real ``swampd serve``, each printing its figures:

1. slow senders: 500 connections that each send one byte a second of a
   request that never ends — the daemon's threads and open files over time,
   and how many of those connections it still holds;
2. an idle flood under a 1,024 file-descriptor limit (what a unit without
   ``LimitNOFILE`` gets): 1,124 connections that send nothing — the daemon's
   CPU while flooded, and whether a normal call and an execute node's
   report still get through;
3. twelve 26 MB request bodies at once — the daemon's resident memory before,
   at its peak and after, and the latency of a normal call meanwhile.

``--src DIR`` runs the daemon from another source tree (e.g. a checkout of
main) so that before and after are measured by the same script.
"""
from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path

from _harness import ROOT, pct, start_daemon, wait_for

sys.path.insert(0, str(ROOT / "tests"))
from support.procstat import cpu_seconds, open_fds, peak_rss_mib, rss_mib, threads  # noqa: E402

KEY = ("bench-conn", "CodeDX")


def _env(src: str | None) -> dict[str, str]:
    return {"PYTHONPATH": src} if src else {}


def slow_senders(src: str | None, count: int = 500, seconds: float = 40.0) -> None:
    daemon = start_daemon(env=_env(src))
    try:
        pid = daemon.proc.pid
        socks = []
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", daemon.port), timeout=5)
            s.setblocking(False)
            socks.append(s)
        request = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"<" * 100000
        sent, alive = 0, list(socks)
        start = time.monotonic()
        print(f"slow senders: {count} connections, one byte a second each")
        while (elapsed := time.monotonic() - start) < seconds:
            still = []
            for s in alive:
                try:
                    s.send(request[sent:sent + 1])
                    still.append(s)
                except OSError:
                    s.close()
            alive, sent = still, sent + 1
            if sent % 5 == 0:
                print(f"  t={elapsed:5.1f}s daemon threads={threads(pid):4d} fds={open_fds(pid):4d} "
                      f"connections still held={len(alive)}")
            time.sleep(1.0)
        for s in alive:
            s.close()
    finally:
        daemon.cleanup()


def _report_token(daemon) -> tuple[dict, str]:
    daemon.api.launchViewer({"projectid": KEY[0], "viewer": KEY[1]})
    record = wait_for(lambda: (r := daemon.api.getViewer(*KEY))["state"] == 2 and r, 60, what="READY")
    (token,) = [p.read_text().strip() for p in daemon.jobs_dir().glob("*/token")]
    return record, token


def idle_flood(src: str | None, count: int = 1124, nofile: int = 1024) -> None:
    daemon = start_daemon(env=_env(src), nofile=nofile)
    socks: list[socket.socket] = []
    try:
        pid = daemon.proc.pid
        record, token = _report_token(daemon)
        base_threads = threads(pid)
        for _ in range(count):
            try:
                socks.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=2))
            except OSError:
                break
        time.sleep(1.0)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(5.0)
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        print(f"idle flood: {len(socks)} idle connections, daemon limit {nofile} files")
        print(f"  daemon CPU while flooded: {cpu * 100:.0f}%  threads {base_threads} -> {threads(pid)}  "
              f"fds {open_fds(pid)}")
        for what, call in (
            ("getViewer", lambda proxy: proxy.agentMonitor.getViewer(*KEY)),
            ("report (viewerStatus)", lambda proxy: proxy.agentMonitor.viewerStatus(
                {"execrunid": record["execrunid"], "epoch": record["epoch"], "token": token,
                 "event": "VIEWERUP", "vmip": record["vmip"]})),
        ):
            t0 = time.monotonic()
            try:
                call(daemon.rpc(timeout=10))
                outcome = "answered"
            except (OSError, xmlrpc.client.ProtocolError) as exc:
                outcome = f"failed ({type(exc).__name__}: {exc})"
            except xmlrpc.client.Fault as fault:
                outcome = f"answered with fault {fault.faultCode}"
            print(f"  {what}: {outcome} after {time.monotonic() - t0:.2f}s")
    finally:
        for s in socks:
            s.close()
        daemon.cleanup()


def large_bodies(src: str | None, count: int = 12, size: int = 26 * 1024 * 1024) -> None:
    daemon = start_daemon(env=_env(src))
    try:
        pid = daemon.proc.pid
        daemon.api.getViewer(*KEY)
        before = rss_mib(pid)
        body = xmlrpc.client.dumps(("x" * size, "CodeDX"), "agentMonitor.getViewer").encode()
        latencies: list[float] = []
        done = threading.Event()

        def normal_calls() -> None:
            proxy = daemon.rpc(timeout=60)
            while not done.is_set():
                t0 = time.perf_counter()
                proxy.agentMonitor.getViewer(*KEY)
                latencies.append(time.perf_counter() - t0)
                time.sleep(0.05)

        def big() -> None:
            import http.client

            conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
            conn.request("POST", "/RPC2", body=body, headers={"Content-Type": "text/xml"})
            conn.getresponse().read()
            conn.close()

        prober = threading.Thread(target=normal_calls)
        prober.start()
        senders = [threading.Thread(target=big) for _ in range(count)]
        t0 = time.monotonic()
        for t in senders:
            t.start()
        peak_threads = 0
        while any(t.is_alive() for t in senders):
            peak_threads = max(peak_threads, threads(pid))
            time.sleep(0.05)
        took = time.monotonic() - t0
        done.set()
        prober.join()
        after = [rss_mib(pid)]
        for _ in range(2):
            time.sleep(5.0)
            after.append(rss_mib(pid))
        print(f"large bodies: {count} x {size / 2**20:.0f} MiB at once, all answered in {took:.1f}s")
        print(f"  daemon RSS: before {before:.0f} MiB, peak {peak_rss_mib(pid):.0f} MiB, "
              f"after 0/5/10 s {' / '.join(f'{a:.0f}' for a in after)} MiB; peak threads {peak_threads}")
        print(f"  normal getViewer meanwhile: n={len(latencies)} p50={pct(latencies, 50) * 1000:.1f}ms "
              f"max={max(latencies) * 1000:.0f}ms")
    finally:
        daemon.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", default=None, help="run the daemon from this source tree (default: this one)")
    parser.add_argument("scenarios", nargs="*", default=["slow", "flood", "bodies"])
    args = parser.parse_args()
    src = str(Path(args.src).resolve()) if args.src else None
    print(f"daemon source: {src or ROOT / 'src'}; host: {os.cpu_count()} CPUs")
    for name in args.scenarios:
        {"slow": slow_senders, "flood": idle_flood, "bodies": large_bodies}[name](src)


if __name__ == "__main__":
    main()
