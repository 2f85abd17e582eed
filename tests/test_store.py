"""The registry: claims are compare-and-set across threads and processes; one transition function."""
import ast
import multiprocessing
import os
import stat
import threading
from pathlib import Path

import pytest

from swampd.states import ViewerState
from swampd.store import Store, ViewerRecord


def claim(store: Store, project: str) -> bool:
    """A minimal launch claim: the service's compare-and-set, stripped to its core."""
    with store.transaction() as tx:
        rec = tx.get_viewer(project, "CodeDX") or ViewerRecord(projectid=project, viewer="CodeDX")
        if rec.state != 0:
            return False
        rec.epoch += 1
        tx.transition(rec, int(ViewerState.LAUNCHING), "Launching viewer", "test")
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
            tx.transition(ViewerRecord(projectid="p", viewer="CodeDX"), 1, "Launching", "test")
            raise RuntimeError("crash mid-transaction")
    except RuntimeError:
        pass
    assert store.get_viewer("p", "CodeDX") is None
    assert store.list_runs() == []


def test_a_transition_records_old_state_new_state_reason_and_source(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    claim(store, "p")
    with store.transaction() as tx:
        rec = tx.get_viewer("p", "CodeDX")
        tx.transition(rec, int(ViewerState.READY), "Viewer is up", "node", "event VIEWERUP")
    first, second = store.history(rec.id)
    assert (first.from_state, first.state, first.source) == (None, 1, "test")
    assert (second.from_state, second.state, second.status, second.source, second.reason) == (
        1, 2, "Viewer is up", "node", "event VIEWERUP")


def test_saving_once_writes_the_run_once_with_every_transitions_history(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    claim(store, "p")
    statements: list[str] = []
    with store.transaction() as tx:
        rec = tx.get_viewer("p", "CodeDX")
        tx._conn.set_trace_callback(statements.append)
        with tx.saving_once(rec):
            tx.transition(rec, int(ViewerState.LAUNCHING), "Starting viewer run script", "node", "event RUNSHSTART")
            rec.vmip = "127.0.0.1:4000"
            tx.transition(rec, int(ViewerState.READY), "Viewer is up", "node", "event VIEWERUP")
        tx._conn.set_trace_callback(None)
    assert sum(s.startswith("UPDATE runs") for s in statements) == 1
    saved = store.get_viewer("p", "CodeDX")
    assert (saved.state, saved.status, saved.vmip) == (int(ViewerState.READY), "Viewer is up", "127.0.0.1:4000")
    assert [h.status for h in store.history(rec.id)][-2:] == ["Starting viewer run script", "Viewer is up"]


def test_a_detail_row_is_written_only_when_it_differs_from_what_the_transaction_saw(tmp_path):
    """A submit or a status report changes the run's row only: its viewer row was written again
    unchanged (five viewer_runs writes per launch, three of them the same row)."""
    store = Store(tmp_path / "r.sqlite3")
    claim(store, "p")
    outside = store.get_viewer("p", "CodeDX")  # read before the transaction: not known to it
    statements: list[str] = []
    with store.transaction() as tx:
        tx._conn.set_trace_callback(statements.append)
        rec = tx.get_viewer("p", "CodeDX")
        tx.transition(rec, int(ViewerState.LAUNCHING), "Waiting for the viewer machine", "launchpad")
        assert sum("viewer_runs" in s for s in statements if not s.startswith("SELECT")) == 0
        rec.vmip = "127.0.0.1:4000"
        tx.put_run(rec)
        tx.put_run(rec)  # what it just wrote: not again
        assert sum(s.startswith("INSERT OR REPLACE INTO viewer_runs") for s in statements) == 1
        outside.url = "http://elsewhere/"
        tx.put_run(outside)  # a record this transaction did not read is always written whole
        assert sum(s.startswith("INSERT OR REPLACE INTO viewer_runs") for s in statements) == 2
        tx._conn.set_trace_callback(None)
    saved = store.get_viewer("p", "CodeDX")
    assert (saved.vmip, saved.url) == ("", "http://elsewhere/")  # the last write stands, whole
    with pytest.raises(RuntimeError):  # a rolled-back write is not taken for written by the next one
        with store.transaction() as tx:
            rec = tx.get_viewer("p", "CodeDX")
            rec.vmip = "127.0.0.1:5000"
            tx.put_run(rec)
            raise RuntimeError("rolled back")
    with store.transaction() as tx:
        rec = tx.get_viewer("p", "CodeDX")
        rec.vmip = "127.0.0.1:5000"
        tx.put_run(rec)
    assert store.get_viewer("p", "CodeDX").vmip == "127.0.0.1:5000"


def test_saving_once_saves_nothing_when_the_block_fails(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    claim(store, "p")
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            rec = tx.get_viewer("p", "CodeDX")
            with tx.saving_once(rec):
                tx.transition(rec, int(ViewerState.READY), "Viewer is up", "node")
                raise RuntimeError("a report that cannot be applied")
    assert store.get_viewer("p", "CodeDX").state == int(ViewerState.LAUNCHING)
    with store.transaction() as tx:  # the transaction holds nothing back afterwards
        rec = tx.get_viewer("p", "CodeDX")
        tx.transition(rec, int(ViewerState.READY), "Viewer is up", "node")
    assert store.get_viewer("p", "CodeDX").state == int(ViewerState.READY)


def test_change_effects_ride_along_every_state_change_of_their_kind(tmp_path):
    store = Store(tmp_path / "r.sqlite3", change_effects={"vrun": ("advertise",), "arun": ("status",)})
    claim(store, "p")
    assert sorted(item.effect for item in store.pending_outbox()) == ["advertise", "submit"]


def test_outbox_retry_and_complete(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    claim(store, "p")
    run_id = store.get_viewer("p", "CodeDX").id
    (item,) = store.outbox_of(run_id)
    assert item.next_at == 0 and item.attempts == 0
    with store.transaction() as tx:
        tx.retry_later(item.id, "boom", next_at=1e12 + 10)
    (again,) = store.outbox_of(run_id)
    assert (again.id, again.attempts, again.last_error, again.next_at) == (item.id, 1, "boom", 1e12 + 10)
    with store.transaction() as tx:
        tx.retry_later(item.id, "still waiting", next_at=1e12 + 20, count=False)
    assert store.outbox_of(run_id)[0].attempts == 1  # a wait is not a failure
    with store.transaction() as tx:
        tx.complete(again.id)
    assert store.pending_outbox() == []


def test_ids_of_launches_filters_by_launch_and_state(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    ids = []
    with store.transaction() as tx:
        for n, state in enumerate((-5, 2, -7)):
            record = ViewerRecord(projectid=f"p{n}", viewer="CodeDX", launch_id=f"L{n}")
            tx.transition(record, state, "", "test")
            ids.append(record.id)
    ended = {"vrun": {-5, -7}}
    assert sorted(store.ids_of_launches({"L0", "L1", "L2", "nope"}, ended)) == [ids[0], ids[2]]
    many = {f"x{i}" for i in range(1200)} | {"L0"}
    assert store.ids_of_launches(many, ended) == [ids[0]]


def test_earlier_launches_keep_their_tokens(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    with store.transaction() as tx:
        record = ViewerRecord(projectid="p", viewer="CodeDX")
        for epoch in (1, 2):
            record.epoch, record.launch_id, record.token = epoch, f"L{epoch}", f"token-{epoch}"
            tx.transition(record, 1, "Launching", "test")
            tx.record_launch(record)
        tx.set_job(record, "7.0", 123.0)
    assert [(l.epoch, l.token, l.job_ref) for l in store.launches(record.id)] == [
        (1, "token-1", ""), (2, "token-2", "7.0")]


def test_a_symlink_planted_as_the_registry_is_refused_and_its_target_untouched(tmp_path):
    target = tmp_path / "precious"
    target.write_text("root's file")
    os.chmod(target, 0o644)
    (tmp_path / "r.sqlite3").symlink_to(target)
    try:
        Store(tmp_path / "r.sqlite3")
    except OSError:
        pass
    else:
        raise AssertionError("a symlinked registry was opened")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 and target.read_text() == "root's file"


def test_only_the_transition_function_assigns_a_state():
    """Every state change goes through Transaction.transition: no other code in src assigns one
    (any ``x.state = ...``, ``x.state += ...``, ``setattr(x, "state", ...)``, found in the syntax tree)."""
    src = Path(__file__).resolve().parents[1] / "src" / "swampd"
    offenders = []
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = [t for target in node.targets for t in ast.walk(target)]
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                targets = [node.target]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr"
                  and len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and node.args[1].value == "state"):
                offenders.append(f"{path.relative_to(src)}:{node.lineno}: setattr")
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "state":
                    offenders.append(f"{path.relative_to(src)}:{node.lineno}: {ast.unparse(node)}")
    assert len(offenders) == 1 and offenders[0].startswith("store/database.py:"), offenders
    assert offenders[0].endswith("record.state = int(state)")


def test_one_writer_connection_serves_every_thread_and_a_failed_transaction_leaves_it_usable(tmp_path):
    """Every write transaction of the process uses one connection (its page cache stays valid
    between commits); a thread reads its own open transaction's changes, others do not, and a
    transaction rolled back in one thread leaves the connection clean for the next."""
    store = Store(tmp_path / "registry.sqlite3")
    seen_elsewhere: list[str] = []
    with store.transaction() as tx:
        tx.set_meta("mine", "1")
        assert store.meta("mine") == "1"
        reader = threading.Thread(target=lambda: seen_elsewhere.append(store.meta("mine")))
        reader.start()
        reader.join()
    assert seen_elsewhere == [""]
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.set_meta("lost", "1")
            raise RuntimeError("changed its mind")

    def write_elsewhere() -> None:
        with store.transaction() as tx:
            tx.set_meta("other", "2")

    writer = threading.Thread(target=write_elsewhere)
    writer.start()
    writer.join()
    assert (store.meta("lost"), store.meta("other"), store.meta("mine")) == ("", "2", "1")


def _recording_syncs(monkeypatch, gate: threading.Event | None = None) -> list[str]:
    """Record (and optionally hold) every fdatasync the store makes, by file name."""
    from swampd.store import database

    synced: list[str] = []
    real = database.os.fdatasync

    def fdatasync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        if gate is not None:
            gate.wait(10)
        real(fd)

    monkeypatch.setattr(database.os, "fdatasync", fdatasync)
    return synced


def test_a_durable_commit_returns_only_once_the_wal_is_synced(tmp_path, monkeypatch):
    store = Store(tmp_path / "registry.sqlite3")
    synced = _recording_syncs(monkeypatch)
    with store.transaction(durable=False) as tx:
        tx.set_meta("on the way", "1")
    assert synced == []
    with store.transaction() as tx:
        tx.set_meta("told to a caller", "1")
    assert synced == [str(tmp_path / "registry.sqlite3-wal")]


def test_durable_commits_share_syncs_and_other_writers_do_not_wait_for_them(tmp_path, monkeypatch):
    """Group commit: while one sync runs, other commits go on; the next sync covers them all."""
    store = Store(tmp_path / "registry.sqlite3")
    gate = threading.Event()
    synced = _recording_syncs(monkeypatch, gate)

    def durable(name: str) -> None:
        with store.transaction() as tx:
            tx.set_meta(name, "1")

    first = threading.Thread(target=durable, args=("first",))
    first.start()
    wait = 0
    while not synced and wait < 200:  # the first sync is under way (and held)
        threading.Event().wait(0.01)
        wait += 1
    assert len(synced) == 1
    with store.transaction(durable=False) as tx:  # not held up by the sync in flight
        tx.set_meta("meanwhile", "1")
    others = [threading.Thread(target=durable, args=(f"other-{i}",)) for i in range(8)]
    for thread in others:
        thread.start()
    wait = 0
    while not all(store.meta(f"other-{i}") == "1" for i in range(8)) and wait < 500:
        threading.Event().wait(0.01)  # all eight committed, and wait for the disk
        wait += 1
    assert all(thread.is_alive() for thread in others)  # none returned before its commit was on disk
    gate.set()
    for thread in [first, *others]:
        thread.join(10)
    assert store.meta("first") == "1"
    assert len(synced) == 2  # the eight waited together behind the first sync, and one more served them all


def test_an_outbox_read_empty_is_not_read_again_until_an_item_is_added(tmp_path):
    store = Store(tmp_path / "r.sqlite3")
    claim(store, "p")
    rec = store.get_viewer("p", "CodeDX")
    (item,) = store.outbox_of(rec.id)
    with store.transaction() as tx:
        tx.complete(item.id)
    statements: list[str] = []
    assert store.outbox_of(rec.id) == []
    store._conn.set_trace_callback(statements.append)
    assert store.outbox_of(rec.id) == [] and statements == []  # known empty: SQLite not asked
    before = store.outbox_generation(rec.id)
    with pytest.raises(RuntimeError):
        with store.transaction() as tx:
            tx.enqueue(rec, "remove")
            raise RuntimeError("rolled back")
    assert store.outbox_generation(rec.id) == before and store.outbox_of(rec.id) == []
    with store.transaction() as tx:
        tx.enqueue(rec, "remove")
    assert store.outbox_generation(rec.id) == before + 1
    assert [i.effect for i in store.outbox_of(rec.id)] == ["remove"]
    store._conn.set_trace_callback(None)
    store.OUTBOX_MEMORY = 0  # past the bound both counts start again, and nothing is taken as empty
    with store.transaction() as tx:
        tx.enqueue(rec, "forget")
    assert [i.effect for i in store.outbox_of(rec.id)] == ["remove", "forget"]
