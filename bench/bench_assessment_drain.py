"""N assessment runs queued at once on the local scheduler, a trivial tool, 2 slots: time to drain.

It prints, for the daemon (``swampd serve``, the embedded default):

* baseline: the same tool run N times directly, 2 at a time (measured in
  the same run): what draining costs with no job manager at all;
* swampd: from the first ``assess`` call until every run is FINISHED with
  its results stored, and the ratio to the baseline;
* the daemon's own CPU seconds per run (its process only; the tool
  processes it reaps are shown apart), and its peak RSS (VmHWM).

The tool (``bench/trivial_tool.py``) writes SWAMP's out/ layout with one
weakness and does no analysis, so the figures are swampd's cost per run.

    .venv/bin/python bench/bench_assessment_drain.py [N]
"""
from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import subprocess

from _harness import ROOT, start_daemon

from support.assess import package_archive

TOOL = ROOT / "bench" / "trivial_tool.py"
SLOTS = 2
CLIENTS = 8
TICK = os.sysconf("SC_CLK_TCK")


def baseline(n: int) -> float:
    """The tool run n times, SLOTS at a time, each in a fresh out/ and build dir."""
    root = Path(tempfile.mkdtemp(prefix="bench-drain-"))

    def one(i: int) -> None:
        out = root / f"{i}" / "out"
        out.mkdir(parents=True)
        subprocess.run([sys.executable, str(TOOL), str(out), str(root / f"{i}" / "build")], check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(SLOTS) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - start


def cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / TICK
    children = (int(fields[13]) + int(fields[14])) / TICK
    return own, children


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 1000
    bare = baseline(n)
    command = ["{python}", str(TOOL), "{out_dir}", "{sandbox}/build"]
    daemon = start_daemon(extra={"assessments": {"max_concurrent": SLOTS},
                                 "tools.trivial": {"command": command}})
    try:
        packages = daemon.state_dir / "packages"
        packages.mkdir(mode=0o700)
        package = str(package_archive(packages))
        assert daemon.proc is not None
        pid = daemon.proc.pid
        cpu_before = cpu(pid)
        rss_before = peak_rss_mib(pid)
        start = time.perf_counter()
        ids: list[str] = []
        lock = threading.Lock()

        def submit(count: int) -> None:
            api = daemon.rpc(timeout=60).agentMonitor
            for _ in range(count):
                run = api.assess({"package_path": package, "tool": "trivial"})
                with lock:
                    ids.append(run["execrunid"])

        share = [n // CLIENTS + (1 if i < n % CLIENTS else 0) for i in range(CLIENTS)]
        threads = [threading.Thread(target=submit, args=(k,)) for k in share]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        queued = time.perf_counter() - start
        api = daemon.rpc(timeout=320).agentMonitor
        for execrunid in ids:  # a long poll per run (roughly in the order they finish), not a busy listRuns
            while api.waitRun(execrunid, 300)["state_name"] not in ("FINISHED", "FAILED"):
                pass
        drained = time.perf_counter() - start
        own, children = (a - b for a, b in zip(cpu(pid), cpu_before))
        runs = api.listRuns({"kind": "arun"})
        failed = sum(r["state_name"] == "FAILED" for r in runs)
        weaknesses = sum(r.get("weaknesses") or 0 for r in runs)
        rss = peak_rss_mib(pid)
    finally:
        daemon.terminate()
    print(f"{n} assessment runs, trivial tool, {SLOTS} slots, {CLIENTS} clients queueing, local scheduler")
    print(f"baseline: the tool run directly {SLOTS} at a time   {bare:8.2f} s  ({bare / n * 1000:.1f} ms/run)")
    print(f"swampd: all queued after                     {queued:8.2f} s")
    print(f"swampd: drained (every run FINISHED) after   {drained:8.2f} s  ({drained / n * 1000:.1f} ms/run)"
          f"  ratio {drained / bare:.2f}")
    print(f"runs failed: {failed}; weaknesses stored: {weaknesses} (expected {n})")
    print(f"daemon CPU: {own:.2f} s own = {own / n * 1000:.1f} ms/run; tool processes it reaped: {children:.2f} s")
    print(f"daemon peak RSS: {rss:.1f} MiB (at start {rss_before:.1f} MiB)")
    return 0 if failed == 0 and weaknesses == n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
