"""End-to-end tests of the notifications that package code sends (``ncs.notif``) and of
notification sources, driven by ncclient.

What is covered:

* streams that a package declares in its ``package-meta-data.xml`` (``notification-stream`` in
  ``urn:pyvmd:package:1.0``): listed in ``/netconf/streams`` with their replay support; a
  ``startTime`` on a stream without replay is refused;
* ``ncs.notif.Stream.send`` from an action, from ``setup()`` and from an application's own
  thread, in every form (a ``Notification`` object, XML, a path with a dict, a path with keyword
  arguments); what it returns; invalid notifications and unknown streams raise
  ``_ncs.error.Error`` and send nothing; ``send_batch`` sends all or none;
* an XPath filter on a package notification; replay of package notifications across a restart;
* notification sources (``ncs.notif.Source`` components with a ``notification-source``): their
  entry in ``/python-vm/status/current``, ``init(options)`` with the metadata's options, a
  refusing ``init()``, ``run()`` in its own thread, ``request_exit()`` from another thread and
  ``deinit()`` at a VM stop, a ``run()`` that raises, a ``run()`` that ignores
  ``request_exit()``, batches (``auto_close_batches = False`` / ``close_batch()``) and
  ``ncs.notif.Fetcher``;
* options from ``/pyvmd-notifications:notification-sources``: a change runs the source again on a
  new object in the same VM process, with the metadata's options overridden by the configured
  ones; a ``<stream>`` there overrides the metadata's; bad options fail the component and good
  ones bring it back.

Run:  PYVMD_BIN=target/debug/pyvmd python3 -m unittest discover -s tests/python \\
          -p 'test_notification_sources.py' -v
"""

import json
import os
import sys
import time
import unittest
from xml.sax.saxutils import escape

from lxml import etree
from ncclient.xml_ import to_ele

from pyvmd_harness import NC_NS, NCS_NS, close_quietly, local, parse
from test_runtime import RuntimeTestCase, vm_pids, write

PKG_NS = "http://tail-f.com/ns/ncs-packages"
PYVMD_PKG_NS = "urn:pyvmd:package:1.0"
NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"   # create-subscription, <notification>
NMN_NS = "urn:ietf:params:xml:ns:netmod:notification"           # replayComplete, /netconf/streams
SOURCES_NS = "urn:pyvmd:notifications"
AL_NS = "http://tail-f.com/ns/ncs-alarms"
NS_URI = "urn:pyvmd-test:nsrc"          # the test packages' notifications
NS = {"ncs": NCS_NS, "al": AL_NS, "n": NS_URI}

EPOCH = "1970-01-01T00:00:00Z"
WAIT = 30      # seconds for something that must happen
QUIET = 1.0    # seconds to wait for something that must not arrive
SPECIAL = "a<b & 'c' \"d\" > \u00fc"   # text that must be escaped on its way

# ----------------------------------------------------------------------------------------------
# The test packages
# ----------------------------------------------------------------------------------------------

# The notification every test package sends (the schema is the server's, so the source packages
# use it as well), and an rpc whose Python callback sends notifications as its input asks.
NSRC_YANG = """
    module nsrc-notif {
      yang-version 1.1;
      namespace "urn:pyvmd-test:nsrc";
      prefix nsrc;
      import tailf-common { prefix tailf; }

      notification event {
        leaf count { type uint32; mandatory true; }
        leaf text { type string; }
        leaf alarm-level { type enumeration { enum low; enum high; } }
        container origin {
          leaf host { type string; }
          leaf pid { type uint32; }
        }
        list item {
          key id;
          leaf id { type string; }
          leaf value { type string; }
        }
      }

      rpc emit {
        tailf:actionpoint nsrc-emit;
        input {
          leaf how { type string; mandatory true; }
          leaf stream { type string; default nsrc-live; }
          leaf count { type uint32; default 1; }
          leaf text { type string; default ""; }
        }
        output {
          leaf result { type string; }
          leaf error { type string; }
          leaf error-class { type string; }
        }
      }
    }
    """

