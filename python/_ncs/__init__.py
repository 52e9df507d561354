"""``_ncs``: pyvmd's stand-in for NSO's low-level C extension of the same name.

Written from NSO's documented behaviour (not copied from NSO). NSO packages import ``_ncs`` for
its constants, ``_ncs.Value``, ``_ncs.error.Error`` and the CDB functions of ``_ncs.cdb`` (upgrade
code uses them on the socket it is handed). In NSO this module speaks NSO's binary protocol over
sockets; in pyvmd every operation is one JSON request to the server through the VM's native
module, ``_pyvmd.request``, made by :func:`_request` below, the only place that knows the wire
format. ``ncs.maapi``, ``ncs.maagic`` and ``ncs.cdb`` are built on it.

Outside a VM (plain ``python3`` with ``python/`` on the path) the module still imports, so that
package code and its unit tests load; every operation then raises :class:`error.Error`.

The keypath helpers at the end are shared by ``_ncs.cdb`` and ``ncs.maagic``; they are not part
of NSO's API.
"""

import json

from . import error
from .error import (  # noqa: F401  (NSO code finds the numbers on `_ncs`)
    ERR_ACCESS_DENIED,
    ERR_ALREADY_EXISTS,
    ERR_BADPATH,
    ERR_BADSTATE,
    ERR_BADTYPE,
    ERR_EXTERNAL,
    ERR_INTERNAL,
    ERR_INUSE,
    ERR_LOCKED,
    ERR_NOEXISTS,
    ERR_NOT_WRITABLE,
)

__all__ = [
    "C_BUF",
    "C_DEFAULT",
    "C_NOEXISTS",
    "C_STR",
    "LIB_API_VSN",
    "LIB_API_VSN_STR",
    "LIB_VSN",
    "LIB_VSN_STR",
    "Value",
    "hash2ns",
    "hash2str",
    "ns2prefix",
    "str2hash",
    "xpath_pp_kpath",
    "CANDIDATE",
    "RUNNING",
    "STARTUP",
    "OPERATIONAL",
    "READ",
    "READ_WRITE",
    "NCS_PORT",
    "PORT",
    "PROTO_UNKNOWN",
    "PROTO_TCP",
    "PROTO_SSH",
    "PROTO_SYSTEM",
    "PROTO_CONSOLE",
    "PROTO_SSL",
    "PROTO_HTTP",
    "PROTO_HTTPS",
    "PROTO_UDP",
    "ERR_NOEXISTS",
    "ERR_ALREADY_EXISTS",
    "ERR_ACCESS_DENIED",
    "ERR_NOT_WRITABLE",
    "ERR_BADTYPE",
    "ERR_BADPATH",
    "ERR_LOCKED",
    "ERR_INUSE",
    "ERR_BADSTATE",
    "ERR_INTERNAL",
    "ERR_EXTERNAL",
    "Value",
    "cdb",
    "error",
]

try:
    import _pyvmd
except ImportError:  # a plain interpreter, not a VM
    _pyvmd = None

# Datastores (ConfD's values).
CANDIDATE = 1
RUNNING = 2
STARTUP = 3
OPERATIONAL = 4

# Transaction modes, for Maapi.start_trans.
READ = 1
READ_WRITE = 2

# Where NSO listens for its API sockets; pyvmd opens none, but code passes these along.
NCS_PORT = 4569
PORT = NCS_PORT

# User session protocols (Maapi.start_user_session's `proto`).
PROTO_UNKNOWN = 0
PROTO_TCP = 1
PROTO_SSH = 2
PROTO_SYSTEM = 3
PROTO_CONSOLE = 4
PROTO_SSL = 5
PROTO_HTTP = 6
PROTO_HTTPS = 7
PROTO_UDP = 8


# The library version, as NSO's: packages compare LIB_VSN_STR to tell NSO releases apart.
# pyvmd implements the API of NSO 6.1.
LIB_VSN = 0x06010000
LIB_VSN_STR = "06010000"
LIB_API_VSN = 0x08000000
LIB_API_VSN_STR = "08000000"

# Value types (``Value.confd_type()``), with ConfD's numbers; pyvmd's values are text, so
# only these are ever reported.
C_NOEXISTS = 1
C_STR = 4
C_BUF = 5
C_DEFAULT = 42


