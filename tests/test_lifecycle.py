import pytest

from swampd.lifecycle.viewer import Deadlines, Facts, JobView as J, next_step
from swampd.states import ViewerState as S

D = Deadlines(ready_timeout=100, idle_timeout=50, max_lifetime=1000, stop_timeout=30)


def facts(state, job=J.RUNNING, launched=0.0, ready=0.0, request=0.0, stop=0.0, detail=""):
    return Facts(state, launched, ready, request, stop, job, detail)


def test_launching_within_deadline_waits():
    assert next_step(facts(S.LAUNCHING), D, now=99) is None


def test_launching_past_deadline_is_error_and_job_removed():
    step = next_step(facts(S.LAUNCHING), D, now=101)
    assert step.state is S.ERROR and "100s" in step.status and step.remove_job


def test_launch_never_submitted_times_out_without_removal():
    step = next_step(facts(S.LAUNCHING, J.NOT_SUBMITTED), D, now=101)
    assert step.state is S.ERROR and not step.remove_job


@pytest.mark.parametrize("state", [S.LAUNCHING, S.READY, S.STOPPING, S.TERMINATING])
def test_unknown_job_never_ends_a_viewer(state):
    step = next_step(facts(state, J.UNKNOWN, ready=0, request=0, stop=1), D, now=10)
    assert step is None


def test_unknown_still_obeys_our_own_deadlines():
    step = next_step(facts(S.LAUNCHING, J.UNKNOWN), D, now=500)
    assert step.state is S.ERROR


def test_launching_job_gone_is_error_with_detail():
    step = next_step(facts(S.LAUNCHING, J.FINISHED, detail="job exited with status 1"), D, now=1)
    assert step.state is S.ERROR and "status 1" in step.status


def test_held_job_is_error_and_removed():
    step = next_step(facts(S.READY, J.HELD, detail="disk full (HoldReasonCode 13)"), D, now=1)
    assert step.state is S.ERROR and "HoldReasonCode 13" in step.status and step.remove_job


def test_ready_job_gone_is_shutdown():
    assert next_step(facts(S.READY, J.MISSING), D, now=1).state is S.SHUTDOWN


def test_idle_counts_from_last_request():
    assert next_step(facts(S.READY, ready=10, request=40), D, now=89) is None
    step = next_step(facts(S.READY, ready=10, request=40), D, now=91)
    assert step.state is S.STOPPING and "idle" in step.status and step.remove_job


def test_max_lifetime_beats_activity():
    step = next_step(facts(S.READY, ready=10, request=1000), D, now=1001)
    assert step.state is S.STOPPING and "lifetime" in step.status


def test_terminating_job_gone_is_terminated():
    assert next_step(facts(S.TERMINATING, J.FINISHED, stop=5), D, now=6).state is S.TERMINATED


def test_terminating_stuck_is_terminate_failed():
    step = next_step(facts(S.TERMINATING, J.RUNNING, stop=5), D, now=36)
    assert step.state is S.TERMINATE_FAILED and step.remove_job


def test_terminate_failed_recovers_when_job_goes():
    assert next_step(facts(S.TERMINATE_FAILED, J.FINISHED), D, now=1).state is S.TERMINATED


def test_ended_viewer_with_live_job_removes_job_only():
    step = next_step(facts(S.ERROR, J.RUNNING), D, now=1)
    assert step.state is None and step.remove_job


def test_stopping_job_gone_is_shutdown():
    assert next_step(facts(S.STOPPING, J.FINISHED), D, now=1).state is S.SHUTDOWN


def test_ready_job_that_failed_is_error_not_shutdown():
    step = next_step(facts(S.READY, J.FAILED, detail="job ended without an exit status (killed?)"), D, now=1)
    assert step.state is S.ERROR and "killed?" in step.status


@pytest.mark.parametrize("state, final", [(S.STOPPING, S.SHUTDOWN), (S.TERMINATING, S.TERMINATED)])
def test_a_failed_job_while_going_down_is_the_normal_end(state, final):
    assert next_step(facts(state, J.FAILED, stop=1), D, now=2).state is final


def test_next_deadline_is_the_earliest_deadline_that_applies():
    from swampd.lifecycle.viewer import next_deadline

    d = Deadlines(ready_timeout=100, idle_timeout=50, max_lifetime=1000, stop_timeout=30, leave_time=20)
    assert next_deadline(facts(S.LAUNCHING, launched=10), d) == 110
    assert next_deadline(facts(S.READY, launched=0, ready=10, request=40), d) == 90
    assert next_deadline(facts(S.READY, launched=0, ready=10, request=990), d) == 1000
    assert next_deadline(facts(S.TERMINATING, stop=5), d) == 35
    leaving = Facts(S.TERMINATING, 0, 0, 0, 5, J.RUNNING, "", leaving=True, leaving_since=7)
    assert next_deadline(leaving, d) == 27
    assert next_deadline(facts(S.SHUTDOWN, J.FINISHED), d) is None
    # A machine that shut itself down: its still running job gets the leave time, then is removed.
    ended = Facts(S.SHUTDOWN, 0, 0, 0, 0, J.RUNNING, "", ended_at=50)
    assert next_deadline(ended, d) == 70
