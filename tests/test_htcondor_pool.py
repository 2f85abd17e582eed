"""Against a real HTCondor pool: runs when ``CONDOR_CONFIG`` names a pool's configuration.

This is the one test file allowed to skip: CI has no pool.  Everything here
is also covered against the double (``tests/condor_double.py``); these tests
check the double's claims on the real thing, end to end where it matters:

* the scheduler as the submit user: submit, adopt by launch id, attribute
  types, observation, remove with a reason, and history once a job left;
* a real ``swampd serve`` with ``[scheduler] kind = "htcondor"``: a vanilla
  job runs ``vruntask run`` on the process platform and reports back until
  READY; stop; a relaunch that waits for the previous job; a held job; a
  schedd that is stopped and started again (on a new port); the collector
  ads with their lifetime, refreshed and expired; and a collector that
  refuses an unauthorized user's ads.

README.md, section HTCondor, says how to run them; ``tests/support/condor_pool.py``
says who runs what (a schedd never lets root own jobs).  Each test prints
its timings (``-s`` shows them).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from support.condor_pool import (
    JobFiles,
    Pool,
    PoolDaemon,
    as_submit_user,
    elapsed,
    pool_or_skip,
    wait_until,
)

#: Generous bounds for one pool on a small, busy machine.
START_TIMEOUT = 150.0
LEAVE_TIMEOUT = 120.0


@pytest.fixture
def pool() -> Pool:
    return pool_or_skip()


@pytest.fixture
def job_files(pool: Pool) -> Iterator[JobFiles]:
    files = JobFiles(pool)
    yield files
    files.remove()


def say(what: str) -> None:
    print(f"[pool] {what}", flush=True)


def quietly(what: str, cleanup: Callable[[], object]) -> None:
    """A cleanup step that must not hide the test's own failure (a schedd that is down fails both)."""
    try:
        cleanup()
    except Exception as exc:  # noqa: BLE001 - said, and the test's own outcome stands
        say(f"cleanup: {what} failed: {exc!r}")


def jobs_of(pool: Pool, key: str, projection: list[str] | None = None) -> list[Any]:
    return pool.schedd().query(f'SwampdKey == "{key}"', projection or [
        "ClusterId", "ProcId", "JobStatus", "SwampdEpoch", "SwampdLaunchId", "QDate", "Owner",
        "EnteredCurrentStatus", "RemoveReason", "HoldReason", "HoldReasonCode"])


def history_of(pool: Pool, key: str) -> list[Any]:
    return pool.schedd().history(f'SwampdKey == "{key}"', [
        "ClusterId", "ProcId", "JobStatus", "SwampdEpoch", "SwampdLaunchId", "Owner", "RemoveReason",
        "ExitCode", "ExitBySignal", "CompletionDate", "EnteredCurrentStatus", "HoldReason",
        "HoldReasonCode", "LastHoldReason", "LastHoldReasonCode"], match=20)


def remove_jobs(pool: Pool, constraint: str) -> None:
    """Take a test's jobs out of the queue whatever state they are in (root may, as queue super user)."""
    import htcondor2

    try:
        schedd = pool.schedd()
        schedd.act(htcondor2.JobAction.Remove, constraint, reason=("swampd pool test cleanup", 0))
        schedd.act(htcondor2.JobAction.RemoveX, constraint, reason=("swampd pool test cleanup", 0))
    except Exception as exc:  # a test that stopped the schedd restarts it in its own finally
        say(f"cleanup of {constraint} failed: {exc}")


# -- the scheduler, as the submit user ----------------------------------------------------

def scheduler_world(tmp_path: Path, vruntask: str) -> tuple[Any, Any, Any]:
    """An HTCondorScheduler on the real pool, and a LaunchPad and config to submit viewer launches."""
    from swampd.config import AgentMonitorConfig, Config, HTCondorConfig, SchedulerConfig, ViewerConfig
    from swampd.launchpad.launchpad import LaunchPad
    from swampd.launchpad.schedulers.htcondor import HTCondorScheduler, LazySchedd

    condor = HTCondorConfig(vruntask=vruntask, timeout=60.0, job_max_vacate_time=30, remove_grace=60,
                            pool=os.environ.get("SWAMPD_TEST_POOL", ""),
                            schedd=os.environ.get("SWAMPD_TEST_SCHEDD", ""))
    viewer = ViewerConfig("CodeDX", platform="process", memory=64, cpus=1)
    config = Config(AgentMonitorConfig(state_dir=tmp_path), SchedulerConfig(kind="htcondor"), {"CodeDX": viewer},
                    htcondor=condor)
    jobs_root = tmp_path / "jobs"
    scheduler = HTCondorScheduler(LazySchedd(condor), condor, jobs_root)
    return scheduler, LaunchPad(scheduler, jobs_root, "http://127.0.0.1:8084/"), config


