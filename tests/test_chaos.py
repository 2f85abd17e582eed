"""Chaos: kill -9 the daemon at random moments while clients launch and stop viewers.

Bounded (about a minute).  Four client processes launch and stop six keys
at random; a killer SIGKILLs the daemon every one to three seconds and
starts it again on the same state dir.  Throughout, at most one job per key
holds its liveness lock (read from /proc/locks, which does not touch the
locks).  At the end every key is READY or has ended with a reason within its
deadlines, epochs only grew, and no process is left for a key that ended.
"""
from __future__ import annotations

import multiprocessing
import os
import random
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, Callable

from support.daemon import Daemon, wait_for

KEYS = [f"chaos-{n}" for n in range(6)]
CLIENTS = 4
CHAOS_SECONDS = 30.0
READY_TIMEOUT = 20
ENDED = {"NO_RECORD", "SHUTDOWN", "ERROR", "TERMINATED", "TERMINATE_FAILED"}


def client(url: str, seed: int, until: float, seen: Any) -> None:
    """Launch and stop keys at random until ``until``; report (key, epoch) pairs it was given."""
    rng = random.Random(seed)
    while time.time() < until:
        key = rng.choice(KEYS)
        try:
            api = xmlrpc.client.ServerProxy(url, allow_none=False).agentMonitor
            if rng.random() < 0.6:
                struct = api.launchViewer({"projectid": key, "viewer": "CodeDX"})
            else:
                struct = api.stopViewer(key, "CodeDX")
            seen.put((seed, key, struct["epoch"]))
        except (OSError, xmlrpc.client.ProtocolError, xmlrpc.client.Fault):
            pass  # the daemon is down or restarting
        time.sleep(rng.uniform(0.01, 0.2))


def locked_inodes() -> set[int]:
    """Inodes that hold a flock right now, without taking any lock ourselves."""
    inodes = set()
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK":
            inodes.add(int(parts[5].split(":")[-1]))
    return inodes


def live_jobs_by_key(daemon: Daemon) -> dict[str, list[str]]:
    """Key -> launch ids whose job lock is held (a live job)."""
    held = locked_inodes()
    live: dict[str, list[str]] = {}
    for job_dir in daemon.jobs_dir().iterdir() if daemon.jobs_dir().exists() else ():
        try:
            inode = (job_dir / "job.lock").stat().st_ino
        except OSError:
            continue
        bogs = list(job_dir.glob("*.bog"))
        if inode in held and bogs:
            key = bogs[0].name.removesuffix(".bog").removeprefix("vrun_").removesuffix("_CodeDX")
            live.setdefault(key, []).append(job_dir.name)
    return live


def test_kill9_at_random_moments_never_gives_two_viewers_and_every_key_settles(
        make_daemon: Callable[..., Daemon]) -> None:
    daemon = make_daemon(viewers={"CodeDX": {
        "command": ["busybox", "httpd", "-f", "-p", "127.0.0.1:{port}", "-h", "{sandbox}"],
        "ready_timeout": READY_TIMEOUT}})
    ctx = multiprocessing.get_context("spawn")
    seen = ctx.Queue()
    until = time.time() + CHAOS_SECONDS
    clients = [ctx.Process(target=client, args=(daemon.url, n, until, seen)) for n in range(CLIENTS)]
    for proc in clients:
        proc.start()
    rng = random.Random(1234)
    kills = 0
    violations: list[str] = []
    try:
        next_kill = time.time() + rng.uniform(1, 3)
        while time.time() < until:
            for key, jobs in live_jobs_by_key(daemon).items():
                if len(jobs) > 1:
                    violations.append(f"{key}: {jobs}")
            if time.time() >= next_kill:
                daemon.kill9()
                kills += 1
                daemon.start()
                next_kill = time.time() + rng.uniform(1, 3)
            time.sleep(0.05)
    finally:
        for proc in clients:
            proc.join(30)
    assert kills >= 5
    assert violations == [], violations[:5]

    deadline = READY_TIMEOUT + 60

    def settled() -> dict[str, dict[str, Any]] | None:
        structs = {key: daemon.api.getViewer(key, "CodeDX") for key in KEYS}
        done = all(s["state_name"] == "READY" or s["state_name"] in ENDED for s in structs.values())
        return structs if done else None

    structs = wait_for(settled, deadline, interval=0.5, what="every key READY or ended")
    for key, struct in structs.items():
        if struct["state_name"] != "NO_RECORD":
            assert struct["status"], f"{key} ended without a reason"
    wait_for(lambda: all(len(j) <= 1 for j in live_jobs_by_key(daemon).values()), 10)

    # Epochs only grow: in the history, and as each client saw them.
    for key in KEYS:
        epochs = [h["epoch"] for h in daemon.api.viewerHistory(key, "CodeDX")]
        assert epochs == sorted(epochs), (key, epochs)
    by_client: dict[tuple[int, str], list[int]] = {}
    while not seen.empty():
        seed, key, epoch = seen.get()
        by_client.setdefault((seed, key), []).append(epoch)
    for (seed, key), epochs in by_client.items():
        assert epochs == sorted(epochs), (seed, key, epochs)

    # No process is left for a key that ended; a READY key has exactly one.
    def processes_match() -> bool:
        live = live_jobs_by_key(daemon)
        current = {key: daemon.api.getViewer(key, "CodeDX")["state_name"] for key in KEYS}
        return all((len(live.get(key, [])) == 1) if state == "READY" else not live.get(key)
                   for key, state in current.items() if state == "READY" or state in ENDED)

    wait_for(processes_match, 30, interval=0.5, what="one process per READY key and none for ended keys")
    assert os.path.isdir(daemon.jobs_dir())
