"""End-to-end tests of pyvmd's NETCONF server, driven by ncclient and raw paramiko.

Run:  PYVMD_BIN=target/debug/pyvmd python3 -m unittest discover -s tests/python -p 'test_*.py' -v
(or `cargo test --test ncclient`, which builds the binary and sets the environment).

Each test class starts its own server (temporary directories) and stops it at the end; each test
starts from an empty /python-vm (see `reset`).  Error replies are checked on error-tag (and
error-type where RFC 6241 Appendix A fixes it), never on message text.
"""

import threading
import unittest

import paramiko
from ncclient.transport.errors import AuthenticationError
from ncclient.xml_ import to_ele

from pyvmd_harness import (
    BASE_10, BASE_11, CAP_CANDIDATE, CAP_NOTIFICATION, CAP_ROLLBACK_ON_ERROR, CAP_STARTUP,
    CAP_VALIDATE_11, CAP_WITH_DEFAULTS, CAP_WRITABLE_RUNNING, CAP_XPATH, EOM, GET_CONFIG_BODY,
    NC_NS, NCS_NS, WD_NS, ChannelClosed, ServerTestCase, c14n, close_quietly, config, edit,
    error_info, fpvm, get_config, hello_xml, leaf_xml, logging_, parse, parse_capability, pvm,
    remote_host_key, rpc_errors, rpc_xml, snapshot, to_text, vm_level, wait_until, watchdog, xp,
    RawSession,
)

OK_TAG = "{%s}ok" % NC_NS
DATA_TAG = "{%s}data" % NC_NS
RPC_REPLY_TAG = "{%s}rpc-reply" % NC_NS

CAP_INTERLEAVE = "urn:ietf:params:netconf:capability:interleave:1.0"

DEFAULTS = {"self-assign-warning": "alarm", "log-file-prefix": "ncs-python-vm", "level": "level-info"}


def sanity(value):
    return "<sanity-checks>%s</sanity-checks>" % leaf_xml("self-assign-warning", value)


class NetconfTestCase(ServerTestCase):
    """A server per class; a fresh ncclient session per test, on an empty /python-vm."""

    def setUp(self):
        super().setUp()
        self.ensure_running()
        self.m = self.connect()
        self.reset(self.m)

    def reset(self, m):
        """Remove /python-vm (remove of a missing node is ok), so every test starts empty."""
        self.assertOk(edit(m, pvm(op="remove")), "reset: remove /python-vm")
        self.assertEqual(self.read(m), {}, "reset: /python-vm not empty after remove")

    # -- helpers -------------------------------------------------------------------------------

    def read(self, m=None, filter=None, with_defaults=None):
        """Snapshot (dict) of /python-vm in running."""
        return snapshot(self.assertData(get_config(m or self.m, filter, with_defaults),
                                        "get-config"))

    def running(self, m=None):
        """Canonical bytes of the whole running datastore, for 'unchanged' checks."""
        return c14n(self.assertData(get_config(m or self.m), "get-config"))

    def apply(self, inner, what="edit-config", **kwargs):
        return self.assertOk(edit(self.m, pvm(inner), **kwargs), what)

    def setup_sample(self):
        """A typical non-empty configuration; returns its snapshot."""
        self.apply(sanity("log") + logging_(
            leaf_xml("log-file-prefix", "my-prefix") + leaf_xml("level", "level-error")
            + vm_level("a", "level-debug") + vm_level("b", "level-off")))
        expected = {"self-assign-warning": "log", "log-file-prefix": "my-prefix",
                    "level": "level-error",
                    "vm-levels": {"a": "level-debug", "b": "level-off"}}
        self.assertEqual(self.read(), expected)
        return expected


# ==============================================================================================
# Hello and capabilities
# ==============================================================================================

class TestHello(NetconfTestCase):

    def caps(self):
        return list(self.m.server_capabilities)

    def test_base_capabilities(self):
        caps = self.caps()
        self.assertIn(BASE_10, caps)
        self.assertIn(BASE_11, caps)

    def test_protocol_capabilities(self):
        caps = self.caps()
        for cap in (CAP_WRITABLE_RUNNING, CAP_ROLLBACK_ON_ERROR, CAP_VALIDATE_11):
            self.assertIn(cap, caps)

    def test_with_defaults_capability(self):
        found = [c for c in self.caps() if parse_capability(c)[0] == CAP_WITH_DEFAULTS]
        self.assertEqual(len(found), 1, "expected one with-defaults capability: %r" % found)
        _, params = parse_capability(found[0])
        self.assertEqual(params.get("basic-mode"), "explicit", found[0])
        self.assertEqual(set(params.get("also-supported", "").split(",")),
                         {"report-all", "report-all-tagged", "trim"}, found[0])

    def test_module_capabilities(self):
        modules = {}
        for cap in self.caps():
            base, params = parse_capability(cap)
            if "module" not in params:
                continue
            self.assertNotIn(params["module"], modules,
                             "module %s advertised twice" % params["module"])
            modules[params["module"]] = (base, params)
            if "revision" in params:
                self.assertRegex(params["revision"], r"^\d{4}-\d{2}-\d{2}$", cap)
        self.assertIn("tailf-ncs", modules, "no module capability for tailf-ncs")
        base, params = modules["tailf-ncs"]
        self.assertEqual(base, NCS_NS)
        self.assertRegex(params.get("revision", ""), r"^\d{4}-\d{2}-\d{2}$")

    def test_notification_capabilities_advertised(self):
        # RFC 5277: notifications, and rpcs on a session with a subscription (:interleave).
        bases = {parse_capability(c)[0] for c in self.caps()}
        for cap in (CAP_NOTIFICATION, CAP_INTERLEAVE):
            self.assertIn(cap, bases)

    def test_session_ids_distinct(self):
        other = self.connect()
        ids = [self.m.session_id, other.session_id]
        for sid in ids:
            self.assertRegex(str(sid), r"^[1-9][0-9]*$")
        self.assertNotEqual(ids[0], ids[1])

    def test_raw_hello_is_eom_framed_and_namespaced(self):
        raw = self.raw()
        hello = raw.read_server_hello()  # asserts {base}hello, EOM-framed
        self.assertRegex(raw.session_id or "", r"^[1-9][0-9]*$", to_text(hello))
        caps = raw.server_capabilities()
        self.assertIn(BASE_10, caps)
        self.assertIn(BASE_11, caps)
        raw.send(hello_xml(BASE_10) + EOM)
        reply = raw.rpc(GET_CONFIG_BODY, "7")
        self.assertEqual(reply.tag, RPC_REPLY_TAG)
        self.assertEqual(reply.get("message-id"), "7")
        self.assertIsNotNone(reply.find(DATA_TAG), to_text(reply))


