"""Stop and relaunch on HTCondor, where a removed job takes minutes to leave.

The local scheduler's remove blocks until the job is gone; HTCondor's does
not: a removed vm job keeps running for up to ``job_max_vacate_time`` while
the guest shuts down and saves its database.  These tests hold a job in that
state (the double keeps a removed running job in the queue until
``vacated``) and check what swampd does meanwhile.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from htcondor_world import World

from swampd.states import ViewerState

VACATE = 1200  # HTCondor's default job_max_vacate_time that swampd asks for


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def ready(world: World) -> str:
    world.launch()
    ref = world.settle().job_ref
    world.schedd.start(ref)
    world.report_up()
    assert world.settle().viewer_state is ViewerState.READY
    return ref


def live_jobs(world: World) -> list[str]:
    """Refs of the key's jobs that are still running or waiting to run (not removed)."""
    return [f"{ad['ClusterId']}.{ad['ProcId']}" for ad in world.swampd_jobs() if ad["JobStatus"] in (1, 2, 5)]


def test_a_stop_waits_for_the_vacating_job_instead_of_failing(world: World) -> None:
    ref = ready(world)
    world.service.stop("p1", "CodeDX")
    world.settle()
    assert world.schedd.ad(ref)["JobStatus"] == 3  # removed, still shutting down
    for _ in range(60):  # ten minutes of a guest saving its database
        world.clock.advance(10)
        record = world.settle()
        assert record.viewer_state is ViewerState.TERMINATING, record.status
    world.schedd.vacated(ref)
    world.clock.advance(5)
    assert world.settle().viewer_state is ViewerState.TERMINATED


def test_a_job_that_never_leaves_ends_terminate_failed_after_the_schedulers_own_deadline(world: World) -> None:
    ref = ready(world)
    world.service.stop("p1", "CodeDX")
    world.settle()
    # Past job_max_vacate_time and remove_grace: the job is forced out, and the
    # stop is reported failed only if even that did not take it away.
    world.schedd.ad(ref)["JobMaxVacateTime"] = 10**9  # a starter that never kills it
    world.clock.advance(world.condor.remove_grace + 1)
    world.settle()
    assert ("RemoveX", ref) in [(a, s) for a, s, _ in world.schedd.actions]
    world.clock.advance(5)
    assert world.settle().viewer_state is ViewerState.TERMINATED  # RemoveX took it out


def test_one_bulk_query_per_resync_and_no_new_removes_while_a_job_vacates(world: World) -> None:
    ref = ready(world)
    world.service.stop("p1", "CodeDX")
    world.settle()
    removes = [a for a in world.schedd.actions if a[0] == "Remove"]
    assert len(removes) == 1
    rows_before = len(world.store.pending_outbox())
    for _ in range(10):
        world.clock.advance(5)
        before = world.schedd.calls["query"] + world.schedd.calls["history"]
        world.settle()
        assert world.schedd.calls["query"] + world.schedd.calls["history"] - before == 1
    assert [a for a in world.schedd.actions if a[0] == "Remove"] == removes
    assert len(world.store.pending_outbox()) <= rows_before
    assert world.schedd.ad(ref)["JobStatus"] == 3


def test_a_relaunch_waits_until_the_previous_job_has_left(world: World) -> None:
    old = ready(world)
    # The guest shuts its viewer down by itself (idle inside the guest): the
    # launch ends, but the job keeps running while the database is saved.
    record = world.record()
    from swampd.agentmonitor.service import Report

    assert world.service.report(Report(record.execrunid, record.epoch, record.token, event="VIEWERDOWN"))
    assert world.settle().viewer_state is ViewerState.SHUTDOWN
    relaunch = world.launch()
    assert relaunch["launched"] and relaunch["epoch"] == 2
    for _ in range(30):  # five minutes of vacating
        world.clock.advance(10)
        world.settle()
        assert live_jobs(world) in ([old], [])
        assert len([ad for ad in world.swampd_jobs() if ad["SwampdEpoch"] == 2]) == 0
    if world.schedd.jobs.get(tuple(int(x) for x in old.split("."))):
        world.schedd.vacated(old)
    world.clock.advance(120)
    record = world.settle()
    assert record.epoch == 2 and record.job_ref and record.job_ref != old, [
        (i.effect, i.epoch, i.attempts, i.next_at - world.clock(), i.last_error) for i in world.store.pending_outbox()]
    assert live_jobs(world) == [record.job_ref]


def test_a_relaunch_restores_the_database_the_previous_launch_saved_while_leaving(world: World) -> None:
    from swampd.agentmonitor.service import Report, Snapshot

    old = ready(world)
    first = world.record()
    assert world.service.report(Report(first.execrunid, first.epoch, first.token, event="VIEWERDOWN"))
    world.settle()
    world.launch()
    world.clock.advance(30)
    world.settle()
    # The old launch's post-command saves the database after the relaunch was asked for.
    saved = world.root / "SCAProjects" / "p1" / "V-Runs" / "vi-1" / "codedx_viewerdb_1.tar.gz"
    saved.parent.mkdir(parents=True)
    saved.write_bytes(b"viewer database")
    import hashlib

    digest = hashlib.sha512(saved.read_bytes()).hexdigest()
    assert world.service.snapshot(Snapshot(first.execrunid, first.epoch, first.token, str(saved), digest))
    world.schedd.vacated(old) if world.schedd.ad(old)["JobStatus"] == 3 else world.schedd.complete(old)
    world.clock.advance(120)
    record = world.settle()
    assert record.epoch == 2 and record.job_ref
    bog = (world.root / "jobs" / record.launch_id / f"{record.execrunid}.bog").read_text()
    assert f"db_path={saved}" in bog and f"db_checksum={digest}" in bog
