"""``kill_run``: the drop-in for SWAMP's kill entry point, for assessment runs and viewers.

``assessment.kill_assessment_run`` runs ``kill_run --execution_record_uuid
'<uuid>' --hard '<flag>'`` through ``sys_exec`` and only tests the exit
status: 0 becomes ``SUCCESS``, anything else ``ERROR``.  An assessment run's
uuid (``M-`` for metric runs) kills that run: its job removed, Terminating
then Terminated, ``complete_flag`` set.  For a viewer the
"execution record uuid" is the project uuid (SWAMP's kill_run matched it
with ``regexp()`` against the viewer job's run id), so this stops every
viewer of that project that is launching or running; a full viewer run id
``vrun_<project>_<viewer>`` is accepted too.  Stopping is idempotent, so a
project with nothing running is a success.

``--hard`` is accepted in every form PHP sends (``1``, ``0``, ``''``,
true/false): as SWAMP meant it, the stop is graceful (the guest shuts down
and saves its database) unless ``--hard`` is given and not false, which
removes the job at once.

Output: one line on stdout, ``SUCCESS: …`` or ``ERROR: …`` (under
``sys_exec`` it lands in the server's log, so it is kept to one line).
Exit status: 0 stopped or nothing to stop, 1 the daemon refused, 2 bad
arguments, 3 the daemon is unreachable.  Standard library only.
"""
from __future__ import annotations

import argparse
import re
import socket
import sys
import xmlrpc.client
from typing import Any

from swampd.cli.lookup import client_config
from swampd.cli.oneline import EXIT_ERROR, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, OneLineParser, say
from swampd.clients.rpc import connect, resolve

UUID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RUNNING_STATES = frozenset({1, 2, -1})  # LAUNCHING, READY, STOPPING



def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="kill_run", allow_abbrev=False,
                description="Stop the viewers of a project (SWAMP kill_run drop-in).")
    p.add_argument("--execution_record_uuid", required=True,
                   help="project uuid (as kill_assessment_run passes it for viewers) or vrun_<project>_<viewer>")
    p.add_argument("--hard", default="", help="1/true: remove the job at once; empty, 0 or false: a graceful stop")
    p.add_argument("--config", default=None, help="swampd configuration file (else SWAMPD_CONFIG, /etc/swampd)")
    p.add_argument("--url", default=None, help="AgentMonitor URL (else SWAMPD_URL, the config, the default)")
    return p




def targets(uuid: str, viewers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The viewers a kill of ``uuid`` means: its project's, or the one run id's."""
    if uuid.startswith("vrun_"):
        return [v for v in viewers if v["execrunid"] == uuid]
    return [v for v in viewers if v["projectid"] == uuid]


def is_hard(value: str) -> bool:
    """PHP sends 1, 0, '' or true/false (and the database NULL): hard only when given and not false."""
    return value.strip().lower() not in ("", "0", "false", "no", "null", "none")


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except SystemExit:
        raise
    except BaseException as exc:
        say(f"ERROR: kill_run failed: {type(exc).__name__}: {exc}")
        return EXIT_ERROR


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    uuid = args.execution_record_uuid
    if UUID_RE.fullmatch(uuid) is None:
        say(f"ERROR: --execution_record_uuid {uuid[:40]!r} is not a uuid")
        return EXIT_USAGE
    target = resolve(args.url, client_config(args.config))
    url = target.url
    api = connect(*target, timeout=30.0).agentMonitor
    hard = is_hard(args.hard)
    try:
        if not uuid.startswith("vrun_"):
            run = api.getRun(uuid)
            if run["state"] != 0:
                run = api.killRun(uuid, hard)
                say(f"SUCCESS: {uuid} {run['state_name'].lower()}{' (hard)' if hard else ''}")
                return EXIT_OK
        chosen = targets(uuid, api.listViewers())
        running = [v for v in chosen if v["state"] in RUNNING_STATES]
        for viewer in running:
            api.stopViewer(viewer["projectid"], viewer["viewer"], hard)
    except xmlrpc.client.Fault as fault:
        say(f"ERROR: {fault.faultString} (fault {fault.faultCode})")
        return EXIT_ERROR
    except (OSError, socket.timeout, xmlrpc.client.ProtocolError) as exc:
        say(f"ERROR: swampd is not reachable at {url}: {exc}")
        return EXIT_UNREACHABLE
    if running:
        names = ", ".join(v["execrunid"] for v in running)
        say(f"SUCCESS: stopping {names}{' (hard)' if hard else ''}")
    elif chosen:
        say(f"SUCCESS: no running viewer for {uuid}")
    else:
        say(f"SUCCESS: swampd knows no assessment run and no viewer for {uuid}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
