"""The dashboard on the daemon's port, in Debian's headless Chromium, and its HTTP side.

A real daemon; a launch made through the API appears on the open page and
turns READY without a reload (the page's long-poll is answered by the
change feed); filters and sorting work; a run whose project is
``<script>alert(1)</script>`` (written straight into the registry, as a
project name from SWAMP's database could arrive) is shown as text and runs
nothing; a screenshot is kept in the test's tmp dir (and, with
``SWAMPD_DASHBOARD_SCREENSHOT=path``, copied there: that is how
docs/dashboard.png was made).  Off loopback (a token file), the page, its
data and /metrics need the token or the login cookie.
"""
from __future__ import annotations

import http.client
import json
import os
import shutil
import threading
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from support.browser import chromium, page  # noqa: F401
from support.daemon import Daemon, wait_for
from swampd.store import Store, ViewerRecord

HOSTILE = "<script>alert(1)</script>"
HOSTILE_STATUS = '<img src=x onerror="window.__owned=1">'


def plant_hostile_run(daemon: Daemon) -> None:
    """A run whose project and status are markup, written into the daemon's registry directly."""
    store = Store(daemon.state_dir / "registry.sqlite3")
    with store.transaction() as tx:
        record = ViewerRecord(projectid=HOSTILE, viewer="CodeDX", epoch=1, launched_at=time.time() - 90)
        tx.transition(record, 1, "Launching viewer", "api", "launch (planted by the test)")
        tx.transition(record, -5, HOSTILE_STATUS, "node", "state ERROR")
    store.close()


