"""The XML-RPC transport: a threaded HTTP/1.1 server with one fault translation point.

Why not ``SimpleXMLRPCServer`` as it is: it reads any body size, parses
DOCTYPEs (entity expansion), turns every exception into fault 1, and speaks
HTTP/1.0.  Here a request is size-checked before it is read, parsed by an
expat parser that refuses any DOCTYPE or entity declaration (XML-RPC needs
neither), dispatched to registered methods, and every ``SwampdError`` becomes
a fault with its stable code.  Connections are kept alive and each has a
timeout, so one slow client ties up only its own thread.
"""
from __future__ import annotations

import hmac
import http.server
import logging
import socketserver
import sqlite3
import ssl
import threading
import xmlrpc.client
from typing import Any, Callable
from xml.parsers import expat

from swampd.errors import Fault, SwampdError

log = logging.getLogger(__name__)

#: Methods that carry their own per-launch credential and need no bearer token.
SELF_AUTHENTICATED = frozenset({"agentMonitor.viewerStatus", "agentMonitor.viewerSnapshot"})


class RequestRefused(Exception):
    """The request body is not an XML-RPC call we will parse."""


def parse_call(data: bytes) -> tuple[str, tuple[Any, ...]]:
    """Parse an XML-RPC methodCall, refusing DOCTYPEs and entity declarations."""
    unmarshaller = xmlrpc.client.Unmarshaller()
    parser = expat.ParserCreate()

    def refuse(*_: Any) -> None:
        raise RequestRefused("DOCTYPE and entity declarations are not accepted")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse  # type: ignore[assignment]
    parser.buffer_text = True
    parser.StartElementHandler = unmarshaller.start
    parser.EndElementHandler = unmarshaller.end
    parser.CharacterDataHandler = unmarshaller.data
    parser.XmlDeclHandler = lambda _version, encoding, standalone: unmarshaller.xml(encoding, standalone)
    try:
        parser.Parse(data, True)
        params = unmarshaller.close()
    except RequestRefused:
        raise
    except (expat.ExpatError, xmlrpc.client.ResponseError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise RequestRefused(f"malformed XML-RPC request: {exc}") from None
    method = unmarshaller.getmethodname()
    if not isinstance(method, str) or not method:
        raise RequestRefused("request has no methodName")
    return method, tuple(params)


class Dispatcher:
    """Registered methods plus ``system.*``; translates errors to faults."""

    def __init__(self) -> None:
        self._methods: dict[str, Callable[..., Any]] = {}
        self._local = threading.local()
        self.register("system.listMethods", self.list_methods)
        self.register("system.methodHelp", self.method_help)
        self.register("system.multicall", self.multicall)

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        self._methods[name] = fn

    def register_namespace(self, prefix: str, obj: object) -> None:
        for name in dir(obj):
            if not name.startswith("_") and name[0].islower() and callable(getattr(obj, name)):
                self.register(f"{prefix}.{name}", getattr(obj, name))

    def list_methods(self) -> list[str]:
        """system.listMethods() -> array of method names."""
        return sorted(self._methods)

    def method_help(self, name: Any) -> str:
        """system.methodHelp(name) -> the method's documentation."""
        if not isinstance(name, str) or name not in self._methods:
            raise SwampdError(Fault.UNKNOWN, f"no method {name!r}")
        return (self._methods[name].__doc__ or "").strip()

    def multicall(self, calls: Any) -> list[Any]:
        """system.multicall(array of {methodName, params}) -> array of [result] or fault structs."""
        if not isinstance(calls, list):
            raise SwampdError(Fault.BAD_ARGUMENT, "system.multicall takes an array of calls")
        out: list[Any] = []
        for call in calls:
            if not isinstance(call, dict) or not isinstance(call.get("methodName"), str):
                out.append(_fault_struct(Fault.BAD_ARGUMENT, "each call needs a methodName string"))
                continue
            name, params = call["methodName"], call.get("params", [])
            if name == "system.multicall":
                out.append(_fault_struct(Fault.BAD_ARGUMENT, "system.multicall cannot be nested"))
                continue
            if not isinstance(params, list):
                out.append(_fault_struct(Fault.BAD_ARGUMENT, "params must be an array"))
                continue
            try:
                out.append([self.call(name, tuple(params))])
            except xmlrpc.client.Fault as fault:
                out.append(_fault_struct(fault.faultCode, fault.faultString))
        return out

    def authorize(self, authorized: bool) -> None:
        """Record, for this thread's request, whether it carried the bearer token."""
        self._local.authorized = authorized

    def call(self, name: str, params: tuple[Any, ...]) -> Any:
        """Call ``name``; any failure comes back as ``xmlrpc.client.Fault`` with a contract code."""
        fn = self._methods.get(name)
        if fn is None:
            raise xmlrpc.client.Fault(int(Fault.UNKNOWN), f"no method {name!r}")
        if not getattr(self._local, "authorized", True) and name not in SELF_AUTHENTICATED:
            raise xmlrpc.client.Fault(int(Fault.NOT_AUTHORIZED),
                                      "missing or wrong bearer token (send Authorization: Bearer <token>)")
        try:
            return fn(*params)
        except SwampdError as exc:
            raise xmlrpc.client.Fault(int(exc.code), exc.message) from None
        except TypeError as exc:
            if _is_arity_error(exc):
                raise xmlrpc.client.Fault(int(Fault.BAD_ARGUMENT), f"{name}: wrong number of arguments") from None
            log.exception("%s failed", name)
            raise xmlrpc.client.Fault(int(Fault.UNAVAILABLE), f"{name}: internal error; see the daemon log") from None
        except sqlite3.OperationalError as exc:
            log.error("%s: registry unavailable: %s", name, exc)
            raise xmlrpc.client.Fault(int(Fault.UNAVAILABLE), f"registry temporarily unavailable: {exc}") from None
        except Exception:
            log.exception("%s failed", name)
            raise xmlrpc.client.Fault(int(Fault.UNAVAILABLE), f"{name}: internal error; see the daemon log") from None


def _is_arity_error(exc: TypeError) -> bool:
    text = str(exc)
    return "positional argument" in text or "required argument" in text


def _fault_struct(code: int, message: str) -> dict[str, Any]:
    return {"faultCode": int(code), "faultString": message}


class RequestHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "AgentMonitorServer"
    rpc_paths = ("/", "/RPC2")
    #: An idle keep-alive connection is closed after this many seconds.
    timeout = 60
    # Headers and body leave in one segment, without Nagle's delay: on a
    # kept-alive connection, two small writes would otherwise wait ~40 ms
    # for the peer's delayed ACK on every call.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path not in self.rpc_paths:
            self._plain(404, "not found: XML-RPC lives at / and /RPC2\n")
            return
        length_header = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length_header is None:
            self._plain(411, "a Content-Length is required\n", close=True)
            return
        try:
            length = int(length_header)
        except ValueError:
            self._plain(400, "bad Content-Length\n", close=True)
            return
        if length < 0 or length > self.server.max_request_bytes:
            self._plain(413, f"request body over {self.server.max_request_bytes} bytes\n", close=True)
            return
        data = self.rfile.read(length)
        if len(data) != length:
            self.close_connection = True
            return
        self.server.dispatcher.authorize(self._authorized())
        try:
            method, params = parse_call(data)
            result = self.server.dispatcher.call(method, params)
            body = xmlrpc.client.dumps((result,), methodresponse=True, allow_none=False)
        except RequestRefused as exc:
            body = xmlrpc.client.dumps(xmlrpc.client.Fault(int(Fault.BAD_ARGUMENT), str(exc)))
        except xmlrpc.client.Fault as fault:
            body = xmlrpc.client.dumps(fault)
        except Exception:  # a reply we cannot marshal: the server stays up
            log.exception("cannot answer %r", data[:200])
            body = xmlrpc.client.dumps(xmlrpc.client.Fault(int(Fault.UNAVAILABLE), "internal error; see the daemon log"))
        self._send(200, "text/xml", body.encode("utf-8"))

    def _authorized(self) -> bool:
        token = self.server.token
        if token is None:
            return True
        header = self.headers.get("Authorization", "")
        return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())

    def do_GET(self) -> None:  # noqa: N802
        self._plain(405, "use POST with an XML-RPC body\n")

    def _plain(self, code: int, text: str, close: bool = False) -> None:
        if close:
            self.close_connection = True
        self._send(code, "text/plain; charset=utf-8", text.encode("utf-8"))

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)


class AgentMonitorServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed (a bad TLS handshake, a reset): log it, keep serving."""
        log.debug("connection from %s failed", client_address, exc_info=True)

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher,
                 max_request_bytes: int, token: str | None) -> None:
        self.dispatcher = dispatcher
        self.max_request_bytes = max_request_bytes
        self.token = token
        super().__init__(address, RequestHandler)
