"""SCARF -> nativereport.json: SWAMP's layout, its escaping, its field lists, and hostile input.

Runs the real converter (``swampd.results.native``) on SCARF files written
here; the layout rules are ``reference/swamp-assessment.md`` §6.3 and §6.6.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.daemon import SRC
from support.scarf import HEADER, generate_scarf, write_scarf
from swampd.results.errors import ResultsError
from swampd.results.native import NativeRequest, run_native

BUGS = [
    {"code": "nullPointer", "group": "error", "severity": "high", "message": "Possible null pointer dereference: opt",
     "file": "pkg1/zlib-1.3.1/src/args.c", "line": 57, "end_line": 57, "xpath": "/results/errors/error[1]",
     "suggestion": "Check opt first", "cwe": 476},
    {"code": "unusedVariable", "group": "style", "message": "Unused variable: tmp", "file": "pkg1/zlib-1.3.1/src/main.c",
     "line": 12, "end_line": 12, "col": 5, "start": 4, "end": 6, "more": [("pkg1/zlib-1.3.1/src/main.h", 3)]},
    {"code": "nullPointer", "group": "error", "message": "again", "file": "pkg1/a.c", "line": 0, "col": "12abc"},
]


def convert(tmp_path: Path, scarf: Path, tool: str = "cppcheck", **meta: str) -> dict:
    out = tmp_path / "out"
    assert run_native(NativeRequest("results", scarf, out, tool_name=tool, **meta)) == "nativereport.json"
    return json.loads((out / "nativereport.json").read_text(encoding="utf-8"))


def test_layout_ids_header_sources_and_generic_fields(tmp_path):
    scarf = write_scarf(tmp_path / "r.xml", BUGS)
    report = convert(tmp_path, scarf, tool="cppcheck", platform_name="Debian", platform_version="12",
                     package_name="db-name", start_date="2024-11-30 10:00:00", end_date="2024-11-30 10:05:00")
    top = report["AnalyzerReport"]
    # header: fixed order, SCARF first for package/tool, metadata only for platform_name and the times
    assert list(top)[:16] == ["uuid", "tool_name", "tool_version", "assess_fw", "assess_fw_version",
                              "assessment_start_ts", "assessment_end_ts", "report_generation_ts", "build_root_dir",
                              "package_name", "package_root_dir", "package_version", "platform_name",
                              "platform_version", "parser_fw", "parser_fw_version"]
    assert top["package_name"] == "zlib" and top["platform_name"] == "Debian" and top["platform_version"] == "12"
    assert top["assessment_start_ts"] == "2024-11-30 10:00:00"
    assert re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}", top["report_generation_ts"])
    bugs = top["BugInstances"]
    assert [b["BugId"] for b in bugs] == [1, 2, 3]  # 1..n in file order, not the SCARF ids (0..)
    # cppcheck shows the generic fields only: no severity, suggestion, CWE, methods, build id
    assert list(bugs[0]) == ["BugId", "BugCode", "BugGroup", "BugMessage", "BugLocations", "InstanceLocation"]
    assert bugs[0]["BugLocations"] == [{"StartLine": 57, "EndLine": 57, "SourceFile": "pkg1/zlib-1.3.1/src/args.c",
                                        "primary": True, "LocationId": 1}]
    assert bugs[0]["InstanceLocation"] == {"Xpath": "/results/errors/error[1]"}
    assert bugs[1]["BugLocations"][1] == {"StartLine": 3, "SourceFile": "pkg1/zlib-1.3.1/src/main.h",
                                          "primary": False, "LocationId": 2}
    assert bugs[1]["InstanceLocation"] == {"LineNum": {"Start": 4, "End": 6}}
    # numbers as C's strtol reads them; zero lines are left out
    assert bugs[2]["BugLocations"][0] == {"StartColumn": 12, "SourceFile": "pkg1/a.c", "primary": True,
                                          "LocationId": 1}
    assert top["BugSummaries"] == {"nullPointer": {"error": {"count": 2, "bytes": top["BugSummaries"]
                                                             ["nullPointer"]["error"]["bytes"]}},
                                   "unusedVariable": {"style": {"count": 1, "bytes": top["BugSummaries"]
                                                                ["unusedVariable"]["style"]["bytes"]}}}


def test_pretty_printing_and_summary_bytes_are_swamps(tmp_path):
    """4-space layout, and each bug's bytes counted with the separator before it."""
    scarf = write_scarf(tmp_path / "r.xml", BUGS)
    convert(tmp_path, scarf)
    raw = (tmp_path / "out" / "nativereport.json").read_bytes()
    text = raw.decode("utf-8")
    assert text.startswith('{\n    "AnalyzerReport": {\n        "uuid": "') and text.endswith("\n    }\n}\n")
    assert json.dumps(json.loads(text), indent=4, ensure_ascii=False) + "\n" == text
    # bug k spans from the end of the previous value to its closing brace at 12 spaces
    starts = [m.start() for m in re.finditer(rb',\n(?:        "BugInstances": \[\n)?            \{\n', raw)]
    ends = [m.end() for m in re.finditer(rb'\n            \}', raw)]
    sizes = [end - start for start, end in zip(starts, ends)]
    summaries = json.loads(text)["AnalyzerReport"]["BugSummaries"]
    assert summaries["nullPointer"]["error"]["bytes"] == sizes[0] + sizes[2]
    assert summaries["unusedVariable"]["style"]["bytes"] == sizes[1]


