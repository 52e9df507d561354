"""End-to-end tests of NETCONF notifications (RFC 5277 event streams, RFC 6470 base events and
NSO's ncs-alarms stream), driven by ncclient and raw paramiko.

What is covered:

* the ``:notification`` and ``:interleave`` capabilities and ``/netconf/streams``;
* ``create-subscription``: the default stream, ``<ok/>`` before any notification, rpcs on a
  subscribed session, one subscription per session, and every parameter error;
* the ``NETCONF`` stream's events: ``netconf-session-start``, ``netconf-session-end`` (every
  termination reason), ``netconf-config-change`` (edit-config, commit, copy-config, delete-config,
  service commits, Python transactions, a confirmed-commit rollback; nothing for an empty change)
  and ``netconf-confirmed-commit`` (start, extend, complete, cancel, timeout);
* the ``ncs-alarms`` stream: an alarm raised at startup (replayed), the self-assign alarm of the
  demo-service package (new, changed) and a crashed VM's package-load-failure (new, cleared);
* subtree and XPath filters, live and on replay;
* replay: ``startTime``/``stopTime`` windows, ``replayComplete``/``notificationComplete``, nothing
  missed or repeated at the replay/live boundary, and the replay log across a restart and a
  ``kill -9``;
* a subscriber that does not read: it loses its session, nobody else waits for it.

Run:  PYVMD_BIN=target/debug/pyvmd python3 -m unittest discover -s tests/python \\
          -p 'test_notifications.py' -v

Events that must arrive are waited for with a generous timeout (``WAIT``); events that must NOT
arrive are checked by waiting ``QUIET`` seconds.  No test depends on speed otherwise.
"""

import datetime
import os
import re
import shutil
import socket
import threading
import time
import unittest

import paramiko
from lxml import etree
from ncclient.xml_ import to_ele

from nc_common import DatastoreTestCase, cancel_commit_rpc, commit_rpc, edit_ds, level_edit
from pyvmd_harness import (
    CAP_NOTIFICATION, CONNECT_TIMEOUT, EOM, NC_NS, NCS_NS, REPO_DIR, PyvmdServer, RawSession,
    ServerTestCase, close_quietly, config, edit, error_info, hello_xml, leaf_xml, local, logging_,
    parse, pvm, rpc_errors, rpc_xml, to_text, vm_level, wait_until,
)
from test_runtime import package, vm_pids, write
from test_services import PROBE_PY, PROBE_YANG, SERVICE_POINTS, probe, services, vlan_service

NOTIF_NS = "urn:ietf:params:xml:ns:netconf:notification:1.0"      # create-subscription, <notification>
NMN_NS = "urn:ietf:params:xml:ns:netmod:notification"            # replayComplete, /netconf/streams
NCN_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"  # RFC 6470 base events
AL_NS = "http://tail-f.com/ns/ncs-alarms"
DS_NS = "http://example.com/pyvmd/demo-service"
PR_NS = "urn:pyvmd-test:probe"
BOOKKEEPING_NS = "urn:pyvmd:services"
CAP_INTERLEAVE = "urn:ietf:params:netconf:capability:interleave:1.0"

# The namespace of each module whose name may prefix a step of an edit target.
MODULE_NS = {"tailf-ncs": NCS_NS, "demo-service": DS_NS, "probe": PR_NS,
             "pyvmd-services": BOOKKEEPING_NS}

EPOCH = "1970-01-01T00:00:00Z"
WAIT = 15     # seconds for something that must arrive
QUIET = 1.0   # seconds to wait for something that must not arrive
EVENT_TIME_RE = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"

CONFIG_CHANGE = "netconf-config-change"
SESSION_START = "netconf-session-start"
SESSION_END = "netconf-session-end"
CONFIRMED_COMMIT = "netconf-confirmed-commit"


# ----------------------------------------------------------------------------------------------
# Times and events
# ----------------------------------------------------------------------------------------------

