"""Viewer states, the guest event vocabulary, and the transition rules for reports.

This module is the state model and nothing else: it must import no project
module and do no I/O, so that every rule here can be read and tested on its
own.  The numeric codes are SWAMP's (the PHP web server and the collector ads
depend on them) and must never change.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class ViewerState(IntEnum):
    """SWAMP viewer state codes (vmu_ViewerSupport / ViewerInstance.php)."""

    NO_RECORD = 0
    LAUNCHING = 1
    READY = 2
    STOPPING = -1
    SHUTDOWN = -3
    ERROR = -5
    TERMINATING = -6
    TERMINATED = -7
    TERMINATE_FAILED = -8


#: A new launch may be taken from these states (the web's ``isOKToLaunch``).
MAY_LAUNCH_FROM = frozenset(
    {ViewerState.NO_RECORD, ViewerState.SHUTDOWN, ViewerState.ERROR, ViewerState.TERMINATED}
)

#: States in which the current launch is over: nothing more will happen to it
#: unless a new launch is taken.  TERMINATE_FAILED is here because the web
#: treats it as final too; the reconciler keeps trying to remove its job.
ENDED = frozenset(
    {
        ViewerState.NO_RECORD,
        ViewerState.SHUTDOWN,
        ViewerState.ERROR,
        ViewerState.TERMINATED,
        ViewerState.TERMINATE_FAILED,
    }
)

#: States the reconciler keeps working on.
ACTIVE = frozenset(
    {ViewerState.LAUNCHING, ViewerState.READY, ViewerState.STOPPING, ViewerState.TERMINATING}
)

#: States in which we are taking the viewer down.
GOING_DOWN = frozenset({ViewerState.STOPPING, ViewerState.TERMINATING})


#: Code -> state: ``ViewerState(code)`` goes through the enum machinery, some thirty times a launch.
_BY_CODE: dict[int, ViewerState] = {int(state): state for state in ViewerState}


def viewer_state(code: int) -> ViewerState:
    """The state of a code; ValueError for a code that is none."""
    state = _BY_CODE.get(code)
    return state if state is not None else ViewerState(code)


def state_name(code: int) -> str:
    """The SWAMP name of a state code, or ``UNKNOWN(<code>)``."""
    state = _BY_CODE.get(code)
    return state.name if state is not None else f"UNKNOWN({code})"


#: Guest event -> (state, status text), the table of SWAMP's MonitorViewer.
EVENTS: dict[str, tuple[ViewerState, str]] = {
    "RUNSHSTART": (ViewerState.LAUNCHING, "Starting viewer run script"),
    "WROTEIPADDR": (ViewerState.LAUNCHING, "Wrote viewer ip address"),
    "NOIP": (ViewerState.STOPPING, "Viewer has no ip address"),
    "NOIPSHUTDOWN": (ViewerState.STOPPING, "Shutting down viewer for no ip address"),
    "MYSQLSTART": (ViewerState.LAUNCHING, "Starting mysql service"),
    "MYSQLRUN": (ViewerState.LAUNCHING, "Service mysql running"),
    "MYSQLEMPTY": (ViewerState.LAUNCHING, "Restoring empty mysql database"),
    "MYSQLGRANT": (ViewerState.LAUNCHING, "Granting privileges for viewer database"),
    "MYSQLDROP": (ViewerState.LAUNCHING, "Dropping viewer database"),
    "MYSQLFAIL": (ViewerState.STOPPING, "Service mysql failed to start"),
    "MYSQLSHUTDOWN": (ViewerState.STOPPING, "Shutting down viewer for no mysql"),
    "USERDB": (ViewerState.LAUNCHING, "Restoring user database"),
    "EMPTYDB": (ViewerState.LAUNCHING, "Restoring empty viewer database"),
    "CREATEPROXY": (ViewerState.LAUNCHING, "Creating proxy directory"),
    "CONFIG": (ViewerState.LAUNCHING, "Restoring viewer configuration"),
    "EMPTYCONFIG": (ViewerState.LAUNCHING, "Initializing viewer configuration"),
    "PROPERTIES": (ViewerState.LAUNCHING, "Copying viewer properties"),
    "APIKEY": (ViewerState.LAUNCHING, "Inserting APIKEY"),
    "BASEURL": (ViewerState.LAUNCHING, "Inserting DefaultConfiguration"),
    "WARFILE": (ViewerState.LAUNCHING, "Restoring viewer war file"),
    "TOMCATSTART": (ViewerState.LAUNCHING, "Starting tomcat service"),
    "TOMCATRUN": (ViewerState.LAUNCHING, "Service tomcat running"),
    "TIMERSTART": (ViewerState.LAUNCHING, "Starting viewer checktimeout"),
    "TOMCATFAIL": (ViewerState.STOPPING, "Service tomcat failed to start"),
    "TOMCATSHUTDOWN": (ViewerState.STOPPING, "Shutting down viewer for no tomcat"),
    "CONNECTEDUSERS": (ViewerState.STOPPING, "Checking for connected users"),
    "TIMERSHUTDOWN": (ViewerState.STOPPING, "Shutting down viewer after timeout"),
    "VIEWERDBBACKUP": (ViewerState.STOPPING, "Starting viewer database backup"),
    "VIEWERDBDUMPFAIL": (ViewerState.STOPPING, "Viewer database dump failed"),
    "VIEWERDBDUMPSUCCESS": (ViewerState.STOPPING, "Viewer database dump succeeded"),
    "VIEWERDBCONFIGFAIL": (ViewerState.STOPPING, "Viewer configuration tar failed"),
    "VIEWERDBCONFIGSUCCESS": (ViewerState.STOPPING, "Viewer configuration tar succeeded"),
    "VIEWERDBBUNDLESKIP": (ViewerState.STOPPING, "Viewer user data bundling skipped"),
    "VIEWERDBNOBUNDLE": (ViewerState.STOPPING, "Viewer no user data to bundle"),
    "VIEWERDBBUNDLEFAIL": (ViewerState.STOPPING, "Viewer user data bundling failed"),
    "VIEWERDBBUNDLESUCCESS": (ViewerState.STOPPING, "Viewer user data bundling succeeded"),
    "VIEWERUP": (ViewerState.READY, "Viewer is up"),
    "VIEWERDOWN": (ViewerState.SHUTDOWN, "Viewer is shutdown"),
}

#: States an execute node may report directly (``state`` instead of ``event``).
REPORTABLE_STATES = frozenset(
    {ViewerState.LAUNCHING, ViewerState.STOPPING, ViewerState.SHUTDOWN, ViewerState.ERROR}
)


@dataclass(frozen=True)
class Transition:
    """The outcome of applying one report: the new state and text, or no change."""

    changed: bool
    state: ViewerState
    status: str
    reason: str = ""


def apply_report(current: ViewerState, reported: ViewerState, status: str) -> Transition:
    """Decide what a report from the current launch's execute node does.

    Why these rules: reports arrive late and out of band (a guest keeps
    writing events while we are tearing it down), so a report may move a
    launch forward or towards its end, but it never revives a viewer we are
    taking down and never changes a launch that has already ended.
    """
    if current in ENDED:
        return Transition(False, current, "", "launch already ended")
    if current in GOING_DOWN:
        # While going down only the end of the viewer is news.
        if reported in (ViewerState.SHUTDOWN, ViewerState.ERROR):
            final = ViewerState.TERMINATED if current is ViewerState.TERMINATING else reported
            return Transition(True, final, "Terminated" if final is ViewerState.TERMINATED else status)
        if reported is ViewerState.STOPPING and current is ViewerState.STOPPING:
            return Transition(True, current, status)
        return Transition(False, current, "", "viewer is going down")
    if current is ViewerState.READY and reported is ViewerState.LAUNCHING:
        return Transition(False, current, "", "viewer is already up")
    return Transition(True, reported, status)
