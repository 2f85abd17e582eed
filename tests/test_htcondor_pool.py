"""Against a real HTCondor pool: runs when ``CONDOR_CONFIG`` names a pool's configuration.

This is the one test allowed to skip: CI has no pool.  Everything here is
also covered against the double; this test checks the double's assumptions
on the real thing (the submit is accepted, constraints parse on the schedd,
adopt finds the job, the remove reason survives the bindings, history has
the job, generic ads round-trip through the collector).  See README.md,
"HTCondor", for how to run it (a personal condor on one machine is enough).
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from swampd.config import HTCondorConfig, ViewerConfig
from swampd.launchpad.jobs import JobStatus
from swampd.launchpad.launchpad import LaunchPad
from swampd.launchpad.schedulers.htcondor import HTCondorScheduler, LazySchedd, make_collector
from swampd.states import ViewerState
from swampd.store import ViewerRecord
from support.daemon import wait_for


def pool_config() -> str:
    path = os.environ.get("CONDOR_CONFIG", "")
    if not path:
        pytest.skip("CONDOR_CONFIG is not set: this test needs a real HTCondor pool "
                    "(CI has none; see README.md, section HTCondor)")
    if not Path(path).is_file():
        pytest.skip(f"CONDOR_CONFIG={path} is not a file: this test needs a real HTCondor pool "
                    "(see README.md, section HTCondor)")
    return path


def test_submit_adopt_observe_remove_on_a_real_pool(tmp_path: Path) -> None:
    pool_config()
    import htcondor2

    condor = HTCondorConfig(vruntask="/bin/sleep", timeout=60.0,
                            pool=os.environ.get("SWAMPD_TEST_POOL", ""),
                            schedd=os.environ.get("SWAMPD_TEST_SCHEDD", ""))
    viewer = ViewerConfig("CodeDX", platform="process", memory=64, cpus=1)
    jobs_root = tmp_path / "jobs"
    scheduler = HTCondorScheduler(LazySchedd(condor), condor, {"CodeDX": viewer}, jobs_root)
    launchpad = LaunchPad(scheduler, jobs_root, "http://127.0.0.1:8084/")
    project = f"itest-{uuid.uuid4().hex[:8]}"
    record = ViewerRecord(projectid=project, viewer="CodeDX", epoch=1, launch_id=uuid.uuid4().hex,
                          token="t" * 40, apikey=str(uuid.uuid4()), url_uuid=f"proxy-{uuid.uuid4()}",
                          state=int(ViewerState.LAUNCHING), userid="itest-user", viewer_uuid="vi-itest")
    ref = launchpad.submit(record, viewer)
    try:
        assert launchpad.submit(record, viewer) == ref  # adopt, not a second job
        observed = scheduler.observe()
        assert record.launch_id in observed
        [ad] = scheduler.schedd.query(f"SwampdLaunchId == \"{record.launch_id}\"",
                                      ["SWAMP_vrun_execrunuid", "SWAMP_userid", "ViewerJob", "AcctGroup"])
        assert ad["SWAMP_vrun_execrunuid"] == record.execrunid and ad["SWAMP_userid"] == "itest-user"
        assert ad["ViewerJob"] is True and ad["AcctGroup"] == "group_viewer"
        scheduler.remove(record.launch_id, "swampd integration test")
        scheduler.tracked = lambda: {record.launch_id: ref}
        final = wait_for(lambda: (o := scheduler.observe().get(record.launch_id)) and o.finished and o, 120,
                         interval=1.0, what="the removed job to leave the queue")
        assert final.status in (JobStatus.REMOVED, JobStatus.COMPLETED)
        if final.status is JobStatus.REMOVED:
            assert final.reason == "swampd integration test"
    finally:
        scheduler.schedd.act(htcondor2.JobAction.Remove, f"SwampdLaunchId == \"{record.launch_id}\"",
                             reason=("cleanup", 0))

    collector = make_collector(condor)
    from swampd.agentmonitor.ads import to_classad, viewer_ad

    collector.advertise([to_classad(viewer_ad(record, 120, 8443))], "UPDATE_AD_GENERIC", True)
    found = wait_for(lambda: collector.query(htcondor2.AdType.Any,
                                             f"SWAMP_vmu_viewer_instance_uuid == \"vi-itest\" && "
                                             f"Name == \"{record.execrunid}\"",
                                             ["SWAMP_vmu_viewer_state", "SWAMP_vmu_viewer_url_uuid"]), 30)
    assert found[0]["SWAMP_vmu_viewer_state"] == "1"
    assert found[0]["SWAMP_vmu_viewer_url_uuid"] == record.url_uuid
