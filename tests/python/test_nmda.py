"""NMDA (RFC 8526): get-data on running, candidate, startup, intended and operational with
subtree and XPath filters, config-filter, max-depth, origin-filter and with-origin, and
edit-data on the conventional datastores."""

from ncclient.xml_ import to_ele

from pyvmd_harness import NCS_NS, leaf_xml, logging_, parse, pvm, rpc_errors, snapshot, vm_level
from nc_common import (
    DS_NS, MON_NS, NMDA_NS, ORIGIN_NS, DatastoreTestCase, edit_ds, error_tags, level_edit,
)


def get_data(m, datastore, body=""):
    return m.dispatch(to_ele(
        '<get-data xmlns="%s" xmlns:ds="%s" xmlns:or="%s"><datastore>ds:%s</datastore>%s</get-data>'
        % (NMDA_NS, DS_NS, ORIGIN_NS, datastore, body)))


def edit_data(m, datastore, inner, default_operation=None):
    op = ("<default-operation>%s</default-operation>" % default_operation
          if default_operation else "")
    return m.dispatch(to_ele(
        '<edit-data xmlns="%s" xmlns:ds="%s"><datastore>ds:%s</datastore>%s<config>%s</config>'
        '</edit-data>' % (NMDA_NS, DS_NS, datastore, op, inner)))


PVM_FILTER = '<subtree-filter><python-vm xmlns="%s"/></subtree-filter>' % NCS_NS


class TestNmda(DatastoreTestCase):

    def setUp(self):
        super().setUp()
        self.assertOk(edit_ds(self.m, "running", pvm(logging_(
            leaf_xml("level", "level-error") + vm_level("a", "level-debug")))))

    def data(self, reply):
        root = parse(reply)
        self.assertEqual(rpc_errors(root), [], str(reply))
        data = root.find("{%s}data" % NMDA_NS)
        self.assertIsNotNone(data, "no <data> in the nmda namespace:\n%s" % reply)
        return data

    def test_get_data_conventional_datastores(self):
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-info")))
        self.assertEqual(snapshot(self.data(get_data(self.m, "running", PVM_FILTER)))["level"],
                         "level-error")
        self.assertEqual(snapshot(self.data(get_data(self.m, "candidate", PVM_FILTER)))["level"],
                         "level-info")
        self.assertEqual(snapshot(self.data(get_data(self.m, "intended", PVM_FILTER)))["level"],
                         "level-error")
        self.assertEqual(snapshot(self.data(get_data(self.m, "startup", PVM_FILTER))), {})

    def test_operational_has_config_and_state(self):
        data = self.data(get_data(self.m, "operational"))
        self.assertEqual(snapshot(data)["level"], "level-error")
        self.assertTrue(data.xpath("//m:netconf-state", namespaces={"m": MON_NS}))
        self.assertFalse(self.data(get_data(self.m, "running")).xpath(
            "//m:netconf-state", namespaces={"m": MON_NS}))

    def test_config_filter(self):
        config_only = self.data(get_data(self.m, "operational", "<config-filter>true</config-filter>"))
        self.assertEqual(snapshot(config_only)["level"], "level-error")
        self.assertFalse(config_only.xpath("//m:netconf-state", namespaces={"m": MON_NS}))
        state_only = self.data(get_data(self.m, "operational", "<config-filter>false</config-filter>"))
        self.assertEqual(snapshot(state_only), {})
        self.assertTrue(state_only.xpath("//m:netconf-state", namespaces={"m": MON_NS}))

    def test_xpath_filter(self):
        reply = get_data(self.m, "running",
                         '<xpath-filter xmlns:n="%s">/n:python-vm/n:logging/n:level</xpath-filter>'
                         % NCS_NS)
        self.assertEqual(snapshot(self.data(reply)), {"level": "level-error"})
        bad = get_data(self.m, "running", "<xpath-filter>/python-vm[</xpath-filter>")
        self.assertIn("invalid-value", error_tags(bad))

    def test_max_depth(self):
        data = self.data(get_data(self.m, "running", PVM_FILTER + "<max-depth>2</max-depth>"))
        logging = data.xpath("//n:logging", namespaces={"n": NCS_NS})
        self.assertEqual(len(logging), 1)
        self.assertEqual(len(logging[0]), 0, "children below max-depth returned")
        data = self.data(get_data(self.m, "running", PVM_FILTER + "<max-depth>3</max-depth>"))
        entry = data.xpath("//n:vm-levels", namespaces={"n": NCS_NS})[0]
        # The key identifies the entry; its other leaves are deeper than 3.
        self.assertEqual([c.tag.split("}")[1] for c in entry], ["node-id"])
        self.assertEqual(snapshot(self.data(get_data(self.m, "running", PVM_FILTER
                                                     + "<max-depth>unbounded</max-depth>")))["vm-levels"],
                         {"a": "level-debug"})
        self.assertIn("invalid-value", error_tags(get_data(self.m, "running", "<max-depth>0</max-depth>")))

    def test_with_origin(self):
        data = self.data(get_data(self.m, "operational", PVM_FILTER + "<with-origin/>"))
        pvm_el = data.find("{%s}python-vm" % NCS_NS)
        origin = pvm_el.get("{%s}origin" % ORIGIN_NS)
        self.assertTrue(origin and origin.endswith(":intended"), origin)
        state = self.data(get_data(self.m, "operational",
                                   '<subtree-filter><netconf-state xmlns="%s"/></subtree-filter>'
                                   '<with-origin/>' % MON_NS))
        el = state.find("{%s}netconf-state" % MON_NS)
        self.assertTrue(el.get("{%s}origin" % ORIGIN_NS, "").endswith(":unknown"))
        self.assertIn("operation-not-supported",
                      error_tags(get_data(self.m, "running", "<with-origin/>")))

    def test_origin_filter(self):
        intended = self.data(get_data(self.m, "operational", "<origin-filter>or:intended</origin-filter>"))
        self.assertEqual(snapshot(intended)["level"], "level-error")
        self.assertFalse(intended.xpath("//m:netconf-state", namespaces={"m": MON_NS}))
        negated = self.data(get_data(self.m, "operational",
                                     "<negated-origin-filter>or:intended</negated-origin-filter>"))
        self.assertEqual(snapshot(negated), {})

    def test_with_defaults(self):
        data = self.data(get_data(self.m, "running", PVM_FILTER + "<with-defaults>report-all</with-defaults>"))
        self.assertEqual(snapshot(data).get("log-file-prefix"), "ncs-python-vm")

    def test_unknown_datastore(self):
        self.assertIn("invalid-value", error_tags(get_data(self.m, "nowhere")))

    def test_edit_data(self):
        self.assertOk(edit_data(self.m, "running", pvm(logging_(leaf_xml("level", "level-off")))))
        self.assertEqual(self.level("running"), "level-off")
        self.assertOk(edit_data(self.m, "candidate", pvm(logging_(vm_level("a", op="delete")))))
        self.assertEqual(self.read("candidate").get("vm-levels"), None)
        self.assertOk(self.m.discard_changes())
        self.assertOk(edit_data(self.m, "running", pvm(logging_(leaf_xml("level", "level-info"))),
                                default_operation="replace"))
        self.assertEqual(self.read("running"), {"level": "level-info"})
        self.assertIn("invalid-value", error_tags(edit_data(self.m, "operational", pvm())))
        self.assertIn("invalid-value",
                      error_tags(edit_data(self.m, "running", pvm(logging_(leaf_xml("level", "x"))))))
