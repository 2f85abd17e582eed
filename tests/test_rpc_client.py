"""The XML-RPC client's own transport and codec (swampd.clients.rpc_http, rpc_reply, rpc_call).

Against a tiny scripted HTTP server on a real socket: one kept-alive
connection, a second attempt when the server closed it, ``Fault`` and
``ProtocolError`` as ``xmlrpc.client`` raises them, a clear error and
bounded memory on oversized or malformed answers, the Unix socket, and the
bearer token sent.  The codec is compared with ``xmlrpc.client`` itself,
on the daemon's kind of reply and on randomly damaged ones.
"""
from __future__ import annotations

import http.client
import random
import socket
import threading
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

import pytest

from swampd.clients import rpc_call, rpc_reply
from swampd.clients.rpc import connect
from swampd.clients.rpc_http import BadResponse, KeepAliveTransport

VIEWER = {"execrunid": "vrun_p0_CodeDX", "projectid": "p0", "state": 2, "state_name": "READY",
          "launched": False, "url": "http://127.0.0.1:56333/?a=1&b=<2>", "epoch": 1, "load": 0.5}


def reply(value: Any = VIEWER, extra: str = "", status: str = "200 OK") -> bytes:
    body = xmlrpc.client.dumps((value,), methodresponse=True).encode()
    return (f"HTTP/1.1 {status}\r\nServer: test\r\nContent-Type: text/xml\r\n{extra}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def fault(code: int, text: str) -> bytes:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, text)).encode()
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


class Scripted:
    """Answers each request with the next scripted action.

    An action is bytes (sent; the connection stays open), ``("then_close", bytes)``
    (sent, then the connection closed as an idle-timeout would), ``"drop"``
    (closed without an answer) or ``"hang"`` (no answer at all).
    """

    def __init__(self, actions: list[Any], unix_path: Path | None = None) -> None:
        self.actions = list(actions)
        self.requests: list[bytes] = []
        self.connections = 0
        self.closed = threading.Event()
        if unix_path is None:
            self.listener = socket.create_server(("127.0.0.1", 0))
            self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/RPC2"
        else:
            self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.listener.bind(str(unix_path))
            self.listener.listen(8)
            self.url = f"unix:{unix_path}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                self._handle(conn)
            self.closed.set()

    def _handle(self, conn: socket.socket) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = conn.recv(65536)
                if not data:
                    return
                buffer += data
            head, _, rest = buffer.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            while len(rest) < length:
                rest += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + rest[:length])
            buffer = rest[length:]
            action = self.actions.pop(0)
            if action == "drop":
                return
            if action == "hang":
                time.sleep(3)
                return
            if isinstance(action, tuple):
                conn.sendall(action[1])
                return
            conn.sendall(action)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def serve():
    made: list[Scripted] = []

    def make(actions: list[Any], unix_path: Path | None = None) -> Scripted:
        made.append(Scripted(actions, unix_path))
        return made[-1]

    yield make
    for server in made:
        server.close()


def test_calls_share_one_connection_and_send_the_token(serve) -> None:
    server = serve([reply(), reply([1, "two"]), reply()])
    proxy = connect(server.url, token="s3cret", timeout=5)
    assert proxy.agentMonitor.getViewer("p0", "CodeDX") == VIEWER
    assert proxy.agentMonitor.listViewers() == [1, "two"]
    assert proxy.agentMonitor.waitViewer("p0", "CodeDX", "READY", 1.5) == VIEWER
    assert server.connections == 1
    head, _, body = server.requests[2].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /RPC2 HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer s3cret" in head
    assert f"Host: 127.0.0.1:{server.listener.getsockname()[1]}".encode() in head
    assert xmlrpc.client.loads(body) == (("p0", "CodeDX", "READY", 1.5), "agentMonitor.waitViewer")


def test_a_connection_the_server_closed_is_reopened_once(serve) -> None:
    server = serve([("then_close", reply()), reply([1])])
    proxy = connect(server.url, timeout=5)
    assert proxy.agentMonitor.getViewer("p0", "CodeDX") == VIEWER
    assert server.closed.wait(5)
    assert proxy.agentMonitor.listViewers() == [1]
    assert server.connections == 2


def test_a_server_that_drops_every_attempt_gets_two_and_the_error(serve) -> None:
    server = serve(["drop", "drop", "drop"])
    with pytest.raises(ConnectionError):
        connect(server.url, timeout=5).agentMonitor.listViewers()
    assert len(server.requests) == 2  # as xmlrpc.client.Transport.request: one retry, no more


def test_fault_is_raised_and_the_connection_kept(serve) -> None:
    server = serve([fault(3, "no such viewer <x> & y"), reply([])])
    proxy = connect(server.url, timeout=5)
    with pytest.raises(xmlrpc.client.Fault) as caught:
        proxy.agentMonitor.getViewer("p0", "nope")
    assert (caught.value.faultCode, caught.value.faultString) == (3, "no such viewer <x> & y")
    assert proxy.agentMonitor.listViewers() == []
    assert server.connections == 1


