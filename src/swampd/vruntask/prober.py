"""One thread that asks every starting local program whether it answers yet, all at once.

A local viewer is up when it answers a request on its port.  Asking one
program at a time, each probe waiting for its answer, made the probes of a
burst queue behind each other: with 500 viewers starting, a viewer that
answered within milliseconds of its start was seen up a second later
(median), because the one prober thread spent its time waiting on other
viewers' answers and, after every wait, for the interpreter lock.

So every probe here is a non-blocking socket in one selector: a probe is
started when it falls due (soon after the start, then ever less often),
its request is sent once the connection is made, and its answer is judged
when the first line has arrived.  Nothing waits for one program while
another could be asked.  Programs that are up cost nothing: they are
dropped.  What "up" means stays with the payload: it gives the request to
send (None: up as soon as it runs) and judges the first bytes of the answer.
A probe goes out only to a port the job's own user listens on
(``listeners``, asked before each probe): a program that has not bound its
port yet costs one netlink look instead of a connection refused, and a
stranger who took the port first is never taken for the viewer.
"""
from __future__ import annotations

import errno
import heapq
import itertools
import logging
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from swampd.vruntask.listeners import ListenerLookup, OwnerUnknown, unknown_owner
from swampd.wakeup import Wakeup

log = logging.getLogger(__name__)

#: Seconds between the first probes, how much each wait grows, and the longest wait.  A look at a
#: program that does not listen yet is one netlink lookup (about 9 us of CPU here): a program that
#: takes a minute to start (Code Dx) is still seen answering within 50 ms, for about 0.03 % of a core.
FIRST_PROBE_GAP = 0.004
PROBE_GROWTH = 1.25
LONGEST_PROBE_GAP = 0.05
#: Seconds a probe may take before it counts as "not yet" (a program that accepts but never answers).
PROBE_TIMEOUT = 2.0
#: Bytes of an answer read at most: its first line is all that is judged.
HEAD_BYTES = 256
#: Probes out at once at most (each holds a descriptor); the others wait their turn.
MAX_IN_FLIGHT = 64


@dataclass
class _Target:
    port: int
    request: bytes | None
    judge: Callable[[bytes], bool]
    on_up: Callable[[], None]
    deadline: float
    gap: float = FIRST_PROBE_GAP
    #: A stranger was found on the port (said once in the log).
    stranger_seen: bool = False


@dataclass
class _Probe:
    """One probe in flight: its socket, what is left to send, and what came back."""

    key: str
    target: _Target
    sock: socket.socket
    started: float
    unsent: bytes
    head: bytes = b""
    events: int = field(default=selectors.EVENT_WRITE)