def get(daemon: Daemon, path: str, headers: dict[str, str] | None = None, method: str = "GET",
        body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=40)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_dashboard_shows_runs_live_filters_and_keeps_hostile_names_inert(tmp_path, make_daemon, page):
    daemon = make_daemon(viewers={"CodeDX": {}, "Results": {}})
    plant_hostile_run(daemon)
    daemon.api.launchViewer({"projectid": "p-early", "viewer": "Results"})
    wait_for(lambda: daemon.api.getViewer("p-early", "Results")["state"] == 2, 60, what="first viewer READY")
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(daemon.url)
    page.wait_for_selector("body[data-rendered='1']")
    page.wait_for_selector("#live-status[data-state='live']")
    page.evaluate("window.__marker = 42")

    # the hostile run: its project and status are text, and nothing ran
    hostile = page.locator(f"#runs tbody tr[data-key='vrun_{HOSTILE}_CodeDX']")
    assert hostile.locator("td.project").inner_text() == HOSTILE
    assert hostile.locator("td.status").inner_text() == HOSTILE_STATUS
    assert "problem" in hostile.get_attribute("class") and hostile.get_attribute("data-state") == "ERROR"
    assert page.evaluate("window.__owned === undefined") and dialogs == []
    assert page.locator("#runs img, #runs script").count() == 0

    # a launch through the API appears and turns READY on the open page, without a reload
    daemon.api.launchViewer({"projectid": "p-live", "viewer": "CodeDX"})
    page.wait_for_selector("#runs tbody tr[data-key='vrun_p-live_CodeDX']", timeout=20_000)
    page.wait_for_selector("#runs tbody tr[data-key='vrun_p-live_CodeDX'][data-state='READY']", timeout=60_000)
    assert page.evaluate("window.__marker") == 42  # the same page: no reload happened
    assert page.locator("#counts button[data-state='READY'] .n").inner_text() == "2"

    # filters: state, kind, project, problems; then all cleared
    page.select_option("#filter-state", "READY")
    assert sorted(page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => r.dataset.key)")) == [
        "vrun_p-early_Results", "vrun_p-live_CodeDX"]
    page.select_option("#filter-state", "")
    page.fill("#filter-project", "live")
    assert page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => r.dataset.key)") == ["vrun_p-live_CodeDX"]
    page.fill("#filter-project", "")
    page.check("#filter-problems")
    assert page.eval_on_selector_all("#runs tbody tr", "rows => rows.map(r => r.dataset.state)") == ["ERROR"]
    page.uncheck("#filter-problems")
    page.click("#counts button[data-state='ERROR']")
    assert page.locator("#runs tbody tr").count() == 1
    page.click("#counts button[data-state='']")
    assert page.select_option("#filter-kind", "vrun") and page.locator("#runs tbody tr").count() == 3
    page.select_option("#filter-kind", "")

    # sorting by project, both ways
    page.click("#runs thead th[data-sort='projectid']")
    projects = page.eval_on_selector_all("#runs tbody td.project", "cells => cells.map(c => c.innerText)")
    assert projects == sorted(projects, key=str.lower) or projects == sorted(projects)
    page.click("#runs thead th[data-sort='projectid']")
    assert page.eval_on_selector_all("#runs tbody td.project", "cells => cells.map(c => c.innerText)") == projects[::-1]

    # a run's history timeline and pending side effects
    page.click("#runs tbody tr[data-key='vrun_p-live_CodeDX']")
    page.wait_for_selector("#run-detail:not([hidden])")
    moves = page.eval_on_selector_all("#history .move", "items => items.map(i => i.innerText)")
    assert moves[0] == "LAUNCHING" and "LAUNCHING → READY" in moves
    assert "api" in page.inner_text("#history") and "node" in page.inner_text("#history")
    # stopping it shows up live too, in the table and in the open detail panel
    daemon.api.stopViewer("p-live", "CodeDX")
    page.wait_for_selector("#runs tbody tr[data-key='vrun_p-live_CodeDX'][data-state='TERMINATED']", timeout=30_000)
    # A selector, not wait_for_function: the page's CSP refuses the eval its polling would need.
    page.wait_for_selector("#history >> text=TERMINATED")
    page.click("#detail-close")
    page.click("#runs tbody tr[data-key='vrun_p-live_CodeDX']")
    page.wait_for_selector("#run-detail:not([hidden])")
    page.click("#detail-close")

    assert page.evaluate("window.__owned === undefined") and dialogs == []
    assert page.console_errors == []
    shot = tmp_path / "dashboard.png"
    page.click("#runs tbody tr[data-key='vrun_p-early_Results']")
    page.wait_for_selector("#run-detail:not([hidden])")
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("SWAMPD_DASHBOARD_SCREENSHOT"):
        shutil.copy(shot, os.environ["SWAMPD_DASHBOARD_SCREENSHOT"])
    daemon.api.stopViewer("p-early", "Results")


def test_off_loopback_the_dashboard_and_metrics_need_the_token(tmp_path, make_daemon, page):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token-for-the-dashboard\n")
    token_file.chmod(0o600)
    daemon = make_daemon(agentmonitor={"token_file": str(token_file)})
    token = "s3cret-token-for-the-dashboard"

    status, headers, _ = get(daemon, "/")
    assert status == 303 and headers["location"] == "/login"
    for path in ("/api/runs", "/api/runs/1", "/metrics", "/api/changes?since=0"):
        assert get(daemon, path)[0] == 401, path
        assert get(daemon, path, {"Cookie": "swampd_session=99999999999.00"})[0] == 401, path
    assert get(daemon, "/metrics", {"Authorization": f"Bearer {token}"})[0] == 200
    assert get(daemon, "/metrics", {"Authorization": "Bearer wrong-token-wrong-token"})[0] == 401
    assert get(daemon, "/static/dashboard.js")[0] == 200  # code, no data: the login page needs its CSS

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = get(daemon, "/login", form, "POST", b"token=not-the-token")
    assert status == 401 and b'<p id="refused">' in body
    status, headers, _ = get(daemon, "/login", form, "POST", f"token={token}".encode())
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and token not in cookie
    session = cookie.split(";", 1)[0]
    status, _, body = get(daemon, "/api/runs", {"Cookie": session})
    assert status == 200 and json.loads(body)["runs"] == []

    # the same in the browser: the login form, then the dashboard; the cookie is not visible to scripts
    page.goto(daemon.url)
    assert page.url.endswith("/login")
    page.fill("#token", "wrong")
    page.click("button[type=submit]")
    assert page.is_visible("#refused")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-rendered='1']")
    assert page.evaluate("document.cookie") == ""
    api = xmlrpc.client.ServerProxy(daemon.url, headers=[("Authorization", f"Bearer {token}")]).agentMonitor
    api.launchViewer({"projectid": "p-tok", "viewer": "CodeDX"})
    page.wait_for_selector("#runs tbody tr[data-key='vrun_p-tok_CodeDX'][data-state='READY']", timeout=60_000)
    api.stopViewer("p-tok", "CodeDX")


