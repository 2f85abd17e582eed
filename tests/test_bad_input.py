"""Bad input gets a clear fault or HTTP error, and the daemon keeps answering."""
from __future__ import annotations

import http.client
import socket
import xmlrpc.client

import pytest

from support.daemon import fault_code

HOSTILE = ["'; rm -rf /", "../x", "../../etc/passwd", "a\nb", "$(reboot)", "x" * (10 * 1024 * 1024)]


def post(daemon, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    try:
        conn.request("POST", "/RPC2", body=body, headers={"Content-Type": "text/xml", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def fault_in(body: bytes) -> int:
    try:
        xmlrpc.client.loads(body)
    except xmlrpc.client.Fault as fault:
        return int(fault.faultCode)
    raise AssertionError(f"no fault in {body[:200]!r}")


def assert_alive(daemon) -> None:
    assert "agentMonitor.launchViewer" in daemon.rpc().system.listMethods()


@pytest.mark.parametrize("args", [
    {}, {"projectid": "p"}, {"viewer": "CodeDX"}, "not a struct", 42, [],
    {"projectid": 5, "viewer": "CodeDX"}, {"projectid": "p", "viewer": 7},
    {"projectid": "p", "viewer": "CodeDX", "surprise": 1},
    {"projectid": "p", "viewer": "CodeDX", "userid": ["list"]},
    {"projectid": "p", "viewer": "CodeDX", "db_path": "relative/path"},
    {"projectid": "p", "viewer": "CodeDX", "db_path": "/a/../../etc/shadow"},
    {"projectid": "p", "viewer": "CodeDX", "db_checksum": "not-hex"},
    {"projectid": "p", "viewer": "CodeDX", "results": "nope"},
    {"projectid": "p", "viewer": "CodeDX", "results": [{"files": []}]},
    {"projectid": "p", "viewer": "CodeDX", "results": [{"package": "x", "files": ["../etc"]}]},
])
def test_malformed_launch_arguments_are_fault_1(daemon, args):
    assert fault_code(lambda: daemon.api.launchViewer(args)) == 1
    assert daemon.api.listViewers() == []


@pytest.mark.parametrize("value", HOSTILE, ids=["quote-rm", "dotdot", "dotdot2", "newline", "subshell", "10MB"])
def test_hostile_project_and_viewer_names_are_fault_1(daemon, value):
    api = daemon.api
    assert fault_code(lambda: api.launchViewer({"projectid": value, "viewer": "CodeDX"})) == 1
    assert fault_code(lambda: api.launchViewer({"projectid": "p", "viewer": value})) == 1
    assert fault_code(lambda: api.getViewer(value, "CodeDX")) == 1
    assert fault_code(lambda: api.stopViewer("p", value)) == 1
    assert api.listViewers() == []
    assert not list(daemon.jobs_dir().glob("*")) if daemon.jobs_dir().exists() else True
    assert_alive(daemon)


def test_wrong_arity_and_unknown_method(daemon):
    assert fault_code(lambda: daemon.api.getViewer()) == 1
    assert fault_code(lambda: daemon.api.getViewer("p")) == 1
    assert fault_code(lambda: daemon.api.listViewers("extra")) == 1
    assert fault_code(lambda: daemon.rpc().agentMonitor.noSuchMethod()) == 2
    assert fault_code(lambda: daemon.rpc().agentMonitor._claim()) == 2


@pytest.mark.parametrize("report", [
    {"execrunid": "vrun_p_CodeDX", "epoch": "1", "token": "t", "event": "VIEWERUP"},
    {"execrunid": "vrun_p_CodeDX", "epoch": 1, "token": "t"},
    {"execrunid": "vrun_p_CodeDX", "epoch": 1, "token": "t", "event": "VIEWERUP", "state": 2},
    {"execrunid": "vrun_p_CodeDX", "epoch": 1, "token": "t", "state": 2},
    {"execrunid": "vrun_p_CodeDX", "epoch": 1, "token": "t", "event": "viewer up; rm -rf /"},
    {"execrunid": "vrun_p_CodeDX", "epoch": 1, "token": "t", "event": "VIEWERUP", "vmip": "1.2.3.4; reboot"},
    {"execrunid": "vrun_p_CodeDX", "epoch": True, "token": "t", "event": "VIEWERUP"},
    {"execrunid": "vrun_p_CodeDX", "epoch": 1, "token": "t", "event": "WROTEIPADDR", "vmip": "1.2.3.4",
     "node": "exec-1'; DROP TABLE execution_record; --"},
    {"execrunid": "vrun_p_CodeDX", "epoch": 1, "token": "t", "event": "WROTEIPADDR", "node": "x" * 129},
])
def test_malformed_reports_are_fault_1(daemon, report):
    assert fault_code(lambda: daemon.api.viewerStatus(report)) == 1
    run_report = dict(report, execrunid="5d0c7f3e-0000-4000-8000-000000000001")
    if isinstance(run_report.get("state"), int):
        run_report["state"] = str(run_report["state"])
    assert fault_code(lambda: daemon.api.runStatus(run_report)) == 1


def test_malformed_xml_is_a_fault_and_the_daemon_lives(daemon):
    for body in (b"<methodCall><methodName>x", b"not xml at all", b"",
                 b"<methodCall><params><param><value><int>NaN</int></value></param></params></methodCall>"):
        status, reply = post(daemon, body)
        assert status == 200 and fault_in(reply) == 1
    assert_alive(daemon)


def test_entity_bomb_is_refused(daemon):
    lol = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    bomb = ('<?xml version="1.0"?><!DOCTYPE bomb [' + "".join(lol) + ']>'
            '<methodCall><methodName>agentMonitor.getViewer</methodName><params>'
            '<param><value><string>&lol9;</string></value></param>'
            '<param><value><string>CodeDX</string></value></param></params></methodCall>').encode()
    status, reply = post(daemon, bomb)
    assert status == 200 and fault_in(reply) == 1 and b"DOCTYPE" in reply
    external = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                b'<methodCall><methodName>system.methodHelp</methodName><params><param><value>'
                b'<string>&e;</string></value></param></params></methodCall>')
    status, reply = post(daemon, external)
    assert fault_in(reply) == 1 and b"root:" not in reply
    assert_alive(daemon)


def test_50mb_body_is_refused_with_413_before_it_is_read(daemon):
    body = b"<methodCall>" + b"x" * (50 * 1024 * 1024) + b"</methodCall>"
    sock = socket.create_connection(("127.0.0.1", daemon.port), timeout=30)
    try:
        sock.sendall(f"POST /RPC2 HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode())
        try:
            sock.sendall(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed without reading it all
        reply = sock.recv(4096)
    finally:
        sock.close()
    assert reply.startswith(b"HTTP/1.1 413")
    assert_alive(daemon)


def test_http_errors(daemon):
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request("GET", "/RPC2")
    assert conn.getresponse().status == 405
    conn.close()
    status, _ = post(daemon, b"<x/>", {"Content-Length": "nope"})
    assert status == 400
    status, _ = post(daemon, b"x")
    assert status == 200
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=10)
    conn.request("POST", "/elsewhere", body=b"<x/>")
    assert conn.getresponse().status == 404
    conn.close()
    assert_alive(daemon)


def test_multicall_and_its_limits(daemon):
    multi = daemon.rpc().system.multicall
    out = multi([
        {"methodName": "agentMonitor.getViewer", "params": ["p", "CodeDX"]},
        {"methodName": "agentMonitor.getViewer", "params": ["'; rm", "CodeDX"]},
        {"methodName": "system.multicall", "params": [[]]},
        "junk",
    ])
    assert out[0][0]["state"] == 0
    assert out[1]["faultCode"] == 1 and out[2]["faultCode"] == 1 and out[3]["faultCode"] == 1
    assert daemon.rpc().system.methodHelp("agentMonitor.getViewer").startswith("getViewer(projectid, viewer)")