# ==============================================================================================
# get / get-config and subtree filters
# ==============================================================================================

class TestRetrieval(NetconfTestCase):

    def filtered(self, inner, op="get-config", with_defaults=None):
        if op == "get":
            reply = self.m.get(filter=("subtree", inner), with_defaults=with_defaults)
        else:
            reply = get_config(self.m, inner, with_defaults)
        return self.assertData(reply, op)

    def test_get_config_empty_running(self):
        data = self.assertData(get_config(self.m))
        children = [c for c in data if isinstance(c.tag, str)]
        self.assertEqual(children, [], "empty running should give an empty <data/>:\n%s"
                         % to_text(data))

    def test_get_config_full(self):
        self.setup_sample()  # asserts the full snapshot

    def test_get_returns_config_data(self):
        expected = self.setup_sample()
        data = self.assertData(self.m.get(), "get")
        self.assertEqual(snapshot(data), expected)

    def test_get_with_subtree_filter(self):
        self.setup_sample()
        data = self.filtered(fpvm("<logging><level/></logging>"), op="get")
        self.assertEqual(snapshot(data), {"level": "level-error"})

    def test_filter_selection_node(self):
        self.setup_sample()
        data = self.filtered(fpvm("<logging><level/></logging>"))
        self.assertEqual(snapshot(data), {"level": "level-error"}, to_text(data))

    def test_filter_containment_node(self):
        self.setup_sample()
        data = self.filtered(fpvm("<logging/>"))
        self.assertEqual(snapshot(data), {"log-file-prefix": "my-prefix", "level": "level-error",
                                          "vm-levels": {"a": "level-debug", "b": "level-off"}},
                         to_text(data))

    def test_filter_content_match_list_key(self):
        self.setup_sample()
        self.apply(logging_(vm_level("c", "level-warning")))
        data = self.filtered(fpvm("<logging><vm-levels><node-id>b</node-id></vm-levels></logging>"))
        self.assertEqual(snapshot(data), {"vm-levels": {"b": "level-off"}}, to_text(data))

    def test_filter_content_match_with_selection(self):
        self.setup_sample()
        self.apply(logging_(vm_level("c", "level-warning")))
        data = self.filtered(fpvm(
            "<logging><vm-levels><node-id>c</node-id><level/></vm-levels></logging>"))
        self.assertEqual(snapshot(data), {"vm-levels": {"c": "level-warning"}}, to_text(data))

    def test_filter_no_matching_entry(self):
        self.setup_sample()
        data = self.filtered(fpvm(
            "<logging><vm-levels><node-id>no-such-vm</node-id></vm-levels></logging>"))
        self.assertEqual(snapshot(data), {}, to_text(data))

    def test_filter_without_namespace_on_top_element(self):
        self.setup_sample()
        data = self.filtered("<python-vm><logging><level/></logging></python-vm>")
        # The reply is namespaced properly even though the filter was not.
        self.assertEqual(snapshot(data), {"level": "level-error"}, to_text(data))


# ==============================================================================================
# edit-config
# ==============================================================================================

