"""The host agent's prober: every starting program is asked at once, none waits behind another."""
from __future__ import annotations

import os
import socket
import threading
import time
from typing import Callable

import pytest

from swampd.vruntask.payloads.viewer import answered_http, http_probe_request
from swampd.vruntask.prober import Prober

from support.daemon import free_port


class Server:
    """A listener on a free port that answers each connection with ``reply`` after ``delay`` seconds."""

    def __init__(self, reply: bytes | None = b"HTTP/1.0 200 OK\r\n\r\nok", delay: float = 0.0) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.listen(64)
        self.reply, self.delay = reply, delay
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.reply is None:
                self.held.append(conn)  # accepts, never answers
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(1024)
            time.sleep(self.delay)
            conn.sendall(self.reply or b"")

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def prober():
    p = Prober(owner=os.geteuid())
    yield p
    p.close()


def up_recorder() -> tuple[dict[str, float], threading.Event, Callable[[str], Callable[[], None]]]:
    seen: dict[str, float] = {}
    changed = threading.Event()

    def on_up(key: str) -> Callable[[], None]:
        def mark() -> None:
            seen[key] = time.monotonic()
            changed.set()
        return mark
    return seen, changed, on_up


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def add_http(prober: Prober, key: str, port: int, on_up: Callable[[], None], deadline: float = 30.0) -> None:
    prober.add(key, port, http_probe_request(port, "/"), answered_http, on_up, time.monotonic() + deadline)


def test_a_program_is_up_once_it_answers_and_only_once(prober: Prober) -> None:
    seen, _, on_up = up_recorder()
    port = free_port()
    calls = []
    add_http(prober, "late", port, lambda: calls.append(time.monotonic()))
    time.sleep(0.3)  # nothing listens yet: refused, asked again later
    assert calls == []
    server = Server()
    try:
        add_http(prober, "now", server.port, on_up("now"))
        assert wait_until(lambda: "now" in seen)
    finally:
        server.close()
    assert calls == [] and len(prober) == 1  # "late" is still asked
    prober.cancel("late")
    assert wait_until(lambda: len(prober) == 0)


def test_a_program_that_never_answers_holds_up_no_other(prober: Prober) -> None:
    """The old prober asked one program at a time: one that accepted and said nothing held every
    other probe for its whole timeout."""
    silent = Server(reply=None)
    slow = Server(delay=0.5)
    quick = [Server() for _ in range(20)]
    seen, _, on_up = up_recorder()
    try:
        start = time.monotonic()
        add_http(prober, "silent", silent.port, on_up("silent"))
        add_http(prober, "slow", slow.port, on_up("slow"))
        for i, server in enumerate(quick):
            add_http(prober, f"q{i}", server.port, on_up(f"q{i}"))
        assert wait_until(lambda: all(f"q{i}" in seen for i in range(20)))
        # Every quick one was seen up before the slow one answered: nothing waited behind it.
        assert max(seen[f"q{i}"] for i in range(20)) < start + 0.5
        assert wait_until(lambda: "slow" in seen)
        assert "silent" not in seen
    finally:
        for server in (silent, slow, *quick):
            server.close()


def test_a_server_error_is_not_up_and_a_passed_deadline_drops_the_program(prober: Prober) -> None:
    failing = Server(reply=b"HTTP/1.1 503 Service Unavailable\r\n\r\n")
    seen, _, on_up = up_recorder()
    try:
        add_http(prober, "failing", failing.port, on_up("failing"), deadline=0.5)
        assert wait_until(lambda: len(prober) == 0, timeout=5)
        assert seen == {}
    finally:
        failing.close()


def test_nothing_to_ask_is_up_at_the_first_look(prober: Prober) -> None:
    seen, _, on_up = up_recorder()
    prober.add("assessment", 1, None, lambda head: False, on_up("assessment"), time.monotonic() + 5)
    assert wait_until(lambda: "assessment" in seen)


def test_a_cancelled_program_is_not_reported(prober: Prober) -> None:
    server = Server(delay=0.3)
    seen, _, on_up = up_recorder()
    try:
        add_http(prober, "x", server.port, on_up("x"))
        time.sleep(0.1)  # its probe is out, waiting for the answer
        prober.cancel("x")
        time.sleep(0.6)
        assert seen == {}
    finally:
        server.close()


