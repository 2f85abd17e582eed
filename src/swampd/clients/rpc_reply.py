"""An XML-RPC reply read without a callback per XML event; ``xmlrpc.client`` decides the rest.

``xmlrpc.client.loads`` calls Python code for every start tag, end tag and
piece of text, which makes it the larger part of a short call's client CPU.
:func:`loads` reads the layout ``xmlrpc.client.dumps`` writes (what the
daemon sends) with a handful of compound regular expressions instead: a
scalar struct member, for one, is one match.  Anything it does not know for
certain -- other layouts, attributes, comments, character references, a
``\\r`` (which an XML parser normalizes), characters XML forbids, invalid
UTF-8, base64, dateTime, bigdecimal -- goes to ``xmlrpc.client``'s own
parser, so the result, the ``Fault`` and the error on garbage are always
the reference's.  Pure functions, standard library only.
"""
from __future__ import annotations

import functools
import re
import xmlrpc.client
from collections.abc import Iterable
from typing import Any

_WS = r"[ \t\n]*"
#: Text an XML parser passes on unchanged: no markup, no CR (it would be normalized), no C0 control
#: (it would be refused).  U+FFFE, U+FFFF and "]]>" are looked for separately (cheaper to compile).
_TEXT = "[^<\x00-\x08\x0b\x0c\r\x0e-\x1f]*"
_SCALAR_TYPES = "string|int|i4|i8|i1|i2|biginteger|boolean|double|float"
#: One struct member with a scalar value: (key, type, text) from findall.
_MEMBER_ONE = re.compile(rf"{_WS}<member>{_WS}<name>({_TEXT})</name>{_WS}"
                         rf"<value><({_SCALAR_TYPES})>({_TEXT})</\2></value>{_WS}</member>")
#: The commonest reply, one struct of scalar members (a viewer, a run), around its members.
_STRUCT_OPEN = re.compile(
    rf"<\?xml version=(['\"])1\.0\1\?>{_WS}<methodResponse>{_WS}<params>{_WS}<param>{_WS}<value><struct>")
_STRUCT_CLOSE = re.compile(rf"{_WS}</struct></value>{_WS}</param>{_WS}</params>{_WS}</methodResponse>{_WS}")
_ENTITIES = {"lt;": "<", "gt;": ">", "amp;": "&", "quot;": '"', "apos;": "'"}
_BOOLEANS = {"0": False, "1": True}


