#!/usr/bin/env bash
# Create .venv and install swampd.  Idempotent.
# Usage: scripts/install.sh [EXTRAS]   e.g. scripts/install.sh test,vm
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${1:+[$1]}"