def test_hundreds_of_programs_at_once_are_all_seen_up(prober: Prober) -> None:
    servers = [Server() for _ in range(200)]
    seen, _, on_up = up_recorder()
    try:
        for i, server in enumerate(servers):
            add_http(prober, f"s{i}", server.port, on_up(f"s{i}"))
        assert wait_until(lambda: len(seen) == 200, timeout=30)
        assert len(prober) == 0
    finally:
        for server in servers:
            server.close()


def test_probes_out_at_once_are_capped_and_the_rest_wait_their_turn(prober: Prober) -> None:
    from swampd.vruntask import prober as module

    silent = [Server(reply=None) for _ in range(100)]  # each holds its probe for the whole timeout
    quick = Server()
    seen, _, on_up = up_recorder()
    try:
        for i, server in enumerate(silent):
            add_http(prober, f"s{i}", server.port, on_up(f"s{i}"))
        add_http(prober, "quick", quick.port, on_up("quick"))
        most = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            most = max(most, len(prober._inflight))
            time.sleep(0.005)
        assert 0 < most <= module.MAX_IN_FLIGHT
        assert wait_until(lambda: "quick" in seen, timeout=15)  # its turn came
    finally:
        for server in (*silent, quick):
            server.close()


def test_running_out_of_descriptors_delays_a_probe_and_stops_nothing(
        prober: Prober, monkeypatch: pytest.MonkeyPatch) -> None:
    from swampd.vruntask import prober as module

    server = Server()  # before the patch: it patches the socket module itself
    real, refused = socket.socket, []

    def no_descriptors(*args, **kwargs):  # type: ignore[no-untyped-def]
        if len(refused) < 3:
            refused.append(1)
            raise OSError(24, "Too many open files")
        return real(*args, **kwargs)

    monkeypatch.setattr(module.socket, "socket", no_descriptors)
    seen, _, on_up = up_recorder()
    try:
        add_http(prober, "x", server.port, on_up("x"))
        assert wait_until(lambda: "x" in seen)
        assert len(refused) == 3
    finally:
        server.close()


def test_an_answer_from_another_users_socket_is_no_answer() -> None:
    """A stranger who took the port answers as well as the viewer would: only the owner tells them apart."""
    server = Server()
    seen, _, on_up = up_recorder()
    stranger_owned = Prober(owner=os.geteuid() + 1)  # the server's socket is not this owner's
    own = Prober(owner=os.geteuid())
    try:
        add_http(stranger_owned, "theirs", server.port, on_up("theirs"))
        add_http(own, "ours", server.port, on_up("ours"))
        assert wait_until(lambda: "ours" in seen)
        time.sleep(0.5)  # asked again and again meanwhile: never up
        assert "theirs" not in seen and len(stranger_owned) == 1
    finally:
        stranger_owned.close()
        own.close()
        server.close()


def test_a_port_nobody_listens_on_yet_is_never_connected_to(
        prober: Prober, monkeypatch: pytest.MonkeyPatch) -> None:
    """Until the program listens, a look at the kernel's listeners says "not yet": no connection is
    tried (a burst's starting programs cost no refused connections), and once it listens it is up."""
    from swampd.vruntask import prober as module

    port = free_port()
    real, tcp_sockets = socket.socket, []

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        sock = real(*args, **kwargs)
        if sock.family == socket.AF_INET:
            tcp_sockets.append(sock)
        return sock

    monkeypatch.setattr(module.socket, "socket", counting)
    seen, _, on_up = up_recorder()
    add_http(prober, "late", port, on_up("late"))
    time.sleep(0.3)  # asked a dozen times meanwhile
    assert not tcp_sockets and "late" not in seen and len(prober) == 1
    with real() as listener:
        listener.bind(("127.0.0.1", port))  # bound but not listening: still nothing to ask
        time.sleep(0.1)
        assert not tcp_sockets
        listener.listen()
        assert wait_until(lambda: bool(tcp_sockets))
        conn, _ = listener.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nok")
        assert wait_until(lambda: "late" in seen)
