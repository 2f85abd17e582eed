"""results.store: a run's results folder copied into the project's results tree, checked file by file."""
from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from swampd.results.metrics import PackageLines, package_lines
from swampd.results.store import ResultsStoreError, StoredResult, store_results
from swampd.runreports import ResultFile, RunResults, StatusSummary

PROJECT = "9a7e0000-0000-4000-8000-000000000001"
R = "5C1B6B0E-AAAA-4BBB-8CCC-000000000001"
METRIC_ID = "M-4e0c0000-0000-4000-8000-000000000001"
SCARF = """<?xml version="1.0" encoding="UTF-8"?>
<AnalyzerReport tool_name="cloc" tool_version="1.80" uuid="u">
  <Metric id="1"><Location><SourceFile>pkg1/a.c</SourceFile></Location><Type>code-lines</Type><Value>120</Value></Metric>
  <MetricSummaries>
    <MetricSummary><Type>code-lines</Type><Count>1</Count><Sum>120</Sum></MetricSummary>
    <MetricSummary><Type>comment-lines</Type><Count>1</Count><Sum>30</Sum></MetricSummary>
    <MetricSummary><Type>blank-lines</Type><Count>1</Count><Sum>10</Sum></MetricSummary>
    <MetricSummary><Type>total-lines</Type><Count>1</Count><Sum>160</Sum></MetricSummary>
    <MetricSummary><Type>language</Type><Count>1</Count></MetricSummary>
  </MetricSummaries>
</AnalyzerReport>
"""
CONTENTS = {
    "scarf": ("parsed_results.xml", SCARF.encode()),
    "outputdisk": ("outputdisk.tar.gz", b"out archive " * 1000),
    "inputdisk": ("inputdisk.tar.gz", b"in archive"),
    "source": ("hello-c-2.1.tar.gz", b"the package"),
    "report": ("assessment-report.json", b'{"status": []}'),
    "log": ("run.out", b"run.sh log\n"),
    "status": ("status.out", b"NOTE: begin\nPASS: all\nNOTE: end\n"),
    "weaknesses": ("weaknesses.txt", b"weaknesses: 3\n"),
}


def make_folder(root: Path, result: str = "scarf", roles: tuple[str, ...] = tuple(CONTENTS)) -> RunResults:
    """A results folder as the node builds it, and the RunResults it reports."""
    folder = root / "results" / "0b1f0000-0000-4000-8000-000000000001" / "e1"
    folder.mkdir(parents=True)
    files = {}
    for role in roles:
        name, data = CONTENTS[role]
        (folder / name).write_bytes(data)
        files[role] = ResultFile(name, str(folder / name), hashlib.sha512(data).hexdigest(), len(data))
    status = StatusSummary(found=True, verdict="pass", weaknesses=3, text="NOTE: begin\nPASS: all\nNOTE: end")
    return RunResults(results_dir=str(folder), files=files, result=result, status_out=status, have_results=True,
                      scarf_bugs=3, lines_of_code=-1, outcome="Finished")


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_an_arun_goes_to_a_results_and_a_logs(tmp_path):
    results = make_folder(tmp_path)
    store = tmp_path / "SCAProjects"
    store.mkdir()
    got = store_results(results, store, PROJECT, R, metric=False)
    base = store / PROJECT
    assert tree(store) == {
        f"{PROJECT}/A-Results/{R}/parsed_results.xml": CONTENTS["scarf"][1],
        f"{PROJECT}/A-Results/{R}/outputdisk.tar.gz": CONTENTS["outputdisk"][1],
        f"{PROJECT}/A-Results/{R}/hello-c-2.1.tar.gz": CONTENTS["source"][1],
        f"{PROJECT}/A-Results/{R}/assessment-report.json": CONTENTS["report"][1],
        f"{PROJECT}/A-Logs/{R}/run.out": CONTENTS["log"][1],
    }
    files = results.files
    assert got == StoredResult(
        result_uuid=R, result_path=str(base / "A-Results" / R / "parsed_results.xml"),
        result_checksum=files["scarf"].sha512,
        source_archive_path=str(base / "A-Results" / R / "hello-c-2.1.tar.gz"),
        source_archive_checksum=files["source"].sha512,
        log_path=str(base / "A-Logs" / R / "run.out"), log_checksum=files["log"].sha512,
        weakness_count=3, lines_of_code=-1, status_out="NOTE: begin\nPASS: all\nNOTE: end", status_out_error="")
    for path in (base / "A-Results" / R).iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # the Native viewer (mysql) reads them
    assert stat.S_IMODE((base / "A-Results" / R).stat().st_mode) == 0o755
    assert not [p for p in store.rglob(".*")]  # no temporary names left behind


