"""The reconciler: moves each run toward what was asked, one run at a time.

Work arrives as run ids on a de-duplicating queue: from the API after each
committed change; from a periodic resync, which after one bulk scheduler
query looks at the runs whose job looks different from the last answer and
at runs with side effects due, and every ``SWEEP_EVERY`` resyncs at every
active run (the level-triggered backstop); from timers set at each run's
next deadline; from slow effects as they finish; and from retry timers.
So an idle facility costs one query per resync, not one pass per run.  A worker that holds a run first performs the run's due
outbox items (side effects recorded by earlier transactions), then applies
its kind's lifecycle rules to the last observation of its job.  A failed
side effect is retried with exponential backoff; nothing is done twice
because every handler is idempotent (submit adopts by launch id).

The reconciler never names a run kind: the lifecycle of the record's kind
decides the steps, the effects table (``swampd.effects``) decides lanes and
which effects run on slow workers, and LaunchPad's job builders decide
what a job is.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from typing import Callable

from swampd import metrics, runlog
from swampd.agentmonitor.effect_workers import EffectWorkers
from swampd.agentmonitor.workqueue import WorkQueue
from swampd.agentmonitor.world import ObservedWorld
from swampd.config import Config
from swampd.effects import Waiting, effect
from swampd.failpoints import failpoint
from swampd.launchpad.jobs import EarlierJobAlive, JobObservation, JobStatus, SchedulerError, SchedulerUnavailable
from swampd.launchpad.launchpad import LaunchPad, LaunchRefused
from swampd.lifecycle import Step, groups, lifecycle_of
from swampd.store import OutboxItem, RunRecord, Store

log = logging.getLogger(__name__)

#: Built-in handlers that complete their item inside their own transaction.
SELF_COMPLETING = frozenset({"submit"})
MAX_BACKOFF = 60.0
#: Characters of a failed submit's last error carried into the status of a run that ended unsubmitted.
LAST_ERROR_SHOWN = 200
#: Every this many resyncs, every active run is re-examined whatever changed.
SWEEP_EVERY = 12


def backoff(attempts: int) -> float:
    """Seconds before retry number ``attempts + 1``: exponential, capped, jittered."""
    base = min(MAX_BACKOFF, 0.5 * (2 ** min(attempts, 10)))
    return base * random.uniform(0.8, 1.2)


class Reconciler:
    def __init__(self, store: Store, launchpad: LaunchPad, config: Config,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.launchpad = launchpad
        self.scheduler = launchpad.scheduler
        self.config = config
        self.clock = clock
        self.queue: WorkQueue[int] = WorkQueue()
        self.world = ObservedWorld()
        self.effects = EffectWorkers(self._slow_finished)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._resyncs = 0
        #: Called from the resync loop while the reconciler is alive (systemd's WATCHDOG=1), and how
        #: often it must be called; see ``_alive``.
        self.on_alive: Callable[[], object] | None = None
        self.alive_interval: float | None = None
        self._worked_at = time.monotonic()
        self._resynced_at = time.monotonic()
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
        self.effects.close()
        for thread in self._threads:
            thread.join(timeout)

    def register_handler(self, name: str, handler: Callable[[OutboxItem], None]) -> None:
        """Perform outbox items of effect ``name`` with ``handler``.

        A handler must be idempotent (it may run again after a crash) and
        raise to be retried with backoff (``Waiting`` to be retried at the
        next resync without counting an attempt); it returns normally once
        the effect is done, and the item is then marked complete.
        """
        self._handlers[name] = handler

    def enqueue(self, run_id: int) -> None:
        self.queue.add(run_id)

    # -- resync ------------------------------------------------------------
    def _resync_loop(self) -> None:
        interval = self.config.agentmonitor.resync_interval
        tick = min(interval, self.alive_interval / 3) if self.alive_interval else interval
        next_resync = time.monotonic() + interval
        while not self._stop.wait(tick):
            if time.monotonic() >= next_resync:
                next_resync = time.monotonic() + interval
                try:
                    self.resync()
                    self._resynced_at = time.monotonic()
                except Exception:  # keep resyncing whatever one pass hit
                    log.exception("resync failed")
            if self.on_alive is not None and self._alive():
                self.on_alive()

    def _alive(self) -> bool:
        """The reconciler is doing its work: a resync passed lately, and when runs wait in the
        queue a worker has finished one lately.  A wedged resync (a scheduler call that never
        returns) or every worker stuck stops the pings, and systemd restarts the daemon."""
        limit = self.alive_interval or float("inf")
        now = time.monotonic()
        if now - self._resynced_at > max(limit, 2 * self.config.agentmonitor.resync_interval):
            return False
        return not (len(self.queue) and now - self._worked_at > limit)

    def resync(self, sweep: bool | None = None) -> None:
        """One bulk scheduler query, then the runs that need a look are queued.

        Those are runs whose job changed since the last answer and runs with
        side effects pending; on a sweep (every ``SWEEP_EVERY`` resyncs, and
        the first) every active run and every ended run whose job still runs.
        """
        asked_at = self.clock()
        try:
            jobs = self.scheduler.observe()
        except SchedulerUnavailable as exc:
            if self.world.answered:
                log.warning("scheduler did not answer; observations are stale: %s", exc)
            self.world.install(None, asked_at)
            changed: set[str] = set()
        else:
            changed = self.world.install(jobs, asked_at)
        metrics.resynced(self.world.answered, asked_at)
        if sweep is None:
            sweep = self._resyncs % SWEEP_EVERY == 0
        self._resyncs += 1
        ids = {item.run_id for item in self.store.pending_outbox() if item.next_at <= asked_at}
        if changed:
            ids.update(self.store.ids_by_launch(changed))
        if sweep:
            ids.update(self.store.ids_in_states(groups("active")))
            live = self.world.live_launch_ids()
            if live:
                ids.update(self.store.ids_of_launches(live, groups("ended")))
        for run_id in ids:
            self.queue.add(run_id)

    # -- workers -----------------------------------------------------------
    def _work_loop(self) -> None:
        while True:
            run_id = self.queue.get()
            if run_id is None:
                return
            try:
                with runlog.about_run(lambda: self.store.run_label(run_id)):
                    try:
                        self.process(run_id)
                    except Exception:  # the registry could not even be read, or a step failed
                        log.exception("reconciling run %d failed; will retry", run_id)
                        self.queue.add_after(run_id, 5.0)
            finally:
                self.queue.done(run_id)
                self._worked_at = time.monotonic()

    def process(self, run_id: int) -> None:
        """Do the run's due side effects and lifecycle steps until nothing is left to do now."""
        for _ in range(8):
            # What was reported about the run until now is read below: no second turn for it.
            self.queue.seen(run_id)
            added = self.store.outbox_generation(run_id)
            progressed = self._drain_outbox(run_id, added)
            stepped = self._step(run_id)
            # Done effects change the run only through the record the step just read; another
            # round is needed when the step did something or an effect added outbox items.
            if not stepped and (not progressed or self.store.outbox_generation(run_id) == added):
                return
        self.queue.add(run_id)  # still moving after all those rounds: another turn, after the others

    def _drain_outbox(self, run_id: int, added: int) -> bool:
        """Perform the run's due outbox items; True when at least one was done.

        Items run in order within a lane (``effects.EFFECTS``); a failed,
        waiting or running item holds back the rest of its lane only.  Slow
        effects are handed to their worker pool; their lane waits until they end.
        ``added``: the run's outbox generation before the read; when every item
        read was done here, the outbox is known empty as of it (the next turn,
        READY's or a resync's, reads nothing unless a commit added items since).
        """
        blocked: set[str] = set()
        progressed = False
        done = 0
        now = self.clock()
        items = self.store.outbox_of(run_id)
        for item in items:
            spec = effect(item.effect)
            if spec.lane in blocked:
                continue
            blocked.add(spec.lane)  # until this item is done, the rest of its lane waits
            if item.next_at > now or self.effects.in_flight(item.id):
                continue
            handler = self._handlers.get(item.effect)
            if handler is None:
                log.error("outbox item %d has unknown effect %r; dropping it", item.id, item.effect)
                self._complete(item)
                blocked.discard(spec.lane)
                done += 1
                continue
            if spec.slow:
                self.effects.dispatch(item, handler)
                continue
            try:
                handler(item)
            except Exception as exc:
                self._retry(item, exc)
                continue
            if item.effect not in SELF_COMPLETING:
                self._complete(item)
            blocked.discard(spec.lane)
            progressed = True
            done += 1  # a self-completing handler that returned has completed its item
        if items and done == len(items):
            self.store.outbox_emptied(run_id, added)
        return progressed

    def _retry(self, item: OutboxItem, exc: BaseException) -> None:
        """Schedule an item again: at the next resync when it waits, with backoff when it failed."""
        waiting = isinstance(exc, (Waiting, EarlierJobAlive))
        delay = self.config.agentmonitor.resync_interval if waiting else backoff(item.attempts)
        if isinstance(exc, Waiting) and exc.after is not None:
            delay = max(0.0, exc.after)
        metrics.effect_retried(item.effect, waiting)
        if waiting:
            log.info("%s of run %d waits: %s", item.effect, item.run_id, exc)
        else:
            log.warning("%s of run %d failed (attempt %d), retrying in %.1fs: %s",
                        item.effect, item.run_id, item.attempts + 1, delay, exc)
        with self.store.transaction(durable=False) as tx:
            tx.retry_later(item.id, f"{type(exc).__name__}: {exc}", self.clock() + delay, count=not waiting)
        self.queue.add_after(item.run_id, delay)

    def _slow_finished(self, item: OutboxItem, error: BaseException | None) -> None:
        if error is None:
            self._complete(item)
        else:
            self._retry(item, error)
        self.queue.add(item.run_id)

    def _step(self, run_id: int) -> bool:
        record = self.store.get_run_by_id(run_id)
        if record is None:
            return False
        lifecycle = lifecycle_of(record.kind)
        timing = lifecycle.timing(record, self.config, self.scheduler.leave_time())
        job = self.world.job_facts(record)
        now = self.clock()
        step = lifecycle.next_step(record, job, now, timing)
        if step is None:
            wake = lifecycle.wake_at(record, job, timing)
            if wake is not None:  # look again when its next deadline falls due
                self.queue.add_after(run_id, max(0.0, wake - now) + 0.01)
            return False
        return self._apply(record, step)

    def _apply(self, seen: RunRecord, step: Step) -> bool:
        """Apply ``step`` if the record has not moved meanwhile; True when anything changed."""
        lifecycle = lifecycle_of(seen.kind)
        with self.store.transaction(durable=False) as tx:
            record = tx.get_run_by_id(seen.id)
            if record is None or record.epoch != seen.epoch or record.state != seen.state:
                return True  # it moved under us: look again
            if not lifecycle.confirm(tx, record, step):
                return False  # no longer possible (the last slot was taken meanwhile)
            changed = False
            if step.remove_job and record.job_ref and not tx.has_pending(record, "remove"):
                # The reason the scheduler keeps (RemoveReason): the step's, else why the job must go.
                reason = step.status or (f"swampd: launch {record.epoch} is "
                                         f"{lifecycle.state_name(record.state)} and its job has not left")
                tx.enqueue(record, "remove", {"launch_id": record.launch_id, "reason": reason,
                                              "force": step.force})
                changed = True
            if step.submit and not tx.has_pending(record, "submit"):
                tx.enqueue(record, "submit")
                changed = True
            if step.state is not None:
                if int(step.state) in lifecycle.going_down and not record.stop_requested_at:
                    record.stop_requested_at = self.clock()
                status = step.status
                failed = tx.failed_submit(record) if int(step.state) in lifecycle.ended else None
                if failed is not None:  # why it never came up is the scheduler's refusal, not the viewer
                    attempts = f"{failed[0]} attempt{'s' if failed[0] != 1 else ''} failed"
                    status = (f"{status}: its job was never submitted ({attempts}, the last: "
                              f"{failed[1][:LAST_ERROR_SHOWN]})")
                tx.transition(record, int(step.state), status, "reconciler")
                log.info("%s epoch %d -> %s: %s", record.key, record.epoch,
                         lifecycle.state_name(int(step.state)), status)
                changed = True
        return changed

    # -- side effects --------------------------------------------------------
    def _do_submit(self, item: OutboxItem) -> None:
        record = self.store.get_run_by_id(item.run_id)
        lifecycle = lifecycle_of(record.kind) if record is not None else None
        if (record is None or lifecycle is None or record.epoch != item.epoch or record.desired != "running"
                or record.state in lifecycle.ended):
            self._complete(item)  # that launch is over or cancelled: nothing to submit
            return
        # Past LAUNCHING with no job recorded: the job ran before a crash kept its record
        # (its node reported); submitting adopts it, so that a stop can find it.
        for launch in self.store.launches(record.id) if record.epoch > 1 else ():
            if launch.epoch < record.epoch and self.world.may_be_alive(launch):
                # One job per run: the new job starts only once the old one is
                # gone (a scheduler's remove may return before the job has left).
                raise EarlierJobAlive(f"launch {launch.epoch}'s job {launch.job_ref} has not left yet")
        failpoint("submit.before")
        try:
            job_ref = self.launchpad.submit(record, self.config)
        except (SchedulerError, LaunchRefused) as exc:
            self._fail_launch(record, item, f"Submit refused: {exc}")
            return
        failpoint("submit.after")
        with self.store.transaction(durable=False) as tx:
            current = tx.get_run_by_id(item.run_id)
            if current is not None and current.epoch == item.epoch:
                with tx.saving_once(current):  # the job and the new status: the run's rows written once
                    tx.set_job(current, job_ref, self.clock())
                    # A job started at once (the host agent's) may have reported its start already:
                    # "waiting for the machine" would then put an older status back.
                    if current.state in lifecycle.submittable and (current.state, current.status) == (
                            record.state, record.status):
                        tx.transition(current, current.state, lifecycle.submitted_status(current), "launchpad",
                                      f"submitted job {job_ref}")
            tx.complete(item.id)

    def _fail_launch(self, record: RunRecord, item: OutboxItem, reason: str) -> None:
        metrics.effect_failed(item.effect)
        lifecycle = lifecycle_of(record.kind)
        with self.store.transaction(durable=False) as tx:
            current = tx.get_run_by_id(record.id)
            if current is not None and current.epoch == record.epoch and current.state in lifecycle.submittable:
                tx.transition(current, lifecycle.failed, reason, "launchpad")
            tx.complete(item.id)
        log.error("%s epoch %d: %s", record.key, record.epoch, reason)

    def _do_remove(self, item: OutboxItem) -> None:
        launch_id = str(item.payload.get("launch_id", ""))
        if not launch_id:
            return
        reason = str(item.payload.get("reason", "swampd"))
        observation = self.scheduler.remove(launch_id, reason, force=bool(item.payload.get("force", False)))
        if observation is None:  # the scheduler has no such job (any more)
            observation = JobObservation(launch_id, JobStatus.REMOVED, reason=reason)
        self.world.learn(launch_id, observation, self.clock())

    def _do_forget(self, item: OutboxItem) -> None:
        launch_id = str(item.payload.get("launch_id", ""))
        if launch_id:
            self.scheduler.forget(launch_id)

    def _complete(self, item: OutboxItem) -> None:
        with self.store.transaction(durable=False) as tx:
            tx.complete(item.id)

    def observation_of(self, record: RunRecord) -> dict[str, object]:
        """What the API shows about the job: its view, and whether that is stale."""
        facts = self.world.job_facts(record)
        return {
            "job": facts.view.value,
            "job_detail": facts.detail,
            "stale": not self.world.answered,
            "last_seen": self.world.last_answer_at,
        }
