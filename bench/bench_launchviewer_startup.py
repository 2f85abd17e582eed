"""launchviewer wall time for an already-READY viewer, beside a bare ``import xmlrpc.client``.

The database runs launchviewer for every click on View, so its start-up is
part of the user's wait.  Both commands run RUNS times in this run; the
ratio of medians says what swampd adds over the least a Python XML-RPC
client could cost.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

from _harness import ROOT, pct, start_daemon, wait_for

RUNS = 20


def timed(argv: list[str], env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    daemon = start_daemon()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    try:
        daemon.api.launchViewer({"projectid": "lv", "viewer": "CodeDX"})
        wait_for(lambda: daemon.api.getViewer("lv", "CodeDX")["state"] == 2, 60, what="READY")
        bare = timed([sys.executable, "-c", "import xmlrpc.client"], env)
        launch = timed([sys.executable, "-m", "swampd.cli.launchviewer", "--url", daemon.url,
                        "--viewer_name", "CodeDX", "--project", "lv"], env)
        imports = subprocess.run([sys.executable, "-X", "importtime", "-m", "swampd.cli.launchviewer", "--help"],
                                 env=env, capture_output=True, text=True).stderr.splitlines()
    finally:
        daemon.cleanup()
    print(f"{RUNS} runs each, READY viewer")
    for name, t in (("python -c 'import xmlrpc.client'", bare), ("launchviewer (SUCCESS)", launch)):
        print(f"  {name:<34} p50={pct(t, 50) * 1000:6.1f}ms  p90={pct(t, 90) * 1000:6.1f}ms")
    print(f"  ratio launchviewer/bare import (p50): {pct(launch, 50) / pct(bare, 50):.2f}x")
    print(f"  modules imported by launchviewer: {sum(1 for l in imports if l.startswith('import time:')) - 1}")


if __name__ == "__main__":
    main()