class Value:
    """A value read from the server.

    pyvmd's values are text: the server sends the canonical string form, which ``str(v)``
    gives. ``as_pyval()`` gives that string too (NSO converts by type here; code that needs a
    number or a bool should use ``ncs.maagic``, which converts by the schema). A Value compares
    equal to another Value or to a ``str`` with the same text. ``confd_type()`` is ``C_BUF``,
    or ``C_DEFAULT`` for a leaf that is not set, read in a transaction started with
    ``FLAG_NO_DEFAULTS`` (its text is then the default value).

    ``Value(init, type=None)``: ``init`` is turned into its text (``True`` → ``"true"``).
    """

    __slots__ = ("_text", "_type")

    def __init__(self, init, type=None):  # noqa: A002  (NSO's parameter name)
        if isinstance(init, Value):
            text = init._text
        elif isinstance(init, bool):
            text = "true" if init else "false"
        elif isinstance(init, bytes):
            text = init.decode("utf-8")
        else:
            text = str(init)
        self._text = text
        self._type = C_DEFAULT if type == C_DEFAULT else C_BUF

    def confd_type(self):
        """``C_DEFAULT`` for a default read with ``FLAG_NO_DEFAULTS``, else ``C_BUF``."""
        return self._type

    def as_pyval(self):
        """The value as a Python object: its canonical string (pyvmd's values are untyped)."""
        return self._text

    def __str__(self):
        return self._text

    def __repr__(self):
        return "<_ncs.Value value=%r>" % self._text

    def __eq__(self, other):
        if isinstance(other, Value):
            return self._text == other._text
        if isinstance(other, str):
            return self._text == other
        return NotImplemented

    def __hash__(self):
        # Equal to a str of the same text, so it must hash like one.
        return hash(self._text)


def _str_hash(text):
    """A stable 31-bit hash of ``text`` (FNV-1a), pyvmd's stand-in for ConfD's schema hashes:
    the same name gives the same number in every VM and every run."""
    h = 0x811C9DC5
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h & 0x7FFFFFFF


_names = {}
_modules = None


def str2hash(text):
    """The hash of a schema name (a node name or a namespace)."""
    h = _str_hash(text)
    _names.setdefault(h, text)
    return h


def hash2str(h):
    """The schema name whose hash is ``h`` (names of the loaded modules and names hashed
    before in this VM are known); ``error.Error`` for an unknown hash."""
    _load_modules()
    try:
        return _names[h]
    except KeyError:
        raise error.Error(ERR_BADPATH, "no name has the hash %r" % (h,)) from None


def _load_modules():
    """Reads the loaded modules from the server, once: {namespace hash: (prefix, uri, name)}."""
    global _modules
    if _modules is None:
        modules = {}
        for m in _request("modules"):
            modules[str2hash(m["namespace"])] = (m["prefix"], m["namespace"], m["name"])
            str2hash(m["name"])
            str2hash(m["prefix"])
        _modules = modules
    return _modules


def ns2prefix(ns):
    """The prefix of the module whose namespace has the hash ``ns``."""
    try:
        return _load_modules()[ns][0]
    except KeyError:
        raise error.Error(ERR_BADPATH, "no module has the namespace hash %r" % (ns,)) from None


def hash2ns(ns):
    """The namespace URI whose hash is ``ns``."""
    try:
        return _load_modules()[ns][1]
    except KeyError:
        raise error.Error(ERR_BADPATH, "no module has the namespace hash %r" % (ns,)) from None


def xpath_pp_kpath(kp):
    """A keypath (``/ncs:devices/device{ce0}``) as XPath (``/ncs:devices/device[name='ce0']``)."""
    return _request("xpath", path=str(kp))


def _send(op, **args):
    """Sends one request without waiting for its answer; :func:`_collect` takes the answer.
    The server answers a VM's requests in the order they were sent."""
    send = getattr(_pyvmd, "send_request", None)
    if send is None:
        return ("now", _request(op, **args))
    args["op"] = op
    return ("later", send(json.dumps(args)))


def _collect(sent):
    """The value of the answer to a request of :func:`_send`; raises its error."""
    how, value = sent
    if how == "now":
        return value
    return _answer(json.loads(_pyvmd.claim_reply(value)), "request")


