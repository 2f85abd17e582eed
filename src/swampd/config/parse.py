"""Reading and validating a configuration file into the typed settings."""
from __future__ import annotations

import os
import re
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

from swampd.config import checks
from swampd.config.model import (
    ALLOWED_UNIVERSES,
    AssessmentsConfig,
    UNIVERSES,
    CODEDX_AUTH,
    PLATFORMS,
    SCHEDULERS,
    AgentMonitorConfig,
    CodeDxConfig,
    Config,
    ConfigError,
    HTCondorConfig,
    MariaDBConfig,
    NativeConfig,
    SchedulerConfig,
    ToolConfig,
    ViewerConfig,
    WebServerConfig,
    default_tools,
    is_loopback,
)
from swampd.identifiers import VIEWER_NAME_RE

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
    checks.no_unknown(data, {"agentmonitor", "scheduler", "viewers", "mariadb", "codedx", "htcondor",
                                  "native", "tools", "assessments", "webserver"}, source, "")
    am = checks.section(data, "agentmonitor", source)
    sc = checks.section(data, "scheduler", source)
    agentmonitor = AgentMonitorConfig(
        **checks.fields(am, source, "agentmonitor", {
            "host": (str, checks.nonempty),
            "port": (int, checks.port),
            "state_dir": (str, checks.nonempty),
            "token_file": (str, None),
            "url": (str, checks.daemon_url_value),
            "tls_cert": (str, checks.absolute_or_empty),
            "tls_key": (str, checks.absolute_or_empty),
            "tls_ca": (str, checks.absolute_or_empty),
            "max_request_bytes": (int, checks.positive),
            "resync_interval": ((int, float), checks.positive),
            "workers": (int, checks.positive),
            "one_cpu": (bool, None),
            "max_connections": (int, checks.at_least(16)),
            "request_threads": (int, checks.positive),
            "report_threads": (int, checks.positive),
            "request_timeout": ((int, float), checks.positive),
            "keepalive_timeout": ((int, float), checks.positive),
            "large_body_bytes": (int, checks.positive),
            "max_large_bodies": (int, checks.positive),
            "unix_socket": (str, checks.absolute_or_empty),
            "unix_socket_mode": (int, checks.file_mode),
            "unix_socket_group": (str, checks.group_name),
            "viewer_db_roots": (list, checks.absolute_paths),
            "result_roots": (list, checks.absolute_paths),
            "max_viewer_db_bytes": (int, checks.positive),
            "max_result_bytes": (int, checks.positive),
            "log_format": (str, checks.one_of(("text", "json"))),
        })
    )
    for key in ("viewer_db_roots", "result_roots"):
        value = getattr(agentmonitor, key)
        if isinstance(value, list):
            agentmonitor = replace(agentmonitor, **{key: tuple(os.path.normpath(v) for v in value)})
    if isinstance(agentmonitor.state_dir, str):
        agentmonitor = replace(agentmonitor, state_dir=Path(os.path.expanduser(agentmonitor.state_dir)))
    if bool(agentmonitor.tls_cert) != bool(agentmonitor.tls_key):
        raise ConfigError(f"{source}: agentmonitor.tls_key: tls_cert and tls_key go together")
    if agentmonitor.tls_cert and agentmonitor.url.startswith("http:"):
        raise ConfigError(f"{source}: agentmonitor.url: must be https:// when tls_cert is set")
    if not is_loopback(agentmonitor.host) and not agentmonitor.token_file:
        raise ConfigError(
            f"{source}: agentmonitor.token_file: required when host is not loopback "
            f"(host = {agentmonitor.host!r}); callers must send a bearer token"
        )
    scheduler = SchedulerConfig(  # run_as is resolved to ids at start (swampd.runas)
        **checks.fields(sc, source, "scheduler", {
            "kind": (str, checks.one_of(SCHEDULERS)),
            "stop_grace": ((int, float), checks.positive),
            "run_as": (str, checks.matches(_ACCOUNT_RE, "a user name", empty_ok=True)),
            "run_as_group": (str, checks.matches(_ACCOUNT_RE, "a group name", empty_ok=True)),
            "allow_root_jobs": (bool, None),
        })
    )
    if scheduler.run_as_group and not scheduler.run_as:
        raise ConfigError(f"{source}: scheduler.run_as_group: needs scheduler.run_as")
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
    native = _native(data["native"], source) if "native" in data else NativeConfig()
    tools = _tools(data["tools"], source) if "tools" in data else default_tools()
    assessments = _assessments(data["assessments"], source) if "assessments" in data else AssessmentsConfig()
    webserver = _webserver(data["webserver"], source) if "webserver" in data else None
    return Config(agentmonitor, scheduler, viewers, source, mariadb, codedx, htcondor=htcondor, native=native,
                  tools=tools, assessments=assessments, webserver=webserver)


_TOOL_TEXT_RE = re.compile(r"[^\x00-\x1f\x7f]{1,100}")
_CONCURRENCY_RE = re.compile(r"[A-Za-z0-9_.]+(:[0-9]+)?")