class TestEditConfig(NetconfTestCase):

    def assertUnchanged(self, before):
        self.assertEqual(self.running(), before, "running changed after a failed edit")

    # -- merge -----------------------------------------------------------------------------------

    def test_merge_sets_and_keeps_leaves(self):
        self.apply(logging_(leaf_xml("level", "level-debug") + leaf_xml("log-file-prefix", "p1")))
        self.assertEqual(self.read(), {"level": "level-debug", "log-file-prefix": "p1"})
        self.apply(sanity("off"))
        self.apply(logging_(leaf_xml("level", "level-critical")))
        self.assertEqual(self.read(), {"self-assign-warning": "off", "level": "level-critical",
                                       "log-file-prefix": "p1"})

    def test_merge_changes_existing_leaf_value(self):
        # The leaf is the only node set in its container, and then the only one in the edit.
        self.apply(logging_(leaf_xml("level", "level-error")))
        self.apply(logging_(leaf_xml("level", "level-warning")), "merge a new value into a leaf")
        self.assertEqual(self.read(), {"level": "level-warning"})
        self.apply(sanity("log"))
        self.apply(sanity("off"), "merge a new value into a leaf")
        self.assertEqual(self.read(), {"self-assign-warning": "off", "level": "level-warning"})

    def test_merge_list_entries_accumulate(self):
        self.apply(logging_(vm_level("a", "level-debug")))
        self.apply(logging_(vm_level("b", "level-error")))
        self.apply(logging_(vm_level("a", "level-warning")), "merge into an existing entry")
        self.assertEqual(self.read(), {"vm-levels": {"a": "level-warning", "b": "level-error"}})

    # -- replace ---------------------------------------------------------------------------------

    def test_replace_container(self):
        self.setup_sample()
        self.apply(logging_(leaf_xml("level", "level-warning"), op="replace"))
        self.assertEqual(self.read(), {"self-assign-warning": "log", "level": "level-warning"})

    def test_replace_list_entry(self):
        self.apply(logging_(vm_level("a", "level-debug") + vm_level("b", "level-info")))
        self.apply(logging_(vm_level("a", "level-error", op="replace")))
        self.assertEqual(self.read(), {"vm-levels": {"a": "level-error", "b": "level-info"}})

    # -- create ----------------------------------------------------------------------------------

    def test_create_new_entry(self):
        self.apply(logging_(vm_level("a", "level-debug", op="create")))
        self.assertEqual(self.read(), {"vm-levels": {"a": "level-debug"}})

    def test_create_existing_entry_data_exists(self):
        self.apply(logging_(vm_level("a", "level-debug")))
        before = self.running()
        reply = edit(self.m, pvm(logging_(vm_level("a", "level-error", op="create"))))
        self.assertRpcError(reply, tag="data-exists", type="application")
        self.assertUnchanged(before)

    def test_create_existing_leaf_data_exists(self):
        self.apply(logging_(leaf_xml("log-file-prefix", "p1")))
        before = self.running()
        reply = edit(self.m, pvm(logging_(leaf_xml("log-file-prefix", "p2", op="create"))))
        self.assertRpcError(reply, tag="data-exists", type="application")
        self.assertUnchanged(before)

    # -- delete ----------------------------------------------------------------------------------

    def test_delete_entry(self):
        self.apply(logging_(vm_level("a", "level-debug") + vm_level("b", "level-info")))
        self.apply(logging_(vm_level("a", op="delete")))
        self.assertEqual(self.read(), {"vm-levels": {"b": "level-info"}})

    def test_delete_missing_entry_data_missing(self):
        self.apply(logging_(vm_level("a", "level-debug")))
        before = self.running()
        reply = edit(self.m, pvm(logging_(vm_level("no-such-vm", op="delete"))))
        self.assertRpcError(reply, tag="data-missing", type="application")
        self.assertUnchanged(before)

    def test_delete_leaf_then_missing_leaf(self):
        self.apply(logging_(leaf_xml("log-file-prefix", "p1") + leaf_xml("level", "level-error")))
        self.apply(logging_('<log-file-prefix nc:operation="delete"/>'))
        self.assertEqual(self.read(), {"level": "level-error"})
        before = self.running()
        reply = edit(self.m, pvm(logging_('<log-file-prefix nc:operation="delete"/>')))
        self.assertRpcError(reply, tag="data-missing", type="application")
        self.assertUnchanged(before)

    # -- remove ----------------------------------------------------------------------------------

    def test_remove_entry(self):
        self.apply(logging_(vm_level("a", "level-debug") + vm_level("b", "level-info")))
        self.apply(logging_(vm_level("b", op="remove")))
        self.assertEqual(self.read(), {"vm-levels": {"a": "level-debug"}})

    def test_remove_missing_is_ok(self):
        self.apply(logging_(vm_level("a", "level-debug")))
        before = self.running()
        self.apply(logging_(vm_level("no-such-vm", op="remove")), "remove of a missing entry")
        self.apply(logging_('<log-file-prefix nc:operation="remove"/>'), "remove of a missing leaf")
        self.assertEqual(self.running(), before)

    # -- default-operation -----------------------------------------------------------------------

    def test_default_operation_none_with_delete(self):
        self.apply(logging_(leaf_xml("level", "level-error")
                            + vm_level("a", "level-debug") + vm_level("b", "level-info")))
        self.assertOk(edit(self.m, pvm(logging_(vm_level("a", op="delete"))),
                           default_operation="none"))
        self.assertEqual(self.read(), {"level": "level-error", "vm-levels": {"b": "level-info"}})

    def test_default_operation_none_leaves_unmarked_data_alone(self):
        self.apply(logging_(leaf_xml("level", "level-error") + vm_level("a", "level-debug")))
        before = self.running()
        self.assertOk(edit(self.m, pvm(logging_(leaf_xml("level", "level-debug")
                                                + vm_level("a", "level-off"))),
                           default_operation="none"))
        self.assertEqual(self.running(), before)

    def test_default_operation_none_on_a_missing_entry_is_data_missing(self):
        # RFC 6241 §7.2: the list entry the edit goes through is not in running.
        self.apply(logging_(vm_level("a", "level-debug")))
        before = self.running()
        self.assertRpcError(
            edit(self.m, pvm(logging_('<vm-levels><node-id>zz</node-id>'
                                      '<level nc:operation="merge">level-info</level>'
                                      '</vm-levels>')),
                 default_operation="none"),
            tag="data-missing")
        self.assertEqual(self.running(), before)
        # The session goes on.
        self.assertEqual(self.read()["vm-levels"], {"a": "level-debug"})

    def test_default_operation_replace(self):
        self.setup_sample()
        self.assertOk(edit(self.m, pvm(logging_(leaf_xml("level", "level-warning"))),
                           default_operation="replace"))
        self.assertEqual(self.read(), {"level": "level-warning"})

    # -- test-option -----------------------------------------------------------------------------

    def test_test_option_test_only_leaves_running_unchanged(self):
        self.setup_sample()
        before = self.running()
        self.assertOk(edit(self.m, pvm(logging_(leaf_xml("level", "level-debug")
                                                + vm_level("c", "level-off"))),
                           test_option="test-only"))
        self.assertEqual(self.running(), before)

    def test_test_option_test_only_reports_invalid_value(self):
        before = self.running()
        reply = edit(self.m, pvm(logging_(leaf_xml("level", "level-bogus"))),
                     test_option="test-only")
        self.assertRpcError(reply, tag="invalid-value")
        self.assertUnchanged(before)

    def test_test_option_set_and_test_then_set_apply(self):
        self.assertOk(edit(self.m, pvm(logging_(leaf_xml("level", "level-debug"))),
                           test_option="set"))
        self.assertEqual(self.read(), {"level": "level-debug"})
        self.assertOk(edit(self.m, pvm(logging_(leaf_xml("log-file-prefix", "tts"))),
                           test_option="test-then-set"))
        self.assertEqual(self.read(), {"level": "level-debug", "log-file-prefix": "tts"})

    # -- invalid input ---------------------------------------------------------------------------

    def test_invalid_enum_value_rejected(self):
        self.apply(logging_(leaf_xml("level", "level-error") + leaf_xml("log-file-prefix", "p1")))
        before = self.running()
        reply = edit(self.m, pvm(logging_(leaf_xml("log-file-prefix", "p2")
                                          + leaf_xml("level", "level-bogus"))))
        self.assertRpcError(reply, tag="invalid-value", type="application")
        self.assertUnchanged(before)

    def test_invalid_self_assign_warning_rejected(self):
        before = self.running()
        reply = edit(self.m, pvm(sanity("sometimes")))
        self.assertRpcError(reply, tag="invalid-value", type="application")
        self.assertUnchanged(before)

    def test_invalid_vm_level_value_rejected(self):
        self.apply(logging_(vm_level("a", "level-debug")))
        before = self.running()
        reply = edit(self.m, pvm(logging_(vm_level("a", "loud"))))
        self.assertRpcError(reply, tag="invalid-value", type="application")
        self.assertUnchanged(before)

    def test_unknown_element_rejected(self):
        before = self.running()
        reply = edit(self.m, pvm(logging_(leaf_xml("level", "level-debug")
                                          + "<no-such-leaf>1</no-such-leaf>")))
        errors = self.assertRpcError(reply)
        for err in errors:
            if err.get("error-tag") == "unknown-element":
                self.assertEqual(error_info(err, "bad-element"), "no-such-leaf", to_text(parse(reply)))
        self.assertUnchanged(before)

    def test_bad_operation_attribute_rejected(self):
        before = self.running()
        reply = edit(self.m, pvm(logging_(leaf_xml("level", "level-debug", op="frobnicate"))))
        self.assertRpcError(reply)
        self.assertUnchanged(before)

    def test_vm_level_without_mandatory_level_rejected(self):
        before = self.running()
        reply = edit(self.m, pvm(logging_(vm_level("no-level"))))
        self.assertRpcError(reply)
        self.assertUnchanged(before)

    # -- error-option ----------------------------------------------------------------------------

    def test_rollback_on_error_invalid_second_edit(self):
        self.apply(logging_(leaf_xml("level", "level-error")))
        before = self.running()
        reply = edit(self.m,
                     pvm(logging_(leaf_xml("log-file-prefix", "first-edit")
                                  + vm_level("first", "level-debug"))
                         + sanity("not-an-enum-value")),
                     error_option="rollback-on-error")
        self.assertRpcError(reply, tag="invalid-value")
        self.assertUnchanged(before)

    def test_rollback_on_error_second_edit_data_exists(self):
        self.apply(logging_(vm_level("a", "level-debug")))
        before = self.running()
        reply = edit(self.m,
                     pvm(logging_(leaf_xml("log-file-prefix", "first-edit")
                                  + vm_level("a", "level-error", op="create"))),
                     error_option="rollback-on-error")
        self.assertRpcError(reply, tag="data-exists", type="application")
        self.assertUnchanged(before)

    # -- leniency --------------------------------------------------------------------------------

    def test_unnamespaced_config_element_accepted(self):
        # What ncclient users commonly write: <config> without the base namespace.
        reply = self.m.edit_config(target="running",
                                   config="<config>%s</config>"
                                   % pvm(logging_(leaf_xml("level", "level-warning"))))
        self.assertOk(reply)
        self.assertEqual(self.read(), {"level": "level-warning"})


