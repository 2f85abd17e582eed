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
class HTCondorConfig:
    """``[htcondor]``: running viewer jobs on a pool (``[scheduler] kind = "htcondor"``)."""

    #: Collector "host[:port]"; empty: the pool of the local HTCondor configuration.
    pool: str = ""
    #: Name of the schedd to submit to; empty: the local schedd.
    schedd: str = ""
    #: vruntask on the execute nodes (pre/post commands, the vanilla executable).
    vruntask: str = "/usr/local/bin/vruntask"
    accounting_group: str = "group_viewer"
    priority: int = 10
    #: Seconds a job may wait without starting before HTCondor removes it; 0: the viewer's ready_timeout.
    queue_timeout: float = 0.0
    #: Seconds past a viewer's max_lifetime after which HTCondor holds the job (runtime backstop).
    runtime_margin: float = 3600.0
    #: Seconds a removed viewer has to shut down and save its database (SWAMP: 1200).
    job_max_vacate_time: int = 1200
    #: Seconds a removed job may take to leave the queue before it is forced out.
    remove_grace: float = 1500.0
    vm_networking_type: str = "nat"
    vm_bridge_interface: str = ""
    docker_network_type: str = ""
    #: ClassAd expression selecting the hypervisor nodes for vanilla-universe viewers.
    vanilla_requirements: str = ""
    #: Seconds one schedd or collector call may take before it counts as unanswered.
    timeout: float = 30.0
    #: A held job: "remove" it once its hold reason is recorded, or "leave" it held for an operator.
    on_hold: str = "remove"
    #: Publish SWAMP's generic collector ads (``SWAMP_vmu_viewer_*``) for the web server.
    advertise: bool = False
    #: ClassAdLifetime of those ads, and how often live viewers' ads are refreshed.
    ad_lifetime: int = 900
    ad_refresh: float = 300.0
    #: Port written into ``SWAMP_vmu_viewer_vmip`` when the reported address has none.
    viewer_port: int = 8443


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
    #: HTCondor universe ("vm", "docker", "vanilla"); empty: the platform's usual one.
    universe: str = ""
    #: Container image (docker platform).
    image: str = ""
    #: Memory (MB) and CPUs of the viewer machine.
    memory: int = 6144
    cpus: int = 2
    # -- vm platform (vruntask through libvirt; image is the platform qcow2's absolute path)
    libvirt_uri: str = "qemu:///system"
    #: "kvm" in production; "qemu" is software emulation (TCG), for hosts without KVM.
    domain_type: str = "kvm"
    #: none | user | network:NAME | bridge:NAME | tap:DEV (a tap the host set up).
    network: str = "network:default"
    #: Direct kernel boot (test guests); empty: boot the image's own boot loader.
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    #: Seconds from VM start until the guest must have written its address.
    boot_timeout: float = 300.0
    #: Seconds a guest has to power off (and save its database) after the ACPI request.
    shutdown_timeout: float = 300.0
    #: Size of the empty output disk, MiB (SWAMP: 3 GiB).
    output_disk_mib: int = 3072
    #: Base of the viewer's props file (the API key is appended); empty: the key alone.
    props_file: str = ""
    #: Where saved viewer databases go: <viewer_store>/<project>/V-Runs/<viewer_uuid>/
    #: (SWAMP: /swamp/SCAProjects); empty: <state_dir>/SCAProjects.
    viewer_store: str = ""


#: SWAMP's viewer_version_uuid of each viewer (viewer_store seed rows), for launch history rows.
DEFAULT_VIEWER_VERSIONS = {"CodeDX": "5d0fb63c-865a-11e3-88bb-001a4a81450b"}
#: Code Dx auth header forms: SWAMP's images set a system key; newer Code Dx takes API-Key.
CODEDX_AUTH = ("system-key", "api-key")


@dataclass(frozen=True)
class MariaDBConfig:
    """The SWAMP database the daemon writes to (store_viewer, launch history).

    Present only when the file has a ``[mariadb]`` table; without one the
    daemon never talks to MariaDB.
    """

    host: str = "127.0.0.1"
    port: int = 3306
    #: A Unix socket path; used instead of host/port when set.
    unix_socket: str = ""
    user: str = "swampd"
    #: A file holding the password, readable by its owner only; empty for none.
    password_file: str = ""
    #: Database holding SWAMP's viewer_store tables and procedures.
    database: str = "viewer_store"
    connect_timeout: float = 5.0
    #: Seconds a single statement may take before the call counts as failed.
    read_timeout: float = 30.0
    #: Write viewer_launch_history rows and viewer_instance status (legacy columns).
    launch_history: bool = False
    viewer_versions: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_VIEWER_VERSIONS))


