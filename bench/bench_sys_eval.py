"""CALL launch_viewer for an already-running viewer, beside the same call with sys_eval of /bin/true.

Real MariaDB, the tests' sys_eval UDF, the etc/mariadb wrapper run as the
mysql user: the whole path a click on View takes once the viewer is up.
The second figure runs the same procedure with its command set to
``/bin/true`` (same SQL, same popen, no launchviewer), and the third is a
bare ``SELECT sys_eval('/bin/true')``; the differences are what swampd's
launchviewer costs the server thread.  Needs root and MariaDB (run
scripts/setup-system.sh first).
"""
from __future__ import annotations

import time

from _harness import pct, start_daemon, wait_for
from support.mariadb import MysqlInstall, ScratchDB, connect, ensure_mariadb

RUNS = 20
PROJECT = "bench-project-0001"
USER = "bench-user"


def timed_calls(db: ScratchDB, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = db.call_launch_viewer(None, USER, PROJECT)
        times.append(time.perf_counter() - t0)
        assert out["return_string"] == "SUCCESS", out
    return times


def timed_select(db: ScratchDB, runs: int) -> list[float]:
    times = []
    with connect(db.name) as conn, conn.cursor() as cur:
        for _ in range(runs):
            t0 = time.perf_counter()
            cur.execute("SELECT sys_eval('/bin/true')")
            cur.fetchall()
            times.append(time.perf_counter() - t0)
    return times


def line(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"{name:<48} n={len(ms)} p50={pct(ms, 50):7.1f}ms p90={pct(ms, 90):7.1f}ms max={max(ms):7.1f}ms"


def main() -> None:
    ensure_mariadb()
    daemon = start_daemon()
    db = ScratchDB().create()
    install = MysqlInstall(daemon.config)
    try:
        db.sql("UPDATE swampd_test_setting SET value=%s WHERE name='launch_viewer_cmd'",
               (str(install.bin / "launch_viewer"),))
        assert db.call_launch_viewer(None, USER, PROJECT)["return_string"] == "SUCCESS"
        wait_for(lambda: daemon.api.getViewer(PROJECT, "CodeDX")["state"] == 2, 60, what="viewer READY")
        real = timed_calls(db, RUNS)
        db.sql("UPDATE swampd_test_setting SET value='/bin/true' WHERE name='launch_viewer_cmd'")
        # /bin/true prints nothing, so the procedure answers 'Error Launching Viewer'; time it anyway
        true_times = []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            db.call_launch_viewer(None, USER, PROJECT)
            true_times.append(time.perf_counter() - t0)
        bare = timed_select(db, RUNS)
        print(line("CALL launch_viewer (viewer READY, launchviewer)", real))
        print(line("CALL launch_viewer (command = /bin/true)", true_times))
        print(line("SELECT sys_eval('/bin/true')", bare))
        print(f"launchviewer adds {pct(real, 50) * 1000 - pct(true_times, 50) * 1000:.1f}ms (p50) per click")
    finally:
        install.remove()
        db.drop()
        daemon.cleanup()


if __name__ == "__main__":
    main()