def parse_time(text):
    return datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def rfc3339(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def midpoint(a, b):
    return a + (b - a) / 2


class Event:
    """One received ``<notification>``: its eventTime and its one content element."""

    def __init__(self, xml):
        self.xml = xml
        self.root = parse(xml)
        assert self.root.tag == "{%s}notification" % NOTIF_NS, \
            "not a <notification>: %s" % xml[:300]
        et = self.root.find("{%s}eventTime" % NOTIF_NS)
        assert et is not None, "notification without eventTime: %s" % xml[:300]
        self.time_text = (et.text or "").strip()
        assert re.match(EVENT_TIME_RE, self.time_text), "bad eventTime %r" % self.time_text
        self.time = parse_time(self.time_text)
        bodies = [c for c in self.root if isinstance(c.tag, str) and c is not et]
        assert len(bodies) == 1, "expected one element besides eventTime: %s" % xml[:600]
        self.body = bodies[0]
        self.name = local(self.body.tag)
        self.ns = etree.QName(self.body).namespace

    def find(self, name):
        """The child of the content element named ``name`` (in its namespace)."""
        return self.body.find("{%s}%s" % (self.ns, name))

    def text(self, name):
        el = self.find(name)
        return None if el is None else (el.text or "").strip()

    def canonical(self):
        return etree.tostring(self.root, method="c14n")

    def is_(self, name, ns=NCN_NS):
        return self.name == name and self.ns == ns

    def __repr__(self):
        return "<Event %s %s>" % (self.time_text, self.name)


def session_parms(el, ns=NCN_NS):
    """{username, session-id, source-host} of ``el`` (RFC 6470 common-session-parms)."""
    out = {}
    for name in ("username", "session-id", "source-host"):
        child = el.find("{%s}%s" % (ns, name))
        if child is not None:
            out[name] = (child.text or "").strip()
    return out


def subscription_xml(stream=None, filter=None, start=None, stop=None):
    """A create-subscription rpc body; ``filter`` is a whole ``<filter>`` element (it inherits
    the notification namespace unless it says otherwise)."""
    body = ""
    if stream is not None:
        body += "<stream>%s</stream>" % stream
    if filter is not None:
        body += filter
    if start is not None:
        body += "<startTime>%s</startTime>" % start
    if stop is not None:
        body += "<stopTime>%s</stopTime>" % stop
    return '<create-subscription xmlns="%s">%s</create-subscription>' % (NOTIF_NS, body)


def subtree(inner):
    return '<filter type="subtree">%s</filter>' % inner


def xpath(select):
    return '<filter type="xpath" select="%s" xmlns:ncn="%s"/>' % (select, NCN_NS)


def covers(target, path):
    """True if the edit target ``target`` is ``path`` or one of its ancestors."""
    return path == target or (path.startswith(target) and path[len(target)] in "/[")


# ----------------------------------------------------------------------------------------------
# Base class
# ----------------------------------------------------------------------------------------------

class NotificationTestCase(ServerTestCase):
    """A server per class, with helpers to subscribe and to read notifications."""

    def setUp(self):
        super().setUp()
        self.ensure_running()

    # -- subscribing ---------------------------------------------------------------------------

    def subscribe(self, m, **kwargs):
        return m.dispatch(to_ele(subscription_xml(**kwargs)))

    def subscribed(self, **kwargs):
        """A new session with a subscription (``stream``, ``filter``, ``start``, ``stop``)."""
        m = self.connect()
        self.assertOk(self.subscribe(m, **kwargs), "create-subscription %r" % (kwargs,))
        return m

    def assertSubscriptionError(self, m, tag, type=None, bad_element=None, **kwargs):
        reply = self.subscribe(m, **kwargs)
        errors = self.assertRpcError(reply, tag=tag, type=type,
                                     what="create-subscription %r" % (kwargs,))
        if bad_element is not None:
            self.assertIn(bad_element, [error_info(e, "bad-element") for e in errors],
                          "expected error-info/bad-element %s in:\n%s"
                          % (bad_element, to_text(parse(reply))))
        return errors

    # -- reading -------------------------------------------------------------------------------

    def take(self, m, timeout=WAIT, what="a notification"):
        n = m.take_notification(block=True, timeout=timeout)
        if n is None:
            self.fail("no notification within %s s (waiting for %s)" % (timeout, what))
        return Event(n.notification_xml)

    def collect_until(self, m, predicate, what, timeout=WAIT):
        """Every notification up to and including the first one ``predicate`` accepts."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            n = m.take_notification(block=True, timeout=max(remaining, 0.01))
            if n is None:
                self.fail("no %s within %s s; received instead %d notifications%s: %r"
                          % (what, timeout, len(seen), ", the last 10" if len(seen) > 10 else "",
                             seen[-10:]))
            event = Event(n.notification_xml)
            seen.append(event)
            if predicate(event):
                return seen

    def wait_event(self, m, predicate, what, timeout=WAIT):
        """The first notification ``predicate`` accepts (others are skipped)."""
        return self.collect_until(m, predicate, what, timeout)[-1]

    def wait_named(self, m, name, ns=NCN_NS, timeout=WAIT):
        return self.wait_event(m, lambda e: e.is_(name, ns), name, timeout)

    def assertNoEvent(self, m, predicate=lambda e: True, what="notification", timeout=QUIET):
        """No notification ``predicate`` accepts arrives within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            n = m.take_notification(block=True, timeout=remaining)
            if n is None:
                return
            event = Event(n.notification_xml)
            self.assertFalse(predicate(event), "unexpected %s:\n%s" % (what, event.xml))

    def kill_session(self, killer, victim):
        """kill-session of ``victim`` by ``killer``; waits until ncclient saw the session go
        (closing it while ncclient has not noticed yet makes ncclient wait for a reply that
        never comes)."""
        self.assertOk(killer.dispatch(to_ele(
            '<kill-session xmlns="%s"><session-id>%s</session-id></kill-session>'
            % (NC_NS, victim.session_id))), "kill-session")
        self.assertTrue(wait_until(lambda: not victim.connected, 30),
                        "the killed session is still connected 30 s after kill-session")

    # -- event contents ------------------------------------------------------------------------

    def edits(self, event):
        """[(target, operation)] of a netconf-config-change; checks that every prefix in every
        target is a module name declared with that module's namespace."""
        out = []
        for e in event.body.iterfind("{%s}edit" % NCN_NS):
            target = e.find("{%s}target" % NCN_NS)
            op = e.find("{%s}operation" % NCN_NS)
            self.assertIsNotNone(target, "edit without target:\n%s" % event.xml)
            self.assertIsNotNone(op, "edit without operation:\n%s" % event.xml)
            path = (target.text or "").strip()
            self.assertTrue(path.startswith("/"), "target %r is not absolute" % path)
            # Every prefix outside quoted predicate values.
            unquoted = re.sub(r"'[^']*'|\"[^\"]*\"", "''", path)
            prefixes = set(re.findall(r"([A-Za-z_][\w.-]*):", unquoted))
            steps = re.findall(r"/([^/\[]+)", unquoted)
            for step in steps:
                self.assertIn(":", step, "step %r of %r has no module prefix" % (step, path))
            for prefix in prefixes:
                self.assertIn(prefix, MODULE_NS, "prefix %r of %r is not a known module name"
                              % (prefix, path))
                self.assertEqual(target.nsmap.get(prefix), MODULE_NS[prefix],
                                 "prefix %r of %r is not declared as its module's namespace:\n%s"
                                 % (prefix, path, event.xml))
            self.assertIn((op.text or "").strip(), ("create", "delete", "merge", "replace",
                                                    "remove"), event.xml)
            out.append((path, (op.text or "").strip()))
        return out

    def changed_by(self, event):
        """The changed-by of a config change: 'server' or its session parameters."""
        cb = event.find("changed-by")
        self.assertIsNotNone(cb, "config change without changed-by:\n%s" % event.xml)
        if cb.find("{%s}server" % NCN_NS) is not None:
            self.assertEqual(session_parms(cb), {}, event.xml)
            return "server"
        return session_parms(cb)

    def assertSessionParms(self, el, session_id, what):
        self.assertEqual(session_parms(el), {"username": self.server.user,
                                             "session-id": str(session_id),
                                             "source-host": "127.0.0.1"}, what)

    def config_change(self, m, timeout=WAIT):
        return self.wait_named(m, CONFIG_CHANGE, timeout=timeout)

    def streams(self, m):
        """{name: (description, replaySupport, replayLogCreationTime)} of /netconf/streams."""
        data = self.assertData(m.get(filter=("subtree", '<netconf xmlns="%s"/>' % NMN_NS)),
                               "get /netconf/streams")
        out = {}
        for s in data.iterfind("{%s}netconf/{%s}streams/{%s}stream" % (NMN_NS, NMN_NS, NMN_NS)):
            text = lambda n: s.findtext("{%s}%s" % (NMN_NS, n))
            out[text("name")] = (text("description"), text("replaySupport"),
                                 text("replayLogCreationTime"))
        return out


# ==============================================================================================
# Capabilities, streams, create-subscription
# ==============================================================================================

class TestSubscription(NotificationTestCase):

    def test_hello_advertises_notification_and_interleave(self):
        caps = {c.split("?")[0] for c in self.connect().server_capabilities}
        self.assertIn(CAP_NOTIFICATION, caps)
        self.assertIn(CAP_INTERLEAVE, caps)

    def test_streams_lists_netconf_and_ncs_alarms_with_replay(self):
        streams = self.streams(self.connect())
        self.assertEqual(set(streams), {"NETCONF", "ncs-alarms"}, streams)
        for name, (description, replay, created) in streams.items():
            self.assertTrue(description, "stream %s has no description" % name)
            self.assertEqual(replay, "true", name)
            self.assertIsNotNone(created, "stream %s has no replayLogCreationTime" % name)
            self.assertRegex(created, EVENT_TIME_RE)
            self.assertLessEqual(parse_time(created), now_utc(), name)

    def test_default_stream_is_netconf(self):
        m = self.subscribed()
        other = self.connect()
        event = self.wait_named(m, SESSION_START)
        self.assertEqual(event.text("session-id"), str(other.session_id))
        # Naming the stream gives the same.
        n = self.subscribed(stream="NETCONF")
        third = self.connect()
        self.assertEqual(self.wait_named(n, SESSION_START).text("session-id"),
                         str(third.session_id))
        self.assertOk(self.subscribe(self.connect(), stream="ncs-alarms"), "ncs-alarms")

    def test_ok_reply_comes_before_any_notification(self):
        raw = self.raw()
        raw.hello()
        # With a replay there are notifications to send at once: the reply still goes first.
        first = raw.rpc(subscription_xml(start=EPOCH), message_id="42")
        self.assertEqual(first.tag, "{%s}rpc-reply" % NC_NS, to_text(first))
        self.assertEqual(first.get("message-id"), "42")
        self.assertIsNotNone(first.find("{%s}ok" % NC_NS), to_text(first))
        names = []
        while "replayComplete" not in names:
            names.append(Event(raw.read_msg().decode()).name)
        self.assertIn(SESSION_START, names, "the replay should hold this session's own start")
        self.assertEqual(names[-1], "replayComplete")

    def test_rpcs_keep_working_on_a_subscribed_session(self):
        m = self.subscribed()
        self.assertData(m.get_config(source="running"), "get-config on a subscribed session")
        self.assertOk(edit(m, pvm(op="remove")), "reset")
        self.assertOk(edit(m, level_edit("level-error")), "edit-config on a subscribed session")
        event = self.config_change(m)
        self.assertSessionParms(event.find("changed-by"), m.session_id, event.xml)
        self.assertData(m.get(filter=("subtree", '<netconf xmlns="%s"/>' % NMN_NS)), "get")
        self.assertOk(edit(m, pvm(op="remove")), "edit-config after the notification")

    def test_a_session_has_one_subscription(self):
        m = self.subscribed()
        errors = self.assertSubscriptionError(m, "operation-failed", "protocol")
        self.assertEqual(len(errors), 1)
        # The first subscription is unharmed.
        other = self.connect()
        self.assertEqual(self.wait_named(m, SESSION_START).text("session-id"),
                         str(other.session_id))

    def test_stop_time_without_start_time_is_missing_element(self):
        self.assertSubscriptionError(self.connect(), "missing-element", "protocol", "startTime",
                                     stop=rfc3339(now_utc()))

    def test_stop_time_before_start_time_is_bad_element(self):
        now = now_utc()
        self.assertSubscriptionError(self.connect(), "bad-element", "protocol", "stopTime",
                                     start=rfc3339(now - datetime.timedelta(hours=1)),
                                     stop=rfc3339(now - datetime.timedelta(hours=2)))

    def test_start_time_in_the_future_is_bad_element(self):
        self.assertSubscriptionError(self.connect(), "bad-element", "protocol", "startTime",
                                     start=rfc3339(now_utc() + datetime.timedelta(days=1)))

    def test_unknown_stream_is_invalid_value(self):
        self.assertSubscriptionError(self.connect(), "invalid-value", "application", "stream",
                                     stream="no-such-stream")

    def test_malformed_dates_are_bad_element(self):
        m = self.connect()
        self.assertSubscriptionError(m, "bad-element", bad_element="startTime", start="yesterday")
        self.assertSubscriptionError(m, "bad-element", bad_element="stopTime", start=EPOCH,
                                     stop="2024-13-45T99:00:00Z")

    def test_a_failed_create_subscription_leaves_the_session_free(self):
        m = self.connect()
        self.assertSubscriptionError(m, "invalid-value", stream="no-such-stream")
        self.assertSubscriptionError(m, "bad-element", start="yesterday")
        self.assertOk(self.subscribe(m), "create-subscription after failed ones")
        other = self.connect()
        self.assertEqual(self.wait_named(m, SESSION_START).text("session-id"),
                         str(other.session_id))


# ==============================================================================================
# netconf-session-start / netconf-session-end
# ==============================================================================================

class TestSessionEvents(NotificationTestCase):
    server_args = ("--hello-timeout", "3")

    def session_end(self, watcher, session_id):
        event = self.wait_event(watcher, lambda e: e.is_(SESSION_END)
                                and e.text("session-id") == str(session_id),
                                "netconf-session-end of session %s" % session_id)
        self.assertSessionParms(event.body, session_id, event.xml)
        return event

    def test_session_start_follows_the_hello(self):
        watcher = self.subscribed()
        raw = self.raw()
        raw.read_server_hello()
        # No start before the client's hello ...
        self.assertNoEvent(watcher, lambda e: e.is_(SESSION_START), timeout=1.0)
        raw.send(hello_xml("urn:ietf:params:netconf:base:1.0") + EOM)
        event = self.wait_named(watcher, SESSION_START)
        self.assertSessionParms(event.body, raw.session_id, event.xml)
        # ... and an ncclient session's start names that session.
        m = self.connect()
        event = self.wait_named(watcher, SESSION_START)
        self.assertSessionParms(event.body, m.session_id, event.xml)

    def test_close_session_is_closed(self):
        watcher = self.subscribed()
        m = self.connect()
        sid = m.session_id
        self.assertOk(m.close_session(), "close-session")
        event = self.session_end(watcher, sid)
        self.assertEqual(event.text("termination-reason"), "closed")
        self.assertIsNone(event.find("killed-by"), event.xml)

    def test_kill_session_is_killed_with_killed_by(self):
        watcher = self.subscribed()
        killer = self.connect()
        victim = self.connect()
        self.kill_session(killer, victim)
        event = self.session_end(watcher, victim.session_id)
        self.assertEqual(event.text("termination-reason"), "killed")
        self.assertEqual(event.text("killed-by"), str(killer.session_id))

    def test_transport_gone_is_dropped(self):
        watcher = self.subscribed()
        raw = self.raw()
        raw.hello()
        self.wait_event(watcher, lambda e: e.is_(SESSION_START)
                        and e.text("session-id") == raw.session_id, "its start")
        raw.close()
        event = self.session_end(watcher, raw.session_id)
        self.assertEqual(event.text("termination-reason"), "dropped")
        self.assertIsNone(event.find("killed-by"), event.xml)

    def test_bad_hello_is_bad_hello(self):
        watcher = self.subscribed()
        raw = self.raw()
        raw.read_server_hello()
        raw.send(hello_xml("urn:example:not-a-base") + EOM)
        self.assertTrue(raw.wait_closed(WAIT), "the server kept a session with a bad hello")
        event = self.session_end(watcher, raw.session_id)
        self.assertEqual(event.text("termination-reason"), "bad-hello")

    def test_no_hello_in_time_is_timeout(self):
        watcher = self.subscribed()
        raw = self.raw()
        raw.read_server_hello()
        self.assertTrue(raw.wait_closed(WAIT + 3), "no hello, yet the session stayed")
        event = self.session_end(watcher, raw.session_id)
        self.assertEqual(event.text("termination-reason"), "timeout")

    def test_framing_error_is_other(self):
        watcher = self.subscribed()
        raw = self.raw()
        raw.hello(base11=True)
        raw.send(b"\n#zz\n")
        self.assertTrue(raw.wait_closed(WAIT), "the session survived a framing error")
        event = self.session_end(watcher, raw.session_id)
        self.assertEqual(event.text("termination-reason"), "other")


# ==============================================================================================
# netconf-config-change
# ==============================================================================================

LEVEL = "/tailf-ncs:python-vm/tailf-ncs:logging/tailf-ncs:level"
VM_LEVEL = "/tailf-ncs:python-vm/tailf-ncs:logging/tailf-ncs:vm-levels[tailf-ncs:node-id='%s']"
PYTHON_VM = "/tailf-ncs:python-vm"


class TestConfigChangeEvents(DatastoreTestCase, NotificationTestCase):
    """A fresh session (``self.m``) on an empty running and candidate, and a subscriber
    (``self.w``) on the NETCONF stream, per test."""

    def setUp(self):
        super().setUp()
        self.m.delete_config(target="startup")  # may not exist: the reply does not matter
        self.w = self.subscribed()

    def change(self, datastore="running", by=None):
        """The next config change; checks its datastore and that ``by`` (default: self.m) made
        it.  Returns its edits, sorted."""
        event = self.config_change(self.w)
        self.assertEqual(event.text("datastore"), datastore, event.xml)
        by = self.m if by is None else by
        self.assertSessionParms(event.find("changed-by"), by.session_id, event.xml)
        return sorted(self.edits(event))

    def test_edit_config_reports_create_replace_and_delete(self):
        self.assertOk(edit(self.m, level_edit("level-error")))
        self.assertEqual(self.change(), [(PYTHON_VM, "create")])
        self.assertOk(edit(self.m, level_edit("level-debug")))
        self.assertEqual(self.change(), [(LEVEL, "replace")])
        self.assertOk(edit(self.m, pvm(logging_(vm_level("a", "level-off")))))
        self.assertEqual(self.change(), [(VM_LEVEL % "a", "create")])
        self.assertOk(edit(self.m, pvm(logging_(vm_level("a", op="delete")))))
        self.assertEqual(self.change(), [(VM_LEVEL % "a", "delete")])
        self.assertOk(edit(self.m, pvm(op="remove")))
        self.assertEqual(self.change(), [(PYTHON_VM, "delete")])

    def test_targets_declare_their_module_prefix(self):
        self.assertOk(edit(self.m, level_edit("level-error")))
        self.config_change(self.w)
        self.assertOk(edit(self.m, level_edit("level-info")))
        event = self.config_change(self.w)
        [target] = event.body.iterfind("{%s}edit/{%s}target" % (NCN_NS, NCN_NS))
        self.assertEqual(target.text, LEVEL)
        self.assertEqual(target.nsmap.get("tailf-ncs"), NCS_NS, event.xml)

    def test_one_edit_with_several_changes_lists_each(self):
        self.assertOk(edit(self.m, level_edit("level-error")))
        self.change()
        self.assertOk(edit(self.m, pvm(logging_(
            leaf_xml("level", "level-debug") + vm_level("a", "level-off")
            + vm_level("b", "level-info")))))
        self.assertEqual(self.change(), sorted([(LEVEL, "replace"), (VM_LEVEL % "a", "create"),
                                                (VM_LEVEL % "b", "create")]))

    def test_changed_by_is_the_editing_session(self):
        other = self.connect()
        self.assertOk(edit(other, level_edit("level-error")))
        self.assertEqual(self.change(by=other), [(PYTHON_VM, "create")])

    def test_commit_of_the_candidate(self):
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-critical")))
        self.assertNoEvent(self.w, lambda e: e.is_(CONFIG_CHANGE),
                           "config change for an edit of the candidate")
        self.assertOk(self.m.commit(), "commit")
        self.assertEqual(self.change(), [(PYTHON_VM, "create")])

    def test_copy_config_to_running(self):
        self.assertOk(edit(self.m, level_edit("level-error")))
        self.change()
        source = '<source xmlns="%s"><config>%s</config></source>' % (
            NC_NS, pvm(logging_(leaf_xml("level", "level-warning"))))
        self.assertOk(self.m.copy_config(source=source, target="running"), "copy-config")
        self.assertEqual(self.change(), [(LEVEL, "replace")])

    def test_copy_config_to_startup_and_delete_config(self):
        self.assertOk(edit(self.m, level_edit("level-error")))
        self.change()
        self.assertOk(self.m.copy_config(source="running", target="startup"), "copy-config")
        self.assertEqual(self.change("startup"), [(PYTHON_VM, "create")])
        self.assertOk(self.m.delete_config(target="startup"), "delete-config")
        self.assertEqual(self.change("startup"), [(PYTHON_VM, "delete")])

    def test_an_edit_that_changes_nothing_sends_nothing(self):
        self.assertOk(edit(self.m, level_edit("level-error")))
        self.change()
        self.assertOk(edit(self.m, level_edit("level-error")), "the same value again")
        self.assertRpcError(edit(self.m, level_edit("level-loud")), "invalid-value")
        self.assertNoEvent(self.w, lambda e: e.is_(CONFIG_CHANGE), "config change")
        # The subscriber is still there.
        self.assertOk(edit(self.m, level_edit("level-info")))
        self.assertEqual(self.change(), [(LEVEL, "replace")])


# ==============================================================================================
# netconf-confirmed-commit
# ==============================================================================================

class TestConfirmedCommitEvents(DatastoreTestCase, NotificationTestCase):

    def setUp(self):
        super().setUp()
        self.w = self.subscribed()

    def confirm_event(self, expected, timeout=WAIT):
        event = self.wait_named(self.w, CONFIRMED_COMMIT, timeout=timeout)
        self.assertEqual(event.text("confirm-event"), expected, event.xml)
        return event

    def test_start_extend_complete(self):
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-error")))
        self.assertOk(commit_rpc(self.m, confirmed=True, timeout=60), "commit confirmed")
        self.assertEqual(sorted(self.edits(self.config_change(self.w))), [(PYTHON_VM, "create")])
        event = self.confirm_event("start")
        self.assertSessionParms(event.body, self.m.session_id, event.xml)
        self.assertEqual(event.text("timeout"), "60")
        self.assertOk(commit_rpc(self.m, confirmed=True, timeout=120), "extend")
        event = self.confirm_event("extend")
        self.assertSessionParms(event.body, self.m.session_id, event.xml)
        self.assertEqual(event.text("timeout"), "120")
        self.assertOk(commit_rpc(self.m), "confirming commit")
        event = self.confirm_event("complete")
        self.assertSessionParms(event.body, self.m.session_id, event.xml)
        self.assertIsNone(event.find("timeout"), event.xml)
        self.assertEqual(self.level(), "level-error")

    def test_cancel(self):
        self.assertOk(edit(self.m, level_edit("level-error")))
        self.config_change(self.w)
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-debug")))
        self.assertOk(commit_rpc(self.m, confirmed=True, timeout=60), "commit confirmed")
        self.confirm_event("start")
        self.assertOk(cancel_commit_rpc(self.m), "cancel-commit")
        # Running goes back: a config change, and the cancel.
        events = self.collect_until(self.w, lambda e: e.is_(CONFIRMED_COMMIT), "the cancel")
        self.assertEqual(events[-1].text("confirm-event"), "cancel", events[-1].xml)
        self.assertSessionParms(events[-1].body, self.m.session_id, events[-1].xml)
        self.assertIsNone(events[-1].find("timeout"), events[-1].xml)
        changes = [e for e in events if e.is_(CONFIG_CHANGE)]
        if not changes:
            changes = [self.config_change(self.w)]
        self.assertEqual(sorted(self.edits(changes[-1])), [(LEVEL, "replace")])
        self.assertEqual(self.level(), "level-error")

    def test_timeout_rolls_back_as_the_server(self):
        self.assertOk(edit(self.m, level_edit("level-error")))
        self.config_change(self.w)
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-debug")))
        self.assertOk(commit_rpc(self.m, confirmed=True, timeout=1), "commit confirmed")
        self.config_change(self.w)
        event = self.confirm_event("start")
        self.assertEqual(event.text("timeout"), "1")
        # After the timeout: the rollback (changed by the server) and the timeout event, which
        # names no session.
        seen = {}
        while len(seen) < 2:
            e = self.wait_event(self.w, lambda e: e.is_(CONFIG_CHANGE)
                                or e.is_(CONFIRMED_COMMIT), "the rollback", timeout=30)
            seen[e.name] = e
        timeout = seen[CONFIRMED_COMMIT]
        self.assertEqual(timeout.text("confirm-event"), "timeout", timeout.xml)
        self.assertEqual(session_parms(timeout.body), {}, timeout.xml)
        self.assertIsNone(timeout.find("timeout"), timeout.xml)
        rollback = seen[CONFIG_CHANGE]
        self.assertEqual(self.changed_by(rollback), "server")
        self.assertEqual(rollback.text("datastore"), "running")
        self.assertEqual(sorted(self.edits(rollback)), [(LEVEL, "replace")])
        self.assertEqual(self.level(), "level-error")


# ==============================================================================================
# Filters
# ==============================================================================================

class TestFilters(NotificationTestCase):

    def end_closed_then_killed(self):
        """Ends one session with close-session, then kills another; returns the killed id."""
        closing = self.connect()
        self.assertOk(closing.close_session())
        killer = self.connect()
        victim = self.connect()
        self.kill_session(killer, victim)
        return str(victim.session_id)

    def test_subtree_filter_selects_an_event_type(self):
        m = self.subscribed(filter=subtree('<netconf-config-change xmlns="%s"/>' % NCN_NS))
        other = self.connect()   # a session-start the filter leaves out
        self.assertOk(edit(other, pvm(op="remove")))
        self.assertOk(edit(other, level_edit("level-error")))
        first = self.take(m)
        self.assertTrue(first.is_(CONFIG_CHANGE), first.xml)

    def test_subtree_content_match_selects_matching_events(self):
        m = self.subscribed(filter=subtree(
            '<netconf-session-end xmlns="%s"><termination-reason>killed</termination-reason>'
            '</netconf-session-end>' % NCN_NS))
        victim = self.end_closed_then_killed()
        first = self.take(m, what="the killed session's end")
        self.assertTrue(first.is_(SESSION_END), first.xml)
        self.assertEqual(first.text("termination-reason"), "killed", first.xml)
        # The whole notification is sent, not only what the filter names.
        self.assertEqual(first.text("session-id"), victim, first.xml)
        self.assertIsNotNone(first.find("killed-by"), first.xml)

    def test_subtree_selection_node_below_the_event_selects_it(self):
        m = self.subscribed(filter=subtree(
            '<netconf-session-end xmlns="%s"><termination-reason/></netconf-session-end>'
            % NCN_NS))
        other = self.connect()   # its start is not selected; its end is
        sid = str(other.session_id)
        self.assertOk(other.close_session())
        first = self.take(m, what="a session end")
        self.assertTrue(first.is_(SESSION_END), first.xml)
        self.assertEqual(first.text("session-id"), sid)

    def test_xpath_filter_selects_an_event_type(self):
        m = self.subscribed(filter=xpath("/ncn:netconf-config-change"))
        other = self.connect()
        self.assertOk(edit(other, pvm(op="remove")))
        self.assertOk(edit(other, level_edit("level-error")))
        first = self.take(m)
        self.assertTrue(first.is_(CONFIG_CHANGE), first.xml)

    def test_xpath_filter_with_a_predicate(self):
        m = self.subscribed(filter=xpath("/ncn:netconf-session-end[ncn:termination-reason='killed']"))
        victim = self.end_closed_then_killed()
        first = self.take(m, what="the killed session's end")
        self.assertTrue(first.is_(SESSION_END), first.xml)
        self.assertEqual(first.text("session-id"), victim, first.xml)

    def test_filter_applies_to_the_replay(self):
        victim = self.end_closed_then_killed()
        m = self.subscribed(start=EPOCH, filter=xpath(
            "/ncn:netconf-session-end[ncn:termination-reason='killed']"))
        events = self.collect_until(m, lambda e: e.is_("replayComplete", NMN_NS), "replayComplete")
        for e in events[:-1]:
            self.assertTrue(e.is_(SESSION_END), e.xml)
            self.assertEqual(e.text("termination-reason"), "killed", e.xml)
        self.assertIn(victim, [e.text("session-id") for e in events[:-1]])

    def test_ncclient_filter_argument_is_honoured_or_rejected(self):
        """ncclient's create_subscription(filter=...) sends <filter> in the base NETCONF
        namespace.  The server must filter with it, or refuse it (unknown-element) — never
        accept the rpc and silently send everything."""
        forms = {
            "subtree": ("subtree", '<netconf-config-change xmlns="%s"/>' % NCN_NS),
            "xpath": ("xpath", ({"ncn": NCN_NS}, "/ncn:netconf-config-change")),
        }
        for name, spec in forms.items():
            with self.subTest(form=name):
                m = self.connect()
                reply = m.create_subscription(filter=spec)
                if not reply.ok:
                    errors = self.assertRpcError(reply, "unknown-element", what=name)
                    self.assertIn("filter", [error_info(e, "bad-element") for e in errors])
                    continue
                other = self.connect()   # a session-start the filter leaves out
                self.assertOk(edit(other, pvm(op="remove")))
                self.assertOk(edit(other, level_edit("level-error")))
                first = self.take(m)
                self.assertTrue(first.is_(CONFIG_CHANGE),
                                "create-subscription answered <ok/> but its %s filter was "
                                "ignored; first notification:\n%s" % (name, first.xml))


# ==============================================================================================
# Replay
# ==============================================================================================

class TestReplay(NotificationTestCase):

    def test_replay_window_in_the_past(self):
        watcher = self.subscribed()
        other = self.connect()
        self.assertOk(edit(other, pvm(op="remove")))
        events = []
        for level in ("level-debug", "level-error", "level-warning", "level-critical"):
            self.assertOk(edit(other, level_edit(level)))
            events.append(self.wait_event(
                watcher, lambda e: e.is_(CONFIG_CHANGE) and e.time > (
                    events[-1].time if events else parse_time(EPOCH)), level))
        # A window around the 2nd and 3rd change only.
        start = rfc3339(midpoint(events[0].time, events[1].time))
        stop = rfc3339(midpoint(events[2].time, events[3].time))
        m = self.subscribed(start=start, stop=stop)
        got = self.collect_until(m, lambda e: e.is_("notificationComplete", NMN_NS),
                                 "notificationComplete")
        self.assertEqual([e.canonical() for e in got[:-2]],
                         [e.canonical() for e in events[1:3]], got)
        self.assertTrue(got[-2].is_("replayComplete", NMN_NS), got)
        # The subscription is over: nothing more comes, and the session may subscribe again.
        self.assertOk(edit(other, level_edit("level-info")))
        self.assertNoEvent(m, what="notification after notificationComplete")
        self.assertOk(self.subscribe(m), "create-subscription after notificationComplete")
        self.assertOk(edit(other, level_edit("level-debug")))
        self.assertTrue(self.config_change(m))

    def test_replay_then_replay_complete_then_live(self):
        m = self.connect()
        self.assertOk(edit(m, pvm(op="remove")))
        self.assertOk(edit(m, level_edit("level-error")))
        r = self.subscribed(start=EPOCH)
        got = self.collect_until(r, lambda e: e.is_("replayComplete", NMN_NS), "replayComplete")
        replayed = got[:-1]
        self.assertIn(CONFIG_CHANGE, [e.name for e in replayed])
        times = [e.time for e in replayed]
        self.assertEqual(times, sorted(times), "replayed events out of order")
        self.assertOk(edit(m, level_edit("level-info")))
        live = self.config_change(r)
        self.assertGreaterEqual(live.time, times[-1])
        self.assertNotIn(live.canonical(), [e.canonical() for e in replayed])
        self.assertEqual(sorted(self.edits(live)), [(LEVEL, "replace")])

    def test_nothing_is_missed_or_repeated_between_replay_and_live(self):
        watcher = self.subscribed()
        editor = self.raw()
        editor.hello()
        errors = []
        count = 200

        def run_edits():
            try:
                for i in range(count):
                    level = "level-debug" if i % 2 else "level-info"
                    reply = editor.rpc("<edit-config><target><running/></target>%s</edit-config>"
                                       % config(level_edit(level)), message_id=str(i))
                    if reply.find("{%s}ok" % NC_NS) is None:
                        errors.append(to_text(reply))
            except Exception as e:  # reported below
                errors.append(repr(e))

        thread = threading.Thread(target=run_edits, daemon=True)
        thread.start()
        first = self.config_change(watcher)
        # Subscribe with a replay while the edits go on.
        replaying = self.subscribed(start=EPOCH)
        thread.join(120)
        self.assertFalse(thread.is_alive(), "the edits did not finish")
        self.assertEqual(errors, [])
        marker = "pyvmd-marker-%d" % time.monotonic_ns()
        self.assertOk(edit(self.connect(), pvm(logging_(leaf_xml("log-file-prefix", marker)))))
        is_marker = lambda e: e.is_(CONFIG_CHANGE) and "log-file-prefix" in e.xml
        live = self.collect_until(watcher, is_marker, "the marker", timeout=60)
        both = self.collect_until(replaying, is_marker, "the marker", timeout=60)
        self.assertEqual([e.name for e in both].count("replayComplete"), 1)
        both = [e for e in both if not e.is_("replayComplete", NMN_NS)]
        canon = [e.canonical() for e in both]
        self.assertIn(first.canonical(), canon)
        from_first = canon[canon.index(first.canonical()):]
        expected = [first.canonical()] + [e.canonical() for e in live]
        self.assertEqual(len(from_first), len(expected),
                         "the replaying subscriber got %d events from the first edit on, the "
                         "live one %d" % (len(from_first), len(expected)))
        self.assertEqual(from_first, expected)
        times = [e.time for e in both]
        self.assertEqual(times, sorted(times))

    def test_stop_time_in_the_future_ends_the_subscription_then(self):
        other = self.connect()
        self.assertOk(edit(other, pvm(op="remove")))
        now = now_utc()
        stop = now + datetime.timedelta(seconds=3)
        m = self.subscribed(start=rfc3339(now - datetime.timedelta(seconds=1)), stop=rfc3339(stop))
        self.wait_named(m, "replayComplete", NMN_NS)
        self.assertOk(edit(other, level_edit("level-error")))
        sent = now_utc()
        live = self.config_change(m)
        self.assertEqual(sorted(self.edits(live)), [(PYTHON_VM, "create")])
        self.assertLess(sent, stop, "the edit came after stopTime: the machine is too slow")
        done = self.wait_named(m, "notificationComplete", NMN_NS, timeout=30)
        self.assertGreaterEqual(done.time, live.time)
        self.assertOk(edit(other, level_edit("level-info")))
        self.assertNoEvent(m, what="notification after notificationComplete")
        self.assertOk(self.subscribe(m), "create-subscription after notificationComplete")


class TestReplayAcrossRestart(NotificationTestCase):
    """The replay log survives a clean stop and a kill -9, in order, and the stream's time
    never goes back."""

    def record(self):
        """A few events as a live subscriber saw them."""
        m = self.connect()
        self.assertOk(edit(m, pvm(op="remove")))
        watcher = self.subscribed()
        other = self.connect()   # a session-start
        self.assertOk(edit(other, level_edit("level-debug")))
        self.assertOk(edit(other, level_edit("level-error")))
        seen = self.collect_until(watcher, lambda e: e.is_(CONFIG_CHANGE)
                                  and (LEVEL, "replace") in self.edits(e), "the second change")
        self.assertEqual([e.name for e in seen][0], SESSION_START, seen)
        for s in (m, watcher, other):
            close_quietly(s)
        return seen

    def check_replay(self, seen, created):
        r = self.subscribed(start=seen[0].time_text)
        got = self.collect_until(r, lambda e: e.is_("replayComplete", NMN_NS), "replayComplete")
        replayed = got[:-1]
        self.assertEqual([e.canonical() for e in replayed[:len(seen)]],
                         [e.canonical() for e in seen],
                         "the replay after the restart does not start with what was seen")
        times = [e.time for e in replayed]
        self.assertEqual(times, sorted(times), "replayed events out of order: %r" % replayed)
        # New events come after the old ones.
        m = self.connect()
        self.assertOk(edit(m, level_edit("level-warning")))
        live = self.config_change(r)
        self.assertGreaterEqual(live.time, times[-1])
        self.assertEqual(self.streams(m)["NETCONF"][2], created,
                         "replayLogCreationTime changed across the restart")
        # Closed now: a session the server drops under ncclient is slow to close.
        close_quietly(r)
        close_quietly(m)
        return replayed

    def creation_time(self):
        m = self.connect()
        created = self.streams(m)["NETCONF"][2]
        close_quietly(m)
        return created

    def test_replay_after_stop_and_start(self):
        created = self.creation_time()
        seen = self.record()
        self.server.stop()
        self.server.start()
        self.check_replay(seen, created)

    def test_replay_after_kill9_and_start(self):
        created = self.creation_time()
        seen = self.record()
        self.server.kill9()
        self.server.start()
        self.check_replay(seen, created)
        # Twice: what the restarted server logged survives too.
        seen2 = self.record()
        self.server.kill9()
        self.server.start()
        replayed = self.check_replay(seen, created)
        canon = [e.canonical() for e in replayed]
        for e in seen2:
            self.assertIn(e.canonical(), canon, "lost after the second kill -9: %s" % e.xml)
        self.assertLess(canon.index(seen[-1].canonical()), canon.index(seen2[0].canonical()))


# ==============================================================================================
# Services, Python transactions and ncs-alarms (real VMs)
# ==============================================================================================

def wait_registered(test, m, *entries, timeout=60):
    """Waits until the VMs registered every entry ("<point> (<kind>)")."""
    status = lambda: m.get(filter=("subtree", '<python-vm xmlns="%s"/>' % NCS_NS)).xml
    if not wait_until(lambda: all(e in status() for e in entries), timeout, 0.2):
        test.fail("the VMs did not register %s within %d s" % (", ".join(entries), timeout))


POINTS = SERVICE_POINTS + ("probe-tools (action)",)


class TestServiceAndAlarmEvents(NotificationTestCase):
    """demo-service, the probe package of test_services, and a package that cannot load."""

    @classmethod
    def setUpClass(cls):
        unittest.TestCase.setUpClass()
        cls.server = PyvmdServer(name=cls.__name__)
        try:
            root = cls.server.packages_dir
            shutil.copytree(os.path.join(REPO_DIR, "packages", "demo-service"),
                            os.path.join(root, "demo-service"))
            package(root, "probe", [("main", "probe.Main")])
            write(os.path.join(root, "probe", "src", "yang", "probe.yang"), PROBE_YANG)
            write(os.path.join(root, "probe", "python", "probe.py"), PROBE_PY)
            # Raises package-load-failure at startup.
            package(root, "needs-missing", [("main", "x.Main")], requires=["nonexistent"])
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            cls.server = None
            raise

    def setUp(self):
        super().setUp()
        self.m = self.connect()
        wait_registered(self, self.m, *POINTS)

    def commit(self, inner, op=""):
        self.assertOk(self.m.edit_config(target="running", config=services(inner, op)))

    def alarm(self, watcher, managed, alarm_class, timeout=WAIT):
        """The next alarm-notification of class ``alarm_class`` whose managed-object contains
        every string in ``managed``."""
        def match(e):
            if not e.is_("alarm-notification", AL_NS):
                return False
            mo = e.text("managed-object") or ""
            return all(s in mo for s in managed) and e.text("alarm-class") == alarm_class
        return self.wait_event(watcher, match, "%s alarm for %s" % (alarm_class, managed), timeout)

    def test_an_alarm_raised_at_startup_is_replayed(self):
        m = self.subscribed(stream="ncs-alarms", start=EPOCH)
        got = self.collect_until(m, lambda e: e.is_("replayComplete", NMN_NS), "replayComplete")
        alarms = [e for e in got if e.is_("alarm-notification", AL_NS)
                  and "needs-missing" in (e.text("managed-object") or "")]
        self.assertTrue(alarms, "no alarm for needs-missing in the replay: %r" % got)
        alarm = alarms[0]
        self.assertEqual(alarm.text("alarm-class"), "new-alarm", alarm.xml)
        self.assertTrue(alarm.text("type").endswith(":package-load-failure"), alarm.xml)
        self.assertIn("nonexistent", alarm.text("alarm-text"))
        self.assertRegex(alarm.text("event-time"), EVENT_TIME_RE)
        self.assertTrue(all(e.is_("alarm-notification", AL_NS) for e in got[:-1]), got)

    def test_service_commit_lists_the_service_outputs(self):
        w = self.subscribed(filter=subtree('<netconf-config-change xmlns="%s"/>' % NCN_NS))
        instance = "/tailf-ncs:services/demo-service:vlan-service[demo-service:name='cc']"
        vlan = "/demo-service:vlans/demo-service:vlan[demo-service:id='71']"
        self.commit(vlan_service("cc", 71, ["ge71"]))
        event = self.config_change(w)
        self.assertSessionParms(event.find("changed-by"), self.m.session_id, event.xml)
        self.assertEqual(event.text("datastore"), "running")
        edits = self.edits(event)
        for path in (instance, vlan):
            self.assertTrue(any(covers(t, path) and op == "create" for t, op in edits),
                            "no create covering %s in %r" % (path, edits))
        self.commit(vlan_service("cc", 71, op="delete"))
        edits = self.edits(self.config_change(w))
        for path in (instance, vlan):
            self.assertTrue(any(covers(t, path) and op == "delete" for t, op in edits),
                            "no delete covering %s in %r" % (path, edits))

    def test_service_events_do_not_show_the_bookkeeping(self):
        """/pyvmd-services:service-bookkeeping is hidden from get and get-config; the config
        changes of service commits must not name it either."""
        w = self.subscribed(filter=subtree('<netconf-config-change xmlns="%s"/>' % NCN_NS))
        self.commit(vlan_service("bk", 72, ["ge72"]))
        self.commit(vlan_service("bk", 72, ["ge72", "ge73"], op="replace"))
        self.commit(vlan_service("bk", 72, op="delete"))
        for step in ("create", "modify", "delete"):
            event = self.config_change(w)
            for target in event.body.iterfind("{%s}edit/{%s}target" % (NCN_NS, NCN_NS)):
                self.assertNotIn("service-bookkeeping", target.text,
                                 "the %s event shows the bookkeeping:\n%s" % (step, event.xml))
                self.assertNotIn(BOOKKEEPING_NS, target.nsmap.values(), event.xml)

    def test_a_python_transaction_is_changed_by_the_server(self):
        w = self.subscribed(filter=subtree('<netconf-config-change xmlns="%s"/>' % NCN_NS))
        reply = parse(self.m.dispatch(to_ele(
            '<action xmlns="urn:ietf:params:xml:ns:yang:1"><tools xmlns="%s"><create-probe>'
            '<name>tx</name></create-probe></tools></action>' % PR_NS)).xml)
        self.assertEqual(rpc_errors(reply), [], to_text(reply))
        event = self.config_change(w)
        self.assertEqual(self.changed_by(event), "server")
        self.assertEqual(event.text("datastore"), "running")
        edits = self.edits(event)
        for path in ("/tailf-ncs:services/probe:probe[probe:name='tx']",
                     "/probe:out/probe:entry[probe:name='tx']"):
            self.assertTrue(any(covers(t, path) and op == "create" for t, op in edits),
                            "no create covering %s in %r" % (path, edits))
        self.commit(probe("tx", op="delete"))
        event = self.config_change(w)
        self.assertSessionParms(event.find("changed-by"), self.m.session_id, event.xml)

    def test_self_assign_alarm_is_published_new_then_changed(self):
        w = self.subscribed(stream="ncs-alarms")
        self.commit(vlan_service("al", 73, ["ge74"]))
        alarm = self.alarm(w, ["vlan-service", "'al'"], "new-alarm")
        self.assertIn("Assigning to self is not thread safe", alarm.text("alarm-text"))
        self.assertRegex(alarm.text("event-time"), EVENT_TIME_RE)
        # The managed object is an instance-identifier with its prefixes declared.
        mo = alarm.find("managed-object")
        for prefix in set(re.findall(r"([A-Za-z_][\w.-]*):", re.sub(r"'[^']*'", "", mo.text))):
            self.assertIn(prefix, mo.nsmap, alarm.xml)
        # Deployed again, the same instance raises it again: a changed alarm.
        self.commit(vlan_service("al", 73, ["ge74", "ge75"], op="replace"))
        self.alarm(w, ["vlan-service", "'al'"], "changed-alarm")
        self.commit(vlan_service("al", 73, op="delete"))

    def test_zz_a_crashed_vm_raises_and_clears_package_load_failure(self):
        w = self.subscribed(stream="ncs-alarms")
        pids = vm_pids("demo-service")
        self.assertTrue(pids, "no demo-service VM")
        os.kill(pids[0], 9)
        raised = self.alarm(w, ["demo-service"], "new-alarm", timeout=60)
        self.assertTrue(raised.text("type").endswith(":package-load-failure"), raised.xml)
        cleared = self.alarm(w, ["demo-service"], "cleared-alarm", timeout=60)
        self.assertEqual(cleared.text("perceived-severity"), "cleared", cleared.xml)
        self.assertEqual(cleared.text("type"), raised.text("type"))
        self.assertGreaterEqual(cleared.time, raised.time)


# ==============================================================================================
# A subscriber that does not read
# ==============================================================================================

class TestCapabilityChange(NotificationTestCase):
    """A package reload that adds a module announces it with netconf-capability-change."""

    def test_a_reload_that_adds_a_module_is_a_capability_change(self):
        w = self.subscribed()
        root = self.server.packages_dir
        package(root, "late", [])
        write(os.path.join(root, "late", "src", "yang", "late.yang"), """
            module late {
              yang-version 1.1;
              namespace "urn:pyvmd-test:late";
              prefix late;
              container late { leaf x { type string; } }
            }
            """)
        reply = self.connect().dispatch(to_ele(
            '<action xmlns="urn:ietf:params:xml:ns:yang:1"><packages xmlns="%s"><reload/>'
            '</packages></action>' % NCS_NS))
        self.assertIn("<result>true</result>", reply.xml)
        event = self.wait_named(w, "netconf-capability-change")
        self.assertIsNotNone(event.find("changed-by").find("{%s}server" % NCN_NS), event.xml)
        added = [el.text.strip() for el in event.body.iter("{%s}added-capability" % NCN_NS)]
        self.assertTrue(any(c.startswith("urn:pyvmd-test:late?module=late") for c in added),
                        event.xml)
        # New sessions get the module in their hello.
        self.assertTrue(any(c.startswith("urn:pyvmd-test:late?")
                            for c in self.connect().server_capabilities), "late not announced")


class TestSlowSubscriber(NotificationTestCase):
    server_args = ("--notification-queue", "50")
    EDITS = 500

    def stalled_subscriber(self):
        """A subscribed session over a channel with the smallest SSH window paramiko allows,
        which the test then never reads: the server soon cannot send to it."""
        sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=CONNECT_TIMEOUT)
        self.addCleanup(sock.close)
        transport = paramiko.Transport(sock)
        self.addCleanup(transport.close)
        transport.start_client(timeout=CONNECT_TIMEOUT)
        transport.auth_password(self.server.user, self.server.password)
        slow = RawSession(transport=transport, subsystem=None)
        slow.chan = transport.open_session(window_size=32768, max_packet_size=32768,
                                           timeout=CONNECT_TIMEOUT)
        slow.chan.invoke_subsystem("netconf")
        slow.hello()
        reply = slow.rpc(subscription_xml())
        self.assertIsNotNone(reply.find("{%s}ok" % NC_NS), to_text(reply))
        return slow

    def test_a_subscriber_that_does_not_read_loses_its_session_not_the_server(self):
        since = rfc3339(now_utc() - datetime.timedelta(seconds=1))
        slow = self.stalled_subscriber()
        editor = self.raw()
        editor.hello()
        # Many edits at once (pipelined): each one is a config change on the NETCONF stream.
        batch = b"".join(
            rpc_xml("<edit-config><target><running/></target>%s</edit-config>"
                    % config(level_edit("level-debug" if i % 2 else "level-info")),
                    message_id=str(i)) + EOM
            for i in range(self.EDITS))
        editor.send(batch)
        for i in range(self.EDITS):
            reply = editor.read_reply()
            self.assertEqual(reply.get("message-id"), str(i))
            self.assertIsNotNone(reply.find("{%s}ok" % NC_NS),
                                 "edit %d failed:\n%s" % (i, to_text(reply)))
        # The slow session was ended by the server, as "other".  (Found by a replay, so that
        # this check does not depend on how fast the checking subscriber reads.)
        watcher = self.subscribed(start=since)
        end = self.wait_event(watcher, lambda e: e.is_(SESSION_END)
                              and e.text("session-id") == slow.session_id,
                              "the slow session's end", timeout=2 * WAIT)
        self.assertEqual(end.text("termination-reason"), "other", end.xml)
        self.assertTrue(wait_until(lambda: "did not keep up" in self.server.log_tail(200000)
                                   or "fell too far behind" in self.server.log_tail(200000),
                                   30), "the server log does not say why the session ended")
        self.assertTrue(slow.wait_closed(60), "the server did not close the slow channel")
        # Everyone else carries on.
        self.assertOk(editor.rpc("<edit-config><target><running/></target>%s</edit-config>"
                                 % config(level_edit("level-error")), message_id="last"))
        self.assertData(self.connect().get(filter=("subtree", '<netconf xmlns="%s"/>'
                                                   % NMN_NS)), "get after the slow subscriber")
        self.assertTrue(self.server.running())


if __name__ == "__main__":
    unittest.main()
