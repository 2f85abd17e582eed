"""``launchviewer`` / ``launch_viewer``: the drop-in for SWAMP's launch_viewer.

The database's ``launch_viewer`` procedure runs this through ``sys_eval`` for
every click on View and reads stdout: exactly one line, ``SUCCESS`` or one
starting with ``ERROR``.  It returns as soon as the daemon has durably
accepted the launch (and the results to upload); it never waits for the
viewer to boot unless ``--wait`` asks it to.  Imports are kept to the
standard library's XML-RPC client, because start-up time is part of the
user's wait.

``--viewer_name Native`` is different: no daemon, the result is turned into a
file in ``--outdir`` right here and its name is the answer (swampd.cli.native).
Package, tool and platform names are display text, accepted in any printable
form up to their column's length (swampd.displaytext).
"""
from __future__ import annotations

import argparse
import socket
import sys
import time
import xmlrpc.client
from typing import Any

from swampd import displaytext
from swampd.cli.lookup import client_config
from swampd.cli.oneline import EXIT_ERROR, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, OneLineParser, say
from swampd.clients.rpc import connect, resolve

NULL_WORDS = ("", "NULL", "null")
READY, LAUNCHING = 2, 1
NATIVE = "Native"
#: Options whose values are display text (names, versions, dates): any
#: printable text in UTF-8 or latin1, carried unchanged (swampd.displaytext).
DISPLAY_OPTIONS = ("package", "package_type", "package_version", "tool_name", "tool_version",
                   "platform_name", "platform_version", "start_date", "end_date")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="launchviewer", allow_abbrev=False,
                description="Ask swampd to start the viewer of a project (SWAMP launch_viewer drop-in).")
    p.add_argument("--viewer_name", "--viewer", dest="viewer_name", required=True)
    p.add_argument("--project", default="")  # required for every viewer but Native
    p.add_argument("--viewer_uuid", default="")
    p.add_argument("--user_uuid", default="")
    p.add_argument("--viewer_db_path", default="")
    p.add_argument("--viewer_db_checksum", default="")
    p.add_argument("--package", "--package_name", dest="package", default="")
    p.add_argument("--package_type", default="")
    p.add_argument("--package_version", default="")
    p.add_argument("--tool_name", default="")
    p.add_argument("--tool_version", default="")
    p.add_argument("--platform_name", default="")
    p.add_argument("--platform_version", default="")
    p.add_argument("--source_archive_path", default="")
    p.add_argument("--file_path", action="append", default=[])
    p.add_argument("--results_type", default="")
    p.add_argument("--outdir", default="")
    p.add_argument("--indir", default="")
    p.add_argument("--start_date", default="")
    p.add_argument("--end_date", default="")
    p.add_argument("--detached", action="store_true", default=True, help=argparse.SUPPRESS)
    p.add_argument("--nodetached", action="store_false", dest="detached", help=argparse.SUPPRESS)
    p.add_argument("--debug", action="store_true")
    p.add_argument("--config", default=None, help="swampd configuration file (else SWAMPD_CONFIG)")
    p.add_argument("--url", default=None, help="AgentMonitor URL (else SWAMPD_URL, the config, the default)")
    p.add_argument("--wait", type=float, default=None, metavar="SECONDS",
                   help="wait until the viewer is READY and print its URL")
    return p




def _value(text: str) -> str:
    return "" if text in NULL_WORDS else text


def launch_struct(args: argparse.Namespace) -> dict[str, Any]:
    """The launchViewer struct for these options (NULL values dropped)."""
    struct: dict[str, Any] = {"projectid": args.project, "viewer": args.viewer_name}
    for key, value in (("userid", args.user_uuid), ("viewer_uuid", args.viewer_uuid),
                       ("db_path", args.viewer_db_path), ("db_checksum", args.viewer_db_checksum)):
        if _value(value):
            struct[key] = value
    package = _value(args.package)
    files = [f for f in args.file_path if _value(f)]
    if package or files:
        result: dict[str, Any] = {"package": package, "files": files}
        for key, value in (("package_type", args.package_type), ("tool_name", args.tool_name),
                           ("source_archive", args.source_archive_path)):
            if _value(value):
                result[key] = value
        struct["results"] = [result]
    return struct


def main(argv: list[str] | None = None) -> int:
    """Run once; whatever goes wrong, the caller reads one ERROR line (never nothing)."""
    try:
        return _main(argv)
    except SystemExit:
        raise
    except BaseException as exc:  # the database must never get an empty answer
        say(f"ERROR: launchviewer failed: {type(exc).__name__}: {exc}")
        return EXIT_ERROR


def read_display_values(args: argparse.Namespace) -> str | None:
    """Decode the display options in place (UTF-8 or latin1 bytes); the first problem, or None."""
    for option in DISPLAY_OPTIONS:
        value = displaytext.from_argv(getattr(args, option))
        setattr(args, option, value)
        problem = displaytext.problem(value, displaytext.LIMITS[option]) if _value(value) else None
        if problem:
            return f"--{option} {problem}"
    return None


def _main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problem = read_display_values(args)
    if args.viewer_name == NATIVE:
        if problem:
            say(f"ERROR: {problem}")
            return EXIT_USAGE
        from swampd.cli.native import run as run_native  # only Native requests pay for these imports

        return run_native(args)
    if _value(args.results_type):
        problem = problem or f"--results_type is for the {NATIVE} viewer, not {args.viewer_name[:40]!r}"
    problem = problem or (None if _value(args.project) else "the following arguments are required: --project")
    if problem:
        say(f"ERROR: {problem}")
        return EXIT_USAGE
    target = resolve(args.url, client_config(args.config))
    url = target.url
    proxy = connect(*target, timeout=30.0)
    try:
        reply = proxy.agentMonitor.launchViewer(launch_struct(args))
        if args.wait is None:
            say("SUCCESS")
            return EXIT_OK
        return _wait_ready(proxy, reply, args.wait)
    except xmlrpc.client.Fault as fault:
        say(f"ERROR: {fault.faultString} (fault {fault.faultCode})")
        return EXIT_ERROR
    except (ConnectionError, socket.timeout, socket.gaierror) as exc:
        say(f"ERROR: swampd is not reachable at {url}: {exc}")
        return EXIT_UNREACHABLE
    except OSError as exc:
        say(f"ERROR: swampd is not reachable at {url}: {exc}")
        return EXIT_UNREACHABLE
    except xmlrpc.client.ProtocolError as exc:
        say(f"ERROR: swampd at {url} answered HTTP {exc.errcode} {exc.errmsg}")
        return EXIT_UNREACHABLE


def _wait_ready(proxy: xmlrpc.client.ServerProxy, reply: dict[str, Any], seconds: float) -> int:
    """Wait for READY with the daemon's long-poll (``waitViewer``): no polling, no sleeping."""
    deadline = time.monotonic() + seconds
    while True:
        if reply["state"] == READY and reply["url"]:
            say(reply["url"])
            return EXIT_OK
        if reply["state"] != LAUNCHING:
            say(f"ERROR: viewer is {reply['state_name']}: {reply['status']}")
            return EXIT_ERROR
        left = deadline - time.monotonic()
        if left <= 0:
            say(f"ERROR: viewer not ready within {seconds:g}s (last status: {reply['status']})")
            return EXIT_ERROR
        # In slices shorter than the connection's 30 s timeout.
        reply = proxy.agentMonitor.waitViewer(reply["projectid"], reply["viewer"], "READY", min(left, 20.0))


if __name__ == "__main__":
    sys.exit(main())
