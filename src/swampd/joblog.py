"""The last error line of a job's log, for the viewer's status when a job fails.

When a job dies, the reason is usually the last thing it wrote: a
``vruntask: …`` line, a log record at ERROR or CRITICAL, or the final line of
a Python traceback (``TypeError: extractall() got an unexpected keyword
argument 'filter'``).  Without it a user sees only "job ended without an exit
status".  This reads the end of the log (a bounded tail, whatever the log's
size) and returns that line, cleaned of timestamps and prefixes, or None.

Standard library only and free of swampd imports, so any scheduler can call
it on ``<job_dir>/vruntask.log`` when it observes a failed job.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

TAIL_BYTES = 64 * 1024
MAX_LENGTH = 300
#: A logging record: "<date> <time> <name>[<pid>] LEVEL message" (vruntask's format), or "LEVEL:name:message".
LOG_RECORD_RE = re.compile(r"^\S+ \S+ \S+\[\d+\] (?:ERROR|CRITICAL) (?P<msg>.+)$|^(?:ERROR|CRITICAL):[^:]*:(?P<msg2>.+)$")
PROGRAM_RE = re.compile(r"^(?:vruntask|swampd|launchviewer): (?P<msg>.+)$")
EXCEPTION_RE = re.compile(r"^(?P<msg>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Fault)\b.*)$")
ERROR_WORD_RE = re.compile(r"\bERROR\b[:\s]\s*(?P<msg>.+)$")


def read_tail(path: Path, size: int = TAIL_BYTES) -> list[str]:
    """The last ``size`` bytes of a file as lines (the first, partial line dropped)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            data = fh.read(size)
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[1:] if end > size else lines


def last_error_line(path: Path, tail_bytes: int = TAIL_BYTES) -> str | None:
    """The most recent error line of the log at ``path``, or None (no log, or nothing that says error)."""
    found: str | None = None
    in_traceback = False
    for line in read_tail(Path(path), tail_bytes):
        text = line.rstrip()
        if not text:
            continue
        if text.startswith("Traceback (most recent call last):"):
            in_traceback = True
            continue
        if in_traceback:
            if text[0] in " \t":
                continue
            in_traceback = False
            match = EXCEPTION_RE.match(text)
            if match:
                found = match.group("msg")
                continue
        match = LOG_RECORD_RE.match(text)
        if match:
            found = match.group("msg") or match.group("msg2")
            continue
        match = PROGRAM_RE.match(text) or ERROR_WORD_RE.search(text)
        if match:
            found = match.group("msg")
    if found is None:
        return None
    found = " ".join(found.split())
    return found if len(found) <= MAX_LENGTH else found[:MAX_LENGTH - 3] + "..."
