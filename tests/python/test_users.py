"""Users of the ietf-system model (RFC 7317): passwords given in clear and stored hashed, SSH keys,
changes that apply to the next login, /system-state; login throttling per source address; every
login, logout and failure in the log."""

import os
import tempfile
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from ncclient import manager
from ncclient.transport.errors import AuthenticationError, SSHError
from ncclient.xml_ import to_ele

from pyvmd_harness import ServerTestCase, parse, wait_until

SYS_NS = "urn:ietf:params:xml:ns:yang:ietf-system"
NS = {"sys": SYS_NS}


def user_xml(name, password=None, keys=(), op=None):
    attr = ' xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="%s"' % op if op else ""
    inner = "<name>%s</name>" % name
    if password is not None:
        inner += "<password>%s</password>" % password
    for key_name, algorithm, data in keys:
        inner += ("<authorized-key><name>%s</name><algorithm>%s</algorithm>"
                  "<key-data>%s</key-data></authorized-key>" % (key_name, algorithm, data))
    return ('<config><system xmlns="%s"><authentication><user%s>%s</user></authentication>'
            '</system></config>' % (SYS_NS, attr, inner))


def new_key(path):
    """Writes a new Ed25519 private key to ``path``; returns the public key's base64 blob."""
    key = ed25519.Ed25519PrivateKey.generate()
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.OpenSSH,
                                  serialization.NoEncryption()))
    return key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                         serialization.PublicFormat.OpenSSH).split()[1].decode()


class TestUsers(ServerTestCase):
    server_args = ("--auth-failure-delay-ms", "50")

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.m = cls.server.connect()

    @classmethod
    def tearDownClass(cls):
        cls.m.close_session()
        super().tearDownClass()

    def edit(self, config):
        self.assertOk(self.m.edit_config(target="running", config=config).xml)

    def stored_password(self, name):
        reply = self.m.get_config(source="running", filter=(
            "subtree", '<system xmlns="%s"><authentication><user><name>%s</name></user>'
            '</authentication></system>' % (SYS_NS, name)))
        return parse(reply.xml).findtext(".//sys:user/sys:password", namespaces=NS)

    def test_a_password_given_in_clear_is_stored_hashed_and_logs_in(self):
        offsets = self.server.log_offsets()
        self.edit(user_xml("alice", "$0$alice-secret"))
        stored = self.stored_password("alice")
        self.assertTrue(stored.startswith("$6$"), stored)
        self.assertNotIn("alice-secret", stored)
        with open(os.path.join(self.server.state_dir, "running.xml")) as f:
            self.assertNotIn("alice-secret", f.read())
        m = self.server.connect(username="alice", password="alice-secret")
        m.close_session()
        self.assertTrue(wait_until(lambda: "logout: user alice from 127.0.0.1:"
                                   in self.server.log_since(offsets), 10),
                        self.server.log_since(offsets))
        self.assertIn("login: user alice from 127.0.0.1:", self.server.log_since(offsets))

    def test_a_password_change_applies_to_the_next_login(self):
        self.edit(user_xml("bob", "$0$first"))
        session = self.server.connect(username="bob", password="first")
        self.edit(user_xml("bob", "$0$second"))
        offsets = self.server.log_offsets()
        with self.assertRaises(AuthenticationError):
            self.server.connect(username="bob", password="first")
        self.assertIn("login failed: user bob from 127.0.0.1:", self.server.log_since(offsets))
        self.server.connect(username="bob", password="second").close_session()
        # The session opened with the old password goes on.
        self.assertTrue(session.get_config(source="running").ok)
        session.close_session()
        # A hash written as such is taken as it is.
        self.edit(user_xml("bob", self.stored_password("alice") or "$0$x"))

    def test_a_deleted_user_cannot_log_in(self):
        self.edit(user_xml("carol", "$0$carol-pw"))
        self.server.connect(username="carol", password="carol-pw").close_session()
        self.edit(user_xml("carol", op="delete"))
        with self.assertRaises(AuthenticationError):
            self.server.connect(username="carol", password="carol-pw")

    def test_an_authorized_key_logs_in(self):
        with tempfile.TemporaryDirectory() as tmp:
            path, other_path = os.path.join(tmp, "id_ed25519"), os.path.join(tmp, "other")
            public = new_key(path)
            new_key(other_path)
            self.edit(user_xml("dave", keys=[("laptop", "ssh-ed25519", public)]))
            m = self.key_login("dave", path)
            self.assertTrue(m.get_config(source="running").ok)
            m.close_session()
            with self.assertRaises(AuthenticationError):
                self.key_login("dave", other_path)
            # The key is dave's only.
            self.edit(user_xml("erin", "$0$erin-pw"))
            with self.assertRaises(AuthenticationError):
                self.key_login("erin", path)

    def key_login(self, user, key_file):
        return manager.connect(host="127.0.0.1", port=self.server.port, username=user,
                               key_filename=key_file, hostkey_verify=False, allow_agent=False,
                               look_for_keys=False, timeout=30)

    def test_the_bootstrap_user_always_logs_in(self):
        self.edit(user_xml("admin", "$0$another-password"))
        try:
            self.server.connect(username="admin", password="admin").close_session()
            self.server.connect(username="admin", password="another-password").close_session()
        finally:
            self.edit(user_xml("admin", op="delete"))

    def test_system_state(self):
        reply = self.m.get(filter=("subtree", '<system-state xmlns="%s"/>' % SYS_NS))
        root = parse(reply.xml)
        self.assertEqual(root.findtext(".//sys:platform/sys:os-name", namespaces=NS), "Linux")
        self.assertTrue(root.findtext(".//sys:clock/sys:boot-datetime", namespaces=NS))
        self.assertTrue(root.findtext(".//sys:clock/sys:current-datetime", namespaces=NS))

    def test_what_pyvmd_does_not_manage_is_deviated(self):
        reply = self.m.dispatch(to_ele('<system-restart xmlns="%s"/>' % SYS_NS))
        self.assertRpcError(reply.xml)
        self.assertRpcError(self.m.edit_config(target="running", config=(
            '<config><system xmlns="%s"><clock><timezone-utc-offset>60</timezone-utc-offset>'
            '</clock></system></config>' % SYS_NS)).xml, tag="unknown-element")


