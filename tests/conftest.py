from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.daemon import Daemon  # noqa: E402


@pytest.fixture
def make_daemon(tmp_path: Path) -> Iterator[Callable[..., Daemon]]:
    """Start real daemons on their own state dirs; all are cleaned up afterwards."""
    made: list[Daemon] = []

    def make(start: bool = True, **kwargs: Any) -> Daemon:
        daemon = Daemon(tmp_path / f"d{len(made)}", **kwargs)
        made.append(daemon)
        return daemon.start() if start else daemon

    yield make
    for daemon in made:
        daemon.cleanup()


@pytest.fixture
def daemon(make_daemon: Callable[..., Daemon]) -> Daemon:
    return make_daemon()
