"""``ncs.maapi``: transactions on the server's data, as NSO's MAAPI offers them.

Written from NSO's documented behaviour (not copied from NSO). In NSO, :class:`Maapi` is a socket
to NSO on which a user session and transactions are started. pyvmd has no socket: every
operation is one request to the server over the VM's channel (``_ncs._request``), and a
transaction is the server's handle ``th``. What a :class:`Maapi` keeps is local: the user session
and the transactions it started, so that ``close()`` finishes them and
``ncs.maagic.get_root(maapi)`` finds the one open.

Access control (RFC 8341) applies as in NSO: a transaction of a user session runs with that
user's rights (what they may not read is not there, a change they may not make fails at
``apply()`` with ``ERR_ACCESS_DENIED``), unless the session's context is ``'system'``, which is
never checked; the groups a session names count besides the user's ``/nacm`` groups. A
transaction started without a user session in the thread of an action callback runs with the
rights of the user who invoked the action; elsewhere, with the VM's own (unchecked).

Usual use::

    with ncs.maapi.single_write_trans('admin', 'system') as t:
        t.set_elem('10.0.0.1', '/ncs:devices/device{ce0}/address')
        t.apply()

Errors are ``_ncs.error.Error`` with ConfD's error numbers (``_ncs.ERR_NOEXISTS``, ...).
Outside a VM every operation raises one; importing this module works anywhere.
"""

import contextlib
import decimal
import threading

import _ncs
from _ncs import error as _error

__all__ = [
    "Maapi",
    "Session",
    "FLAG_CONFIG_CACHE_ONLY",
    "FLAG_CONFIG_ONLY",
    "FLAG_DELAYED_WHEN",
    "FLAG_EMIT_PARENTS",
    "FLAG_HIDE_ALL_HIDEGROUPS",
    "FLAG_HIDE_INACTIVE",
    "FLAG_HINT_BULK",
    "FLAG_NO_CONFIG_CACHE",
    "FLAG_NO_DEFAULTS",
    "FLAG_SKIP_SUBSCRIBERS",
    "Transaction",
    "single_read_trans",
    "single_write_trans",
]

# Transaction flags (``flags=`` of start_trans and friends). pyvmd acts on FLAG_NO_DEFAULTS
# (a leaf that is not set reads as a ``C_DEFAULT`` value); the others are accepted.
FLAG_HINT_BULK = 1 << 0
FLAG_NO_DEFAULTS = 1 << 1
FLAG_CONFIG_ONLY = 1 << 2
FLAG_HIDE_INACTIVE = 1 << 3
FLAG_DELAYED_WHEN = 1 << 6
FLAG_NO_CONFIG_CACHE = 1 << 7
FLAG_CONFIG_CACHE_ONLY = 1 << 8
FLAG_HIDE_ALL_HIDEGROUPS = 1 << 9
FLAG_SKIP_SUBSCRIBERS = 1 << 10
FLAG_EMIT_PARENTS = 1 << 11

_DATASTORES = {_ncs.RUNNING: "running", _ncs.OPERATIONAL: "operational"}
_DATASTORE_NAMES = {_ncs.CANDIDATE: "candidate", _ncs.STARTUP: "startup"}


def _datastore(db):
    """The server's name of datastore ``db``; the others do not exist in pyvmd."""
    name = _DATASTORES.get(db)
    if name is None:
        raise _error.Error(
            _ncs.ERR_NOEXISTS,
            "datastore %s is not available in pyvmd (only RUNNING and OPERATIONAL)"
            % _DATASTORE_NAMES.get(db, db))
    return name


