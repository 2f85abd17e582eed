"""The ``process`` platform: the payload's program runs as a local command, started like a guest.

It plays the part of a machine's run.sh: it writes ``RUNSHSTART``, starts
the payload's command on a free loopback port, writes the address and
``WROTEIPADDR``, waits until the payload says its program answers, and only
then writes the payload's up event.  On stop it ends the command (TERM,
then KILL) and writes the payload's down event.  The monitor turns those
events into reports exactly as it does for a VM.
"""
from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time

from swampd.vruntask.job import Job
from swampd.vruntask.monitor import Monitor
from swampd.vruntask.payloads.base import Payload
from swampd.vruntask.platforms.base import Platform, StartError
from swampd.vruntask.ports import free_port
from swampd.vruntask.sandbox import Sandbox

log = logging.getLogger(__name__)
#: Seconds between looks at the command while waiting.
POLL = 0.2


class ProcessPlatform(Platform):
    def __init__(self, job: Job, sandbox: Sandbox, payload: Payload, stop_grace: float = 10.0,
                 inherit_fds: tuple[int, ...] = ()) -> None:
        """``inherit_fds``: descriptors the command keeps open (the local scheduler's liveness lock)."""
        super().__init__("process", sandbox)
        self.payload = payload
        self.ready_timeout = job.ready_timeout
        self.shutdown_grace = stop_grace
        self.inherit_fds = inherit_fds
        self.port = 0
        self.started = False
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.sandbox.record_event("RUNSHSTART", "Starting viewer run script")
        self.started = True
        self.port = free_port()
        argv = self.payload.local_command(self.sandbox, self.port)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWAMPD_")}
        try:
            with open(self.sandbox.out_dir / "viewer.log", "ab") as out:
                self.proc = subprocess.Popen(argv, cwd=self.sandbox.root, stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=subprocess.STDOUT, env=env,
                                             pass_fds=self.inherit_fds)
        except OSError as exc:
            raise StartError(f"cannot start the viewer command: {exc.strerror or exc}") from None
        log.info("command started as pid %d on port %d", self.proc.pid, self.port)
        self.sandbox.write_address(f"127.0.0.1:{self.port}")
        self.sandbox.record_event("WROTEIPADDR", "Wrote viewer ip address")

    def wait_up(self, stop: threading.Event, monitor: Monitor) -> str | None:
        """Ask the payload until its program answers; the command's own exit and the ready deadline end the wait."""
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while not stop.is_set():
            code = self.proc.poll()
            if code is not None:
                return f"viewer process exited with status {code} before it answered HTTP"
            if self.payload.answers(self.port):
                self.sandbox.record_event(self.payload.up_event, "Viewer is up")
                return None
            if time.monotonic() > deadline:
                return f"viewer did not answer HTTP on port {self.port} within {self.ready_timeout:g}s"
            stop.wait(POLL)
        return None

    def wait_exit(self, stop: threading.Event) -> int | None:
        assert self.proc is not None
        while not stop.is_set():
            code = self.proc.poll()
            if code is not None:
                return code
            stop.wait(POLL)
        return None

    def running(self) -> bool | None:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace: float) -> None:
        if not self.started:
            return  # no run script stand-in was started: there is no run to end
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("pid %d ignored TERM for %.0fs; killing it", self.proc.pid, grace)
                self.proc.kill()
                self.proc.wait()
        self.sandbox.record_event(self.payload.down_event, "Viewer is shutdown")
