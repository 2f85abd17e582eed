"""The payload interface: what runs inside the machine, whatever platform runs the machine.

A payload owns the run's inputs (what goes into ``in/``), what "up" means
(the event its program writes, and for a local process how to tell it
answers), the words its reports use, and what is made of its outputs once
the machine has stopped.  Platforms never look inside a payload's files,
and payloads never ask which platform they are on: they get a
``MachineView`` of the sandbox and a ``MachineOutput`` to read back from.
"""
from __future__ import annotations

import enum
import os
import socket
from abc import ABC, abstractmethod
from typing import Any, Callable, Protocol

from swampd.vruntask.job import Job
from swampd.vruntask.listeners import listens_as
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import MachineOutput, MachineView, Sandbox


class Milestone(enum.Enum):
    """The points of a run the runner reports by itself (everything else comes from the machine's events)."""

    STARTING = "starting"   # inputs staged, the machine is being started (detail: the platform's name)
    STOPPING = "stopping"   # a running machine is being asked to shut down
    STOPPED = "stopped"     # the machine ended without saying so itself


class Collected(Protocol):
    """The outcome of collecting a run's outputs."""

    @property
    def ok(self) -> bool:
        """True when there was nothing to save, or it was saved and handed over."""
        ...

    @property
    def summary(self) -> str:
        """One line for the post-command's output ('' when there is nothing to say)."""
        ...

    @property
    def problem(self) -> str:
        """Why not, when not."""
        ...


class Payload(ABC):
    """One kind of run's part on the execute node."""

    #: The AgentMonitor method its state and event reports go to.
    status_method: str
    #: The event its program writes once it is up, and once it has ended.
    up_event: str
    down_event: str

    def __init__(self, job: Job) -> None:
        self.job = job

    @staticmethod
    @abstractmethod
    def failure(reason: str) -> dict[str, Any]:
        """The report that ends the run with ``reason``.

        Static because it must be sendable for a job whose BOG did not validate.
        """

    @abstractmethod
    def report(self, milestone: Milestone, detail: str = "") -> dict[str, Any]:
        """The report fields for a milestone."""

    @abstractmethod
    def stage(self, sandbox: Sandbox, view: MachineView) -> None:
        """Write the run's inputs for a machine that sees the sandbox as ``view``; PrepareError if not."""

    @abstractmethod
    def local_command(self, sandbox: Sandbox, port: int) -> list[str]:
        """The argv a local process runs in place of a machine (the process platform)."""

    @abstractmethod
    def probe_request(self, port: int) -> bytes | None:
        """For a local process: what to send its port to learn whether it is up (None: it is up as soon
        as it runs).  The host agent's prober sends it to many programs at once; ``answers`` to one."""

    def up_answer(self, head: bytes) -> bool:
        """Whether the first bytes of the answer to ``probe_request`` say the program is up."""
        return True

    def answers(self, port: int, timeout: float = 2.0) -> bool:
        """For a local process: is the program up yet?  (One blocking probe.)"""
        request = self.probe_request(port)
        if request is None:
            return True
        head = b""
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(("127.0.0.1", port))
                sock.sendall(request)
                while b"\n" not in head and len(head) < 256:
                    chunk = sock.recv(256)
                    if not chunk:
                        break
                    head += chunk
        except OSError:
            return False
        # The runner and its command are one user: another's socket on the port is not the program.
        return self.up_answer(head) and listens_as(port, os.geteuid())

    def run_timeout(self) -> float | None:
        """Seconds the machine may run once up before the runner ends it; None: until it ends or is stopped.

        A viewer runs until the daemon stops it; an assessment has a deadline of its own.
        """
        return None

    @abstractmethod
    def collect(self, sandbox: Sandbox, output: MachineOutput, reporter: Reporter,
                give_up: Callable[[], bool]) -> Collected:
        """Save what the machine left and hand it to the AgentMonitor; safe to run again."""
