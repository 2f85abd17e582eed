"""The link between the daemon and its host agent process: calls both ways over one socket pair.

Why a socket pair of our own and not XML-RPC: every local launch crosses it
(its start, then its reports, many jobs' together: ``reportbatch``), and the whole
point of a second process is to take work off the daemon's interpreter.  A
``SOCK_SEQPACKET`` pair keeps each message whole, carries the job's lock
descriptor beside a start (``SCM_RIGHTS``: the agent holds the very same
open file, so the lock never has a moment without a holder), and closes on
either side's death, which the other learns at once as end of file.

A message is one JSON object.  A call is ``{"id", "op", "args"}`` and its
answer ``{"re", "ok"}`` or ``{"re", "err", "msg"[, "code"]}``; either side
may call the other.  Calls are served on a pool, so a slow one (a stop waits
for its job to end) never holds up the answers behind it.  A call still
waiting when the link goes down fails with ``LinkDown``.
"""
from __future__ import annotations

import array
import json
import logging
import os
import socket
import threading
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

log = logging.getLogger(__name__)

#: The largest message either side sends or takes (a report is a few hundred bytes).
MAX_MESSAGE = 1 << 20
#: At most this many descriptors ride with one message (a start passes one).
MAX_FDS = 4
#: ``handler(op, args, fds)``: serves a call from the other side; what it returns is the answer.
Handler = Callable[[str, list[Any], list[int]], Any]


class LinkDown(ConnectionError):
    """The other side is gone (or never answered before it went)."""


class RemoteError(Exception):
    """The other side's handler failed: ``kind`` names its exception class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class _Reply:
    """A call's answer, for the caller waiting on it: a lock held until the answer is in (a
    ``Future`` makes a condition, an RLock and a waiter lock per call).  Set once: whoever takes
    the call out of ``Link._pending`` sets it."""

    __slots__ = ("_in", "_value", "_error")

    def __init__(self) -> None:
        self._in = threading.Lock()
        self._in.acquire()
        self._value: Any = None
        self._error: BaseException | None = None

    def answer(self, value: Any) -> None:
        self._value = value
        self._in.release()

    def fail(self, error: BaseException) -> None:
        self._error = error
        self._in.release()

    def wait(self, timeout: float | None) -> bool:
        """Whether the answer came within ``timeout`` seconds (None: however long it takes)."""
        return self._in.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))

    def result(self) -> Any:
        """The answer, or the failure raised (once ``wait`` said it came)."""
        if self._error is not None:
            raise self._error
        return self._value


class Link:
    """One end of the pair: ``call`` the other side; serve its calls with ``handler``."""

    def __init__(self, sock: socket.socket, handler: Handler, name: str, workers: int = 16) -> None:
        self.sock = sock
        self.name = name
        self._handler = handler
        self._send_lock = threading.Lock()
        self._pending: dict[int, _Reply] = {}
        self._pending_lock = threading.Lock()
        self._ids = 0
        self._down = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{name}-calls")
        self._reader = threading.Thread(target=self._read, name=f"{name}-link", daemon=True)

    def start(self) -> "Link":
        self._reader.start()
        return self

    def wait_down(self, timeout: float | None = None) -> bool:
        return self._down.wait(timeout)

    # -- calling -------------------------------------------------------------
    def call(self, op: str, args: list[Any], fds: tuple[int, ...] = (), timeout: float | None = None) -> Any:
        """Call ``op`` on the other side and wait for its answer (at most ``timeout`` seconds).

        LinkDown when the link is (or goes) down before the answer comes;
        TimeoutError when no answer came in time (the call may still be
        carried out); RemoteError, or ``xmlrpc.client.Fault`` for a fault,
        when the other side's handler failed.
        """
        reply = _Reply()
        with self._pending_lock:
            if self._down.is_set():
                raise LinkDown(f"{self.name}: the link is down")
            self._ids += 1
            call_id = self._ids
            self._pending[call_id] = reply
        try:
            self._send({"id": call_id, "op": op, "args": args}, fds)
        except BaseException:
            with self._pending_lock:
                self._pending.pop(call_id, None)
            raise
        if not reply.wait(timeout):
            with self._pending_lock:
                self._pending.pop(call_id, None)
            raise TimeoutError(f"{self.name}: no answer to {op} within {timeout:.0f}s")
        return reply.result()

    def _send(self, message: dict[str, Any], fds: tuple[int, ...] = ()) -> None:
        data = _encode(message).encode()
        if len(data) > MAX_MESSAGE:
            raise ValueError(f"{self.name}: a message of {len(data)} bytes is over the link's {MAX_MESSAGE}")
        try:
            with self._send_lock:
                if fds:
                    socket.send_fds(self.sock, [data], list(fds))
                else:
                    self.sock.send(data)
        except OSError as exc:
            raise LinkDown(f"{self.name}: cannot send: {exc.strerror or exc}") from None

    # -- reading ---------------------------------------------------------------
    def _read(self) -> None:
        # One buffer for every message: ``socket.recv_fds`` allocates the largest message's size per
        # call (a fresh mmap, a page fault, an mremap and a munmap for each message of a few hundred bytes).
        buffer = bytearray(MAX_MESSAGE)
        try:
            while True:
                try:
                    size, fds, flags = _receive(self.sock, buffer)
                except InterruptedError:
                    continue
                except OSError:
                    break
                if not size:
                    _close_all(fds)
                    break
                if flags & _TRUNCATED:
                    log.error("%s: a message over the link's limits was dropped", self.name)
                    _close_all(fds)
                    continue
                try:  # decoded straight from the buffer (both ends send UTF-8)
                    message = json.loads(str(memoryview(buffer)[:size], "utf-8", "surrogatepass"))
                except ValueError:
                    message = None
                if not isinstance(message, dict):
                    log.error("%s: an unreadable message was dropped", self.name)
                    _close_all(fds)
                    continue
                self._take(message, fds)
        finally:
            self._fail_pending()

    def _take(self, message: dict[str, Any], fds: list[int]) -> None:
        if "re" in message:
            _close_all(fds)
            with self._pending_lock:
                reply = self._pending.pop(message["re"], None)
            if reply is None:
                return
            if "err" in message:
                reply.fail(_error(message))
            else:
                reply.answer(message.get("ok"))
            return
        try:
            self._pool.submit(self._serve, message, fds)
        except RuntimeError:  # the pool is shut down: we are closing
            _close_all(fds)

    def _serve(self, message: dict[str, Any], fds: list[int]) -> None:
        call_id = message.get("id")
        try:
            answer: dict[str, Any] = {"re": call_id, "ok": self._handler(str(message.get("op")),
                                                                         list(message.get("args") or []), fds)}
        except xmlrpc.client.Fault as fault:
            answer = {"re": call_id, "err": "Fault", "msg": fault.faultString, "code": fault.faultCode}
        except Exception as exc:
            if not isinstance(exc, (RemoteError, LinkDown)) and type(exc).__name__ not in _EXPECTED:
                log.exception("%s: %s failed", self.name, message.get("op"))
            answer = {"re": call_id, "err": type(exc).__name__, "msg": str(exc)}
        try:
            self._send(answer)
        except (LinkDown, ValueError) as exc:
            log.warning("%s: cannot answer %s: %s", self.name, message.get("op"), exc)

    def _fail_pending(self) -> None:
        with self._pending_lock:
            self._down.set()
            pending, self._pending = self._pending, {}
        for reply in pending.values():
            reply.fail(LinkDown(f"{self.name}: the other side went away"))

    def close(self) -> None:
        """Stop serving and hang up (the other side sees end of file)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(5.0)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.sock.close()


