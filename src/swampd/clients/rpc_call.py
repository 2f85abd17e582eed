"""An XML-RPC call written without ``xmlrpc.client``'s Marshaller, byte for byte the same.

``xmlrpc.client.dumps`` dispatches every value through a bound method and a
dict of types.  :func:`dumps` writes the plain types our calls carry (str,
int, bool, float, and lists, tuples and dicts of them) directly, and hands
anything else -- None, bytes, DateTime, subclasses such as an IntEnum, a
too deep or self-referencing structure -- to ``xmlrpc.client.dumps``,
so errors and every other type stay the reference's.
"""
from __future__ import annotations

import xmlrpc.client
from typing import Any

#: Deeper than this, xmlrpc.client writes it (and finds a self-reference).
_MAX_DEPTH = 64


class _Decline(Exception):
    """A value this writer leaves to xmlrpc.client."""


def dumps(params: tuple[Any, ...], methodname: str) -> bytes:
    """``xmlrpc.client.dumps(params, methodname).encode("utf-8", "xmlcharrefreplace")``."""
    out = ["<?xml version='1.0'?>\n<methodCall>\n<methodName>", methodname, "</methodName>\n<params>\n"]
    try:
        for value in params:
            out.append("<param>\n")
            _dump(value, out, 0)
            out.append("</param>\n")
    except _Decline:
        return xmlrpc.client.dumps(params, methodname).encode("utf-8", "xmlcharrefreplace")
    out.append("</params>\n</methodCall>\n")
    return "".join(out).encode("utf-8", "xmlcharrefreplace")


def _escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def _dump(value: Any, out: list[str], depth: int) -> None:
    kind = type(value)
    if kind is str:
        out.append(f"<value><string>{_escape(value)}</string></value>\n")
    elif kind is bool:
        out.append("<value><boolean>1</boolean></value>\n" if value else "<value><boolean>0</boolean></value>\n")
    elif kind is int:
        if not xmlrpc.client.MININT <= value <= xmlrpc.client.MAXINT:
            raise _Decline("int beyond XML-RPC's range")  # xmlrpc.client raises its OverflowError
        out.append(f"<value><int>{value}</int></value>\n")
    elif kind is float:
        out.append(f"<value><double>{value!r}</double></value>\n")
    elif depth >= _MAX_DEPTH:
        raise _Decline("too deep")
    elif kind is dict:
        out.append("<value><struct>\n")
        for key, item in value.items():
            if type(key) is not str:
                raise _Decline("a key that is not a str")
            out.append(f"<member>\n<name>{_escape(key)}</name>\n")
            _dump(item, out, depth + 1)
            out.append("</member>\n")
        out.append("</struct></value>\n")
    elif kind is list or kind is tuple:
        out.append("<value><array><data>\n")
        for item in value:
            _dump(item, out, depth + 1)
        out.append("</data></array></value>\n")
    else:
        raise _Decline(kind.__name__)
