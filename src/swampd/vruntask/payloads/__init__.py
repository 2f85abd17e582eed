"""Payloads by kind of run: what runs inside the machine.

One entry per kind this node runs (``job.KIND_PREFIXES`` says which run ids
are which kind), on the same platforms and the same runner.
"""
from __future__ import annotations

from swampd.vruntask.job import Job
from swampd.vruntask.payloads.assessment import AssessmentPayload
from swampd.vruntask.payloads.base import Payload
from swampd.vruntask.payloads.viewer import ViewerPayload

PAYLOADS: dict[str, type[Payload]] = {"vrun": ViewerPayload, "arun": AssessmentPayload, "mrun": AssessmentPayload}


def payload_for(job: Job) -> Payload:
    """The payload of ``job``'s kind (the job's kind was checked when its BOG was read)."""
    return PAYLOADS[job.kind](job)
