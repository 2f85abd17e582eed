"""XML-RPC values written as ``xmlrpc.client``'s Marshaller writes them, byte for byte, in one pass.

Why: the Marshaller dispatches every value through a bound method and a dict
of types, escapes with three ``replace`` calls and appends a fragment at a
time; for the small structs swampd's calls and answers carry that was most
of a cheap call's time, on both sides (the daemon's answers, the clients'
requests).  ``write`` handles the plain types (str, int, bool, float, and
dicts, lists and tuples of them) and raises ``Decline`` for anything else: a
value off that path (None, bytes, DateTime, a subclass such as an IntEnum,
a key that is not a str, an int beyond 32 bits, a structure too deep or
holding itself), which the caller then hands whole to ``xmlrpc.client``, so
output and errors stay the standard library's.
"""
from __future__ import annotations

import xmlrpc.client
from typing import Any

#: Deeper than this, xmlrpc.client writes it (and finds a self-reference).
MAX_DEPTH = 64


class Decline(Exception):
    """A value this writer leaves to xmlrpc.client."""


def escape(text: str) -> str:
    if "&" in text or "<" in text or ">" in text:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text


def write(value: Any, out: list[str], depth: int = 0) -> None:
    """Append ``value``'s ``<value>`` element to ``out``; Decline when it is off the fast path."""
    kind = type(value)
    if kind is str:
        out.append(f"<value><string>{escape(value)}</string></value>\n")
    elif kind is bool:
        out.append("<value><boolean>1</boolean></value>\n" if value else "<value><boolean>0</boolean></value>\n")
    elif kind is int:
        if not xmlrpc.client.MININT <= value <= xmlrpc.client.MAXINT:
            raise Decline("int beyond XML-RPC's range")  # xmlrpc.client raises its OverflowError
        out.append(f"<value><int>{value}</int></value>\n")
    elif kind is float:
        out.append(f"<value><double>{value!r}</double></value>\n")
    elif depth >= MAX_DEPTH:
        raise Decline("too deep")
    elif kind is dict:
        out.append("<value><struct>\n")
        for key, item in value.items():
            if type(key) is not str:
                raise Decline("a key that is not a str")
            out.append(f"<member>\n<name>{escape(key)}</name>\n")
            write(item, out, depth + 1)
            out.append("</member>\n")
        out.append("</struct></value>\n")
    elif kind is list or kind is tuple:
        out.append("<value><array><data>\n")
        for item in value:
            write(item, out, depth + 1)
        out.append("</data></array></value>\n")
    else:
        raise Decline(kind.__name__)
