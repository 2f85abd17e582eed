"""The runner: one launch on this node, from BOG to exit status, on any platform, for any payload.

    stage the sandbox -> report STARTING -> start the machine -> wait until it
    is up -> wait until it exits, or the scheduler says stop (SIGTERM), or the
    daemon says this launch is superseded (a fenced report), or the payload's
    run deadline passes (a failure) -> stop it -> report its end unless it
    said so itself -> drain those reports -> collect its outputs -> record
    the exit status.

The reports are drained before collecting, so what the payload hands over
from the outputs (an assessment's results) arrives after every event of the
run, and never overtakes the machine's end.

Whatever fails on the way is reported once, as the run's failure with the
reason, in its place ahead of the events the machine writes as it is
stopped, so they cannot overtake it.  Signals, a fenced report, the end
report, collecting, draining and the exit status are handled here once for
every platform.  The exit status file is what lets the local scheduler tell
a clean end from a killed job.

``stage`` and ``collect`` are also the halves HTCondor's pre- and
post-commands run (``steps``), and ``follow`` is the monitor they start.
"""
from __future__ import annotations

import enum
import logging
import signal
import threading
from typing import Callable

from swampd.jobdir import write_exit_status
from swampd.vruntask.delivery import Fenced, give_up_after
from swampd.vruntask.events import read_address
from swampd.vruntask.job import Job, JobError
from swampd.vruntask.monitor import Monitor
from swampd.vruntask.payloads import PAYLOADS, payload_for
from swampd.vruntask.payloads.base import Collected, Milestone, Payload
from swampd.vruntask.platforms import platform_for
from swampd.vruntask.platforms.base import Platform, Staging, StartError
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.sandbox import PrepareError, Sandbox
from swampd.vruntask.timings import TIMINGS_FILE, Timings

log = logging.getLogger(__name__)

#: How long the last reports may take to deliver before we exit anyway (the
#: daemon then learns the end from the scheduler).
DRAIN_SECONDS = 120.0
#: A machine that failed gets at most this long to shut down, and none if it never wrote an address.
FAILED_GRACE = 10.0


class Exit(enum.IntEnum):
    OK = 0
    FAILED = 1
    BAD_JOB = 2
    FENCED = 3


def stage(staging: Staging, payload: Payload, laid_out: bool = False) -> None:
    """Lay out the sandbox, write the payload's inputs, build what the machine starts from
    (``laid_out``: the caller made the directories and makes the signal files itself).

    PrepareError with the reason if any of it fails; then nothing is left
    that a machine could be started from.
    """
    try:
        if not laid_out:
            staging.sandbox.lay_out()
        payload.stage(staging.sandbox, staging.view())
        staging.prepare()
    except PrepareError:
        staging.discard()
        raise
    except OSError as exc:
        staging.discard()
        raise PrepareError(f"cannot lay out the sandbox: {exc}") from None


def collect(staging: Staging, payload: Payload, reporter: Reporter, give_up: Callable[[], bool]) -> Collected:
    """Read back what the machine left and let the payload save it and hand it over."""
    with staging.collect() as output:
        return payload.collect(staging.sandbox, output, reporter, give_up)


def run(job: Job, stop_grace: float = 10.0) -> int:
    """``vruntask run``: the whole launch on this node; the exit status is also written for the scheduler."""
    payload = payload_for(job)
    platform = platform_for(job, payload, stop_grace)
    out_dir = platform.sandbox.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = Timings(out_dir / TIMINGS_FILE)
    reporter = Reporter.for_target(job.target, payload.status_method)
    monitor = Monitor(out_dir, reporter, poll=platform.monitor_poll, down_event=payload.down_event,
                      on_event=timings.on_event)
    stop = _stop_on_signals(monitor)
    status = Exit.OK
    with platform:
        monitor.start()
        try:
            problem = _bring_up(platform, payload, monitor, stop, timings)
            if stop.is_set():
                pass  # asked to stop: whatever went wrong on the way up is no longer news
            elif problem is not None:
                _fail(monitor, payload, problem)
                status = Exit.FAILED
            else:
                code, overdue = _wait_exit(platform, payload.run_timeout(), stop)
                if overdue:
                    _fail(monitor, payload, f"the run did not end within its deadline ({payload.run_timeout():g}s)")
                    status = Exit.FAILED
                elif code not in (None, 0):
                    log.warning("the machine exited with status %s", code)
        except Exception as exc:  # a bug or an error nobody foresaw still ends the launch with a reason
            log.exception("the run failed")
            _fail(monitor, payload, f"vruntask failed: {exc}")
            status = Exit.FAILED
            raise
        finally:
            _stop(platform, payload, monitor, failed=status != Exit.OK)
            timings.mark("stopped")
            if status == Exit.OK:
                monitor.report(payload.report(Milestone.STOPPED), unless_seen=payload.down_event)
            give_up = give_up_after(DRAIN_SECONDS)
            monitor.finish(DRAIN_SECONDS)
            result = collect(platform, payload, reporter, give_up)
            timings.mark("finished")
            if result.problem:
                log.warning("collect: %s", result.problem)
            if monitor.fenced.is_set():
                status = Exit.FENCED
            write_exit_status(job.job_dir, status)
    return status


