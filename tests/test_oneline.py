"""Every line a database procedure reads is at most 99 bytes and a newline (return_string VARCHAR(100))."""
from __future__ import annotations

import subprocess
import sys

from support.daemon import SRC, free_port
from swampd.cli.oneline import shorten


def test_shorten_cuts_on_a_character_boundary_and_marks_the_cut():
    assert shorten("ERROR: short") == "ERROR: short"
    exact = "E" * 99
    assert shorten(exact) == exact
    cut = shorten("ERROR: " + "é" * 100)
    assert cut.endswith("...") and len(cut.encode()) <= 99 and "\ufffd" not in cut


def test_kill_run_and_launchviewer_answers_are_shortened_with_the_full_text_on_stderr():
    url = f"http://127.0.0.1:{free_port()}/" + "a-very-long-path/" * 8
    for program, args in (("swampd.cli.kill_run", ["--execution_record_uuid", "p-1", "--hard", "1"]),
                          ("swampd.cli.launchviewer", ["--viewer_name", "CodeDX", "--project", "p-1"])):
        done = subprocess.run([sys.executable, "-m", program, "--url", url, *args], capture_output=True, text=True,
                              timeout=60, env={"PYTHONPATH": str(SRC)}, stdin=subprocess.DEVNULL)
        assert done.returncode == 3, done
        assert done.stdout.startswith("ERROR: swampd is not reachable at") and done.stdout.endswith("...\n")
        assert len(done.stdout.encode()) <= 100 and done.stdout.count("\n") == 1
        assert "full message: ERROR: swampd is not reachable at " + url in done.stderr


def test_a_cut_answer_keeps_its_fault_code():
    from swampd.cli.oneline import MAX_LINE_BYTES, shorten

    line = "ERROR: " + "missing or wrong bearer token " * 5 + "(fault 4)"
    short = shorten(line)
    assert len(short.encode()) <= MAX_LINE_BYTES and short.endswith("... (fault 4)")
    assert shorten("ERROR: é" * 40).endswith("...")
