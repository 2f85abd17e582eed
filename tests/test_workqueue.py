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


def test_waiting_workers_are_woken_only_for_a_sooner_look_and_miss_none():
    """A deadline hours away wakes no waiting worker (every READY viewer schedules one); one sooner
    than what the workers wait for wakes one, and later ones still come in their turn."""
    q = WorkQueue()
    got: list[tuple[str, float]] = []
    start = time.monotonic()

    def work() -> None:
        while (key := q.get()) is not None:
            got.append((key, time.monotonic() - start))
            q.done(key)

    workers = [threading.Thread(target=work, daemon=True) for _ in range(2)]
    for w in workers:
        w.start()
    try:
        _wake_only_for_sooner(q, got)
    finally:
        q.close()
        for w in workers:
            w.join(2)
    assert [key for key, _ in got] == ["soon", "after"]
    assert got[0][1] < got[1][1] < 5


def _wake_only_for_sooner(q: WorkQueue, got: list[tuple[str, float]]) -> None:
    q.add_after("hours", 3600)
    time.sleep(0.1)  # the workers wait for it now
    wakeups = []
    real_notify = q._cond.notify
    q._cond.notify = lambda n=1: (wakeups.append(n), real_notify(n))  # type: ignore[method-assign]
    for n in range(100):
        q.add_after(f"later-{n}", 3601 + n)
    assert wakeups == []
    q.add_after("soon", 0.1)
    q.add_after("after", 0.3)  # behind "soon": whoever wakes for "soon" waits for it next
    assert wakeups == [1]
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
