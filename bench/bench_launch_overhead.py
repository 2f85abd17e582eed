"""Launch overhead on the local scheduler, beside the same command started bare.

The viewer is ``busybox httpd`` (Debian's busybox-static), the cheapest HTTP
server at hand, so the figures are swampd's own cost.  Per launch (median of
N, default 20):

* bare: ``Popen`` of the command, then connect attempts every millisecond
  until it answers HTTP: the command's own start time (the baseline);
* swampd, request -> the viewer answers: ``launchViewer``, then the same 1 ms
  probe of the viewer's port, learnt as early as possible;
* swampd, request -> ``waitViewer`` returns READY (what a waiting client sees);
* swampd, request -> command start: from the request to the start time of the
  command's process (``/proc/<pid>/stat``, 10 ms resolution).

Each swampd figure is printed with the baseline subtracted.

    .venv/bin/python bench/bench_launch_overhead.py [N]
"""
from __future__ import annotations

import http.client
import json
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

BUSYBOX = shutil.which("busybox") or "/bin/busybox"
COMMAND = [BUSYBOX, "httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "{sandbox}"]


def answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status < 500
    except OSError:
        return False
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bare_once(root: Path) -> float:
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([BUSYBOX, "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", str(root)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not answers(port):
            time.sleep(0.001)
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait()


def boot_time() -> float:
    """Seconds since the epoch at which the machine booted (for /proc/<pid>/stat start times)."""
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    return time.time() - uptime


def process_start(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def viewer_pid(daemon, launch_id: str) -> int | None:
    """The viewer command's pid: the busybox process of the launch's job."""
    job_dir = daemon.jobs_dir() / launch_id
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"busybox") and cwd.startswith(str(job_dir)):
            return pid
    return None


def job_dir_of(daemon, project: str) -> Path | None:
    found = list(daemon.jobs_dir().glob(f"*/vrun_{project}_CodeDX.bog"))
    return found[0].parent if found else None


def viewer_port(job_dir: Path) -> int | None:
    try:
        lines = (job_dir / "out" / "job_ip_address.txt").read_text().split()
    except OSError:
        return None
    return int(lines[-1].rsplit(":", 1)[1]) if lines else None


def swampd_once(daemon, n: int) -> tuple[float, float, float | None]:
    """(request -> answers, request -> waitViewer READY, request -> command start) in seconds."""
    api = daemon.api
    project = f"overhead-{n}"
    t0_wall, t0 = time.time(), time.perf_counter()
    api.launchViewer({"projectid": project, "viewer": "CodeDX"})
    port = None
    while port is None:  # the execute side picks the port and writes it to the IP file
        job_dir = job_dir_of(daemon, project)
        port = viewer_port(job_dir) if job_dir else None
        if port is None:
            time.sleep(0.001)
    while not answers(port):
        time.sleep(0.001)
    answered = time.perf_counter() - t0
    ready = api.waitViewer(project, "CodeDX", "READY", 60)
    ready_at = time.perf_counter() - t0
    assert ready["state_name"] == "READY", ready
    assert job_dir is not None
    pid = viewer_pid(daemon, job_dir.name)
    started = process_start(pid) - t0_wall if pid else None
    api.stopViewer(project, "CodeDX")
    return answered, ready_at, started


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 20
    root = Path(tempfile.mkdtemp(prefix="bench-bare-"))
    bare = [bare_once(root) for _ in range(n)]
    daemon = start_daemon(viewers={"CodeDX": {"command": COMMAND}})
    try:
        runs = [swampd_once(daemon, i) for i in range(n)]
    finally:
        daemon.cleanup()
    base = statistics.median(bare)
    answered = statistics.median(r[0] for r in runs)
    ready = statistics.median(r[1] for r in runs)
    starts = [r[2] for r in runs if r[2] is not None]
    print(f"launch overhead, local scheduler, busybox httpd, median of {n}")
    print(f"  bare command: start -> answers HTTP            {base * 1000:8.1f} ms (baseline)")
    print(f"  swampd: request -> the viewer answers          {answered * 1000:8.1f} ms "
          f"(overhead {1000 * (answered - base):.1f} ms)")
    print(f"  swampd: request -> waitViewer returns READY    {ready * 1000:8.1f} ms "
          f"(overhead {1000 * (ready - base):.1f} ms; after the viewer answered: {1000 * (ready - answered):.1f} ms)")
    if starts:
        print(f"  swampd: request -> command process started    {statistics.median(starts) * 1000:8.1f} ms "
              f"(/proc start time, 10 ms resolution)")
    print(json.dumps({"bare_ms": base * 1000, "answer_ms": answered * 1000, "ready_ms": ready * 1000}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
