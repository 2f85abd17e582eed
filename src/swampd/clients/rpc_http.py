"""The XML-RPC client's own HTTP/1.1 transport: one kept-alive socket, one write per call.

``xmlrpc.client.Transport`` over ``http.client`` costs more client CPU than
the daemon's answer takes to compute: a write per header, a buffered line
reader, and an ``email`` parser for the response headers.  This transport
writes the request line, headers and body with one ``sendall``, reads the
response with a small strict HTTP/1.1 parser (status line, headers,
``Content-Length``, ``chunked``, or the body up to the connection's end) and
reads the body with :mod:`swampd.clients.rpc_reply`.

It keeps what callers rely on from the standard transport: the socket
timeout, ``ProtocolError`` on any status but 200, ``Fault`` raised as it is,
and a second attempt -- exactly when ``xmlrpc.client.Transport.request``
makes one -- when a kept-alive connection turns out to be closed.  Heads and
bodies have a size cap, so a hostile server cannot make a client use
unbounded memory; a response the parser refuses raises :class:`BadResponse`
(a ``ProtocolError`` and an ``http.client.HTTPException``).  The bearer
token goes into the request bytes and nowhere else.
"""
from __future__ import annotations

import errno
import http.client
import re
import socket
import xmlrpc.client
from typing import Any

from swampd.clients import rpc_reply

#: The largest response head (status line and headers) read.
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
#: The largest response body read (listRuns with every run on record stays far below it).
MAX_BODY_BYTES = 256 * 1024 * 1024
_RECV_BYTES = 64 * 1024

_STATUS = rb"HTTP/1\.([01]) ([0-9]{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?"
_FIELD = rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):([^\r\n]*)\r\n"
#: A whole head: status line, then header fields, each ending in CRLF (no folding, no bare CR or LF).
_HEAD_RE = re.compile(_STATUS + rb"\r\n((?:" + _FIELD.replace(b"(", b"(?:") + rb")*)")
_FIELD_RE = re.compile(_FIELD)
_ILLEGAL_RE = re.compile(r"[\x00-\x20\x7f]")
_RETRY_ERRNOS = (errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE)


class BadResponse(xmlrpc.client.ProtocolError, http.client.HTTPException):
    """The server's answer is not HTTP this client reads (malformed, too large, or cut short)."""

    def __init__(self, url: str, message: str, status: int = 0) -> None:
        super().__init__(url, status, message, {})


