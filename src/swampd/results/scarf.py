"""SCARF read as a stream: the report's attributes, then one bug at a time.

A SCARF file can hold a million ``BugInstance`` elements (hundreds of MB), so
it is never loaded whole: the file is fed 64 KiB at a time to ElementTree's
pull parser (C tree building), each finished ``BugInstance`` is turned into a
plain dict and then dropped from the tree.  Memory stays at one chunk plus
the bugs it completed, whatever the file size.

Before that, the prolog up to the root element goes through a separate
expat parser that refuses a DOCTYPE (``xmlsafe``).  A DTD can only appear
before the root element, and without one no entity can be declared, so the
pull parser never meets one (an undeclared entity reference is a
well-formedness error).

A bug is a dict of the *decoded* texts, untrimmed, as the file has them;
deciding what to show and how to escape it is the writers' job
(``nativejson`` keeps SWAMP's escaping, ``htmlreport`` escapes for HTML).
Keys: ``ClassName BugGroup BugCode BugRank BugSeverity BugMessage
ResolutionSuggestion BuildId`` (str), ``CweIds`` (list of str), ``Methods``
(list of ``{"name", "primary"}``), ``Locations`` (list of dicts with
``primary`` as written and any of ``SourceFile StartLine EndLine StartColumn
EndColumn Explanation``), and, when the trace has an ``InstanceLocation``,
``Instance`` (a dict with ``Xpath`` and/or ``Start``/``End``).  Text inside
child markup counts as text.  ``Metric`` elements are skipped: metric
results have no bugs to show.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator
from xml.etree.ElementTree import Element, ParseError, XMLPullParser

from swampd.results import xmlsafe
from swampd.results.errors import ResultsError

Bug = dict[str, Any]

BUG_TEXT = frozenset({"ClassName", "BugGroup", "BugCode", "BugRank", "BugSeverity", "BugMessage",
                      "ResolutionSuggestion"})
LOCATION_TEXT = frozenset({"SourceFile", "StartLine", "EndLine", "StartColumn", "EndColumn", "Explanation"})
ROOT = "AnalyzerReport"


def _text(element: Element) -> str:
    if len(element):
        return "".join(element.itertext())
    return element.text or ""


def bug_from(element: Element) -> Bug:
    """The dict of one parsed ``BugInstance`` element."""
    bug: Bug = {}
    for child in element:
        tag = child.tag
        if tag in BUG_TEXT:
            bug[tag] = _text(child)
        elif tag == "BugLocations":
            bug["Locations"] = [_location(loc) for loc in child if loc.tag == "Location"]
        elif tag == "CweId":
            bug.setdefault("CweIds", []).append(_text(child))
        elif tag == "Methods":
            bug["Methods"] = [{"primary": m.get("primary", ""), "name": _text(m)} for m in child if m.tag == "Method"]
        elif tag == "BugTrace":
            for part in child:
                if part.tag == "BuildId":
                    bug["BuildId"] = _text(part)
                elif part.tag == "InstanceLocation":
                    bug["Instance"] = _instance(part)
    return bug


def _location(element: Element) -> dict[str, str]:
    location = {"primary": element.get("primary", "")}
    for child in element:
        if child.tag in LOCATION_TEXT:
            location[child.tag] = _text(child)
    return location


def _instance(element: Element) -> dict[str, str]:
    instance: dict[str, str] = {}
    for child in element:
        if child.tag == "Xpath":
            instance["Xpath"] = _text(child)
        elif child.tag == "LineNum":
            for number in child:
                if number.tag in ("Start", "End"):
                    instance[number.tag] = _text(number)
    return instance


class _Prolog:
    """Reads up to the root element with a DTD-refusing expat parser; keeps the root's attributes."""

    class RootSeen(Exception):
        pass

    def __init__(self, what: str) -> None:
        self.what = what
        self.root: tuple[str, dict[str, str]] | None = None
        self.parser = xmlsafe.make_parser()
        self.parser.StartElementHandler = self._start

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self.root = (name, attrs)
        raise self.RootSeen()

    def feed(self, data: bytes) -> bool:
        """True once the root element has been seen (the prolog was clean)."""
        try:
            xmlsafe.feed(self.parser, data, not data, self.what)
        except self.RootSeen:
            return True
        return False


class ScarfReader:
    """Iterate over the bugs of one SCARF file; ``header`` holds the root's attributes.

    ``header`` is set before the first bug is yielded (for a file with no
    bugs, once the root element has been read).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.header: dict[str, str] | None = None
        self.bytes_read = 0

    def __iter__(self) -> Iterator[Bug]:
        what = f"SCARF file {self.path.name}"
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise ResultsError(f"cannot read SCARF file {self.path}: {exc.strerror}") from None
        prolog = _Prolog(what)
        parser = XMLPullParser(events=("start", "end"))
        depth = 0
        root: Element | None = None
        with fh:
            while True:
                data = fh.read(xmlsafe.CHUNK)
                self.bytes_read += len(data)
                if self.header is None:
                    if prolog.feed(data):
                        name, attrs = prolog.root  # type: ignore[misc]
                        if name != ROOT:
                            raise ResultsError(f"{what} has root element <{name[:40]}>, not <{ROOT}>")
                        self.header = attrs
                    elif not data:
                        raise ResultsError(f"{what} has no {ROOT} element")
                try:
                    parser.feed(data) if data else parser.close()
                    events = parser.read_events()
                    for event, element in events:
                        if event == "start":
                            depth += 1
                            if depth == 1:
                                root = element
                            continue
                        depth -= 1
                        if depth == 1:
                            if element.tag == "BugInstance":
                                yield bug_from(element)
                            del root[:]  # type: ignore[index]
                except ParseError as exc:
                    line = exc.position[0] if exc.position else "?"
                    raise ResultsError(f"{what} is not well-formed XML (line {line}: "
                                       f"{str(exc).split(':')[0]})") from None
                if not data:
                    break
