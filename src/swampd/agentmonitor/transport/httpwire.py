"""HTTP/1.1 request heads, parsed strictly, and the responses we send.

Strict where leniency lets two parties disagree about where a request ends
(request smuggling, issue 9 finding 12): ``Content-Length`` is exactly one
header of ASCII digits, a body without one is refused, header names are
tokens, and obsolete line folding is refused.  Pure functions on bytes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import urlsplit

#: The largest request head (request line and headers) read before a 431.
MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100

_TOKEN_RE = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_VERSION_RE = re.compile(rb"HTTP/(\d)\.(\d)")
_DIGITS_RE = re.compile(rb"[0-9]{1,15}")
_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_CONTROL_RE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

REASONS = {
    100: "Continue", 200: "OK", 204: "No Content", 303: "See Other", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 411: "Length Required", 413: "Content Too Large", 415: "Unsupported Media Type",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}


class HttpError(Exception):
    """The request cannot be served; answer ``status`` with ``message`` and close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class RequestHead:
    method: str
    path: str
    version: tuple[int, int]
    #: Lower-cased header names with their values, in order (names may repeat).
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: The target's query string, without the '?' ('' when none).
    query: str = ""

    def values(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]

    def get(self, name: str, default: str = "") -> str:
        found = self.values(name)
        return found[0] if found else default

    def connection_tokens(self) -> set[str]:
        return {t.strip().lower() for v in self.values("connection") for t in v.split(",") if t.strip()}

    @property
    def keep_alive(self) -> bool:
        """HTTP/1.1 keeps the connection unless told to close; 1.0 only when asked."""
        tokens = self.connection_tokens()
        if self.version >= (1, 1):
            return "close" not in tokens
        return "keep-alive" in tokens

    @property
    def expects_continue(self) -> bool:
        return self.version >= (1, 1) and self.get("expect").strip().lower() == "100-continue"

    def content_length(self) -> int:
        """The body length: exactly one ``Content-Length`` of plain digits, else an HttpError."""
        if self.values("transfer-encoding"):
            raise HttpError(411, "a Content-Length is required (Transfer-Encoding is not accepted)")
        values = self.values("content-length")
        if not values:
            raise HttpError(411, "a Content-Length is required")
        if len(values) > 1:
            raise HttpError(400, "more than one Content-Length header")
        raw = values[0].strip(" \t").encode("latin-1")
        if _DIGITS_RE.fullmatch(raw) is None:
            raise HttpError(400, "Content-Length must be a number of ASCII digits")
        return int(raw)


def head_end(buffer: bytes | bytearray) -> int:
    """Index just past the blank line ending the head in ``buffer``, or -1 if it has not arrived."""
    match = _HEAD_END_RE.search(buffer)
    return match.end() if match else -1


def parse_head(raw: bytes) -> RequestHead:
    """Parse a request line and headers (without the final blank line) or raise HttpError."""
    lines = raw.replace(b"\r\n", b"\n").split(b"\n")
    while lines and not lines[0]:  # RFC 9112 2.2: ignore blank lines before a request line
        lines.pop(0)
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise HttpError(400, "empty request")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise HttpError(400, "malformed request line")
    method, target, version = parts
    if _TOKEN_RE.fullmatch(method) is None:
        raise HttpError(400, "malformed request method")
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        raise HttpError(400, "malformed HTTP version")
    if match.group(1) != b"1":
        raise HttpError(505, "only HTTP/1.x is spoken here")
    head = RequestHead(method.decode("ascii"), _path_of(target), (1, int(match.group(2))), query=_query_of(target))
    if len(lines) - 1 > MAX_HEADERS:
        raise HttpError(431, f"more than {MAX_HEADERS} header fields")
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete header line folding is not accepted")
        name, sep, value = line.partition(b":")
        if not sep or _TOKEN_RE.fullmatch(name) is None:
            raise HttpError(400, "malformed header field")
        if _CONTROL_RE.search(value):
            raise HttpError(400, "control characters in a header value")
        head.headers.append((name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")))
    return head


def _path_of(target: bytes) -> str:
    """The path of an origin-form (``/RPC2``) or absolute-form (``http://h/RPC2``) target."""
    text = target.decode("latin-1")
    if text.startswith(("http://", "https://")):
        text = urlsplit(text).path or "/"
    return text.split("?", 1)[0]


def _query_of(target: bytes) -> str:
    text = target.decode("latin-1")
    return text.split("?", 1)[1] if "?" in text else ""


def response(status: int, body: bytes, content_type: str = "text/xml", close: bool = False,
             extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A complete HTTP/1.1 response, head and body in one buffer (one segment on the wire)."""
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        "Server: swampd",
        f"Date: {formatdate(usegmt=True)}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    lines += [f"{name}: {value}" for name, value in extra]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def plain(status: int, text: str, close: bool = False, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A short text/plain response (HTTP-level errors)."""
    return response(status, f"{text}\n".encode("utf-8"), "text/plain; charset=utf-8", close, extra)


CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
