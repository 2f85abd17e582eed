"""XML-RPC method calls, read incrementally, with every value checked.

Why not ``xmlrpc.client.Unmarshaller``: it is a response reader.  Fed a
request it breaks on valid input (a request with an ``encoding=`` in its
XML declaration, or none at all, dies in ``str.decode``: issue 9 finding
11), lets invalid values escape as arbitrary exceptions (``<bigdecimal>``,
unbounded ``<int>``), answers a ``<fault>`` sent as a request by echoing it,
and joins the text of each element again at every closing tag, so a large
string is held several times over.

``CallReader`` takes the body in pieces as they arrive (``feed``), so the
raw body is never held whole, keeps only the text of the element being read,
and refuses anything that is not a well-formed ``methodCall`` with a
``RequestRefused`` whose message says what is wrong — never a traceback.
Encodings are expat's: UTF-8, UTF-16, ISO-8859-1 and US-ASCII natively, and
Python's single-byte codecs (windows-1252, ISO-8859-15, ...) through pyexpat.
DOCTYPEs and entity declarations are refused: XML-RPC needs neither, and
they are how entity-expansion bombs and external entities get in.
"""
from __future__ import annotations

import base64
import binascii
import math
import re
import xmlrpc.client
from decimal import Decimal, InvalidOperation
from typing import Any, Callable
from xml.parsers import expat

#: Nested arrays and structs allowed in one value.
MAX_DEPTH = 32
#: Method names are short identifiers (spec: A-Z, a-z, 0-9, '_', '.', ':', '/').
METHOD_NAME_RE = re.compile(r"[A-Za-z0-9_.:/]{1,256}")
#: expat hands character data over in pieces of at most this many characters.
TEXT_CHUNK = 64 * 1024

