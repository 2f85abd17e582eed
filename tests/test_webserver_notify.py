"""clients.webserver: the "notify" POST to SWAMP's web server, against a real local HTTP(S) server."""
from __future__ import annotations

import http.server
import os
import ssl
import subprocess
import threading
from typing import Any, Iterator

import pytest

from support.daemon import free_port
from swampd.clients.webserver import (
    WebServerRefused,
    WebServerUnavailable,
    notifier,
    notify_complete,
    notify_url,
    notify_with,
)
from swampd.config import ConfigError, parse_config

UUID = "3c1d8f0e-5a7b-11ea-9c1e-0242ac110002"


class WebServer:
    """A web server that answers each POST with the next status of ``answers`` (then 200) and records it."""

    def __init__(self, answers: list[int] | None = None, tls: tuple[str, str] | None = None) -> None:
        self.answers = list(answers or [])
        self.requests: list[dict[str, Any]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", "0") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = outer.answers.pop(0) if outer.answers else 200
                payload = b'{"message": "ok"}'
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "https://elsewhere.example.org/api/")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        scheme = "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.base = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/swamp-web-server/public"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def web() -> Iterator[WebServer]:
    server = WebServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the real openssl."""
    root = tmp_path_factory.mktemp("web-tls")
    cert, key = root / "cert.pem", root / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=swamp-web-test", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    os.chmod(key, 0o600)
    return str(cert), str(key)


def test_the_post_is_swamps(web):
    notify_complete(web.base + "/", UUID, verify=True, timeout=5)
    (request,) = web.requests
    assert request["path"] == f"/swamp-web-server/public/execution_records/{UUID}/notify"
    assert request["headers"]["Accept"] == "application/json"
    assert request["headers"]["Content-Length"] == "0" and request["body"] == b""
    assert "Authorization" not in request["headers"]


def test_a_5xx_is_retried_until_the_server_is_up(web):
    web.answers = [500, 503]
    for _ in range(2):
        with pytest.raises(WebServerUnavailable, match="HTTP 50"):
            notify_complete(web.base, UUID, True, 5)
    notify_complete(web.base, UUID, True, 5)  # what the outbox's next retry does
    assert len(web.requests) == 3


def test_a_server_that_is_down_is_retryable():
    with pytest.raises(WebServerUnavailable, match="ConnectionError"):
        notify_complete(f"http://127.0.0.1:{free_port()}/api", UUID, True, 5)


def test_a_4xx_or_a_redirect_is_final(web):
    web.answers = [404, 301, 429]
    with pytest.raises(WebServerRefused, match="HTTP 404") as refused:
        notify_complete(web.base, UUID, True, 5)
    assert refused.value.status == 404
    with pytest.raises(WebServerRefused, match="redirect to https://elsewhere.example.org/api/"):
        notify_complete(web.base, UUID, True, 5)
    with pytest.raises(WebServerUnavailable, match="HTTP 429"):  # "too many requests" is "later", not "no"
        notify_complete(web.base, UUID, True, 5)
    assert len(web.requests) == 3  # the redirect was not followed


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_tls_is_verified_by_default(certificate):
    cert, key = certificate
    server = WebServer(tls=(cert, key))
    try:
        with pytest.raises(WebServerUnavailable, match="TLS verification failed"):
            notify_complete(server.base, UUID, True, 5)
        assert server.requests == []
        notify_complete(server.base, UUID, cert, 5)  # the facility's CA bundle
        config = parse_config({"webserver": {"base_url": server.base, "ca_bundle": cert, "timeout": 5}}, "t.toml")
        assert config.webserver is not None and config.webserver.verify == cert
        notify_with(config.webserver, UUID)
        off = parse_config({"webserver": {"base_url": server.base, "verify_tls": False}}, "t.toml").webserver
        assert off is not None and off.verify is False
        notify_with(off, UUID)  # an operator's explicit choice
        notifier(config.webserver)(UUID)  # what the daemon's notify effect calls
        assert len(server.requests) == 4
    finally:
        server.close()


def test_hostile_uuids_never_make_a_request(web):
    for bad in ("../../admin", "x/notify?all=1", "", "a b", "é"):
        with pytest.raises(ValueError):
            notify_complete(web.base, bad, True, 5)
    assert web.requests == []
    assert notify_url("https://swamp.example.org/", UUID) == (
        f"https://swamp.example.org/execution_records/{UUID}/notify")


def test_webserver_configuration(tmp_path):
    config = parse_config({"webserver": {"base_url": "https://swamp.example.org/swamp-web-server/public"}}, "t.toml")
    assert config.webserver is not None and config.webserver.verify is True and config.webserver.timeout == 30
    assert parse_config({}, "t.toml").webserver is None
    for table, words in (
        ({}, "webserver.base_url: required"),
        ({"base_url": "ftp://x/"}, "webserver.base_url"),
        ({"base_url": "https://user:pw@x/"}, "webserver.base_url"),
        ({"base_url": "https://x/?a=1"}, "webserver.base_url"),
        ({"base_url": "https://x/", "verify": False}, "webserver.verify: unknown key"),
        ({"base_url": "https://x/", "verify_tls": "no"}, "webserver.verify_tls: expected bool"),
        ({"base_url": "https://x/", "ca_bundle": str(tmp_path / "none.pem")}, "no such file"),
        ({"base_url": "https://x/", "timeout": 0}, "webserver.timeout"),
    ):
        with pytest.raises(ConfigError, match=words.replace("?", r"\?")):
            parse_config({"webserver": table}, "t.toml")
    mariadb = parse_config({"mariadb": {"assessment_database": "swamp_assessment"}}, "t.toml").mariadb
    assert mariadb is not None and (mariadb.assessment_database, mariadb.metric_database) == (
        "swamp_assessment", "metric")
    for bad in ({"assessment_database": "a; DROP"}, {"metric_database": ""}, {"metric_db": "m"}):
        with pytest.raises(ConfigError, match="mariadb"):
            parse_config({"mariadb": bad}, "t.toml")
