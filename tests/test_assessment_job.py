"""An assessment's BOG read once into typed settings: SWAMP's keys as PreAssessment read them, swampd's checked."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from support.assess import CPPCHECK, EXECRUNID, assessment_bog
from swampd.vruntask.job import Job, JobError, kind_of
from swampd.vruntask.payloads import payload_for
from swampd.vruntask.payloads.assessment import AssessmentPayload

URL = "http://127.0.0.1:8084/"


def values(tmp_path: Path, **changes: str) -> dict[str, str]:
    return assessment_bog(URL, tmp_path / "pkg" / "hello-c-2.1.tar.gz", tmp_path / "results", **{
        "swampd_package_sha512": "ab" * 64, **changes})


def test_run_ids_name_their_kind() -> None:
    assert kind_of("vrun_p1_CodeDX") == "vrun"
    assert kind_of("M-4e0c0000-aaaa") == "mrun"
    assert kind_of(EXECRUNID) == "arun"


def test_an_arun_bog_is_read_into_typed_settings(tmp_path: Path) -> None:
    job = Job.from_bog(values(tmp_path, swampd_vm_password="s3cret_pw", swampd_runsh="/tools/run.sh",
                              swampd_internet_inaccessible="true"), tmp_path / "job", "tok")
    a = job.assessment
    assert (job.kind, job.execrunid, job.epoch, job.platform) == ("arun", EXECRUNID, 1, "process")
    assert (a.toolname, a.tool_version, a.packagename, a.packageversion) == ("cppcheck", "2.10", "hello-c", "2.1")
    assert a.packagepath == tmp_path / "pkg" / "hello-c-2.1.tar.gz" and a.package_sha512 == "ab" * 64
    assert a.toolpath is None  # SWAMP's "null" is absent
    assert a.results_folder == tmp_path / "results" and a.packagesourcepath == "hello-c-2.1"
    assert a.tool_command == tuple(CPPCHECK) and a.run_timeout == 120.0 and a.runsh == Path("/tools/run.sh")
    assert a.internet_inaccessible and a.vm_password == "s3cret_pw"
    assert "s3cret_pw" not in repr(job)
    assert isinstance(payload_for(job), AssessmentPayload)
    with pytest.raises(JobError, match="not a viewer run"):
        job.viewer  # noqa: B018


def test_defaults_and_metric_runs(tmp_path: Path) -> None:
    minimal = {k: v for k, v in values(tmp_path).items()
               if k in ("execrunid", "projectid", "packagepath", "swampd_agentmonitor_url", "swampd_epoch",
                        "swampd_platform")}
    job = Job.from_bog({**minimal, "execrunid": "M-4e0c0000-aaaa", "projectid": "METRIC"}, tmp_path, "tok")
    a = job.assessment
    assert job.kind == "mrun" and a.results_folder == tmp_path / "results"
    assert a.run_timeout is None and a.tool_command == () and a.toolname == "" and not a.internet_inaccessible
    assert (a.max_unpacked_bytes, a.max_archive_members) == (4 << 30, 200_000)


@pytest.mark.parametrize("key, value, reason", [
    ("execrunid", "3c1d 8f0e/../x", "BOG execrunid is not an execution record uuid"),
    ("projectid", "../../etc", "BOG projectid is not an identifier"),
    ("packagepath", "relative/pkg.tar.gz", "BOG packagepath must be the absolute path"),
    ("packagepath", "null", "BOG packagepath must be the absolute path"),
    ("resultsfolder", "results", "BOG resultsfolder must be an absolute path"),
    ("toolpath", "tools/cppcheck", "BOG toolpath must be an absolute path"),
    ("swampd_runsh", "run.sh", "BOG swampd_runsh must be an absolute path"),
    ("swampd_tool_command", "cppcheck --xml", "swampd_tool_command is not a JSON list"),
    ("swampd_run_timeout", "soon", "swampd_run_timeout is not a number of seconds"),
    ("swampd_package_sha512", "abc", "swampd_package_sha512 is not a SHA-512 hex digest"),
    ("swampd_max_unpacked_bytes", "-1", "swampd_max_unpacked_bytes must be positive"),
])
def test_a_bad_value_is_refused_with_its_key_and_can_still_be_reported(tmp_path: Path, key: str, value: str,
                                                                       reason: str) -> None:
    with pytest.raises(JobError, match=reason) as caught:
        Job.from_bog(values(tmp_path, **{key: value}), tmp_path, "tok")
    assert caught.value.target is not None and caught.value.kind == "arun"
    assert AssessmentPayload.failure(str(caught.value)) == {"state": "failed", "status": str(caught.value)}


def test_the_tool_command_is_run_through_the_process_platforms_run_sh(tmp_path: Path) -> None:
    job = Job.from_bog(values(tmp_path), tmp_path / "job", "tok")
    from swampd.vruntask.sandbox import Sandbox

    sandbox = Sandbox(tmp_path / "job")
    argv = AssessmentPayload(job).local_command(sandbox, 0)
    tail = argv[argv.index("--") + 1:]
    assert argv[1:3] == ["-m", "swampd.tools.runsh"]
    assert tail[1:5] == ["-m", "swampd.tools.cppcheck", "--in-dir", str(sandbox.in_dir)]
    assert tail[-1] == f"{sandbox.root}/build"
    assert argv[argv.index("--begin") + 1] == "BEGINASSESSMENT"
    no_command = Job.from_bog(values(tmp_path, swampd_tool_command=""), tmp_path / "job", "tok")
    from swampd.vruntask.sandbox import PrepareError

    with pytest.raises(PrepareError, match="has no command for the process platform"):
        AssessmentPayload(no_command).local_command(sandbox, 0)
    bad = Job.from_bog(values(tmp_path, swampd_tool_command=json.dumps(["{port}"])), tmp_path / "job", "tok")
    with pytest.raises(PrepareError, match="unknown placeholder"):
        AssessmentPayload(bad).local_command(sandbox, 0)
