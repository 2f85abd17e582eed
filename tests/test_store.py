"""The registry: claims are compare-and-set across threads and processes."""
import multiprocessing
import os
import stat
import threading

from swampd.states import ViewerState
from swampd.store import Store, ViewerRecord


def claim(store: Store, project: str) -> bool:
    """A minimal launch claim: the service's compare-and-set, stripped to its core."""
    with store.transaction() as tx:
        rec = tx.get_viewer(project, "CodeDX") or ViewerRecord(project, "CodeDX", f"vrun_{project}_CodeDX")
        if rec.state != 0:
            return False
        rec.epoch += 1
        rec.state = int(ViewerState.LAUNCHING)
        tx.record_change(rec, "test")
        tx.enqueue(rec, "submit")
        return True


def test_registry_file_is_private(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600


def test_concurrent_threads_claim_once(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    wins = []
    threads = [threading.Thread(target=lambda: wins.append(claim(store, "p"))) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wins.count(True) == 1
    assert store.get_viewer("p", "CodeDX").epoch == 1
    assert len(store.pending_outbox()) == 1


def _claim_in_process(path: str, results) -> None:
    results.put(claim(Store(path), "p"))


def test_concurrent_processes_claim_once(tmp_path):
    path = str(tmp_path / "r.sqlite3")
    Store(path)
    results = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=_claim_in_process, args=(path, results)) for _ in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    outcomes = [results.get(timeout=5) for _ in procs]
    assert outcomes.count(True) == 1


def test_failed_transaction_changes_nothing(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    try:
        with store.transaction() as tx:
            tx.record_change(ViewerRecord("p", "CodeDX", "vrun_p_CodeDX", state=1), "test")
            raise RuntimeError("crash mid-transaction")
    except RuntimeError:
        pass
    assert store.get_viewer("p", "CodeDX") is None
    assert store.history("p", "CodeDX") == []


def test_change_effects_ride_along_every_state_change(tmp_path):
    store = Store(tmp_path / "r.sqlite3", change_effects=("advertise",))
    claim(store, "p")
    kinds = sorted(item.kind for item in store.pending_outbox())
    assert kinds == ["advertise", "submit"]


def test_outbox_retry_and_complete(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    claim(store, "p")
    (item,) = store.outbox_of("p", "CodeDX")
    assert item.next_at == 0 and item.attempts == 0
    with store.transaction() as tx:
        tx.retry_later(item.id, "boom", next_at=1e12 + 10)
    (again,) = store.outbox_of("p", "CodeDX")
    assert (again.id, again.attempts, again.last_error, again.next_at) == (item.id, 1, "boom", 1e12 + 10)
    with store.transaction() as tx:
        tx.complete(again.id)
    assert store.pending_outbox() == []


def test_keys_of_launches_filters_by_launch_and_state(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    with store.transaction() as tx:
        for n, state in enumerate((-5, 2, -7)):
            tx.put_viewer(ViewerRecord(f"p{n}", "CodeDX", f"vrun_p{n}_CodeDX", launch_id=f"L{n}", state=state))
    ended = {-5, -7}
    assert sorted(store.keys_of_launches({"L0", "L1", "L2", "nope"}, ended)) == [("p0", "CodeDX"), ("p2", "CodeDX")]
    many = {f"x{i}" for i in range(1200)} | {"L0"}
    assert store.keys_of_launches(many, ended) == [("p0", "CodeDX")]
