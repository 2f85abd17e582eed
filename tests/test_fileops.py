"""The launch path's small file operations do what their pathlib and io counterparts did."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from swampd.fileops import append_text, make_dir, open_append, replace_text, start_text, touch


def test_make_dir_makes_missing_parents_and_accepts_an_existing_directory(tmp_path: Path) -> None:
    make_dir(tmp_path / "a" / "b", 0o700)
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b").st_mode) == 0o700
    make_dir(str(tmp_path / "a" / "b"), 0o700)  # again: nothing to do
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError):
        make_dir(tmp_path / "file")
    with pytest.raises(FileNotFoundError):
        make_dir(tmp_path / "c" / "d", parents=False)


def test_touch_creates_or_sets_the_times_and_never_follows_a_dangling_link(tmp_path: Path) -> None:
    path = tmp_path / "events"
    touch(path)
    assert path.read_text() == ""
    path.write_text("kept")
    os.utime(path, (1, 1))
    touch(path)
    assert path.read_text() == "kept" and os.stat(path).st_mtime > 1
    (tmp_path / "link").symlink_to(tmp_path / "target")
    with pytest.raises(FileNotFoundError):
        touch(tmp_path / "link")
    assert not (tmp_path / "target").exists()


def test_start_text_creates_with_the_text_or_appends_and_never_follows_a_link(tmp_path: Path) -> None:
    path = tmp_path / "job_events.log"
    start_text(path, "RUNSHSTART\n")
    assert path.read_text() == "RUNSHSTART\n"
    start_text(str(path), "WROTEIPADDR\n")  # a start tried again: appended, nothing lost
    assert path.read_text() == "RUNSHSTART\nWROTEIPADDR\n"
    for target in ("target", "kept"):  # dangling, or pointing at a file: both refused
        (tmp_path / f"link-{target}").symlink_to(tmp_path / target)
    (tmp_path / "kept").write_text("mine")
    for link in ("link-target", "link-kept"):
        with pytest.raises(OSError):
            start_text(tmp_path / link, "x\n")
    assert not (tmp_path / "target").exists() and (tmp_path / "kept").read_text() == "mine"


def test_append_text_and_open_append_add_to_the_end(tmp_path: Path) -> None:
    path = tmp_path / "run.out"
    append_text(path, "one\n")
    append_text(str(path), "twö\n")
    fd = open_append(path)
    try:
        os.write(fd, b"three\n")
    finally:
        os.close(fd)
    assert path.read_text(encoding="utf-8") == "one\ntwö\nthree\n"


def test_replace_text_leaves_the_whole_new_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "spawned"
    path.write_text("an old, longer record")
    replace_text(path, "new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["spawned"]
