"""Internal: the Python half of a pyvmd VM (not part of NSO's API; packages must not use it).

The Rust side (``pyvmd vm``) owns the socket to the server, the log file and the status list; it
exposes them as the native module ``_pyvmd``. This module holds what is easier to express in
Python: the logging handler, the component threads and their lifecycle, and the registry of
callback points. Outside a VM ``_pyvmd`` is missing and the functions here quietly do nothing,
so that ``import ncs`` works in a plain interpreter too (a package's own unit tests).

Lifecycle of one application component (NSO's behaviour):
  thread ``ComponentThread:<component>`` starts → import module → instantiate class → ``setup()``
  → status ``started`` → wait for stop → ``teardown()`` → stop functions → thread finishes.
An import or constructor error gives ``failed`` with the last line of the traceback; a raising
``setup()`` gives ``failed`` too, and ``teardown()`` still runs (at once, since the component
will not run).
"""

import importlib
import logging
import site
import sys
import threading
import traceback
import types

try:
    import _pyvmd
except ImportError:  # a plain interpreter, not a VM
    _pyvmd = None

_log = logging.getLogger("ncs.vm")


# ---------------------------------------------------------------------------------------------
# Logging


class VmLogHandler(logging.Handler):
    """Sends every record to the VM's log file, in NSO's line format (the Rust side formats it).

    Installed on the root logger, so ``logging`` calls of package code (and ``ncs.log.Log``)
    land in the same file. The message includes a traceback when the record has one.
    """

    def __init__(self):
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record):
        try:
            text = self.format(record)
            _pyvmd.log(record.levelno, record.threadName or "", record.created, text)
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def set_log_level(level):
    """Sets the root logger's level (a ``logging`` number; above CRITICAL turns logging off)."""
    logging.getLogger().setLevel(level)


# ---------------------------------------------------------------------------------------------
# Status: /python-vm/status/current


class Context:
    """Where an application runs: its package and component (None outside a VM component)."""

    __slots__ = ("package", "component")

    def __init__(self, package, component):
        self.package = package
        self.component = component

    def __repr__(self):
        return "Context(%r, %r)" % (self.package, self.component)


_NOWHERE = Context(None, None)


def current_context():
    """The context of the calling thread: its component thread's, or one outside any."""
    return getattr(threading.current_thread(), "ncs_context", None) or _NOWHERE


def _set_current(ctx, name, running):
    if _pyvmd is not None and ctx.package is not None:
        _pyvmd.set_current(ctx.package, ctx.component, name, running)


def _del_current(ctx, name):
    if _pyvmd is not None and ctx.package is not None:
        _pyvmd.del_current(ctx.package, ctx.component, name)


# ---------------------------------------------------------------------------------------------
# Per-application state and registrations


class AppState:
    """What the VM keeps about one Application instance."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.daemon = Daemon(ctx)
        self.registrations = []  # registry keys, in registration order
        self.funs = []  # (stop_fun, state) pairs
        self.threads = []  # names added with add_running_thread


class Daemon:
    """Stands for NSO's data-provider daemon handed to callback classes as ``daemon``."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.name = "ncs-dp-%s-%s" % (ctx.package, ctx.component)

    def __repr__(self):
        return "<Daemon %s>" % self.name


def app_state(app):
    """The VM's state of ``app``, created on first use (so a subclass whose ``__init__`` skips
    ``Application.__init__`` still works). Stored with ``object.__setattr__`` to bypass any
    ``__setattr__`` override."""
    state = app.__dict__.get("_ncs_state")
    if state is None:
        state = AppState(current_context())
        object.__setattr__(app, "_ncs_state", state)
    return state


class Registration:
    """One registered callback point: ``instance`` serves every callback of ``point``."""

    __slots__ = ("kind", "point", "extra", "instance", "app", "entry")

    def __init__(self, kind, point, extra, instance, app, entry):
        self.kind = kind
        self.point = point
        self.extra = extra
        self.instance = instance
        self.app = app
        self.entry = entry


_registry_lock = threading.Lock()
# (kind, point) + extra → Registration. kind is "service", "nano service", "action" or
# "validation"; extra is (componenttype, state) for nano services.
_registry = {}


def lookup(kind, point, *extra):
    """The registration of a point, or None."""
    with _registry_lock:
        return _registry.get((kind, point) + tuple(extra))


