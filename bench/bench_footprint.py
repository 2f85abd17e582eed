"""Footprint of N idle viewers on the local scheduler, beside a plain shell script starting them.

The viewer is ``busybox httpd`` (Debian's busybox-static).  It prints:

* baseline: a plain shell script that starts the same N commands and waits
  until each answers HTTP (measured in the same run, the median of three);
* the time until all N viewers are READY when 8 client processes request
  them at once (each waits with ``waitViewer``), and the daemon's CPU time
  meanwhile;
* PSS of swampd's own processes (the daemon, its host agent and any per-job supervisor; the
  viewer commands are not counted), the daemon's RSS before and after, and
  its growth per viewer;
* the CPU swampd's own processes use over 30 s while every viewer idles (from
  one resync interval after the last READY: the first resync after a burst
  sees every new job and gives each run a reconciler turn, which is the
  burst's work, not idling);
* ``listViewers`` latency with N viewers (median of 10).

    .venv/bin/python bench/bench_footprint.py [N] [IDLE_SECONDS]
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import start_daemon
from support.daemon import host_agents

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
COMMAND = [BUSYBOX, "httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "{sandbox}"]
CLIENTS = 8
#: The daemon's default (the test harness resyncs every 0.5 s).
RESYNC_INTERVAL = 5.0
#: The baseline: start a server on each port given, then wait until each answers.
SHELL_BASELINE = """#!/bin/sh
root=$1; busybox=$2; shift 2
for port in "$@"; do
  "$busybox" httpd -f -p 127.0.0.1:$port -h "$root" &
done
for port in "$@"; do
  until "$busybox" wget -q -O /dev/null http://127.0.0.1:$port/ 2>/dev/null; do :; done
done
"""


def shell_baseline(n: int) -> float:
    root = Path(tempfile.mkdtemp(prefix="bench-shell-"))
    (root / "index.html").write_text("ok")
    script = root / "start.sh"
    script.write_text(SHELL_BASELINE)
    ports = free_ports(n)
    start = time.perf_counter()
    subprocess.run(["sh", str(script), str(root), BUSYBOX, *map(str, ports)], check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    subprocess.run(["pkill", "-f", "--", f"-h {root}"], check=False)
    return elapsed


def free_ports(n: int) -> list[int]:
    """N ports nothing listens on now (held open together, so they differ)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def client(url: str, names: list[str], start_at: float, out) -> None:  # type: ignore[no-untyped-def]
    from swampd.clients.rpc import connect

    api = connect(url, timeout=120).agentMonitor
    time.sleep(max(0.0, start_at - time.time()))
    for name in names:
        api.launchViewer({"projectid": name, "viewer": "CodeDX"})
    for name in names:
        struct = api.waitViewer(name, "CodeDX", "READY", 100)
        assert struct["state_name"] == "READY", struct
    out.put(time.time())


def pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def swampd_processes(daemon) -> list[int]:  # type: ignore[no-untyped-def]
    """The daemon, its host agent and every process of a job that is not the viewer command itself."""
    pids = [daemon.proc.pid, *host_agents(daemon)]
    for pid in daemon._job_tree():
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            continue
        if not exe.endswith("busybox") and pid not in pids:
            pids.append(pid)
    return pids


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 500
    idle = float(argv[1]) if len(argv) > 1 else 30.0
    # The shell's time swings (0.9 to 2.1 s for 500 on one 2-core machine): the median of three.
    shells = [shell_baseline(n) for _ in range(3)]
    baseline = statistics.median(shells)
    daemon = start_daemon(viewers={"CodeDX": {"command": COMMAND}}, agentmonitor={"resync_interval": RESYNC_INTERVAL})
    try:
        time.sleep(1.0)
        rss_empty = rss_kib(daemon.proc.pid)
        names = [f"fp-{i:04d}" for i in range(n)]
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        start_at = time.time() + 2.0
        procs = [ctx.Process(target=client, args=(daemon.url, names[k::CLIENTS], start_at, out))
                 for k in range(CLIENTS)]
        for proc in procs:
            proc.start()
        agents = host_agents(daemon)
        burst_cpu = cpu_seconds(daemon.proc.pid)
        agent_cpu = sum(cpu_seconds(pid) for pid in agents)
        done = [out.get(timeout=900) for _ in procs]
        burst_cpu = cpu_seconds(daemon.proc.pid) - burst_cpu
        agent_cpu = sum(cpu_seconds(pid) for pid in agents) - agent_cpu
        for proc in procs:
            proc.join()
        all_ready = max(done) - start_at
        time.sleep(RESYNC_INTERVAL + 1.0)  # the burst's own resync is over
        pids = swampd_processes(daemon)
        pss = sum(pss_kib(pid) for pid in pids)
        rss_full = rss_kib(daemon.proc.pid)
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(idle)
        cpu = (sum(cpu_seconds(pid) for pid in swampd_processes(daemon)) - cpu_before) / idle
        api = daemon.api
        listing = []
        for _ in range(10):
            t0 = time.perf_counter()
            assert len(api.listViewers()) == n
            listing.append(time.perf_counter() - t0)
    finally:
        daemon.cleanup()
    print(f"{n} idle busybox httpd viewers on the local scheduler ({CLIENTS} client processes)")
    print(f"  baseline: a shell script starts {n} and sees each answer: {baseline:8.2f} s "
          f"(median of {', '.join(f'{t:.2f}' for t in shells)})")
    print(f"  swampd: all {n} READY after the requests:                {all_ready:8.2f} s "
          f"(ratio {all_ready / baseline:.2f})")
    print(f"  daemon CPU during the burst: {burst_cpu:.2f} s ({burst_cpu / n * 1000:.1f} ms per launch); "
          f"host agent CPU: {agent_cpu:.2f} s ({agent_cpu / n * 1000:.1f} ms per launch)")
    print(f"  swampd's own processes: {len(pids)}; PSS {pss / 1024:.1f} MiB")
    print(f"  daemon RSS {rss_empty / 1024:.1f} MiB idle with none, {rss_full / 1024:.1f} MiB with {n}: "
          f"{(rss_full - rss_empty) / n:.1f} KiB per viewer")
    print(f"  idle CPU of swampd's processes over {idle:g} s: {cpu * 100:.2f} % of one core")
    print(f"  listViewers with {n}: median {statistics.median(listing) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
