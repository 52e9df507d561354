"""shared-a: an example package that shares the VM shared-vm with shared-b."""
