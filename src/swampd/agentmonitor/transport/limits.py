"""What the transport allows at once, and how many connections the file limit leaves room for.

Each limit answers one finding of issue 9: connections and threads are
capped (a flood costs file descriptors, never threads), a request has a total
deadline for its head and body (a client sending a byte a second is cut
off), large bodies are few at a time (memory), and the connection cap always
stays below what ``RLIMIT_NOFILE`` leaves after the daemon's own files, so
``accept`` does not run into ``EMFILE`` in the first place.
"""
from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: File descriptors kept for everything but client connections: the registry,
#: logs, listeners, and the pipes of jobs the local scheduler starts.
RESERVED_FDS = 128
#: The soft file limit the daemon raises itself to, when the hard limit allows.
WANTED_NOFILE = 65536


@dataclass(frozen=True)
class Limits:
    """The transport's limits (``[agentmonitor]`` keys of the same names)."""

    #: Open client connections at most; at the cap, the connection idle the longest is closed.
    max_connections: int = 1000
    #: Threads serving client calls, and threads kept for execute nodes' reports.
    request_threads: int = 8
    report_threads: int = 2
    #: Seconds one request (TLS handshake, head and body) may take to arrive in full.
    request_timeout: float = 30.0
    #: Seconds a kept-alive connection may sit idle between requests.
    keepalive_timeout: float = 60.0
    #: Bodies larger than this count as large; only ``max_large_bodies`` are read at once.
    large_body_bytes: int = 1024 * 1024
    max_large_bodies: int = 2
    #: Larger bodies get HTTP 413 before they are read.
    max_request_bytes: int = 32 * 1024 * 1024


def connection_budget(wanted: int) -> int:
    """The connection cap the file limit allows: raise the soft limit if we may, keep a reserve.

    systemd gives services a soft limit of 1,024 with a much higher hard
    limit, expecting a program that needs more to raise its own soft limit.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = WANTED_NOFILE if hard == resource.RLIM_INFINITY else min(hard, WANTED_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the file limit from %d to %d: %s", soft, target, exc)
    available = wanted if soft == resource.RLIM_INFINITY else max(16, soft - RESERVED_FDS)
    if available < wanted:
        log.warning("file limit %d leaves room for %d client connections, not max_connections = %d "
                    "(raise LimitNOFILE)", soft, available, wanted)
    return min(wanted, available)
