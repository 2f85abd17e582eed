"""vruntask prepare (sandbox, run-params.sh, props, viewer DB, disks) and finish (snapshot store + hand-over)."""
from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from support.daemon import free_port
from support.report_sink import ReportSink
from swampd.vruntask import disks
from swampd.vruntask.job import Job
from swampd.vruntask.payloads import payload_for
from swampd.vruntask.payloads.viewer_snapshot import SnapshotResult
from swampd.vruntask.platforms import staging_for
from swampd.vruntask.reporter import Reporter
from swampd.vruntask.runner import collect, stage
from swampd.vruntask.sandbox import PrepareError


def make_job(job_dir: Path, bog: dict[str, str], token: str = "tok") -> Job:
    return Job.from_bog(bog, job_dir, token, f"{bog['execrunid']}.bog", "token")


def prepare(job_dir: Path, bog: dict[str, str]) -> None:
    """``vruntask prepare``'s work: the runner's stage on the BOG's platform."""
    job = make_job(job_dir, bog)
    stage(staging_for(job), payload_for(job))


def finish(job_dir: Path, bog: dict[str, str], token: str, give_up: Callable[[], bool]) -> SnapshotResult:
    """``vruntask finish``'s work: the runner's collect on the BOG's platform."""
    job = make_job(job_dir, bog, token)
    payload = payload_for(job)
    result = collect(staging_for(job), payload, Reporter.for_target(job.target, payload.status_method), give_up)
    assert isinstance(result, SnapshotResult)
    return result


def tgz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def platform_image(tmp_path: Path) -> Path:
    image = tmp_path / "condor-codedx-master-20260101.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "256M"], check=True)
    return image


def vm_bog(tmp_path: Path, image: Path, **changes: str) -> dict[str, str]:
    bog = {"execrunid": "vrun_p1_CodeDX", "projectid": "p1", "viewer": "CodeDX", "viewer_uuid": "vi1",
           "userid": "u1", "urluuid": "proxy-1", "apikey": "k'$(touch PWNED)`id`\"", "platform_image": str(image),
           "swampd_platform": "vm", "swampd_epoch": "2", "swampd_agentmonitor_url": "http://127.0.0.1:9/",
           "swampd_output_disk_mib": "64", "swampd_viewer_store": str(tmp_path / "store")}
    bog.update(changes)
    return bog


