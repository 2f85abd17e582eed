"""Disk images built with the real tools, then read back with the real tools."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from swampd.vruntask import disks


def _tree(source: Path) -> None:
    (source / "sub" / "deeper").mkdir(parents=True)
    files = {"run-params.sh": (b"export A='b'\n", 0o600), "codedx.sql": (b"select 1;\n" * 1000, 0o644),
             "sub/tool": (b"#!/bin/sh\necho hi\n", 0o755), "sub/deeper/empty": (b"", 0o640)}
    for rel, (data, mode) in files.items():
        path = source / rel
        path.write_bytes(data)
        os.chmod(path, mode)
    os.chmod(source / "sub", 0o750)


def test_input_disk_holds_exactly_the_files_with_their_modes(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    _tree(source)
    image = tmp_path / disks.INPUT_DISK
    disks.build_input_disk(source, image)
    assert disks.image_info(image)["format"] == "qcow2"
    with disks.Ext4Reader(image) as reader:
        tree = reader.tree()
        assert {path: oct(mode) for path, mode in tree.items()} == {
            "run-params.sh": oct(0o100600), "codedx.sql": oct(0o100644), "sub": oct(0o040750),
            "sub/tool": oct(0o100755), "sub/deeper": oct(0o040755), "sub/deeper/empty": oct(0o100640),
        }
        assert reader.copy_out("/codedx.sql", tmp_path / "back.sql")
        assert reader.copy_out("/sub/tool", tmp_path / "tool")
    assert (tmp_path / "back.sql").read_bytes() == (source / "codedx.sql").read_bytes()
    assert (tmp_path / "tool").read_bytes() == b"#!/bin/sh\necho hi\n"


def test_input_disk_grows_with_its_content(tmp_path: Path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    (source / "big").write_bytes(os.urandom(40 << 20))
    disks.build_input_disk(source, tmp_path / "in.qcow2")
    assert int(disks.image_info(tmp_path / "in.qcow2")["virtual-size"]) > 40 << 20  # type: ignore[call-overload]
    with disks.Ext4Reader(tmp_path / "in.qcow2") as reader:
        assert reader.copy_out("/big", tmp_path / "big")
    assert (tmp_path / "big").read_bytes() == (source / "big").read_bytes()


def test_output_disk_is_an_empty_ext4_of_the_asked_size(tmp_path: Path) -> None:
    image = tmp_path / disks.OUTPUT_DISK
    disks.build_output_disk(image, 3 << 30)
    info = disks.image_info(image)
    assert info["format"] == "qcow2" and info["virtual-size"] == 3 << 30
    assert image.stat().st_size < 16 << 20  # sparse: a 3 GiB disk costs almost nothing
    assert oct(image.stat().st_mode & 0o777) == oct(0o644)
    with disks.Ext4Reader(image) as reader:
        assert reader.tree() == {}
        assert reader.copy_out("/codedx_viewerdb.tar.gz", tmp_path / "x") is False
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(tmp_path / "o.raw")], check=True)
    blkid = subprocess.run(["dumpe2fs", "-h", str(tmp_path / "o.raw")], capture_output=True, text=True, check=True)
    assert "Filesystem volume name:   swampout" in blkid.stdout


def test_delta_is_backed_by_the_platform_image(tmp_path: Path) -> None:
    platform = tmp_path / "images" / "condor-codedx-master-20260101.qcow2"
    platform.parent.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(platform), "1G"], check=True)
    delta = tmp_path / disks.DELTA_DISK
    disks.create_delta(platform, delta)
    info = disks.image_info(delta)
    assert info["format"] == "qcow2"
    assert disks.backing_file(delta) == str(platform.resolve())
    assert info["backing-filename-format"] == "qcow2"
    assert info["virtual-size"] == 1 << 30
    assert platform.stat().st_mtime <= delta.stat().st_mtime


def test_delta_of_a_raw_platform_image_records_its_format(tmp_path: Path) -> None:
    platform = tmp_path / "img.raw"
    platform.write_bytes(b"\0" * (1 << 20))
    disks.create_delta(platform, tmp_path / "d.qcow2")
    assert disks.image_info(tmp_path / "d.qcow2")["backing-filename-format"] == "raw"


def test_missing_platform_image_is_an_error_with_the_path(tmp_path: Path) -> None:
    with pytest.raises(disks.DiskError, match="does not exist"):
        disks.create_delta(tmp_path / "nope.qcow2", tmp_path / "d.qcow2")
    assert not (tmp_path / "d.qcow2").exists()


@pytest.mark.parametrize("path", ["/a b", "/x;rm -rf /", "relative", "/../etc/shadow", '/a"b'])
def test_debugfs_gets_only_plain_paths(tmp_path: Path, path: str) -> None:
    disks.build_output_disk(tmp_path / "o.qcow2", 16 << 20)
    with disks.Ext4Reader(tmp_path / "o.qcow2") as reader:
        with pytest.raises(disks.DiskError, match="refusing"):
            reader.copy_out(path, tmp_path / "x")


def test_reader_leaves_no_raw_copy_behind(tmp_path: Path) -> None:
    disks.build_output_disk(tmp_path / "o.qcow2", 16 << 20)
    with disks.Ext4Reader(tmp_path / "o.qcow2") as reader:
        reader.tree()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.qcow2"]
