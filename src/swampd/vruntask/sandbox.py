"""The job sandbox a machine expects (``in/``, ``out/``, the events and IP files), and how a machine sees it.

Layout and names are SWAMP's (lifecycle §4.7, assessment §1.3), so an image's
``run.sh`` finds what it always found.  Two parties fill a sandbox: the
payload (what runs in the machine: its inputs and outputs) and the platform
(how the machine runs: a directory it shares, or disks it boots with).  The
types they meet through live here, so neither imports the other:
``MachineView`` is the sandbox as seen from inside the machine, and
``MachineOutput`` is what the machine left, read back on the host.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from swampd.fileops import append_text, make_dir, start_text, touch
from swampd.vruntask.events import EVENTS_FILE, IP_FILE


class PrepareError(Exception):
    """The launch cannot be prepared; the message is the reason the AgentMonitor gets."""


class CollectError(Exception):
    """What the machine left cannot be read back; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    root: Path

    @cached_property  # paths are made often (a dozen times per launch): once is enough
    def in_dir(self) -> Path:
        return self.root / "in"

    @cached_property
    def out_dir(self) -> Path:
        return self.root / "out"

    @cached_property
    def events_file(self) -> Path:
        return self.out_dir / EVENTS_FILE

    @cached_property
    def ip_file(self) -> Path:
        return self.out_dir / IP_FILE

    @cached_property
    def _run_out(self) -> str:
        return os.path.join(self.out_dir, "run.out")

    def lay_out(self) -> None:
        """The directories and the empty signal files, before anyone writes into them."""
        self.make_dirs()
        for path in (self.events_file, self.ip_file):
            touch(path)

    def make_dirs(self) -> None:
        make_dir(self.in_dir)
        make_dir(self.out_dir)

    def begin(self, address: str, *events: tuple[str, str]) -> None:
        """The signal files made with their first lines, the address and the events of a start, for a
        machine started by this node right after (the host agent's commands): one creation each
        instead of an empty file written again at once.  Files that exist (a start tried again) get
        the lines appended."""
        start_text(self.ip_file, f"{address}\n")
        start_text(self.events_file, "".join(f"{name}\n" for name, _ in events))
        self._log(events)

    def record_event(self, name: str, message: str = "") -> None:
        """Write an event as a guest's run.sh does: the name alone to the events file."""
        self.record_events((name, message))

    def record_events(self, *events: tuple[str, str]) -> None:
        """Write events of one instant, in order, with one write to each file."""
        self._log(events)
        append_text(self.events_file, "".join(f"{name}\n" for name, _ in events))

    def _log(self, events: tuple[tuple[str, str], ...]) -> None:
        now = time.strftime('%Y-%m-%d %H:%M:%S')
        append_text(self._run_out, "".join(f"{now} {name} {message}\n" for name, message in events))

    def write_address(self, address: str) -> None:
        append_text(self.ip_file, f"{address}\n")


@dataclass(frozen=True)
class MachineView:
    """The sandbox as the program inside the machine sees it (the paths of SWAMP's run-params).

    ``shares_sandbox`` is True when the machine reads the sandbox directory
    itself (a local process, a docker container), False when it gets only
    what is put on its input disk (a VM).
    """

    in_dir: str
    out_dir: str
    events_file: str
    ip_file: str
    shutdown_command: str
    shares_sandbox: bool


class MachineOutput(Protocol):
    """What the machine left in its ``out/``, read on the host after it stopped."""

    def fetch(self, name: str) -> Path | None:
        """A host path holding the file ``name`` of the machine's ``out/``, or None when it left none.

        Raises CollectError when the machine's output cannot be read at all.
        """
        ...

    def tree(self) -> Path:
        """A host directory holding everything the machine left in its ``out/`` (the sandbox's ``out/``).

        Raises CollectError when the machine's output cannot be read at all;
        what the host side of ``out/`` holds is there either way.
        """
        ...
