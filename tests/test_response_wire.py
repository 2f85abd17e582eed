"""The fast methodResponse writer answers byte for byte what xmlrpc.client.dumps writes, errors included."""
from __future__ import annotations

import datetime
import enum
import random
import xmlrpc.client

import pytest

from swampd.agentmonitor.transport.responsewire import dumps_fault, dumps_result


def reference(value: object) -> bytes:
    return xmlrpc.client.dumps((value,), methodresponse=True, allow_none=False).encode("utf-8")


class Colour(enum.IntEnum):
    RED = 1


class Text(str):
    pass


def random_value(rng: random.Random, depth: int = 0) -> object:
    kinds = ["str", "int", "bool", "float"] + (["dict", "list", "tuple"] if depth < 4 else [])
    kind = rng.choice(kinds)
    if kind == "str":
        return "".join(rng.choice("ab<>&\"'\n\t é\u2603\U0001f600]]>") for _ in range(rng.randrange(12)))
    if kind == "int":
        return rng.choice([0, -1, 1, 2**31 - 1, -2**31, rng.randrange(-10**6, 10**6)])
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "float":
        return rng.choice([0.0, -1.5, 1e300, 3.141592653589793, float("inf"), rng.random()])
    items = [random_value(rng, depth + 1) for _ in range(rng.randrange(5))]
    if kind == "dict":
        return {f"k{i}<&>": item for i, item in enumerate(items)}
    return items if kind == "list" else tuple(items)


def test_random_values_match_the_standard_library() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        value = random_value(rng)
        assert dumps_result(value) == reference(value)


def test_a_viewer_struct_matches() -> None:
    struct = {"projectid": "p<1>&", "state": 3, "state_name": "READY", "ready": True, "epoch": 2,
              "vmip": "127.0.0.1:5555", "stale": False, "last_seen": 1764520000.25, "history": [{"a": "b"}]}
    assert dumps_result(struct) == reference(struct)
    assert dumps_result([struct, struct]) == reference([struct, struct])


@pytest.mark.parametrize("value", [2**31, -2**31 - 1, 10**40, {1: "a"}, {"a": None}, None, Colour.RED,
                                   Text("x"), b"bytes", datetime.datetime(2026, 1, 2, 3, 4, 5),
                                   xmlrpc.client.Binary(b"\0\1"), xmlrpc.client.DateTime("20260102T03:04:05"),
                                   {"deep": [[[[[[[[[["x"]]]]]]]]]]}])
def test_values_off_the_fast_path_behave_as_the_standard_library(value: object) -> None:
    try:
        expected = reference(value)
    except Exception as exc:  # the same error, raised the same way
        with pytest.raises(type(exc), match=str(exc).replace("(", r"\(").replace(")", r"\)")):
            dumps_result(value)
        return
    assert dumps_result(value) == expected


def test_a_container_holding_itself_is_refused_as_the_standard_library_refuses_it() -> None:
    looped: dict[str, object] = {"a": 1}
    looped["self"] = looped
    with pytest.raises(TypeError, match="recursive"):
        reference(looped)
    with pytest.raises(TypeError, match="recursive"):
        dumps_result(looped)
    chain: list[object] = []
    node = chain
    for _ in range(200):  # deeper than the fast path goes, not a loop: the Marshaller writes it
        node.append([])
        node = node[0]  # type: ignore[assignment]
    assert dumps_result(chain) == reference(chain)


def test_a_fault_matches() -> None:
    assert dumps_fault(3, "no <such> & thing") == xmlrpc.client.dumps(
        xmlrpc.client.Fault(3, "no <such> & thing")).encode("utf-8")
