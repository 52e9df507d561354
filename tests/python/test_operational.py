"""End-to-end tests of operational data written by package code and of the alarm list: state
data written through ncs.OPERATIONAL transactions, alarms raised, cleared and purged by
package code, the alarm actions of operators, and all of it across a crash of the server.
"""

import os

from ncclient.xml_ import to_ele

from pyvmd_harness import NCS_NS, parse
from test_runtime import RuntimeTestCase, package, write

OP = "urn:pyvmd-test:oper"
AL = "http://tail-f.com/ns/ncs-alarms"
YANG_ACTION = "urn:ietf:params:xml:ns:yang:1"
NS = {"op": OP, "al": AL, "ncs": NCS_NS}

OPER_YANG = """
module oper {
  yang-version 1.1;
  namespace "urn:pyvmd-test:oper";
  prefix op;
  import tailf-common { prefix tailf; }
  import tailf-ncs-alarms { prefix al; }

  identity link-down {
    base al:alarm-type;
  }
  container stats {
    config false;
    leaf counter { type uint32; }
    list peer {
      key name;
      leaf name { type string; }
      leaf state { type string; }
    }
  }
  list port {
    key name;
    leaf name { type string; }
    leaf oper-status { config false; type string; }
  }
  container tools {
    tailf:action run {
      tailf:actionpoint oper-tools;
      input { leaf what { type string; } leaf arg { type string; } }
      output { leaf result { type string; } }
    }
  }
}
"""

OPER_PY = """
import json

import _ncs
import ncs
from ncs.application import Application
from ncs.dp import Action


def alarm_path(port):
    return ("/al:alarms/alarm-list/alarm{ncs op:link-down /op:port[op:name='%s'] \\"\\"}" % port)


class Tools(Action):
    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        what, arg = input.what, input.arg
        if what == "lower":
            output.result = json.dumps(self.lower_layers())
            return
        with ncs.maapi.single_write_trans("admin", "system", db=ncs.OPERATIONAL) as t:
            root = ncs.maagic.get_root(t)
            if what == "stats":
                root.op__stats.counter = int(arg)
                root.op__stats.peer.create("p1").state = "up"
            elif what == "port-status":
                root.op__port[arg].oper_status = "down"
            elif what == "config":
                t.set_elem("x", "/op:port{%s}/name" % arg)
            elif what in ("raise", "clear"):
                path = alarm_path(arg)
                t.set_elem("critical" if what == "raise" else "cleared",
                           path + "/last-perceived-severity")
                t.set_elem("link %s is %s" % (arg, "down" if what == "raise" else "up"),
                           path + "/last-alarm-text")
                t.set_elem("true" if what == "clear" else "false", path + "/is-cleared")
            elif what == "delete-alarm":
                t.delete(alarm_path(arg))
            t.apply()
        output.result = "done " + what


    def lower_layers(self):
        # What public packages use of the lower layers of the API.
        out = {"vsn": ncs.LIB_VSN_STR, "vsn_low": _ncs.LIB_VSN_STR}
        ns = _ncs.str2hash("urn:pyvmd-test:oper")
        out["prefix"] = _ncs.ns2prefix(ns)
        out["name"] = _ncs.hash2str(_ncs.str2hash("oper-status"))
        out["xpath"] = _ncs.xpath_pp_kpath("/op:port{ge7}/oper-status")
        with ncs.maapi.single_write_trans("admin", "system") as t:
            t.create("/op:port{tt1}")
            m = t.maapi
            child = m.start_trans_in_trans(ncs.READ_WRITE, 0, t)
            out["child_sees_parent"] = child.exists("/op:port{tt1}")
            child.create("/op:port{tt2}")
            out["parent_before"] = t.exists("/op:port{tt2}")
            child.apply()
            out["parent_after"] = t.exists("/op:port{tt2}")
            child.finish()
            # Nothing is committed until the parent applies.
            with ncs.maapi.single_read_trans("admin", "system") as r:
                out["running_before"] = r.exists("/op:port{tt2}")
            t.apply()
        with ncs.maapi.single_read_trans("admin", "system",
                                         flags=ncs.maapi.FLAG_NO_DEFAULTS) as r:
            value = r.get_elem("/ncs:python-vm/logging/level")
            out["no_defaults"] = [str(value), value.confd_type() == _ncs.C_DEFAULT]
        with ncs.maapi.single_read_trans("admin", "system") as r:
            value = r.get_elem("/ncs:python-vm/logging/level")
            out["defaults"] = [str(value), value.confd_type() == _ncs.C_DEFAULT]
            # A generic walk, as copy utilities do it.
            logging = ncs.maagic.get_node(r, "/ncs:python-vm/logging")
            out["children"] = sorted(c._name for c in logging._children.get_children())
            out["level"] = [c._read() for c in logging._children if c._name == "level"]
        return out


class Main(Application):
    def setup(self):
        self.register_action("oper-tools", Tools)
"""