def _to_text(value):
    """The string form of a value to write: NSO's canonical form for Python's bools and
    numbers, each element of a list or tuple (a leaf-list), ``str()`` of anything else."""
    if isinstance(value, (list, tuple)):
        return [_to_text(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Fixed notation: str(1e-07) is '1e-07', which a decimal64 does not accept.
        return format(decimal.Decimal(repr(value)), "f")
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


class Maapi:
    """A connection to the server's transaction API (no real socket: see the module notes).

    ``Maapi(ip='127.0.0.1', port=_ncs.NCS_PORT, path=None, load_schemas=True, msock=None)``:
    the arguments are accepted for NSO compatibility and ignored. A context manager: leaving it
    calls :meth:`close`.
    """

    def __init__(self, ip="127.0.0.1", port=_ncs.NCS_PORT, path=None, load_schemas=True,
                 msock=None):
        self.ip = ip
        self.port = port
        self.path = path
        self.user = None
        self.context = None
        self.groups = []
        self._lock = threading.Lock()
        self._transactions = []  # its transactions not yet finished

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, tb):
        self.close()

    def __repr__(self):
        return "<ncs.maapi.Maapi user=%r context=%r>" % (self.user, self.context)

    def start_user_session(self, user, context, groups=(), src_ip="127.0.0.1", src_port=0,
                           proto=_ncs.PROTO_TCP, vendor=None, product=None, version=None,
                           client_id=None):
        """Starts a user session: the transactions started from now on run with ``user``'s
        rights, plus those of ``groups`` (none are checked for the context ``'system'``)."""
        self.user = user
        self.context = context
        self.groups = list(groups or ())

    def end_user_session(self):
        """Ends the user session."""
        self.user = self.context = None
        self.groups = []

    def start_read_trans(self, db=_ncs.RUNNING, usid=0, flags=0, vendor=None, product=None,
                         version=None, client_id=None):
        """Starts a read transaction on ``db`` and returns it (a :class:`Transaction`)."""
        return Transaction(self, rw=_ncs.READ, db=db, flags=flags)

    def start_write_trans(self, db=_ncs.RUNNING, usid=0, flags=0, vendor=None, product=None,
                          version=None, client_id=None):
        """Starts a read-write transaction on ``db`` and returns it."""
        return Transaction(self, rw=_ncs.READ_WRITE, db=db, flags=flags)

    def start_trans(self, rw, db=_ncs.RUNNING, usid=0, flags=0, vendor=None, product=None,
                    version=None, client_id=None):
        """Starts a transaction, ``rw`` being ``ncs.READ`` or ``ncs.READ_WRITE``."""
        return Transaction(self, rw=rw, db=db, flags=flags)

    def start_trans_in_trans(self, readwrite, usid, thandle, flags=0, vendor=None,
                             product=None, version=None, client_id=None):
        """A transaction in the transaction ``thandle`` (its ``th``, or a Transaction): it
        reads what that one holds, its uncommitted changes included, and ``apply()`` moves its
        changes into that one instead of committing them."""
        parent = getattr(thandle, "th", thandle)
        return Transaction(self, rw=readwrite, flags=flags, _parent=parent)

    def attach(self, ctx_or_th, hashed_ns=0, usid=0):
        """The transaction of a callback, as NSO's ``attach``: ``ctx_or_th`` is the callback's
        ``tctx`` (or its ``th``). Returns a :class:`Transaction` on it; the server owns it, so
        :meth:`detach` and :meth:`close` leave it open."""
        th = getattr(ctx_or_th, "th", ctx_or_th)
        rw = getattr(ctx_or_th, "mode", _ncs.READ_WRITE)
        return Transaction(self, th=th, rw=rw)

    def attach2(self, hashed_ns, usid, th):
        """``attach`` by transaction handle (NSO's ``attach2``)."""
        return self.attach(th)

    def detach(self, ctx_or_th):
        """Stops using an attached transaction (it stays open: the server owns it)."""
        th = getattr(ctx_or_th, "th", ctx_or_th)
        for trans in self._open_transactions():
            if trans.th == th:
                trans.finish()

    def detach2(self, th):
        """``detach`` by transaction handle."""
        self.detach(th)

    def close(self):
        """Finishes the transactions started here that are still open (not those the server
        owns), and ends the user session."""
        with self._lock:
            transactions = list(self._transactions)
        for trans in transactions:
            trans.finish()
        self.end_user_session()

    # Bookkeeping for Transaction and ncs.maagic.

    def _add(self, trans):
        with self._lock:
            self._transactions.append(trans)

    def _remove(self, trans):
        with self._lock:
            if trans in self._transactions:
                self._transactions.remove(trans)

    def _open_transactions(self):
        with self._lock:
            return list(self._transactions)


class Session:
    """A user session as a context manager: ``with Session(maapi, 'admin', 'system'):``.

    The session starts at construction and ends on leaving the ``with`` block.
    """

    def __init__(self, maapi, user, context, groups=(), src_ip="127.0.0.1", src_port=0,
                 proto=_ncs.PROTO_TCP, vendor=None, product=None, version=None,
                 client_id=None):
        self.maapi = maapi
        maapi.start_user_session(user, context, groups, src_ip, src_port, proto, vendor,
                                 product, version, client_id)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, tb):
        self.close()

    def close(self):
        """Ends the user session."""
        self.maapi.end_user_session()


