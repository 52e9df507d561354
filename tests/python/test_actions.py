"""End-to-end tests of package YANG and package actions: the repository's demo-actions package
runs in a real VM, and ncclient invokes its actions in every form NSO packages use.
"""

import os
import shutil

from ncclient.xml_ import to_ele

from pyvmd_harness import NCS_NS, REPO_DIR, parse
from test_runtime import RuntimeTestCase, package, write

DA = "http://example.com/pyvmd/demo-actions"
DL = "http://example.com/pyvmd/demo-legacy"
AL = "http://tail-f.com/ns/ncs-alarms"
YANG_ACTION = "urn:ietf:params:xml:ns:yang:1"
TAILF_ACTION = "http://tail-f.com/ns/netconf/actions/1.0"
NS = {"da": DA, "dl": DL, "ncs": NCS_NS, "al": AL}


def tools_action(inner):
    return '<action xmlns="%s"><tools xmlns="%s">%s</tools></action>' % (YANG_ACTION, DA, inner)


class TestPackageActions(RuntimeTestCase):
    # A short action timeout, for the test of a callback that runs too long.
    server_args = ("--vm-action-timeout", "2")

    @classmethod
    def write_packages(cls, root, tmp):
        shutil.copytree(os.path.join(REPO_DIR, "packages", "demo-actions"),
                        os.path.join(root, "demo-actions"))
        # A package whose YANG does not compile: it alone fails.
        package(root, "bad-yang", [("main", "bad_yang.Main")])
        write(os.path.join(root, "bad-yang", "src", "yang", "bad-yang.yang"), """
            module bad-yang {
              namespace "urn:bad-yang";
              prefix bad;
              leaf x { type no-such-type; }
            }
            """)
        write(os.path.join(root, "bad-yang", "python", "bad_yang.py"), """
            from ncs.application import Application

            class Main(Application):
                pass
            """)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The VM registers its actionpoints at start.
        cls.wait_registered(cls, "demo-uptime (action)")

    def call(self, xml):
        return parse(self.m.dispatch(to_ele(xml)).xml)

    def error_of(self, xml):
        reply = self.m.dispatch(to_ele(xml))
        self.assertFalse(reply.ok, "expected an rpc-error, got %s" % reply.xml)
        return reply.error

    def text(self, root, path):
        found = root.find(path, NS)
        self.assertIsNotNone(found, "%s not in the reply" % path)
        return found.text

    def test_package_modules_are_announced_and_served_as_written(self):
        caps = list(self.m.server_capabilities)
        self.assertTrue(any("module=demo-actions" in c for c in caps), caps)
        self.assertTrue(any("module=demo-legacy" in c for c in caps), caps)
        self.assertFalse(any("module=bad-yang" in c for c in caps), caps)
        schema = self.m.get_schema("demo-legacy").data
        self.assertIn("tailf:action uptime", schema)
        self.assertIn("tailf:actionpoint demo-uptime", schema)

    def test_a_package_whose_yang_fails_gets_file_load_error(self):
        data = self.get('<packages xmlns="%s"/>' % NCS_NS)
        pkgs = {p.findtext("ncs:name", namespaces=NS): p
                for p in data.iterfind(".//ncs:package", NS)}
        bad = pkgs["bad-yang"]
        self.assertIsNotNone(bad.find("ncs:oper-status/ncs:file-load-error", NS))
        self.assertIn("no-such-type", bad.findtext("ncs:oper-status/ncs:error-info",
                                                   namespaces=NS))
        self.assertIsNotNone(pkgs["demo-actions"].find("ncs:oper-status/ncs:up", NS))

    def test_yang_1_1_action_with_every_kind_of_parameter(self):
        reply = self.call(tools_action(
            "<ping><host>h1.example</host><count>2</count><verbose/>"
            "<options><ttl>9</ttl></options><tags>a</tags><tags>b</tags></ping>"))
        self.assertEqual(self.text(reply, ".//da:result"), "pinged h1.example 2 times")
        self.assertEqual(self.text(reply, ".//da:sent"), "2")
        self.assertIsNotNone(reply.find(".//da:reachable", NS))
        rtts = [(r.findtext("da:seq", namespaces=NS), r.findtext("da:rtt-ms", namespaces=NS))
                for r in reply.iterfind(".//da:reply", NS)]
        self.assertEqual(rtts, [("1", "0.5"), ("2", "1.0")])
        notes = [n.text for n in reply.iterfind(".//da:notes", NS)]
        self.assertEqual(notes, ["verbose", "ttl 9", "a", "b"])
        self.assertEqual(self.text(reply, ".//da:summary/da:loss-percent"), "0")

    def test_defaults_and_absent_parameters(self):
        reply = self.call(tools_action("<ping><host>unreachable.example</host></ping>"))
        # count defaults to 3; no verbose, no options, no reachable.
        self.assertEqual(self.text(reply, ".//da:sent"), "3")
        self.assertIsNone(reply.find(".//da:reachable", NS))
        self.assertEqual([n.text for n in reply.iterfind(".//da:notes", NS)], [])

    def test_tailf_action_in_both_invocation_forms(self):
        tailf = self.call('<action xmlns="%s"><data><system-info xmlns="%s"><uptime/>'
                          '</system-info></data></action>' % (TAILF_ACTION, DL))
        self.assertEqual(self.text(tailf, ".//dl:system-info/dl:uptime/dl:vm"), "demo-actions")
        int(self.text(tailf, ".//dl:uptime/dl:seconds"))
        yang11 = self.call('<action xmlns="%s"><system-info xmlns="%s"><uptime/></system-info>'
                           '</action>' % (YANG_ACTION, DL))
        self.assertEqual(self.text(yang11, ".//dl:vm"), "demo-actions")

    def test_rpc_with_an_actionpoint(self):
        reply = self.call('<echo xmlns="%s"><message>hello</message><upper>true</upper></echo>'
                          % DA)
        self.assertEqual(self.text(reply, ".//da:message"), "HELLO")

    def test_action_on_a_list_entry_gets_its_keypath_and_a_transaction(self):
        self.m.edit_config(target="running", config='<config><tools xmlns="%s"><host>'
                           '<name>r1</name><address>10.0.0.1</address></host></tools></config>'
                           % DA)
        reply = self.call(tools_action(
            "<host><name>r1</name><reboot><delay>5</delay></reboot></host>"))
        self.assertEqual(self.text(reply, ".//da:result"),
                         "rebooting /da:tools/host{r1} (10.0.0.1) in 5 s")

    def test_an_exception_is_an_rpc_error_with_the_python_message(self):
        err = self.error_of(tools_action("<fail><how>exception</how></fail>"))
        self.assertEqual(err.tag, "operation-failed")
        self.assertEqual(err.message, "the demo failed on purpose")
        self.assertIn("Traceback", self.vm_log("demo-actions"))
        self.assertIn("ValueError: the demo failed on purpose", self.vm_log("demo-actions"))

    def test_confd_err_and_invalid_output_are_errors(self):
        err = self.error_of(tools_action("<fail><how>confd-err</how></fail>"))
        self.assertIn("CONFD_ERR", err.message)
        err = self.error_of(tools_action("<fail><how>bad-output</how></fail>"))
        self.assertIn("does not fit its model", err.message)
        self.assertIn("1000", err.message)

    def test_a_slow_action_times_out_and_the_vm_lives_on(self):
        err = self.error_of(tools_action("<fail><how>slow</how></fail>"))
        self.assertIn("no answer within 2 s", err.message)
        reply = self.call('<echo xmlns="%s"><message>still here</message></echo>' % DA)
        self.assertEqual(self.text(reply, ".//da:message"), "still here")

    def test_an_unregistered_actionpoint_is_named(self):
        err = self.error_of(tools_action("<unregistered/>"))
        self.assertEqual(err.tag, "operation-failed")
        self.assertIn("demo-nobody", err.message)

    def test_bad_input_is_refused_before_python_runs(self):
        err = self.error_of(tools_action("<ping><count>2</count></ping>"))
        self.assertIn("host", err.message)
        err = self.error_of(tools_action("<ping><host>h1</host><count>99</count></ping>"))
        self.assertIn("99", err.message)


