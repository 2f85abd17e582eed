"""The daemon's bearer token file: created once, private, when the configuration names one that is missing.

Why create it: the example configuration names a token file so that a
fresh install requires a credential on loopback too (issue 9); creating it
on first start keeps that install working without a set-up step.  It is
created exclusively (``O_EXCL``, no symlink followed) with mode 0600, so it
never replaces or reveals anything that was already there.
"""
from __future__ import annotations

import logging
import os
import secrets

log = logging.getLogger(__name__)


def ensure_token_file(path: str) -> None:
    """Write a fresh random token to ``path`` (0600) if nothing is there yet."""
    if not path or os.path.lexists(path):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return  # created meanwhile: read what is there
    except OSError:
        return  # e.g. no such directory: reading it will say so
    try:
        os.write(fd, (secrets.token_urlsafe(32) + "\n").encode("ascii"))
    finally:
        os.close(fd)
    log.warning("token_file %s did not exist; created it with a new random token (mode 0600)", path)