# ==============================================================================================
# validate
# ==============================================================================================

class TestValidate(NetconfTestCase):

    def test_validate_running(self):
        self.setup_sample()
        self.assertOk(self.m.validate(source="running"))

    def test_validate_inline_valid(self):
        before = self.running()
        cfg = to_ele(config(pvm(logging_(leaf_xml("level", "level-debug")
                                         + vm_level("a", "level-off")))))
        self.assertOk(self.m.validate(source=cfg))
        self.assertEqual(self.running(), before, "validate must not change running")

    def test_validate_inline_invalid_value(self):
        cfg = to_ele(config(pvm(logging_(leaf_xml("level", "level-verbose")))))
        self.assertRpcError(self.m.validate(source=cfg), tag="invalid-value")

    def test_validate_inline_missing_mandatory_level(self):
        cfg = to_ele(config(pvm(logging_(vm_level("no-level")))))
        self.assertRpcError(self.m.validate(source=cfg))


# ==============================================================================================
# with-defaults (RFC 6243, basic-mode explicit)
# ==============================================================================================

class TestWithDefaults(NetconfTestCase):

    def test_no_parameter_returns_only_explicit_nodes(self):
        data = self.assertData(get_config(self.m))
        self.assertEqual([c for c in data if isinstance(c.tag, str)], [], to_text(data))
        self.apply(logging_(leaf_xml("level", "level-error")))
        self.assertEqual(self.read(), {"level": "level-error"})

    def test_report_all(self):
        self.assertEqual(self.read(with_defaults="report-all"), DEFAULTS)

    def test_report_all_keeps_explicit_values(self):
        self.apply(logging_(leaf_xml("level", "level-error") + vm_level("a", "level-debug")))
        expected = dict(DEFAULTS, level="level-error", **{"vm-levels": {"a": "level-debug"}})
        self.assertEqual(self.read(with_defaults="report-all"), expected)

    def test_report_all_with_filter(self):
        self.assertEqual(self.read(filter=fpvm("<logging/>"), with_defaults="report-all"),
                         {"log-file-prefix": "ncs-python-vm", "level": "level-info"})

    def test_report_all_on_get(self):
        data = self.assertData(self.m.get(filter=("subtree", fpvm("<sanity-checks/>")),
                                          with_defaults="report-all"), "get")
        self.assertEqual(snapshot(data), {"self-assign-warning": "alarm"}, to_text(data))

    def test_report_all_tagged(self):
        self.apply(logging_(leaf_xml("level", "level-error")))
        data = self.assertData(get_config(self.m, with_defaults="report-all-tagged"))
        self.assertEqual(snapshot(data), dict(DEFAULTS, level="level-error"), to_text(data))

        def tag_of(path):
            nodes = xp(data, path)
            self.assertEqual(len(nodes), 1, path)
            return nodes[0].get("{%s}default" % WD_NS)

        self.assertIn(tag_of("ncs:python-vm/ncs:sanity-checks/ncs:self-assign-warning"),
                      ("true", "1"), to_text(data))
        self.assertIn(tag_of("ncs:python-vm/ncs:logging/ncs:log-file-prefix"),
                      ("true", "1"), to_text(data))
        self.assertNotIn(tag_of("ncs:python-vm/ncs:logging/ncs:level"), ("true", "1"),
                         "an explicitly set non-default value must not be tagged as default:\n%s"
                         % to_text(data))

    def test_trim_omits_explicit_defaults(self):
        self.apply(sanity("log") + logging_(leaf_xml("level", "level-info")
                                            + leaf_xml("log-file-prefix", "ncs-python-vm")))
        self.assertEqual(self.read(with_defaults="trim"), {"self-assign-warning": "log"})

    def test_explicit_returns_leaf_set_to_default(self):
        self.apply(logging_(leaf_xml("level", "level-info")))
        self.assertEqual(self.read(with_defaults="explicit"), {"level": "level-info"})
        self.assertEqual(self.read(), {"level": "level-info"})

    def test_remove_restores_default(self):
        self.apply(logging_(leaf_xml("level", "level-error")))
        self.apply(logging_('<level nc:operation="remove"/>'))
        self.assertEqual(self.read(), {})
        self.assertEqual(self.read(with_defaults="report-all"), DEFAULTS)