class TestOperationalData(RuntimeTestCase):
    @classmethod
    def write_packages(cls, root, tmp):
        package(root, "oper", [("main", "oper.Main")])
        write(os.path.join(root, "oper", "src", "yang", "oper.yang"), OPER_YANG)
        write(os.path.join(root, "oper", "python", "oper.py"), OPER_PY)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wait_registered(cls, "oper-tools (action)")

    def run_tool(self, what, arg=""):
        reply = self.m.dispatch(to_ele(
            '<action xmlns="%s"><tools xmlns="%s"><run><what>%s</what><arg>%s</arg></run>'
            '</tools></action>' % (YANG_ACTION, OP, what, arg)))
        return reply

    def state(self):
        return self.get('<stats xmlns="%s"/>' % OP)

    def alarms(self):
        data = self.get('<alarms xmlns="%s"/>' % AL)
        return {a.findtext("al:managed-object", namespaces=NS): a
                for a in data.iterfind(".//al:alarm", NS)
                if a.findtext("al:type", namespaces=NS).endswith(":link-down")}

    def alarm_action(self, managed_object, inner):
        return self.m.dispatch(to_ele(
            '<action xmlns="%s"><alarms xmlns="%s"><alarm-list><alarm><device>ncs</device>'
            '<type xmlns:op="%s">op:link-down</type>'
            '<managed-object xmlns:op="%s">%s</managed-object><specific-problem/>%s'
            '</alarm></alarm-list></alarms></action>'
            % (YANG_ACTION, AL, OP, OP, managed_object, inner)))

    def test_state_data_written_by_a_package_is_served_and_survives_a_crash(self):
        self.assertTrue(self.run_tool("stats", "7").ok)
        data = self.state()
        self.assertEqual(data.findtext(".//op:counter", namespaces=NS), "7")
        self.assertEqual(data.findtext(".//op:peer/op:state", namespaces=NS), "up")
        # State data is not configuration.
        self.assertNotIn("counter", self.m.get_config("running").data_xml)
        get_data = parse(self.m.dispatch(to_ele(
            '<get-data xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-nmda" '
            'xmlns:ds="urn:ietf:params:xml:ns:yang:ietf-datastores">'
            '<datastore>ds:operational</datastore><subtree-filter><stats xmlns="%s"/>'
            '</subtree-filter></get-data>' % OP)).xml)
        self.assertEqual(get_data.findtext(".//op:counter", namespaces=NS), "7")
        self.server.kill9()
        self.server.start()
        self.m = type(self).m = self.server.connect()
        self.assertEqual(self.state().findtext(".//op:counter", namespaces=NS), "7")
        self.wait_registered("oper-tools (action)")

    def test_state_under_configuration_goes_with_it(self):
        self.m.edit_config(target="running", config=(
            '<config><port xmlns="%s"><name>ge1</name></port></config>' % OP))
        self.assertTrue(self.run_tool("port-status", "ge1").ok)
        ports = self.get('<port xmlns="%s"/>' % OP)
        self.assertEqual(ports.findtext(".//op:oper-status", namespaces=NS), "down")
        self.m.edit_config(target="running", config=(
            '<config><port xmlns="%s" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" '
            'nc:operation="delete"><name>ge1</name></port></config>' % OP))
        self.assertIsNone(self.get('<port xmlns="%s"/>' % OP).find(".//op:port", NS))

    def test_the_lower_layers_public_packages_use(self):
        import json
        reply = parse(self.run_tool("lower").xml)
        out = json.loads(reply.findtext(".//op:result", namespaces=NS))
        self.assertEqual(out["vsn"], "06010000")
        self.assertEqual(out["vsn_low"], "06010000")
        self.assertEqual(out["prefix"], "op")
        self.assertEqual(out["name"], "oper-status")
        self.assertEqual(out["xpath"], "/op:port[name='ge7']/oper-status")
        self.assertTrue(out["child_sees_parent"])
        self.assertFalse(out["parent_before"])
        self.assertTrue(out["parent_after"])
        self.assertFalse(out["running_before"])
        self.assertEqual(out["no_defaults"], ["level-info", True])
        self.assertEqual(out["defaults"], ["level-info", False])
        self.assertIn("level", out["children"])
        self.assertIn("vm-levels", out["children"])
        self.assertEqual(out["level"], ["level-info"])
        ports = self.m.get_config("running", filter=("subtree", '<port xmlns="%s"/>' % OP))
        self.assertIn("tt2", ports.data_xml)

    def test_an_operational_transaction_writes_no_configuration(self):
        reply = self.run_tool("config", "ge9")
        self.assertFalse(reply.ok)
        self.assertIn("OPERATIONAL transaction writes state data only", reply.error.message)

    def test_package_alarms_and_the_operator_actions(self):
        self.assertTrue(self.run_tool("raise", "ge2").ok)
        mo = "/op:port[op:name='ge2']"
        [alarm] = [a for k, a in self.alarms().items() if k == mo]
        self.assertEqual(alarm.findtext("al:is-cleared", namespaces=NS), "false")
        self.assertEqual(alarm.findtext("al:last-perceived-severity", namespaces=NS),
                         "critical")
        self.assertEqual(alarm.findtext("al:last-alarm-text", namespaces=NS), "link ge2 is down")

        self.assertTrue(self.run_tool("clear", "ge2").ok)
        alarm = self.alarms()[mo]
        self.assertEqual(alarm.findtext("al:is-cleared", namespaces=NS), "true")
        self.assertEqual(len(alarm.findall("al:status-change", NS)), 2)

        # An operator acknowledges it; the handling is kept with who did it.
        reply = self.alarm_action(mo, "<handle-alarm><state>ack</state>"
                                      "<description>seen</description></handle-alarm>")
        self.assertTrue(reply.ok, reply.xml)
        alarm = self.alarms()[mo]
        self.assertEqual(alarm.findtext("al:alarm-handling/al:state", namespaces=NS), "ack")
        self.assertEqual(alarm.findtext("al:alarm-handling/al:user", namespaces=NS), "admin")

        # Alarms survive a crash, handling included.
        self.server.kill9()
        self.server.start()
        self.m = type(self).m = self.server.connect()
        alarm = self.alarms()[mo]
        self.assertEqual(alarm.findtext("al:alarm-handling/al:state", namespaces=NS), "ack")
        self.wait_registered("oper-tools (action)")

        # purge removes one alarm; purge-alarms those that match.
        self.assertTrue(self.alarm_action(mo, "<purge/>").ok)
        self.assertNotIn(mo, self.alarms())
        self.assertFalse(self.alarm_action(mo, "<purge/>").ok)
        for port in ("ge3", "ge4"):
            self.assertTrue(self.run_tool("raise", port).ok)
        self.assertTrue(self.run_tool("clear", "ge3").ok)
        reply = parse(self.m.dispatch(to_ele(
            '<action xmlns="%s"><alarms xmlns="%s"><alarm-list><purge-alarms>'
            '<alarm-status>cleared</alarm-status></purge-alarms></alarm-list></alarms></action>'
            % (YANG_ACTION, AL))).xml)
        self.assertEqual(reply.findtext(".//al:purged-alarms", namespaces=NS), "1")
        self.assertEqual(sorted(self.alarms()), ["/op:port[op:name='ge4']"])
        # Package code can delete (purge) its alarm too.
        self.assertTrue(self.run_tool("delete-alarm", "ge4").ok)
        self.assertEqual(self.alarms(), {})