def _session_of(maapi):
    """The user session a new transaction of ``maapi`` runs in, as the server takes it: the
    Maapi's own, else that of the action callback running in this thread, else None (the VM's
    own rights)."""
    if maapi.user is not None:
        return {"user": maapi.user, "context": maapi.context or "",
                "groups": [str(g) for g in maapi.groups]}
    from . import _vm

    caller = _vm.current_caller()
    if caller is None:
        return None
    return {"user": caller.username, "context": caller.context, "groups": []}


class Transaction:
    """A transaction: the server's handle ``th``, and ``maapi``, the :class:`Maapi` it belongs to.

    ``Transaction(maapi, th=None, rw=None, db=RUNNING, ...)``: without ``th``, a transaction is
    started on ``db`` (read-write if ``rw`` is ``ncs.READ_WRITE``, else read). With ``th``, the
    object wraps a transaction that already exists, for instance the one the server hands to an
    upgrade; the server owns that one, so :meth:`finish` leaves it open.

    Paths are NSO keypaths, one string each. A context manager: leaving it finishes the
    transaction (without applying it: call :meth:`apply` for that).
    """

    def __init__(self, maapi, th=None, rw=None, db=_ncs.RUNNING, usid=0, flags=0, vendor=None,
                 product=None, version=None, client_id=None, _parent=None):
        if maapi is None:
            maapi = Maapi()
        self.maapi = maapi
        self.db = db
        if th is None:
            self.rw = _ncs.READ_WRITE if rw == _ncs.READ_WRITE else _ncs.READ
            mode = "write" if self.rw == _ncs.READ_WRITE else "read"
            args = {"db": _datastore(db), "mode": mode}
            if flags & FLAG_NO_DEFAULTS:
                args["no-defaults"] = True
            if _parent is not None:
                args["parent"] = _parent
            session = _session_of(maapi)
            if session is not None:
                args["session"] = session
            answer = _ncs._request("trans-start", **args)
            self.th = answer["th"]
            self._owned = True
        else:
            self.rw = rw
            self.th = th
            self._owned = False
        self._finished = False
        # Writes sent without waiting for their answers (see _write_behind).
        self._unanswered = []
        self._write_behind = False
        # Tracked by the Maapi either way, so that ncs.maagic.get_root(maapi) finds it.
        maapi._add(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, tb):
        self.finish()

    def __repr__(self):
        return "<ncs.maapi.Transaction th=%s>" % self.th

    def _request(self, op, **args):
        if self._finished:
            raise _error.Error(_ncs.ERR_BADSTATE, "the transaction is finished")
        self._flush()
        return _ncs._request(op, th=self.th, **args)

    # Write-behind (pyvmd's own, for the transaction of a service callback): a write whose only
    # possible errors are real ones (a bad path or value) is sent without waiting for its
    # answer, and the answers are collected at the next read, at apply, or when the callback
    # returns; the first error is raised then. A cb_create that writes many nodes thus costs a
    # run of messages instead of a round trip per node.
    _MAX_UNANSWERED = 512

    def _write(self, op, **args):
        if self._finished:
            raise _error.Error(_ncs.ERR_BADSTATE, "the transaction is finished")
        if not self._write_behind:
            return _ncs._request(op, th=self.th, **args)
        self._unanswered.append(_ncs._send(op, th=self.th, **args))
        if len(self._unanswered) >= self._MAX_UNANSWERED:
            self._flush()
        return None

    def _flush(self):
        """Collects the answers of the writes sent without waiting; raises the first error."""
        if not self._unanswered:
            return
        sent, self._unanswered = self._unanswered, []
        first = None
        for request in sent:
            try:
                _ncs._collect(request)
            except _error.Error as exc:
                if first is None:
                    first = exc
        if first is not None:
            raise first

    def get_elem(self, path):
        """The value of the leaf at ``path``, a ``_ncs.Value`` (for a leaf-list, a list of
        them). A missing leaf raises ``_ncs.error.Error`` with ``ERR_NOEXISTS``."""
        value = self._request("get-elem", path=path)
        if isinstance(value, list):
            return [_ncs.Value(v) for v in value]
        if isinstance(value, dict):  # FLAG_NO_DEFAULTS: a leaf that is not set
            return _ncs.Value(value["default"], _ncs.C_DEFAULT)
        return _ncs.Value(value)

    def set_elem(self, value, path):
        """Sets the leaf at ``path`` to ``value``: a ``_ncs.Value``, a string, a number, a bool
        (``"true"``/``"false"``), or for a leaf-list a list of those, which replaces it."""
        self._write("set-elem", path=path, value=_to_text(value))

    def set_elem2(self, strval, path):
        """Sets the leaf at ``path`` from the string ``strval``."""
        self._write("set-elem", path=path, value=str(strval))

    def create(self, path):
        """Creates a list entry (with its keys), presence container, empty leaf or leaf-list
        entry (``/x/ll{value}``); ``ERR_ALREADY_EXISTS`` if it exists."""
        self._request("create", path=path)

    def safe_create(self, path):
        """Like :meth:`create`, without an error when it exists."""
        self._write("create", path=path, safe=True)

    def delete(self, path):
        """Deletes what ``path`` names; ``ERR_NOEXISTS`` if it does not exist."""
        self._request("delete", path=path)

    def safe_delete(self, path):
        """Like :meth:`delete`, without an error when it does not exist."""
        self._write("delete", path=path, safe=True)

    def exists(self, path):
        """Whether ``path`` exists."""
        return bool(self._request("exists", path=path))

    def num_instances(self, path):
        """The number of entries of the list at ``path``."""
        return int(self._request("num-instances", path=path))

    def _keys(self, path):
        """The keys of every entry of the list at ``path``, in order: a list of lists of
        strings (for ``ncs.maagic``; not in NSO's API)."""
        return [list(k) for k in self._request("keys", path=path)]

    def apply(self, keep_open=True, flags=0):
        """Commits the changes to running; with ``keep_open=False`` the transaction is then
        finished. ``flags`` is accepted for NSO compatibility. Not allowed inside a service or
        validation callback, whose commit is still in progress: a service writes through its
        ``root`` instead."""
        from . import _vm

        if _vm.in_commit_callback():
            raise _error.Error(
                _ncs.ERR_BADSTATE,
                "cannot apply a transaction inside a service or validation callback: its "
                "commit is in progress (a service writes through its root or service node)")
        self._request("apply")
        if not keep_open:
            self.finish()

    def validate(self, unlock=True, forcevalidation=False):
        """Validates the transaction's changes; an invalid one raises ``_ncs.error.Error``."""
        self._request("validate")

    def finish(self):
        """Finishes the transaction (without applying it); a second call does nothing. A
        transaction that the server owns (one given with ``th``) stays open and usable: it
        is only no longer counted among its Maapi's transactions."""
        self.maapi._remove(self)
        if not self._owned or self._finished:
            if not self._finished:
                self._flush()
            return
        self._finished = True
        _ncs._request("trans-finish", th=self.th)


