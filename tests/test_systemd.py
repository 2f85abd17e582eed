"""systemd (issue 13 part 3): the notify protocol against a real NOTIFY_SOCKET, the watchdog, the units.

A datagram socket bound by the test plays systemd's end of sd_notify(3):
the daemon says READY=1 only once its port answers, STATUS= lines carry
the counts of runs, WATCHDOG=1 keeps coming from the reconciler's loop
(and stops when the reconciler is wedged), and SIGTERM brings STOPPING=1.
Every unit in etc/systemd/ passes ``systemd-analyze verify`` (offline,
against a root holding the host's own units and the unit's ExecStart).
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from support.daemon import Daemon, wait_for
from swampd.sdnotify import Notifier, watchdog_interval

ROOT = Path(__file__).resolve().parents[1]


class Listener:
    """systemd's end: a datagram socket collecting notify messages."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, str]] = []
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def having(self, line: str) -> list[tuple[float, str]]:
        return [(at, m) for at, m in self.messages if line in m.split("\n")]

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


def test_notify_datagrams_reach_a_path_and_an_abstract_socket(tmp_path):
    path_listener = Listener(str(tmp_path / "notify.sock"))
    name = f"swampd-test-notify-{os.getpid()}"
    abstract = Listener("\0" + name)
    try:
        assert Notifier(str(tmp_path / "notify.sock")).ready("starting")
        assert Notifier("@" + name).send("STATUS=hello\nthere", "WATCHDOG=1")
        wait_for(lambda: path_listener.messages and abstract.messages, 5, what="both datagrams")
        assert path_listener.messages[0][1].split("\n")[:2] == ["READY=1", "STATUS=starting"]
        assert abstract.messages[0][1] == "STATUS=hello there\nWATCHDOG=1"  # a newline cannot forge a line
    finally:
        path_listener.close()
        abstract.close()
    assert not Notifier("").send("READY=1")                     # not under systemd: nothing, no error
    assert not Notifier(str(tmp_path / "nobody-listens")).send("READY=1")


def test_watchdog_interval_follows_systemds_variables(monkeypatch):
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval() == 30.0
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval() is None


def test_daemon_is_ready_only_when_listening_reports_status_pets_the_watchdog_and_says_stopping(tmp_path):
    listener = Listener(str(tmp_path / "notify.sock"))
    daemon = Daemon(tmp_path / "d", env={"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "1500000"})
    try:
        daemon.start(wait=False)
        ready = wait_for(lambda: listener.having("READY=1"), 30, 0.01, "READY=1")
        # READY=1 means the registry is open and the port takes connections: the first try answers
        assert daemon.rpc(timeout=5).system.listMethods()
        assert any(line.startswith("STATUS=0 runs") for line in ready[0][1].split("\n"))
        assert f"MAINPID={daemon.proc.pid}" in ready[0][1].split("\n")
        wait_for(lambda: len(listener.having("WATCHDOG=1")) >= 3, 10, what="watchdog pings")
        pings = [at for at, _ in listener.having("WATCHDOG=1")]
        assert max(b - a for a, b in zip(pings, pings[1:])) < 1.5  # always within WATCHDOG_USEC
        daemon.api.launchViewer({"projectid": "p-sd", "viewer": "CodeDX"})
        wait_for(lambda: daemon.api.getViewer("p-sd", "CodeDX")["state"] == 2, 60, what="READY")
        wait_for(lambda: [m for _, m in listener.messages if "STATUS=1 runs (1 vrun READY)" in m], 15,
                 what="a STATUS line with the counts")
        daemon.api.stopViewer("p-sd", "CodeDX")
        wait_for(lambda: daemon.api.getViewer("p-sd", "CodeDX")["state"] == -7, 30, what="TERMINATED")
        assert daemon.terminate() == 0
        assert listener.having("STOPPING=1")
    finally:
        daemon.cleanup()
        listener.close()


def test_a_wedged_reconciler_stops_petting_the_watchdog(tmp_path):
    from swampd.agentmonitor.reconciler import Reconciler
    from swampd.config import AgentMonitorConfig, Config, SchedulerConfig, ViewerConfig
    from swampd.launchpad.launchpad import LaunchPad
    from swampd.launchpad.schedulers.local import LocalScheduler
    from swampd.store import Store

    class Wedging(LocalScheduler):
        wedged = threading.Event()
        release = threading.Event()

        def observe(self):
            if self.wedged.is_set():
                self.release.wait(30)  # a scheduler call that never comes back
            return super().observe()

    config = Config(AgentMonitorConfig(state_dir=tmp_path, workers=1, resync_interval=0.2),
                    SchedulerConfig(stop_grace=2), {"CodeDX": ViewerConfig("CodeDX")})
    scheduler = Wedging(tmp_path / "jobs", 2)
    reconciler = Reconciler(Store(tmp_path / "registry.sqlite3"),
                            LaunchPad(scheduler, tmp_path / "jobs", "http://127.0.0.1:9/"), config)
    pings: list[float] = []
    reconciler.alive_interval = 0.6
    reconciler.on_alive = lambda: pings.append(time.monotonic())
    reconciler.start()
    try:
        wait_for(lambda: len(pings) >= 3, 5, what="pings while healthy")
        scheduler.wedged.set()
        time.sleep(0.5)
        wedged_at = len(pings)
        time.sleep(1.5)
        assert len(pings) - wedged_at <= 1, "a wedged resync must stop the watchdog pings"
        scheduler.release.set()
        scheduler.wedged.clear()
        wait_for(lambda: len(pings) > wedged_at + 2, 5, what="pings once unwedged")
    finally:
        scheduler.release.set()
        reconciler.stop()


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run scripts/setup-system.sh"
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    units = sorted((ROOT / "etc" / "systemd").glob("*.service"))
    assert [u.name for u in units] == ["swampd-domainmonitor.service", "swampd.service"]
    system = root / "etc/systemd/system"
    shutil.copytree(ROOT / "etc" / "systemd", system)
    for unit in units:  # the ExecStart binaries must exist (verify checks them), as after an install
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                binary = root / line.split("=", 1)[1].split()[0].lstrip("/")
                binary.parent.mkdir(parents=True, exist_ok=True)
                binary.write_text("#!/bin/sh\n")
                binary.chmod(0o755)
    done = subprocess.run([analyze, "verify", "--man=no", f"--root={root}", *(u.name for u in units)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == "", done.stdout + done.stderr
    text = (ROOT / "etc/systemd/swampd.service").read_text()
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "KillMode=process"):
        assert line in text
