"""Assessment runs driven by SWAMP's database, end to end, on the real MariaDB and a real daemon.

The test schema's ``process_execution_records`` event (SWAMP's launch
counter and countdown) runs ``execute_execution_record`` through the real
``sys_exec`` UDF as the mysql user; the daemon runs the real tool (cppcheck)
under its host agent, copies the results into the project's tree and writes
every status, the flags and ``insert_results`` back.  Then the same under
``kill -9`` at each step that writes, with MariaDB stopped mid-run, with the
web server down, and with a retry.
"""
from __future__ import annotations

import http.server
import os
import pwd
import re
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from support.assess import package_archive
from support.assessment_db import AssessmentWorld, assessment_world  # noqa: F401 (fixture)
from support.daemon import Daemon, free_port, wait_for
from support.mariadb import MysqlInstall, start_mariadb, stop_mariadb

FINALS = ("Finished", "Finished with Warnings", "Finished with Errors")
#: SWAMP's statuses of a run on the local scheduler, in the order its database must see them (a
#: local job starts at once: no "Waiting in HTCondor Queue"; the HTCondor tests check that one).
ORDER = ["SUBMITTING TO HTCONDOR", "Starting assessment process", "Performing assessment",
         "Extracting assessment results", "Saving Results"]
RETRY_TOOL = """\
import sys, pathlib
out, marker = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
sys.path.insert(0, sys.argv[3])
from swampd.tools.framework import StatusOut
log = StatusOut(out)
if not marker.exists():
    marker.write_text("tried")
    log.note("retry", "the tool asks for another attempt")
    log.record("FAIL", "all", seconds=0.0)
    sys.exit(1)
sys.exit(__import__("swampd.tools.cppcheck", fromlist=["main"]).main(sys.argv[4:]))
"""


class Site:
    """A SWAMP database world and a swampd daemon wired to it (the wrappers installed for mysql)."""

    def __init__(self, world: AssessmentWorld, daemon: Daemon) -> None:
        self.world, self.daemon = world, daemon
        self.install = MysqlInstall(daemon.config)
        world.use_programs(self.install.bin)
        self.package = package_archive(daemon.state_dir / "packages")

    def add_run(self, **kwargs: Any) -> str:
        return self.world.add_run(self.package, tool="cppcheck", name="hello-c", version="2.1", **kwargs)

    def completed(self, uuid: str, timeout: float = 180) -> dict[str, Any]:
        wait_for(lambda: self.world.record(uuid)["complete_flag"] == 1, timeout, what=f"{uuid} complete_flag = 1")
        return self.world.record(uuid)


@pytest.fixture
def make_site(make_daemon: Callable[..., Daemon], assessment_world: AssessmentWorld,
              tmp_path: Path) -> Iterator[Callable[..., Site]]:
    made: list[Site] = []

    def make(start: bool = True, tools: dict[str, Any] | None = None, **extra: dict[str, Any]) -> Site:
        tables: dict[str, Any] = {"mariadb": assessment_world.mariadb_table(),
                                  "assessments": {"max_concurrent": 2, "max_retries": 2}}
        for name, tool in (tools or {}).items():
            tables[f"tools.{name}"] = tool
        tables.update(extra)
        daemon = make_daemon(start=False, extra=tables)
        (daemon.state_dir / "packages").mkdir(parents=True, mode=0o700)
        site = Site(assessment_world, daemon)
        made.append(site)
        if start:
            daemon.start()
        return site

    yield make
    for site in made:
        site.install.remove()


#: cppcheck after 6 s: a run that stays "Performing assessment" long enough to act on.
SLOW_CPPCHECK = {
    "command": [sys.executable, "-c", "import time,sys,subprocess; time.sleep(6);"
                " sys.exit(subprocess.call([sys.executable, '-m', 'swampd.tools.cppcheck'] + sys.argv[1:]))",
                "--in-dir", "{in_dir}", "--out-dir", "{out_dir}", "--build-dir", "{sandbox}/build"],
    "package_types": ["C/C++"]}


def in_order(wanted: list[str], seen: list[str]) -> bool:
    """``wanted`` appears in ``seen`` in this order (other statuses may come between)."""
    it = iter(seen)
    return all(any(s == w or s.startswith(w) for s in it) for w in wanted)


def only_one_final_at_the_end(history: list[str]) -> bool:
    finals = [i for i, s in enumerate(history) if s.startswith(FINALS)]
    return len(finals) == 1 and finals[0] == len(history) - 1


