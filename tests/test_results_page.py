"""The results page in a real browser, served by a process viewer of a real daemon.

launchviewer's Native viewer writes nativereport.json and nativereport.html
into a results directory; a viewer configured as ``{python} -m http.server``
in that directory is launched through the daemon like any viewer; headless
Chromium (Debian's) opens its URL: the counts are right, filtering and
sorting work, a hostile message stays text, and a screenshot is kept in the
test's tmp_path.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.browser import chromium, page  # noqa: F401
from support.daemon import SRC, wait_for
from support.scarf import write_scarf

HOSTILE = "<img src=x onerror=\"window.__owned=1\"><script>window.__owned=2</script>"
FINDINGS = (
    [{"code": "nullPointer", "group": "error", "message": f"Null pointer dereference of p{i}",
      "file": "pkg1/zlib-1.3.1/src/inflate.c", "line": 100 + i, "col": 4} for i in range(5)]
    + [{"code": "unusedVariable", "group": "style", "message": f"Unused variable: tmp{i}",
        "file": "pkg1/zlib-1.3.1/src/deflate.c", "line": 7 * i + 1} for i in range(8)]
    + [{"code": "memleak", "group": "warning", "message": "Memory leak: buf", "file": "pkg1/zlib-1.3.1/src/gzlib.c",
        "line": 9}, {"code": "xss", "group": "warning", "message": HOSTILE, "file": "pkg1/zlib-1.3.1/src/<b>.c",
                     "line": 2}]
)


def make_results(tmp_path: Path) -> Path:
    scarf = write_scarf(tmp_path / "parsed_results.xml", FINDINGS)
    out = tmp_path / "results" / "ar-page"
    done = subprocess.run([sys.executable, "-m", "swampd.cli.launchviewer", "--viewer_name", "Native",
                           "--results_type", "results", "--file_path", str(scarf), "--outdir", str(out),
                           "--tool_name", "cppcheck", "--package_name", "zlib", "--platform_name", "Debian",
                           "--platform_version", "12"],
                          capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(SRC)})
    assert done.stdout == "nativereport.json\n", done.stderr
    return out


def shown(page) -> str:
    return page.inner_text("#shown-count")


def visible_rows(page) -> int:
    return page.eval_on_selector_all("#findings-table tbody tr", "rows => rows.filter(r => !r.hidden).length")


def test_results_page_served_by_a_process_viewer_works_in_chromium(tmp_path, make_daemon, page):
    results = make_results(tmp_path)
    command = ["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", str(results)]
    daemon = make_daemon(viewers={"Results": {"command": command, "url_template": "http://{vmip}/nativereport.html"}})
    daemon.api.launchViewer({"projectid": "p-page", "viewer": "Results"})
    url = wait_for(lambda: daemon.api.getViewer("p-page", "Results")["url"], 60, what="results viewer READY")
    assert url.endswith("/nativereport.html")

    page.goto(url)
    assert page.inner_text("#total-count") == "15"
    assert page.inner_text("h1") == "zlib 1.3.1"
    by_severity = page.eval_on_selector_all(
        "#by-severity tbody tr", "rows => rows.map(r => [r.cells[0].innerText, r.cells[1].innerText])")
    assert by_severity == [["style", "8"], ["error", "5"], ["warning", "2"]]
    by_file = page.eval_on_selector_all("#by-file tbody tr", "rows => rows.map(r => r.cells[0].innerText)")
    assert by_file[:2] == ["zlib-1.3.1/src/deflate.c", "zlib-1.3.1/src/inflate.c"]
    assert shown(page) == "15 of 15 shown" and visible_rows(page) == 15

    # filtering: free text, then severity, then both cleared
    page.fill("#filter", "null pointer")
    assert shown(page) == "5 of 15 shown" and visible_rows(page) == 5
    page.fill("#filter", "")
    page.select_option("#severity", "warning")
    assert shown(page) == "2 of 15 shown"
    page.fill("#filter", "leak")
    assert shown(page) == "1 of 15 shown"
    page.fill("#filter", "")
    page.click("button.pick[data-severity='style']")
    assert page.input_value("#severity") == "style" and shown(page) == "8 of 15 shown"
    page.select_option("#severity", "")

    # sorting by line, both ways
    page.click("#findings-table thead th:nth-child(6)")
    lines = page.eval_on_selector_all("#findings-table tbody tr", "rows => rows.map(r => +r.cells[5].innerText)")
    assert lines == sorted(lines)
    page.click("#findings-table thead th:nth-child(6)")
    lines = page.eval_on_selector_all("#findings-table tbody tr", "rows => rows.map(r => +r.cells[5].innerText)")
    assert lines == sorted(lines, reverse=True)

    # the hostile message is text, nothing ran, nothing was fetched from elsewhere
    page.fill("#filter", "owned")
    assert shown(page) == "1 of 15 shown"
    assert HOSTILE in page.inner_text("#findings-table tbody")
    assert page.evaluate("window.__owned === undefined") and page.query_selector("#findings-table img") is None
    assert page.console_errors == []
    page.fill("#filter", "")
    shot = tmp_path / "results-page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    daemon.api.stopViewer("p-page", "Results")