@dataclass(frozen=True)
class CodeDxConfig:
    """Uploading launch results into the viewer's Code Dx once it is READY.

    Present only when the file has a ``[codedx]`` table.
    """

    #: The viewers that run Code Dx.
    viewers: tuple[str, ...] = ("CodeDX",)
    #: Code Dx base URL (with its context path) made from the viewer's address.
    base_url: str = "https://{vmip}/{url_uuid}"
    auth: str = "system-key"
    #: TLS certificate verification; on unless an operator turns it off.
    verify_tls: bool = True
    #: CA bundle (PEM) that signs the viewers' certificates, e.g. the facility's CA.
    ca_bundle: str = ""
    #: Seconds for one HTTP request (connect and read).
    timeout: float = 30.0
    #: Seconds between polls of an analysis job.
    poll_interval: float = 2.0
    #: Seconds one upload attempt waits for its analysis job before trying again later.
    job_wait: float = 120.0


@dataclass(frozen=True)
class Config:
    agentmonitor: AgentMonitorConfig
    scheduler: SchedulerConfig
    viewers: dict[str, ViewerConfig]
    source: str = "built-in defaults"
    mariadb: MariaDBConfig | None = None
    codedx: CodeDxConfig | None = None
    htcondor: HTCondorConfig = field(default_factory=HTCondorConfig)

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
    _no_unknown(data, {"agentmonitor", "scheduler", "viewers", "mariadb", "codedx", "htcondor"}, source, "")
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
    mariadb = _mariadb(data["mariadb"], source) if "mariadb" in data else None
    codedx = _codedx(data["codedx"], source, viewers) if "codedx" in data else None
    htcondor = _htcondor(data["htcondor"], source) if "htcondor" in data else HTCondorConfig()
    return Config(agentmonitor, scheduler, viewers, source, mariadb, codedx, htcondor=htcondor)


HTCONDOR_ON_HOLD = ("remove", "leave")
UNIVERSES_FOR_PLATFORM = {"vm": ("vm", "vanilla"), "docker": ("docker",), "process": ("vanilla",)}
_CONDOR_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_CONDOR_PATH_RE = re.compile(r"[A-Za-z0-9_./+@:-]+")
_HOST_PORT_RE = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")
_IMAGE_RE = re.compile(r"[A-Za-z0-9/][A-Za-z0-9._/:@+-]{0,254}")  # docker reference or vm image path
_NETWORK_RE = re.compile(r"none|user|(network|bridge):[A-Za-z0-9._-]+|tap:[A-Za-z0-9._-]{1,15}")


def _htcondor(table: Any, source: str) -> HTCondorConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: htcondor: must be a table")
    values = _fields(table, source, "htcondor", {
        "pool": (str, _matches(_HOST_PORT_RE, "host or host:port", empty_ok=True)),
        "schedd": (str, _matches(_CONDOR_PATH_RE, "a schedd name", empty_ok=True)),
        "vruntask": (str, _matches(_CONDOR_PATH_RE, "a path without spaces, quotes or '$'")),
        "accounting_group": (str, _matches(_CONDOR_NAME_RE, "letters, digits, '_', '.', '-'")),
        "priority": (int, None),
        "queue_timeout": ((int, float), _not_negative),
        "runtime_margin": ((int, float), _not_negative),
        "job_max_vacate_time": (int, _not_negative),
        "remove_grace": ((int, float), _positive),
        "vm_networking_type": (str, _matches(_CONDOR_NAME_RE, "letters, digits, '_', '.', '-'")),
        "vm_bridge_interface": (str, _matches(_CONDOR_NAME_RE, "an interface name", empty_ok=True)),
        "docker_network_type": (str, _matches(_CONDOR_NAME_RE, "a docker network name", empty_ok=True)),
        "vanilla_requirements": (str, _classad_expression),
        "timeout": ((int, float), _positive),
        "on_hold": (str, _one_of(HTCONDOR_ON_HOLD)),
        "advertise": (bool, None),
        "ad_lifetime": (int, _positive),
        "ad_refresh": ((int, float), _positive),
        "viewer_port": (int, _port),
    })
    condor = HTCondorConfig(**values)
    if condor.ad_refresh * 2 > condor.ad_lifetime:
        raise ConfigError(
            f"{source}: htcondor.ad_refresh: {condor.ad_refresh:g}s is not well inside "
            f"ad_lifetime ({condor.ad_lifetime}s); make it at most half of it"
        )
    return condor


def _matches(pattern: re.Pattern[str], what: str, empty_ok: bool = False) -> Check:
    def check(value: str) -> str | None:
        if value == "" and empty_ok:
            return None
        return None if pattern.fullmatch(value) else f"must be {what}"

    return check


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must not be negative"


