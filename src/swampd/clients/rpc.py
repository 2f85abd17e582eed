"""The XML-RPC client every swampd program uses to reach the AgentMonitor.

Kept to the standard library's ``xmlrpc.client`` and ``tomllib`` so that
``launchviewer``, which the database starts for every click, imports little.
The daemon's URL is ``--url``, else ``SWAMPD_URL``, else the config file's
``[agentmonitor]`` Unix socket (when configured and present, as
``unix:/path``), url, or host and port, else ``http://127.0.0.1:8084/``.
Through the Unix socket no token is needed: its file mode and group decide
who may call.  An ``https`` URL is verified against ``[agentmonitor]
tls_ca`` when set, else against the system's trusted certificates.
"""
from __future__ import annotations

import http.client
import os
import socket
import xmlrpc.client
from typing import Any, NamedTuple

DEFAULT_URL = "http://127.0.0.1:8084/"


class Target(NamedTuple):
    """Where and how to reach the daemon."""

    url: str
    token: str | None = None
    cafile: str | None = None


class _Options:
    """A socket timeout and an optional bearer token, for either transport."""

    _timeout: float
    _token: str | None

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)  # type: ignore[misc]
        conn.timeout = self._timeout
        return conn

    def send_headers(self, connection: http.client.HTTPConnection, headers: list[tuple[str, str]]) -> None:
        if self._token:
            headers = list(headers) + [("Authorization", f"Bearer {self._token}")]
        super().send_headers(connection, headers)  # type: ignore[misc]


class TimeoutTransport(_Options, xmlrpc.client.Transport):
    """Plain HTTP, kept alive."""

    def __init__(self, timeout: float, token: str | None) -> None:
        super().__init__()
        self._timeout, self._token = timeout, token


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix-domain socket."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class UnixTransport(xmlrpc.client.Transport):
    """XML-RPC through the daemon's Unix socket, kept alive; no token (the socket's mode decides)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path, self._timeout = path, timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        self._connection = host, UnixHTTPConnection(self._path, self._timeout)
        return self._connection[1]


class TimeoutSafeTransport(_Options, xmlrpc.client.SafeTransport):
    """HTTPS with certificate and host name verification, kept alive."""

    def __init__(self, timeout: float, token: str | None, cafile: str | None) -> None:
        import ssl

        super().__init__(context=ssl.create_default_context(cafile=cafile or None))
        self._timeout, self._token = timeout, token


def client_settings(config_path: str | None) -> Target | None:
    """What the config file's ``[agentmonitor]`` table says, if there is a file."""
    path = config_path or os.environ.get("SWAMPD_CONFIG")
    if not path:
        return None
    import tomllib

    try:
        with open(path, "rb") as fh:
            table = tomllib.load(fh).get("agentmonitor", {})
    except (OSError, tomllib.TOMLDecodeError):
        return None
    url = str(table.get("url", "")) or None
    unix_socket = str(table.get("unix_socket", ""))
    if unix_socket and os.path.exists(unix_socket):
        url = f"unix:{unix_socket}"
    elif url is None and ("host" in table or "port" in table):
        host = str(table.get("host", "127.0.0.1"))
        if host in ("", "0.0.0.0", "::"):
            host = "127.0.0.1"
        scheme = "https" if table.get("tls_cert") else "http"
        url = f"{scheme}://{host}:{int(table.get('port', 8084))}/"
    token = None
    token_file = table.get("token_file")
    if token_file:
        try:
            with open(token_file, encoding="utf-8") as fh:
                token = fh.read().strip() or None
        except OSError:
            token = None
    return Target(url or "", token, str(table.get("tls_ca", "")) or None)


def resolve(url: str | None, config_path: str | None) -> Target:
    """The daemon URL, bearer token and CA bundle to use, in the contract's lookup order."""
    settings = client_settings(config_path) or Target("")
    chosen = url or os.environ.get("SWAMPD_URL") or settings.url or DEFAULT_URL
    return Target(chosen, settings.token, settings.cafile)


def connect(url: str, token: str | None = None, cafile: str | None = None,
            timeout: float = 30.0) -> xmlrpc.client.ServerProxy:
    """A proxy for the daemon at ``url`` (http, https, or ``unix:/path/of/socket``)."""
    transport: xmlrpc.client.Transport
    if url.startswith("unix:"):
        path = "/" + url[len("unix:"):].lstrip("/")
        return xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=UnixTransport(path, timeout),
                                         allow_none=False)
    if url.startswith("https:"):
        transport = TimeoutSafeTransport(timeout, token, cafile)
    else:
        transport = TimeoutTransport(timeout, token)
    return xmlrpc.client.ServerProxy(url, transport=transport, allow_none=False)
