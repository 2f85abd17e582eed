"""File digests, read in blocks: the one place swampd hashes a viewer database."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO


def file_digest(path: str | Path, algorithm: str = "sha512") -> str:
    """Hex digest of a file; raises OSError when it cannot be read."""
    with open(path, "rb") as fh:
        return stream_digest(fh, algorithm)


def stream_digest(fh: BinaryIO, algorithm: str = "sha512") -> str:
    """Hex digest of what remains in an open binary file."""
    digest = hashlib.new(algorithm)
    for block in iter(lambda: fh.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest()
