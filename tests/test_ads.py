"""SWAMP's generic collector ads: the attributes the web server reads, published through the
outbox on every state change, refreshed inside their lifetime, never carrying the API key."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import htcondor2
import pytest

from htcondor_world import World

from swampd.agentmonitor.ads import ad_vmhostname, ad_vmip, to_classad, viewer_ad
from swampd.agentmonitor.daemon import enabled_effects as change_effects
from swampd.config import AgentMonitorConfig, Config, HTCondorConfig, SchedulerConfig, ViewerConfig
from swampd.states import ViewerState
from swampd.store import ViewerRecord

#: What SWAMP's writer put in every viewer ad (reference/swamp-lifecycle.md §4.11), less the API key.
SWAMP_ATTRIBUTES = [
    "SWAMP_vmu_viewer_vmhostname", "SWAMP_vmu_viewer_state", "SWAMP_vmu_viewer_status",
    "SWAMP_vmu_viewer_name", "SWAMP_vmu_viewer_vmip", "SWAMP_vmu_viewer_user_uuid",
    "SWAMP_vmu_viewer_projectid", "SWAMP_vmu_viewer_instance_uuid", "SWAMP_vmu_viewer_url_uuid",
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path, advertise=True)
    yield w
    w.close()


def record(**changes: object) -> ViewerRecord:
    base = ViewerRecord(projectid="p1", viewer="CodeDX", epoch=2, launch_id="a" * 32, token="secret-token",
                        apikey="11111111-2222-3333-4444-555555555555", url_uuid="proxy-abc",
                        state=int(ViewerState.READY), status="Viewer is up", userid="u1", viewer_uuid="vi-1",
                        vmip="10.0.0.7", job_ref="12.0")
    for key, value in changes.items():
        setattr(base, key, value)
    return base


def test_the_ad_has_swamps_attributes_and_no_secret() -> None:
    attributes = viewer_ad(record(), lifetime=900, viewer_port=8443)
    for name in SWAMP_ATTRIBUTES:
        assert name in attributes
    assert attributes["MyType"] == "Generic" and attributes["Name"] == "vrun_p1_CodeDX"
    assert attributes["ClassAdLifetime"] == 900
    assert attributes["SWAMP_vmu_viewer_state"] == "2"  # a string, as SWAMP wrote it
    assert attributes["SWAMP_vmu_viewer_vmip"] == "10.0.0.7:8443"
    assert attributes["SWAMP_vmu_viewer_url_uuid"] == "proxy-abc"
    assert attributes["SWAMP_vmu_viewer_vmhostname"] == "vswamp-12-0"
    text = repr(to_classad(attributes))
    assert "apikey" not in text.lower()
    assert "11111111-2222" not in text and "secret-token" not in text


def test_missing_values_are_written_as_null_like_swamp() -> None:
    attributes = viewer_ad(record(vmip="", userid="", viewer_uuid="", job_ref=""), 900, 8443)
    assert attributes["SWAMP_vmu_viewer_vmip"] == "null"
    assert attributes["SWAMP_vmu_viewer_user_uuid"] == "null"
    assert attributes["SWAMP_vmu_viewer_vmhostname"] == "null"


@pytest.mark.parametrize("vmip, expected", [
    ("10.0.0.7", "10.0.0.7:8443"), ("10.0.0.7:9000", "10.0.0.7:9000"),
    ("fe80::1", "[fe80::1]:8443"), ("[fe80::1]:9000", "[fe80::1]:9000"), ("", "null"),
])
def test_vmip_is_ip_colon_port(vmip: str, expected: str) -> None:
    assert ad_vmip(vmip, 8443) == expected


def test_vmhostname_follows_the_job() -> None:
    assert ad_vmhostname("7.3") == "vswamp-7-3" and ad_vmhostname("") == "null"


def test_a_hostile_status_stays_a_value() -> None:
    hostile = 'x"\nSWAMP_vmu_viewer_state = "2'
    ad = to_classad(viewer_ad(record(status=hostile, state=int(ViewerState.ERROR)), 900, 8443))
    assert ad["SWAMP_vmu_viewer_status"] == hostile and ad["SWAMP_vmu_viewer_state"] == "-5"


def test_every_state_change_is_published_through_the_outbox(world: World) -> None:
    world.launch()
    world.settle()  # the claim's ad, the submit, and the submit's own ad, all in one pass
    ad = world.collector.viewer("vrun_p1_CodeDX")
    assert ad is not None and ad["SWAMP_vmu_viewer_state"] == "1"
    assert ad["SWAMP_vmu_viewer_status"] == "Waiting for the viewer machine"
    world.schedd.start("1.0")
    world.report_up()
    world.settle()
    world.settle()
    # What the PHP web server asks (reference/swamp-db-deploy.md §3.3):
    [by_instance] = world.collector.query(htcondor2.AdType.Any, 'SWAMP_vmu_viewer_instance_uuid=="vi-1"',
                                          ["SWAMP_vmu_viewer_state", "SWAMP_vmu_viewer_status",
                                           "SWAMP_vmu_viewer_url_uuid"])
    url_uuid = world.record().url_uuid
    assert (by_instance["SWAMP_vmu_viewer_state"], by_instance["SWAMP_vmu_viewer_status"],
            by_instance["SWAMP_vmu_viewer_url_uuid"]) == ("2", "Viewer is up", url_uuid)
    [by_proxy] = world.collector.query(htcondor2.AdType.Any, f'SWAMP_vmu_viewer_url_uuid=="{url_uuid}"',
                                       ["SWAMP_vmu_viewer_vmip", "SWAMP_vmu_viewer_projectid"])
    assert (by_proxy["SWAMP_vmu_viewer_vmip"], by_proxy["SWAMP_vmu_viewer_projectid"]) == ("10.1.2.3:8443", "p1")
    world.service.stop("p1", "CodeDX")
    world.settle()
    assert world.collector.viewer("vrun_p1_CodeDX")["SWAMP_vmu_viewer_state"] == "-6"
    world.schedd.vacated("1.0")
    world.settle()
    world.settle()
    assert world.collector.viewer("vrun_p1_CodeDX")["SWAMP_vmu_viewer_state"] == "-7"


def test_a_down_collector_delays_the_ad_but_nothing_else(world: World) -> None:
    world.collector.down = True
    world.launch()
    record = world.settle()
    assert record.job_ref == "1.0"  # the launch went on
    assert world.collector.ads == {}
    world.settle()
    assert world.store.pending_outbox() == []  # nothing waits on the collector
    world.collector.down = False
    assert world.publisher.refresh() == 1
    assert world.collector.viewer("vrun_p1_CodeDX")["SWAMP_vmu_viewer_state"] == "1"


def test_refresh_keeps_live_ads_alive_and_lets_ended_ones_expire(world: World) -> None:
    world.launch()
    world.launch(projectid="p2")
    world.settle()
    world.settle("p2")
    world.service.stop("p2", "CodeDX")
    world.settle("p2")
    world.settle("p2")
    assert world.record("p2").viewer_state is ViewerState.TERMINATED
    calls = world.collector.calls["advertise"]
    refreshed = []
    for _ in range(10):  # 10 x 300 s: far past the 900 s lifetime
        world.clock.advance(300)
        refreshed.append(world.publisher.refresh())
    # the ended viewer is refreshed while its ad would still be news, then left to expire
    assert refreshed[:2] == [2, 2] and refreshed[3:] == [1] * 7
    assert world.collector.calls["advertise"] == calls + 10  # one call per refresh, not one per viewer
    assert world.collector.viewer("vrun_p1_CodeDX") is not None
    assert world.collector.viewer("vrun_p2_CodeDX") is None


def test_without_a_refresh_an_ad_expires_like_any_soft_state(world: World) -> None:
    world.launch()
    world.settle()
    world.clock.advance(901)
    assert world.collector.viewer("vrun_p1_CodeDX") is None


def test_advertising_is_a_change_effect_only_when_enabled() -> None:
    viewers = {"CodeDX": ViewerConfig("CodeDX", platform="vm")}
    on = Config(AgentMonitorConfig(), SchedulerConfig(kind="htcondor"), viewers,
                htcondor=HTCondorConfig(advertise=True))
    off = Config(AgentMonitorConfig(), SchedulerConfig(kind="htcondor"), viewers)
    local = Config(AgentMonitorConfig(), SchedulerConfig(kind="local"), viewers,
                   htcondor=HTCondorConfig(advertise=True))
    assert "advertise" in change_effects(on)
    assert "advertise" not in change_effects(off) and "advertise" not in change_effects(local)


def test_a_collector_that_refuses_the_ads_is_said_once_counted_and_not_hammered(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swampd")
    world.collector.allow_daemon = {"condor"}  # the packaged security: swampd's user may not advertise
    world.launch()
    ref = world.settle().job_ref
    world.schedd.start(ref)
    world.report_up()
    record = world.settle()
    assert record.viewer_state is ViewerState.READY and record.url  # the viewer does not care
    assert world.store.pending_outbox() == []  # nothing retries in the outbox
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "collector" in
                r.getMessage()]
    assert len(warnings) == 1 and "refused" in warnings[0] and "COLLECTOR.ALLOW_DAEMON" in warnings[0]
    # Three state changes within the first backoff: one call reached the collector.
    assert world.collector.calls["advertise"] == 1 and len(world.collector.denied) == 1
    assert world.publisher.stats["refused"] == 1 and world.publisher.stats["skipped"] >= 2
    for _ in range(3):  # the refresher keeps trying, once a round; still one warning
        world.clock.advance(300)
        world.publisher.refresh()
    assert world.collector.calls["advertise"] == 4 and world.publisher.stats["refused"] == 4
    from swampd import metrics

    assert metrics.REGISTRY.get_sample_value("swampd_collector_ad_publications_total",
                                             {"outcome": "refused"}) >= 4
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    world.collector.allow_daemon.add("swampd")  # the operator adds COLLECTOR.ALLOW_DAEMON
    world.clock.advance(300)
    assert world.publisher.refresh() == 1
    assert world.collector.viewer("vrun_p1_CodeDX")["SWAMP_vmu_viewer_state"] == "2"
    assert any("takes swampd's ads again" in r.getMessage() for r in caplog.records)
    world.service.stop("p1", "CodeDX")
    world.settle()
    assert world.collector.viewer("vrun_p1_CodeDX")["SWAMP_vmu_viewer_state"] == "-6"  # at once again


def test_a_collector_that_does_not_answer_is_told_apart_from_one_that_refuses(
        world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="swampd")
    world.collector.down = True
    world.launch()
    world.settle()
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "does not answer" in warning
    assert world.publisher.stats["unreachable"] == 1 and world.publisher.stats["refused"] == 0
