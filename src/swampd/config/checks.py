"""Checks of configuration values: each returns None when fine, else the reason."""
from __future__ import annotations

import os
import re
from typing import Any, Callable

from swampd.config.model import COMMAND_PLACEHOLDERS, PLACEHOLDER_RE, TOOL_PLACEHOLDERS, ConfigError

def matches(pattern: re.Pattern[str], what: str, empty_ok: bool = False) -> Check:
    def check(value: str) -> str | None:
        if value == "" and empty_ok:
            return None
        return None if pattern.fullmatch(value) else f"must be {what}"

    return check


def not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def classad_expression(value: str) -> str | None:
    if value == "":
        return None
    if any(ch in value for ch in "\n\r\0"):
        return "must be one line"
    import classad2  # only needed by pools; the local scheduler never gets here

    try:
        classad2.ExprTree(value)
    except Exception:
        return "is not a valid ClassAd expression"
    return None


Check = Callable[[Any], str | None]


def fields(table: dict[str, Any], source: str, where: str, spec: dict[str, tuple[Any, Check | None]]) -> dict[str, Any]:
    no_unknown(table, set(spec), source, where)
    out: dict[str, Any] = {}
    for key, value in table.items():
        types, check = spec[key]
        if (isinstance(value, bool) and types is not bool) or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
            raise ConfigError(f"{source}: {where}.{key}: expected {expected}, got {type(value).__name__}")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{source}: {where}.{key}: {problem}")
        out[key] = value
    return out


def no_unknown(table: dict[str, Any], known: set[str], source: str, where: str) -> None:
    for key in table:
        if key not in known:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{source}: {prefix}{key}: unknown key (known: {', '.join(sorted(known))})")


def section(data: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {name}: must be a table")
    return value


def nonempty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number (0-65535)"


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def command_with(placeholders: frozenset[str]) -> Check:
    """An argv list whose placeholders are among ``placeholders``."""
    def check(value: list[Any]) -> str | None:
        if not value or not all(isinstance(part, str) and part for part in value):
            return "must be a non-empty list of non-empty strings (an argv list, no shell)"
        for part in value:
            if any(ch in part for ch in "\n\r\0"):
                return "must not hold line breaks or NUL"
            for placeholder in PLACEHOLDER_RE.findall(part):
                if placeholder not in placeholders:
                    return f"unknown placeholder {{{placeholder}}} (known: {', '.join(sorted(placeholders))})"
        return None

    return check


command = command_with(COMMAND_PLACEHOLDERS)
tool_command = command_with(TOOL_PLACEHOLDERS)


def url_template(value: str) -> str | None:
    for placeholder in PLACEHOLDER_RE.findall(value):
        if placeholder not in {"vmip", "url_uuid", "project", "viewer"}:
            return f"unknown placeholder {{{placeholder}}} (known: project, url_uuid, viewer, vmip)"
    return None


def sql_name(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_$]{1,64}", value) else "must be a database name (letters, digits, _, $)"


def string_list(value: list[Any]) -> str | None:
    return None if all(isinstance(v, str) and v for v in value) else "must be a list of non-empty strings"


def viewer_versions(value: dict[str, Any]) -> str | None:
    for name, uuid_ in value.items():
        if not isinstance(uuid_, str) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,44}", uuid_) is None:
            return f"{name}: must be a viewer_version_uuid string"
    return None


def readable_file(value: str) -> str | None:
    if value and not os.path.isfile(value):
        return f"{value}: no such file"
    return None


def absolute_or_empty(value: str) -> str | None:
    return None if value == "" or value.startswith("/") else "must be an absolute path"


def one_line(value: str) -> str | None:
    return None if not any(ch in value for ch in "\n\r\0") else "must be one line"


def probe_path(value: str) -> str | None:
    return None if value.startswith("/") else "must start with '/'"


def daemon_url_value(value: str) -> str | None:
    if value == "":
        return None
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(:[0-9]{1,5})?/?", value):
        return "must be http(s)://host[:port]/"
    return None


def web_base_url(value: str) -> str | None:
    """An http(s) URL with a host, no query, fragment, credentials or white space."""
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?", value):
        return "must be an http:// or https:// URL (host, optional port and path; no query or credentials)"
    return None


def at_least(minimum: int) -> Check:
    def check(value: int) -> str | None:
        return None if value >= minimum else f"must be at least {minimum}"

    return check


def file_mode(value: int) -> str | None:
    if 0 <= value <= 0o777:
        return None
    return "must be a file mode such as 0o660 (write it as a TOML octal number)"


def group_name(value: str) -> str | None:
    if value == "":
        return None
    import grp

    try:
        grp.getgrnam(value)
    except KeyError:
        return f"{value!r} is not a group on this host"
    return None


def absolute_paths(value: list[Any]) -> str | None:
    if not all(isinstance(v, str) and v.startswith("/") for v in value):
        return "must be a list of absolute paths"
    if any(".." in v.split("/") for v in value):
        return "must not contain '..'"
    return None
