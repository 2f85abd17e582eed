"""The domain monitor: orphan rules (pure), and reaping on libvirt's test driver."""
from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Iterator
from xmlrpc.server import SimpleXMLRPCServer

import libvirt
import pytest

from swampd.domainmonitor.monitor import DomainMonitor
from swampd.domainmonitor.rules import Action, DomainFacts, decide, wanted_by
from swampd.vruntask.domain_xml import DomainSpec, build_domain_xml, domain_name

SRC = Path(__file__).resolve().parents[1] / "src"


# -- rules ----------------------------------------------------------------------
def facts(**changes: Any) -> DomainFacts:
    base: dict[str, Any] = dict(name="swampd-x-e1", owned=True, active=True, execrunid="x", epoch=1,
                                vruntask_alive=True, wanted=True)
    base.update(changes)
    return DomainFacts(**base)


def test_not_ours_is_ignored_whatever_else_is_true() -> None:
    d = decide(facts(owned=False, vruntask_alive=False, wanted=False), 0.0, 1e9, 0)
    assert d.action is Action.IGNORE


def test_live_and_wanted_is_kept() -> None:
    assert decide(facts(), None, 100.0, 0).action is Action.KEEP


@pytest.mark.parametrize("alive, wanted", [(True, None), (None, True), (None, None)])
def test_unknown_is_not_gone(alive: bool | None, wanted: bool | None) -> None:
    assert decide(facts(vruntask_alive=alive, wanted=wanted), 0.0, 1e9, 0).action is Action.KEEP


@pytest.mark.parametrize("alive, wanted, why", [(False, True, "vruntask is gone"), (False, None, "vruntask is gone"),
                                                (True, False, "no longer wants")])
def test_orphans_wait_out_the_grace_then_are_reaped(alive: bool, wanted: bool | None, why: str) -> None:
    f = facts(vruntask_alive=alive, wanted=wanted, wanted_reason="the viewer is ERROR")
    first = decide(f, None, 1000.0, 60)
    assert first.action is Action.WAIT and why in first.reason
    assert decide(f, 1000.0, 1059.0, 60).action is Action.WAIT
    reap = decide(f, 1000.0, 1060.0, 60)
    assert reap.action is Action.REAP and why in reap.reason


def test_wanted_by_the_agentmonitor_record() -> None:
    assert wanted_by(None, 1) == (None, "AgentMonitor did not answer")
    assert wanted_by({"epoch": 1, "state": 2}, 1)[0] is True
    assert wanted_by({"epoch": 1, "state": -1}, 1)[0] is True  # STOPPING: vruntask is saving the DB
    assert wanted_by({"epoch": 2, "state": 1}, 1) == (False, "launch 1 was superseded by launch 2")
    for ended in (0, -3, -5, -7, -8):
        assert wanted_by({"epoch": 1, "state": ended}, 1)[0] is False


# -- the monitor on libvirt's test driver ------------------------------------------
class FakeAgentMonitor:
    """Answers getViewer from a table and records viewerStatus reports."""

    def __init__(self) -> None:
        self.viewers: dict[tuple[str, str], dict[str, Any]] = {}
        self.reports: list[dict[str, Any]] = []
        self.server = SimpleXMLRPCServer(("127.0.0.1", 0), logRequests=False, allow_none=False)
        self.server.register_function(self.get_viewer, "agentMonitor.getViewer")
        self.server.register_function(self.viewer_status, "agentMonitor.viewerStatus")
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def get_viewer(self, projectid: str, viewer: str) -> dict[str, Any]:
        return self.viewers.get((projectid, viewer), {"state": 0, "epoch": 0})

    def viewer_status(self, report: dict[str, Any]) -> bool:
        self.reports.append(report)
        return True


@pytest.fixture
def agentmonitor() -> Iterator[FakeAgentMonitor]:
    am = FakeAgentMonitor()
    yield am
    am.server.shutdown()
    am.server.server_close()


@pytest.fixture
def conn() -> Iterator[Any]:
    c = libvirt.open("test:///default")
    yield c
    for dom in c.listAllDomains(0):
        if dom.name().startswith(("swampd-", "notswampd")):
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    c.close()


def define(conn: Any, tmp_path: Path, project: str, epoch: int, url: str, locked: bool = False) -> tuple[Any, int | None]:
    job = tmp_path / f"job-{project}-{epoch}"
    job.mkdir()
    (job / "token").write_text(f"tok-{project}\n")
    lock = job / "vm.lock"
    fd = None
    lock.touch()
    if locked:
        fd = os.open(lock, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX)
    execrunid = f"vrun_{project}_CodeDX"
    spec = DomainSpec(
        name=domain_name(execrunid, epoch), memory_mib=128, vcpus=1, delta=f"{job}/d", input_disk=f"{job}/i",
        output_disk=f"{job}/o", console_file=f"{job}/c", events_file=f"{job}/e", ip_file=f"{job}/ip",
        domain_type="qemu", network="none",
        metadata={"execrunid": execrunid, "epoch": str(epoch), "projectid": project, "viewer": "CodeDX",
                  "job_dir": str(job), "lock_file": str(lock), "token_file": "token", "agentmonitor_url": url})
    dom = conn.defineXML(build_domain_xml(spec))
    dom.create()
    return dom, fd


