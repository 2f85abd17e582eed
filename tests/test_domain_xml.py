"""The viewer domain XML: built without libvirt, validated and run by libvirt's test driver."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import libvirt
import pytest

from swampd.vruntask.domain_xml import (
    DomainSpec, DomainSpecError, build_domain_xml, domain_name, metadata_of,
)


def spec(**changes: object) -> DomainSpec:
    base = dict(
        name=domain_name("vrun_p-1_CodeDX", 3), memory_mib=512, vcpus=2,
        delta="/j/delta.qcow2", input_disk="/j/inputdisk.qcow2", output_disk="/j/outputdisk.qcow2",
        console_file="/j/out/console.log", events_file="/j/out/job_events.log", ip_file="/j/out/job_ip_address.txt",
        metadata={"execrunid": "vrun_p-1_CodeDX", "epoch": "3", "projectid": "p-1", "viewer": "CodeDX",
                  "job_dir": "/j", "lock_file": "/j/vm.lock", "token_file": "token",
                  "agentmonitor_url": "http://127.0.0.1:8084/?a=1&b=<2>"},
        domain_type="qemu", network="tap:swtap0",
    )
    base.update(changes)
    return DomainSpec(**base)  # type: ignore[arg-type]


def test_name_carries_execrunid_and_epoch() -> None:
    assert domain_name("vrun_p_CodeDX", 7) == "swampd-vrun_p_CodeDX-e7"


def test_xml_has_the_swamp_devices() -> None:
    root = ET.fromstring(build_domain_xml(spec()))
    assert root.get("type") == "qemu"
    assert root.findtext("on_poweroff") == "destroy"
    assert root.find("features/acpi") is not None
    disks = [(d.find("source").get("file"), d.find("target").get("dev")) for d in root.iter("disk")]  # type: ignore[union-attr]
    assert disks == [("/j/delta.qcow2", "vda"), ("/j/inputdisk.qcow2", "vdb"), ("/j/outputdisk.qcow2", "vdc")]
    serials = {s.find("target").get("port"): s.find("source").get("path") for s in root.iter("serial")}  # type: ignore[union-attr]
    assert serials == {"0": "/j/out/console.log", "1": "/j/out/job_events.log", "2": "/j/out/job_ip_address.txt"}
    iface = root.find("devices/interface")
    assert iface is not None and iface.get("type") == "ethernet"
    assert iface.find("target").get("dev") == "swtap0" and iface.find("target").get("managed") == "no"  # type: ignore[union-attr]


def test_metadata_round_trips_and_is_escaped() -> None:
    xml = build_domain_xml(spec())
    assert "&amp;b=&lt;2&gt;" in xml
    meta = metadata_of(xml)
    assert meta is not None
    assert meta["agentmonitor_url"] == "http://127.0.0.1:8084/?a=1&b=<2>"
    assert meta["epoch"] == "3" and meta["lock_file"] == "/j/vm.lock" and meta["name"] == "swampd-vrun_p-1_CodeDX-e3"


def test_domains_without_our_metadata_or_prefix_are_not_ours() -> None:
    ours = build_domain_xml(spec())
    assert metadata_of(ours.replace("<name>swampd-", "<name>other-")) is None
    assert metadata_of("<domain type='qemu'><name>swampd-lookalike</name></domain>") is None
    assert metadata_of("not xml") is None


@pytest.mark.parametrize("changes, message", [
    ({"name": "vrun_x"}, "must start with"),
    ({"network": "bridge:br0;reboot"}, "network"),
    ({"domain_type": "xen"}, "domain type"),
    ({"delta": "relative.qcow2"}, "absolute"),
    ({"memory_mib": 16}, "64 MiB"),
    ({"initrd": "/boot/initrd"}, "needs a kernel"),
])
def test_bad_specs_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(DomainSpecError, match=message):
        build_domain_xml(spec(**changes))


@pytest.mark.parametrize("network", ["none", "user", "network:default", "bridge:br0", "tap:swtap0"])
def test_libvirt_validates_define_start_destroy_undefine(network: str) -> None:
    conn = libvirt.open("test:///default")
    try:
        kernel = {"kernel": "/g/vmlinux", "initrd": "/g/initrd.gz", "cmdline": "console=ttyS0 guestip=10.0.0.2/30"}
        for extra in ({}, kernel):
            xml = build_domain_xml(spec(network=network, **extra))
            dom = conn.defineXMLFlags(xml, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)  # RNG schema validation
            assert metadata_of(dom.XMLDesc(0)) is not None  # libvirt keeps our metadata
            dom.create()
            assert dom.isActive()
            dom.destroy()
            assert not dom.isActive()
            dom.undefine()
            with pytest.raises(libvirt.libvirtError):
                conn.lookupByName(spec().name)
    finally:
        conn.close()


def test_libvirt_schema_rejects_what_we_would_never_build() -> None:
    conn = libvirt.open("test:///default")
    try:
        bad = build_domain_xml(spec()).replace("<on_poweroff>destroy", "<on_poweroff>explode")
        with pytest.raises(libvirt.libvirtError):
            conn.defineXMLFlags(bad, libvirt.VIR_DOMAIN_DEFINE_VALIDATE)
    finally:
        conn.close()
