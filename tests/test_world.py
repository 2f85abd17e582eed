"""The reconciler's view of the scheduler's jobs (``ObservedWorld``): when an earlier launch's job may
still be alive, so that a relaunch waits for it (one job per run)."""
from __future__ import annotations

from swampd.agentmonitor.world import ObservedWorld
from swampd.launchpad.jobs import JobObservation, JobStatus
from swampd.store.records import LaunchEntry


def launch(job_ref: str = "") -> LaunchEntry:
    return LaunchEntry(epoch=1, launch_id="L1", token="t", job_ref=job_ref, submitted_at=100.0, created_at=99.0)


def test_a_launch_never_recorded_as_submitted_is_alive_while_the_scheduler_shows_its_job() -> None:
    """A crash between the scheduler's start and the submit's record (a local start is answered before
    its reports reach the registry) leaves a running job with no job_ref; a relaunch that took the
    launch for never submitted started a second viewer beside it (seen in the kill -9 chaos test)."""
    world = ObservedWorld()
    assert not world.may_be_alive(launch())  # nothing known: never submitted
    world.install({"L1": JobObservation("L1", JobStatus.RUNNING)}, 200.0)
    assert world.may_be_alive(launch())  # its job runs, whatever the registry recorded
    world.learn("L1", JobObservation("L1", JobStatus.REMOVED), 201.0)
    assert not world.may_be_alive(launch())  # gone
    world.install({}, 202.0)
    assert not world.may_be_alive(launch())


def test_a_submitted_launch_is_alive_until_the_scheduler_says_it_is_gone() -> None:
    world = ObservedWorld()
    assert world.may_be_alive(launch("L1"))  # the scheduler has not answered yet
    world.install({}, 50.0)  # an answer from before the submit says nothing of it
    assert world.may_be_alive(launch("L1"))
    world.install({}, 150.0)
    assert not world.may_be_alive(launch("L1"))
    world.install({"L1": JobObservation("L1", JobStatus.RUNNING)}, 160.0)
    assert world.may_be_alive(launch("L1"))
