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


#: A viewer that notes a TERM (a graceful stop asks it to save its work) before it goes.
NOTING_VIEWER = """
import http.server, os, signal, sys
port, sandbox = int(sys.argv[1]), sys.argv[2]
def noted(*_):
    open(os.path.join(sandbox, "out", "got-term"), "w").close()
    os._exit(0)
signal.signal(signal.SIGTERM, noted)
http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def test_hard_removes_at_once_and_a_plain_kill_asks_the_viewer_to_shut_down(make_daemon, tmp_path):
    script = tmp_path / "noting_viewer.py"
    script.write_text(NOTING_VIEWER)
    daemon = make_daemon(viewers={"CodeDX": {"command": ["{python}", str(script), "{port}", "{sandbox}"]}})
    for project in ("gentle", "hard"):
        daemon.api.launchViewer({"projectid": project, "viewer": "CodeDX"})
        assert daemon.api.waitViewer(project, "CodeDX", "READY", 60)["state_name"] == "READY"
    jobs = {p: next(d for d in daemon.jobs_dir().iterdir() if (d / f"vrun_{p}_CodeDX.bog").exists())
            for p in ("gentle", "hard")}
    assert kill_run("--url", daemon.url, "--execution_record_uuid", "gentle", "--hard", "0").returncode == 0
    assert kill_run("--url", daemon.url, "--execution_record_uuid", "hard", "--hard", "1").returncode == 0
    for project in ("gentle", "hard"):
        assert daemon.api.waitViewer(project, "CodeDX", "TERMINATED", 60)["state_name"] == "TERMINATED"
    assert (jobs["gentle"] / "out" / "got-term").exists()
    assert not (jobs["hard"] / "out" / "got-term").exists()


def test_kill_run_kills_an_assessment_and_answers_clearly_for_an_unknown_uuid(make_daemon):
    from support.assess import package_archive

    daemon = make_daemon(start=False)
    (daemon.state_dir / "packages").mkdir(parents=True, mode=0o700)
    daemon.start()
    daemon.api.pauseRuns()  # it stays queued: killed before it ever ran
    run = daemon.api.assess({"package_path": str(package_archive(daemon.state_dir / "packages")),
                             "tool": "cppcheck"})
    out = kill_run("--url", daemon.url, "--execution_record_uuid", run["execrunid"], "--hard", "0")
    assert out.returncode == 0 and out.stdout.startswith("SUCCESS") and run["execrunid"] in out.stdout, out
    wait_for(lambda: daemon.api.getRun(run["execrunid"])["state_name"] == "TERMINATED", 30)
    out = kill_run("--url", daemon.url, "--execution_record_uuid", "6c0f5a1e-never-heard-of", "--hard", "1")
    assert out.returncode == 0 and "knows no assessment run and no viewer" in out.stdout, out