NSRC_PY = '''
    """Sends notifications from an action, from setup() and from a thread of the application;
    two sources (a batching one and a Fetcher) post to the nsrc-sources stream."""

    import os
    import threading

    import _ncs
    import ncs.notif
    from ncs.application import Application
    from ncs.dp import Action
    from ncs.notif import Notification, Stream

    NS = "urn:pyvmd-test:nsrc"


    def send(how, stream, count, text):
        s = Stream(stream)
        if how == "object":
            n = Notification("/nsrc:event", count=count, text=text)
            n.alarm_level = "high"
            n.origin.host = "host-1"
            n.origin.pid = os.getpid()
            n.item.create(id="a").value = "first"
            n.item.create(id="b").value = "second"
            return s.send(n)
        if how == "xml":
            return s.send('<event xmlns="%s"><count>%d</count><text>%s</text></event>'
                          % (NS, count, text))
        if how == "values":
            return s.send("/nsrc:event", {"count": count, "text": text,
                                          "origin": {"host": "host-2"},
                                          "item": [{"id": "x", "value": "ex"}]})
        if how == "kwargs":
            # The module's name works as well as its prefix; alarm_level is alarm-level.
            return s.send("/nsrc-notif:event", count=count, text=text, alarm_level="low")
        if how == "unknown-leaf":
            return s.send("/nsrc:event", count=count, text=text, no_such_leaf="x")
        if how == "bad-type":
            return s.send("/nsrc:event", count="not-a-number", text=text)
        if how == "missing-mandatory":
            return s.send("/nsrc:event", text=text)
        if how == "batch":
            return " ".join(s.send_batch(
                [Notification("/nsrc:event", count=count + i, text=text) for i in range(4)]))
        if how == "batch-bad":
            return " ".join(s.send_batch([
                Notification("/nsrc:event", count=count, text=text),
                Notification("/nsrc:event", count=count + 1, text=text),
                Notification("/nsrc:event", count="many", text=text),
            ]))
        raise ValueError("unknown how %r" % how)


    class Emit(Action):
        @Action.action
        def cb_action(self, uinfo, name, kp, input, output):
            try:
                output.result = send(input.how, input.stream, input.count, input.text)
            except Exception as exc:
                output.error = str(exc)
                output.error_class = "%s.%s" % (type(exc).__module__, type(exc).__name__)
                output.result = "is _ncs.error.Error: %s" % isinstance(exc, _ncs.error.Error)


    class Main(Application):
        def setup(self):
            self.register_action("nsrc-emit", Emit)
            Stream("nsrc-replay").send("/nsrc:event", count=1, text="from-setup")
            self.worker = threading.Thread(target=self.work, name="Sender")
            self.worker.start()

        def work(self):
            Stream("nsrc-replay").send(Notification("/nsrc:event", count=2, text="from-worker"))

        def teardown(self):
            self.worker.join()


    def event(text, count=1):
        return Notification("/nsrc:event", count=count, text=text)


    class Batcher(ncs.notif.Source):
        """Collects posts until close_batch(); a batch with a bad notification sends none."""

        auto_close_batches = False

        def run(self):
            returned = self.post_message(event("batch-a1"))
            self.post_message(event("batch-b1"))
            self.post_message("/nsrc:event", count="bad", text="batch-bad")
            try:
                self.close_batch()
                failure = "close_batch() did not raise"
            except _ncs.error.Error as exc:
                failure = "Error: %s" % exc
            self.post_message(event("batch-a2"))
            self.post_message(event("batch-b2"))
            self.post_message(event("batch-report: post_message returned %r; first batch: %s"
                                    % (returned, failure)))
            self.close_batch()
            self.exit.wait()


    class ClassStream(ncs.notif.Source):
        """Its notification-source names no stream: the class's stream attribute is used."""

        stream = "nsrc-sources"

        def init(self, options):
            self.word = options["word"]
            return True

        def run(self):
            self.post_message(event("class-stream " + self.word))
            self.exit.wait()


    class Fetch(ncs.notif.Fetcher):
        """fetch() returns a list, then one notification, then nothing."""

        fetch_no_data_delay = 0.2

        def init(self, options):
            self.queue = [[event("fetch-1"), event("fetch-2")], event("fetch-3")]
            return True

        def fetch(self):
            return self.queue.pop(0) if self.queue else None
'''

# A source that records every call of its lifecycle (with its thread) in a JSON-lines file
# (option "log") and posts one notification when it runs: its options in text, its pid in
# origin/pid.
LIFE_PY = '''
    import json
    import os
    import threading

    import ncs.notif
    from ncs.notif import Notification


    class Life(ncs.notif.Source):
        created = 0

        def __init__(self):
            super().__init__()
            Life.created += 1
            self.serial = Life.created

        def record(self, event, **more):
            more.update(event=event, serial=self.serial, pid=os.getpid(),
                        thread=threading.get_ident(), stream=self.stream)
            with open(self.path, "a") as f:
                f.write(json.dumps(more, sort_keys=True) + "\\n")

        def init(self, options):
            self.path = options["log"]
            self.options = dict(options)
            self.record("init", options=self.options)
            return options.get("mode") != "refuse"

        def run(self):
            self.record("run")
            n = Notification("/nsrc:event", count=self.serial,
                             text=json.dumps(self.options, sort_keys=True))
            n.origin.pid = os.getpid()
            self.post_message(n)
            self.record("posted")
            self.exit.wait()
            self.record("run-end")

        def request_exit(self):
            self.record("request_exit")
            super().request_exit()

        def deinit(self):
            # The stream can still be used from deinit().
            self.post_message(Notification("/nsrc:event", count=self.serial, text="deinit"))
            self.record("deinit")
'''

REFUSE_PY = '''
    import ncs.notif


    class Refuse(ncs.notif.Source):
        def init(self, options):
            return options.get("level") == "sane"

        def run(self):
            self.exit.wait()
'''

MISFIT_PY = '''
    import ncs.notif
    from ncs.application import Application


    class NoStream(ncs.notif.Source):
        """Neither its notification-source nor its class names a stream."""

        def run(self):
            self.exit.wait()


    class NotSource(Application):
        """A notification-source component whose class is no Source."""

        def setup(self):
            pass
'''

RAISE_PY = '''
    import ncs.notif


    class Raise(ncs.notif.Source):
        def run(self):
            raise RuntimeError("boom from run")
'''

STUCK_PY = '''
    import time

    import ncs.notif


    class Stuck(ncs.notif.Source):
        def run(self):
            while True:          # ignores request_exit()
                time.sleep(0.05)
'''