def register(app, kind, point, cls, init_args, extra=()):
    """Instantiates ``cls`` for ``point`` and registers it (see ``Application.register_*``)."""
    state = app_state(app)
    key = (kind, point) + tuple(extra)
    with _registry_lock:
        if key in _registry:
            raise ValueError("%s (%s) is already registered" % (point, kind))
    log = getattr(app, "log", None)
    instance = cls(state.daemon, point, log, init_args)
    entry = "%s (%s)" % (point, kind)
    with _registry_lock:
        if key in _registry:
            raise ValueError("%s (%s) is already registered" % (point, kind))
        _registry[key] = Registration(kind, point, tuple(extra), instance, app, entry)
    state.registrations.append(key)
    _set_current(state.ctx, entry, True)


def _unregister_all(app):
    state = app_state(app)
    for key in state.registrations:
        with _registry_lock:
            reg = _registry.pop(key, None)
            # Nano services share one entry between several registrations: the entry goes with
            # the last of them.
            shared = reg is not None and any(
                r.entry == reg.entry and r.app is app for r in _registry.values()
            )
        if reg is not None and not shared:
            _del_current(state.ctx, reg.entry)
    state.registrations = []


def register_fun(app, start_fun, stop_fun):
    """See ``Application.register_fun``."""
    state = app_state(app)
    fun_state = types.SimpleNamespace(log=getattr(app, "log", None), app=app)
    result = start_fun(fun_state)
    state.funs.append((stop_fun, fun_state if result is None else result))


def add_running_thread(app, name):
    """See ``Application.add_running_thread``."""
    state = app_state(app)
    if name not in state.threads:
        state.threads.append(name)
    _set_current(state.ctx, name, True)


def del_running_thread(app, name):
    """See ``Application.del_running_thread``."""
    state = app_state(app)
    if name in state.threads:
        state.threads.remove(name)
    _del_current(state.ctx, name)


# ---------------------------------------------------------------------------------------------
# Component threads


def _last_line(exc):
    """The last line of the traceback of ``exc``: ``Type: message``."""
    lines = traceback.format_exception_only(type(exc), exc)
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return type(exc).__name__


