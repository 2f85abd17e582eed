"""Schedd calls per resync and the time of one resync, with 1, 100 and 10,000 tracked viewers.

Runs swampd's real reconciler, store and HTCondor scheduler against the
schedd double of ``tests/condor_double.py`` (real ``htcondor2.Submit`` and
``classad2``).  Every viewer is READY with a submitted job; 1% of the jobs
have left the queue (so the history path is exercised).  Reported per N:

* schedd ``query`` and ``history`` calls per resync (must not grow with N);
* the time of one ``Reconciler.resync()`` (the bulk query, history, and the
  scan of the registry that queues the keys), and how much of it the double
  itself spent answering the query (a real schedd's time is its own);
* the time of a full pass that then reconciles every queued key once;
* the baseline, measured in the same run: SWAMP's way, one ``condor_q``-style
  query per viewer (N queries per round), up to 1,000 viewers (at 10,000 it
  is 10,000 queries over 10,000 jobs each, and is not waited for).

    .venv/bin/python bench/bench_resync_scale.py [N ...]
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import htcondor2  # noqa: E402

from htcondor_world import World  # noqa: E402

from swampd.launchpad.schedulers.htcondor import PROJECTION, launch_constraint  # noqa: E402
from swampd.launchpad.submit_description import build_submit  # noqa: E402
from swampd.launchpad.viewer_job import viewer_job  # noqa: E402
from swampd.states import ViewerState  # noqa: E402
from swampd.store import ViewerRecord  # noqa: E402


def populate(world: World, n: int) -> None:
    """N READY viewers, each with a job in the schedd double (1% already gone to history)."""
    now = world.clock()
    records = []
    for i in range(n):
        project = f"p{i:05d}"
        launch_id = f"{i:032x}"
        record = ViewerRecord(projectid=project, viewer="CodeDX", epoch=1, launch_id=launch_id,
                              token="t", apikey="k", url_uuid=f"proxy-{i}", state=int(ViewerState.READY),
                              status="Viewer is up", desired="running", userid=f"u{i}", viewer_uuid=f"vi{i}",
                              vmip="10.0.0.1", launched_at=now, ready_at=now, last_request_at=now,
                              submitted_at=now - 10)
        job = viewer_job(record, world.viewers["CodeDXLibvirt"], Path("/srv/swampd/jobs"))
        result = world.schedd.submit(htcondor2.Submit(build_submit(job, world.condor)), count=1)
        record.job_ref = f"{result.cluster()}.0"
        world.schedd.start(record.job_ref)
        if n >= 100 and i % 100 == 0:
            world.schedd.complete(record.job_ref)
        records.append(record)
    with world.store.transaction() as tx:
        for record in records:
            tx.put_run(record)


def measure(n: int, rounds: int = 3) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        world = World(Path(tmp))
        populate(world, n)
        world.clock.advance(30)
        query_times: list[float] = []
        original_query = world.schedd.query

        def timed_query(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            try:
                return original_query(*args, **kwargs)
            finally:
                query_times.append(time.perf_counter() - start)

        world.schedd.query = timed_query  # type: ignore[method-assign]
        resync_times, calls = [], []
        for _ in range(rounds):
            world.schedd.calls.clear()
            query_times.clear()
            start = time.perf_counter()
            world.reconciler.resync()
            resync_times.append(time.perf_counter() - start)
            calls.append((world.schedd.calls["query"], world.schedd.calls["history"], sum(query_times)))
            world.clock.advance(5)
        pass_start = time.perf_counter()
        world.reconciler.resync()
        keys = 0
        while len(world.reconciler.queue):
            run_id = world.reconciler.queue.get()
            assert run_id is not None
            world.reconciler.process(run_id)
            world.reconciler.queue.done(run_id)
            keys += 1
        full_pass = time.perf_counter() - pass_start
        baseline_s, baseline_queries = float("nan"), n
        if n <= 1000:
            world.schedd.query = original_query  # type: ignore[method-assign]
            records = world.store.list_viewers()
            world.schedd.calls.clear()
            start = time.perf_counter()
            for record in records:
                world.schedd.query(launch_constraint(record.launch_id, record.execrunid), PROJECTION)
            baseline_s = time.perf_counter() - start
            baseline_queries = world.schedd.calls["query"]
        world.close()
    first = calls[0]
    return {
        "n": n,
        "queries_first": first[0], "history_first": first[1],
        "queries_steady": calls[-1][0], "history_steady": calls[-1][1],
        "resync_s": statistics.median(resync_times),
        "double_query_s": statistics.median(c[2] for c in calls),
        "full_pass_s": full_pass, "keys": keys,
        "baseline_queries": baseline_queries, "baseline_s": baseline_s,
    }


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [1, 100, 10_000]
    print(f"{'viewers':>8} {'query/resync':>13} {'history/resync':>15} {'resync s':>9} "
          f"{'(double) s':>10} {'full pass s':>11} {'keys':>6} | {'baseline queries':>16} {'baseline s':>10}")
    for n in sizes:
        r = measure(n)
        print(f"{r['n']:>8} {r['queries_first']:>6}/{r['queries_steady']:<6} {r['history_first']:>7}/"
              f"{r['history_steady']:<7} {r['resync_s']:>9.3f} {r['double_query_s']:>10.3f} "
              f"{r['full_pass_s']:>11.2f} {r['keys']:>6} | {r['baseline_queries']:>16} {r['baseline_s']:>10.3f}")
    print("query/resync and history/resync: first resync / later resyncs "
          "(history is asked once per job that left the queue, then remembered)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
