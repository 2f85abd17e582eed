"""Invariant 7: the API key and report token never show in argv, environments, structs or logs."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from support.daemon import wait_for


def environ_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().replace(b"\0", b"\n").decode(errors="replace")
    except OSError:
        return ""


def test_secrets_stay_in_private_files(daemon):
    api = daemon.api
    api.launchViewer({"projectid": "sec", "viewer": "CodeDX"})
    record = wait_for(lambda: (r := api.getViewer("sec", "CodeDX"))["state"] == 2 and r, 60, what="READY")
    (job_dir,) = list(daemon.jobs_dir().iterdir())
    token = (job_dir / "token").read_text().strip()
    bog = (job_dir / f"{record['execrunid']}.bog").read_text()
    apikey = next(line.split("=", 1)[1] for line in bog.splitlines() if line.startswith("apikey="))
    assert len(token) >= 32 and len(apikey) >= 32
    for name in ("token", f"{record['execrunid']}.bog", "run-params.sh"):
        assert stat.S_IMODE(os.stat(job_dir / name).st_mode) == 0o600, name
    assert stat.S_IMODE(os.stat(daemon.state_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(daemon.state_dir / "registry.sqlite3").st_mode) == 0o600
    for pid in daemon._job_tree() + [daemon.proc.pid]:
        from support.daemon import cmdline

        for secret in (token, apikey):
            assert secret not in cmdline(pid), pid
            assert secret not in environ_of(pid), pid
    everything = repr(api.listViewers()) + repr(api.getViewer("sec", "CodeDX")) + repr(
        api.viewerHistory("sec", "CodeDX"))
    assert token not in everything and apikey not in everything
    # the operator's pages (issue 13): the dashboard, its data, a run's details, the long-poll, /metrics
    import json
    import urllib.request

    pages = ""
    for path in ("", "api/runs", f"api/runs/{json.loads(urllib.request.urlopen(daemon.url + 'api/runs').read())['runs'][0]['id']}",
                 "api/changes?since=0&timeout=0", "metrics", "static/dashboard.js"):
        pages += urllib.request.urlopen(daemon.url + path, timeout=10).read().decode()
    assert "vrun_sec_CodeDX" in pages and "swampd_runs" in pages
    assert token not in pages and apikey not in pages and record["url_uuid"] not in pages
    job_logs = [job_dir / "vruntask.log", job_dir / "out" / "viewer.log", job_dir / "out" / "run.out"]
    logs = daemon.log() + "".join(p.read_text() for p in job_logs if p.exists())
    assert token not in logs and apikey not in logs
