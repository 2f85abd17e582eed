"""``swampd domainmonitor``: one pass, or a loop of passes, over this hypervisor's viewer domains.

Each pass gathers the facts (libvirt's list, each domain's vruntask lock,
the AgentMonitor's record), lets ``rules.decide`` judge, reaps what it must
and reports each reaped VM to the AgentMonitor with the launch's token.
When an orphan was first seen is kept in a small JSON file, so the grace
period also holds across ``--once`` runs (cron).
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import xmlrpc.client
from pathlib import Path
from typing import Any, Callable

import libvirt

from swampd.clients.rpc import connect
from swampd.domainmonitor import hypervisor
from swampd.domainmonitor.rules import Action, Decision, DomainFacts, decide, wanted_by
from swampd.states import ViewerState
from swampd.vruntask.delivery import Fenced, give_up_after
from swampd.vruntask.reporter import Reporter

log = logging.getLogger(__name__)
REPORT_SECONDS = 30.0


class DomainMonitor:
    def __init__(self, uri: str, grace: float, url: str | None = None, token: str | None = None,
                 state_file: Path | None = None, opener: Callable[[str], Any] = libvirt.open,
                 cafile: str | None = None) -> None:
        """``cafile``: the CA bundle an https AgentMonitor is verified with (else the system's)."""
        self.uri = uri
        self.grace = grace
        self.url = url
        self.token = token
        self.cafile = cafile
        self.state_file = Path(state_file) if state_file else None
        self._opener = opener
        self._conn: Any = None
        self.orphans: dict[str, float] = self._load()

    # -- one pass ------------------------------------------------------------
    def pass_once(self, now: float | None = None) -> list[Decision]:
        now = time.time() if now is None else now
        conn = self._connection()
        domains, others = hypervisor.owned_domains(conn)
        if others:
            log.debug("not ours, left alone: %s", ", ".join(others))
        records: dict[tuple[str, str, str], dict[str, Any] | None] = {}
        decisions = []
        for domain in domains:
            facts = self._facts(domain, records)
            decision = decide(facts, self.orphans.get(domain.name), now, self.grace)
            if decision.action is Action.KEEP:
                self.orphans.pop(domain.name, None)
            elif decision.action is Action.WAIT:
                self.orphans.setdefault(domain.name, now)
                log.info("%s is an orphan: %s", domain.name, decision.reason)
            elif decision.action is Action.REAP:
                self._reap(domain, decision)
            decisions.append(decision)
        live = {d.name for d in domains}
        self.orphans = {name: since for name, since in self.orphans.items() if name in live}
        self._save()
        return decisions

    def run(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.pass_once()
            except libvirt.libvirtError as exc:
                log.error("libvirt at %s: %s; trying again in %.0fs", self.uri, exc.get_error_message(), interval)
                self._conn = None
            stop.wait(interval)

    # -- facts ---------------------------------------------------------------
    def _facts(self, domain: hypervisor.OwnedDomain,
               records: dict[tuple[str, str, str], dict[str, Any] | None]) -> DomainFacts:
        meta = domain.metadata
        try:
            epoch = int(meta.get("epoch", ""))
        except ValueError:
            epoch = -1
        url = self.url or meta.get("agentmonitor_url", "")
        key = (url, meta.get("projectid", ""), meta.get("viewer", ""))
        if key not in records:
            records[key] = self._ask(*key)
        wanted, why = wanted_by(records[key], epoch)
        return DomainFacts(domain.name, True, domain.active, meta.get("execrunid", ""), epoch,
                           hypervisor.lock_held(meta.get("lock_file", "")), wanted, why)

    def _ask(self, url: str, projectid: str, viewer: str) -> dict[str, Any] | None:
        if not (url and projectid and viewer):
            return None
        try:
            return dict(connect(url, self.token, self.cafile, timeout=10.0).agentMonitor.getViewer(projectid, viewer))
        except xmlrpc.client.Fault as fault:
            log.warning("AgentMonitor refused getViewer(%s, %s): %s", projectid, viewer, fault.faultString)
        except (OSError, xmlrpc.client.ProtocolError) as exc:
            log.warning("AgentMonitor at %s did not answer: %s", url, exc)
        return None

    # -- acting --------------------------------------------------------------
    def _reap(self, domain: hypervisor.OwnedDomain, decision: Decision) -> None:
        log.warning("reaping %s: %s", domain.name, decision.reason)
        hypervisor.reap(domain)
        self.orphans.pop(domain.name, None)
        self._report(domain, decision.reason)

    def _report(self, domain: hypervisor.OwnedDomain, reason: str) -> None:
        meta = domain.metadata
        token = hypervisor.read_token(meta)
        url = self.url or meta.get("agentmonitor_url", "")
        if not token or not url:
            log.warning("%s reaped; no report token or URL to tell the AgentMonitor (the scheduler will)",
                        domain.name)
            return
        reporter = Reporter(url, meta.get("execrunid", ""), int(meta.get("epoch", "0") or 0), token,
                            cafile=self.cafile)
        try:
            reporter.send(give_up_after(REPORT_SECONDS), state=int(ViewerState.ERROR),
                          status=f"VM {domain.name} destroyed by domainmonitor: {reason}")
        except Fenced as exc:
            log.info("AgentMonitor already moved on from %s: %s", domain.name, exc)

    # -- plumbing ------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is None or not self._conn.isAlive():
            self._conn = self._opener(self.uri)
        return self._conn

    def _load(self) -> dict[str, float]:
        if self.state_file is None:
            return {}
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
            return {str(k): float(v) for k, v in data.items()}
        except (OSError, ValueError, AttributeError):
            return {}

    def _save(self) -> None:
        if self.state_file is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(self.orphans), encoding="utf-8")
        os.replace(tmp, self.state_file)
