"""End-to-end tests of the Python VM runtime (packages, VMs, status, start/stop, logs).

Each test class writes NSO-style packages into the server's temporary packages directory before
the server starts, then drives the server over NETCONF with ncclient, as a user would.
"""

import os
import signal
import subprocess
import textwrap
import time
import unittest

from ncclient.xml_ import to_ele

from pyvmd_harness import NCS_NS, PyvmdServer, close_quietly, local, parse

PKG_NS = "http://tail-f.com/ns/ncs-packages"
NSMAP = {"ncs": NCS_NS}
WAIT = 30


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text).lstrip())


def package(root, name, components=(), vm_name=None, requires=(), version="1.0", dirname=None):
    """Writes packages/<dirname>/package-meta-data.xml; components are (name, class-name)."""
    comps = "".join(
        "<component><name>%s</name><application><python-class-name>%s</python-class-name>"
        "</application></component>" % c for c in components)
    reqs = "".join("<required-package><name>%s</name></required-package>" % r for r in requires)
    vm = "<vm-name>%s</vm-name>" % vm_name if vm_name else ""
    write(os.path.join(root, dirname or name, "package-meta-data.xml"), """
        <ncs-package xmlns="%s">
          <name>%s</name>
          <package-version>%s</package-version>
          <python-package>%s</python-package>
          %s%s
        </ncs-package>
        """ % (PKG_NS, name, version, vm, reqs, comps))


APP_GOOD = '''
    import os
    import threading

    import ncs
    from ncs.application import Application, Service
    from ncs.dp import Action


    class Svc(Service):
        @Service.create
        def cb_create(self, tctx, root, service, proplist):
            pass


    class Act(Action):
        @Action.action
        def cb_action(self, uinfo, name, kp, input, output, trans):
            pass


    class Main(Application):
        def setup(self):
            self.log.info("Main RUNNING")
            self.register_service("good-servicepoint", Svc)
            self.register_action("good-action", Act)
            self.stop_event = threading.Event()
            self.worker = threading.Thread(target=self.tick, name="Ticker")
            self.add_running_thread("Ticker")
            self.worker.start()

        def tick(self):
            n = 0
            while not self.stop_event.wait(0.2):
                n += 1
                self.log.debug("tick ", n)
                self.log.info("info tick ", n)

        def teardown(self):
            self.stop_event.set()
            self.worker.join()
            self.del_running_thread("Ticker")
            self.log.info("Main FINISHED")
'''

APP_BAD = '''
    from ncs.application import Application


    class Main(Application):
        def setup(self):
            raise ValueError("bad setup")

        def teardown(self):
            self.log.info("bad teardown ran")
'''


def vm_pids(vm_name):
    """Pids of `pyvmd vm` processes running the VM `vm_name` (found by their environment) of
    the servers this test process started: another pyvmd on the machine may run a VM of the
    same name."""
    pids = []
    needle = ("PYVMD_VM_NAME=%s" % vm_name).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env and _parent(_parent(int(entry))) == os.getpid():
            pids.append(int(entry))
    return pids