class ComponentThread(threading.Thread):
    """Runs one application component, from import to teardown, in a thread of its own."""

    def __init__(self, vm_name, package, component, module_name, class_name, display_name,
                 deprecated, source=None):
        # Daemon: a component that ignores its stop request must not keep the VM alive.
        super().__init__(name="ComponentThread:" + component, daemon=True)
        # The component's notification-source settings (stream, options), if it has them, and
        # those of a pending restart; `stopping` tells a stop from a restart.
        self.source_settings = source
        self.new_settings = source
        self.source_lock = threading.Lock()
        self.stopping = False
        self.vm_name = vm_name
        self.ncs_context = Context(package, component)
        self.module_name = module_name
        self.class_name = class_name
        self.display_name = display_name
        self.deprecated = deprecated
        self.app = None
        self.setup_done = threading.Event()
        self.stop_requested = threading.Event()

    def _status(self, started, error_info=None):
        if _pyvmd is not None:
            ctx = self.ncs_context
            _pyvmd.component_status(ctx.package, ctx.component, self.display_name, started,
                                    error_info)

    def _report_failure(self, what, exc):
        """Logs a failure and prints its traceback to stderr (the shared VM log file)."""
        ctx = self.ncs_context
        _log.error("%s %s (package %s, component %s): %s", what, self.display_name, ctx.package,
                   ctx.component, _last_line(exc), exc_info=exc)
        print("pyvmd vm %s: %s %s (package %s, component %s):"
              % (self.vm_name, what, self.display_name, ctx.package, ctx.component),
              file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()

    def run(self):
        ctx = self.ncs_context
        _set_current(ctx, self.name, True)
        try:
            self._run()
        finally:
            # A failed component is reported finished before the VM may go on (and announce
            # Ready), so the server's view is complete at Ready.
            _set_current(ctx, self.name, False)
            self.setup_done.set()

    def _run(self):
        if self.deprecated:
            _log.warning("python-class-name %r has no module part: importing module %r "
                         "(deprecated, use module.Class)", self.display_name, self.module_name)
        try:
            module = importlib.import_module(self.module_name)
            cls = getattr(module, self.class_name)
            app = cls()
            if getattr(app, "log", None) is None:
                from . import log as ncs_log

                object.__setattr__(app, "log",
                                   ncs_log.Log(logging.getLogger(type(app).__module__)))
            app_state(app)
        except BaseException as exc:  # noqa: BLE001  (any failure of package code is a status)
            self._report_failure("Failed to load", exc)
            self._status(False, _last_line(exc))
            return
        from . import notif

        if isinstance(app, notif.Source) or self.source_settings is not None:
            self._run_source(app)
            return
        self.app = app
        try:
            app.setup()
        except BaseException as exc:  # noqa: BLE001
            self._report_failure("setup() failed in", exc)
            self._status(False, _last_line(exc))
            self._teardown()
            return
        self._status(True)
        self.setup_done.set()
        self.stop_requested.wait()
        self._teardown()

    # -- notification sources --------------------------------------------------------------------

    def _run_source(self, source):
        """A notification source's lifecycle: ``init(options)``, ``run()`` in a thread of its
        own until the component stops, then ``request_exit()`` from this thread, a bounded
        wait for ``run()``, and ``deinit()``. New settings (a configuration change) run the
        same steps on a new object of the class, as a syslog daemon's reload does."""
        from . import notif

        if not isinstance(source, notif.Source):
            self._fail_source("the class of a notification-source component must derive from "
                              "ncs.notif.Source, and %s does not" % self.display_name)
            return
        cls = type(source)
        while True:
            runner = None if source is None else self._start_source(source)
            if runner is not None:
                self._status(True)
            self.setup_done.set()
            self.stop_requested.wait()
            if runner is not None:
                self._stop_source(source, runner)
            with self.source_lock:
                if self.stopping:
                    return
                self.source_settings = self.new_settings
                self.stop_requested.clear()
            try:
                source = cls()
            except BaseException as exc:  # noqa: BLE001
                self._report_failure("Failed to create", exc)
                self._status(False, _last_line(exc))
                source = None

    def restart_source(self, settings):
        """Runs the source again with new settings (from another thread)."""
        with self.source_lock:
            if self.stopping:
                return
            self.new_settings = settings
            self.stop_requested.set()

    def stop(self):
        """Asks the component to stop (from another thread)."""
        with self.source_lock:
            self.stopping = True
        self.stop_requested.set()

    def _start_source(self, source):
        """``init(options)`` and ``run()`` in a new thread; None if the source did not start."""
        ctx = self.ncs_context
        # A subclass whose __init__ does not call Source.__init__ still gets its state.
        for name, value in (("exit", threading.Event()), ("_batch", []),
                            ("_batch_lock", threading.Lock())):
            if name not in source.__dict__:
                object.__setattr__(source, name, value)
        settings = self.source_settings or {}
        if settings.get("stream"):
            source.stream = settings["stream"]
        options = dict(settings.get("options") or {})
        try:
            accepted = source.init(options)
        except BaseException as exc:  # noqa: BLE001
            self._report_failure("init() failed in", exc)
            self._status(False, _last_line(exc))
            return None
        if accepted is False:
            self._fail_source("init() refused to start (it returned False) with options %r"
                              % options)
            return None
        if not source.stream:
            self._fail_source("no stream: name one in the component's <notification-source> "
                              "or set the class's stream attribute")
            return None
        entry = "%s (notification source)" % source.stream
        runner = threading.Thread(target=self._source_loop, args=(source, entry),
                                  name="Source:" + ctx.component, daemon=True)
        runner.ncs_context = ctx
        _set_current(ctx, entry, True)
        runner.start()
        return runner

    def _stop_source(self, source, runner):
        ctx = self.ncs_context
        try:
            source.request_exit()
        except BaseException as exc:  # noqa: BLE001
            self._report_failure("request_exit() failed in", exc)
        runner.join(SOURCE_EXIT_TIMEOUT)
        if runner.is_alive():
            message = ("run() did not return within %s s after request_exit(); the source is "
                       "abandoned and deinit() is not called" % SOURCE_EXIT_TIMEOUT)
            _log.error("notification source %s (package %s, component %s): %s",
                       self.display_name, ctx.package, ctx.component, message)
            _source_failed(ctx, message)
            return
        try:
            source.deinit()
        except BaseException as exc:  # noqa: BLE001
            self._report_failure("deinit() failed in", exc)

    def _source_loop(self, source, entry):
        ctx = self.ncs_context
        try:
            source.run()
            if source._batch:
                source.close_batch()
            if not source.exit.is_set():
                _log.info("notification source %s (component %s) returned from run()",
                          self.display_name, ctx.component)
        except BaseException as exc:  # noqa: BLE001
            self._report_failure("run() failed in", exc)
            _source_failed(ctx, _last_line(exc))
        finally:
            _set_current(ctx, entry, False)

    def _fail_source(self, message):
        ctx = self.ncs_context
        _log.error("notification source %s (package %s, component %s): %s", self.display_name,
                   ctx.package, ctx.component, message)
        self._status(False, message)

    def _teardown(self):
        app = self.app
        try:
            app.teardown()
        except BaseException as exc:  # noqa: BLE001
            self._report_failure("teardown() failed in", exc)
        state = app_state(app)
        for stop_fun, fun_state in reversed(state.funs):
            try:
                stop_fun(fun_state)
            except BaseException as exc:  # noqa: BLE001
                self._report_failure("a stop function failed in", exc)
        state.funs = []
        _unregister_all(app)


_components = []

# How long a notification source's run() has to return after request_exit().
SOURCE_EXIT_TIMEOUT = 5.0


def _source_failed(ctx, message):
    """Tells the server that a notification source stopped on an error (it raises an alarm)."""
    try:
        import _ncs

        _ncs._request("source-failed", package=ctx.package, component=ctx.component,
                      message=message)
    except Exception as exc:  # noqa: BLE001  (outside a VM, or the server is going away)
        _log.warning("cannot report the failure of a notification source: %s", exc)


# The packages' python/ directories (set by boot): where an error is in package code.
_package_roots = []


def boot(sys_path, site_dirs, level):
    """Prepares the interpreter: logging to the VM log at ``level``, then the package paths.

    ``sys_path`` entries go first on ``sys.path``, in order (package ``python/`` dirs). Each of
    ``site_dirs`` (a virtualenv's site-packages, from ``python/use_venv``) is added with
    ``site.addsitedir`` (which also processes its ``.pth`` files) and then moved before the
    system site-packages, so the venv's versions win over system-wide ones, as when NSO runs the
    venv's own interpreter, while the standard library still comes first.
    """
    root = logging.getLogger()
    root.addHandler(VmLogHandler())
    root.setLevel(level)
    sys.path[0:0] = [p for p in sys_path if p not in sys.path]
    _package_roots[:] = sys_path
    for directory in site_dirs:
        before = list(sys.path)
        site.addsitedir(directory)
        added = [p for p in sys.path if p not in before]
        at = next((i for i, p in enumerate(before)
                   if p not in sys_path
                   and p.rstrip("/").endswith(("site-packages", "dist-packages"))),
                  len(before))
        sys.path[:] = before[:at] + added + before[at:]


def start_components(vm_name, specs):
    """Starts the components in order, each after the previous one's ``setup()`` finished.

    ``specs`` are (package, component, module, class, display name, deprecated, source) tuples;
    ``source`` is the JSON of the component's notification-source settings, or None.
    """
    import json

    for package, component, module_name, class_name, display_name, deprecated, source in specs:
        thread = ComponentThread(vm_name, package, component, module_name, class_name,
                                 display_name, deprecated,
                                 json.loads(source) if source else None)
        _components.append(thread)
        thread.start()
        thread.setup_done.wait()


def stop_components(timeout):
    """Tears the components down, last started first, waiting at most ``timeout`` s for each."""
    for thread in reversed(_components):
        if not thread.is_alive():
            continue
        thread.stop()
        thread.join(timeout)
        if thread.is_alive():
            _log.warning("teardown of component %s did not finish within %s s; stopping anyway",
                         thread.ncs_context.component, timeout)
    flush_stdio()


def restart_source(package, component, settings):
    """Starts a notification source again with new settings (JSON); False if it is not
    running here."""
    import json

    for thread in _components:
        ctx = thread.ncs_context
        if ctx.package == package and ctx.component == component and thread.is_alive():
            thread.restart_source(json.loads(settings))
            return True
    return False


def flush_stdio():
    """Flushes Python's stdout and stderr (the VM exits without finalising the interpreter)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001  (a closed or broken stream must not block the exit)
            pass


# ---------------------------------------------------------------------------------------------
# Import check (`pyvmd check-packages`)


def check_imports(specs):
    """Imports the module of each component and looks its class up, instantiating nothing.

    ``specs`` are (package, component, module, class, python-class-name) tuples. Returns the
    failures as (package, component, python-class-name, file, line, error) tuples; ``file`` and
    ``line`` point into the package's code where Python can tell (the innermost frame outside
    the import machinery, the line of a syntax error, the module that lacks the class), else
    they are None.
    """
    problems = []
    for package, component, module_name, class_name, display_name in specs:
        try:
            module = importlib.import_module(module_name)
        except BaseException as exc:  # noqa: BLE001  (any failure of package code is a finding)
            problems.append((package, component, display_name) + _where(exc)
                            + (_last_line(exc),))
            continue
        if not isinstance(getattr(module, class_name, None), type):
            what = "has no class %r" % class_name
            problems.append((package, component, display_name,
                             getattr(module, "__file__", None), None,
                             "module %r %s" % (module_name, what)))
    return problems


def _where(exc):
    """(file, line) of an import failure in the package's code, or (None, None)."""
    if isinstance(exc, SyntaxError) and exc.filename and not exc.filename.startswith("<"):
        return exc.filename, exc.lineno
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if any(frame.filename.startswith(root.rstrip("/") + "/") for root in _package_roots):
            return frame.filename, frame.lineno
    return None, None


