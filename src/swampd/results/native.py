"""The Native viewer: one stored result -> one file in ``--outdir``, named on stdout.

SWAMP's ``launch_viewer`` handles Native requests itself, synchronously
(``reference/swamp-assessment.md`` §6.1), checking in this order:

* the result is a ``.zip`` (e.g. Sonatype's HTML report): unpack it into the
  outdir and answer ``index.html`` (kept when already unpacked there);
* ``--results_type`` contains ``results``: SCARF -> ``nativereport.json``
  (and, swampd's addition, ``nativereport.html`` beside it);
* it contains ``errors`` or ``warnings``: ``failedreport.json`` from the
  run's ``outputdisk.tar.gz`` (for warnings, the one beside the SCARF file).

Each step writes through temporary names, so an outdir never holds half a
report under the final name; a failure is a ResultsError and leaves no
report behind.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from swampd.results.archives import Limits, extract_zip
from swampd.results.errors import ResultsError
from swampd.results.failedreport import build_failed_report, write_json
from swampd.results.htmlreport import HtmlReport
from swampd.results.nativejson import Metadata, NativeReportWriter, header_items
from swampd.results.scarf import ScarfReader
from swampd.results.toollist import short_tool_name, shown_fields

log = logging.getLogger(__name__)

REPORT = "nativereport.json"
FAILED_REPORT = "failedreport.json"
INDEX = "index.html"
OUTPUT_DISK = "outputdisk.tar.gz"


@dataclass(frozen=True)
class NativeRequest:
    """One Native request as the database procedure describes it (None: option not given)."""

    results_type: str
    file_path: Path
    outdir: Path
    package_name: str | None = None
    package_version: str | None = None
    tool_name: str | None = None
    tool_version: str | None = None
    platform_name: str | None = None
    platform_version: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    limits: Limits = field(default_factory=Limits)
    report_rows: int = 20_000

    def metadata(self, report_time: str) -> Metadata:
        return Metadata(package_name=self.package_name,
                        tool_name=short_tool_name(self.tool_name) if self.tool_name is not None else None,
                        platform_name=self.platform_name, start_date=self.start_date,
                        package_version=self.package_version, tool_version=self.tool_version,
                        platform_version=self.platform_version, end_date=self.end_date, report_time=report_time)


def run_native(request: NativeRequest) -> str:
    """Do what the request asks; the name of the file written in the outdir."""
    source = request.file_path
    if not source.is_file():
        raise ResultsError(f"result file {source} does not exist")
    try:
        if not request.outdir.is_dir():
            request.outdir.mkdir(parents=True)
            os.chmod(request.outdir, 0o755)  # served by the web server, whatever our umask
    except OSError as exc:
        raise ResultsError(f"cannot create {request.outdir}: {exc.strerror}") from None
    kind = request.results_type
    if source.name.endswith(".zip"):
        return unpack_zip_report(source, request.outdir, request.limits)
    if "results" in kind:
        convert_scarf(request)
        return REPORT
    if "errors" in kind or "warnings" in kind:
        failed_report(request)
        return FAILED_REPORT
    raise ResultsError(f"results type {kind[:40]!r} is not results, errors or warnings")


def convert_scarf(request: NativeRequest) -> Path:
    """SCARF -> nativereport.json (+ nativereport.html), in one streaming pass."""
    outdir = request.outdir
    meta = request.metadata(time.ctime())
    reader = ScarfReader(request.file_path)
    writer_path = outdir / f".{REPORT}.tmp"
    page = HtmlReport(outdir, request.report_rows)
    try:
        with open(writer_path, "wb", buffering=1 << 20) as fh:
            writer = NativeReportWriter(fh, shown_fields(request.tool_name or ""), meta)
            for bug in reader:
                if writer.count == 0:
                    writer.start(reader.header or {})
                writer.bug(bug)
                page.add(writer.count, bug)
            if writer.count == 0:
                writer.start(reader.header or {})
            writer.finish()
        os.chmod(writer_path, 0o644)
        os.replace(writer_path, outdir / REPORT)
        page.finish(header_items(reader.header or {}, meta))
    except BaseException:
        page.abort()
        writer_path.unlink(missing_ok=True)
        raise
    return outdir / REPORT


def failed_report(request: NativeRequest) -> Path:
    """failedreport.json from the run's outputdisk.tar.gz; also saved as assessment-report.json beside it."""
    archive = request.file_path
    if "errors" not in request.results_type:  # warnings: the stored result is the SCARF file
        archive = archive.with_name(OUTPUT_DISK)
        if not archive.is_file():
            raise ResultsError(f"no {OUTPUT_DISK} beside {request.file_path.name}")
    report, path = build_failed_report(archive, request.outdir, request.limits, request.start_date,
                                       request.end_date, time.ctime())
    try:
        write_json(archive.with_name("assessment-report.json"), report)
    except OSError as exc:  # SWAMP only warned too: the report itself is written
        log.warning("could not save assessment-report.json beside %s: %s", archive, exc)
    return path


def unpack_zip_report(archive: Path, outdir: Path, limits: Limits) -> str:
    """Unpack an HTML report zip into the outdir (once); answer ``index.html``."""
    copy = outdir / archive.name
    if (outdir / INDEX).is_file() and copy.is_file():
        return INDEX
    stage = Path(tempfile.mkdtemp(prefix=".swampd-zip-", dir=outdir))
    try:
        extract_zip(archive, stage, limits)
        if not (stage / INDEX).is_file():
            raise ResultsError(f"{archive.name} has no top-level {INDEX}")
        gid = outdir.stat().st_gid
        for entry in sorted(stage.iterdir()):
            dest = outdir / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            elif dest.exists() or dest.is_symlink():
                dest.unlink()
            os.replace(entry, dest)
            _chgrp(dest, gid)
        tmp = outdir / f".{archive.name}.tmp"
        shutil.copyfile(archive, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, copy)
        _chgrp(copy, gid)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return INDEX


def _chgrp(path: Path, gid: int) -> None:
    """Give what was unpacked the outdir's group, as SWAMP did (``chgrp -R``), where allowed."""
    paths = [path]
    if path.is_dir() and not path.is_symlink():
        for root, dirs, files in os.walk(path):
            paths += [Path(root, name) for name in dirs + files]
    for item in paths:
        try:
            os.lchown(item, -1, gid)
        except OSError:
            return
