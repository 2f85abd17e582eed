"""Configuration: TOML from ``--config`` or ``SWAMPD_CONFIG``, else built-in defaults.

The file is validated completely at start: an unknown key, a wrong type or an
impossible value stops the daemon with the file, the key and the reason, so
that a typo never becomes a silently ignored setting.  With no file at all the
defaults give a working single-host daemon: the local scheduler and a process
viewer named CodeDX.
"""
from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from swampd.identifiers import VIEWER_NAME_RE

DEFAULT_PORT = 8084
PLATFORMS = ("vm", "docker", "process")
SCHEDULERS = ("local", "htcondor")
#: Placeholders a process viewer's command may use.
COMMAND_PLACEHOLDERS = frozenset({"port", "sandbox", "project", "viewer", "url_uuid", "python"})
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names file, key and reason."""


@dataclass(frozen=True)
class AgentMonitorConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    state_dir: Path = field(default_factory=lambda: default_state_dir())
    token_file: str = ""
    #: Requests larger than this are refused with HTTP 413 before parsing.
    max_request_bytes: int = 32 * 1024 * 1024
    #: Seconds between bulk resyncs of every active viewer.
    resync_interval: float = 5.0
    #: Worker threads that reconcile keys (one key is never worked by two).
    workers: int = 4


@dataclass(frozen=True)
class SchedulerConfig:
    kind: str = "local"
    #: Seconds between a polite stop (TERM) and a forced one (KILL).
    stop_grace: float = 10.0


@dataclass(frozen=True)
class ViewerConfig:
    name: str
    platform: str = "process"
    command: tuple[str, ...] = ("{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1")
    ready_timeout: float = 600.0
    idle_timeout: float = 3600.0
    max_lifetime: float = 28800.0
    #: How the user's URL is made from the reported address.
    url_template: str = "http://{vmip}/"
    #: Path the process platform probes before it calls the viewer up.
    probe_path: str = "/"


@dataclass(frozen=True)
class Config:
    agentmonitor: AgentMonitorConfig
    scheduler: SchedulerConfig
    viewers: dict[str, ViewerConfig]
    source: str = "built-in defaults"

    @property
    def viewer_names(self) -> frozenset[str]:
        return frozenset(self.viewers)

    @property
    def url(self) -> str:
        """The URL clients use to reach this daemon."""
        return daemon_url(self.agentmonitor.host, self.agentmonitor.port)


def default_state_dir() -> Path:
    """The user's state directory (XDG), where the registry lives by default."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base) / "swampd"


def daemon_url(host: str, port: int) -> str:
    """The client URL for a bind address (a wildcard bind is reached on loopback)."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}/"


def is_loopback(host: str) -> bool:
    """True when binding to ``host`` exposes the daemon to this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def config_path_from(cli_value: str | None) -> str | None:
    """The file to read: ``--config``, else ``SWAMPD_CONFIG``, else none."""
    return cli_value or os.environ.get("SWAMPD_CONFIG") or None


def load_config(path: str | None) -> Config:
    """Read and validate ``path``, or return the built-in defaults when None."""
    if path is None:
        return Config(AgentMonitorConfig(), SchedulerConfig(), {"CodeDX": ViewerConfig("CodeDX")})
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, path)


