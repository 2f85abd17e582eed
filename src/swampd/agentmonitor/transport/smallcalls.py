"""Small XML-RPC calls in the exact layout xmlrpc.client writes, read without expat.

Every call of swampd's clients, and of most XML-RPC clients, is a few
hundred bytes in ``xmlrpc.client``'s layout, and ``CallReader`` (expat, an
element handler per tag, each value checked) cost a launch about a tenth of
the daemon's time spent on its two calls.  ``read_small`` reads a body that
is in that very layout, with only strings, 32-bit ints, booleans and structs
of them, in one pass of a few regular expressions; it answers None for
anything else, which ``CallReader`` then reads as before.  It accepts a
strict subset of what ``CallReader`` accepts and must give the same answer:
no entity or character reference (an ``&`` declines), no ``>`` (so no
``]]>``), no carriage return (XML would normalise it), no character XML
forbids, valid UTF-8 only, ints of at most nine digits (never out of range),
and the method name ``CallReader`` allows.

``SmallFirstReader`` has ``CallReader``'s interface: it holds a body of up to
``SMALL_BODY`` bytes and tries ``read_small`` at its end; a larger body is
handed to a ``CallReader`` as it arrives, so big bodies are still never held
whole.
"""
from __future__ import annotations

import re
from typing import Any

from swampd.agentmonitor.transport.xmlrpcwire import CallReader

#: Bodies up to this size are held and read the fast way if they can be.
SMALL_BODY = 8192

_TEXT = "[^<>&\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]*"
_HEAD = re.compile(r"<\?xml version='1\.0'\?>\n<methodCall>\n<methodName>([A-Za-z0-9_.:/]{1,256})</methodName>\n"
                   r"<params>\n")
_SCALAR = re.compile(rf"<value><(?:string>({_TEXT})</string|int>(-?[0-9]{{1,9}})</int|boolean>([01])</boolean)>"
                     r"</value>\n")
_MEMBER = re.compile(rf"<member>\n<name>({_TEXT})</name>\n")
_PARAM = "<param>\n"
_PARAM_END = "</param>\n"
_STRUCT = "<value><struct>\n"
_STRUCT_END = "</struct></value>\n"
_MEMBER_END = "</member>\n"
_TAIL = "</params>\n</methodCall>\n"


def read_small(body: bytes) -> tuple[str, tuple[Any, ...]] | None:
    """(method name, params) of a body in xmlrpc.client's layout with plain values; None otherwise."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    head = _HEAD.match(text)
    if head is None:
        return None
    at = head.end()
    params: list[Any] = []
    while text.startswith(_PARAM, at):
        at += len(_PARAM)
        if text.startswith(_STRUCT, at):
            at += len(_STRUCT)
            struct: dict[str, Any] = {}
            while (member := _MEMBER.match(text, at)) is not None:
                value, at = _scalar(text, member.end())
                if value is _NONE or not text.startswith(_MEMBER_END, at):
                    return None
                struct[member.group(1)] = value
                at += len(_MEMBER_END)
            if not text.startswith(_STRUCT_END, at):
                return None
            at += len(_STRUCT_END)
            params.append(struct)
        else:
            value, at = _scalar(text, at)
            if value is _NONE:
                return None
            params.append(value)
        if not text.startswith(_PARAM_END, at):
            return None
        at += len(_PARAM_END)
    if text[at:] != _TAIL:
        return None
    return head.group(1), tuple(params)


_NONE = object()


def _scalar(text: str, at: int) -> tuple[Any, int]:
    match = _SCALAR.match(text, at)
    if match is None:
        return _NONE, at
    string, number, boolean = match.groups()
    if string is not None:
        return string, match.end()
    if number is not None:
        return int(number), match.end()
    return boolean == "1", match.end()


class SmallFirstReader:
    """``CallReader``'s interface: a small body is read by ``read_small`` when it can be, anything else
    by a ``CallReader``."""

    def __init__(self) -> None:
        self._held = bytearray()
        self._reader: CallReader | None = None

    def feed(self, data: bytes) -> None:
        if self._reader is None:
            self._held += data
            if len(self._held) <= SMALL_BODY:
                return
            self._reader, held = CallReader(), bytes(self._held)
            self._held = bytearray()
            self._reader.feed(held)
            return
        self._reader.feed(data)

    def close(self) -> tuple[str, tuple[Any, ...]]:
        if self._reader is None:
            call = read_small(bytes(self._held))
            if call is not None:
                return call
            self._reader = CallReader()
            self._reader.feed(bytes(self._held))
            self._held = bytearray()
        return self._reader.close()
