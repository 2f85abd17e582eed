"""LaunchPad: turns a claimed launch into a scheduler job.

It writes the job's BOG and report token into the job directory and asks the
scheduler to run ``vruntask run`` there.  Submitting is idempotent by launch
id: the scheduler adopts a job that already exists, so LaunchPad may be
asked to submit the same launch again after a crash.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from swampd.config import ViewerConfig
from swampd.bog import format_bog, write_private
from swampd.jobdir import TOKEN_FILE, bog_file_name
from swampd.launchpad.jobs import JobSpec, Scheduler
from swampd.store.records import ViewerRecord


def build_viewer_bog(record: ViewerRecord, viewer: ViewerConfig, agentmonitor_url: str,
                     agentmonitor_ca: str = "") -> dict[str, str]:
    """The viewer BOG: SWAMP's keys (lifecycle §4.5) plus what swampd's vruntask needs."""
    platform_type = "DC" if viewer.platform == "docker" else "VM"
    return {
        # SWAMP's keys
        "apikey": record.apikey,
        "db_path": record.db_path,
        "db_checksum": record.db_checksum,
        "execrunid": record.execrunid,
        "platform_type": platform_type,
        "projectid": record.projectid,
        "urluuid": record.url_uuid,
        "use_baked_viewer": "1",
        "use_docker_universe": "1" if viewer.platform == "docker" else "",
        "userid": record.userid,
        "viewer": record.viewer,
        "viewer_uuid": record.viewer_uuid,
        "vmhostname": "vswamp",
        # swampd's keys
        "swampd_agentmonitor_url": agentmonitor_url,
        "swampd_agentmonitor_ca": agentmonitor_ca,
        "swampd_epoch": str(record.epoch),
        "swampd_launch_id": record.launch_id,
        "swampd_platform": viewer.platform,
        "swampd_ready_timeout": f"{viewer.ready_timeout:g}",
        "swampd_probe_path": viewer.probe_path,
        "swampd_viewer_command": json.dumps(list(viewer.command)),
        # the vm platform's keys (vruntask prepare/run/finish)
        "platform_image": viewer.image,
        "swampd_libvirt_uri": viewer.libvirt_uri,
        "swampd_vm_domain_type": viewer.domain_type,
        "swampd_vm_memory": str(viewer.memory),
        "swampd_vm_cpus": str(viewer.cpus),
        "swampd_vm_network": viewer.network,
        "swampd_vm_kernel": viewer.kernel,
        "swampd_vm_initrd": viewer.initrd,
        "swampd_vm_cmdline": viewer.cmdline,
        "swampd_boot_timeout": f"{viewer.boot_timeout:g}",
        "swampd_shutdown_timeout": f"{viewer.shutdown_timeout:g}",
        "swampd_output_disk_mib": str(viewer.output_disk_mib),
        "swampd_props_file": viewer.props_file,
        "swampd_viewer_store": viewer.viewer_store,
    }


def job_attributes(record: ViewerRecord) -> dict[str, str]:
    """The job attributes SWAMP's tools and our adopt logic look for."""
    return {
        "SWAMP_vrun_execrunuid": record.execrunid,
        "SWAMP_userid": record.userid,
        "SWAMP_projectid": record.projectid,
        "SWAMP_viewerinstanceid": record.viewer_uuid,
        "SwampdKey": record.execrunid,
        "SwampdLaunchId": record.launch_id,
        "SwampdEpoch": str(record.epoch),
    }


class LaunchPad:
    """Prepares job directories and hands jobs to the scheduler."""

    def __init__(self, scheduler: Scheduler, jobs_root: Path, agentmonitor_url: str,
                 agentmonitor_ca: str = "") -> None:
        """``agentmonitor_ca``: the CA bundle execute nodes verify an https daemon with."""
        self.scheduler = scheduler
        self.jobs_root = Path(jobs_root)
        self.agentmonitor_url = agentmonitor_url
        self.agentmonitor_ca = agentmonitor_ca

    def job_dir(self, launch_id: str) -> Path:
        return self.jobs_root / launch_id

    def submit(self, record: ViewerRecord, viewer: ViewerConfig) -> str:
        """Write the BOG and token (0600) and submit; adopts an existing job."""
        job_dir = self.job_dir(record.launch_id)
        job_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        bog = build_viewer_bog(record, viewer, self.agentmonitor_url, self.agentmonitor_ca)
        if not bog.get("swampd_viewer_store"):  # single host: saved databases live beside the state
            bog["swampd_viewer_store"] = str(self.jobs_root.parent / "SCAProjects")
        write_private(job_dir / bog_file_name(record.execrunid), format_bog(bog))
        write_private(job_dir / TOKEN_FILE, record.token + "\n")
        argv = (sys.executable, "-m", "swampd.cli.vruntask_main", "run",
                "--bog", bog_file_name(record.execrunid), "--token-file", TOKEN_FILE)
        spec = JobSpec(record.launch_id, record.execrunid, job_dir, argv, viewer.platform, job_attributes(record))
        return self.scheduler.submit(spec)
