"""``nativereport.json`` written one bug at a time, in the layout SWAMP's C writer produced.

The file is what the SWAMP web server reads and filters (``BugInstances``,
``BugSummaries``; ``reference/swamp-assessment.md`` §6.3) and what its front
end shows, so its shape is the contract: 4-space pretty printing, header keys
in a fixed order and only when known, ``BugId`` 1..n in file order, per-tool
fields, zero lines and columns left out, ``BugSummaries`` nested code first
then group with the count and the bytes of JSON written for those bugs.

Bug texts keep their XML escaping (``a &lt; b``), trimmed, as SWAMP's reader
left them: its front end inserts these strings as HTML, so escaped text is
what keeps a hostile message inert there.  Text that a SCARF file wraps in
CDATA or in child elements is escaped the same way (SWAMP passed such markup
through raw, which that front end would have rendered).

Strings are encoded by the json module's C encoder and every bug is formatted
by hand: ``json.dumps(indent=4)`` is the pure-Python encoder and would be the
slowest part of a million-bug conversion.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any, BinaryIO

from swampd.results.scarf import Bug

HEADER_KEYS = ("uuid", "tool_name", "tool_version", "assess_fw", "assess_fw_version", "assessment_start_ts",
               "assessment_end_ts", "report_generation_ts", "build_fw", "build_fw_version", "build_root_dir",
               "package_name", "package_root_dir", "package_version", "platform_name", "platform_version",
               "parser_fw", "parser_fw_version")
#: Header keys taken from the SCARF when the attribute exists (even empty), else from the metadata.
SCARF_FIRST = frozenset({"tool_name", "tool_version", "package_name", "package_version", "platform_version"})
#: Header keys that only the metadata gives.
METADATA_ONLY = frozenset({"assessment_start_ts", "assessment_end_ts", "report_generation_ts", "platform_name"})

_INT_RE = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_LONG_MIN, _LONG_MAX = -(1 << 63), (1 << 63) - 1
_TRIM = " \t\n\v\f"


@dataclass(frozen=True)
class Metadata:
    """What the database knows about the assessment (SWAMP's ``SCARFmetaData``); None = not given."""

    package_name: str | None = None
    tool_name: str | None = None  # the short (first-word) tool name
    platform_name: str | None = None
    start_date: str | None = None
    package_version: str | None = None
    tool_version: str | None = None
    platform_version: str | None = None
    end_date: str | None = None
    report_time: str | None = None

    def value(self, key: str) -> str | None:
        field = {"assessment_start_ts": "start_date", "assessment_end_ts": "end_date",
                 "report_generation_ts": "report_time"}.get(key, key)
        return getattr(self, field, None)


def header_items(scarf: dict[str, str], meta: Metadata) -> list[tuple[str, str]]:
    """The header keys and values, in SWAMP's order, each only when known."""
    items = []
    for key in HEADER_KEYS:
        if key in METADATA_ONLY:
            value = meta.value(key)
        elif key in SCARF_FIRST:
            value = scarf[key] if key in scarf else meta.value(key)
        else:
            value = scarf.get(key)
        if value is not None:
            items.append((key, value))
    return items


def escaped(text: str) -> str:
    """A bug text as SWAMP's reader gave it: trimmed, with XML escaping kept."""
    text = text.strip(_TRIM)
    if "&" in text:
        text = text.replace("&", "&amp;")
    if "<" in text:
        text = text.replace("<", "&lt;")
    if ">" in text:
        text = text.replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")
    return text


def strtol(text: str | None) -> int:
    """C's strtol: leading blanks, a sign, digits; anything else ends it; nothing is 0."""
    if not text:
        return 0
    if text.isdigit() and text.isascii() and len(text) < 19:
        return int(text)
    match = _INT_RE.match(text)
    if match is None:
        return 0
    return max(_LONG_MIN, min(_LONG_MAX, int(match.group(1))))


def _s(text: str) -> str:
    return encode_basestring(escaped(text))


def bug_json(bug: Bug, bug_id: int, shown: frozenset[str]) -> str:
    """One element of ``BugInstances``, from its ``{`` to its ``}`` (inner lines indented)."""
    i1, i2, i3 = "\n" + " " * 16, "\n" + " " * 20, "\n" + " " * 24
    out = [f"{{{i1}\"BugId\": {bug_id}"]
    add = out.append
    if "BuildId" in bug and "buildId" in shown:
        add(f",{i1}\"BuildId\": {_s(bug['BuildId'])}")
    for key, field in (("BugCode", "bugCode"), ("BugRank", "bugRank"), ("ClassName", "className"),
                       ("BugSeverity", "bugSeverity"), ("BugGroup", "bugGroup"), ("BugMessage", "bugMessage"),
                       ("ResolutionSuggestion", "resolutionSuggestion")):
        if key in bug and field in shown:
            add(f",{i1}\"{key}\": {_s(bug[key])}")
    if "CweIds" in bug and "cweIds" in shown:
        ids = f",{i2}".join(str(strtol(c)) for c in bug["CweIds"])
        add(f",{i1}\"CweIds\": [{i2}{ids}{i1}]")
    if "Methods" in bug and "methods" in shown:
        methods = []
        for n, method in enumerate(bug["Methods"], 1):
            primary = "true" if method["primary"] == "true" else "false"
            methods.append(f"{{{i3}\"name\": {_s(method.get('name', ''))},{i3}\"primary\": {primary},"
                           f"{i3}\"MethodId\": {n}{i2}}}")
        add(f",{i1}\"Methods\": [{i2}" + f",{i2}".join(methods) + f"{i1}]")
    if "locations" in shown:
        locations = bug.get("Locations")
        if locations:
            add(f",{i1}\"BugLocations\": [{i2}" + f",{i2}".join(
                _location(loc, n, i3) for n, loc in enumerate(locations, 1)) + f"{i1}]")
        instance = bug.get("Instance")
        if instance is not None:
            text = _instance(instance, i2, i3)
            if text:
                add(f",{i1}\"InstanceLocation\": {text}")
    add("\n" + " " * 12 + "}")
    return "".join(out)


def _location(loc: dict[str, str], n: int, ind: str) -> str:
    parts = []
    for key in ("StartLine", "EndLine", "StartColumn", "EndColumn"):
        number = strtol(loc.get(key))
        if number:
            parts.append(f"\"{key}\": {number}")
    for key in ("SourceFile", "Explanation"):
        if key in loc:
            parts.append(f"\"{key}\": {_s(loc[key])}")
    parts.append(f"\"primary\": {'true' if loc['primary'] == 'true' else 'false'}")
    parts.append(f"\"LocationId\": {n}")
    return "{" + ind + f",{ind}".join(parts) + ind[:-4] + "}"


def _instance(instance: dict[str, str], ind: str, ind2: str) -> str:
    parts = []
    if "Xpath" in instance:
        parts.append(f"\"Xpath\": {_s(instance['Xpath'])}")
    lines = [(key, strtol(instance.get(key))) for key in ("Start", "End")]
    lines = [(key, number) for key, number in lines if number]
    if lines:
        inner = f",{ind2}".join(f"\"{key}\": {number}" for key, number in lines)
        parts.append(f"\"LineNum\": {{{ind2}{inner}{ind}}}")
    if not parts:
        return ""
    return "{" + ind + f",{ind}".join(parts) + ind[:-4] + "}"


class NativeReportWriter:
    """Writes the report to a binary file: ``start`` once, ``bug`` per bug, ``finish`` once."""

    def __init__(self, fh: BinaryIO, shown: frozenset[str], meta: Metadata) -> None:
        self.fh = fh
        self.shown = shown
        self.meta = meta
        self.count = 0
        self.bytes_written = 0
        self._header_written = False
        #: code -> group -> [count, bytes], in first-seen order.
        self.summaries: dict[str, dict[str, list[int]]] = {}

    def _write(self, data: bytes) -> None:
        self.fh.write(data)
        self.bytes_written += len(data)

    def start(self, scarf_header: dict[str, str]) -> None:
        items = header_items(scarf_header, self.meta)
        self._open_text = "{\n    \"AnalyzerReport\": {"
        self._write(self._open_text.encode())
        self._first_key = True
        for key, value in items:
            self._key(f"\"{key}\": {encode_basestring(value)}")
        self._header_written = True

    def _key(self, text: str) -> None:
        sep = "\n        " if self._first_key else ",\n        "
        self._first_key = False
        self._write((sep + text).encode())

    def bug(self, bug: Bug) -> None:
        self.count += 1
        if self.count == 1:
            sep = ("\n" if self._first_key else ",\n") + "        \"BugInstances\": [\n            "
            self._first_key = False
        else:
            sep = ",\n            "
        data = (sep + bug_json(bug, self.count, self.shown)).encode()
        self._write(data)
        code = escaped(bug["BugCode"]) if "BugCode" in bug else "undefined"
        group = escaped(bug["BugGroup"]) if "BugGroup" in bug else "undefined"
        groups = self.summaries.setdefault(code, {})
        entry = groups.get(group)
        if entry is None:
            groups[group] = [1, len(data)]
        else:
            entry[0] += 1
            entry[1] += len(data)

    def finish(self) -> None:
        if self.count:
            self._write(b"\n        ]")
            self._key("\"BugSummaries\": " + self._summaries_text())
        self._write(b"\n    }\n}\n" if not self._first_key else b"}\n}\n")

    def _summaries_text(self) -> str:
        i3, i4, i5 = "\n" + " " * 12, "\n" + " " * 16, "\n" + " " * 20
        codes = []
        for code, groups in self.summaries.items():
            inner = []
            for group, (count, size) in groups.items():
                inner.append(f"{encode_basestring(group)}: {{{i5}\"count\": {count},{i5}\"bytes\": {size}{i4}}}")
            codes.append(f"{encode_basestring(code)}: {{{i4}" + f",{i4}".join(inner) + f"{i3}}}")
        return "{" + i3 + f",{i3}".join(codes) + "\n        }"


def write_report(fh: BinaryIO, header: dict[str, str], bugs: Any, shown: frozenset[str], meta: Metadata) -> NativeReportWriter:
    """Write a whole report from an iterable of bugs (convenience for small inputs)."""
    writer = NativeReportWriter(fh, shown, meta)
    writer.start(header)
    for bug in bugs:
        writer.bug(bug)
    writer.finish()
    return writer