# ---------------------------------------------------------------------------------------------
# Upgrade components


def run_upgrade(package, component, module_name, class_name, th, cdb_th):
    """Runs the ``upgrade`` component ``component`` of ``package``; None on success, else the
    error (a line of text).

    As NSO does: ``module_name.class_name`` is instantiated with no arguments and
    ``upgrade(cdbsock, trans)`` is called, ``cdbsock`` being a CDB socket on the server's read
    transaction ``cdb_th`` (the old data) and ``trans`` the server's write transaction ``th``.
    The server owns both: they are neither finished nor applied here. True or None from
    ``upgrade()`` is success. It runs in a thread named ``ComponentThread:<component>``, like an
    application, so that its log lines carry NSO's thread name; the caller waits for it.
    """
    outcome = []
    thread = threading.Thread(
        target=lambda: outcome.append(
            _upgrade(package, component, module_name, class_name, th, cdb_th)),
        name="ComponentThread:" + component,
        # Daemon: an upgrade that never returns must not keep the VM from exiting when the
        # server gives up on it.
        daemon=True,
    )
    thread.ncs_context = Context(package, component)
    thread.start()
    thread.join()
    if not outcome:  # _upgrade catches everything; only a bug of ours gets here
        return "upgrade of %s.%s ended without a result" % (module_name, class_name)
    return outcome[0]


