"""Assemble the tiny test guest: a Debian kernel plus a busybox initramfs.

Nothing here is committed as a binary: the kernel comes from Debian's archive
(``apt-get download``), busybox from the host's ``busybox-static``, and the
result is cached in a directory keyed by the kernel version and this file's
init script, so the build (~10 s) is paid once per machine.

The guest plays a SWAMP viewer machine (reference/qemu-guest.md, lifecycle
§4.8): it mounts the input disk (vdb) and sources ``run-params.sh``, writes
``RUNSHSTART`` to ttyS1 and its address to ttyS2, serves HTTP on SWAMP's
viewer port 8443, writes ``VIEWERUP``; on the ACPI power button it writes a
database snapshot (``codedx_viewerdb.tar.gz``, the input ``codedx.sql`` plus
a line) to the output disk (vdc), writes ``VIEWERDOWN`` and powers off.  The
guest's address comes from the kernel command line (``guestip=A.B.C.D/NN``).
"""
from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

#: Load order matters (no modprobe database in the guest); dependencies were
#: read from each module's ``.modinfo depends=``.
MODULES = (
    "drivers/virtio/virtio_ring", "drivers/virtio/virtio", "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev", "drivers/virtio/virtio_pci", "drivers/block/virtio_blk",
    "net/core/failover", "drivers/net/net_failover", "drivers/net/virtio_net",
    "lib/crc16", "fs/mbcache", "fs/jbd2/jbd2", "crypto/crc32c_generic", "fs/ext4/ext4",
    "drivers/input/evdev", "drivers/acpi/button",
)

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
for m in MODULE_NAMES; do insmod /modules/$m.ko 2>/dev/null; done
stty -F /dev/ttyS1 -onlcr 2>/dev/null; stty -F /dev/ttyS2 -onlcr 2>/dev/null
echo RUNSHSTART > /dev/ttyS1
i=0; while [ ! -b /dev/vdc ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p /mnt/in /mnt/out /www
mount -t ext4 -o ro /dev/vdb /mnt/in || echo INPUTDISKFAIL > /dev/ttyS1
mount -t ext4 /dev/vdc /mnt/out || echo OUTPUTDISKFAIL > /dev/ttyS1
[ -f /mnt/in/run-params.sh ] && . /mnt/in/run-params.sh
ip=$(sed -n 's/.*guestip=\([0-9./]*\).*/\1/p' /proc/cmdline)
ip link set lo up
ip addr add "$ip" dev eth0 && ip link set eth0 up
echo "${ip%/*}" > /dev/ttyS2
echo WROTEIPADDR > /dev/ttyS1
{ echo "project=$PROJECT"; echo "viewer=$VIEWER"; ls /mnt/in | sed 's/^/in: /'; } > /www/index.html
httpd -p 8443 -h /www
mkdir -p /etc/acpi/PWRF
cat > /etc/acpi/PWRF/00000080 <<'EOF'
#!/bin/sh
echo VIEWERDBBACKUP > /dev/ttyS1
mkdir -p /tmp/dump
if [ -f /mnt/in/codedx.sql ]; then cp /mnt/in/codedx.sql /tmp/dump/codedx.sql; fi
echo "-- saved by the tiny guest for project $PROJECT" >> /tmp/dump/codedx.sql
if tar -C /tmp/dump -czf /mnt/out/codedx_viewerdb.tar.gz codedx.sql; then
  echo VIEWERDBBUNDLESUCCESS > /dev/ttyS1
else
  echo VIEWERDBBUNDLEFAIL > /dev/ttyS1
fi
sync; umount /mnt/out; umount /mnt/in
echo VIEWERDOWN > /dev/ttyS1
poweroff -f
EOF
chmod 755 /etc/acpi/PWRF/00000080
acpid -f -c /etc/acpi -l /tmp/acpid.log &
echo VIEWERUP > /dev/ttyS1
while true; do sleep 3600; done
"""


ASSESS_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev; mount -t tmpfs tmpfs /tmp
for m in MODULE_NAMES; do insmod /modules/$m.ko 2>/dev/null; done
stty -F /dev/ttyS1 -onlcr 2>/dev/null; stty -F /dev/ttyS2 -onlcr 2>/dev/null
i=0; while [ ! -b /dev/vdc ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mkdir -p /mnt/in /mnt/out
mount -t ext4 /dev/vdb /mnt/in || echo INPUTDISKFAIL > /dev/ttyS1
mount -t ext4 /dev/vdc /mnt/out || echo OUTPUTDISKFAIL > /dev/ttyS1
chmod 01777 /mnt/out
if [ -f /mnt/in/run.sh ]; then
  (cd /mnt/in && sh /mnt/in/run.sh > /mnt/out/runsh.out 2>&1)
else
  echo NORUNSH > /dev/ttyS1
fi
cd /; sync; umount /mnt/out; umount /mnt/in
poweroff -f
"""


@dataclass(frozen=True)
class Guest:
    kernel: Path      #: uncompressed ELF vmlinux (PVH boot: ~4 s faster than the bzImage)
    initrd: Path
    platform_image: Path  #: an empty qcow2 standing in for a viewer platform image

    def cmdline(self, guest_ip: str) -> str:
        return f"console=ttyS0 panic=-1 quiet guestip={guest_ip}"


def _run(argv: list[str], cwd: Path | None = None) -> str:
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


def kernel_package() -> str:
    """The versioned package ``linux-image-amd64`` depends on (e.g. linux-image-6.1.0-56-amd64)."""
    for line in _run(["apt-cache", "depends", "linux-image-amd64"]).splitlines():
        name = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and name.startswith("linux-image-"):
            return name
    raise RuntimeError("apt-cache knows no linux-image-amd64 dependency; run apt-get update")


def default_cache() -> Path:
    return Path(os.environ.get("SWAMPD_GUEST_CACHE") or Path.home() / ".cache" / "swampd-test-guest")


def build_assessment_guest(cache: Path | None = None) -> Guest:
    """The guest whose init runs an assessment's ``/mnt/in/run.sh`` and powers off."""
    return build_guest(cache, ASSESS_INIT)


def build_guest(cache: Path | None = None, init: str = INIT) -> Guest:
    cache = Path(cache or default_cache())
    package = kernel_package()
    key = hashlib.sha256((package + init + repr(MODULES)).encode()).hexdigest()[:12]
    root = cache / key
    guest = Guest(root / "vmlinux", root / "initrd.cpio.gz", root / "condor-tinyguest-master-20260101.qcow2")
    if guest.kernel.exists() and guest.initrd.exists() and guest.platform_image.exists():
        return guest
    work = cache / f"{key}.build.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        _run(["apt-get", "download", package], cwd=work)
        deb = next(work.glob("linux-image-*.deb"))
        tree = work / "initramfs"
        (tree / "modules").mkdir(parents=True)
        vmlinuz = _extract_kernel(deb, tree / "modules")
        deb.unlink()
        (work / "vmlinux").write_bytes(_vmlinux_from_bzimage(vmlinuz.read_bytes()))
        vmlinuz.unlink()
        _write_initramfs(tree, work / "initrd.cpio.gz", init)
        shutil.rmtree(tree)
        _run(["qemu-img", "create", "-q", "-f", "qcow2", str(work / guest.platform_image.name), "64M"])
        if root.exists():
            shutil.rmtree(root)
        os.replace(work, root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return guest


def _extract_kernel(deb: Path, modules_dir: Path) -> Path:
    """Stream the .deb's data tar and keep only the bzImage and our modules."""
    wanted = {f"{m}.ko": Path(m).name for m in MODULES}
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    vmlinuz: Path | None = None
    found = set()
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name.lstrip("./")
            data = None
            if name.startswith("boot/vmlinuz-"):
                vmlinuz = modules_dir.parent.parent / "vmlinuz"
                data = tar.extractfile(member)
                assert data is not None
                vmlinuz.write_bytes(data.read())
            elif "/kernel/" in name:
                rel = name.split("/kernel/", 1)[1]
                if rel in wanted:
                    data = tar.extractfile(member)
                    assert data is not None
                    (modules_dir / f"{wanted[rel]}.ko").write_bytes(data.read())
                    found.add(rel)
    if proc.wait() != 0 or vmlinuz is None or len(found) != len(wanted):
        raise RuntimeError(f"kernel package incomplete: missing {sorted(set(wanted) - found)}")
    return vmlinuz


def _vmlinux_from_bzimage(image: bytes) -> bytes:
    """The uncompressed ELF inside a bzImage's xz payload (PVH-bootable, reference/qemu-guest.md)."""
    start = image.find(b"\xfd7zXZ\x00")
    if start < 0:
        raise RuntimeError("no xz payload in the kernel image")
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(image[start:])


def _write_initramfs(tree: Path, dest: Path, init_script: str) -> None:
    for sub in ("bin", "proc", "sys", "dev", "tmp", "etc"):
        (tree / sub).mkdir(exist_ok=True)
    shutil.copy2("/bin/busybox", tree / "bin" / "busybox")
    names = " ".join(Path(m).name for m in MODULES)
    init = tree / "init"
    init.write_text(init_script.replace("MODULE_NAMES", names), encoding="utf-8")
    init.chmod(0o755)
    files = sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=tree, check=True,
                             input=("\n".join(["."] + files) + "\n").encode(), capture_output=True).stdout
    dest.write_bytes(gzip.compress(archive, 6))


if __name__ == "__main__":
    print(build_guest())
