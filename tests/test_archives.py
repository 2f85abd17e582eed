"""Archive extraction that cannot leave its directory, follow a link out, or grow unbounded.

The same extractor unpacks results (zip reports, outputdisk.tar.gz) and
restores saved viewer databases, on Python 3.11.2 as well (no tarfile filter=).
"""
from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from swampd.results.archives import Limits, extract_tar, extract_zip
from swampd.results.errors import ResultsError
from swampd.vruntask.viewerdb import SnapshotError, restore_snapshot


def make_tar(path: Path, members: list[tuple[str, str, bytes | str]], mode: str = "w:gz") -> Path:
    """members: (kind, name, data or link target); kind in file dir sym lnk chr fifo."""
    with tarfile.open(path, mode) as tar:
        for kind, name, data in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                assert isinstance(data, bytes)
                info.size, info.mode = len(data), 0o4755 if name.endswith(".sh") else 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "lnk": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}[kind]
            if kind in ("sym", "lnk"):
                info.linkname = str(data)
            tar.addfile(info)
    return path


def make_zip(path: Path, members: list[tuple[str, bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return path


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_a_good_tar_unpacks_with_safe_modes_and_inside_links(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", [
        ("dir", "out", b""), ("file", "out/status.out", b"PASS: all\n"), ("file", "out/run.sh", b"#!/bin/sh\n"),
        ("sym", "out/latest", "status.out"), ("lnk", "out/copy.out", "out/status.out"),
        ("sym", "out/sub/up", "../status.out"), ("file", "./out/./deep/x.txt", b"x")])
    dest = tmp_path / "dest"
    names = extract_tar(archive, dest)
    assert names[0] == "out" and len(names) == 7
    assert (dest / "out/latest").read_text() == "PASS: all\n" and (dest / "out/sub/up").read_text() == "PASS: all\n"
    assert os.stat(dest / "out/copy.out").st_ino == os.stat(dest / "out/status.out").st_ino
    assert stat.S_IMODE(os.stat(dest / "out/run.sh").st_mode) == 0o755  # setuid dropped, exec kept
    assert stat.S_IMODE(os.stat(dest / "out/status.out").st_mode) == 0o644
    assert (dest / "out/deep/x.txt").read_text() == "x"


@pytest.mark.parametrize("members,why", [
    ([("file", "../evil.txt", b"x")], "'..'"),
    ([("file", "out/../../evil.txt", b"x")], "'..'"),
    ([("file", "/tmp/evil-absolute.txt", b"x")], "absolute"),
    ([("sym", "out/link", "/etc")], "leaves the directory"),
    ([("sym", "out/link", "../../..")], "leaves the directory"),
    ([("dir", "out", b""), ("sym", "out/a", "."), ("sym", "out/a/b", "../..")], "leaves the directory"),
    ([("lnk", "out/hard", "../../etc/passwd")], "'..'"),
    ([("lnk", "out/hard", "/etc/passwd")], "absolute"),
    ([("chr", "out/null", b"")], "device"),
    ([("fifo", "out/pipe", b"")], "device"),
])
def test_members_that_leave_or_are_special_are_refused(tmp_path, members, why):
    archive = make_tar(tmp_path / "a.tar.gz", members)
    dest = tmp_path / "jail" / "dest"
    with pytest.raises(ResultsError, match=why):
        extract_tar(archive, dest)
    assert tree(tmp_path / "jail") in (["dest"], ["dest", "dest/out"], ["dest", "dest/out", "dest/out/a"])
    assert not Path("/tmp/evil-absolute.txt").exists()


def test_a_link_placed_first_cannot_redirect_a_later_write(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = make_tar(tmp_path / "a.tar", [("sym", "d", str(outside)), ("file", "d/owned.txt", b"x")], mode="w")
    with pytest.raises(ResultsError, match="leaves the directory"):
        extract_tar(archive, tmp_path / "dest")
    assert list(outside.iterdir()) == []


def test_size_and_member_caps(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", [("file", f"out/f{i}", b"0" * 1000) for i in range(20)])
    with pytest.raises(ResultsError, match="expands past 5000 bytes"):
        extract_tar(archive, tmp_path / "d1", Limits(max_bytes=5000, max_members=None))
    with pytest.raises(ResultsError, match="more than 10 members"):
        extract_tar(archive, tmp_path / "d2", Limits(max_bytes=None, max_members=10))
    assert len(extract_tar(archive, tmp_path / "d3", Limits(max_bytes=20_000, max_members=20))) == 20


def test_a_zip_bomb_stops_at_the_cap_without_filling_the_disk(tmp_path):
    bomb = make_zip(tmp_path / "bomb.zip", [("index.html", b"<p>", 0o100644), ("big.bin", b"\0" * (8 << 20), 0o100644)])
    assert bomb.stat().st_size < 100_000
    dest = tmp_path / "dest"
    with pytest.raises(ResultsError, match="expands past"):
        extract_zip(bomb, dest, Limits(max_bytes=1 << 20, max_members=100))
    assert sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) <= (1 << 20) + (1 << 20)


@pytest.mark.parametrize("name,mode,data,why", [
    ("../escape.html", 0o100644, b"x", "'..'"),
    ("/abs.html", 0o100644, b"x", "absolute"),
    ("link", 0o120777, b"/etc/passwd", "leaves the directory"),
    ("link", 0o120777, b"../../x", "leaves the directory"),
    ("dev", 0o020644, b"", "device"),
])
def test_zip_members_that_leave_are_refused(tmp_path, name, mode, data, why):
    archive = make_zip(tmp_path / "r.zip", [("index.html", b"ok", 0o100644), (name, data, mode)])
    with pytest.raises(ResultsError, match=why):
        extract_zip(archive, tmp_path / "jail" / "dest")
    assert tree(tmp_path / "jail") == ["dest", "dest/index.html"]


def test_a_garbage_archive_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b this is not gzip")
    with pytest.raises(ResultsError, match="cannot be unpacked"):
        extract_tar(junk, tmp_path / "d")
    with pytest.raises(ResultsError, match="cannot be unpacked"):
        extract_zip(junk, tmp_path / "d")


def _snapshot(path: Path, members: list[tuple[str, str, bytes | str]]) -> tuple[Path, str]:
    make_tar(path, members)
    return path, hashlib.sha512(path.read_bytes()).hexdigest()


def test_viewer_database_restore_works_without_tarfile_filter(tmp_path):
    """restore_snapshot used extractall(filter=...), which Python 3.11.2 does not have."""
    db, digest = _snapshot(tmp_path / "codedx_viewerdb.tar.gz", [
        ("dir", "codedx_viewerdb", b""), ("file", "codedx_viewerdb/ibdata1", b"data" * 100),
        ("file", "codedx_viewerdb/db.opt", b"opt")])
    names = restore_snapshot(db, digest, tmp_path / "in")
    assert names == ["codedx_viewerdb", "codedx_viewerdb/ibdata1", "codedx_viewerdb/db.opt"]
    assert (tmp_path / "in/codedx_viewerdb/ibdata1").read_bytes() == b"data" * 100


def test_a_hostile_viewer_database_is_refused_not_restored(tmp_path):
    for n, members in enumerate([[("file", "../../escape", b"x")],
                                 [("file", "ok", b"x"), ("sym", "evil", "/etc/shadow")],
                                 [("file", "ok", b"x"), ("chr", "dev", b"")]]):
        db, digest = _snapshot(tmp_path / f"db{n}.tar.gz", members)
        with pytest.raises(SnapshotError):
            restore_snapshot(db, digest, tmp_path / f"in{n}")
        assert not (tmp_path / "escape").exists()
