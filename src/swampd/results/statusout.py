"""``status.out``: the assessment framework's task list, read as SWAMP's backend read it.

Each record is ``STATUS: task (short) duration``; lines between two lines of
hyphens are the long message of the record before them
(``reference/swamp-assessment.md`` §2.2).  What the failed report needs from
it: the verdict (``all``), the first failed task, the no-build and no-files
warnings, and the text itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

RECORD_RE = re.compile(r"^\s?(PASS|FAIL|SKIP|NOTE):\s+([A-Za-z0-9_-]+)(?:\s+\((.*)\))?"
                       r"(?:\s+(-?\d+\.?\d*)(s|ms|ns)?)?\s*$")
DELIMITER_RE = re.compile(r"^\s*-+\s*$")
DURATION_RE = re.compile(r"\s+-?\d+\.?\d*(?:s|ms|ns)?\s*$")
WEAKNESSES_RE = re.compile(r"weaknesses:\s*(\d+)")
NO_BUILD_RE = re.compile(r"source-files:\s*(\d+).*compilable:\s*(\d+)")


@dataclass
class Record:
    task: str
    status: str
    short: str | None = None
    long: str | None = None


@dataclass
class StatusOut:
    records: dict[str, Record] = field(default_factory=dict)
    tasks: list[str] = field(default_factory=list)
    all_pass: bool | None = None
    first_failure: str | None = None
    no_files: bool = False
    retry: bool = False
    weaknesses: int | None = None
    no_build: bool = False
    source_files: int = 0
    compilable: int = 0
    content: str = ""
    lines: list[str] = field(default_factory=list)

    def without_durations(self) -> str:
        """The text with each record's trailing duration removed (long messages untouched)."""
        out = [DURATION_RE.sub("", line) if RECORD_RE.match(line) else line for line in self.lines]
        return "\n".join(out).strip()


def parse_status_out(text: str) -> StatusOut:
    """Parse the whole file's text."""
    lines = text.splitlines()
    result = StatusOut(lines=lines, content=text.strip())
    last: Record | None = None
    in_long = False
    pending: list[str] = []
    for line in lines:
        match = RECORD_RE.match(line)
        if match and not in_long:
            status, task, short = match.group(1), match.group(2), match.group(3)
            last = result.records[task] = Record(task, status, short)
            result.tasks.append(task)
            _note(result, last)
            continue
        if DELIMITER_RE.match(line):
            if in_long and last is not None:
                last.long = "\n".join(pending)
                pending = []
            in_long = not in_long
            continue
        pending.append(line)
    return result


def _note(result: StatusOut, record: Record) -> None:
    status, task, short = record.status, record.task, record.short
    if task == "all" and status in ("PASS", "FAIL"):
        result.all_pass = status == "PASS"
    if status == "FAIL" and result.first_failure is None:
        result.first_failure = task
    if status == "SKIP" and task == "assess":
        result.no_files = True
    if status == "NOTE" and task == "retry":
        result.retry = True
    if task == "parse-results" and short:
        found = WEAKNESSES_RE.search(short)
        if found:
            result.weaknesses = int(found.group(1))
    if task == "no-build-setup" and short:
        found = NO_BUILD_RE.search(short)
        if found:
            result.no_build = True
            result.source_files, result.compilable = int(found.group(1)), int(found.group(2))