# ==============================================================================================
# Protocol: rpc handling, framing leniency, malformed input
# ==============================================================================================

class TestProtocol(NetconfTestCase):

    def assertDataReply(self, reply, message_id):
        self.assertEqual(reply.tag, RPC_REPLY_TAG, to_text(reply))
        self.assertEqual(reply.get("message-id"), message_id, to_text(reply))
        self.assertEqual(rpc_errors(reply), [], to_text(reply))
        self.assertIsNotNone(reply.find(DATA_TAG), to_text(reply))

    def test_unknown_operation_not_supported(self):
        self.assertRpcError(self.m.dispatch("frobnicate"), tag="operation-not-supported")
        self.assertData(get_config(self.m), "get-config after an unknown rpc")

    def test_unsupported_operation(self):
        # partial-lock (RFC 5717) is not implemented, and not advertised.
        self.assertRpcError(self.m.dispatch("partial-lock"), tag="operation-not-supported")

    def test_reply_echoes_rpc_attributes(self):
        raw = self.raw().hello()
        ex = "http://example.net/content/1.0"
        reply = raw.rpc(GET_CONFIG_BODY, "abc-7", attrs=' xmlns:ex="%s" ex:user-id="fred"' % ex)
        self.assertDataReply(reply, "abc-7")
        self.assertEqual(reply.get("{%s}user-id" % ex), "fred", to_text(reply))

    def test_missing_message_id(self):
        raw = self.raw().hello()
        reply = raw.rpc(GET_CONFIG_BODY, message_id=None)
        self.assertEqual(reply.tag, RPC_REPLY_TAG, to_text(reply))
        errors = self.assertRpcError(reply, tag="missing-attribute")
        self.assertIn("message-id", [error_info(e, "bad-attribute") for e in errors],
                      to_text(reply))
        self.assertDataReply(raw.rpc(GET_CONFIG_BODY, "2"), "2")

    def test_malformed_xml_base10_session_survives(self):
        # RFC 6241 App. A: malformed-message "MUST NOT be sent to old clients" (base:1.0 only),
        # so here any rpc-error is accepted; the base:1.1 test below checks the tag.
        raw = self.raw().hello(base11=False)
        raw.send(b"this is <not> xml <<<" + EOM)
        self.assertRpcError(raw.read_reply(), what="reply to garbage")
        raw.send(rpc_xml("<get-config><source><running/></source></get-confi>", "3") + EOM)
        self.assertRpcError(raw.read_reply(), what="reply to mismatched tags")
        self.assertDataReply(raw.rpc(GET_CONFIG_BODY, "4"), "4")

    def test_malformed_xml_chunked_malformed_message(self):
        raw = self.raw().hello(base11=True)
        self.assertTrue(raw.chunked)
        raw.send_msg(b"this is <not> xml <<<")
        self.assertRpcError(raw.read_reply(), tag="malformed-message", what="reply to garbage")
        raw.send_msg(rpc_xml("<get-config><source><running/></source></get-confi>", "3"))
        self.assertRpcError(raw.read_reply(), tag="malformed-message",
                            what="reply to mismatched tags")
        self.assertDataReply(raw.rpc(GET_CONFIG_BODY, "4"), "4")

    def test_deep_nesting_is_an_error_and_the_server_stays_up(self):
        raw = self.raw().hello(base11=True)
        depth = 10000
        deep = "<a>" * depth + "</a>" * depth
        body = ('<get-config><source><running/></source><filter type="subtree">'
                '<python-vm xmlns="http://tail-f.com/ns/ncs">%s</python-vm></filter>'
                '</get-config>' % deep)
        reply = raw.rpc(body, "5")
        errors = self.assertRpcError(reply, tag="malformed-message", what="10,000 levels")
        self.assertIn("nested more than", errors[0].get("error-message", ""))
        # The same through an XPath filter.
        select = "(" * depth + "/python-vm" + ")" * depth
        reply = raw.rpc('<get-config><source><running/></source>'
                        '<filter type="xpath" select="%s"/></get-config>' % select, "6")
        self.assertRpcError(reply, tag="invalid-value", what="deep XPath")
        self.assertDataReply(raw.rpc(GET_CONFIG_BODY, "7"), "7")
        # Other sessions never noticed.
        self.assertDataReply(self.raw().hello().rpc(GET_CONFIG_BODY, "8"), "8")

    def test_an_element_without_namespace_is_named(self):
        raw = self.raw().hello(base11=True)
        for holder in ('<config>', '<config xmlns="">'):
            body = ('<edit-config><target><running/></target>%s<python-vm><logging><level>'
                    'level-debug</level></logging></python-vm></config></edit-config>' % holder)
            errors = self.assertRpcError(raw.rpc(body, "9"), tag="unknown-element",
                                         what="unqualified " + holder)
            self.assertEqual(error_info(errors[0], "bad-element"), "python-vm")
            self.assertIn('xmlns="http://tail-f.com/ns/ncs"', errors[0].get("error-message"))

    def test_chunked_rpc_split_across_chunks(self):
        raw = self.raw().hello(base11=True)
        msg = rpc_xml(GET_CONFIG_BODY, "101")
        a, b = msg[:len(msg) // 2], msg[len(msg) // 2:]
        raw.send(b"\n#%d\n%s" % (len(a), a))
        raw.send(b"\n#%d\n" % len(b))          # a header in its own write
        raw.send(b[:5])                         # a chunk split across writes
        raw.send(b[5:] + b"\n##\n")
        self.assertDataReply(raw.read_reply(), "101")
        self.assertDataReply(raw.rpc(GET_CONFIG_BODY, "102"), "102")

    def test_stray_newline_before_chunk(self):
        raw = self.raw().hello(base11=True)
        msg = rpc_xml(GET_CONFIG_BODY, "201")
        raw.send(b"\n" + raw.frame(msg))
        self.assertDataReply(raw.read_reply(), "201")
        self.assertDataReply(raw.rpc(GET_CONFIG_BODY, "202"), "202")

    def test_eom_delimiter_split_across_writes(self):
        raw = self.raw().hello(base11=False)
        raw.send(rpc_xml(GET_CONFIG_BODY, "301") + b"]]>]")
        raw.send(b"]>")
        self.assertDataReply(raw.read_reply(), "301")
        self.assertDataReply(raw.rpc(GET_CONFIG_BODY, "302"), "302")

    def test_hello_and_first_rpc_in_one_write_eom(self):
        raw = self.raw()
        # Sent before even reading the server's hello, as some clients do.
        raw.send(hello_xml(BASE_10) + EOM + rpc_xml(GET_CONFIG_BODY, "401") + EOM)
        raw.read_server_hello()
        self.assertDataReply(raw.read_reply(), "401")

    def test_hello_and_first_rpc_in_one_write_chunked(self):
        raw = self.raw()
        raw.read_server_hello()
        msg = rpc_xml(GET_CONFIG_BODY, "501")
        raw.send(hello_xml(BASE_10, BASE_11) + EOM + b"\n#%d\n%s\n##\n" % (len(msg), msg))
        raw.chunked = True
        self.assertDataReply(raw.read_reply(), "501")

    def test_client_disconnect_mid_message(self):
        self.apply(logging_(leaf_xml("level", "level-error")))
        partial = rpc_xml("<edit-config><target><running/></target><config>"
                          + pvm(logging_(leaf_xml("level", "level-debug"))) + "</config>"
                          "</edit-config>", "601")
        # EOM session gone mid-message.
        raw = self.server.raw().hello(base11=False)
        raw.send(partial[:len(partial) // 2])
        raw.close()
        # Chunked session gone mid-chunk.
        raw = self.server.raw().hello(base11=True)
        raw.send(b"\n#%d\n%s" % (len(partial), partial[:40]))
        raw.close()
        # Gone in the middle of the hello.
        raw = self.server.raw()
        raw.read_server_hello()
        raw.send(hello_xml(BASE_10)[:30])
        raw.close()
        # Other sessions are fine and the partial edit was not applied.
        self.assertEqual(self.read(), {"level": "level-error"})
        fresh = self.connect()
        self.assertEqual(self.read(fresh), {"level": "level-error"})
        self.apply(logging_(leaf_xml("log-file-prefix", "after-disconnects")))
        self.assertEqual(self.read(fresh), {"level": "level-error",
                                            "log-file-prefix": "after-disconnects"})
        self.assertTrue(self.server.running(), "server died")


# ==============================================================================================
# Sessions: kill-session, close-session
# ==============================================================================================

class TestSessions(NetconfTestCase):

    def test_kill_session_terminates_other_session(self):
        victim = self.connect()
        self.assertData(get_config(victim))
        self.assertOk(self.m.kill_session(victim.session_id), "kill-session")
        self.assertTrue(wait_until(lambda: not victim.connected, 30),
                        "the killed session is still connected 30 s after kill-session")
        with self.assertRaises(Exception):
            get_config(victim)
        self.assertData(get_config(self.m), "get-config by the killer")

    def test_kill_own_session_invalid_value(self):
        reply = self.m.kill_session(self.m.session_id)
        self.assertRpcError(reply, tag="invalid-value")
        self.assertData(get_config(self.m), "get-config after kill-session of own id")

    def test_close_session_ncclient(self):
        self.assertOk(self.m.close_session(), "close-session")
        self.assertFalse(self.m.connected)

    def test_close_session_closes_channel(self):
        raw = self.raw().hello()
        reply = raw.rpc("<close-session/>", "9")
        self.assertEqual(reply.get("message-id"), "9", to_text(reply))
        self.assertIsNotNone(reply.find(OK_TAG), to_text(reply))
        self.assertTrue(raw.wait_closed(30), "channel still open 30 s after close-session")


# ==============================================================================================
# SSH
# ==============================================================================================

class TestSsh(NetconfTestCase):

    def authenticated_transport(self):
        raw = self.raw(subsystem=None)  # connected and authenticated, no channel yet
        return raw

    def assertNetconfWorksOn(self, transport):
        raw = RawSession(transport=transport)
        raw.hello()
        reply = raw.rpc(GET_CONFIG_BODY, "1")
        self.assertIsNotNone(reply.find(DATA_TAG), to_text(reply))

    def test_wrong_password_refused(self):
        with self.assertRaises(AuthenticationError):
            m = self.server.connect(password="not-the-password")
            close_quietly(m)
        self.assertData(get_config(self.connect()))

    def test_unknown_user_refused(self):
        with self.assertRaises(AuthenticationError):
            m = self.server.connect(username="nobody", password="admin")
            close_quietly(m)

    def test_exec_request_refused(self):
        raw = self.authenticated_transport()
        chan = raw.transport.open_session(timeout=30)
        refused = False
        with watchdog(raw.transport, 30) as fired:
            try:
                chan.exec_command("echo pyvmd-exec-test")
            except paramiko.SSHException:
                refused = True
        self.assertFalse(fired.is_set(), "no answer to the exec request within 30 s")
        self.assertTrue(refused, "the server accepted an exec request")
        self.assertNetconfWorksOn(raw.transport)

    def test_other_subsystem_refused(self):
        raw = self.authenticated_transport()
        chan = raw.transport.open_session(timeout=30)
        refused = False
        with watchdog(raw.transport, 30) as fired:
            try:
                chan.invoke_subsystem("sftp")
            except paramiko.SSHException:
                refused = True
        self.assertFalse(fired.is_set(), "no answer to the subsystem request within 30 s")
        self.assertTrue(refused, "the server accepted the sftp subsystem")
        self.assertNetconfWorksOn(raw.transport)

    def test_host_key_algorithms(self):
        # netconf-interop.md: offer ed25519 and RSA (rsa-sha2-256/512) host keys.
        name, _ = remote_host_key(self.server.port, ["ssh-ed25519"])
        self.assertEqual(name, "ssh-ed25519")
        name, _ = remote_host_key(self.server.port, ["rsa-sha2-512", "rsa-sha2-256"])
        self.assertEqual(name, "ssh-rsa")


# ==============================================================================================
# Limits: max message size, hello timeout
# ==============================================================================================

LIMIT = 65536


class TestLimits(NetconfTestCase):
    server_args = ("--max-message-size", str(LIMIT), "--hello-timeout", "5")

    def big_edit(self, size, message_id="1"):
        return rpc_xml("<edit-config><target><running/></target><config>"
                       + pvm(logging_(leaf_xml("log-file-prefix", "y" * size)))
                       + "</config></edit-config>", message_id)

    def oversize_outcome(self, raw, data):
        """Send ``data`` (in a thread: the server may stop reading) and return "too-big" when
        the server answers with that rpc-error, "closed" when it closes the session."""
        def sender():
            try:
                raw.send(data)
            except Exception:
                pass  # the server closed the channel under us: fine
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        try:
            try:
                reply = raw.read_reply()
            except ChannelClosed:
                return "closed"
            self.assertRpcError(reply, tag="too-big", what="reply to an oversize message")
            return "too-big"
        finally:
            raw.close()
            t.join(30)

    def assertOthersUnaffected(self, before):
        self.assertTrue(self.server.running(), "server died")
        self.assertEqual(self.read(), before, "existing session broken or oversize edit applied")
        self.assertEqual(self.read(self.connect()), before, "new session broken")

    def test_message_below_limit_works(self):
        prefix = "x" * 16000
        self.apply(logging_(leaf_xml("log-file-prefix", prefix)))
        self.assertEqual(self.read(), {"log-file-prefix": prefix})

    def test_oversize_eom_message(self):
        self.apply(logging_(leaf_xml("level", "level-error")))
        before = self.read()
        raw = self.server.raw().hello(base11=False)
        self.oversize_outcome(raw, self.big_edit(4 * LIMIT) + EOM)
        self.assertOthersUnaffected(before)

    def test_oversize_chunk(self):
        self.apply(logging_(leaf_xml("level", "level-error")))
        before = self.read()
        raw = self.server.raw().hello(base11=True)
        msg = self.big_edit(4 * LIMIT)
        self.oversize_outcome(raw, b"\n#%d\n%s\n##\n" % (len(msg), msg))
        self.assertOthersUnaffected(before)

    def test_oversize_many_small_chunks(self):
        self.apply(logging_(leaf_xml("level", "level-error")))
        before = self.read()
        raw = self.server.raw().hello(base11=True)
        msg = self.big_edit(4 * LIMIT)
        step = 4096
        frames = b"".join(b"\n#%d\n%s" % (len(msg[i:i + step]), msg[i:i + step])
                          for i in range(0, len(msg), step))
        self.oversize_outcome(raw, frames + b"\n##\n")
        self.assertOthersUnaffected(before)

    def test_hello_timeout_closes_silent_client(self):
        raw = self.raw()
        raw.read_server_hello()
        # We never send our hello; --hello-timeout 5 must end the session.
        self.assertTrue(raw.wait_closed(60), "session without hello still open after 60 s")
        self.assertData(get_config(self.connect()))


# ==============================================================================================
# Persistence and host key across restarts
# ==============================================================================================

class TestPersistence(NetconfTestCase):

    def test_restart_keeps_configuration(self):
        self.apply(sanity("off") + logging_(leaf_xml("level", "level-warning")
                                            + leaf_xml("log-file-prefix", "persist")
                                            + vm_level("a", "level-debug")
                                            + vm_level("b", "level-info")
                                            + vm_level("c", "level-error")))
        self.apply(logging_(vm_level("b", op="delete")))
        expected = {"self-assign-warning": "off", "level": "level-warning",
                    "log-file-prefix": "persist",
                    "vm-levels": {"a": "level-debug", "c": "level-error"}}
        self.assertEqual(self.read(), expected)
        before = self.running()
        close_quietly(self.m)
        self.server.stop()
        self.server.start()
        self.m = self.connect()
        self.assertEqual(self.read(), expected)
        self.assertEqual(self.running(), before)

    def test_kill9_keeps_last_acknowledged_edit(self):
        """Edits in a loop; kill -9 in the middle; after the restart running holds the last
        acknowledged edit (or the one in flight at the kill, which the client cannot tell apart),
        and each edit is atomic: log-file-prefix gen-N comes with exactly entries e0..eN."""
        close_quietly(self.m)
        next_n = 0
        for acks_before_kill in (3, 11, 25):
            m = self.connect()
            cond = threading.Condition()
            progress = {"sent": None, "acked": None, "count": 0, "error": None}

            def worker(n=next_n, m=m, cond=cond, progress=progress):
                while True:
                    with cond:
                        progress["sent"] = n
                    try:
                        reply = edit(m, pvm(logging_(leaf_xml("log-file-prefix", "gen-%d" % n)
                                                     + vm_level("e%d" % n, "level-debug"))))
                        root = parse(reply)
                        if rpc_errors(root) or root.find(OK_TAG) is None:
                            raise AssertionError("edit gen-%d failed:\n%s" % (n, to_text(root)))
                    except Exception as e:  # includes the server dying under us
                        with cond:
                            progress["error"] = e
                            cond.notify_all()
                        return
                    with cond:
                        progress["acked"] = n
                        progress["count"] += 1
                        cond.notify_all()
                    n += 1

            t = threading.Thread(target=worker, daemon=True)
            t.start()
            with cond:
                reached = cond.wait_for(lambda: progress["count"] >= acks_before_kill
                                        or progress["error"] is not None, timeout=180)
                early_error = progress["error"]
            self.assertIsNone(early_error, "an edit failed before the kill: %r" % early_error)
            self.assertTrue(reached, "fewer than %d edits acknowledged in 180 s" % acks_before_kill)
            self.server.kill9()
            t.join(120)
            self.assertFalse(t.is_alive(), "the edit loop did not notice the dead server")
            with cond:
                acked, sent = progress["acked"], progress["sent"]
            close_quietly(m)

            self.server.start()
            snap = self.read(self.connect())
            prefix = snap.get("log-file-prefix", "")
            self.assertRegex(prefix, r"^gen-\d+$", "after kill -9: %r" % snap)
            k = int(prefix[len("gen-"):])
            self.assertIn(k, {acked, sent},
                          "after kill -9 running holds gen-%d; last acknowledged gen-%d, "
                          "in flight gen-%s" % (k, acked, sent))
            self.assertEqual(snap.get("vm-levels"),
                             {"e%d" % i: "level-debug" for i in range(k + 1)},
                             "entries do not match gen-%d (edits not atomic?)" % k)
            next_n = k + 1

    def test_host_key_stable_across_restarts(self):
        def keys():
            out = {"default": remote_host_key(self.server.port)}
            for name, types in (("ed25519", ["ssh-ed25519"]),
                                ("rsa", ["rsa-sha2-512", "rsa-sha2-256"])):
                try:
                    out[name] = remote_host_key(self.server.port, types)
                except paramiko.SSHException:
                    out[name] = None  # not offered; test_host_key_algorithms covers that
            return out

        first = keys()
        close_quietly(self.m)
        self.server.stop()
        self.server.start()
        self.assertEqual(keys(), first, "host keys changed across a restart (SIGTERM)")
        self.server.kill9()
        self.server.start()
        self.assertEqual(keys(), first, "host keys changed across a restart (kill -9)")


if __name__ == "__main__":
    unittest.main()