@pytest.mark.parametrize("tool,fields", [
    ("Findbugs", ["BugId", "BugCode", "BugSeverity", "BugGroup", "BugMessage", "ResolutionSuggestion",
                  "BugLocations", "InstanceLocation"]),
    ("PMD", ["BugId", "BugCode", "BugSeverity", "BugGroup", "BugMessage", "BugLocations", "InstanceLocation"]),
    ("Dawn", ["BugId", "BugCode", "BugSeverity", "BugGroup", "BugMessage", "ResolutionSuggestion"]),
    ("Android lint", ["BugId", "BugCode", "BugGroup", "BugMessage", "ResolutionSuggestion", "BugLocations",
                      "InstanceLocation"]),
    ("GCC", ["BugId", "BugCode", "BugGroup", "BugMessage", "BugLocations", "InstanceLocation"]),
    ("Parasoft C/C++test", ["BugId", "BugCode", "BugGroup", "BugMessage", "BugLocations", "InstanceLocation"]),
])
def test_fields_follow_the_first_word_of_the_tool_name(tmp_path, tool, fields):
    report = convert(tmp_path, write_scarf(tmp_path / "r.xml", BUGS[:1]), tool=tool)
    assert list(report["AnalyzerReport"]["BugInstances"][0]) == fields


def test_zero_bugs_and_metric_files_have_no_bug_keys(tmp_path):
    empty = convert(tmp_path, write_scarf(tmp_path / "r.xml", []), platform_name="Debian")
    assert "BugInstances" not in empty["AnalyzerReport"] and "BugSummaries" not in empty["AnalyzerReport"]
    assert empty["AnalyzerReport"]["package_name"] == "zlib"
    metrics = write_scarf(tmp_path / "m.xml", [], tail="<Metric id=\"1\"><Location><SourceFile>a.c</SourceFile>"
                          "</Location><Type>code-lines</Type><Value>12</Value></Metric><MetricSummaries/>")
    report = convert(tmp_path, metrics)
    assert set(report["AnalyzerReport"]) >= {"uuid", "tool_name"} and "BugInstances" not in report["AnalyzerReport"]


def test_texts_keep_their_xml_escaping_trimmed_and_cdata_is_escaped_too(tmp_path):
    bug = {"code": "x", "group": "g", "file": "pkg1/a.c", "line": 1,
           "raw_message": "\n   if (argc &gt; 1 &amp;&amp; p &lt; q) 'quoted' \"dq\" é&#13;\n  ",
           "raw_suggestion": "<![CDATA[<script>alert(1)</script>]]> and <b>bold</b>"}
    report = convert(tmp_path, write_scarf(tmp_path / "r.xml", [bug]), tool="Findbugs")
    [out] = report["AnalyzerReport"]["BugInstances"]
    assert out["BugMessage"] == "if (argc &gt; 1 &amp;&amp; p &lt; q) 'quoted' \"dq\" é&#13;"
    assert out["ResolutionSuggestion"] == "&lt;script&gt;alert(1)&lt;/script&gt; and bold"


def test_header_values_are_decoded_and_metadata_fills_missing_attributes(tmp_path):
    header = {k: v for k, v in HEADER.items() if k not in ("package_name", "package_version", "tool_version")}
    header["tool_name"] = "a<b&c"
    report = convert(tmp_path, write_scarf(tmp_path / "r.xml", [], header), package_name="Café-lib",
                     package_version="2.0", tool_version="9")
    top = report["AnalyzerReport"]
    assert (top["tool_name"], top["package_name"], top["package_version"], top["tool_version"]) == (
        "a<b&c", "Café-lib", "2.0", "9")


