"""Writing SCARF: an ``AnalyzerReport`` of ``BugInstance`` elements, then its ``BugSummary``.

The layout is the one SWAMP's result parser wrote through ``ScarfXmlWriter``
(reference/swamp-assessment.md §5): root attributes ``tool_name``,
``tool_version`` and ``uuid`` required, bugs numbered from 0, each with its
locations, CWE ids, group, code, severity, message and trace, and a
``BugSummary`` of ``BugCategory`` (group, code, count, bytes) after the
last bug.  Bugs are written as they come (nothing is kept but the summary
counts), every text and attribute is escaped, and characters XML 1.0
cannot carry become the text ``\\uXXXX`` as SWAMP's writer made them.
``scarf.ScarfReader`` reads what this writes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TextIO
from xml.sax.saxutils import escape, quoteattr

REQUIRED = ("tool_name", "tool_version", "uuid")
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\u{ord(m.group()):04X}", text)


def _text(value: str) -> str:
    return escape(_clean(value))


def _attr(value: str) -> str:
    return quoteattr(_clean(value))


@dataclass(frozen=True)
class Location:
    source_file: str
    start_line: int = 0
    end_line: int = 0
    start_column: int = 0
    end_column: int = 0
    explanation: str = ""
    primary: bool = True


@dataclass(frozen=True)
class Bug:
    message: str
    locations: tuple[Location, ...] = ()
    code: str = ""
    group: str = ""
    severity: str = ""
    cwe_ids: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    suggestion: str = ""
    build_id: str = "1"
    report_file: str = ""
    xpath: str = ""
    class_name: str = ""


@dataclass
class _Category:
    count: int = 0
    bytes: int = 0


@dataclass
class ScarfWriter:
    """Writes one SCARF document to ``out``; ``close`` writes the summary and the end tag."""

    out: TextIO
    header: dict[str, str]
    bugs: int = 0
    _summary: dict[tuple[str, str], _Category] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [key for key in REQUIRED if not self.header.get(key)]
        if missing:
            raise ValueError(f"SCARF needs {', '.join(missing)}")
        attrs = " ".join(f"{key}={_attr(value)}" for key, value in self.header.items())
        self.out.write(f'<?xml version="1.0" encoding="UTF-8"?>\n<AnalyzerReport {attrs}>\n')

    def bug(self, bug: Bug) -> None:
        xml = self._bug_xml(self.bugs, bug)
        self.out.write(xml)
        key = (bug.group or "undefined", bug.code or "undefined")
        category = self._summary.setdefault(key, _Category())
        category.count += 1
        category.bytes += len(xml.encode("utf-8"))
        self.bugs += 1

    def close(self) -> None:
        self.out.write("  <BugSummary>\n")
        for (group, code), category in self._summary.items():
            self.out.write(f"    <BugCategory group={_attr(group)} code={_attr(code)} "
                           f'count="{category.count}" bytes="{category.bytes}"/>\n')
        self.out.write("  </BugSummary>\n</AnalyzerReport>\n")

    @staticmethod
    def _bug_xml(number: int, bug: Bug) -> str:
        parts = [f'  <BugInstance id="{number}">\n']
        if bug.class_name:
            parts.append(f"    <ClassName>{_text(bug.class_name)}</ClassName>\n")
        parts.append("    <Methods>")
        for i, method in enumerate(bug.methods):
            parts.append(f'<Method id="{i}" primary="{"true" if i == 0 else "false"}">{_text(method)}</Method>')
        parts.append("</Methods>\n    <BugLocations>\n")
        for i, loc in enumerate(bug.locations):
            parts.append(f'      <Location id="{i}" primary="{"true" if loc.primary else "false"}">'
                         f"<SourceFile>{_text(loc.source_file)}</SourceFile>")
            for tag, number_value in (("StartLine", loc.start_line), ("EndLine", loc.end_line),
                                      ("StartColumn", loc.start_column), ("EndColumn", loc.end_column)):
                if number_value > 0:
                    parts.append(f"<{tag}>{number_value}</{tag}>")
            if loc.explanation:
                parts.append(f"<Explanation>{_text(loc.explanation)}</Explanation>")
            parts.append("</Location>\n")
        parts.append("    </BugLocations>\n")
        parts += [f"    <CweId>{_text(cwe)}</CweId>\n" for cwe in bug.cwe_ids]
        for tag, value in (("BugGroup", bug.group), ("BugCode", bug.code), ("BugSeverity", bug.severity)):
            if value:
                parts.append(f"    <{tag}>{_text(value)}</{tag}>\n")
        parts.append(f"    <BugMessage>{_text(bug.message)}</BugMessage>\n")
        if bug.suggestion:
            parts.append(f"    <ResolutionSuggestion>{_text(bug.suggestion)}</ResolutionSuggestion>\n")
        parts.append(f"    <BugTrace><BuildId>{_text(bug.build_id)}</BuildId>"
                     f"<AssessmentReportFile>{_text(bug.report_file)}</AssessmentReportFile>")
        if bug.xpath:
            parts.append(f"<InstanceLocation><Xpath>{_text(bug.xpath)}</Xpath></InstanceLocation>")
        parts.append("</BugTrace>\n  </BugInstance>\n")
        return "".join(parts)
