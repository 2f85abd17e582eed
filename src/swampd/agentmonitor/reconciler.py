"""The reconciler: moves each viewer toward what was asked, one key at a time.

Work arrives as keys (project, viewer) on a de-duplicating queue: from the
API after each committed change, from a periodic resync that re-examines
every active key after one bulk scheduler query, and from retry timers.  A
worker that holds a key first performs the key's due outbox items (side
effects recorded by earlier transactions), then applies the pure rules of
``swampd.lifecycle`` to the last observation.  A failed side effect is
retried with exponential backoff; nothing is done twice because every
handler is idempotent (submit adopts by launch id).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from swampd.config import Config
from swampd.failpoints import failpoint
from swampd.launchpad.jobs import JobObservation, JobStatus, SchedulerError, SchedulerUnavailable
from swampd.launchpad.launchpad import LaunchPad
from swampd.lifecycle import Deadlines, Facts, JobView, Step, next_step
from swampd.states import ACTIVE, ENDED, ViewerState
from swampd.store import OutboxItem, Store, ViewerRecord
from swampd.agentmonitor.workqueue import WorkQueue

log = logging.getLogger(__name__)

Key = tuple[str, str]
#: Built-in handlers that complete their item inside their own transaction.
SELF_COMPLETING = frozenset({"submit"})
#: Outbox kinds that act on the scheduler's jobs and so must run in order.
JOB_LANE = frozenset({"submit", "remove", "forget"})
MAX_BACKOFF = 60.0


class PreviousJobAlive(Exception):
    """A new launch waits for the previous launch's job to leave."""


