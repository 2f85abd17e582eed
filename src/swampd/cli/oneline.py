"""The one-line answer the database reads from the programs it starts.

``launchviewer`` and ``kill_run`` run under ``sys_eval``/``sys_exec``: the
procedure reads stdout and looks for ``ERROR``.  Whatever goes wrong, usage
errors included, the caller gets exactly one line.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
from typing import NoReturn

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


#: The procedures keep the answer in ``return_string VARCHAR(100)``, newline
#: included: a longer one is cut under a lax sql_mode and fails the whole CALL
#: (error 1406) under a strict one.  Counted in UTF-8 bytes, so the line fits
#: whatever the column's character set.
MAX_LINE_BYTES = 99
ELLIPSIS = "..."


#: A fault code at the end of a line is what a program reading it acts on: it survives a cut.
FAULT_SUFFIX_RE = re.compile(r" \(fault \d+\)$")


def shorten(line: str, limit: int = MAX_LINE_BYTES) -> str:
    """``line`` cut to at most ``limit`` UTF-8 bytes, marked with '...' where cut; a trailing
    ``(fault N)`` is kept."""
    data = line.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return line
    match = FAULT_SUFFIX_RE.search(line)
    suffix = match.group(0) if match else ""
    keep = limit - len(ELLIPSIS) - len(suffix.encode())
    return data[:keep].decode("utf-8", errors="ignore") + ELLIPSIS + suffix


def say(line: str) -> None:
    """Print one line of at most 99 bytes and flush it at once.

    Newlines are folded; a longer line is shortened, and its full text goes
    to stderr (under sys_eval/sys_exec: the database server's error log).
    """
    text = " ".join(line.splitlines())
    short = shorten(text)
    if short != text:
        prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "swampd"
        sys.stderr.write(f"{prog}: full message: {text}\n")
        sys.stderr.flush()
    sys.stdout.write(short + "\n")
    sys.stdout.flush()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage problem as the one ERROR line the caller reads."""

    def error(self, message: str) -> NoReturn:
        say(f"ERROR: {message}")
        sys.exit(EXIT_USAGE)
