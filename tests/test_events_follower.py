"""The events/IP follower against a writer that starts late, appends in pieces and truncates."""
from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from swampd.vruntask.events import LineFollower, clean_event, read_address
from swampd.vruntask.monitor import Monitor


def test_late_start_partial_lines_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "job_events.log"
    follower = LineFollower(path)
    assert follower.read_new() == [] and follower.size() == 0   # not there yet: quiet, no error
    path.write_bytes(b"RUNSH")
    assert follower.read_new() == []                 # a partial line is held back
    with open(path, "ab") as fh:
        fh.write(b"START\r\nWROTE")
    assert follower.read_new() == [("RUNSHSTART\r", 12)]   # each line with the offset just past it
    with open(path, "ab") as fh:
        fh.write(b"IPADDR\n")
    assert [(clean_event(x), end) for x, end in follower.read_new()] == [("WROTEIPADDR", 24)]
    assert follower.read_new() == [] and follower.size() == 24 and follower.generation == 0
    path.write_bytes(b"VIEWERUP\n")                 # truncated (libvirt reopens at each start) and rewritten
    assert follower.read_new() == [("VIEWERUP", 9)] and follower.generation == 1
    tmp = tmp_path / "new"
    tmp.write_bytes(b"A\nB\nVIEWERDOWN\n")
    os.replace(tmp, path)                           # replaced by a new file, even a longer one
    assert follower.read_new() == [("A", 2), ("B", 4), ("VIEWERDOWN", 15)] and follower.generation == 2


def test_address_file_written_in_pieces_and_validated(tmp_path: Path) -> None:
    ip = tmp_path / "job_ip_address.txt"
    assert read_address(ip) is None
    ip.write_bytes(b"10.0.")
    assert read_address(ip) is None                 # half an address is no address
    with open(ip, "ab") as fh:
        fh.write(b"2.15\r\n")
    assert read_address(ip) == "10.0.2.15:8443"
    with open(ip, "ab") as fh:
        fh.write(b"; rm -rf /\n999.1.1.1\n")
    assert read_address(ip) == "10.0.2.15:8443"     # garbage after a good line is ignored


class RecordingReporter:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, give_up: Any = None, **fields: Any) -> bool:
        self.sent.append(fields)
        return True


