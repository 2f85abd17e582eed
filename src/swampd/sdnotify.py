"""systemd's notify protocol, spoken directly: one datagram per message to ``$NOTIFY_SOCKET``.

The protocol is a documented datagram (sd_notify(3)): newline-separated
``KEY=VALUE`` lines sent to the AF_UNIX socket named in ``NOTIFY_SOCKET``;
a name starting with ``@`` is in the abstract namespace (its first byte
becomes NUL).  It is a dozen lines of stdlib, so swampd needs no binding
and no library for it.  Without ``NOTIFY_SOCKET`` (not under systemd, or a
unit of another type) every call is a no-op that returns False.

``WATCHDOG_USEC`` (set by systemd when the unit has ``WatchdogSec=``) says
how often the service must send ``WATCHDOG=1``; ``watchdog_interval`` reads
it, honouring ``WATCHDOG_PID`` (the variables may be meant for another
process).
"""
from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


class Notifier:
    """Sends notify messages; reuses one socket."""

    def __init__(self, address: str | None = None) -> None:
        """``address``: the socket's name (default: ``$NOTIFY_SOCKET``)."""
        raw = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + raw[1:] if raw.startswith("@") else raw
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.address) and self.address[0] in ("/", "\0")

    def send(self, *lines: str) -> bool:
        """Send one message of ``KEY=VALUE`` lines; True when it was sent."""
        if not self.enabled:
            return False
        message = "\n".join(line.replace("\n", " ") for line in lines).encode("utf-8", "replace")
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message, self.address)
            return True
        except OSError as exc:
            if not self._warned:  # once: a watchdog ping every few seconds must not flood the log
                self._warned = True
                log.warning("cannot notify systemd at %r: %s", self.address.replace("\0", "@"), exc)
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *([f"STATUS={status}"] if status else []), f"MAINPID={os.getpid()}")

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str = "") -> bool:
        return self.send("STOPPING=1", *([f"STATUS={status}"] if status else []))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval() -> float | None:
    """Seconds within which ``WATCHDOG=1`` must be sent, or None when no watchdog is set for us."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000
