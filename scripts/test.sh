#!/usr/bin/env bash
# Install everything the suite needs (system parts included) and run it.
# Extra arguments go to pytest, e.g. scripts/test.sh -k launch -x
#
# With no arguments (CI, `make test`), the viewer, assessment, Native and guest tests then
# run a second time on the Python Debian 12 ships (/usr/bin/python3, 3.11.2),
# in its own venv (.venv-deb), so nothing newer than requires-python slips in.
# SWAMPD_SKIP_DEB_PYTHON=1 skips that run.
set -euo pipefail
cd "$(dirname "$0")/.."
# System parts first: install.sh builds libvirt-python against libvirt-dev.
scripts/setup-system.sh
scripts/install.sh test,vm
if [ $# -gt 0 ] || [ "${SWAMPD_SKIP_DEB_PYTHON:-0}" = 1 ]; then
    exec .venv/bin/python -m pytest "$@"
fi
status=0
.venv/bin/python -m pytest || status=$?

DEB_PYTHON=/usr/bin/python3
DEB_TESTS=(tests/test_vm_guest.py tests/test_vm_prepare_finish.py tests/test_launchviewer_cli.py
           tests/test_native_report.py tests/test_native_viewer.py tests/test_archives.py
           tests/test_results_page.py tests/test_joblog.py tests/test_display_names.py tests/test_statusout.py
           tests/test_oneline.py tests/test_assessment_run.py tests/test_assessment_collect.py
           tests/test_cppcheck_tool.py tests/test_assessment_guest.py tests/test_execute_execution_record_cli.py
           tests/test_results_store.py)
echo "== viewer, assessment, Native and guest tests on Debian's $("$DEB_PYTHON" --version 2>&1) ($DEB_PYTHON) =="
if [ ! -x .venv-deb/bin/python ]; then
    "$DEB_PYTHON" -m venv .venv-deb
fi
.venv-deb/bin/python -m pip install -q --disable-pip-version-check -e ".[test,vm]"
.venv-deb/bin/python -m pytest -p no:cacheprovider "${DEB_TESTS[@]}" || status=$?
exit "$status"
