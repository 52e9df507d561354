"""Test harness for the pyvmd end-to-end tests (driven by ncclient and raw paramiko).

What it provides:

* :class:`PyvmdServer` starts ``pyvmd serve`` as a subprocess on a free port, with temporary
  state, packages and log directories, waits until the TCP port accepts connections, and can stop
  it (SIGTERM), ``kill -9`` it, and restart it on the same directories.  Every server started here
  is also registered for an ``atexit`` clean-up, so an interrupted run leaves no orphan processes.
* :meth:`PyvmdServer.connect` opens an ncclient session (``raise_mode`` NONE: rpc-errors are
  returned, not raised, so tests assert on ``error-tag`` / ``error-type`` themselves).
* :class:`RawSession` is a minimal NETCONF client over paramiko for framing-level tests
  (EOM ``]]>]]>`` and chunked framing, garbage, partial messages).
* :class:`ServerTestCase` is a ``unittest.TestCase`` base that prints the server's log written
  during a failing test, so a failure report says what the server saw.
* Small XML helpers (:func:`parse`, :func:`rpc_errors`, :func:`snapshot`, ...) and the namespace
  constants.

Environment:

* ``PYVMD_BIN``: the pyvmd binary (default: ``<repo>/target/debug/pyvmd``).
* ``PYVMD_YANG_DIR``: the repository's ``yang`` directory (default: ``<repo>/yang``).
* ``PYVMD_TEST_KEEP_TMP=1``: keep the temporary directories (their paths are printed).
* ``PYVMD_TEST_READY_TIMEOUT``: seconds to wait for the port (default 20).
"""

import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import shutil
import unittest
import urllib.parse
from contextlib import contextmanager

import paramiko
from lxml import etree
from ncclient import manager
from ncclient.operations import RaiseMode

# --------------------------------------------------------------------------------------------
# Namespaces and capability URIs
# --------------------------------------------------------------------------------------------

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCS_NS = "http://tail-f.com/ns/ncs"
# RFC 6243: the namespace of the wd:default attribute (report-all-tagged) ...
WD_NS = "urn:ietf:params:xml:ns:netconf:default:1.0"
# ... and of the <with-defaults> rpc parameter.
WD_PARAM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-with-defaults"

NSMAP = {"nc": NC_NS, "ncs": NCS_NS, "wd": WD_NS}

BASE_10 = "urn:ietf:params:netconf:base:1.0"
BASE_11 = "urn:ietf:params:netconf:base:1.1"
CAP_WRITABLE_RUNNING = "urn:ietf:params:netconf:capability:writable-running:1.0"
CAP_ROLLBACK_ON_ERROR = "urn:ietf:params:netconf:capability:rollback-on-error:1.0"
CAP_VALIDATE_11 = "urn:ietf:params:netconf:capability:validate:1.1"
CAP_WITH_DEFAULTS = "urn:ietf:params:netconf:capability:with-defaults:1.0"
CAP_CANDIDATE = "urn:ietf:params:netconf:capability:candidate:1.0"
CAP_STARTUP = "urn:ietf:params:netconf:capability:startup:1.0"
CAP_XPATH = "urn:ietf:params:netconf:capability:xpath:1.0"
CAP_NOTIFICATION = "urn:ietf:params:netconf:capability:notification:1.0"

EOM = b"]]>]]>"

# Generous timeouts: tests must never depend on speed.
RPC_TIMEOUT = 60
CONNECT_TIMEOUT = 30
READY_TIMEOUT = float(os.environ.get("PYVMD_TEST_READY_TIMEOUT", "20"))
STOP_TIMEOUT = 30

REPO_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def server_binary():
    """The pyvmd binary under test (env ``PYVMD_BIN``, else ``target/debug/pyvmd``)."""
    path = os.environ.get("PYVMD_BIN") or os.path.join(REPO_DIR, "target", "debug", "pyvmd")
    if not os.path.isfile(path):
        raise unittest.SkipTest(
            "pyvmd binary not found (%s); set PYVMD_BIN or run the suite through "
            "`cargo test --test ncclient`" % path)
    return path


def yang_dir():
    return os.environ.get("PYVMD_YANG_DIR") or os.path.join(REPO_DIR, "yang")


def free_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port, timeout=1.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------

_LIVE_SERVERS = set()
_LIVE_LOCK = threading.Lock()


def _cleanup_all_servers():
    with _LIVE_LOCK:
        servers = list(_LIVE_SERVERS)
    for srv in servers:
        try:
            srv.kill9()
        except Exception:  # best effort at interpreter exit
            pass


