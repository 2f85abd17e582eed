"""cppcheck as an assessment tool: C/C++ packages in, SWAMP's ``out/`` layout out.

``python -m swampd.tools.cppcheck --in-dir IN --out-dir OUT [--build-dir DIR]``

It does what c-assess's ``build_assess_driver`` and SWAMP's result parser did
for cppcheck, in the task names of status.out (reference/swamp-assessment.md
§2.1, §2.2, §5):

    package-unarchive   the package archive named in in/package.conf, unpacked
                        into <build>/pkg1 (confined: results.archives)
    assess              cppcheck --xml on pkg1/<package-dir>; SKIP when there
                        is no C or C++ file; the raw report and cppcheck's
                        output in results/, archived as results.tar.gz + results.conf
    parse-results       the raw report converted to SCARF (one BugInstance per
                        cppcheck error, its locations, CWE, id as BugCode,
                        severity as BugGroup), with weaknesses.txt, archived as
                        parsed_results.tar.gz + parsed_results.conf;
                        short message ``weaknesses: N``
    all                 PASS when every task above passed or was skipped

Paths in the SCARF file start with ``pkg1/`` and are relative to the build
directory (``build_root_dir``), as SWAMP's were.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from xml.etree.ElementTree import ParseError, XMLPullParser

from swampd.results.archives import Limits, extract_tar, extract_zip
from swampd.results.errors import ResultsError
from swampd.results.scarfwriter import Bug, Location, ScarfWriter
from swampd.tools.framework import StatusOut, archive_dir, read_conf

TOOL = "cppcheck"
RAW_REPORT = "assessment_report1.xml"
SOURCE_SUFFIXES = (".c", ".h", ".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx", ".h++", ".tpp", ".txx")
CHECKS = "warning,style,performance,portability"


class TaskFailed(Exception):
    def __init__(self, short: str, long: str = "") -> None:
        super().__init__(short)
        self.short, self.long = short, long


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swampd.tools.cppcheck")
    parser.add_argument("--in-dir", required=True, type=Path)
    parser.add_argument("--out-dir", required=True, type=Path)
    parser.add_argument("--build-dir", type=Path, help="work area (default: a temporary directory)")
    parser.add_argument("--cppcheck", default="cppcheck", help="the cppcheck program")
    args = parser.parse_args(argv)
    build = args.build_dir or Path(tempfile.mkdtemp(prefix="swampd-cppcheck-"))
    try:
        return assess(args.in_dir, args.out_dir, build, args.cppcheck)
    finally:
        if args.build_dir is None:
            shutil.rmtree(build, ignore_errors=True)


def assess(in_dir: Path, out_dir: Path, build: Path, program: str) -> int:
    """Run the tasks; 0 when ``all`` passed."""
    log = StatusOut(out_dir)
    log.note("begin")
    started = time.monotonic()
    ok = False
    try:
        try:
            conf = read_conf(in_dir / "package.conf")
        except OSError:
            conf = {}
        source = _task(log, "package-unarchive", lambda: unpack(in_dir, conf, build))
        version = tool_version(program)
        raw = _task(log, "assess", lambda: run_cppcheck(program, build, source, out_dir))
        if raw is not None:
            header = {"tool_name": TOOL, "tool_version": version, "uuid": str(uuid.uuid4()),
                      "package_name": conf.get("package-short-name", ""),
                      "package_version": conf.get("package-version", ""), "package_root_dir": "pkg1",
                      "build_root_dir": str(build), "assessment_start_ts": f"{time.time():.6f}",
                      "parser_fw": "swampd", "parser_fw_version": "1", "assess_fw": "swampd-cppcheck",
                      "assess_fw_version": "1"}
            _task(log, "parse-results", lambda: parse_results(build, raw, header, out_dir), short_result=True)
        ok = not log.failed
    except TaskFailed:
        ok = False
    log.record("PASS" if ok else "FAIL", "all", seconds=time.monotonic() - started)
    log.note("end")
    return 0 if ok else 1


def _task(log: StatusOut, name: str, work, short_result: bool = False):  # type: ignore[no-untyped-def]
    """Run one task and write its record; a failure stops the run (TaskFailed)."""
    timer = log.task(name)
    try:
        value = work()
    except TaskFailed as exc:
        timer.failed(exc.short, exc.long)
        raise
    except Skipped as skip:
        timer.skipped(skip.short)
        return None
    timer.passed(value[1] if short_result else "")
    return value


class Skipped(Exception):
    def __init__(self, short: str) -> None:
        super().__init__(short)
        self.short = short


# -- package-unarchive ------------------------------------------------------------------
def unpack(in_dir: Path, conf: dict[str, str], build: Path) -> Path:
    """The package unpacked into ``build/pkg1``; the source directory (``package-dir``) inside it."""
    name = conf.get("package-archive", "")
    archive = in_dir / name
    if not name or "/" in name or not archive.is_file():
        raise TaskFailed("no-package-archive", f"package.conf names no package archive in {in_dir}: {name!r}")
    pkg = build / "pkg1"
    shutil.rmtree(pkg, ignore_errors=True)
    try:
        if name.endswith(".zip"):
            extract_zip(archive, pkg, Limits())
        else:
            extract_tar(archive, pkg, Limits())
    except ResultsError as exc:
        raise TaskFailed("bad-archive", str(exc)) from None
    source = Path(os.path.realpath(pkg / conf.get("package-dir", ".")))
    real_pkg = os.path.realpath(pkg)
    if not (str(source) == real_pkg or str(source).startswith(real_pkg + os.sep)) or not source.is_dir():
        raise TaskFailed("no-package-dir", f"package-dir {conf.get('package-dir')!r} is not a directory "
                         "of the package")
    return source


# -- assess -------------------------------------------------------------------------------
def tool_version(program: str) -> str:
    try:
        text = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return text.strip().removeprefix("Cppcheck").strip() or "unknown"


def run_cppcheck(program: str, build: Path, source: Path, out_dir: Path) -> Path:
    """cppcheck over the sources; the raw XML report (in ``build/results``, archived into out/)."""
    if not any(path.suffix.lower() in SOURCE_SUFFIXES for path in source.rglob("*") if path.is_file()):
        raise Skipped("no-files")
    results = build / "results"
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    raw = results / RAW_REPORT
    target = os.path.relpath(source, build)  # so reported paths start with pkg1/
    argv = [program, "--xml", "--xml-version=2", f"--enable={CHECKS}", "--quiet", "-j1",
            f"--output-file={raw}", target]
    with open(results / "swa_tool_stdout1.out", "wb") as stdout, open(results / "swa_tool_stderr1.out", "wb") as stderr:
        try:
            code = subprocess.run(argv, cwd=build, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr).returncode
        except OSError as exc:
            raise TaskFailed("tool-not-found", f"cannot run {program}: {exc.strerror}") from None
    ok = code == 0 and raw.is_file()
    (results / "assessment_summary.xml").write_text(
        "<assessment-summary><assessment-artifacts><assessment>"
        f"<report>{RAW_REPORT}</report><stdout>swa_tool_stdout1.out</stdout><stderr>swa_tool_stderr1.out</stderr>"
        f"<exit-code>{code}</exit-code><execution-successful>{'true' if ok else 'false'}</execution-successful>"
        "</assessment></assessment-artifacts></assessment-summary>\n", encoding="utf-8")
    archive_dir(build, "results", out_dir, {"results-archive": "results.tar.gz", "results-dir": "results",
                                            "assessment-summary-file": "assessment_summary.xml"})
    if not ok:
        raise TaskFailed(f"exit-status-{code}", (results / "swa_tool_stderr1.out").read_text(errors="replace")[-4000:])
    return raw


# -- parse-results --------------------------------------------------------------------------
def parse_results(build: Path, raw: Path, header: dict[str, str], out_dir: Path) -> tuple[int, str]:
    """cppcheck's XML -> SCARF + weaknesses.txt, archived; (weaknesses, the record's short message)."""
    parsed = build / "parsed_results"
    shutil.rmtree(parsed, ignore_errors=True)
    parsed.mkdir(parents=True)
    scarf = parsed / "parsed_results.xml"
    try:
        with open(scarf, "w", encoding="utf-8") as fh:
            writer = ScarfWriter(fh, header)
            for number, bug in enumerate(read_cppcheck(raw), 1):
                writer.bug(_scarf_bug(bug, number))
            writer.close()
    except (ParseError, OSError) as exc:
        raise TaskFailed("bad-tool-output", f"{raw.name}: {exc}") from None
    weaknesses = writer.bugs
    (parsed / "weaknesses.txt").write_text(f"weaknesses: {weaknesses}\n", encoding="utf-8")
    archive_dir(build, "parsed_results", out_dir, {
        "parsed-results-archive": "parsed_results.tar.gz", "parsed-results-dir": "parsed_results",
        "parsed-results-file": "parsed_results.xml", "scarf-file": "parsed_results.xml",
        "weaknesses": str(weaknesses)})
    return weaknesses, f"weaknesses: {weaknesses}"


def read_cppcheck(raw: Path):  # type: ignore[no-untyped-def]
    """Each ``<error>`` of a cppcheck ``--xml-version=2`` report, as (attributes, locations), streamed."""
    parser = XMLPullParser(events=("end",))
    with open(raw, "rb") as fh:
        while chunk := fh.read(65536):
            parser.feed(chunk)
            yield from _errors(parser)
        parser.close()
        yield from _errors(parser)


def _errors(parser: XMLPullParser):  # type: ignore[no-untyped-def]
    for _, element in parser.read_events():
        if element.tag == "error":
            yield dict(element.attrib), [dict(loc.attrib) for loc in element if loc.tag == "location"]
            element.clear()


def _number(value: str | None) -> int:
    try:
        return max(int(value or 0), 0)
    except ValueError:
        return 0


def _scarf_bug(error: tuple[dict[str, str], list[dict[str, str]]], number: int) -> Bug:
    attrs, locations = error
    return Bug(
        message=attrs.get("verbose") or attrs.get("msg", ""),
        code=attrs.get("id", ""), group=attrs.get("severity", ""), severity=attrs.get("severity", ""),
        cwe_ids=(attrs["cwe"],) if attrs.get("cwe") else (),
        locations=tuple(Location(loc.get("file", ""), _number(loc.get("line")), _number(loc.get("line")),
                                 _number(loc.get("column")), explanation=loc.get("info", ""), primary=i == 0)
                        for i, loc in enumerate(locations)),
        build_id="1", report_file=f"results/{RAW_REPORT}", xpath=f"/results/errors/error[{number}]")


if __name__ == "__main__":
    sys.exit(main())
