"""Benchmark: ``vruntask run`` start -> READY for the tiny guest, split into prepare / boot / first event / ready.

Runs the real path (daemon, local scheduler, vruntask, libvirt qemu:///system
under TCG) N times and prints the milestones vruntask records in
``out/timings.json`` (seconds from vruntask's start) plus the client-side
launch -> READY time.  Usage: .venv/bin/python bench/bench_vm_boot.py [N]
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "src")]

from guest.build import build_guest  # noqa: E402
from guest.host import LIBVIRT_URI, Tap, destroy_domains_of, ensure_vm_host  # noqa: E402
from support.daemon import Daemon, wait_for  # noqa: E402

MILESTONES = ("prepared", "started", "first_event", "address", "ready", "stopped", "finished")


def one_run(guest, tap, root: Path) -> dict[str, float]:
    viewer = {"platform": "vm", "image": str(guest.platform_image), "domain_type": "qemu",
              "libvirt_uri": LIBVIRT_URI, "network": f"tap:{tap.dev}", "kernel": str(guest.kernel),
              "initrd": str(guest.initrd), "cmdline": guest.cmdline(f"{tap.guest_ip}/{tap.prefix}"),
              "memory": 256, "cpus": 1, "output_disk_mib": 64}
    root.mkdir(parents=True, exist_ok=True)
    daemon = Daemon(root, viewers={"CodeDX": viewer}, scheduler={"stop_grace": 90})
    daemon.start()
    try:
        t0 = time.monotonic()
        daemon.api.launchViewer({"projectid": "bench", "viewer": "CodeDX", "viewer_uuid": "vi-bench"})
        wait_for(lambda: daemon.api.getViewer("bench", "CodeDX")["state"] == 2, 180, 0.05, "READY")
        client_ready = time.monotonic() - t0
        daemon.api.stopViewer("bench", "CodeDX")
        wait_for(lambda: daemon.api.getViewer("bench", "CodeDX")["state"] in (-3, -7), 150, 0.05, "end")
        job = next(p for p in daemon.jobs_dir().iterdir() if p.is_dir())
        wait_for(lambda: "finished" in json.loads((job / "out" / "timings.json").read_text()), 60, 0.1, "finish")
        marks = json.loads((job / "out" / "timings.json").read_text())
        marks["client_launch_to_READY"] = round(client_ready, 3)
        return marks
    finally:
        daemon.cleanup()
        destroy_domains_of(root)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    ensure_vm_host()
    guest = build_guest()
    tap = Tap.create()
    results = []
    try:
        with tempfile.TemporaryDirectory(prefix="swampd-bench-") as tmp:
            for i in range(runs):
                marks = one_run(guest, tap, Path(tmp) / f"run{i}")
                results.append(marks)
                print(f"run {i + 1}: " + ", ".join(f"{k} {v:.2f}s" for k, v in marks.items()))
    finally:
        tap.delete()
    print("\nmedian seconds (from vruntask start unless noted):")
    print(f"  prepare (sandbox + 3 disks)      {statistics.median(r['prepared'] for r in results):6.2f}")
    print(f"  define + start domain            {statistics.median(r['started'] - r['prepared'] for r in results):6.2f}")
    print(f"  boot -> first event (RUNSHSTART) {statistics.median(r['first_event'] - r['started'] for r in results):6.2f}")
    print(f"  first event -> READY (VIEWERUP)  {statistics.median(r['ready'] - r['first_event'] for r in results):6.2f}")
    print(f"  vruntask start -> READY          {statistics.median(r['ready'] for r in results):6.2f}")
    print(f"  launchViewer -> READY (client)   {statistics.median(r['client_launch_to_READY'] for r in results):6.2f}")
    print(f"  stop: ACPI -> powered off+finish {statistics.median(r['finished'] - r['ready'] for r in results):6.2f}"
          " (includes the wait for the stop request)")


if __name__ == "__main__":
    main()
