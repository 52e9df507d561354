"""Filters on get and get-config: XPath filters (:xpath, RFC 6241 §8.9) with prefixes bound on
the <filter> element, and subtree filters (§6) with content match, selection and containment
nodes, attribute matching and several top-level nodes."""

from ncclient.xml_ import to_ele

from pyvmd_harness import CAP_XPATH, NC_NS, NCS_NS, leaf_xml, logging_, pvm, snapshot, vm_level
from nc_common import MON_NS, DatastoreTestCase, edit_ds


def xpath_get(m, select, op="get-config", source="running", nsdecls=None):
    decls = nsdecls if nsdecls is not None else ' xmlns:ncs="%s"' % NCS_NS
    src = "<source><%s/></source>" % source if op == "get-config" else ""
    return m.dispatch(to_ele('<%s xmlns="%s">%s<filter type="xpath"%s select="%s"/></%s>'
                             % (op, NC_NS, src, decls, select, op)))


class TestFilters(DatastoreTestCase):

    def setUp(self):
        super().setUp()
        self.assertOk(edit_ds(self.m, "running", pvm(
            "<sanity-checks>%s</sanity-checks>" % leaf_xml("self-assign-warning", "log")
            + logging_(leaf_xml("level", "level-error") + vm_level("a", "level-debug")
                       + vm_level("b", "level-off")))))

    def data(self, reply):
        return self.assertData(reply)

    def test_capability(self):
        self.assertIn(CAP_XPATH, list(self.m.server_capabilities))

    def test_xpath_with_prefixes(self):
        snap = snapshot(self.data(xpath_get(self.m, "/ncs:python-vm/ncs:logging/ncs:level")))
        self.assertEqual(snap, {"level": "level-error"})

    def test_xpath_prefix_other_than_module_prefix(self):
        reply = xpath_get(self.m, "/p:python-vm/p:logging/p:level",
                          nsdecls=' xmlns:p="%s"' % NCS_NS)
        self.assertEqual(snapshot(self.data(reply)), {"level": "level-error"})

    def test_xpath_unprefixed_as_yangcli_sends(self):
        snap = snapshot(self.data(xpath_get(self.m, "/python-vm/logging", nsdecls="")))
        self.assertEqual(snap["vm-levels"], {"a": "level-debug", "b": "level-off"})
        self.assertNotIn("self-assign-warning", snap)

    def test_xpath_predicate_selects_entry_with_key(self):
        reply = xpath_get(self.m, "/ncs:python-vm/ncs:logging/ncs:vm-levels[ncs:node-id='b']/ncs:level")
        self.assertEqual(snapshot(self.data(reply)), {"vm-levels": {"b": "level-off"}})

    def test_xpath_union_and_descendant(self):
        reply = xpath_get(self.m, "//ncs:self-assign-warning | /ncs:python-vm/ncs:logging/ncs:level")
        self.assertEqual(snapshot(self.data(reply)),
                         {"self-assign-warning": "log", "level": "level-error"})

    def test_xpath_no_match_is_empty(self):
        data = self.data(xpath_get(self.m, "/ncs:python-vm/ncs:logging/ncs:vm-levels[ncs:node-id='zz']"))
        self.assertEqual(len(data), 0)

    def test_xpath_on_get_and_state_data(self):
        data = self.data(xpath_get(self.m, "/ncm:netconf-state/ncm:sessions", op="get",
                                   nsdecls=' xmlns:ncm="%s"' % MON_NS))
        ids = data.xpath("//m:session-id/text()", namespaces={"m": MON_NS})
        self.assertIn(str(self.m.session_id), ids)

    def test_xpath_on_candidate(self):
        self.assertOk(edit_ds(self.m, "candidate", pvm(logging_(leaf_xml("level", "level-info")))))
        reply = xpath_get(self.m, "/ncs:python-vm/ncs:logging/ncs:level", source="candidate")
        self.assertEqual(snapshot(self.data(reply)), {"level": "level-info"})

    def test_ncclient_xpath_filter(self):
        reply = self.m.get_config(source="running",
                                  filter=("xpath", ({"n": NCS_NS}, "/n:python-vm/n:logging/n:level")))
        self.assertEqual(snapshot(self.data(reply)), {"level": "level-error"})

    def test_bad_xpath_is_an_error(self):
        for select in ("/ncs:python-vm[", "/ncs:python-vm/ncs:logging/ncs:nope",
                       "/undeclared:python-vm", "count(/ncs:python-vm) +"):
            self.assertRpcError(xpath_get(self.m, select), tag="invalid-value", what=select)

    def test_bad_xpath_on_empty_datastore_is_an_error(self):
        self.assertRpcError(xpath_get(self.m, "/ncs:python-vm[", source="startup"),
                            tag="invalid-value")

    def test_xpath_without_select(self):
        reply = self.m.dispatch(to_ele('<get xmlns="%s"><filter type="xpath"/></get>' % NC_NS))
        self.assertRpcError(reply, tag="missing-attribute")

    # -- subtree ---------------------------------------------------------------------------

    def subtree(self, inner, op="get-config"):
        if op == "get":
            return self.m.get(filter=("subtree", inner))
        return self.m.get_config(source="running", filter=("subtree", inner))

    def test_subtree_content_match_selection_containment(self):
        inner = ('<python-vm xmlns="%s"><logging><vm-levels><node-id>a</node-id></vm-levels>'
                 '</logging></python-vm>' % NCS_NS)
        self.assertEqual(snapshot(self.data(self.subtree(inner))),
                         {"vm-levels": {"a": "level-debug"}})

    def test_subtree_multiple_top_level_nodes(self):
        inner = ('<python-vm xmlns="%s"><logging><level/></logging></python-vm>'
                 '<netconf-state xmlns="%s"><sessions/></netconf-state>' % (NCS_NS, MON_NS))
        # ncclient cannot take two top-level filter nodes as a string: send the rpc as is.
        data = self.data(self.m.dispatch(to_ele(
            '<get xmlns="%s"><filter type="subtree">%s</filter></get>' % (NC_NS, inner))))
        self.assertEqual(snapshot(data), {"level": "level-error"})
        self.assertTrue(data.xpath("//m:session", namespaces={"m": MON_NS}))

    def test_subtree_attribute_match_without_such_attribute_selects_nothing(self):
        inner = ('<python-vm xmlns="%s" xmlns:ex="urn:example"><logging ex:tag="x"/></python-vm>'
                 % NCS_NS)
        self.assertEqual(snapshot(self.data(self.subtree(inner))), {})
