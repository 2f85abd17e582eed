"""The HTCondor scheduler: viewer jobs on a pool, through the ``htcondor2`` bindings.

The only module that talks to a schedd.  It never shells out to
``condor_*``; the schedd object is injected (tests pass the double in
``tests/condor_double.py``; ``make_schedd`` builds the real one).

* Submit is adopt-or-submit.  The schedd has no transactions any more, so
  "submit only if absent" cannot be atomic there; instead every job carries
  its key and launch id (``SwampdKey``, ``SwampdLaunchId``) and, before
  submitting, the queue and then the history are asked for that launch.  A
  job found is adopted, so a crash between submit and the record being
  written costs nothing on the next attempt.  A job of an earlier launch of
  the same key still in the queue is removed and the submit waits
  (``EarlierJobAlive``) until it has left: one job per run at a time.
* Observation is one bulk ``Schedd.query`` per resync for every swampd job,
  with a projection, plus at most one ``Schedd.history`` call for tracked
  jobs that left the queue.  Any exception or timeout raises
  ``SchedulerUnavailable``: what we knew is stale, never gone.
* Remove passes its reason as ``(text, code)``: the bindings drop a plain
  string reason.  A removed job keeps running while it vacates (up to
  ``job_max_vacate_time``); the reconciler asks again, by force
  (``RemoveX``), only once ``leave_time`` has passed.
"""
from __future__ import annotations

import logging
import shutil
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Mapping

from swampd.config import HTCondorConfig
from swampd.launchpad.jobs import (
    EarlierJobAlive,
    JobDescription,
    JobObservation,
    JobStatus,
    SchedulerError,
    SchedulerUnavailable,
    write_inputs,
)
from swampd.launchpad.schedulers.condor_connect import LazySchedd, make_collector, make_schedd
from swampd.launchpad.schedulers.condor_queries import (
    ALL_JOBS,
    PROJECTION,
    REF_RE,
    REMOVED,
    RUNNING_STATUSES,
    ad_get,
    job_ref,
    key_constraint,
    launch_constraint,
    observation_from_ad,
    ref_order,
    refs_constraint,
)
from swampd.launchpad.submit_description import (
    KEY_ATTR,
    LAUNCH_ATTR,
    VM_DISKS,
    SubmitDescriptionError,
    build_submit,
    classad_string,
)

log = logging.getLogger(__name__)

#: How many ended jobs' last observations are kept (history is asked once per job).
FINISHED_CACHE = 20000
#: Calls that may hang at once before the schedd counts as unavailable without asking.
MAX_HUNG_CALLS = 4
#: Messages of submit failures that retrying cannot fix.
PERMANENT_SUBMIT_ERRORS = ("Failed to create job ad", "invalid Queue statement", "description must be")

#: Re-exported: the daemon builds real connections through this module.
__all__ = ["HTCondorScheduler", "LazySchedd", "make_collector", "make_schedd", "ALL_JOBS",
           "PROJECTION", "launch_constraint"]