def test_a_database_run_goes_from_launch_flag_to_complete_flag_driven_by_the_event_scheduler(make_site) -> None:
    site = make_site()
    uuid = site.add_run()
    row = site.completed(uuid)
    history = site.world.status_history(uuid)
    assert row["status"] in FINALS[:2], history
    assert in_order(ORDER, history) and only_one_final_at_the_end(history), history
    assert site.world.flags(uuid) == (0, 1, 1)
    assert row["run_date"] is not None and row["completion_date"] is not None
    assert row["completion_date"] >= row["run_date"]
    assert row["vm_ip_address"] and row["vm_image"] == "process" and row["vm_password"] is None
    # SWAMP's other machine fields: the execute node, the machine's name after the job's id, the
    # user the process ran as, the tool archive's name.
    assert row["execute_node_architecture_id"] == socket.gethostname()
    assert re.fullmatch(r"aswamp-[0-9a-f]{32}", row["vm_hostname"]), row["vm_hostname"]
    assert row["vm_username"] == pwd.getpwuid(os.getuid()).pw_name
    assert row["tool_filename"] is None  # this tool has no archive in the database (see the test below)
    [result] = site.world.results(uuid)
    assert result["weakness_cnt"] >= 2 and result["file_host"] == "SWAMP"
    stored = Path(result["file_path"])
    assert stored.is_file() and stored.is_relative_to(site.daemon.state_dir / "SCAProjects" / row["project_uuid"])
    assert f"/A-Results/{result['assessment_result_uuid']}/" in str(stored)
    assert Path(result["log_path"]).is_file() and "/A-Logs/" in result["log_path"]
    assert len(site.world.exec_log()) == 1  # launched once: the daemon cleared launch_flag
    run = site.daemon.api.getRun(uuid)
    assert run["state_name"] == "FINISHED" and run["source"] == "database"


@pytest.mark.parametrize("failpoint", ["submit.before", "submit.after", "results.after_copy",
                                       "db_results.before_insert", "db_results.after_insert"])
def test_kill_9_at_each_step_that_writes_loses_nothing_and_doubles_nothing(make_site, failpoint: str) -> None:
    site = make_site(start=False)
    site.daemon.start(extra_env={"SWAMPD_FAILPOINTS": failpoint})
    uuid = site.add_run()
    assert site.daemon.wait_exit(120) == -9, site.daemon.log()[-2000:]
    site.daemon.start()
    row = site.completed(uuid)
    history = site.world.status_history(uuid)
    assert row["status"] in FINALS[:2] and only_one_final_at_the_end(history), history
    assert len(site.world.results(uuid)) == 1  # exactly one result row
    run = site.daemon.api.getRun(uuid)
    assert run["epoch"] == 1  # one attempt, one job
    started = [line for line in site.daemon.log().splitlines() if "started job" in line and uuid in line]
    assert len(started) <= 1, started


def test_mariadb_stopped_mid_run_statuses_land_in_order_when_it_returns(make_site) -> None:
    site = make_site(tools={"cppcheck": SLOW_CPPCHECK})
    uuid = site.add_run()
    wait_for(lambda: site.daemon.api.getRun(uuid)["state_name"] == "RUNNING", 60, what="running")
    stop_mariadb()
    try:
        wait_for(lambda: site.daemon.api.getRun(uuid)["state_name"] in ("COLLECTING", "FINISHED"), 120,
                 what="the run to end while MariaDB is down")
        time.sleep(2)
    finally:
        start_mariadb()
    row = site.completed(uuid)
    history = site.world.status_history(uuid)
    assert row["status"] in FINALS[:2] and in_order(ORDER, history) and only_one_final_at_the_end(history), history
    assert len(site.world.results(uuid)) == 1


def test_kill_9_while_performing_then_restart_puts_no_older_status_back(make_site) -> None:
    """The restarted daemon adopts the running tool and hears its start events again; none of them
    is news, so the database never goes back from "Performing assessment"."""
    site = make_site(tools={"cppcheck": SLOW_CPPCHECK})
    uuid = site.add_run()
    wait_for(lambda: any(s.startswith("Performing assessment") for s in site.world.status_history(uuid)), 60,
             what="Performing assessment in the database")
    site.daemon.kill9()
    site.daemon.start()
    row = site.completed(uuid)
    history = site.world.status_history(uuid)
    assert row["status"] in FINALS[:2] and in_order(ORDER, history) and only_one_final_at_the_end(history), history
    performing = history.index(next(s for s in history if s.startswith("Performing assessment")))
    assert not any(s.startswith(("Starting assessment", "Wrote ip address")) for s in history[performing:]), history
    assert len(site.world.results(uuid)) == 1


