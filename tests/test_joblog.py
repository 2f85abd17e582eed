"""The last error line of a job log: what a failed job's viewer status should say.

The logs are written by real processes: a vruntask run that cannot start, a
Python program dying with a traceback (as vruntask did on Python 3.11.2 when
it restored a viewer database with tarfile's filter=), logging at ERROR.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.daemon import SRC
from swampd.joblog import last_error_line

LOG_FORMAT = "%(asctime)s vruntask[%(process)d] %(levelname)s %(message)s"


def run_into_log(log: Path, argv: list[str], cwd: Path) -> int:
    with open(log, "ab") as out:
        return subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, timeout=60,
                              env={"PYTHONPATH": str(SRC)}).returncode


def test_a_vruntask_that_cannot_start_leaves_its_reason(tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    (job / "token").write_text("t")
    (job / "x.bog").write_text("execrunid = vrun_p_CodeDX\n")
    log = job / "vruntask.log"
    code = run_into_log(log, [sys.executable, "-m", "swampd.cli.vruntask_main", "run", "--job-dir", str(job),
                              "--bog", "x.bog", "--token-file", "token"], job)
    assert code != 0
    assert last_error_line(log) == "BOG has no swampd_epoch"


def test_the_last_line_of_a_traceback_is_the_reason(tmp_path):
    log = tmp_path / "vruntask.log"
    program = (f"import logging\nlogging.basicConfig(level=logging.INFO, format={LOG_FORMAT!r})\n"
               "logging.getLogger('x').info('restoring the viewer database')\n"
               "def restore():\n    raise TypeError(\"extractall() got an unexpected keyword argument 'filter'\")\n"
               "restore()\n")
    assert run_into_log(log, [sys.executable, "-c", program], tmp_path) == 1
    assert "Traceback (most recent call last):" in log.read_text()
    assert last_error_line(log) == "TypeError: extractall() got an unexpected keyword argument 'filter'"


def test_error_records_win_over_later_info_and_none_without_errors(tmp_path):
    log = tmp_path / "vruntask.log"
    program = (f"import logging\nlogging.basicConfig(level=logging.INFO, format={LOG_FORMAT!r})\n"
               "log = logging.getLogger('x')\nlog.info('viewer command started')\n"
               "log.error('viewer exited with status 3 before it was up')\nlog.info('reporting VIEWERDOWN')\n")
    assert run_into_log(log, [sys.executable, "-c", program], tmp_path) == 0
    assert last_error_line(log) == "viewer exited with status 3 before it was up"
    quiet = tmp_path / "quiet.log"
    quiet.write_text("2024-01-01 00:00:00,000 vruntask[1] INFO all good\n")
    assert last_error_line(quiet) is None
    assert last_error_line(tmp_path / "missing.log") is None


def test_only_the_tail_of_a_huge_log_is_read_and_odd_bytes_are_fine(tmp_path):
    log = tmp_path / "vruntask.log"
    with open(log, "wb") as fh:
        fh.write(b"2024-01-01 00:00:00,000 vruntask[1] ERROR an old error\n")
        fh.write(b"2024-01-01 00:00:00,000 vruntask[1] INFO filler line\n" * 200_000)  # ~10 MB
        fh.write(b"vruntask: cannot read the report token: Permission denied \xff\xfe\n")
    assert last_error_line(log) == "cannot read the report token: Permission denied \ufffd\ufffd"
    with open(log, "ab") as fh:
        fh.write(b"2024-01-01 00:00:00,000 vruntask[1] ERROR " + b"x" * 1000 + b"\n")
    line = last_error_line(log)
    assert line is not None and len(line) == 300 and line.endswith("...")
