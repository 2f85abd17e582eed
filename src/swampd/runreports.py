"""What an execute node tells the AgentMonitor about an assessment run: the report contract.

Both sides import this module (it imports nothing of the project), so the
names, types and rules below exist once.  Every call is one XML-RPC struct
argument and answers ``True``; faults are the contract's (1 bad argument,
2 unknown run, 3 stale epoch, 4 wrong token, 5 try again later).  A node
stops retrying on 2, 3 and 4 (the launch is over for it) and retries
everything else with backoff (0.2 s doubling to 10 s) until it is delivered
or its deadline passes (120 s after the machine stopped; ``vruntask finish``
the same).

Identity members, in every call, exactly as ``viewerStatus`` has them:

    execrunid  string  the run id: the execution record uuid of an ARun,
                       ``M-<uuid>`` of an MRun (the BOG's ``execrunid``)
    epoch      int     the launch (attempt) this node runs (BOG ``swampd_epoch``)
    token      string  that launch's report token (the job dir's token file)

A report from an older epoch is fault 3, a wrong token fault 4.

``agentMonitor.runStatus(struct) -> True`` — progress, in the order it
happened (events are read from ``out/job_events.log`` and the node's own
milestones take their place among them).  Besides the identity, exactly one of:

    event   string  a guest event, as the guest wrote it (letters and digits
                    only): RUNSHSTART, WROTEIPADDR, BEGINASSESSMENT,
                    CONNECTEDUSERS, ENDASSESSMENT; any other name may arrive
                    and is ignored, as SWAMP's monitor did.  ``EVENTS`` gives
                    SWAMP's status wording.  With WROTEIPADDR: ``vmip``
                    (string ``ip:port``; the port is the monitor's default
                    8443 when the guest wrote a bare address: store the host part)
                    and ``node`` (string, the execute node's host name, at
                    most 128 characters: SWAMP's execute_node_architecture_id).
    state   string  one of ``RunState``: starting, stopping, stopped,
                    collecting, failed; with ``status`` (string) in SWAMP's
                    wording (starting: ``STARTING_STATUS`` by platform;
                    collecting: "Extracting assessment results"), or, for
                    ``failed``, the reason the node ended or could not run
                    the assessment (a bad BOG, inputs that cannot be staged,
                    a machine that did not start or come up, the run
                    deadline).  A ``failed`` is still followed by
                    ``runResults`` when the machine ran: what it left is
                    collected either way.

Each event is sent once per launch; ``stopped`` only when the machine ended
without writing ENDASSESSMENT; ``stopping`` only when the node stops a
machine that is still running.  No retry suffix is ever added here: the
daemon knows the attempt.

``agentMonitor.runResults(struct) -> True`` — once per launch, after the
machine has stopped, every event was delivered and the results folder is
complete.  A node may send it again with the same content (a post-command
rerun, a lost answer): the daemon must treat a second call for the same
epoch as already done.  Members (``RunResults.to_struct``):

    results_dir     string  absolute path of the results folder
                            (``<resultsfolder>/<execrunid>/e<epoch>``)
    files           struct  role -> {name, path, sha512, bytes}: ``name`` the
                            file name in results_dir, ``path`` its absolute
                            path, ``sha512`` 128 lower-case hex digits,
                            ``bytes`` its size as a decimal string (XML-RPC
                            ints are 32-bit).  Roles (``ROLES``): inputdisk,
                            outputdisk, status, log, source, report, scarf,
                            weaknesses, results_archive; only those present.
    result          string  the role of "the result" for insert_results
                            (§3.1): ``scarf`` when the framework passed and
                            results were found, else ``outputdisk``
    status_out      struct  the §2.2 reading of status.out (``StatusSummary``)
    have_results    bool    §3.4: the parsed-results archive unpacked and its
                            SCARF file is there
    scarf_bugs      int     BugInstances in the SCARF file, -1 when not read
    lines_of_code   int     -1 (only Coverity runs counted lines in SWAMP)
    outcome         string  §3.3 without the daemon's part: "Finished",
                            "Finished with Warnings" or "Finished with Errors"
                            (a failed DB save, and the retry decision, are the
                            daemon's to add)
    problem         string  what went wrong while collecting; left out when
                            nothing did (a node leaves out empty top-level strings)

Every string is XML-safe: characters XML 1.0 forbids are replaced by U+FFFD.
"""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

STATUS_METHOD = "runStatus"
RESULTS_METHOD = "runResults"


class RunState(str, enum.Enum):
    """The node's own milestones of an assessment launch (``runStatus`` ``state``)."""

    STARTING = "starting"      # inputs staged; the machine is being started
    STOPPING = "stopping"      # the node stops a machine that is still running
    STOPPED = "stopped"        # the machine ended without writing ENDASSESSMENT
    COLLECTING = "collecting"  # the machine is down; its outputs are being read back
    FAILED = "failed"          # the node ended the run or could not run it; status says why


#: Guest events and SWAMP's wording for them (MonitorAssessment, reference §7).
EVENTS: dict[str, str] = {
    "RUNSHSTART": "Starting assessment run script",
    "WROTEIPADDR": "Wrote ip address",
    "BEGINASSESSMENT": "Performing assessment",
    "CONNECTEDUSERS": "Checking for connected users",
    "ENDASSESSMENT": "Shutting down the assessment machine",
}
#: ``starting`` status by platform (PreAssessment's wording; the process platform is swampd's own).
STARTING_STATUS = {"vm": "Starting virtual machine", "docker": "Starting docker container",
                   "process": "Starting assessment process"}
COLLECTING_STATUS = "Extracting assessment results"
STOPPING_STATUS = "Shutting down the assessment machine"
STOPPED_STATUS = "Assessment machine stopped"

