"""Results to Code Dx through the real daemon: the viewer is the Code Dx double.

The process platform starts tests/codedx_double.py as the viewer, which reads
its per-launch key from run-params.sh as SWAMP's images do, so a wrong or
missing key, a malformed body or an unknown project would be refused.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from support.daemon import wait_for
from swampd.store import Store

DOUBLE = Path(__file__).resolve().parent / "codedx_double.py"


def make(make_daemon: Any, tmp_path: Path, *double_args: str, start: bool = True,
         result_roots: tuple[Path, ...] = ()) -> tuple[Any, Path]:
    record = tmp_path / "codedx-received.jsonl"
    command = ["{python}", str(DOUBLE), "--port", "{port}", "--context", "{url_uuid}",
               "--run-params", "{sandbox}/run-params.sh", "--record", str(record), *double_args]
    daemon = make_daemon(start=start, viewers={"CodeDX": {"command": command}},
                         agentmonitor={"result_roots": [str(tmp_path), *map(str, result_roots)]},
                         extra={"codedx": {"base_url": "http://{vmip}/{url_uuid}", "poll_interval": 0.1,
                                           "timeout": 10}})
    return daemon, record


def received(record: Path, event: str) -> list[dict[str, Any]]:
    if not record.exists():
        return []
    return [e for e in map(json.loads, record.read_text().splitlines()) if e["event"] == event]


def uploads(daemon: Any, project: str) -> list[dict[str, Any]]:
    store = Store(daemon.state_dir / "registry.sqlite3")
    record = store.get_viewer(project, "CodeDX")
    return store.uploads(record.id) if record is not None else []


def result_files(tmp_path: Path, name: str) -> dict[str, Any]:
    report = tmp_path / f"{name}.xml"
    report.write_text(f"<AnalyzerReport tool='{name}'/>")
    source = tmp_path / "zlib-1.2.11.tar.gz"
    if not source.exists():
        import io
        import tarfile

        with tarfile.open(source, "w:gz") as tar:
            info = tarfile.TarInfo("zlib/zlib.c")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"int;"))
    return {"package": "zlib 1.2.11", "package_type": "1", "tool_name": name, "files": [str(report)],
            "source_archive": str(source)}


def all_final(daemon: Any, project: str, count: int) -> bool:
    rows = uploads(daemon, project)
    return len(rows) == count and all(r["state"] in ("done", "failed", "duplicate") for r in rows)


def test_results_are_uploaded_once_the_viewer_is_ready(make_daemon, tmp_path):
    daemon, record = make(make_daemon, tmp_path)
    first = result_files(tmp_path, "cppcheck")
    daemon.api.launchViewer({"projectid": "p-up", "viewer": "CodeDX", "results": [first]})
    wait_for(lambda: all_final(daemon, "p-up", 1), 60, what="first upload")
    [analysis] = received(record, "analysis")
    assert analysis["project_name"] == "zlib 1.2.11"
    report_sha = hashlib.sha256(Path(first["files"][0]).read_bytes()).hexdigest()
    assert [(f["part"], f["filename"]) for f in analysis["files"]] == [("file1", "cppcheck.xml"), ("file2", "zlib-1.2.11.zip")]
    assert analysis["files"][0]["sha256"] == report_sha
    assert uploads(daemon, "p-up")[0]["state"] == "done"

    # More results for the READY viewer (SWAMP sends the project's results with every click):
    # the new one is uploaded into the same project; the one this launch already has is not kept again.
    second = result_files(tmp_path, "clang-sa")
    daemon.api.launchViewer({"projectid": "p-up", "viewer": "CodeDX", "results": [second, first]})
    wait_for(lambda: all_final(daemon, "p-up", 2), 60, what="second upload")
    daemon.api.launchViewer({"projectid": "p-up", "viewer": "CodeDX", "results": [first, second]})
    time_to_settle = daemon.api.getViewer("p-up", "CodeDX")  # the click is answered
    assert time_to_settle["state_name"] == "READY"
    assert [u["state"] for u in uploads(daemon, "p-up")] == ["done", "done"]
    store = Store(daemon.state_dir / "registry.sqlite3")
    assert len(store.results(store.get_viewer("p-up", "CodeDX").id)) == 2
    assert len(received(record, "analysis")) == 2
    assert len(received(record, "project")) == 1
    assert received(record, "refused") == []  # right key, well-formed bodies, known project


def test_failed_uploads_are_retried_with_backoff(make_daemon, tmp_path):
    daemon, record = make(make_daemon, tmp_path, "--fail-uploads", "2", "--job-polls", "3")
    daemon.api.launchViewer({"projectid": "p-retry", "viewer": "CodeDX",
                             "results": [result_files(tmp_path, "pmd")]})
    wait_for(lambda: all_final(daemon, "p-retry", 1), 90, what="upload after retries")
    assert len(received(record, "upload_failed_injected")) == 2
    assert len(received(record, "analysis")) == 1
    assert uploads(daemon, "p-retry")[0]["state"] == "done"


def test_a_failed_analysis_is_reported_and_not_repeated(make_daemon, tmp_path):
    daemon, record = make(make_daemon, tmp_path, "--job-result", "failed")
    daemon.api.launchViewer({"projectid": "p-fail", "viewer": "CodeDX",
                             "results": [result_files(tmp_path, "spotbugs")]})
    wait_for(lambda: all_final(daemon, "p-fail", 1), 60, what="upload to end")
    [row] = uploads(daemon, "p-fail")
    assert row["state"] == "failed" and "ended failed" in row["detail"]
    assert len(received(record, "analysis")) == 1


def test_exactly_once_across_a_crash_between_upload_and_record(make_daemon, tmp_path):
    for point in ("upload.after_post", "upload.before_post"):
        project = f"p-{point.replace('.', '-').replace('_', '-')}"
        root = tmp_path / point
        root.mkdir()
        daemon, record = make(make_daemon, root, start=False)
        daemon.start(extra_env={"SWAMPD_FAILPOINTS": point})
        daemon.api.launchViewer({"projectid": project, "viewer": "CodeDX",
                                 "results": [result_files(root, "cppcheck")]})
        daemon.wait_exit(60)  # the daemon killed itself at the failpoint
        posted = len(received(record, "analysis"))
        assert posted == (1 if point == "upload.after_post" else 0)
        daemon.start()
        wait_for(lambda: all_final(daemon, project, 1), 60, what="upload after restart")
        assert len(received(record, "analysis")) == 1, point
        [row] = uploads(daemon, project)
        assert row["state"] == "done"
        if point == "upload.after_post":
            assert "after an interruption" in row["detail"]  # asked Code Dx, adopted, did not post again
        daemon.cleanup()
