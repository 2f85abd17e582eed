"""``launchviewer --viewer_name Native`` as the database runs it: one file name, or one ERROR line.

Real program, real files: SCARF results, zip reports, and outputdisk.tar.gz
archives built here the way SWAMP's frameworks lay out ``out/``
(``reference/swamp-assessment.md`` §2, §6.1, §6.4).
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from support.daemon import SRC
from support.scarf import write_scarf

STATUS_FAIL = """NOTE: begin
PASS: install-os-dependencies                                         12.004211s
PASS: package-unarchive                                                0.310552s
FAIL: build (make failed)                                             41.870003s
  ----------
  make exited with status 2
  ----------
PASS: build-archive                                                    0.902114s
FAIL: all                                                             60.117320s
NOTE: end
"""
STATUS_NO_BUILD = """NOTE: begin
PASS: no-build-setup (source-files: 5, compilable: 3)                  1.000000s
PASS: assess                                                           2.000000s
PASS: parse-results (weaknesses: 7)                                    0.500000s
PASS: all                                                              4.000000s
NOTE: end
"""
SOURCE_COMPILES = """<?xml version="1.0"?>
<source-compiles>
  <source-compile><source-file>a.c</source-file><exit-code>0</exit-code></source-compile>
  <source-compile><source-file>b.c</source-file><exit-code>1</exit-code><output>b.c:1: error: x</output></source-compile>
