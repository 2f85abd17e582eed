#!/usr/bin/env bash
# System parts the test suite uses for real, installed or started when missing.
# Runs as root on the project's machines (CI included); every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
# (Later issues add: qemu and libvirt for the VM path, MariaDB for the database path.)
exit 0
