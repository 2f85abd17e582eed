"""The daemon as operators run it: one per state dir, clean SIGTERM, config errors, auth, keep-alive."""
from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import xmlrpc.client

from support.daemon import ROOT_JOBS, SRC, fault_code, wait_for, write_config


def run_serve(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swampd.cli.swampd_main", "serve", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, stdin=subprocess.DEVNULL)


def test_second_daemon_on_same_state_dir_refuses_naming_the_holder(daemon):
    out = run_serve("--config", str(daemon.config), "--port", "0")
    assert out.returncode == 2
    assert f"pid {daemon.proc.pid}" in out.stderr and "in use" in out.stderr
    assert daemon.answering()


def test_sigterm_stops_cleanly_and_viewers_are_adopted_after(daemon):
    daemon.api.launchViewer({"projectid": "t", "viewer": "CodeDX"})
    ready = wait_for(lambda: (r := daemon.api.getViewer("t", "CodeDX"))["state"] == 2 and r, 60, what="READY")
    pids = daemon.viewer_pids()
    assert daemon.terminate() == 0
    assert "swampd stopped" in daemon.log()
    assert not (daemon.state_dir / "swampd.pid").exists()
    daemon.start()
    after = daemon.api.getViewer("t", "CodeDX")
    assert (after["state"], after["url"], after["epoch"]) == (2, ready["url"], 1)
    assert daemon.viewer_pids() == pids


def test_bad_config_exits_2_with_file_key_and_reason(tmp_path):
    path = write_config(tmp_path / "bad.toml", {"agentmonitor": {"prot": 1}})
    out = run_serve("--config", str(path))
    assert out.returncode == 2
    assert str(path) in out.stderr and "agentmonitor.prot: unknown key" in out.stderr


def test_config_from_environment(tmp_path):
    path = write_config(tmp_path / "bad.toml", {"scheduler": {"kind": "slurm"}})
    out = subprocess.run([sys.executable, "-m", "swampd.cli.swampd_main", "serve"], capture_output=True,
                         text=True, timeout=30, stdin=subprocess.DEVNULL,
                         env={**os.environ, "PYTHONPATH": str(SRC), "SWAMPD_CONFIG": str(path)})
    assert out.returncode == 2 and "scheduler.kind" in out.stderr


def test_non_loopback_without_token_refuses_to_start(tmp_path):
    out = run_serve("--host", "0.0.0.0", "--state-dir", str(tmp_path / "s"))
    assert out.returncode == 2 and "token_file" in out.stderr


def test_token_file_must_be_private(make_daemon, tmp_path):
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123\n")
    os.chmod(token, 0o644)
    daemon = make_daemon(start=False, agentmonitor={"token_file": str(token)})
    daemon.start(wait=False)
    assert daemon.wait_exit(20) == 1
    assert "chmod 600" in daemon.log()


def test_bearer_token_is_required_when_configured(make_daemon, tmp_path):
    token = tmp_path / "token"
    token.write_text("0123456789abcdef0123\n")
    os.chmod(token, 0o600)
    daemon = make_daemon(start=False, agentmonitor={"token_file": str(token)})
    daemon.start(wait=False)
    from swampd.clients.rpc import connect

    authed = connect(daemon.url, token="0123456789abcdef0123").agentMonitor
    wait_for(lambda: _answers(authed), 20, what="daemon with token")
    assert fault_code(lambda: daemon.api.listViewers()) == 4
    assert fault_code(lambda: connect(daemon.url, token="wrong-token-wrong").agentMonitor.listViewers()) == 4
    assert authed.listViewers() == []
    # Execute nodes authenticate with their per-launch token instead.
    assert fault_code(lambda: daemon.api.viewerStatus(
        {"execrunid": "vrun_x_CodeDX", "epoch": 1, "token": "t", "event": "VIEWERUP"})) == 2
    # And the client tools find the token through the config file.
    out = subprocess.run([sys.executable, "-m", "swampd.cli.launchviewer", "--config", str(daemon.config),
                          "--viewer_name", "CodeDX", "--project", "tok"], capture_output=True, text=True,
                         timeout=60, env={"PYTHONPATH": str(SRC)}, stdin=subprocess.DEVNULL)
    assert out.stdout == "SUCCESS\n", out.stdout + out.stderr


def _answers(api) -> bool:
    try:
        api.listViewers()
        return True
    except OSError:
        return False


def test_keep_alive_serves_many_requests_on_one_connection(daemon):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    body = xmlrpc.client.dumps((), "agentMonitor.listViewers").encode()
    conn.connect()
    first_socket = conn.sock
    for _ in range(5):
        conn.request("POST", "/RPC2", body=body, headers={"Content-Type": "text/xml"})
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Connection") != "close"
        response.read()
        assert conn.sock is first_socket
    conn.close()


def test_a_stalled_client_does_not_block_others(daemon):
    stalled = socket.create_connection(("127.0.0.1", daemon.port), timeout=10)
    stalled.sendall(b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n<methodCall>")
    results = []
    t = threading.Thread(target=lambda: results.append(daemon.api.listViewers()))
    t.start()
    t.join(10)
    stalled.close()
    assert results == [[]]


def test_swampd_cli_commands(daemon):
    def swampd(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "swampd.cli.swampd_main", "--url", daemon.url, *args],
                              capture_output=True, text=True, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(SRC)})

    daemon.api.launchViewer({"projectid": "ops", "viewer": "CodeDX"})
    wait_for(lambda: daemon.api.getViewer("ops", "CodeDX")["state"] == 2, 60, what="READY")
    listing = swampd("viewers")
    assert listing.returncode == 0 and "ops" in listing.stdout and "READY" in listing.stdout
    status = swampd("status", "ops", "CodeDX")
    assert "READY" in status.stdout
    stop = swampd("stop", "ops", "CodeDX")
    assert stop.returncode == 0 and "TERMINAT" in stop.stdout
    wait_for(lambda: daemon.api.getViewer("ops", "CodeDX")["state"] == -7, 30, what="TERMINATED")
    history = swampd("history", "ops", "CodeDX")
    assert "TERMINATED" in history.stdout
    bad = swampd("stop", "../x", "CodeDX")
    assert bad.returncode == 1 and "fault 1" in bad.stderr


