"""``vruntask prepare`` and ``vruntask finish`` as separate steps (HTCondor's pre- and post-commands).

``vruntask run`` does the same work in one process; these entry points
exist for schedulers that run the viewer machine themselves (HTCondor's VM
and docker universes) and call us before and after.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

from swampd.states import ViewerState
from swampd.vruntask.finish import finish
from swampd.vruntask.prepare import PrepareError, prepare, remove_disks
from swampd.vruntask.reporter import Fenced, Reporter
from swampd.vruntask.run import EXIT_FENCED, EXIT_OK, EXIT_VIEWER_FAILED, load_job

log = logging.getLogger(__name__)
#: How long a step keeps retrying a report before it exits anyway.
REPORT_SECONDS = 120.0


def _report(reporter: Reporter, state: ViewerState, status: str) -> bool:
    give_up_at = time.monotonic() + REPORT_SECONDS
    return reporter.send(lambda: time.monotonic() > give_up_at, state=int(state), status=status)


def prepare_step(job_dir: Path, bog_name: str, token_name: str) -> int:
    bog, token = load_job(job_dir, bog_name, token_name)
    reporter = Reporter.for_job(bog, token)
    try:
        try:
            prepare(job_dir, bog)
        except PrepareError as exc:
            log.error("%s", exc)
            remove_disks(job_dir)  # as SWAMP: no disks, so the VM universe cannot start a half-prepared VM
            _report(reporter, ViewerState.ERROR, str(exc))
            return EXIT_VIEWER_FAILED
        what = "VM" if bog.get("swampd_platform") == "vm" else "DC" if bog.get("swampd_platform") == "docker" else "viewer"
        _report(reporter, ViewerState.LAUNCHING, f"Starting {what}")
    except Fenced as exc:
        log.error("the AgentMonitor refused our report: %s", exc)
        return EXIT_FENCED
    return EXIT_OK


def finish_step(job_dir: Path, bog_name: str, token_name: str) -> int:
    bog, token = load_job(job_dir, bog_name, token_name)
    give_up_at = time.monotonic() + REPORT_SECONDS
    result = finish(job_dir, bog, token, lambda: time.monotonic() > give_up_at)
    if result.path and result.delivered:
        print(f"saved {result.path} sha512={result.checksum}")
        return EXIT_OK
    if result.problem == "no snapshot":
        return EXIT_OK
    return EXIT_VIEWER_FAILED