def test_live_updates_hold_no_thread_while_clients_wait(daemon):
    """More waiting dashboards than the daemon has threads: calls and pages are still answered at once,
    and every waiting dashboard hears of a launch the moment it is committed."""
    version = json.loads(get(daemon, "/api/runs")[2])["version"]
    answers: list[tuple[float, dict[str, Any]]] = []
    lock = threading.Lock()

    def wait_for_change() -> None:
        status, _, body = get(daemon, f"/api/changes?since={version}&timeout=25")
        with lock:
            answers.append((time.monotonic(), json.loads(body) if status == 200 else {"status": status}))

    waiting = [threading.Thread(target=wait_for_change) for _ in range(40)]
    for thread in waiting:
        thread.start()
    time.sleep(1.5)
    assert answers == []  # they wait...
    started = time.monotonic()
    assert daemon.rpc(timeout=5).system.listMethods()  # ...and hold no worker: calls get through
    assert get(daemon, "/api/runs")[0] == 200 and get(daemon, "/metrics")[0] == 200
    assert time.monotonic() - started < 3.0
    launched = time.monotonic()
    daemon.api.launchViewer({"projectid": "p-poll", "viewer": "CodeDX"})
    for thread in waiting:
        thread.join(30)
    assert len(answers) == 40
    assert max(at for at, _ in answers) - launched < 5.0
    for _, answer in answers:
        assert [r["key"] for r in answer["runs"]] == ["vrun_p-poll_CodeDX"] and answer["version"] > version
    wait_for(lambda: daemon.api.getViewer("p-poll", "CodeDX")["state"] == 2, 60, what="READY")
    daemon.api.stopViewer("p-poll", "CodeDX")


def test_every_answer_is_bounded_and_bad_requests_are_refused(daemon):
    assert get(daemon, "/api/changes?since=x")[0] == 400
    assert get(daemon, "/api/runs/999")[0] == 404
    assert get(daemon, "/nope")[0] == 404
    assert get(daemon, "/static/../../etc/passwd")[0] == 404
    assert get(daemon, "/", method="DELETE")[0] == 405
    status, headers, body = get(daemon, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, headers, _ = get(daemon, "/")
    assert "script-src 'self'" in headers["content-security-policy"] and headers["x-content-type-options"] == "nosniff"
    started = time.monotonic()
    status, _, body = get(daemon, "/api/changes?since=0&timeout=99999")  # capped: not held forever
    assert status == 200
    assert time.monotonic() - started < 32
    # a GET with a body is refused (no request smuggling through the new routes)
    assert get(daemon, "/api/runs", {"Content-Length": "5"}, body=b"hello")[0] == 400
    # XML-RPC is where it was
    assert daemon.rpc().system.listMethods()


def test_dashboard_static_files_ship_in_the_package():
    from importlib import resources

    static = resources.files("swampd.agentmonitor.observe") / "static"
    names = {p.name for p in static.iterdir()}
    assert {"index.html", "login.html", "dashboard.js", "dashboard.css"} <= names
    page_text = (static / "index.html").read_text()
    assert "http://" not in page_text and "https://" not in page_text  # nothing from a CDN
    assert "<script>" not in page_text  # no inline script (the CSP would refuse it)
    script = (static / "dashboard.js").read_text()
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "eval(" not in script
