#!/usr/bin/env bash
# Install everything the suite needs (system parts included) and run it.
# Extra arguments go to pytest, e.g. scripts/test.sh -k launch -x
set -euo pipefail
cd "$(dirname "$0")/.."
# System parts first: install.sh builds libvirt-python against libvirt-dev.
scripts/setup-system.sh
scripts/install.sh test,vm
exec .venv/bin/python -m pytest "$@"
