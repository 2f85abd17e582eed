"""Request bodies as they arrive: undo a Content-Encoding, never past a size cap.

Perl's ``RPC::XML::Client`` (SWAMP's own client) deflates requests over 4 KiB
when Compress::Zlib is installed, which it is wherever Perl is; other
clients gzip.  A compressed body is inflated piece by piece with the output
capped, so a small "zip bomb" cannot grow past ``max_request_bytes``.
"""
from __future__ import annotations

import zlib

from swampd.agentmonitor.transport.httpwire import HttpError

#: Content-Encoding -> zlib window bits (zlib container, gzip container).
_WBITS = {"deflate": 15, "gzip": 31, "x-gzip": 31}


class BodyDecoder:
    """Turns raw body pieces into document bytes; raises HttpError(413) past ``limit``."""

    def __init__(self, content_encoding: str, limit: int) -> None:
        encoding = content_encoding.strip().lower()
        self.limit = limit
        self.produced = 0
        self._inflater = None
        if encoding in ("", "identity"):
            return
        if encoding not in _WBITS:
            raise HttpError(415, f"Content-Encoding {encoding[:40]!r} is not accepted (identity, deflate, gzip)")
        self._inflater = zlib.decompressobj(_WBITS[encoding])
        self._raw_deflate = encoding == "deflate"
        self._started = False

    def decode(self, data: bytes) -> bytes:
        if self._inflater is None:
            return self._count(data)
        if not self._started and self._raw_deflate and data:
            self._started = True
            if (data[0] & 0x0F) != 8:  # some clients send "deflate" without the zlib header
                self._inflater = zlib.decompressobj(-15)
        out = bytearray()
        try:
            chunk = self._inflater.decompress(data, self.limit - self.produced + 1)
            out += self._count(chunk)
            while self._inflater.unconsumed_tail:
                chunk = self._inflater.decompress(self._inflater.unconsumed_tail, self.limit - self.produced + 1)
                out += self._count(chunk)
        except zlib.error as exc:
            raise HttpError(400, f"the compressed body cannot be inflated: {exc}") from None
        return bytes(out)

    def finish(self) -> bytes:
        if self._inflater is None:
            return b""
        try:
            return self._count(self._inflater.flush())
        except zlib.error as exc:
            raise HttpError(400, f"the compressed body cannot be inflated: {exc}") from None

    def _count(self, data: bytes) -> bytes:
        self.produced += len(data)
        if self.produced > self.limit:
            raise HttpError(413, f"request body over {self.limit} bytes")
        return data
