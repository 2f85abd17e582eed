"""Stopping N local viewers at once: stops per second and scheduler calls per stop.

A whole daemon runs in this process (``agentmonitor.daemon.Daemon``, its
reconciler threads and host agent) with N stub viewers whose command is
``sleep`` (they never answer HTTP, so they stay LAUNCHING: the cheapest job
that is really running).  Every one is then stopped at once through the
service, and the time until all are TERMINATED is measured, with the
scheduler calls the stops cost (``remove`` and the bulk ``observe`` of the
resyncs), counted by wrapping the real scheduler.  Before issue 9 every
remove ran a whole resync, so N stops cost O(N^2); now a stop costs one
remove, and the resyncs stay one bulk look each.

    .venv/bin/python bench/bench_stop_scale.py [N]
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from swampd.agentmonitor.daemon import Daemon  # noqa: E402
from swampd.agentmonitor.service import LaunchRequest  # noqa: E402
from swampd.config import parse_config  # noqa: E402
from swampd.states import ViewerState  # noqa: E402

SLEEP = shutil.which("sleep") or "/bin/sleep"


def count_calls(scheduler: object, calls: Counter[str]) -> None:
    for name in ("observe", "remove", "submit"):
        original = getattr(scheduler, name)

        def counted(*args, _original=original, _name=name, **kwargs):  # type: ignore[no-untyped-def]
            calls[_name] += 1
            return _original(*args, **kwargs)

        setattr(scheduler, name, counted)


def states(daemon: Daemon) -> Counter[int]:
    return Counter(r.state for r in daemon.store.list_viewers())


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 5000
    state_dir = Path(tempfile.mkdtemp(prefix="bench-stop-"))
    state_dir.chmod(0o700)
    config = parse_config({
        "agentmonitor": {"port": 0, "state_dir": str(state_dir)},
        "scheduler": {"stop_grace": 5, "allow_root_jobs": os.geteuid() == 0},
        "viewers": {"CodeDX": {"command": [SLEEP, "3600"], "ready_timeout": 3600}},
    }, "bench")
    daemon = Daemon(config)
    calls: Counter[str] = Counter()
    count_calls(daemon.launchpad.scheduler, calls)
    daemon.start()
    try:
        t0 = time.perf_counter()
        for i in range(n):
            daemon.service.launch(LaunchRequest(f"p{i:05d}", "CodeDX"))
        while sum(1 for r in daemon.store.list_viewers() if r.job_ref) < n:
            time.sleep(0.5)
        launched = time.perf_counter() - t0
        calls.clear()
        t0 = time.perf_counter()
        for i in range(n):
            daemon.service.stop(f"p{i:05d}", "CodeDX")
        while states(daemon)[int(ViewerState.TERMINATED)] < n:
            time.sleep(0.25)
            if time.perf_counter() - t0 > 1800:
                print("gave up after 30 min:", states(daemon))
                return 1
        stopped = time.perf_counter() - t0
        final = states(daemon)
    finally:
        daemon.request_stop()
        daemon.close()
        shutil.rmtree(state_dir, ignore_errors=True)
    print(f"{n} stub viewers (sleep) on the local scheduler, all running after {launched:.1f} s")
    print(f"  stopping all at once: all TERMINATED after {stopped:.1f} s = {n / stopped:.0f} stops/s")
    print(f"  scheduler calls during the stops: remove {calls['remove']} ({calls['remove'] / n:.2f} per stop), "
          f"observe {calls['observe']} (bulk, one per resync)")
    print(f"  final states: {dict(final)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