def test_vm_sandbox_run_params_props_and_disks(tmp_path: Path, platform_image: Path) -> None:
    job = tmp_path / "job"
    job.mkdir()
    db = tmp_path / "saved.tar.gz"
    db.write_bytes(tgz({"codedx.sql": b"select 1;\n", "codedx_config.tar": b"config"}))
    bog = vm_bog(tmp_path, platform_image, db_path=str(db), db_checksum=hashlib.sha512(db.read_bytes()).hexdigest())
    prepare(job, bog)
    params = job / "in" / "run-params.sh"
    assert oct(params.stat().st_mode & 0o777) == oct(0o600)
    assert oct((job / "in" / "codedx.props").stat().st_mode & 0o777) == oct(0o600)
    assert (job / "in" / "codedx.props").read_text() == f"swa.admin.system-key={bog['apikey']}\n"
    # Sourcing run-params.sh runs nothing and yields the values exactly.
    shown = subprocess.run(["bash", "-c", '. "$1"; printf "%s\\n" "$APIKEY" "$SWAMP_EVENT_FILE" "$IP_ADDR_FILE" '
                            '"$JOB_INPUT_DIR" "$PROJECT" "$MACHINE_SHUTDOWN_COMMAND"', "_", str(params)],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.splitlines()
    assert shown == [bog["apikey"], "/dev/ttyS1", "/dev/ttyS2", "/mnt/in", "proxy-1", "/sbin/shutdown -h now"]
    assert not (tmp_path / "PWNED").exists()
    assert (job / "out" / "job_events.log").read_text() == "" and (job / "out" / "job_ip_address.txt").exists()
    with disks.Ext4Reader(job / disks.INPUT_DISK) as reader:
        tree = reader.tree()
        assert {p: oct(m & 0o777) for p, m in tree.items()} == {
            "run-params.sh": oct(0o600), "codedx.props": oct(0o600), "codedx.sql": oct(0o644),
            "codedx_config.tar": oct(0o644), "vrun_p1_CodeDX.bog": oct(0o600)}
        assert reader.copy_out("/vrun_p1_CodeDX.bog", tmp_path / "guest.bog")
    guest_bog = (tmp_path / "guest.bog").read_text()
    assert "viewerplatform=" + str(platform_image) in guest_bog and "swampd_" not in guest_bog
    assert disks.backing_file(job / disks.DELTA_DISK) == str(platform_image)
    assert disks.image_info(job / disks.OUTPUT_DISK)["virtual-size"] == 64 << 20


def test_props_file_base_gets_the_key_appended(tmp_path: Path, platform_image: Path) -> None:
    base = tmp_path / "codedx.props"
    base.write_text("swa.db.url=jdbc:mysql://localhost/codedx")
    job = tmp_path / "job"
    prepare(job, vm_bog(tmp_path, platform_image, swampd_platform="process", swampd_props_file=str(base)))
    assert (job / "in" / "codedx.props").read_text().splitlines() == [
        "swa.db.url=jdbc:mysql://localhost/codedx", "swa.admin.system-key=k'$(touch PWNED)`id`\""]
    assert not (job / disks.INPUT_DISK).exists()  # only the vm platform gets disks


@pytest.mark.parametrize("case, message", [
    ("missing", "does not exist"), ("wrong-checksum", "does not match its checksum"),
    ("no-checksum", "no checksum"), ("empty-tar", "holds no non-empty file"), ("not-gzip", "not a readable tar.gz"),
    ("zero-bytes", "does not match"), ("unsafe", "unsafe member"),
])
def test_a_bad_saved_database_is_an_error_never_an_empty_one(tmp_path: Path, platform_image: Path,
                                                             case: str, message: str) -> None:
    db = tmp_path / "saved.tar.gz"
    data = {"missing": b"", "wrong-checksum": tgz({"codedx.sql": b"x"}), "no-checksum": tgz({"codedx.sql": b"x"}),
            "empty-tar": tgz({"codedx.sql": b""}), "not-gzip": b"this is not gzip",
            "zero-bytes": b"", "unsafe": tgz({"../../etc/evil": b"x"})}[case]
    if case != "missing":
        db.write_bytes(data)
    checksum = "" if case == "no-checksum" else hashlib.sha512(data).hexdigest()
    if case == "wrong-checksum":
        checksum = hashlib.sha512(b"other").hexdigest()
    if case == "zero-bytes":
        checksum = "0" * 128
    job = tmp_path / "job"
    with pytest.raises(PrepareError, match=message):
        prepare(job, vm_bog(tmp_path, platform_image, db_path=str(db), db_checksum=checksum))
    assert not (job / disks.INPUT_DISK).exists() and not (job / "in" / "codedx.sql").exists()
    assert not (tmp_path / "etc").exists()


def test_missing_platform_image_fails_prepare_and_leaves_no_disks(tmp_path: Path) -> None:
    job = tmp_path / "job"
    with pytest.raises(PrepareError, match="does not exist"):
        prepare(job, vm_bog(tmp_path, tmp_path / "nope.qcow2"))
    assert not any((job / n).exists() for n in (disks.INPUT_DISK, disks.OUTPUT_DISK, disks.DELTA_DISK))


# -- finish -----------------------------------------------------------------------
@pytest.fixture
def sink() -> Iterator[ReportSink]:
    s = ReportSink(free_port())
    yield s
    s.stop()


def write_to_output_disk(job: Path, files: dict[str, bytes], tmp_path: Path) -> None:
    """What the guest does on shutdown: a file system with the snapshot on the output disk."""
    content = tmp_path / "guest-out"
    content.mkdir()
    for name, data in files.items():
        (content / name).write_bytes(data)
    disks.build_input_disk(content, job / disks.OUTPUT_DISK)


def finished_bog(tmp_path: Path, port: int) -> dict[str, str]:
    return vm_bog(tmp_path, tmp_path / "img.qcow2", swampd_agentmonitor_url=f"http://127.0.0.1:{port}/",
                  viewerversion="codedx-5.0.war")


def test_finish_stores_the_guest_snapshot_with_its_checksum_and_hands_it_over(tmp_path: Path, sink: ReportSink) -> None:
    job = tmp_path / "job"
    (job / "out").mkdir(parents=True)
    snap = tgz({"codedx.sql": b"select 'new';\n"})
    write_to_output_disk(job, {"codedx_viewerdb.tar.gz": snap}, tmp_path)
    threading.Timer(1.0, sink.start).start()  # the AgentMonitor is down at first: retried, not dropped
    result = finish(job, finished_bog(tmp_path, sink.port), "tok", lambda: False)
    assert result.delivered and not result.problem
    stored = Path(result.path)
    assert stored.parent == tmp_path / "store" / "p1" / "V-Runs" / "vi1"
    assert stored.name.startswith("codedx_viewerdb_") and stored.read_bytes() == snap
    assert result.checksum == hashlib.sha512(snap).hexdigest()
    assert sink.of("viewerSnapshot") == [{"execrunid": "vrun_p1_CodeDX", "epoch": 2, "token": "tok", "path": str(stored),
                           "checksum": result.checksum, "platform": str(tmp_path / "img.qcow2"),
                           "version": "codedx-5.0.war"}]
    again = finish(job, finished_bog(tmp_path, sink.port), "tok", lambda: False)  # a rerun post-command
    assert again.path == result.path and len(sink.of("viewerSnapshot")) == 1
    assert len(list(stored.parent.iterdir())) == 1


@pytest.mark.parametrize("files", [{}, {"codedx_viewerdb.tar.gz": b""},
                                   {"codedx_viewerdb.tar.gz": tgz({"codedx.sql": b""})},
                                   {"codedx_viewerdb.tar.gz": b"\x1f\x8b truncated"}])
def test_an_empty_or_failed_dump_never_replaces_the_last_good_snapshot(
        tmp_path: Path, sink: ReportSink, files: dict[str, bytes]) -> None:
    sink.start()
    good = tmp_path / "store" / "p1" / "V-Runs" / "vi1" / "codedx_viewerdb_20250101000000.tar.gz"
    good.parent.mkdir(parents=True)
    good.write_bytes(tgz({"codedx.sql": b"good"}))
    job = tmp_path / "job"
    (job / "out").mkdir(parents=True)
    write_to_output_disk(job, files, tmp_path)
    result = finish(job, finished_bog(tmp_path, sink.port), "tok", lambda: False)
    assert not result.path and result.problem
    assert sink.of("viewerSnapshot") == []
    assert list(good.parent.iterdir()) == [good]


def test_finish_takes_the_snapshot_from_out_for_viewers_without_disks(tmp_path: Path, sink: ReportSink) -> None:
    sink.start()
    job = tmp_path / "job"
    (job / "out").mkdir(parents=True)
    (job / "out" / "codedx_viewerdb.tar.gz").write_bytes(tgz({"codedx.sql": b"from docker"}))
    result = finish(job, finished_bog(tmp_path, sink.port), "tok", lambda: False)
    assert result.delivered and Path(result.path).exists()


def test_undeliverable_snapshot_stays_stored_and_is_delivered_by_a_rerun(tmp_path: Path, sink: ReportSink) -> None:
    job = tmp_path / "job"
    (job / "out").mkdir(parents=True)
    (job / "out" / "codedx_viewerdb.tar.gz").write_bytes(tgz({"codedx.sql": b"x"}))
    give_up_at = time.monotonic() + 0.5
    first = finish(job, finished_bog(tmp_path, sink.port), "tok", lambda: time.monotonic() > give_up_at)
    assert first.path and not first.delivered and Path(first.path).exists()
    sink.start()
    second = finish(job, finished_bog(tmp_path, sink.port), "tok", lambda: False)
    assert second.delivered and second.path == first.path
    assert [c["path"] for c in sink.of("viewerSnapshot")] == [first.path]


def test_a_stop_presses_the_power_button_again_until_the_guest_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    """A guest asked to stop right after it came up may miss the first ACPI press: it gets another."""
    from types import SimpleNamespace

    from swampd.vruntask.platforms import vm

    class Guest:
        def __init__(self) -> None:
            self.presses = 0
            self.running = True

        def shutdown(self) -> None:
            self.presses += 1
            if self.presses == 2:  # the first press came before the guest listened
                self.running = False

        def isActive(self) -> bool:  # noqa: N802 (libvirt's name)
            return self.running

    monkeypatch.setattr(vm, "ACPI_REPEAT", 0.3)
    domain = vm.VmDomain("test:///default", SimpleNamespace(name="swampd-acpi"))  # type: ignore[arg-type]
    guest = domain.dom = Guest()
    assert domain.shutdown(time.monotonic() + 10) is True
    assert guest.presses == 2
