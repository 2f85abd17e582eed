"""The assessment kind's job builder: an assessment launch as a BOG and a complete job description.

The BOG is SWAMP's (the keys ``assessment.exec_run_view`` gives, which the
run carries from the moment its inputs were prepared) plus what swampd's
execute node needs: the report identity of this launch, the tool's command
for the process platform, the machine's settings for the vm platform, and
the archives' checksums the node checks again as it copies them in.
"""
from __future__ import annotations

import json
from pathlib import Path

from swampd.config import Config
from swampd.launchpad.jobs import AttributeValue, JobDescription
from swampd.launchpad.machine import machine_bog, machine_job
from swampd.store.records import AssessmentRecord


class AssessmentJobError(ValueError):
    """The run cannot become a job (its tool is not configured); the message says why."""


def results_dir(config: Config) -> Path:
    return Path(config.assessments.results_dir or Path(config.agentmonitor.state_dir) / "results")


def build_assessment_bog(record: AssessmentRecord, config: Config, agentmonitor_url: str,
                         agentmonitor_ca: str = "") -> dict[str, str]:
    runs = config.assessments
    tool = config.tools.get(record.tool)
    if tool is None:
        raise AssessmentJobError(f"tool {record.tool!r} is not configured ([tools.NAME])")
    bog = {key: str(value) for key, value in json.loads(record.bog or "{}").items()}
    bog.update({
        "execrunid": record.execrunid,
        "projectid": record.projectid or bog.get("projectid", ""),
        "userid": record.userid or bog.get("userid", ""),
        "packagepath": record.package_path or bog.get("packagepath", ""),
        "toolname": bog.get("toolname") or tool.swamp_name,
        "tool-version": bog.get("tool-version") or tool.version,
        "toolpath": bog.get("toolpath") or tool.tool_path or "null",
        "resultsfolder": str(results_dir(config)),
        # swampd's keys
        "swampd_agentmonitor_url": agentmonitor_url,
        "swampd_agentmonitor_ca": agentmonitor_ca,
        "swampd_epoch": str(record.epoch),
        "swampd_launch_id": record.launch_id,
        "swampd_platform": runs.platform,
        "swampd_ready_timeout": f"{runs.boot_timeout:g}",
        "swampd_tool": tool.name,
        "swampd_tool_command": json.dumps(list(tool.command)),
        "swampd_runsh": tool.runsh,
        "swampd_run_timeout": f"{tool.run_timeout:g}",
        "swampd_package_sha512": record.package_sha512,
        "swampd_tool_sha512": record.tool_sha512,
        **machine_bog(runs),
    })
    return bog


def assessment_attributes(record: AssessmentRecord) -> dict[str, AttributeValue]:
    """SWAMP's attributes of an assessment job (lifecycle §5.4); no viewer instance."""
    return {
        f"SWAMP_{record.KIND}_execrunuid": record.execrunid,
        "SWAMP_userid": record.userid,
        "SWAMP_projectid": record.projectid,
        "ViewerJob": False,
    }


def assessment_job(record: AssessmentRecord, config: Config, jobs_root: Path) -> JobDescription:
    runs = config.assessments
    tool = config.tools.get(record.tool)
    if tool is None:
        raise AssessmentJobError(f"tool {record.tool!r} is not configured ([tools.NAME])")
    return machine_job(
        record, runs, runs.platform, jobs_root,
        attributes=assessment_attributes(record),
        queue_timeout=runs.queue_timeout,
        max_runtime=tool.run_timeout + runs.run_margin,
        accounting_group=runs.accounting_group,
        priority=runs.priority,
        concurrency_limits=tool.concurrency_limits,
    )
