"""shared-b: an example package in the VM shared-vm that uses the library package common-lib."""
