"""LaunchPad: turns a claimed launch into a scheduler job.

A per-kind job builder makes the launch's BOG and its complete job
description; LaunchPad writes the BOG and the report token (0600) into the
job directory and hands the description to the scheduler.  Submitting is
idempotent by launch id: the scheduler adopts a job that already exists, so
LaunchPad may be asked to submit the same launch again after a crash.
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from swampd.bog import format_bog
from swampd.config import Config
from swampd.launchpad.jobs import JobDescription, Scheduler
from swampd.launchpad.assessment_job import AssessmentJobError, assessment_job, build_assessment_bog
from swampd.launchpad.viewer_job import build_viewer_bog, viewer_job
from swampd.store.records import AssessmentRecord, RunRecord, ViewerRecord


class LaunchRefused(Exception):
    """The launch cannot become a job (its kind or viewer is not configured); not worth retrying."""


class LaunchPad:
    """Prepares job directories and hands jobs to the scheduler."""

    def __init__(self, scheduler: Scheduler, jobs_root: Path, agentmonitor_url: str,
                 agentmonitor_ca: str = "") -> None:
        """``agentmonitor_ca``: the CA bundle execute nodes verify an https daemon with."""
        self.scheduler = scheduler
        self.jobs_root = Path(jobs_root)
        self.agentmonitor_url = agentmonitor_url
        self.agentmonitor_ca = agentmonitor_ca

    def job_dir(self, launch_id: str) -> Path:
        return self.jobs_root / launch_id

    def describe(self, record: RunRecord, config: Config) -> tuple[JobDescription, dict[str, str]]:
        """The job and the BOG of the record's current launch, by its kind's builder."""
        if isinstance(record, ViewerRecord):
            viewer = config.viewers.get(record.viewer)
            if viewer is None:
                raise LaunchRefused(f"viewer {record.viewer!r} is not configured")
            # Single host: saved databases live beside the state unless configured.
            bog = build_viewer_bog(record, viewer, self.agentmonitor_url, self.agentmonitor_ca,
                                   viewer_store=str(self.jobs_root.parent / "SCAProjects"))
            return viewer_job(record, viewer, self.jobs_root), bog
        if isinstance(record, AssessmentRecord):
            try:
                bog = build_assessment_bog(record, config, self.agentmonitor_url, self.agentmonitor_ca)
                return assessment_job(record, config, self.jobs_root), bog
            except AssessmentJobError as exc:
                raise LaunchRefused(str(exc)) from None
        raise LaunchRefused(f"no job builder for run kind {record.kind!r}")

    def submit(self, record: RunRecord, config: Config) -> str:
        """Submit the job with its BOG and token (the scheduler writes them, 0600); adopts an existing job."""
        job, bog = self.describe(record, config)
        inputs = {job.bog_file: format_bog(bog), job.token_file: record.token + "\n"}
        return self.scheduler.submit(replace(job, inputs=inputs, new_dir=_make_job_dir(job.job_dir)))


def _make_job_dir(job_dir: Path) -> bool:
    """Make the job directory (0700); True when this call made it, False when it was there already
    (a submit tried again after a crash)."""
    try:
        os.mkdir(job_dir, 0o700)
    except FileExistsError:
        if not job_dir.is_dir():
            raise
        return False
    except FileNotFoundError:
        os.makedirs(job_dir.parent, exist_ok=True)
        return _make_job_dir(job_dir)
    return True
