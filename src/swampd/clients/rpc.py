"""The XML-RPC client every swampd program uses to reach the AgentMonitor.

Kept to the standard library's ``xmlrpc.client`` and ``tomllib`` so that
``launchviewer``, which the database starts for every click, imports little.
The daemon's URL is ``--url``, else ``SWAMPD_URL``, else the config file's
``[agentmonitor]`` host and port, else ``http://127.0.0.1:8084/``.
"""
from __future__ import annotations

import http.client
import os
import xmlrpc.client
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8084/"


class TimeoutTransport(xmlrpc.client.Transport):
    """A keep-alive transport with a socket timeout and an optional bearer token."""

    def __init__(self, timeout: float, token: str | None) -> None:
        super().__init__()
        self._timeout = timeout
        self._token = token

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn

    def send_headers(self, connection: http.client.HTTPConnection, headers: list[tuple[str, str]]) -> None:
        if self._token:
            headers = list(headers) + [("Authorization", f"Bearer {self._token}")]
        super().send_headers(connection, headers)


def client_settings(config_path: str | None) -> tuple[str | None, str | None]:
    """(url, token) from the config file's ``[agentmonitor]`` table, if there is a file."""
    path = config_path or os.environ.get("SWAMPD_CONFIG")
    if not path:
        return None, None
    import tomllib

    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("agentmonitor", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None, None
    url = None
    if "host" in table or "port" in table:
        host = str(table.get("host", "127.0.0.1"))
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        url = f"http://{host}:{int(table.get('port', 8084))}/"
    token = None
    token_file = table.get("token_file")
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as fh:
                token = fh.read().strip() or None
        except OSError:
            token = None
    return url, token


def resolve(url: str | None, config_path: str | None) -> tuple[str, str | None]:
    """The daemon URL and bearer token to use, in the contract's lookup order."""
    file_url, token = client_settings(config_path)
    return url or os.environ.get("SWAMPD_URL") or file_url or DEFAULT_URL, token


def connect(url: str, token: str | None = None, timeout: float = 30.0) -> xmlrpc.client.ServerProxy:
    transport = TimeoutTransport(timeout, token)
    return xmlrpc.client.ServerProxy(url, transport=transport, allow_none=False)
