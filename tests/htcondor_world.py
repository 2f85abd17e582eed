"""An in-process swampd on the HTCondor double: store, LaunchPad, reconciler, service.

Tests drive it deterministically: ``settle`` runs one resync (the bulk
query) and then works a key's outbox and lifecycle steps, the way the
daemon's threads would, without sleeping.  ``restart`` builds a new
scheduler, reconciler and service on the same registry and schedd, which is
what a daemon restart (or a crash) leaves behind.
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from condor_double import CollectorDouble, ScheddDouble

from swampd.agentmonitor.ads import AdPublisher
from swampd.agentmonitor.changes import ChangeFeed
from swampd.agentmonitor.daemon import register_assessments, register_database_effects, tracked_jobs
from swampd.agentmonitor.reconciler import Reconciler
from swampd.agentmonitor.service import LaunchRequest, ViewerService
from swampd.config import AgentMonitorConfig, AssessmentsConfig, Config, HTCondorConfig, SchedulerConfig, ViewerConfig
from swampd.launchpad.launchpad import LaunchPad
from swampd.launchpad.schedulers.htcondor import HTCondorScheduler
from swampd.store import Store, ViewerRecord


class Clock:
    """One clock for the schedd, the collector and the reconciler; starts at the real time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def default_viewers() -> dict[str, ViewerConfig]:
    return {
        "CodeDX": ViewerConfig("CodeDX", platform="vm", memory=6144, cpus=2),
        "CodeDXDocker": ViewerConfig("CodeDXDocker", platform="docker", image="swamp/codedx-viewer:3.5.5"),
        "CodeDXLibvirt": ViewerConfig("CodeDXLibvirt", platform="vm", universe="vanilla"),
    }


class World:
    def __init__(self, root: Path, condor: HTCondorConfig | None = None,
                 viewers: dict[str, ViewerConfig] | None = None, advertise: bool = False,
                 assessments: AssessmentsConfig | None = None) -> None:
        """``assessments``: also run assessment runs (``self.runs``), configured so."""
        self.root = root
        self.clock = Clock()
        self.condor = condor or HTCondorConfig(timeout=5.0)
        if advertise:
            self.condor = replace(self.condor, advertise=True)
        self.viewers = viewers or default_viewers()
        self.config = Config(
            AgentMonitorConfig(state_dir=root), SchedulerConfig(kind="htcondor", stop_grace=10.0),
            self.viewers, htcondor=self.condor, assessments=assessments or AssessmentsConfig(),
        )
        self.with_assessments = assessments is not None
        self.store = Store(root / "registry.sqlite3", change_effects={"vrun": ("advertise",)} if advertise else {},
                           clock=self.clock)
        self.schedd = ScheddDouble(clock=self.clock)
        # The pool as README, HTCondor, says to configure it: swampd's user may advertise.
        self.collector = CollectorDouble(clock=self.clock, allow_daemon=("condor", "swampd"))
        self.publisher = AdPublisher(self.store, self.collector, self.condor, clock=self.clock)
        self._build()

    def _build(self) -> None:
        self.scheduler = HTCondorScheduler(self.schedd, self.condor, self.root / "jobs",
                                           tracked=lambda: tracked_jobs(self.store), clock=self.clock)
        self.launchpad = LaunchPad(self.scheduler, self.root / "jobs", "http://submit.example.org:8084/")
        self.reconciler = Reconciler(self.store, self.launchpad, self.config, clock=self.clock)
        self.reconciler.register_handler("advertise", self.publisher.handle)
        self.service = ViewerService(self.store, self.reconciler, self.config)
        register_database_effects(self.reconciler, self.service, self.store, self.config, self.root)
        if self.with_assessments:
            changes = ChangeFeed()
            self.runs = register_assessments(self.reconciler, self.store, self.config, changes)
            self.store.on_commit = lambda ids: (changes.publish(ids), self.runs.admission.on_commit(ids))

    def restart(self) -> None:
        """A new daemon on the same registry and pool (nothing kept in memory)."""
        self._build()

    # -- driving ----------------------------------------------------------------
    def launch(self, projectid: str = "p1", viewer: str = "CodeDX", userid: str = "user-1",
               viewer_uuid: str = "vi-1") -> dict[str, Any]:
        return self.service.launch(LaunchRequest(projectid, viewer, userid=userid, viewer_uuid=viewer_uuid))

    def settle(self, projectid: str = "p1", viewer: str = "CodeDX") -> ViewerRecord:
        """One resync, then the key's due side effects and lifecycle steps.

        Slow effects (a database restore check, ads) run on their worker
        pools; settling waits for them as the daemon's threads would."""
        self.reconciler.resync()
        self.clock.advance(1.0)  # what happens next happens after that observation
        run_id = self.record(projectid, viewer).id
        for _ in range(20):
            handed = self.reconciler.effects.dispatched
            self.reconciler.process(run_id)
            self.wait_slow_effects()
            if self.reconciler.effects.dispatched == handed:
                break  # no slow effect ran: nothing new to go on with
        return self.record(projectid, viewer)

    def wait_slow_effects(self, timeout: float = 10.0) -> bool:
        """Wait until no slow effect runs; True if any ran."""
        deadline = time.monotonic() + timeout
        ran = False
        while self.reconciler.effects.busy():
            ran = True
            assert time.monotonic() < deadline, "slow effects did not finish"
            time.sleep(0.005)
        return ran

    def record(self, projectid: str = "p1", viewer: str = "CodeDX") -> ViewerRecord:
        record = self.store.get_viewer(projectid, viewer)
        assert record is not None
        return record

    def report_up(self, projectid: str = "p1", viewer: str = "CodeDX", vmip: str = "10.1.2.3") -> None:
        from swampd.agentmonitor.service import Report

        record = self.record(projectid, viewer)
        assert self.service.report(Report(record.execrunid, record.epoch, record.token, event="VIEWERUP",
                                          vmip=vmip))

    def swampd_jobs(self) -> list[Any]:
        return self.schedd.jobs_of("SwampdKey =!= undefined")

    def close(self) -> None:
        self.store.close()
