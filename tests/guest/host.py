"""Host parts of the real-guest tests: system packages, libvirtd, the guest, a tap for its network."""
from __future__ import annotations

import ipaddress
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIBVIRT_URI = "qemu:///system"


def ensure_vm_host() -> None:
    """qemu, libvirt's qemu driver and a running libvirtd, installed/started when missing.

    No skip: on a machine without them the suite's own setup script installs
    them, and if that fails the test fails with its output.
    """
    missing = [tool for tool in ("qemu-system-x86_64", "qemu-img", "libvirtd", "mkfs.ext4", "debugfs", "cpio")
               if shutil.which(tool) is None] or not Path("/usr/bin/busybox").exists()
    if missing:
        subprocess.run([str(ROOT / "scripts" / "setup-system.sh")], check=True)
    else:
        subprocess.run([str(ROOT / "scripts" / "setup-libvirt.sh")], check=True)


@dataclass
class Tap:
    """A host tap device with a /30: the host end answers, the guest gets the other address."""

    dev: str
    host_ip: str
    guest_ip: str
    prefix: int = 30

    @classmethod
    def create(cls) -> "Tap":
        used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True).stdout
        for _ in range(50):
            net = ipaddress.ip_network(f"10.213.{secrets.randbelow(250) + 1}.{secrets.randbelow(60) * 4}/30")
            host, guest = (str(a) for a in net.hosts())
            if f" {host}/" not in used:
                break
        dev = f"swi4{secrets.token_hex(4)}"
        subprocess.run(["ip", "tuntap", "add", "dev", dev, "mode", "tap"], check=True)
        subprocess.run(["ip", "addr", "add", f"{host}/30", "dev", dev], check=True)
        subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        return cls(dev, host, guest)

    def delete(self) -> None:
        subprocess.run(["ip", "tuntap", "del", "dev", self.dev, "mode", "tap"], check=False)


def destroy_domains_of(job_root: Path) -> None:
    """Clean up after a failed test: only the domains whose job dir lies under ``job_root``."""
    import libvirt

    from swampd.vruntask.domain_xml import metadata_of

    conn = libvirt.open(LIBVIRT_URI)
    try:
        for dom in conn.listAllDomains(0):
            meta = metadata_of(dom.XMLDesc(0))
            if meta and meta.get("job_dir", "").startswith(str(job_root)):
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
    finally:
        conn.close()


def running_as_root() -> bool:
    return os.geteuid() == 0
