"""The host agent in a process of its own (issue 10): one per daemon, replaced when it dies, gone
with the daemon; its viewers never unaccounted for.  And the link it talks over."""
from __future__ import annotations

import os
import signal
import socket
import threading
import urllib.request
import xmlrpc.client
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import pytest

from support.daemon import Daemon, host_agents, is_alive, parent_of, wait_for
from swampd.vruntask.hostlink import MAX_MESSAGE, Link, LinkDown, RemoteError, pair


def all_stopped(pid: int) -> bool:
    """Every thread of ``pid`` is stopped (state T): a signal's stop takes effect thread by thread."""
    states = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            states.append((task / "stat").read_text().rsplit(")", 1)[1].split()[0])
        except (OSError, IndexError):
            continue
    return bool(states) and all(state in ("T", "t") for state in states)


def launch_ready(daemon: Daemon, project: str) -> dict[str, Any]:
    daemon.api.launchViewer({"projectid": project, "viewer": "CodeDX"})
    ready = daemon.api.waitViewer(project, "CodeDX", "READY", 60)
    assert ready["state_name"] == "READY", ready
    return ready


def test_one_host_agent_process_starts_every_viewer(daemon: Daemon) -> None:
    urls = [launch_ready(daemon, f"one-{i}")["url"] for i in range(3)]
    [agent] = host_agents(daemon)
    viewers = daemon.viewer_pids()
    assert len(viewers) == 3
    assert all(parent_of(pid) == agent for pid in viewers)  # none is the daemon's own child
    assert all(urllib.request.urlopen(url, timeout=10).status == 200 for url in urls)


def test_a_killed_host_agent_is_replaced_and_its_viewers_stay_managed(daemon: Daemon) -> None:
    urls = {f"kept-{i}": launch_ready(daemon, f"kept-{i}")["url"] for i in range(3)}
    viewers = set(daemon.viewer_pids())
    [first] = host_agents(daemon)
    os.kill(first, signal.SIGKILL)
    [second] = wait_for(lambda: [p for p in host_agents(daemon) if p != first] or None, 30,
                        what="a new host agent")
    assert daemon.proc.poll() is None
    # The viewers kept running and serving; the API kept answering.
    assert set(daemon.viewer_pids()) == viewers
    assert all(urllib.request.urlopen(url, timeout=10).status == 200 for url in urls.values())
    assert {v["projectid"] for v in daemon.api.listViewers()} == set(urls)
    # The new agent starts new viewers and manages the old ones: a stop ends one, its end is seen.
    launch_ready(daemon, "after")
    daemon.api.stopViewer("kept-0", "CodeDX")
    assert daemon.api.waitViewer("kept-0", "CodeDX", "TERMINATED", 60)["state_name"] == "TERMINATED"
    wait_for(lambda: len(daemon.viewer_pids()) == 3, 30, what="the stopped viewer to be gone")
    [victim] = [pid for pid in daemon.viewer_pids() if parent_of(pid) != second][:1] or [None]
    if victim is not None:  # an adopted viewer that dies by itself is seen at once
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: len(daemon.viewer_pids()) == 2, 30, what="the killed viewer to be gone")
        wait_for(lambda: sum(v["state_name"] == "READY" for v in daemon.api.listViewers()) == 2, 30,
                 what="its end to be reported")
    assert "exited with status -9; starting another" in daemon.log()
    assert host_agent_starts(daemon) == {"first": 1.0, "replaced": 1.0}


