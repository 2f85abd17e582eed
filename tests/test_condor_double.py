"""The HTCondor double is honest: it refuses what a schedd refuses and keeps HTCondor's semantics."""
from __future__ import annotations

import classad2
import htcondor2
import pytest

from condor_double import COMPLETED, HELD, IDLE, REMOVED, CollectorDouble, ScheddDouble


def vanilla(**extra: str) -> htcondor2.Submit:
    return htcondor2.Submit({"executable": "/bin/true", "MY.SwampdKey": '"k1"', **extra})


@pytest.fixture
def schedd() -> ScheddDouble:
    return ScheddDouble()


def test_submit_stores_the_job_ad_of_the_attributes_we_use(schedd: ScheddDouble) -> None:
    result = schedd.submit(vanilla(**{"+ViewerJob": "true", "accounting_group": "group_viewer",
                                      "accounting_group_user": "u1", "request_memory": "512"}), count=1)
    assert (result.cluster(), result.first_proc(), result.num_procs()) == (1, 0, 1)
    ad = schedd.ad("1.0")
    assert ad["JobStatus"] == IDLE and ad["SwampdKey"] == "k1" and ad["ViewerJob"] is True
    assert ad["AccountingGroup"] == "group_viewer.u1" and ad["RequestMemory"] == 512
    assert ad["JobUniverse"] == 5 and ad["Cmd"] == "/bin/true"


@pytest.mark.parametrize("description, why", [
    ({"universe": "nosuch", "executable": "/bin/true"}, "universe"),
    ({"universe": "vm", "executable": "x", "vm_type": "kvm", "vm_disk": "a:vda:w"}, "vm_memory"),
    ({"universe": "vm", "executable": "x", "vm_memory": "512", "vm_disk": "a:vda:w"}, "vm_type"),
    ({"universe": "vm", "executable": "x", "vm_type": "kvm", "vm_memory": "512"}, "vm_disk"),
    ({"universe": "docker"}, "docker_image"),
    ({"universe": "vanilla"}, "executable"),
    ({"executable": "/bin/true", "MY.Broken": '"unterminated'}, "not a ClassAd expression"),
    ({"executable": "/bin/true", "periodic_remove": "JobStatus =="}, "not a ClassAd expression"),
    ({"executable": "/bin/true", "request_cpus": "two"}, "not an integer"),
])
def test_submit_refuses_a_malformed_description(schedd: ScheddDouble, description: dict[str, str],
                                                why: str) -> None:
    with pytest.raises(htcondor2.HTCondorException, match=why):
        schedd.submit(htcondor2.Submit(description), count=1)
    assert schedd.jobs == {}


def test_submit_takes_only_a_real_submit_object(schedd: ScheddDouble) -> None:
    with pytest.raises(TypeError):
        schedd.submit({"executable": "/bin/true"})  # type: ignore[arg-type]


def test_a_line_break_in_a_value_adds_commands_as_on_a_real_schedd(schedd: ScheddDouble) -> None:
    # htcondor2.Submit serialises a dict as "key = value" lines: this is the
    # injection the submit description builder must make impossible.
    sub = htcondor2.Submit({"executable": "/bin/true", "MY.SWAMP_userid": '"u"\nqueue 3'})
    schedd.submit(sub)
    assert len(schedd.jobs) == 3


def test_query_evaluates_constraints_with_classad2_and_projects(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=1)
    schedd.submit(htcondor2.Submit({"executable": "/bin/true", "MY.SwampdKey": '"k2"'}), count=1)
    found = schedd.query('SwampdKey == "k2"', ["ClusterId", "SwampdKey"])
    assert [(ad["ClusterId"], ad["SwampdKey"]) for ad in found] == [(2, "k2")]
    assert "JobStatus" not in found[0]
    assert schedd.query("SwampdKey =?= undefined") == []


@pytest.mark.parametrize("bad", ["JobStatus ==", 'SwampdKey == "x', "a && (b"])
def test_an_invalid_constraint_is_refused(schedd: ScheddDouble, bad: str) -> None:
    schedd.submit(vanilla(), count=1)
    with pytest.raises(htcondor2.HTCondorException, match="Parse error"):
        schedd.query(bad)
    with pytest.raises(ValueError, match="invalid constraint"):
        schedd.history(bad)
    with pytest.raises(ValueError):
        schedd.act(htcondor2.JobAction.Remove, bad)


