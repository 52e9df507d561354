"""Monitoring and discovery: RFC 6022 /netconf-state (capabilities, datastores with locks,
schemas, sessions, statistics) and <get-schema>; RFC 7895 /modules-state with the
yang-library:1.0 capability; RFC 8525 /yang-library with the yang-library:1.1 capability;
module capabilities with features."""

import re

from ncclient.xml_ import to_ele

from pyvmd_harness import EOM, NC_NS, parse, parse_capability, rpc_errors, wait_until
from nc_common import (
    CAP_YANG_LIBRARY, CAP_YANG_LIBRARY_1_1, MON_NS, YANGLIB_NS, DatastoreTestCase, error_tags,
    lock_rpc, unlock_rpc,
)

NS = {"m": MON_NS, "y": YANGLIB_NS}
DATE_TIME = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"


class TestMonitoring(DatastoreTestCase):

    def state(self, inner, m=None):
        return self.assertData((m or self.m).get(filter=("subtree", inner)))

    def netconf_state(self, inner="", m=None):
        return self.state('<netconf-state xmlns="%s">%s</netconf-state>' % (MON_NS, inner), m)

    def schemas(self):
        data = self.netconf_state("<schemas/>")
        return [(s.findtext("m:identifier", namespaces=NS), s.findtext("m:version", namespaces=NS),
                 s.findtext("m:format", namespaces=NS), s.findtext("m:location", namespaces=NS))
                for s in data.xpath("//m:schema", namespaces=NS)]

    def test_monitoring_module_advertised(self):
        modules = {parse_capability(c)[1].get("module") for c in self.m.server_capabilities}
        for module in ("ietf-netconf-monitoring", "ietf-yang-library", "ietf-netconf-nmda",
                       "ietf-origin", "ietf-netconf-with-defaults", "ietf-datastores"):
            self.assertIn(module, modules)

    def test_capabilities_listed(self):
        data = self.netconf_state("<capabilities/>")
        listed = data.xpath("//m:capability/text()", namespaces=NS)
        self.assertEqual(sorted(listed), sorted(self.m.server_capabilities))

    def test_module_capability_features(self):
        caps = [c for c in self.m.server_capabilities if "module=ietf-netconf&" in c]
        self.assertEqual(len(caps), 1)
        features = set(parse_capability(caps[0])[1]["features"].split(","))
        self.assertTrue({"candidate", "confirmed-commit", "startup", "xpath", "validate",
                         "writable-running", "rollback-on-error"} <= features, caps[0])
        self.assertNotIn("url", features)

    def test_datastores_with_lock_info(self):
        self.assertOk(lock_rpc(self.m, "running"))
        data = self.netconf_state("<datastores/>")
        names = data.xpath("//m:datastore/m:name/text()", namespaces=NS)
        self.assertEqual(sorted(names), ["candidate", "running", "startup"])
        lock = data.xpath("//m:datastore[m:name='running']/m:locks/m:global-lock", namespaces=NS)
        self.assertEqual(len(lock), 1)
        self.assertEqual(lock[0].findtext("m:locked-by-session", namespaces=NS),
                         str(self.m.session_id))
        self.assertRegex(lock[0].findtext("m:locked-time", namespaces=NS), DATE_TIME)
        self.assertFalse(data.xpath("//m:datastore[m:name='candidate']/m:locks", namespaces=NS))
        self.assertOk(unlock_rpc(self.m, "running"))
        data = self.netconf_state("<datastores/>")
        self.assertFalse(data.xpath("//m:locks", namespaces=NS))

    def test_every_schema_is_retrievable(self):
        schemas = self.schemas()
        names = {s[0] for s in schemas}
        for must in ("tailf-ncs", "ietf-netconf", "ietf-netconf-monitoring", "ietf-yang-types",
                     "ietf-inet-types", "ietf-yang-library"):
            self.assertIn(must, names)
        for identifier, version, fmt, location in schemas:
            self.assertEqual(fmt, "yang")
            self.assertEqual(location, "NETCONF")
            reply = self.m.get_schema(identifier, version=version or None)
            root = parse(reply)
            self.assertEqual(rpc_errors(root), [], "get-schema %s@%s" % (identifier, version))
            text = root.findtext("{%s}data" % MON_NS)
            self.assertRegex(text, r"^\s*(/\*.*?\*/\s*|//[^\n]*\n\s*)*(sub)?module\s+\"?%s\b"
                             % re.escape(identifier), identifier)
            if version:
                self.assertIn(version, text)

    def test_get_schema_without_version_and_yin(self):
        text = parse(self.m.get_schema("tailf-ncs")).findtext("{%s}data" % MON_NS)
        self.assertIn("module tailf-ncs", text)
        yin = parse(self.m.get_schema("ietf-netconf-monitoring", format="yin"))
        self.assertIn("yin:1", yin.findtext("{%s}data" % MON_NS))

    def test_get_schema_errors(self):
        self.assertIn("invalid-value", error_tags(self.m.get_schema("no-such-module")))
        self.assertIn("invalid-value", error_tags(self.m.get_schema("tailf-ncs", version="1999-01-01")))
        reply = self.m.dispatch(to_ele('<get-schema xmlns="%s"/>' % MON_NS))
        self.assertIn("missing-element", error_tags(reply))

    def test_sessions_and_their_counters(self):
        other = self.connect()
        other.get_config(source="running")
        other.dispatch(
            to_ele('<get-config xmlns="%s"><source><nowhere/></source></get-config>' % NC_NS))
        data = self.netconf_state("<sessions/>")
        sessions = {s.findtext("m:session-id", namespaces=NS): s
                    for s in data.xpath("//m:session", namespaces=NS)}
        self.assertIn(str(self.m.session_id), sessions)
        s = sessions[str(other.session_id)]
        self.assertEqual(s.findtext("m:username", namespaces=NS), "admin")
        self.assertEqual(s.findtext("m:transport", namespaces=NS), "netconf-ssh")
        self.assertEqual(s.findtext("m:source-host", namespaces=NS), "127.0.0.1")
        self.assertRegex(s.findtext("m:login-time", namespaces=NS), DATE_TIME)
        self.assertEqual(s.findtext("m:in-rpcs", namespaces=NS), "2")
        self.assertEqual(s.findtext("m:out-rpc-errors", namespaces=NS), "1")
        other.close_session()
        self.assertTrue(wait_until(lambda: not self.netconf_state("<sessions/>").xpath(
            "//m:session[m:session-id='%s']" % other.session_id, namespaces=NS), 10))

    def test_statistics(self):
        def stats():
            data = self.netconf_state("<statistics/>")
            return {el.tag.split("}")[1]: el.text for el in data.xpath("//m:statistics/*", namespaces=NS)}
        before = stats()
        self.assertRegex(before["netconf-start-time"], DATE_TIME)
        raw = self.raw().hello()
        raw.send_msg(b"<not-an-rpc/>")
        raw.read_reply()
        raw.close()
        dropped = self.connect()
        dropped._session.close()
        after = {}
        def settled():
            after.update(stats())
            return int(after["dropped-sessions"]) >= int(before["dropped-sessions"]) + 1
        self.assertTrue(wait_until(settled, 10), after)
        self.assertGreaterEqual(int(after["in-sessions"]), int(before["in-sessions"]) + 2)
        self.assertGreaterEqual(int(after["in-bad-rpcs"]), int(before["in-bad-rpcs"]) + 1)
        self.assertGreater(int(after["in-rpcs"]), int(before["in-rpcs"]))
        self.assertGreaterEqual(int(after["out-rpc-errors"]), int(before["out-rpc-errors"]) + 1)

    def test_bad_hello_counted(self):
        data = self.netconf_state("<statistics/>")
        before = int(data.findtext(".//m:in-bad-hellos", namespaces=NS))
        raw = self.raw()
        raw.read_server_hello()
        raw.send(b"<hello xmlns='%s'><capabilities/></hello>" % NC_NS.encode() + EOM)
        raw.wait_closed()
        self.assertTrue(wait_until(lambda: int(self.netconf_state("<statistics/>").findtext(
            ".//m:in-bad-hellos", namespaces=NS)) == before + 1, 10))

    def test_modules_state_matches_the_capability(self):
        caps = [c for c in self.m.server_capabilities if parse_capability(c)[0] == CAP_YANG_LIBRARY]
        self.assertEqual(len(caps), 1, caps)
        params = parse_capability(caps[0])[1]
        self.assertEqual(params.get("revision"), "2016-06-21")
        data = self.state('<modules-state xmlns="%s"/>' % YANGLIB_NS)
        self.assertEqual(data.findtext(".//y:module-set-id", namespaces=NS), params["module-set-id"])
        modules = {(m.findtext("y:name", namespaces=NS)): m
                   for m in data.xpath("//y:module", namespaces=NS)}
        # A module that only deviates others is named by their <deviation> entries.
        deviating = set(data.xpath("//y:module/y:deviation/y:name/text()", namespaces=NS))
        self.assertIn("pyvmd-system-deviations", deviating)
        for cap in self.m.server_capabilities:
            name = parse_capability(cap)[1].get("module")
            if name and name not in deviating:
                self.assertIn(name, modules)
                self.assertEqual(modules[name].findtext("y:conformance-type", namespaces=NS),
                                 "implement")
        self.assertEqual(modules["ietf-yang-types"].findtext("y:conformance-type", namespaces=NS),
                         "import")
        features = modules["ietf-netconf"].xpath("y:feature/text()", namespaces=NS)
        self.assertIn("candidate", features)
        # Every module the library lists is in the schema list, so clients can fetch it.
        schema_names = {s[0] for s in self.schemas()}
        self.assertLessEqual(set(modules), schema_names)

    def test_yang_library_rfc8525(self):
        data = self.state('<yang-library xmlns="%s"/>' % YANGLIB_NS)
        self.assertTrue(data.findtext(".//y:content-id", namespaces=NS))
        # RFC 8526 §2: an NMDA server announces yang-library:1.1 with the content-id.
        caps = [parse_capability(c)[1] for c in self.m.server_capabilities
                if parse_capability(c)[0] == CAP_YANG_LIBRARY_1_1]
        self.assertEqual(len(caps), 1, self.m.server_capabilities)
        self.assertEqual(caps[0].get("revision"), "2019-01-04")
        self.assertEqual(caps[0].get("content-id"), data.findtext(".//y:content-id", namespaces=NS))
        datastores = data.xpath("//y:datastore/y:name/text()", namespaces=NS)
        self.assertEqual(len(datastores), 5, datastores)
        names = data.xpath("//y:module-set/y:module/y:name/text()", namespaces=NS)
        self.assertIn("tailf-ncs", names)
        imports = data.xpath("//y:import-only-module/y:name/text()", namespaces=NS)
        self.assertIn("ietf-inet-types", imports)
