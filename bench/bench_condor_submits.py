"""N assessment runs submitted through the HTCondor double: submits per second, schedd calls per resync.

swampd's real service, reconciler, admission, effects and HTCondor scheduler
run in-process on the schedd double (``tests/condor_double.py``, built on the
real ``htcondor2.Submit``), driven the way the daemon's threads drive them:
a resync (the bulk query), then every queued run processed.  It prints:

* baseline: the same submit description handed to the double's ``submit``
  N times by a bare loop (measured in the same run): the schedd side alone;
* swampd: runs accepted per second, and from the first resync until every
  run is SUBMITTED with its job in the queue, submits per second and the
  ratio to the baseline;
* schedd calls made by each resync (``query`` must stay 1 whatever N is),
  and the calls each submit makes.

    .venv/bin/python bench/bench_condor_submits.py [N]
"""
from __future__ import annotations

import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import htcondor2  # noqa: E402
from condor_double import ScheddDouble  # noqa: E402
from htcondor_world import World  # noqa: E402
from support.assess import package_archive  # noqa: E402

from swampd.agentmonitor.assessments import AssessRequest  # noqa: E402
from swampd.config import AssessmentsConfig  # noqa: E402
from swampd.lifecycle.assessment import AssessmentState  # noqa: E402


def drain(world: World) -> None:
    """Every queued run processed, and the slow effects they started finished."""
    while len(world.reconciler.queue) or world.reconciler.effects.busy():
        while len(world.reconciler.queue):
            run_id = world.reconciler.queue.get()
            assert run_id is not None
            world.reconciler.process(run_id)
            world.reconciler.queue.done(run_id)
        world.wait_slow_effects(timeout=600)


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 10000
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        packages = root / "packages"
        packages.mkdir()
        package = str(package_archive(packages))
        world = World(root, assessments=AssessmentsConfig(max_concurrent=0, package_roots=(str(packages),)))
        sent: list[dict[str, str]] = []
        real_submit = world.schedd.submit

        def recording_submit(description, count=0, **kwargs):  # type: ignore[no-untyped-def]
            if not sent:
                sent.append(dict(description))
            return real_submit(description, count, **kwargs)

        world.schedd.submit = recording_submit  # type: ignore[method-assign]
        start = time.perf_counter()
        for _ in range(n):
            world.runs.assess(AssessRequest(package, "cppcheck"))
        accepted = time.perf_counter() - start
        per_resync: list[Counter[str]] = []
        submits_before = Counter(world.schedd.calls)
        start = time.perf_counter()
        while True:
            before = Counter(world.schedd.calls)
            world.reconciler.resync()
            per_resync.append(Counter(world.schedd.calls) - before)
            drain(world)
            world.clock.advance(1.0)
            if world.store.count_runs(("arun",), {int(AssessmentState.SUBMITTED)}) == n:
                break
        submitted = time.perf_counter() - start
        calls = Counter(world.schedd.calls) - submits_before
        for c in per_resync:
            calls -= c
        in_queue = len(world.swampd_jobs())
        world.close()

        bare_schedd = ScheddDouble()
        desc = sent[0]  # swampd's own description of the first run
        start = time.perf_counter()
        for _ in range(n):
            bare_schedd.submit(htcondor2.Submit(dict(desc)), count=1)
        bare = time.perf_counter() - start
    print(f"{n} assessment runs through swampd's HTCondor scheduler on the schedd double")
    print(f"baseline: bare htcondor2.Submit + schedd.submit loop   {n / bare:9.0f} submits/s")
    print(f"swampd: accepted (assess)                              {n / accepted:9.0f} runs/s")
    print(f"swampd: submitted (resync, prepare, admit, submit)     {n / submitted:9.0f} submits/s"
          f"  ratio {bare / submitted:.2f} of the baseline's rate")
    print(f"resyncs: {len(per_resync)}; schedd calls per resync: "
          + ", ".join(f"{dict(c) or '{}'}" for c in per_resync[:5]) + (" ..." if len(per_resync) > 5 else ""))
    print(f"schedd calls per submit: " + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(calls.items())))
    print(f"jobs in the queue: {in_queue}")
    worst = max(c.get("query", 0) for c in per_resync)
    return 0 if worst == 1 and in_queue == n else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
