"""``swampd image check`` (issue 13 part 6): a candidate image through a real launch's path, PASS or FAIL.

With the real qemu guest of the suite (tests/guest/): it boots under TCG,
reports its address and VIEWERUP, is stopped the way a scheduler stops a
job, saves its database, and the check says PASS with every step's time.
An image that never reports up (no kernel: the firmware finds nothing to
boot) fails at the start step, naming the boot deadline; a process
"image" that never answers fails at the ready step, naming the ready deadline.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guest.build import Guest, build_guest
from guest.host import LIBVIRT_URI, Tap, destroy_domains_of, ensure_vm_host
from support.daemon import SRC, write_config


@pytest.fixture(scope="module")
def guest() -> Guest:
    ensure_vm_host()
    return build_guest()


def image_check(tmp_path: Path, *args: str, viewer: dict | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    config = write_config(tmp_path / "swampd.toml", {
        "agentmonitor": {"state_dir": str(tmp_path / "state")},
        "viewers.CodeDX": viewer or {}})
    env = dict(os.environ, PYTHONPATH=str(SRC))
    return subprocess.run([sys.executable, "-m", "swampd.cli.swampd_main", "--config", str(config), "image", "check",
                           "--work-dir", str(tmp_path), *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


def steps(out: str) -> list[str]:
    return [line.split()[1] for line in out.splitlines() if line.strip().endswith(")") or " ok " in line]


def test_the_real_guest_passes_every_step(tmp_path, guest):
    tap = Tap.create()
    try:
        viewer = {"platform": "vm", "image": str(guest.platform_image), "domain_type": "qemu",
                  "libvirt_uri": LIBVIRT_URI, "network": f"tap:{tap.dev}", "kernel": str(guest.kernel),
                  "initrd": str(guest.initrd), "cmdline": guest.cmdline(f"{tap.guest_ip}/{tap.prefix}"),
                  "memory": 256, "cpus": 1, "output_disk_mib": 64, "boot_timeout": 120, "ready_timeout": 180,
                  "shutdown_timeout": 60}
        done = image_check(tmp_path, "--platform", "vm", "--image", str(guest.platform_image), "--viewer", "CodeDX",
                           viewer=viewer)
    finally:
        tap.delete()
        destroy_domains_of(tmp_path)
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    ok = [line.split()[1] for line in lines if "  ok  " in line]
    assert ok == ["prepare", "start", "address", "ready", "stop", "snapshot"], done.stdout
    assert f"{tap.guest_ip}:8443" in done.stdout and "SHA-512 checked" in done.stdout
    assert "event VIEWERDBBUNDLESUCCESS" in done.stdout  # the guest's own shutdown events, in their step
    assert lines[-1].startswith("PASS: ") and "viewer database saved" in lines[-1]
    for line in lines[1:-1]:  # every step line starts with its time
        assert line.split()[0].endswith("s") and float(line.split()[0][:-1]) >= 0, line
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("swampd-imagecheck-")]  # cleaned after a PASS


def test_an_image_that_never_reports_up_fails_at_its_step_naming_the_deadline(tmp_path, guest):
    viewer = {"platform": "vm", "image": str(guest.platform_image), "domain_type": "qemu",
              "libvirt_uri": LIBVIRT_URI, "network": "none", "memory": 128, "cpus": 1, "output_disk_mib": 16,
              "boot_timeout": 4, "ready_timeout": 60, "shutdown_timeout": 30}
    try:
        done = image_check(tmp_path, "--platform", "vm", "--image", str(guest.platform_image), viewer=viewer)
    finally:
        destroy_domains_of(tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    fail = [line for line in done.stdout.splitlines() if line.startswith("FAIL: ")]
    # the domain started, but nothing in it ever ran its run script: no RUNSHSTART, no address
    assert fail == ["FAIL: step start: the VM wrote no address within the boot deadline (4s)"], done.stdout
    assert "the sandbox is kept in" in done.stdout


def test_a_process_image_passes_or_fails_on_the_ready_deadline(tmp_path):
    serves = tmp_path / "serves.sh"
    serves.write_text(f"#!/bin/sh\nexec {sys.executable} -m http.server \"$1\" --bind 127.0.0.1\n")
    never = tmp_path / "never.sh"
    never.write_text("#!/bin/sh\nexec sleep 600\n")
    for script in (serves, never):
        script.chmod(0o755)
    done = image_check(tmp_path, "--platform", "process", "--image", str(serves))
    assert done.returncode == 0 and done.stdout.splitlines()[-1].startswith("PASS: "), done.stdout + done.stderr
    done = image_check(tmp_path, "--platform", "process", "--image", str(never), "--timeout", "3")
    assert done.returncode == 1
    assert "FAIL: step ready: the viewer was not up within the ready deadline (3s)" in done.stdout, done.stdout


def test_usage_errors_exit_2(tmp_path):
    assert image_check(tmp_path, "--platform", "vm", "--image", "relative.qcow2").returncode == 2
    assert image_check(tmp_path, "--platform", "process", "--image", "/bin/true", "--viewer", "Nope").returncode == 2
    assert image_check(tmp_path, "--platform", "vm", "--image", "/x.qcow2", "--assessment").returncode == 2
