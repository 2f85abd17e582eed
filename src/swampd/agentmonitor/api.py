"""The ``agentMonitor.*`` XML-RPC namespace: validate, call the service, return structs.

No business logic lives here.  Each method checks its arguments (fault 1 for
anything malformed, before it reaches a path, a constraint or a command),
calls one service method, and returns plain XML-RPC values.
"""
from __future__ import annotations

from typing import Any

from swampd.config import Config
from swampd.identifiers import check_identifier, check_viewer_name
from swampd.states import REPORTABLE_STATES
from swampd.agentmonitor import validate as v
from swampd.agentmonitor.changes import Deferred
from swampd.agentmonitor.service import LaunchRequest, Report, Snapshot, ViewerService

LAUNCH_KEYS = {"projectid", "viewer", "userid", "viewer_uuid", "db_path", "db_checksum", "results",
               # sent by SWAMP's own launchviewer; carries nothing we use
               "resultsfolder"}
#: The longest a waitViewer call may hold its connection.
MAX_WAIT = 300.0
SNAPSHOT_KEYS = {"execrunid", "epoch", "token", "path", "checksum", "platform", "version"}
#: ``node`` (the execute node's host name) is what an assessment's report carries; a viewer's
#: is accepted and not kept (the node's monitor sends it with every WROTEIPADDR).
REPORT_KEYS = {"execrunid", "epoch", "token", "event", "state", "status", "vmip", "node"}


