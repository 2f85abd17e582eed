"""``vruntask run``: one viewer launch on this node, from BOG to exit status.

prepare the sandbox -> start the monitor -> start the viewer -> wait until it
is up -> wait until it exits or the scheduler says stop (SIGTERM) -> stop it
-> deliver the last reports -> record the exit status.  The exit status file
is what lets the local scheduler tell a clean end from a killed job.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from swampd.bog import read_bog
from swampd.jobdir import LOCK_FD_ENV, write_exit_status
from swampd.states import ViewerState
from swampd.vruntask.finish import finish
from swampd.vruntask.monitor import Monitor
from swampd.vruntask.platforms.process import ProcessPlatform
from swampd.vruntask.prepare import PrepareError, prepare
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import Sandbox

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_VIEWER_FAILED = 1
EXIT_BAD_JOB = 2
EXIT_FENCED = 3
#: How long the last reports may take to deliver before we exit anyway (the
#: daemon then learns the end from the scheduler).
DRAIN_SECONDS = 120.0


class JobError(Exception):
    """The job's files are unusable."""


def load_job(job_dir: Path, bog_name: str, token_name: str) -> tuple[dict[str, str], str]:
    bog = read_bog(job_dir / bog_name)
    try:
        token = (job_dir / token_name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise JobError(f"cannot read the report token: {exc.strerror}") from None
    for key in ("execrunid", "swampd_epoch", "swampd_agentmonitor_url", "swampd_platform"):
        if not bog.get(key):
            raise JobError(f"BOG has no {key}")
    if not token:
        raise JobError("the report token file is empty")
    return bog, token


def monitor_only(job_dir: Path, bog_name: str, token_name: str) -> int:
    """Follow a guest's events until VIEWERDOWN or SIGTERM (the HTCondor pre-command's monitor)."""
    bog, token = load_job(job_dir, bog_name, token_name)
    reporter = Reporter.for_job(bog, token)
    monitor = Monitor(job_dir / "out", reporter)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    monitor.start()
    while not (stop.is_set() or monitor.viewer_down.is_set() or monitor.fenced.is_set()):
        stop.wait(0.5)
    monitor.finish(DRAIN_SECONDS)
    return EXIT_FENCED if monitor.fenced.is_set() else EXIT_OK


def run(job_dir: Path, bog_name: str, token_name: str, stop_grace: float = 10.0) -> int:
    bog, token = load_job(job_dir, bog_name, token_name)
    if bog["swampd_platform"] == "vm":
        from swampd.vruntask.platforms.vm import run_vm  # imports libvirt: only on hosts that run VMs

        return run_vm(job_dir, bog, token, token_name)
    if bog["swampd_platform"] != "process":
        raise JobError(f"platform {bog['swampd_platform']!r} is not run by vruntask run on this node")
    prepare_problem: str | None = None
    try:
        sandbox = prepare(job_dir, bog)
    except PrepareError as exc:
        sandbox, prepare_problem = Sandbox(job_dir, bog), str(exc)
    reporter = Reporter.for_job(bog, token)
    monitor = Monitor(sandbox.out_dir, reporter)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # Stop as soon as the daemon says this launch is superseded.
    threading.Thread(target=lambda: (monitor.fenced.wait(), stop.set()), daemon=True).start()
    lock_fd = os.environ.get(LOCK_FD_ENV)
    platform = ProcessPlatform(sandbox, inherit_fds=(int(lock_fd),) if lock_fd else ())
    monitor.start()
    status = EXIT_OK
    try:
        problem: str | None = prepare_problem
        if not problem:
            try:
                platform.start()
            except OSError as exc:
                problem = f"cannot start the viewer command: {exc.strerror or exc}"
            else:
                problem = platform.wait_ready(stop)
        if problem and not stop.is_set():
            log.error("%s", problem)
            monitor.report_state(int(ViewerState.ERROR), problem)
            monitor.flush(DRAIN_SECONDS)
            status = EXIT_VIEWER_FAILED
        elif not problem:
            code = platform.wait_exit(stop)
            if code not in (None, 0):
                log.warning("viewer exited with status %s", code)
    finally:
        platform.stop(stop_grace)
        give_up_at = time.monotonic() + DRAIN_SECONDS
        finish(job_dir, bog, token, lambda: time.monotonic() > give_up_at)
        monitor.finish(DRAIN_SECONDS)
        if monitor.fenced.is_set():
            status = EXIT_FENCED
        write_exit_status(job_dir, status)
    return status
