"""An XML-RPC call written without ``xmlrpc.client``'s Marshaller, byte for byte the same
(``xmlrpc_values``); anything off its path is written by ``xmlrpc.client.dumps``."""
from __future__ import annotations

import xmlrpc.client
from typing import Any

from swampd.clients.xmlrpc_values import Decline, write


def dumps(params: tuple[Any, ...], methodname: str) -> bytes:
    """``xmlrpc.client.dumps(params, methodname).encode("utf-8", "xmlcharrefreplace")``."""
    out = ["<?xml version='1.0'?>\n<methodCall>\n<methodName>", methodname, "</methodName>\n<params>\n"]
    try:
        for value in params:
            out.append("<param>\n")
            write(value, out)
            out.append("</param>\n")
    except Decline:
        return xmlrpc.client.dumps(params, methodname).encode("utf-8", "xmlcharrefreplace")
    out.append("</params>\n</methodCall>\n")
    return "".join(out).encode("utf-8", "xmlcharrefreplace")
