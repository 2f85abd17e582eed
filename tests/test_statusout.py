"""status.out read as SWAMP's backend read it (reference/swamp-assessment.md §2.2)."""
from __future__ import annotations

from swampd.results.failedreport import headline
from swampd.results.statusout import parse_status_out

TEXT = """NOTE: begin
PASS: install-os-dependencies                                         12.004211s
FAIL: configure (exit 1)                                               3.5s
  ----------
  checking for gcc... no
  configure: error: no C compiler
  ----------
FAIL: build                                                           41ms
SKIP: assess (no files)
PASS: parse-results (weaknesses: 12)                                   0.5
NOTE: retry
FAIL: all                                                             60.117320s
NOTE: end
"""


def test_records_verdict_first_failure_long_message_and_counts():
    status = parse_status_out(TEXT)
    assert status.tasks[:3] == ["begin", "install-os-dependencies", "configure"]
    assert status.all_pass is False and status.first_failure == "configure"
    assert status.records["configure"].short == "exit 1"
    assert status.records["configure"].long == "  checking for gcc... no\n  configure: error: no C compiler"
    assert status.records["build"].long is None
    assert (status.no_files, status.retry, status.weaknesses) == (True, True, 12)
    assert status.without_durations().splitlines()[1] == "PASS: install-os-dependencies"
    assert "  configure: error: no C compiler" in status.without_durations()
    assert headline(status) == {"name": "configure", "content": "exit 1\n  checking for gcc... no\n"
                                "  configure: error: no C compiler", "collapsed": False,
                                "anchor": "task-debug-configure"}


def test_headlines_for_success_no_files_and_no_verdict():
    assert headline(parse_status_out("PASS: all 1.0s\n"))["name"] == "Success"
    skipped = parse_status_out("SKIP: assess (no files to assess)\nPASS: all\n")
    assert headline(skipped) == {"name": "assess", "content": "No files found to assess", "collapsed": False,
                                 "anchor": "task-warn-assess-skip"}
    assert headline(parse_status_out("NOTE: begin\n"))["anchor"] == "task-debug-all"
    assert headline(parse_status_out("FAIL: build\n"))["content"] == "Internal Error"
