"""Who listens on a port, as the kernel records it (sock_diag): the check that keeps a stranger's
server from passing for a viewer."""
from __future__ import annotations

import os
import socket
import subprocess

from swampd.vruntask.listeners import listener_uid, listens_as

from support.daemon import free_port, wait_for

NOBODY = 65534


def test_a_listener_is_its_creators_and_a_port_without_one_is_nobodys() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert listener_uid(port) is None  # bound, not listening: serves nothing
        sock.listen()
        assert listener_uid(port) == os.geteuid()
        assert listens_as(port, os.geteuid()) and not listens_as(port, os.geteuid() + 1)
        with socket.create_connection(("127.0.0.1", port)):  # a connection in its queue changes nothing
            assert listener_uid(port) == os.geteuid()
    assert listener_uid(port) is None
    with socket.socket() as anywhere:  # a wildcard listener holds 127.0.0.1 too
        anywhere.bind(("0.0.0.0", 0))
        anywhere.listen()
        assert listener_uid(anywhere.getsockname()[1]) == os.geteuid()


def test_another_users_listener_is_theirs() -> None:
    port = free_port()
    serve = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); time.sleep(60)"
    proc = subprocess.Popen(["/usr/bin/python3", "-c", serve, str(port)], user=NOBODY, group=NOBODY,
                            extra_groups=[], cwd="/")
    try:
        wait_for(lambda: listener_uid(port) is not None, 10, what="nobody's listener")
        assert listener_uid(port) == NOBODY
        assert not listens_as(port, os.geteuid())
    finally:
        proc.kill()
        proc.wait()


def test_the_runners_probe_takes_no_strangers_answer() -> None:
    """``vruntask run`` (an HTCondor job) probes its command itself: a server of another user on the
    command's port answers well and is still not the command."""
    from types import SimpleNamespace

    from swampd.vruntask.payloads.viewer import ViewerPayload

    payload = ViewerPayload.__new__(ViewerPayload)
    payload.job = SimpleNamespace(viewer=SimpleNamespace(probe_path="/"))  # all probe_request reads
    serve = ("import http.server, sys; http.server.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), "
             "http.server.SimpleHTTPRequestHandler).serve_forever()")
    for uid, expected in ((NOBODY, False), (os.geteuid(), True)):
        port = free_port()
        proc = subprocess.Popen(["/usr/bin/python3", "-c", serve, str(port)], user=uid, group=NOBODY if uid == NOBODY else os.getegid(),
                                extra_groups=[], cwd="/", stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: listener_uid(port) is not None, 10, what="the server")
            with socket.create_connection(("127.0.0.1", port)) as conn:  # it does answer HTTP
                conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
                assert conn.recv(16).startswith(b"HTTP/1.0 200")
            assert payload.answers(port) is expected
        finally:
            proc.kill()
            proc.wait()
