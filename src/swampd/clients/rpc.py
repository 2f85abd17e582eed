"""The XML-RPC client every swampd program uses to reach the AgentMonitor.

Kept to the standard library's ``xmlrpc.client`` and ``tomllib`` so that
``launchviewer``, which the database starts for every click, imports little.
The daemon's URL is ``--url``, else ``SWAMPD_URL``, else the config file's
``[agentmonitor]`` Unix socket (when configured and present, as
``unix:/path``), url, or host and port, else ``http://127.0.0.1:8084/``.
Through the Unix socket no token is needed: its file mode and group decide
who may call.  An ``https`` URL is verified against ``[agentmonitor]
tls_ca`` when set, else against the system's trusted certificates.

Plain http and the Unix socket go through our own keep-alive transport
(:mod:`swampd.clients.rpc_http`), calls are written by
:mod:`swampd.clients.rpc_call` and replies read by
:mod:`swampd.clients.rpc_reply`: the same bytes and values as
``xmlrpc.client``, for a fraction of its CPU per call.  https stays on
``xmlrpc.client.SafeTransport`` over ``http.client``.
"""
from __future__ import annotations

import http.client
import os
import xmlrpc.client
from typing import Any, NamedTuple

from swampd.clients import rpc_call
from swampd.clients.rpc_http import KeepAliveTransport

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


class Proxy(xmlrpc.client.ServerProxy):
    """A ``ServerProxy`` whose calls are written by :mod:`swampd.clients.rpc_call` (the same bytes, faster)."""

    def _ServerProxy__request(self, methodname: str, params: tuple[Any, ...]) -> Any:
        # ServerProxy.__request (name-mangled; the same in Python 3.11 to 3.13) for what connect() makes.
        if self._ServerProxy__allow_none or self._ServerProxy__encoding != "utf-8":  # type: ignore[attr-defined]
            reference = xmlrpc.client.ServerProxy._ServerProxy__request  # type: ignore[attr-defined]
            return reference(self, methodname, params)
        response = self._ServerProxy__transport.request(  # type: ignore[attr-defined]
            self._ServerProxy__host, self._ServerProxy__handler,  # type: ignore[attr-defined]
            rpc_call.dumps(params, methodname), verbose=self._ServerProxy__verbose)  # type: ignore[attr-defined]
        return response[0] if len(response) == 1 else response


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
        transport = KeepAliveTransport(timeout, unix_path=path)
        return Proxy("http://localhost/RPC2", transport=transport, allow_none=False)
    if url.startswith("https:"):
        transport = TimeoutSafeTransport(timeout, token, cafile)
    else:
        transport = KeepAliveTransport(timeout, token)
    return Proxy(url, transport=transport, allow_none=False)