atexit.register(_cleanup_all_servers)


class ServerStartError(RuntimeError):
    pass


class PyvmdServer:
    """One pyvmd server with its own temporary state/packages/log directories.

    ``extra_args`` are appended to the ``serve`` command line (e.g. ``--max-message-size``).
    The directories survive :meth:`stop` / :meth:`kill9`, so :meth:`start` again restarts the
    server on the same state; :meth:`cleanup` stops the server and removes them.
    """

    def __init__(self, extra_args=(), user="admin", password="admin", name="pyvmd"):
        self.binary = server_binary()
        self.yang_dir = yang_dir()
        self.user = user
        self.password = password
        self.extra_args = list(extra_args)
        self.tmp = tempfile.mkdtemp(prefix="pyvmd-test-%s-" % name)
        self.state_dir = os.path.join(self.tmp, "state")
        self.packages_dir = os.path.join(self.tmp, "packages")
        self.log_dir = os.path.join(self.tmp, "logs")
        for d in (self.state_dir, self.packages_dir, self.log_dir):
            os.makedirs(d, exist_ok=True)
        self.stderr_path = os.path.join(self.tmp, "server-stderr.log")
        self.log_path = os.path.join(self.log_dir, "pyvmd.log")
        self.proc = None
        self.port = None
        self.starts = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def command(self):
        return [
            self.binary, "serve",
            "--listen", "127.0.0.1:%d" % self.port,
            "--state-dir", self.state_dir,
            "--packages", self.packages_dir,
            "--yang-dir", self.yang_dir,
            "--log-dir", self.log_dir,
            "--user", self.user,
            "--password", self.password,
            "--log-level", "debug",
        ] + self.extra_args

    def start(self):
        """Start (or restart) the server on a fresh port and wait until it accepts TCP."""
        if self.running():
            raise RuntimeError("server already running (pid %d)" % self.proc.pid)
        self.port = free_port()
        self.starts += 1
        cmd = self.command()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")      # panics: with a backtrace
        env.setdefault("RUST_LIB_BACKTRACE", "0")  # anyhow errors: without one (they are long)
        with open(self.stderr_path, "ab") as err:
            err.write(("\n===== harness: start #%d: %s =====\n"
                       % (self.starts, " ".join(cmd))).encode())
            err.flush()
            # A new session (process group) of its own: a Ctrl-C on the terminal does not hit
            # the server directly, and the harness can reap any child processes it leaves.
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                         env=env, start_new_session=True)
        with _LIVE_LOCK:
            _LIVE_SERVERS.add(self)
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self._reap_group()
                raise ServerStartError("pyvmd exited with status %s before accepting connections; "
                                       "end of its stderr:\n%s"
                                       % (code, _read_from(self.stderr_path, 0)[-4000:]))
            if port_accepts(self.port):
                return self
            time.sleep(0.1)
        self.kill9()
        raise ServerStartError("pyvmd did not accept connections on port %d within %.0f s; "
                               "end of its stderr:\n%s"
                               % (self.port, READY_TIMEOUT, _read_from(self.stderr_path, 0)[-4000:]))

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait; SIGKILL if it does not exit in time.  Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._note("did not exit %d s after SIGTERM; sending SIGKILL" % timeout)
                self.proc.kill()
                self.proc.wait(timeout)
        return self._finish()

    def kill9(self):
        """``kill -9`` the server process (as a crash would), then reap what it left."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait(STOP_TIMEOUT)
        return self._finish()

    def restart(self):
        self.stop()
        return self.start()

    def cleanup(self):
        """Stop the server and remove its directories (unless PYVMD_TEST_KEEP_TMP is set)."""
        try:
            self.stop()
        finally:
            if os.environ.get("PYVMD_TEST_KEEP_TMP"):
                sys.stderr.write("pyvmd test directories kept in %s\n" % self.tmp)
            else:
                shutil.rmtree(self.tmp, ignore_errors=True)

    def _finish(self):
        code = self.proc.returncode
        self._reap_group()
        with _LIVE_LOCK:
            _LIVE_SERVERS.discard(self)
        self._note("server exited with status %s" % code)
        return code

    def _reap_group(self):
        # The server ran in its own process group (start_new_session): kill anything it left
        # behind (e.g. VM children), so no test leaves orphan processes.
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def _note(self, text):
        try:
            with open(self.stderr_path, "ab") as err:
                err.write(("\n===== harness: %s =====\n" % text).encode())
        except OSError:
            pass

    # -- logs ----------------------------------------------------------------------------------

    def log_offsets(self):
        return {p: _size(p) for p in (self.stderr_path, self.log_path)}

    def log_since(self, offsets=None, limit=60000):
        """The server's stderr and pyvmd.log written since ``offsets`` (at most ``limit`` bytes
        of each, the end kept)."""
        out = []
        for path in (self.stderr_path, self.log_path):
            start = (offsets or {}).get(path, 0)
            text = _read_from(path, start)
            if len(text) > limit:
                text = "[... %d bytes cut ...]\n" % (len(text) - limit) + text[-limit:]
            out.append("----- %s (from byte %d) -----\n%s" % (path, start, text or "(empty)"))
        return "\n".join(out)

    def log_tail(self, limit=20000):
        return self.log_since(None, limit)

    # -- clients -------------------------------------------------------------------------------

    def connect(self, username=None, password=None, **kwargs):
        """An ncclient session; rpc-errors are returned in the reply, not raised."""
        params = dict(host="127.0.0.1", port=self.port,
                      username=self.user if username is None else username,
                      password=self.password if password is None else password,
                      hostkey_verify=False, allow_agent=False, look_for_keys=False,
                      timeout=CONNECT_TIMEOUT)
        params.update(kwargs)
        m = manager.connect(**params)
        m.timeout = RPC_TIMEOUT
        m.raise_mode = RaiseMode.NONE
        return m

    def raw(self, **kwargs):
        return RawSession(self.port, username=self.user, password=self.password, **kwargs)


def _size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _read_from(path, start):
    try:
        with open(path, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def close_quietly(m):
    """Close an ncclient session, ignoring a session that is already gone."""
    if m is None:
        return
    try:
        if m.connected:
            m.close_session()
    except Exception:
        pass
    try:
        m._session.close()
    except Exception:
        pass


# --------------------------------------------------------------------------------------------
# unittest base class
# --------------------------------------------------------------------------------------------

class ServerTestCase(unittest.TestCase):
    """Base for tests that share one server per class.

    Subclasses set ``server_args`` (extra ``serve`` arguments).  ``setUpClass`` starts the server,
    ``tearDownClass`` stops it and removes its directories.  When a test fails, the server log
    written during that test is printed to stderr.
    """

    server_args = ()
    server = None
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = PyvmdServer(extra_args=cls.server_args, name=cls.__name__)
        try:
            cls.server.start()
        except BaseException:
            cls.server.cleanup()
            cls.server = None
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.server is not None:
            cls.server.cleanup()
            cls.server = None
        super().tearDownClass()

    def run(self, result=None):
        if result is None:
            return super().run(result)
        offsets = self.server.log_offsets() if self.server is not None else None
        before = len(result.failures) + len(result.errors)
        out = super().run(result)
        if len(result.failures) + len(result.errors) > before and self.server is not None:
            sys.stderr.write("\n===== server log during %s =====\n%s\n===== end of server log =====\n"
                             % (self.id(), self.server.log_since(offsets)))
            sys.stderr.flush()
        return out

    def ensure_running(self):
        if not self.server.running():
            self.server.start()

    def connect(self, **kwargs):
        m = self.server.connect(**kwargs)
        self.addCleanup(close_quietly, m)
        return m

    def raw(self, **kwargs):
        s = self.server.raw(**kwargs)
        self.addCleanup(s.close)
        return s

    # -- assertions ----------------------------------------------------------------------------

    def assertOk(self, reply, what="rpc"):
        root = parse(reply)
        errors = rpc_errors(root)
        self.assertEqual(errors, [], "%s returned rpc-error(s):\n%s" % (what, to_text(root)))
        self.assertIsNotNone(root.find("{%s}ok" % NC_NS),
                             "%s: expected <ok/>, got:\n%s" % (what, to_text(root)))
        return root

    def assertRpcError(self, reply, tag=None, type=None, what="rpc"):
        """Assert the reply carries at least one rpc-error (with ``tag`` / ``type`` when given:
        some error must match both).  Returns the list of errors (dicts)."""
        root = parse(reply)
        errors = rpc_errors(root)
        self.assertTrue(errors, "%s: expected an rpc-error, got:\n%s" % (what, to_text(root)))
        self.assertIsNone(root.find("{%s}ok" % NC_NS),
                          "%s: reply has both <ok/> and rpc-error:\n%s" % (what, to_text(root)))
        if tag is not None or type is not None:
            match = [e for e in errors
                     if (tag is None or e.get("error-tag") == tag)
                     and (type is None or e.get("error-type") == type)]
            self.assertTrue(match, "%s: expected rpc-error with error-tag=%s error-type=%s, got:\n%s"
                            % (what, tag, type, to_text(root)))
        return errors

    def assertData(self, reply, what="rpc"):
        """Assert a successful data reply; return the <data> element."""
        root = parse(reply)
        errors = rpc_errors(root)
        self.assertEqual(errors, [], "%s returned rpc-error(s):\n%s" % (what, to_text(root)))
        data = root.find("{%s}data" % NC_NS)
        self.assertIsNotNone(data, "%s: reply has no <data> element in the base namespace:\n%s"
                             % (what, to_text(root)))
        return data


# --------------------------------------------------------------------------------------------
# XML helpers
# --------------------------------------------------------------------------------------------

_PARSER = etree.XMLParser(huge_tree=True)


def parse(reply):
    """An lxml root element from an ncclient reply, bytes, str or element."""
    if etree.iselement(reply):
        return reply
    if hasattr(reply, "xml"):
        reply = reply.xml
    if isinstance(reply, str):
        reply = reply.encode("utf-8")
    return etree.fromstring(reply.strip(), _PARSER)


def to_text(el):
    return etree.tostring(el, pretty_print=True).decode("utf-8", "replace")


def local(tag):
    return etree.QName(tag).localname if isinstance(tag, str) else str(tag)


def rpc_errors(root):
    """Every rpc-error in ``root`` as a dict of its child elements' texts (by local name);
    ``error-info`` maps to the element itself."""
    root = parse(root)
    out = []
    for err in root.iter("{%s}rpc-error" % NC_NS):
        d = {}
        for child in err:
            if not isinstance(child.tag, str):
                continue
            name = local(child.tag)
            d[name] = child if name == "error-info" else (child.text or "").strip()
        out.append(d)
    return out


def error_info(err, name):
    """The text of ``error-info/<name>`` of one error dict (None when absent)."""
    info = err.get("error-info")
    if info is None:
        return None
    for child in info:
        if isinstance(child.tag, str) and local(child.tag) == name:
            return (child.text or "").strip()
    return None


def c14n(el):
    """Canonical bytes of an element (for 'unchanged' comparisons)."""
    return etree.tostring(el, method="c14n")


def xp(el, path):
    """xpath with the nc/ncs/wd prefixes."""
    return el.xpath(path, namespaces=NSMAP)


def leaf(data, path):
    """Text of the single leaf at ``path`` (ncs-prefixed, relative to <data>), None if absent."""
    found = xp(data, path)
    if not found:
        return None
    assert len(found) == 1, "expected at most one node at %s, found %d" % (path, len(found))
    return (found[0].text or "").strip()


def snapshot(data):
    """The python-vm configuration in ``data`` as a plain dict (absent leaves omitted)."""
    snap = {}
    for key, path in (("self-assign-warning", "ncs:python-vm/ncs:sanity-checks/ncs:self-assign-warning"),
                      ("log-file-prefix", "ncs:python-vm/ncs:logging/ncs:log-file-prefix"),
                      ("level", "ncs:python-vm/ncs:logging/ncs:level")):
        v = leaf(data, path)
        if v is not None:
            snap[key] = v
    levels = {}
    for entry in xp(data, "ncs:python-vm/ncs:logging/ncs:vm-levels"):
        node_id = leaf(entry, "ncs:node-id")
        assert node_id is not None, "vm-levels entry without node-id:\n%s" % to_text(entry)
        assert node_id not in levels, "duplicate vm-levels entry %r" % node_id
        levels[node_id] = leaf(entry, "ncs:level")
    if levels:
        snap["vm-levels"] = levels
    return snap


# -- request builders ---------------------------------------------------------------------------

def config(inner):
    """An edit-config/validate <config> element (base namespace, ``nc`` prefix declared so inner
    XML can use ``nc:operation``)."""
    return '<nc:config xmlns:nc="%s">%s</nc:config>' % (NC_NS, inner)


def pvm(inner="", op=None):
    """<python-vm> for an edit (``nc`` prefix declared for nc:operation)."""
    return '<python-vm xmlns="%s" xmlns:nc="%s"%s>%s</python-vm>' % (NCS_NS, NC_NS, _op(op), inner)


def fpvm(inner=""):
    """<python-vm> for a subtree filter."""
    return '<python-vm xmlns="%s">%s</python-vm>' % (NCS_NS, inner)


def logging_(inner="", op=None):
    return "<logging%s>%s</logging>" % (_op(op), inner)


def vm_level(node_id, level=None, op=None):
    lvl = "" if level is None else "<level>%s</level>" % level
    return "<vm-levels%s><node-id>%s</node-id>%s</vm-levels>" % (_op(op), node_id, lvl)


def leaf_xml(name, value, op=None):
    return "<%s%s>%s</%s>" % (name, _op(op), value, name)


def _op(op):
    return "" if op is None else ' nc:operation="%s"' % op


def edit(m, inner, **kwargs):
    """edit-config on running with ``inner`` wrapped in <config>."""
    return m.edit_config(target="running", config=config(inner), **kwargs)


def get_config(m, filter=None, with_defaults=None):
    """get-config of running; ``filter`` is a subtree filter's inner XML (string)."""
    f = ("subtree", filter) if filter is not None else None
    return m.get_config(source="running", filter=f, with_defaults=with_defaults)


