"""Schema migrations: one step per version, applied in place at start.

``migrate(conn, found)`` brings a registry of schema version ``found`` up to
the current one inside the caller's write transaction, so a crash half-way
leaves the old version intact.  Each step is a module ``v<N>_to_v<N+1>``
with a ``step(conn)`` function; it may assume the tables of version N exist
exactly as that release wrote them.
"""
from __future__ import annotations

import sqlite3
from typing import Callable

from swampd.store.migrations import v1_to_v2

#: from-version -> the step that produces from-version + 1.
STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {1: v1_to_v2.step}


class MigrationError(RuntimeError):
    """The registry cannot be brought to this release's schema."""


def migrate(conn: sqlite3.Connection, found: int, target: int) -> list[int]:
    """Apply the steps from ``found`` to ``target``; returns the versions passed through."""
    if found > target:
        raise MigrationError(
            f"registry schema version {found} is newer than this swampd's ({target}); "
            "it was written by a newer release: run that release, or restore a backup made for this one")
    passed = []
    while found < target:
        step = STEPS.get(found)
        if step is None:
            raise MigrationError(f"no migration from registry schema version {found}")
        step(conn)
        found += 1
        passed.append(found)
    return passed
