"""The change feed: waiters answered on commit, or with None when their time is up."""
from __future__ import annotations

import threading
import time

from swampd.agentmonitor.changes import ChangeFeed


def test_a_short_wait_after_a_long_one_still_ends_on_time() -> None:
    """The timer sleeps until the earliest end; a wait that ends earlier must wake it."""
    feed = ChangeFeed()
    long = feed.watch(1, lambda: None, 60)
    time.sleep(0.1)  # the timer now sleeps until the long wait's end
    short = feed.watch(2, lambda: None, 0.2)
    got: list[object] = []
    done = threading.Event()
    short.then(lambda value: (got.append(value), done.set()))
    assert done.wait(5), "the short wait did not end"
    assert got == [None] and not long.done


def test_a_change_answers_its_waiter_and_wakes_version_waiters() -> None:
    feed = ChangeFeed()
    state = {"ready": False}
    waiter = feed.watch(7, lambda: "READY" if state["ready"] else None, 60)
    seen: list[int] = []
    t = threading.Thread(target=lambda: seen.append(feed.wait_version(feed.version, 10)))
    t.start()
    time.sleep(0.05)
    feed.publish({8})  # another run: not this waiter's news
    t.join(5)
    assert seen == [1] and not waiter.done
    state["ready"] = True
    feed.publish({7})
    assert waiter.done
    answers: list[object] = []
    waiter.then(answers.append)
    assert answers == ["READY"] and feed.waiting() == 0


def test_a_change_published_while_a_waiter_registers_is_not_missed_and_none_costs_no_second_read() -> None:
    feed = ChangeFeed()
    reads: list[int] = []

    def check_racing() -> str | None:
        reads.append(1)
        if len(reads) == 1:  # the change commits right after this first read, before the watcher is in
            feed.publish({7})
            return None
        return "READY"

    racing = feed.watch(7, check_racing, 60)
    assert racing.done and len(reads) == 2
    quiet_reads: list[int] = []
    quiet = feed.watch(8, lambda: quiet_reads.append(1), 60)
    assert not quiet.done and quiet_reads == [1]  # nothing published meanwhile: one read
    feed.publish({8})
    assert quiet_reads == [1, 1]


def test_a_caller_that_checked_already_is_not_read_again_unless_something_was_published() -> None:
    feed = ChangeFeed()
    reads: list[int] = []
    seen = feed.version
    quiet = feed.watch(3, lambda: reads.append(1), 60, checked=(seen, None))
    assert reads == [] and not quiet.done
    seen = feed.version
    feed.publish({9})  # between the caller's read and its watch
    late = feed.watch(4, lambda: "READY", 60, checked=(seen, None))
    assert late.done
