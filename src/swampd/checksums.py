"""File digests, read in blocks: the one place swampd hashes a viewer database."""
from __future__ import annotations

import hashlib
from pathlib import Path


def file_digest(path: str | Path, algorithm: str = "sha512") -> str:
    """Hex digest of a file; raises OSError when it cannot be read."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