def hello_xml(*caps):
    body = "".join("<capability>%s</capability>" % c for c in caps)
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<hello xmlns="%s"><capabilities>%s</capabilities></hello>' % (NC_NS, body)).encode()


def rpc_xml(body, message_id="1", attrs=""):
    mid = "" if message_id is None else ' message-id="%s"' % message_id
    return ('<rpc%s xmlns="%s"%s>%s</rpc>' % (mid, NC_NS, attrs, body)).encode()


GET_CONFIG_BODY = "<get-config><source><running/></source></get-config>"


def parse_capability(uri):
    """(base, {param: value}) of a capability URI."""
    base, _, query = uri.partition("?")
    return base, dict(urllib.parse.parse_qsl(query, keep_blank_values=True))


# --------------------------------------------------------------------------------------------
# Raw NETCONF over paramiko
# --------------------------------------------------------------------------------------------

class ChannelClosed(EOFError):
    pass


@contextmanager
def watchdog(transport, timeout):
    """Close ``transport`` if the block takes longer than ``timeout`` (paramiko's channel
    requests wait without a timeout); the blocked call then fails instead of hanging."""
    fired = threading.Event()

    def fire():
        fired.set()
        transport.close()

    t = threading.Timer(timeout, fire)
    t.daemon = True
    t.start()
    try:
        yield fired
    finally:
        t.cancel()