def test_a_status_other_than_200_is_a_protocol_error(serve) -> None:
    body = b"no\n"
    server = serve([b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 3\r\nX-Why: token\r\n\r\n" + body, reply([2])])
    proxy = connect(server.url, token="wrong", timeout=5)
    with pytest.raises(xmlrpc.client.ProtocolError) as caught:
        proxy.agentMonitor.listViewers()
    assert (caught.value.errcode, caught.value.errmsg) == (401, "Unauthorized")
    assert caught.value.headers["X-Why"] == "token"
    assert "wrong" not in repr(caught.value)
    assert proxy.agentMonitor.listViewers() == [2]
    assert server.connections == 1


def test_connection_close_and_http_1_0_open_a_new_connection(serve) -> None:
    one_o = reply([3]).replace(b"HTTP/1.1", b"HTTP/1.0")
    server = serve([reply([1], extra="Connection: close\r\n"), one_o, reply([4])])
    proxy = connect(server.url, timeout=5)
    assert [proxy.agentMonitor.listViewers() for _ in range(3)] == [[1], [3], [4]]
    assert server.connections == 3


def test_chunked_and_close_delimited_bodies(serve) -> None:
    body = xmlrpc.client.dumps(([5, "x"],), methodresponse=True).encode()
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"".join(b"%x;ext=1\r\n%s\r\n" % (len(body[i:i + 50]), body[i:i + 50]) for i in range(0, len(body), 50))
    chunked += b"0\r\nX-Trailer: 1\r\n\r\n"
    server = serve([b"HTTP/1.1 100 Continue\r\n\r\n" + chunked, ("then_close", b"HTTP/1.0 200 OK\r\n\r\n" + body)])
    proxy = connect(server.url, timeout=5)
    assert proxy.agentMonitor.listViewers() == [5, "x"]
    assert proxy.agentMonitor.listViewers() == [5, "x"]


@pytest.mark.parametrize("answer, words", [
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n", "head larger"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: 1\r\n" * 101 + b"\r\n", "more than 100 header"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999999\r\n\r\n", "larger than"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7fffffff\r\n", "larger than"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "more than one Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "not a number"),
    (b"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", "not a number"),
    (b"HTTP/1.1 100 Continue\r\n\r\n" * 101, "interim"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n", "both"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"),
    (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 1\r\n\r\nx", "not asked for"),
    (b"ICY 200 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 200 OK\r\n folded: no\r\n\r\n", "malformed header"),
    (b"HTTP/1.1 200 OK\r\nBad\nField: 1\r\n\r\n", "malformed header"),
    (("then_close", b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"), "after 5 of 100"),
    (("then_close", b"HTTP/1.1 200 OK\r\nContent-"), "middle of the response head"),
])
def test_oversized_or_malformed_answers_are_a_clear_error(serve, answer: Any, words: str) -> None:
    server = serve([answer, reply([1])])
    proxy = xmlrpc.client.ServerProxy(server.url, transport=KeepAliveTransport(5, max_body=1 << 20))
    with pytest.raises(BadResponse, match=words) as caught:
        proxy.agentMonitor.listViewers()
    assert isinstance(caught.value, xmlrpc.client.ProtocolError)
    assert isinstance(caught.value, http.client.HTTPException)
    assert proxy.agentMonitor.listViewers() == [1]  # on a new connection


def test_a_close_delimited_body_is_capped(serve) -> None:
    server = serve([("then_close", b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 300_000)])
    proxy = xmlrpc.client.ServerProxy(server.url, transport=KeepAliveTransport(5, max_body=100_000))
    with pytest.raises(BadResponse, match="larger than 100000"):
        proxy.agentMonitor.listViewers()


def test_garbage_xml_raises_what_xmlrpc_client_raises(serve) -> None:
    garbage = b"<?xml version='1.0'?><methodResponse><params><param><value><int>1</string>"
    server = serve([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(garbage), garbage)])
    with pytest.raises(Exception) as reference:
        xmlrpc.client.loads(garbage)
    with pytest.raises(type(reference.value), match=str(reference.value)):
        connect(server.url, timeout=5).agentMonitor.listViewers()


def test_no_answer_times_out(serve) -> None:
    server = serve(["hang"])
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connect(server.url, timeout=0.5).agentMonitor.listViewers()
    assert time.monotonic() - started < 2.5


def test_unix_socket_without_token(serve, tmp_path: Path) -> None:
    server = serve([reply(), reply([1])], unix_path=tmp_path / "am.sock")
    proxy = connect(server.url, token=None, timeout=5)
    assert proxy.agentMonitor.getViewer("p0", "CodeDX") == VIEWER
    assert proxy.agentMonitor.listViewers() == [1]
    assert server.connections == 1
    assert b"Authorization" not in server.requests[0]
    assert b"\r\nHost: localhost\r\n" in server.requests[0]


def test_a_token_that_would_split_the_header_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError) as caught:
        connect("http://127.0.0.1:1/", token="abc\r\nX-Evil: 1", timeout=1)
    assert "abc" not in str(caught.value)


# -- the codec, against xmlrpc.client ---------------------------------------
def _outcome(read: Any, data: bytes) -> Any:
    try:
        return ("ok", read(data))
    except xmlrpc.client.Fault as exc:
        return ("fault", exc.faultCode, exc.faultString)
    except Exception as exc:  # noqa: BLE001 - the comparison is the point
        return ("error", type(exc), str(exc))


def _value(rnd: random.Random, depth: int = 0) -> Any:
    chars = "ab<>&\"' \n\r\t\x01é€\U0001f600]]>;#"
    kind = rnd.randrange(9 if depth < 3 else 5)
    if kind == 0:
        return rnd.randrange(-2**31, 2**31)
    if kind == 1:
        return "".join(rnd.choice(chars) for _ in range(rnd.randrange(6)))
    if kind == 2:
        return rnd.random() * 1e6
    if kind == 3:
        return rnd.random() < 0.5
    if kind == 4:
        return rnd.choice(["", "x", "READY", 7])
    if kind in (5, 6):
        return [_value(rnd, depth + 1) for _ in range(rnd.randrange(4))]
    return {"".join(rnd.choice(chars) for _ in range(rnd.randrange(4))): _value(rnd, depth + 1)
            for _ in range(rnd.randrange(5))}


def test_replies_read_as_xmlrpc_client_reads_them() -> None:
    reference = lambda data: xmlrpc.client.loads(data)[0]  # noqa: E731
    fixed = [
        xmlrpc.client.dumps((VIEWER,), methodresponse=True).encode(),
        xmlrpc.client.dumps(([VIEWER, VIEWER, {}],), methodresponse=True).encode(),
        xmlrpc.client.dumps(({"a": [1, {"b": "&amp;"}], "c": 2.5, "d": {}},), methodresponse=True).encode(),
        xmlrpc.client.dumps(xmlrpc.client.Fault(4, "busy")).encode(),
        xmlrpc.client.dumps(({"faultCode": 1},), methodresponse=True).replace("params", "fault").encode(),
        b"<?xml version='1.0'?><methodResponse><params><param><value>plain &lt;</value></param></params>"
        b"</methodResponse>",
        b"<?xml version='1.0'?><methodResponse><params><param><value><boolean>2</boolean></value></param>"
        b"</params></methodResponse>",
        b"<?xml version='1.0'?><methodResponse><params><param><value><string>&#65;</string></value></param>"
        b"</params></methodResponse>",
        b"<?xml version='1.0'?><methodResponse><params><param><value><string>\xff</string></value></param>"
        b"</params></methodResponse>",
        b"<?xml version='1.0'?><methodResponse><params></params></methodResponse>",
        b"HTTP/1.1 200 OK",
        b"",
    ]
    for data in fixed:
        assert _outcome(rpc_reply.loads, data) == _outcome(reference, data), data
    rnd = random.Random(9)
    pieces = [b"<", b">", b"/", b"\n", b"\r", b"&", b"&#49;", b"<value>", b"</value>", b"<member>", b"</member>",
              b"<struct>", b"</struct>", b"<int>", b"1", b"\xff", b"<nil/>", b"<param>", b"</param>", b"<name>"]
    for _ in range(3000):
        if rnd.random() < 0.2:
            data = bytearray(xmlrpc.client.dumps(xmlrpc.client.Fault(rnd.randrange(9), "x&y")).encode())
        else:
            data = bytearray(xmlrpc.client.dumps((_value(rnd),), methodresponse=True).encode())
        for _ in range(rnd.choice([0, 1, 1, 2])):
            at = rnd.randrange(len(data) + 1)
            data[at:at + rnd.randrange(3)] = rnd.choice(pieces)
        assert _outcome(rpc_reply.loads, bytes(data)) == _outcome(reference, bytes(data)), bytes(data)


def test_calls_written_as_xmlrpc_client_writes_them() -> None:
    rnd = random.Random(5)
    odd: list[Any] = [None, b"x", xmlrpc.client.DateTime(0), 2**31, -2**31 - 1, {1: "x"}, float("nan"),
                      "\ud800", True, 2**31 - 1]
    loop: list[Any] = []
    loop.append(loop)
    cases = [(value,) for value in odd] + [(loop,), ("p0", "CodeDX", "READY", 1.5), ()]
    cases += [tuple(_value(rnd) for _ in range(rnd.randrange(4))) for _ in range(2000)]
    for params in cases:
        expected = _outcome(lambda p: xmlrpc.client.dumps(p, "m.x").encode("utf-8", "xmlcharrefreplace"), params)
        assert _outcome(lambda p: rpc_call.dumps(p, "m.x"), params) == expected, params
