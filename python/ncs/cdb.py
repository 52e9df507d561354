"""``ncs.cdb``: the CDB constants and functions, re-exported from ``_ncs.cdb``.

NSO code mixes the two modules freely (``_ncs.cdb.start_session2(sock, ncs.cdb.RUNNING,
ncs.cdb.LOCK_SESSION | ncs.cdb.LOCK_WAIT)``), so both give the same names; see ``_ncs.cdb`` for
how a CDB session maps to a server transaction. NSO's CDB subscribers are not provided.
"""

from _ncs import cdb as _cdb
from _ncs.cdb import *  # noqa: F401,F403  (the same names, by design)

__all__ = list(_cdb.__all__)
