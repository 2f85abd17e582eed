"""The XML-RPC server: listeners, the event loop, and the worker pools, wired together.

``transport`` holds the how (see its package docstring for why one event
loop and not a thread per connection); this module decides what a parsed
call is worth: reports from execute nodes go to a pool of their own, every
other call to the client pool, operators' HTTP requests (the dashboard,
``/metrics``) to a third, and the answer goes back to the loop.
"""
from __future__ import annotations

import logging
import socket as socketlib
import threading
import xmlrpc.client
from typing import Any, Callable

from swampd.config import AgentMonitorConfig
from swampd.errors import Fault
from swampd.agentmonitor.changes import Deferred
from swampd.agentmonitor.dispatch import OPEN_METHODS, SELF_AUTHENTICATED, Dispatcher
from swampd.agentmonitor.transport import httpwire
from swampd.agentmonitor.transport.limits import Limits, connection_budget
from swampd.agentmonitor.transport.listeners import UnixListener, tcp_listener
from swampd.agentmonitor.transport.loop import Call, EventLoop, Listener
from swampd.agentmonitor.transport.memory import tune_allocator
from swampd.agentmonitor.transport.workers import WorkerPool
from swampd.agentmonitor.transport.responsewire import dumps_fault, dumps_result
from swampd.agentmonitor.transport.xmlrpcwire import RequestRefused

__all__ = ["AgentMonitorServer", "Dispatcher", "OPEN_METHODS", "SELF_AUTHENTICATED", "RequestRefused",
           "limits_of"]

log = logging.getLogger(__name__)

#: Threads answering the dashboard, its data and /metrics (fixed, like the XML-RPC pools).
WEB_THREADS = 2


def limits_of(am: AgentMonitorConfig) -> Limits:
    """The transport limits of an ``[agentmonitor]`` table."""
    return Limits(max_connections=am.max_connections, request_threads=am.request_threads,
                  report_threads=am.report_threads, request_timeout=am.request_timeout,
                  keepalive_timeout=am.keepalive_timeout, large_body_bytes=am.large_body_bytes,
                  max_large_bodies=am.max_large_bodies, max_request_bytes=am.max_request_bytes)


class AgentMonitorServer:
    """Serves ``dispatcher`` on a TCP address and, optionally, a Unix socket.

    ``serve_forever`` runs the loop in the calling thread; ``shutdown`` stops
    it from another; ``server_close`` releases the sockets.  Replacing
    ``socket`` before serving (TLS wrapping) changes the TCP listener.
    """

    def __init__(self, address: tuple[str, int], dispatcher: Dispatcher, limits: Limits | int,
                 token: str | None, unix_socket: str = "", unix_socket_mode: int = 0o660,
                 unix_socket_group: str = "") -> None:
        if isinstance(limits, int):
            limits = Limits(max_request_bytes=limits)
        self.dispatcher = dispatcher
        self.limits = limits
        self.token = token
        self._tcp = Listener(tcp_listener(*address), trusted=False)
        self._unix: UnixListener | None = None
        if unix_socket:
            try:
                self._unix = UnixListener(unix_socket, unix_socket_mode, unix_socket_group)
            except BaseException:
                self._tcp.sock.close()
                raise
        self._calls: WorkerPool[Call] = WorkerPool("xmlrpc", limits.request_threads, self._serve)
        self._reports: WorkerPool[Call] = WorkerPool("xmlrpc-reports", limits.report_threads, self._serve)
        #: Operators' pages and scrapes; a long-poll's answer is made here once it is due.
        self._web: WorkerPool[tuple[Call, Callable[[], Any] | None]] = WorkerPool("http", WEB_THREADS,
                                                                               self._serve_web)
        #: The dashboard and /metrics (``observe.web.ObserveWeb``); None: GET is refused as before.
        self.web: Any = None
        self._loop: EventLoop | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, am: AgentMonitorConfig, dispatcher: Dispatcher, token: str | None) -> "AgentMonitorServer":
        return cls((am.host, am.port), dispatcher, limits_of(am), token, am.unix_socket, am.unix_socket_mode,
                   am.unix_socket_group)

    @property
    def socket(self) -> socketlib.socket:
        return self._tcp.sock

    @socket.setter
    def socket(self, sock: socketlib.socket) -> None:
        sock.setblocking(False)
        self._tcp = Listener(sock, trusted=False)

    @property
    def server_address(self) -> Any:
        return self._tcp.sock.getsockname()

    @property
    def unix_socket(self) -> str:
        return str(self._unix.path) if self._unix else ""

    def serve_forever(self) -> None:
        tune_allocator()
        listeners = [self._tcp] + ([Listener(self._unix.socket, trusted=True)] if self._unix else [])
        cap = connection_budget(self.limits.max_connections)
        with self._lock:
            self._loop = EventLoop(listeners, self.limits, cap, self.token, self._route, web=self.web is not None)
        self._calls.start()
        self._reports.start()
        self._web.start()
        self._loop.run()

    def shutdown(self) -> None:
        with self._lock:
            loop = self._loop
        if loop is not None:
            loop.stop()
            loop.wait_stopped(10.0)
        self._calls.stop()
        self._reports.stop()
        self._web.stop()

    def server_close(self) -> None:
        try:
            self._tcp.sock.close()
        except OSError:
            pass
        if self._unix is not None:
            self._unix.close()

    # -- calls -------------------------------------------------------------------
    def _route(self, call: Call) -> None:
        if call.web is not None:
            self._web.submit((call, None))
            return
        (self._reports if call.method in SELF_AUTHENTICATED else self._calls).submit(call)

    def _serve_web(self, job: tuple[Call, Callable[[], Any] | None]) -> None:
        """Answer one operator request, or make the answer of a long-poll that became due."""
        from swampd.agentmonitor.observe.web import WebRequest

        call, later = job
        try:
            if later is not None:
                result = later()
            else:
                head, body = call.web
                result = self.web.handle(WebRequest(head, body, call.authorized))
        except Exception:
            log.exception("cannot answer %s", getattr(call.web[0], "path", "?"))
            result = httpwire.plain(500, "internal error; see the daemon log")
        assert self._loop is not None
        if isinstance(result, Deferred):  # a long-poll: no thread waits; the answer is made here when due
            if not result.done:
                self._loop.park(call.conn)
            result.then(lambda make: self._web.submit((call, make)))
            return
        self._loop.complete(call.conn, result, not call.keep_alive)

    def _serve(self, call: Call) -> None:
        """Run one call in a worker thread and hand the answer to the loop."""
        method, params = call.method, call.params
        call.params = ()
        self.dispatcher.authorize(call.authorized)
        try:
            result = self.dispatcher.call(method, params)
        except xmlrpc.client.Fault as fault:
            self._answer(call, dumps_fault(fault.faultCode, fault.faultString))
            return
        del params
        if isinstance(result, Deferred):  # a long-poll: answered when ready, by whoever resolves it
            assert self._loop is not None
            if not result.done:
                self._loop.park(call.conn)
            result.then(lambda value: self._answer(call, self._marshal(method, value)))
        else:
            self._answer(call, self._marshal(method, result))

    @staticmethod
    def _marshal(method: str, result: Any) -> bytes:
        try:
            return dumps_result(result)
        except Exception:  # a result we cannot marshal is our bug: log it, answer, keep serving
            log.exception("cannot answer %s", method)
            return dumps_fault(int(Fault.UNAVAILABLE), "internal error; see the daemon log")

    def _answer(self, call: Call, body: bytes) -> None:
        close = not call.keep_alive
        assert self._loop is not None
        self._loop.complete(call.conn, httpwire.response(200, body, close=close), close)
