"""``_ncs.cdb``: NSO's low-level CDB read API, as upgrade code uses it.

In NSO, CDB is read through a socket connected to NSO (``connect``), on which a session is
started (``start_session``/``start_session2``) and paths are read. pyvmd has no such socket: a
CDB session is a read transaction of the server, and each read one request. The socket object
only carries the state: whether it is "connected", its session's transaction, and the current
directory that relative paths start from (``cd``, ``pushd``, ``popd``).

Any object that supports weak references serves as a socket, so ``socket.socket()`` objects that
NSO code creates and passes to ``connect`` work unchanged. :class:`CdbSocket` is the socket that
the VM hands to ``Upgrade.upgrade(cdbsock, trans)``: it is bound to a read transaction that the
server opened for the upgrade and owns, so a session on it uses that transaction instead of
starting one, and ending the session leaves it open.

Paths are NSO keypaths; a list may also be indexed by position (``/ncs:devices/device[0]/name``,
from 0), which CDB alone allows.
"""

import threading
import weakref

from . import ERR_BADSTATE, OPERATIONAL, Value, _join_keypath, _request, error

__all__ = [
    "READ_SOCKET",
    "SUBSCRIPTION_SOCKET",
    "DATA_SOCKET",
    "RUNNING",
    "STARTUP",
    "OPERATIONAL",
    "PRE_COMMIT_RUNNING",
    "LOCK_SESSION",
    "LOCK_REQUEST",
    "LOCK_WAIT",
    "LOCK_PARTIAL",
    "CdbSocket",
    "connect",
    "start_session",
    "start_session2",
    "end_session",
    "get",
    "exists",
    "num_instances",
    "cd",
    "getcwd",
    "pushd",
    "popd",
    "set_namespace",
    "close",
]

# Socket types (connect's `type`).
READ_SOCKET = 0
SUBSCRIPTION_SOCKET = 1
DATA_SOCKET = 2

# Datastores (ConfD's values).
RUNNING = 2
STARTUP = 3
PRE_COMMIT_RUNNING = 6
# OPERATIONAL (4) comes from `_ncs`.

# start_session2 flags. pyvmd's sessions are read transactions, which see one consistent view of
# the data whatever the flags, so the flags are accepted and need no action.
LOCK_SESSION = 1
LOCK_REQUEST = 2
LOCK_WAIT = 4
LOCK_PARTIAL = 8


class CdbSocket:
    """A CDB socket without a connection: it stands for one that is already connected.

    ``CdbSocket(th=n)`` binds it to the server's read transaction ``n`` (the VM does this for an
    upgrade): a session on the running datastore then reads through that transaction, and ending
    the session does not finish it, since the server owns it.
    """

    def __init__(self, th=None):
        self._th = th
        self._closed = False

    def close(self):
        """Ends any session and marks the socket closed (like ``_ncs.cdb.close(sock)``)."""
        if not self._closed:
            close(self)

    def __repr__(self):
        bound = "" if self._th is None else " th=%d" % self._th
        return "<_ncs.cdb.CdbSocket%s%s>" % (bound, " closed" if self._closed else "")


class _State:
    """What pyvmd keeps about one socket."""

    __slots__ = ("connected", "th", "owned", "cwd", "stack")

    def __init__(self, connected):
        self.connected = connected
        self.th = None  # the session's transaction; None without a session
        self.owned = False  # whether end_session must finish it
        self.cwd = "/"
        self.stack = []  # pushd's saved directories


# socket → _State. Weak keys: the state goes with the socket, and NSO code never closes some.
# VMs are multi-threaded, and a WeakKeyDictionary is not safe to change from several threads.
_states = weakref.WeakKeyDictionary()
_states_lock = threading.Lock()


def _state(sock, create=False):
    with _states_lock:
        state = _states.get(sock)
        if state is None:
            if isinstance(sock, CdbSocket):
                # A CdbSocket stands for a connected socket from the start.
                state = _State(connected=not sock._closed)
                _states[sock] = state
            elif create:
                state = _State(connected=False)
                _states[sock] = state
        return state