def _tools(table: Any, source: str) -> dict[str, ToolConfig]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: tools: must hold [tools.NAME] tables")
    return {name: _tool(name, value, source) for name, value in table.items()}


def _tool(name: str, table: Any, source: str) -> ToolConfig:
    """One ``[tools.NAME]``: the names reach BOGs and status text, the command an argv list, paths absolute."""
    where = f"tools.{name}"
    if VIEWER_NAME_RE.fullmatch(name) is None:
        raise ConfigError(f"{source}: {where}: a tool name is a letter then letters, digits, '_' or '-'")
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: {where}: must be a table")
    values = checks.fields(table, source, where, {
        "command": (list, checks.tool_command),
        "tool_name": (str, checks.matches(_TOOL_TEXT_RE, "printable text of at most 100 characters",
                                          empty_ok=True)),
        "version": (str, checks.matches(_TOOL_TEXT_RE, "printable text of at most 100 characters",
                                        empty_ok=True)),
        "package_types": (list, checks.string_list),
        "run_timeout": ((int, float), checks.positive),
        "runsh": (str, checks.absolute_or_empty),
        "tool_path": (str, checks.absolute_or_empty),
        "max_concurrent": (int, checks.not_negative),
        "concurrency_limits": (str, checks.matches(_CONCURRENCY_RE, "an HTCondor concurrency limit name",
                                                   empty_ok=True)),
    })
    for key in ("command", "package_types"):
        if key in values:
            values[key] = tuple(values[key])
    for key in ("tool_name", "version"):
        if key in values and values[key] != values[key].strip():
            raise ConfigError(f"{source}: {where}.{key}: must not start or end with white space")
    tool = ToolConfig(name, **values)
    if not tool.command and not tool.runsh:
        raise ConfigError(f"{source}: {where}: needs a command (process platform) or a runsh (vm platform)")
    return tool


def _native(table: Any, source: str) -> NativeConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: native: must be a table")
    return NativeConfig(**checks.fields(table, source, "native", {
        "max_unpacked_bytes": (int, checks.positive),
        "max_archive_members": (int, checks.positive),
        "report_rows": (int, checks.positive),
    }))


HTCONDOR_ON_HOLD = ("remove", "leave")




_ACCOUNT_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?")


_CONDOR_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


_CONDOR_PATH_RE = re.compile(r"[A-Za-z0-9_./+@:-]+")


_HOST_PORT_RE = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?")


_IMAGE_RE = re.compile(r"[A-Za-z0-9/][A-Za-z0-9._/:@+-]{0,254}")  # docker reference or vm image path


_NETWORK_RE = re.compile(r"none|user|(network|bridge):[A-Za-z0-9._-]+|tap:[A-Za-z0-9._-]{1,15}")


def _htcondor(table: Any, source: str) -> HTCondorConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: htcondor: must be a table")
    values = checks.fields(table, source, "htcondor", {
        "pool": (str, checks.matches(_HOST_PORT_RE, "host or host:port", empty_ok=True)),
        "schedd": (str, checks.matches(_CONDOR_PATH_RE, "a schedd name", empty_ok=True)),
        "vruntask": (str, checks.matches(_CONDOR_PATH_RE, "a path without spaces, quotes or '$'")),
        "accounting_group": (str, checks.matches(_CONDOR_NAME_RE, "letters, digits, '_', '.', '-'")),
        "priority": (int, None),
        "queue_timeout": ((int, float), checks.not_negative),
        "runtime_margin": ((int, float), checks.not_negative),
        "job_max_vacate_time": (int, checks.not_negative),
        "remove_grace": ((int, float), checks.positive),
        "vm_networking_type": (str, checks.matches(_CONDOR_NAME_RE, "letters, digits, '_', '.', '-'")),
        "vm_bridge_interface": (str, checks.matches(_CONDOR_NAME_RE, "an interface name", empty_ok=True)),
        "docker_network_type": (str, checks.matches(_CONDOR_NAME_RE, "a docker network name", empty_ok=True)),
        "vanilla_requirements": (str, checks.classad_expression),
        "periodic_hold": (str, checks.classad_expression),
        "timeout": ((int, float), checks.positive),
        "on_hold": (str, checks.one_of(HTCONDOR_ON_HOLD)),
        "advertise": (bool, None),
        "ad_lifetime": (int, checks.positive),
        "ad_refresh": ((int, float), checks.positive),
        "viewer_port": (int, checks.port),
    })
    condor = HTCondorConfig(**values)
    if condor.ad_refresh * 2 > condor.ad_lifetime:
        raise ConfigError(
            f"{source}: htcondor.ad_refresh: {condor.ad_refresh:g}s is not well inside "
            f"ad_lifetime ({condor.ad_lifetime}s); make it at most half of it"
        )
    return condor


