"""The AgentMonitor over HTTPS: clients, launchviewer and execute nodes verify it; bad peers do not stall it."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import xmlrpc.client
from pathlib import Path

import pytest

from support.daemon import SRC, fault_code, write_config
from swampd.config import ConfigError, parse_config


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost, made with the real openssl."""
    root = tmp_path_factory.mktemp("tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=swampd-test", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return str(cert), str(key)


@pytest.fixture
def tls_daemon(make_daemon, certificate):
    cert, key = certificate
    return make_daemon(agentmonitor={"tls_cert": cert, "tls_key": key, "tls_ca": cert})


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=90,
                          env={"PYTHONPATH": str(SRC)}, stdin=subprocess.DEVNULL)


def test_a_launch_over_https_reaches_ready_with_node_reports_verified(tls_daemon):
    assert tls_daemon.url.startswith("https://")
    out = run_cli("swampd.cli.launchviewer", "--config", str(tls_daemon.config),
                  "--viewer_name", "CodeDX", "--project", "tls-p", "--wait", "60")
    assert out.returncode == 0 and out.stdout.startswith("http://127.0.0.1:"), out.stdout + out.stderr
    record = tls_daemon.api.getViewer("tls-p", "CodeDX")
    assert record["state"] == 2
    (job_dir,) = list(tls_daemon.jobs_dir().iterdir())
    bog = (job_dir / f"{record['execrunid']}.bog").read_text()
    assert f"swampd_agentmonitor_url={tls_daemon.url}" in bog and "swampd_agentmonitor_ca=/" in bog


def test_a_client_that_cannot_verify_the_daemon_gets_a_clear_error(tls_daemon):
    out = run_cli("swampd.cli.launchviewer", "--url", tls_daemon.url, "--viewer_name", "CodeDX", "--project", "p")
    assert out.returncode == 3 and "CERTIFICATE_VERIFY_FAILED" in out.stdout and out.stdout.count("\n") == 1
    assert tls_daemon.api.listViewers() == []


def test_plain_http_and_stalled_handshakes_do_not_hurt_the_daemon(tls_daemon):
    from swampd.clients.rpc import connect

    with pytest.raises((OSError, xmlrpc.client.ProtocolError)):
        connect(tls_daemon.url.replace("https:", "http:"), timeout=5).agentMonitor.listViewers()
    stalled = socket.create_connection(("127.0.0.1", tls_daemon.port), timeout=10)  # says nothing at all
    results: list[object] = []
    t = threading.Thread(target=lambda: results.append(tls_daemon.api.listViewers()))
    t.start()
    t.join(15)
    stalled.close()
    assert results == [[]]
    assert fault_code(lambda: tls_daemon.api.getViewer("../x", "CodeDX")) == 1


def test_a_readable_private_key_stops_the_daemon(make_daemon, certificate, tmp_path):
    cert, key = certificate
    loose = tmp_path / "loose-key.pem"
    loose.write_bytes(Path(key).read_bytes())
    os.chmod(loose, 0o644)
    daemon = make_daemon(start=False, agentmonitor={"tls_cert": cert, "tls_key": str(loose)})
    daemon.start(wait=False)
    assert daemon.wait_exit(20) == 1 and "chmod 600" in daemon.log()


@pytest.mark.parametrize("table, needle", [
    ({"tls_cert": "/etc/c.pem"}, "tls_cert and tls_key go together"),
    ({"tls_cert": "/etc/c.pem", "tls_key": "/etc/k.pem", "url": "http://h:1/"}, "must be https://"),
    ({"url": "ftp://h/"}, "must be http(s)://host[:port]/"),
    ({"tls_ca": "relative.pem"}, "must be an absolute path"),
])
def test_tls_settings_are_checked_at_start(tmp_path, table, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        parse_config({"agentmonitor": table}, "test.toml")


def test_url_setting_is_what_nodes_and_clients_use(tmp_path):
    config = parse_config({"agentmonitor": {"host": "0.0.0.0", "token_file": "/etc/t", "url":
                                            "http://submit.example.org:8084/"}}, "t")
    assert config.url == "http://submit.example.org:8084/"
    path = write_config(tmp_path / "c.toml", {"agentmonitor": {"url": "https://submit.example.org:8443/",
                                                               "tls_ca": "/etc/ca.pem"}})
    from swampd.clients.rpc import resolve

    target = resolve(None, str(path))
    assert (target.url, target.cafile) == ("https://submit.example.org:8443/", "/etc/ca.pem")