def parse_config(data: dict[str, Any], source: str) -> Config:
    """Validate a parsed TOML document; raise ConfigError naming the bad key."""
    _no_unknown(data, {"agentmonitor", "scheduler", "viewers"}, source, "")
    am = _section(data, "agentmonitor", source)
    sc = _section(data, "scheduler", source)
    agentmonitor = AgentMonitorConfig(
        **_fields(am, source, "agentmonitor", {
            "host": (str, _nonempty),
            "port": (int, _port),
            "state_dir": (str, _nonempty),
            "token_file": (str, None),
            "max_request_bytes": (int, _positive),
            "resync_interval": ((int, float), _positive),
            "workers": (int, _positive),
        })
    )
    if isinstance(agentmonitor.state_dir, str):
        agentmonitor = replace(agentmonitor, state_dir=Path(os.path.expanduser(agentmonitor.state_dir)))
    if not is_loopback(agentmonitor.host) and not agentmonitor.token_file:
        raise ConfigError(
            f"{source}: agentmonitor.token_file: required when host is not loopback "
            f"(host = {agentmonitor.host!r}); callers must send a bearer token"
        )
    scheduler = SchedulerConfig(
        **_fields(sc, source, "scheduler", {
            "kind": (str, _one_of(SCHEDULERS)),
            "stop_grace": ((int, float), _positive),
        })
    )
    viewers_table = data.get("viewers", None)
    if viewers_table is None:
        viewers = {"CodeDX": ViewerConfig("CodeDX")}
    else:
        if not isinstance(viewers_table, dict) or not viewers_table:
            raise ConfigError(f"{source}: viewers: must hold at least one [viewers.NAME] table")
        viewers = {name: _viewer(name, table, source) for name, table in viewers_table.items()}
    return Config(agentmonitor, scheduler, viewers, source)


def _viewer(name: str, table: Any, source: str) -> ViewerConfig:
    where = f"viewers.{name}"
    if VIEWER_NAME_RE.fullmatch(name) is None:
        raise ConfigError(f"{source}: {where}: a viewer name is a letter then letters, digits, '_' or '-'")
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {where}: must be a table")
    values = _fields(table, source, where, {
        "platform": (str, _one_of(PLATFORMS)),
        "command": (list, _command),
        "ready_timeout": ((int, float), _positive),
        "idle_timeout": ((int, float), _positive),
        "max_lifetime": ((int, float), _positive),
        "url_template": (str, _url_template),
        "probe_path": (str, _probe_path),
    })
    if "command" in values:
        values["command"] = tuple(values["command"])
    return ViewerConfig(name, **values)


Check = Callable[[Any], str | None]


def _fields(table: dict[str, Any], source: str, where: str, spec: dict[str, tuple[Any, Check | None]]) -> dict[str, Any]:
    _no_unknown(table, set(spec), source, where)
    out: dict[str, Any] = {}
    for key, value in table.items():
        types, check = spec[key]
        if isinstance(value, bool) or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
            raise ConfigError(f"{source}: {where}.{key}: expected {expected}, got {type(value).__name__}")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(f"{source}: {where}.{key}: {problem}")
        out[key] = value
    return out


def _no_unknown(table: dict[str, Any], known: set[str], source: str, where: str) -> None:
    for key in table:
        if key not in known:
            prefix = f"{where}." if where else ""
            raise ConfigError(f"{source}: {prefix}{key}: unknown key (known: {', '.join(sorted(known))})")


def _section(data: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {name}: must be a table")
    return value


def _nonempty(value: str) -> str | None:
    return None if value.strip() else "must not be empty"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _port(value: int) -> str | None:
    return None if 0 <= value <= 65535 else "must be a port number (0-65535)"


def _one_of(choices: tuple[str, ...]) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _command(value: list[Any]) -> str | None:
    if not value or not all(isinstance(part, str) and part for part in value):
        return "must be a non-empty list of non-empty strings (an argv list, no shell)"
    for part in value:
        for placeholder in PLACEHOLDER_RE.findall(part):
            if placeholder not in COMMAND_PLACEHOLDERS:
                return f"unknown placeholder {{{placeholder}}} (known: {', '.join(sorted(COMMAND_PLACEHOLDERS))})"
    return None


def _url_template(value: str) -> str | None:
    for placeholder in PLACEHOLDER_RE.findall(value):
        if placeholder not in {"vmip", "url_uuid", "project", "viewer"}:
            return f"unknown placeholder {{{placeholder}}} (known: project, url_uuid, viewer, vmip)"
    return None


def _probe_path(value: str) -> str | None:
    return None if value.startswith("/") else "must start with '/'"


def fill_placeholders(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` with ``values[name]``; names were checked at load time."""
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)
