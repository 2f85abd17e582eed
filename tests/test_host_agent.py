"""Local process jobs under the daemon's host agent (issue 10): no supervisor process per job,
readiness and ends pushed, and jobs that outlive the daemon taken over by the next one."""
from __future__ import annotations

import fcntl
import os
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable

from support.daemon import Daemon, cmdline, wait_for
from swampd.store import Store

#: A viewer that serves HTTP and, when told to stop (TERM), saves its "database" into out/.
SAVING_VIEWER = textwrap.dedent('''
    import http.server, io, os, signal, sys, tarfile, threading
    port, sandbox = int(sys.argv[1]), sys.argv[2]
    def save(*_):
        data = b"the viewer's database"
        with tarfile.open(os.path.join(sandbox, "out", "codedx_viewerdb.tar.gz"), "w:gz") as tar:
            info = tarfile.TarInfo("viewerdb/dump.sql")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        os._exit(0)
    signal.signal(signal.SIGTERM, save)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
    server.serve_forever()
''')


def saving_daemon(make_daemon: Callable[..., Daemon], tmp_path: Path) -> Daemon:
    script = tmp_path / "saving_viewer.py"
    script.write_text(SAVING_VIEWER)
    return make_daemon(viewers={"CodeDX": {"command": ["{python}", str(script), "{port}", "{sandbox}"]}})


def snapshots(daemon: Daemon, project: str) -> list[dict[str, Any]]:
    store = Store(daemon.state_dir / "registry.sqlite3")
    record = store.get_viewer(project, "CodeDX")
    return store.snapshots(record.id) if record is not None else []


def test_a_local_viewer_runs_without_a_supervisor_process_of_its_own(daemon: Daemon) -> None:
    daemon.api.launchViewer({"projectid": "lean", "viewer": "CodeDX"})
    ready = daemon.api.waitViewer("lean", "CodeDX", "READY", 60)
    assert ready["state_name"] == "READY"
    tree = daemon._job_tree()
    assert len(tree) == 1 and "vruntask" not in cmdline(tree[0]) and "http.server" in cmdline(tree[0])
    history = [h["status"] for h in daemon.api.viewerHistory("lean", "CodeDX")]
    assert history.index("Wrote viewer ip address") < history.index("Viewer is up")
    daemon.api.stopViewer("lean", "CodeDX")
    assert daemon.api.waitViewer("lean", "CodeDX", "TERMINATED", 60)["state_name"] == "TERMINATED"
    wait_for(lambda: not daemon._job_tree(), 20, what="the command to be gone")