def metadata(root, name, streams=(), components=()):
    """Writes packages/<name>/package-meta-data.xml.

    ``streams`` are (name, description, replay-support); ``components`` are (name, class-name,
    source) where source is None (an application) or (stream, {option: value})."""
    xml_streams = "".join(
        '<notification-stream xmlns="%s"><name>%s</name><description>%s</description>'
        '<replay-support>%s</replay-support></notification-stream>'
        % (PYVMD_PKG_NS, s, d, "true" if r else "false") for s, d, r in streams)
    xml_components = ""
    for cname, cls, source in components:
        src = ""
        if source is not None:
            stream, options = source
            src = '<notification-source xmlns="%s">%s%s</notification-source>' % (
                PYVMD_PKG_NS, "<stream>%s</stream>" % stream if stream else "",
                "".join("<option><name>%s</name><value>%s</value></option>" % kv
                        for kv in options.items()))
        xml_components += ("<component><name>%s</name><application><python-class-name>%s"
                           "</python-class-name></application>%s</component>"
                           % (cname, cls, src))
    write(os.path.join(root, name, "package-meta-data.xml"), """
        <ncs-package xmlns="%s">
          <name>%s</name>
          <package-version>1.0</package-version>
          <python-package><vm-name>%s</vm-name></python-package>
          %s
          %s
        </ncs-package>
        """ % (PKG_NS, name, name, xml_streams, xml_components))


# ----------------------------------------------------------------------------------------------
# Notifications as received
# ----------------------------------------------------------------------------------------------

class Event:
    """One received ``<notification>``: its eventTime and its content element."""

    def __init__(self, xml):
        self.xml = xml
        self.root = parse(xml)
        assert self.root.tag == "{%s}notification" % NOTIF_NS, "not a notification: %s" % xml
        self.time = (self.root.findtext("{%s}eventTime" % NOTIF_NS) or "").strip()
        bodies = [c for c in self.root if isinstance(c.tag, str)
                  and c.tag != "{%s}eventTime" % NOTIF_NS]
        assert len(bodies) == 1, "expected one element besides eventTime: %s" % xml
        self.body = bodies[0]
        self.name = local(self.body.tag)
        self.ns = etree.QName(self.body).namespace

    def text(self, path):
        """Text at ``path`` below the content (``n:`` is the test packages' namespace)."""
        found = self.body.find(path, NS)
        return None if found is None else (found.text or "").strip()

    def is_event(self, text=None):
        return (self.name, self.ns) == ("event", NS_URI) and (text is None or
                                                              self.text("n:text") == text)

    def __repr__(self):
        return "<Event %s %s %r>" % (self.time, self.name, self.text("n:text"))


def subscription(stream, filter=None, start=None):
    body = "<stream>%s</stream>%s%s" % (stream, filter or "",
                                        "" if start is None else "<startTime>%s</startTime>" % start)
    return to_ele('<create-subscription xmlns="%s">%s</create-subscription>' % (NOTIF_NS, body))


