"""The Code Dx client against the double: keys, refusals, TLS, and source zips."""
from __future__ import annotations

import io
import subprocess
from contextlib import ExitStack
import tarfile
import zipfile

import pytest
import requests

from codedx_double import CodeDx, serve
from support.daemon import free_port
from swampd.agentmonitor.uploads import source_zip, upload_files
from swampd.clients.codedx import CodeDxClient, CodeDxRejected, CodeDxUnavailable

KEY = "5f0c6c57-0a7e-4d8e-9f0e-6f3c8f1b2a11"


@pytest.fixture
def double():
    codedx = CodeDx(KEY)
    port = free_port()
    server = serve(codedx, port, "proxy-abc")
    yield codedx, f"http://127.0.0.1:{port}/proxy-abc"
    server.shutdown()


def test_double_refuses_missing_or_wrong_key_bad_multipart_and_unknown_project(double):
    codedx, base = double
    assert requests.get(f"{base}/api/projects", timeout=5).status_code == 401
    assert requests.get(f"{base}/api/projects", headers={"Authorization": "System-Key nope"},
                        timeout=5).status_code == 403
    ok = {"Authorization": f"System-Key {KEY}"}
    pid = requests.put(f"{base}/api/projects", json={"name": "p"}, headers=ok, timeout=5).json()["id"]
    bad_bodies = [
        ("text/plain", b"file1=x"),
        ("multipart/form-data; boundary=XX", b"--XX\r\nContent-Disposition: form-data; name=\"file1\"\r\n\r\nx"),
        ("multipart/form-data; boundary=XX", b"--XX\r\nContent-Disposition: form-data; name=\"evil\"; "
                                             b"filename=\"a\"\r\n\r\nx\r\n--XX--\r\n"),
        ("multipart/form-data; boundary=XX", b"--XX--\r\n"),
    ]
    for ctype, body in bad_bodies:
        r = requests.post(f"{base}/api/projects/{pid}/analysis", data=body,
                          headers={**ok, "Content-Type": ctype}, timeout=5)
        assert r.status_code == 400, (ctype, body, r.text)
    r = requests.post(f"{base}/api/projects/99/analysis", files={"file1": ("a.xml", b"x")}, headers=ok, timeout=5)
    assert r.status_code == 404
    assert [e["status"] for e in codedx.received if e["event"] == "refused"] == [401, 403, 400, 400, 400, 400, 404]
    assert not [e for e in codedx.received if e["event"] == "analysis"]


def test_client_find_or_create_upload_and_job(double, tmp_path):
    codedx, base = double
    result = tmp_path / "results.xml"
    result.write_text("<AnalyzerReport/>")
    with CodeDxClient(base, KEY) as client:
        pid = client.find_or_create_project("zlib 1.2.11")
        assert client.find_or_create_project("zlib 1.2.11") == pid  # found, not created twice
        analysis = client.upload(pid, [("results.xml", result)])
        assert client.job_status(analysis.job_id) == "completed"
        client.name_analysis(pid, analysis.analysis_id, "marker")
        assert [a["name"] for a in client.analyses(pid)] == ["marker"]
        with pytest.raises(CodeDxRejected) as refused:
            client.upload(42, [("results.xml", result)])
        assert refused.value.status == 404
    [event] = [e for e in codedx.received if e["event"] == "analysis"]
    assert event["project_name"] == "zlib 1.2.11" and event["files"][0]["part"] == "file1"
    with CodeDxClient(base, "wrong-key") as client, pytest.raises(CodeDxRejected) as refused:
        client.projects()
    assert refused.value.status == 403 and "wrong-key" not in str(refused.value)
    with CodeDxClient(base, KEY, auth="api-key") as client, pytest.raises(CodeDxRejected):
        client.projects()  # this double takes the System-Key form only


def test_tls_is_verified_and_a_ca_bundle_can_be_given(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True)
    port = free_port()
    server = serve(CodeDx(KEY), port, "ctx", tls=(str(cert), str(key)))
    try:
        base = f"https://127.0.0.1:{port}/ctx"
        with CodeDxClient(base, KEY) as client, pytest.raises(CodeDxUnavailable, match="TLS verification"):
            client.projects()
        with CodeDxClient(base, KEY, verify=str(cert)) as client:
            assert client.projects() == []
    finally:
        server.shutdown()


def test_source_archives_become_zips(tmp_path):
    src = tmp_path / "pkg.tar.gz"
    with tarfile.open(src, "w:gz") as tar:
        for name, data in (("pkg/a.c", b"int main;"), ("../evil", b"x"), ("./pkg/b.h", b"h")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    roots, cap = [str(tmp_path)], 1 << 20
    with ExitStack() as opened:
        name, fh = source_zip(src.name, opened.enter_context(open(src, "rb")), tmp_path / "scratch", opened)
        assert name == "pkg.zip"
        assert sorted(zipfile.ZipFile(fh).namelist()) == ["pkg/a.c", "pkg/b.h"]
        zipped = tmp_path / "lib.jar"
        with zipfile.ZipFile(zipped, "w") as zf:
            zf.writestr("A.java", "class A {}")
        name, fh = source_zip(zipped.name, opened.enter_context(open(zipped, "rb")), tmp_path / "s2", opened)
        assert name == "lib.zip" and fh.read() == zipped.read_bytes()
        result = tmp_path / "r.xml"
        result.write_text("x")
        files = upload_files({"files": [str(result)], "source_archive": str(src), "package_type": "1"},
                             tmp_path / "s3", roots, cap, opened)
        assert [n for n, _ in files] == ["r.xml", "pkg.zip"]
        files = upload_files({"files": [str(result)], "source_archive": str(src), "package_type": "3"},
                             tmp_path / "s4", roots, cap, opened)
        assert [n for n, _ in files] == ["r.xml"]  # bytecode "source" is not uploaded


def test_result_files_are_read_only_under_their_roots(tmp_path):
    """Finding 3, where the file is read: a path outside the roots, a link or a FIFO is never uploaded."""
    import os

    from swampd.agentmonitor.uploads import UploadFailed

    root = tmp_path / "results"
    root.mkdir()
    (root / "shadow").symlink_to("/etc/shadow")
    os.mkfifo(root / "fifo")
    with ExitStack() as opened:
        for path in ("/etc/shadow", str(root / "shadow"), str(root / "fifo")):
            with pytest.raises(UploadFailed):
                upload_files({"files": [path]}, tmp_path / "s", [str(root)], 1 << 20, opened)
