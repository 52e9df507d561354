"""``_ncs.error``: the exception that NSO's transaction API raises, and ConfD's error numbers.

NSO code catches ``_ncs.error.Error`` and looks at ``confd_errno`` (e.g. ``ERR_NOEXISTS`` for a
missing element), so every failure of a request to the server is turned into one, whatever part
of the API made the request. The numbers are ConfD's, for the same reason: code compares them
with the constants it finds on ``_ncs``.
"""

__all__ = ["Error", "EOF"]

# ConfD's error numbers for the errors the server can report. `_ncs` re-exports them.
ERR_NOEXISTS = 1
ERR_ALREADY_EXISTS = 2
ERR_ACCESS_DENIED = 3
ERR_NOT_WRITABLE = 4
ERR_BADTYPE = 5
ERR_BADPATH = 8
ERR_LOCKED = 10
ERR_INUSE = 11
ERR_BADSTATE = 17
ERR_INTERNAL = 18
ERR_EXTERNAL = 19

# The server's error codes (its answers name the error, not a number) and the number of each.
# An unknown code is an internal error: the Python side cannot know what else it means.
_ERRNO_OF_CODE = {
    "noexists": ERR_NOEXISTS,
    "exists": ERR_ALREADY_EXISTS,
    "access-denied": ERR_ACCESS_DENIED,
    "not-writable": ERR_NOT_WRITABLE,
    "badtype": ERR_BADTYPE,
    "badpath": ERR_BADPATH,
    "locked": ERR_LOCKED,
    "in-use": ERR_INUSE,
    "badstate": ERR_BADSTATE,
    "internal": ERR_INTERNAL,
    "validation": ERR_EXTERNAL,
}


def errno_of_code(code):
    """The ConfD error number of one of the server's error codes (``ERR_INTERNAL`` if unknown)."""
    return _ERRNO_OF_CODE.get(code, ERR_INTERNAL)


class Error(Exception):
    """A failed operation: ``confd_errno`` is ConfD's error number, ``confd_strerror`` the text.

    ``str(e)`` is the text (the server's message).
    """

    def __init__(self, confd_errno=ERR_INTERNAL, confd_strerror=""):
        super().__init__(confd_strerror)
        self.confd_errno = confd_errno
        self.confd_strerror = confd_strerror

    def __str__(self):
        return self.confd_strerror

    def __repr__(self):
        return "%s(%r, %r)" % (type(self).__name__, self.confd_errno, self.confd_strerror)


class EOF(Exception):
    """The connection to the server was closed. pyvmd never raises it (requests travel over the
    VM's own channel, whose loss ends the VM); it exists so that ``except`` clauses naming it
    work."""
