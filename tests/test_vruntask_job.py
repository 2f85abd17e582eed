"""The execute node's job: the BOG and token read once into typed, checked values."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from swampd.bog import format_bog, write_private
from swampd.vruntask.job import Job, JobError, load_job

GOOD = {
    "execrunid": "vrun_p-1_CodeDX", "projectid": "p-1", "viewer": "CodeDX", "viewer_uuid": "vi-1",
    "userid": "u1", "urluuid": "proxy-0f1e", "apikey": "secret-api-key", "db_path": "/store/db.tar.gz",
    "db_checksum": "ab" * 64, "platform_image": "/images/codedx.qcow2",
    "swampd_agentmonitor_url": "http://127.0.0.1:8084/", "swampd_epoch": "3", "swampd_launch_id": "a" * 32,
    "swampd_platform": "vm", "swampd_ready_timeout": "90", "swampd_vm_memory": "512", "swampd_vm_cpus": "1",
    "swampd_boot_timeout": "30", "swampd_shutdown_timeout": "45", "swampd_output_disk_mib": "64",
    "swampd_viewer_command": json.dumps(["{python}", "-m", "http.server", "{port}"]),
    "swampd_viewer_store": "/store",
}


def write_job(job_dir: Path, values: dict[str, str], token: str = "t" * 32) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    write_private(job_dir / "job.bog", format_bog(values))
    write_private(job_dir / "token", token + "\n")


def test_a_bog_is_read_once_into_typed_values(tmp_path: Path) -> None:
    write_job(tmp_path, GOOD)
    job = load_job(tmp_path, "job.bog", "token")
    assert (job.execrunid, job.epoch, job.kind, job.platform) == ("vrun_p-1_CodeDX", 3, "vrun", "vm")
    assert job.target.token == "t" * 32 and job.target.url == "http://127.0.0.1:8084/"
    assert (job.vm.memory_mib, job.vm.cpus, job.vm.boot_timeout, job.vm.shutdown_timeout) == (512, 1, 30.0, 45.0)
    assert job.vm.image == Path("/images/codedx.qcow2") and job.vm.output_disk_mib == 64
    assert job.viewer.command == ("{python}", "-m", "http.server", "{port}")
    assert job.viewer.db_path == Path("/store/db.tar.gz") and job.viewer.version == "unknown"
    assert job.ready_timeout == 90.0 and job.viewer.checktimeout_duration == "28800"
    assert job.bog["urluuid"] == "proxy-0f1e"  # the raw keys, for what a guest gets unchanged
    assert "secret-api-key" not in repr(job) and "t" * 32 not in repr(job)


def test_defaults_for_keys_an_older_bog_lacks(tmp_path: Path) -> None:
    minimal = {k: GOOD[k] for k in ("execrunid", "projectid", "viewer", "swampd_agentmonitor_url",
                                    "swampd_epoch", "swampd_platform")}
    job = Job.from_bog(minimal, tmp_path, "tok")
    assert (job.vm.memory_mib, job.vm.cpus, job.vm.libvirt_uri) == (6144, 2, "qemu:///system")
    assert job.vm.image is None and job.viewer.db_path is None and job.viewer.store is None
    assert job.viewer.probe_path == "/" and job.viewer.command == ()


@pytest.mark.parametrize("key, value, reason", [
    ("projectid", "../../etc", "BOG projectid is not an identifier"),
    ("viewer_uuid", "a b", "BOG viewer_uuid is not an identifier"),
    ("userid", "'; rm -rf /", "BOG userid is not an identifier"),
    ("urluuid", "proxy-1/../x", "BOG urluuid is not an identifier"),
    ("viewer", "Code DX", "BOG viewer is not a viewer name"),
    ("swampd_vm_memory", "lots", "swampd_vm_memory is not a whole number"),
    ("swampd_vm_cpus", "0", "swampd_vm_cpus must be positive"),
    ("swampd_ready_timeout", "nan", "swampd_ready_timeout must be a finite number"),
    ("swampd_viewer_command", "python3 -m http.server", "swampd_viewer_command is not a JSON list"),
    ("swampd_viewer_command", '["python3", 8000]', "swampd_viewer_command is not a list of strings"),
])
def test_a_bad_value_is_refused_with_its_key_and_can_still_be_reported(tmp_path: Path, key: str, value: str,
                                                                       reason: str) -> None:
    with pytest.raises(JobError, match=reason) as caught:
        Job.from_bog({**GOOD, key: value}, tmp_path, "tok")
    assert caught.value.target is not None and caught.value.kind == "vrun"
    assert caught.value.target.execrunid == GOOD["execrunid"] and caught.value.target.epoch == 3


def test_the_execrunid_must_name_the_projects_viewer(tmp_path: Path) -> None:
    with pytest.raises(JobError, match="does not name this project's viewer"):
        Job.from_bog({**GOOD, "projectid": "other"}, tmp_path, "tok")
    with pytest.raises(JobError, match="does not name this project's viewer") as caught:
        Job.from_bog({**GOOD, "execrunid": "vrun_p 1/../CodeDX"}, tmp_path, "tok")
    assert caught.value.target is not None
    longest = "p" * 128  # the longest project id and viewer name make a run id longer than an identifier
    job = Job.from_bog({**GOOD, "projectid": longest, "viewer": "V" * 64,
                        "execrunid": f"vrun_{longest}_{'V' * 64}"}, tmp_path, "tok")
    assert len(job.execrunid) == 198
    # Any other run id is an assessment's (an execution record uuid): a viewer's BOG does not make one.
    with pytest.raises(JobError, match="BOG packagepath must be") as caught:
        Job.from_bog({**GOOD, "execrunid": "0f1e2d3c-aaaa"}, tmp_path, "tok")
    assert caught.value.kind == "arun" and caught.value.target is not None


@pytest.mark.parametrize("change, token, reason", [
    ({"swampd_epoch": ""}, "tok", "BOG has no swampd_epoch"),
    ({"swampd_epoch": "two"}, "tok", "swampd_epoch is not a whole number"),
    ({"swampd_agentmonitor_url": "file:///etc/passwd"}, "tok", "not an http or https URL"),
    ({}, "", "the report token file is empty"),
])
def test_without_a_report_identity_nothing_can_be_reported(tmp_path: Path, change: dict[str, str], token: str,
                                                           reason: str) -> None:
    with pytest.raises(JobError, match=reason) as caught:
        Job.from_bog({**GOOD, **change}, tmp_path, token)
    assert caught.value.target is None


def test_texts_at_hand_are_parsed_instead_of_read_back(tmp_path: Path) -> None:
    texts = {"job.bog": format_bog(GOOD), "token": "t" * 32 + "\n"}
    job = load_job(tmp_path, "job.bog", "token", texts)  # nothing on disk: taken from memory
    write_job(tmp_path, GOOD)
    assert job == load_job(tmp_path, "job.bog", "token") and dict(job.bog) == dict(load_job(tmp_path, "job.bog", "token").bog)
    assert load_job(tmp_path, "job.bog", "token", {"token": "other\n"}).target.token == "other"  # BOG read
    with pytest.raises(JobError, match="not a file name"):
        load_job(tmp_path, "..", "token", texts)


def test_file_names_must_be_plain_and_the_files_readable(tmp_path: Path) -> None:
    write_job(tmp_path, GOOD)
    with pytest.raises(JobError, match="not a file name"):
        load_job(tmp_path, "../job.bog", "token")
    with pytest.raises(JobError, match="cannot read the report token"):
        load_job(tmp_path, "job.bog", "missing")
    with pytest.raises(JobError, match="cannot read BOG"):
        load_job(tmp_path, "missing.bog", "token")