def _connected(sock):
    state = _state(sock)
    if state is None or not state.connected:
        raise error.Error(ERR_BADSTATE, "the socket is not connected to CDB (call connect first)")
    return state


def _session(sock):
    state = _connected(sock)
    if state.th is None:
        raise error.Error(ERR_BADSTATE, "no CDB session started")
    return state


def connect(sock, type=DATA_SOCKET, ip="127.0.0.1", port=4569, path=None):  # noqa: A002
    """Marks ``sock`` connected to CDB. Nothing is opened: the VM's channel carries the requests.

    ``type``, ``ip``, ``port`` and ``path`` are accepted for NSO compatibility.
    """
    state = _state(sock, create=True)
    state.connected = True
    if isinstance(sock, CdbSocket):
        sock._closed = False


def start_session(sock, db):
    """Starts a session on ``db`` (``RUNNING``, ``OPERATIONAL``, ...)."""
    start_session2(sock, db, 0)


def start_session2(sock, db, flags):
    """Starts a session on ``db``; ``flags`` (``LOCK_*``) are accepted, see the module notes.

    On a :class:`CdbSocket` bound to a transaction, a session on any datastore but
    ``OPERATIONAL`` uses that transaction; an operational session starts a read transaction of
    its own.
    """
    state = _connected(sock)
    if state.th is not None:
        raise error.Error(ERR_BADSTATE, "a CDB session is already started on this socket")
    bound = sock._th if isinstance(sock, CdbSocket) else None
    if bound is not None and db != OPERATIONAL:
        state.th, state.owned = bound, False
    else:
        datastore = "operational" if db == OPERATIONAL else "running"
        answer = _request("trans-start", db=datastore, mode="read")
        state.th, state.owned = answer["th"], True
    state.cwd, state.stack = "/", []


def end_session(sock):
    """Ends the session (the socket stays connected, for another session)."""
    state = _session(sock)
    th, owned = state.th, state.owned
    state.th, state.owned = None, False
    state.cwd, state.stack = "/", []
    if owned:
        _request("trans-finish", th=th)


def _path(state, path):
    return _join_keypath(state.cwd, path)


def get(sock, path):
    """The value of the leaf at ``path``, a :class:`_ncs.Value`; for a leaf-list, a list of
    them. A missing leaf raises ``_ncs.error.Error`` with ``ERR_NOEXISTS``."""
    state = _session(sock)
    value = _request("get-elem", th=state.th, path=_path(state, path))
    if isinstance(value, list):
        return [Value(v) for v in value]
    return Value(value)


def exists(sock, path):
    """Whether ``path`` exists."""
    state = _session(sock)
    return bool(_request("exists", th=state.th, path=_path(state, path)))


def num_instances(sock, path):
    """The number of entries of the list at ``path``."""
    state = _session(sock)
    return int(_request("num-instances", th=state.th, path=_path(state, path)))


def cd(sock, path):
    """Makes ``path`` (absolute, or relative to the current one) the current directory."""
    state = _session(sock)
    state.cwd = _path(state, path)


def getcwd(sock):
    """The current directory, a keypath."""
    return _session(sock).cwd


def pushd(sock, path):
    """Like :func:`cd`, saving the current directory for :func:`popd`."""
    state = _session(sock)
    new = _path(state, path)
    state.stack.append(state.cwd)
    state.cwd = new


def popd(sock):
    """Returns to the directory saved by the last :func:`pushd`."""
    state = _session(sock)
    if not state.stack:
        raise error.Error(ERR_BADSTATE, "popd: the directory stack is empty")
    state.cwd = state.stack.pop()


def set_namespace(sock, hashed_ns):
    """Accepted for NSO compatibility: keypaths name their modules with prefixes here."""


def close(sock):
    """Ends the session if one is open and closes the socket."""
    state = _state(sock)
    try:
        if state is not None and state.th is not None:
            end_session(sock)
    finally:
        if state is not None:
            state.connected = False
        if isinstance(sock, CdbSocket):
            sock._closed = True
        else:
            closer = getattr(sock, "close", None)
            if closer is not None:
                closer()