def _upgrade(package, component, module_name, class_name, th, cdb_th):
    """The body of :func:`run_upgrade`'s thread."""
    display_name = "%s.%s" % (module_name, class_name)

    def failure(what, exc):
        # Logged, and the traceback printed to stderr (the shared VM log), as
        # ComponentThread._report_failure does for applications.
        _log.error("%s %s (package %s, component %s): %s", what, display_name, package,
                   component, _last_line(exc), exc_info=exc)
        print("pyvmd vm upgrade: %s %s (package %s, component %s):"
              % (what, display_name, package, component), file=sys.stderr)
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        sys.stderr.flush()
        return _last_line(exc)

    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
        instance = cls()
        if getattr(instance, "log", None) is None:
            from . import log as ncs_log

            object.__setattr__(instance, "log",
                               ncs_log.Log(logging.getLogger(type(instance).__module__)))
    except BaseException as exc:  # noqa: BLE001  (any failure of package code is an error)
        return failure("Failed to load", exc)
    try:
        import _ncs.cdb

        from . import maapi

        cdbsock = _ncs.cdb.CdbSocket(th=cdb_th)
        trans = maapi.Transaction(maapi.Maapi(), th=th, rw=_ncs.READ_WRITE)
        result = instance.upgrade(cdbsock, trans)
    except BaseException as exc:  # noqa: BLE001
        return failure("upgrade() failed in", exc)
    if result is None or result:
        return None
    _log.error("upgrade() of %s (package %s, component %s) returned %r", display_name,
               package, component, result)
    return "upgrade() returned %r" % (result,)


# ---------------------------------------------------------------------------------------------
# Calls from the server: action callbacks


class UserInfo:
    """NSO's ``uinfo``: who invoked the callback."""

    def __init__(self, username, context="netconf"):
        self.username = username
        self.context = context
        self.usid = 0
        self.actx_thandle = -1

    def __repr__(self):
        return "UserInfo(username=%r, context=%r)" % (self.username, self.context)