def test_monitor_reports_each_event_once_in_order_from_a_slow_writer(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    reporter = RecordingReporter()
    monitor = Monitor(out, reporter, poll=0.02, address_wait=5)  # type: ignore[arg-type]
    monitor.start()

    def guest() -> None:
        time.sleep(0.2)  # the serial port file appears late
        events = out / "job_events.log"
        for piece in (b"RUNSHST", b"ART\r\n", b"RUNSHSTART\r\n", b"WROTEIP"):
            with open(events, "ab") as fh:
                fh.write(piece)
            time.sleep(0.05)
        (out / "job_ip_address.txt").write_bytes(b"192.0.2.7\r\n")
        with open(events, "ab") as fh:
            fh.write(b"ADDR\r\nsome who output\r\n")
        time.sleep(0.1)
        events.write_bytes(b"VIEWERUP\r\n")  # truncated by a restart of the domain
        time.sleep(0.1)
        with open(events, "ab") as fh:
            fh.write(b"VIEWERDOWN\r\n")

    writer = threading.Thread(target=guest)
    writer.start()
    writer.join()
    assert monitor.down.wait(5)
    assert monitor.finish(5)
    assert reporter.sent == [{"event": "RUNSHSTART"},
                             {"event": "WROTEIPADDR", "vmip": "192.0.2.7:8443", "node": socket.gethostname()},
                             {"event": "somewhooutput"}, {"event": "VIEWERUP"},
                             {"event": "VIEWERDOWN"}]


def test_a_monitor_pass_that_fails_is_logged_and_the_monitor_carries_on_in_its_place(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "job_events.log").write_bytes(b"RUNSHSTART\n")
    reporter = RecordingReporter()
    monitor = Monitor(out, reporter, poll=0.02)  # type: ignore[arg-type]
    failed = threading.Event()
    original = monitor._pass

    def failing_pass() -> None:
        original()
        if not failed.is_set():
            failed.set()
            raise RuntimeError("boom")

    monitor._pass = failing_pass  # type: ignore[method-assign]
    monitor.start()
    assert failed.wait(5)
    with open(out / "job_events.log", "ab") as fh:
        fh.write(b"VIEWERUP\n")
    assert monitor.down.wait(0.2) is False
    with open(out / "job_events.log", "ab") as fh:
        fh.write(b"VIEWERDOWN\n")
    assert monitor.down.wait(5)
    assert monitor._thread is not None and monitor._thread.is_alive()  # the same thread, still going
    monitor.finish(5)
    assert [s["event"] for s in reporter.sent] == ["RUNSHSTART", "VIEWERUP", "VIEWERDOWN"]


def test_direct_reports_take_their_place_among_the_events(tmp_path: Path) -> None:
    """A direct report comes after the events written before it and before the ones written after it;
    one made moot by an event written before its turn is dropped."""
    out = tmp_path / "out"
    out.mkdir()
    reporter = RecordingReporter()
    monitor = Monitor(out, reporter, poll=0.02)  # type: ignore[arg-type]
    events = out / "job_events.log"

    def write(*names: str) -> None:
        with open(events, "ab") as fh:
            fh.write(b"".join(f"{name}\r\n".encode() for name in names))

    write("RUNSHSTART")
    monitor.report({"state": -5, "status": "the reason"})            # a failure...
    write("VIEWERDBBACKUP", "VIEWERDOWN")                             # ...then what stopping the machine wrote
    monitor.report({"state": -3, "status": "Viewer shutdown complete"}, unless_seen="VIEWERDOWN")
    monitor.report({"state": -1, "status": "not moot"}, unless_seen="NEVERWRITTEN")
    write("LATE")
    monitor.start()
    assert monitor.finish(5)
    assert reporter.sent == [{"event": "RUNSHSTART"}, {"state": -5, "status": "the reason"},
                             {"event": "VIEWERDBBACKUP"}, {"event": "VIEWERDOWN"},
                             {"state": -1, "status": "not moot"}, {"event": "LATE"}]


def test_a_report_made_before_the_file_was_replaced_goes_after_its_events(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    events = out / "job_events.log"
    events.write_bytes(b"RUNSHSTART\n")
    reporter = RecordingReporter()
    monitor = Monitor(out, reporter, poll=0.02)  # type: ignore[arg-type]
    monitor.follower.read_new()  # the monitor has read the first file
    monitor.report({"state": -1, "status": "stopping"})
    tmp = out / "new"
    tmp.write_bytes(b"VIEWERUP\n")
    os.replace(tmp, events)      # the machine restarted its file
    monitor.start()
    assert monitor.finish(5)
    assert reporter.sent == [{"event": "VIEWERUP"}, {"state": -1, "status": "stopping"}]


def test_a_report_made_while_a_pass_reads_waits_for_the_events_written_before_it(tmp_path: Path) -> None:
    """The runner reports, then its machine writes events, all while a pass is between reading and delivering."""
    out = tmp_path / "out"
    out.mkdir()
    events = out / "job_events.log"
    events.write_bytes(b"RUNSHSTART\n")
    reporter = RecordingReporter()
    monitor = Monitor(out, reporter)  # type: ignore[arg-type]
    real_read = monitor.follower.read_new

    def read_then_the_runner_acts() -> list[tuple[str, int]]:
        lines = real_read()
        with open(events, "ab") as fh:
            fh.write(b"MYSQLSTART\n")                # written before the report...
        monitor.report({"state": -5, "status": "the reason"})
        with open(events, "ab") as fh:
            fh.write(b"VIEWERDOWN\n")                # ...and after it
        monitor.follower.read_new = real_read  # type: ignore[method-assign]
        return lines

    monitor.follower.read_new = read_then_the_runner_acts  # type: ignore[method-assign]
    monitor._pass()
    assert reporter.sent == [{"event": "RUNSHSTART"}]  # the report waits for what was written before it
    monitor._pass()
    assert [r.get("event") or r["status"] for r in reporter.sent] == [
        "RUNSHSTART", "MYSQLSTART", "the reason", "VIEWERDOWN"]