def test_remove_of_an_idle_job_goes_straight_to_history_with_its_reason(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=1)
    result = schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("stopped by swampd", 0))
    assert result["TotalSuccess"] == 1
    assert schedd.jobs == {}
    [ad] = schedd.history("ClusterId == 1", ["JobStatus", "RemoveReason"])
    assert (ad["JobStatus"], ad["RemoveReason"]) == (REMOVED, "stopped by swampd")


def test_a_plain_string_reason_is_dropped_as_the_bindings_drop_it(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=1)
    schedd.act(htcondor2.JobAction.Remove, "1.0", reason="this text is lost")
    [ad] = schedd.history("true", ["RemoveReason"])
    assert ad["RemoveReason"] != "this text is lost"


def test_a_running_job_with_graceful_removal_stays_in_x_state_until_it_leaves(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(want_graceful_removal="true", job_max_vacate_time="1200"), count=1)
    schedd.start("1.0")
    schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("stop", 0))
    assert schedd.query("true", ["JobStatus"])[0]["JobStatus"] == REMOVED
    assert schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("again", 0))["TotalBadStatus"] == 1
    schedd.act(htcondor2.JobAction.RemoveX, "1.0", reason=("force", 0))
    assert schedd.jobs == {} and schedd.history("true")[0]["JobStatus"] == REMOVED


def test_vacate_time_ends_a_graceful_removal(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(want_graceful_removal="true", job_max_vacate_time="100"), count=1)
    schedd.start("1.0")
    schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("stop", 0))
    schedd.advance(50)
    assert len(schedd.query()) == 1
    schedd.advance(60)
    assert schedd.query() == []


def test_hold_completion_and_history(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=2)
    schedd.hold("1.0", "VMGAHP_ERR_CRITICAL", 6)
    ad = schedd.query("ProcId == 0", ["JobStatus", "HoldReason", "HoldReasonCode"])[0]
    assert (ad["JobStatus"], ad["HoldReason"], ad["HoldReasonCode"]) == (HELD, "VMGAHP_ERR_CRITICAL", 6)
    schedd.start("1.1")
    schedd.complete("1.1", exit_code=3)
    [done] = schedd.history("ProcId == 1", ["JobStatus", "ExitCode"], match=1)
    assert (done["JobStatus"], done["ExitCode"]) == (COMPLETED, 3)


def test_periodic_remove_is_evaluated_on_the_schedd_clock(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(periodic_remove="JobStatus == 1 && (time() - QDate) > 600"), count=1)
    schedd.advance(599)
    assert len(schedd.query()) == 1
    schedd.advance(2)
    assert schedd.query() == []
    assert "PeriodicRemove" in schedd.history("true", ["RemoveReason"])[0]["RemoveReason"]


def test_allowed_execute_duration_holds_with_code_47(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(allowed_execute_duration="100"), count=1)
    schedd.start("1.0")
    schedd.advance(101)
    ad = schedd.query("true", ["JobStatus", "HoldReasonCode"])[0]
    assert (ad["JobStatus"], ad["HoldReasonCode"]) == (HELD, 47)


def test_a_down_schedd_raises_htcondor_exceptions(schedd: ScheddDouble) -> None:
    schedd.down = True
    for call in (lambda: schedd.query(), lambda: schedd.history("true"),
                 lambda: schedd.submit(vanilla(), count=1),
                 lambda: schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("x", 0))):
        with pytest.raises(htcondor2.HTCondorException):
            call()


def test_generic_ads_expire_after_their_lifetime() -> None:
    collector = CollectorDouble()
    collector.advertise([classad2.ClassAd({"MyType": "Generic", "Name": "a", "ClassAdLifetime": 100, "X": 1}),
                         classad2.ClassAd({"MyType": "Generic", "Name": "b", "X": 2})])
    assert {ad["Name"] for ad in collector.query(htcondor2.AdType.Generic, "X > 0")} == {"a", "b"}
    collector.advance(101)
    assert [ad["Name"] for ad in collector.query(htcondor2.AdType.Any, "X > 0")] == ["b"]
    collector.advance(900)
    assert collector.query(htcondor2.AdType.Any, "true") == []
    with pytest.raises(ValueError):
        collector.query(htcondor2.AdType.Any, "X >")
    with pytest.raises(TypeError):
        collector.advertise([{"MyType": "Generic", "Name": "c"}])  # type: ignore[list-item]