@pytest.mark.parametrize("name,body", [
    ("doctype", '<?xml version="1.0"?>\n<!DOCTYPE AnalyzerReport [<!ENTITY a "aaaaaaaaaa">'
                '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>\n<AnalyzerReport tool_name="&b;"/>\n'),
    ("external", '<?xml version="1.0"?>\n<!DOCTYPE AnalyzerReport SYSTEM "file:///etc/passwd">\n<AnalyzerReport/>\n'),
    ("undeclared", '<?xml version="1.0"?>\n<AnalyzerReport tool_name="x"><BugInstance id="0">'
                   '<BugMessage>&xxe;</BugMessage></BugInstance></AnalyzerReport>\n'),
    ("truncated", '<?xml version="1.0"?>\n<AnalyzerReport tool_name="x"><BugInstance id="0"><BugMessage>m'),
    ("wrong root", '<?xml version="1.0"?>\n<html><body/></html>\n'),
    ("empty", ""),
])
def test_hostile_or_broken_scarf_is_refused_and_leaves_nothing(tmp_path, name, body):
    scarf = tmp_path / "r.xml"
    scarf.write_text(body, encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(ResultsError) as caught:
        run_native(NativeRequest("results", scarf, out, tool_name="cppcheck"))
    if name in ("doctype", "external"):
        assert "DTDs and entities are not accepted" in str(caught.value)
    assert list(out.iterdir()) == []  # no report, no page, no temporary file


def test_a_big_file_is_converted_in_bounded_memory(tmp_path):
    """~60 MB of SCARF through the real program; its peak RSS stays far below the file size."""
    count = 80_000
    scarf = generate_scarf(tmp_path / "big.xml", count)
    size = scarf.stat().st_size
    assert size > 55 * 1024 * 1024
    out = tmp_path / "out"
    # The program reports its own high-water mark (VmHWM of its address space): ru_maxrss of a
    # child would also count the pages it shared with this process before exec.
    wrapper = ("import sys\nfrom swampd.cli.launchviewer import main\nrc = main(sys.argv[1:])\n"
               "sys.stderr.write([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
               "sys.exit(rc)\n")
    argv = [sys.executable, "-c", wrapper, "--viewer_name", "Native", "--results_type", "results",
            "--file_path", str(scarf), "--outdir", str(out), "--tool_name", "cppcheck"]
    done = subprocess.run(argv, capture_output=True, text=True, env={"PYTHONPATH": str(SRC)},
                          stdin=subprocess.DEVNULL, timeout=400)
    assert (done.returncode, done.stdout) == (0, "nativereport.json\n"), done.stderr
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", done.stderr).group(1)) * 1024  # type: ignore[union-attr]
    assert peak < 48 * 1024 * 1024 and peak < size / 2, (peak, size)
    report = json.loads((out / "nativereport.json").read_text(encoding="utf-8"))
    bugs = report["AnalyzerReport"]["BugInstances"]
    assert len(bugs) == count and bugs[-1]["BugId"] == count
    assert sum(g["count"] for groups in report["AnalyzerReport"]["BugSummaries"].values()
               for g in groups.values()) == count


def test_the_page_counts_everything_lists_at_most_report_rows_and_escapes(tmp_path):
    bugs = [{"code": "c<1>", "group": "warning", "message": f"m{i} <b>&amp;", "file": f"pkg1/f{i % 3}.c", "line": i}
            for i in range(1, 8)]
    scarf = write_scarf(tmp_path / "r.xml", bugs)
    out = tmp_path / "out"
    run_native(NativeRequest("results", scarf, out, tool_name="cppcheck", report_rows=5))
    page = (out / "nativereport.html").read_text(encoding="utf-8")
    assert '<span id="total-count">7</span>' in page and page.count('<tr data-severity="warning">') == 5
    assert "The table lists the first 5 of 7 findings" in page
    assert "m1 &lt;b&gt;&amp;amp;" in page and "<b>" not in page.split("<body>")[1]
    assert "c&lt;1&gt;" in page
    run_native(NativeRequest("results", write_scarf(tmp_path / "e.xml", []), tmp_path / "empty"))
    empty = (tmp_path / "empty" / "nativereport.html").read_text(encoding="utf-8")
    assert '<span id="total-count">0</span>' in empty and 'id="no-findings"' in empty