def test_port_in_use_is_a_clear_error(daemon, tmp_path):
    config = write_config(tmp_path / "swampd.toml", {"scheduler": ROOT_JOBS})
    out = run_serve("--config", str(config), "--state-dir", str(tmp_path / "other"), "--port", str(daemon.port))
    assert out.returncode == 1 and f"cannot listen on 127.0.0.1:{daemon.port}" in out.stderr


def test_client_commands_with_the_daemon_down():
    from support.daemon import free_port

    out = subprocess.run([sys.executable, "-m", "swampd.cli.swampd_main", "--url",
                          f"http://127.0.0.1:{free_port()}/", "viewers"], capture_output=True, text=True,
                         timeout=30, env={**os.environ, "PYTHONPATH": str(SRC)})
    assert out.returncode == 3 and "cannot reach the daemon" in out.stderr


def test_a_daemon_built_but_never_started_closes_and_frees_its_state_dir(tmp_path):
    from dataclasses import replace

    from swampd.agentmonitor.daemon import Daemon
    from swampd.config import load_config

    base = load_config(None)
    config = replace(base, agentmonitor=replace(base.agentmonitor, port=0, state_dir=tmp_path / "s"),
                     scheduler=replace(base.scheduler, **ROOT_JOBS))
    done = threading.Event()
    first = Daemon(config)
    threading.Thread(target=lambda: (first.close(), done.set()), daemon=True).start()
    assert done.wait(10), "close() hung"
    Daemon(config).close()  # the state dir lock was released
