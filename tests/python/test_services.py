"""End-to-end tests of services (NSO's FASTMAP): the repository's demo-service package and a test
package run in real VMs, and ncclient commits service instances in every way a commit happens.
"""

import os
import shutil

from lxml import etree
from ncclient.xml_ import to_ele

from pyvmd_harness import NCS_NS, REPO_DIR, parse
from test_runtime import RuntimeTestCase, package, write

DS = "http://example.com/pyvmd/demo-service"
PR = "urn:pyvmd-test:probe"
AL = "http://tail-f.com/ns/ncs-alarms"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
YANG_ACTION = "urn:ietf:params:xml:ns:yang:1"
NS = {"ds": DS, "pr": PR, "ncs": NCS_NS, "al": AL}

PROBE_YANG = """
module probe {
  yang-version 1.1;
  namespace "urn:pyvmd-test:probe";
  prefix pr;
  import tailf-ncs { prefix ncs; }
  import tailf-common { prefix tailf; }

  container out {
    list entry {
      key name;
      leaf name { type string; }
      leaf value { type string; }
      leaf runs { type string; }
      leaf small { type uint8; }
    }
    leaf-list calls { type string; ordered-by user; }
    leaf note { type string; }
  }
  augment /ncs:services {
    list probe {
      key name;
      uses ncs:service-data;
      ncs:servicepoint probe-point;
      leaf name { type string; }
      leaf value { type string; }
      leaf mode {
        type enumeration {
          enum ok; enum raise; enum confd-err; enum overwrite-note; enum delete-note;
          enum bad-write;
        }
        default ok;
      }
    }
    list orphan {
      key name;
      uses ncs:service-data;
      ncs:servicepoint orphan-point;
      leaf name { type string; }
    }
  }
  leaf checked {
    type string;
    tailf:validate nobody-validates;
  }
  container tools {
    tailf:action create-probe {
      tailf:actionpoint probe-tools;
      input { leaf name { type string; } }
      output { leaf result { type string; } }
    }
  }
}
"""

PROBE_PY = """
import ncs
from ncs.application import Application, Service
from ncs.dp import Action

OPS = {0: "create", 1: "update", 2: "delete"}


class Probe(Service):
    @Service.pre_modification
    def cb_pre_modification(self, tctx, op, kp, root, proplist):
        root.pr__out.calls.create("pre %s %s" % (OPS[op], kp))

    @Service.create
    def cb_create(self, tctx, root, service, proplist):
        mode = service.mode
        if mode == "raise":
            raise ValueError("probe failed on purpose")
        # Reads through root see the instance being committed.
        again = root.ncs__services.pr__probe[service.name]
        entry = root.pr__out.entry.create(service.name)
        entry.value = again.value
        runs = int(dict(proplist).get("runs", "0")) + 1
        entry.runs = str(runs)
        if mode == "overwrite-note":
            root.pr__out.note = "written by " + service.name
        if mode == "delete-note":
            del root.pr__out.note
        if mode == "confd-err":
            return ncs.CONFD_ERR
        if mode == "bad-write":
            # Sent without waiting: the error comes when the callback returns.
            entry.small = 300
            entry.runs = "after the bad write"
        return [("runs", str(runs)), ("user", tctx.uinfo.username)]

    @Service.post_modification
    def cb_post_modification(self, tctx, op, kp, root, proplist):
        root.pr__out.calls.create("post %s %s %s" % (OPS[op], kp, dict(proplist).get("runs")))


class CreateProbe(Action):
    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        with ncs.maapi.single_write_trans("admin", "system") as t:
            root = ncs.maagic.get_root(t)
            root.ncs__services.pr__probe.create(input.name).value = "from-action"
            t.apply()
        output.result = "created " + input.name


class Main(Application):
    def setup(self):
        self.register_service("probe-point", Probe)
        self.register_action("probe-tools", CreateProbe)
"""


def services(inner, op=""):
    attr = ' xmlns:nc="%s" nc:operation="%s"' % (NC, op) if op else ""
    return '<config><services xmlns="%s"%s>%s</services></config>' % (NCS_NS, attr, inner)


