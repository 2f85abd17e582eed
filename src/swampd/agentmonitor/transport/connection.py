"""One client connection as the event loop sees it: where it is in a request, and its buffers.

A connection moves HANDSHAKE (TLS only) -> HEAD -> [WAIT_SLOT ->] BODY ->
DISPATCHED -> WRITE -> HEAD (kept alive) or closed.  Body bytes go through
the decoder into the incremental XML-RPC reader as they arrive; a request
found bad is remembered and its body still read to the end, so the answer
(fault 1) arrives on a connection that stays usable.
"""
from __future__ import annotations

import enum
import socket
import ssl
from dataclasses import dataclass, field

from swampd.agentmonitor.transport.bodies import BodyDecoder
from swampd.agentmonitor.transport.httpwire import RequestHead
from swampd.agentmonitor.transport.smallcalls import SmallFirstReader
from swampd.agentmonitor.transport.xmlrpcwire import RequestRefused


class FormReader:
    """A small form body, kept whole (the transport caps its size); read like a parsed call."""

    def __init__(self) -> None:
        self.data = bytearray()

    def feed(self, data: bytes) -> None:
        self.data += data

    def close(self) -> tuple[str, tuple[bytes]]:
        return "", (bytes(self.data),)


class Phase(enum.Enum):
    HANDSHAKE = "handshake"    # TLS handshake in progress
    HEAD = "head"              # waiting for / reading a request head
    WAIT_SLOT = "wait-slot"    # a large body waits for its turn (not read meanwhile)
    BODY = "body"              # reading the body into the parser
    DISPATCHED = "dispatched"  # a worker has the call
    WRITE = "write"            # sending the answer
    CLOSED = "closed"


#: What a socket operation that cannot go on now waits for.
WANT_READ, WANT_WRITE = "read", "write"


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    #: Came in on the Unix socket: its file mode already decided who may call.
    trusted: bool
    phase: Phase = Phase.HEAD
    deadline: float = 0.0
    #: True between requests, until the first byte of the next one arrives.
    idle: bool = True
    inbuf: bytearray = field(default_factory=bytearray)
    head: RequestHead | None = None
    remaining: int = 0
    keep_alive: bool = True
    authorized: bool = False
    large: bool = False
    decoder: BodyDecoder | None = None
    reader: SmallFirstReader | FormReader | None = None
    refused: str = ""
    #: The body is a form (the dashboard's login), kept as bytes instead of parsed as XML-RPC.
    form: bool = False
    outbuf: memoryview | None = None
    close_after_write: bool = False
    registered: int = 0

    @property
    def tls(self) -> bool:
        return isinstance(self.sock, ssl.SSLSocket)

    # -- non-blocking socket I/O, plain or TLS ----------------------------------------
    def handshake(self) -> str | None:
        """Advance the TLS handshake: None when done, else WANT_READ/WANT_WRITE; OSError when it failed."""
        try:
            self.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            return WANT_READ
        except ssl.SSLWantWriteError:
            return WANT_WRITE
        return None

    def recv(self, size: int) -> bytes | None:
        """Up to ``size`` bytes; b'' at end of stream (or a reset); None when nothing is there yet."""
        try:
            return self.sock.recv(size)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return None
        except OSError:  # ssl.SSLError (and SSLZeroReturnError) are OSErrors
            return b""

    def send(self, data: memoryview | bytes) -> int | None:
        """Bytes sent, or None when the socket cannot take any now; OSError when the peer is gone."""
        try:
            return self.sock.send(data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return None

    def start_body(self, head: RequestHead, length: int, decoder: BodyDecoder, form: bool = False) -> None:
        self.head, self.remaining, self.decoder, self.form = head, length, decoder, form
        self.reader, self.refused = (FormReader() if form else SmallFirstReader()), ""

    def take_body(self, data: bytes) -> None:
        """Feed body bytes onward; a bad request is remembered, an oversized one raises HttpError."""
        if self.refused or self.reader is None or self.decoder is None:
            return
        try:
            document = self.decoder.decode(data)
            if document:
                self.reader.feed(document)
        except RequestRefused as exc:
            self._refuse(str(exc))

    def finish_body(self) -> tuple[str, tuple] | None:
        """The parsed call once the whole body is in, or None when refused (see ``refused``).

        A compressed body that cannot be inflated, or inflates past the cap, raises HttpError.
        """
        reader, decoder = self.reader, self.decoder
        self.reader = self.decoder = None
        if self.refused or reader is None or decoder is None:
            return None
        try:
            tail = decoder.finish()
            if tail:
                reader.feed(tail)
            return reader.close()
        except RequestRefused as exc:
            self._refuse(str(exc))
            return None

    def _refuse(self, message: str) -> None:
        self.refused = message or "malformed XML-RPC request"
        self.reader = None  # what it parsed so far is garbage now: free it