class Prober:
    """Probes starting programs until each answers (``on_up``, on the prober's thread) or its deadline passes."""

    def __init__(self, owner: int, host: str = "127.0.0.1") -> None:
        """``owner``: the uid every probed program runs as; an answer from another's socket is no answer."""
        self.host = host
        self.owner = owner
        self._lock = threading.Lock()
        self._due: list[tuple[float, int, str]] = []
        self._targets: dict[str, _Target] = {}
        self._seq = itertools.count()
        self._closed = False
        self._selector = selectors.DefaultSelector()
        self._wakeup = Wakeup()
        self._selector.register(self._wakeup.reader, selectors.EVENT_READ, None)
        self._inflight: dict[str, _Probe] = {}
        self._listeners = ListenerLookup()  # the prober's thread's alone
        self._thread = threading.Thread(target=self._run, name="host-probes", daemon=True)
        self._thread.start()

    def add(self, key: str, port: int, request: bytes | None, judge: Callable[[bytes], bool],
            on_up: Callable[[], None], deadline: float) -> None:
        """Probe ``port`` now, then again and again until ``judge`` likes the answer to ``request``
        or ``deadline`` (monotonic) passes; ``request`` None: up at the first look."""
        with self._lock:
            self._targets[key] = _Target(port, request, judge, on_up, deadline)
            heapq.heappush(self._due, (time.monotonic(), next(self._seq), key))
        self._wakeup.wake()

    def cancel(self, key: str) -> None:
        with self._lock:
            self._targets.pop(key, None)

    def close(self) -> None:
        self._closed = True
        self._wakeup.wake()

    def __len__(self) -> int:
        with self._lock:
            return len(self._targets)

    # -- the thread -------------------------------------------------------------
    def _run(self) -> None:
        while not self._closed:
            for key, mask in self._selector.select(self._timeout()):
                if key.data is None:
                    self._wakeup.drain()
                else:
                    self._advance(key.data, mask)
            now = time.monotonic()
            self._expire(now)
            self._start_due(now)
        for probe in list(self._inflight.values()):
            self._close(probe)
        self._listeners.close()

    def _timeout(self) -> float | None:
        with self._lock:
            next_due = self._due[0][0] if self._due and len(self._inflight) < MAX_IN_FLIGHT else None
        if self._inflight:
            oldest = min(p.started for p in self._inflight.values()) + PROBE_TIMEOUT
            next_due = oldest if next_due is None else min(next_due, oldest)
        return None if next_due is None else max(0.0, next_due - time.monotonic())

    def _start_due(self, now: float) -> None:
        while len(self._inflight) < MAX_IN_FLIGHT:
            with self._lock:
                if not self._due or self._due[0][0] > now:
                    return
                _, _, key = heapq.heappop(self._due)
                target = self._targets.get(key)
            if target is None or key in self._inflight:
                continue  # cancelled, or its previous probe is still out
            if target.request is None:
                self._judged(key, target, True)
            else:
                self._start(key, target, now)

    def _start(self, key: str, target: _Target, now: float) -> None:
        if not self._owner_listens(key, target):
            self._judged(key, target, False)
            return
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:  # out of descriptors: ask again later, keep probing the others
            log.warning("cannot probe %s now: %s", key, exc)
            self._judged(key, target, False)
            return
        sock.setblocking(False)
        err = sock.connect_ex((self.host, target.port))
        if err not in (0, errno.EINPROGRESS):
            sock.close()  # nothing listens yet (on loopback a refusal comes at once)
            self._judged(key, target, False)
            return
        assert target.request is not None
        probe = _Probe(key, target, sock, now, target.request)
        self._inflight[key] = probe
        self._selector.register(sock, selectors.EVENT_WRITE, probe)

    def _advance(self, probe: _Probe, mask: int) -> None:
        try:
            if probe.unsent and mask & selectors.EVENT_WRITE:
                err = probe.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise OSError(err, "connect")
                probe.unsent = probe.unsent[probe.sock.send(probe.unsent):]
                if not probe.unsent:
                    self._selector.modify(probe.sock, selectors.EVENT_READ, probe)
                return
            if mask & selectors.EVENT_READ:
                chunk = probe.sock.recv(HEAD_BYTES)
                probe.head += chunk
                if chunk and b"\n" not in probe.head and len(probe.head) < HEAD_BYTES:
                    return  # the first line is not complete yet
                self._finish(probe, probe.target.judge(probe.head))
        except OSError:
            self._finish(probe, False)
        except Exception:  # a judge that fails: this probe says "not yet", the thread goes on
            log.exception("probing %s failed", probe.key)
            self._finish(probe, False)

    def _owner_listens(self, key: str, target: _Target) -> bool:
        """Whether a socket of the owner listens on the target's port: only then is it asked."""
        try:
            uid = self._listeners.uid(target.port, self.host)
        except OwnerUnknown as exc:  # no sock_diag here: every listener is asked, as before this check
            unknown_owner(exc)
            return True
        if uid is None:
            return False  # not bound (or not listening) yet
        if uid != self.owner:
            if not target.stranger_seen:
                target.stranger_seen = True
                log.warning("%s: port %d is listened on by uid %d, not %d: someone else took it",
                            key, target.port, uid, self.owner)
            return False
        return True

    def _expire(self, now: float) -> None:
        for probe in [p for p in self._inflight.values() if now - p.started > PROBE_TIMEOUT]:
            self._finish(probe, False)

    def _finish(self, probe: _Probe, up: bool) -> None:
        self._close(probe)
        self._judged(probe.key, probe.target, up)

    def _close(self, probe: _Probe) -> None:
        self._inflight.pop(probe.key, None)
        try:
            self._selector.unregister(probe.sock)
        except (KeyError, ValueError):
            pass
        probe.sock.close()

    def _judged(self, key: str, target: _Target, up: bool) -> None:
        with self._lock:
            if self._targets.get(key) is not target:
                return  # cancelled or replaced while probing
            if not up and time.monotonic() <= target.deadline:
                heapq.heappush(self._due, (time.monotonic() + target.gap, next(self._seq), key))
                target.gap = min(target.gap * PROBE_GROWTH, LONGEST_PROBE_GAP)
                return
            del self._targets[key]
        if up:
            try:
                target.on_up()
            except Exception:
                log.exception("reporting %s up failed", key)