# Running callbacks per instance, for the self-assign check: id(instance) → {thread: info}.
_active_lock = threading.Lock()
_active = {}


# The user on whose behalf this thread runs an action callback (see ``current_caller``).
_caller = threading.local()


def current_caller():
    """The ``UserInfo`` of the action callback running in this thread, or None: a transaction
    started there without a user session runs with that user's rights."""
    return getattr(_caller, "uinfo", None)


class _Active:
    """Marks a callback on ``instance`` as running in this thread (see ``check_self_assign``)."""

    def __init__(self, instance, keypath, alarm):
        self.key = id(instance)
        self.info = (keypath, alarm)

    def __enter__(self):
        with _active_lock:
            _active.setdefault(self.key, {})[threading.get_ident()] = self.info

    def __exit__(self, *exc):
        with _active_lock:
            running = _active.get(self.key, {})
            running.pop(threading.get_ident(), None)
            if not running:
                _active.pop(self.key, None)


def check_self_assign(instance, name):
    """Called by the ``__setattr__`` of Service, NanoService and Action: while one of their
    create or action callbacks runs, assigning to ``self`` is not thread safe (one instance
    serves every callback of its point, concurrently). Logs or raises an alarm, as
    ``/python-vm/sanity-checks/self-assign-warning`` says; the assignment happens anyway."""
    with _active_lock:
        running = _active.get(id(instance))
        if not running:
            return
        info = running.get(threading.get_ident()) or next(iter(running.values()))
    mode = _pyvmd.self_assign_mode() if _pyvmd is not None else "off"
    if mode == "off":
        return
    keypath, alarm = info
    frame = traceback.extract_stack(limit=3)[0]
    text = ("Assigning to self is not thread safe: %s\n  File \"%s\", line %s, in %s\n    %s"
            % (keypath, frame.filename, frame.lineno, frame.name, (frame.line or "").strip()))
    logging.getLogger(type(instance).__module__).warning(text)
    if mode == "alarm" and alarm is not None:
        _pyvmd.self_assign_alarm(keypath, text, alarm["path"],
                                 [tuple(p) for p in alarm["prefixes"]])


def _callback_method(instance, kind):
    """The method of ``instance`` decorated as a ``kind`` callback (``@Action.action``...)."""
    cls = type(instance)
    for attr in dir(cls):
        if getattr(getattr(cls, attr, None), "_ncs_callback", None) == kind:
            return getattr(instance, attr)
    return None


# Calls run on a pool of daemon threads: a thread is started when none is idle, and goes back
# to waiting after its call (up to _POOL_MAX_IDLE of them), so a burst of calls does not pay
# for a new thread each, and a callback that never returns holds only its own thread.
_POOL_MAX_IDLE = 16
_pool_lock = threading.Lock()
_pool_idle = 0
_pool_work = None


def _registered(kind, point, callback, what):
    """The instance registered for ``point`` as ``kind`` and its ``callback`` method (None when
    the class has none), with the calling thread given the application's context; or a
    (None, None, message) when nothing is registered. ``what`` names the point in messages."""
    reg = lookup(kind, point)
    if reg is None:
        return None, None, "no %s callback is registered for the %s %s" % (kind, what, point)
    threading.current_thread().ncs_context = app_state(reg.app).ctx
    return reg.instance, _callback_method(reg.instance, callback), None


def dispatch(call_id, text):
    """Runs a call of the server on a thread of the pool and returns at once (called by the
    VM's reader thread, which must go on reading: the callback's own requests need it)."""
    import queue

    global _pool_idle, _pool_work
    with _pool_lock:
        if _pool_work is None:
            _pool_work = queue.SimpleQueue()
        reuse = _pool_idle > 0
        if reuse:
            _pool_idle -= 1
    if reuse:
        _pool_work.put((call_id, text))
    else:
        threading.Thread(target=_pool_worker, args=(call_id, text), daemon=True).start()


def _pool_worker(call_id, text):
    global _pool_idle
    while True:
        reply = _run_call(call_id, text)
        # Counted idle before the reply goes: the server's next call may come as soon as it
        # has the reply, and must find this thread rather than start another.
        with _pool_lock:
            stay = _pool_idle < _POOL_MAX_IDLE
            if stay:
                _pool_idle += 1
        _pyvmd.call_result(call_id, reply)
        if not stay:
            return
        call_id, text = _pool_work.get()


