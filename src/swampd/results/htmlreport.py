"""The findings as a page a person reads: ``nativereport.html`` beside ``nativereport.json``.

Written in the same pass as the JSON, so it costs no second parse: each bug
becomes one escaped table row in a scratch file (up to ``max_rows``; the JSON
always has them all), and the summary (by severity, by file) is counted as
the bugs go by.  At the end the page is assembled: header, summary, the rows,
and references to ``nativereport_files/report.css`` and ``report.js``, copied
from this package (no CDN, nothing fetched).  Without JavaScript the page is
a complete static table; with it, the table filters and sorts.

Every value that came from the SCARF file or the database goes through
``html.escape`` (attributes included), and the page forbids inline script
through its Content-Security-Policy, so a hostile message stays text.

"Severity" is the tool's ``BugSeverity`` where it gives one, else its
``BugGroup`` (most tools put their severity there), else "unspecified".
"""
from __future__ import annotations

import html
import os
import shutil
from importlib import resources
from pathlib import Path
from typing import IO

from swampd.results.scarf import Bug

PAGE_NAME = "nativereport.html"
ASSETS_DIR = "nativereport_files"
ASSETS = ("report.css", "report.js")
#: Distinct files counted one by one; more are summed under OTHER_FILES (bounded memory).
MAX_FILES_TRACKED = 100_000
OTHER_FILES = "(other files)"
TOP_FILES = 25
UNSPECIFIED = "unspecified"
_TRIM = " \t\n\v\f\r"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def primary_location(bug: Bug) -> dict[str, str]:
    locations = bug.get("Locations") or []
    for location in locations:
        if location.get("primary") == "true":
            return location
    return locations[0] if locations else {}


def display_file(path: str) -> str:
    """The source path as SWAMP's viewer shows it: without the leading ``pkg1/``."""
    return path[5:] if path.startswith("pkg1/") else path


def severity_of(bug: Bug) -> str:
    for key in ("BugSeverity", "BugGroup"):
        value = bug.get(key, "").strip(_TRIM)
        if value:
            return value
    return UNSPECIFIED


class HtmlReport:
    """Collects rows and counts while the JSON is written; ``finish`` writes the page."""

    def __init__(self, outdir: Path, max_rows: int) -> None:
        self.outdir = Path(outdir)
        self.max_rows = max_rows
        self.total = 0
        self.by_severity: dict[str, int] = {}
        self.by_file: dict[str, int] = {}
        self._rows_path = self.outdir / f".{PAGE_NAME}.rows.tmp"
        self._rows: IO[str] | None = open(self._rows_path, "w", encoding="utf-8")

    def add(self, bug_id: int, bug: Bug) -> None:
        self.total += 1
        severity = severity_of(bug)
        self.by_severity[severity] = self.by_severity.get(severity, 0) + 1
        location = primary_location(bug)
        source = display_file(location.get("SourceFile", "").strip(_TRIM))
        key = source or "(no file)"
        if key in self.by_file or len(self.by_file) < MAX_FILES_TRACKED:
            self.by_file[key] = self.by_file.get(key, 0) + 1
        else:
            self.by_file[OTHER_FILES] = self.by_file.get(OTHER_FILES, 0) + 1
        if bug_id > self.max_rows or self._rows is None:
            return
        line = location.get("StartLine", "").strip(_TRIM)
        column = location.get("StartColumn", "").strip(_TRIM)
        message = bug.get("BugMessage", "").strip(_TRIM)
        suggestion = bug.get("ResolutionSuggestion", "").strip(_TRIM)
        extra = f'<div class="suggestion">{esc(suggestion)}</div>' if suggestion else ""
        self._rows.write(
            f'<tr data-severity="{esc(severity)}"><td class="num">{bug_id}</td><td>{esc(severity)}</td>'
            f'<td>{esc(bug.get("BugGroup", "").strip(_TRIM))}</td><td>{esc(bug.get("BugCode", "").strip(_TRIM))}</td>'
            f'<td class="file">{esc(source)}</td><td class="num">{esc(line)}</td><td class="num">{esc(column)}</td>'
            f'<td class="message"><pre>{esc(message)}</pre>{extra}</td></tr>\n')

    def abort(self) -> None:
        if self._rows is not None:
            self._rows.close()
            self._rows = None
        self._rows_path.unlink(missing_ok=True)

    def finish(self, header: list[tuple[str, str]]) -> Path:
        """Write the page (through a temporary name) and its assets; the page's path."""
        assert self._rows is not None
        self._rows.close()
        self._rows = None
        target = self.outdir / PAGE_NAME
        tmp = self.outdir / f".{PAGE_NAME}.tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as page, open(self._rows_path, encoding="utf-8") as rows:
                page.write(self._head(dict(header)))
                shutil.copyfileobj(rows, page)
                page.write(self._tail())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        finally:
            self._rows_path.unlink(missing_ok=True)
            tmp.unlink(missing_ok=True)
        copy_assets(self.outdir / ASSETS_DIR)
        return target

    def _head(self, header: dict[str, str]) -> str:
        title = " ".join(v for v in (header.get("package_name"), header.get("package_version")) if v) or "Assessment"
        tool = " ".join(v for v in (header.get("tool_name"), header.get("tool_version")) if v)
        facts = [("Package", header.get("package_name")), ("Package version", header.get("package_version")),
                 ("Tool", header.get("tool_name")), ("Tool version", header.get("tool_version")),
                 ("Platform", " ".join(v for v in (header.get("platform_name"), header.get("platform_version")) if v)),
                 ("Assessment started", header.get("assessment_start_ts")),
                 ("Assessment ended", header.get("assessment_end_ts")),
                 ("Report generated", header.get("report_generation_ts"))]
        dl = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts if v)
        severities = sorted(self.by_severity.items(), key=lambda kv: (-kv[1], kv[0]))
        sev_rows = "".join(
            f'<tr><td><button type="button" class="pick" data-severity="{esc(name)}">{esc(name)}</button></td>'
            f'<td class="num">{count}</td></tr>' for name, count in severities)
        files = sorted(self.by_file.items(), key=lambda kv: (-kv[1], kv[0]))
        file_rows = "".join(f'<tr><td class="file">{esc(name)}</td><td class="num">{count}</td></tr>'
                            for name, count in files[:TOP_FILES])
        more_files = (f'<p class="note">{len(files) - TOP_FILES} more files not listed.</p>'
                      if len(files) > TOP_FILES else "")
        options = "".join(f'<option value="{esc(name)}">{esc(name)} ({count})</option>' for name, count in severities)
        shown = min(self.total, self.max_rows)
        partial = (f'<p class="note" id="partial">The table lists the first {shown} of {self.total} findings; '
                   f'nativereport.json has them all.</p>' if shown < self.total else "")
        return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:">
