"""An assessment's ``in/`` as SWAMP's PreAssessment laid it out, for a shared directory and for a VM's input disk."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support.assess import EXECRUNID, assessment_bog, package_archive, sha512
from swampd.vruntask.disks import Ext4Reader
from swampd.vruntask.job import Job
from swampd.vruntask.payloads.assessment import AssessmentPayload
from swampd.vruntask.payloads.assessment_inputs import format_properties, merge_dependencies
from swampd.vruntask.platforms import staging_for
from swampd.vruntask.runner import stage
from swampd.vruntask.sandbox import PrepareError

URL = "http://127.0.0.1:8084/"


def job_for(tmp_path: Path, **changes: str) -> Job:
    package = package_archive(tmp_path / "store")
    return Job.from_bog(assessment_bog(URL, package, tmp_path / "results", **changes), tmp_path / "job", "tok")


def sourced(path: Path, *names: str) -> list[str]:
    """What run.sh sees: the file sourced by a shell, each variable printed."""
    script = '. "$1"; shift; for n in "$@"; do eval "printf \'%s\\n\' \\"\\$$n\\""; done'
    return subprocess.run(["sh", "-c", script, "_", str(path), *names], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def test_a_shared_sandbox_gets_swamps_in_layout_with_host_paths(tmp_path: Path) -> None:
    job = job_for(tmp_path, packagedependencylist="libssl-dev zlib1g-dev", swampd_vm_password="pw_1234")
    staging = staging_for(job)
    stage(staging, AssessmentPayload(job))
    in_dir = tmp_path / "job" / "in"
    assert sorted(p.name for p in in_dir.iterdir()) == [
        "hello-c-2.1.tar.gz", "os-dependencies.conf", "package.conf", "run-params.conf", "run.conf",
        "user-os-dependencies.conf"]
    assert sha512(in_dir / "hello-c-2.1.tar.gz") == sha512(tmp_path / "store" / "hello-c-2.1.tar.gz")
    params = in_dir / "run-params.conf"
    assert params.stat().st_mode & 0o777 == 0o600  # it holds the password
    assert sourced(params, "SWAMP_EVENT_FILE", "IP_ADDR_FILE", "SWAMP_USERID", "SWAMP_PASSWORD", "CAPTURE_FILES") == [
        str(tmp_path / "job" / "out" / "job_events.log"), str(tmp_path / "job" / "out" / "job_ip_address.txt"),
        str(os.getuid()), "pw_1234", "/var/log/messages /var/log/boot.log"]
    assert "CAPTURE_FILES='/var/log/messages /var/log/boot.log'\n" in params.read_text()  # SWAMP's literal
    assert (in_dir / "run.conf").read_text() == "goal=build+assess+parse\ninternet-inaccessible=false\n"
    assert (in_dir / "package.conf").read_text() == (
        "build-dir=.\nbuild-sys=make\npackage-archive=hello-c-2.1.tar.gz\npackage-dir=hello-c-2.1\n"
        "package-short-name=hello-c\npackage-version=2.1\n")  # packageconfig_cmd=null is absent
    assert (in_dir / "user-os-dependencies.conf").read_text() == "dependencies-debian-12-64=libssl-dev zlib1g-dev\n"
    assert (in_dir / "os-dependencies.conf").read_text() == "dependencies-debian-12-64=libssl-dev zlib1g-dev \n"
    guest_bog = (tmp_path / "job" / "out" / f"{EXECRUNID}.bog").read_text()
    assert "toolname=cppcheck" in guest_bog and "swampd_" not in guest_bog  # SWAMP copies the BOG into out/


def test_tool_files_come_from_the_platforms_in_files_with_their_dependencies(tmp_path: Path) -> None:
    tool = tmp_path / "tools" / "cppcheck-2.10"
    (tool / "noarch" / "in-files" / "skipped-dir").mkdir(parents=True)
    (tool / "noarch" / "in-files" / "tool.conf").write_text("tool-archive=cppcheck.tar.gz\n")
    (tool / "noarch" / "in-files" / "cppcheck.tar.gz").write_bytes(b"archive")
    (tool / "noarch" / "swamp-conf").mkdir()
    (tool / "noarch" / "swamp-conf" / "sys-os-dependencies.conf").write_text(
        "dependencies-debian-12-64=make\nno equals sign here\n")
    runsh = tmp_path / "run.sh"
    runsh.write_text("#!/bin/sh\necho hello\n")
    runsh.chmod(0o644)
    job = job_for(tmp_path, toolpath=f"{tool}.tar.gz", swampd_runsh=str(runsh), packagedependencylist="gcc")
    stage(staging_for(job), AssessmentPayload(job))
    in_dir = tmp_path / "job" / "in"
    assert {"tool.conf", "cppcheck.tar.gz", "sys-os-dependencies.conf", "run.sh"} <= {p.name for p in in_dir.iterdir()}
    assert not (in_dir / "skipped-dir").exists()
    assert (in_dir / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (in_dir / "os-dependencies.conf").read_text() == "dependencies-debian-12-64=make gcc \n"


def test_a_vm_gets_guest_paths_and_an_input_disk_holding_in(tmp_path: Path) -> None:
    image = tmp_path / "platform.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    job = job_for(tmp_path, swampd_platform="vm", platform_image=str(image), swampd_output_disk_mib="16")
    staging = staging_for(job)
    stage(staging, AssessmentPayload(job))
    root = tmp_path / "job"
    assert sourced(root / "in" / "run-params.conf", "SWAMP_EVENT_FILE", "IP_ADDR_FILE", "SWAMP_USERID") == [
        "/dev/ttyS1", "/dev/ttyS2", "9999"]
    with Ext4Reader(root / "inputdisk.qcow2") as disk:
        assert set(disk.listing("/")) >= {"run-params.conf", "run.conf", "package.conf", "hello-c-2.1.tar.gz"}
    assert (root / "outputdisk.qcow2").exists() and (root / "delta.qcow2").exists()


def test_a_tampered_or_missing_input_stops_staging_and_leaves_nothing_to_boot(tmp_path: Path) -> None:
    job = job_for(tmp_path, swampd_package_sha512="0" * 128)
    with pytest.raises(PrepareError, match="does not match its SHA-512"):
        stage(staging_for(job), AssessmentPayload(job))
    assert not (tmp_path / "job" / "in" / "hello-c-2.1.tar.gz").exists()
    job = job_for(tmp_path, packagepath=str(tmp_path / "nowhere.tar.gz"), swampd_package_sha512="")
    with pytest.raises(PrepareError, match="cannot read the package archive"):
        stage(staging_for(job), AssessmentPayload(job))
    link = tmp_path / "link.tar.gz"
    link.symlink_to(tmp_path / "store" / "hello-c-2.1.tar.gz")
    job = job_for(tmp_path, packagepath=str(link), swampd_package_sha512="")
    with pytest.raises(PrepareError, match="cannot read the package archive"):
        stage(staging_for(job), AssessmentPayload(job))
    job = job_for(tmp_path, toolpath=str(tmp_path / "no-such-tool"))
    with pytest.raises(PrepareError, match="no in-files"):
        stage(staging_for(job), AssessmentPayload(job))


def test_swamps_property_format_and_dependency_merge() -> None:
    assert format_properties({"b": "two\nlines", "a": " padded ", "c": "plain"}) == (
        "a:= padded \nb:2L=two\nlines\nc=plain\n")
    assert merge_dependencies(["k=a", "k=b=c", "junk", "j=x"]) == "j=x \nk=a b=c \n"
