"""The daemon's threads share one CPU; the jobs it starts get every CPU it may use.

The daemon is one Python process: its threads take turns holding the
interpreter lock, and a thread that blocks for a moment (a registry commit,
a file, a socket) hands the lock over.  With the threads spread over several
CPUs, every hand-over wakes a thread on another CPU and the lock bounces
between caches.  In a burst of 500 local viewer launches on 2 cores (median
of 3 runs of each): 3.85 s of daemon CPU with the threads free to move, 2.38 s
with all of them on one CPU, and every viewer READY after 4.03 s against
2.57 s.  The threads gain little from a second CPU, since only one of them
runs Python at a time.

So ``swampd serve`` puts its threads on one CPU before it starts any
(threads inherit it), and a job command never keeps that CPU alone: the
daemon starts one from a thread that holds every CPU for the moment of the
start (``for_a_child``; a child takes its affinity from the thread that
starts it), and the host agent widens each command it starts to every CPU
right after (``widen``), which spares its thread two moves between CPUs.  ``[agentmonitor] one_cpu = false`` turns
this off.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Iterator

log = logging.getLogger(__name__)

#: What the daemon may use (set when it pins itself), and the one CPU its threads run on.
_everything: frozenset[int] | None = None
_one: frozenset[int] | None = None
_lock = threading.Lock()
#: Listings of a command's threads at most while widening them (each round widens the new ones).
WIDEN_ROUNDS = 50


def pin_to_one_cpu(last: bool = True) -> int | None:
    """Put the calling thread (and every thread it starts later) on one of its CPUs, the last one
    (the daemon's) or the first (its host agent's); the CPU, or None when there is nothing to gain
    (one CPU) or the system does not allow it."""
    global _everything, _one
    try:
        allowed = frozenset(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if len(allowed) < 2:
        return None
    # The first CPU is the one most often busy with interrupts: the daemon takes the last.
    cpu = max(allowed) if last else min(allowed)
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError as exc:
        log.warning("cannot keep the daemon's threads on one CPU: %s", exc)
        return None
    with _lock:
        _everything, _one = allowed, frozenset({cpu})
    return cpu


def pinned() -> frozenset[int] | None:
    """The CPU the daemon's threads are kept on, None when they are not kept on one."""
    return _one


def widen(pid: int) -> None:
    """Give every thread of a process this one just started every CPU the daemon may use.

    The host agent starts its commands from its one CPU and widens them just
    after (``for_a_child`` moved the starting thread to every CPU and back,
    and in a burst those two moves cost the agent about a tenth of its CPU).
    A thread takes its mask from its maker when it is made, so the threads are
    listed again after each round until a listing shows none not widened yet:
    a thread made by a not-yet-widened maker between a listing and the
    maker's widening is caught by the next listing, and one made later takes
    the widened mask.  (Commands just exec'd have one thread: two listings.)
    """
    everything = _everything
    if everything is None:
        return
    widened: set[str] = set()
    for _ in range(WIDEN_ROUNDS):
        try:
            tids = set(os.listdir(f"/proc/{pid}/task"))
        except OSError:  # gone already, or no /proc: nothing to widen
            return
        if tids <= widened:
            return
        for tid in tids - widened:
            try:
                os.sched_setaffinity(int(tid), everything)
            except (OSError, ValueError):  # the thread ended meanwhile, or the CPUs allowed changed
                pass
        widened |= tids
    log.warning("pid %d makes threads faster than they can be widened: some may keep one CPU", pid)


@contextlib.contextmanager
def for_a_child() -> Iterator[None]:
    """Around starting a process: the calling thread has every CPU the daemon may use, so that the
    child starts with all of them (not the daemon's one); the thread goes back to its CPU after."""
    everything, one = _everything, _one
    if everything is None or one is None:
        yield
        return
    try:
        os.sched_setaffinity(0, everything)
    except OSError as exc:  # the CPUs allowed changed under us (a cpuset): start it anyway
        log.warning("cannot give a job every CPU (%s); it starts on the daemon's", exc)
    try:
        yield
    finally:
        try:
            os.sched_setaffinity(0, one)
        except OSError as exc:
            log.warning("cannot put a thread back on the daemon's CPU: %s", exc)
