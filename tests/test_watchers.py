"""The host agent's exit watcher: every watched process's end is reported once, however soon it comes."""
from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from swampd.vruntask.watchers import ExitWatcher


@pytest.fixture
def watcher():
    w = ExitWatcher()
    yield w
    w.close()


def ends(watcher: ExitWatcher, proc: subprocess.Popen[bytes], child: bool = True) -> list[int | None]:
    seen: list[int | None] = []
    done = threading.Event()
    assert watcher.watch(proc.pid, lambda code: (seen.append(code), done.set()), child)
    assert done.wait(10)
    return seen


def test_a_childs_exit_status_and_a_signal_are_reported(watcher: ExitWatcher) -> None:
    assert ends(watcher, subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])) == [3]
    killed = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    threading.Timer(0.2, killed.kill).start()
    assert ends(watcher, killed) == [-9]


def test_a_process_that_ended_before_it_was_watched_is_reported_at_once(watcher: ExitWatcher) -> None:
    proc = subprocess.Popen(["true"])
    while subprocess.run(["ps", "-o", "stat=", "-p", str(proc.pid)], capture_output=True,
                         text=True).stdout.strip() not in ("Z", "Z+"):
        pass  # a zombie: ended, not yet reaped
    assert ends(watcher, proc) == [0]


def test_not_our_child_has_no_status_and_a_gone_one_is_not_watched(watcher: ExitWatcher) -> None:
    proc = subprocess.Popen(["true"])
    assert ends(watcher, proc, child=False) == [None]
    proc.wait()
    assert watcher.watch(proc.pid, lambda code: None, True) is False


def test_many_at_once_each_reported_once(watcher: ExitWatcher) -> None:
    seen: list[int] = []
    lock, done = threading.Lock(), threading.Event()

    def mark(pid: int):  # type: ignore[no-untyped-def]
        def on_exit(code: int | None) -> None:
            with lock:
                seen.append(pid)
                if len(seen) == 50:
                    done.set()
        return on_exit
    procs = [subprocess.Popen(["true"]) for _ in range(50)]
    threads = [threading.Thread(target=watcher.watch, args=(p.pid, mark(p.pid), True)) for p in procs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert done.wait(10)
    assert sorted(seen) == sorted(p.pid for p in procs)
