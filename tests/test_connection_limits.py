"""Floods of connections and large bodies never stop the daemon (issue 9, findings 9, 10 and 12).

Each test measures the daemon process itself (/proc): threads, CPU time,
resident memory.  Bounds are generous; what they tell apart is a daemon that
grows a thread per connection, spins, or keeps hundreds of MiB, from one
that does not.  No test asserts how long anything took.
"""
from __future__ import annotations

import http.client
import socket
import threading
import time
import xmlrpc.client

from support.daemon import wait_for
from support.procstat import cpu_seconds, peak_rss_mib, rss_mib, threads

KEY = ("flood-proj", "CodeDX")


def launch_ready(daemon, key=KEY) -> tuple[dict, str]:
    """A READY viewer and its launch's report token (as the execute node has it)."""
    daemon.api.launchViewer({"projectid": key[0], "viewer": key[1]})
    record = wait_for(lambda: (r := daemon.api.getViewer(*key))["state"] == 2 and r, 60, what="READY")
    (token,) = [p.read_text().strip() for p in daemon.jobs_dir().glob("*/token")]
    return record, token


def raw_request(port: int, head: bytes, body: bytes, timeout: float = 20) -> bytes:
    """Send ``head`` + ``body`` as they are and return what the daemon answers (until it closes or 2 s idle)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head + body)
        sock.settimeout(2)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return reply


def closed_by_server(sock: socket.socket) -> bool:
    """True once the daemon has answered and/or closed this connection."""
    try:
        data = sock.recv(4096, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def test_slow_senders_hold_no_threads(daemon):
    """Finding 9: 300 connections sending a byte every half second cost no thread each."""
    pid = daemon.proc.pid
    daemon.api.listViewers()
    before = threads(pid)
    request = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"<" * 1000
    socks = [socket.create_connection(("127.0.0.1", daemon.port), timeout=10) for _ in range(300)]
    peak = before
    try:
        for n in range(12):
            for sock in socks:
                try:
                    sock.send(request[n:n + 1])
                except OSError:
                    pass
            peak = max(peak, threads(pid))
            time.sleep(0.5)
        assert daemon.rpc(timeout=20).agentMonitor.listViewers() == []
    finally:
        for sock in socks:
            sock.close()
    print(f"daemon threads: {before} before, {peak} at most with 300 slow senders")
    assert peak <= before + 2, (before, peak)


def test_a_request_that_does_not_arrive_in_time_is_cut_off(make_daemon):
    """Finding 9: a total deadline for head and body, however steadily the bytes trickle."""
    daemon = make_daemon(agentmonitor={"request_timeout": 2})
    request = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"<" * 1000
    socks = [socket.create_connection(("127.0.0.1", daemon.port), timeout=10) for _ in range(50)]
    open_ = set(range(len(socks)))
    try:
        for n in range(40):  # 20 s at most, ten times the deadline
            for i in list(open_):
                if closed_by_server(socks[i]):
                    open_.discard(i)
                    continue
                try:
                    socks[i].send(request[n:n + 1])
                except OSError:
                    open_.discard(i)
            if not open_:
                break
            time.sleep(0.5)
    finally:
        for sock in socks:
            sock.close()
    assert not open_, f"{len(open_)} trickling connections still open"
    assert daemon.api.listViewers() == []


def test_idle_flood_under_the_unit_file_limit_lets_reports_and_calls_in(make_daemon):
    """Finding 9: 1,124 idle connections against LimitNOFILE=1024: no spinning, reports and calls get in."""
    daemon = make_daemon(nofile=1024)
    pid = daemon.proc.pid
    record, token = launch_ready(daemon)
    flood: list[socket.socket] = []
    try:
        for _ in range(1124):
            try:
                flood.append(socket.create_connection(("127.0.0.1", daemon.port), timeout=5))
            except OSError:
                break
        time.sleep(1.0)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(3.0)
        busy = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        print(f"{len(flood)} idle connections: daemon CPU {busy:.0%}, threads {threads(pid)}")
        assert busy < 0.3, f"the daemon uses {busy:.0%} of a CPU while flooded with idle connections"
        # The viewer died: its execute node reports it, and the report gets in.
        report = {"execrunid": record["execrunid"], "epoch": record["epoch"], "token": token,
                  "state": -5, "status": "viewer process died"}
        assert daemon.rpc(timeout=20).agentMonitor.viewerStatus(report) is True
        after = daemon.rpc(timeout=20).agentMonitor.getViewer(*KEY)
        assert (after["state"], after["status"]) == (-5, "viewer process died")
    finally:
        for sock in flood:
            sock.close()
    assert "Traceback" not in daemon.log()


def test_twelve_large_bodies_give_their_memory_back(daemon):
    """Finding 10: twelve 26 MB bodies at once; resident memory stays bounded and comes back down."""
    pid = daemon.proc.pid
    proxy = daemon.rpc(timeout=60)
    for _ in range(20):
        proxy.agentMonitor.getViewer(*KEY)
    before = rss_mib(pid)
    body = xmlrpc.client.dumps(("x" * (26 * 1024 * 1024), "CodeDX"), "agentMonitor.getViewer").encode()
    faults: list[int] = []
    latencies: list[float] = []
    sending = threading.Event()
    sending.set()

    def big() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=120)
        try:
            conn.request("POST", "/RPC2", body=body, headers={"Content-Type": "text/xml"})
            xmlrpc.client.loads(conn.getresponse().read())
        except xmlrpc.client.Fault as fault:
            faults.append(fault.faultCode)
        finally:
            conn.close()

    def normal() -> None:
        while sending.is_set():
            t0 = time.perf_counter()
            proxy.agentMonitor.getViewer(*KEY)
            latencies.append(time.perf_counter() - t0)
            time.sleep(0.05)

    prober = threading.Thread(target=normal)
    prober.start()
    senders = [threading.Thread(target=big) for _ in range(12)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(300)
    sending.clear()
    prober.join(60)
    peak = peak_rss_mib(pid)
    settled = wait_for(lambda: (r := rss_mib(pid)) < before + 64 and r, 15, interval=0.5,
                       what="memory given back") if rss_mib(pid) >= before + 64 else rss_mib(pid)
    print(f"RSS {before:.0f} MiB before, {peak:.0f} MiB at the peak, {settled:.0f} MiB after; normal call "
          f"during: max {max(latencies) * 1000:.0f} ms over {len(latencies)} calls")
    assert faults == [1] * 12  # a 26 MB projectid is not an identifier
    assert peak - before < 400, (before, peak)
    assert proxy.agentMonitor.getViewer(*KEY)["state"] == 0


def test_content_length_is_one_number_of_ascii_digits(daemon):
    """Finding 12: anything but exactly one Content-Length of digits is HTTP 400."""
    body = b"<x>12345/>"  # ten bytes
    good = raw_request(daemon.port, b"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length:  10 \r\n\r\n", body)
    assert good.startswith(b"HTTP/1.1 200"), good[:100]
    for lengths in ([b"1_0"], [b"+10"], [b"-10"], [b"1e1"], [b"0x0a"], ["\u0661\u0660".encode()],
                    [b"10", b"10"], [b"10", b"5"], [b"10,10"]):
        head = b"POST /RPC2 HTTP/1.1\r\nHost: x\r\n" + b"".join(b"Content-Length: " + v + b"\r\n" for v in lengths)
        reply = raw_request(daemon.port, head + b"\r\n", body)
        assert reply.startswith(b"HTTP/1.1 400"), (lengths, reply[:100])
    assert daemon.api.listViewers() == []


def test_a_report_gets_a_thread_while_every_client_thread_is_busy(make_daemon):
    """Execute nodes' reports run on threads of their own: client calls stuck in every client thread
    (here: one thread, waiting for the registry's write lock) do not keep a report waiting."""
    import sqlite3

    daemon = make_daemon(agentmonitor={"request_threads": 1})
    record, token = launch_ready(daemon)
    lock = sqlite3.connect(daemon.state_dir / "registry.sqlite3", isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # every write in the daemon now waits
    stuck = threading.Thread(target=lambda: fault_or_none(
        lambda: daemon.rpc(timeout=60).agentMonitor.launchViewer({"projectid": "stuck", "viewer": "CodeDX"})))
    stuck.start()
    try:
        time.sleep(1.0)  # the launch reaches the one client thread and waits there for the lock
        snapshot = {"execrunid": record["execrunid"], "epoch": record["epoch"], "token": token,
                    "path": "/etc/shadow", "checksum": "0" * 128}
        code = fault_or_none(lambda: daemon.rpc(timeout=60).agentMonitor.viewerSnapshot(snapshot))
        client_still_stuck = stuck.is_alive()
    finally:
        lock.execute("ROLLBACK")
        lock.close()
        stuck.join(60)
    assert code == 1 and client_still_stuck


def fault_or_none(call) -> int | None:
    try:
        call()
    except xmlrpc.client.Fault as fault:
        return fault.faultCode
    return None
