"""The BOG ("Bill Of Goods"): the property file that tells a job what to run.

The format is SWAMP's so that its tools can read ours: a ``# comment`` line,
then ``key=value`` lines in sorted key order.  SWAMP's writer and reader
disagree about multi-line values and values with surrounding white space, so
we refuse to write either rather than produce a file that reads back wrong.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

from swampd.fileops import replace_text

#: SWAMP's keys are plain names; one of the assessment keys has a hyphen (``tool-version``).
KEY_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class BogError(ValueError):
    """A BOG cannot be written or read."""


def format_bog(values: Mapping[str, str], comment: str = "Bill Of Goods File: swampd") -> str:
    """Render ``values`` in SWAMP's BOG format; empty values are left out as SWAMP does."""
    lines = [f"# {comment}"]
    for key in sorted(values):
        value = values[key]
        if KEY_RE.fullmatch(key) is None:
            raise BogError(f"BOG key {key!r} is not a plain name")
        if not isinstance(value, str):
            raise BogError(f"BOG value for {key} must be a string, not {type(value).__name__}")
        if value == "":
            continue
        if "\n" in value or "\r" in value or value != value.strip():
            raise BogError(f"BOG value for {key} has a line break or surrounding white space")
        lines.append(f"{key}={value}")
    return "\n".join(lines) + "\n"


def parse_bog(text: str) -> dict[str, str]:
    """Read a BOG; keys are split from values at the first '='."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or KEY_RE.fullmatch(key) is None:
            raise BogError(f"BOG line {number} is not key=value")
        values[key] = value.strip()
    return values


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (BOGs carry the API key).

    Atomic (a reader sees the old file or the whole new one, also after a
    ``kill -9`` of the writer) but not fsynced: these are a job's inputs,
    made again from the registry for every launch, and the registry is what
    must survive a power loss.  An fsync here cost 4-5 ms per file, five
    files per launch.
    """
    replace_text(path, text, 0o600)


def write_new_private(path: Path | str, text: str) -> None:
    """Write a private (0600) file that does not exist yet: created in place, without the temporary
    file and rename of ``write_private`` (a rename and a path join less per file, five files per launch).

    For the inputs of a launch, written into its fresh directory before anything that reads them
    is started: nobody can see the file half written.  A file that exists already (a start tried
    again after its writer died, possibly half way through) is replaced atomically as
    ``write_private`` does.  ``O_EXCL`` also refuses to follow a symlink planted at ``path``.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        replace_text(path, text, 0o600)
        return
    try:
        os.write(fd, text.encode("utf-8"))
    finally:
        os.close(fd)


def read_bog(path: Path) -> dict[str, str]:
    try:
        return parse_bog(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise BogError(f"cannot read BOG {path}: {exc.strerror}") from None