def _classad_expression(value: str) -> str | None:
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


def _mariadb(table: Any, source: str) -> MariaDBConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: mariadb: must be a table")
    values = _fields(table, source, "mariadb", {
        "host": (str, _nonempty),
        "port": (int, _port),
        "unix_socket": (str, None),
        "user": (str, _nonempty),
        "password_file": (str, None),
        "database": (str, _sql_name),
        "connect_timeout": ((int, float), _positive),
        "read_timeout": ((int, float), _positive),
        "launch_history": (bool, None),
        "viewer_versions": (dict, _viewer_versions),
    })
    return MariaDBConfig(**values)


def _codedx(table: Any, source: str, viewers: dict[str, ViewerConfig]) -> CodeDxConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: codedx: must be a table")
    values = _fields(table, source, "codedx", {
        "viewers": (list, _string_list),
        "base_url": (str, _url_template),
        "auth": (str, _one_of(CODEDX_AUTH)),
        "verify_tls": (bool, None),
        "ca_bundle": (str, _readable_file),
        "timeout": ((int, float), _positive),
        "poll_interval": ((int, float), _positive),
        "job_wait": ((int, float), _positive),
    })
    if "viewers" in values:
        values["viewers"] = tuple(values["viewers"])
        for name in values["viewers"]:
            if name not in viewers:
                raise ConfigError(f"{source}: codedx.viewers: {name!r} is not a configured viewer")
    base_url = values.get("base_url", CodeDxConfig.base_url)
    if not base_url.startswith(("https://", "http://")):
        raise ConfigError(f"{source}: codedx.base_url: must start with https:// or http://")
    return CodeDxConfig(**values)


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
        "universe": (str, _one_of(("vm", "docker", "vanilla"))),
        "image": (str, _matches(_IMAGE_RE, "an image reference (registry/name:tag)", empty_ok=True)),
        "memory": (int, _positive),
        "cpus": (int, _positive),
        "libvirt_uri": (str, _nonempty),
        "domain_type": (str, _one_of(("kvm", "qemu"))),
        "network": (str, _matches(_NETWORK_RE, "none, user, network:NAME, bridge:NAME or tap:DEV")),
        "kernel": (str, _absolute_or_empty),
        "initrd": (str, _absolute_or_empty),
        "cmdline": (str, _one_line),
        "boot_timeout": ((int, float), _positive),
        "shutdown_timeout": ((int, float), _positive),
        "output_disk_mib": (int, _positive),
        "props_file": (str, _absolute_or_empty),
        "viewer_store": (str, _absolute_or_empty),
    })
    if values.get("platform") == "vm" and not str(values.get("image", "")).startswith("/"):
        raise ConfigError(f"{source}: {where}.image: a vm viewer needs the absolute path of its platform image")
    if "command" in values:
        values["command"] = tuple(values["command"])
    viewer = ViewerConfig(name, **values)
    if viewer.universe and viewer.universe not in UNIVERSES_FOR_PLATFORM[viewer.platform]:
        raise ConfigError(
            f"{source}: {where}.universe: the {viewer.platform} platform runs in the "
            f"{' or '.join(UNIVERSES_FOR_PLATFORM[viewer.platform])} universe, not {viewer.universe}"
        )
    return viewer


Check = Callable[[Any], str | None]


def _fields(table: dict[str, Any], source: str, where: str, spec: dict[str, tuple[Any, Check | None]]) -> dict[str, Any]:
    _no_unknown(table, set(spec), source, where)
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


def _sql_name(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_$]{1,64}", value) else "must be a database name (letters, digits, _, $)"


def _string_list(value: list[Any]) -> str | None:
    return None if all(isinstance(v, str) and v for v in value) else "must be a list of non-empty strings"


def _viewer_versions(value: dict[str, Any]) -> str | None:
    for name, uuid_ in value.items():
        if not isinstance(uuid_, str) or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,44}", uuid_) is None:
            return f"{name}: must be a viewer_version_uuid string"
    return None


def _readable_file(value: str) -> str | None:
    if value and not os.path.isfile(value):
        return f"{value}: no such file"
    return None


def _absolute_or_empty(value: str) -> str | None:
    return None if value == "" or value.startswith("/") else "must be an absolute path"


def _one_line(value: str) -> str | None:
    return None if not any(ch in value for ch in "\n\r\0") else "must be one line"


def _probe_path(value: str) -> str | None:
    return None if value.startswith("/") else "must start with '/'"


def fill_placeholders(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` with ``values[name]``; names were checked at load time."""
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], template)
