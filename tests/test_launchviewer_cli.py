"""launchviewer's contract with the database: one line, SUCCESS or ERROR..., and exit codes."""
from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

from support.daemon import SRC, free_port, wait_for


def launchviewer(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    base = {"PYTHONPATH": str(SRC)}
    if env is None:
        base.update({k: v for k, v in os.environ.items() if k in ("PATH", "HOME")})
    else:
        base.update(env)
    return subprocess.run([sys.executable, "-m", "swampd.cli.launchviewer", *args], capture_output=True,
                          text=True, timeout=timeout, env=base, stdin=subprocess.DEVNULL, cwd="/")


def test_success_is_one_line_and_exit_0(daemon):
    out = launchviewer("--url", daemon.url, "--viewer_name", "CodeDX", "--project", "cli-p",
                       "--user_uuid", "u-1", "--viewer_uuid", "vi-1", "--viewer_db_path", "NULL")
    assert (out.returncode, out.stdout) == (0, "SUCCESS\n"), out.stderr
    record = daemon.api.getViewer("cli-p", "CodeDX")
    assert record["state"] in (1, 2) and record["userid"] == "u-1" and record["viewer_uuid"] == "vi-1"


def test_options_as_the_stored_procedure_passes_them(daemon):
    results = daemon.state_dir / "results" / "A-Results" / "r"  # under the default result_roots
    results.mkdir(parents=True)
    for name in ("src.tgz", "r1.xml", "r2.xml"):
        (results / name).write_text(name)
    out = launchviewer("--url", daemon.url, "--viewer_name", "CodeDX", "--project", "proc-p",
                       "--viewer_db_checksum", "NULL", "--viewer_uuid", "vi-2", "--user_uuid", "u-2",
                       "--package", "my pkg", "--tool_name", "tool", "--source_archive_path", f"{results}/src.tgz",
                       "--package_type", "1", "--file_path", f"{results}/r1.xml", "--file_path", f"{results}/r2.xml")
    assert (out.returncode, out.stdout) == (0, "SUCCESS\n"), out.stderr
    out = launchviewer("--url", daemon.url, "--viewer_name", "CodeDX", "--project", "proc-p2", "--package", "p",
                       "--file_path", "/etc/shadow")
    assert out.returncode == 1 and out.stdout.startswith("ERROR") and "not inside" in out.stdout, out.stdout


def test_wait_prints_the_url_of_a_working_viewer(daemon):
    out = launchviewer("--url", daemon.url, "--viewer_name", "CodeDX", "--project", "w", "--wait", "60")
    assert out.returncode == 0, out.stdout + out.stderr
    url = out.stdout.strip()
    assert out.stdout.count("\n") == 1 and url.startswith("http://127.0.0.1:")
    assert urllib.request.urlopen(url, timeout=10).status == 200


def test_errors_are_one_error_line_with_nonzero_exit(daemon):
    for args, code in (
        (("--viewer_name", "NoSuchViewer", "--project", "p"), 1),
        (("--viewer_name", "CodeDX", "--project", "'; rm -rf /"), 1),
        (("--viewer_name", "CodeDX", "--project", "../../x"), 1),
        (("--viewer_name", "CodeDX"), 2),
        (("--viewer_name", "CodeDX", "--project", "p", "--no-such-option", "x"), 2),
        (("--viewer_name", "CodeDX", "--project", "p", "--results_type", "results"), 2),
    ):
        out = launchviewer("--url", daemon.url, *args)
        assert out.returncode == code, (args, out.stdout, out.stderr)
        assert out.stdout.startswith("ERROR") and out.stdout.count("\n") == 1, (args, out.stdout)
    assert daemon.api.listViewers() == []


def test_daemon_down_is_a_quick_clear_error():
    url = f"http://127.0.0.1:{free_port()}/"
    out = launchviewer("--url", url, "--viewer_name", "CodeDX", "--project", "p", timeout=15)
    assert out.returncode == 3
    assert out.stdout.startswith("ERROR: swampd is not reachable at " + url) and out.stdout.count("\n") == 1


def test_url_from_environment_with_a_bare_environment(daemon):
    out = launchviewer("--viewer_name", "CodeDX", "--project", "bare", env={"SWAMPD_URL": daemon.url})
    assert (out.returncode, out.stdout) == (0, "SUCCESS\n"), out.stderr


def test_url_from_config_file(daemon):
    out = launchviewer("--config", str(daemon.config), "--viewer_name", "CodeDX", "--project", "cfg", env={})
    assert (out.returncode, out.stdout) == (0, "SUCCESS\n"), out.stderr
    wait_for(lambda: daemon.api.getViewer("cfg", "CodeDX")["state"] == 2, 60, what="READY")


def test_wait_viewer_answers_the_moment_the_viewer_is_ready(daemon):
    """waitViewer blocks on the daemon's change feed: it returns READY with the URL, returns
    at once for a launch that ended elsewhere, and times out with the current struct."""
    import threading

    api = daemon.api
    assert api.waitViewer("never-launched", "CodeDX", "READY", 0.2)["state_name"] == "NO_RECORD"
    api.launchViewer({"projectid": "wait-proj", "viewer": "CodeDX"})
    got = {}

    def waiter() -> None:
        got["struct"] = daemon.rpc(timeout=120).agentMonitor.waitViewer("wait-proj", "CodeDX", "READY", 60)

    thread = threading.Thread(target=waiter)
    thread.start()
    thread.join(90)
    assert got["struct"]["state_name"] == "READY" and got["struct"]["url"].startswith("http://127.0.0.1:")
    api.stopViewer("wait-proj", "CodeDX")
    ended = api.waitViewer("wait-proj", "CodeDX", "READY", 60)  # cannot become READY: returns when it ends
    assert ended["state_name"] == "TERMINATED"
    assert api.waitViewer("wait-proj", "CodeDX", -7, 30)["state_name"] == "TERMINATED"  # already there
    from support.daemon import fault_code

    assert fault_code(lambda: api.waitViewer("wait-proj", "CodeDX", "SLEEPING", 1)) == 1
    assert fault_code(lambda: api.waitViewer("wait-proj", "CodeDX", "READY", 10_000)) == 1
    assert fault_code(lambda: api.waitViewer("wait-proj", "CodeDX", "READY", "soon")) == 1


def test_waiting_clients_hold_no_worker_and_cannot_fill_the_connection_cap(make_daemon):
    """Thirty clients long-polling a viewer that never comes up, against a daemon with two request
    workers and a cap of 24 connections: ordinary calls still get a worker and a connection."""
    import threading
    import xmlrpc.client

    daemon = make_daemon(agentmonitor={"request_threads": 2, "max_connections": 24},
                         viewers={"CodeDX": {"command": ["{python}", "-c", "import time; time.sleep(600)"],
                                             "ready_timeout": 120}})
    daemon.api.launchViewer({"projectid": "never-up", "viewer": "CodeDX"})
    outcomes: list[str] = []

    def wait() -> None:
        try:
            struct = daemon.rpc(timeout=90).agentMonitor.waitViewer("never-up", "CodeDX", "READY", 60)
            outcomes.append(struct["state_name"])
        except (OSError, xmlrpc.client.ProtocolError) as exc:  # closed to make room
            outcomes.append(type(exc).__name__)

    waiters = [threading.Thread(target=wait) for _ in range(30)]
    for thread in waiters:
        thread.start()
    from support.daemon import wait_for

    wait_for(lambda: len(daemon.rpc(timeout=20).agentMonitor.listViewers()) == 1, 20)
    assert daemon.rpc(timeout=20).agentMonitor.getViewer("never-up", "CodeDX")["state_name"] == "LAUNCHING"
    daemon.api.stopViewer("never-up", "CodeDX")  # the waits end: the launch is over
    for thread in waiters:
        thread.join(90)
    assert len(outcomes) == 30
    assert "TERMINATED" in outcomes or "TERMINATING" in outcomes
