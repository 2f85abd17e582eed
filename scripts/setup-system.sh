#!/usr/bin/env bash
# System parts the test suite uses for real, installed or started when missing.
# Runs as root on the project's machines (CI included); every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
# (Later issues add: MariaDB for the database path.)

# apt_install PKG...: install the packages that are missing; `apt-get update` at most once.
APT_UPDATED=0
apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$APT_UPDATED" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# --- VM path (issue 4): qemu under TCG through libvirt's qemu driver, see
# reference/qemu-guest.md.  libvirt-dev + pkg-config + gcc must be present
# before scripts/install.sh builds libvirt-python.
apt_install qemu-system-x86 qemu-utils libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
    libvirt-dev pkg-config gcc busybox-static e2fsprogs cpio
scripts/setup-libvirt.sh

# --- database path (issue 5): MariaDB running, the tests' sys_eval/sys_exec UDF
# built against Debian's headers (libmariadb-dev has mysql.h and the UDF types)
# and installed into the server's plugin dir, and a Python 3.11 that the mysql
# user can run (the venv's interpreter may live under a private home).
apt_install mariadb-server mariadb-client libmariadb-dev gcc python3
tests/db/ensure_mariadb.sh
tests/db/build_udf.sh

# --- results page (issue 12): Debian's headless Chromium for the browser test
# (Playwright drives it; it never downloads a browser of its own), fonts for
# readable screenshots, and venv for Debian's own Python 3.11, which
# scripts/test.sh runs the viewer and guest tests on once.
apt_install chromium fonts-dejavu-core python3-venv

# --- assessments (issue 11): the real tool the suite and the embedded default run (swampd.tools.cppcheck).
apt_install cppcheck

# --- operating swampd (issue 13): systemd-analyze verifies etc/systemd/ offline (no running
# systemd is needed); supervisord comes from PyPI with the test extra.
apt_install systemd

# --- interoperability (issue 9): SWAMP's own Perl XML-RPC client talks to a real daemon.
apt_install librpc-xml-perl
exit 0