class Notifications(http.server.BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Notifications.seen.append(self.path)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_the_web_server_down_gets_one_notification_once_it_is_up(make_site) -> None:
    port = free_port()
    site = make_site(webserver={"base_url": f"http://127.0.0.1:{port}/", "timeout": 2})
    Notifications.seen = []
    uuid = site.add_run(notify=True)
    site.completed(uuid)
    wait_for(lambda: "notify" in site.daemon.log() and "retrying" in site.daemon.log(), 60,
             what="a failed notification")
    server = http.server.HTTPServer(("127.0.0.1", port), Notifications)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        wait_for(lambda: Notifications.seen, 120, what="the notification")
        time.sleep(3)
        assert Notifications.seen == [f"/execution_records/{uuid}/notify"]
    finally:
        server.shutdown()


def test_a_retry_runs_a_second_attempt_and_the_database_never_shows_a_final_status_between(
        make_site, tmp_path: Path) -> None:
    tool = tmp_path / "retry_tool.py"
    tool.write_text(RETRY_TOOL)
    marker = tmp_path / "tried"
    src = str(Path(__file__).resolve().parents[1] / "src")
    site = make_site(tools={"cppcheck": {
        "command": ["{python}", str(tool), "{out_dir}", str(marker), src, "--in-dir", "{in_dir}",
                    "--out-dir", "{out_dir}", "--build-dir", "{sandbox}/build"],
        "package_types": ["C/C++"]}})
    tmp_path.chmod(0o777)  # the tool may run as [scheduler] run_as
    uuid = site.add_run()
    row = site.completed(uuid)
    history = site.world.status_history(uuid)
    assert row["status"] in FINALS[:2] and only_one_final_at_the_end(history), history
    assert any("retry(1/2)" in s or "retry" in s.lower() for s in history), history
    assert site.daemon.api.getRun(uuid)["epoch"] == 2
    assert len(site.world.results(uuid)) == 1


def test_a_metric_run_goes_to_the_metric_tables_as_swamps_procedure_routes_it(make_site) -> None:
    cppcheck = ["{python}", "-m", "swampd.tools.cppcheck", "--in-dir", "{in_dir}", "--out-dir", "{out_dir}",
                "--build-dir", "{sandbox}/build"]
    site = make_site(tools={"cloc": {"command": cppcheck, "package_types": ["C/C++"]}})
    uuid = site.world.add_metric_run(site.package, tool="cloc", name="hello-c", version="2.1")
    # SWAMP's create_metric_run starts a metric run itself, through sys_exec
    [(code,)] = site.world.sql("SELECT sys_exec(%s)", (f"{site.install.bin}/execute_execution_record '{uuid}'",))
    assert code == 0
    row = site.completed(uuid)
    assert row["status"] in FINALS[:2] and row["complete_flag"] == 1 and row["completion_date"] is not None
    assert row["file_host"] == "SWAMP" and Path(row["result_path"]).is_file() and row["result_checksum"]
    assert Path(row["result_path"]).is_relative_to(site.daemon.state_dir / "SCAProjects" / "Metrics" / uuid)
    assert site.world.results(uuid) == []  # nothing in the assessment tables
    run = site.daemon.api.getRun(uuid)
    assert run["kind"] == "mrun" and run["state_name"] == "FINISHED"


class _Fields:
    """An AssessmentDatabase that keeps what update_field was given."""

    def __init__(self) -> None:
        self.written: dict[str, str] = {}

    def update_field(self, execrunid: str, name: str, value: str) -> None:
        self.written[name] = value


def test_the_machine_fields_of_a_vm_run_on_htcondor_are_swamps(tmp_path: Path) -> None:
    from swampd.agentmonitor.assessment_effects import AssessmentEffects
    from swampd.config.parse import parse_config
    from swampd.store import OutboxItem, Store
    from swampd.store.records import MetricRecord

    image = tmp_path / "ubuntu-20.04-64.qcow2"
    image.write_bytes(b"")
    config = parse_config({"assessments": {"platform": "vm", "image": str(image)}}, "test")
    store = Store(tmp_path / "r.sqlite3")
    record = MetricRecord(execrunid="M-5d0c7f3e-0000-4000-8000-000000000001", epoch=2, job_ref="4711.0",
                          tool_path="/swamp/store/SCATools/cloc/cloc-1.80.tar.gz",
                          bog='{"platform_image": "ubuntu-20.04-64"}')
    with store.transaction() as tx:
        tx.put_run(record)
    database = _Fields()
    effects = AssessmentEffects(store, config, service=None, database=database)
    effects.vm_fields(OutboxItem(1, record.id, 2, "vm_fields",
                                 {"vm_ip_address": "192.168.122.14", "execute_node": "exec-07.swamp.example"}))
    assert database.written == {
        "execute_node_architecture_id": "exec-07.swamp.example",
        "vm_hostname": "mswamp-4711-0",  # SWAMP's <m|a>swamp-<ClusterId>-<ProcId>
        "vm_username": "builder",
        "vm_image": "ubuntu-20.04-64",
        "vm_ip_address": "192.168.122.14",
        "tool_filename": "cloc-1.80.tar.gz",
    }
    database.written.clear()
    effects.vm_fields(OutboxItem(2, record.id, 1, "vm_fields", {"vm_ip_address": "10.0.0.1"}))
    assert database.written == {}  # an earlier launch's report writes nothing
