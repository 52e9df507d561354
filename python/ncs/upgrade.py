"""``ncs.upgrade``: the base class of ``upgrade`` components.

An upgrade component runs in a separate, short-lived VM when a package's version changes: its
class is instantiated with no arguments and ``upgrade(self, cdbsock, trans)`` is called; a return
of ``True`` or ``None`` means success.
"""

import logging

from . import log as _log

__all__ = ["Upgrade"]


class Upgrade:
    """Base class for upgrade components; override :meth:`upgrade`."""

    def __init__(self, *args, **kwds):
        self.log = _log.Log(logging.getLogger(type(self).__module__))

    def upgrade(self, cdbsock, trans):
        """Performs the upgrade; return ``True`` (or ``None``) on success, ``False`` on failure."""
        raise NotImplementedError("%s must override upgrade()" % type(self).__name__)
