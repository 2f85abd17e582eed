"""SCARF read as a stream: the report's attributes, then one bug at a time.

A SCARF file can hold a million ``BugInstance`` elements (hundreds of MB), so
it is never loaded whole: expat is fed 64 KiB at a time and every finished
bug is handed on and forgotten.  Memory stays at one chunk plus the bugs it
completed, whatever the file size.

A bug is a plain dict of the *decoded* texts, untrimmed, exactly as the file
has them; deciding what to show and how to escape it is the writers' job
(``nativejson`` keeps SWAMP's escaping, ``htmlreport`` escapes for HTML).
Keys: ``ClassName BugGroup BugCode BugRank BugSeverity BugMessage
ResolutionSuggestion BuildId`` (str), ``CweIds`` (list of str), ``Methods``
(list of ``{"name", "primary"}``), ``Locations`` (list of dicts with
``primary`` as written and any of ``SourceFile StartLine EndLine StartColumn
EndColumn Explanation``), and, when the trace has an ``InstanceLocation``,
``Instance`` (a dict with ``Xpath`` and/or ``Start``/``End``).
``Metric`` elements are skipped: metric results have no bugs to show.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

from swampd.results import xmlsafe
from swampd.results.errors import ResultsError

Bug = dict[str, Any]

BUG_TEXT = frozenset({"ClassName", "BugGroup", "BugCode", "BugRank", "BugSeverity", "BugMessage",
                      "ResolutionSuggestion"})
LOCATION_TEXT = frozenset({"SourceFile", "StartLine", "EndLine", "StartColumn", "EndColumn", "Explanation"})
ROOT = "AnalyzerReport"


class ScarfReader:
    """Iterate over the bugs of one SCARF file; ``header`` holds the root's attributes.

    ``header`` is filled as soon as the root element has been read, which is
    before the first bug is yielded (or after the last chunk for a file with
    no bugs).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.header: dict[str, str] | None = None
        self.bytes_read = 0
        self._stack: list[str] = []
        self._bug: Bug | None = None
        self._location: dict[str, str] | None = None
        self._instance: dict[str, str] | None = None
        self._parts: list[str] | None = None
        self._capture_depth = 0
        self._container: Any = None
        self._key: str | None = None
        self._done: list[Bug] = []

    def __iter__(self) -> Iterator[Bug]:
        parser = xmlsafe.make_parser()
        parser.StartElementHandler = self._start
        parser.EndElementHandler = self._end
        parser.CharacterDataHandler = self._text
        what = f"SCARF file {self.path.name}"
        try:
            fh = open(self.path, "rb")
        except OSError as exc:
            raise ResultsError(f"cannot read SCARF file {self.path}: {exc.strerror}") from None
        with fh:
            while True:
                data = fh.read(xmlsafe.CHUNK)
                self.bytes_read += len(data)
                xmlsafe.feed(parser, data, not data, what)
                if self._done:
                    done, self._done = self._done, []
                    yield from done
                if not data:
                    break
        if self.header is None:
            raise ResultsError(f"{what} has no {ROOT} element")

    # -- expat handlers ------------------------------------------------------
    def _start(self, name: str, attrs: dict[str, str]) -> None:
        stack = self._stack
        depth = len(stack)
        stack.append(name)
        if self._parts is not None:  # markup inside a text element: keep only its text
            return
        if depth == 0:
            if name != ROOT:
                raise xmlsafe.Refused(f"has root element <{name}>, not <{ROOT}>")
            self.header = attrs
            return
        parent = stack[-2]
        bug = self._bug
        if bug is None:
            if name == "BugInstance" and depth == 1:
                self._bug = {}
            return
        if parent == "BugInstance":
            if name in BUG_TEXT:
                self._capture(bug, name)
            elif name == "CweId":
                self._capture(bug.setdefault("CweIds", []), None)
            return
        if parent == "Location" and self._location is not None:
            if name in LOCATION_TEXT:
                self._capture(self._location, name)
        elif name == "Location" and parent == "BugLocations":
            self._location = {"primary": attrs.get("primary", "")}
            bug.setdefault("Locations", []).append(self._location)
        elif name == "Method" and parent == "Methods":
            method = {"primary": attrs.get("primary", "")}
            bug.setdefault("Methods", []).append(method)
            self._capture(method, "name")
        elif parent == "BugTrace":
            if name == "BuildId":
                self._capture(bug, "BuildId")
            elif name == "InstanceLocation":
                self._instance = bug["Instance"] = {}
        elif self._instance is not None:
            if name == "Xpath" and parent == "InstanceLocation":
                self._capture(self._instance, "Xpath")
            elif parent == "LineNum" and name in ("Start", "End"):
                self._capture(self._instance, name)

    def _capture(self, container: Any, key: str | None) -> None:
        self._parts = []
        self._capture_depth = len(self._stack)
        self._container = container
        self._key = key

    def _text(self, data: str) -> None:
        if self._parts is not None:
            self._parts.append(data)

    def _end(self, name: str) -> None:
        stack = self._stack
        if self._parts is not None and len(stack) == self._capture_depth:
            text = "".join(self._parts)
            self._parts = None
            if self._key is None:
                self._container.append(text)
            else:
                self._container[self._key] = text
        stack.pop()
        if self._bug is None:
            return
        if name == "BugInstance" and len(stack) == 1:
            self._done.append(self._bug)
            self._bug = self._location = self._instance = None
        elif name == "Location":
            self._location = None
        elif name == "InstanceLocation":
            self._instance = None
