"""Platforms by name (the BOG's ``swampd_platform``): how a machine is staged and run on this node.

``staging_for`` serves the pre- and post-commands of schedulers that run the
machine themselves; ``platform_for`` serves ``vruntask run``, which runs it
here.  A new platform is a ``Platform`` subclass and one line in each table
it belongs to.  The vm platform's module imports libvirt, so it is imported
only when a VM is run here.
"""
from __future__ import annotations

import os

from swampd.jobdir import LOCK_FD_ENV
from swampd.vruntask.job import Job, JobError
from swampd.vruntask.payloads.base import Payload
from swampd.vruntask.platforms.base import Platform, Staging
from swampd.vruntask.platforms.process import ProcessPlatform
from swampd.vruntask.platforms.vm_staging import VmStaging
from swampd.vruntask.sandbox import Sandbox

#: Platforms whose machine shares the sandbox directory (HTCondor's docker universe bind-mounts it).
SHARED_DIRECTORY = ("process", "docker")


def staging_for(job: Job) -> Staging:
    """Staging for a machine some scheduler runs (HTCondor's vm and docker universes, or ours)."""
    sandbox = Sandbox(job.job_dir)
    if job.platform == "vm":
        return VmStaging(job, sandbox)
    if job.platform in SHARED_DIRECTORY:
        return Staging(job.platform, sandbox)
    raise JobError(f"platform {job.platform!r} is not one this node knows", job.target, job.kind)


def platform_for(job: Job, payload: Payload, stop_grace: float) -> Platform:
    """The platform ``vruntask run`` runs the machine on; JobError for one it cannot run here."""
    sandbox = Sandbox(job.job_dir)
    if job.platform == "process":
        lock_fd = os.environ.get(LOCK_FD_ENV)
        return ProcessPlatform(job, sandbox, payload, stop_grace, inherit_fds=(int(lock_fd),) if lock_fd else ())
    if job.platform == "vm":
        from swampd.vruntask.platforms.vm import VmPlatform  # imports libvirt: only on hosts that run VMs

        return VmPlatform(job, sandbox, payload)
    raise JobError(f"platform {job.platform!r} is not run by vruntask run on this node", job.target, job.kind)