def host_agent_starts(daemon: Daemon) -> dict[str, float]:
    """``swampd_host_agent_starts_total`` by why, as /metrics shows it."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(daemon.url + "metrics", timeout=10) as response:
        text = response.read().decode()
    return {sample.labels["why"]: sample.value for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == "swampd_host_agent_starts_total"}


def test_the_host_agent_leaves_with_the_daemon_and_the_next_one_adopts(daemon: Daemon) -> None:
    ready = launch_ready(daemon, "outlives")
    [agent] = host_agents(daemon)
    viewers = daemon.viewer_pids()
    daemon.kill9()
    wait_for(lambda: not is_alive(agent), 10, what="the host agent to leave with the daemon")
    assert urllib.request.urlopen(ready["url"], timeout=10).status == 200  # the viewer did not
    daemon.start()
    assert len(host_agents(daemon)) == 1
    assert daemon.viewer_pids() == viewers
    daemon.api.stopViewer("outlives", "CodeDX")
    assert daemon.api.waitViewer("outlives", "CodeDX", "TERMINATED", 60)["state_name"] == "TERMINATED"
    wait_for(lambda: not daemon.viewer_pids(), 30, what="the viewer to be gone")


def test_a_burst_survives_the_host_agent_dying_in_the_middle(daemon: Daemon) -> None:
    """Thirty launches at once; the agent is killed while they start: every one ends READY, with
    exactly one command each, and no job is left without its process."""
    names = [f"burst-{i:02d}" for i in range(30)]
    [first] = host_agents(daemon)

    def launch(name: str) -> None:
        daemon.api.launchViewer({"projectid": name, "viewer": "CodeDX"})  # a connection of its own

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(launch, name) for name in names]
        wait_for(lambda: len(daemon.viewer_pids()) >= 5, 60, what="a few viewers started")
        os.kill(first, signal.SIGKILL)
        for future in futures:
            future.result()
    for name in names:
        assert daemon.api.waitViewer(name, "CodeDX", "READY", 90)["state_name"] == "READY", name
    assert len(daemon.viewer_pids()) == 30
    assert len(list(daemon.jobs_dir().iterdir())) == 30
    assert len({v["url"] for v in daemon.api.listViewers()}) == 30


# -- the link ---------------------------------------------------------------------------------


@pytest.fixture
def linked() -> Any:
    """Two ends of a link: ``a`` answers with its handler's results, ``b`` echoes."""
    made: list[Link] = []

    def make(handler_a: Callable[..., Any], handler_b: Callable[..., Any]) -> tuple[Link, Link]:
        one, two = pair()
        a, b = Link(one, handler_a, "a").start(), Link(two, handler_b, "b").start()
        made.extend([a, b])
        return a, b

    yield make
    for link in made:
        link.close()


def test_calls_go_both_ways_and_a_descriptor_crosses_with_one(linked: Any, tmp_path: Path) -> None:
    seen: list[str] = []

    def reads_the_descriptor(op: str, args: list[Any], fds: list[int]) -> Any:
        [fd] = fds
        with os.fdopen(fd, "r") as handed:
            return [op, args, handed.read()]

    a, b = linked(lambda op, args, fds: seen.append(op) or "a's answer", reads_the_descriptor)
    path = tmp_path / "handed"
    path.write_text("through SCM_RIGHTS")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert a.call("read", [1, "two"], (fd,)) == ["read", [1, "two"], "through SCM_RIGHTS"]
    finally:
        os.close(fd)
    assert b.call("hello", []) == "a's answer" and seen == ["hello"]


def test_messages_received_into_one_buffer_come_out_whole_with_their_descriptors(tmp_path: Path) -> None:
    from swampd.vruntask.hostlink import _receive

    one, two = pair()
    buffer = bytearray(MAX_MESSAGE)
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        socket.send_fds(one, [b"x" * 5000], [fd])
        one.send(b"short")
        size, fds, flags = _receive(two, buffer)
        assert (size, bytes(buffer[:size]), len(fds), flags) == (5000, b"x" * 5000, 1, 0)
        assert os.path.samestat(os.fstat(fds[0]), os.fstat(fd))
        os.close(fds[0])
        size, fds, flags = _receive(two, buffer)
        assert (bytes(buffer[:size]), fds, flags) == (b"short", [], 0)  # nothing left over from the longer one
    finally:
        os.close(fd)
        one.close()
        two.close()


def test_failures_come_back_as_what_they_were(linked: Any) -> None:
    def fails(op: str, args: list[Any], fds: list[int]) -> Any:
        if op == "fault":
            raise xmlrpc.client.Fault(3, "stale launch")
        raise KeyError(op)

    a, _ = linked(lambda *_: None, fails)
    with pytest.raises(xmlrpc.client.Fault) as fault:
        a.call("fault", [])
    assert fault.value.faultCode == 3
    with pytest.raises(RemoteError) as other:
        a.call("other", [])
    assert other.value.kind == "KeyError"