def test_a_failed_run_stores_its_output_archive_as_the_result_once(tmp_path):
    results = make_folder(tmp_path, result="outputdisk", roles=("outputdisk", "log", "status", "report"))
    results = replace(results, status_out=StatusSummary(found=True, verdict="fail", first_failure="build",
                                                        text="FAIL: build\nFAIL: all"))
    store = tmp_path / "store"
    store.mkdir()
    got = store_results(results, store, PROJECT, R, metric=False)
    assert sorted(tree(store / PROJECT / "A-Results" / R)) == ["assessment-report.json", "outputdisk.tar.gz"]
    assert got.result_path.endswith("/outputdisk.tar.gz") and got.status_out_error == "build"
    assert (got.source_archive_path, got.source_archive_checksum) == ("", "")  # no package archive: no path


def test_a_file_that_is_not_what_the_node_reported_is_refused(tmp_path):
    results = make_folder(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    Path(results.files["source"].path).write_bytes(b"the package, changed after it was described")
    with pytest.raises(ResultsStoreError, match=r"hello-c-2\.1\.tar\.gz .*SHA-512 .* not the .* reported"):
        store_results(results, store, PROJECT, R, metric=False)
    leftovers = [p.name for p in (store / PROJECT / "A-Results" / R).iterdir()]
    assert "hello-c-2.1.tar.gz" not in leftovers and not [n for n in leftovers if n.startswith(".")]


def test_links_special_files_and_names_outside_the_folder_are_refused(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    secret = tmp_path / "secret"
    secret.write_bytes(b"not for the results tree")
    digest = hashlib.sha512(secret.read_bytes()).hexdigest()

    results = make_folder(tmp_path / "a")
    link = Path(results.files["report"].path)
    link.unlink()
    link.symlink_to(secret)
    files = {**results.files, "report": replace(results.files["report"], sha512=digest)}
    with pytest.raises(ResultsStoreError, match="assessment-report.json .*symbolic link"):
        store_results(replace(results, files=files), store, PROJECT, R, metric=False)

    results = make_folder(tmp_path / "b")
    fifo = Path(results.files["log"].path)
    fifo.unlink()
    os.mkfifo(fifo)  # opening it for reading would block forever: refused before that
    with pytest.raises(ResultsStoreError, match="run.out .*not a regular file"):
        store_results(results, store, PROJECT, R, metric=False)

    results = make_folder(tmp_path / "c")
    for outside in (ResultFile("secret", str(secret), digest, 24),
                    ResultFile("../../../secret", str(tmp_path / "c" / "results" / ".." / "secret"), digest, 24),
                    ResultFile("secret", str(Path(results.results_dir) / "secret"), digest, 24)):
        files = {**results.files, "source": outside}
        with pytest.raises(ResultsStoreError):
            store_results(replace(results, files=files), store, PROJECT, R, metric=False)
    assert not (store / PROJECT / "A-Results" / R / "secret").exists()

    results = make_folder(tmp_path / "d")
    files = {**results.files, "report": replace(results.files["report"], name="parsed_results.xml",
                                                path=results.files["scarf"].path)}
    with pytest.raises(ResultsStoreError, match="both named"):  # two roles, one name, different files
        store_results(replace(results, files=files), store, PROJECT, R, metric=False)

    results = make_folder(tmp_path / "e")
    with pytest.raises(ResultsStoreError, match="not an identifier"):
        store_results(results, store, "../../etc", R, metric=False)
    with pytest.raises(ResultsStoreError, match="not an identifier"):
        store_results(results, store, PROJECT, "R/../../x", metric=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (store / "linked-project").symlink_to(elsewhere)
    with pytest.raises(ResultsStoreError, match="not a directory"):
        store_results(results, store, "linked-project", R, metric=False)
    assert not list(elsewhere.iterdir())
    with pytest.raises(FileNotFoundError):  # a store whose parent is not there: retry later
        store_results(results, tmp_path / "not-mounted" / "SCAProjects", PROJECT, R, metric=False)
    store_results(results, tmp_path / "new-store", PROJECT, R, metric=False)  # the store itself is made
    assert (tmp_path / "new-store" / PROJECT / "A-Results" / R / "parsed_results.xml").is_file()


def test_a_second_call_after_a_crash_copies_nothing_again(tmp_path):
    results = make_folder(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    first = store_results(results, store, PROJECT, R, metric=False)
    inodes = {p: p.stat().st_ino for p in store.rglob("*") if p.is_file()}
    again = store_results(results, store, PROJECT, R, metric=False)
    assert again == first and {p: p.stat().st_ino for p in store.rglob("*") if p.is_file()} == inodes

    # a crash mid-copy: a partial temporary file, and a copy cut short under the final name
    dest = store / PROJECT / "A-Results" / R
    (dest / ".outputdisk.tar.gz.partial").write_bytes(b"half")
    (dest / "outputdisk.tar.gz").write_bytes(b"out archive")
    kept = (dest / "parsed_results.xml").stat().st_ino
    assert store_results(results, store, PROJECT, R, metric=False) == first
    assert (dest / "outputdisk.tar.gz").read_bytes() == CONTENTS["outputdisk"][1]
    assert not (dest / ".outputdisk.tar.gz.partial").exists()
    assert (dest / "parsed_results.xml").stat().st_ino == kept  # the complete copy was left alone

    # complete copies are enough: the results folder may be gone by the time of the retry
    for path in Path(results.results_dir).iterdir():
        path.unlink()
    assert store_results(results, store, PROJECT, R, metric=False) == first


def test_a_metric_run_goes_to_metrics_with_its_line_counts(tmp_path):
    results = make_folder(tmp_path)
    store = tmp_path / "SCAPackages"
    store.mkdir()
    got = store_results(results, store, "METRIC", R, metric=True, execrunid=METRIC_ID)
    assert sorted(tree(store)) == [f"Metrics/{METRIC_ID}/{name}" for name in
                                   ("assessment-report.json", "outputdisk.tar.gz", "parsed_results.xml")]
    assert got.result_path == str(store / "Metrics" / METRIC_ID / "parsed_results.xml")
    assert (got.source_archive_path, got.log_path) == ("", "")
    assert got.package_lines == PackageLines(code=120, comment=30, blank=10, total=160)
    with pytest.raises(ResultsStoreError, match="M- run id"):
        store_results(results, store, "METRIC", R, metric=True, execrunid="0b1f0000")
    with pytest.raises(ResultsStoreError, match="M- run id"):  # its folder is an ARun's: no M- id to use
        store_results(results, store, "METRIC", R, metric=True)

    # with a metric store (SWAMP's /swamp/store/SCAPackages/Metrics), the M- id from the results folder
    folder = tmp_path / "node" / "results" / METRIC_ID / "e2"
    folder.parent.mkdir(parents=True)
    Path(results.results_dir).rename(folder)
    moved = replace(results, results_dir=str(folder),
                    files={role: replace(f, path=str(folder / f.name)) for role, f in results.files.items()})
    metrics = tmp_path / "Metrics"
    metrics.mkdir()
    got = store_results(moved, tmp_path / "SCAProjects-unused", "METRIC", R, metric=True, metric_store=metrics)
    assert got.result_path == str(metrics / METRIC_ID / "parsed_results.xml")
    assert sorted(p.name for p in (metrics / METRIC_ID).iterdir()) == [
        "assessment-report.json", "outputdisk.tar.gz", "parsed_results.xml"]
    # what the daemon keeps in its outbox, and reads back for the database call
    assert StoredResult.from_payload(json.loads(json.dumps(got.to_payload()))) == got


def test_package_lines_need_all_four_whole_numbers_and_clean_xml(tmp_path):
    path = tmp_path / "scarf.xml"
    path.write_text(SCARF.replace("<Sum>10</Sum>", "<Sum>10.5</Sum>"))
    assert package_lines(path) is None
    path.write_text(SCARF.replace("<MetricSummary><Type>total-lines</Type><Count>1</Count><Sum>160</Sum>"
                                  "</MetricSummary>", ""))
    assert package_lines(path) is None
    path.write_text('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><AnalyzerReport>&a;</AnalyzerReport>')
    from swampd.results.errors import ResultsError

    with pytest.raises(ResultsError, match="DOCTYPE"):
        package_lines(path)
