"""SCARF -> nativereport.json for 1k, 100k and 1M BugInstances, beside a bare iterparse pass.

Each size is generated once (tests/support/scarf.py, the same generator the
bounded-memory test uses), then converted by the real program
(``launchviewer --viewer_name Native``, which also writes the HTML page) and,
in the same run, read by a bare ``xml.etree.ElementTree.iterparse`` loop that
clears each bug (the least any Python reader of the file must do).  Each runs
in its own process, which reports its peak RSS (VmHWM).  Figures: seconds,
peak RSS, MB/s of SCARF input, and the conversion/iterparse time ratio.
``BENCH_NATIVE_SIZES=1000,100000`` picks other sizes.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import ROOT
from support.scarf import generate_scarf

SIZES = [int(n) for n in os.environ.get("BENCH_NATIVE_SIZES", "1000,100000,1000000").split(",")]
SRC = ROOT / "src"
HWM = "sys.stderr.write([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
CONVERT = "import sys\nfrom swampd.cli.launchviewer import main\nrc = main(sys.argv[1:])\n" + HWM + "sys.exit(rc)\n"
ITERPARSE = ("import sys\nfrom xml.etree.ElementTree import iterparse\nn = 0\nroot = None\n"
             "for event, el in iterparse(sys.argv[1], events=('start', 'end')):\n"
             "    if root is None:\n        root = el\n"
             "    elif event == 'end' and el.tag == 'BugInstance':\n        n += 1\n        root.clear()\n"
             "print(n)\n" + HWM)


def timed(argv: list[str]) -> tuple[float, int, str]:
    """Seconds, peak RSS (bytes) and stdout of one program run."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env={"PYTHONPATH": str(SRC)})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {done.stdout}{done.stderr}")
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", done.stderr).group(1)) * 1024  # type: ignore[union-attr]
    return seconds, peak, done.stdout


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="swampd-bench-native-"))
    print(f"{'bugs':>9} {'SCARF MB':>9} | {'convert s':>9} {'peak MB':>8} {'MB/s':>6} | "
          f"{'iterparse s':>11} {'peak MB':>8} {'MB/s':>6} | {'ratio':>5}")
    try:
        for count in SIZES:
            scarf = generate_scarf(work / f"scarf-{count}.xml", count)
            mb = scarf.stat().st_size / 1e6
            out = work / f"out-{count}"
            conv_s, conv_rss, stdout = timed([sys.executable, "-c", CONVERT, "--viewer_name", "Native",
                                              "--results_type", "results", "--file_path", str(scarf),
                                              "--outdir", str(out), "--tool_name", "cppcheck"])
            assert stdout == "nativereport.json\n", stdout
            bare_s, bare_rss, counted = timed([sys.executable, "-c", ITERPARSE, str(scarf)])
            assert int(counted) == count, counted
            print(f"{count:>9,} {mb:>9.1f} | {conv_s:>9.2f} {conv_rss / 1e6:>8.1f} {mb / conv_s:>6.1f} | "
                  f"{bare_s:>11.2f} {bare_rss / 1e6:>8.1f} {mb / bare_s:>6.1f} | {conv_s / bare_s:>5.2f}",
                  flush=True)
            scarf.unlink()
            for path in sorted(out.rglob("*"), reverse=True):
                path.rmdir() if path.is_dir() else path.unlink()
    finally:
        for path in sorted(work.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