<link rel="icon" href="data:,">
<title>Findings: {esc(title)}{' · ' + esc(tool) if tool else ''}</title>
<link rel="stylesheet" href="{ASSETS_DIR}/report.css">
<script src="{ASSETS_DIR}/report.js" defer></script>
</head>
<body>
<header>
<h1>{esc(title)}</h1>
<p class="subtitle">{esc(tool) if tool else 'Assessment results'}</p>
<dl class="facts">{dl}</dl>
</header>
<main>
<section id="summary" aria-labelledby="summary-title">
<h2 id="summary-title"><span id="total-count">{self.total}</span> findings</h2>
<div class="summaries">
<table id="by-severity"><caption>By severity</caption><thead><tr><th>Severity</th><th class="num">Findings</th></tr></thead><tbody>{sev_rows}</tbody></table>
<div><table id="by-file"><caption>By file</caption><thead><tr><th>File</th><th class="num">Findings</th></tr></thead><tbody>{file_rows}</tbody></table>{more_files}</div>
</div>
</section>
<section id="findings" aria-labelledby="findings-title">
<h2 id="findings-title">Findings</h2>
<div class="controls">
<label>Filter <input id="filter" type="search" placeholder="file, code, message…" autocomplete="off"></label>
<label>Severity <select id="severity"><option value="">all</option>{options}</select></label>
<span id="shown-count" aria-live="polite">{shown} of {shown} shown</span>
</div>
{partial}<table id="findings-table">
<thead><tr><th data-type="num" aria-sort="ascending">#</th><th>Severity</th><th>Group</th><th>Code</th><th>File</th><th data-type="num">Line</th><th data-type="num">Col</th><th>Message</th></tr></thead>
<tbody>
"""

    def _tail(self) -> str:
        empty = '<p id="no-findings">No findings.</p>\n' if self.total == 0 else ""
        return f"""</tbody>
</table>
{empty}</section>
</main>
</body>
</html>
"""


def copy_assets(target: Path) -> None:
    """Put the page's CSS and JavaScript (package data) into ``target``."""
    target.mkdir(exist_ok=True)
    os.chmod(target, 0o755)  # the web server reads it, whatever the umask of the database server
    for name in ASSETS:
        data = resources.files("swampd.results").joinpath("static", name).read_bytes()
        tmp = target / f".{name}.tmp"
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target / name)
