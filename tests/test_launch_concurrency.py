"""Invariant 1: one viewer per (project, viewer), whatever the number of concurrent callers."""
from __future__ import annotations

import multiprocessing
import threading
import time
import urllib.request

from support.daemon import wait_for

CLIENT_PROCESSES = 8
CALLS_PER_PROCESS = 25


def _client(url: str, barrier_at: float, out) -> None:
    """One client process: 25 concurrent launches, then wait for READY like a caller would."""
    from swampd.clients.rpc import connect

    replies: list[dict] = []
    lock = threading.Lock()

    def one() -> None:
        time.sleep(max(0.0, barrier_at - time.time()))
        reply = connect(url, timeout=60).agentMonitor.launchViewer({"projectid": "proj-1", "viewer": "CodeDX"})
        with lock:
            replies.append(reply)

    threads = [threading.Thread(target=one) for _ in range(CALLS_PER_PROCESS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    api = connect(url, timeout=60).agentMonitor
    deadline = time.time() + 60
    seen = api.getViewer("proj-1", "CodeDX")
    while seen["state"] != 2 and time.time() < deadline:
        time.sleep(0.2)
        seen = api.getViewer("proj-1", "CodeDX")
    out.put(([(r["execrunid"], r["launched"], r["epoch"]) for r in replies], seen["state"], seen["url"]))


def test_200_concurrent_launches_from_8_processes_start_one_viewer(daemon):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start_at = time.time() + 1.0
    procs = [ctx.Process(target=_client, args=(daemon.url, start_at, out)) for _ in range(CLIENT_PROCESSES)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(10)

    replies = [r for rs, _, _ in results for r in rs]
    assert len(replies) == CLIENT_PROCESSES * CALLS_PER_PROCESS
    assert {execrunid for execrunid, _, _ in replies} == {"vrun_proj-1_CodeDX"}
    assert sum(1 for _, launched, _ in replies if launched) == 1
    assert {epoch for _, _, epoch in replies} == {1}
    # Every caller sees the one viewer once it is READY, at the same URL.
    assert {state for _, state, _ in results} == {2}
    urls = {url for _, _, url in results}
    assert len(urls) == 1
    (url,) = urls
    assert urllib.request.urlopen(url, timeout=10).status == 200
    # Exactly one job and one viewer process were started.
    assert len(list(daemon.jobs_dir().iterdir())) == 1
    assert len(daemon.viewer_pids()) == 1
    record = daemon.api.getViewer("proj-1", "CodeDX")
    assert record["epoch"] == 1


def test_different_projects_launch_independently(daemon):
    api = daemon.api
    for project in ("a", "b", "c"):
        assert api.launchViewer({"projectid": project, "viewer": "CodeDX"})["launched"] is True
    wait_for(lambda: all(api.getViewer(p, "CodeDX")["state"] == 2 for p in "abc"), 60, what="three viewers READY")
    assert len(daemon.viewer_pids()) == 3
    assert {v["projectid"] for v in api.listViewers()} == {"a", "b", "c"}