class TestLoginThrottling(ServerTestCase):
    server_args = ("--auth-failure-delay-ms", "50", "--auth-block-after", "3",
                   "--auth-block-secs", "3")

    def test_an_address_that_keeps_failing_is_blocked_for_a_while(self):
        offsets = self.server.log_offsets()
        for _ in range(3):
            with self.assertRaises(AuthenticationError):
                self.server.connect(password="wrong")
        log = self.server.log_since(offsets)
        self.assertIn("blocking 127.0.0.1 for 3 s after 3 failed logins", log)
        # Blocked: even the right password does not get in; the connection is closed at once.
        with self.assertRaises((SSHError, AuthenticationError)):
            self.server.connect()
        time.sleep(3.5)
        self.server.connect().close_session()


class TestSessionLimits(ServerTestCase):
    server_args = ("--max-sessions", "3", "--max-sessions-per-user", "2")

    def test_sessions_beyond_the_limits_are_closed_at_once(self):
        admin = [self.connect(), self.connect()]
        self.assertOk(admin[0].edit_config(target="running", config=user_xml(
            "uma", "$0$uma-pw")).xml)
        offsets = self.server.log_offsets()
        # A third session of admin: over the per-user limit.
        with self.assertRaises(Exception):
            self.server.connect()
        self.assertIn("session refused: user admin from 127.0.0.1:", self.server.log_since(offsets))
        self.assertIn("the most one user may have", self.server.log_since(offsets))
        # Another user gets the third place, and nobody a fourth.
        uma = self.connect(username="uma", password="uma-pw")
        with self.assertRaises(Exception):
            self.server.connect(username="uma", password="uma-pw")
        self.assertIn("the most it allows (--max-sessions)", self.server.log_since(offsets))
        # A place that frees up can be taken again; the sessions that were there go on.
        uma.close_session()
        self.assertTrue(wait_until(lambda: self.try_connect(), 10))
        self.assertTrue(admin[1].get_config(source="running").ok)

    def try_connect(self):
        try:
            self.server.connect(username="uma", password="uma-pw").close_session()
            return True
        except Exception:
            return False
