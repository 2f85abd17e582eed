"""The operator's HTTP routes on the daemon's port: the dashboard, its data, ``/metrics``, the login.

The transport hands every GET (and the login form's POST) here as a
``WebRequest`` on a small worker pool of its own, so a dashboard or a
scrape never takes a thread from XML-RPC callers or execute nodes' reports.
A handler returns a complete response (bytes), or, for the live-update
long-poll, a ``Deferred`` that resolves to a function the pool runs to make
the response once something changed: while the client waits no thread is
held (the transport parks the connection, and it may be closed at the
connection cap like an idle one).

Every response is bounded (rows, history and effects are capped), carries
a Content-Security-Policy that allows no inline script and nothing from
elsewhere, and the page builds its DOM with ``textContent`` only, so a
project named ``<script>alert(1)</script>`` is shown as text.
"""
from __future__ import annotations

import gzip
import json
import logging
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable
from urllib.parse import parse_qs

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from swampd import metrics
from swampd.agentmonitor.changes import ChangeFeed, Deferred
from swampd.agentmonitor.observe import session
from swampd.agentmonitor.observe.runs import RunsView
from swampd.agentmonitor.transport import httpwire
from swampd.agentmonitor.transport.httpwire import RequestHead

log = logging.getLogger(__name__)

#: The longest a live-update long-poll is held before it answers "nothing new".
MAX_POLL = 30.0
DEFAULT_POLL = 25.0
#: Files served from the package's static/ directory, and their types.
STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = (
    ("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Frame-Options", "DENY"),
)
_RUN_PATH = re.compile(r"/api/runs/([0-9]{1,12})")
#: JSON answers larger than this are gzipped for clients that accept it (1,000 runs: ~450 KiB -> ~40 KiB).
GZIP_OVER = 8192



@dataclass
class WebRequest:
    head: RequestHead
    body: bytes
    #: The request carried the bearer token, or came through the Unix socket.
    authorized: bool

    @property
    def method(self) -> str:
        return self.head.method

    @property
    def path(self) -> str:
        return self.head.path

    @property
    def accepts_gzip(self) -> bool:
        return "gzip" in self.head.get("accept-encoding").lower()

    def arg(self, name: str, default: str = "") -> str:
        values = parse_qs(self.head.query, max_num_fields=16).get(name)
        return values[0] if values else default


