"""An assessment's output, collected: ``out/`` read back, the results folder built, the daemon told.

Collecting says ``collecting`` (SWAMP's "Extracting assessment results"),
reads the machine's ``out/`` back (a VM's output disk is copied into the
sandbox's ``out/``; a process wrote there itself), builds the launch's
results folder (``results_folder``), and hands its description to
``agentMonitor.runResults`` (``swampd.runreports``).  An output disk that
cannot be read is a problem, not the end: the folder is still built from
what the host side of ``out/`` holds, and status.out is then missing, which
SWAMP's rules make a failure.

Safe to run twice (HTCondor may rerun a post-command, a rerun delivers what
the first could not): ``<job_dir>/results.json`` records the folder built
and whether it was delivered, so a rerun never builds a second one and
delivers the same description.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from swampd.results.archives import Limits
from swampd.runreports import COLLECTING_STATUS, RESULTS_METHOD, RunResults, RunState
from swampd.vruntask.delivery import Fenced
from swampd.vruntask.job import Job
from swampd.vruntask.payloads.results_folder import FolderInputs, build_results_folder
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import CollectError, MachineOutput, Sandbox

log = logging.getLogger(__name__)

RECORD_FILE = "results.json"
#: Scratch space for unpacking the parsed results, in the job dir, removed afterwards.
SCRATCH_DIR = "collect.tmp"
#: Files of the host's out/ that are the node's own, not the machine's output.
NODE_FILES = frozenset({"timings.json"})


@dataclass
class ResultsOutcome:
    """What ``collect`` did: the folder built (and its description), whether the daemon has it."""

    results: RunResults | None = None
    delivered: bool = False
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.results is not None and self.delivered

    @property
    def summary(self) -> str:
        if self.results is None:
            return ""
        status = self.results.status_out
        return (f"results {self.results.results_dir}: {self.results.outcome}, "
                f"weaknesses {status.weaknesses if status.weaknesses >= 0 else 'unknown'}"
                f"{'' if self.delivered else ' (not delivered)'}")


def results_dir(job: Job) -> Path:
    """``<resultsfolder>/<execrunid>/e<epoch>``: one folder per launch."""
    return job.assessment.results_folder / job.execrunid / f"e{job.epoch}"


def collect_results(job: Job, sandbox: Sandbox, output: MachineOutput, reporter: Reporter,
                    give_up: Callable[[], bool]) -> ResultsOutcome:
    """Build this launch's results folder once and hand it to the AgentMonitor."""
    record_path = sandbox.root / RECORD_FILE
    done, delivered = _load_record(record_path, job.epoch)
    if done is not None and delivered:
        return ResultsOutcome(done, delivered=True, problem=done.problem)
    if done is None:
        try:
            reporter.send(give_up, state=RunState.COLLECTING.value, status=COLLECTING_STATUS)
        except Fenced as exc:
            log.error("the AgentMonitor refused our report (%s); no results are collected for this launch", exc)
            return ResultsOutcome(problem=f"fenced: {exc}")
        try:
            done = _build(job, sandbox, output)
        except OSError as exc:
            log.exception("the results folder could not be built")
            return ResultsOutcome(problem=f"the results folder could not be built: {exc}")
        _save_record(record_path, job.epoch, done, delivered=False)
        log.info("results folder %s: %s, weaknesses %s", done.results_dir, done.outcome,
                 done.status_out.weaknesses)
    outcome = ResultsOutcome(done, problem=done.problem)
    try:
        outcome.delivered = reporter.call(RESULTS_METHOD, done.to_struct(), "results report", give_up)
    except Fenced as exc:
        log.error("the AgentMonitor refused the results (%s); they stay in %s", exc, done.results_dir)
        outcome.problem = f"fenced: {exc}"
        return outcome
    if outcome.delivered:
        _save_record(record_path, job.epoch, done, delivered=True)
    return outcome


def _build(job: Job, sandbox: Sandbox, output: MachineOutput) -> RunResults:
    problems = []
    try:
        out_dir = output.tree()
    except CollectError as exc:
        log.error("%s; the results hold what the host side of out/ has", exc)
        problems.append(str(exc))
        out_dir = sandbox.out_dir
    settings = job.assessment
    dest = results_dir(job)
    dest.parent.mkdir(parents=True, exist_ok=True)
    results = build_results_folder(FolderInputs(
        in_dir=sandbox.in_dir, out_dir=out_dir, package_archive=settings.packagepath.name, dest=dest,
        scratch=sandbox.root / SCRATCH_DIR,
        limits=Limits(settings.max_unpacked_bytes, settings.max_archive_members),
        versions=_versions(job), exclude=NODE_FILES))
    if problems:
        results = replace(results, problem="; ".join(p for p in problems + [results.problem] if p))
    return results


def _versions(job: Job) -> str:
    """versions.txt (``component:version`` lines) for out/, as SWAMP added its own."""
    try:
        ours = metadata.version("swampd")
    except metadata.PackageNotFoundError:
        ours = "unknown"
    lines = [f"swampd:{ours}"]
    settings = job.assessment
    if settings.toolname:
        lines.append(f"{settings.toolname}:{settings.tool_version or 'unknown'}")
    return "".join(line + "\n" for line in lines)


def _load_record(path: Path, epoch: int) -> tuple[RunResults | None, bool]:
    """The folder an earlier collect of this launch built, if it is still there, and whether it was delivered."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("epoch") != epoch:
            return None, False
        results = RunResults.from_struct(data["results"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None, False
    if not all(Path(f.path).is_file() for f in results.files.values()):
        return None, False
    return results, data.get("delivered") is True


def _save_record(path: Path, epoch: int, results: RunResults, delivered: bool) -> None:
    body: dict[str, Any] = {"epoch": epoch, "results": results.to_struct(), "delivered": delivered}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(body), encoding="utf-8")
    os.replace(tmp, path)
