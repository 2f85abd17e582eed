"""The event loop: the one thread that owns every socket of the transport.

It accepts, reads heads and bodies without blocking, enforces each request's
deadline, hands complete calls to ``dispatch`` (which queues them on a worker
pool) and writes the answers workers hand back through ``complete``.  Who
gets in and who waits is ``admission``'s: at the cap the quietest connection
is closed; when nothing can be closed (every connection has a call in a
worker) or ``accept`` keeps failing, accepting pauses briefly instead of
spinning.  Once no large request is left, the allocator gives memory back.
"""
from __future__ import annotations

import collections
import errno
import hmac
import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from swampd.agentmonitor.transport import httpwire
from swampd.agentmonitor.transport.admission import Admission, LargeBodies
from swampd.agentmonitor.transport.bodies import BodyDecoder
from swampd.agentmonitor.transport.connection import WANT_READ, Connection, Phase
from swampd.agentmonitor.transport.httpwire import HttpError
from swampd.agentmonitor.transport.limits import Limits
from swampd.agentmonitor.transport.memory import release_memory
from swampd.agentmonitor.transport.responsewire import dumps_fault
from swampd.wakeup import Wakeup

log = logging.getLogger(__name__)

RPC_PATHS = ("/", "/RPC2")
#: The one POST that is not XML-RPC (the dashboard's login form), and the most of its body read.
FORM_PATHS = ("/login",)
MAX_FORM_BYTES = 4096
#: Seconds between sweeps for expired deadlines.
TICK = 0.25
#: How long accepting pauses when no connection can be closed to make room.
ACCEPT_PAUSE = 0.1
#: Bytes read per recv; body reads stop at the body's end (pipelined requests wait their turn).
RECV_BYTES = 256 * 1024
#: Reads per readiness event, so that one fast sender cannot monopolise the loop.
READS_PER_EVENT = 4
#: Accepts per readiness event of a listener.
ACCEPTS_PER_EVENT = 64
#: Fault code of a request we refuse to parse (the contract's "bad argument").
FAULT_BAD_ARGUMENT = 1


@dataclass
class Call:
    """A parsed request on its way to a worker."""

    conn: Connection
    method: str
    params: tuple[Any, ...]
    authorized: bool
    keep_alive: bool
    trusted: bool
    #: An operator's HTTP request (GET, or the login form) instead of an XML-RPC call.
    web: Any = None


@dataclass
class Listener:
    sock: socket.socket
    #: Connections from here need no token (the Unix socket: its file mode decides).
    trusted: bool


