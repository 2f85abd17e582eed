"""The HTCondor double is honest: it refuses what a schedd refuses and keeps HTCondor's semantics."""
from __future__ import annotations

import classad2
import htcondor2
import pytest

from condor_double import COMPLETED, HELD, IDLE, REMOVED, CollectorDouble, ScheddDouble, format_time_short


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
    # As a real schedd stores it: the reason, then who asked (the pool tests show it).
    assert (ad["JobStatus"], ad["RemoveReason"]) == (REMOVED, "stopped by swampd (by user swampd)")


def test_a_remove_reason_names_who_acted_root_acting_as_condor() -> None:
    schedd = ScheddDouble(owner="condoruser", user="condor")
    schedd.submit(vanilla(), count=1)
    schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("root removes", 0))
    [ad] = schedd.history("true", ["Owner", "RemoveReason"])
    assert (ad["Owner"], ad["RemoveReason"]) == ("condoruser", "root removes (by user condor)")


def test_a_plain_string_reason_is_dropped_as_the_bindings_drop_it(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=1)
    schedd.act(htcondor2.JobAction.Remove, "1.0", reason="this text is lost")
    [ad] = schedd.history("true", [])
    assert "RemoveReason" not in ad  # not a default text: no RemoveReason at all


def test_no_reason_is_the_bindings_default_text(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=1)
    schedd.act(htcondor2.JobAction.Remove, "1.0")
    [ad] = schedd.history("true", ["RemoveReason"])
    assert ad["RemoveReason"] == "Python-initiated action (by user swampd)"


def test_a_users_hold_is_code_1_with_the_tuples_code_as_subcode_and_release_keeps_it_as_last(
        schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=3)
    schedd.act(htcondor2.JobAction.Hold, "1.0", reason=("coded hold", 7))
    schedd.act(htcondor2.JobAction.Hold, "1.1", reason="plain hold")
    schedd.act(htcondor2.JobAction.Hold, "1.2")
    held = schedd.query("true", ["HoldReason", "HoldReasonCode", "HoldReasonSubCode"])
    assert [(a["HoldReason"], a["HoldReasonCode"], a["HoldReasonSubCode"]) for a in held] == [
        ("coded hold (by user swampd)", 1, 7), ("", 1, 0), ("Python-initiated action (by user swampd)", 1, 0)]
    schedd.act(htcondor2.JobAction.Release, "1.0")
    ad = schedd.ad("1.0")
    assert ad["JobStatus"] == IDLE and "HoldReason" not in ad
    assert (ad["LastHoldReason"], ad["LastHoldReasonCode"]) == ("coded hold (by user swampd)", 1)
    assert ad["ReleaseReason"] == "Python-initiated action (by user swampd)"


def test_removing_a_held_job_keeps_its_hold_only_as_last_hold(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=1)
    schedd.hold("1.0", "Error from slot1@exec1: VMGAHP_ERR_CRITICAL", 6, 2)
    schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("held too long", 0))
    [ad] = schedd.history("true", [])
    assert "HoldReason" not in ad and "HoldReasonCode" not in ad
    assert (ad["LastHoldReason"], ad["LastHoldReasonCode"], ad["LastHoldReasonSubCode"]) == (
        "Error from slot1@exec1: VMGAHP_ERR_CRITICAL", 6, 2)


def test_history_of_removed_and_completed_jobs_has_what_a_schedd_writes(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(want_graceful_removal="true"), count=3)
    schedd.start("1.0")
    schedd.complete("1.0", exit_code=3)
    schedd.start("1.1")
    schedd.act(htcondor2.JobAction.Remove, "1.1", reason=("stop", 0))
    schedd.vacated("1.1", exit_signal=15)
    schedd.act(htcondor2.JobAction.Remove, "1.2", reason=("cancel", 0))  # idle: leaves at once
    done, killed, cancelled = (schedd.history(f"ProcId == {n}", [])[0] for n in range(3))
    assert done["JobStatus"] == COMPLETED and done["ExitCode"] == 3 and "CompletionDate" in done
    assert "RemoveReason" not in done and done["ExitBySignal"] is False
    for removed in (killed, cancelled):
        assert removed["JobStatus"] == REMOVED and "ExitCode" not in removed and "CompletionDate" not in removed
    assert (killed["ExitBySignal"], killed["ExitSignal"]) == (True, 15)
    assert cancelled["ExitBySignal"] is False and "ExitSignal" not in cancelled


def test_removex_replaces_the_remove_reason(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(want_graceful_removal="true", job_max_vacate_time="60"), count=1)
    schedd.start("1.0")
    schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("will force", 0))
    schedd.act(htcondor2.JobAction.RemoveX, "1.0", reason=("forced", 0))
    [ad] = schedd.history("true", ["RemoveReason", "JobStatus"])
    assert (ad["JobStatus"], ad["RemoveReason"]) == (REMOVED, "forced (by user swampd)")


def test_a_start_counts_in_jobruncount_at_once_and_in_numjobstarts_with_the_shadows_update(
        schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(), count=1)
    schedd.start("1.0")
    ad = schedd.query("true", ["JobRunCount", "NumJobStarts"])[0]
    assert (ad["JobRunCount"], ad["NumJobStarts"]) == (1, 0)
    schedd.advance(schedd.shadow_update_interval)
    assert schedd.query("true", ["NumJobStarts"])[0]["NumJobStarts"] == 1


