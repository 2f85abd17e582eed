import pytest

from swampd.states import (
    ACTIVE, ENDED, EVENTS, MAY_LAUNCH_FROM, ViewerState as S, apply_report, state_name,
)


def test_codes_are_swamps():
    assert {s.name: int(s) for s in S} == {
        "NO_RECORD": 0, "LAUNCHING": 1, "READY": 2, "STOPPING": -1, "SHUTDOWN": -3,
        "ERROR": -5, "TERMINATING": -6, "TERMINATED": -7, "TERMINATE_FAILED": -8,
    }


def test_launch_allowed_only_from_the_contract_states():
    assert {int(s) for s in MAY_LAUNCH_FROM} == {0, -3, -5, -7}


def test_every_state_is_active_or_ended():
    assert ACTIVE | ENDED == set(S) and not ACTIVE & ENDED


def test_event_table_matches_swamp():
    assert EVENTS["VIEWERUP"] == (S.READY, "Viewer is up")
    assert EVENTS["VIEWERDOWN"] == (S.SHUTDOWN, "Viewer is shutdown")
    assert EVENTS["RUNSHSTART"][0] is S.LAUNCHING
    assert EVENTS["TIMERSHUTDOWN"][0] is S.STOPPING
    assert EVENTS["NOIPSHUTDOWN"][0] is S.STOPPING


def test_state_name_of_unknown_code():
    assert state_name(2) == "READY" and state_name(99) == "UNKNOWN(99)"


def test_report_moves_a_launch_forward():
    t = apply_report(S.LAUNCHING, S.READY, "Viewer is up")
    assert t.changed and t.state is S.READY


def test_report_never_revives_an_ended_launch():
    for ended in ENDED:
        assert not apply_report(ended, S.READY, "Viewer is up").changed


def test_report_cannot_bring_back_a_viewer_going_down():
    assert not apply_report(S.TERMINATING, S.READY, "Viewer is up").changed
    assert not apply_report(S.STOPPING, S.LAUNCHING, "x").changed


def test_shutdown_while_terminating_is_terminated():
    t = apply_report(S.TERMINATING, S.SHUTDOWN, "Viewer is shutdown")
    assert t.changed and t.state is S.TERMINATED


def test_shutdown_while_stopping_is_shutdown():
    t = apply_report(S.STOPPING, S.SHUTDOWN, "Viewer is shutdown")
    assert t.state is S.SHUTDOWN


def test_ready_viewer_ignores_late_launching_events():
    assert not apply_report(S.READY, S.LAUNCHING, "Starting tomcat service").changed


def test_viewer_state_by_code() -> None:
    from swampd.states import viewer_state

    assert all(viewer_state(int(s)) is s for s in S)
    with pytest.raises(ValueError):
        viewer_state(99)