def _answer(answer, op):
    if answer.get("ok"):
        return answer.get("value")
    code = answer.get("code", "internal")
    message = answer.get("message") or ("%s failed (%s)" % (op, code))
    raise error.Error(error.errno_of_code(code), message)


def _request(op, **args):
    """Sends one request to the server and returns the value of its answer.

    Raises :class:`error.Error` when the server answers with an error, and outside a VM.
    """
    request = getattr(_pyvmd, "request", None)
    if request is None:
        if _pyvmd is None:
            text = "ncs.maapi needs a pyvmd Python VM (this interpreter is not one)"
        else:
            text = "ncs.maapi needs a pyvmd whose VM can make requests (this one cannot)"
        raise error.Error(ERR_INTERNAL, text)
    args["op"] = op
    return _answer(json.loads(request(json.dumps(args))), op)


# ---------------------------------------------------------------------------------------------
# Keypaths (internal): `/ncs:devices/device{ce0}/address`, `/x/y{"a b" c}`, `/ncs:devices/device[0]`


def _split_keypath(path):
    """The segments of ``path``, without the slashes and the empty ones.

    A ``/`` inside the braces of keys (or in a quoted key) does not split: keys such as
    ``{10.0.0.0/8}`` are common.
    """
    segments = []
    current = []
    in_keys = in_quote = escaped = False
    for ch in path:
        if in_quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_quote = False
        elif in_keys:
            if ch == '"':
                in_quote = True
            elif ch == "}":
                in_keys = False
        elif ch == "{":
            in_keys = True
        elif ch == "/":
            if current:
                segments.append("".join(current))
            current = []
            continue
        current.append(ch)
    if current:
        segments.append("".join(current))
    return segments


def _parse_segment(segment):
    """Splits one segment into ``(prefix or None, name, keys or None, index or None)``.

    ``ncs:device{ce0}`` → ``("ncs", "device", ["ce0"], None)``; ``device[0]`` → ``(None,
    "device", None, 0)``.
    """
    keys = index = None
    name = segment
    brace = segment.find("{")
    bracket = segment.find("[")
    if brace >= 0 and (bracket < 0 or brace < bracket):
        if not segment.endswith("}"):
            raise error.Error(ERR_BADPATH, "bad keypath segment %r" % segment)
        name = segment[:brace]
        keys = _parse_keys(segment[brace + 1:-1])
    elif bracket >= 0:
        if not segment.endswith("]"):
            raise error.Error(ERR_BADPATH, "bad keypath segment %r" % segment)
        name = segment[:bracket]
        try:
            index = int(segment[bracket + 1:-1])
        except ValueError:
            raise error.Error(ERR_BADPATH, "bad index in keypath segment %r" % segment) from None
    prefix, colon, local = name.partition(":")
    if not colon:
        prefix, local = None, name
    return prefix, local, keys, index


def _parse_keys(text):
    """The key values written between braces: separated by whitespace, each either bare or in
    double quotes with backslash escapes."""
    keys = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        if text[i] == '"':
            value = []
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    i += 1
                value.append(text[i])
                i += 1
            if i >= n:
                raise error.Error(ERR_BADPATH, "unterminated quoted key in {%s}" % text)
            i += 1
            keys.append("".join(value))
        else:
            start = i
            while i < n and not text[i].isspace():
                i += 1
            keys.append(text[start:i])
    return keys


_NEEDS_QUOTES = frozenset(' \t\r\n{}"\\')


def _quote_key(value):
    """One key value as written in a keypath: in double quotes when it holds characters that
    would end or split it (or is empty), bare otherwise."""
    if value and not any(ch in _NEEDS_QUOTES for ch in value):
        return value
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"')


def _format_keys(values):
    """``{k1 k2}`` for a list entry with the key values ``values`` (strings)."""
    return "{%s}" % " ".join(_quote_key(v) for v in values)


def _join_keypath(base, path):
    """``path`` made absolute: relative to ``base`` unless it starts with ``/``; ``..`` goes up a
    segment and ``.`` stays."""
    segments = [] if path.startswith("/") else _split_keypath(base)
    for segment in _split_keypath(path):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    return "/" + "/".join(segments)


from . import cdb  # noqa: E402  (it uses the names above; `import _ncs` gives `_ncs.cdb`, as in NSO)