class TestSelfAssignWarning(RuntimeTestCase):
    """Assigning to self in cb_action: nothing, a log line or one alarm, per the mode."""

    @classmethod
    def write_packages(cls, root, tmp):
        shutil.copytree(os.path.join(REPO_DIR, "packages", "demo-actions"),
                        os.path.join(root, "demo-actions"))

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wait_registered(cls, "demo-uptime (action)")
        hosts = "".join("<host><name>%s</name></host>" % h for h in ("off", "log", "alarm"))
        cls.m.edit_config(target="running",
                          config='<config><tools xmlns="%s">%s</tools></config>' % (DA, hosts))

    def set_mode(self, mode):
        self.m.edit_config(target="running", config=(
            '<config><python-vm xmlns="%s"><sanity-checks><self-assign-warning>%s'
            '</self-assign-warning></sanity-checks></python-vm></config>' % (NCS_NS, mode)))

    def reboot(self, host):
        self.m.dispatch(to_ele(tools_action(
            "<host><name>%s</name><reboot/></host>" % host)))

    def alarms_for(self, host):
        data = self.get('<alarms xmlns="%s"/>' % AL)
        return [a for a in data.iterfind(".//al:alarm", NS)
                if a.findtext("al:managed-object", namespaces=NS).endswith("'%s']" % host)]

    def test_each_mode(self):
        self.set_mode("off")
        self.reboot("off")
        self.assertNotIn("/da:tools/host{off}", self.vm_log("demo-actions"))
        self.assertEqual(self.alarms_for("off"), [])

        self.set_mode("log")
        self.reboot("log")
        log = self.wait_for("the log line",
                            lambda: "thread safe: /da:tools/host{log}" in self.vm_log(
                                "demo-actions") and self.vm_log("demo-actions"))
        self.assertIn("Assigning to self is not thread safe: /da:tools/host{log}", log)
        self.assertIn("self.last_reboot = kp", log)
        self.assertIn("in cb_action", log)
        self.assertEqual(self.alarms_for("log"), [])

        self.set_mode("alarm")
        self.reboot("alarm")
        [alarm] = self.wait_for("the alarm", lambda: self.alarms_for("alarm"))
        self.assertEqual(alarm.findtext("al:device", namespaces=NS), "ncs")
        self.assertEqual(alarm.findtext("al:type", namespaces=NS), "package-operation-failure")
        self.assertEqual(alarm.findtext("al:last-perceived-severity", namespaces=NS), "critical")
        self.assertIn("Assigning to self is not thread safe: /da:tools/host{alarm}",
                      alarm.findtext("al:last-alarm-text", namespaces=NS))
        self.assertEqual(alarm.findtext("al:specific-problem", namespaces=NS) or "", "")
        # Again: the same alarm gets a new status change, not a twin.
        self.reboot("alarm")
        [alarm] = self.wait_for(
            "the second status change",
            lambda: [a for a in self.alarms_for("alarm")
                     if len(a.findall("al:status-change", NS)) == 2])
        self.assertEqual(len(self.alarms_for("alarm")), 1)