class KeepAliveTransport(xmlrpc.client.Transport):
    """XML-RPC over plain HTTP or a Unix socket (``unix_path``) on one kept-alive connection."""

    def __init__(self, timeout: float, token: str | None = None, unix_path: str | None = None,
                 max_body: int = MAX_BODY_BYTES) -> None:
        super().__init__()
        if token and _ILLEGAL_RE.search(token):
            raise ValueError("the bearer token holds spaces or control characters")
        self._timeout, self._unix_path, self._max_body = timeout, unix_path, max_body
        self._auth = f"Authorization: Bearer {token}\r\n".encode("latin-1") if token else b""
        self._sock: socket.socket | None = None
        self._sock_host: Any = None
        self._head = b""
        self._buffer = b""

    # -- xmlrpc.client.Transport ------------------------------------------
    def request(self, host: Any, handler: str, request_body: bytes, verbose: bool = False) -> tuple[Any, ...]:
        # A second attempt exactly when xmlrpc.client.Transport.request makes one: the server
        # closed the connection before answering, or reset it.
        for attempt in (0, 1):
            try:
                return self.single_request(host, handler, request_body, verbose)
            except http.client.RemoteDisconnected:
                if attempt:
                    raise
            except OSError as exc:
                if attempt or exc.errno not in _RETRY_ERRNOS:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def single_request(self, host: Any, handler: str, request_body: bytes,
                       verbose: bool = False) -> tuple[Any, ...]:
        url = f"{host}{handler}" if isinstance(host, str) else str(handler)
        try:
            sock, head = self._connect(host)
            if _ILLEGAL_RE.search(handler):
                raise http.client.InvalidURL(f"URL can't contain control characters: {handler!r}")
            sock.sendall(b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
                handler.encode("ascii"), head, self._auth, len(request_body), request_body))
            status, reason, headers, body = self._read_response(sock, url)
            if status == 200:
                return rpc_reply.loads(body)
        except xmlrpc.client.Fault:
            raise
        except BaseException:
            # As xmlrpc.client does, and for an interrupt too: a response half read would answer the next call.
            self.close()
            raise
        raise xmlrpc.client.ProtocolError(url, status, reason, headers)

    def close(self) -> None:
        sock, self._sock, self._sock_host, self._buffer = self._sock, None, None, b""
        if sock is not None:
            sock.close()

    # -- the connection ----------------------------------------------------
    def _connect(self, host: Any) -> tuple[socket.socket, bytes]:
        if self._sock is not None and host == self._sock_host:
            return self._sock, self._head
        self.close()
        chost, extra, _ = self.get_host_info(host)
        if _ILLEGAL_RE.search(chost):
            raise http.client.InvalidURL(f"host can't contain control characters: {chost!r}")
        try:
            host_header = chost.encode("ascii")
        except UnicodeEncodeError:
            host_header = chost.encode("idna")
        lines = [b"Host: " + host_header, b"Accept-Encoding: identity", b"Content-Type: text/xml",
                 b"User-Agent: " + self.user_agent.encode("latin-1")]
        lines += [f"{name}: {value}".encode("latin-1") for name, value in self._headers + extra]
        self._head = b"\r\n".join(lines) + b"\r\n"
        if self._unix_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self._timeout)
            try:
                sock.connect(self._unix_path)
            except OSError:
                sock.close()
                raise
        else:
            sock = socket.create_connection(_host_port(chost), self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._sock_host, self._buffer = sock, host, b""
        return sock, self._head

    # -- the response ------------------------------------------------------
    def _read_response(self, sock: socket.socket, url: str) -> tuple[int, str, dict[str, str], bytes]:
        """Status, reason, headers and body of one response; the socket is closed after it if it must."""
        for _ in range(MAX_HEADERS):
            minor, status, reason, fields = self._read_head(sock, url)
            if not 100 <= status < 200 or status == 101:
                break  # an interim 1xx (100 Continue) is skipped, as http.client does
        else:
            raise BadResponse(url, f"more than {MAX_HEADERS} interim responses")
        length: bytes | None = None
        chunked, connection = False, set[bytes]()
        for name, value in fields:
            name, value = name.lower(), value.strip(b" \t")
            if name == b"content-length":
                if length is not None and value != length:
                    raise BadResponse(url, "more than one Content-Length", status)
                length = value
            elif name == b"connection":
                connection.update(token.strip(b" \t").lower() for token in value.split(b","))
            elif name == b"transfer-encoding":
                if chunked or value.lower() != b"chunked":
                    raise BadResponse(url, f"Transfer-Encoding {value[:40]!r} (only one chunked is read)", status)
                chunked = True
            elif name == b"content-encoding" and value.lower() not in (b"", b"identity"):
                raise BadResponse(url, f"Content-Encoding {value[:40]!r} was not asked for", status)
        # HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 only when asked to keep it.
        keep = b"close" not in connection and (minor == 1 or b"keep-alive" in connection)
        if status in (204, 304):
            body = b""
        elif chunked:
            if length is not None:
                raise BadResponse(url, "both Transfer-Encoding and Content-Length", status)
            body = self._read_chunked(sock, url)
        elif length is not None:
            if not (length.isdigit() and len(length) <= 15):
                raise BadResponse(url, f"Content-Length {length[:40]!r} is not a number", status)
            body = self._read_exactly(sock, int(length), url)
        else:
            body, keep = self._read_to_end(sock, url), False
        if self._buffer:
            keep = False  # bytes beyond the response: the connection is out of step
        if not keep:
            self.close()
        if status != 200:
            headers = {name.decode("latin-1"): value.strip(b" \t").decode("latin-1") for name, value in fields}
            return status, reason.decode("latin-1"), headers, body
        return status, "", {}, body

    def _read_head(self, sock: socket.socket, url: str) -> tuple[int, int, bytes, list[tuple[bytes, bytes]]]:
        """HTTP minor version, status, reason and (name, value) fields of the next response head."""
        buffer, start = self._buffer, 0
        while (end := buffer.find(b"\r\n\r\n", start)) < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise BadResponse(url, f"response head larger than {MAX_HEAD_BYTES} bytes")
            chunk = sock.recv(_RECV_BYTES)
            if not chunk:
                if not buffer:
                    raise http.client.RemoteDisconnected("Remote end closed connection without response")
                raise BadResponse(url, "connection closed in the middle of the response head")
            start = max(0, len(buffer) - 3)
            buffer = buffer + chunk if buffer else chunk
        if end > MAX_HEAD_BYTES:
            raise BadResponse(url, f"response head larger than {MAX_HEAD_BYTES} bytes")
        self._buffer = buffer[end + 4:]
        head = _HEAD_RE.fullmatch(buffer, 0, end + 2)
        if head is None:
            line = buffer[:buffer.find(b"\r\n") + 2]
            if _HEAD_RE.fullmatch(line) is None:
                raise BadResponse(url, f"malformed status line {line[:-2][:80]!r}")
            raise BadResponse(url, "malformed header field (or folded, or with a bare CR or LF)")
        fields = _FIELD_RE.findall(head.group(4))
        if len(fields) > MAX_HEADERS:
            raise BadResponse(url, f"more than {MAX_HEADERS} header fields")
        return int(head.group(1)), int(head.group(2)), head.group(3) or b"", fields

    def _read_exactly(self, sock: socket.socket, length: int, url: str) -> bytes:
        if length > self._max_body:
            raise BadResponse(url, f"response body of {length} bytes is larger than {self._max_body}")
        buffer = self._buffer
        if len(buffer) < length:
            parts, have = [buffer], len(buffer)
            while have < length:
                chunk = sock.recv(min(length - have, _RECV_BYTES * 4))
                if not chunk:
                    raise BadResponse(url, f"connection closed after {have} of {length} body bytes")
                parts.append(chunk)
                have += len(chunk)
            buffer = b"".join(parts)
        self._buffer = buffer[length:]
        return buffer[:length]

    def _read_line(self, sock: socket.socket, url: str, limit: int = 4096) -> bytes:
        buffer = self._buffer
        while (end := buffer.find(b"\r\n")) < 0:
            if len(buffer) > limit:
                raise BadResponse(url, "chunk size line too long")
            chunk = sock.recv(_RECV_BYTES)
            if not chunk:
                raise BadResponse(url, "connection closed in the middle of a chunked body")
            buffer += chunk
        self._buffer = buffer[end + 2:]
        return buffer[:end]

    def _read_chunked(self, sock: socket.socket, url: str) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._read_line(sock, url).split(b";", 1)[0].strip(b" \t")
            if not size_text or len(size_text) > 15 or size_text.strip(b"0123456789abcdefABCDEF"):
                raise BadResponse(url, f"malformed chunk size {size_text[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > self._max_body:
                raise BadResponse(url, f"chunked response body larger than {self._max_body} bytes")
            parts.append(self._read_exactly(sock, size, url))
            if self._read_line(sock, url) != b"":
                raise BadResponse(url, "chunk not followed by CRLF")
        trailers = 0
        while self._read_line(sock, url) != b"":  # trailer fields, ignored
            trailers += 1
            if trailers > MAX_HEADERS:
                raise BadResponse(url, f"more than {MAX_HEADERS} trailer fields")
        return b"".join(parts)

    def _read_to_end(self, sock: socket.socket, url: str) -> bytes:
        parts, have = [self._buffer], len(self._buffer)
        self._buffer = b""
        while chunk := sock.recv(_RECV_BYTES):
            have += len(chunk)
            if have > self._max_body:
                raise BadResponse(url, f"response body larger than {self._max_body} bytes")
            parts.append(chunk)
        return b"".join(parts)


def _host_port(host: str) -> tuple[str, int]:
    """``host[:port]`` (IPv6 in brackets) as http.client reads it; port 80 when none is given."""
    colon, bracket = host.rfind(":"), host.rfind("]")
    port = 80
    if colon > bracket:
        digits = host[colon + 1:]
        if digits:
            if not digits.isdigit() or not digits.isascii():
                raise http.client.InvalidURL(f"nonnumeric port: '{digits}'")
            port = int(digits)
        host = host[:colon]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port
