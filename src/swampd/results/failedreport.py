"""``failedreport.json``: why an assessment failed or warned, from its ``outputdisk.tar.gz``.

The SWAMP web server shows this for "errors" and "warnings" requests: a
headline (the first failed task and its message, or the warning), the
status.out text, the framework's error files for that task, build_assess.out,
run.out and the component versions (``reference/swamp-assessment.md`` §2.5,
§6.4).  The archive's top directory must be ``out/``.  It is unpacked with
``archives`` (confined, capped) into a scratch directory inside ``--outdir``
that is removed afterwards.

Deliberate differences from SWAMP's Perl: durations are stripped from
record lines only (the Perl also ate numbers ending long-message lines); a
failed ``assess`` with several tools lists each tool's files (the Perl died);
the "Status Not Found" anchor is the document's real one; a conf file that
cannot be read counts as absent.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from swampd.results import xmlsafe
from swampd.results.archives import Limits, extract_tar
from swampd.results.errors import ResultsError
from swampd.results.outputfiles import OutDir
from swampd.results.statusout import StatusOut, parse_status_out

COLLAPSE_AT = 2048
#: Error files per first failed task: (conf, [alternatives for stdout], [alternatives for stderr]).
TASK_FILES: dict[str, tuple[str, list[str], list[str]]] = {
    "build": ("buildConf", ["build-stdout-file", "build_stdout.out", "build.out"],
              ["build-stderr-file", "build_stderr.out", "build.err"]),
    "configure": ("buildConf", ["config-stdout-file", "config_stdout.out", "configure_stdout.out", "config.out"],
                  ["config-stderr-file", "config_stderr.out", "configure_stderr.out"]),
    "flow-typed": ("resultsConf", ["flow-typed_stdout1.out"], ["flow-typed_stderr1.out"]),
    "gem-install": ("buildConf", ["gem_install.out"], ["gem_install.err"]),
    "gem-unpack": ("buildConf", ["gem_unpack.out"], ["gem_unpack.err"]),
    "install-pip-dependencies": ("buildConf", ["pip_install.out"], ["pip_install.err"]),
    "parse-results": ("parsedResultsConf", ["resultparser-stdout-file"], ["resultparser-stderr-file"]),
    "read-gem-spec": ("buildConf", [], ["gem-name-err.spec"]),
}
#: The first failures for which build_assess.out / run.out start expanded.
EXPANDED = {"buildAssessOut": {"all", "assess", "build-archive", "package-archive", "install-os-dependencies"},
            "runOut": {"setup"}}
NOT_FOUND_ANCHOR = "_missing_or_invalid_status_out_file"


def entry(name: str, content: Any, collapsed: bool, anchor: str | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"name": name, "content": content, "collapsed": collapsed}
    if anchor is not None:
        item["anchor"] = anchor
    return item


def headline(status: StatusOut) -> dict[str, Any]:
    if status.all_pass:
        if status.no_build and status.source_files > status.compilable:
            return entry("no-build-setup", f"Source files: {status.source_files} > Compilable: {status.compilable}",
                         False, "task-warn-no-build-setup-pass")
        assess = status.records.get("assess")
        if assess is not None and assess.status == "SKIP" and status.no_files:
            return entry("assess", "No files found to assess", False, "task-warn-assess-skip")
        return entry("Success", "No warnings or errors found.", False, "task-def-all")
    if status.first_failure is not None:
        record = status.records[status.first_failure]
        texts = [t for t in (record.short, record.long) if t is not None]
        content = "\n".join(texts) if texts else "Internal Error"
        return entry(status.first_failure, content, False, f"task-debug-{status.first_failure}")
    return entry("all", "Internal Error", False, "task-debug-all")


def _collapsed(status: StatusOut, key: str) -> bool:
    if status.first_failure is None:
        return True
    return status.first_failure not in EXPANDED.get(key, set())


def _first_found(out: OutDir, conf: str, names: list[str]) -> tuple[str, str] | None:
    for name in names:
        found = out.archived(conf, name)
        if found is not None:
            return found
    return None


def error_files(out: OutDir, status: StatusOut) -> list[tuple[str, str]]:
    """(name, text) of the files that explain the first failed task."""
    task = status.first_failure
    if task is None:
        return []
    if task == "assess":
        return _failed_assessments(out)
    if task not in TASK_FILES:
        return []
    conf, stdout_names, stderr_names = TASK_FILES[task]
    found = [_first_found(out, conf, stdout_names), _first_found(out, conf, stderr_names)]
    return [f for f in found if f is not None]


def _xml_elements(text: str, what: str) -> list[dict[str, str]]:
    """Child elements (and attributes) of each second-level element, as flat dicts."""
    items: list[dict[str, str]] = []
    stack: list[str] = []
    parts: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        stack.append(name)
        if len(stack) == 2:
            items.append(dict(attrs))
        parts.clear()

    def end(name: str) -> None:
        if len(stack) == 3:
            items[-1][name] = "".join(parts).strip()
        stack.pop()

    parser = xmlsafe.make_parser()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = parts.append
    xmlsafe.feed(parser, text.encode("utf-8"), True, what)
    return items


def _failed_assessments(out: OutDir) -> list[tuple[str, str]]:
    conf = out.confs.get("resultsConf", {})
    summary = out.archived("resultsConf", conf.get("assessment-summary-file", "assessment_summary.xml"))
    if summary is None:
        return []
    try:
        assessments = _assessment_list(summary[1])
    except ResultsError:
        return []
    found: list[tuple[str, str]] = []
    for assessment in assessments:
        ok = assessment.get("execution-successful")
        failed = (ok is not None and "true" not in ok.lower()) or (
            ok is None and assessment.get("exit-code", "0").strip() not in ("", "0"))
        if not failed:
            continue
        for key in ("stdout", "stderr"):
            if assessment.get(key):
                item = out.archived("resultsConf", assessment[key])
                if item is not None:
                    found.append(item)
    return found


def _assessment_list(text: str) -> list[dict[str, str]]:
    assessments: list[dict[str, str]] = []
    stack: list[str] = []
    parts: list[str] = []

    def start(name: str, attrs: dict[str, str]) -> None:
        stack.append(name)
        if name == "assessment" and len(stack) >= 2 and stack[-2] == "assessment-artifacts":
            assessments.append(dict(attrs))
        parts.clear()

    def end(name: str) -> None:
        if len(stack) >= 3 and stack[-2] == "assessment" and assessments:
            assessments[-1][name] = "".join(parts).strip()
        stack.pop()

    parser = xmlsafe.make_parser()
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = parts.append
    xmlsafe.feed(parser, text.encode("utf-8"), True, "assessment_summary.xml")
    return assessments


def source_files(out: OutDir) -> dict[str, list[str]] | None:
    """The no-build compile results: {"success": [file], "fail": ["file\\noutput"]}."""
    build = out.confs.get("buildConf", {})
    name = build.get("source-compiles") or build.get("no-build-failures") or "source-compiles.xml"
    text = out.text(name)
    if text is None:
        found = out.archived("buildConf", name)
        if found is None:
            return None
        text = found[1]
    try:
        compiles = _xml_elements(text, name)
    except ResultsError:
        compiles = []
    success, fail = [], []
    for item in compiles:
        code = item.get("exit-code", "").strip()
        if code in ("", "0"):
            success.append(item.get("source-file", ""))
        else:
            fail.append(f"{item.get('source-file', '')}\n{item.get('output', '')}")
    return {"success": success, "fail": fail}


def status_entries(top: Path) -> list[dict[str, Any]]:
    """The ``status`` list for one unpacked ``out/`` directory."""
    out = OutDir(top)
    versions = out.text("versions.txt")
    status_name = out.files.get("statusOut")
    status_text = out.text(status_name) if status_name else None
    if status_text is None:
        items = [entry("Status Not Found", "Unable to determine the final status of the assessment.", False,
                       NOT_FOUND_ANCHOR)]
        if versions is not None:
            items.append(entry("Component Versions", versions, False))
        return items
    status = parse_status_out(status_text)
    items = [headline(status), entry(str(status_name), status.without_durations(), False)]
    if status.no_build:
        files = source_files(out)
        if files is not None:
            passing_warning = bool(status.all_pass) and status.source_files > status.compilable
            items.append(entry("Source Files", files, False if passing_warning else _collapsed(status, "sourceFiles")))
    errors = error_files(out, status)
    for name, text in errors:
        items.append(entry(name, text, len(text) >= COLLAPSE_AT))
    if "buildAssessOut" in out.files:
        items.append(entry(out.files["buildAssessOut"], out.text(out.files["buildAssessOut"]),
                           _collapsed(status, "buildAssessOut") or bool(errors)))
    if "runOut" in out.files:
        items.append(entry(out.files["runOut"], out.text(out.files["runOut"]), _collapsed(status, "runOut")))
    if versions is not None:
        items.append(entry("Component Versions", versions, False))
    return items


def build_failed_report(archive: Path, outdir: Path, limits: Limits, start: str | None, end: str | None,
                        report_time: str) -> tuple[dict[str, Any], Path]:
    """Unpack ``archive`` under ``outdir``, build the report, write ``failedreport.json``.

    Returns the report without its header (what SWAMP saves as
    ``assessment-report.json``) and the path written.
    """
    name = archive.name
    if not (name.endswith(".tar.gz") or name.endswith(".tgz") or name.endswith(".tar")):
        raise ResultsError(f"{name} is not a .tar or .tar.gz archive")
    outdir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".swampd-out-", dir=outdir))
    try:
        extract_tar(archive, scratch, limits)
        top = scratch / "out"
        if not top.is_dir() or top.is_symlink():
            raise ResultsError(f"{name} has no top-level out/ directory")
        report: dict[str, Any] = {"status": status_entries(top)}
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    full = dict(report, assessment_start_ts=start, assessment_end_ts=end, report_generation_ts=report_time)
    target = outdir / "failedreport.json"
    write_json(target, full)
    return report, target


def write_json(path: Path, value: Any) -> None:
    """Write JSON through a temporary file and a rename: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(value, fh, ensure_ascii=False)
        os.fchmod(fh.fileno(), 0o644)  # readable by the web server, whatever our umask
    tmp.replace(path)

