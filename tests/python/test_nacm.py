"""NETCONF access control (RFC 8341) with three configured users and the bootstrap admin:

- boss (group admins): a rule that permits everything;
- oper (group operators): reads everything it may by default, writes nothing (write-default is
  deny), may not stop or start VMs;
- lim (group limited): may not read /python-vm/logging, run the ping action, receive the
  ticker's notifications, or read the ticker module's schema.

admin, the bootstrap user, is the recovery session: no rule applies to it.

The package `probe` (written here) runs Python transactions in an action callback, to show that
they run with the rights of the user who invoked the action, or of the user they name.
"""

import os
import shutil
import time

from ncclient.xml_ import to_ele

from pyvmd_harness import NCS_NS, REPO_DIR, close_quietly, parse, rpc_errors
from test_runtime import RuntimeTestCase, package, write

SYS_NS = "urn:ietf:params:xml:ns:yang:ietf-system"
NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
DA_NS = "http://example.com/pyvmd/demo-actions"
TICK_NS = "http://example.com/pyvmd/ticker"
PR_NS = "urn:pyvmd-test:probe"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS = {"ncs": NCS_NS, "nacm": NACM_NS}

USERS = ('<system xmlns="%s"><authentication>%s</authentication></system>' % (SYS_NS, "".join(
    "<user><name>%s</name><password>$0$%s-pw</password></user>" % (u, u)
    for u in ("boss", "oper", "lim"))))

RULES = """
<nacm xmlns="%(nacm)s" xmlns:ncs="%(ncs)s" xmlns:da="%(da)s" xmlns:pr="%(pr)s">
  <groups>
    <group><name>admins</name><user-name>boss</user-name></group>
    <group><name>operators</name><user-name>oper</user-name></group>
    <group><name>limited</name><user-name>lim</user-name></group>
  </groups>
  <rule-list><name>admins</name><group>admins</group>
    <rule><name>all</name><module-name>*</module-name><access-operations>*</access-operations>
      <action>permit</action></rule>
  </rule-list>
  <rule-list><name>operators</name><group>operators</group>
    <rule><name>no-vm-control</name><module-name>tailf-ncs</module-name>
      <path>/ncs:python-vm</path><access-operations>exec</access-operations>
      <action>deny</action></rule>
  </rule-list>
  <rule-list><name>limited</name><group>limited</group>
    <rule><name>no-logging</name><module-name>tailf-ncs</module-name>
      <path>/ncs:python-vm/ncs:logging</path><access-operations>*</access-operations>
      <action>deny</action></rule>
    <rule><name>no-ping</name><module-name>demo-actions</module-name>
      <path>/da:tools/da:ping</path><access-operations>exec</access-operations>
      <action>deny</action></rule>
    <rule><name>no-ticks</name><module-name>ticker</module-name>
      <notification-name>tick</notification-name><access-operations>read</access-operations>
      <action>deny</action></rule>
    <rule><name>no-secret</name><module-name>probe</module-name>
      <path>/pr:secret</path><access-operations>*</access-operations>
      <action>deny</action></rule>
    <rule><name>no-ticker-schema</name><module-name>ticker</module-name>
      <access-operations>read</access-operations><action>deny</action></rule>
  </rule-list>
</nacm>
""" % {"nacm": NACM_NS, "ncs": NCS_NS, "da": DA_NS, "pr": PR_NS}

LEVEL = ('<config><python-vm xmlns="%s"><logging><level>%%s</level></logging></python-vm>'
         '</config>' % NCS_NS)
PING = ('<action xmlns="urn:ietf:params:xml:ns:yang:1"><tools xmlns="%s"><ping>'
        '<host>h1</host><count>1</count></ping></tools></action>' % DA_NS)
UPTIME = ('<action xmlns="http://tail-f.com/ns/netconf/actions/1.0"><data>'
          '<system-info xmlns="http://example.com/pyvmd/demo-legacy"><uptime/></system-info>'
          '</data></action>')
STOP = ('<action xmlns="urn:ietf:params:xml:ns:yang:1"><python-vm xmlns="%s"><stop>'
        '<name>demo-actions</name></stop></python-vm></action>' % NCS_NS)

