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
* a collector that does not take the ads never holds anything up: the
  outbox handler never fails (the outbox performs a key's rows in order, so
  a handler that kept failing would hold that key's submit and remove
  behind the collector), and the viewers go on as before;
* a collector that refuses them (an unprivileged user's ``UPDATE_AD_GENERIC``
  needs DAEMON authorization at the collector: ``COLLECTOR.ALLOW_DAEMON``)
  or does not answer is said once: one warning when publishing starts to
  fail, naming the likely cause (the collector answered a query, so it
  refused; or it did not answer at all), one line when it works again, and
  every failed or skipped attempt is counted (``stats``, and
  ``swampd_collector_ad_publications`` on ``/metrics``).  While it fails,
  a state change does not call the collector before a backoff (5 s,
  doubling up to ``ad_refresh``) has passed; the refresher tries every
  ``ad_refresh`` and, once the collector takes the ads again, publishes
  every current one, so nothing is lost but time.

The API key is never published (SWAMP did, and anyone who can read the
collector can read every attribute).  Values go in as ClassAd values, never
as text, so a status message cannot change the ad.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from typing import Any, Callable, Mapping

from swampd import metrics
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


#: Seconds before the first retry after a failed publication; doubles up to ``ad_refresh``.
FIRST_BACKOFF = 5.0


class AdPublisher:
    """Publishes viewer ads to the collector (an ``htcondor2.Collector`` or the test double).

    Every call to the collector goes through ``publish``, which keeps count
    (``stats``: published, failed, refused, unreachable, skipped) and says
    once when publishing starts and stops failing (see the module docstring).
    """

    def __init__(self, store: Store, collector: Any, condor: HTCondorConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.collector = collector
        self.condor = condor
        self.clock = clock
        self.stats: Counter[str] = Counter()
        self._lock = threading.Lock()
        #: When publishing started to fail (None while it works), and when to try again.
        self.failing_since: float | None = None
        self._next_try = 0.0
        self._backoff = FIRST_BACKOFF
        #: A state change was not published while failing: publish everything once it works.
        self._behind = False

    def handle(self, item: OutboxItem) -> None:
        """The ``advertise`` outbox handler: publish the key's current ad (idempotent, never fails)."""
        record = self.store.get_run_by_id(item.run_id)
        if not isinstance(record, ViewerRecord):
            return
        if self.publish([record]) and self._catch_up():
            self.refresh()

    def refresh(self) -> int:
        """Re-publish the ads of live and recently ended viewers in one call; returns how many."""
        records = self._current()
        with self._lock:
            self._behind = False  # this call carries every current ad (a failure sets it again)
        if records:
            self.publish(records, due=True)
        return len(records)

    def _current(self) -> list[ViewerRecord]:
        now = self.clock()
        return [r for r in self.store.list_viewers()
                if r.epoch and (r.state in ACTIVE or now - r.updated_at < self.condor.ad_lifetime)]

    def publish(self, records: list[ViewerRecord], due: bool = False) -> bool:
        """One call to the collector for ``records``; True when the collector took them.

        While publishing fails, calls before the backoff has passed are
        skipped (counted) unless ``due`` (the refresher's round)."""
        now = self.clock()
        with self._lock:
            if self.failing_since is not None and not due and now < self._next_try:
                self.stats["skipped"] += 1
                self._behind = True
                metrics.ad_publication("skipped")
                return False
        ads = [to_classad(viewer_ad(r, self.condor.ad_lifetime, self.condor.viewer_port)) for r in records]
        try:
            self.collector.advertise(ads, "UPDATE_AD_GENERIC", True)
        except Exception as exc:  # refused or unreachable: said once, counted, retried later
            self._failed(exc, now)
            return False
        self._worked(now)
        return True

    def _failed(self, exc: Exception, now: float) -> None:
        with self._lock:
            first = self.failing_since is None
            if first:
                self.failing_since = now
                self._backoff = FIRST_BACKOFF
            else:
                self._backoff = min(self._backoff * 2, max(FIRST_BACKOFF, float(self.condor.ad_refresh)))
            self._next_try = now + self._backoff
            self._behind = True
            self.stats["failed"] += 1
        refused = self._collector_answers()
        with self._lock:
            self.stats["refused" if refused else "unreachable"] += 1
        metrics.ad_publication("refused" if refused else "unreachable")
        if not first:
            log.debug("collector ads still not published (%s)", exc)
            return
        if refused:
            log.warning(
                "the collector refused swampd's ads (%s) although it answers queries: it does not authorize "
                "this user to advertise (UPDATE_AD_GENERIC needs DAEMON at the collector; grant it with "
                "COLLECTOR.ALLOW_DAEMON = $(ALLOW_DAEMON) <user>@<uid domain>, see README, HTCondor). Viewers "
                "are not affected; the web server does not see their states until the collector takes the "
                "ads. Retrying every %gs at most; further failures are counted, not logged.",
                exc, self.condor.ad_refresh)
        else:
            log.warning(
                "the collector does not answer (%s): swampd's ads wait. Viewers are not affected. Retrying "
                "every %gs at most; further failures are counted, not logged.", exc, self.condor.ad_refresh)

    def _collector_answers(self) -> bool:
        """Whether the collector answers a query: then a failed advertise was a refusal."""
        try:
            import htcondor2

            self.collector.query(htcondor2.AdType.Collector, "true", ["Name"])
        except Exception:
            return False
        return True

    def _worked(self, now: float) -> None:
        metrics.ad_publication("published")
        with self._lock:
            self.stats["published"] += 1
            since, self.failing_since = self.failing_since, None
            failed = self.stats["failed"]
        if since is not None:
            log.info("the collector takes swampd's ads again after %.0fs (%d failed attempts so far)",
                     now - since, failed)

    def _catch_up(self) -> bool:
        """True once, after publishing works again, if changes were skipped meanwhile."""
        with self._lock:
            behind, self._behind = self._behind, False
            return behind


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
                self.refresh()  # never fails on the collector's account (see AdPublisher.publish)
            except Exception:  # the registry itself: the next round tries again
                log.exception("refreshing collector ads failed")

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
