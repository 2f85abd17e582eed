"""The HTCondor scheduler inside a whole in-process swampd: adopt-or-submit, observation,
held jobs, outages, stop; all against the schedd double."""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterator

import htcondor2
import pytest

from htcondor_world import World

from swampd.agentmonitor import reconciler as reconciler_module
from swampd.config import HTCondorConfig
from swampd.launchpad.jobs import JobDescription, SchedulerError, SchedulerUnavailable
from swampd.launchpad.schedulers.htcondor import (
    ALL_JOBS,
    HTCondorScheduler,
    launch_constraint,
)
from swampd.states import ViewerState


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def launched(world: World, **kwargs: str) -> str:
    """Launch and submit; returns the job ref."""
    world.launch(**kwargs)
    record = world.settle(kwargs.get("projectid", "p1"), kwargs.get("viewer", "CodeDX"))
    assert record.viewer_state is ViewerState.LAUNCHING and record.job_ref
    return record.job_ref


def ready(world: World) -> str:
    ref = launched(world)
    world.schedd.start(ref)
    world.report_up()
    assert world.settle().viewer_state is ViewerState.READY
    return ref


class Crash(Exception):
    pass


def crash_at(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Die at failpoint ``name`` the way an in-process crash can: nothing after it runs."""
    def failpoint(point: str) -> None:
        if point == name:
            raise Crash(point)

    monkeypatch.setattr(reconciler_module, "failpoint", failpoint)


# -- adopt-or-submit -----------------------------------------------------------

def test_a_launch_submits_one_job_with_the_key_and_launch_id(world: World) -> None:
    ref = launched(world)
    record = world.record()
    [ad] = world.swampd_jobs()
    assert ref == "1.0" and ad["SwampdKey"] == record.execrunid and ad["SwampdLaunchId"] == record.launch_id
    assert world.schedd.calls["submit"] == 1


def test_crash_between_submit_and_record_then_restart_gives_exactly_one_job(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(monkeypatch, "submit.after")
    world.launch()
    world.settle()  # the job is submitted, then the process "dies" before recording it
    assert world.record().job_ref == "" and len(world.swampd_jobs()) == 1
    monkeypatch.setattr(reconciler_module, "failpoint", lambda point: None)
    world.restart()
    world.clock.advance(120)  # past the retry backoff
    record = world.settle()
    assert record.job_ref == "1.0" and record.viewer_state is ViewerState.LAUNCHING
    assert len(world.swampd_jobs()) == 1 and world.schedd.calls["submit"] == 1
    world.clock.advance(10)
    world.settle()
    assert len(world.swampd_jobs()) == 1 and world.schedd.calls["submit"] == 1


def test_a_job_that_ended_before_the_restart_is_adopted_from_history_not_resubmitted(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    crash_at(monkeypatch, "submit.after")
    world.launch()
    world.settle()
    world.schedd.start("1.0")
    world.schedd.complete("1.0", exit_code=1)
    monkeypatch.setattr(reconciler_module, "failpoint", lambda point: None)
    world.restart()
    world.clock.advance(120)
    record = world.settle()
    assert record.job_ref == "1.0" and world.schedd.calls["submit"] == 1
    world.clock.advance(10)
    record = world.settle()
    assert record.viewer_state is ViewerState.ERROR and "exit code 1" in record.status


def test_a_second_job_of_the_same_launch_is_removed_on_adoption(world: World) -> None:
    world.launch()
    record = world.record()
    world.launchpad.submit(record, world.config)
    spec_job = world.schedd.ad("1.0")
    # the same launch submitted twice by something outside this process
    world.schedd.submit(htcondor2.Submit({"executable": "x", "MY.SwampdKey": f'"{record.execrunid}"',
                                          "MY.SwampdLaunchId": f'"{record.launch_id}"', "MY.SwampdEpoch": "1"}),
                        count=1)
    assert world.launchpad.submit(record, world.config) == "1.0"
    assert [job_ad["ClusterId"] for job_ad in world.swampd_jobs()] == [spec_job["ClusterId"]]


def test_a_job_of_an_earlier_launch_of_the_key_is_removed_before_the_new_submit(world: World) -> None:
    old_ref = launched(world)
    world.schedd.start(old_ref)
    world.schedd.hold(old_ref, "stuck", 26)
    # the viewer ended while the old job stayed (say a remove was lost); a new launch:
    with world.store.transaction() as tx:
        record = tx.get_viewer("p1", "CodeDX")
        assert record is not None
        record.state = int(ViewerState.ERROR)
        tx.put_run(record)
    world.launch()
    record = world.settle()
    assert record.epoch == 2 and record.job_ref == "2.0"
    assert [job_ad["SwampdEpoch"] for job_ad in world.swampd_jobs()] == [2]


# -- observation -------------------------------------------------------------------

def test_observation_is_one_bulk_query_with_a_projection(world: World) -> None:
    for n in range(5):
        launched(world, projectid=f"p{n}")
    queries, history = world.schedd.calls["query"], world.schedd.calls["history"]
    world.reconciler.resync()
    assert world.schedd.calls["query"] == queries + 1 and world.schedd.calls["history"] == history
    assert world.reconciler.world.size() == 5


def test_jobs_that_left_the_queue_are_found_with_one_history_call(world: World) -> None:
    refs = [launched(world, projectid=f"p{n}") for n in range(3)]
    for ref in refs:
        world.schedd.start(ref)
        world.schedd.complete(ref, exit_code=0)
    history = world.schedd.calls["history"]
    world.reconciler.resync()
    assert world.schedd.calls["history"] == history + 1
    world.reconciler.resync()
    assert world.schedd.calls["history"] == history + 1  # remembered, not asked again
    for n in range(3):
        world.reconciler.process(world.record(f"p{n}").id)
        assert world.record(f"p{n}").viewer_state is ViewerState.ERROR


def test_after_a_restart_a_job_that_left_the_queue_is_found_in_history(world: World) -> None:
    ready(world)
    world.restart()
    world.schedd.complete("1.0", exit_code=0)
    record = world.settle()
    assert record.viewer_state is ViewerState.SHUTDOWN and "exit code 0" in record.status


def test_schedd_down_for_several_resyncs_ends_nothing_and_resubmits_nothing(world: World) -> None:
    ready(world)
    seen = world.service.get("p1", "CodeDX")
    assert seen["stale"] is False
    world.schedd.down = True
    for _ in range(6):
        world.clock.advance(60)
        record = world.settle()
        assert record.viewer_state is ViewerState.READY
    struct = world.service.get("p1", "CodeDX")
    assert struct["stale"] is True and struct["job"] == "unknown" and struct["last_seen"] == seen["last_seen"]
    assert world.schedd.calls["submit"] == 1
    world.schedd.down = False
    world.clock.advance(60)
    record = world.settle()
    assert record.viewer_state is ViewerState.READY
    struct = world.service.get("p1", "CodeDX")
    assert struct["stale"] is False and struct["job"] == "running" and struct["last_seen"] != seen["last_seen"]
    assert len(world.swampd_jobs()) == 1 and world.schedd.calls["submit"] == 1


def test_a_job_that_ends_during_an_outage_ends_the_viewer_once_the_schedd_answers(world: World) -> None:
    ready(world)
    world.schedd.down = True
    world.schedd.complete("1.0", exit_code=0)
    world.clock.advance(60)
    assert world.settle().viewer_state is ViewerState.READY
    world.schedd.down = False
    assert world.settle().viewer_state is ViewerState.SHUTDOWN


def test_a_submit_while_the_schedd_is_down_waits_and_is_retried(world: World) -> None:
    world.schedd.down = True
    world.launch()
    record = world.settle()
    assert record.viewer_state is ViewerState.LAUNCHING and record.job_ref == ""
    world.schedd.down = False
    world.clock.advance(120)
    record = world.settle()
    assert record.job_ref == "1.0" and len(world.swampd_jobs()) == 1


def test_a_hanging_schedd_is_unavailable_after_the_timeout(tmp_path: Path) -> None:
    world = World(tmp_path, condor=HTCondorConfig(timeout=0.2))
    ready(world)
    world.schedd.hang = threading.Event()
    try:
        with pytest.raises(SchedulerUnavailable, match="did not answer"):
            world.scheduler.observe()
        world.clock.advance(60)
        assert world.settle().viewer_state is ViewerState.READY
        assert world.service.get("p1", "CodeDX")["stale"] is True
        calls = world.schedd.calls["query"]
        for _ in range(6):  # more than MAX_HUNG_CALLS: later calls do not pile up threads
            with pytest.raises(SchedulerUnavailable):
                world.scheduler.observe()
        assert world.schedd.calls["query"] - calls <= 4
    finally:
        world.schedd.hang.set()
        world.schedd.hang = None
    deadline = time.monotonic() + 5
    while world.scheduler._hung and time.monotonic() < deadline:
        time.sleep(0.01)
    assert world.scheduler._hung == 0
    assert world.settle().viewer_state is ViewerState.READY
    assert world.service.get("p1", "CodeDX")["stale"] is False
    world.close()


# -- held jobs ------------------------------------------------------------------------

def test_a_held_job_ends_in_error_with_its_reason_and_code_and_is_removed(world: World) -> None:
    ref = launched(world)
    world.schedd.start(ref)
    world.schedd.hold(ref, "Error from slot1@exec1: VMGAHP_ERR_INTERNAL", 6, 2)
    record = world.settle()
    assert record.viewer_state is ViewerState.ERROR
    assert "VMGAHP_ERR_INTERNAL" in record.status and "HoldReasonCode 6" in record.status
    history = world.service.history("p1", "CodeDX")
    assert any("VMGAHP_ERR_INTERNAL" in h["status"] and h["state"] == int(ViewerState.ERROR) for h in history)
    assert world.swampd_jobs() == []
    [gone] = world.schedd.history("ClusterId == 1")
    assert "VMGAHP_ERR_INTERNAL" in gone["RemoveReason"]


def test_a_hold_that_vacates_the_machine_first_still_ends_in_error_with_its_reason(world: World) -> None:
    # On a pool a policy hold of a running job vacates it: vruntask stops the viewer and
    # reports it down before the schedd shows the job held (tests/test_htcondor_pool.py).
    from swampd.agentmonitor.service import Report

    ref = ready(world)
    record = world.record()
    assert world.service.report(Report(record.execrunid, record.epoch, record.token, event="VIEWERDOWN"))
    assert world.settle().viewer_state is ViewerState.SHUTDOWN
    assert [a for a in world.schedd.actions if a[0] == "Remove"] == []  # its job is ending by itself
    reason = "The job attribute PeriodicHold expression 'JobStatus == 2' evaluated to TRUE"
    world.schedd.hold(ref, reason, 3)
    record = world.settle()
    assert record.viewer_state is ViewerState.ERROR
    assert record.status == f"Viewer job held: {reason} (HoldReasonCode 3)"
    assert world.swampd_jobs() == []
    [gone] = world.schedd.history("true", [])
    assert gone["LastHoldReasonCode"] == 3 and gone["RemoveReason"].startswith(record.status)


def test_a_job_that_outlives_its_machines_own_shutdown_is_removed_after_the_leave_time(world: World) -> None:
    from swampd.agentmonitor.service import Report

    ref = ready(world)
    record = world.record()
    assert world.service.report(Report(record.execrunid, record.epoch, record.token, event="VIEWERDOWN"))
    world.settle()
    world.clock.advance(world.condor.remove_grace - 10)
    world.settle()
    assert [a for a in world.schedd.actions if a[0] == "Remove"] == []
    world.clock.advance(20)
    world.settle()
    [(action, spec, reason)] = [a for a in world.schedd.actions if a[0] == "Remove"]
    assert spec == ref and reason == "swampd: launch 1 is SHUTDOWN and its job has not left"


def test_a_held_job_is_left_held_when_configured(tmp_path: Path) -> None:
    world = World(tmp_path, condor=HTCondorConfig(timeout=5.0, on_hold="leave"))
    ref = launched(world)
    world.schedd.hold(ref, "Transfer input files failure", 13)
    record = world.settle()
    assert record.viewer_state is ViewerState.ERROR and "HoldReasonCode 13" in record.status
    for _ in range(3):
        world.clock.advance(30)
        world.settle()
    [ad] = world.swampd_jobs()
    assert ad["JobStatus"] == 5
    world.close()


# -- stop ---------------------------------------------------------------------------------

def test_stop_removes_the_job_with_its_reason_and_ends_terminated(world: World) -> None:
    ref = ready(world)
    world.service.stop("p1", "CodeDX", reason="stopped by the project owner")
    record = world.settle()
    assert record.viewer_state is ViewerState.TERMINATING
    ad = world.schedd.ad(ref)
    assert ad["JobStatus"] == 3 and ad["RemoveReason"] == "stopped by the project owner (by user swampd)"
    world.schedd.vacated(ref)  # the viewer saved its database and the job left
    record = world.settle()
    assert record.viewer_state is ViewerState.TERMINATED and record.status == "Terminated"
    assert world.swampd_jobs() == []


def test_stop_of_a_launching_viewer_cancels_its_idle_job(world: World) -> None:
    launched(world)
    world.service.stop("p1", "CodeDX")
    world.settle()
    record = world.settle()
    assert record.viewer_state is ViewerState.TERMINATED and world.swampd_jobs() == []


def test_a_job_that_does_not_leave_is_forced_out_after_the_grace(tmp_path: Path) -> None:
    world = World(tmp_path, condor=HTCondorConfig(timeout=5.0, remove_grace=100, job_max_vacate_time=100000))
    ref = ready(world)
    world.service.stop("p1", "CodeDX")
    world.settle()
    world.clock.advance(90)  # within remove_grace: still leaving, still TERMINATING, not asked again
    record = world.settle()
    assert record.viewer_state is ViewerState.TERMINATING and world.swampd_jobs()
    assert [a[:2] for a in world.schedd.actions] == [("Remove", ref)]
    world.clock.advance(20)  # past remove_grace since the job entered the X state
    world.settle()
    record = world.settle()
    assert world.swampd_jobs() == [] and record.viewer_state is ViewerState.TERMINATED
    assert [a[:2] for a in world.schedd.actions] == [("Remove", ref), ("RemoveX", ref)]


def test_a_job_that_even_removex_does_not_take_out_ends_terminate_failed(tmp_path: Path) -> None:
    world = World(tmp_path, condor=HTCondorConfig(timeout=5.0, remove_grace=100, job_max_vacate_time=100000))
    ref = ready(world)
    refused_removex = world.schedd.act

    def act(action: object, job_spec: object, reason: object = None) -> object:
        import htcondor2

        if action == htcondor2.JobAction.RemoveX:  # a schedd that cannot get rid of it
            world.schedd.actions.append(("RemoveX", str(job_spec), None))
            import classad2

            return classad2.ClassAd({"TotalSuccess": 1, "TotalError": 0, "TotalPermissionDenied": 0})
        return refused_removex(action, job_spec, reason)

    world.schedd.act = act  # type: ignore[method-assign]
    world.service.stop("p1", "CodeDX")
    world.settle()
    world.clock.advance(101)
    world.settle()
    assert world.record().viewer_state is ViewerState.TERMINATING and world.swampd_jobs()
    world.clock.advance(60)  # past remove_grace plus the stop margin
    record = world.settle()
    assert record.viewer_state is ViewerState.TERMINATE_FAILED and "still running" in record.status


def test_remove_is_idempotent_and_passes_a_reason_the_bindings_keep(world: World) -> None:
    launched(world)
    launch_id = world.record().launch_id
    world.scheduler.remove(launch_id, "because")
    world.scheduler.remove(launch_id, "because")
    [ad] = world.schedd.history("true", ["RemoveReason"])
    assert ad["RemoveReason"] == "because (by user swampd)"  # the schedd names who asked


def test_swampds_own_remove_reason_reads_back_in_its_own_words(world: World) -> None:
    from swampd.launchpad.jobs import JobStatus

    ref = launched(world)
    world.schedd.start(ref)
    launch_id = world.record().launch_id
    world.scheduler.remove(launch_id, "stopped by the project owner")
    assert world.schedd.ad(ref)["RemoveReason"] == "stopped by the project owner (by user swampd)"
    leaving = world.scheduler.observe()[launch_id]
    assert leaving.leaving and leaving.reason == "being removed: stopped by the project owner"
    world.schedd.vacated(ref, exit_signal=15)
    world.scheduler.tracked = lambda: {launch_id: ref}
    gone = world.scheduler.observe()[launch_id]
    assert gone.status is JobStatus.REMOVED and gone.reason == "stopped by the project owner"


def test_a_remove_by_someone_else_shows_who_did_it(world: World) -> None:
    ref = ready(world)
    world.schedd.user = "condor"  # root's condor_rm, on a job swampd's user owns
    world.schedd.act(htcondor2.JobAction.Remove, ref, reason=("node maintenance", 0))
    world.schedd.vacated(ref, exit_signal=15)
    record = world.settle()
    assert record.viewer_state is ViewerState.SHUTDOWN
    assert record.status == "Viewer job ended: node maintenance (by user condor)"


def test_a_refused_remove_is_an_error_to_retry(world: World) -> None:
    launched(world)

    def refuse(action: object, job_spec: object, reason: object = None) -> object:
        import classad2

        return classad2.ClassAd({"TotalError": 1, "TotalSuccess": 0, "TotalPermissionDenied": 0})

    world.schedd.act = refuse  # type: ignore[method-assign]
    with pytest.raises(SchedulerError):
        world.scheduler.remove(world.record().launch_id, "x")


# -- constraints and hostile values ------------------------------------------------------------

def test_hostile_values_cannot_break_a_constraint(world: World) -> None:
    launched(world)
    hostile = 'x" || true || "'
    assert world.schedd.query(launch_constraint(hostile, hostile)) == []
    assert world.schedd.query(f'({ALL_JOBS}) && SwampdLaunchId == "{world.record().launch_id}"')


def test_hostile_identifiers_never_reach_the_schedd(world: World, tmp_path: Path) -> None:
    job_dir = tmp_path / "jobs" / ("a" * 32)
    job_dir.mkdir(parents=True)
    execrunid = "vrun_p1_CodeDX"
    job = JobDescription(kind="vrun", key=execrunid, launch_id="a" * 32, epoch=1, job_dir=job_dir,
                         bog_file=f"{execrunid}.bog", token_file="token", platform="vm", universe="vm",
                         attributes={"SWAMP_vrun_execrunuid": execrunid, "SWAMP_userid": 'u"\nqueue 9',
                                     "SWAMP_projectid": "p1", "SWAMP_viewerinstanceid": "vi"})
    with pytest.raises(SchedulerError):
        world.scheduler.submit(job)
    assert world.schedd.calls["submit"] == 0 and world.schedd.jobs == {}


def test_forget_drops_the_job_directory_once_the_job_is_gone(world: World) -> None:
    launched(world)
    record = world.record()
    job_dir = world.launchpad.job_dir(record.launch_id)
    assert (job_dir / "delta.qcow2").exists() and (job_dir / "token").stat().st_mode & 0o777 == 0o600
    world.reconciler.resync()
    world.scheduler.forget(record.launch_id)
    assert job_dir.exists()  # still queued: its sandbox is the job's initialdir
    world.scheduler.remove(record.launch_id, "done")
    world.reconciler.resync()
    world.scheduler.forget(record.launch_id)
    assert not job_dir.exists()


def test_the_scheduler_runs_every_platform(world: World) -> None:
    assert isinstance(world.scheduler, HTCondorScheduler)
    for viewer, universe in (("CodeDX", 13), ("CodeDXDocker", 5), ("CodeDXLibvirt", 5)):
        ref = launched(world, projectid="px", viewer=viewer)
        assert world.schedd.ad(ref)["JobUniverse"] == universe


def test_the_daemon_wires_the_htcondor_scheduler_and_ads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from condor_double import CollectorDouble, ScheddDouble
    from support.daemon import free_port, wait_for

    from swampd.agentmonitor import daemon as daemon_module
    from swampd.agentmonitor.service import LaunchRequest
    from swampd.config import parse_config
    from swampd.launchpad.schedulers import htcondor as htcondor_module

    schedd, collector = ScheddDouble(), CollectorDouble(allow_daemon=("condor", "swampd"))
    monkeypatch.setattr(htcondor_module, "LazySchedd", lambda condor: schedd)
    monkeypatch.setattr(htcondor_module, "make_collector", lambda condor: collector)
    config = parse_config({"agentmonitor": {"state_dir": str(tmp_path), "port": free_port()},
                           "scheduler": {"kind": "htcondor"}, "htcondor": {"advertise": True},
                           "viewers": {"CodeDX": {"platform": "vm", "image": "/srv/images/codedx.qcow2"}}},
                          "test")
    daemon = daemon_module.Daemon(config)
    try:
        assert daemon.store.change_effects == {"vrun": ("advertise",)} and daemon.ad_refresher is not None
        assert daemon.ad_publisher is not None and daemon.ad_publisher.collector is collector
        launched = daemon.service.launch(LaunchRequest("p1", "CodeDX", userid="u1", viewer_uuid="vi-1"))
        daemon.reconciler.process(daemon.store.get_viewer("p1", "CodeDX").id)
        wait_for(lambda: not daemon.reconciler.effects.busy(), 10)
        assert launched["launched"]
        assert len(schedd.jobs_of('SwampdKey == "vrun_p1_CodeDX"')) == 1
        assert collector.ads  # the launch's state change was published
    finally:  # never started, so not Daemon.close() (which waits for the serving loop)
        daemon.server.server_close()
        daemon.store.close()
        daemon.lock.release()


def test_a_resync_looks_only_at_runs_whose_job_changed_and_sweeps_every_so_often(world: World) -> None:
    """An idle facility costs one query per resync, not one pass per run."""
    from swampd.agentmonitor.reconciler import SWEEP_EVERY

    refs = [launched(world, projectid=f"p{n}") for n in range(5)]
    for ref in refs:
        world.schedd.start(ref)
    world.reconciler.resync(sweep=True)
    drain(world)
    world.reconciler.resync(sweep=False)
    assert len(world.reconciler.queue) == 0  # nothing changed: nothing to look at
    world.schedd.complete(refs[2], exit_code=0)
    world.reconciler.resync(sweep=False)
    assert len(world.reconciler.queue) == 1 and world.reconciler.queue.get() == world.record("p2").id
    world.reconciler.queue.done(world.record("p2").id)
    world.reconciler.resync(sweep=True)
    assert len(world.reconciler.queue) == 5
    assert SWEEP_EVERY > 1


def drain(world: World) -> None:
    while len(world.reconciler.queue):
        run_id = world.reconciler.queue.get()
        assert run_id is not None
        world.reconciler.process(run_id)
        world.reconciler.queue.done(run_id)


# -- a schedd that restarts on a new port ----------------------------------------------------

def test_the_lazy_schedd_locates_a_restarted_schedd_again(world: World) -> None:
    from swampd.launchpad.schedulers.condor_connect import LazySchedd

    lazy = LazySchedd(world.condor, connect=lambda condor: world.schedd.locate())
    world.scheduler.schedd = lazy
    ready(world)
    assert lazy.located == 1
    world.schedd.restart()  # between two resyncs: the object made before dials the old port
    record = world.settle()
    assert world.service.get("p1", "CodeDX")["stale"] is True  # one failed call, nothing ended
    assert record.viewer_state is ViewerState.READY
    record = world.settle()
    assert world.service.get("p1", "CodeDX")["stale"] is False and lazy.located == 2
    assert record.viewer_state is ViewerState.READY and len(world.swampd_jobs()) == 1
    world.schedd.down = True  # stopped for a while: locating fails too
    for _ in range(3):
        assert world.settle().viewer_state is ViewerState.READY
    assert world.service.get("p1", "CodeDX")["stale"] is True
    world.schedd.restart()
    world.settle()
    assert world.service.get("p1", "CodeDX")["stale"] is False and lazy.located == 3


def test_a_started_job_counts_as_started_before_its_shadow_updates_the_queue(world: World) -> None:
    ref = launched(world)
    world.schedd.start(ref)
    launch_id = world.record().launch_id
    assert world.schedd.ad(ref)["NumJobStarts"] == 0  # as on a pool, for up to 15 minutes
    assert world.scheduler.observe()[launch_id].starts == 1  # JobRunCount says so at once