def _parent(pid):
    """The parent pid of `pid` (None if it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError, TypeError):
        return None


class RuntimeTestCase(unittest.TestCase):
    """One server per class, with packages written before it starts."""

    server_args = ()

    @classmethod
    def write_packages(cls, root, tmp):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        cls.server = PyvmdServer(extra_args=cls.server_args, name=cls.__name__)
        cls.write_packages(cls.server.packages_dir, cls.server.tmp)
        cls.server.start()
        cls.m = cls.server.connect()

    @classmethod
    def tearDownClass(cls):
        close_quietly(cls.m)
        cls.server.cleanup()

    def get(self, subtree):
        reply = self.m.get(filter=("subtree", subtree))
        return parse(reply.xml)

    def vm_log(self, vm):
        path = os.path.join(self.server.log_dir, "ncs-python-vm-%s.log" % vm)
        try:
            with open(path) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_for(self, what, predicate, timeout=WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.2)
        self.fail("timed out waiting for %s" % what)

    def wait_registered(self, *entries):
        """Waits until every entry (``"<point> (<kind>)"``) shows in some VM's
        ``/python-vm/status/current``: the VMs registered those points."""
        def registered():
            status = self.m.get(filter=("subtree", '<python-vm xmlns="%s"/>' % NCS_NS)).xml
            return all(entry in status for entry in entries)
        RuntimeTestCase.wait_for(self, "the registration of %s" % ", ".join(entries),
                                 registered)

    def start_status(self, vm):
        """{(package, component): (status, error-info)} of /python-vm/status/start[vm]."""
        doc = self.get('<python-vm xmlns="%s"><status><start><node-id>%s</node-id></start>'
                       '</status></python-vm>' % (NCS_NS, vm))
        out = {}
        for p in doc.iterfind(".//ncs:start/ncs:packages", NSMAP):
            for c in p.iterfind("ncs:components", NSMAP):
                out[(p.findtext("ncs:package-name", namespaces=NSMAP),
                     c.findtext("ncs:component-name", namespaces=NSMAP))] = (
                    c.findtext("ncs:status", namespaces=NSMAP),
                    c.findtext("ncs:error-info", namespaces=NSMAP))
        return out

    def current(self, vm):
        """{class-name: status} of /python-vm/status/current[vm]."""
        doc = self.get('<python-vm xmlns="%s"><status><current><node-id>%s</node-id></current>'
                       '</status></python-vm>' % (NCS_NS, vm))
        return {c.findtext("ncs:class-name", namespaces=NSMAP): c.findtext("ncs:status", namespaces=NSMAP)
                for c in doc.iterfind(".//ncs:class-names", NSMAP)}

    def alarms(self):
        """{package name: (is-cleared, last-alarm-text)} of package-load-failure alarms."""
        doc = self.get('<alarms xmlns="http://tail-f.com/ns/ncs-alarms"><alarm-list/></alarms>')
        ns = {"al": "http://tail-f.com/ns/ncs-alarms"}
        out = {}
        for a in doc.iterfind(".//al:alarm", ns):
            if a.findtext("al:type", namespaces=ns).split(":")[-1] != "package-load-failure":
                continue
            package = a.findtext("al:managed-object", namespaces=ns).split("'")[1]
            out[package] = (a.findtext("al:is-cleared", namespaces=ns) == "true",
                            a.findtext("al:last-alarm-text", namespaces=ns))
        return out

    def action(self, name, vm, tailf=False):
        if tailf:
            xml = ('<action xmlns="http://tail-f.com/ns/netconf/actions/1.0"><data>'
                   '<python-vm xmlns="%s"><%s><name>%s</name></%s></python-vm></data></action>'
                   % (NCS_NS, name, vm, name))
        else:
            xml = ('<action xmlns="urn:ietf:params:xml:ns:yang:1"><python-vm xmlns="%s">'
                   '<%s><name>%s</name></%s></python-vm></action>' % (NCS_NS, name, vm, name))
        return self.m.dispatch(to_ele(xml))


class TestPackagesAndStatus(RuntimeTestCase):
    @classmethod
    def write_packages(cls, root, tmp):
        package(root, "app-good", [("main", "app_good.main.Main")])
        write(os.path.join(root, "app-good/python/app_good/__init__.py"), "")
        write(os.path.join(root, "app-good/python/app_good/main.py"), APP_GOOD)
        package(root, "app-bad", [("main", "app_bad.main.Main")], dirname="app bad (spaces)")
        write(os.path.join(root, "app bad (spaces)/python/app_bad/__init__.py"), "")
        write(os.path.join(root, "app bad (spaces)/python/app_bad/main.py"), APP_BAD)
        package(root, "app-needs-missing", [("main", "x.Main")], requires=["nonexistent"])
        # Two packages in one VM; the second uses a library package from its requirements.
        package(root, "shared-one", [("main", "shared_one.Main")], vm_name="shared")
        write(os.path.join(root, "shared-one/python/shared_one/__init__.py"), """
            from ncs.application import Application
            class Main(Application):
                def setup(self):
                    self.log.info("shared-one pid ", __import__("os").getpid())
            """)
        package(root, "shared-two", [("main", "shared_two.Main")], vm_name="shared",
                requires=["lib-util"])
        write(os.path.join(root, "shared-two/python/shared_two/__init__.py"), """
            import lib_util
            from ncs.application import Application
            class Main(Application):
                def setup(self):
                    self.log.info("shared-two pid ", __import__("os").getpid())
                    self.log.info("lib value ", lib_util.VALUE)
            """)
        package(root, "lib-util", [("lib", "")])
        write(os.path.join(root, "lib-util/python/lib_util/__init__.py"), "VALUE = 42\n")
        # A package whose Python dependencies live in a virtualenv.
        venv = os.path.join(tmp, "venv")
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", venv], check=True)
        site = subprocess.run(
            [os.path.join(venv, "bin", "python"), "-c",
             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True).stdout.strip()
        write(os.path.join(site, "venvmod.py"), "VALUE = 'from the venv'\n")
        package(root, "app-venv", [("main", "app_venv.Main")])
        write(os.path.join(root, "app-venv/python/use_venv"), venv + "\n")
        write(os.path.join(root, "app-venv/python/app_venv/__init__.py"), """
            import venvmod
            from ncs.application import Application
            class Main(Application):
                def setup(self):
                    self.log.info("venv value ", venvmod.VALUE)
            """)

    def test_status_start(self):
        good = self.wait_for("app-good started", lambda: self.start_status("app-good"))
        self.assertEqual(good[("app-good", "main")], ("started", None))
        bad = self.wait_for("app-bad reported", lambda: self.start_status("app-bad"))
        status, info = bad[("app-bad", "main")]
        self.assertEqual(status, "failed")
        self.assertIn("bad setup", info)
        shared = self.wait_for("shared VM", lambda: len(self.start_status("shared")) == 2 and
                               self.start_status("shared"))
        self.assertEqual(shared[("shared-one", "main")][0], "started")
        self.assertEqual(shared[("shared-two", "main")][0], "started")

    def test_status_current(self):
        current = self.wait_for("current entries", lambda: len(self.current("app-good")) >= 4 and
                                self.current("app-good"))
        for name in ("ComponentThread:main", "Ticker", "good-servicepoint (service)",
                     "good-action (action)"):
            self.assertEqual(current.get(name), "running", current)

    def test_packages_oper_status(self):
        doc = self.get('<packages xmlns="%s"/>' % NCS_NS)
        names = [p.findtext("ncs:name", namespaces=NSMAP)
                 for p in doc.iterfind(".//ncs:package", NSMAP)]
        for name in ("app-good", "app-bad", "app-needs-missing", "shared-one", "lib-util"):
            self.assertIn(name, names)
        missing = doc.find(".//ncs:package[ncs:name='app-needs-missing']/ncs:oper-status", NSMAP)
        self.assertIsNotNone(missing)
        self.assertIsNotNone(missing.find("ncs:missing-dependency", NSMAP))
        self.assertEqual(self.start_status("app-needs-missing"), {})
        # A component that failed to import puts its package out of order, with the reason.
        self.wait_for("app-bad's component to fail",
                      lambda: self.oper_status("app-bad")[0] != "up")
        status, info = self.oper_status("app-bad")
        self.assertEqual(status, "program-code-error")
        self.assertIn("failed", info)

    def oper_status(self, package):
        """(status, error-info) of /ncs:packages/package[name]."""
        doc = self.get('<packages xmlns="%s"><package><name>%s</name></package></packages>'
                       % (NCS_NS, package))
        status = doc.find(".//ncs:package/ncs:oper-status", NSMAP)
        kinds = [local(c.tag) for c in status if local(c.tag) != "error-info"] \
            if status is not None else []
        return (kinds[0] if kinds else None,
                doc.findtext(".//ncs:package/ncs:oper-status/ncs:error-info", namespaces=NSMAP))

    def test_package_load_failure_alarms(self):
        alarms = self.wait_for("alarms", lambda: "app-bad" in self.alarms() and self.alarms())
        cleared, text = alarms["app-bad"]
        self.assertFalse(cleared)
        self.assertIn("bad setup", text)
        cleared, text = alarms["app-needs-missing"]
        self.assertFalse(cleared)
        self.assertIn("missing-dependency", text)
        self.assertNotIn("app-good", alarms)

    def test_shared_vm_is_one_process_with_required_paths(self):
        log = self.wait_for("shared log", lambda: "lib value 42" in self.vm_log("shared") and
                            self.vm_log("shared"))
        pids = {line.rsplit(" ", 1)[-1] for line in log.splitlines() if " pid " in line}
        self.assertEqual(len(pids), 1, log)
        [pid] = vm_pids("shared")
        # ps shows which VM a process is.
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            self.assertEqual(f.read().split(b"\0")[-3:-1], [b"vm", b"shared"])
        self.assertEqual(self.vm_log("shared-one"), "")

    def test_use_venv(self):
        self.wait_for("venv import", lambda: "venv value from the venv" in self.vm_log("app-venv"))

    def test_log_line_format(self):
        log = self.wait_for("good log", lambda: "Main RUNNING" in self.vm_log("app-good") and
                            self.vm_log("app-good"))
        line = next(l for l in log.splitlines() if "Main RUNNING" in l)
        self.assertRegex(line, r"^<INFO> \d\d-[A-Z][a-z]{2}-\d{4}::\d\d:\d\d:\d\d\.\d{3} app-good "
                               r"ComponentThread:main: - Main RUNNING$")

    def test_unknown_name_is_an_error(self):
        reply = self.action("stop", "no-such-vm")
        self.assertFalse(reply.ok)
        self.assertEqual(reply.error.tag, "invalid-value")


class TestLifecycle(RuntimeTestCase):
    @classmethod
    def write_packages(cls, root, tmp):
        package(root, "app-good", [("main", "app_good.main.Main")])
        write(os.path.join(root, "app-good/python/app_good/__init__.py"), "")
        write(os.path.join(root, "app-good/python/app_good/main.py"), APP_GOOD)

    def setUp(self):
        self.wait_for("app-good running",
                      lambda: self.current("app-good").get("ComponentThread:main") == "running")

    def test_log_level_change_reaches_the_running_vm(self):
        self.wait_for("info ticks", lambda: "info tick" in self.vm_log("app-good"))
        self.assertNotIn("<DEBUG>", self.vm_log("app-good"))
        self.m.edit_config(target="running", config=(
            '<config><python-vm xmlns="%s"><logging><level>level-debug</level></logging>'
            '</python-vm></config>' % NCS_NS))
        try:
            self.wait_for("debug ticks", lambda: "<DEBUG>" in self.vm_log("app-good"))
        finally:
            self.m.edit_config(target="running", config=(
                '<config xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0"><python-vm xmlns="%s">'
                '<logging><level nc:operation="remove"/></logging></python-vm></config>' % NCS_NS))

    def test_stop_and_start_in_both_action_forms(self):
        for tailf in (False, True):
            reply = self.action("stop", "app-good", tailf=tailf)
            self.assertTrue(reply.ok, reply.xml)
            self.assertIn("result", reply.xml)
            if tailf:
                self.assertIn("<data>", reply.xml.replace("nc:", ""))
            self.assertEqual(vm_pids("app-good"), [])
            self.assertIn("Main FINISHED", self.vm_log("app-good"))
            self.assertEqual(self.current("app-good"), {})
            self.assertEqual(TestPackagesAndStatus.oper_status(self, "app-good")[0],
                             "python-uninitialized")
            reply = self.action("start", "app-good", tailf=tailf)
            self.assertTrue(reply.ok, reply.xml)
            self.wait_for("restarted", lambda: self.current("app-good").get("ComponentThread:main"))
            self.assertEqual(TestPackagesAndStatus.oper_status(self, "app-good")[0], "up")

    def test_reload_starts_new_and_restarts_changed_packages(self):
        root = self.server.packages_dir
        package(root, "app-new", [("main", "app_new.Main")])
        write(os.path.join(root, "app-new/python/app_new/__init__.py"), """
            from ncs.application import Application
            class Main(Application):
                def setup(self):
                    self.log.info("new package RUNNING")
            """)
        reload = to_ele('<action xmlns="urn:ietf:params:xml:ns:yang:1"><packages xmlns="%s">'
                        '<reload/></packages></action>' % NCS_NS)
        before = self.wait_for("vm pid", lambda: vm_pids("app-good"))
        reply = self.m.dispatch(reload)
        self.assertTrue(reply.ok, reply.xml)
        self.assertIn("app-new", reply.xml)
        self.wait_for("new VM", lambda: "new package RUNNING" in self.vm_log("app-new"))
        self.assertEqual(vm_pids("app-good"), before, "an unchanged VM must keep running")
        # Changing a package's code restarts its VM.
        path = os.path.join(root, "app-good/python/app_good/main.py")
        with open(path, "a") as f:
            f.write("\n# changed\n")
        reply = self.m.dispatch(reload)
        self.assertTrue(reply.ok, reply.xml)
        self.wait_for("restarted VM", lambda: vm_pids("app-good") and vm_pids("app-good") != before)

    def test_killed_vm_is_restarted(self):
        pids = self.wait_for("vm pid", lambda: vm_pids("app-good"))
        os.kill(pids[0], signal.SIGKILL)
        new = self.wait_for("new vm", lambda: [p for p in vm_pids("app-good") if p not in pids])
        self.assertNotIn(pids[0], new)
        self.wait_for("running again",
                      lambda: self.current("app-good").get("ComponentThread:main") == "running")
        # The crash raised package-load-failure; the restart cleared it.
        cleared, text = self.wait_for("cleared alarm",
                                      lambda: self.alarms().get("app-good", (False,))[0] and
                                      self.alarms()["app-good"])
        self.assertEqual(text, "package loaded")

    def test_zz_shutdown_runs_teardown_and_leaves_no_orphans(self):
        pids = self.wait_for("vm pid", lambda: vm_pids("app-good"))
        before = self.vm_log("app-good").count("Main FINISHED")
        close_quietly(self.m)
        self.server.stop()
        self.assertEqual(self.vm_log("app-good").count("Main FINISHED"), before + 1)
        for pid in pids:
            self.assertFalse(os.path.exists("/proc/%d" % pid), "VM %d survived the server" % pid)
        # Even a server killed with SIGKILL takes its VMs with it.
        self.server.start()
        type(self).m = self.server.connect()
        pids = self.wait_for("vm pid", lambda: vm_pids("app-good"))
        close_quietly(self.m)
        self.server.kill9()
        self.wait_for("VMs gone", lambda: not any(os.path.exists("/proc/%d" % p) for p in pids))
        self.server.start()
        type(self).m = self.server.connect()


class TestTimeouts(RuntimeTestCase):
    """A VM that starts too slowly is failed; one whose interpreter hangs is killed and restarted."""

    server_args = ("--vm-start-timeout", "2", "--vm-heartbeat", "1")

    @classmethod
    def write_packages(cls, root, tmp):
        package(root, "app-slow", [("main", "app_slow.Main")])
        write(os.path.join(root, "app-slow/python/app_slow/__init__.py"), """
            import time
            from ncs.application import Application
            class Main(Application):
                def setup(self):
                    time.sleep(30)
            """)
        cls.trigger = os.path.join(tmp, "hang-now")
        package(root, "app-hang", [("main", "app_hang.Main")])
        write(os.path.join(root, "app-hang/python/app_hang/__init__.py"), """
            import ctypes, os, threading, time
            from ncs.application import Application
            TRIGGER = %r
            def hang_when_triggered():
                while not os.path.exists(TRIGGER):
                    time.sleep(0.1)
                os.unlink(TRIGGER)
                # PyDLL keeps the GIL during the call: the interpreter is stuck.
                ctypes.PyDLL(None).sleep(3600)
            class Main(Application):
                def setup(self):
                    self.log.info("hang app up")
                    threading.Thread(target=hang_when_triggered, daemon=True).start()
            """ % cls.trigger)

    def test_slow_start_is_failed(self):
        status = self.wait_for("slow VM failed", lambda: self.start_status("app-slow"))
        state, info = status[("app-slow", "main")]
        self.assertEqual(state, "failed")
        self.assertIn("did not start within 2 s", info)

    def test_hung_vm_is_killed_and_restarted(self):
        pids = self.wait_for("hang VM", lambda: "hang app up" in self.vm_log("app-hang") and
                             vm_pids("app-hang"))
        with open(self.trigger, "w"):
            pass
        self.wait_for("restart", lambda: vm_pids("app-hang") and vm_pids("app-hang") != pids)
        self.assertIn("stopped answering", self.server.log_tail())


if __name__ == "__main__":
    unittest.main()