class AgentMonitorAPI:
    """Methods published as ``agentMonitor.<name>``."""

    def __init__(self, service: ViewerService, config: Config) -> None:
        self.service = service
        self.viewers = config.viewer_names
        #: Caller-named files are confined to these (issue 9 findings 1-3), checked at the call.
        self.viewer_dbs = v.Roots(config.viewer_db_roots, config.agentmonitor.max_viewer_db_bytes)
        self.results = v.Roots(config.result_roots, config.agentmonitor.max_result_bytes)

    def _key(self, projectid: Any, viewer: Any) -> tuple[str, str]:
        return check_identifier("projectid", projectid), check_viewer_name(viewer, self.viewers)

    def launchViewer(self, args: Any) -> dict[str, Any]:
        """launchViewer(struct) -> struct.

        Start the viewer of (projectid, viewer) unless one is already
        launching or running; either way return its record.  ``launched`` is
        true only for the call that started a new launch.  Members:
        projectid, viewer (required); userid, viewer_uuid, db_path,
        db_checksum, results (array of {package, package_type, files,
        source_archive, tool_name}).  db_path must be a regular file under
        viewer_db_roots, files and source_archive under result_roots
        (fault 1 otherwise, at this call).
        """
        args = v.require_struct(args, "launchViewer argument")
        v.reject_unknown(args, LAUNCH_KEYS, "launchViewer argument")
        for required in ("projectid", "viewer"):
            if required not in args:
                raise v.bad(f"launchViewer needs {required}")
        projectid, viewer = self._key(args["projectid"], args["viewer"])
        request = LaunchRequest(
            projectid=projectid,
            viewer=viewer,
            userid=v.optional_identifier(args, "userid"),
            viewer_uuid=v.optional_identifier(args, "viewer_uuid"),
            db_path=v.optional_confined_path(args, "db_path", self.viewer_dbs),
            db_checksum=v.optional_checksum(args, "db_checksum"),
            results=v.results_list(args.get("results", []), self.results),
        )
        return self.service.launch(request)

    def getViewer(self, projectid: Any, viewer: Any) -> dict[str, Any]:
        """getViewer(projectid, viewer) -> struct; state 0 (NO_RECORD) when unknown."""
        return self.service.get(*self._key(projectid, viewer))

    def listViewers(self) -> list[dict[str, Any]]:
        """listViewers() -> array of viewer structs."""
        return self.service.list()

    def waitViewer(self, projectid: Any, viewer: Any, state: Any, timeout: Any) -> Deferred[dict[str, Any]]:
        """waitViewer(projectid, viewer, state, timeout) -> struct.

        Waits until the viewer is in ``state`` (a state name such as "READY",
        or its code) and returns its struct, the moment the change is
        committed.  Returns earlier when the launch ends in another state (it
        cannot get there any more), and after ``timeout`` seconds (at most
        300) with whatever the viewer is then.  Replaces polling getViewer.
        No thread waits meanwhile; not available inside system.multicall.
        """
        key = self._key(projectid, viewer)
        return self.service.wait(*key, v.viewer_state(state), v.seconds(timeout, "timeout", MAX_WAIT))

    def stopViewer(self, projectid: Any, viewer: Any, hard: Any = False) -> dict[str, Any]:
        """stopViewer(projectid, viewer, [hard]) -> struct.  Idempotent; cancels a launch in progress.

        Graceful by default (the viewer shuts down and saves its database);
        ``hard`` true removes its job at once, as SWAMP's ``kill_run --hard``.
        """
        if not isinstance(hard, bool):
            raise v.bad("hard must be a boolean")
        return self.service.stop(*self._key(projectid, viewer), hard=hard)

    def viewerHistory(self, projectid: Any, viewer: Any) -> list[dict[str, Any]]:
        """viewerHistory(projectid, viewer) -> array of {at, epoch, state, state_name, status, source}."""
        return self.service.history(*self._key(projectid, viewer))

    def viewerStatus(self, args: Any) -> bool:
        """viewerStatus(struct) -> boolean: a report from the execute node.

        Members: execrunid, epoch (int), token, and either event (a SWAMP
        event name) or state (int) with status; optional vmip (host:port).
        True when the report changed the viewer's state.  A report for an
        older launch is fault 3; a wrong token is fault 4.
        """
        return self.service.report(viewer_report(args))

    def viewerSnapshot(self, args: Any) -> bool:
        """viewerSnapshot(struct) -> boolean: a saved viewer database from ``vruntask finish``.

        Members: execrunid, epoch (int), token, path (a regular file under viewer_db_roots), checksum
        (SHA-512 hex), optional platform and version.  Authenticated like
        viewerStatus (fault 3 stale launch, fault 4 wrong token).
        """
        args = v.require_struct(args, "viewerSnapshot argument")
        v.reject_unknown(args, SNAPSHOT_KEYS, "viewerSnapshot argument")
        for required in ("execrunid", "epoch", "token", "path", "checksum"):
            if required not in args:
                raise v.bad(f"viewerSnapshot needs {required}")
        checksum = v.optional_checksum(args, "checksum")
        if len(checksum) != 128:
            raise v.bad("checksum must be a SHA-512 hex digest (128 digits)")
        snapshot = Snapshot(
            execrunid=v.text(args["execrunid"], "execrunid", 300),
            epoch=v.integer(args["epoch"], "epoch"),
            token=v.text(args["token"], "token", 200),
            path=v.confined_path(args["path"], "path", self.viewer_dbs),
            checksum=checksum,
            platform=v.text(args.get("platform", ""), "platform", 256),
            version=v.text(args.get("version", ""), "version", 256),
        )
        return self.service.snapshot(snapshot)


def viewer_report(args: Any) -> Report:
    """An execute node's viewer report, checked (fault 1 for anything malformed)."""
    args = v.require_struct(args, "viewerStatus argument")
    v.reject_unknown(args, REPORT_KEYS, "viewerStatus argument")
    for required in ("execrunid", "epoch", "token"):
        if required not in args:
            raise v.bad(f"viewerStatus needs {required}")
    has_event, has_state = "event" in args, "state" in args
    if has_event == has_state:
        raise v.bad("viewerStatus needs exactly one of event and state")
    state = None
    if has_state:
        state = v.integer(args["state"], "state")
        if state not in {int(s) for s in REPORTABLE_STATES}:
            allowed = ", ".join(f"{int(s)} ({s.name})" for s in sorted(REPORTABLE_STATES))
            raise v.bad(f"state {state} cannot be reported (allowed: {allowed})")
    report = Report(
        execrunid=v.text(args["execrunid"], "execrunid", 300),
        epoch=v.integer(args["epoch"], "epoch"),
        token=v.text(args["token"], "token", 200),
        event=v.event_name(args["event"]) if has_event else "",
        state=state,
        status=v.text(args.get("status", ""), "status"),
        vmip=v.vmip(args.get("vmip", "")),
    )
    v.host_name(args.get("node", ""), "node")  # checked like an assessment's, not kept for a viewer
    return report
