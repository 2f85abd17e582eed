"""The one exception of the results package.

Everything that makes a result unusable (a malformed or hostile SCARF file,
an archive that would escape its directory or grow past its cap, a missing
file) is a ``ResultsError`` whose message is the reason a person reads in the
``ERROR`` line; the caller decides how to report it.
"""
from __future__ import annotations


class ResultsError(Exception):
    """A result cannot be turned into a report; the message says why."""
