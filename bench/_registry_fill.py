"""Fill a daemon's registry with N runs before it starts (for the operator-page benchmarks).

Runs are spread over the ended viewer states (and, with ``live``, a share
in READY without a job, which the reconciler will end), each with a
history of four changes; one run in twenty has an outbox row pending that
is not due for a day, so the outbox summary has something to count while
the reconciler stays idle.
"""
from __future__ import annotations

import random
import time
from pathlib import Path

from swampd.store import Store, ViewerRecord

ENDED = (-7, -7, -7, -3, -5)  # TERMINATED, SHUTDOWN, ERROR


def fill(state_dir: Path, runs: int) -> None:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = Store(state_dir / "registry.sqlite3")
    rng = random.Random(13)
    now = time.time()
    with store.transaction() as tx:
        for n in range(runs):
            record = ViewerRecord(projectid=f"{n:08x}-0000-4000-8000-{rng.getrandbits(48):012x}", viewer="CodeDX",
                                  epoch=1 + n % 3, launch_id=f"{rng.getrandbits(128):032x}",
                                  token="t" * 43, launched_at=now - rng.uniform(60, 86400))
            tx.transition(record, 1, "Launching viewer", "api", f"launch {record.launch_id}")
            tx.transition(record, 1, "Waiting for the viewer machine", "launchpad", "submitted job")
            tx.transition(record, 2, "Viewer is up", "node", "event VIEWERUP")
            final = ENDED[n % len(ENDED)]
            tx.transition(record, final, "Terminated" if final == -7 else "Viewer job ended", "reconciler")
            if n % 20 == 0:
                item = tx.enqueue(record, "advertise", {"state": final})
                tx.retry_later(item, "collector not answering (benchmark)", now + 86400)
    store.close()
