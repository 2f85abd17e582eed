#!/usr/bin/env bash
# Make qemu:///system usable on a root, systemd-less Debian 12 host (CI, the
# project's machines): the libvirt-qemu user the qemu driver insists on, a
# qemu.conf that runs qemu as root under TCG with no virtlogd, cgroups or
# namespaces, and a running libvirtd.  Why each line: reference/qemu-guest.md.
# Idempotent; never restarts a libvirtd it did not start.
set -euo pipefail

getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null ||
    useradd -r -g kvm -G libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
mkdir -p /var/log/libvirt/qemu /etc/libvirt

CONF=/etc/libvirt/qemu.conf
MARK="# swampd test host (scripts/setup-libvirt.sh)"
if ! grep -qxF "$MARK" "$CONF" 2>/dev/null; then
    [ -f "$CONF" ] && [ ! -f "$CONF.dist" ] && cp -p "$CONF" "$CONF.dist"
    cat >"$CONF" <<EOF
$MARK
user = "root"
group = "root"
stdio_handler = "file"
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
EOF
    if [ -f /run/libvirtd.pid ] && kill -0 "$(cat /run/libvirtd.pid)" 2>/dev/null; then
        echo "setup-libvirt: libvirtd was already running; restart it to apply $CONF" >&2
    fi
fi

if ! { [ -f /run/libvirtd.pid ] && kill -0 "$(cat /run/libvirtd.pid)" 2>/dev/null; }; then
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        systemctl start libvirtd
    else
        libvirtd -d
    fi
fi
for _ in $(seq 100); do
    [ -S /run/libvirt/libvirt-sock ] && break
    sleep 0.1
done
# The first lookup probes qemu's capabilities (~4 s, then cached): pay it here, not in a test.
virsh -c qemu:///system uri >/dev/null
