"""``swampd image check``: a candidate image through the path a real launch takes, on this host.

Why not a separate test harness: an image that passes something else can
still fail in production.  So the check makes what LaunchPad makes for a
launch (the viewer BOG from ``[viewers.NAME]`` with the image swapped in,
the report token, the job directory), runs the same ``vruntask run`` the
local scheduler runs, and plays the AgentMonitor's part with a local
receiver (``receiver``): prepare (sandbox, disks) -> start -> events ->
the address -> READY, then the scheduler's stop (SIGTERM) -> the machine's
shutdown -> the saved viewer database, checked against its checksum.
Each step is printed with its time as it happens; the check ends in PASS,
or FAIL with the step and the reason (a report of ERROR, vruntask's own
last error, or a deadline that passed, named with its length).
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, TextIO

from swampd.bog import format_bog, write_private
from swampd.config import ViewerConfig
from swampd.jobdir import LOG_FILE, TOKEN_FILE, bog_file_name, read_exit_status
from swampd.joblog import last_error_line
from swampd.launchpad.viewer_job import build_viewer_bog
from swampd.store.records import ViewerRecord
from swampd.imagecheck.receiver import Receiver, Received

#: The steps, in order, and what ends each (for people).
STEPS = ("prepare", "start", "address", "ready", "stop", "snapshot")
#: Seconds vruntask gets after the machine is down to save, hand over and exit.
FINISH_GRACE = 120.0
ERROR_STATE, SHUTDOWN_STATE = -5, -3


class CheckFailed(Exception):
    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"{step}: {reason}")
        self.step, self.reason = step, reason


@dataclass(frozen=True)
class Outcome:
    passed: bool
    step: str = ""
    reason: str = ""
    ready_after: float = 0.0
    stopped_after: float = 0.0
    snapshot: str = ""


def candidate(viewer: ViewerConfig, platform: str, image: str, timeout: float | None) -> ViewerConfig:
    """The configured viewer with the candidate image in place of its own."""
    changes: dict[str, object] = {"platform": platform, "universe": ""}
    if platform == "process":
        changes["command"] = (image, "{port}")  # a program that serves HTTP on the port it is given
    else:
        changes["image"] = image
    if timeout is not None:
        changes["ready_timeout"] = timeout
    return replace(viewer, **changes)


class ImageCheck:
    def __init__(self, viewer: ViewerConfig, out: TextIO = sys.stdout, work_dir: Path | None = None,
                 keep: bool = False) -> None:
        self.viewer = viewer
        self.out = out
        self.keep = keep
        self.work = Path(tempfile.mkdtemp(prefix="swampd-imagecheck-", dir=work_dir))
        self.t0 = time.monotonic()
        self.done: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None

    # -- output ------------------------------------------------------------------------------
    def say(self, step: str, text: str, at: float | None = None) -> None:
        at = time.monotonic() - self.t0 if at is None else at
        self.out.write(f"{at:8.2f}s  {step:<9} {text}\n")
        self.out.flush()

    def step_done(self, step: str, text: str, at: float | None = None) -> None:
        if step not in self.done:
            self.done.append(step)
            self.say(step, f"ok  {text}", at)

    @property
    def current(self) -> str:
        return next((s for s in STEPS if s not in self.done), "snapshot")

    # -- the run -------------------------------------------------------------------------------
    def run(self) -> Outcome:
        viewer = self.viewer
        project = f"imagecheck-{os.getpid()}"
        record = ViewerRecord(projectid=project, viewer=viewer.name, epoch=1, launch_id=uuid.uuid4().hex,
                              token=secrets.token_urlsafe(32), apikey=str(uuid.uuid4()),
                              url_uuid=f"proxy-{uuid.uuid4()}", viewer_uuid=f"imagecheck-{uuid.uuid4().hex[:12]}")
        image = viewer.image if viewer.platform != "process" else viewer.command[0]
        self.out.write(f"checking {viewer.platform} image {image} as viewer {viewer.name} "
                       f"(ready deadline {viewer.ready_timeout:g}s), work dir {self.work}\n")
        outcome = Outcome(False, "prepare", "not started")
        with Receiver(record.execrunid, record.epoch, record.token, self.t0) as receiver:
            try:
                outcome = self._run(record, receiver)
            except CheckFailed as failed:
                outcome = Outcome(False, failed.step, failed.reason)
            except KeyboardInterrupt:
                outcome = Outcome(False, self.current, "interrupted")
            finally:
                self._end_vruntask()
        if outcome.passed:
            self.out.write(f"PASS: {image} ({viewer.platform}) ready after {outcome.ready_after:.1f}s, "
                           f"stopped after {outcome.stopped_after:.1f}s; {outcome.snapshot}\n")
        else:
            self.out.write(f"FAIL: step {outcome.step}: {outcome.reason}\n")
        if outcome.passed and not self.keep:
            shutil.rmtree(self.work, ignore_errors=True)
        else:
            self.out.write(f"the sandbox is kept in {self.work} (vruntask's log: {self.job_dir / LOG_FILE})\n")
        self.out.flush()
        return outcome

    @property
    def job_dir(self) -> Path:
        return self.work / "job"

    def _run(self, record: ViewerRecord, receiver: Receiver) -> Outcome:
        viewer = self.viewer
        job_dir = self.job_dir
        job_dir.mkdir(mode=0o700)
        bog_name = bog_file_name(record.execrunid)
        bog = build_viewer_bog(record, viewer, receiver.url, viewer_store=str(self.work / "SCAProjects"))
        write_private(job_dir / bog_name, format_bog(bog))
        write_private(job_dir / TOKEN_FILE, record.token + "\n")
        argv = [sys.executable, "-m", "swampd.cli.vruntask_main", "run", "--bog", bog_name, "--token-file",
                TOKEN_FILE]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SWAMPD_")}
        with open(job_dir / LOG_FILE, "ab") as log:
            self.proc = subprocess.Popen(argv, cwd=job_dir, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True, env=env)
        self.say("prepare", f"vruntask run started (pid {self.proc.pid}): sandbox, inputs"
                 + (", disks" if viewer.platform == "vm" else ""))
        ready_by = self.t0 + viewer.ready_timeout
        ready_at = self._follow(receiver, until=lambda r: r.fields.get("event") == "VIEWERUP", deadline=ready_by,
                                deadline_text=f"the ready deadline ({viewer.ready_timeout:g}s)")
        self.step_done("ready", "the viewer is up", ready_at)
        stop_started = time.monotonic()
        self.say("stop", "SIGTERM to vruntask, as the scheduler stops a job")
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        stop_limit = (viewer.shutdown_timeout if viewer.platform == "vm" else 10.0) + 30.0
        down_at = self._follow(receiver, until=lambda r: r.fields.get("event") == "VIEWERDOWN"
                               or r.fields.get("state") == SHUTDOWN_STATE,
                               deadline=stop_started + stop_limit, deadline_text=f"the stop deadline ({stop_limit:g}s)")
        self.step_done("stop", "the machine is down", down_at)
        snapshot = self._snapshot(receiver, stop_started + stop_limit + FINISH_GRACE)
        return Outcome(True, ready_after=ready_at, stopped_after=down_at - (stop_started - self.t0), snapshot=snapshot)

    def _follow(self, receiver: Receiver, until: Callable[[Received], bool], deadline: float,
                deadline_text: str) -> float:
        """Print reports as they come until one satisfies ``until``; its time.  FAIL on an ERROR report,
        on vruntask ending first, or at the deadline."""
        import queue

        while True:
            try:
                item = receiver.received.get(timeout=0.2)
            except queue.Empty:
                self._check_alive(deadline, deadline_text)
                continue
            self._show(item)
            if until(item):
                return item.at

    def _show(self, item: Received) -> None:
        fields = item.fields
        if item.method == "snapshot":
            return
        if fields.get("state") == ERROR_STATE:
            raise CheckFailed(self.current, str(fields.get("status") or "the run reported ERROR"))
        event = fields.get("event", "")
        if event == "RUNSHSTART":
            self.step_done("start", "the machine runs its run script (RUNSHSTART)", item.at)
        elif event == "WROTEIPADDR":
            self.step_done("start", "the machine is running", item.at)
            self.step_done("address", f"{fields.get('vmip') or 'no address'} (WROTEIPADDR)", item.at)
            if not fields.get("vmip"):
                raise CheckFailed("address", "the machine wrote WROTEIPADDR without a valid address")
        elif event in ("VIEWERUP", "VIEWERDOWN"):
            pass  # the step it ends is printed as done
        elif event:
            self.say(self.current, f"event {event}", item.at)
        else:
            if "prepare" not in self.done and fields.get("state") == 1:
                self.step_done("prepare", f"staged ({fields.get('status', '')})", item.at)
            else:
                self.say(self.current, f"state {fields.get('state')}: {fields.get('status', '')}", item.at)

    def _check_alive(self, deadline: float, deadline_text: str) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is not None:
            last = last_error_line(self.job_dir / LOG_FILE)
            written = read_exit_status(self.job_dir)
            raise CheckFailed(self.current, f"vruntask exited with status {written if written is not None else code}"
                              + (f": {last}" if last else ""))
        if time.monotonic() > deadline:
            what = {"prepare": "the machine was not started", "start": "the machine never reported RUNSHSTART",
                    "address": "the machine wrote no address", "ready": "the viewer was not up",
                    "stop": "the machine did not shut down"}.get(self.current, "nothing happened")
            raise CheckFailed(self.current, f"{what} within {deadline_text}")

    def _snapshot(self, receiver: Receiver, deadline: float) -> str:
        """The saved viewer database: wait for it until vruntask exits (it hands it over before)."""
        import queue

        assert self.proc is not None
        while True:
            try:
                item = receiver.received.get(timeout=0.2)
            except queue.Empty:
                code = self.proc.poll()
                if code is not None:
                    return self._no_snapshot(code)
                if time.monotonic() > deadline:
                    raise CheckFailed("snapshot", f"vruntask did not finish within {FINISH_GRACE:g}s of the stop")
                continue
            if item.method != "snapshot":
                self._show_late(item)
                continue
            problem = item.fields.get("problem")
            if problem:
                raise CheckFailed("snapshot", str(problem))
            size = int(item.fields.get("size", 0))
            self.step_done("snapshot", f"{item.fields.get('path')} ({size} bytes, SHA-512 checked)", item.at)
            code = self.proc.wait(max(1.0, deadline - time.monotonic()))
            if code != 0:
                raise CheckFailed("snapshot", f"vruntask exited with status {code} after saving")
            return f"viewer database saved ({size} bytes)"

    def _show_late(self, item: Received) -> None:
        if item.fields.get("state") == ERROR_STATE:
            raise CheckFailed("snapshot", str(item.fields.get("status")))
        what = item.fields.get("event") or f"state {item.fields.get('state')}: {item.fields.get('status', '')}"
        self.say("snapshot", f"event {what}" if item.fields.get("event") else what, item.at)

    def _no_snapshot(self, code: int) -> str:
        if code != 0:
            last = last_error_line(self.job_dir / LOG_FILE)
            raise CheckFailed("snapshot", f"vruntask exited with status {code}" + (f": {last}" if last else ""))
        if self.viewer.platform == "process":
            self.step_done("snapshot", "none: a process viewer saves no database")
            return "no database (process platform)"
        raise CheckFailed("snapshot", "the image saved no viewer database when it was stopped "
                                      "(no codedx_viewerdb.tar.gz on its output disk)")

    def _end_vruntask(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        grace = (self.viewer.shutdown_timeout if self.viewer.platform == "vm" else 10.0) + 30.0
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
