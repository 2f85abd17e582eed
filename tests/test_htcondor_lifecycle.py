"""The held-job policy of the lifecycle rules: ERROR with the reason either way; remove or leave."""
from __future__ import annotations

import pytest

from swampd.lifecycle.viewer import Deadlines, Facts, JobView, next_step
from swampd.states import ViewerState

DEADLINES = Deadlines(ready_timeout=600, idle_timeout=3600, max_lifetime=28800, stop_timeout=60)
DETAIL = "Error from slot1@exec1: VMGAHP_ERR_INTERNAL (HoldReasonCode 6)"


def facts(state: ViewerState, job: JobView) -> Facts:
    return Facts(state, launched_at=1000.0, ready_at=1100.0, last_request_at=1100.0, stop_requested_at=0.0,
                 job=job, job_detail=DETAIL)


@pytest.mark.parametrize("state", [ViewerState.LAUNCHING, ViewerState.READY])
@pytest.mark.parametrize("remove_held", [True, False])
def test_a_held_job_ends_the_launch_in_error_with_its_reason(state: ViewerState, remove_held: bool) -> None:
    step = next_step(facts(state, JobView.HELD), DEADLINES, now=1200.0, remove_held=remove_held)
    assert step is not None and step.state is ViewerState.ERROR
    assert DETAIL in step.status
    assert step.remove_job is remove_held


def test_an_ended_launch_with_a_held_job_is_left_alone_when_leaving_held_jobs() -> None:
    assert next_step(facts(ViewerState.ERROR, JobView.HELD), DEADLINES, now=1200.0, remove_held=False) is None
    step = next_step(facts(ViewerState.ERROR, JobView.HELD), DEADLINES, now=1200.0)
    assert step is not None and step.remove_job and step.state is None


def test_leaving_held_jobs_still_removes_running_leftovers() -> None:
    step = next_step(facts(ViewerState.ERROR, JobView.RUNNING), DEADLINES, now=1200.0, remove_held=False)
    assert step is not None and step.remove_job


def shutdown(job: JobView, stop_requested_at: float = 0.0, ended_at: float = 1150.0) -> Facts:
    return Facts(ViewerState.SHUTDOWN, launched_at=1000.0, ready_at=1100.0, last_request_at=1100.0,
                 stop_requested_at=stop_requested_at, job=job, job_detail=DETAIL, ended_at=ended_at)


LEAVE = Deadlines(ready_timeout=600, idle_timeout=3600, max_lifetime=28800, stop_timeout=160, leave_time=100)


@pytest.mark.parametrize("remove_held", [True, False])
def test_a_hold_that_shut_the_machine_down_first_ends_the_launch_in_error(remove_held: bool) -> None:
    # A hold vacates a running job: its node reported the viewer down (SHUTDOWN) before the
    # scheduler showed the hold.  Nobody asked for a stop, so the hold is why the launch ended.
    step = next_step(shutdown(JobView.HELD), LEAVE, now=1200.0, remove_held=remove_held)
    assert step is not None and step.state is ViewerState.ERROR and step.status == f"Viewer job held: {DETAIL}"
    assert step.remove_job is remove_held


def test_a_held_job_after_a_stop_is_only_removed() -> None:
    step = next_step(shutdown(JobView.HELD, stop_requested_at=1140.0), LEAVE, now=1200.0)
    assert step is not None and step.state is None and step.remove_job


def test_a_machine_that_shut_itself_down_gets_the_leave_time_to_end_its_job() -> None:
    assert next_step(shutdown(JobView.RUNNING), LEAVE, now=1150.0 + 100) is None  # saving its database
    step = next_step(shutdown(JobView.RUNNING), LEAVE, now=1150.0 + 101)
    assert step is not None and step.state is None and step.remove_job and not step.force
