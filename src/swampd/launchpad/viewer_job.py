"""The viewer kind's job builder: a viewer launch as a BOG and a complete job description.

The BOG keeps SWAMP's keys (lifecycle §4.5), so viewer images and SWAMP's
tools read ours, plus what swampd's execute-node agent needs; it is the
contract with ``vruntask``.  The job description is what the scheduler
receives: nothing in it sends a backend back to the viewer configuration.
"""
from __future__ import annotations

import json
from pathlib import Path

from swampd.config import ViewerConfig
from swampd.launchpad.jobs import AttributeValue, JobDescription
from swampd.launchpad.machine import machine_bog, machine_job
from swampd.store.records import ViewerRecord


def build_viewer_bog(record: ViewerRecord, viewer: ViewerConfig, agentmonitor_url: str,
                     agentmonitor_ca: str = "", viewer_store: str = "") -> dict[str, str]:
    """The viewer BOG: SWAMP's keys plus what swampd's vruntask needs."""
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
        **machine_bog(viewer),
        "swampd_props_file": viewer.props_file,
        "swampd_viewer_store": viewer.viewer_store or viewer_store,
    }


def viewer_attributes(record: ViewerRecord) -> dict[str, AttributeValue]:
    """The job attributes SWAMP's tools, its libvirt hook and our adopt logic look for."""
    return {
        "SWAMP_vrun_execrunuid": record.execrunid,
        "SWAMP_userid": record.userid,
        "SWAMP_projectid": record.projectid,
        "SWAMP_viewerinstanceid": record.viewer_uuid,
        "ViewerJob": True,
    }


def viewer_job(record: ViewerRecord, viewer: ViewerConfig, jobs_root: Path) -> JobDescription:
    """The complete job of the record's current launch."""
    return machine_job(record, viewer, viewer.platform, jobs_root, attributes=viewer_attributes(record),
                       queue_timeout=viewer.ready_timeout, max_runtime=viewer.max_lifetime)