class RawSession:
    """A NETCONF session over a bare paramiko channel, for framing-level tests.

    After :meth:`hello`, :meth:`send_msg` frames according to the negotiated framing (EOM for
    base:1.0, chunked when both sides said base:1.1) and :meth:`read_msg` returns the next message's
    bytes.  :meth:`send` writes raw bytes, for tests that build frames themselves.
    """

    def __init__(self, port=None, username="admin", password="admin", timeout=CONNECT_TIMEOUT,
                 subsystem="netconf", transport=None):
        """Connect and authenticate to ``port``, or use an existing, authenticated paramiko
        ``transport``; then open a channel for ``subsystem`` (None: no channel at all)."""
        self.timeout = timeout
        self.chunked = False
        self.buf = b""
        self.server_hello = None
        self.session_id = None
        self.sock = None
        try:
            if transport is None:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
                self.transport = paramiko.Transport(self.sock)
                self.transport.start_client(timeout=timeout)
                self.transport.auth_password(username, password)
            else:
                self.transport = transport
            self.chan = None
            if subsystem is not None:
                self.chan = self.transport.open_session(timeout=timeout)
                with watchdog(self.transport, timeout):
                    self.chan.invoke_subsystem(subsystem)
        except BaseException:
            self.close()
            raise

    def close(self):
        for thing in (getattr(self, "transport", None), self.sock):
            try:
                if thing is not None:
                    thing.close()
            except Exception:
                pass

    # -- bytes ---------------------------------------------------------------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.chan.sendall(data)

    def _recv(self, deadline, what):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete %s within the timeout; buffered %d bytes: %r"
                               % (what, len(self.buf), self.buf[:300]))
        self.chan.settimeout(remaining)
        try:
            data = self.chan.recv(65536)
        except socket.timeout:
            raise TimeoutError("no complete %s within the timeout; buffered %d bytes: %r"
                               % (what, len(self.buf), self.buf[:300]))
        except (OSError, EOFError, paramiko.SSHException) as e:
            raise ChannelClosed("channel failed while waiting for %s: %r" % (what, e))
        if not data:
            raise ChannelClosed("channel closed while waiting for %s; buffered %d bytes: %r"
                                % (what, len(self.buf), self.buf[:300]))
        self.buf += data

    def read_eom(self, timeout=RPC_TIMEOUT):
        deadline = time.monotonic() + timeout
        while EOM not in self.buf:
            self._recv(deadline, "]]>]]>-framed message")
        msg, _, self.buf = self.buf.partition(EOM)
        return msg.strip()

    def read_chunked(self, timeout=RPC_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            parsed = self._parse_chunked()
            if parsed is not None:
                msg, used = parsed
                self.buf = self.buf[used:]
                return msg.strip()
            self._recv(deadline, "chunked message")

    def _parse_chunked(self):
        buf, i, parts = self.buf, 0, []
        while True:
            if len(buf) - i < 4:
                return None
            if buf[i:i + 2] != b"\n#":
                raise AssertionError("server sent a bad chunked frame at byte %d: %r"
                                     % (i, buf[i:i + 40]))
            if buf[i + 2:i + 4] == b"#\n":
                if not parts:
                    raise AssertionError("server sent an end-of-chunks marker with no chunk")
                return b"".join(parts), i + 4
            nl = buf.find(b"\n", i + 2)
            if nl == -1:
                if len(buf) - i > 14:
                    raise AssertionError("server sent a bad chunk header: %r" % buf[i:i + 20])
                return None
            size_text = buf[i + 2:nl]
            if not re.fullmatch(rb"[1-9][0-9]{0,9}", size_text):
                raise AssertionError("server sent a bad chunk size: %r" % size_text)
            size = int(size_text)
            start = nl + 1
            if len(buf) < start + size:
                return None
            parts.append(buf[start:start + size])
            i = start + size

    def read_msg(self, timeout=RPC_TIMEOUT):
        return self.read_chunked(timeout) if self.chunked else self.read_eom(timeout)

    def read_reply(self, timeout=RPC_TIMEOUT):
        return parse(self.read_msg(timeout))

    def wait_closed(self, timeout=RPC_TIMEOUT):
        """Read (and discard) until the server closes the channel.  True if it closed within
        ``timeout``, False otherwise.  Whatever arrived is kept in ``self.buf``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._recv(deadline, "end of channel")
            except ChannelClosed:
                return True
            except TimeoutError:
                return False

    # -- NETCONF -------------------------------------------------------------------------------

    def frame(self, msg):
        if isinstance(msg, str):
            msg = msg.encode()
        if self.chunked:
            return b"\n#%d\n%s\n##\n" % (len(msg), msg)
        return msg + EOM

    def send_msg(self, msg):
        self.send(self.frame(msg))

    def read_server_hello(self, timeout=RPC_TIMEOUT):
        root = parse(self.read_eom(timeout))
        assert root.tag == "{%s}hello" % NC_NS, "expected a server <hello>, got %s" % root.tag
        self.server_hello = root
        sid = root.find("{%s}session-id" % NC_NS)
        self.session_id = None if sid is None else sid.text.strip()
        return root

    def server_capabilities(self):
        return [(c.text or "").strip() for c in
                self.server_hello.iterfind("{%s}capabilities/{%s}capability" % (NC_NS, NC_NS))]

    def hello(self, base11=False, send=True):
        """Read the server's hello and send ours (base:1.0 only, or base:1.0 + base:1.1).
        Chunked framing starts when both sides advertise base:1.1."""
        self.read_server_hello()
        caps = (BASE_10, BASE_11) if base11 else (BASE_10,)
        if send:
            self.send(hello_xml(*caps) + EOM)
        self.chunked = base11 and BASE_11 in self.server_capabilities()
        return self

    def rpc(self, body, message_id="1", attrs=""):
        self.send_msg(rpc_xml(body, message_id, attrs))
        return self.read_reply()


def remote_host_key(port, key_types=None, timeout=CONNECT_TIMEOUT):
    """(key type, fingerprint hex) of the server's host key, as paramiko negotiates it
    (optionally restricted to ``key_types``)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    t = paramiko.Transport(sock)
    try:
        if key_types is not None:
            t.get_security_options().key_types = list(key_types)
        t.start_client(timeout=timeout)
        key = t.get_remote_server_key()
        return key.get_name(), key.get_fingerprint().hex()
    finally:
        t.close()
        sock.close()


def wait_until(predicate, timeout, interval=0.1):
    """Poll ``predicate`` until true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)
