"""Reading a daemon's registry from tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from swampd.store import Store


def viewer_results(state_dir: Path, projectid: str, viewer: str) -> list[dict[str, Any]]:
    """The result rows the registry holds for one viewer (empty when it has none)."""
    store = Store(Path(state_dir) / "registry.sqlite3")
    record = store.get_viewer(projectid, viewer)
    return [] if record is None else store.results(record.id)