def _reply(ok, value=None, code=None, message=None):
    import json

    reply = {"ok": ok, "value": value}
    if not ok:
        reply["code"] = code
        reply["message"] = message
    return json.dumps(reply)


# The calls running now: call id → the ident of the thread that runs it (see ``cancel``).
_running_calls = {}


def cancel(call_id):
    """The server gave up on call ``call_id`` (it ran past its timeout): raises TimeoutError in
    the thread that runs it, at its next Python instruction. Code stuck outside Python, or that
    swallows the exception, is not stopped by this: the server kills the VM if the call has
    not returned soon after."""
    import ctypes

    # Under the lock: a call that has ended (and left _running_calls) gets no exception.
    with _pool_lock:
        ident = _running_calls.get(call_id)
        if ident is None:
            return
        _log.error("call %s ran past its timeout: raising TimeoutError in it", call_id)
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident),
                                                   ctypes.py_object(TimeoutError))


def _run_call(call_id, text):
    """Runs a call (JSON text); the text of its reply."""
    try:
        with _pool_lock:
            _running_calls[call_id] = threading.get_ident()
        try:
            return _run_call_here(call_id, text)
        finally:
            with _pool_lock:
                _running_calls.pop(call_id, None)
    except TimeoutError:
        # Cancelled just as it ended: its caller has given up on it anyway.
        return _reply(False, code="callback", message="the call ran past its timeout")


def _run_call_here(call_id, text):
    import json

    try:
        call = json.loads(text)
        threading.current_thread().name = "%s:%s" % (call.get("kind", "call"), call.get("point"))
        if call.get("kind") == "action":
            ok, value = _run_action(call)
        elif call.get("kind") == "service":
            ok, value = _run_service(call)
        elif call.get("kind") == "validation":
            ok, value = _run_validation(call)
        else:
            ok, value = False, "unknown call %r" % (call.get("kind"),)
        return _reply(True, value) if ok else _reply(False, code="callback", message=value)
    except BaseException as exc:  # noqa: BLE001  (a bug of ours must still answer the call)
        _log.exception("call %s failed", call_id)
        return _reply(False, code="callback", message=_last_line(exc))


def _run_action(call):
    """Runs ``cb_action`` of the class registered for the call's actionpoint; (True, output)
    or (False, the error message)."""
    from . import CONFD_ERR, _params

    point = call["point"]
    instance, method, missing = _registered("action", point, "action", "actionpoint")
    if missing is not None:
        return False, missing
    if method is None:
        return False, ("%s (actionpoint %s) has no method decorated with @Action.action"
                       % (type(instance).__name__, point))
    kp = call["kp"]
    params = call["params"]
    action_path = "%s/%s" % (kp, call["name"])
    inp = _params.from_json(params["input"], call["input"], action_path)
    out = _params.new(params["output"], action_path)
    uinfo = UserInfo(call.get("user", ""))
    _caller.uinfo = uinfo
    try:
        with _Active(instance, kp, call.get("alarm")):
            if getattr(method, "_ncs_takes_trans", False):
                from . import maapi

                # The user's read transaction, with their rights, as NSO's action transaction.
                with maapi.single_read_trans(uinfo.username, uinfo.context) as trans:
                    uinfo.actx_thandle = trans.th
                    result = method(uinfo, call["name"], kp, inp, out, trans)
            else:
                result = method(uinfo, call["name"], kp, inp, out)
    except BaseException as exc:  # noqa: BLE001  (package code: any failure is the client's error)
        # The traceback goes to the VM's log; the client gets the message.
        logging.getLogger(type(instance).__module__).error(
            "action %s (actionpoint %s) failed: %s", action_path, point, _last_line(exc),
            exc_info=exc)
        message = str(exc) or type(exc).__name__
        return False, message
    finally:
        _caller.uinfo = None
    if result == CONFD_ERR:
        return False, "the action callback of %s returned CONFD_ERR" % point
    return True, out._to_json()


# ---------------------------------------------------------------------------------------------
# Calls from the server: service callbacks


class TransCtx:
    """NSO's ``tctx`` (``_ncs.TransCtxRef``): the transaction a service callback runs in."""

    def __init__(self, th, uinfo):
        import _ncs

        self.th = th
        self.uinfo = uinfo
        self.username = uinfo.username
        self.dbname = _ncs.RUNNING
        self.mode = _ncs.READ_WRITE

    def __repr__(self):
        return "TransCtx(th=%r, uinfo=%r)" % (self.th, self.uinfo)