def test_a_stop_saves_the_viewer_database_before_the_job_counts_as_ended(
        make_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon = saving_daemon(make_daemon, tmp_path)
    daemon.api.launchViewer({"projectid": "saver", "viewer": "CodeDX", "viewer_uuid": "vi-saver"})
    assert daemon.api.waitViewer("saver", "CodeDX", "READY", 60)["state_name"] == "READY"
    daemon.api.stopViewer("saver", "CodeDX")
    assert daemon.api.waitViewer("saver", "CodeDX", "TERMINATED", 60)["state_name"] == "TERMINATED"
    [snap] = wait_for(lambda: snapshots(daemon, "saver"), 20, what="the saved database")
    assert snap["path"].endswith(".tar.gz") and len(snap["checksum"]) == 128
    relaunch = daemon.api.launchViewer({"projectid": "saver", "viewer": "CodeDX", "viewer_uuid": "vi-saver"})
    assert relaunch["epoch"] == 2
    assert daemon.api.waitViewer("saver", "CodeDX", "READY", 60)["state_name"] == "READY"
    [job_dir] = [d for d in daemon.jobs_dir().iterdir() if (d / "in").exists() and not (d / "exit_status").exists()]
    assert any((job_dir / "in").rglob("dump.sql"))  # the relaunch restored what the stop saved


def test_a_viewer_that_ends_while_the_daemon_is_down_is_collected_by_the_next_one(
        make_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon = saving_daemon(make_daemon, tmp_path)
    daemon.api.launchViewer({"projectid": "orphan", "viewer": "CodeDX", "viewer_uuid": "vi-orphan"})
    assert daemon.api.waitViewer("orphan", "CodeDX", "READY", 60)["state_name"] == "READY"
    [pid] = daemon._job_tree()
    daemon.kill9()
    os.kill(pid, signal.SIGTERM)  # the viewer saves its database and ends while nobody watches
    wait_for(lambda: not daemon._job_tree(), 20, what="the viewer to end")
    daemon.start()
    ended = daemon.api.waitViewer("orphan", "CodeDX", "SHUTDOWN", 60)
    assert ended["state_name"] == "SHUTDOWN", ended
    [snap] = wait_for(lambda: snapshots(daemon, "orphan"), 20, what="the database the orphan saved")
    assert snap["epoch"] == 1


def test_a_running_viewer_is_taken_over_and_its_end_is_seen_at_once(daemon: Daemon) -> None:
    daemon.api.launchViewer({"projectid": "adopted", "viewer": "CodeDX"})
    before = daemon.api.waitViewer("adopted", "CodeDX", "READY", 60)
    [pid] = daemon._job_tree()
    daemon.kill9()
    daemon.start()
    assert daemon.api.getViewer("adopted", "CodeDX")["url"] == before["url"]
    os.kill(pid, signal.SIGKILL)  # dies by itself: the new daemon watches it through a pidfd
    after = daemon.api.waitViewer("adopted", "CodeDX", "SHUTDOWN", 60)
    assert after["state_name"] in ("SHUTDOWN", "ERROR"), after
    assert sys.platform.startswith("linux")


def test_an_adopted_commands_job_stays_alive_until_its_outputs_are_collected(
        make_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    """The agent that adopts a command after a restart holds the job's lock through the command's own
    descriptor, as the agent that started it did: when the command ends, the job is not seen as over
    (its lock free) before its outputs are collected.  It was: an adopted assessment whose end a
    resync saw meanwhile ended "without results"."""
    daemon = saving_daemon(make_daemon, tmp_path)
    daemon.api.launchViewer({"projectid": "kept", "viewer": "CodeDX", "viewer_uuid": "vi-kept"})
    assert daemon.api.waitViewer("kept", "CodeDX", "READY", 60)["state_name"] == "READY"
    [pid] = daemon._job_tree()
    [job_dir] = [d for d in daemon.jobs_dir().iterdir() if (d / "spawned").exists()]
    daemon.kill9()
    daemon.start()
    wait_for(lambda: "adopting the command" in daemon.log(), 20, what="the new agent to adopt the command")
    assert "cannot share the lock" not in daemon.log()
    lock = os.open(job_dir / "job.lock", os.O_RDONLY)
    free_before_collected = 0
    try:
        os.kill(pid, signal.SIGTERM)  # the viewer saves its database and ends; the agent collects it
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            fcntl.flock(lock, fcntl.LOCK_UN)
            # The agent marks the outputs collected before it lets go: free and unmarked is the failure.
            free_before_collected = 0 if (job_dir / "collected").exists() else 1
            break
    finally:
        os.close(lock)
    assert free_before_collected == 0, "the job's lock went free before its outputs were collected"
    assert daemon.api.waitViewer("kept", "CodeDX", "SHUTDOWN", 60)["state_name"] == "SHUTDOWN"
    [snap] = wait_for(lambda: snapshots(daemon, "kept"), 20, what="the database the adopted viewer saved")
    assert snap["epoch"] == 1


def test_a_hosted_starts_statuses_never_go_back(daemon: Daemon) -> None:
    """The host agent answers the start before its start reports reach the registry, so the submit's
    own "Waiting for the viewer machine" may come first; it must never follow them (it once followed
    "Wrote viewer ip address" in the history: an older status put back)."""
    started = ["Starting viewer", "Starting viewer run script", "Wrote viewer ip address", "Viewer is up"]
    seen = set()
    for n in range(12):  # either order of the submit and the start's reports, as they fall
        project = f"order-{n}"
        daemon.api.launchViewer({"projectid": project, "viewer": "CodeDX"})
        assert daemon.api.waitViewer(project, "CodeDX", "READY", 60)["state_name"] == "READY"
        history = [h["status"] for h in daemon.api.viewerHistory(project, "CodeDX")]
        assert history in (["Launching viewer", *started],
                           ["Launching viewer", "Waiting for the viewer machine", *started]), history
        seen.add(len(history))
    print("history lengths seen:", sorted(seen))


#: A viewer whose first starts find their port taken (as when another process on the host grabbed it
#: between the daemon's choice and the bind): it says so and exits, ``fails`` times, then serves.
PORT_TAKEN_VIEWER = textwrap.dedent('''
    import http.server, os, sys
    port, counter, fails = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    starts = (int(open(counter).read()) if os.path.exists(counter) else 0) + 1
    open(counter, "w").write(str(starts))
    if starts <= fails:
        print(f"httpd: bind: Address already in use (port {port})", file=sys.stderr)
        sys.exit(1)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
''')


def port_taken_daemon(make_daemon: Callable[..., Daemon], tmp_path: Path, fails: int,
                      message: bool = True) -> tuple[Daemon, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    script, counter = tmp_path / "port_taken.py", tmp_path / "starts"
    text = PORT_TAKEN_VIEWER if message else PORT_TAKEN_VIEWER.replace("Address already in use", "no licence")
    script.write_text(text)
    daemon = make_daemon(viewers={"CodeDX": {"command": ["{python}", str(script), "{port}", str(counter),
                                                         str(fails)]}})
    return daemon, counter


def test_a_command_whose_port_was_taken_is_started_again_on_another(
        make_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon, counter = port_taken_daemon(make_daemon, tmp_path, fails=2)
    daemon.api.launchViewer({"projectid": "taken", "viewer": "CodeDX"})
    ready = daemon.api.waitViewer("taken", "CodeDX", "READY", 60)
    assert ready["state_name"] == "READY", ready
    assert counter.read_text() == "3"
    taken = [line for line in daemon.log().splitlines() if "was taken before the command bound it" in line]
    assert len(taken) == 2
    assert ready["vmip"].endswith(":" + taken[-1].split("started again on port ")[1].split()[0])
    (pid,) = daemon._job_tree()
    # The spawn record names the running command: a restarted daemon adopts it, and a stop ends it.
    daemon.kill9()
    daemon.start()
    assert daemon.api.getViewer("taken", "CodeDX")["state_name"] == "READY"
    assert daemon._job_tree() == [pid]
    daemon.api.stopViewer("taken", "CodeDX")
    assert daemon.api.waitViewer("taken", "CodeDX", "TERMINATED", 60)["state_name"] == "TERMINATED"
    wait_for(lambda: not daemon._job_tree(), 20, what="the command to be gone")


def test_a_port_taken_again_and_again_ends_in_error_and_other_failures_are_not_retried(
        make_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    daemon, counter = port_taken_daemon(make_daemon, tmp_path / "always", fails=99)
    daemon.api.launchViewer({"projectid": "always", "viewer": "CodeDX"})
    ended = daemon.api.waitViewer("always", "CodeDX", "READY", 60)
    assert ended["state_name"] == "ERROR" and "before it answered" in ended["status"]
    assert counter.read_text() == "4"  # the start and three more
    other, counter = port_taken_daemon(make_daemon, tmp_path / "other", fails=99, message=False)
    other.api.launchViewer({"projectid": "other", "viewer": "CodeDX"})
    assert other.api.waitViewer("other", "CodeDX", "READY", 60)["state_name"] == "ERROR"
    assert counter.read_text() == "1"


#: A viewer whose first start finds a stranger (another user, in a session of its own) serving its port:
#: the stranger answers HTTP well, the viewer fails to bind after a while, and its next start serves.
STRANGER_VIEWER = textwrap.dedent('''
    import http.server, os, socket, subprocess, sys, time
    port, counter, stranger_pid = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    starts = (int(open(counter).read()) if os.path.exists(counter) else 0) + 1
    open(counter, "w").write(str(starts))
    if starts == 1:
        serve = ("import http.server, sys; http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), "
                 "http.server.SimpleHTTPRequestHandler).serve_forever()")
        stranger = subprocess.Popen(["/usr/bin/python3", "-c", serve, str(port)], user=65534, group=65534,
                                    extra_groups=[], cwd="/", start_new_session=True,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        open(stranger_pid, "w").write(f"{stranger.pid} {port}")
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.01)
        time.sleep(1.0)  # long enough for the prober to ask the stranger a few times
        print(f"httpd: bind: Address already in use (port {port})", file=sys.stderr)
        sys.exit(1)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
''')


def test_a_stranger_answering_on_a_viewers_port_is_not_the_viewer(
        make_daemon: Callable[..., Daemon], tmp_path: Path) -> None:
    """Another local user who binds a viewer's port first answers the probe well; the viewer must not
    be reported up at the stranger's address (the listener's owner is checked), and is started again."""
    script, counter, stranger = tmp_path / "stranger.py", tmp_path / "starts", tmp_path / "stranger.pid"
    script.write_text(STRANGER_VIEWER)
    daemon = make_daemon(viewers={"CodeDX": {"command": ["{python}", str(script), "{port}", str(counter),
                                                         str(stranger)]}})
    try:
        daemon.api.launchViewer({"projectid": "stranger", "viewer": "CodeDX"})
        ready = daemon.api.waitViewer("stranger", "CodeDX", "READY", 60)
        stranger_port = stranger.read_text().split()[1]
        assert ready["state_name"] == "READY", ready
        assert not ready["vmip"].endswith(":" + stranger_port), "reported up at the stranger's address"
        assert counter.read_text() == "2"
        history = [h["status"] for h in daemon.api.viewerHistory("stranger", "CodeDX")]
        assert history.count("Viewer is up") == 1
        assert any(f"port {stranger_port} is listened on by uid 65534, not {os.geteuid()}" in line
                   for line in daemon.log().splitlines())
    finally:
        if stranger.exists():
            os.killpg(int(stranger.read_text().split()[0]), signal.SIGKILL)


class RecordingReporter:
    """A job's reporter that records what it was asked to send, waits where told, refuses when told."""

    def __init__(self) -> None:
        import threading

        self.sent: list[list[str]] = []
        self.release_start = threading.Event()
        self.refuse = False

    def send_all(self, reports: list[dict[str, Any]], give_up: Callable[[], bool]) -> bool:
        self.release_start.wait(10)  # the start's reports are slow to reach the daemon
        return self._send(reports)

    def send(self, give_up: Callable[[], bool], **fields: Any) -> bool:
        return self._send([fields])

    def _send(self, reports: list[dict[str, Any]]) -> bool:
        from swampd.vruntask.delivery import Fenced

        if self.refuse:
            raise Fenced("launch 1 is stale (fault 3)")
        self.sent.append([str(r.get("event") or r.get("status")) for r in reports])
        return True


def hosted_job(reporter: RecordingReporter) -> Any:
    from types import SimpleNamespace

    from swampd.vruntask.host import HostedJob

    return HostedJob(job=SimpleNamespace(launch_id="launch-1"), payload=None, staging=None,  # type: ignore[arg-type]
                     reporter=reporter, lock_fd=-1, pid=0)  # type: ignore[arg-type]


def test_a_starts_reports_go_first_though_the_start_is_answered_before_them() -> None:
    """The start takes the job's report lock and hands its reports to a report thread: "up" (or a stop,
    or the end) made meanwhile waits for them instead of overtaking them."""
    import threading

    from swampd.vruntask.host import HostAgent

    agent = HostAgent()
    try:
        reporter = RecordingReporter()
        hosted = hosted_job(reporter)
        hosted.report_lock.acquire()  # as start() does before it answers
        agent._up_reports.submit(agent._report_held, hosted, ({"event": "RUNSHSTART"}, {"event": "WROTEIPADDR"}))
        up = threading.Thread(target=agent._report, args=(hosted, {"event": "VIEWERUP"}))
        up.start()
        up.join(0.3)
        assert up.is_alive() and reporter.sent == []  # "up" waits for the start's reports
        reporter.release_start.set()
        up.join(10)
        assert reporter.sent == [["RUNSHSTART", "WROTEIPADDR"], ["VIEWERUP"]]
        assert not hosted.report_lock.locked()
    finally:
        agent.close()


def test_a_refused_start_report_fences_the_launch_and_stops_its_command() -> None:
    import threading

    from swampd.vruntask.host import HostAgent

    agent = HostAgent()
    stopped = threading.Event()
    agent.stop = lambda launch_id, grace, force=False: stopped.set()  # type: ignore[method-assign]
    try:
        reporter = RecordingReporter()
        reporter.refuse = True
        reporter.release_start.set()
        hosted = hosted_job(reporter)
        hosted.pid = os.getpid()  # "running": a fenced launch's command is stopped
        hosted.report_lock.acquire()
        agent._up_reports.submit(agent._report_held, hosted, ({"event": "RUNSHSTART"},))
        assert stopped.wait(10) and hosted.fenced
        # The stop is started from inside the delivery; the lock is given back just after.
        wait_for(lambda: not hosted.report_lock.locked(), 10, what="the report lock to be given back")
        agent._report(hosted, {"event": "VIEWERUP"})  # a fenced launch reports nothing more
        assert reporter.sent == []
    finally:
        agent.close()
