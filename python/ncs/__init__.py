"""pyvmd's implementation of the ``ncs`` Python package that NSO packages import.

Written from NSO's documented behaviour (not copied from NSO). The package is shipped inside the
``pyvmd`` binary and served by an in-memory importer, so ``import ncs`` finds this copy first in a
Python VM, whatever else is on ``sys.path``. Outside a VM (plain ``python3`` with ``python/`` on
the path, e.g. a package's own unit tests) it still imports: the parts that need the VM then do
nothing.

Submodules are imported here so that ``import ncs`` alone gives ``ncs.application.Application``
and friends, as packages expect.
"""

# Result codes of callbacks (ConfD's values).
CONFD_OK = 0
CONFD_ERR = -1
CONFD_EOF = -2
CONFD_DELAYED_RESPONSE = 2
CONFD_ACCUMULATE = 1
CONFD_ALREADY_LOCKED = -4
CONFD_IN_USE = -5

# Datastores (ConfD's values), used as ``db=`` arguments.
NO_DB = 0
CANDIDATE = 1
RUNNING = 2
STARTUP = 3
OPERATIONAL = 4
PRE_COMMIT_RUNNING = 6
INTENDED = 7

# Transaction modes (ncs.maapi.Maapi.start_trans's `rw`).
READ = 1
READ_WRITE = 2

# The library version (see _ncs).
from _ncs import LIB_API_VSN, LIB_API_VSN_STR, LIB_VSN, LIB_VSN_STR  # noqa: E402

from . import log  # noqa: E402  (the constants above must exist before the submodules load)
from . import dp  # noqa: E402
from . import application  # noqa: E402
from . import upgrade  # noqa: E402

# The transaction API is imported on first use (`ncs.maapi...` works without importing it
# first, as in NSO): most VMs never use it, and every VM would otherwise compile it at start.
_LAZY_SUBMODULES = frozenset(("maapi", "maagic", "cdb", "notif"))


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        import importlib

        return importlib.import_module("." + name, __name__)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))

__all__ = [
    "LIB_API_VSN",
    "LIB_API_VSN_STR",
    "LIB_VSN",
    "LIB_VSN_STR",
    "CONFD_OK",
    "CONFD_ERR",
    "CONFD_EOF",
    "CONFD_DELAYED_RESPONSE",
    "CONFD_ACCUMULATE",
    "CONFD_ALREADY_LOCKED",
    "CONFD_IN_USE",
    "NO_DB",
    "CANDIDATE",
    "RUNNING",
    "STARTUP",
    "OPERATIONAL",
    "PRE_COMMIT_RUNNING",
    "INTENDED",
    "READ",
    "READ_WRITE",
    "application",
    "cdb",
    "dp",
    "log",
    "maagic",
    "maapi",
    "notif",
    "upgrade",
]
