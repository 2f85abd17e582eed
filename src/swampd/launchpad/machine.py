"""The BOG keys of how a machine runs, shared by every kind's job builder (``vruntask`` reads them)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from swampd.config import DEFAULT_UNIVERSE, MachineConfig
from swampd.jobdir import TOKEN_FILE, bog_file_name
from swampd.launchpad.jobs import JobDescription
from swampd.store.records import RunRecord


def machine_job(record: RunRecord, machine: MachineConfig, platform: str, jobs_root: Path,
                **details: Any) -> JobDescription:
    """The job of the record's current launch as every kind runs it (``vruntask run`` with the BOG and
    the token in the launch's job directory, on ``machine``), with the kind's own ``details``."""
    bog = bog_file_name(record.key)
    return JobDescription(
        kind=record.KIND,
        key=record.key,
        launch_id=record.launch_id,
        epoch=record.epoch,
        job_dir=jobs_root / record.launch_id,
        bog_file=bog,
        token_file=TOKEN_FILE,
        platform=platform,
        universe=machine.universe or DEFAULT_UNIVERSE[platform],
        argv=(sys.executable, "-m", "swampd.cli.vruntask_main", "run", "--bog", bog, "--token-file", TOKEN_FILE),
        memory_mb=machine.memory,
        cpus=machine.cpus,
        image=machine.image,
        **details,
    )


def machine_bog(machine: MachineConfig) -> dict[str, str]:
    """``platform_image`` and the ``swampd_vm_*`` keys: the image, its size and how it boots."""
    return {
        "platform_image": machine.image,
        "swampd_libvirt_uri": machine.libvirt_uri,
        "swampd_vm_domain_type": machine.domain_type,
        "swampd_vm_memory": str(machine.memory),
        "swampd_vm_cpus": str(machine.cpus),
        "swampd_vm_network": machine.network,
        "swampd_vm_kernel": machine.kernel,
        "swampd_vm_initrd": machine.initrd,
        "swampd_vm_cmdline": machine.cmdline,
        "swampd_boot_timeout": f"{machine.boot_timeout:g}",
        "swampd_shutdown_timeout": f"{machine.shutdown_timeout:g}",
        "swampd_output_disk_mib": str(machine.output_disk_mib),
    }