def vlan_service(name, vlan, ports=(), op=""):
    attr = ' xmlns:nc="%s" nc:operation="%s"' % (NC, op) if op else ""
    return ('<vlan-service xmlns="%s"%s><name>%s</name>%s%s</vlan-service>'
            % (DS, attr, name, "" if op == "delete" else "<vlan-id>%d</vlan-id>" % vlan,
               "".join("<port>%s</port>" % p for p in ports)))


def probe(name, value="v", mode=None, op=""):
    attr = ' xmlns:nc="%s" nc:operation="%s"' % (NC, op) if op else ""
    body = "" if op == "delete" else "<value>%s</value>" % value
    if mode and op != "delete":
        body += "<mode>%s</mode>" % mode
    return '<probe xmlns="%s"%s><name>%s</name>%s</probe>' % (PR, attr, name, body)


# The registrations the tests need before they commit instances.
SERVICE_POINTS = ("vlan-service (service)", "probe-point (service)")


class TestServices(RuntimeTestCase):
    @classmethod
    def write_packages(cls, root, tmp):
        shutil.copytree(os.path.join(REPO_DIR, "packages", "demo-service"),
                        os.path.join(root, "demo-service"))
        package(root, "probe", [("main", "probe.Main")])
        write(os.path.join(root, "probe", "src", "yang", "probe.yang"), PROBE_YANG)
        write(os.path.join(root, "probe", "python", "probe.py"), PROBE_PY)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wait_registered(cls, *SERVICE_POINTS)

    def edit(self, inner, op="", target="running"):
        reply = self.m.edit_config(target=target, config=services(inner, op))
        self.assertTrue(reply.ok, reply.xml)
        return reply

    def edit_error(self, inner, target="running"):
        reply = self.m.edit_config(target=target, config=services(inner))
        self.assertFalse(reply.ok, "expected an rpc-error, got %s" % reply.xml)
        return reply.error

    def config(self, subtree):
        return parse(self.m.get_config("running", filter=("subtree", subtree)).xml)

    def vlan(self, vid):
        """(name, ports) of /dsvc:vlans/vlan[vid], or None."""
        data = self.config('<vlans xmlns="%s"/>' % DS)
        for v in data.iterfind(".//ds:vlan", NS):
            if v.findtext("ds:id", namespaces=NS) == str(vid):
                return (v.findtext("ds:name", namespaces=NS),
                        sorted(p.text for p in v.iterfind("ds:port", NS)))
        return None

    def out(self):
        """{entry name: (value, runs)}, calls and note of /pr:out."""
        data = self.config('<out xmlns="%s"/>' % PR)
        entries = {e.findtext("pr:name", namespaces=NS): (e.findtext("pr:value", namespaces=NS),
                                                            e.findtext("pr:runs", namespaces=NS))
                   for e in data.iterfind(".//pr:entry", NS)}
        calls = [c.text for c in data.iterfind(".//pr:calls", NS)]
        return entries, calls, data.findtext(".//pr:note", namespaces=NS)

    def service_action(self, instance_xml, action):
        """Runs ``action`` (XML) on the instance ``instance_xml`` (with ``%s`` for it)."""
        xml = ('<action xmlns="%s"><services xmlns="%s">%s</services></action>'
               % (YANG_ACTION, NCS_NS, instance_xml % action))
        return parse(self.m.dispatch(to_ele(xml)).xml)

    def test_create_modify_delete_and_shared_nodes(self):
        self.edit(vlan_service("a", 10, ["ge1", "ge2"]))
        self.assertEqual(self.vlan(10), ("vlan-10", ["ge1", "ge2"]))
        # A second service shares the VLAN.
        self.edit(vlan_service("b", 10, ["ge3"]))
        self.assertEqual(self.vlan(10), ("vlan-10", ["ge1", "ge2", "ge3"]))
        # What a's next run no longer writes goes away; the rest stays.
        self.edit(vlan_service("a", 10, ["ge1"], op="replace"))
        self.assertEqual(self.vlan(10), ("vlan-10", ["ge1", "ge3"]))
        # The VLAN stays until the last service lets go of it.
        self.edit(vlan_service("a", 10, op="delete"))
        self.assertEqual(self.vlan(10), ("vlan-10", ["ge3"]))
        self.edit(vlan_service("b", 10, op="delete"))
        self.assertIsNone(self.vlan(10))

    def test_moving_an_instance_moves_what_it_wrote(self):
        self.edit(vlan_service("m", 20, ["ge1"]))
        self.edit(vlan_service("m", 21, ["ge1"], op="replace"))
        self.assertIsNone(self.vlan(20))
        self.assertEqual(self.vlan(21), ("vlan-21", ["ge1"]))
        self.edit(vlan_service("m", 21, op="delete"))
        self.assertIsNone(self.vlan(21))

    def test_a_value_that_existed_before_comes_back(self):
        self.m.edit_config(target="running", config=(
            '<config><vlans xmlns="%s"><vlan><id>30</id><name>by-hand</name>'
            '<port>hand</port></vlan></vlans></config>' % DS))
        self.edit(vlan_service("h", 30, ["ge9"]))
        self.assertEqual(self.vlan(30), ("vlan-30", ["ge9", "hand"]))
        self.edit(vlan_service("h", 30, op="delete"))
        self.assertEqual(self.vlan(30), ("by-hand", ["hand"]))

    def test_candidate_commit_and_copy_config_run_services(self):
        self.edit(vlan_service("c", 40, ["ge4"]), target="candidate")
        self.assertIsNone(self.vlan(40))
        self.assertTrue(self.m.commit().ok)
        self.assertEqual(self.vlan(40), ("vlan-40", ["ge4"]))
        # copy-config of a configuration without the instance deletes it and what it wrote.
        data = parse(self.m.get_config("running").xml).find(
            "{urn:ietf:params:xml:ns:netconf:base:1.0}data")
        for svc in data.iterfind(".//ds:vlan-service", NS):
            if svc.findtext("ds:name", namespaces=NS) == "c":
                svc.getparent().remove(svc)
        config = "".join(etree.tostring(child).decode() for child in data)
        reply = self.m.copy_config(
            source='<source xmlns="%s"><config>%s</config></source>' % (NC, config),
            target="running")
        self.assertTrue(reply.ok, reply.xml)
        self.assertIsNone(self.vlan(40))

    def test_callbacks_and_proplist(self):
        self.edit(probe("p1", "one"))
        entries, calls, _ = self.out()
        self.assertEqual(entries["p1"], ("one", "1"))
        kp = "/ncs:services/pr:probe{p1}"
        self.assertIn("pre create %s" % kp, calls)
        self.assertIn("post create %s 1" % kp, calls)
        self.edit(probe("p1", "two"))
        entries, calls, _ = self.out()
        self.assertEqual(entries["p1"], ("two", "2"))
        self.assertIn("post update %s 2" % kp, calls)
        # The proplist is state data of the instance.
        state = self.get('<services xmlns="%s"><probe xmlns="%s"><name>p1</name></probe>'
                         '</services>' % (NCS_NS, PR))
        props = {p.findtext("pr:name", namespaces=NS): p.findtext("pr:value", namespaces=NS)
                 for p in state.iterfind(".//pr:private/pr:property-list/pr:property", NS)}
        self.assertEqual(props, {"runs": "2", "user": "system"})
        self.edit(probe("p1", op="delete"))
        entries, calls, _ = self.out()
        self.assertNotIn("p1", entries)
        self.assertIn("pre delete %s" % kp, calls)
        self.assertIn("post delete %s 2" % kp, calls)

    def test_failing_callbacks_abort_the_commit(self):
        before = self.m.get_config("running").data_xml
        for mode, message in (("raise", "probe failed on purpose"),
                              ("confd-err", "CONFD_ERR"),
                              ("bad-write", "300")):
            error = self.edit_error(probe("bad-" + mode, mode=mode))
            self.assertEqual(error.tag, "operation-failed")
            self.assertIn(message, error.message)
            self.assertIn("/ncs:services/pr:probe{bad-%s}" % mode, error.message)
            self.assertEqual(self.m.get_config("running").data_xml, before)
        # The candidate's commit fails the same way and leaves running as it was.
        self.edit(probe("bad-cand", mode="raise"), target="candidate")
        commit = self.m.commit()
        self.assertFalse(commit.ok)
        self.assertIn("probe failed on purpose", commit.error.message)
        self.m.discard_changes()
        self.assertEqual(self.m.get_config("running").data_xml, before)

    def test_an_unregistered_servicepoint_fails_the_commit(self):
        error = self.edit_error('<orphan xmlns="%s"><name>o</name></orphan>' % PR)
        self.assertIn("orphan-point", error.message)
        self.assertIn("no Python class is registered", error.message)

    def test_redeploy_dry_run_and_get_modifications(self):
        self.edit(vlan_service("r", 50, ["ge5"]))
        # Someone changes the derived configuration by hand.
        self.m.edit_config(target="running", config=(
            '<config><vlans xmlns="%s"><vlan><id>50</id><name>changed</name></vlan></vlans>'
            '</config>' % DS))
        instance = '<vlan-service xmlns="%s"><name>r</name>%%s</vlan-service>' % DS
        reply = self.service_action(instance, "<re-deploy><dry-run/></re-deploy>")
        diff = reply.findtext(".//ncs:local-node", namespaces=NS)
        self.assertIn("vlan-50", diff)
        self.assertEqual(self.vlan(50)[0], "changed")
        self.service_action(instance, "<re-deploy/>")
        self.assertEqual(self.vlan(50), ("vlan-50", ["ge5"]))
        reply = self.service_action(instance, "<re-deploy><dry-run/></re-deploy>")
        self.assertEqual(reply.findtext(".//ncs:local-node", namespaces=NS) or "", "")
        reply = self.service_action(instance, "<get-modifications/>")
        mods = reply.findtext(".//ncs:local-node", namespaces=NS)
        self.assertIn("<id>50</id>", mods)
        self.assertIn("<port>ge5</port>", mods)
        self.edit(vlan_service("r", 50, op="delete"))

    def test_undeploy_keeps_the_instance_until_redeploy(self):
        self.edit(vlan_service("u", 90, ["ge90"]))
        instance = '<vlan-service xmlns="%s"><name>u</name>%%s</vlan-service>' % DS
        self.service_action(instance, "<un-deploy/>")
        self.assertIsNone(self.vlan(90))
        self.assertIn("<name>u</name>", self.m.get_config("running").data_xml)
        # A change of an un-deployed instance deploys nothing.
        self.edit(vlan_service("u", 90, ["ge90", "ge91"], op="replace"))
        self.assertIsNone(self.vlan(90))
        self.service_action(instance, "<re-deploy/>")
        self.assertEqual(self.vlan(90), ("vlan-90", ["ge90", "ge91"]))
        self.edit(vlan_service("u", 90, op="delete"))
        self.assertIsNone(self.vlan(90))

    def test_overwrite_and_delete_of_existing_data_are_undone(self):
        self.m.edit_config(target="running", config=(
            '<config><out xmlns="%s"><note>original</note></out></config>' % PR))
        self.edit(probe("w", mode="overwrite-note"))
        self.assertEqual(self.out()[2], "written by w")
        self.edit(probe("w", op="delete"))
        self.assertEqual(self.out()[2], "original")
        self.edit(probe("d", mode="delete-note"))
        self.assertIsNone(self.out()[2])
        self.edit(probe("d", op="delete"))
        self.assertEqual(self.out()[2], "original")

    def test_a_maapi_apply_from_package_code_runs_services(self):
        reply = parse(self.m.dispatch(to_ele(
            '<action xmlns="%s"><tools xmlns="%s"><create-probe><name>from-maapi</name>'
            '</create-probe></tools></action>' % (YANG_ACTION, PR))).xml)
        self.assertEqual(reply.findtext(".//pr:result", namespaces=NS), "created from-maapi")
        self.assertEqual(self.out()[0]["from-maapi"], ("from-action", "1"))
        self.edit(probe("from-maapi", op="delete"))

    def test_bookkeeping_is_not_shown_and_cannot_be_written(self):
        self.edit(vlan_service("k", 60, ["ge6"]))
        everything = self.m.get_config("running").data_xml
        self.assertNotIn("service-bookkeeping", everything)
        self.assertNotIn("service-bookkeeping", self.m.get().data_xml)
        self.m.edit_config(target="running", config=(
            '<config><service-bookkeeping xmlns="urn:pyvmd:services"><fastmap>{}</fastmap>'
            '</service-bookkeeping></config>'))
        self.assertNotIn("service-bookkeeping", self.m.get_config("running").data_xml)
        self.edit(vlan_service("k", 60, op="delete"))
        self.assertIsNone(self.vlan(60))

    def test_self_assign_in_cb_create_raises_an_alarm_for_the_instance(self):
        self.edit(vlan_service("s", 70, ["ge7"]))

        def alarm():
            data = self.get('<alarms xmlns="%s"/>' % AL)
            return [a for a in data.iterfind(".//al:alarm", NS)
                    if "Assigning to self is not thread safe: /ncs:services/dsvc:vlan-service{s}"
                    in (a.findtext("al:last-alarm-text", namespaces=NS) or "")]
        [found] = self.wait_for("the self-assign alarm", alarm)
        self.assertIn("vlan-service[dsvc:name='s']",
                      found.findtext("al:managed-object", namespaces=NS))
        self.assertIn("self.last_service = service.name",
                      found.findtext("al:last-alarm-text", namespaces=NS))
        self.edit(vlan_service("s", 70, op="delete"))


