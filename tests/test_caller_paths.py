"""Paths from callers are refused at the call unless they name a regular file under a configured root
(issue 9, findings 1, 2 and 3).

Before: any local user could make the root daemon read any file (its digest
leaked into the viewer's status, "No such file" / "Is a directory" revealed
any path), block every reconciler worker with ``/dev/zero`` and FIFOs, and
have ``/etc/shadow`` uploaded into their Code Dx project.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

from support.daemon import fault_code, wait_for

BAD_SUM = "0" * 128


def viewer_store(daemon) -> Path:
    """The default viewer_db_roots: the viewer store under the state dir."""
    path = daemon.state_dir / "SCAProjects" / "p" / "V-Runs" / "u"
    path.mkdir(parents=True, exist_ok=True)
    return path


def launch(daemon, project: str, **members):
    return daemon.rpc(timeout=20).agentMonitor.launchViewer({"projectid": project, "viewer": "CodeDX", **members})


def everything_said(daemon) -> str:
    """Every status, history line and log line the daemon has produced."""
    api = daemon.api
    said = [daemon.log()]
    for viewer in api.listViewers():
        said.append(viewer["status"])
        said += [h["status"] for h in api.viewerHistory(viewer["projectid"], viewer["viewer"])]
    return "\n".join(said)


def test_a_db_path_outside_the_roots_is_fault_1_at_the_call_and_reveals_nothing(daemon):
    """Finding 1."""
    messages = {}
    for n, path in enumerate(["/etc/shadow", "/etc/no-such-file", "/etc", "/dev/zero"]):
        try:
            launch(daemon, f"outside-{n}", db_path=path, db_checksum=BAD_SUM)
        except Exception as exc:  # noqa: BLE001 - the fault is what we look at
            messages[path] = str(exc)
        else:
            raise AssertionError(f"db_path {path} was accepted")
    assert all("Fault 1" in m and "is not inside the directories allowed" in m for m in messages.values()), messages
    # Existing file, missing file, directory, device: the same words, only the path differs.
    assert len({m.replace(path, "PATH") for path, m in messages.items()}) == 1
    assert daemon.api.listViewers() == []
    shadow = hashlib.sha512(Path("/etc/shadow").read_bytes()).hexdigest()
    assert shadow[:16] not in everything_said(daemon)


def test_fifos_devices_and_links_in_the_root_are_refused_and_block_no_worker(daemon, tmp_path):
    """Finding 2: one /dev/zero and three FIFOs used to block all four reconciler workers."""
    store = viewer_store(daemon)
    (store / "zero").symlink_to("/dev/zero")
    (store / "shadow").symlink_to("/etc/shadow")
    (store / "etc").symlink_to("/etc")
    fifos = [store / f"fifo{n}" for n in range(3)]
    for fifo in fifos:
        os.mkfifo(fifo)
    for n, path in enumerate([store / "zero", *fifos, store / "shadow", store / "etc" / "shadow", store]):
        assert fault_code(lambda: launch(daemon, f"hostile-{n}", db_path=str(path), db_checksum=BAD_SUM)) == 1
    daemon.api.launchViewer({"projectid": "after", "viewer": "CodeDX"})
    wait_for(lambda: daemon.api.getViewer("after", "CodeDX")["state"] == 2, 60, what="an ordinary launch READY")
    assert [v["projectid"] for v in daemon.api.listViewers()] == ["after"]


def test_a_viewer_database_in_the_root_is_checked_and_a_mismatch_names_no_digest(daemon):
    store = viewer_store(daemon)
    good = store / "codedx_viewerdb.tar.gz"
    with tarfile.open(good, "w:gz") as tar:
        info = tarfile.TarInfo("codedx/db.sql")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"CREATE"))
    digest = hashlib.sha512(good.read_bytes()).hexdigest()
    launch(daemon, "good-db", db_path=str(good), db_checksum=digest)
    wait_for(lambda: daemon.api.getViewer("good-db", "CodeDX")["state"] == 2, 60, what="READY with its database")
    assert launch(daemon, "bad-db", db_path=str(good), db_checksum=BAD_SUM)["launched"] is True
    ended = wait_for(lambda: (r := daemon.api.getViewer("bad-db", "CodeDX"))["state"] == -5 and r, 30, what="ERROR")
    assert "does not match its recorded sha512 checksum" in ended["status"]
    assert digest[:16] not in everything_said(daemon)


def test_results_outside_the_result_roots_are_fault_1_at_the_call(make_daemon, tmp_path):
    """Finding 3: with [codedx] configured, /etc/shadow as a result file was uploaded to the caller."""
    daemon = make_daemon(extra={"codedx": {"base_url": "http://{vmip}/{url_uuid}"}})
    results_dir = daemon.state_dir / "results" / "r1"
    results_dir.mkdir(parents=True)
    report = results_dir / "out.xml"
    report.write_text("<AnalyzerReport/>")
    source = results_dir / "pkg.tar.gz"
    source.write_bytes(b"not really a tar")
    cases = [
        {"package": "p", "files": ["/etc/shadow"]},
        {"package": "p", "files": [str(report), "/etc/passwd"]},
        {"package": "p", "files": [str(report)], "source_archive": "/etc/shadow"},
        {"package": "p", "files": [str(results_dir)]},
        {"package": "p", "files": [str(tmp_path / "elsewhere.xml")]},
    ]
    for n, result in enumerate(cases):
        assert fault_code(lambda: launch(daemon, f"res-{n}", results=[result])) == 1, result
    assert daemon.api.listViewers() == []
    ok = launch(daemon, "res-ok", results=[{"package": "p", "files": [str(report)], "source_archive": str(source)}])
    assert ok["launched"] is True


def test_a_snapshot_path_outside_the_roots_is_fault_1(daemon):
    """vruntask finish hands a saved database back; its path is confined like db_path."""
    daemon.api.launchViewer({"projectid": "snap", "viewer": "CodeDX"})
    record = wait_for(lambda: (r := daemon.api.getViewer("snap", "CodeDX"))["state"] == 2 and r, 60, what="READY")
    (token,) = [p.read_text().strip() for p in daemon.jobs_dir().glob("*/token")]
    snapshot = {"execrunid": record["execrunid"], "epoch": record["epoch"], "token": token,
                "path": "/etc/shadow", "checksum": BAD_SUM}
    assert fault_code(lambda: daemon.api.viewerSnapshot(snapshot)) == 1
    saved = viewer_store(daemon) / "codedx_viewerdb_1.tar.gz"
    saved.write_bytes(b"dump")
    assert daemon.api.viewerSnapshot({**snapshot, "path": str(saved)}) is True
