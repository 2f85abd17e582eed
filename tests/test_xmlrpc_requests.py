"""Any request valid under the XML-RPC specification is understood; invalid values are fault 1 (issue 9, finding 11).

SWAMP's Perl RPC::XML, PHP and Java clients write requests differently from
Python's: with an ``encoding=`` in the XML declaration, or none at all,
untyped ``<value>`` strings, pretty-printing.  All must work.  Values that
are not valid (a ``<bigdecimal>`` that is not a number, an unknown encoding,
a ``<fault>`` sent as a request, a 30-digit integer) are fault 1 with a
message that says what is wrong, the connection stays usable, and the log
gets no traceback.
"""
from __future__ import annotations

import http.client
import xmlrpc.client
import zlib

import pytest

HELP = "getViewer(projectid, viewer)"
CALL = ("<methodCall><methodName>system.methodHelp</methodName><params><param><value><string>{name}"
        "</string></value></param></params></methodCall>")


def post(daemon, body: bytes, headers: dict[str, str] | None = None,
         conn: http.client.HTTPConnection | None = None) -> bytes:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        conn.request("POST", "/RPC2", body=body, headers={"Content-Type": "text/xml", **(headers or {})})
        response = conn.getresponse()
        assert response.status == 200, (response.status, response.read()[:200])
        return response.read()
    finally:
        if own:
            conn.close()


def answer(reply: bytes):
    return xmlrpc.client.loads(reply)[0][0]


def fault_of(reply: bytes) -> tuple[int, str]:
    try:
        xmlrpc.client.loads(reply)
    except xmlrpc.client.Fault as fault:
        return fault.faultCode, fault.faultString
    raise AssertionError(f"no fault in {reply[:300]!r}")


@pytest.mark.parametrize("declaration", [
    "", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-8"?>', "<?xml version='1.0' encoding='utf-8'?>",
    '<?xml version="1.0" encoding="ISO-8859-1"?>', '<?xml version="1.0" encoding="US-ASCII"?>',
    '<?xml version="1.0" encoding="windows-1252"?>',
], ids=["none", "no-encoding", "UTF-8", "utf-8-single-quotes", "ISO-8859-1", "US-ASCII", "windows-1252"])
def test_declarations_and_encodings_are_understood(daemon, declaration):
    reply = post(daemon, (declaration + CALL.format(name="agentMonitor.getViewer")).encode("ascii"))
    assert answer(reply).startswith(HELP)


@pytest.mark.parametrize("encoding", ["UTF-8", "ISO-8859-1", "UTF-16", "windows-1252"])
def test_non_ascii_text_is_decoded_by_the_documents_encoding(daemon, encoding):
    document = f'<?xml version="1.0" encoding="{encoding}"?>' + CALL.format(name="caf\u00e9")
    code, message = fault_of(post(daemon, document.encode(encoding)))
    assert code == 2 and "caf\u00e9" in message


def test_other_clients_spelling_of_the_same_call(daemon):
    pretty = b"""<?xml version="1.0" encoding="us-ascii"?>
<methodCall>
  <methodName>agentMonitor.getViewer</methodName>
  <params>
    <param>
      <value>some-project</value>
    </param>
    <param><value><string>CodeDX</string></value></param>
  </params>
</methodCall>
"""
    assert answer(post(daemon, pretty))["state"] == 0
    typed = (b"<methodCall><methodName>system.multicall</methodName><params><param><value><array><data>"
             b"<value><struct><member><name>methodName</name><value>agentMonitor.listViewers</value></member>"
             b"<member><name>params</name><value><array><data/></array></value></member></struct></value>"
             b"</data></array></value></param></params></methodCall>")
    assert answer(post(daemon, typed)) == [[[]]]
    no_params = b"<methodCall><methodName>agentMonitor.listViewers</methodName></methodCall>"
    assert answer(post(daemon, no_params)) == []


def test_a_deflated_or_gzipped_body_is_understood(daemon):
    body = ('<?xml version="1.0"?>' + CALL.format(name="agentMonitor.getViewer")).encode()
    assert answer(post(daemon, zlib.compress(body), {"Content-Encoding": "deflate"})).startswith(HELP)
    gz = zlib.compressobj(wbits=31)
    assert answer(post(daemon, gz.compress(body) + gz.flush(), {"Content-Encoding": "gzip"})).startswith(HELP)
    bomb = zlib.compress(b"<methodCall>" + b" " * (64 * 1024 * 1024))  # 64 MiB of spaces in 64 KiB
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    conn.request("POST", "/RPC2", body=bomb, headers={"Content-Encoding": "deflate"})
    assert conn.getresponse().status == 413
    conn.close()


INVALID = {
    "bigdecimal": ("<methodCall><methodName>agentMonitor.getViewer</methodName><params><param><value>"
                   "<bigdecimal>12x</bigdecimal></value></param><param><value>CodeDX</value></param></params>"
                   "</methodCall>", "bigdecimal"),
    "bogus-encoding": ("<?xml version='1.0' encoding='bogus'?>" + CALL.format(name="x"), "encoding"),
    "fault-as-request": ("<?xml version='1.0'?><methodResponse><fault><value><struct><member><name>faultCode"
                         "</name><value><int>4</int></value></member><member><name>faultString</name><value>"
                         "<string>x</string></value></member></struct></value></fault></methodResponse>",
                         "fault"),
    "fault-30-digits": ("<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>"
                        "123456789012345678901234567890</int></value></member><member><name>faultString</name>"
                        "<value><string>x</string></value></member></struct></value></fault></methodResponse>",
                        "fault"),
    "fault-in-call": ("<methodCall><methodName>system.listMethods</methodName><fault><value><struct/></value>"
                      "</fault></methodCall>", "fault"),
    "int-30-digits": ("<methodCall><methodName>agentMonitor.getViewer</methodName><params><param><value><int>"
                      "123456789012345678901234567890</int></value></param></params></methodCall>", "range"),
    "int-underscore": ("<methodCall><methodName>agentMonitor.getViewer</methodName><params><param><value><i4>"
                       "1_000</i4></value></param></params></methodCall>", "integer"),
    "boolean-2": ("<methodCall><methodName>agentMonitor.getViewer</methodName><params><param><value><boolean>"
                  "2</boolean></value></param></params></methodCall>", "boolean"),
    "double-nan": ("<methodCall><methodName>agentMonitor.getViewer</methodName><params><param><value><double>"
                   "nan</double></value></param></params></methodCall>", "double"),
    "unknown-type": ("<methodCall><methodName>agentMonitor.getViewer</methodName><params><param><value><dom>"
                     "<x/></dom></value></param></params></methodCall>", "dom"),
    "two-values": ("<methodCall><methodName>agentMonitor.getViewer</methodName><params><param><value><int>1</int>"
                   "<int>2</int></value></param></params></methodCall>", "value"),
    "no-method": ("<methodCall><params/></methodCall>", "methodName"),
}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_values_are_fault_1_without_a_traceback(daemon, name):
    document, word = INVALID[name]
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
    try:
        code, message = fault_of(post(daemon, document.encode("utf-8"), conn=conn))
        assert code == 1 and word in message, message
        # The same connection still answers.
        assert answer(post(daemon, CALL.format(name="agentMonitor.getViewer").encode(), conn=conn)).startswith(HELP)
    finally:
        conn.close()
    assert "Traceback" not in daemon.log()
