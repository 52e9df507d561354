"""Shared pieces of the datastore test modules (candidate, locks, startup, filters, monitoring,
NMDA): a test-case base with a server per class and helpers for the requests those tests send.
Not a test module itself (no ``test_`` prefix), so its classes are not collected twice."""

from ncclient.xml_ import to_ele

from pyvmd_harness import (
    NC_NS, NCS_NS, ServerTestCase, config, edit, get_config, leaf_xml, logging_, parse, pvm,
    rpc_errors, snapshot, to_text, vm_level,
)

MON_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
YANGLIB_NS = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
NMDA_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-nmda"
DS_NS = "urn:ietf:params:xml:ns:yang:ietf-datastores"
ORIGIN_NS = "urn:ietf:params:xml:ns:yang:ietf-origin"
CAP_CONFIRMED_COMMIT = "urn:ietf:params:netconf:capability:confirmed-commit:1.1"
CAP_YANG_LIBRARY = "urn:ietf:params:netconf:capability:yang-library:1.0"
CAP_YANG_LIBRARY_1_1 = "urn:ietf:params:netconf:capability:yang-library:1.1"


def level_edit(level):
    """Inner XML of an edit that sets /python-vm/logging/level."""
    return pvm(logging_(leaf_xml("level", level)))


def edit_ds(m, target, inner, **kwargs):
    """edit-config on ``target`` with ``inner`` wrapped in <config>."""
    return m.edit_config(target=target, config=config(inner), **kwargs)


def lock_rpc(m, target):
    return m.dispatch(to_ele('<lock xmlns="%s"><target><%s/></target></lock>' % (NC_NS, target)))


def unlock_rpc(m, target):
    return m.dispatch(to_ele('<unlock xmlns="%s"><target><%s/></target></unlock>' % (NC_NS, target)))


def commit_rpc(m, confirmed=False, timeout=None, persist=None, persist_id=None):
    body = ""
    if confirmed:
        body += "<confirmed/>"
    if timeout is not None:
        body += "<confirm-timeout>%s</confirm-timeout>" % timeout
    if persist is not None:
        body += "<persist>%s</persist>" % persist
    if persist_id is not None:
        body += "<persist-id>%s</persist-id>" % persist_id
    return m.dispatch(to_ele('<commit xmlns="%s">%s</commit>' % (NC_NS, body)))


def cancel_commit_rpc(m, persist_id=None):
    body = "" if persist_id is None else "<persist-id>%s</persist-id>" % persist_id
    return m.dispatch(to_ele('<cancel-commit xmlns="%s">%s</cancel-commit>' % (NC_NS, body)))


def error_tags(reply):
    return [e.get("error-tag") for e in rpc_errors(parse(reply))]


def session_id_info(reply):
    """The <session-id> values in the error-info of the reply's rpc-errors."""
    root = parse(reply)
    return [el.text.strip() for el in root.iter("{%s}session-id" % NC_NS)]


class DatastoreTestCase(ServerTestCase):
    """A server per class; a fresh session per test, starting with empty running and
    candidate and no startup."""

    def setUp(self):
        super().setUp()
        self.ensure_running()
        self.m = self.connect()
        self.assertOk(edit(self.m, pvm(op="remove")), "reset running")
        self.assertOk(self.m.discard_changes(), "reset candidate")

    def read(self, source="running", m=None, filter=None, with_defaults=None):
        """Snapshot (dict) of /python-vm in ``source``."""
        f = ("subtree", filter) if filter is not None else None
        return snapshot(self.assertData((m or self.m).get_config(
            source=source, filter=f, with_defaults=with_defaults), "get-config %s" % source))

    def level(self, source="running", m=None):
        return self.read(source, m).get("level")