ROLES = ("inputdisk", "outputdisk", "status", "log", "source", "report", "scarf", "weaknesses",
         "results_archive")
FINISHED, WARNINGS, ERRORS = "Finished", "Finished with Warnings", "Finished with Errors"
#: How much of status.out's text a report carries (the database keeps 3000 characters).
STATUS_TEXT_CAP = 65536

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_SHA512 = re.compile(r"[0-9a-f]{128}")


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 cannot carry replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", text)


@dataclass(frozen=True)
class StatusSummary:
    """status.out as SWAMP's backend read it (reference §2.2), as the ``status_out`` struct.

    ``verdict``: "pass" (``PASS: all``), "fail" (``FAIL: all``) or "" (no
    ``all`` record, or no status.out).  ``weaknesses`` -1 when unknown (the
    database's NULL).  ``text`` is the trimmed content, at most
    ``STATUS_TEXT_CAP`` characters (``truncated`` says when it was cut, also
    when the file was larger than what the node reads of it).
    """

    found: bool = False
    verdict: str = ""
    first_failure: str = ""
    retry: bool = False
    weaknesses: int = -1
    no_build: bool = False
    source_files: int = 0
    compilable: int = 0
    no_files: bool = False
    text: str = ""
    truncated: bool = False

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"


@dataclass(frozen=True)
class ResultFile:
    name: str
    path: str
    sha512: str
    bytes: int


@dataclass(frozen=True)
class RunResults:
    results_dir: str
    files: dict[str, ResultFile] = field(default_factory=dict)
    result: str = "outputdisk"
    status_out: StatusSummary = field(default_factory=StatusSummary)
    have_results: bool = False
    scarf_bugs: int = -1
    lines_of_code: int = -1
    outcome: str = ERRORS
    problem: str = ""

    def to_struct(self) -> dict[str, Any]:
        """The ``runResults`` members (without the identity)."""
        status = self.status_out
        return {
            "results_dir": xml_safe(self.results_dir),
            "files": {role: {"name": xml_safe(f.name), "path": xml_safe(f.path), "sha512": f.sha512,
                             "bytes": str(f.bytes)} for role, f in self.files.items()},
            "result": self.result,
            "status_out": {"found": status.found, "verdict": status.verdict,
                           "first_failure": xml_safe(status.first_failure), "retry": status.retry,
                           "weaknesses": _int32(status.weaknesses), "no_build": status.no_build,
                           "source_files": _int32(status.source_files), "compilable": _int32(status.compilable),
                           "no_files": status.no_files, "text": xml_safe(status.text[:STATUS_TEXT_CAP]),
                           "truncated": status.truncated or len(status.text) > STATUS_TEXT_CAP},
            "have_results": self.have_results,
            "scarf_bugs": _int32(self.scarf_bugs),
            "lines_of_code": _int32(self.lines_of_code),
            "outcome": self.outcome,
            "problem": xml_safe(self.problem),
        }

    @classmethod
    def from_struct(cls, body: dict[str, Any]) -> RunResults:
        """Read a ``runResults`` struct back, checking every member; ValueError naming the bad one."""
        files = {}
        raw_files = _get(body, "files", dict)
        for role, item in raw_files.items():
            if role not in ROLES or not isinstance(item, dict):
                raise ValueError(f"files.{str(role)[:40]}: not a known role with a struct")
            sha = _get(item, "sha512", str)
            size = _get(item, "bytes", str)
            if _SHA512.fullmatch(sha) is None or not size.isdigit():
                raise ValueError(f"files.{role}: sha512 must be 128 hex digits and bytes a decimal string")
            files[role] = ResultFile(_get(item, "name", str), _get(item, "path", str), sha, int(size))
        result = _get(body, "result", str)
        if result not in files:
            raise ValueError("result: must name one of the files' roles")
        raw = _get(body, "status_out", dict)
        status = StatusSummary(
            found=_get(raw, "found", bool), verdict=_get(raw, "verdict", str),
            first_failure=_get(raw, "first_failure", str), retry=_get(raw, "retry", bool),
            weaknesses=_get(raw, "weaknesses", int), no_build=_get(raw, "no_build", bool),
            source_files=_get(raw, "source_files", int), compilable=_get(raw, "compilable", int),
            no_files=_get(raw, "no_files", bool), text=_get(raw, "text", str),
            truncated=_get(raw, "truncated", bool))
        if status.verdict not in ("pass", "fail", ""):
            raise ValueError("status_out.verdict: must be pass, fail or ''")
        outcome = _get(body, "outcome", str)
        if outcome not in (FINISHED, WARNINGS, ERRORS):
            raise ValueError("outcome: must be Finished, Finished with Warnings or Finished with Errors")
        return cls(results_dir=_get(body, "results_dir", str), files=files, result=result, status_out=status,
                   have_results=_get(body, "have_results", bool), scarf_bugs=_get(body, "scarf_bugs", int),
                   lines_of_code=_get(body, "lines_of_code", int), outcome=outcome,
                   problem=_get({"problem": "", **body}, "problem", str))


def outcome(status: StatusSummary, have_results: bool) -> str:
    """SWAMP's final status word before the database save and the retry decision (reference §3.3)."""
    if not status.passed or not have_results:
        return ERRORS
    if status.no_build and status.source_files > status.compilable:
        return WARNINGS
    if status.no_files:
        return WARNINGS
    return FINISHED


def _int32(value: int) -> int:
    return max(-(2 ** 31), min(value, 2 ** 31 - 1))


def _get(body: dict[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"{key}: expected {kind.__name__}")
    return value