@functools.lru_cache(maxsize=None)
def _general() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The start of any reply, and its tokens; compiled on first need (a short-lived client may never)."""
    head = re.compile(rf"<\?xml version=(['\"])1\.0\1\?>{_WS}<methodResponse>{_WS}(?:(?P<params><params>)|<fault>)")
    token = re.compile(
        _WS + "(?:"
        rf"<member>{_WS}<name>(?P<okey>{_TEXT})</name>"  # a member whose value follows
        rf"|<value><(?P<stype>{_SCALAR_TYPES})>(?P<stext>{_TEXT})</(?P=stype)></value>"
        rf"|<value>(?P<untyped>{_TEXT})</value>"
        r"|<value><nil/>(?P<nil>)</value>"
        r"|(?P<cmember></member>)"
        r"|<value><struct>(?P<ostruct>)"
        r"|(?P<cstruct></struct></value>)"
        rf"|<value><array>{_WS}<data>(?P<oarray>)"
        rf"|</data>{_WS}(?P<carray></array></value>)"
        r"|(?P<oparam><param>)"
        r"|(?P<cparam></param>)"
        rf"|</params>{_WS}</methodResponse>{_WS}(?P<end>)\Z"
        rf"|</fault>{_WS}</methodResponse>{_WS}(?P<fend>)\Z"
        ")")
    return head, token


# Where a value goes: what the context expects next.
_PARAMS, _PARAM, _PARAM_DONE, _FAULT, _FAULT_DONE, _ARRAY, _STRUCT, _MEMBER_VALUE, _MEMBER_DONE = range(9)


class _Decline(Exception):
    """Not a layout this reader knows for certain; let xmlrpc.client read it."""


def loads(data: bytes) -> tuple[Any, ...]:
    """The params of a methodResponse, as ``xmlrpc.client.loads(data)[0]``; a fault raises ``Fault``."""
    try:
        return _read(data)
    except xmlrpc.client.Fault:
        raise
    except Exception:  # noqa: BLE001 - anything unexpected: the reference parser decides
        return xmlrpc.client.loads(data)[0]


def _text(raw: str) -> str:
    if "&" not in raw:
        return raw
    first, *rest = raw.split("&")
    out = [first]
    for piece in rest:
        name = piece[:piece.find(";") + 1]
        if name not in _ENTITIES:
            raise _Decline(name)  # a character reference or an unknown entity
        out.append(_ENTITIES[name])
        out.append(piece[len(name):])
    return "".join(out)


def _scalar(kind: str, raw: str) -> Any:
    if kind == "string":
        return _text(raw)
    if kind == "boolean":
        return _BOOLEANS[raw]
    if kind == "double" or kind == "float":
        return float(raw)
    return int(raw)


def _read(data: bytes) -> tuple[Any, ...]:
    text = data.decode("utf-8")
    if "]]>" in text or "\ufffe" in text or "\uffff" in text:
        raise _Decline("text an XML parser changes or refuses")
    # [before, key, type, text, between, key, type, text, ..., after]: one scan for the commonest reply.
    parts = _MEMBER_ONE.split(text)
    if (len(parts) > 1 and not any(parts[4:-1:4]) and _STRUCT_OPEN.fullmatch(parts[0])
            and _STRUCT_CLOSE.fullmatch(parts[-1])):
        struct: dict[str, Any] = {}
        _fill(struct, zip(parts[1::4], parts[2::4], parts[3::4]), "&" in text)
        return (struct,)
    head_re, token_re = _general()
    head = head_re.match(text)
    if head is None:
        raise _Decline("not the layout xmlrpc.client.dumps writes")
    params: list[Any] = []
    fault: Any = None
    # Open containers, innermost last: (what the outer context expects, its container, its key).
    stack: list[tuple[int, Any, str]] = []
    expects = _PARAMS if head.group("params") else _FAULT
    container: Any = params
    key = ""
    match = token_re.match
    pos = head.end()
    while True:
        token = match(text, pos)
        if token is None:
            raise _Decline(f"unexpected text at {pos}")
        pos = token.end()
        which = token.lastgroup
        if which == "ostruct":
            stack.append((expects, container, key))
            expects, container = _STRUCT, {}
            scan = _MEMBER_ONE.scanner(text, pos).match  # scalar members, one after the other
            while (member := scan()) is not None:
                name, kind, raw = member.groups()
                container[_text(name)] = _scalar(kind, raw)
                pos = member.end()
            continue
        if which == "okey":
            if expects != _STRUCT:
                raise _Decline("member outside a struct")
            key, expects = _text(token.group("okey")), _MEMBER_VALUE
            continue
        if which == "cmember":
            if expects != _MEMBER_DONE:
                raise _Decline("unbalanced member")
            expects = _STRUCT
            continue
        if which == "oarray":
            stack.append((expects, container, key))
            expects, container = _ARRAY, []
            continue
        if which == "oparam":
            if expects != _PARAMS:
                raise _Decline("param outside params")
            expects = _PARAM
            continue
        if which == "cparam":
            if expects != _PARAM_DONE:
                raise _Decline("unbalanced param")
            expects = _PARAMS
            continue
        if which == "end":
            if expects != _PARAMS or stack:
                raise _Decline("unbalanced params")
            return tuple(params)
        if which == "fend":
            if expects != _FAULT_DONE or stack:
                raise _Decline("unbalanced fault")
            raise xmlrpc.client.Fault(**fault)
        # What is left is a value: a scalar, or a struct or array that closes.
        if which == "stext":
            value = _scalar(token.group("stype"), token.group("stext"))
        elif which == "cstruct" or which == "carray":
            if expects != (_STRUCT if which == "cstruct" else _ARRAY):
                raise _Decline("unbalanced struct or array")
            value = container
            expects, container, key = stack.pop()
        elif which == "untyped":
            value = _text(token.group("untyped"))
        elif which == "nil":
            value = None
        else:  # pragma: no cover - every alternative is handled above
            raise _Decline("unknown token")
        if expects == _ARRAY:
            container.append(value)
        elif expects == _MEMBER_VALUE:
            container[key] = value
            expects = _MEMBER_DONE
        elif expects == _PARAM:
            params.append(value)
            expects = _PARAM_DONE
        elif expects == _FAULT:
            fault, expects = value, _FAULT_DONE
        else:
            raise _Decline("a value where none belongs")


def _fill(struct: dict[str, Any], members: Iterable[tuple[str, str, str]], escaped: bool) -> None:
    """Scalar members found by one findall, into ``struct`` in order (a repeated key: the last wins)."""
    if escaped:
        for key, kind, raw in members:
            struct[_text(key)] = _scalar(kind, raw)
        return
    for key, kind, raw in members:
        struct[key] = raw if kind == "string" else _scalar(kind, raw)
