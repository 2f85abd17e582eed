"""The BOG keys of how a machine runs, shared by every kind's job builder (``vruntask`` reads them)."""
from __future__ import annotations

from swampd.config import MachineConfig


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