def _bring_up(platform: Platform, payload: Payload, monitor: Monitor, stop: threading.Event,
              timings: Timings) -> str | None:
    """Stage, start, wait until up: None when up (or a stop came first), else the reason it is not."""
    try:
        stage(platform, payload)
        timings.mark("prepared")
        if stop.is_set():
            return None  # no machine is started only to be stopped
        monitor.report(payload.report(Milestone.STARTING, platform.name))
        platform.start()
        timings.mark("started")
        problem = platform.wait_up(stop, monitor)
    except (PrepareError, StartError) as exc:
        return str(exc)
    if problem is None and not stop.is_set():
        timings.mark("ready")
    return problem


def _wait_exit(platform: Platform, limit: float | None, stop: threading.Event) -> tuple[int | None, bool]:
    """The machine's exit status (None when stopped), and whether ``limit`` seconds passed first."""
    if limit is None:
        return platform.wait_exit(stop), False
    until = threading.Event()
    timer = threading.Timer(limit, until.set)
    timer.daemon = True
    timer.start()
    _when(stop, until.set)
    try:
        code = platform.wait_exit(until)
    finally:
        timer.cancel()
    return code, code is None and not stop.is_set()


def follow(job: Job) -> int:
    """``vruntask monitor``: report a machine's events until it is down or we are told to stop."""
    payload = payload_for(job)
    reporter = Reporter.for_target(job.target, payload.status_method)
    monitor = Monitor(Sandbox(job.job_dir).out_dir, reporter, down_event=payload.down_event)
    stop = _stop_on_signals(monitor)
    _when(monitor.down, stop.set)
    monitor.start()
    while not stop.wait(0.5):
        pass
    monitor.finish(DRAIN_SECONDS)
    return Exit.FENCED if monitor.fenced.is_set() else Exit.OK


def report_bad_job(exc: JobError) -> None:
    """End the launch of a job whose BOG did not validate with the reason, when it can be reported."""
    payload_type = PAYLOADS.get(exc.kind)
    if exc.target is None or payload_type is None:
        return
    reporter = Reporter.for_target(exc.target, payload_type.status_method)
    try:
        reporter.send(give_up_after(DRAIN_SECONDS), **payload_type.failure(str(exc)))
    except Fenced as fenced:
        log.error("the AgentMonitor refused our report: %s", fenced)


def _fail(monitor: Monitor, payload: Payload, problem: str) -> None:
    """The one failure path: the reason, reported ahead of every event the machine's stop writes."""
    log.error("%s", problem)
    monitor.report(payload.failure(problem))


def _stop(platform: Platform, payload: Payload, monitor: Monitor, failed: bool) -> None:
    """Stop the machine: a full grace when it ran, little when it failed, none if it never wrote an address."""
    if platform.running() is not False:
        monitor.report(payload.report(Milestone.STOPPING))
    grace = platform.shutdown_grace
    if failed:
        grace = min(grace, FAILED_GRACE) if read_address(platform.sandbox.ip_file) else 0.0
    platform.stop(grace)


def _stop_on_signals(monitor: Monitor) -> threading.Event:
    """Set by SIGTERM (the scheduler's stop), SIGINT, or a fenced report (the launch is superseded)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    _when(monitor.fenced, stop.set)
    return stop


def _when(event: threading.Event, action: Callable[[], None]) -> None:
    threading.Thread(target=lambda: (event.wait(), action()), daemon=True).start()