class TestValidationPoints(RuntimeTestCase):
    """tailf:validate calls cb_validate in every commit and in validate."""

    @classmethod
    def write_packages(cls, root, tmp):
        TestServices.write_packages(root, tmp)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wait_registered(cls, *SERVICE_POINTS, "port-in-one-vlan (validation)")

    def test_a_rejecting_callback_fails_commit_and_validate(self):
        self.assertTrue(self.m.edit_config(target="running", config=services(
            vlan_service("x", 80, ["ge80"]))).ok)
        before = self.m.get_config("running").data_xml
        reply = self.m.edit_config(target="running", config=services(
            vlan_service("y", 81, ["ge80"])))
        self.assertFalse(reply.ok)
        self.assertEqual(reply.error.tag, "operation-failed")
        self.assertIn("port ge80 is already in VLAN 8", reply.error.message)
        self.assertEqual(self.m.get_config("running").data_xml, before)
        # The candidate with the same conflict does not validate, and does not commit.
        self.assertTrue(self.m.edit_config(target="candidate", config=services(
            vlan_service("y", 81, ["ge80"]))).ok)
        reply = self.m.validate(source="candidate")
        self.assertFalse(reply.ok)
        self.assertIn("port ge80 is already in VLAN", reply.error.message)
        self.assertFalse(self.m.commit().ok)
        self.m.discard_changes()
        # Without the conflict all is well.
        self.assertTrue(self.m.edit_config(target="running", config=services(
            vlan_service("y", 81, ["ge81"]))).ok)
        self.assertTrue(self.m.validate(source="running").ok)

    def test_a_point_nobody_registered_rejects(self):
        reply = self.m.edit_config(target="running", config=(
            '<config><checked xmlns="%s">x</checked></config>' % PR))
        self.assertFalse(reply.ok)
        self.assertIn("nobody-validates", reply.error.message)


class TestServicesAcrossRestart(RuntimeTestCase):
    """What services wrote, and their proplists, survive a crash of the server."""

    @classmethod
    def write_packages(cls, root, tmp):
        TestServices.write_packages(root, tmp)

    def test_kill_and_restart(self):
        self.wait_registered(*SERVICE_POINTS)
        self.m.edit_config(target="running", config=services(probe("keep", "x")))
        self.server.kill9()
        self.server.start()
        self.m = type(self).m = self.server.connect()
        self.wait_registered(*SERVICE_POINTS)
        self.m.edit_config(target="running", config=services(probe("keep", "y")))
        data = parse(self.m.get_config("running", filter=(
            "subtree", '<out xmlns="%s"/>' % PR)).xml)
        [entry] = data.iterfind(".//pr:entry", NS)
        self.assertEqual(entry.findtext("pr:runs", namespaces=NS), "2")
        self.m.edit_config(target="running", config=services(probe("keep", op="delete")))
        data = parse(self.m.get_config("running", filter=(
            "subtree", '<out xmlns="%s"/>' % PR)).xml)
        self.assertEqual(list(data.iterfind(".//pr:entry", NS)), [])