PROBE_YANG = """
module probe {
  yang-version 1.1;
  namespace "urn:pyvmd-test:probe";
  prefix pr;
  import tailf-common { prefix tailf; }

  container secret {
    leaf code { type string; }
  }
  container probe {
    tailf:action run {
      tailf:actionpoint probe;
      input {
        leaf what { type string; }
        leaf value { type string; }
        leaf as-user { type string; }
        leaf context { type string; }
        leaf-list group { type string; }
      }
      output { leaf result { type string; } }
    }
  }
}
"""

# what=read: does the action's own transaction see /secret? what=write: set /secret/code in a
# transaction of a Maapi without a user session (the caller's rights), or of
# single_write_trans(as-user, context, groups).
PROBE_PY = """
import _ncs
import ncs
from ncs.application import Application
from ncs.dp import Action


class Probe(Action):
    @Action.action
    def cb_action(self, uinfo, name, kp, input, output, trans):
        try:
            if input.what == "read":
                output.result = "seen" if trans.exists("/pr:secret/code") else "hidden"
                return
            if input.as_user:
                opened = ncs.maapi.single_write_trans(input.as_user, input.context,
                                                      groups=list(input.group))
            else:
                opened = ncs.maapi.Maapi().start_write_trans()
            with opened as t:
                t.set_elem(input.value, "/pr:secret/code")
                t.apply()
            output.result = "written"
        except _ncs.error.Error as e:
            output.result = "error %d: %s" % (e.confd_errno, e)


class Main(Application):
    def setup(self):
        self.register_action("probe", Probe)
"""