@dataclass
class ObservedWorld:
    """The last bulk answer from the scheduler."""

    jobs: dict[str, JobObservation]
    answered: bool
    at: float


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts + 1``: exponential, capped, jittered."""
    base = min(MAX_BACKOFF, 0.5 * (2 ** min(attempts, 10)))
    return base * random.uniform(0.8, 1.2)


def job_view(record: ViewerRecord, world: ObservedWorld) -> tuple[JobView, str]:
    """Reduce the scheduler's answer about ``record``'s job to a JobView."""
    if not record.job_ref:
        return JobView.NOT_SUBMITTED, ""
    if not world.answered:
        return JobView.UNKNOWN, ""
    if world.at < record.submitted_at:
        return JobView.PENDING, "submitted after the last observation"
    obs = world.jobs.get(record.launch_id)
    if obs is None:
        return JobView.MISSING, "the scheduler has no record of the job"
    view = {
        JobStatus.IDLE: JobView.PENDING,
        JobStatus.RUNNING: JobView.RUNNING,
        JobStatus.HELD: JobView.HELD,
        JobStatus.COMPLETED: JobView.FINISHED,
        JobStatus.REMOVED: JobView.FINISHED,
    }[obs.status]
    if obs.status is JobStatus.COMPLETED and obs.exit_code != 0:
        view = JobView.FAILED
    detail = obs.reason
    if obs.hold_code is not None:
        detail = f"{obs.reason} (HoldReasonCode {obs.hold_code})"
    return view, detail


class Reconciler:
    def __init__(self, store: Store, launchpad: LaunchPad, config: Config,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.launchpad = launchpad
        self.scheduler = launchpad.scheduler
        self.config = config
        self.clock = clock
        self.queue: WorkQueue[Key] = WorkQueue()
        self.world = ObservedWorld({}, answered=False, at=0.0)
        self.last_answer_at = 0.0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._handlers: dict[str, Callable[[OutboxItem], None]] = {
            "submit": self._do_submit,
            "remove": self._do_remove,
            "forget": self._do_forget,
        }

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> None:
        self.resync()
        for n in range(self.config.agentmonitor.workers):
            self._spawn(self._work_loop, f"reconcile-{n}")
        self._spawn(self._resync_loop, "resync")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.queue.close()
        for thread in self._threads:
            thread.join(timeout)

    def register_handler(self, kind: str, handler: Callable[[OutboxItem], None]) -> None:
        """Perform outbox items of ``kind`` with ``handler``.

        A handler must be idempotent (it may run again after a crash) and
        raise to be retried with backoff; it returns normally once the effect
        is done, and the item is then marked complete.
        """
        self._handlers[kind] = handler

    def enqueue(self, key: Key) -> None:
        self.queue.add(key)

    # -- resync ------------------------------------------------------------
    def _resync_loop(self) -> None:
        while not self._stop.wait(self.config.agentmonitor.resync_interval):
            try:
                self.resync()
            except Exception:  # keep resyncing whatever one pass hit
                log.exception("resync failed")

    def resync(self) -> None:
        """One bulk scheduler query, then every key with work is re-examined."""
        now = self.clock()
        try:
            jobs = self.scheduler.observe()
        except SchedulerUnavailable as exc:
            if self.world.answered:
                log.warning("scheduler did not answer; observations are stale: %s", exc)
            self.world = ObservedWorld(self.world.jobs, answered=False, at=now)
        else:
            self.world = ObservedWorld(jobs, answered=True, at=now)
            self.last_answer_at = now
        keys = set(self.store.list_keys_in_states(ACTIVE))
        keys.update((item.projectid, item.viewer) for item in self.store.pending_outbox())
        keys.update(self._ended_keys_with_live_jobs())
        for key in keys:
            self.queue.add(key)

    def _ended_keys_with_live_jobs(self) -> set[Key]:
        if not self.world.answered:
            return set()
        live = {lid for lid, obs in self.world.jobs.items() if not obs.finished}
        return set(self.store.keys_of_launches(live, ENDED)) if live else set()

    # -- workers -----------------------------------------------------------
    def _work_loop(self) -> None:
        while True:
            key = self.queue.get()
            if key is None:
                return
            try:
                self.process(key)
            except Exception:
                log.exception("reconciling %s/%s failed; will retry", *key)
                self.queue.add_after(key, 5.0)
            finally:
                self.queue.done(key)

    def process(self, key: Key) -> None:
        """Do the key's due side effects and lifecycle steps until nothing is left to do now."""
        for _ in range(8):
            progressed = self._drain_outbox(key)
            stepped = self._step(key)
            if not (progressed or stepped):
                return

    def _drain_outbox(self, key: Key) -> bool:
        """Perform the key's due outbox items; True when at least one was done.

        Items run in order within a lane: the job lane (submit, remove,
        forget, whose order matters: an old job goes before a new one starts)
        and one lane per other kind (ads, uploads, database calls).  A failed
        item holds back the rest of its lane only, so a collector or database
        that is down never delays a launch.
        """
        blocked: set[str] = set()
        progressed = False
        now = self.clock()
        for item in self.store.outbox_of(*key):
            lane = "job" if item.kind in JOB_LANE else item.kind
            if lane in blocked:
                continue
            if item.next_at > now:  # waiting out a backoff: what follows in its lane waits too
                blocked.add(lane)
                continue
            handler = self._handlers.get(item.kind)
            if handler is None:
                log.error("outbox item %d has unknown kind %r; dropping it", item.id, item.kind)
                self._complete(item)
                continue
            try:
                handler(item)
                if item.kind not in SELF_COMPLETING:
                    self._complete(item)
                progressed = True
            except Exception as exc:  # retried: the world may be down for a while
                delay = backoff(item.attempts)
                log.warning("%s for %s/%s failed (attempt %d), retrying in %.1fs: %s",
                            item.kind, key[0], key[1], item.attempts + 1, delay, exc)
                with self.store.transaction() as tx:
                    tx.retry_later(item.id, f"{type(exc).__name__}: {exc}", self.clock() + delay)
                self.queue.add_after(key, delay)
                blocked.add(lane)
        return progressed

    def _step(self, key: Key) -> bool:
        record = self.store.get_viewer(*key)
        if record is None:
            return False
        view, detail = job_view(record, self.world)
        viewer_cfg = self.config.viewers.get(record.viewer)
        if viewer_cfg is None:
            return False
        deadlines = Deadlines(viewer_cfg.ready_timeout, viewer_cfg.idle_timeout, viewer_cfg.max_lifetime,
                              stop_timeout=self.config.scheduler.stop_grace * 3 + 30)
        facts = Facts(record.viewer_state, record.launched_at, record.ready_at, record.last_request_at,
                      record.stop_requested_at, view, detail)
        step = next_step(facts, deadlines, self.clock(), remove_held=self.config.htcondor.on_hold != "leave")
        if step is None:
            return False
        return self._apply(record, step)

    def _apply(self, seen: ViewerRecord, step: Step) -> bool:
        """Apply ``step`` if the record has not moved meanwhile; True when anything changed."""
        with self.store.transaction() as tx:
            record = tx.get_viewer(seen.projectid, seen.viewer)
            if record is None or record.epoch != seen.epoch or record.state != seen.state:
                return True  # it moved under us: look again
            changed = False
            if step.remove_job and record.job_ref and not tx.has_pending(record, "remove"):
                tx.enqueue(record, "remove", {"launch_id": record.launch_id, "reason": step.status or "swampd"})
                changed = True
            if step.state is not None:
                record.state = int(step.state)
                record.status = step.status
                if step.state in (ViewerState.STOPPING, ViewerState.TERMINATING) and not record.stop_requested_at:
                    record.stop_requested_at = self.clock()
                tx.record_change(record, "reconciler", step.status)
                log.info("%s epoch %d -> %s: %s", record.execrunid, record.epoch, step.state.name, step.status)
                changed = True
        return changed

    # -- side effects --------------------------------------------------------
    def _do_submit(self, item: OutboxItem) -> None:
        record = self.store.get_viewer(item.projectid, item.viewer)
        if (record is None or record.epoch != item.epoch or record.desired != "running"
                or record.viewer_state is not ViewerState.LAUNCHING):
            self._complete(item)  # that launch is over or cancelled: nothing to submit
            return
        previous = str(item.payload.get("previous_launch_id", ""))
        if previous and self._job_may_be_alive(previous):
            # One viewer per key: the new job starts only once the old one is
            # gone (a scheduler's remove may return before the job has left).
            raise PreviousJobAlive(f"previous launch {previous} still has a job; waiting for it to end")
        viewer_cfg = self.config.viewers[record.viewer]
        failpoint("submit.before")
        try:
            job_ref = self.launchpad.submit(record, viewer_cfg)
        except SchedulerError as exc:
            self._fail_launch(record, item, f"Submit refused: {exc}")
            return
        failpoint("submit.after")
        with self.store.transaction() as tx:
            current = tx.get_viewer(item.projectid, item.viewer)
            if current is not None and current.epoch == item.epoch:
                current.job_ref = job_ref
                current.submitted_at = self.clock()
                if current.viewer_state is ViewerState.LAUNCHING:
                    current.status = "Waiting for the viewer machine"
                tx.record_change(current, "launchpad", f"submitted job {job_ref}")
            tx.complete(item.id)

    def _job_may_be_alive(self, launch_id: str) -> bool:
        """False only when the scheduler answered and that job is finished or unknown to it."""
        if not self.world.answered:
            return True
        observation = self.world.jobs.get(launch_id)
        return observation is not None and not observation.finished

    def _fail_launch(self, record: ViewerRecord, item: OutboxItem, reason: str) -> None:
        with self.store.transaction() as tx:
            current = tx.get_viewer(record.projectid, record.viewer)
            if current is not None and current.epoch == record.epoch and current.viewer_state is ViewerState.LAUNCHING:
                current.state = int(ViewerState.ERROR)
                current.status = reason
                tx.record_change(current, "launchpad", reason)
            tx.complete(item.id)
        log.error("%s epoch %d: %s", record.execrunid, record.epoch, reason)

    def _do_remove(self, item: OutboxItem) -> None:
        launch_id = str(item.payload.get("launch_id", ""))
        if launch_id:
            self.scheduler.remove(launch_id, str(item.payload.get("reason", "swampd")))
        self.resync_soon()

    def _do_forget(self, item: OutboxItem) -> None:
        launch_id = str(item.payload.get("launch_id", ""))
        if launch_id:
            self.scheduler.forget(launch_id)

    def _complete(self, item: OutboxItem) -> None:
        with self.store.transaction() as tx:
            tx.complete(item.id)

    def resync_soon(self) -> None:
        """Look at the scheduler again now rather than at the next interval."""
        try:
            self.resync()
        except Exception:
            log.exception("resync failed")

    def observation_of(self, record: ViewerRecord) -> dict[str, object]:
        """What the API shows about the job: its view, and whether that is stale."""
        view, detail = job_view(record, self.world)
        return {
            "job": view.value,
            "job_detail": detail,
            "stale": not self.world.answered,
            "last_seen": self.last_answer_at,
        }