# Threads running a service or validation callback: their commit holds the commit lock, so
# applying another transaction from them would wait for themselves.
_in_commit = threading.local()


def in_commit_callback():
    """True in a thread that runs a service or validation callback (``ncs.maapi`` refuses
    ``apply`` there)."""
    return getattr(_in_commit, "active", False)


def _run_service(call):
    """Runs one service callback (``phase``: pre_modification, create, post_modification) of
    the class registered for the call's servicepoint, on the server's transaction ``th`` (the
    commit's own); (True, {"defined": whether the class has the callback, "proplist": the
    returned proplist or None}) or (False, the error message)."""
    import _ncs

    from . import maagic, maapi

    point = call["point"]
    phase = call["phase"]
    instance, method, missing = _registered("service", point, phase, "servicepoint")
    if missing is not None:
        return False, missing
    if method is None:
        if phase == "create":
            return False, ("%s (servicepoint %s) has no method decorated with @Service.create"
                           % (type(instance).__name__, point))
        # Pre and post modification are optional: the server need not ask again.
        return True, {"defined": False, "proplist": None}
    kp = call["kp"]
    proplist = [tuple(p) for p in call.get("proplist") or []]
    trans = maapi.Transaction(maapi.Maapi(), th=call["th"], rw=_ncs.READ_WRITE)
    # The commit's transaction, lent for this call: writes need not wait for their answers.
    trans._write_behind = True
    tctx = TransCtx(call["th"], UserInfo(call.get("user", "system"), "system"))
    root = maagic.get_root(trans)
    _in_commit.active = True
    try:
        if phase == "create":
            service = maagic.get_node(trans, kp)
            with _Active(instance, kp, call.get("alarm")):
                result = method(tctx, root, service, proplist)
        else:
            result = method(tctx, call["op"], kp, root, proplist)
        # Every write is answered before the transaction goes back to the server.
        trans._flush()
    except BaseException as exc:  # noqa: BLE001  (package code: any failure aborts the commit)
        logging.getLogger(type(instance).__module__).error(
            "%s of %s (servicepoint %s) failed: %s", phase, kp, point, _last_line(exc),
            exc_info=exc)
        return False, "Python cb_%s error: %s" % (phase, str(exc) or type(exc).__name__)
    finally:
        _in_commit.active = False
    from . import CONFD_ERR, CONFD_OK

    if result is None or (type(result) is int and result == CONFD_OK):
        return True, {"defined": True, "proplist": None}
    if type(result) is int and result == CONFD_ERR:
        return False, "cb_%s of %s (servicepoint %s) returned CONFD_ERR" % (phase, kp, point)
    try:
        return True, {"defined": True,
                      "proplist": [[str(name), str(value)] for name, value in result]}
    except (TypeError, ValueError):
        return False, ("cb_%s of %s returned %r: a proplist is a list of (name, value) pairs"
                       % (phase, point, result))


# ---------------------------------------------------------------------------------------------
# Calls from the server: validation points


def _run_validation(call):
    """Runs ``cb_validate`` of the class registered for the call's validation point on the
    server's read-only transaction ``th`` (the configuration being validated); (True, None) or
    (False, the error message)."""
    import _ncs

    from . import CONFD_ERR, maagic, maapi

    point = call["point"]
    instance, method, missing = _registered("validation", point, "validate",
                                            "validation point")
    if missing is not None:
        return False, missing
    if method is None:
        return False, ("%s (validation point %s) has no method decorated with "
                       "@ValidationPoint.validate" % (type(instance).__name__, point))
    kp = call["kp"]
    trans = maapi.Transaction(maapi.Maapi(), th=call["th"], rw=_ncs.READ)
    tctx = TransCtx(call["th"], UserInfo(call.get("user", "system"), "system"))
    tctx.mode = _ncs.READ
    value = call.get("value")
    newval = None if value is None else _ncs.Value(value)
    _in_commit.active = True
    try:
        result = method(tctx, kp, newval, maagic.get_root(trans))
    except BaseException as exc:  # noqa: BLE001  (package code: any failure rejects)
        logging.getLogger(type(instance).__module__).info(
            "validation %s of %s rejected: %s", point, kp, _last_line(exc))
        return False, str(exc) or type(exc).__name__
    finally:
        _in_commit.active = False
    if type(result) is int and result == CONFD_ERR:
        return False, "the validation point %s returned CONFD_ERR" % point
    return True, None
