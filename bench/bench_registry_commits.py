"""Durable commits from many threads: the registry's group commit beside SQLite syncing each commit.

Each of T threads makes C durable transactions (a run's meta row, as small
as a commit gets, so the sync is what is measured).  The baseline is the
same work on a plain connection per thread with ``synchronous=FULL`` (what
the registry did before: every durable commit synced the WAL inside the
write lock), measured in the same run on the same file system.

    .venv/bin/python bench/bench_registry_commits.py [THREADS] [COMMITS]
"""
from __future__ import annotations

import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

import _harness  # noqa: F401  (puts src/ on the path)
from swampd.store import Store


def baseline(path: Path, threads: int, commits: int) -> float:
    lock = threading.Lock()

    def work(n: int) -> None:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT)")
        for i in range(commits):
            with lock:  # the registry's writers queue on a mutex, as they did
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{n}-{i}", "x"))
                conn.execute("COMMIT")
        conn.close()

    return timed(work, threads)


def registry(path: Path, threads: int, commits: int) -> float:
    store = Store(path)

    def work(n: int) -> None:
        for i in range(commits):
            with store.transaction() as tx:
                tx.set_meta(f"{n}-{i}", "x")

    try:
        return timed(work, threads)
    finally:
        store.close()


def timed(work, threads: int) -> float:  # type: ignore[no-untyped-def]
    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    threads = int(argv[0]) if argv else 8
    commits = int(argv[1]) if len(argv) > 1 else 100
    root = Path(tempfile.mkdtemp(prefix="bench-commits-"))
    total = threads * commits
    base = baseline(root / "baseline.sqlite3", threads, commits)
    ours = registry(root / "registry.sqlite3", threads, commits)
    print(f"{total} durable commits from {threads} threads ({root})")
    print(f"  baseline: SQLite FULL, a sync per commit:  {base:7.2f} s  {total / base:8.0f} commits/s")
    print(f"  registry: group commit:                    {ours:7.2f} s  {total / ours:8.0f} commits/s "
          f"(ratio {base / ours:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
