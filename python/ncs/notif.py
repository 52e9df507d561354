"""``ncs.notif``: notifications that package code sends on the server's event streams, and
notification sources (pyvmd's own API).

A package declares its streams in ``package-meta-data.xml`` and defines its notifications in its
YANG. It sends them from any thread::

    import ncs.notif

    ticks = ncs.notif.Stream('ticker')
    ticks.send('/tick:tick', count=3, source={'host': 'h1'})          # path and values
    ticks.send('<tick xmlns="http://example.com/tick"><count>3</count></tick>')  # XML

    n = ncs.notif.Notification('/tick:tick')                          # built as maagic nodes are
    n.count = 4
    n.source.host = 'h1'               # containers are created on first use
    n.event.create(id='e1').text = 'x' # list entries
    ticks.send(n)

Every notification is validated by the server against its YANG (and the running configuration,
for leafrefs and ``must``) before any subscriber sees it; an invalid one raises
``_ncs.error.Error`` with libyang's message and nothing is sent. ``send`` returns the
notification's ``eventTime``.

A **notification source** is a class whose object runs in a thread of its own, in the style of a
syslog daemon's Python source. Name it as an application component's ``python-class-name`` and
give the component a ``notification-source`` element (the stream, the options)::

    class Ticker(ncs.notif.Source):
        def init(self, options):              # optional; return False to refuse to start
            self.interval = float(options.get('interval', '5'))
            return True

        def run(self):                        # mandatory: the source's own loop
            n = 0
            while not self.exit.wait(self.interval):
                n += 1
                self.post_message(Notification('/tick:tick', count=n))

        def request_exit(self):               # called from another thread at stop
            self.exit.set()                   # (the default does exactly this)

        def deinit(self):                     # optional
            pass

``post_message`` sends at once; with ``auto_close_batches = False`` messages collect until
``close_batch()`` sends them in one request. A :class:`Fetcher` source defines ``fetch()``
instead of ``run()``: the runtime calls it in a loop and posts what it returns.
"""

import decimal
import threading

import _ncs

__all__ = ["Fetcher", "Notification", "Source", "Stream"]


def _yang_name(name):
    """A Python attribute name as a YANG node name (``host_name`` → ``host-name``), as maagic
    does; ``[...]`` access takes YANG names as they are."""
    return name.replace("_", "-")


def _value(value):
    """A Python value as the server takes it."""
    if isinstance(value, _Node):
        return value._json()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return {_yang_name(str(k)): _value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_value(v) for v in value]
    return str(value)


class _Node:
    """A container or list of a notification under construction."""

    def __init__(self):
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_entries", None)

    def __setattr__(self, name, value):
        self[_yang_name(name)] = value

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return self[_yang_name(name)]

    def __setitem__(self, name, value):
        self._children[name] = value

    def __getitem__(self, name):
        child = self._children.get(name)
        if child is None:
            child = self._children[name] = _Node()
        return child

    def create(self, **keys):
        """Adds a list entry with these key leaves (and returns it, to set its other leaves)."""
        if self._children:
            raise ValueError("a node with leaves of its own is a container, not a list")
        if self._entries is None:
            object.__setattr__(self, "_entries", [])
        entry = _Node()
        for key, value in keys.items():
            setattr(entry, key, value)
        self._entries.append(entry)
        return entry

    def _json(self):
        if self._entries is not None:
            return [e._json() for e in self._entries]
        return {k: _value(v) for k, v in self._children.items()}


class Notification(_Node):
    """A notification of the schema, by path (``/prefix:name``; the module's name works as
    well as its prefix), built attribute by attribute or from keyword arguments."""

    def __init__(self, path, **values):
        super().__init__()
        object.__setattr__(self, "_path", path)
        for name, value in values.items():
            setattr(self, name, value)

    def __repr__(self):
        return "<ncs.notif.Notification %s>" % self._path

    def _item(self):
        return {"path": self._path, "values": self._json()}


