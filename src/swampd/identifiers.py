"""Validation of the identifiers that reach paths, constraints and commands.

Everything a caller names (project, user, viewer instance) is checked here
before it is used anywhere else, so that no later layer has to think about
quoting: a value that passes cannot contain a path separator, a quote, a
space or a shell metacharacter.
"""
from __future__ import annotations

import re

from swampd.errors import Fault, SwampdError

IDENTIFIER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
#: Viewer names appear in execrunids and paths; config keys use the same rule.
VIEWER_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
EXECRUNID_PREFIX = "vrun_"


def is_identifier(value: object) -> bool:
    """True when ``value`` is a string of the contract's identifier form."""
    return isinstance(value, str) and IDENTIFIER_RE.fullmatch(value) is not None


def check_identifier(name: str, value: object) -> str:
    """Return ``value`` if it is a valid identifier, else raise fault 1."""
    if not isinstance(value, str):
        raise SwampdError(Fault.BAD_ARGUMENT, f"{name} must be a string, not {type(value).__name__}")
    if IDENTIFIER_RE.fullmatch(value) is None:
        raise SwampdError(
            Fault.BAD_ARGUMENT,
            f"{name} {preview(value)} is not an identifier "
            "(letters, digits, '.', '_', '-'; at most 128 characters)",
        )
    return value


def check_viewer_name(value: object, configured: frozenset[str] | set[str]) -> str:
    """Return ``value`` if it names a configured viewer, else raise fault 1."""
    if not isinstance(value, str):
        raise SwampdError(Fault.BAD_ARGUMENT, f"viewer must be a string, not {type(value).__name__}")
    if value not in configured:
        names = ", ".join(sorted(configured)) or "none"
        raise SwampdError(
            Fault.BAD_ARGUMENT, f"viewer {preview(value)} is not configured (configured: {names})"
        )
    return value


def execrunid(projectid: str, viewer: str) -> str:
    """SWAMP's run id for a viewer: ``vrun_<project>_<viewer>``."""
    return f"{EXECRUNID_PREFIX}{projectid}_{viewer}"


def preview(value: str, limit: int = 40) -> str:
    """A short, printable rendering of a hostile value for an error message."""
    shown = value[:limit].encode("unicode_escape").decode("ascii")
    more = f"... ({len(value)} characters)" if len(value) > limit else ""
    return repr(shown) + more
