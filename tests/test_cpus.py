"""The daemon's threads share one CPU; the commands it starts get every CPU (swampd.cpus)."""
from __future__ import annotations

import os
from typing import Callable

import pytest

from support.daemon import Daemon, host_agents

ALL = set(os.sched_getaffinity(0))


def allowed(pid: int, tid: int | None = None) -> set[int]:
    return set(os.sched_getaffinity(tid if tid is not None else pid))


def threads(pid: int) -> list[int]:
    return [int(t) for t in os.listdir(f"/proc/{pid}/task")]


def launch_one(daemon: Daemon, project: str) -> int:
    daemon.api.launchViewer({"projectid": project, "viewer": "CodeDX"})
    assert daemon.api.waitViewer(project, "CodeDX", "READY", 60)["state_name"] == "READY"
    (pid,) = daemon._job_tree()
    return pid


@pytest.fixture(autouse=True)
def two_cpus() -> None:
    if len(ALL) < 2:
        pytest.skip("needs a machine with at least 2 CPUs (one CPU: the daemon keeps its threads where they are)")


def host_agent(daemon: Daemon) -> int:
    (agent,) = host_agents(daemon)
    return agent


def test_the_daemons_threads_share_one_cpu_and_its_viewer_has_them_all(daemon: Daemon) -> None:
    pid = launch_one(daemon, "cpus")
    assert daemon.proc is not None
    masks = {frozenset(allowed(daemon.proc.pid, tid)) for tid in threads(daemon.proc.pid)}
    assert masks == {frozenset({max(ALL)})}, masks
    assert len(threads(daemon.proc.pid)) > 5  # all of them: the workers, the reconciler, the link...
    # The host agent's threads share another CPU (the first), beside the daemon's.
    agent = host_agent(daemon)
    assert {frozenset(allowed(agent, tid)) for tid in threads(agent)} == {frozenset({min(ALL)})}
    assert len(threads(agent)) > 3  # the link, the prober, the exit watcher...
    assert allowed(pid) == ALL


def test_one_cpu_off_leaves_the_threads_free(make_daemon: Callable[..., Daemon]) -> None:
    daemon = make_daemon(agentmonitor={"one_cpu": False})
    pid = launch_one(daemon, "free")
    assert daemon.proc is not None
    for process in (daemon.proc.pid, host_agent(daemon)):
        assert {frozenset(allowed(process, tid)) for tid in threads(process)} == {frozenset(ALL)}
    assert allowed(pid) == ALL


def test_a_thread_starting_a_child_holds_every_cpu_for_that_moment_only() -> None:
    from swampd import cpus

    seen: list[set[int]] = []
    before = set(os.sched_getaffinity(0))
    try:
        assert cpus.pin_to_one_cpu() == max(ALL)
        assert allowed(0) == {max(ALL)}
        with cpus.for_a_child():
            seen.append(allowed(0))
        assert allowed(0) == {max(ALL)}
    finally:
        os.sched_setaffinity(0, before)
        cpus._everything = cpus._one = None
    assert seen == [ALL]


def test_a_command_started_from_the_one_cpu_is_widened_to_every_cpu_with_its_threads() -> None:
    import subprocess
    import sys
    import threading

    from swampd import cpus

    before = set(os.sched_getaffinity(0))
    result: list[object] = []

    def start_pinned() -> None:  # a thread of its own, as the agent's start: pinned, then widened
        try:
            assert cpus.pin_to_one_cpu(last=False) == min(ALL)
            child = subprocess.Popen([sys.executable, "-c", "import threading, time; "
                                      "[threading.Thread(target=time.sleep, args=(30,), daemon=True).start() "
                                      "for _ in range(3)]; time.sleep(30)"])
            try:
                wait = 0
                while len(threads(child.pid)) < 4 and wait < 500:  # its threads exist before the widening
                    threading.Event().wait(0.01)
                    wait += 1
                assert allowed(child.pid) == {min(ALL)}
                cpus.widen(child.pid)
                result.append({frozenset(allowed(child.pid, tid)) for tid in threads(child.pid)})
                result.append(allowed(0))
            finally:
                child.kill()
                child.wait()
        except BaseException as exc:
            result.append(exc)

    thread = threading.Thread(target=start_pinned)
    thread.start()
    thread.join(60)
    os.sched_setaffinity(0, before)
    cpus._everything = cpus._one = None
    assert result[:2] == [{frozenset(ALL)}, {min(ALL)}], result  # every thread widened; the starter stays
    cpus.widen(999999999)  # a process gone already: nothing to do, no error


def test_threads_made_while_a_command_is_widened_are_widened_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """A thread made by a maker not yet widened, between a listing and the maker's widening, keeps the
    maker's one CPU: the threads are listed again until a listing shows no new one."""
    from swampd import cpus

    listings = iter([{"10"}, {"10", "11"}, {"10", "11", "12"}, {"10", "11", "12"}])
    listed: list[int] = []
    widened: list[int] = []

    def listdir(path: str) -> list[str]:
        assert path == "/proc/4242/task"
        listed.append(1)
        return sorted(next(listings))

    monkeypatch.setattr(cpus, "_everything", frozenset(ALL))
    monkeypatch.setattr(cpus.os, "listdir", listdir)
    monkeypatch.setattr(cpus.os, "sched_setaffinity", lambda tid, mask: widened.append(tid))
    cpus.widen(4242)
    assert sorted(widened) == [10, 11, 12] and len(listed) == 4  # each once; the last listing showed none new
