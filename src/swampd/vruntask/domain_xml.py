"""The libvirt domain of a viewer VM, as XML: built and read back, with no I/O.

Why each element (reference/qemu-guest.md, lifecycle §4.8): disks are the
delta (vda), the input disk (vdb) and the output disk (vdc), as HTCondor's VM
universe attached them; serial ports 1 and 2 are files, so the guest's
``/dev/ttyS1`` and ``/dev/ttyS2`` land in ``out/job_events.log`` and
``out/job_ip_address.txt``; ``<acpi/>`` is required for a guest power-off
to end the domain, and ``on_poweroff=destroy`` makes it end.  The domain's
name carries the execrunid and epoch, and swampd's metadata element marks
it as ours: the domain monitor touches only domains that have both.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

#: Every swampd domain name starts with this; metadata is the proof of ownership.
NAME_PREFIX = "swampd-"
METADATA_NS = "https://swampd.dev/xmlns/viewer/1"
METADATA_KEY = "swampd"
NETWORK_RE = re.compile(r"(none|user|network:[A-Za-z0-9._-]+|bridge:[A-Za-z0-9._-]+|tap:[A-Za-z0-9._-]{1,15})")
DOMAIN_TYPES = ("kvm", "qemu")
#: What the metadata element carries; never a secret (domain XML is readable to any libvirt client).
METADATA_FIELDS = ("execrunid", "epoch", "launch_id", "projectid", "viewer", "job_dir", "lock_file",
                   "token_file", "agentmonitor_url", "started")


class DomainSpecError(ValueError):
    """A domain cannot be built from these settings."""


def domain_name(execrunid: str, epoch: int) -> str:
    """``swampd-<execrunid>-e<epoch>``: unique per launch, and readable in ``virsh list``."""
    return f"{NAME_PREFIX}{execrunid}-e{epoch}"


@dataclass(frozen=True)
class DomainSpec:
    name: str
    memory_mib: int
    vcpus: int
    delta: str
    input_disk: str
    output_disk: str
    console_file: str
    events_file: str
    ip_file: str
    metadata: dict[str, str] = field(default_factory=dict)
    domain_type: str = "kvm"
    network: str = "network:default"
    kernel: str = ""
    initrd: str = ""
    cmdline: str = ""
    emulator: str = ""
    mac: str = ""


def build_domain_xml(spec: DomainSpec) -> str:
    """The domain XML for ``spec``; every value is escaped by ElementTree, none is pasted."""
    _check(spec)
    dom = ET.Element("domain", type=spec.domain_type)
    ET.SubElement(dom, "name").text = spec.name
    meta = ET.SubElement(dom, "metadata")
    mine = ET.SubElement(meta, f"{{{METADATA_NS}}}viewer")
    for key in METADATA_FIELDS:
        if key in spec.metadata:
            ET.SubElement(mine, f"{{{METADATA_NS}}}{key}").text = str(spec.metadata[key])
    ET.SubElement(dom, "memory", unit="MiB").text = str(spec.memory_mib)
    ET.SubElement(dom, "vcpu").text = str(spec.vcpus)
    os_el = ET.SubElement(dom, "os")
    ET.SubElement(os_el, "type", arch="x86_64", machine="pc").text = "hvm"
    if spec.kernel:
        ET.SubElement(os_el, "kernel").text = spec.kernel
        if spec.initrd:
            ET.SubElement(os_el, "initrd").text = spec.initrd
        if spec.cmdline:
            ET.SubElement(os_el, "cmdline").text = spec.cmdline
    else:
        ET.SubElement(os_el, "boot", dev="hd")
    features = ET.SubElement(dom, "features")
    ET.SubElement(features, "acpi")
    for event in ("on_poweroff", "on_reboot", "on_crash"):
        ET.SubElement(dom, event).text = "destroy"
    devices = ET.SubElement(dom, "devices")
    if spec.emulator:
        ET.SubElement(devices, "emulator").text = spec.emulator
    for source, target in ((spec.delta, "vda"), (spec.input_disk, "vdb"), (spec.output_disk, "vdc")):
        disk = ET.SubElement(devices, "disk", type="file", device="disk")
        ET.SubElement(disk, "driver", name="qemu", type="qcow2")
        ET.SubElement(disk, "source", file=source)
        ET.SubElement(disk, "target", dev=target, bus="virtio")
    _interface(devices, spec)
    ET.SubElement(devices, "controller", type="usb", model="none")
    for port, path in enumerate((spec.console_file, spec.events_file, spec.ip_file)):
        serial = ET.SubElement(devices, "serial", type="file")
        ET.SubElement(serial, "source", path=path)
        ET.SubElement(serial, "target", port=str(port))
    ET.SubElement(devices, "memballoon", model="none")
    ET.register_namespace(METADATA_KEY, METADATA_NS)
    return ET.tostring(dom, encoding="unicode")


def _interface(devices: ET.Element, spec: DomainSpec) -> None:
    kind, _, name = spec.network.partition(":")
    if kind == "none":
        return
    if kind == "network":
        iface = ET.SubElement(devices, "interface", type="network")
        ET.SubElement(iface, "source", network=name)
    elif kind == "bridge":
        iface = ET.SubElement(devices, "interface", type="bridge")
        ET.SubElement(iface, "source", bridge=name)
    elif kind == "tap":  # a tap the host prepared (its address, its routes); libvirt only opens it
        iface = ET.SubElement(devices, "interface", type="ethernet")
        ET.SubElement(iface, "target", dev=name, managed="no")
    else:
        iface = ET.SubElement(devices, "interface", type="user")
    if spec.mac:
        ET.SubElement(iface, "mac", address=spec.mac)
    ET.SubElement(iface, "model", type="virtio")


def _check(spec: DomainSpec) -> None:
    if not spec.name.startswith(NAME_PREFIX) or len(spec.name) > 200:
        raise DomainSpecError(f"domain name {spec.name!r} must start with {NAME_PREFIX!r}")
    if spec.domain_type not in DOMAIN_TYPES:
        raise DomainSpecError(f"domain type must be one of {', '.join(DOMAIN_TYPES)}")
    if NETWORK_RE.fullmatch(spec.network) is None:
        raise DomainSpecError(f"network {spec.network!r} is not none, user, network:NAME, bridge:NAME or tap:DEV")
    if spec.memory_mib < 64 or spec.vcpus < 1:
        raise DomainSpecError("a viewer VM needs at least 64 MiB and 1 vcpu")
    for label, path in (("delta", spec.delta), ("input disk", spec.input_disk),
                        ("output disk", spec.output_disk), ("kernel", spec.kernel), ("initrd", spec.initrd)):
        if path and not path.startswith("/"):
            raise DomainSpecError(f"{label} path {path!r} must be absolute")
    if spec.initrd and not spec.kernel:
        raise DomainSpecError("an initrd needs a kernel")


def metadata_of(xml: str) -> dict[str, str] | None:
    """swampd's metadata of a domain, or None when the domain is not ours."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return None
    name = root.findtext("name") or ""
    mine = root.find(f"metadata/{{{METADATA_NS}}}viewer")
    if mine is None or not name.startswith(NAME_PREFIX):
        return None
    values = {child.tag.split("}", 1)[1]: (child.text or "") for child in mine if child.tag.startswith("{")}
    values["name"] = name
    return values

