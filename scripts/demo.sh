#!/usr/bin/env bash
# The main job on the embedded default: start the AgentMonitor, launch a viewer
# through launchviewer exactly as the database would, run one real assessment
# (cppcheck on a small C package with known defects) and print its weakness
# count, then turn its results into the Native viewer's report and serve that
# results page from a second viewer, printing its URL.
# Interactive: keeps serving until Ctrl-C.  Without a terminal: stops after the proof.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
command -v cppcheck >/dev/null || scripts/setup-system.sh  # the assessment's tool, from Debian
STATE=${SWAMPD_DEMO_STATE:-$PWD/.demo-state}
PORT=${SWAMPD_DEMO_PORT:-8084}
URL="http://127.0.0.1:$PORT/"
rm -rf "$STATE"
mkdir -p -m 700 "$STATE" "$STATE/packages" "$STATE/report"
# The embedded default, plus a viewer that serves the results page.  A daemon run as
# root must be told that its jobs may run as root too (production sets [scheduler]
# run_as to an unprivileged user instead).
{
    if [ "$(id -u)" = 0 ]; then printf '[scheduler]\nallow_root_jobs = true\n\n'; fi
    printf '[viewers.CodeDX]\n\n'
    printf '[viewers.Results]\ncommand = ["{python}", "-m", "http.server", "{port}", "--bind", "127.0.0.1", "--directory", "%s"]\n' \
        "$STATE/report"
} >"$STATE/demo.toml"
.venv/bin/swampd serve --config "$STATE/demo.toml" --state-dir "$STATE" --port "$PORT" >"$STATE/swampd.log" 2>&1 &
DAEMON=$!
cleanup() {
    for viewer in "demo-project CodeDX" "demo-results Results"; do
        # shellcheck disable=SC2086
        .venv/bin/swampd --url "$URL" stop $viewer >/dev/null 2>&1 || true
    done
    sleep 1
    kill -TERM "$DAEMON" 2>/dev/null || true
    wait "$DAEMON" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do
    .venv/bin/swampd --url "$URL" viewers >/dev/null 2>&1 && break
    kill -0 "$DAEMON" 2>/dev/null || { cat "$STATE/swampd.log"; exit 1; }
    sleep 0.2
done
echo "swampd is serving at $URL (state in $STATE, log in $STATE/swampd.log)"
echo "\$ launchviewer --project demo-project --viewer_name CodeDX"
.venv/bin/launchviewer --url "$URL" --project demo-project --viewer_name CodeDX
echo "\$ launchviewer --project demo-project --viewer_name CodeDX --wait 60"
VIEWER_URL=$(.venv/bin/launchviewer --url "$URL" --project demo-project --viewer_name CodeDX --wait 60)
echo "$VIEWER_URL"
case "$VIEWER_URL" in http*) ;; *) exit 1 ;; esac
echo "viewer answers: HTTP $(.venv/bin/python -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).status)' "$VIEWER_URL")"

echo
PACKAGE="$STATE/packages/hello-c-2.1.tar.gz"
tar -czf "$PACKAGE" -C tests/assess --transform 's,^hello-c,hello-c-2.1,' hello-c
echo "\$ swampd assess $PACKAGE --tool cppcheck --type C/C++ --wait 300"
ASSESS=$(.venv/bin/swampd --url "$URL" assess "$PACKAGE" --tool cppcheck --name hello-c --version 2.1 \
    --type C/C++ --wait 300)
echo "$ASSESS"
SCARF=$(printf '%s\n' "$ASSESS" | sed -n 's/^scarf: //p')
[ -n "$SCARF" ] || exit 1

echo
echo "\$ launchviewer --viewer_name Native --results_type results --file_path <its SCARF> --outdir $STATE/report"
.venv/bin/launchviewer --viewer_name Native --results_type results --file_path "$SCARF" --outdir "$STATE/report" \
    --package_name hello-c --tool_name cppcheck --platform_name debian-12-64
RESULTS_URL=$(.venv/bin/launchviewer --url "$URL" --project demo-results --viewer_name Results --wait 60)
case "$RESULTS_URL" in http*) ;; *) echo "$RESULTS_URL"; exit 1 ;; esac
echo "results page: ${RESULTS_URL}nativereport.html"
echo "results page answers: HTTP $(.venv/bin/python -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).status)' "${RESULTS_URL}nativereport.html")"
echo
.venv/bin/swampd --url "$URL" viewers
.venv/bin/swampd --url "$URL" runs
if [ -t 0 ]; then
    echo "Viewer at $VIEWER_URL, results page at ${RESULTS_URL}nativereport.html - press Ctrl-C to stop."
    while kill -0 "$DAEMON" 2>/dev/null; do sleep 1; done
fi