class NotifTestCase(RuntimeTestCase):
    """A server per class with packages written before it starts (as in test_runtime), helpers
    to subscribe and read notifications, and the server and VM logs printed when a test
    fails."""

    def run(self, result=None):
        if result is None or self.server is None:
            return super().run(result)
        offsets = self.server.log_offsets()
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            vm_logs = ""
            for name in sorted(os.listdir(self.server.log_dir)):
                if name.startswith("ncs-python-vm"):
                    with open(os.path.join(self.server.log_dir, name), errors="replace") as f:
                        vm_logs += "----- %s -----\n%s\n" % (name, f.read()[-6000:])
            sys.stderr.write("\n===== server log during %s =====\n%s\n%s===== end =====\n"
                             % (self.id(), self.server.log_since(offsets), vm_logs))
        return out

    # -- sessions and subscriptions ------------------------------------------------------------

    def session(self):
        m = self.server.connect()
        self.addCleanup(close_quietly, m)
        return m

    def subscribed(self, stream, filter=None, start=None):
        m = self.session()
        reply = m.dispatch(subscription(stream, filter, start))
        self.assertTrue(reply.ok, "create-subscription on %s: %s" % (stream, reply.xml))
        return m

    def take(self, m, what="a notification", timeout=WAIT):
        n = m.take_notification(block=True, timeout=timeout)
        if n is None:
            self.fail("no notification within %s s (waiting for %s)" % (timeout, what))
        return Event(n.notification_xml)

    def collect_until(self, m, predicate, what, timeout=WAIT):
        """Every notification up to and including the first one ``predicate`` accepts."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            n = m.take_notification(block=True, timeout=max(deadline - time.monotonic(), 0.01))
            if n is None:
                self.fail("no %s within %s s; received instead: %r" % (what, timeout, seen))
            seen.append(Event(n.notification_xml))
            if predicate(seen[-1]):
                return seen

    def assertNothing(self, m, timeout=QUIET):
        n = m.take_notification(block=True, timeout=timeout)
        self.assertIsNone(n, "unexpected notification:\n%s" % (n and n.notification_xml))

    # -- server state --------------------------------------------------------------------------

    def current_entries(self, vm):
        """{(package, component, class-name): status} of /python-vm/status/current[vm]."""
        doc = self.get('<python-vm xmlns="%s"><status><current><node-id>%s</node-id></current>'
                       '</status></python-vm>' % (NCS_NS, vm))
        out = {}
        for p in doc.iterfind(".//ncs:current/ncs:packages", NS):
            for c in p.iterfind("ncs:components", NS):
                for e in c.iterfind("ncs:class-names", NS):
                    out[(p.findtext("ncs:package-name", namespaces=NS),
                         c.findtext("ncs:component-name", namespaces=NS),
                         e.findtext("ncs:class-name", namespaces=NS))] = \
                        e.findtext("ncs:status", namespaces=NS)
        return out

    def oper_status(self, package):
        """(status, error-info) of /ncs:packages/package[name]/oper-status."""
        doc = self.get('<packages xmlns="%s"><package><name>%s</name></package></packages>'
                       % (NCS_NS, package))
        status = doc.find(".//ncs:package/ncs:oper-status", NS)
        kinds = [local(c.tag) for c in status if local(c.tag) != "error-info"] \
            if status is not None else []
        return (kinds[0] if kinds else None,
                doc.findtext(".//ncs:package/ncs:oper-status/ncs:error-info", namespaces=NS))

    def all_alarms(self):
        """{(type, package): (is-cleared, last-alarm-text)} of the alarm list."""
        doc = self.get('<alarms xmlns="%s"><alarm-list/></alarms>' % AL_NS)
        out = {}
        for a in doc.iterfind(".//al:alarm", NS):
            mo = a.findtext("al:managed-object", namespaces=NS) or ""
            package = mo.split("'")[1] if "'" in mo else mo
            out[(a.findtext("al:type", namespaces=NS).split(":")[-1], package)] = (
                a.findtext("al:is-cleared", namespaces=NS) == "true",
                a.findtext("al:last-alarm-text", namespaces=NS))
        return out

    def alarm(self, type, package):
        return self.all_alarms().get((type, package))


# ==============================================================================================
# Streams declared by packages and notifications sent by package code
# ==============================================================================================

class TestPackageNotifications(NotifTestCase):

    @classmethod
    def write_packages(cls, root, tmp):
        metadata(root, "nsrc",
                 streams=[("nsrc-live", "Live events of the nsrc package", False),
                          ("nsrc-replay", "Replayed events of the nsrc package", True),
                          ("nsrc-sources", "What the nsrc sources post", True)],
                 components=[("main", "nsrc.Main", None),
                             ("batcher", "nsrc.Batcher", ("nsrc-sources", {})),
                             ("fetcher", "nsrc.Fetch", ("nsrc-sources", {})),
                             ("classy", "nsrc.ClassStream", (None, {"word": "hello"}))])
        write(os.path.join(root, "nsrc", "src", "yang", "nsrc-notif.yang"), NSRC_YANG)
        write(os.path.join(root, "nsrc", "python", "nsrc.py"), NSRC_PY)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wait_registered(cls, "nsrc-emit (action)")

    def emit(self, how, stream="nsrc-live", count=1, text=""):
        """Runs the emit rpc: {result, error, error-class} of its output."""
        reply = self.m.dispatch(to_ele(
            '<emit xmlns="%s"><how>%s</how><stream>%s</stream><count>%d</count><text>%s</text>'
            '</emit>' % (NS_URI, how, stream, count, escape(text))))
        self.assertTrue(reply.ok, "emit %s: %s" % (how, reply.xml))
        root = parse(reply.xml)
        return {name: root.findtext(".//n:%s" % name, namespaces=NS)
                for name in ("result", "error", "error-class")}

    def sent(self, how, **kwargs):
        """emit that must succeed: its result (the eventTime(s))."""
        out = self.emit(how, **kwargs)
        self.assertIsNone(out["error"], "emit %s failed: %r" % (how, out))
        return out["result"]

    def test_declared_streams_are_listed_with_their_replay_support(self):
        data = parse(self.m.get(filter=("subtree", '<netconf xmlns="%s"/>' % NMN_NS)).xml)
        streams = {}
        for s in data.iterfind(".//{%s}streams/{%s}stream" % (NMN_NS, NMN_NS)):
            streams[s.findtext("{%s}name" % NMN_NS)] = (
                s.findtext("{%s}description" % NMN_NS), s.findtext("{%s}replaySupport" % NMN_NS))
        self.assertEqual(streams.get("nsrc-live"), ("Live events of the nsrc package", "false"),
                         streams)
        self.assertEqual(streams.get("nsrc-replay"),
                         ("Replayed events of the nsrc package", "true"), streams)
        self.assertIn("NETCONF", streams)

    def test_start_time_on_a_stream_without_replay_is_refused(self):
        m = self.session()
        reply = m.dispatch(subscription("nsrc-live", start=EPOCH))
        self.assertFalse(reply.ok, reply.xml)
        self.assertEqual(reply.error.tag, "operation-failed", reply.xml)
        self.assertEqual(reply.error.type, "protocol", reply.xml)
        # The session is still free to subscribe without replay.
        self.assertTrue(m.dispatch(subscription("nsrc-live")).ok)

    def test_a_notification_object_arrives_as_built(self):
        m = self.subscribed("nsrc-live")
        event_time = self.sent("object", count=7, text="built")
        e = self.take(m, "the object's notification")
        self.assertTrue(e.is_event("built"), e.xml)
        self.assertEqual(e.time, event_time, "send() must return the notification's eventTime")
        self.assertEqual(e.text("n:count"), "7")
        self.assertEqual(e.text("n:alarm-level"), "high", e.xml)
        self.assertEqual(e.text("n:origin/n:host"), "host-1", e.xml)
        self.assertEqual(int(e.text("n:origin/n:pid")), vm_pids("nsrc")[0], e.xml)
        items = [(i.findtext("n:id", namespaces=NS), i.findtext("n:value", namespaces=NS))
                 for i in e.body.iterfind("n:item", NS)]
        self.assertEqual(items, [("a", "first"), ("b", "second")], e.xml)
        self.assertNothing(m)

    def test_xml_path_and_values_and_keyword_forms(self):
        m = self.subscribed("nsrc-live")
        times = [self.sent("xml", count=1, text="as-xml"),
                 self.sent("values", count=2, text=SPECIAL),
                 self.sent("kwargs", count=3, text="as-kwargs")]
        got = [self.take(m, "notification %d" % i) for i in (1, 2, 3)]
        self.assertEqual([(e.name, e.ns) for e in got], [("event", NS_URI)] * 3, got)
        self.assertEqual([e.text("n:text") for e in got], ["as-xml", SPECIAL, "as-kwargs"])
        self.assertEqual([e.text("n:count") for e in got], ["1", "2", "3"])
        self.assertEqual([e.time for e in got], times)
        self.assertEqual(got[1].text("n:origin/n:host"), "host-2", got[1].xml)
        self.assertEqual(got[1].text("n:item/n:id"), "x", got[1].xml)
        self.assertEqual(got[1].text("n:item/n:value"), "ex", got[1].xml)
        self.assertEqual(got[2].text("n:alarm-level"), "low", got[2].xml)

    def test_invalid_notifications_raise_and_send_nothing(self):
        m = self.subscribed("nsrc-live")
        for how, mentions in (("unknown-leaf", ["no-such-leaf"]),
                              ("bad-type", ["not-a-number", "uint32"]),
                              ("missing-mandatory", ["count", "mandatory"])):
            with self.subTest(how=how):
                out = self.emit(how, text="invalid-" + how)
                self.assertIsNotNone(out["error"], "%s was accepted: %r" % (how, out))
                self.assertEqual(out["error-class"], "_ncs.error.Error", out)
                self.assertEqual(out["result"], "is _ncs.error.Error: True", out)
                for word in mentions:
                    self.assertIn(word, out["error"].lower(), out)
        out = self.emit("object", stream="no-such-stream", text="nowhere")
        self.assertEqual(out["error-class"], "_ncs.error.Error", out)
        self.assertIn("no-such-stream", out["error"], out)
        # None of them was sent: the first notification to arrive is the next good one.
        self.sent("xml", count=5, text="after-the-bad-ones")
        e = self.take(m, "the good notification")
        self.assertTrue(e.is_event("after-the-bad-ones"), "an invalid one was sent: %s" % e.xml)

    def test_send_batch_sends_all_or_none(self):
        m = self.subscribed("nsrc-live")
        out = self.emit("batch-bad", count=10, text="bad-batch")
        self.assertEqual(out["error-class"], "_ncs.error.Error", out)
        self.assertIn("many", out["error"], out)
        self.assertIn("notification 3", out["error"], "the error names the bad one: %r" % out)
        times = self.sent("batch", count=20, text="good-batch").split()
        got = [self.take(m, "batch notification %d" % i) for i in range(4)]
        self.assertEqual([(e.text("n:text"), e.text("n:count")) for e in got],
                         [("good-batch", str(c)) for c in (20, 21, 22, 23)],
                         "a notification of the bad batch was sent, or the good one is "
                         "incomplete: %r" % got)
        self.assertEqual([e.time for e in got], times)
        self.assertNothing(m)

    def test_xpath_filter_on_a_package_notification(self):
        m = self.subscribed("nsrc-live", filter=(
            '<filter type="xpath" select="/n:event[n:count &gt; 2]" xmlns:n="%s"/>' % NS_URI))
        self.sent("batch", count=1, text="filtered")     # counts 1, 2, 3, 4
        got = [self.take(m, "a matching notification") for _ in range(2)]
        self.assertEqual([e.text("n:count") for e in got], ["3", "4"], got)
        self.assertNothing(m)

    def test_sent_from_setup_and_from_an_application_thread(self):
        m = self.subscribed("nsrc-replay", start=EPOCH)
        seen = self.collect_until(m, lambda e: e.name == "replayComplete", "replayComplete")
        texts = [e.text("n:text") for e in seen if e.is_event()]
        self.assertIn("from-setup", texts)
        self.assertIn("from-worker", texts)

    def test_a_batching_source_and_a_fetcher(self):
        expected = {"batch-a2", "batch-b2", "fetch-1", "fetch-2", "fetch-3",
                    "class-stream hello"}
        m = self.subscribed("nsrc-sources", start=EPOCH)
        seen = []

        def complete(e):
            seen.append(e)
            texts = {x.text("n:text") for x in seen}
            return expected <= texts and any(t.startswith("batch-report") for t in texts if t)
        self.collect_until(m, complete, "every notification of the sources")
        texts = [e.text("n:text") for e in seen if e.is_event()]
        # Each source's notifications in the order posted; nothing of the failed batch.
        self.assertEqual([t for t in texts if t.startswith("fetch")],
                         ["fetch-1", "fetch-2", "fetch-3"], texts)
        batcher = [t for t in texts if t.startswith("batch")]
        self.assertEqual(batcher[:2], ["batch-a2", "batch-b2"], texts)
        self.assertEqual(len(batcher), 3, texts)
        report = batcher[2]
        self.assertIn("post_message returned None", report)
        self.assertIn("first batch: Error: ", report)
        self.assertIn("notification 3", report.split("first batch:")[1])
        self.assertIn('"bad"', report.split("first batch:")[1])
        # The sources are running components of the package, each with its entry (the one
        # without a stream in its metadata is on its class's stream).
        current = self.current_entries("nsrc")
        self.assertEqual(current.get(("nsrc", "classy", "nsrc-sources (notification source)")),
                         "running", current)
        self.assertEqual(current.get(("nsrc", "fetcher", "nsrc-sources (notification source)")),
                         "running", current)
        self.assertEqual(current.get(("nsrc", "batcher", "nsrc-sources (notification source)")),
                         "running", current)
        self.assertEqual(self.oper_status("nsrc")[0], "up")

    def test_zz_package_notifications_are_replayed_after_a_restart(self):
        marker = "before-restart-%d" % time.time_ns()
        event_time = self.sent("object", stream="nsrc-replay", count=42, text=marker)
        close_quietly(self.m)
        self.server.stop()
        self.server.start()
        type(self).m = self.server.connect()
        m = self.subscribed("nsrc-replay", start=EPOCH)
        seen = self.collect_until(m, lambda e: e.name == "replayComplete", "replayComplete")
        found = [e for e in seen if e.is_event(marker)]
        self.assertEqual(len(found), 1, seen)
        self.assertEqual(found[0].time, event_time)
        self.assertEqual(found[0].text("n:count"), "42")
        self.assertEqual(found[0].text("n:origin/n:host"), "host-1")


# ==============================================================================================
# Notification sources: lifecycle and options from the configuration
# ==============================================================================================

def sources_config(package, component, options=None, stream=None):
    entry = "<package>%s</package><component>%s</component>" % (package, component)
    if stream is not None:
        entry += "<stream>%s</stream>" % stream
    entry += "".join("<option><name>%s</name><value>%s</value></option>" % kv
                     for kv in (options or {}).items())
    return ('<config xmlns:nc="%s"><notification-sources xmlns="%s"><source nc:operation="replace">'
            '%s</source></notification-sources></config>' % (NC_NS, SOURCES_NS, entry))


REMOVE_SOURCES = ('<config xmlns:nc="%s"><notification-sources xmlns="%s" nc:operation="remove"/>'
                  '</config>' % (NC_NS, SOURCES_NS))


class TestNotificationSources(NotifTestCase):

    @classmethod
    def write_packages(cls, root, tmp):
        cls.life_log = os.path.join(tmp, "life.jsonl")
        cls.defaults = {"log": cls.life_log, "tag": "meta", "mode": "ok"}
        metadata(root, "src-life",
                 streams=[("life", "The life source's stream", False),
                          ("life-alt", "Another stream for the life source", False)],
                 components=[("life", "src_life.Life", ("life", cls.defaults))])
        write(os.path.join(root, "src-life", "python", "src_life.py"), LIFE_PY)
        # The notification's module (the schema is the server's: every package may use it).
        write(os.path.join(root, "src-life", "src", "yang", "nsrc-notif.yang"), NSRC_YANG)
        metadata(root, "src-refuse", streams=[("refuse", "never used", False)],
                 components=[("main", "src_refuse.Refuse", ("refuse", {"level": "insane"}))])
        write(os.path.join(root, "src-refuse", "python", "src_refuse.py"), REFUSE_PY)
        metadata(root, "src-misfit", streams=[("misfit", "never used", False)],
                 components=[("nostream", "src_misfit.NoStream", (None, {})),
                             ("notsource", "src_misfit.NotSource", ("misfit", {}))])
        write(os.path.join(root, "src-misfit", "python", "src_misfit.py"), MISFIT_PY)
        metadata(root, "src-raise", streams=[("raise", "never used", False)],
                 components=[("main", "src_raise.Raise", ("raise", {}))])
        write(os.path.join(root, "src-raise", "python", "src_raise.py"), RAISE_PY)
        metadata(root, "src-stuck", streams=[("stuck", "never used", False)],
                 components=[("main", "src_stuck.Stuck", ("stuck", {}))])
        write(os.path.join(root, "src-stuck", "python", "src_stuck.py"), STUCK_PY)

    def setUp(self):
        super().setUp()
        self.settle()

    def tearDown(self):
        self.assertTrue(self.m.edit_config(target="running", config=REMOVE_SOURCES).ok)
        super().tearDown()

    # -- the life source's records -------------------------------------------------------------

    def records(self):
        try:
            with open(self.life_log) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def wait_records(self, start, predicate, what):
        """The records after the first ``start`` once ``predicate`` accepts them."""
        return self.wait_for(what, lambda: predicate(self.records()[start:]) and
                             self.records()[start:])

    def settle(self):
        """Waits until the life source runs with the metadata's options and nothing else is
        under way (the previous test's configuration removed)."""
        def steady():
            recs = self.records()
            if not recs or recs[-1]["event"] != "posted":
                return False
            init = [r for r in recs if r["event"] == "init" and r["serial"] == recs[-1]["serial"]
                    and r["pid"] == recs[-1]["pid"]]
            return init and init[-1]["options"] == self.defaults and init[-1]["stream"] == "life"
        self.wait_for("the life source running with the metadata's options", steady)
        self.wait_for("its current entry", lambda: self.current_entries("src-life").get(
            ("src-life", "life", "life (notification source)")) == "running")

    def edit(self, config):
        reply = self.m.edit_config(target="running", config=config)
        self.assertTrue(reply.ok, reply.xml)

    def life_status(self):
        return self.start_status("src-life").get(("src-life", "life"))

    # -- tests ---------------------------------------------------------------------------------

    def test_init_gets_the_metadata_options_and_run_has_its_own_thread(self):
        current = self.current_entries("src-life")
        self.assertEqual(current.get(("src-life", "life", "life (notification source)")),
                         "running", current)
        self.assertEqual(self.life_status(), ("started", None))
        self.assertEqual(self.oper_status("src-life")[0], "up")
        recs = self.records()
        [pid] = vm_pids("src-life")
        first = [r for r in recs if r["pid"] == pid]
        self.assertEqual([r["event"] for r in first[:3]], ["init", "run", "posted"], recs)
        init, run, _ = first[:3]
        self.assertEqual(init["options"], self.defaults)
        self.assertEqual(init["stream"], "life")
        self.assertEqual(init["serial"], run["serial"])
        self.assertNotEqual(init["thread"], run["thread"], "run() must have a thread of its own")

    def test_stop_calls_request_exit_from_another_thread_then_deinit(self):
        [pid] = vm_pids("src-life")
        m = self.subscribed("life")
        start = len(self.records())
        run = self.records()[-2]
        self.assertEqual(run["event"], "run")
        self.addCleanup(self.action, "start", "src-life")   # (if the test fails half-way)
        reply = self.action("stop", "src-life")
        self.assertTrue(reply.ok, reply.xml)
        self.assertEqual(vm_pids("src-life"), [])
        recs = self.records()[start:]
        self.assertEqual([r["event"] for r in recs], ["request_exit", "run-end", "deinit"], recs)
        self.assertEqual({(r["pid"], r["serial"]) for r in recs}, {(pid, run["serial"])}, recs)
        self.assertNotEqual(recs[0]["thread"], run["thread"],
                            "request_exit() must be called from another thread than run()'s")
        self.assertEqual(recs[1]["thread"], run["thread"])
        self.assertNotEqual(recs[2]["thread"], run["thread"])
        e = self.take(m, "the notification deinit() posted at the VM stop")
        self.assertTrue(e.is_event("deinit"), e.xml)
        # Started again, it runs a new object in a new process.
        self.assertTrue(self.action("start", "src-life").ok)
        self.settle()
        self.assertNotEqual(vm_pids("src-life"), [pid])

    def test_configured_options_run_a_new_object_in_the_same_vm(self):
        [pid] = vm_pids("src-life")
        m = self.subscribed("life")
        start = len(self.records())
        old = self.records()[-2]
        self.assertEqual(old["event"], "run")
        self.edit(sources_config("src-life", "life", {"tag": "configured", "extra": "x y"}))
        merged = dict(self.defaults, tag="configured", extra="x y")
        # The old object's deinit() posts, then the new object's run().
        e = self.take(m, "the old object's notification from deinit()")
        self.assertTrue(e.is_event("deinit"), e.xml)
        self.assertEqual(int(e.text("n:count")), old["serial"])
        e = self.take(m, "the new object's notification")
        self.assertTrue(e.is_event(), e.xml)
        self.assertEqual(json.loads(e.text("n:text")), merged)
        self.assertEqual(int(e.text("n:origin/n:pid")), pid, "the VM was restarted")
        self.assertEqual(vm_pids("src-life"), [pid])
        recs = self.wait_records(start, lambda r: len(r) >= 6, "the restart's records")
        self.assertEqual([r["event"] for r in recs],
                         ["request_exit", "run-end", "deinit", "init", "run", "posted"], recs)
        self.assertEqual([r["serial"] for r in recs[:3]], [old["serial"]] * 3)
        new = recs[3]["serial"]
        self.assertNotEqual(new, old["serial"], "the source must run on a new object")
        self.assertEqual(recs[4]["serial"], new)
        self.assertEqual(recs[3]["options"], merged)
        self.assertNotEqual(recs[0]["thread"], old["thread"])
        self.assertEqual(int(e.text("n:count")), new)
        self.assertEqual(self.life_status(), ("started", None))

    def test_a_configured_stream_overrides_the_metadata(self):
        alt = self.subscribed("life-alt")
        main = self.subscribed("life")
        self.edit(sources_config("src-life", "life", {"tag": "moved"}, stream="life-alt"))
        e = self.take(alt, "the notification on the configured stream")
        self.assertEqual(json.loads(e.text("n:text"))["tag"], "moved", e.xml)
        # The old object posted its last one from deinit() on the old stream; nothing after.
        e = self.take(main, "the old object's notification from deinit()")
        self.assertTrue(e.is_event("deinit"), e.xml)
        self.assertNothing(main)
        current = self.wait_for("the new current entry", lambda: self.current_entries(
            "src-life").get(("src-life", "life", "life-alt (notification source)")) == "running"
            and self.current_entries("src-life"))
        self.assertNotEqual(current.get(("src-life", "life", "life (notification source)")),
                            "running", current)

    def test_bad_options_fail_the_component_and_good_ones_bring_it_back(self):
        [pid] = vm_pids("src-life")
        self.edit(sources_config("src-life", "life", {"mode": "refuse"}))
        status, info = self.wait_for("the component failed",
                                     lambda: (self.life_status() or [None])[0] == "failed" and
                                     self.life_status())
        self.assertIn("init() refused", info)
        oper, oper_info = self.wait_for("the package's status", lambda: self.oper_status(
            "src-life")[0] != "up" and self.oper_status("src-life"))
        self.assertEqual(oper, "program-code-error")
        self.assertIn("init() refused", oper_info)
        cleared, text = self.wait_for("the alarm", lambda: self.alarm("package-load-failure",
                                                                      "src-life"))
        self.assertFalse(cleared)
        self.assertIn("init() refused", text)
        self.assertNotEqual(self.current_entries("src-life").get(
            ("src-life", "life", "life (notification source)")), "running")
        # Fixed options: the source runs again, the package is up and the alarm cleared.
        m = self.subscribed("life")
        self.edit(sources_config("src-life", "life", {"mode": "ok", "tag": "fixed"}))
        # (The refusing object never ran: no deinit() notification comes first.)
        e = self.take(m, "the fixed source's notification")
        self.assertEqual(json.loads(e.text("n:text"))["tag"], "fixed")
        self.assertEqual(self.wait_for("started", lambda: (self.life_status() or [None])[0] ==
                                       "started" and
                                       self.life_status()), ("started", None))
        self.assertEqual(self.wait_for("up", lambda: self.oper_status("src-life")[0] == "up" and
                                       self.oper_status("src-life")), ("up", None))
        cleared, text = self.wait_for("the cleared alarm", lambda: self.alarm(
            "package-load-failure", "src-life")[0] and self.alarm("package-load-failure",
                                                                   "src-life"))
        self.assertEqual(vm_pids("src-life"), [pid])

    def test_init_returning_false_fails_the_component(self):
        status, info = self.wait_for("src-refuse reported",
                                     lambda: self.start_status("src-refuse").get(
                                         ("src-refuse", "main")))
        self.assertEqual(status, "failed")
        self.assertIn("init() refused", info)
        self.assertIn("insane", info)
        oper, oper_info = self.oper_status("src-refuse")
        self.assertEqual(oper, "program-code-error")
        self.assertIn("init() refused", oper_info)
        cleared, text = self.wait_for("the alarm", lambda: self.alarm("package-load-failure",
                                                                      "src-refuse"))
        self.assertFalse(cleared)
        self.assertIn("init() refused", text)
        self.assertNotIn(("src-refuse", "main", "refuse (notification source)"),
                         self.current_entries("src-refuse"))

    def test_a_source_without_stream_or_source_class_fails(self):
        status = self.wait_for("src-misfit reported", lambda: len(self.start_status(
            "src-misfit")) == 2 and self.start_status("src-misfit"))
        state, info = status[("src-misfit", "nostream")]
        self.assertEqual(state, "failed")
        self.assertIn("no stream", info)
        state, info = status[("src-misfit", "notsource")]
        self.assertEqual(state, "failed")
        self.assertIn("must derive from ncs.notif.Source", info)

    def test_a_run_that_raises_raises_an_alarm(self):
        cleared, text = self.wait_for("the alarm", lambda: self.alarm(
            "package-operation-failure", "src-raise"))
        self.assertFalse(cleared)
        self.assertIn("notification source main failed", text)
        self.assertIn("boom from run", text)
        current = self.wait_for("the finished entry", lambda: self.current_entries(
            "src-raise").get(("src-raise", "main", "raise (notification source)")) not in
            (None, "running") and self.current_entries("src-raise"))
        self.assertEqual(current[("src-raise", "main", "raise (notification source)")],
                         "finished")

    def test_a_run_that_ignores_request_exit_does_not_keep_the_vm_from_stopping(self):
        self.wait_for("the stuck source running", lambda: self.current_entries("src-stuck").get(
            ("src-stuck", "main", "stuck (notification source)")) == "running")
        reply = self.action("stop", "src-stuck")
        self.assertTrue(reply.ok, reply.xml)
        self.assertEqual(vm_pids("src-stuck"), [])
        cleared, text = self.wait_for("the alarm", lambda: self.alarm(
            "package-operation-failure", "src-stuck"))
        self.assertFalse(cleared)
        self.assertIn("did not return within 5", text)
        self.assertIn("request_exit()", text)
        # The source is abandoned: its component's stop is over once the alarm is reported.
        self.assertNotIn("teardown of component main did not finish", self.vm_log("src-stuck"),
                         "the component's thread hung after it abandoned the source")


if __name__ == "__main__":
    unittest.main()
