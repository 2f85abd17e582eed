"""Display values (package, tool, platform names): any printable text, carried as given.

SWAMP's catalogue has names like ``Parasoft C/C++test``, ``C#-parser`` and
``O'Brien-utils``, and users name packages in any language.  These values
only ever become Code Dx project names, JSON strings and log text; they never
reach a shell, a path or a scheduler constraint, so refusing punctuation
protects nothing.  What is refused is what no name needs: control and format
characters (newlines, escapes, bidirectional overrides), and more characters
than the database column holds.  Identifiers (uuids, run ids) are a different
thing and stay strict (``swampd.identifiers``).

The database hands them over in its own character set: a ``latin1`` column
gives ``Café-lib`` as the bytes ``Caf\\xe9-lib``.  ``from_argv`` recovers the
bytes of an argument and reads them as UTF-8 when they are valid UTF-8, else
as latin1 (every byte sequence is valid latin1).
"""
from __future__ import annotations

import os
import unicodedata

#: Column lengths (characters) of the values SWAMP's procedures pass
#: (assessment_result / the procedure's VARCHAR(100) variables).
LIMITS = {"package": 100, "package_version": 100, "tool_name": 100, "tool_version": 100,
          "platform_name": 100, "platform_version": 100, "package_type": 100,
          "start_date": 100, "end_date": 100}


def from_argv(value: str) -> str:
    """The text of a command-line value given as UTF-8 or latin1 bytes."""
    raw = os.fsencode(value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def problem(value: str, limit: int) -> str | None:
    """Why ``value`` is not acceptable display text, or None."""
    if len(value) > limit:
        return f"is {len(value)} characters long; the database column holds {limit}"
    for ch in value:
        if unicodedata.category(ch)[0] == "C":
            return f"contains the control character U+{ord(ch):04X}"
    return None
