"""The state dir is private to the daemon, and nothing in it is opened through a symlink (issue 9, finding 4).

The daemon runs as root in production (and in this suite); a state dir that
others may write to would let them plant links where the registry, the lock
or the pid file go, and have root truncate, chmod or write the link's target.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support.daemon import SRC, free_port


def serve(state_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swampd.cli.swampd_main", "serve", "--state-dir", str(state_dir),
                           "--port", str(free_port())], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(SRC)}, stdin=subprocess.DEVNULL)


def victim(tmp_path: Path) -> Path:
    """A file of root's the daemon must never touch, mode 0644."""
    target = tmp_path / "victim"
    target.write_text("precious\n")
    os.chmod(target, 0o644)
    return target


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o703])
def test_a_state_dir_others_may_write_to_is_refused(tmp_path, mode):
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, mode)
    out = serve(state)
    assert out.returncode == 2, out.stderr
    assert str(state) in out.stderr and "writable by group or others" in out.stderr
    assert not (state / "registry.sqlite3").exists()


def test_a_state_dir_owned_by_another_user_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)  # nobody
    out = serve(state)
    assert out.returncode == 2, out.stderr
    assert str(state) in out.stderr and "owned by" in out.stderr


@pytest.mark.parametrize("name", ["registry.sqlite3", "swampd.lock", "swampd.pid", "registry.sqlite3-wal"])
def test_a_symlink_in_the_state_dir_is_refused_and_its_target_untouched(tmp_path, name):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    target = victim(tmp_path)
    (state / name).symlink_to(target)
    out = serve(state)
    assert out.returncode == 2, out.stderr
    assert name in out.stderr and "symbolic link" in out.stderr
    assert target.read_text() == "precious\n"
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)


def test_the_registry_is_opened_without_following_a_symlink(tmp_path):
    """The store's own open refuses a link too (a link planted after the daemon's start check)."""
    from swampd.statedir import StateDirError
    from swampd.store import Store

    target = victim(tmp_path)
    (tmp_path / "registry.sqlite3").symlink_to(target)
    with pytest.raises(StateDirError, match="symbolic link"):
        Store(tmp_path / "registry.sqlite3")
    assert oct(target.stat().st_mode & 0o777) == oct(0o644) and target.read_text() == "precious\n"


def test_a_private_state_dir_is_accepted_and_created_private(tmp_path, make_daemon):
    daemon = make_daemon()
    assert daemon.state_dir.stat().st_mode & 0o777 == 0o700
    assert (daemon.state_dir / "registry.sqlite3").stat().st_mode & 0o777 == 0o600
    assert daemon.api.listViewers() == []