class EventLoop:
    def __init__(self, listeners: list[Listener], limits: Limits, cap: int, token: str | None,
                 dispatch: Callable[[Call], None], web: bool = False) -> None:
        """``web``: GET requests and the login form are answered (as ``Call.web``), else refused with 405."""
        self.listeners = listeners
        self.limits = limits
        self.token = token
        self.dispatch = dispatch
        self.web = web
        self._selector = selectors.DefaultSelector()
        self._conns: set[Connection] = set()
        self._admission = Admission(cap)
        self._large = LargeBodies(limits.max_large_bodies)
        self._completions: collections.deque[tuple[Connection, bytes, bool]] = collections.deque()
        #: Connections whose call waits for an answer that no worker holds (a long-poll).
        self._parked: collections.deque[Connection] = collections.deque()
        #: Connections with input already buffered (pipelined requests, a body granted its slot):
        #: served from the loop itself, never by recursion.
        self._kicked: collections.deque[Connection] = collections.deque()
        self._wakeup = Wakeup()
        self._woken = False
        self._stop = False
        self._stopped = threading.Event()
        self._accept_paused_until = 0.0

    # -- control (any thread) ---------------------------------------------------
    def complete(self, conn: Connection, data: bytes, close: bool) -> None:
        """A worker's answer for ``conn``; the loop sends it."""
        self._completions.append((conn, data, close))
        self._wake()

    def park(self, conn: Connection) -> None:
        """``conn``'s call will be answered later, by no worker (a long-poll): until then it may be
        closed to make room, like an idle connection, so waiting clients cannot fill the cap."""
        self._parked.append(conn)
        self._wake()

    def stop(self) -> None:
        self._stop = True
        self._wake()

    def wait_stopped(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)

    def _wake(self) -> None:
        if not self._woken:
            self._woken = True
            self._wakeup.wake()

    @property
    def connections(self) -> int:
        return len(self._conns)

    # -- the loop ----------------------------------------------------------------
    def run(self) -> None:
        """Serve until ``stop``; then close every client connection."""
        try:
            self._selector.register(self._wakeup.reader, selectors.EVENT_READ, None)
            self._listen(True)
            next_sweep = time.monotonic() + TICK
            while not self._stop:
                # With no connection and accepting, nothing falls due: sleep until an event (an idle
                # daemon's every wake-up costs CPU, about a millisecond on a small VM).
                idle = not self._conns and not self._accept_paused_until
                for key, mask in self._selector.select(None if idle else TICK):
                    if key.data is None:
                        self._drain_wake()
                    elif isinstance(key.data, Listener):
                        self._accept(key.data)
                    else:
                        self._on_event(key.data, mask)
                self._drain_completions()
                self._drain_kicked()
                now = time.monotonic()
                if self._accept_paused_until and now >= self._accept_paused_until:
                    self._accept_paused_until = 0.0
                    self._listen(True)
                if now >= next_sweep:
                    self._sweep(now)
                    next_sweep = now + TICK
        finally:
            for conn in list(self._conns):
                self._close(conn)
            self._listen(False)
            self._selector.close()
            self._wakeup.close()
            self._stopped.set()

    def _listen(self, on: bool) -> None:
        for listener in self.listeners:
            try:
                if on:
                    self._selector.register(listener.sock, selectors.EVENT_READ, listener)
                else:
                    self._selector.unregister(listener.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _drain_wake(self) -> None:
        # Read the wake bytes first, then clear the flag: a worker that finds the flag
        # still set has appended its answer before this, and _drain_completions (which
        # always follows) sends it; one that finds it clear writes a byte of its own.
        self._wakeup.drain()
        self._woken = False

    def _drain_completions(self) -> None:
        while self._parked:
            conn = self._parked.popleft()
            if conn.phase is Phase.DISPATCHED:
                self._admission.track(conn)
        while self._completions:
            conn, data, close = self._completions.popleft()
            self._release_slot(conn)
            self._admission.untrack(conn)  # it was parked (a long-poll) or never tracked
            if conn.phase is not Phase.CLOSED:
                self._respond(conn, data, close)

    def _drain_kicked(self) -> None:
        while self._kicked:
            conn = self._kicked.popleft()
            if conn.phase in (Phase.HEAD, Phase.BODY):
                self._on_readable(conn)

    # -- accepting --------------------------------------------------------------
    def _accept(self, listener: Listener) -> None:
        made_room = False
        for _ in range(ACCEPTS_PER_EVENT):
            if len(self._conns) >= self._admission.cap and not self._evict("the connection cap"):
                self._pause_accepting()
                return
            try:
                sock, _addr = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    # Out of descriptors (something besides connections took them): make room once,
                    # else stop trying for a moment.  Never spin, never empty the table.
                    if made_room or not self._evict("the file-descriptor limit"):
                        self._admission.stuck(exc, ACCEPT_PAUSE)
                        self._pause_accepting()
                        return
                    made_room = True
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue
                self._admission.stuck(exc, ACCEPT_PAUSE)
                self._pause_accepting()
                return
            self._open(sock, listener)

    def _pause_accepting(self) -> None:
        self._listen(False)
        self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE

    def _open(self, sock: socket.socket, listener: Listener) -> None:
        try:
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            sock.close()
            return
        conn = Connection(sock, trusted=listener.trusted)
        conn.deadline = time.monotonic() + self.limits.request_timeout
        self._conns.add(conn)
        self._admission.track(conn)
        if conn.tls:
            conn.phase = Phase.HANDSHAKE
            self._handshake(conn)
        else:
            self._watch(conn, selectors.EVENT_READ)
            self._on_readable(conn)  # a request sent with the connection is often there already

    def _evict(self, why: str) -> bool:
        """Close the connection that has been quiet the longest; False if none may be closed."""
        conn = self._admission.quietest()
        if conn is None:
            return False
        self._close(conn)
        self._admission.evicted(why, len(self._conns))
        return True

    # -- events -----------------------------------------------------------------
    def _watch(self, conn: Connection, events: int) -> None:
        if conn.registered == events:
            return
        try:
            if not events:
                self._selector.unregister(conn.sock)
            elif conn.registered:
                self._selector.modify(conn.sock, events, conn)
            else:
                self._selector.register(conn.sock, events, conn)
            conn.registered = events
        except (KeyError, ValueError, OSError):
            self._close(conn)

    def _on_event(self, conn: Connection, mask: int) -> None:
        if conn.phase is Phase.HANDSHAKE:
            self._handshake(conn)
        elif conn.phase is Phase.WRITE:
            self._on_writable(conn)
        elif conn.phase in (Phase.HEAD, Phase.BODY):
            self._on_readable(conn)

    def _handshake(self, conn: Connection) -> None:
        try:
            wants = conn.handshake()
        except OSError as exc:
            log.debug("TLS handshake failed: %s", exc)
            self._close(conn)
            return
        if wants is not None:
            self._watch(conn, selectors.EVENT_READ if wants == WANT_READ else selectors.EVENT_WRITE)
            return
        conn.phase = Phase.HEAD
        self._admission.touch(conn)
        self._watch(conn, selectors.EVENT_READ)
        self._on_readable(conn)

    def _on_readable(self, conn: Connection) -> None:
        for _ in range(READS_PER_EVENT + 1):
            if conn.phase is Phase.HEAD:
                if not self._read_head(conn):
                    return
            elif conn.phase is Phase.BODY:
                if not self._read_body(conn):
                    return
            else:
                return

    def _read_head(self, conn: Connection) -> bool:
        """Advance a head; True when there may be more to do at once."""
        end = httpwire.head_end(conn.inbuf)
        if end < 0:
            if len(conn.inbuf) > httpwire.MAX_HEAD_BYTES:
                self._http_error(conn, HttpError(431, f"request head over {httpwire.MAX_HEAD_BYTES} bytes"))
                return False
            data = conn.recv(65536)
            if data is None:
                return False
            if not data:
                self._close(conn)
                return False
            if conn.idle:
                conn.idle = False
                conn.deadline = time.monotonic() + self.limits.request_timeout
            conn.inbuf += data
            self._admission.touch(conn)
            return True
        raw = bytes(conn.inbuf[:end])
        del conn.inbuf[:end]
        try:
            self._begin_request(conn, httpwire.parse_head(raw))
        except HttpError as exc:
            self._http_error(conn, exc)
            return False
        return conn.phase is Phase.BODY

    def _begin_request(self, conn: Connection, head: httpwire.RequestHead) -> None:
        if self.web and head.method in ("GET", "HEAD"):
            self._web_request(conn, head)
            return
        if head.method != "POST":
            raise HttpError(405, "use POST with an XML-RPC body")
        form = self.web and head.path in FORM_PATHS
        if head.path not in RPC_PATHS and not form:
            raise HttpError(404, "not found: XML-RPC lives at / and /RPC2")
        length = head.content_length()
        cap = MAX_FORM_BYTES if form else self.limits.max_request_bytes
        if length > cap:
            raise HttpError(413, f"request body over {cap} bytes")
        conn.start_body(head, length, BodyDecoder(head.get("content-encoding"), cap), form=form)
        conn.keep_alive = head.keep_alive
        conn.authorized = conn.trusted or self._token_ok(head)
        if length > self.limits.large_body_bytes:
            conn.deadline = time.monotonic() + self.limits.request_timeout  # counted from its turn
            if not self._large.take(conn):
                conn.phase = Phase.WAIT_SLOT
                self._watch(conn, 0)
                return
        self._enter_body(conn)

    def _enter_body(self, conn: Connection) -> None:
        conn.phase = Phase.BODY
        assert conn.head is not None
        if conn.head.expects_continue and conn.remaining and not conn.inbuf:
            try:
                sent = conn.send(httpwire.CONTINUE)
            except OSError:
                sent = None
            if sent != len(httpwire.CONTINUE):  # 25 bytes into an empty socket buffer: never short
                self._close(conn)
                return
        self._watch(conn, selectors.EVENT_READ)

    def _web_request(self, conn: Connection, head: httpwire.RequestHead) -> None:
        """A GET has no body: it goes to a worker as soon as its head is in."""
        if head.values("transfer-encoding") or head.get("content-length", "0").strip() not in ("", "0"):
            raise HttpError(400, "a GET request has no body")
        conn.keep_alive = head.keep_alive
        conn.authorized = conn.trusted or self._token_ok(head)
        self._admission.untrack(conn)
        conn.phase = Phase.DISPATCHED
        self._watch(conn, 0)
        self.dispatch(Call(conn, "", (), conn.authorized, conn.keep_alive, conn.trusted, web=(head, b"")))

    def _token_ok(self, head: httpwire.RequestHead) -> bool:
        if self.token is None:
            return True
        given = head.get("authorization").encode("latin-1", "replace")
        return hmac.compare_digest(given, f"Bearer {self.token}".encode())

    def _read_body(self, conn: Connection) -> bool:
        try:
            if conn.inbuf:
                take = bytes(conn.inbuf[:conn.remaining])
                del conn.inbuf[:len(take)]
                conn.remaining -= len(take)
                conn.take_body(take)
            if conn.remaining:
                data = conn.recv(min(conn.remaining, RECV_BYTES))
                if data is None:
                    return False
                if not data:
                    self._close(conn)
                    return False
                conn.remaining -= len(data)
                self._admission.touch(conn)
                conn.take_body(data)
                del data
            if conn.remaining:
                return True
            self._body_done(conn)
        except HttpError as exc:
            self._http_error(conn, exc)
        return False

    def _body_done(self, conn: Connection) -> None:
        call = conn.finish_body()
        self._admission.untrack(conn)
        if call is None:
            self._release_slot(conn)
            self._respond(conn, httpwire.response(200, dumps_fault(FAULT_BAD_ARGUMENT, conn.refused),
                                                  close=not conn.keep_alive), not conn.keep_alive)
            return
        conn.phase = Phase.DISPATCHED
        self._watch(conn, 0)
        method, params = call
        web = (conn.head, params[0]) if conn.form else None
        self.dispatch(Call(conn, method, params, conn.authorized, conn.keep_alive, conn.trusted, web=web))

    # -- large bodies -------------------------------------------------------------
    def _release_slot(self, conn: Connection) -> None:
        had_slot = conn.large and conn.phase is not Phase.WAIT_SLOT
        for waiting in self._large.give_back(conn):
            waiting.deadline = time.monotonic() + self.limits.request_timeout
            self._enter_body(waiting)
            self._kicked.append(waiting)
        if had_slot and self._large.in_flight == 0:
            release_memory()

    # -- answering ----------------------------------------------------------------
    def _http_error(self, conn: Connection, exc: HttpError) -> None:
        extra = (("Allow", "POST"),) if exc.status == 405 else ()
        self._release_slot(conn)
        conn.reader = conn.decoder = None
        self._admission.untrack(conn)
        self._respond(conn, httpwire.plain(exc.status, exc.message, close=True, extra=extra), True)

    def _respond(self, conn: Connection, data: bytes, close: bool) -> None:
        conn.phase = Phase.WRITE
        conn.outbuf = memoryview(data)
        conn.close_after_write = close
        conn.deadline = time.monotonic() + self.limits.request_timeout
        self._on_writable(conn)

    def _on_writable(self, conn: Connection) -> None:
        assert conn.outbuf is not None
        while conn.outbuf:
            try:
                sent = conn.send(conn.outbuf)
            except OSError:
                self._close(conn)
                return
            if sent is None:
                self._watch(conn, selectors.EVENT_WRITE)
                return
            conn.outbuf = conn.outbuf[sent:]
        conn.outbuf = None
        if conn.close_after_write:
            self._close(conn)
            return
        conn.phase, conn.head, conn.idle = Phase.HEAD, None, True
        conn.deadline = time.monotonic() + self.limits.keepalive_timeout
        self._admission.track(conn)
        self._watch(conn, selectors.EVENT_READ)
        if conn.inbuf:
            conn.idle = False
            conn.deadline = time.monotonic() + self.limits.request_timeout
        self._kicked.append(conn)  # a pipelined request, or TLS data already decrypted

    # -- deadlines and closing ------------------------------------------------------
    def _sweep(self, now: float) -> None:
        for conn in [c for c in self._conns if c.deadline and now > c.deadline]:
            if conn.phase is Phase.DISPATCHED:
                continue
            if conn.phase is Phase.HEAD and conn.idle and not conn.inbuf:
                self._close(conn)  # an idle keep-alive connection: close quietly
            elif conn.phase in (Phase.HEAD, Phase.BODY):
                self._last_word(conn, httpwire.plain(408, "the request did not arrive in time", close=True))
            elif conn.phase is Phase.WAIT_SLOT:
                self._last_word(conn, httpwire.plain(503, "too many large requests; try again", close=True))
            else:
                self._close(conn)

    def _last_word(self, conn: Connection, data: bytes) -> None:
        """Best effort: one non-blocking send of an error, then close."""
        try:
            conn.send(data)
        except OSError:
            pass
        self._close(conn)

    def _close(self, conn: Connection) -> None:
        """Close ``conn``: FIN first, so that an answer already sent is read before any reset."""
        if conn.phase is Phase.CLOSED:
            return
        if conn.phase is not Phase.DISPATCHED:
            self._release_slot(conn)
        if conn.registered:
            try:
                self._selector.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
            conn.registered = 0
        conn.phase = Phase.CLOSED
        conn.reader = conn.decoder = None
        conn.inbuf = bytearray()
        conn.outbuf = None
        self._conns.discard(conn)
        self._admission.untrack(conn)
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except (OSError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
