"""The platform interface: how a machine is staged, run and read back on this node.

A platform knows *how* a machine runs (a local process, a libvirt domain);
the payload knows *what* runs in it (a viewer today; an assessment next).
The runner drives every platform through the same calls, in this order:

    with platform:                       # hold what marks this node as the machine's owner
        platform.view()                  # the sandbox as the machine sees it, for the payload's inputs
        platform.prepare()               # after the payload staged in/: e.g. build disks
        platform.start()
        platform.wait_up(stop, monitor)  # -> None when up (or stopped), else the reason
        platform.wait_exit(stop)         # -> exit status, or None when a stop was asked for
        platform.running(); platform.stop(grace)
        with platform.collect() as output: ...   # what the machine left in out/

``Staging`` is the part a node does when a scheduler runs the machine
itself (HTCondor's vm and docker universes call ``vruntask prepare`` and
``vruntask finish`` around it); ``Platform`` adds running the machine.
The defaults are those of a machine that shares the sandbox directory.
"""
from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import TracebackType

from swampd.vruntask.monitor import Monitor
from swampd.vruntask.sandbox import MachineOutput, MachineView, Sandbox

#: What a docker viewer image's supervisord is told to stop with (SWAMP's docker value).
HOST_SHUTDOWN_COMMAND = "supervisorctl shutdown"


class StartError(Exception):
    """The machine could not be started; the message is the reason the AgentMonitor gets."""


class HostOutput:
    """A machine that shares the sandbox wrote straight into ``out/``."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)

    def fetch(self, name: str) -> Path | None:
        path = self.out_dir / name
        return path if path.is_file() else None

    def tree(self) -> Path:
        return self.out_dir


class Staging:
    """Inputs where the machine reads them, outputs read back: for a machine sharing the sandbox."""

    def __init__(self, name: str, sandbox: Sandbox) -> None:
        """``name``: the platform's name in the BOG (``swampd_platform``)."""
        self.name = name
        self.sandbox = sandbox

    def view(self) -> MachineView:
        """The sandbox as the machine sees it: here, the host's own paths."""
        sandbox = self.sandbox
        return MachineView(str(sandbox.in_dir), str(sandbox.out_dir), str(sandbox.events_file),
                           str(sandbox.ip_file), HOST_SHUTDOWN_COMMAND, shares_sandbox=True)

    def prepare(self) -> None:
        """Turn the staged ``in/`` into what the machine starts from; PrepareError if it cannot."""

    def discard(self) -> None:
        """After a failed prepare: leave nothing a scheduler could start a machine from."""

    def collect(self) -> AbstractContextManager[MachineOutput]:
        """What the machine left in its ``out/``, readable until the context ends."""
        return nullcontext(HostOutput(self.sandbox.out_dir))


class Platform(Staging, ABC):
    """A machine this node runs itself, from start to stop."""

    #: Seconds between looks at the events file (a VM's boot is timed, so it looks more often).
    monitor_poll = 0.2
    #: Seconds a running machine gets to shut down by itself before it is ended by force.
    shutdown_grace = 10.0

    def __enter__(self) -> Platform:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    @abstractmethod
    def start(self) -> None:
        """Start the machine; StartError with the reason if it cannot."""

    @abstractmethod
    def wait_up(self, stop: threading.Event, monitor: Monitor) -> str | None:
        """Wait until the payload is up: None when up or when ``stop`` was set, else why it is not."""

    @abstractmethod
    def wait_exit(self, stop: threading.Event) -> int | None:
        """Wait until the machine ends (its exit status, 0 for a power-off) or ``stop`` is set (None)."""

    @abstractmethod
    def running(self) -> bool | None:
        """Is the machine still running?  None when that cannot be told (unknown is not gone)."""

    @abstractmethod
    def stop(self, grace: float) -> None:
        """Ask the machine to shut down, end it by force after ``grace`` seconds, and clean up after it.

        Safe to call whatever state the machine is in, including never started.
        """