class TestReloadWithNewYang(RuntimeTestCase):
    """A reload that finds changed package YANG rebuilds the schema; one that running no
    longer fits is refused, changing nothing."""

    @classmethod
    def write_packages(cls, root, tmp):
        package(root, "plain", [("main", "plain.Main")])
        write(os.path.join(root, "plain", "python", "plain.py"), """
            from ncs.application import Application

            class Main(Application):
                pass
            """)

    def reload(self):
        reply = parse(self.m.dispatch(to_ele(
            '<action xmlns="%s"><packages xmlns="%s"><reload/></packages></action>'
            % (YANG_ACTION, NCS_NS))).xml)
        return reply, {r.findtext("ncs:package", namespaces=NS): r
                       for r in reply.iterfind(".//ncs:reload-result", NS)}

    def write_yang(self, body):
        write(os.path.join(self.server.packages_dir, "plain", "src", "yang", "plain.yang"),
              'module plain { namespace "urn:plain"; prefix p; %s }' % body)

    def test_new_yang_is_loaded_by_a_reload(self):
        self.write_yang("leaf x { type string; }")
        reply, results = self.reload()
        self.assertEqual(results["plain"].findtext("ncs:result", namespaces=NS), "true",
                         reply)
        # Its data can be committed at once, and new sessions are told of the module.
        edit = self.m.edit_config(target="running",
                                  config='<config><x xmlns="urn:plain">hi</x></config>')
        self.assertTrue(edit.ok, edit.xml)
        other = self.server.connect()
        try:
            self.assertTrue(any("module=plain" in c for c in other.server_capabilities))
            self.assertIn("leaf x", other.get_schema("plain").data)
        finally:
            other.close_session()

        # A schema that the committed data does not fit is refused, and nothing changes.
        self.write_yang("leaf x { type int8; }")
        reply = self.m.dispatch(to_ele(
            '<action xmlns="%s"><packages xmlns="%s"><reload/></packages></action>'
            % (YANG_ACTION, NCS_NS)))
        self.assertFalse(reply.ok)
        self.assertIn("does not fit the new schema", reply.error.message)
        self.assertIn("hi", self.m.get_config("running").data_xml)
        edit = self.m.edit_config(target="running",
                                  config='<config><x xmlns="urn:plain">still text</x></config>')
        self.assertTrue(edit.ok, edit.xml)

        # A YANG file that does not compile takes its package down, with libyang's words.
        self.m.edit_config(target="running", config=(
            '<config><x xmlns="urn:plain" xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" '
            'nc:operation="delete"/></config>'))
        self.write_yang("leaf x { type no-such-type; }")
        reply, results = self.reload()
        self.assertEqual(results["plain"].findtext("ncs:result", namespaces=NS), "false")
        self.assertIn("YANG", results["plain"].findtext("ncs:info", namespaces=NS))
