"""SCARF files for tests and benchmarks: small hand-made ones and large generated ones.

``bug_xml`` writes one BugInstance the way SWAMP's result parser lays them
out; ``write_scarf`` a whole file from a list of bugs; ``generate_scarf``
streams N generated bugs to disk (constant memory) for the size tests and
``bench/bench_native_report.py``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable
from xml.sax.saxutils import escape, quoteattr

HEADER = {"tool_name": "cppcheck", "tool_version": "2.13", "uuid": "0d6b9f44-1b33-4f0e-9e51-2a8f6f0c7a10",
          "package_name": "zlib", "package_version": "1.3.1", "package_root_dir": "pkg1",
          "build_root_dir": "/home/builder/build", "platform_name": "debian-12-64",
          "assessment_start_ts": "1732950000.5", "parser_fw": "resultparser", "parser_fw_version": "3.3.0",
          "assess_fw": "c-assess", "assess_fw_version": "1.2.6"}


def bug_xml(n: int, bug: dict[str, Any]) -> str:
    """One BugInstance; ``bug`` keys: code group severity message file line col end_line
    explanation suggestion cwe xpath start end (all optional); raw_* keys are inserted unescaped."""
    def text(key: str, element: str) -> str:
        if f"raw_{key}" in bug:
            return f"<{element}>{bug[f'raw_{key}']}</{element}>"
        return f"<{element}>{escape(str(bug[key]))}</{element}>" if key in bug else ""

    location = ("<Location id=\"1\" primary=\"true\">" + text("file", "SourceFile") + text("line", "StartLine")
                + text("end_line", "EndLine") + text("col", "StartColumn") + text("explanation", "Explanation")
                + "</Location>")
    extra = "".join(f"<Location id=\"{i + 2}\" primary=\"false\"><SourceFile>{escape(f)}</SourceFile>"
                    f"<StartLine>{ln}</StartLine></Location>" for i, (f, ln) in enumerate(bug.get("more", [])))
    instance = ""
    if "xpath" in bug or "start" in bug:
        inner = f"<Xpath>{escape(bug['xpath'])}</Xpath>" if "xpath" in bug else ""
        if "start" in bug:
            inner += f"<LineNum><Start>{bug['start']}</Start><End>{bug.get('end', bug['start'])}</End></LineNum>"
        instance = f"<InstanceLocation>{inner}</InstanceLocation>"
    return (f"  <BugInstance id=\"{n}\">\n    <Methods><Method id=\"1\" primary=\"true\">main</Method></Methods>\n"
            f"    <BugLocations>{location}{extra}</BugLocations>\n    " + text("cwe", "CweId") + text("group", "BugGroup")
            + text("code", "BugCode") + text("severity", "BugSeverity") + "\n    " + text("message", "BugMessage")
            + text("suggestion", "ResolutionSuggestion")
            + f"\n    <BugTrace><BuildId>{n + 1}</BuildId><AssessmentReportFile>report.xml</AssessmentReportFile>"
            f"{instance}</BugTrace>\n  </BugInstance>\n")


def header_xml(header: dict[str, str] | None = None) -> str:
    attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in (HEADER if header is None else header).items())
    return f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AnalyzerReport {attrs}>\n"


def write_scarf(path: Path, bugs: Iterable[dict[str, Any]], header: dict[str, str] | None = None,
                tail: str = "") -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(header_xml(header))
        for n, bug in enumerate(bugs):
            fh.write(bug_xml(n, bug))
        fh.write(tail + "</AnalyzerReport>\n")
    return path


SEVERITIES = ("error", "warning", "style", "performance", "portability")
CODES = ("nullPointer", "uninitvar", "unusedVariable", "memleak", "arrayIndexOutOfBounds", "shadowVariable")


def generated_bug(n: int) -> dict[str, Any]:
    return {"code": CODES[n % len(CODES)], "group": SEVERITIES[n % len(SEVERITIES)],
            "message": f"Finding {n}: possible problem with variable v{n % 97} in function f{n % 31} "
                       f"(see the tool's documentation for {CODES[n % len(CODES)]})",
            "file": f"pkg1/zlib-1.3.1/src/module{n % 1000}.c", "line": 1 + n % 4000, "end_line": 1 + n % 4000,
            "col": 1 + n % 80, "start": n * 3 + 1, "end": n * 3 + 3, "cwe": 476}


def generate_scarf(path: Path, count: int) -> Path:
    """A SCARF file of ``count`` generated bugs, written in batches (constant memory)."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(header_xml())
        batch: list[str] = []
        for n in range(count):
            batch.append(bug_xml(n, generated_bug(n)))
            if len(batch) == 2000:
                fh.write("".join(batch))
                batch.clear()
        fh.write("".join(batch))
        fh.write("  <BugSummary></BugSummary>\n</AnalyzerReport>\n")
    return path
