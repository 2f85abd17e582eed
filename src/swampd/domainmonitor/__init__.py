"""The hypervisor reaper: destroys viewer VMs whose vruntask is gone or whose launch is over."""
