"""The cppcheck integration and the process platform's run.sh, run as the machine runs them (real programs).

``swampd.tools.cppcheck`` runs Debian's cppcheck on a package and leaves
SWAMP's ``out/`` layout; the SCARF it writes is read back with the reader the
Native viewer uses.  ``swampd.tools.runsh`` waits for BEGINASSESSMENT, runs a
tool, writes a status.out when the tool left none, and ends the tool's whole
process group on SIGTERM.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from support.assess import package_archive, tar_bytes
from support.daemon import SRC, wait_for
from swampd.results.native import NativeRequest, run_native
from swampd.results.scarf import ScarfReader
from swampd.results.statusout import parse_status_out

ENV = dict(os.environ, PYTHONPATH=str(SRC))


def in_dir_with(tmp_path: Path, archive: Path, package_dir: str = "hello-c-2.1") -> Path:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / archive.name).write_bytes(archive.read_bytes())
    (in_dir / "package.conf").write_text(f"package-archive={archive.name}\npackage-dir={package_dir}\n"
                                         "package-short-name=hello-c\npackage-version=2.1\n")
    return in_dir


def cppcheck(in_dir: Path, out_dir: Path, build: Path) -> subprocess.CompletedProcess[str]:
    out_dir.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, "-m", "swampd.tools.cppcheck", "--in-dir", str(in_dir), "--out-dir",
                           str(out_dir), "--build-dir", str(build)], capture_output=True, text=True, env=ENV,
                          timeout=120)


def test_cppchecks_findings_become_scarf_bug_instances_and_the_weakness_count(tmp_path: Path) -> None:
    in_dir = in_dir_with(tmp_path, package_archive(tmp_path / "store"))
    out, build = tmp_path / "out", tmp_path / "build"
    done = cppcheck(in_dir, out, build)
    assert done.returncode == 0, done.stderr
    status = parse_status_out((out / "status.out").read_text())
    assert status.all_pass and status.tasks == ["begin", "package-unarchive", "assess", "parse-results", "all", "end"]
    with tarfile.open(out / "parsed_results.tar.gz") as tar:
        assert sorted(tar.getnames()) == ["parsed_results", "parsed_results/parsed_results.xml",
                                          "parsed_results/weaknesses.txt"]
        tar.extractall(tmp_path / "unpacked")
    reader = ScarfReader(tmp_path / "unpacked" / "parsed_results" / "parsed_results.xml")
    bugs = list(reader)
    assert reader.header is not None and reader.header["tool_name"] == "cppcheck"
    assert reader.header["tool_version"] == subprocess.run(["cppcheck", "--version"], capture_output=True,
                                                           text=True).stdout.split()[-1]
    assert reader.header["package_root_dir"] == "pkg1" and reader.header["build_root_dir"] == str(build)
    found = {(b["BugCode"], b["Locations"][0]["SourceFile"], b["Locations"][0]["StartLine"]) for b in bugs}
    assert {("nullPointer", "pkg1/hello-c-2.1/src/defects.c", "7"),
            ("arrayIndexOutOfBounds", "pkg1/hello-c-2.1/src/defects.c", "13"),
            ("memleak", "pkg1/hello-c-2.1/src/defects.c", "22")} <= found
    assert all(b["BugGroup"] in ("error", "warning", "style", "performance", "portability") for b in bugs)
    assert status.weaknesses == len(bugs)
    conf = (out / "parsed_results.conf").read_text()
    assert "parsed-results-file=parsed_results.xml" in conf and f"weaknesses={len(bugs)}" in conf
    with tarfile.open(out / "results.tar.gz") as tar:
        assert "results/assessment_report1.xml" in tar.getnames()
    # The Native viewer shows them: the SCARF is what SWAMP's readers expect.
    request = NativeRequest("results", tmp_path / "unpacked" / "parsed_results" / "parsed_results.xml",
                            tmp_path / "native", tool_name="cppcheck")
    assert run_native(request) == "nativereport.json"


def test_a_package_without_c_files_skips_the_assessment(tmp_path: Path) -> None:
    archive = tmp_path / "store" / "docs-1.0.tar.gz"
    archive.parent.mkdir()
    readme = tarfile.TarInfo("docs-1.0/README")
    archive.write_bytes(tar_bytes([(readme, b"no code here\n")]))
    in_dir = in_dir_with(tmp_path, archive, "docs-1.0")
    done = cppcheck(in_dir, tmp_path / "out", tmp_path / "build")
    assert done.returncode == 0, done.stderr
    status = parse_status_out((tmp_path / "out" / "status.out").read_text())
    assert status.all_pass and status.no_files and status.records["assess"].status == "SKIP"


def test_a_hostile_package_fails_unarchive_and_writes_nothing_outside(tmp_path: Path) -> None:
    archive = tmp_path / "store" / "evil-1.0.tar.gz"
    archive.parent.mkdir()
    escape = tarfile.TarInfo("../../../escaped.c")
    archive.write_bytes(tar_bytes([(escape, b"int x;\n")]))
    in_dir = in_dir_with(tmp_path, archive, ".")
    done = cppcheck(in_dir, tmp_path / "out", tmp_path / "work" / "build")
    assert done.returncode == 1
    status = parse_status_out((tmp_path / "out" / "status.out").read_text())
    assert status.first_failure == "package-unarchive" and status.all_pass is False
    assert "'..'" in (status.records["package-unarchive"].long or "")
    assert not list(tmp_path.rglob("escaped.c"))


def runsh(tmp_path: Path, *command: str, begin: bool = True) -> subprocess.Popen[str]:
    for name in ("in", "out"):
        (tmp_path / name).mkdir(exist_ok=True)
    events = tmp_path / "out" / "job_events.log"
    events.write_text("RUNSHSTART\nBEGINASSESSMENT\n" if begin else "RUNSHSTART\n")
    return subprocess.Popen([sys.executable, "-m", "swampd.tools.runsh", "--in-dir", str(tmp_path / "in"),
                             "--out-dir", str(tmp_path / "out"), "--events", str(events), "--wait", "30",
                             "--", *command], env=ENV, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_run_sh_records_its_files_and_writes_a_status_out_for_a_tool_that_left_none(tmp_path: Path) -> None:
    proc = runsh(tmp_path, sys.executable, "-c", "import os; print(os.getcwd()); raise SystemExit(3)")
    assert proc.wait(60) == 0
    out = tmp_path / "out"
    assert (out / "output_files.conf").read_text() == "runOut=run.out\nbuildAssessOut=build_assess.out\nstatusOut=status.out\n"
    assert (out / "build_assess.out").read_text().strip() == str(tmp_path / "in")  # run in in/, as run.sh did
    status = parse_status_out((out / "status.out").read_text())
    assert status.first_failure == "assess" and status.records["assess"].short == "exit-status-3"
    assert status.all_pass is False and status.tasks[0] == "begin" and status.tasks[-1] == "end"


def test_run_sh_waits_for_begin_assessment_before_it_starts_the_tool(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    proc = runsh(tmp_path, "touch", str(marker), begin=False)
    time.sleep(1.0)
    assert not marker.exists() and proc.poll() is None
    with open(tmp_path / "out" / "job_events.log", "a") as fh:
        fh.write("WROTEIPADDR\nBEGINASSESSMENT\n")
    assert proc.wait(30) == 0 and marker.exists()


def test_sigterm_ends_the_tools_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (f"import os, subprocess, time; child = subprocess.Popen(['sleep', '300']); "
              f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}'); time.sleep(300)")
    proc = runsh(tmp_path, sys.executable, "-c", script)
    wait_for(lambda: pids.exists() and pids.read_text().count(" ") == 1, 30, what="the tool to start")
    tool, grandchild = (int(p) for p in pids.read_text().split())
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    for pid in (tool, grandchild):
        wait_for(lambda: not _alive(pid), 10, what=f"pid {pid} to end")
    status = parse_status_out((tmp_path / "out" / "status.out").read_text())
    assert status.first_failure == "setup" and status.records["setup"].short == "signal"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
