#!/usr/bin/env bash
# The main job on the embedded default: start the AgentMonitor, launch a viewer
# through launchviewer exactly as the database would, and print its URL.
# Interactive: keeps serving until Ctrl-C.  Without a terminal: stops after the proof.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh
STATE=${SWAMPD_DEMO_STATE:-$PWD/.demo-state}
PORT=${SWAMPD_DEMO_PORT:-8084}
URL="http://127.0.0.1:$PORT/"
mkdir -p -m 700 "$STATE"
# The embedded default, except that a daemon run as root must be told that its jobs may run as
# root too (production sets [scheduler] run_as to an unprivileged user instead).
CONFIG_ARGS=()
if [ "$(id -u)" = 0 ]; then
    printf '[scheduler]\nallow_root_jobs = true\n' >"$STATE/demo.toml"
    CONFIG_ARGS=(--config "$STATE/demo.toml")
fi
.venv/bin/swampd serve "${CONFIG_ARGS[@]}" --state-dir "$STATE" --port "$PORT" >"$STATE/swampd.log" 2>&1 &
DAEMON=$!
cleanup() {
    .venv/bin/swampd --url "$URL" stop demo-project CodeDX >/dev/null 2>&1 || true
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
.venv/bin/swampd --url "$URL" viewers
if [ -t 0 ]; then
    echo "Viewer running at $VIEWER_URL - press Ctrl-C to stop it and the daemon."
    while kill -0 "$DAEMON" 2>/dev/null; do sleep 1; done
fi
