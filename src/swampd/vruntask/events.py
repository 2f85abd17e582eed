"""Following the files a viewer machine writes: the events file and the IP file.

The guest's serial ports append to ``out/job_events.log`` and
``out/job_ip_address.txt`` ("tty to file").  The follower reads only what is
new, keeps a partial last line until its newline arrives, starts over when
the file is truncated or replaced, and waits quietly while the file does not
exist yet.  Event lines are cleaned as SWAMP's monitor cleaned them (every
character but letters and digits dropped, so CRLF and tty noise vanish).
"""
from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

EVENTS_FILE = "job_events.log"
IP_FILE = "job_ip_address.txt"
#: SWAMP's viewer port; a bare IP in the IP file means this port.
DEFAULT_VIEWER_PORT = 8443
_NOT_ALNUM = re.compile(r"[^A-Za-z0-9]")


class LineFollower:
    """Yields complete new lines appended to a file, surviving truncation and late creation.

    Each line comes with the file offset just past its newline, so a reader
    can tell which lines were written before some moment (``size``);
    ``generation`` counts the times the file was found replaced or
    truncated, after which offsets start again from 0.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.generation = 0
        self._offset = 0
        self._inode: int | None = None
        self._partial = b""

    @property
    def position(self) -> int:
        """How many bytes of the current file have been read (a held partial line included)."""
        return self._offset

    def size(self) -> int:
        """How far the file reaches now (0 when it does not exist yet)."""
        try:
            return os.stat(self.path).st_size
        except OSError:
            return 0

    def read_new(self) -> list[tuple[str, int]]:
        """The complete lines appended since the last read, each with the offset just past it."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return []
        try:
            st = os.fstat(fd)
            if self._inode is not None and (st.st_ino != self._inode or st.st_size < self._offset):
                self._offset, self._partial = 0, b""  # replaced or truncated: read it again
                self.generation += 1
            self._inode = st.st_ino
            os.lseek(fd, self._offset, os.SEEK_SET)
            chunks = []
            while True:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            data = b"".join(chunks)
        finally:
            os.close(fd)
        end = self._offset - len(self._partial)
        self._offset += len(data)
        *complete, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > 65536:  # a line that never ends is noise
            self._partial = b""
        lines = []
        for raw in complete:
            end += len(raw) + 1
            lines.append((raw.decode("utf-8", "replace"), end))
        return lines


def clean_event(line: str) -> str:
    """The event name in a line, as SWAMP's monitor read it."""
    return _NOT_ALNUM.sub("", line)


def parse_address(text: str) -> str | None:
    """``ip:port`` from an IP-file line, or None when it holds no usable address.

    A bare IPv4 address gets SWAMP's viewer port; ``host:port`` is kept when
    host is an IP address and port a valid port.
    """
    value = text.strip().strip("\x00").strip()
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = value, str(DEFAULT_VIEWER_PORT)
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
        port_number = int(port)
    except ValueError:
        return None
    if not 0 < port_number < 65536 or ip.is_unspecified or ip.is_multicast:
        return None
    shown = f"[{ip}]" if ip.version == 6 else str(ip)
    return f"{shown}:{port_number}"


def read_address(path: Path) -> str | None:
    """The last valid address written to the IP file, if any."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in reversed(text.splitlines()):
        address = parse_address(line)
        if address:
            return address
    return None