</source-compiles>
"""


def native(*args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    if config is not None:
        env["SWAMPD_CONFIG"] = str(config)
    return subprocess.run([sys.executable, "-m", "swampd.cli.launchviewer", "--viewer_name", "Native", *args],
                          capture_output=True, text=True, timeout=120, env=env, stdin=subprocess.DEVNULL, cwd="/")


def tar_gz(path: Path, files: dict[str, bytes | str]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            raw = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def outputdisk(directory: Path, files: dict[str, bytes | str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return tar_gz(directory / "outputdisk.tar.gz", {f"out/{name}": data for name, data in files.items()})


def test_results_print_the_report_name_and_write_json_and_page(tmp_path):
    scarf = write_scarf(tmp_path / "r.xml", [{"code": "c", "group": "error", "message": "m", "file": "pkg1/a.c", "line": 3}])
    out = tmp_path / "outgoing" / "ar-1"
    done = native("--results_type", "results", "--package_type", "1", "--file_path", str(scarf), "--outdir", str(out),
                  "--package_name", "zlib", "--package_version", "1.3", "--tool_name", "cppcheck",
                  "--tool_version", "2.13", "--platform_name", "Debian", "--platform_version", "12",
                  "--start_date", "2024-11-30 10:00:00", "--end_date", "2024-11-30 10:05:00", "--user_uuid", "u-1")
    assert (done.returncode, done.stdout) == (0, "nativereport.json\n"), done.stderr
    assert sorted(os.listdir(out)) == ["nativereport.html", "nativereport.json", "nativereport_files"]
    assert sorted(os.listdir(out / "nativereport_files")) == ["report.css", "report.js"]
    report = json.loads((out / "nativereport.json").read_text())["AnalyzerReport"]
    assert report["assessment_end_ts"] == "2024-11-30 10:05:00" and report["BugInstances"][0]["BugId"] == 1


def test_a_zip_report_is_unpacked_once_and_answers_index_html(tmp_path):
    results = tmp_path / "A-Results" / "ar-z"
    results.mkdir(parents=True)
    archive = results / "report-1.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("index.html", "<h1>Sonatype</h1>")
        zf.writestr("css/site.css", "h1{}")
    out = tmp_path / "outgoing" / "ar-z"
    done = native("--results_type", "results", "--file_path", str(archive), "--outdir", str(out))
    assert (done.returncode, done.stdout) == (0, "index.html\n"), done.stderr
    assert (out / "index.html").read_text() == "<h1>Sonatype</h1>" and (out / "css/site.css").is_file()
    assert (out / "report-1.zip").read_bytes() == archive.read_bytes()
    (out / "index.html").write_text("kept")  # already unpacked: not done again
    assert native("--results_type", "results", "--file_path", str(archive), "--outdir", str(out)).stdout == "index.html\n"
    assert (out / "index.html").read_text() == "kept"


def test_a_hostile_zip_is_refused_and_leaves_nothing(tmp_path):
    archive = tmp_path / "report.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("index.html", "<h1>x</h1>")
        zf.writestr("../../escaped.html", "x")
    out = tmp_path / "outgoing" / "ar-h"
    done = native("--results_type", "results", "--file_path", str(archive), "--outdir", str(out))
    assert done.returncode == 1 and done.stdout.startswith("ERROR: archive report.zip: member '../../escaped.html'")
    assert done.stdout.count("\n") == 1 and len(done.stdout.encode()) <= 100
    assert os.listdir(out) == [] and not (tmp_path / "escaped.html").exists()


def test_errors_build_the_failed_report_from_the_output_disk(tmp_path):
    build = tar_gz(tmp_path / "build.tar.gz", {"build/build_stdout.out": "cc -c a.c\n",
                                               "build/build_stderr.out": "a.c:1: error: boom\n"})
    results = tmp_path / "A-Results" / "ar-e"
    archive = outputdisk(results, {
        "status.out": STATUS_FAIL, "build.conf": "build-archive=build.tar.gz\nbuild-dir=build\n",
        "build.tar.gz": build.read_bytes(), "build_assess.out": "driver log\n", "run.out": "run log\n",
        "versions.txt": "c-assess:1.2.6\n",
        "output_files.conf": "runOut=run.out\nstatusOut=status.out\nbuildAssessOut=../../../../../../etc/passwd\n"})
    out = tmp_path / "outgoing" / "ar-e"
    done = native("--results_type", "errors", "--file_path", str(archive), "--outdir", str(out),
                  "--start_date", "2024-11-30 10:00:00", "--end_date", "2024-11-30 10:05:00")
    assert (done.returncode, done.stdout) == (0, "failedreport.json\n"), done.stderr
    report = json.loads((out / "failedreport.json").read_text())
    assert (report["assessment_start_ts"], report["assessment_end_ts"]) == ("2024-11-30 10:00:00", "2024-11-30 10:05:00")
    assert report["report_generation_ts"]
    entries = report["status"]
    # buildAssessOut named a file outside out/: treated as absent, never read
    assert [e["name"] for e in entries] == ["build", "status.out", "build/build_stdout.out", "build/build_stderr.out",
                                            "run.out", "Component Versions"]
    assert entries[0] == {"name": "build", "content": "make failed\n  make exited with status 2",
                          "collapsed": False, "anchor": "task-debug-build"}
    assert "FAIL: build (make failed)\n" in entries[1]["content"] + "\n" and "41.87" not in entries[1]["content"]
    assert entries[3]["content"] == "a.c:1: error: boom\n" and entries[3]["collapsed"] is False
    assert entries[4] == {"name": "run.out", "content": "run log\n", "collapsed": True}
    assert "root:" not in json.dumps(report)  # the ../ name in output_files.conf was not followed
    assert os.listdir(out) == ["failedreport.json"]  # the unpacked out/ is gone
    saved = json.loads((results / "assessment-report.json").read_text())
    assert saved == {"status": entries}


def test_warnings_use_the_output_disk_beside_the_scarf_file(tmp_path):
    results = tmp_path / "A-Results" / "ar-w"
    outputdisk(results, {"status.out": STATUS_NO_BUILD, "source-compiles.xml": SOURCE_COMPILES})
    scarf = write_scarf(results / "parsed_results.xml", [])
    out = tmp_path / "outgoing" / "ar-w"
    done = native("--results_type", "warnings", "--file_path", str(scarf), "--outdir", str(out))
    assert (done.returncode, done.stdout) == (0, "failedreport.json\n"), done.stderr
    entries = json.loads((out / "failedreport.json").read_text())["status"]
    assert entries[0] == {"name": "no-build-setup", "content": "Source files: 5 > Compilable: 3", "collapsed": False,
                          "anchor": "task-warn-no-build-setup-pass"}
    assert entries[2] == {"name": "Source Files", "content": {"success": ["a.c"], "fail": ["b.c\nb.c:1: error: x"]},
                          "collapsed": False}


def test_a_missing_status_out_says_so(tmp_path):
    archive = outputdisk(tmp_path / "r", {"versions.txt": "x:1\n"})
    done = native("--results_type", "errors", "--file_path", str(archive), "--outdir", str(tmp_path / "o"))
    entries = json.loads((tmp_path / "o" / "failedreport.json").read_text())["status"]
    assert done.returncode == 0 and [e["name"] for e in entries] == ["Status Not Found", "Component Versions"]


def test_archive_problems_and_bad_requests_are_one_short_error_line(tmp_path):
    big = outputdisk(tmp_path / "big", {"status.out": STATUS_FAIL, "run.out": "x" * 200_000})
    (tmp_path / "noout").mkdir()
    no_out = tar_gz(tmp_path / "noout" / "outputdisk.tar.gz", {"status.out": "PASS: all\n"})
    config = tmp_path / "swampd.toml"
    config.write_text("[native]\nmax_unpacked_bytes = 100000\n")
    long_dir = tmp_path / ("d" * 150)
    cases = [
        (("--results_type", "errors", "--file_path", str(big), "--outdir", str(tmp_path / "o1")), 1,
         "expands past 100000 bytes"),
        (("--results_type", "errors", "--file_path", str(no_out), "--outdir", str(tmp_path / "o2")), 1,
         "has no top-level out/"),
        (("--results_type", "bogus", "--file_path", str(big), "--outdir", str(tmp_path / "o3")), 1, "is not results"),
        (("--results_type", "results", "--file_path", str(long_dir / "missing.xml"), "--outdir", str(tmp_path)), 1,
         "result file"),
        (("--results_type", "results", "--outdir", str(tmp_path / "o4")), 2, "exactly one --file_path"),
        (("--results_type", "results", "--file_path", "relative.xml", "--outdir", str(tmp_path)), 2, "absolute"),
        (("--results_type", "results", "--file_path", str(big), "--outdir", "/tmp/../etc"), 2, "absolute"),
    ]
    for args, code, words in cases:
        done = native(*args, config=config)
        assert done.returncode == code, (args, done.stdout, done.stderr)
        line = done.stdout
        assert line.startswith("ERROR: ") and words in line and line.count("\n") == 1, (args, line)
        assert len(line.encode()) <= 100, line
    done = native("--results_type", "results", "--file_path", str(long_dir / "missing.xml"), "--outdir", str(tmp_path))
    assert done.stdout.endswith("...\n") and str(long_dir / "missing.xml") in done.stderr  # full text on stderr


def test_outputs_are_readable_by_the_web_server_whatever_the_umask(tmp_path):
    """The database server's umask may be strict; the pages must still be world-readable."""
    scarf = write_scarf(tmp_path / "r.xml", [{"code": "c", "group": "g", "message": "m", "file": "pkg1/a.c", "line": 1}])
    results = tmp_path / "A-Results" / "ar-u"
    archive = outputdisk(results, {"status.out": STATUS_FAIL})
    program = ("import os, sys\nos.umask(0o077)\nfrom swampd.cli.launchviewer import main\n"
               "sys.exit(main(sys.argv[1:]))\n")
    for kind, source, out in (("results", scarf, tmp_path / "o1"), ("errors", archive, tmp_path / "o2")):
        done = subprocess.run([sys.executable, "-c", program, "--viewer_name", "Native", "--results_type", kind,
                               "--file_path", str(source), "--outdir", str(out)], capture_output=True, text=True,
                              timeout=60, env={"PYTHONPATH": str(SRC)})
        assert done.returncode == 0, done.stdout + done.stderr
        for path in [out, *out.rglob("*")]:
            assert os.stat(path).st_mode & 0o005 == (0o005 if path.is_dir() else 0o004), path
