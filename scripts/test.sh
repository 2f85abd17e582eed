#!/usr/bin/env bash
# Install everything the suite needs (system parts included) and run it.
# Extra arguments go to pytest, e.g. scripts/test.sh -k launch -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
scripts/setup-system.sh
exec .venv/bin/python -m pytest "$@"
