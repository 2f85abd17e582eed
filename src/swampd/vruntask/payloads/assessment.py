"""The assessment payload (ARun and MRun): a tool assesses a package, and its results are handed back.

Inputs are SWAMP's ``in/`` (``assessment_inputs``); up is ``BEGINASSESSMENT``
and down ``ENDASSESSMENT``, the events of SWAMP's run.sh (reference §7);
reports go to ``agentMonitor.runStatus`` and the results to
``agentMonitor.runResults`` (the contract is ``swampd.runreports``); the
outputs become the results folder (``assessment_results``).

On the process platform the platform itself plays run.sh's part (it writes
RUNSHSTART, the address, WROTEIPADDR, and BEGINASSESSMENT once the payload
says its program is up, then ENDASSESSMENT when it has ended), and the
command it starts is ``swampd.tools.runsh``: it waits for BEGINASSESSMENT, as
run.sh starts ``build_assess_driver`` only after writing it, runs the
configured tool's command on ``in/`` and ``out/``, and writes a status.out
of its own when the tool left none.  Because it waits, the program cannot
end before the platform has seen it up, however fast the tool is.
"""
from __future__ import annotations

import sys
from typing import Any, Callable

from swampd.config import fill_placeholders
from swampd.runreports import (
    STARTING_STATUS,
    STATUS_METHOD,
    STOPPED_STATUS,
    STOPPING_STATUS,
    RunState,
    xml_safe,
)
from swampd.vruntask.payloads.assessment_inputs import stage_inputs
from swampd.vruntask.payloads.assessment_results import ResultsOutcome, collect_results
from swampd.vruntask.payloads.base import Milestone, Payload
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import MachineOutput, MachineView, PrepareError, Sandbox

#: The process platform's run.sh.
RUNSH_MODULE = "swampd.tools.runsh"


class AssessmentPayload(Payload):
    status_method = STATUS_METHOD
    up_event = "BEGINASSESSMENT"
    down_event = "ENDASSESSMENT"

    @staticmethod
    def failure(reason: str) -> dict[str, Any]:
        return {"state": RunState.FAILED.value, "status": xml_safe(reason)}

    def report(self, milestone: Milestone, detail: str = "") -> dict[str, Any]:
        if milestone is Milestone.STARTING:
            return {"state": RunState.STARTING.value,
                    "status": STARTING_STATUS.get(detail, "Starting assessment machine")}
        if milestone is Milestone.STOPPING:
            return {"state": RunState.STOPPING.value, "status": STOPPING_STATUS}
        return {"state": RunState.STOPPED.value, "status": STOPPED_STATUS}

    def run_timeout(self) -> float | None:
        return self.job.assessment.run_timeout

    def stage(self, sandbox: Sandbox, view: MachineView) -> None:
        stage_inputs(self.job, sandbox, view)

    def local_command(self, sandbox: Sandbox, port: int) -> list[str]:
        """``swampd.tools.runsh`` around the configured tool's command (placeholders filled)."""
        settings = self.job.assessment
        if not settings.tool_command:
            raise PrepareError(f"tool {settings.tool or settings.toolname or '?'} has no command "
                               "for the process platform")
        values = {"python": sys.executable, "in_dir": str(sandbox.in_dir), "out_dir": str(sandbox.out_dir),
                  "sandbox": str(sandbox.root)}
        try:
            tool = [fill_placeholders(part, values) for part in settings.tool_command]
        except KeyError as exc:
            raise PrepareError(f"the tool's command has an unknown placeholder {exc}") from None
        return [sys.executable, "-m", RUNSH_MODULE, "--in-dir", str(sandbox.in_dir),
                "--out-dir", str(sandbox.out_dir), "--events", str(sandbox.events_file),
                "--begin", self.up_event, "--wait", f"{self.job.ready_timeout:g}", "--", *tool]

    def probe_request(self, port: int) -> bytes | None:
        """An assessment is up as soon as its program runs: it serves nothing."""
        return None

    def collect(self, sandbox: Sandbox, output: MachineOutput, reporter: Reporter,
                give_up: Callable[[], bool]) -> ResultsOutcome:
        return collect_results(self.job, sandbox, output, reporter, give_up)
