"""Schedd calls per resync while removed jobs are still vacating, beside none vacating.

A removed vm job on HTCondor keeps running for up to ``job_max_vacate_time``
while its guest shuts down and saves its database.  Before the run core of
issue 8, every resync asked again for such a job to be removed, and every
remove triggered a whole resync.  This runs swampd's real reconciler, store
and HTCondor scheduler against the schedd double (``tests/condor_double.py``)
with N READY viewers, then stops all of them and keeps the jobs in the X
state (removed, still shutting down).  Per resync-and-reconcile cycle it
prints schedd query and history calls, Remove actions and new outbox rows:

* baseline: the same N viewers READY, nothing vacating (measured in the same run);
* vacating: all N stopped, their jobs still leaving.

Both must be one bulk query per cycle, and no Remove after the first.

    .venv/bin/python bench/bench_vacating.py [N]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from htcondor_world import World  # noqa: E402

from swampd.agentmonitor.service import Report  # noqa: E402


def cycle(world: World) -> tuple[int, int, int, int, float]:
    """One resync and a pass over every queued run: (queries, history calls, removes, new rows, seconds)."""
    before = dict(world.schedd.calls)
    removes = sum(1 for a in world.schedd.actions if a[0] == "Remove")
    rows = len(world.store.pending_outbox())
    start = time.perf_counter()
    world.reconciler.resync()
    while len(world.reconciler.queue):
        run_id = world.reconciler.queue.get()
        assert run_id is not None
        world.reconciler.process(run_id)
        world.reconciler.queue.done(run_id)
    world.wait_slow_effects()
    elapsed = time.perf_counter() - start
    world.clock.advance(5)
    return (world.schedd.calls["query"] - before.get("query", 0),
            world.schedd.calls["history"] - before.get("history", 0),
            sum(1 for a in world.schedd.actions if a[0] == "Remove") - removes,
            max(0, len(world.store.pending_outbox()) - rows), elapsed)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 100
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp))
        for i in range(n):
            world.launch(projectid=f"p{i:04d}", viewer_uuid=f"vi-{i}")
        cycle(world)  # submits every job
        for i in range(n):
            record = world.record(f"p{i:04d}")
            world.schedd.start(record.job_ref)
            assert world.service.report(Report(record.execrunid, record.epoch, record.token, event="WROTEIPADDR",
                                               vmip="10.0.0.1:8443"))
            assert world.service.report(Report(record.execrunid, record.epoch, record.token, event="VIEWERUP"))
        cycle(world)
        baseline = [cycle(world) for _ in range(5)]
        for i in range(n):
            world.service.stop(f"p{i:04d}", "CodeDX")
        first = cycle(world)  # the removes happen here
        vacating = [cycle(world) for _ in range(5)]
        removed_in_queue = len(world.schedd.jobs_of("JobStatus == 3"))
        states = {world.record(f"p{i:04d}").viewer_state.name for i in range(n)}
        world.close()
    print(f"{n} viewers on the HTCondor double; per resync-and-reconcile cycle (median of 5):")
    print(f"{'':>28} {'queries':>8} {'history':>8} {'Remove':>7} {'new rows':>9} {'cycle s':>8}")
    for name, runs in (("baseline: none vacating", baseline), ("vacating: all stopped", vacating)):
        q, h, r, rows, s = (sorted(c[k] for c in runs)[len(runs) // 2] for k in range(5))
        print(f"{name:>28} {q:>8} {h:>8} {r:>7} {rows:>9} {s:>8.3f}")
    print(f"the stopping cycle itself: {first[0]} queries, {first[1]} history, {first[2]} Remove "
          f"(one per job), {first[3]} new rows")
    print(f"jobs still vacating in the queue: {removed_in_queue}; viewer states: {sorted(states)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
