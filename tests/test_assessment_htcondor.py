"""Assessment runs on HTCondor (the schedd double): SWAMP's job attributes, preemption, kill.

HTCondor forgives less than the local scheduler: a preempted job goes back
to the queue and runs again from the start, and a removed job stays in the
queue (X state) until its machine has shut down.  A run must show each
preemption once, take its node's reports again when the job restarts, and
end a kill only once the job has left.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from htcondor_world import World
from support.assess import package_archive

from swampd.agentmonitor.assessments import AssessRequest, StatusReport
from swampd.config import AssessmentsConfig
from swampd.lifecycle.assessment import AssessmentState as S
from swampd.runreports import RunState
from swampd.store.records import AssessmentRecord

PREEMPTED = "Preempted - Waiting in HTCondor Queue"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    packages = tmp_path / "packages"
    packages.mkdir()
    w = World(tmp_path, assessments=AssessmentsConfig(max_concurrent=0, package_roots=(str(packages),)))
    w.package = str(package_archive(packages))  # type: ignore[attr-defined]
    yield w
    w.close()


def run(world: World, execrunid: str) -> AssessmentRecord:
    record = world.store.get_run("arun", execrunid)
    assert isinstance(record, AssessmentRecord)
    return record


def settle(world: World, execrunid: str) -> AssessmentRecord:
    """One resync, then the run's effects and steps, as the daemon's threads would."""
    world.reconciler.resync()
    world.clock.advance(1.0)
    run_id = run(world, execrunid).id
    for _ in range(20):
        handed = world.reconciler.effects.dispatched
        world.reconciler.process(run_id)
        world.wait_slow_effects()
        if world.reconciler.effects.dispatched == handed:
            break
    return run(world, execrunid)


def node_reports(world: World, execrunid: str, state: RunState) -> bool:
    record = run(world, execrunid)
    return world.runs.report(StatusReport(execrunid, record.epoch, record.token, state=state))


def statuses(world: World, execrunid: str) -> list[str]:
    return [h["status"] for h in world.runs.history(execrunid)]


def submitted(world: World) -> tuple[str, str]:
    execrunid = world.runs.assess(AssessRequest(world.package, "cppcheck"))["execrunid"]  # type: ignore[attr-defined]
    record = settle(world, execrunid)
    assert record.state == S.SUBMITTED and record.job_ref, record
    return execrunid, record.job_ref


def test_an_assessment_job_carries_swamps_attributes_and_no_secret(world: World) -> None:
    execrunid, ref = submitted(world)
    ad = world.schedd.ad(ref)
    assert ad["SWAMP_arun_execrunuid"] == execrunid and ad["ViewerJob"] is False
    assert ad["AcctGroup"] == "group_assessment" and ad["SwampdKind"] == "arun"
    token = run(world, execrunid).token
    assert token and all(token not in str(ad[k]) for k in ad.keys())
    # a second resync submits nothing more: one job for the launch
    settle(world, execrunid)
    assert world.schedd.calls["submit"] == 1 and len(world.swampd_jobs()) == 1


def test_a_preempted_run_says_so_once_and_runs_again_when_its_job_restarts(world: World) -> None:
    execrunid, ref = submitted(world)
    world.schedd.start(ref)
    assert node_reports(world, execrunid, RunState.STARTING)
    assert settle(world, execrunid).state == S.RUNNING
    world.schedd.evict(ref)
    record = settle(world, execrunid)
    assert (record.state, record.status) == (S.SUBMITTED, PREEMPTED)
    for _ in range(5):  # waiting in the queue: nothing new to say
        world.clock.advance(10)
        assert settle(world, execrunid).status == PREEMPTED
    assert statuses(world, execrunid).count(PREEMPTED) == 1
    world.schedd.start(ref)  # the same job, started again from the beginning
    assert node_reports(world, execrunid, RunState.STARTING)
    record = settle(world, execrunid)
    assert record.state == S.RUNNING and record.epoch == 1 and record.job_ref == ref
    world.schedd.evict(ref)  # a second preemption is said again, once
    assert settle(world, execrunid).status == PREEMPTED
    settle(world, execrunid)
    assert statuses(world, execrunid).count(PREEMPTED) == 2
    assert len(world.swampd_jobs()) == 1  # never a second job


def test_a_killed_running_run_ends_only_once_its_job_has_left_the_queue(world: World) -> None:
    execrunid, ref = submitted(world)
    world.schedd.start(ref)
    node_reports(world, execrunid, RunState.STARTING)
    settle(world, execrunid)
    world.runs.kill(execrunid, hard=False)
    record = settle(world, execrunid)
    assert record.state == S.TERMINATING and world.schedd.ad(ref)["JobStatus"] == 3  # removed, still leaving
    removes = sum(1 for a in world.schedd.actions if a[0] == "Remove")
    for _ in range(5):
        world.clock.advance(10)
        assert settle(world, execrunid).state == S.TERMINATING
    assert sum(1 for a in world.schedd.actions if a[0] == "Remove") == removes  # asked once
    world.schedd.vacated(ref)
    record = settle(world, execrunid)
    assert (record.state, record.status) == (S.TERMINATED, "Terminated")


def test_a_held_assessment_job_fails_the_run_with_the_hold_reason_and_is_removed(world: World) -> None:
    execrunid, ref = submitted(world)
    world.schedd.hold(ref, "Error from slot1@exec: VMGAHP_ERR_INTERNAL", 6)
    record = settle(world, execrunid)
    assert record.state == S.FAILED and "VMGAHP_ERR_INTERNAL" in record.status
    assert record.status.startswith("Finished with Errors")
    assert any(a[0] == "Remove" for a in world.schedd.actions)


def finished_by_its_results(world: World, execrunid: str) -> None:
    """What storing a run's results leaves (the store_results effect's last transaction)."""
    with world.store.transaction() as tx:
        record = tx.get_run("arun", execrunid)
        record.finished_at = world.clock()
        tx.put_run(record)
        tx.transition(record, int(S.FINISHED), "Finished", "test", "results stored")


def test_a_finished_runs_job_gets_its_leave_time_to_complete_before_it_is_removed(world: World) -> None:
    """Found on a real pool: the results arrive before vruntask has exited, and swampd removed
    a job that was about to complete (the history showed it removed, not completed)."""
    execrunid, ref = submitted(world)
    world.schedd.start(ref)
    node_reports(world, execrunid, RunState.STARTING)
    settle(world, execrunid)
    finished_by_its_results(world, execrunid)
    leave = world.scheduler.leave_time()
    settle(world, execrunid)
    world.clock.advance(leave / 2)
    settle(world, execrunid)
    assert not any(a[0] == "Remove" for a in world.schedd.actions)
    world.schedd.complete(ref)
    world.clock.advance(leave)
    assert settle(world, execrunid).state == S.FINISHED
    assert not any(a[0] == "Remove" for a in world.schedd.actions)
    assert world.schedd.history_ads[0]["JobStatus"] == 4


def test_a_finished_runs_job_that_does_not_exit_is_removed_after_its_leave_time(world: World) -> None:
    execrunid, ref = submitted(world)
    world.schedd.start(ref)
    node_reports(world, execrunid, RunState.STARTING)
    settle(world, execrunid)
    finished_by_its_results(world, execrunid)
    settle(world, execrunid)
    world.clock.advance(world.scheduler.leave_time() + 1)
    settle(world, execrunid)
    removes = [a for a in world.schedd.actions if a[0] == "Remove"]
    assert len(removes) == 1 and "FINISHED" in (removes[0][2] or "")


def test_the_leave_time_of_a_finished_run_is_a_deadline_the_reconciler_wakes_for() -> None:
    from swampd.lifecycle.assessment import Facts, Timing, next_deadline
    from swampd.lifecycle.base import JobFacts, JobView

    timing = Timing(queue_timeout=100, run_timeout=100, collect_timeout=100, stop_timeout=70, leave_time=60)
    running = JobFacts(JobView.RUNNING)
    assert next_deadline(Facts(S.FINISHED, 1, 2, 3, 0, running, finished_at=500.0), timing) == 560.0
    assert next_deadline(Facts(S.FINISHED, 1, 2, 3, 0, JobFacts(JobView.FINISHED), finished_at=500.0), timing) is None
    assert next_deadline(Facts(S.TERMINATED, 1, 2, 3, 0, running), timing) is None