def names(conn: Any) -> set[str]:
    return {d.name() for d in conn.listAllDomains(0)}


def test_reaps_orphans_keeps_the_living_and_never_touches_others(
        conn: Any, tmp_path: Path, agentmonitor: FakeAgentMonitor) -> None:
    url = agentmonitor.url
    agentmonitor.viewers = {("alive", "CodeDX"): {"state": 2, "epoch": 1},
                            ("dead", "CodeDX"): {"state": 2, "epoch": 1},
                            ("superseded", "CodeDX"): {"state": 1, "epoch": 2},
                            ("mute", "CodeDX"): {"state": 2, "epoch": 1}}
    _, held = define(conn, tmp_path, "alive", 1, url, locked=True)
    define(conn, tmp_path, "dead", 1, url)                     # lock free: vruntask gone
    _, held2 = define(conn, tmp_path, "superseded", 1, url, locked=True)  # alive, but launch 2 is current
    _, held3 = define(conn, tmp_path, "mute", 1, "http://127.0.0.1:9/", locked=True)  # AM unreachable
    # Not ours: the driver's own domain, a prefix look-alike without metadata, and metadata-less others.
    conn.defineXML("<domain type='test'><name>swampd-lookalike</name><memory>131072</memory>"
                   "<os><type>hvm</type></os></domain>").create()
    conn.defineXML("<domain type='test'><name>notswampd</name><memory>131072</memory>"
                   "<os><type>hvm</type></os></domain>").create()
    before = names(conn)
    monitor = DomainMonitor("test:///default", grace=60, state_file=tmp_path / "dm.json", opener=lambda _: conn)

    first = {d.name: d.action for d in monitor.pass_once(now=1000.0)}
    assert first == {"swampd-vrun_alive_CodeDX-e1": Action.KEEP, "swampd-vrun_dead_CodeDX-e1": Action.WAIT,
                     "swampd-vrun_superseded_CodeDX-e1": Action.WAIT, "swampd-vrun_mute_CodeDX-e1": Action.KEEP}
    assert names(conn) == before and agentmonitor.reports == []

    # A new monitor process (--once from cron) remembers when the orphans were first seen.
    again = DomainMonitor("test:///default", grace=60, state_file=tmp_path / "dm.json", opener=lambda _: conn)
    assert {d.action for d in again.pass_once(now=1030.0)} == {Action.KEEP, Action.WAIT}
    reaped = {d.name for d in again.pass_once(now=1061.0) if d.action is Action.REAP}
    assert reaped == {"swampd-vrun_dead_CodeDX-e1", "swampd-vrun_superseded_CodeDX-e1"}
    assert names(conn) == before - reaped
    assert {"test", "swampd-lookalike", "notswampd"} <= names(conn)
    assert all(conn.lookupByName(n).isActive() for n in ("test", "swampd-lookalike", "notswampd"))
    reports = sorted(agentmonitor.reports, key=lambda r: r["execrunid"])
    assert [(r["execrunid"], r["epoch"], r["token"], r["state"]) for r in reports] == [
        ("vrun_dead_CodeDX", 1, "tok-dead", -5), ("vrun_superseded_CodeDX", 1, "tok-superseded", -5)]
    assert "vruntask is gone" in reports[0]["status"] and "superseded" in reports[1]["status"]
    for fd in (held, held2, held3):
        assert fd is not None
        os.close(fd)


def test_an_orphan_that_recovers_is_forgotten(conn: Any, tmp_path: Path, agentmonitor: FakeAgentMonitor) -> None:
    agentmonitor.viewers = {("p", "CodeDX"): {"state": 2, "epoch": 1}}
    dom, _ = define(conn, tmp_path, "p", 1, agentmonitor.url)
    monitor = DomainMonitor("test:///default", grace=10, opener=lambda _: conn)
    assert [d.action for d in monitor.pass_once(now=100.0)] == [Action.WAIT]
    fd = os.open(tmp_path / "job-p-1" / "vm.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # vruntask came back (restarted monitor)
    assert [d.action for d in monitor.pass_once(now=105.0)] == [Action.KEEP]
    os.close(fd)
    assert [d.action for d in monitor.pass_once(now=200.0)] == [Action.WAIT]  # grace starts again
    assert dom.isActive()


def test_cli_once_with_no_grace(tmp_path: Path) -> None:
    """`swampd domainmonitor --once` runs and prints nothing for a hypervisor with no swampd domains."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    done = subprocess.run([sys.executable, "-m", "swampd.cli.swampd_main", "domainmonitor", "--once",
                           "--uri", "test:///default", "--grace", "0", "--state-file", str(tmp_path / "s.json")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