def viewer_record(project: str) -> Any:
    from swampd.states import ViewerState
    from swampd.store import ViewerRecord

    return ViewerRecord(projectid=project, viewer="CodeDX", epoch=1, launch_id=uuid.uuid4().hex,
                        token="t" * 40, apikey=str(uuid.uuid4()), url_uuid=f"proxy-{uuid.uuid4()}",
                        state=int(ViewerState.LAUNCHING), userid="itest-user", viewer_uuid="vi-itest")


class CountingSchedd:
    """The LazySchedd with a count of calls, to see history asked once per job."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            return method(*args, **kwargs)

        return call


@as_submit_user
def test_submit_adopt_observe_remove(tmp_path: Path) -> None:
    import htcondor2

    from swampd.launchpad.jobs import JobStatus

    pool = pool_or_skip()
    files = JobFiles(pool)
    sleeper = files.script("sleeper", 'trap "exit 0" TERM; sleep 300 & wait')
    scheduler, launchpad, config = scheduler_world(tmp_path, str(sleeper))
    record = viewer_record(f"itest-{uuid.uuid4().hex[:8]}")
    schedd = scheduler.schedd
    started = time.monotonic()
    try:
        ref = launchpad.submit(record, config)
        assert launchpad.submit(record, config) == ref  # adopted from the queue, not a second job
        assert record.launch_id in scheduler.observe()
        [ad] = schedd.query(f'SwampdLaunchId == "{record.launch_id}"',
                            ["SWAMP_vrun_execrunuid", "SWAMP_userid", "ViewerJob", "AcctGroup", "SwampdEpoch",
                             "JobUniverse", "Owner", "WantGracefulRemoval", "JobMaxVacateTime"])
        # Types come back as given: the double stores the same.
        assert ad["SWAMP_vrun_execrunuid"] == record.execrunid and ad["SWAMP_userid"] == "itest-user"
        assert ad["ViewerJob"] is True and type(ad["SwampdEpoch"]) is int and ad["SwampdEpoch"] == 1
        assert ad["AcctGroup"] == "group_viewer" and ad["JobUniverse"] == 5
        assert ad["WantGracefulRemoval"] is True and ad["JobMaxVacateTime"] == 30
        owner = ad["Owner"]
        running = wait_until(lambda: (o := scheduler.observe()[record.launch_id]).status is JobStatus.RUNNING
                             and o, START_TIMEOUT, "the job to run")
        say(f"submit -> running in {elapsed(started)}s")
        assert running.starts == 1  # JobRunCount, at once (NumJobStarts waits for the shadow's update)
        removed_at = time.monotonic()
        right_after = scheduler.remove(record.launch_id, "swampd integration test")
        assert right_after is not None and right_after.leaving  # a running job vacates first
        scheduler.tracked = lambda: {record.launch_id: ref}
        final = wait_until(lambda: (o := scheduler.observe().get(record.launch_id)) and o.finished and o,
                           LEAVE_TIMEOUT, "the removed job to leave the queue")
        say(f"remove -> gone from the queue in {elapsed(removed_at)}s")
        assert final.status is JobStatus.REMOVED
        assert final.reason == "swampd integration test"  # swampd's own words, the owner's suffix read off
        [gone] = schedd.history(f'SwampdLaunchId == "{record.launch_id}"',
                                ["RemoveReason", "ExitCode", "ExitBySignal", "JobStatus"], match=1)
        assert gone["RemoveReason"] == f"swampd integration test (by user {owner})"
        assert gone["JobStatus"] == 3 and "ExitCode" not in gone
    finally:
        quietly("removing the test's job", lambda: schedd.act(
            htcondor2.JobAction.Remove, f'SwampdLaunchId == "{record.launch_id}"', reason=("cleanup", 0)))
        files.remove()


@as_submit_user
def test_history_after_the_job_left_the_queue(tmp_path: Path) -> None:
    import htcondor2

    from swampd.launchpad.jobs import JobStatus
    from swampd.launchpad.schedulers.htcondor import HTCondorScheduler

    pool = pool_or_skip()
    files = JobFiles(pool)
    failing = files.script("exits3", "sleep 1; exit 3")
    sleeper = files.script("sleeper", 'trap "exit 0" TERM; sleep 300 & wait')
    ending, ending_pad, ending_config = scheduler_world(tmp_path / "a", str(failing))
    removed, removed_pad, removed_config = scheduler_world(tmp_path / "b", str(sleeper))
    done_record, removed_record = viewer_record(f"ihist-{uuid.uuid4().hex[:8]}"), viewer_record(
        f"ihist-{uuid.uuid4().hex[:8]}")
    schedd = ending.schedd
    try:
        done_ref = ending_pad.submit(done_record, ending_config)
        removed_ref = removed_pad.submit(removed_record, removed_config)
        wait_until(lambda: schedd.query(f"ClusterId == {removed_ref.split('.')[0]} && JobStatus == 2",
                                        ["JobStatus"]), START_TIMEOUT, "the sleeper to run")
        removed.remove(removed_record.launch_id, "stopped for the history test")
        started = time.monotonic()
        launches = [done_record.launch_id, removed_record.launch_id]
        constraint = " || ".join(f'SwampdLaunchId == "{lid}"' for lid in launches)
        wait_until(lambda: not schedd.query(constraint, ["JobStatus"]), LEAVE_TIMEOUT, "both jobs to leave")
        say(f"both jobs left the queue {elapsed(started)}s after the remove")

        # The raw history: what the double's history must look like.
        [done_ad] = schedd.history(f'SwampdLaunchId == "{done_record.launch_id}"', [], match=1)
        [removed_ad] = schedd.history(f'SwampdLaunchId == "{removed_record.launch_id}"', [], match=1)
        assert done_ad["JobStatus"] == 4 and done_ad["ExitCode"] == 3 and "CompletionDate" in done_ad
        assert "RemoveReason" not in done_ad and done_ad["ExitBySignal"] is False
        assert removed_ad["JobStatus"] == 3 and "ExitCode" not in removed_ad
        assert removed_ad["RemoveReason"] == f"stopped for the history test (by user {removed_ad['Owner']})"
        # No CompletionDate for a removed job; ExitBySignal says how its process ended (this one
        # exits 0 on TERM; one killed on its way out has ExitBySignal true and its ExitSignal).
        assert "CompletionDate" not in removed_ad and removed_ad["ExitBySignal"] is False

        # A scheduler that remembers nothing (a restarted daemon) finds both in one history call, once.
        counting = CountingSchedd(removed.schedd)
        fresh = HTCondorScheduler(counting, removed.condor, tmp_path / "jobs",
                                  tracked=lambda: {done_record.launch_id: done_ref,
                                                   removed_record.launch_id: removed_ref})
        seen = fresh.observe()
        assert seen[done_record.launch_id].status is JobStatus.COMPLETED
        assert seen[done_record.launch_id].exit_code == 3
        assert seen[removed_record.launch_id].status is JobStatus.REMOVED
        assert seen[removed_record.launch_id].reason == "stopped for the history test"
        assert counting.calls == {"query": 1, "history": 1}
        fresh.observe()
        assert counting.calls == {"query": 2, "history": 1}  # asked once per job

        # Adopt-or-submit finds a launch that already ran in the history: no second job.
        _, pad, config = scheduler_world(tmp_path / "c", str(failing))
        assert pad.submit(done_record, config) == done_ref
        assert schedd.query(f'SwampdLaunchId == "{done_record.launch_id}"', ["JobStatus"]) == []
    finally:
        quietly("removing the test's jobs", lambda: schedd.act(
            htcondor2.JobAction.Remove, f'SwampdKey == "{done_record.execrunid}" || '
                                        f'SwampdKey == "{removed_record.execrunid}"', reason=("cleanup", 0)))
        files.remove()


# -- a real swampd serve, as the submit user -------------------------------------------------

VIEWER = "CodeDX"
#: A viewer that ignores SIGTERM (vruntask then waits its stop grace, 10 s, before KILL).
STUBBORN_COMMAND = ["{python}", "-c",
                    "import signal,sys,http.server as h;signal.signal(signal.SIGTERM,signal.SIG_IGN);"
                    "h.HTTPServer(('127.0.0.1',int(sys.argv[1])),h.SimpleHTTPRequestHandler).serve_forever()",
                    "{port}"]


@pytest.fixture
def make_pool_daemon(pool: Pool, job_files: JobFiles) -> Iterator[Callable[..., PoolDaemon]]:
    made: list[PoolDaemon] = []

    def make(htcondor: dict[str, Any] | None = None, viewer: dict[str, Any] | None = None,
             start: bool = True, assessments: dict[str, Any] | None = None) -> PoolDaemon:
        root = pool.private_dir("swampd-pool-daemon-")
        condor = {"vruntask": str(job_files.vruntask), "timeout": 20, "job_max_vacate_time": 30,
                  "remove_grace": 60, "pool": pool.pool, "schedd": pool.schedd_name, **(htcondor or {})}
        daemon = PoolDaemon(pool, root, viewers={VIEWER: {"platform": "process", "memory": 64, "cpus": 1,
                                                          "ready_timeout": 120, **(viewer or {})}},
                            agentmonitor={"host": "127.0.0.1", "resync_interval": 1.0},
                            scheduler={"kind": "htcondor"},
                            extra={"htcondor": condor, **({"assessments": assessments} if assessments else {})})
        made.append(daemon)
        return daemon.start() if start else daemon

    yield make
    for daemon in made:
        daemon.cleanup()
        remove_jobs(pool, f'SwampdKey =!= undefined && regexp("^{daemon.root}/", Iwd)')
        if not os.environ.get("SWAMPD_TEST_POOL_KEEP"):
            subprocess.run(["rm", "-rf", str(daemon.root)], check=False)


def project() -> str:
    return f"pool-{uuid.uuid4().hex[:8]}"


def launch(daemon: PoolDaemon, projectid: str) -> dict[str, Any]:
    return daemon.api.launchViewer({"projectid": projectid, "viewer": VIEWER, "userid": "pool-user",
                                    "viewer_uuid": f"vi-{projectid}"})


def wait_state(daemon: PoolDaemon, projectid: str, names: set[str], timeout: float,
               never: set[str] = frozenset()) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        viewer = daemon.api.getViewer(projectid, VIEWER)
        assert viewer["state_name"] not in never, f"{projectid} went {viewer['state_name']}: {viewer['status']}"
        return viewer if viewer["state_name"] in names else None

    try:
        return wait_until(check, timeout, f"{projectid} to be {' or '.join(sorted(names))}")
    except AssertionError:
        say(f"daemon log:\n{daemon.log()[-4000:]}")
        raise


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def launch_to_ready(pool: Pool, daemon: PoolDaemon, projectid: str) -> dict[str, Any]:
    started = time.monotonic()
    assert launch(daemon, projectid)["launched"]
    viewer = wait_state(daemon, projectid, {"READY"}, START_TIMEOUT, never={"ERROR"})
    say(f"{projectid}: launch -> READY in {elapsed(started)}s ({viewer['url']})")
    return viewer


def job_token(daemon: PoolDaemon, execrunid: str, epoch: int) -> tuple[str, str]:
    """The launch id and report token of a launch, as the execute node holds them."""
    for bog in daemon.jobs_dir().glob(f"*/{execrunid}.bog"):
        text = bog.read_text()
        if f"swampd_epoch={epoch}\n" in text:
            return bog.parent.name, (bog.parent / "token").read_text().strip()
    raise AssertionError(f"no job directory for {execrunid} epoch {epoch}")


def test_a_vanilla_job_runs_vruntask_to_ready_and_a_stop_takes_it_out_of_the_queue(
        pool: Pool, make_pool_daemon: Callable[..., PoolDaemon]) -> None:
    daemon = make_pool_daemon()
    projectid = project()
    viewer = launch_to_ready(pool, daemon, projectid)
    key = viewer["execrunid"]
    assert viewer["url"].startswith("http://127.0.0.1:") and answers(viewer["url"])
    [job] = jobs_of(pool, key, ["JobStatus", "JobUniverse", "Cmd", "Args", "Arguments", "Owner", "SwampdEpoch"])
    assert job["JobStatus"] == 2 and job["JobUniverse"] == 5 and job["SwampdEpoch"] == 1
    assert job["Owner"] != "root" and job["Cmd"].endswith("/vruntask")
    history = daemon.api.viewerHistory(projectid, VIEWER)
    assert [h["state_name"] for h in history][-1] == "READY"

    stopped = time.monotonic()
    daemon.api.stopViewer(projectid, VIEWER)
    ended = wait_state(daemon, projectid, {"SHUTDOWN", "TERMINATED"}, LEAVE_TIMEOUT, never={"TERMINATE_FAILED"})
    say(f"{projectid}: stop -> {ended['state_name']} in {elapsed(stopped)}s")
    assert jobs_of(pool, key) == []
    assert not answers(viewer["url"])  # vruntask stopped the viewer on its way out
    [gone] = wait_until(lambda: history_of(pool, key), 30, "the job in the history")
    assert gone["JobStatus"] == 3 and gone["RemoveReason"] == f"stopped by request (by user {gone['Owner']})"
    assert "Viewer job" not in ended["status"]  # TERMINATED by the stop, not a job that vanished


def test_a_relaunch_waits_for_the_previous_job_to_leave(
        pool: Pool, make_pool_daemon: Callable[..., PoolDaemon]) -> None:
    daemon = make_pool_daemon(viewer={"command": STUBBORN_COMMAND})
    projectid = project()
    first = launch_to_ready(pool, daemon, projectid)
    key = first["execrunid"]
    [old] = jobs_of(pool, key)
    # The guest's viewer shuts down by itself (as SWAMP's idle check does): the launch
    # ends, and the job goes on while the machine saves its database.
    _, token = job_token(daemon, key, 1)
    assert daemon.api.viewerStatus({"execrunid": key, "epoch": 1, "token": token, "event": "VIEWERDOWN"})
    assert daemon.api.getViewer(projectid, VIEWER)["state_name"] == "SHUTDOWN"
    relaunched = time.monotonic()
    again = launch(daemon, projectid)
    assert again["launched"] and again["epoch"] == 2
    seen_leaving = False
    polls: list[tuple[float, bool, bool]] = []

    def new_job() -> Any:
        nonlocal seen_leaving
        jobs = jobs_of(pool, key)
        old_here = [j for j in jobs if j["ClusterId"] == old["ClusterId"]]
        new = [j for j in jobs if j["SwampdEpoch"] == 2]
        seen_leaving |= bool(old_here and old_here[0]["JobStatus"] == 3)
        polls.append((elapsed(relaunched), bool(old_here), bool(new)))
        assert not (old_here and new), f"two jobs of {key} in the queue at once: {jobs}"
        return new[0] if new else None

    new = wait_until(new_job, LEAVE_TIMEOUT, "the relaunch's job", interval=0.25)
    waited = elapsed(relaunched)
    left = [p[0] for p in polls if p[1]]
    say(f"{projectid}: relaunch submitted {waited}s after it was asked for; the old job left the queue "
        f"after {left[-1] if left else 0}s")
    assert seen_leaving, "the old job was never seen leaving (JobStatus 3)"
    assert waited >= 5  # the old viewer ignored TERM; vruntask waited before it killed it
    [gone] = [h for h in history_of(pool, key) if h["ClusterId"] == old["ClusterId"]]
    # Removed once the launch ended (SHUTDOWN) or by the relaunch, in swampd's words, by the submit user.
    assert gone["JobStatus"] == 3 and gone["RemoveReason"].startswith("swampd: ")
    assert gone["RemoveReason"].endswith(f"(by user {old['Owner']})")
    assert new["QDate"] >= gone["EnteredCurrentStatus"]
    viewer = wait_state(daemon, projectid, {"READY"}, START_TIMEOUT, never={"ERROR"})
    assert viewer["epoch"] == 2 and answers(viewer["url"])
    say(f"{projectid}: epoch 2 READY {elapsed(relaunched)}s after the relaunch")


def test_a_held_job_ends_the_viewer_in_error_with_its_hold_reason_and_code(
        pool: Pool, make_pool_daemon: Callable[..., PoolDaemon]) -> None:
    policy = "JobStatus == 2 && (time() - JobCurrentStartDate) > 20"
    daemon = make_pool_daemon(htcondor={"periodic_hold": policy})
    projectid = project()
    viewer = launch_to_ready(pool, daemon, projectid)
    key = viewer["execrunid"]
    started = time.monotonic()
    error = wait_state(daemon, projectid, {"ERROR"}, 90)
    say(f"{projectid}: READY -> ERROR {elapsed(started)}s later: {error['status']}")
    expected = f"The job attribute PeriodicHold expression '{policy}' evaluated to TRUE"
    assert error["status"] == f"Viewer job held: {expected} (HoldReasonCode 3)"
    history = daemon.api.viewerHistory(projectid, VIEWER)
    assert history[-1]["state_name"] == "ERROR" and "HoldReasonCode 3" in history[-1]["status"]
    # on_hold = "remove": the held job is taken out, with the hold in its remove reason.
    wait_until(lambda: jobs_of(pool, key) == [], LEAVE_TIMEOUT, "the held job to be removed")
    [gone] = wait_until(lambda: history_of(pool, key), 30, "the held job in the history")
    # Removing a held job moves its hold to LastHoldReason*; the remove reason carries it too.
    assert "HoldReason" not in gone and "HoldReasonCode" not in gone
    assert gone["LastHoldReasonCode"] == 3 and gone["LastHoldReason"] == expected
    assert gone["RemoveReason"] == f"{error['status']} (by user {gone['Owner']})"


def schedd_address(pool: Pool) -> str:
    path = pool.param("SCHEDD_ADDRESS_FILE")
    return Path(path).read_text().splitlines()[0] if path and Path(path).exists() else ""


def schedd_command(pool: Pool, on: bool) -> None:
    """condor_on / condor_off for the schedd, through the master (root only)."""
    import htcondor2

    master = pool.collector().locate(htcondor2.DaemonType.Master)
    command = htcondor2.DaemonCommand.DaemonOn if on else htcondor2.DaemonCommand.DaemonOff
    htcondor2.send_command(master, command, "SCHEDD")


def schedd_answers(pool: Pool) -> bool:
    try:
        pool.schedd().query("false", ["ClusterId"])
        return True
    except Exception:
        return False


def test_a_schedd_restart_makes_observations_stale_ends_nothing_and_jobs_are_adopted_after(
        pool: Pool, make_pool_daemon: Callable[..., PoolDaemon]) -> None:
    if not pool.as_root:
        pytest.skip("stopping and starting the schedd needs root (the pool's administrator)")
    daemon = make_pool_daemon()
    projectid = project()
    viewer = launch_to_ready(pool, daemon, projectid)
    key = viewer["execrunid"]
    [job] = jobs_of(pool, key)
    before = schedd_address(pool)
    waiting = project()
    try:
        stopped = time.monotonic()
        schedd_command(pool, on=False)
        wait_until(lambda: not schedd_answers(pool), 60, "the schedd to stop")
        say(f"schedd stopped in {elapsed(stopped)}s (was {before})")
        stale = wait_until(lambda: (v := daemon.api.getViewer(projectid, VIEWER))["stale"] and v, 30,
                           "the viewer's observation to go stale")
        assert stale["state_name"] == "READY"
        assert launch(daemon, waiting)["launched"]  # its submit waits for the schedd
        for _ in range(8):  # resyncs without a schedd: nothing ends, nothing is resubmitted
            time.sleep(1.0)
            assert daemon.api.getViewer(projectid, VIEWER)["state_name"] == "READY"
            assert daemon.api.getViewer(waiting, VIEWER)["state_name"] == "LAUNCHING"
    finally:
        schedd_command(pool, on=True)
        wait_until(lambda: schedd_answers(pool), 90, "the schedd to start again")
    after = schedd_address(pool)
    say(f"schedd back {elapsed(stopped)}s after the stop, at {after}")
    assert after != before, "the schedd came back on the same port: this pool cannot show the move"
    # The daemon's schedd object still dials the old port; it must locate the schedd again.
    fresh = wait_until(lambda: not (v := daemon.api.getViewer(projectid, VIEWER))["stale"] and v, 60,
                       "the daemon to locate the schedd again")
    say(f"observations fresh again {elapsed(stopped)}s after the stop")
    assert "located the schedd again" in daemon.log()
    assert fresh["state_name"] == "READY" and answers(fresh["url"])
    [same] = jobs_of(pool, key)  # the same job, still running: nothing was resubmitted
    assert (same["ClusterId"], same["ProcId"]) == (job["ClusterId"], job["ProcId"]) and same["JobStatus"] == 2
    ready = wait_state(daemon, waiting, {"READY"}, START_TIMEOUT, never={"ERROR"})
    [waiting_job] = jobs_of(pool, ready["execrunid"])
    say(f"the launch asked for while the schedd was down is READY {elapsed(stopped)}s after the stop")

    # A daemon that restarts knows only its registry: it adopts both jobs by launch id.
    daemon.kill9()
    daemon.start()
    for _ in range(5):
        time.sleep(1.0)
        for name, expected in ((projectid, job), (waiting, waiting_job)):
            current = daemon.api.getViewer(name, VIEWER)
            assert current["state_name"] == "READY" and not current["stale"]
            [still] = jobs_of(pool, current["execrunid"])
            assert (still["ClusterId"], still["JobStatus"]) == (expected["ClusterId"], 2)
    say("a restarted daemon adopted both jobs: same clusters, still READY")


def collector_ad(pool: Pool, name: str) -> Any:
    import htcondor2

    found = pool.collector().query(htcondor2.AdType.Generic, f'Name == "{name}"', [])
    return found[0] if found else None


def test_collector_ads_carry_their_lifetime_are_refreshed_and_expire_once_the_viewer_ended(
        pool: Pool, make_pool_daemon: Callable[..., PoolDaemon]) -> None:
    housekeeping = int(pool.param("COLLECTOR.CLASSAD_LIFETIME") or pool.param("CLASSAD_LIFETIME") or 900)
    lifetime, refresh = 20, 5
    if lifetime + housekeeping > 240:
        pytest.skip(f"the collector expires ads only every CLASSAD_LIFETIME = {housekeeping}s: too slow to watch "
                    "(set COLLECTOR.CLASSAD_LIFETIME = 60 on a test pool)")
    daemon = make_pool_daemon(htcondor={"advertise": True, "ad_lifetime": lifetime, "ad_refresh": refresh})
    live, ended = project(), project()
    viewer = launch_to_ready(pool, daemon, live)
    launch_to_ready(pool, daemon, ended)
    name, ended_name = viewer["execrunid"], f"vrun_{ended}_{VIEWER}"
    ad = wait_until(lambda: (a := collector_ad(pool, name)) and a.get("SWAMP_vmu_viewer_state") == "2" and a,
                    30, "the READY ad")
    assert ad["ClassAdLifetime"] == lifetime and ad["MyType"] == "Generic"
    assert ad["SWAMP_vmu_viewer_url_uuid"] == viewer["url_uuid"]
    assert ad["SWAMP_vmu_viewer_vmip"] == viewer["vmip"]
    assert not any("apikey" in k.lower() for k in ad.keys())
    first_heard = ad["LastHeardFrom"]

    daemon.api.stopViewer(ended, VIEWER)
    wait_state(daemon, ended, {"TERMINATED", "SHUTDOWN"}, LEAVE_TIMEOUT)
    terminated = wait_until(lambda: (a := collector_ad(pool, ended_name)) and
                            a.get("SWAMP_vmu_viewer_state") in ("-7", "-3") and a, 30, "the ended viewer's ad")
    ended_at = time.monotonic()
    say(f"ended viewer's ad says {terminated['SWAMP_vmu_viewer_state']}; waiting for it to expire "
        f"(lifetime {lifetime}s, collector housekeeping every {housekeeping}s)")
    wait_until(lambda: collector_ad(pool, ended_name) is None, lifetime * 2 + housekeeping + 30,
               "the ended viewer's ad to expire", interval=2.0)
    say(f"ended viewer's ad gone {elapsed(ended_at)}s after the viewer ended")
    live_ad = collector_ad(pool, name)
    assert live_ad is not None, "the live viewer's ad expired although it was refreshed"
    assert live_ad["SWAMP_vmu_viewer_state"] == "2" and live_ad["LastHeardFrom"] > first_heard
    say(f"live viewer's ad refreshed: LastHeardFrom {first_heard} -> {live_ad['LastHeardFrom']}")


def test_the_collector_refuses_ads_from_a_user_it_does_not_authorize_and_swampd_says_so_once(
        pool: Pool, job_files: JobFiles, tmp_path: Path) -> None:
    if not pool.as_root:
        pytest.skip("running a client as another user needs root")
    import htcondor2

    user = os.environ.get("SWAMPD_TEST_POOL_OTHER_USER", "nobody")
    site = Path(htcondor2.__file__).resolve().parents[1]
    work = Path(job_files.root) / "refused"
    work.mkdir()
    os.chmod(work, 0o777)
    script = work / "refused.py"
    script.write_text(REFUSED_SCRIPT, encoding="utf-8")
    os.chmod(script, 0o644)
    env = {**os.environ, "PYTHONPATH": f"{job_files.root / 'src'}:{site}", "HOME": str(work),
           "SWAMPD_TEST_WORK": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(["runuser", "-u", user, "--", pool.job_python, str(script)], capture_output=True,
                          text=True, env=env, timeout=120, cwd=str(work))
    assert done.returncode == 0, done.stdout + done.stderr
    facts = json.loads(done.stdout.strip().splitlines()[-1])
    say(f"as {user}: {facts}")
    assert facts["advertise"] == "HTCondorException: Failed to advertise to collector."
    assert facts["query"] == "answered"  # the collector is up: it refused, it did not vanish
    # Five state changes in a row: one call to the collector, four skipped by the backoff; then
    # two refresher rounds (which always try): three refusals, counted, and one warning only.
    assert facts["stats"] == {"failed": 3, "refused": 3, "skipped": 4}
    assert facts["warnings"] == 1, facts["log"]
    assert "COLLECTOR.ALLOW_DAEMON" in facts["log"][0]
    log_file = pool.param("COLLECTOR_LOG")
    if log_file and Path(log_file).is_file():  # what the collector says about it
        denied = [line for line in Path(log_file).read_text(errors="replace").splitlines()
                  if f"PERMISSION DENIED to {user}@" in line and "UPDATE_AD_GENERIC" in line]
        assert denied and "DAEMON" in denied[-1]
        say(f"CollectorLog: {denied[-1].strip()}")


#: Run as a user the collector does not authorize: the bindings' own failure, and swampd's publisher.
REFUSED_SCRIPT = r'''
import json, logging, os, sys, time
from pathlib import Path
import classad2, htcondor2

work = Path(os.environ["SWAMPD_TEST_WORK"])
facts = {}
try:
    htcondor2.Collector().advertise([classad2.ClassAd({"MyType": "Generic", "Name": "swampd-refused-probe"})],
                                    "UPDATE_AD_GENERIC", True)
    facts["advertise"] = "accepted"
except Exception as exc:
    facts["advertise"] = f"{type(exc).__name__}: {exc}"
try:
    htcondor2.Collector().query(htcondor2.AdType.Collector, "true", ["Name"])
    facts["query"] = "answered"
except Exception as exc:
    facts["query"] = f"{type(exc).__name__}: {exc}"

from swampd.agentmonitor.ads import AdPublisher
from swampd.config import HTCondorConfig
from swampd.states import ViewerState
from swampd.store import Store, ViewerRecord

records = []
class Capture(logging.Handler):
    def emit(self, record):
        if record.levelno >= logging.WARNING:
            records.append(record.getMessage())
logging.getLogger("swampd").addHandler(Capture())
logging.getLogger("swampd").setLevel(logging.INFO)

store = Store(work / "registry.sqlite3")
publisher = AdPublisher(store, htcondor2.Collector(), HTCondorConfig(advertise=True, ad_lifetime=60, ad_refresh=30))
viewer = ViewerRecord(projectid="p-refused", viewer="CodeDX", epoch=1, launch_id="a" * 32, token="t" * 40,
                      apikey="k", url_uuid="proxy-x", state=int(ViewerState.READY), userid="u", viewer_uuid="vi")
for _ in range(5):
    publisher.publish([viewer])
for _ in range(2):
    publisher.publish([viewer], due=True)
facts["stats"] = dict(publisher.stats)
facts["warnings"] = len(records)
facts["log"] = records
print(json.dumps(facts))
'''


def test_an_assessment_runs_cppcheck_in_a_vanilla_job_and_its_results_are_stored(
        pool: Pool, make_pool_daemon: Callable[..., PoolDaemon], request: pytest.FixtureRequest) -> None:
    from support.assess import package_archive

    packages = pool.private_dir("swampd-pool-packages-")
    request.addfinalizer(lambda: shutil.rmtree(packages, ignore_errors=True))
    daemon = make_pool_daemon(start=False, assessments={"platform": "process", "max_concurrent": 2,
                                                        "collect_timeout": 120, "package_roots": [str(packages)]})
    archive = package_archive(packages)
    if pool.as_root:
        uid, gid = pool.submit_ids()
        os.chown(archive, uid, gid)
    daemon.start()
    started = time.monotonic()
    run = daemon.api.assess({"package_path": str(archive), "tool": "cppcheck", "package_name": "hello-c",
                             "package_version": "2.1", "package_type": "C/C++"})
    execrunid = run["execrunid"]

    def ended() -> dict[str, Any] | None:
        now = daemon.api.getRun(execrunid)
        return now if now["state_name"] in ("FINISHED", "FAILED", "TERMINATED") else None

    try:
        done = wait_until(ended, START_TIMEOUT + 120, f"{execrunid} to end")
    except AssertionError:
        say(f"daemon log:\n{daemon.log()[-4000:]}")
        raise
    history = daemon.api.runHistory(execrunid)
    say(f"{execrunid}: assess -> {done['state_name']} in {elapsed(started)}s; statuses: "
        + " | ".join(h["status"] for h in history))
    assert done["state_name"] == "FINISHED", done
    assert done["weaknesses"] >= 2 and Path(done["files"]["scarf"]).is_file()
    statuses = [h["status"] for h in history]
    assert "Waiting in HTCondor Queue" in statuses and "Performing assessment" in statuses
    [gone] = wait_until(lambda: pool.schedd().history(f'SwampdKey == "{execrunid}"', [
        "JobStatus", "ExitCode", "SWAMP_arun_execrunuid", "ViewerJob", "AcctGroup"], match=5), 60,
        "the job in the history")
    assert gone["JobStatus"] == 4 and gone["ExitCode"] == 0, gone
    assert gone["SWAMP_arun_execrunuid"] == execrunid and gone["ViewerJob"] is False
    assert jobs_of(pool, execrunid) == []
