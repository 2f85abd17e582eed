"""The ``agentMonitor.*`` methods of assessment runs: validate, call the service, return structs.

Beside the viewer methods (``api.py``), with the same faults: 1 bad
argument, 2 unknown run, 3 a stale report, 4 a wrong token, 5 try again.
Run ids are execution record uuids (``M-`` for metric runs) and must match
the identifier rule before they reach a path, a constraint or a command.
"""
from __future__ import annotations

from typing import Any

from swampd.agentmonitor import validate as v
from swampd.agentmonitor.assessments import AssessmentService, AssessRequest, StatusReport
from swampd.agentmonitor.changes import Deferred
from swampd.identifiers import check_identifier
from swampd.lifecycle.assessment import AssessmentState
from swampd.runreports import RunResults, RunState

MAX_WAIT = 300.0
ASSESS_KEYS = {"package_path", "tool", "package_name", "package_version", "package_type"}
STATUS_KEYS = {"execrunid", "epoch", "token", "event", "state", "status", "vmip", "node"}
RESULT_IDENTITY = {"execrunid", "epoch", "token"}


def _run_id(value: Any) -> str:
    return check_identifier("execrunid", value)


class RunsAPI:
    """Published as ``agentMonitor.<name>`` beside the viewer methods."""

    def __init__(self, service: AssessmentService) -> None:
        self.service = service

    def launchRun(self, args: Any) -> dict[str, Any]:
        """launchRun({execrunid}) -> run struct.

        Accept the database's assessment run (what ``execute_execution_record``
        calls).  Idempotent: for a run that is queued, running or done it
        changes nothing (``accepted`` is true only for the call that made it).
        """
        args = v.require_struct(args, "launchRun argument")
        v.reject_unknown(args, {"execrunid"}, "launchRun argument")
        if "execrunid" not in args:
            raise v.bad("launchRun needs execrunid")
        return self.service.launch(_run_id(args["execrunid"]))

    def assess(self, args: Any) -> dict[str, Any]:
        """assess({package_path, tool, [package_name, package_version, package_type]}) -> run struct.

        A run made from its arguments, without SWAMP's database (``swampd
        assess``).  ``package_path`` must be under ``[assessments]
        package_roots``; ``tool`` a configured ``[tools.NAME]``.
        """
        args = v.require_struct(args, "assess argument")
        v.reject_unknown(args, ASSESS_KEYS, "assess argument")
        for required in ("package_path", "tool"):
            if required not in args:
                raise v.bad(f"assess needs {required}")
        return self.service.assess(AssessRequest(
            package_path=v.absolute_path(args["package_path"], "package_path"),
            tool=v.text(args["tool"], "tool", 64),
            package_name=v.text(args.get("package_name", ""), "package_name", 256),
            package_version=v.text(args.get("package_version", ""), "package_version", 256),
            package_type=v.text(args.get("package_type", ""), "package_type", 64),
        ))

    def getRun(self, execrunid: Any) -> dict[str, Any]:
        """getRun(execrunid) -> run struct (state 0 NO_RECORD when unknown)."""
        return self.service.get(_run_id(execrunid))

    def listRuns(self, filters: Any = None) -> list[dict[str, Any]]:
        """listRuns([{kind, state, projectid}]) -> array of run structs (filters optional)."""
        filters = v.require_struct(filters if filters is not None else {}, "listRuns filters")
        v.reject_unknown(filters, {"kind", "state", "projectid"}, "listRuns filters")
        kind = filters.get("kind")
        if kind is not None and kind not in ("arun", "mrun"):
            raise v.bad("kind must be arun or mrun")
        states = None
        if "state" in filters:
            states = {int(_state(filters["state"]))}
        projectid = check_identifier("projectid", filters["projectid"]) if "projectid" in filters else None
        return self.service.list(kind, states, projectid)

    def killRun(self, execrunid: Any, hard: Any = False) -> dict[str, Any]:
        """killRun(execrunid, [hard]) -> run struct.  Its job is removed (at once when hard);
        Terminating, then Terminated.  Fault 2 for a run swampd does not know."""
        if not isinstance(hard, bool):
            raise v.bad("hard must be a boolean")
        return self.service.kill(_run_id(execrunid), hard)

    def runHistory(self, execrunid: Any) -> list[dict[str, Any]]:
        """runHistory(execrunid) -> array of {at, epoch, from_state, state, status, source, reason}."""
        return self.service.history(_run_id(execrunid))

    def waitRun(self, execrunid: Any, timeout: Any) -> Deferred[dict[str, Any]]:
        """waitRun(execrunid, timeout) -> run struct once it has ended, or after timeout (<= 300 s)."""
        return self.service.wait(_run_id(execrunid), v.seconds(timeout, "timeout", MAX_WAIT))

    def pauseRuns(self) -> dict[str, Any]:
        """pauseRuns() -> {paused, queued}.  SWAMP off: runs are accepted and queue ("SWAMP off - Queued")."""
        return self.service.set_paused(True)

    def resumeRuns(self) -> dict[str, Any]:
        """resumeRuns() -> {paused, queued}.  SWAMP on: queued runs take slots again."""
        return self.service.set_paused(False)

    def runStatus(self, args: Any) -> bool:
        """runStatus(struct) -> boolean: an execute node's progress (see swampd.runreports)."""
        return self.service.report(run_report(args))

    def runResults(self, args: Any) -> bool:
        """runResults(struct) -> boolean: the results of a node's launch (see swampd.runreports)."""
        args = v.require_struct(args, "runResults argument")
        for required in RESULT_IDENTITY:
            if required not in args:
                raise v.bad(f"runResults needs {required}")
        body = {k: val for k, val in args.items() if k not in RESULT_IDENTITY}
        try:
            results = RunResults.from_struct(body)
        except ValueError as exc:
            raise v.bad(f"runResults: {exc}") from None
        return self.service.results(_run_id(args["execrunid"]), v.integer(args["epoch"], "epoch"),
                                    v.text(args["token"], "token", 200), results)


def _state(value: Any) -> AssessmentState:
    if isinstance(value, str) and value.upper() in AssessmentState.__members__:
        return AssessmentState[value.upper()]
    if isinstance(value, int) and not isinstance(value, bool) and value in AssessmentState._value2member_map_:
        return AssessmentState(value)
    raise v.bad(f"state must be one of {', '.join(AssessmentState.__members__)}")


def run_report(args: Any) -> StatusReport:
    """An execute node's progress report on an assessment run, checked (fault 1 for anything malformed)."""
    args = v.require_struct(args, "runStatus argument")
    v.reject_unknown(args, STATUS_KEYS, "runStatus argument")
    for required in RESULT_IDENTITY:
        if required not in args:
            raise v.bad(f"runStatus needs {required}")
    if ("event" in args) == ("state" in args):
        raise v.bad("runStatus needs exactly one of event and state")
    state = ""
    if "state" in args:
        state = v.text(args["state"], "state", 32)
        if state not in {s.value for s in RunState}:
            raise v.bad(f"state must be one of {', '.join(s.value for s in RunState)}")
    return StatusReport(
        execrunid=_run_id(args["execrunid"]), epoch=v.integer(args["epoch"], "epoch"),
        token=v.text(args["token"], "token", 200),
        event=v.event_name(args["event"]) if "event" in args else "", state=state,
        status=v.text(args.get("status", ""), "status"), vmip=v.vmip(args.get("vmip", "")),
        node=v.host_name(args.get("node", ""), "node"))
