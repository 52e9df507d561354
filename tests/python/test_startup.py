"""The startup datastore (:startup, RFC 6241 §8.7) and copy-config / delete-config between all
datastores and from inline configuration, with RFC 6243 with-defaults on copy-config."""

import os

from ncclient.xml_ import to_ele

from pyvmd_harness import (CAP_STARTUP, NC_NS, close_quietly, config, leaf_xml, logging_, pvm,
                            vm_level)
from nc_common import DatastoreTestCase, edit_ds, level_edit


class TestStartup(DatastoreTestCase):

    def tearDown(self):
        # Leave no startup behind for the next test (nor for a restart).
        self.m.delete_config(target="startup")
        super().tearDown()

    def copy(self, source, target):
        """copy-config; ``source`` is a datastore name or the XML of an inline <config>."""
        if source.startswith("<"):
            return self.m.dispatch(to_ele(
                '<copy-config xmlns="%s"><target><%s/></target><source>%s</source></copy-config>'
                % (NC_NS, target, source)))
        return self.m.copy_config(source=source, target=target)

    def test_capability(self):
        self.assertIn(CAP_STARTUP, list(self.m.server_capabilities))

    def test_copy_running_to_startup_and_back(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-debug")))
        self.assertOk(self.copy("running", "startup"))
        self.assertEqual(self.level("startup"), "level-debug")
        self.assertOk(edit_ds(self.m, "running", level_edit("level-error")))
        self.assertEqual(self.level("startup"), "level-debug")
        self.assertOk(self.copy("startup", "running"))
        self.assertEqual(self.level("running"), "level-debug")

    def test_copy_between_candidate_and_others(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-info")))
        self.assertOk(self.copy("running", "startup"))
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-off")))
        self.assertOk(self.copy("candidate", "startup"))
        self.assertEqual(self.level("startup"), "level-off")
        self.assertOk(self.m.discard_changes())
        self.assertOk(self.copy("startup", "candidate"))
        self.assertEqual(self.level("candidate"), "level-off")
        self.assertEqual(self.level("running"), "level-info")
        self.assertOk(self.m.commit())
        self.assertEqual(self.level("running"), "level-off")

    def test_copy_inline_config(self):
        inline = config(pvm(logging_(leaf_xml("level", "level-warning")
                                     + vm_level("x", "level-debug"))))
        for target in ("running", "startup", "candidate"):
            self.assertOk(self.copy(inline, target), "copy to %s" % target)
            self.assertEqual(self.read(target)["vm-levels"], {"x": "level-debug"}, target)

    def test_copy_invalid_inline_config_changes_nothing(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-info")))
        inline = config(pvm(logging_(leaf_xml("level", "nope"))))
        self.assertRpcError(self.copy(inline, "running"), tag="invalid-value")
        self.assertEqual(self.level("running"), "level-info")

    def test_copy_replaces_whole_target(self):
        self.assertOk(edit_ds(self.m, "running", pvm(logging_(vm_level("a", "level-debug")))))
        self.assertOk(self.copy("running", "startup"))
        self.assertOk(edit_ds(self.m, "running", pvm(op="remove")))
        self.assertOk(edit_ds(self.m, "running", level_edit("level-off")))
        self.assertOk(self.copy("running", "startup"))
        self.assertEqual(self.read("startup"), {"level": "level-off"})

    def test_copy_same_source_and_target_rejected(self):
        self.assertRpcError(self.copy("running", "running"), tag="invalid-value")

    def test_copy_with_defaults_report_all(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-debug")))
        request = ('<copy-config xmlns="%s"><target><startup/></target><source><running/></source>'
                   '<with-defaults xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">'
                   'report-all</with-defaults></copy-config>' % NC_NS)
        self.assertOk(self.m.dispatch(to_ele(request)))
        # The defaults are now explicit configuration in startup.
        data = self.read("startup")
        self.assertEqual(data.get("log-file-prefix"), "ncs-python-vm", data)
        self.assertEqual(data.get("level"), "level-debug", data)
        self.assertNotIn("log-file-prefix", self.read("running"))

    def copy_with_defaults(self, mode):
        request = ('<copy-config xmlns="%s"><target><startup/></target><source><running/></source>'
                   '<with-defaults xmlns="urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults">'
                   '%s</with-defaults></copy-config>' % (NC_NS, mode))
        return self.m.dispatch(to_ele(request))

    def test_copy_with_defaults_trim(self):
        # level-info is the default value: trim leaves it out of the copy.
        self.assertOk(edit_ds(self.m, "running", pvm(logging_(
            leaf_xml("level", "level-info") + leaf_xml("log-file-prefix", "mine")))))
        self.assertOk(self.copy_with_defaults("trim"))
        startup = self.read("startup")
        self.assertEqual(startup, {"log-file-prefix": "mine"})
        self.assertEqual(self.read("startup", with_defaults="explicit"), {"log-file-prefix": "mine"})

    def test_copy_with_defaults_report_all_tagged_and_explicit(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-debug")))
        for mode in ("report-all-tagged", "explicit"):
            self.assertOk(self.copy_with_defaults(mode), mode)
            self.assertEqual(self.level("startup"), "level-debug", mode)

    def test_copy_with_bad_with_defaults(self):
        self.assertRpcError(self.copy_with_defaults("sometimes"), tag="invalid-value")

    def test_delete_startup(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-debug")))
        self.assertOk(self.copy("running", "startup"))
        self.assertOk(self.m.delete_config(target="startup"))
        self.assertEqual(self.read("startup"), {})
        self.assertEqual(self.level("running"), "level-debug")

    def test_delete_running_or_candidate_refused(self):
        for target in ("running", "candidate"):
            self.assertRpcError(self.m.delete_config(target=target),
                                tag="operation-not-supported")

    def test_url_not_supported(self):
        request = ('<copy-config xmlns="%s"><target><url>file:///tmp/x.xml</url></target>'
                   '<source><running/></source></copy-config>' % NC_NS)
        self.assertRpcError(self.m.dispatch(to_ele(request)), tag="operation-not-supported")


class TestStartupAtBoot(DatastoreTestCase):

    def test_restart_keeps_running_and_fresh_state_boots_from_startup(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-debug")))
        self.assertOk(self.m.copy_config(source="running", target="startup"))
        self.assertOk(edit_ds(self.m, "running", level_edit("level-error")))
        self.server.restart()
        m = self.connect()
        # Nothing acknowledged is lost by a restart: running is the last commit.
        self.assertEqual(self.level("running", m), "level-error")
        self.assertEqual(self.level("startup", m), "level-debug")
        close_quietly(m)
        # Without a running configuration (a reset state directory) the server boots from
        # startup, as a device does.
        self.server.stop()
        os.remove(os.path.join(self.server.state_dir, "running.xml"))
        self.server.start()
        m = self.connect()
        self.assertEqual(self.level("running", m), "level-debug", "not booted from startup")