class HTCondorScheduler:
    """Runs swampd's jobs on HTCondor; ``schedd`` is an ``htcondor2.Schedd`` or the test double."""

    kind = "htcondor"
    platforms = frozenset({"vm", "docker", "process"})

    def __init__(self, schedd: Any, condor: HTCondorConfig, jobs_root: Path,
                 tracked: Callable[[], Mapping[str, str]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """``tracked`` returns launch id -> job ref of the launches swampd still follows, so
        that jobs which left the queue while nobody looked are found in the history."""
        self.schedd = schedd
        self.condor = condor
        self.jobs_root = Path(jobs_root)
        self.tracked = tracked
        self.clock = clock
        self._lock = threading.Lock()
        #: Launches this process submitted or saw in the queue: launch id -> job ref.
        self._known: dict[str, str] = {}
        #: Last observation of jobs that left the queue, so history is asked once.
        self._finished: OrderedDict[str, JobObservation] = OrderedDict()
        #: Launch ids in the queue at the last answered observation.
        self._in_queue: set[str] = set()
        self._hung = 0

    # -- calls into the bindings ------------------------------------------------
    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the schedd with a deadline; an exception or a timeout means "unavailable".

        The bindings have no per-call timeout, so the call runs on its own
        thread and is abandoned (not killed) when it takes too long.
        """
        with self._lock:
            if self._hung >= MAX_HUNG_CALLS:
                raise SchedulerUnavailable(f"schedd {what}: {self._hung} earlier calls still hang")
        box: dict[str, Any] = {}
        done = threading.Event()

        def run() -> None:
            try:
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed to the caller below
                box["error"] = exc
            finally:
                with self._lock:
                    done.set()
                    if box.get("abandoned"):
                        self._hung -= 1

        thread = threading.Thread(target=run, name=f"htcondor-{what}", daemon=True)
        thread.start()
        if not done.wait(self.condor.timeout):
            with self._lock:
                if not done.is_set():
                    box["abandoned"] = True
                    self._hung += 1
            if box.get("abandoned"):
                raise SchedulerUnavailable(f"schedd {what} did not answer within {self.condor.timeout:g}s")
        if "error" in box:
            exc = box["error"]
            raise SchedulerUnavailable(f"schedd {what} failed: {type(exc).__name__}: {exc}") from exc
        return box["value"]

    # -- submit ---------------------------------------------------------------
    def submit(self, job: JobDescription) -> str:
        """Adopt the launch's job if the schedd has it (queue or history), else submit it
        once no job of an earlier launch of the run is left in the queue."""
        write_inputs(job)  # the job's files travel from its directory (initialdir)
        queued = self._call("query", self.schedd.query, constraint=key_constraint(job.key), projection=PROJECTION)
        mine = sorted((ad for ad in queued if ad_get(ad, LAUNCH_ATTR) == job.launch_id), key=ref_order)
        if mine:
            ref = job_ref(mine[0])
            for extra in mine[1:]:
                log.warning("launch %s has a second job %s; removing it", job.launch_id, job_ref(extra))
                self._act("Remove", job_ref(extra), "swampd: duplicate job of one launch")
            log.info("adopting job %s of launch %s", ref, job.launch_id)
            self._remember(job.launch_id, ref)
            return ref
        self._wait_for_earlier_launches(queued, job)
        ended = self._call("history", self.schedd.history, constraint=launch_constraint(job.launch_id, job.key),
                           projection=PROJECTION, match=1)
        if ended:
            ref = job_ref(ended[0])
            log.info("launch %s already ran as job %s (in the history); adopting it", job.launch_id, ref)
            self._finish(job.launch_id, observation_from_ad(ended[0], from_history=True))
            self._remember(job.launch_id, ref)
            return ref
        try:
            description = build_submit(job, self.condor)
        except SubmitDescriptionError as exc:
            raise SchedulerError(str(exc)) from None
        if job.universe == "vm":
            for disk in VM_DISKS:  # SWAMP's placeholders; vruntask prepare makes the real disks
                (job.job_dir / disk).touch(mode=0o600, exist_ok=True)
        submit = _make_submit(description)
        try:
            result = self._call("submit", self.schedd.submit, submit, count=1)
        except SchedulerUnavailable as exc:
            cause = exc.__cause__
            if isinstance(cause, (TypeError, ValueError)) or any(m in str(cause) for m in PERMANENT_SUBMIT_ERRORS):
                raise SchedulerError(f"the schedd refused the job: {cause}") from None
            raise
        ref = f"{int(result.cluster())}.{int(result.first_proc())}"
        log.info("submitted launch %s of %s as job %s (%s universe)", job.launch_id, job.key, ref, job.universe)
        self._remember(job.launch_id, ref)
        return ref

    def _wait_for_earlier_launches(self, queued: list[Any], job: JobDescription) -> None:
        """A job of another launch of this run still in the queue: ask it to go (once) and wait."""
        others = [ad for ad in queued if ad_get(ad, LAUNCH_ATTR) != job.launch_id]
        for ad in others:
            if int(ad_get(ad, "JobStatus", 0)) != REMOVED:
                log.warning("removing job %s of an earlier launch of %s", job_ref(ad), job.key)
                self._act("Remove", job_ref(ad), f"swampd: superseded by launch {job.epoch}")
        if others:
            refs = ", ".join(job_ref(ad) for ad in others)
            raise EarlierJobAlive(f"job {refs} of an earlier launch of {job.key} is still leaving the queue")

    def _remember(self, launch_id: str, ref: str) -> None:
        with self._lock:
            self._known[launch_id] = ref

    def _finish(self, launch_id: str, observation: JobObservation) -> None:
        with self._lock:
            self._finished[launch_id] = observation
            self._finished.move_to_end(launch_id)
            while len(self._finished) > FINISHED_CACHE:
                self._finished.popitem(last=False)

    # -- observe --------------------------------------------------------------
    def observe(self) -> dict[str, JobObservation]:
        """One bulk query for every swampd job, and one history call for tracked jobs that left."""
        ads = self._call("query", self.schedd.query, constraint=ALL_JOBS, projection=PROJECTION)
        seen: dict[str, JobObservation] = {}
        refs: dict[str, str] = {}
        for ad in sorted(ads, key=ref_order):
            observation = observation_from_ad(ad)
            if not observation.launch_id:
                continue
            previous = seen.get(observation.launch_id)
            if previous is None or (previous.finished and not observation.finished):
                seen[observation.launch_id] = observation
                refs[observation.launch_id] = job_ref(ad)
        with self._lock:
            tracked = dict(self._known)
        if self.tracked is not None:
            tracked.update(self.tracked())
        missing = {lid: ref for lid, ref in tracked.items()
                   if lid not in seen and lid not in self._finished and REF_RE.fullmatch(ref or "")}
        if missing:
            ended = self._call("history", self.schedd.history, constraint=refs_constraint(sorted(missing.values())),
                               projection=PROJECTION, match=len(missing))
            for ad in ended:
                observation = observation_from_ad(ad, from_history=True)
                if observation.launch_id in missing:
                    self._finish(observation.launch_id, observation)
        with self._lock:
            for launch_id, ref in refs.items():
                self._known[launch_id] = ref
            self._in_queue = set(seen)
            finished = {lid: obs for lid, obs in self._finished.items() if lid in tracked and lid not in seen}
        seen.update(finished)
        return seen

    # -- remove ---------------------------------------------------------------
    def remove(self, launch_id: str, reason: str, force: bool = False) -> JobObservation | None:
        """Ask the launch's job to go: ``Remove`` (graceful, up to job_max_vacate_time), or with
        ``force`` also ``RemoveX`` for a job still leaving.  Returns the job as it is right after."""
        ads = self._call("query", self.schedd.query, constraint=f"{LAUNCH_ATTR} == {classad_string(launch_id)}",
                         projection=PROJECTION)
        now = self.clock()
        left: JobObservation | None = None
        for ad in ads:
            ref = job_ref(ad)
            removed = int(ad_get(ad, "JobStatus", 0)) == REMOVED
            if not removed:
                self._act("Remove", ref, reason)
                log.info("removed job %s of launch %s: %s", ref, launch_id, reason)
            if force:
                self._act("RemoveX", ref, f"{reason} (forced after {self.leave_time():g}s)")
                log.warning("job %s of launch %s forced out of the queue", ref, launch_id)
                # The next observation says whether it left; until then it counts as
                # leaving since now, so it is not forced again at once.
                left = JobObservation(launch_id, JobStatus.RUNNING, reason=f"forced out: {reason}",
                                      key=str(ad_get(ad, KEY_ATTR, "")), leaving=True, leaving_since=now)
                continue
            if not removed and int(ad_get(ad, "JobStatus", 0)) not in RUNNING_STATUSES:
                # Nothing runs it, so nothing has to shut down: the schedd lets it go at once.
                left = JobObservation(launch_id, JobStatus.REMOVED, reason=reason, key=str(ad_get(ad, KEY_ATTR, "")))
                continue
            since = float(ad_get(ad, "EnteredCurrentStatus", now)) if removed else now
            started = ad_get(ad, "JobCurrentStartDate") is not None
            left = JobObservation(launch_id, JobStatus.RUNNING if started else JobStatus.IDLE,
                                  reason=f"being removed: {reason}", key=str(ad_get(ad, KEY_ATTR, "")),
                                  leaving=True, leaving_since=since)
        return left

    def recover(self) -> None:
        """Nothing to take over: the schedd keeps the jobs and adopt-or-submit finds them."""

    def close(self) -> None:
        """The schedd keeps the jobs."""

    def leave_time(self) -> float:
        """A removed job vacates for up to job_max_vacate_time; it is forced out after remove_grace."""
        return float(self.condor.remove_grace)

    def _act(self, action: str, ref: str, reason: str) -> None:
        import htcondor2  # the bindings' enum, whichever schedd object we talk to

        result = self._call("act", self.schedd.act, getattr(htcondor2.JobAction, action), ref,
                            reason=(reason[:1000], 0))
        errors = int(ad_get(result, "TotalError", 0) or 0) + int(ad_get(result, "TotalPermissionDenied", 0) or 0)
        if errors:
            raise SchedulerError(f"the schedd refused to {action.lower()} job {ref}")

    def forget(self, launch_id: str) -> None:
        """Drop the launch's caches and its job directory once its job has left the queue."""
        with self._lock:
            if launch_id in self._in_queue:
                return
            self._known.pop(launch_id, None)
            self._finished.pop(launch_id, None)
        job_dir = self.jobs_root / launch_id
        if job_dir.is_dir():
            shutil.rmtree(job_dir, ignore_errors=True)


def _make_submit(description: Mapping[str, str]) -> Any:
    import htcondor2

    try:
        return htcondor2.Submit(dict(description))
    except (TypeError, ValueError) as exc:
        raise SchedulerError(f"submit description refused: {exc}") from None