def test_attribute_types_come_back_as_given(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(**{"+ViewerJob": "true", "MY.SwampdEpoch": "3"}), count=1)
    [ad] = schedd.query("true", ["ViewerJob", "SwampdEpoch", "SwampdKey"])
    assert ad["ViewerJob"] is True and type(ad["SwampdEpoch"]) is int and ad["SwampdEpoch"] == 3
    assert ad["SwampdKey"] == "k1"


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
    schedd.submit(vanilla(allowed_execute_duration="5"), count=1)
    schedd.start("1.0")
    schedd.advance(6)
    ad = schedd.query("true", ["JobStatus", "HoldReason", "HoldReasonCode", "HoldReasonSubCode"])[0]
    assert (ad["JobStatus"], ad["HoldReasonCode"], ad["HoldReasonSubCode"]) == (HELD, 47, 0)
    assert ad["HoldReason"] == "The job exceeded allowed execute duration of 00:05"  # as the pool wrote it


def test_allowed_job_duration_holds_with_code_46(schedd: ScheddDouble) -> None:
    schedd.submit(vanilla(allowed_job_duration="5"), count=1)
    schedd.start("1.0")
    schedd.advance(6)
    ad = schedd.query("true", ["HoldReason", "HoldReasonCode"])[0]
    assert (ad["HoldReasonCode"], ad["HoldReason"]) == (46, "The job exceeded allowed job duration of 00:05")


@pytest.mark.parametrize("seconds, shown", [(5, "00:05"), (65, "01:05"), (72000, "20:00:00"),
                                            (259200, "3+00:00:00")])
def test_durations_are_written_as_htcondor_writes_them(seconds: int, shown: str) -> None:
    assert format_time_short(seconds) == shown


def test_periodic_hold_is_code_3_with_the_expression_or_the_given_reason(schedd: ScheddDouble) -> None:
    policy = "JobStatus == 2 && (time() - EnteredCurrentStatus) > 3"
    schedd.submit(vanilla(periodic_hold=policy), count=1)
    schedd.submit(vanilla(periodic_hold="JobStatus == 2", periodic_hold_reason='"swampd says hold"',
                          periodic_hold_subcode="42"), count=1)
    schedd.start("1.0")
    schedd.advance(2)
    assert schedd.ad("1.0")["JobStatus"] == 2
    schedd.start("2.0")
    schedd.advance(2)
    first, second = schedd.query("true", ["HoldReason", "HoldReasonCode", "HoldReasonSubCode"])
    assert (first["HoldReasonCode"], first["HoldReasonSubCode"]) == (3, 0)
    assert first["HoldReason"] == f"The job attribute PeriodicHold expression '{policy}' evaluated to TRUE"
    assert (second["HoldReason"], second["HoldReasonCode"], second["HoldReasonSubCode"]) == (
        "swampd says hold", 3, 42)


def test_a_down_schedd_raises_htcondor_exceptions(schedd: ScheddDouble) -> None:
    schedd.down = True
    for call, message in ((lambda: schedd.query(), "Failed to fetch ads from schedd"),
                          (lambda: schedd.history("true"), "Failed to connect to <"),
                          (lambda: schedd.submit(vanilla(), count=1), "Failed to connect to schedd"),
                          (lambda: schedd.act(htcondor2.JobAction.Remove, "1.0", reason=("x", 0)),
                           "Error when performing action on the schedd."),
                          (schedd.locate, "Unable to locate local daemon.")):
        with pytest.raises(htcondor2.HTCondorException, match=message):
            call()


def test_a_restarted_schedd_has_a_new_port_and_an_old_handle_keeps_failing(schedd: ScheddDouble) -> None:
    handle = schedd.locate()
    handle.submit(vanilla(), count=1)
    before = schedd.address
    schedd.restart()
    assert schedd.address != before
    with pytest.raises(htcondor2.HTCondorException, match="Failed to connect"):
        handle.query("true", ["ClusterId"])
    with pytest.raises(htcondor2.HTCondorException):
        handle.act(htcondor2.JobAction.Remove, "1.0", reason=("x", 0))
    [ad] = schedd.locate().query("true", ["ClusterId"])  # located again: the queue survived the restart
    assert ad["ClusterId"] == 1


def test_the_collector_refuses_ads_of_a_user_without_daemon_authorization() -> None:
    collector = CollectorDouble(user="swampd")  # the packaged security: only condor may advertise
    ad = classad2.ClassAd({"MyType": "Generic", "Name": "vrun_p_CodeDX"})
    with pytest.raises(htcondor2.HTCondorException, match="Failed to advertise to collector."):
        collector.advertise([ad], "UPDATE_AD_GENERIC", True)
    assert collector.query(htcondor2.AdType.Any, "true") == []  # it still answers queries
    assert "access level DAEMON" in collector.denied[-1] and "UPDATE_AD_GENERIC" in collector.denied[-1]
    collector.allow_daemon.add("swampd")  # COLLECTOR.ALLOW_DAEMON = $(ALLOW_DAEMON) swampd@$(UID_DOMAIN)
    collector.advertise([ad], "UPDATE_AD_GENERIC", True)
    assert collector.viewer("vrun_p_CodeDX") is not None


def test_a_down_collector_fails_advertise_the_same_way_and_queries_too() -> None:
    collector = CollectorDouble(allow_daemon=("swampd",))
    collector.down = True
    with pytest.raises(htcondor2.HTCondorException, match="Failed to advertise to collector."):
        collector.advertise([classad2.ClassAd({"MyType": "Generic", "Name": "a"})])
    with pytest.raises(htcondor2.HTCondorException, match="Failed communication with collector."):
        collector.query(htcondor2.AdType.Collector, "true", ["Name"])


def test_generic_ads_expire_after_their_lifetime() -> None:
    collector = CollectorDouble(user="condor")
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
