"""Configuration: TOML from ``--config`` or ``SWAMPD_CONFIG``, else built-in defaults.

The file is validated completely at start: an unknown key, a wrong type or an
impossible value stops the daemon with the file, the key and the reason, so
that a typo never becomes a silently ignored setting.  With no file at all the
defaults give a working single-host daemon: the local scheduler and a process
viewer named CodeDX.

``model`` holds the typed settings, ``checks`` the value checks, ``parse``
the reading of a file; this package re-exports what the rest of swampd uses.
"""
from __future__ import annotations

from swampd.config.model import (
    MachineConfig,
    AssessmentsConfig,
    ALLOWED_UNIVERSES,
    DEFAULT_UNIVERSE,
    UNIVERSES,
    CODEDX_AUTH,
    COMMAND_PLACEHOLDERS,
    DEFAULT_PORT,
    DEFAULT_VIEWER_VERSIONS,
    PLACEHOLDER_RE,
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
    TOOL_PLACEHOLDERS,
    ToolConfig,
    ViewerConfig,
    WebServerConfig,
    config_path_from,
    daemon_url,
    default_state_dir,
    fill_placeholders,
    is_loopback,
)
from swampd.config.parse import load_config, parse_config

__all__ = [
    "ALLOWED_UNIVERSES", "MachineConfig", "AssessmentsConfig", "DEFAULT_UNIVERSE", "UNIVERSES", "CODEDX_AUTH", "COMMAND_PLACEHOLDERS", "DEFAULT_PORT", "DEFAULT_VIEWER_VERSIONS", "PLACEHOLDER_RE",
    "PLATFORMS", "SCHEDULERS", "AgentMonitorConfig", "CodeDxConfig", "Config", "ConfigError",
    "HTCondorConfig", "MariaDBConfig", "NativeConfig", "SchedulerConfig", "TOOL_PLACEHOLDERS", "ToolConfig", "ViewerConfig", "WebServerConfig", "config_path_from", "daemon_url",
    "default_state_dir", "fill_placeholders", "is_loopback", "load_config", "parse_config",
]