def test_a_call_waiting_when_the_other_side_goes_fails_with_link_down(linked: Any) -> None:
    release = threading.Event()
    a, b = linked(lambda *_: None, lambda *_: release.wait(10))
    result: list[BaseException] = []
    waiter = threading.Thread(target=lambda: result.append(_raises(lambda: a.call("slow", []))))
    waiter.start()
    wait_for(lambda: a._pending or None, 5, what="the call to be in flight")
    b.sock.shutdown(socket.SHUT_RDWR)  # the other side dies
    waiter.join(10)
    release.set()
    assert isinstance(result[0], LinkDown)
    assert a.wait_down(5)
    with pytest.raises(LinkDown):
        a.call("after", [])


def test_an_oversized_message_is_refused_and_the_link_keeps_working(linked: Any) -> None:
    a, _ = linked(lambda *_: None, lambda op, args, fds: len(args[0]))
    with pytest.raises(ValueError):
        a.call("big", ["x" * (MAX_MESSAGE + 1)])
    assert a.call("small", ["x" * 1000]) == 1000


def test_garbage_on_the_link_is_dropped_and_the_link_keeps_working(linked: Any) -> None:
    a, b = linked(lambda *_: None, lambda op, args, fds: op)
    a.sock.send(b"\xff not json")
    a.sock.send(b'"a string that says re"')  # JSON, but not a message
    assert a.call("still", []) == "still"


def _raises(action: Callable[[], Any]) -> BaseException | None:
    try:
        action()
    except BaseException as exc:  # noqa: BLE001 - the test looks at what it was
        return exc
    return None


def test_a_call_left_unanswered_times_out(linked: Any) -> None:
    release = threading.Event()
    a, _ = linked(lambda *_: None, lambda *_: release.wait(10))
    with pytest.raises(TimeoutError):
        a.call("slow", [], timeout=0.2)
    release.set()
    assert not a._pending  # the late answer finds nobody waiting, and harms nothing


def test_a_hung_host_agent_is_killed_and_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    from swampd.vruntask import hostprocess

    host = hostprocess.HostProcess(stop_grace=1.0, allow_root_jobs=True, one_cpu=False)
    restarts: list[int] = []
    host.on_restart = lambda: restarts.append(host.pid)
    try:
        assert host.count() == 0  # up (its start may take more than a second on a busy host)
        monkeypatch.setattr(hostprocess, "ANSWER_WITHIN", 1.0)
        first = host.pid
        os.kill(first, signal.SIGSTOP)  # alive, holding the link open, answering nothing
        wait_for(lambda: all_stopped(first), 10, 0.01, "every thread of the agent to be stopped")
        with pytest.raises(LinkDown):
            host.count()
        wait_for(lambda: restarts, 30, what="a new host agent")
        assert restarts[0] != first and not is_alive(first)
        monkeypatch.undo()  # the new agent too may take more than a second to come up
        assert host.count() == 0
    finally:
        host.close()


def test_a_start_waits_until_the_new_agent_has_taken_over_the_old_ones_jobs(tmp_path: Path) -> None:
    """A command the dead agent started may not have bound its port yet: the new agent must hold
    that port (adopt) before it gives one to a new job, so starts wait for the takeover."""
    from swampd.vruntask import hostprocess

    host = hostprocess.HostProcess(stop_grace=1.0, allow_root_jobs=True, one_cpu=False)
    taking_over, finish_takeover = threading.Event(), threading.Event()

    def take_over() -> None:
        taking_over.set()
        finish_takeover.wait(30)

    host.on_restart = take_over
    started: list[object] = []
    try:
        os.kill(host.pid, signal.SIGKILL)
        assert taking_over.wait(30)

        def start() -> None:
            fd = os.open(tmp_path / "job.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                started.append(host.start(tmp_path / "no-such-job", "job.bog", "token", fd, {}))
            except Exception as exc:  # the job's files are unusable: the agent's answer is what matters
                started.append(exc)

        caller = threading.Thread(target=start)
        caller.start()
        caller.join(1.0)
        assert caller.is_alive() and not started  # held back while the jobs are handed over
        finish_takeover.set()
        caller.join(30)
        assert started and not isinstance(started[0], LinkDown), started  # the new agent answered
    finally:
        finish_takeover.set()
        host.close()
