"""What the domain monitor reads and does on a hypervisor: libvirt domains and vruntask locks."""
from __future__ import annotations

import errno
import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import libvirt

from swampd.vruntask.domain_xml import NAME_PREFIX, metadata_of

log = logging.getLogger(__name__)


@dataclass
class OwnedDomain:
    name: str
    active: bool
    metadata: dict[str, str]
    dom: Any


def owned_domains(conn: Any) -> tuple[list[OwnedDomain], list[str]]:
    """swampd's domains (prefix and metadata), and the names of the others (never touched)."""
    mine: list[OwnedDomain] = []
    others: list[str] = []
    for dom in conn.listAllDomains(0):
        try:
            name = dom.name()
            meta = metadata_of(dom.XMLDesc(0)) if name.startswith(NAME_PREFIX) else None
            active = bool(dom.isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                continue  # went away while we looked
            raise
        if meta is None:
            others.append(name)
        else:
            mine.append(OwnedDomain(name, active, meta, dom))
    return mine, others


def lock_held(path: str) -> bool | None:
    """Is the vruntask liveness lock held?  False when free or gone; None when it cannot be probed."""
    if not path:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot open %s: %s", path, exc.strerror)
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return True
            return None
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def reap(domain: OwnedDomain) -> None:
    """Destroy (if running) and undefine; a domain already gone counts as reaped."""
    try:
        if domain.dom.isActive():
            domain.dom.destroy()
        domain.dom.undefine()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise


def read_token(metadata: dict[str, str]) -> str:
    """The launch's report token from its job dir ('' when the job dir is gone)."""
    job_dir, name = metadata.get("job_dir", ""), metadata.get("token_file", "")
    if not job_dir or not name or "/" in name:
        return ""
    try:
        return (Path(job_dir) / name).read_text(encoding="utf-8").strip()
    except OSError:
        return ""
