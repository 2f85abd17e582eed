"""SWAMP's generic collector ads, for the web server that still reads them.

The PHP web server learns a viewer's state, status text and proxy route
from generic ads named ``vrun_<project>_<viewer>`` with ``SWAMP_vmu_viewer_*``
attributes (``reference/swamp-lifecycle.md`` §4.11,
``reference/swamp-db-deploy.md`` §3.2-3.3).  In SWAMP those ads *were* the
state; here they are a mirror of the registry:

* every state change enqueues an ``advertise`` outbox row in the same
  transaction (``Store(change_effects=("advertise",))``); its handler
  publishes the record's current ad, so a retry after a crash is harmless;
* a refresher re-publishes, in one call, the ad of every live viewer and of
  every viewer that ended less than one ad lifetime ago, well inside the
  lifetime, which is set explicitly (``ClassAdLifetime``); older ended ads
  are left to expire, as SWAMP's were;
* a collector that does not answer never holds anything up: the outbox
  handler logs and lets the refresher publish the ad on its next round
  (the outbox performs a key's rows in order, so a handler that kept
  failing would hold that key's submit and remove behind the collector).

The API key is never published (SWAMP did, and anyone who can read the
collector can read every attribute).  Values go in as ClassAd values, never
as text, so a status message cannot change the ad.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any, Callable, Mapping

from swampd.config import HTCondorConfig
from swampd.states import ACTIVE
from swampd.store import OutboxItem, Store, ViewerRecord

log = logging.getLogger(__name__)

PREFIX = "SWAMP_vmu_viewer_"
NULL = "null"
REF_RE = re.compile(r"(\d+)\.(\d+)")


def ad_vmip(vmip: str, port: int) -> str:
    """SWAMP's ``<ip>:<port>`` form: the reported address, with the viewer port if it has none."""
    if not vmip:
        return NULL
    if vmip.startswith("["):  # [v6]:port or [v6]
        return vmip if "]:" in vmip else f"{vmip}:{port}"
    if vmip.count(":") == 1:
        return vmip
    if ":" in vmip:  # a bare IPv6 address
        return f"[{vmip}]:{port}"
    return f"{vmip}:{port}"


def ad_vmhostname(job_ref: str) -> str:
    """SWAMP's guest host name ``vswamp-<cluster>-<proc>``, once the job exists."""
    match = REF_RE.fullmatch(job_ref or "")
    return f"vswamp-{match[1]}-{match[2]}" if match else NULL


def viewer_ad(record: ViewerRecord, lifetime: int, viewer_port: int) -> dict[str, Any]:
    """The ad's attributes for ``record`` (plain values; never the API key or the token)."""
    return {
        "MyType": "Generic",
        "Name": record.execrunid,
        "ClassAdLifetime": int(lifetime),
        f"{PREFIX}vmhostname": ad_vmhostname(record.job_ref),
        f"{PREFIX}state": str(int(record.state)),
        f"{PREFIX}status": record.status or NULL,
        f"{PREFIX}name": record.viewer or NULL,
        f"{PREFIX}vmip": ad_vmip(record.vmip, viewer_port),
        f"{PREFIX}user_uuid": record.userid or NULL,
        f"{PREFIX}projectid": record.projectid or NULL,
        f"{PREFIX}instance_uuid": record.viewer_uuid or NULL,
        f"{PREFIX}url_uuid": record.url_uuid or NULL,
        "SwampdEpoch": int(record.epoch),
    }


def to_classad(attributes: Mapping[str, Any]) -> Any:
    import classad2

    return classad2.ClassAd(dict(attributes))


class AdPublisher:
    """Publishes viewer ads to the collector (an ``htcondor2.Collector`` or the test double)."""

    def __init__(self, store: Store, collector: Any, condor: HTCondorConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.collector = collector
        self.condor = condor
        self.clock = clock

    def handle(self, item: OutboxItem) -> None:
        """The ``advertise`` outbox handler: publish the key's current ad (idempotent)."""
        record = self.store.get_run_by_id(item.run_id)
        if not isinstance(record, ViewerRecord):
            return
        try:
            self._advertise([record])
        except Exception as exc:  # the refresher publishes it next round; see the module docstring
            log.warning("collector ad for %s not published (%s); the next refresh retries it",
                        record.execrunid, exc)

    def refresh(self) -> int:
        """Re-publish the ads of live and recently ended viewers in one call; returns how many."""
        now = self.clock()
        records = [r for r in self.store.list_viewers()
                   if r.epoch and (r.state in ACTIVE or now - r.updated_at < self.condor.ad_lifetime)]
        if records:
            self._advertise(records)
        return len(records)

    def _advertise(self, records: list[ViewerRecord]) -> None:
        ads = [to_classad(viewer_ad(r, self.condor.ad_lifetime, self.condor.viewer_port)) for r in records]
        self.collector.advertise(ads, "UPDATE_AD_GENERIC", True)


class AdRefresher:
    """A thread that calls ``publisher.refresh`` every ``interval`` seconds."""

    def __init__(self, refresh: Callable[[], int], interval: float) -> None:
        self.refresh = refresh
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="ad-refresh", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception as exc:  # the collector may be down; the next round tries again
                log.warning("refreshing collector ads failed: %s", exc)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
