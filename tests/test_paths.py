"""swampd.paths: a caller's path is read only if it is a regular file under a configured root.

Unit tests of the two functions (the daemon-level behaviour is in
test_caller_paths.py): what is refused, that the refusal says nothing about
files outside the roots, that nothing blocks, and that a symlink swapped in
after the check, or a file that grows past its cap, is still caught.
"""
from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from swampd.paths import PathRefused, confine, open_confined


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "store"
    (base / "p" / "V-Runs" / "u").mkdir(parents=True)
    (base / "p" / "V-Runs" / "u" / "db.tar.gz").write_bytes(b"database")
    return base


def refused(path: str, roots: list[str], max_bytes: int | None = None) -> str:
    with pytest.raises(PathRefused) as caught:
        confine(path, roots, max_bytes, "db_path")
    return str(caught.value)


def test_a_regular_file_under_a_root_is_accepted_and_read(root):
    path = str(root / "p" / "V-Runs" / "u" / "db.tar.gz")
    assert confine(path, [str(root)]) == Path(path)
    assert confine(str(root) + "/./p//V-Runs/u/db.tar.gz", [str(root) + "/"]) is not None
    with open_confined(path, [str(root)], 100) as fh:
        assert fh.read() == b"database"


def test_outside_the_roots_the_answer_is_the_same_whether_the_file_exists_or_not(root):
    for path in ("/etc/shadow", "/etc/no-such-file", "/dev/zero", "/etc", str(root) + "-other/x", str(root)):
        message = refused(path, [str(root)])
        assert message == f"db_path {path!r} is not inside the directories allowed for it: {root}"
    assert "'..'" in refused(f"{root}/p/../../etc/shadow", [str(root)])
    assert "absolute" in refused("p/V-Runs/u/db.tar.gz", [str(root)])
    assert "no directory is configured" in refused(str(root / "p" / "x"), [])


def test_symlinks_below_the_root_are_not_followed(root, tmp_path):
    outside = tmp_path / "secret"
    outside.write_text("secret")
    (root / "p" / "link").symlink_to(outside)
    (root / "p" / "dirlink").symlink_to(tmp_path)
    (root / "p" / "inside-link").symlink_to(root / "p" / "V-Runs" / "u" / "db.tar.gz")
    assert "symbolic link" in refused(str(root / "p" / "link"), [str(root)])
    assert "symbolic link" in refused(str(root / "p" / "dirlink" / "secret"), [str(root)])
    assert "symbolic link" in refused(str(root / "p" / "inside-link"), [str(root)])


def test_a_root_may_itself_be_a_symlink(root, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(root)
    assert confine(str(alias / "p" / "V-Runs" / "u" / "db.tar.gz"), [str(alias)])
    assert confine(str(root / "p" / "V-Runs" / "u" / "db.tar.gz"), [str(alias)])  # the root's real path


def test_fifos_devices_and_directories_are_refused_without_blocking(root):
    fifo = root / "p" / "fifo"
    os.mkfifo(fifo)
    device = root / "p" / "zero"
    os.mknod(device, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
    for path in (fifo, device, root / "p"):
        assert "not a regular file" in refused(str(path), [str(root)])
    assert "does not exist" in refused(str(root / "p" / "missing"), [str(root)])
    assert "symbolic link or a non-directory" in refused(str(root / "p" / "V-Runs" / "u" / "db.tar.gz" / "x"),
                                                          [str(root)])


def test_the_size_is_capped_at_the_check_and_while_reading(root):
    path = root / "p" / "V-Runs" / "u" / "db.tar.gz"
    assert "8 bytes; at most 4" in refused(str(path), [str(root)], max_bytes=4)
    with open_confined(str(path), [str(root)], 10) as fh:
        with open(path, "ab") as grow:
            grow.write(b"-grown-past-the-cap")
        with pytest.raises(OSError) as caught:
            fh.read()
        assert caught.value.errno == errno.EFBIG


def test_a_symlink_swapped_in_after_the_check_is_caught_when_the_file_is_opened(root, tmp_path):
    path = root / "p" / "V-Runs" / "u" / "db.tar.gz"
    confine(str(path), [str(root)])
    outside = tmp_path / "secret"
    outside.write_text("secret")
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(PathRefused, match="symbolic link"):
        open_confined(str(path), [str(root)], 100)
    # ... and a directory on the way swapped for a link, too.
    (root / "p" / "V-Runs" / "u").rename(root / "p" / "V-Runs" / "moved")
    (root / "p" / "V-Runs" / "u").symlink_to(root / "p" / "V-Runs" / "moved")
    with pytest.raises(PathRefused, match="symbolic link"):
        open_confined(str(path), [str(root)], 100)


def test_a_confined_file_is_seekable_for_archive_readers(root):
    archive = root / "p" / "src.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("src/a.c")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"int;"))
    with open_confined(str(archive), [str(root)], 1 << 20) as fh, tarfile.open(fileobj=fh) as tar:
        assert tar.getnames() == ["src/a.c"]
