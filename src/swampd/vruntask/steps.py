"""``vruntask prepare`` and ``vruntask finish`` as separate steps (HTCondor's pre- and post-commands).

``vruntask run`` does the same work in one process; these entry points
exist for schedulers that run the machine themselves (HTCondor's vm and
docker universes) and call us before and after.  They are the runner's own
``stage`` and ``collect``, with the same reports.
"""
from __future__ import annotations

import logging

from swampd.vruntask.delivery import Fenced, give_up_after
from swampd.vruntask.job import Job
from swampd.vruntask.payloads import payload_for
from swampd.vruntask.payloads.base import Milestone
from swampd.vruntask.platforms import staging_for
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.runner import Exit, collect, stage
from swampd.vruntask.sandbox import PrepareError

log = logging.getLogger(__name__)
#: How long a step keeps retrying a report before it exits anyway.
REPORT_SECONDS = 120.0


def prepare_step(job: Job) -> int:
    staging, payload = staging_for(job), payload_for(job)
    reporter = Reporter.for_target(job.target, payload.status_method)
    try:
        try:
            stage(staging, payload)
        except PrepareError as exc:
            log.error("%s", exc)  # the disks are gone: the vm universe cannot start a half-prepared VM
            reporter.send(give_up_after(REPORT_SECONDS), **payload.failure(str(exc)))
            return Exit.FAILED
        reporter.send(give_up_after(REPORT_SECONDS), **payload.report(Milestone.STARTING, staging.name))
    except Fenced as exc:
        log.error("the AgentMonitor refused our report: %s", exc)
        return Exit.FENCED
    return Exit.OK


def finish_step(job: Job) -> int:
    staging, payload = staging_for(job), payload_for(job)
    reporter = Reporter.for_target(job.target, payload.status_method)
    result = collect(staging, payload, reporter, give_up_after(REPORT_SECONDS))
    if result.summary:
        print(result.summary)
    return Exit.OK if result.ok else Exit.FAILED
