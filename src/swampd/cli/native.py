"""``launchviewer --viewer_name Native``: the synchronous Native viewer, no daemon involved.

The database's ``launch_viewer`` procedure runs this through ``sys_eval``
and builds the page's path from stdout: exactly one line, the name of the
file written in ``--outdir`` (``nativereport.json``, ``failedreport.json`` or
``index.html``), or one ``ERROR`` line.  Archive caps and the page's row
count come from the ``[native]`` table of the configuration, found as for
every program the database starts (swampd.cli.lookup).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from swampd.cli.lookup import client_config
from swampd.cli.oneline import EXIT_ERROR, EXIT_OK, EXIT_USAGE, say
from swampd.config import ConfigError, load_config
from swampd.results.archives import Limits
from swampd.results.errors import ResultsError
from swampd.results.native import NativeRequest, run_native

NULL_WORDS = ("", "NULL", "null")


def _given(value: str) -> str | None:
    return None if value in NULL_WORDS else value


def _path(value: str, option: str) -> Path:
    """An absolute path without '..' parts (it is opened or written, never run)."""
    if not value.startswith("/") or ".." in value.split("/") or "\x00" in value:
        raise ValueError(f"--{option} must be an absolute path without '..'")
    return Path(value)


def request_from(args: argparse.Namespace) -> NativeRequest:
    """The request the options describe; ValueError names a missing or bad option."""
    files = [f for f in args.file_path if _given(f)]
    if len(files) != 1:
        raise ValueError(f"the {args.viewer_name} viewer takes exactly one --file_path (got {len(files)})")
    if not _given(args.outdir):
        raise ValueError("the following arguments are required: --outdir")
    native = load_config(client_config(args.config)).native
    return NativeRequest(
        results_type=args.results_type, file_path=_path(files[0], "file_path"), outdir=_path(args.outdir, "outdir"),
        package_name=_given(args.package), package_version=_given(args.package_version),
        tool_name=_given(args.tool_name), tool_version=_given(args.tool_version),
        platform_name=_given(args.platform_name), platform_version=_given(args.platform_version),
        start_date=_given(args.start_date), end_date=_given(args.end_date),
        limits=Limits(native.max_unpacked_bytes, native.max_archive_members), report_rows=native.report_rows)


def run(args: argparse.Namespace) -> int:
    """Serve one Native request; print the file name or one ERROR line."""
    logging.basicConfig(level=logging.WARNING, format="launchviewer: %(levelname)s %(message)s")
    try:
        request = request_from(args)
    except ValueError as exc:
        say(f"ERROR: {exc}")
        return EXIT_USAGE
    except ConfigError as exc:
        say(f"ERROR: {exc}")
        return EXIT_ERROR
    try:
        name = run_native(request)
    except ResultsError as exc:
        say(f"ERROR: {exc}")
        return EXIT_ERROR
    except OSError as exc:
        say(f"ERROR: {exc.filename or request.outdir}: {exc.strerror}")
        return EXIT_ERROR
    say(name)
    return EXIT_OK
