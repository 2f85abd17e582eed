"""A trivial assessment tool for the benchmarks: one weakness, SWAMP's out/ layout, no analysis.

``python bench/trivial_tool.py OUT_DIR BUILD_DIR`` writes status.out and
parsed_results.tar.gz + .conf (a SCARF file with one BugInstance), so that
what a benchmark measures is swampd's own cost per run, not a tool's.
"""
from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from swampd.results.scarfwriter import Bug, ScarfWriter  # noqa: E402
from swampd.tools.framework import StatusOut, archive_dir  # noqa: E402


def main(out_dir: Path, build: Path) -> int:
    log = StatusOut(out_dir)
    log.note("begin")
    task = log.task("parse-results")
    parsed = build / "parsed_results"
    parsed.mkdir(parents=True, exist_ok=True)
    header = {"tool_name": "trivial", "tool_version": "1", "uuid": str(uuid.uuid4()),
              "assessment_start_ts": f"{time.time():.6f}"}
    with open(parsed / "parsed_results.xml", "w", encoding="utf-8") as fh:
        writer = ScarfWriter(fh, header)
        writer.bug(Bug("always one", code="trivial", group="style", severity="style"))
        writer.close()
    (parsed / "weaknesses.txt").write_text("weaknesses: 1\n", encoding="utf-8")
    archive_dir(build, "parsed_results", out_dir, {
        "parsed-results-archive": "parsed_results.tar.gz", "parsed-results-dir": "parsed_results",
        "parsed-results-file": "parsed_results.xml", "scarf-file": "parsed_results.xml", "weaknesses": "1"})
    task.passed("weaknesses: 1")
    log.record("PASS", "all", seconds=0.0)
    log.note("end")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
