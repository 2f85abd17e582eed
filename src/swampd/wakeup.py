"""Waking a thread that sleeps in ``select``: a socket pair, one byte in, everything out.

The event loop, the exit watcher and the prober each sleep in a selector
and are woken from other threads when they have new work.  A wake-up that
finds the pipe full needs no byte of its own (one is waiting), so ``wake``
never blocks and never fails.
"""
from __future__ import annotations

import socket


class Wakeup:
    def __init__(self) -> None:
        #: Registered for reading in the sleeper's selector.
        self.reader, self._writer = socket.socketpair()
        self.reader.setblocking(False)
        self._writer.setblocking(False)

    def wake(self) -> None:
        """From any thread: the sleeper's ``select`` returns."""
        try:
            self._writer.send(b"\0")
        except OSError:  # full (a wake-up is pending already) or closed (we are stopping)
            pass

    def drain(self) -> None:
        """On the sleeper's thread, once woken: take every pending byte."""
        try:
            while self.reader.recv(4096):
                pass
        except OSError:  # BlockingIOError: nothing left
            pass

    def close(self) -> None:
        self.reader.close()
        self._writer.close()