def _item(notification, values):
    """One notification as the ``notify`` request carries it."""
    if isinstance(notification, Notification):
        if values:
            raise TypeError("values go into the Notification object, not into send()")
        return notification._item()
    if not isinstance(notification, str):
        raise TypeError("a notification is a Notification, its XML, or a path with values, "
                        "not %s" % type(notification).__name__)
    text = notification.strip()
    if text.startswith("<"):
        if values:
            raise TypeError("a notification given as XML takes no values")
        return {"xml": text}
    return {"path": text, "values": _value(dict(values))}


class Stream:
    """A notification stream of the server, by name."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "<ncs.notif.Stream %s>" % self.name

    def send(self, notification, values=None, **kwargs):
        """Sends one notification: a :class:`Notification`, its XML, or its path with its values
        (a dict, or keyword arguments). Returns its ``eventTime``."""
        merged = dict(values or {}, **kwargs)
        return self.send_batch([_item(notification, merged)])[0]

    def send_batch(self, notifications):
        """Sends several notifications in one request: all are checked first, and either all
        are sent, in order, or none (the error names the first bad one). Each is a
        :class:`Notification` or XML text. Returns their ``eventTime``\\ s."""
        items = [n if isinstance(n, dict) else _item(n, None) for n in notifications]
        if not items:
            return []
        answer = _ncs._request("notify", stream=self.name, notifications=items)
        return answer["event-times"]


class Source:
    """Base of a notification source: subclass it and define :meth:`run` (or derive from
    :class:`Fetcher` and define ``fetch``). The runtime creates the object at every start of its
    VM (a reload or a change of its options starts a new one: state kept in the object is lost),
    calls ``init(options)``, runs ``run()`` in a thread of its own, and at stop calls
    ``request_exit()`` from another thread, waits for ``run()`` to return, and calls
    ``deinit()``."""

    #: The stream posted to, when the component's ``notification-source`` names none.
    stream = None
    #: True: every ``post_message`` sends at once. False: messages collect until
    #: :meth:`close_batch`.
    auto_close_batches = True

    def __init__(self):
        #: Set when the source is asked to stop; ``run()`` loops can wait on it.
        self.exit = threading.Event()
        self._batch = []
        self._batch_lock = threading.Lock()

    def init(self, options):
        """Called first with the options (a dict of strings). Return False to refuse to
        start."""
        return True

    def run(self):
        """The source's loop: must return soon after :meth:`request_exit`."""
        raise NotImplementedError("a notification source defines run() (or derives from "
                                  "ncs.notif.Fetcher and defines fetch())")

    def request_exit(self):
        """Asks ``run()`` to return; called from another thread. The default sets
        :attr:`exit`; a source that blocks elsewhere must also interrupt that."""
        self.exit.set()

    def deinit(self):
        """Called last, after ``run()`` returned."""

    def post_message(self, notification, values=None, **kwargs):
        """Posts a notification (as :meth:`Stream.send` takes it) to the source's stream."""
        item = _item(notification, dict(values or {}, **kwargs))
        if self.auto_close_batches:
            return Stream(self._stream_name()).send_batch([item])[0]
        with self._batch_lock:
            self._batch.append(item)
        return None

    def close_batch(self):
        """Sends the posted messages collected since the last batch, in one request."""
        with self._batch_lock:
            batch, self._batch = self._batch, []
        return Stream(self._stream_name()).send_batch(batch)

    def _stream_name(self):
        if not self.stream:
            raise ValueError("%s has no stream: name one in the component's "
                             "<notification-source> or set the class's stream"
                             % type(self).__name__)
        return self.stream


class Fetcher(Source):
    """A source for a simple blocking API: define ``fetch()``, which returns a notification (as
    :meth:`Stream.send` takes it), a list of them, or None when there is nothing new; the
    runtime calls it in a loop until the source is asked to stop, waiting
    :attr:`fetch_no_data_delay` seconds after a None."""

    #: Seconds to wait after a ``fetch()`` that found nothing.
    fetch_no_data_delay = 1.0

    def fetch(self):
        raise NotImplementedError("a Fetcher defines fetch()")

    def run(self):
        while not self.exit.is_set():
            got = self.fetch()
            if got is None:
                self.exit.wait(self.fetch_no_data_delay)
                continue
            for notification in got if isinstance(got, list) else [got]:
                self.post_message(notification)
            if not self.auto_close_batches:
                self.close_batch()
