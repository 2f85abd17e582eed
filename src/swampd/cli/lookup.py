"""How the programs MariaDB starts find their configuration.

``launchviewer`` and ``kill_run`` run under ``sys_eval``/``sys_exec`` as the
``mysql`` user, with the server's environment (often no HOME, no login PATH,
no SWAMPD_* variables) and the server's working directory.  So the lookup
order is, first match wins:

1. ``--config FILE``
2. the ``SWAMPD_CONFIG`` environment variable (the wrapper scripts in
   ``etc/mariadb/`` export it)
3. ``/etc/swampd/swampd.toml``, when it exists
4. built-in defaults (the daemon at ``http://127.0.0.1:8084/``)

The daemon URL itself is ``--url``, else ``SWAMPD_URL``, else the file's
``[agentmonitor]`` Unix socket (when configured and present: whoever its
mode and group admit may call without a token, which is how the database's
OS user should call), else its host and port, else the default.  Nothing
here depends on HOME or the current directory.  Standard library only: these programs
start for every click.
"""
from __future__ import annotations

import os

SYSTEM_CONFIG = "/etc/swampd/swampd.toml"


def client_config(cli_value: str | None) -> str | None:
    """The configuration file a client started by the database reads, or None."""
    if cli_value:
        return cli_value
    if os.environ.get("SWAMPD_CONFIG"):
        return os.environ["SWAMPD_CONFIG"]
    return SYSTEM_CONFIG if os.path.isfile(SYSTEM_CONFIG) else None
