"""The ``process`` platform: the viewer is a local command, started like a guest.

It plays the part of a viewer machine's run.sh: it writes ``RUNSHSTART``,
starts the configured command on a free loopback port, writes the address
and ``WROTEIPADDR``, probes the viewer over HTTP, and only then writes
``VIEWERUP``.  On stop it ends the command (TERM, then KILL) and writes
``VIEWERDOWN``.  The monitor turns those events into states exactly as it
does for a VM.
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time

from swampd.config import fill_placeholders
from swampd.vruntask.sandbox import Sandbox

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def probe(port: int, path: str, timeout: float = 2.0) -> bool:
    """True when something answers HTTP on the port (any status below 500)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status < 500
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


class ProcessPlatform:
    def __init__(self, sandbox: Sandbox, inherit_fds: tuple[int, ...] = ()) -> None:
        self.sandbox = sandbox
        bog = sandbox.bog
        self.command = json.loads(bog["swampd_viewer_command"])
        self.probe_path = bog.get("swampd_probe_path", "/")
        self.ready_timeout = float(bog.get("swampd_ready_timeout", "600"))
        self.inherit_fds = inherit_fds
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.sandbox.record_event("RUNSHSTART", "Starting viewer run script")
        self.port = free_port()
        values = {
            "port": str(self.port), "sandbox": str(self.sandbox.root), "python": sys.executable,
            "project": self.sandbox.bog.get("projectid", ""), "viewer": self.sandbox.bog.get("viewer", ""),
            "url_uuid": self.sandbox.bog.get("urluuid", ""),
        }
        argv = [fill_placeholders(part, values) for part in self.command]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWAMPD_")}
        with open(self.sandbox.out_dir / "viewer.log", "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=self.sandbox.root, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, env=env,
                                         pass_fds=self.inherit_fds)
        log.info("viewer command started as pid %d on port %d", self.proc.pid, self.port)
        self.sandbox.write_address(f"127.0.0.1:{self.port}")
        self.sandbox.record_event("WROTEIPADDR", "Wrote viewer ip address")

    def wait_ready(self, stop: threading.Event) -> str | None:
        """Probe until the viewer answers; None when up, else the reason it is not."""
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        while not stop.is_set():
            code = self.proc.poll()
            if code is not None:
                return f"viewer process exited with status {code} before it answered HTTP"
            if probe(self.port, self.probe_path):
                self.sandbox.record_event("VIEWERUP", "Viewer is up")
                return None
            if time.monotonic() > deadline:
                return f"viewer did not answer HTTP on port {self.port} within {self.ready_timeout:g}s"
            stop.wait(0.2)
        return "stopped before the viewer was up"

    def wait_exit(self, stop: threading.Event) -> int | None:
        """Wait until the viewer exits (its status) or a stop is asked for (None)."""
        assert self.proc is not None
        while not stop.is_set():
            code = self.proc.poll()
            if code is not None:
                return code
            stop.wait(0.2)
        return None

    def stop(self, grace: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                log.warning("viewer pid %d ignored TERM for %.0fs; killing it", self.proc.pid, grace)
                self.proc.kill()
                self.proc.wait()
        self.sandbox.record_event("VIEWERDOWN", "Viewer is shutdown")