_INT_RE = re.compile(r"[+-]?[0-9]{1,40}")
_DOUBLE_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,4})?")
_DATETIME_RE = re.compile(r"[0-9]{4}-?[0-9]{2}-?[0-9]{2}T[0-9]{2}:?[0-9]{2}:?[0-9]{2}(?:\.[0-9]+)?"
                          r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?")
_WHITESPACE = " \t\r\n"


class RequestRefused(Exception):
    """The body is not an XML-RPC call we accept; the message says why (fault 1)."""


class _Name(str):
    """A struct member's name on the value stack (told apart from string values)."""


def _integer(bits: int) -> Callable[[str, str], int]:
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1

    def convert(text: str, tag: str) -> int:
        text = text.strip(_WHITESPACE)
        if _INT_RE.fullmatch(text) is None:
            raise RequestRefused(f"<{tag}> value {_show(text)} is not an integer")
        value = int(text)
        if not low <= value <= high:
            raise RequestRefused(f"<{tag}> value {_show(text)} is out of range for a {bits}-bit integer")
        return value

    return convert


def _boolean(text: str, tag: str) -> bool:
    text = text.strip(_WHITESPACE)
    if text not in ("0", "1"):
        raise RequestRefused(f"<boolean> value {_show(text)} is not 0 or 1")
    return text == "1"


def _double(text: str, tag: str) -> float:
    text = text.strip(_WHITESPACE)
    if _DOUBLE_RE.fullmatch(text) is None:
        raise RequestRefused(f"<{tag}> value {_show(text)} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise RequestRefused(f"<{tag}> value {_show(text)} is out of range")
    return value


def _bigdecimal(text: str, tag: str) -> Decimal:
    text = text.strip(_WHITESPACE)
    if _DOUBLE_RE.fullmatch(text) is None:
        raise RequestRefused(f"<bigdecimal> value {_show(text)} is not a decimal number")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise RequestRefused(f"<bigdecimal> value {_show(text)} is not a decimal number") from None


def _datetime(text: str, tag: str) -> xmlrpc.client.DateTime:
    text = text.strip(_WHITESPACE)
    if _DATETIME_RE.fullmatch(text) is None:
        raise RequestRefused(f"<dateTime.iso8601> value {_show(text)} is not an ISO 8601 date and time")
    return xmlrpc.client.DateTime(text)


def _base64(text: str, tag: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()).encode("ascii"), validate=True)
    except (binascii.Error, ValueError):
        raise RequestRefused("<base64> value is not valid base64") from None


def _nil(text: str, tag: str) -> None:
    if text.strip(_WHITESPACE):
        raise RequestRefused("<nil> must be empty")
    return None


def _string(text: str, tag: str) -> str:
    return text


#: Scalar element -> converter of its text.  i1, i2, i8, float, biginteger,
#: bigdecimal and nil are the common extensions (Apache's ``ex:`` namespace).
SCALARS: dict[str, Callable[[str, str], Any]] = {
    "string": _string, "int": _integer(32), "i4": _integer(32), "i1": _integer(8), "i2": _integer(16),
    "i8": _integer(64), "biginteger": _integer(64), "boolean": _boolean, "double": _double,
    "float": _double, "bigdecimal": _bigdecimal, "dateTime.iso8601": _datetime, "base64": _base64,
    "nil": _nil,
}

#: What may appear inside what; None is the document itself.
CHILDREN: dict[str | None, frozenset[str]] = {
    None: frozenset({"methodCall"}),
    "methodCall": frozenset({"methodName", "params"}),
    "params": frozenset({"param"}),
    "param": frozenset({"value"}),
    "value": frozenset(SCALARS) | {"array", "struct"},
    "array": frozenset({"data"}),
    "data": frozenset({"value"}),
    "struct": frozenset({"member"}),
    "member": frozenset({"name", "value"}),
}

#: Elements whose character data is content (elsewhere only whitespace may appear).
_TEXT_ELEMENTS = frozenset(SCALARS) | {"value", "methodName", "name"}


def _show(text: str, limit: int = 40) -> str:
    shown = text[:limit].encode("unicode_escape").decode("ascii")
    return repr(shown) + (f"... ({len(text)} characters)" if len(text) > limit else "")


def _local(tag: str) -> str:
    """``ex:nil`` -> ``nil``: extension types often carry a namespace prefix."""
    return tag.rsplit(":", 1)[-1]


class CallReader:
    """Reads one ``methodCall`` fed in pieces; ``close()`` returns (method name, params)."""

    def __init__(self) -> None:
        parser = expat.ParserCreate()
        parser.buffer_text = True
        parser.buffer_size = TEXT_CHUNK
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.StartDoctypeDeclHandler = self._refuse_dtd
        parser.EntityDeclHandler = self._refuse_dtd
        parser.ExternalEntityRefHandler = self._refuse_dtd  # type: ignore[assignment]
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text_of
        self._parser = parser
        self._open: list[str] = []          # names of the open elements
        self._text: list[str] = []          # character data of the innermost text element
        self._stack: list[Any] = []         # values read so far
        self._marks: list[int] = []         # stack index where each open value/member/param began
        self._containers = 0                # open arrays and structs
        self._method: str | None = None
        self._done = False
        self._failed: RequestRefused | None = None

    # -- feeding -------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Parse the next piece of the body; raise RequestRefused as soon as it is wrong."""
        self._parse(data, False)

    def close(self) -> tuple[str, tuple[Any, ...]]:
        """End of body: the method name and its parameters, or RequestRefused."""
        self._parse(b"", True)
        if not self._done or self._method is None:
            raise RequestRefused("request has no methodName")
        params, self._stack = tuple(self._stack), []
        return self._method, params

    def _parse(self, data: bytes, final: bool) -> None:
        if self._failed is not None:
            raise self._failed
        try:
            self._parser.Parse(data, final)
        except RequestRefused as exc:
            self._failed = exc
        except expat.ExpatError as exc:
            self._failed = RequestRefused(
                f"not well-formed XML: {expat.ErrorString(exc.code)} (line {exc.lineno}, column {exc.offset})")
        except LookupError as exc:  # encoding="bogus": pyexpat asks Python's codecs, which do not know it
            self._failed = RequestRefused(f"unsupported XML encoding ({exc})")
        except Exception as exc:  # anything else expat or a codec raises is still bad input
            self._failed = RequestRefused(f"malformed XML-RPC request ({type(exc).__name__}: {str(exc)[:200]})")
        if self._failed is not None:
            self._stack, self._text = [], []
            raise self._failed

    # -- expat handlers --------------------------------------------------------
    @staticmethod
    def _refuse_dtd(*_: Any) -> None:
        raise RequestRefused("DOCTYPE and entity declarations are not accepted")

    def _start(self, raw_tag: str, attrs: dict[str, str]) -> None:
        tag = _local(raw_tag)
        parent = self._open[-1] if self._open else None
        if self._done:
            raise RequestRefused(f"unexpected <{raw_tag}> after the methodCall")
        if tag == "fault" or (parent is None and tag == "methodResponse"):
            raise RequestRefused("a request must be a <methodCall>; <fault> and <methodResponse> are answers")
        if tag not in CHILDREN.get(parent, frozenset()):
            if parent == "value" and tag not in CHILDREN:
                raise RequestRefused(f"unsupported value type <{raw_tag}>")
            where = f"inside <{parent}>" if parent else "as the document element"
            raise RequestRefused(f"unexpected <{raw_tag}> {where}")
        if tag in ("array", "struct"):
            self._containers += 1
            if self._containers > MAX_DEPTH:
                raise RequestRefused(f"values nested more than {MAX_DEPTH} deep")
        if tag in ("value", "member", "param", "array", "struct"):
            self._marks.append(len(self._stack))
        self._text = []
        self._open.append(tag)

    def _text_of(self, text: str) -> None:
        if self._open and self._open[-1] in _TEXT_ELEMENTS:
            self._text.append(text)
        elif text.strip(_WHITESPACE):
            where = f"<{self._open[-1]}>" if self._open else "the document"
            raise RequestRefused(f"unexpected text {_show(text.strip())} in {where}")

    def _end(self, raw_tag: str) -> None:
        tag = self._open.pop()
        text = "".join(self._text) if tag in _TEXT_ELEMENTS else ""
        self._text = []
        if tag in SCALARS:
            self._stack.append(SCALARS[tag](text, raw_tag))
        elif tag == "value":
            mark = self._marks.pop()
            if len(self._stack) == mark:  # <value>text</value> is a string
                self._stack.append(text)
            elif len(self._stack) != mark + 1:
                raise RequestRefused("a <value> holds exactly one value")
        elif tag == "name":
            self._stack.append(_Name(text))
        elif tag == "methodName":
            if METHOD_NAME_RE.fullmatch(text) is None:
                raise RequestRefused(f"methodName {_show(text)} is not a method name")
            self._method = text
        elif tag == "member":
            mark = self._marks.pop()
            pair = self._stack[mark:]
            if len(pair) != 2 or not isinstance(pair[0], _Name) or isinstance(pair[1], _Name):
                raise RequestRefused("a struct <member> holds one <name> and then one <value>")
        elif tag == "param":
            if len(self._stack) != self._marks.pop() + 1:
                raise RequestRefused("a <param> holds exactly one <value>")
        elif tag == "array":
            mark = self._marks.pop()
            self._containers -= 1
            self._stack[mark:] = [self._stack[mark:]]
        elif tag == "struct":
            mark = self._marks.pop()
            self._containers -= 1
            items = self._stack[mark:]
            self._stack[mark:] = [{str(items[i]): items[i + 1] for i in range(0, len(items), 2)}]
        elif tag == "methodCall":
            self._done = True

