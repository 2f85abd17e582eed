"""``execute_execution_record UUID``: the database's entry point for assessment runs.

SWAMP's ``assessment.execute_execution_record`` procedure runs
``/usr/local/bin/execute_execution_record <uuid>`` through ``sys_exec``
every time its ``process_execution_records`` event finds the record's
``launch_flag`` set (reference swamp-db-deploy.md §1.6, §1.7), and looks
only at the exit status: 0 sets the status 'SUBMITTING TO HTCONDOR', and
anything else leaves the run to the event's next try, until its launch
counter reaches 15 and the record fails with 'Failed to launch'.  ``M-``
uuids are metric runs.

So this program asks the daemon to take the run
(``agentMonitor.launchRun({"execrunid": uuid})``) and exits 0 once the
daemon has answered: the run is then durably accepted, and asking again for
a run that is queued, running or done is harmless (the daemon keeps one run
per uuid).  It exits non-zero, with one line on stderr (MariaDB's error log
under ``sys_exec``), when the uuid is malformed (2), the daemon refused the
run (1), or the daemon is unreachable or asks to be called later (3), so
that the database's launch counter tries again.  Nothing on stdout.

It never detaches: ``sys_exec`` waits for it, which is what makes its exit
status mean something; the daemon answers within a request, and the call is
bounded by ``--timeout``.  The uuid may also come as ``--runid UUID``, the
form SWAMP's wrapper passed to its Perl script.  The daemon is found as
``launchviewer`` finds it (``swampd.cli.lookup``, ``swampd.clients.rpc``:
``--url``, ``SWAMPD_URL``, the configuration's Unix socket, URL or host and
port).  Standard library only: the database starts it every few seconds.
"""
from __future__ import annotations

import argparse
import http.client
import socket
import sys
import xmlrpc.client
from typing import NoReturn

from swampd.cli.lookup import client_config
from swampd.cli.oneline import EXIT_ERROR, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from swampd.clients.rpc import connect, resolve
from swampd.identifiers import IDENTIFIER_RE, preview

PROG = "execute_execution_record"
#: Fault code 5 of the contract: temporarily unavailable (try later).
FAULT_UNAVAILABLE = 5
#: The longest line written to stderr (MariaDB's error log).
MAX_LINE = 500


def fail(message: str, status: int) -> int:
    """Write the one line and return ``status``."""
    line = " ".join(f"{PROG}: {message}".split())
    if len(line) > MAX_LINE:
        line = line[:MAX_LINE - 3] + "..."
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    return status


class _Parser(argparse.ArgumentParser):
    """A usage problem is the one line on stderr, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.exit(fail(message, EXIT_USAGE))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, allow_abbrev=False,
                description="Hand an assessment run (execution record uuid, or M-<uuid> for a metric run) "
                            "to swampd (SWAMP execute_execution_record drop-in).")
    p.add_argument("uuid", nargs="?", default=None, help="execution record uuid, or M-<uuid>")
    p.add_argument("--runid", default=None, help="the same, as SWAMP's wrapper passed it")
    p.add_argument("--config", default=None, help="swampd configuration file (else SWAMPD_CONFIG, /etc/swampd)")
    p.add_argument("--url", default=None, help="AgentMonitor URL (else SWAMPD_URL, the config, the default)")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for the daemon (default 20)")
    return p


def check_uuid(value: str) -> str | None:
    """The reason ``value`` is not a run id, or None."""
    if IDENTIFIER_RE.fullmatch(value) is None:
        return f"{preview(value)} is not an execution record uuid (letters, digits, '.', '_', '-')"
    if value.startswith("vrun_"):
        return f"{preview(value)} is a viewer, not an assessment run"
    return None


def main(argv: list[str] | None = None) -> int:
    """Run once; whatever goes wrong, the caller gets a non-zero status and one line."""
    try:
        return _main(argv)
    except SystemExit:
        raise
    except BaseException as exc:  # the database must see a failure, not a traceback
        return fail(f"failed: {type(exc).__name__}: {exc}", EXIT_ERROR)


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if (args.uuid is None) == (args.runid is None):
        return fail("give the run's uuid once, as an argument or as --runid", EXIT_USAGE)
    uuid = args.uuid if args.uuid is not None else args.runid
    problem = check_uuid(uuid)
    if problem:
        return fail(problem, EXIT_USAGE)
    if not 0 < args.timeout <= 3600:
        return fail("--timeout must be between 0 and 3600 seconds", EXIT_USAGE)
    target = resolve(args.url, client_config(args.config))
    url = target.url
    try:
        connect(*target, timeout=args.timeout).agentMonitor.launchRun({"execrunid": uuid})
    except xmlrpc.client.Fault as fault:
        status = EXIT_UNREACHABLE if fault.faultCode == FAULT_UNAVAILABLE else EXIT_ERROR
        return fail(f"{uuid}: refused: {fault.faultString} (fault {fault.faultCode})", status)
    except xmlrpc.client.ProtocolError as exc:
        return fail(f"{uuid}: swampd at {url} answered HTTP {exc.errcode} {exc.errmsg}", EXIT_UNREACHABLE)
    except (OSError, socket.timeout, http.client.HTTPException) as exc:
        return fail(f"{uuid}: swampd is not reachable at {url}: {exc}", EXIT_UNREACHABLE)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
