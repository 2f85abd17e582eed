"""Checks of API arguments: every value is typed, bounded and of a known form.

These run before anything reaches the service, so the service and everything
below it may assume well-formed input.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from swampd.errors import Fault, SwampdError
from swampd.identifiers import preview, check_identifier
from swampd.paths import PathRefused, confine

MAX_TEXT = 1024
MAX_PATH = 4096
MAX_RESULTS = 100
MAX_FILES = 1000
CHECKSUM_RE = re.compile(r"[0-9A-Fa-f]{32,128}")
EVENT_RE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
#: host:port, where host is an IPv4 address, a DNS name, or [IPv6].
VMIP_RE = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
NULL_WORDS = frozenset({"", "NULL", "null"})
#: A host name as a node gives its own (RFC 1123 labels; at most the 128 SWAMP's column keeps).
HOST_NAME_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,126}[A-Za-z0-9])?")
#: Control characters (C0 and DEL), refused in any text a caller sends.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def bad(message: str) -> SwampdError:
    return SwampdError(Fault.BAD_ARGUMENT, message)


def require_struct(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad(f"{what} must be a struct, not {type(value).__name__}")
    return value


def reject_unknown(struct: dict[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(struct) - allowed)
    if unknown:
        raise bad(f"{what} has unknown member {preview(str(unknown[0]))} (allowed: {', '.join(sorted(allowed))})")


def text(value: Any, name: str, limit: int = MAX_TEXT) -> str:
    """A printable string without control characters, at most ``limit`` long."""
    if not isinstance(value, str):
        raise bad(f"{name} must be a string, not {type(value).__name__}")
    if len(value) > limit:
        raise bad(f"{name} is {len(value)} characters long; at most {limit} are allowed")
    if _CONTROL.search(value):
        raise bad(f"{name} contains control characters")
    return value


def _optional(struct: dict[str, Any], key: str, check: Callable[[Any, str], str]) -> str:
    """``struct[key]`` checked by ``check``; absent, empty or SQL's NULL word gives ''."""
    value = struct.get(key, "")
    if isinstance(value, str) and value in NULL_WORDS:
        return ""
    return check(value, key)


def optional_identifier(struct: dict[str, Any], key: str) -> str:
    return _optional(struct, key, lambda value, name: check_identifier(name, value))


def absolute_path(value: Any, name: str) -> str:
    """An absolute path with no '..' part: it will be opened, never run."""
    path = text(value, name, MAX_PATH)
    if not path.startswith("/"):
        raise bad(f"{name} {preview(path)} must be an absolute path")
    if ".." in path.split("/"):
        raise bad(f"{name} {preview(path)} must not contain '..'")
    return path


@dataclass(frozen=True)
class Roots:
    """Where the files a caller names may be, and how large they may be (config ``*_roots``)."""

    dirs: tuple[str, ...]
    max_bytes: int


def confined_path(value: Any, name: str, roots: Roots) -> str:
    """An absolute path naming a regular file under ``roots`` (swampd.paths); checked now, at the call."""
    path = absolute_path(value, name)
    try:
        confine(path, roots.dirs, roots.max_bytes, name)
    except PathRefused as exc:
        raise bad(str(exc)) from None
    return path


def optional_confined_path(struct: dict[str, Any], key: str, roots: Roots) -> str:
    return _optional(struct, key, lambda value, name: confined_path(value, name, roots))


def checksum(value: Any, name: str) -> str:
    if not isinstance(value, str) or CHECKSUM_RE.fullmatch(value) is None:
        raise bad(f"{name} must be a hexadecimal checksum (32 to 128 digits)")
    return value.lower()


def optional_checksum(struct: dict[str, Any], key: str) -> str:
    return _optional(struct, key, checksum)


def results_list(value: Any, roots: Roots) -> list[dict[str, Any]]:
    """The results a launch must upload to the viewer, checked member by member (files under ``roots``)."""
    if not isinstance(value, list):
        raise bad(f"results must be an array, not {type(value).__name__}")
    if len(value) > MAX_RESULTS:
        raise bad(f"results has {len(value)} entries; at most {MAX_RESULTS} are allowed")
    out = []
    for n, entry in enumerate(value):
        where = f"results[{n}]"
        entry = require_struct(entry, where)
        reject_unknown(entry, {"package", "package_type", "files", "source_archive", "tool_name"}, where)
        if "package" not in entry:
            raise bad(f"{where}.package is required")
        files = entry.get("files", [])
        if not isinstance(files, list) or len(files) > MAX_FILES:
            raise bad(f"{where}.files must be an array of at most {MAX_FILES} paths")
        checked: dict[str, Any] = {
            "package": text(entry["package"], f"{where}.package", 256),
            "package_type": text(entry.get("package_type", ""), f"{where}.package_type", 64),
            "tool_name": text(entry.get("tool_name", ""), f"{where}.tool_name", 256),
            "files": [confined_path(f, f"{where}.files[{i}]", roots) for i, f in enumerate(files)],
        }
        source = entry.get("source_archive", "")
        checked["source_archive"] = ("" if source in NULL_WORDS
                                     else confined_path(source, f"{where}.source_archive", roots))
        out.append(checked)
    return out


def integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{name} must be an int, not {type(value).__name__}")
    return value


def event_name(value: Any) -> str:
    name = text(value, "event", 64)
    if EVENT_RE.fullmatch(name) is None:
        raise bad(f"event {preview(name)} is not an event name")
    return name


def vmip(value: Any) -> str:
    address = text(value, "vmip", 260)
    if address and VMIP_RE.fullmatch(address) is None:
        raise bad(f"vmip {preview(address)} is not host[:port]")
    return address


def host_name(value: Any, name: str) -> str:
    """A host name ('' when absent), checked: it is written to the database as it is."""
    host = text(value, name, 128)
    if host and HOST_NAME_RE.fullmatch(host) is None:
        raise bad(f"{name} {preview(host)} is not a host name")
    return host


def viewer_state(value: Any) -> Any:
    """A viewer state, by SWAMP name ("READY") or code (2)."""
    from swampd.states import ViewerState

    if isinstance(value, str) and value.upper() in ViewerState.__members__:
        return ViewerState[value.upper()]
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return ViewerState(value)
        except ValueError:
            pass
    names = ", ".join(ViewerState.__members__)
    raise bad(f"state {preview(str(value))} is not a viewer state ({names})")


def seconds(value: Any, name: str, limit: float) -> float:
    """A number of seconds between 0 and ``limit``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 <= value <= limit:
        raise bad(f"{name} must be between 0 and {limit:g} seconds")
    return float(value)