def _single_trans(rw, user, context, groups, db, ip, port, path, src_ip, src_port, proto,
                  vendor, product, version, client_id, load_schemas, flags=0):
    maapi = Maapi(ip, port, path, load_schemas=load_schemas)
    try:
        maapi.start_user_session(user, context, groups, src_ip, src_port, proto, vendor,
                                 product, version, client_id)
        trans = maapi.start_trans(rw, db, flags=flags)
    except BaseException:
        maapi.close()
        raise
    return maapi, trans


@contextlib.contextmanager
def single_read_trans(user, context, groups=(), db=_ncs.RUNNING, ip="127.0.0.1",
                      port=_ncs.NCS_PORT, path=None, src_ip="127.0.0.1", src_port=0,
                      proto=_ncs.PROTO_TCP, vendor=None, product=None, version=None,
                      client_id=None, load_schemas=True, flags=0):
    """A context manager giving a read :class:`Transaction` on ``db`` as ``user``; the
    transaction and its :class:`Maapi` are closed on leaving the block."""
    maapi, trans = _single_trans(_ncs.READ, user, context, groups, db, ip, port, path, src_ip,
                                 src_port, proto, vendor, product, version, client_id,
                                 load_schemas, flags)
    with maapi, trans:
        yield trans


@contextlib.contextmanager
def single_write_trans(user, context, groups=(), db=_ncs.RUNNING, ip="127.0.0.1",
                       port=_ncs.NCS_PORT, path=None, src_ip="127.0.0.1", src_port=0,
                       proto=_ncs.PROTO_TCP, vendor=None, product=None, version=None,
                       client_id=None, load_schemas=True, flags=0):
    """A context manager giving a read-write :class:`Transaction`; call ``apply()`` on it to
    commit. It is finished on leaving the block, and changes not applied are lost."""
    maapi, trans = _single_trans(_ncs.READ_WRITE, user, context, groups, db, ip, port, path,
                                 src_ip, src_port, proto, vendor, product, version, client_id,
                                 load_schemas, flags)
    with maapi, trans:
        yield trans
