import threading
import time

from swampd.agentmonitor.workqueue import WorkQueue


def test_duplicate_adds_collapse():
    q = WorkQueue()
    q.add("a"); q.add("a"); q.add("b")
    assert len(q) == 2


def test_key_is_never_given_to_two_workers():
    q = WorkQueue()
    q.add("k")
    assert q.get() == "k"
    q.add("k")  # while held: marked dirty, not queued
    assert len(q) == 0
    q.done("k")
    assert q.get() == "k"


def test_concurrent_workers_never_overlap_on_a_key():
    q = WorkQueue()
    active, overlaps, handled = set(), [], []
    lock = threading.Lock()

    def worker():
        while (key := q.get()) is not None:
            with lock:
                if key in active:
                    overlaps.append(key)
                active.add(key)
            time.sleep(0.001)
            with lock:
                active.discard(key)
                handled.append(key)
            q.done(key)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(500):
        q.add(i % 5)
    time.sleep(0.5)
    q.close()
    for t in threads:
        t.join(5)
    assert not overlaps and handled


def test_add_after_delivers_later():
    q = WorkQueue()
    q.add_after("x", 0.2)
    start = time.monotonic()
    assert q.get() == "x"
    assert time.monotonic() - start >= 0.15


def test_close_releases_waiters():
    q = WorkQueue()
    result = []
    t = threading.Thread(target=lambda: result.append(q.get()))
    t.start()
    q.close()
    t.join(2)
    assert result == [None]


def test_a_key_is_scheduled_once_at_its_earliest_time():
    """Deadline wakeups are set on every look at a run: they must not pile up."""
    q = WorkQueue()
    for _ in range(1000):
        q.add_after("x", 100)
    assert len(q._delayed) == 1
    q.add_after("x", 0.05)  # an earlier time supersedes the later one
    assert q.get() == "x"
    q.done("x")
    assert q._scheduled == {}


def test_an_addition_the_worker_has_seen_needs_no_second_turn():
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get() == "a"
    q.add("a")           # reported while the worker held it...
    q.seen("a")          # ...and the worker then read the state afresh
    q.done("a")
    assert len(q) == 0
    q.add("a")
    assert q.get() == "a"
    q.seen("a")
    q.add("a")           # reported after the worker's read: it gets another turn
    q.done("a")
    assert len(q) == 1 and q.get() == "a"


def test_seen_does_nothing_for_a_key_no_worker_holds():
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    q.seen("a")
    assert len(q) == 1
