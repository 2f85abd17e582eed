"""The one-line answer the database reads from the programs it starts.

``launchviewer`` and ``kill_run`` run under ``sys_eval``/``sys_exec``: the
procedure reads stdout and looks for ``ERROR``.  Whatever goes wrong, usage
errors included, the caller gets exactly one line.
"""
from __future__ import annotations

import argparse
import sys
from typing import NoReturn

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3


def say(line: str) -> None:
    """Print one line (embedded newlines folded) and flush it at once."""
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage problem as the one ERROR line the caller reads."""

    def error(self, message: str) -> NoReturn:
        say(f"ERROR: {message}")
        sys.exit(EXIT_USAGE)