#: Failures a handler raises on purpose: they travel as answers and are no bug to log.
_EXPECTED = frozenset({"StartFailed", "JobError", "Fenced", "ConnectionError", "OSError"})


def _error(message: dict[str, Any]) -> Exception:
    kind, text = str(message.get("err")), str(message.get("msg", ""))
    if kind == "Fault":
        return xmlrpc.client.Fault(int(message.get("code", 0)), text)
    if kind in ("LinkDown", "ConnectionError"):
        return LinkDown(text)
    return RemoteError(kind, text)


#: Flags of a message cut short (a plain int: ``MsgFlag`` operators cost microseconds per message).
_TRUNCATED = int(socket.MSG_TRUNC | socket.MSG_CTRUNC)
#: Messages as compact JSON (one encoder, not one made per ``json.dumps`` call with separators).
_encode = json.JSONEncoder(separators=(",", ":")).encode
#: Room for the descriptors of one message.
_FDS_SPACE = socket.CMSG_LEN(MAX_FDS * array.array("i").itemsize)


def _receive(sock: socket.socket, buffer: bytearray) -> tuple[int, list[int], int]:
    """One message into ``buffer`` (``socket.recv_fds`` without a new buffer per call): its size, the
    descriptors that came with it, and the flags."""
    size, ancdata, flags, _ = sock.recvmsg_into([buffer], _FDS_SPACE)
    fds = array.array("i")
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    return size, list(fds), flags


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def pair() -> tuple[socket.socket, socket.socket]:
    """A connected pair that keeps messages whole (``SOCK_SEQPACKET``), big enough for any message."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    for sock in (ours, theirs):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, MAX_MESSAGE * 2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, MAX_MESSAGE * 2)
    return ours, theirs