class TestNacm(RuntimeTestCase):
    @classmethod
    def write_packages(cls, root, tmp):
        for name in ("demo-actions", "ticker"):
            shutil.copytree(os.path.join(REPO_DIR, "packages", name), os.path.join(root, name))
        package(root, "probe", [("main", "probe.Main")])
        write(os.path.join(root, "probe", "src", "yang", "probe.yang"), PROBE_YANG)
        write(os.path.join(root, "probe", "python", "probe.py"), PROBE_PY)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wait_registered(cls, "demo-uptime (action)", "probe (action)")
        reply = cls.m.edit_config(target="running", config="<config>%s%s%s</config>" % (
            USERS, RULES, (LEVEL % "level-info")[len("<config>"):-len("</config>")]))
        assert reply.ok, reply.xml
        cls.sessions = {u: cls.server.connect(username=u, password="%s-pw" % u)
                        for u in ("boss", "oper", "lim")}

    @classmethod
    def tearDownClass(cls):
        for m in cls.sessions.values():
            close_quietly(m)
        super().tearDownClass()

    def counters(self):
        data = parse(self.m.get(filter=("subtree", '<nacm xmlns="%s"/>' % NACM_NS)).xml)
        return {name: int(data.findtext(".//nacm:%s" % name, namespaces=NS))
                for name in ("denied-operations", "denied-data-writes", "denied-notifications")}

    def level(self, user):
        reply = self.sessions[user].get_config(source="running", filter=(
            "subtree", '<python-vm xmlns="%s"><logging><level/></logging></python-vm>' % NCS_NS))
        return parse(reply.xml).findtext(".//ncs:level", namespaces=NS)

    def assertDenied(self, reply):
        errors = rpc_errors(parse(reply))
        self.assertIn("access-denied", [e.get("error-tag") for e in errors], reply)

    def test_the_admins_may_do_everything(self):
        boss = self.sessions["boss"]
        self.assertTrue(boss.edit_config(target="running", config=LEVEL % "level-warning").ok)
        self.assertEqual(self.level("boss"), "level-warning")
        # The audit log says who changed what, from where.
        with open(os.path.join(self.server.log_dir, "audit.log")) as f:
            audit = f.read()
        self.assertIn("session %s, user boss from 127.0.0.1:" % boss.session_id, audit)
        self.assertRegex(audit, r"user boss from 127\.0\.0\.1:\d+, changed running: "
                                r"replace /tailf-ncs:python-vm/tailf-ncs:logging/tailf-ncs:level")
        self.assertTrue(boss.dispatch(to_ele(PING)).ok)
        # /nacm is default-deny-all: only a rule lets anyone but the recovery session see it.
        data = parse(boss.get_config(source="running",
                                     filter=("subtree", '<nacm xmlns="%s"/>' % NACM_NS)).xml)
        self.assertIsNotNone(data.find(".//nacm:rule-list", namespaces=NS))

    def test_an_operator_reads_but_does_not_write(self):
        oper = self.sessions["oper"]
        before = self.counters()
        self.assertIsNotNone(self.level("oper"))
        reply = oper.edit_config(target="running", config=LEVEL % "level-error")
        self.assertDenied(reply.xml)
        self.assertNotEqual(self.level("boss"), "level-error")
        after = self.counters()
        self.assertEqual(after["denied-data-writes"], before["denied-data-writes"] + 1)
        # The candidate too: the write is checked when the candidate is edited.
        self.assertDenied(oper.edit_config(target="candidate",
                                           config=LEVEL % "level-error").xml)
        # /nacm is default-deny-all: hidden from it.
        data = parse(oper.get_config(source="running").xml)
        self.assertIsNone(data.find(".//nacm:nacm", namespaces=NS))

    def test_an_operator_may_not_stop_a_vm_nor_kill_a_session(self):
        oper = self.sessions["oper"]
        before = self.counters()
        self.assertDenied(oper.dispatch(to_ele(STOP)).xml)
        # kill-session is default-deny-all in ietf-netconf.
        self.assertDenied(oper.kill_session(self.m.session_id).xml)
        self.assertEqual(self.counters()["denied-operations"], before["denied-operations"] + 2)
        # Other actions run (exec-default is permit).
        self.assertTrue(oper.dispatch(to_ele(PING)).ok)

    def test_a_limited_user_does_not_see_what_it_may_not_read(self):
        lim = self.sessions["lim"]
        self.assertIsNone(self.level("lim"))
        full = parse(lim.get_config(source="running").xml)
        self.assertIsNone(full.find(".//ncs:logging", namespaces=NS))
        # A filter cannot test what is hidden.
        xpath = lim.get(filter=("xpath", "/python-vm/logging/level"))
        self.assertIsNone(parse(xpath.xml).find(".//ncs:level", namespaces=NS))
        data = lim.dispatch(to_ele(
            '<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda" '
            'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            '<datastore>ds:running</datastore></get-data>'))
        self.assertTrue(data.ok, data.xml)
        self.assertNotIn("<logging", data.xml)
        # It may not write there either.
        self.assertDenied(lim.edit_config(target="running", config=LEVEL % "level-off").xml)

    def test_a_limited_user_may_not_ping_but_may_run_other_actions(self):
        lim = self.sessions["lim"]
        self.assertDenied(lim.dispatch(to_ele(PING)).xml)
        reply = lim.dispatch(to_ele(UPTIME))
        self.assertTrue(reply.ok, reply.xml)

    def test_a_limited_user_may_not_read_the_ticker_schema(self):
        lim = self.sessions["lim"]
        self.assertDenied(lim.get_schema("ticker").xml)
        self.assertTrue(lim.get_schema("demo-actions").ok)
        self.assertTrue(self.sessions["oper"].get_schema("ticker").ok)

    def test_a_limited_user_does_not_receive_denied_notifications(self):
        before = self.counters()
        boss = self.server.connect(username="boss", password="boss-pw")
        lim = self.server.connect(username="lim", password="lim-pw")
        try:
            lim.create_subscription(stream_name="ticker")
            boss.create_subscription(stream_name="ticker")
            deadline = time.monotonic() + 30
            got = None
            while got is None and time.monotonic() < deadline:
                got = boss.take_notification(timeout=2)
            self.assertIsNotNone(got, "boss received no tick")
            self.assertIsNone(lim.take_notification(timeout=1))
            self.assertGreater(self.counters()["denied-notifications"],
                               before["denied-notifications"])
        finally:
            close_quietly(boss)
            close_quietly(lim)

    def test_the_recovery_session_is_not_checked(self):
        # admin is the bootstrap user: no group, no rule, and still everything.
        self.assertTrue(self.m.edit_config(target="running", config=LEVEL % "level-info").ok)
        self.assertIsNotNone(parse(self.m.get_config(source="running").xml)
                             .find(".//nacm:nacm", namespaces=NS))

    def test_rule_changes_apply_at_once(self):
        # Let the operators write the logging level, then take it back.
        grant = ('<config><nacm xmlns="%s" xmlns:ncs="%s"><rule-list><name>operators</name>'
                 '<rule><name>logging</name><module-name>tailf-ncs</module-name>'
                 '<path>/ncs:python-vm/ncs:logging</path>'
                 '<access-operations>create update</access-operations>'
                 '<action>permit</action></rule></rule-list></nacm></config>' % (NACM_NS, NCS_NS))
        self.assertTrue(self.m.edit_config(target="running", config=grant).ok)
        try:
            reply = self.sessions["oper"].edit_config(target="running",
                                                      config=LEVEL % "level-error")
            self.assertTrue(reply.ok, reply.xml)
        finally:
            revoke = grant.replace("<rule><name>logging</name>",
                                   '<rule xmlns:nc="%s" nc:operation="delete"><name>logging</name>'
                                   % NC_NS)
            self.assertTrue(self.m.edit_config(target="running", config=revoke).ok)
        self.assertDenied(self.sessions["oper"].edit_config(
            target="running", config=LEVEL % "level-info").xml)

    def probe(self, session, what, value="", as_user="", context="", groups=()):
        reply = session.dispatch(to_ele(
            '<action xmlns="urn:ietf:params:xml:ns:yang:1"><probe xmlns="%s"><run>'
            '<what>%s</what><value>%s</value><as-user>%s</as-user><context>%s</context>%s'
            '</run></probe></action>' % (PR_NS, what, value, as_user, context,
                                         "".join("<group>%s</group>" % g for g in groups))))
        self.assertTrue(reply.ok, reply.xml)
        return parse(reply.xml).findtext(".//{%s}result" % PR_NS)

    def secret(self):
        data = parse(self.m.get_config(source="running", filter=(
            "subtree", '<secret xmlns="%s"/>' % PR_NS)).xml)
        return data.findtext(".//{%s}code" % PR_NS)

    def test_python_transactions_run_with_the_rights_of_the_caller(self):
        lim, oper, boss = (self.sessions[u] for u in ("lim", "oper", "boss"))
        self.assertEqual(self.probe(self.m, "write", "s1"), "written")
        # The action's transaction holds what its caller may read.
        self.assertEqual(self.probe(lim, "read"), "hidden")
        self.assertEqual(self.probe(boss, "read"), "seen")
        self.assertEqual(self.probe(self.m, "read"), "seen")
        # A transaction started in the callback without a user session writes as the caller.
        self.assertRegex(self.probe(lim, "write", "s2"), r"^error 3: access denied")
        self.assertRegex(self.probe(oper, "write", "s2"), r"^error 3: access denied")
        self.assertEqual(self.secret(), "s1")
        self.assertEqual(self.probe(boss, "write", "s3"), "written")
        self.assertEqual(self.secret(), "s3")

    def test_single_write_trans_runs_as_the_user_it_names(self):
        self.assertRegex(self.probe(self.m, "write", "n1", "lim", "python"), r"^error 3:")
        self.assertRegex(self.probe(self.m, "write", "n1", "nobody", "python"), r"^error 3:")
        self.assertNotEqual(self.secret(), "n1")
        # The context 'system' is never checked (NSO's rule), whoever the user.
        self.assertEqual(self.probe(self.m, "write", "n2", "lim", "system"), "written")
        self.assertEqual(self.secret(), "n2")
        # The groups a user session names count besides the user's /nacm groups.
        self.assertEqual(self.probe(self.m, "write", "n3", "nobody", "python", ["admins"]),
                         "written")
        self.assertEqual(self.secret(), "n3")
        # The bootstrap user is the recovery session in Python too.
        self.assertEqual(self.probe(self.sessions["lim"], "write", "n4", "admin", "python"),
                         "written")
        self.assertEqual(self.secret(), "n4")