def _mariadb(table: Any, source: str) -> MariaDBConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: mariadb: must be a table")
    values = checks.fields(table, source, "mariadb", {
        "host": (str, checks.nonempty),
        "port": (int, checks.port),
        "unix_socket": (str, None),
        "user": (str, checks.nonempty),
        "password_file": (str, None),
        "database": (str, checks.sql_name),
        "connect_timeout": ((int, float), checks.positive),
        "read_timeout": ((int, float), checks.positive),
        "launch_history": (bool, None),
        "viewer_versions": (dict, checks.viewer_versions),
        "assessment_database": (str, checks.sql_name),
        "metric_database": (str, checks.sql_name),
    })
    return MariaDBConfig(**values)


def _webserver(table: Any, source: str) -> WebServerConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: webserver: must be a table")
    values = checks.fields(table, source, "webserver", {
        "base_url": (str, checks.web_base_url),
        "verify_tls": (bool, None),
        "ca_bundle": (str, checks.readable_file),
        "timeout": ((int, float), checks.positive),
    })
    if "base_url" not in values:
        raise ConfigError(f"{source}: webserver.base_url: required (SWAMP's swamp_api_web_server)")
    return WebServerConfig(**values)


def _codedx(table: Any, source: str, viewers: dict[str, ViewerConfig]) -> CodeDxConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: codedx: must be a table")
    values = checks.fields(table, source, "codedx", {
        "viewers": (list, checks.string_list),
        "base_url": (str, checks.url_template),
        "auth": (str, checks.one_of(CODEDX_AUTH)),
        "verify_tls": (bool, None),
        "ca_bundle": (str, checks.readable_file),
        "timeout": ((int, float), checks.positive),
        "poll_interval": ((int, float), checks.positive),
        "job_wait": ((int, float), checks.positive),
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
    values = checks.fields(table, source, where, {
        "platform": (str, checks.one_of(PLATFORMS)),
        "command": (list, checks.command),
        "ready_timeout": ((int, float), checks.positive),
        "idle_timeout": ((int, float), checks.positive),
        "max_lifetime": ((int, float), checks.positive),
        "url_template": (str, checks.url_template),
        "probe_path": (str, checks.probe_path),
        "props_file": (str, checks.absolute_or_empty),
        "viewer_store": (str, checks.absolute_or_empty),
        **MACHINE_FIELDS,
    })
    if "command" in values:
        values["command"] = tuple(values["command"])
    return _machine_checked(ViewerConfig(name, **values), source, where)


#: The keys of how a machine runs, shared by [viewers.NAME] and [assessments].
MACHINE_FIELDS: dict[str, Any] = {
    "universe": (str, checks.one_of(UNIVERSES)),
    "image": (str, checks.matches(_IMAGE_RE, "an image reference (registry/name:tag)", empty_ok=True)),
    "memory": (int, checks.positive),
    "cpus": (int, checks.positive),
    "libvirt_uri": (str, checks.nonempty),
    "domain_type": (str, checks.one_of(("kvm", "qemu"))),
    "network": (str, checks.matches(_NETWORK_RE, "none, user, network:NAME, bridge:NAME or tap:DEV")),
    "kernel": (str, checks.absolute_or_empty),
    "initrd": (str, checks.absolute_or_empty),
    "cmdline": (str, checks.one_line),
    "boot_timeout": ((int, float), checks.positive),
    "shutdown_timeout": ((int, float), checks.positive),
    "output_disk_mib": (int, checks.positive),
}


def _machine_checked(machine: Any, source: str, where: str) -> Any:
    """A vm machine names its image by absolute path, and a universe must be able to run the platform."""
    if machine.platform == "vm" and not machine.image.startswith("/"):
        raise ConfigError(f"{source}: {where}.image: the vm platform needs the absolute path of its image")
    if machine.universe and machine.universe not in ALLOWED_UNIVERSES[machine.platform]:
        raise ConfigError(
            f"{source}: {where}.universe: the {machine.platform} platform runs in the "
            f"{' or '.join(ALLOWED_UNIVERSES[machine.platform])} universe, not {machine.universe}"
        )
    return machine


def _assessments(table: Any, source: str) -> AssessmentsConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: assessments: must be a table")
    values = checks.fields(table, source, "assessments", {
        "platform": (str, checks.one_of(("process", "vm"))),
        "max_concurrent": (int, checks.not_negative),
        "max_retries": (int, checks.not_negative),
        "queue_timeout": ((int, float), checks.positive),
        "run_margin": ((int, float), checks.not_negative),
        "collect_timeout": ((int, float), checks.positive),
        "package_roots": (list, checks.absolute_paths),
        "results_dir": (str, checks.absolute_or_empty),
        "project_store": (str, checks.absolute_or_empty),
        "metric_store": (str, checks.absolute_or_empty),
        "job_retention": ((int, float), checks.not_negative),
        "accounting_group": (str, checks.matches(_CONDOR_NAME_RE, "letters, digits, '_', '.', '-'")),
        "priority": (int, None),
        **MACHINE_FIELDS,
    })
    if "package_roots" in values:
        values["package_roots"] = tuple(os.path.normpath(v) for v in values["package_roots"])
    return _machine_checked(AssessmentsConfig(**values), source, "assessments")
