"""``ncs.application``: the application component and the service callback classes.

A package's ``application`` component names a subclass of :class:`Application`. The VM imports
it in the component's own thread (``ComponentThread:<component>``), instantiates it and calls
``setup()``, in which the application registers its callbacks; ``teardown()`` runs when the VM
stops. Every registration shows in ``/python-vm/status/current`` as ``"<point> (service)"``,
``"<point> (action)"``, ``"<point> (nano service)"`` or ``"<point> (validation)"``.
"""

import functools
import logging

from . import _vm
from . import log as _log
from .dp import Action, ValidationPoint, _Callbacks  # noqa: F401  (NSO code imports them from here too)

__all__ = ["Application", "Service", "NanoService", "Action", "ValidationPoint"]


class Application:
    """Base class of application components: override :meth:`setup` and :meth:`teardown`.

    ``self.log`` is an :class:`ncs.log.Log` writing to the VM's log file. Subclasses that
    override ``__init__`` should call ``super().__init__(*args, **kwds)``; the VM copes when they
    do not.
    """

    def __init__(self, *args, **kwds):
        self.log = _log.Log(logging.getLogger(type(self).__module__))
        _vm.app_state(self)

    def setup(self):
        """Called once after construction, in the component thread: register callbacks here."""

    def teardown(self):
        """Called when the VM stops (or after a failed ``setup()``): release what setup took."""

    def register_service(self, servicepoint, service_cls, init_args=None):
        """Registers ``service_cls`` (a :class:`Service`) for ``servicepoint``.

        The class is instantiated now, once, as ``service_cls(daemon, servicepoint, log,
        init_args)``; that instance serves every callback of the point.
        """
        _vm.register(self, "service", servicepoint, service_cls, init_args)

    def register_nano_service(self, servicepoint, componenttype, state, nano_service_cls,
                              init_args=None):
        """Registers ``nano_service_cls`` (a :class:`NanoService`) for one component type and
        state of the nano service ``servicepoint``."""
        _vm.register(self, "nano service", servicepoint, nano_service_cls, init_args,
                     extra=(componenttype, state))

    def register_action(self, actionpoint, action_cls, init_args=None):
        """Registers ``action_cls`` (an :class:`ncs.dp.Action`) for ``actionpoint``."""
        _vm.register(self, "action", actionpoint, action_cls, init_args)

    def register_validation(self, validationpoint, validation_cls, init_args=None):
        """Registers ``validation_cls`` (an :class:`ncs.dp.ValidationPoint`) for a point."""
        _vm.register(self, "validation", validationpoint, validation_cls, init_args)

    def register_fun(self, start_fun, stop_fun):
        """Registers custom start and stop functions.

        ``start_fun(state)`` is called now; ``state`` has ``log`` and ``app`` attributes. What it
        returns (the same ``state`` if it returns None) is passed to ``stop_fun`` when the
        component is torn down, after ``teardown()``.
        """
        _vm.register_fun(self, start_fun, stop_fun)

    def add_running_thread(self, class_name):
        """Shows a thread of this application in ``/python-vm/status/current`` as running."""
        _vm.add_running_thread(self, class_name)

    def del_running_thread(self, class_name):
        """Removes a thread added with :meth:`add_running_thread`."""
        _vm.del_running_thread(self, class_name)


def _callback(kind, fn):
    """Wraps a service callback, tagging it with its kind for the dispatcher."""

    @functools.wraps(fn)
    def wrapper(self, *args):
        return fn(self, *args)

    wrapper._ncs_callback = kind
    return wrapper


class Service(_Callbacks):
    """Base class of service callbacks.

    ``Service(daemon, servicepoint, log=None, init_args=None)``; decorate the callbacks:

    * ``@Service.create``: ``cb_create(self, tctx, root, service, proplist)``; a returned
      proplist (a list of (str, str)) is kept for the next call;
    * ``@Service.pre_modification`` / ``@Service.post_modification``:
      ``cb_pre_modification(self, tctx, op, kp, root, proplist)`` (likewise ``post``).
    """

    _point_attribute = "servicepoint"

    @staticmethod
    def create(fn):
        """Decorates ``cb_create(self, tctx, root, service, proplist)``."""
        return _callback("create", fn)

    @staticmethod
    def pre_modification(fn):
        """Decorates ``cb_pre_modification(self, tctx, op, kp, root, proplist)``."""
        return _callback("pre_modification", fn)

    @staticmethod
    def post_modification(fn):
        """Decorates ``cb_post_modification(self, tctx, op, kp, root, proplist)``."""
        return _callback("post_modification", fn)


class NanoService(_Callbacks):
    """Base class of nano service callbacks.

    ``NanoService(daemon, servicepoint, log=None, init_args=None)``; decorate
    ``cb_nano_create`` / ``cb_nano_delete(self, tctx, root, service, plan, component, state,
    proplist, component_proplist)`` with :meth:`create` / :meth:`delete`.
    """

    _point_attribute = "servicepoint"

    @staticmethod
    def create(fn):
        """Decorates ``cb_nano_create``."""
        return _callback("nano_create", fn)

    @staticmethod
    def delete(fn):
        """Decorates ``cb_nano_delete``."""
        return _callback("nano_delete", fn)
