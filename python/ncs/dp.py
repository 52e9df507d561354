"""``ncs.dp``: data-provider callbacks, here the action and validation base classes.

Instances are created by ``Application.register_action`` / ``register_validation``, one per
registration, and then serve every callback of their point (concurrently, which is why assigning
to ``self`` inside a callback is not thread safe).
"""

import functools
import inspect
import logging

from . import log as _log

__all__ = [
    "Action",
    "NCS_SERVICE_CREATE",
    "NCS_SERVICE_DELETE",
    "NCS_SERVICE_UPDATE",
    "ValidationPoint",
]

# The ``op`` of ``pre_modification`` / ``post_modification``: what happened to the instance.
NCS_SERVICE_CREATE = 0
NCS_SERVICE_UPDATE = 1
NCS_SERVICE_DELETE = 2


def _positional_count(fn):
    """The number of positional parameters of ``fn`` (``self`` included), or None with *args."""
    spec = inspect.getfullargspec(fn)
    if spec.varargs is not None:
        return None
    return len(spec.args)


class _Callbacks:
    """Shared construction of callback classes: ``cls(daemon, point, log=None, init_args=None)``.

    The point is stored under the attribute NSO gives it for each kind (``servicepoint``,
    ``actionpoint``, ...), named by ``_point_attribute``.
    """

    _point_attribute = "point"

    def __init__(self, daemon, point, log=None, init_args=None):
        self.daemon = daemon
        setattr(self, self._point_attribute, point)
        self.log = log if log is not None else _log.Log(logging.getLogger(type(self).__module__))
        self.init(init_args)

    def init(self, init_args):
        """Custom initialisation: called with the ``init_args`` given at registration."""

    def __setattr__(self, name, value):
        # Assigning to self while a callback runs is not thread safe: the instance serves
        # every callback of its point. The check warns (or alarms) and assigns anyway.
        from . import _vm

        _vm.check_self_assign(self, name)
        object.__setattr__(self, name, value)


class Action(_Callbacks):
    """Base class of action callbacks: decorate ``cb_action`` with :meth:`Action.action`.

    ``Action(daemon, actionpoint, log=None, init_args=None)``; ``self.actionpoint`` names the
    point.
    """

    _point_attribute = "actionpoint"

    @staticmethod
    def action(fn):
        """Decorates ``cb_action(self, uinfo, name, kp, input, output, trans)``.

        The older form without ``trans`` (six parameters with ``self``) is accepted too: the
        decorator counts the parameters. The wrapper always takes ``trans``, so the dispatcher
        calls every action the same way. Returning None or ``ncs.CONFD_OK`` sends ``output``;
        ``ncs.CONFD_ERR`` or an exception is an error.
        """
        count = _positional_count(fn)
        if count is None or count == 7:
            takes_trans = True
        elif count == 6:
            takes_trans = False
        else:
            raise TypeError(
                "@Action.action: %s must take (self, uinfo, name, kp, input, output[, trans]), "
                "not %d arguments" % (fn.__qualname__, count)
            )

        @functools.wraps(fn)
        def wrapper(self, uinfo, name, kp, input, output, trans=None):
            if takes_trans:
                return fn(self, uinfo, name, kp, input, output, trans)
            return fn(self, uinfo, name, kp, input, output)

        wrapper._ncs_callback = "action"
        wrapper._ncs_takes_trans = takes_trans
        return wrapper


class ValidationPoint(_Callbacks):
    """Base class of validation callbacks: decorate ``cb_validate`` with :meth:`validate`.

    ``ValidationPoint(daemon, validationpoint, log=None, init_args=None)``.
    """

    _point_attribute = "validationpoint"

    @staticmethod
    def validate(fn):
        """Decorates ``cb_validate(self, tctx, kp, newval)``: ``kp`` is the keypath of the node
        to check, ``newval`` its value (for a leaf; None otherwise). Raising, or returning
        ``ncs.CONFD_ERR``, rejects the configuration. The form with a fifth argument, ``root``
        (the configuration being validated, read-only), is also accepted."""
        takes_root = _positional_count(fn) in (None, 5)

        @functools.wraps(fn)
        def wrapper(self, tctx, kp, newval, root):
            if takes_root:
                return fn(self, tctx, kp, newval, root)
            return fn(self, tctx, kp, newval)

        wrapper._ncs_callback = "validate"
        return wrapper
