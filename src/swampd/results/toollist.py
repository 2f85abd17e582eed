"""Which bug fields the Native viewer shows, per tool (SWAMP's ``Scarf_ToolList.json``).

SWAMP picks the list by the *first word* of the database's tool name,
case-sensitively ("Clang Static Analyzer" -> ``Clang``; "GCC" finds no
``GCC`` key and falls back to the generic list).  Every tool shows the
generic fields; some add the severity or the tool's resolution suggestion;
Dawn has no locations.  ``buildId``, ``bugRank``, ``className``, ``cweIds``
and ``methods`` are in no list, so SWAMP never shows them; the writer still
knows how to, should an operator's list name them.
"""
from __future__ import annotations

#: Every field a bug can have, in the names the tool list uses.
ALL_FIELDS = frozenset({"buildId", "bugCode", "bugRank", "className", "bugSeverity", "bugGroup",
                        "bugMessage", "resolutionSuggestion", "cweIds", "methods", "locations"})
GENERIC = frozenset({"bugGroup", "bugCode", "locations", "bugMessage"})

_SEVERITY = GENERIC | {"bugSeverity"}
_SEVERITY_AND_SUGGESTION = _SEVERITY | {"resolutionSuggestion"}

TOOL_FIELDS: dict[str, frozenset[str]] = {
    "Findbugs": _SEVERITY_AND_SUGGESTION,
    "SpotBugs": _SEVERITY_AND_SUGGESTION,
    "PMD": _SEVERITY,
    "PHPMD": _SEVERITY,
    "Archie": _SEVERITY,
    "Android": GENERIC | {"resolutionSuggestion"},
    "Dawn": (_SEVERITY_AND_SUGGESTION - {"locations"}),
    "Clang": GENERIC,
    "CodeSonar": GENERIC,
    "gcc": GENERIC,
    "cppcheck": GENERIC,
    "RevealDroid": GENERIC,
}


def short_tool_name(tool_name: str) -> str:
    """The first whitespace-separated word of the database's tool name ('' for none)."""
    words = tool_name.split()
    return words[0] if words else ""


def shown_fields(tool_name: str) -> frozenset[str]:
    """The fields shown for a tool, chosen by the first word of its name."""
    return TOOL_FIELDS.get(short_tool_name(tool_name), GENERIC)