class ObserveWeb:
    """Routes operator requests; ``token`` None means no token is configured (loopback only)."""

    def __init__(self, runs: RunsView, changes: ChangeFeed, token: str | None, tls: bool) -> None:
        self.runs = runs
        self.changes = changes
        self.token = token
        self.tls = tls
        self._static: dict[str, bytes] = {}

    # -- entry -----------------------------------------------------------------------
    def handle(self, request: WebRequest) -> bytes | Deferred[Callable[[], bytes]]:
        head_only = request.method == "HEAD"
        answer = self._route(request)
        if head_only and isinstance(answer, bytes):
            return answer[:answer.index(b"\r\n\r\n") + 4]
        return answer

    def _route(self, request: WebRequest) -> bytes | Deferred[Callable[[], bytes]]:
        path = request.path
        if request.method == "POST":
            return self._login(request) if path == "/login" else _text(405, "use GET")
        if request.method not in ("GET", "HEAD"):
            return _text(405, "use GET")
        if path == "/RPC2":  # XML-RPC's own path (/ is both: POST for XML-RPC, GET for the dashboard)
            return _text(405, "use POST with an XML-RPC body", (("Allow", "POST"),))
        if path.startswith("/static/"):
            return self._static_file(path[len("/static/"):])
        if path == "/login":
            return self._page("login.html") if self.token else _redirect("/")
        if path == "/logout":
            return _redirect("/login", (("Set-Cookie", session.clear_cookie(self.tls)),))
        if not self._allowed(request):
            if path in ("/", "/index.html"):
                return _redirect("/login")
            return _text(401, "log in at /login, or send Authorization: Bearer <token>",
                         (("WWW-Authenticate", 'Bearer realm="swampd"'),))
        if path in ("/", "/index.html"):
            return self._page("index.html")
        if path == "/metrics":
            return _response(200, generate_latest(metrics.REGISTRY), CONTENT_TYPE_LATEST)
        if path == "/api/runs":
            return self._json(self._runs_body(request.arg("kind") or None), request.accepts_gzip)
        match = _RUN_PATH.fullmatch(path)
        if match:
            detail = self.runs.detail(int(match.group(1)))
            return self._json(detail, request.accepts_gzip) if detail is not None else _text(404, "no such run")
        if path == "/api/changes":
            return self._changes(request)
        return _text(404, "not found")

    def _allowed(self, request: WebRequest) -> bool:
        if self.token is None or request.authorized:
            return True
        return session.cookie_ok(self.token, request.head.get("cookie"))

    # -- login -----------------------------------------------------------------------
    def _login(self, request: WebRequest) -> bytes:
        if self.token is None:
            return _redirect("/")
        if session.token_ok(self.token, session.login_token(request.body)):
            return _redirect("/", (("Set-Cookie", session.make_cookie(self.token, self.tls)),))
        log.warning("dashboard login refused: wrong token")
        page = self._file("login.html").replace(b'<p id="refused" hidden>', b'<p id="refused">')
        return _response(401, page, "text/html; charset=utf-8")

    # -- data --------------------------------------------------------------------------
    def _runs_body(self, kind: str | None = None) -> dict[str, Any]:
        version = self.changes.version  # read first: a change after it is in the next answer, never lost
        rows, total = self.runs.rows(kind=kind)
        return {"version": version, "now": _now(), "full": True, "runs": rows, "total": total,
                "truncated": total > len(rows), "counts": self.runs.counts(), "scheduler": self.runs.scheduler()}

    def _changes_body(self, since: int) -> dict[str, Any]:
        version, ids = self.changes.changed_since(since)
        if ids is None:  # the journal does not reach back that far: everything again
            return self._runs_body()
        rows, total = self.runs.rows(ids) if ids else ([], 0)
        return {"version": version, "now": _now(), "full": False, "runs": rows, "total": total,
                "truncated": total > len(rows), "counts": self.runs.counts(), "scheduler": self.runs.scheduler()}

    def _changes(self, request: WebRequest) -> bytes | Deferred[Callable[[], bytes]]:
        """``/api/changes?since=V&timeout=T``: the runs changed after version V, as soon as there are
        any (or after T seconds, with none).  No thread waits meanwhile."""
        try:
            since = int(request.arg("since", "-1"))
            timeout = min(MAX_POLL, max(0.0, float(request.arg("timeout", str(DEFAULT_POLL)))))
        except ValueError:
            return _text(400, "since must be a whole number and timeout a number of seconds")
        feed, gz = self.changes, request.accepts_gzip
        if feed.version != since:
            return self._json(self._changes_body(since), gz)
        waited = feed.watch(None, lambda: True if feed.version != since else None, timeout)
        return waited.map(lambda _changed: lambda: self._json(self._changes_body(since), gz))

    # -- files -------------------------------------------------------------------------
    def _file(self, name: str) -> bytes:
        data = self._static.get(name)
        if data is None:
            data = (resources.files("swampd.agentmonitor.observe") / "static" / name).read_bytes()
            self._static[name] = data
        return data

    def _page(self, name: str) -> bytes:
        return _response(200, self._file(name), "text/html; charset=utf-8")

    def _static_file(self, name: str) -> bytes:
        content_type = STATIC.get(name)
        if content_type is None:
            return _text(404, "not found")
        return _response(200, self._file(name), content_type, cache="public, max-age=300")

    @staticmethod
    def _json(value: Any, gz: bool = False) -> bytes:
        body = json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default).encode()
        if gz and len(body) > GZIP_OVER:
            return _response(200, gzip.compress(body, 4, mtime=0), "application/json",
                             (("Content-Encoding", "gzip"), ("Vary", "Accept-Encoding")))
        return _response(200, body, "application/json", (("Vary", "Accept-Encoding"),))


def _json_default(value: Any) -> Any:
    raise TypeError(f"not JSON: {type(value).__name__}")


def _now() -> float:
    import time

    return round(time.time(), 3)


def _response(status: int, body: bytes, content_type: str, extra: tuple[tuple[str, str], ...] = (),
              cache: str = "no-store") -> bytes:
    return httpwire.response(status, body, content_type, extra=(*SECURITY_HEADERS, ("Cache-Control", cache), *extra))


def _text(status: int, message: str, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    return _response(status, f"{message}\n".encode(), "text/plain; charset=utf-8", extra)


def _redirect(location: str, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    return _response(303, b"", "text/plain; charset=utf-8", (("Location", location), *extra))
