"""Ports for local viewer commands: free on this host, and never given to two jobs at once.

A port is found by binding port 0 and closing the socket; the command binds
it a few milliseconds later.  In between, the kernel may hand the same port
to the next ``bind(0)``: in a burst of hundreds of launches two commands got
one port and the second died with "Address already in use" before it ever
answered.  The host agent starts every local job of this host, so it can
remember which ports its jobs were given and never hand one out twice while
its job lives.
"""
from __future__ import annotations

import socket
import threading

#: Tries before giving up (each one a port the kernel thought free that a job of ours holds).
TRIES = 64


def free_port() -> int:
    """A port nothing on this host listens on now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PortPool:
    """The ports this host's jobs were given, so that no two live jobs share one."""

    def __init__(self) -> None:
        self._taken: set[int] = set()
        self._lock = threading.Lock()

    def take(self) -> int:
        """A free port no live job of ours was given; OSError when none could be found."""
        for _ in range(TRIES):
            port = free_port()
            with self._lock:
                if port not in self._taken:
                    self._taken.add(port)
                    return port
        raise OSError("no free port found for the viewer command")

    def hold(self, port: int) -> None:
        """A port a job already has (one adopted after a restart)."""
        with self._lock:
            self._taken.add(port)

    def release(self, port: int) -> None:
        with self._lock:
            self._taken.discard(port)

    def __len__(self) -> int:
        with self._lock:
            return len(self._taken)
