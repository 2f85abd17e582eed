"""kill_run: SWAMP's kill entry point, which for viewers receives the project uuid."""
from __future__ import annotations

import subprocess
import sys

from support.daemon import SRC, free_port, wait_for


def kill_run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swampd.cli.kill_run", *args], capture_output=True, text=True,
                          timeout=60, env={"PYTHONPATH": str(SRC)}, cwd="/", stdin=subprocess.DEVNULL)


def test_stops_every_running_viewer_of_the_project(make_daemon):
    daemon = make_daemon(viewers={"CodeDX": {}, "Other": {}})
    for project, viewer in (("proj-k", "CodeDX"), ("proj-k", "Other"), ("proj-keep", "CodeDX")):
        daemon.api.launchViewer({"projectid": project, "viewer": viewer})
    wait_for(lambda: all(v["state"] == 2 for v in daemon.api.listViewers()), 60, what="all READY")
    out = kill_run("--url", daemon.url, "--execution_record_uuid", "proj-k", "--hard", "1")
    assert out.returncode == 0 and out.stdout.startswith("SUCCESS") and out.stdout.count("\n") == 1, out
    states = {(v["projectid"], v["viewer"]): v["state"] for v in daemon.api.listViewers()}
    assert states[("proj-k", "CodeDX")] in (-6, -7) and states[("proj-k", "Other")] in (-6, -7)
    assert states[("proj-keep", "CodeDX")] == 2
    # idempotent: nothing left running is still a success, whatever --hard says
    for hard in ("0", "", "false"):
        again = kill_run("--url", daemon.url, "--execution_record_uuid", "proj-k", "--hard", hard)
        assert again.returncode == 0 and again.stdout.startswith("SUCCESS"), again
    # a full viewer run id names one viewer
    out = kill_run("--url", daemon.url, "--execution_record_uuid", "vrun_proj-keep_CodeDX", "--hard", "0")
    assert out.returncode == 0 and "vrun_proj-keep_CodeDX" in out.stdout
    assert daemon.api.getViewer("proj-keep", "CodeDX")["state"] in (-6, -7)


def test_bad_arguments_and_unreachable_daemon(daemon):
    for args in (("--execution_record_uuid", "x'; rm -rf /"), ("--execution_record_uuid", "../etc"), ()):
        out = kill_run("--url", daemon.url, *args)
        assert out.returncode == 2 and out.stdout.startswith("ERROR") and out.stdout.count("\n") == 1, out
    out = kill_run("--url", f"http://127.0.0.1:{free_port()}/", "--execution_record_uuid", "p", "--hard", "1")
    assert out.returncode == 3 and out.stdout.startswith("ERROR: swampd is not reachable"), out
