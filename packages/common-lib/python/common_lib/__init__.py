"""common-lib: helpers shared by other packages (a library package; nothing runs)."""
