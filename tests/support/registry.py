"""Reading a daemon's registry from tests, across its schema versions.

The registry's ``results`` query changed shape with the run registry of
issue 8 (by run id instead of project and viewer); tests that only want "the
results stored for this viewer" call this instead of either form.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from swampd.store import Store


def viewer_results(state_dir: Path, projectid: str, viewer: str) -> list[dict[str, Any]]:
    """The result rows the registry holds for one viewer (empty when it has none)."""
    store = Store(Path(state_dir) / "registry.sqlite3")
    if len(inspect.signature(store.results).parameters) == 2:
        return store.results(projectid, viewer)  # type: ignore[call-arg]
    record = store.get_viewer(projectid, viewer)
    return [] if record is None else store.results(record.id)  # type: ignore[attr-defined,call-arg]
