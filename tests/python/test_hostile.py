"""What a hostile or broken client sends, over SSH: each input gets a clear rpc-error or a closed
session, the server stays up, other sessions keep working, and nothing committed is lost.

(Malformed XML, deep nesting, missing message-ids and disconnects mid-message are in
test_core.)
"""

import socket
import threading
import time

from pyvmd_harness import (NC_NS, ServerTestCase, leaf_xml, logging_, parse, pvm, rpc_errors,
                           wait_until)

GET_CONFIG = "<get-config><source><running/></source></get-config>"
LEVEL = pvm(logging_(leaf_xml("level", "level-warning")))


def rpc_xml(body, message_id="1", attrs=""):
    return ('<rpc xmlns="%s" message-id="%s"%s>%s</rpc>' % (NC_NS, message_id, attrs, body)
            ).encode()


class TestHostileInput(ServerTestCase):
    # A small limit, so that "a client that sends forever" reaches it soon.
    server_args = ("--max-message-size", str(1 << 20), "--hello-timeout", "5")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        m = cls.server.connect()
        assert m.edit_config(target="running", config="<config>%s</config>" % LEVEL).ok
        m.close_session()

    def setUp(self):
        # A bystander session that must keep working through every test.
        self.bystander = self.connect()

    def tearDown(self):
        self.assertTrue(self.server.running(), "the server died")
        reply = self.bystander.get_config(source="running")
        self.assertTrue(reply.ok, reply.xml)
        self.assertIn("level-warning", reply.xml, "committed data was lost")

    def errors(self, raw):
        return rpc_errors(parse(raw.read_reply()))

    def test_nul_bytes_and_invalid_utf8(self):
        for garbage in (b"<rpc xmlns='%s' message-id='1'>\x00</rpc>" % NC_NS.encode(),
                        b"<rpc xmlns='%s' message-id='2'>\xff\xfe\xc3\x28</rpc>" % NC_NS.encode()):
            raw = self.raw().hello(base11=True)
            raw.send_msg(garbage)
            tags = [e.get("error-tag") for e in self.errors(raw)]
            self.assertIn("malformed-message", tags)
            # The session goes on.
            self.assertFalse(rpc_errors(parse(raw.rpc(GET_CONFIG, "9"))))

    def test_huge_and_negative_chunk_sizes(self):
        for header in (b"\n#99999999999999999999\n", b"\n#-5\n", b"\n#0\n", b"\n#\n"):
            raw = self.raw().hello(base11=True)
            raw.send(header + b"x" * 16)
            # A framing error: the session ends (RFC 6242 §4.2), with or without a reply.
            self.assertTrue(raw.wait_closed(), "the session stayed open after %r" % header)

    def test_a_billion_laughs_document_is_refused(self):
        laughs = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join('<!ENTITY lol%d "%s">' % (i, ("&lol%d;" % (i - 1) if i else "&lol;")
                                                      * 10) for i in range(10))
                  + ']><rpc xmlns="%s" message-id="1"><get-config><source><running/></source>'
                  '<filter>&lol9;</filter></get-config></rpc>' % NC_NS)
        raw = self.raw().hello(base11=True)
        started = time.monotonic()
        raw.send_msg(laughs.encode())
        tags = [e.get("error-tag") for e in self.errors(raw)]
        self.assertIn("malformed-message", tags)
        self.assertLess(time.monotonic() - started, 30)
        self.assertFalse(rpc_errors(parse(raw.rpc(GET_CONFIG, "9"))))

    def test_wrong_and_missing_namespaces(self):
        raw = self.raw().hello(base11=True)
        raw.send_msg(b'<rpc xmlns="urn:example:wrong" message-id="1">%s</rpc>'
                     % GET_CONFIG.encode())
        self.assertTrue(self.errors(raw))
        # Without any namespace, the base namespace is assumed (clients that leave it out
        # exist): a reply, not an error.
        raw.send_msg(b'<rpc message-id="2">%s</rpc>' % GET_CONFIG.encode())
        self.assertFalse(self.errors(raw))
        raw.send_msg(rpc_xml('<get-config xmlns="urn:example:wrong"><source><running/>'
                             '</source></get-config>', "3"))
        self.assertTrue(self.errors(raw))
        self.assertFalse(rpc_errors(parse(raw.rpc(GET_CONFIG, "9"))))

    def test_unknown_attributes(self):
        raw = self.raw().hello(base11=True)
        # On <rpc>: echoed (RFC 6241 §4.1), not an error.
        reply = parse(raw.rpc(GET_CONFIG, "1", attrs=' xmlns:x="urn:x" x:odd="1"'))
        self.assertFalse(rpc_errors(reply))
        # On configuration data: an error, and nothing changes.
        raw.send_msg(rpc_xml(
            '<edit-config><target><running/></target><config><python-vm xmlns="%s" '
            'xmlns:x="urn:x" x:bogus="1"><logging><level>level-off</level></logging>'
            '</python-vm></config></edit-config>' % "http://tail-f.com/ns/ncs", "2"))
        self.assertTrue(self.errors(raw))

    def test_duplicate_message_ids_are_each_answered(self):
        raw = self.raw().hello(base11=True)
        raw.send_msg(rpc_xml(GET_CONFIG, "7"))
        raw.send_msg(rpc_xml(GET_CONFIG, "7"))
        first = parse(raw.read_reply())
        second = parse(raw.read_reply())
        self.assertEqual([first.get("message-id"), second.get("message-id")], ["7", "7"])

    def test_a_client_that_stops_reading(self):
        raw = self.raw().hello(base11=True)
        # Many large replies asked for and never read: the server must not stall.
        for i in range(200):
            raw.send_msg(rpc_xml("<get/>", str(i)))
        for _ in range(5):
            self.assertTrue(self.bystander.get_config(source="running").ok)

    def test_a_client_that_sends_forever(self):
        raw = self.raw().hello(base11=False)
        stop = threading.Event()

        def flood():
            chunk = b"<a>" + b"x" * 65536
            try:
                while not stop.is_set():
                    raw.send(chunk)
            except Exception:
                pass
        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        try:
            # Past --max-message-size the session ends.
            self.assertTrue(raw.wait_closed(60), "the session was not closed")
        finally:
            stop.set()
            thread.join(10)

    def test_five_hundred_half_open_connections(self):
        sockets = []
        try:
            for _ in range(500):
                sockets.append(socket.create_connection(("127.0.0.1", self.server.port),
                                                        timeout=10))
            # Nobody of them speaks: the server still serves the others, new ones included.
            self.assertTrue(self.bystander.get_config(source="running").ok)
            fresh = self.connect()
            self.assertTrue(fresh.get_config(source="running").ok)
        finally:
            for s in sockets:
                s.close()
        self.assertTrue(wait_until(lambda: self.connect().connected, 10))
