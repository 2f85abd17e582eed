"""Small calls in xmlrpc.client's layout are read without expat, with exactly CallReader's answers."""
from __future__ import annotations

import random
import xmlrpc.client

import pytest

from swampd.agentmonitor.transport.smallcalls import SMALL_BODY, SmallFirstReader, read_small
from swampd.agentmonitor.transport.xmlrpcwire import CallReader, RequestRefused

ALPHABET = "ab <>&\"'\t\n\r]é\u2603\x00\x01\x7f\x85\ufffe\uffff\U0001f600"


def reference(body: bytes) -> object:
    reader = CallReader()
    try:
        reader.feed(body)
        return reader.close()
    except RequestRefused as exc:
        return ("refused", str(exc))


def through_small_first(body: bytes, piece: int) -> object:
    reader = SmallFirstReader()
    try:
        for at in range(0, len(body), piece):
            reader.feed(body[at:at + piece])
        return reader.close()
    except RequestRefused as exc:
        return ("refused", str(exc))


def random_scalar(rng: random.Random) -> object:
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(10)))
    if kind == 1:
        return rng.choice([0, -1, 7, 999999999, -999999999, 2**31 - 1, -2**31])
    if kind == 2:
        return rng.random() < 0.5
    if kind == 3:
        return rng.random()
    return [1, "x"]


def random_call(rng: random.Random) -> bytes:
    params = []
    for _ in range(rng.randrange(4)):
        if rng.random() < 0.4:
            params.append({"".join(rng.choice("ab<&\r\x01") for _ in range(rng.randrange(1, 4))): random_scalar(rng)
                           for _ in range(rng.randrange(4))})
        else:
            params.append(random_scalar(rng))
    body = xmlrpc.client.dumps(tuple(params), rng.choice(["agentMonitor.getViewer", "x.y", "bad name"]))
    data = body.encode("utf-8", "xmlcharrefreplace") if rng.random() < 0.9 else body.encode("latin-1", "replace")
    for _ in range(rng.choice([0, 0, 0, 1, 2])):  # damage: a byte changed, dropped or added
        at = rng.randrange(len(data))
        data = data[:at] + bytes([rng.randrange(256)]) * rng.randrange(2) + data[at + rng.randrange(2):]
    return data


def test_every_answer_is_call_readers_own() -> None:
    rng = random.Random(11)
    fast = 0
    for _ in range(4000):
        body = random_call(rng)
        expected = reference(body)
        small = read_small(body)
        if small is not None:
            fast += 1
            assert small == expected, body
            assert [type(p) for p in small[1]] == [type(p) for p in expected[1]]  # True is not 1
        assert through_small_first(body, rng.choice([1, 7, 64, 10000])) == expected, body
    assert fast > 500  # a good share of them do take the fast way


def test_the_api_calls_of_swampds_clients_take_the_fast_way() -> None:
    from swampd.clients.rpc_call import dumps

    for params, method in [(({"projectid": "p1", "viewer": "CodeDX"},), "agentMonitor.launchViewer"),
                           (("p1", "CodeDX", "READY", 60), "agentMonitor.waitViewer"),
                           (({"execrunid": "vrun_p_CodeDX", "epoch": 2, "token": "t", "event": "VIEWERUP"},),
                            "agentMonitor.viewerStatus"), ((), "agentMonitor.listViewers")]:
        body = dumps(params, method)
        assert read_small(body) == (method, params) == reference(body)


@pytest.mark.parametrize("body", [
    b"<?xml version='1.0'?>\n<methodCall>\n<methodName>a</methodName>\n<params>\n<param>\n"
    b"<value><string>]]></string></value>\n</param>\n</params>\n</methodCall>\n",
    b"<?xml version='1.0'?>\n<methodCall>\n<methodName>a</methodName>\n<params>\n<param>\n"
    b"<value><string>a&amp;b</string></value>\n</param>\n</params>\n</methodCall>\n",
    b"<?xml version='1.0'?>\n<methodCall>\n<methodName>a</methodName>\n<params>\n<param>\n"
    b"<value><int>99999999999</int></value>\n</param>\n</params>\n</methodCall>\n",
    b"<?xml version='1.0'?>\n<methodCall>\n<methodName>a</methodName>\n<params>\n</params>\n</methodCall>\n<x/>",
    "<?xml version='1.0'?>\n<methodCall>\n<methodName>a</methodName>\n<params>\n<param>\n"
    "<value><string>\ufffe</string></value>\n</param>\n</params>\n</methodCall>\n".encode(),
])
def test_what_the_fast_way_declines_call_reader_decides(body: bytes) -> None:
    assert read_small(body) is None
    assert through_small_first(body, 5) == reference(body)


def test_a_large_body_goes_to_call_reader_as_it_arrives() -> None:
    big = xmlrpc.client.dumps(("x" * (SMALL_BODY * 2),), "a.b").encode()
    reader = SmallFirstReader()
    reader.feed(big[:SMALL_BODY + 1])
    assert reader._reader is not None and not reader._held  # not held whole
    reader.feed(big[SMALL_BODY + 1:])
    assert reader.close() == ("a.b", ("x" * (SMALL_BODY * 2),))
