"""Who may call: a token also on loopback when one is configured, or the Unix socket whose mode decides.

Issue 9: any local user could launch, stop and list everybody's viewers
through loopback without a token.  With ``token_file`` configured (as the
example configuration now does) every method but the execute nodes' reports
and introspection needs it; local clients that should not handle a token
(the database's OS user running ``launchviewer`` and ``kill_run``,
operators) call through a Unix socket instead, and its file mode and group
decide who may.  These tests run clients as other users (nobody, daemon).
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from support.daemon import SRC, fault_code, wait_for, write_config

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "0123456789abcdef-local-access"
NOBODY, NOGROUP = 65534, 65534
DAEMON_USER = 1  # Debian's "daemon" user: not in nogroup


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's tmp_path is root's alone)."""
    path = Path(tempfile.mkdtemp(prefix="swampd-local-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    os.chmod(path, 0o600)
    return path


#: Debian's interpreter (3.11.2, what production runs): the venv's may live under root's private home.
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable


def as_user(uid: int, gid: int, module: str, *args: str) -> subprocess.CompletedProcess:
    """Run a client module (standard library only) as another user."""
    return subprocess.run([PYTHON, "-m", module, *args], user=uid, group=gid, extra_groups=[],
                          env={"PYTHONPATH": str(SRC)}, cwd="/", capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_the_example_configuration_requires_a_token_and_offers_a_socket():
    from swampd.config import load_config

    config = load_config(str(ROOT / "etc" / "swampd.toml"))
    assert config.agentmonitor.token_file and config.agentmonitor.unix_socket


def test_with_a_token_configured_loopback_callers_need_it_too(make_daemon, tmp_path):
    daemon = make_daemon(agentmonitor={"token_file": str(token_file(tmp_path))})
    api = daemon.api
    for call in (lambda: api.launchViewer({"projectid": "p", "viewer": "CodeDX"}), lambda: api.listViewers(),
                 lambda: api.getViewer("p", "CodeDX"), lambda: api.stopViewer("p", "CodeDX"),
                 lambda: api.viewerHistory("p", "CodeDX")):
        assert fault_code(call) == 4
    [inner] = daemon.rpc().system.multicall([{"methodName": "agentMonitor.listViewers", "params": []}])
    assert inner["faultCode"] == 4
    assert "agentMonitor.getViewer" in daemon.rpc().system.listMethods()  # introspection reveals nobody's data
    # Execute nodes keep their per-launch tokens: a report is judged by its own credential.
    assert fault_code(lambda: api.viewerStatus(
        {"execrunid": "vrun_p_CodeDX", "epoch": 1, "token": "t", "event": "VIEWERUP"})) == 2


def test_the_unix_socket_lets_whom_its_mode_and_group_allow_call_without_a_token(make_daemon, tmp_path, public_dir):
    sock = public_dir / "swampd.sock"
    secret = token_file(tmp_path)
    daemon = make_daemon(agentmonitor={"token_file": str(secret), "unix_socket": str(sock),
                                       "unix_socket_mode": 0o660, "unix_socket_group": "nogroup"})
    info = os.stat(sock)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o660 and info.st_gid == NOGROUP
    # The clients' view of the configuration: the socket, and a token file they cannot read.
    client_config = write_config(public_dir / "client.toml", {"agentmonitor": {
        "port": daemon.port, "unix_socket": str(sock), "token_file": str(secret)}})
    os.chmod(client_config, 0o644)

    from swampd.clients.rpc import connect

    assert connect(f"unix:{sock}").agentMonitor.listViewers() == []

    # nobody is in the socket's group: launchviewer and kill_run work through it, with no token.
    out = as_user(NOBODY, NOGROUP, "swampd.cli.launchviewer", "--config", str(client_config),
                  "--viewer_name", "CodeDX", "--project", "sock-p")
    assert (out.returncode, out.stdout) == (0, "SUCCESS\n"), out.stdout + out.stderr
    assert daemon.rpc().system.listMethods()
    wait_for(lambda: connect(f"unix:{sock}").agentMonitor.getViewer("sock-p", "CodeDX")["state"] == 2, 60,
             what="READY")
    # The same user over loopback TCP, without the token: refused.
    out = as_user(NOBODY, NOGROUP, "swampd.cli.launchviewer", "--url", daemon.url, "--viewer_name", "CodeDX",
                  "--project", "tcp-p")
    assert out.returncode == 1 and "fault 4" in out.stdout, out.stdout
    # A user outside the group cannot open the socket.
    out = as_user(DAEMON_USER, DAEMON_USER, "swampd.cli.launchviewer", "--config", str(client_config),
                  "--viewer_name", "CodeDX", "--project", "other-p")
    # The one line is cut to fit the procedure's VARCHAR(100); its full text goes to stderr.
    assert out.returncode == 3 and "Permission denied" in out.stderr, out.stdout
    out = as_user(NOBODY, NOGROUP, "swampd.cli.kill_run", "--config", str(client_config),
                  "--execution_record_uuid", "sock-p", "--hard", "1")
    assert (out.returncode, out.stdout) == (0, "SUCCESS: stopping vrun_sock-p_CodeDX (hard)\n"), out.stdout + out.stderr
    wait_for(lambda: connect(f"unix:{sock}").agentMonitor.getViewer("sock-p", "CodeDX")["state"] == -7, 30,
             what="TERMINATED")
    assert [v["projectid"] for v in connect(f"unix:{sock}").agentMonitor.listViewers()] == ["sock-p"]


def test_the_socket_file_a_stale_one_and_something_else_at_its_path(make_daemon, public_dir):
    import socket as socketlib

    sock = public_dir / "swampd.sock"
    stale = socketlib.socket(socketlib.AF_UNIX)
    stale.bind(str(sock))
    stale.close()  # a socket file with nobody behind it, as a killed daemon leaves
    daemon = make_daemon(agentmonitor={"unix_socket": str(sock), "unix_socket_mode": 0o600})
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert daemon.terminate() == 0
    assert not sock.exists()  # removed at a clean stop
    sock.write_text("not a socket")
    daemon.start(wait=False)
    assert daemon.wait_exit(20) == 1
    assert f"cannot listen on {sock}" in daemon.log() and "not a socket" in daemon.log()
    assert sock.read_text() == "not a socket"


def test_a_missing_token_file_is_created_private_and_then_required(make_daemon, tmp_path):
    """The example configuration names /etc/swampd/token; a fresh install gets one made for it."""
    path = tmp_path / "etc" / "token"
    path.parent.mkdir()
    daemon = make_daemon(agentmonitor={"token_file": str(path)})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().strip()) >= 32
    assert fault_code(lambda: daemon.api.listViewers()) == 4
    from swampd.clients.rpc import connect

    assert connect(daemon.url, token=path.read_text().strip()).agentMonitor.listViewers() == []
