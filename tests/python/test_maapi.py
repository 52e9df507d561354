"""End-to-end tests of the transaction API (ncs.maapi, ncs.maagic, _ncs.cdb) and of upgrade
components, with packages running in real VMs and the results checked over NETCONF.

Package code cannot be called from a test directly, so the packages here run their scenarios in
``setup()`` (or ``upgrade()``) and write what they saw to ``results.json`` beside their package;
the test reads that file and checks the configuration with ncclient.
"""

import json
import os
import unittest

from ncclient.xml_ import to_ele

from pyvmd_harness import NCS_NS, close_quietly, parse
from test_runtime import NSMAP, RuntimeTestCase, package, vm_pids, write


MAAPI_USER = '''
    import json
    import os

    import _ncs
    import ncs
    from ncs.application import Application

    RESULTS = os.path.join(os.path.dirname(__file__), "..", "..", "results.json")


    def errno_of(fn):
        try:
            fn()
        except _ncs.error.Error as e:
            return [e.confd_errno, str(e)]
        return None


    class Main(Application):
        def setup(self):
            out = {}
            with ncs.maapi.single_write_trans("admin", "system") as t:
                root = ncs.maagic.get_root(t)
                dev = root.ncs__devices.device.create("ce0")
                dev.address = "10.0.0.1"
                dev.port = 830
                other = root.ncs__devices.device.create("ce 1")
                other.address = "10.0.0.2"
                group = root.ncs__devices.device_group.create("g1")
                group.device_name = ["ce0", "ce 1"]
                out["before-apply"] = t.exists("/ncs:devices/device{ce0}")
                t.apply()
            with ncs.maapi.single_read_trans("admin", "system") as t:
                root = ncs.maagic.get_root(t)
                out["devices"] = [[d.name, d.address, d.port] for d in root.ncs__devices.device
                                  if d.name.startswith("ce")]
                out["has-ce0"] = "ce0" in root.ncs__devices.device
                out["group"] = list(root.ncs__devices.device_group["g1"].device_name)
                out["default-level"] = root.ncs__python_vm.logging.level
                out["get-elem"] = str(t.get_elem("/ncs:devices/device{\\"ce 1\\"}/address"))
                out["missing"] = errno_of(lambda: t.get_elem("/ncs:devices/device{nope}/address"))
                out["read-only"] = errno_of(
                    lambda: t.set_elem("x", "/ncs:devices/device{ce0}/authgroup"))
                out["bad-path"] = errno_of(lambda: t.get_elem("/ncs:devices/nothing"))
                try:
                    root.ncs__devices.device["nope"]
                    out["key-error"] = False
                except KeyError:
                    out["key-error"] = True
            with ncs.maapi.single_write_trans("admin", "system") as t:
                out["bad-value"] = errno_of(
                    lambda: t.set_elem("not-a-port", "/ncs:devices/device{ce0}/port"))
                # A dangling leafref: apply fails, running keeps what it had.
                t.set_elem(["ce0", "ghost"], "/ncs:devices/device-group{g1}/device-name")
                out["invalid-apply"] = errno_of(t.apply)
            with ncs.maapi.single_read_trans("admin", "system", db=ncs.OPERATIONAL) as t:
                root = ncs.maagic.get_root(t)
                out["oper-status"] = t.exists("/ncs:packages/package{maapi-user}/oper-status/up")
            with open(RESULTS, "w") as f:
                json.dump(out, f)
            self.log.info("maapi scenario done")
'''


MAAPI_MORE = '''
    import json
    import os
    import socket

    import _ncs
    import ncs
    from ncs.application import Application

    RESULTS = os.path.join(os.path.dirname(__file__), "..", "..", "results.json")


    class Main(Application):
        def setup(self):
            out = {}
            # The long form: a Maapi, a user session, a write transaction.
            with ncs.maapi.Maapi() as m:
                with ncs.maapi.Session(m, "admin", "system"):
                    t = m.start_write_trans()
                    root = ncs.maagic.get_root(m)
                    group = root.ncs__devices.device_group.create("more")
                    for name in ("x1", "x2", "x3"):
                        root.ncs__devices.device.create(name).port = 22
                    group.device_name = ["x1"]
                    group.device_name.create("x2")
                    group.device_name.create("x3")
                    group.device_name.remove("x1")
                    out["leaf-list"] = group.device_name.as_list()
                    out["x1-in"] = "x1" in group.device_name
                    del root.ncs__devices.device["x1"]
                    root.ncs__devices.device["x2"].port = None
                    out["x2-port"] = root.ncs__devices.device["x2"].port
                    node = ncs.maagic.get_node(t, "/ncs:devices/device{x3}")
                    out["get-node"] = [node.name, node.port]
                    out["as-pyval"] = ncs.maagic.as_pyval(root.ncs__devices.device["x3"])
                    t.safe_create("/ncs:devices/device{x3}")
                    t.validate()
                    t.apply()
            # CDB reads with a working directory.
            sock = socket.socket()  # as NSO code makes one; nothing is connected for real
            _ncs.cdb.connect(sock, _ncs.cdb.READ_SOCKET, "127.0.0.1", _ncs.PORT)
            _ncs.cdb.start_session(sock, _ncs.cdb.RUNNING)
            _ncs.cdb.cd(sock, "/ncs:devices/device{x3}")
            out["cdb-cwd"] = _ncs.cdb.getcwd(sock)
            out["cdb-relative"] = str(_ncs.cdb.get(sock, "port"))
            out["cdb-count"] = _ncs.cdb.num_instances(
                sock, "/ncs:devices/device-group{more}/device-name")
            out["cdb-exists"] = _ncs.cdb.exists(sock, "/ncs:devices/device{x1}")
            _ncs.cdb.end_session(sock)
            # Operational data: presence containers and empty leaves of /ncs:packages.
            with ncs.maapi.single_read_trans("admin", "system", db=ncs.OPERATIONAL) as t:
                me = ncs.maagic.get_root(t).ncs__packages.package["maapi-more"]
                out["python-package"] = me.python_package.exists()
                out["oper-up"] = me.oper_status.up
            with open(RESULTS, "w") as f:
                json.dump(out, f)
'''


class MaapiTestCase(RuntimeTestCase):
    """Reads what the packages' scenarios wrote, and the configuration they changed."""

    def results(self, name):
        path = os.path.join(self.server.packages_dir, name, "results.json")
        self.wait_for("results of %s" % name, lambda: os.path.exists(path))
        with open(path) as f:
            return json.load(f)

    def devices(self):
        """{device name: (address, port, authgroup)} of running."""
        doc = parse(self.m.get_config(source="running", filter=(
            "subtree", '<devices xmlns="%s"/>' % NCS_NS)).xml)
        return {d.findtext("ncs:name", namespaces=NSMAP): (
                    d.findtext("ncs:address", namespaces=NSMAP),
                    d.findtext("ncs:port", namespaces=NSMAP),
                    d.findtext("ncs:authgroup", namespaces=NSMAP))
                for d in doc.iterfind(".//ncs:device", NSMAP)}

    def package_status(self, name):
        """(oper-status, error-info) of /ncs:packages/package[name]."""
        doc = parse(self.m.get(filter=("subtree", '<packages xmlns="%s"><package><name>%s</name>'
                                       '</package></packages>' % (NCS_NS, name))).xml)
        status = doc.find(".//ncs:oper-status", NSMAP)
        if status is None:
            return None
        kinds = [child.tag.split("}")[1] for child in status if child.tag.split("}")[1] != "error-info"]
        return kinds[0] if kinds else None, status.findtext("ncs:error-info", namespaces=NSMAP)


class TestTransactions(MaapiTestCase):
    @classmethod
    def write_packages(cls, root, tmp):
        package(root, "maapi-user", [("main", "maapi_user.Main")])
        write(os.path.join(root, "maapi-user/python/maapi_user/__init__.py"), MAAPI_USER)
        package(root, "maapi-more", [("main", "maapi_more.Main")])
        write(os.path.join(root, "maapi-more/python/maapi_more/__init__.py"), MAAPI_MORE)

    # The two packages run at the same time: each looks at its own devices (ce*, x*).

    def ce_devices(self):
        return {k: v for k, v in self.devices().items() if k.startswith("ce")}

    def test_writes_are_applied_to_running(self):
        r = self.results("maapi-user")
        self.assertTrue(r["before-apply"])
        self.assertEqual(self.ce_devices(), {"ce0": ("10.0.0.1", "830", None),
                                             "ce 1": ("10.0.0.2", None, None)})

    def test_reads_give_python_values(self):
        r = self.results("maapi-user")
        self.assertEqual(sorted(r["devices"]), [["ce 1", "10.0.0.2", None],
                                                ["ce0", "10.0.0.1", 830]])
        self.assertTrue(r["has-ce0"])
        self.assertEqual(sorted(r["group"]), ["ce 1", "ce0"])
        self.assertEqual(r["default-level"], "level-info")
        self.assertEqual(r["get-elem"], "10.0.0.2")
        self.assertTrue(r["key-error"])
        self.assertTrue(r["oper-status"])

    def test_errors_carry_nso_errno_values(self):
        r = self.results("maapi-user")
        self.assertEqual(r["missing"][0], 1)      # ERR_NOEXISTS
        self.assertEqual(r["read-only"][0], 4)    # ERR_NOT_WRITABLE
        self.assertEqual(r["bad-path"][0], 8)     # ERR_BADPATH
        self.assertEqual(r["bad-value"][0], 5)    # ERR_BADTYPE
        self.assertIsNotNone(r["invalid-apply"])
        self.assertIn("ghost", r["invalid-apply"][1])

    def test_maagic_lists_leaf_lists_and_cdb_paths(self):
        r = self.results("maapi-more")
        self.assertEqual(r["leaf-list"], ["x2", "x3"])
        self.assertFalse(r["x1-in"])
        self.assertIsNone(r["x2-port"])
        self.assertEqual(r["get-node"], ["x3", 22])
        self.assertEqual(r["as-pyval"], {"name": "x3", "port": 22})
        self.assertEqual(r["cdb-cwd"], "/ncs:devices/device{x3}")
        self.assertEqual(r["cdb-relative"], "22")
        self.assertFalse(r["cdb-exists"])
        self.assertTrue(r["python-package"])
        self.assertIs(r["oper-up"], True)
        devices = self.devices()
        self.assertNotIn("x1", devices)
        self.assertEqual(devices["x2"], (None, None, None))
        self.assertEqual(devices["x3"], (None, "22", None))
        self.assertEqual(r["cdb-count"], 2)

    def test_a_failed_apply_changes_nothing(self):
        self.results("maapi-user")
        doc = parse(self.m.get_config(source="running", filter=(
            "subtree", '<devices xmlns="%s"><device-group><name>g1</name></device-group>'
            '</devices>' % NCS_NS)).xml)
        names = sorted(e.text for e in doc.iterfind(".//ncs:device-name", NSMAP))
        self.assertEqual(names, ["ce 1", "ce0"])


UPGRADE = '''
    import json
    import os

    import _ncs
    import ncs

    RESULTS = os.path.join(os.path.dirname(__file__), "..", "..", "results.json")
    MODE = os.path.join(os.path.dirname(__file__), "..", "..", "mode")


    def vm_running(name):
        needle = ("PYVMD_VM_NAME=%s" % name).encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    if needle in f.read().split(b"\\0"):
                        return True
            except OSError:
                pass
        return False


    class Upgrade(ncs.upgrade.Upgrade):
        def upgrade(self, cdbsock, trans):
            with open(MODE) as f:
                mode = f.read().strip()
            self.log.info("upgrade running in mode ", mode)
            _ncs.cdb.start_session2(cdbsock, ncs.cdb.RUNNING,
                                    ncs.cdb.LOCK_SESSION | ncs.cdb.LOCK_WAIT)
            seen = []
            for i in range(_ncs.cdb.num_instances(cdbsock, "/ncs:devices/device")):
                name = str(_ncs.cdb.get(cdbsock, "/ncs:devices/device[%d]/name" % i))
                seen.append(name)
                trans.set_elem("upgraded-" + name, "/ncs:devices/device{%s}/authgroup" % name)
            root = ncs.maagic.get_root(trans)
            root.ncs__devices.device.create("added-by-upgrade")
            _ncs.cdb.end_session(cdbsock)
            with open(RESULTS, "w") as f:
                json.dump({"seen": seen, "mode": mode, "old-vm-running": vm_running("upg")}, f)
            if mode == "raise":
                raise ValueError("boom in upgrade")
            if mode == "hang":
                import time
                time.sleep(3600)
            return mode != "false"
'''

APP = '''
    from ncs.application import Application


    class Main(Application):
        def setup(self):
            self.log.info("upg application started")
'''


def upgrade_package(root, version, mode):
    """The package `upg` at `version` with an application and an upgrade component."""
    write(os.path.join(root, "upg", "package-meta-data.xml"), """
        <ncs-package xmlns="http://tail-f.com/ns/ncs-packages">
          <name>upg</name>
          <package-version>%s</package-version>
          <component><name>main</name>
            <application><python-class-name>upg.app.Main</python-class-name></application>
          </component>
          <component><name>migrate</name>
            <upgrade><python-class-name>upg.upgrade.Upgrade</python-class-name></upgrade>
          </component>
        </ncs-package>
        """ % version)
    write(os.path.join(root, "upg", "python", "upg", "__init__.py"), "")
    write(os.path.join(root, "upg", "python", "upg", "app.py"), APP)
    write(os.path.join(root, "upg", "python", "upg", "upgrade.py"), UPGRADE)
    write(os.path.join(root, "upg", "mode"), mode + "\n")
    results = os.path.join(root, "upg", "results.json")
    if os.path.exists(results):
        os.remove(results)


class TestUpgradeComponents(MaapiTestCase):
    """One server whose package `upg` goes through versions 1.0 → 2.0 → 3.0 (failing) → 3.0
    (fixed, by reload) → 4.0 (hung, killed at the time limit); the steps run in order."""

    server_args = ("--vm-upgrade-timeout", "3")

    @classmethod
    def write_packages(cls, root, tmp):
        upgrade_package(root, "1.0", "true")

    def reconnect(self):
        close_quietly(self.m)
        type(self).m = self.server.connect()

    def restart_with(self, version, mode):
        self.server.stop()
        upgrade_package(self.server.packages_dir, version, mode)
        self.server.start()
        self.reconnect()

    def reload(self):
        reply = self.m.dispatch(to_ele(
            '<action xmlns="urn:ietf:params:xml:ns:yang:1"><packages xmlns="%s"><reload/>'
            '</packages></action>' % NCS_NS))
        self.assertTrue(reply.ok, reply.xml)

    def wait_started(self):
        self.wait_for("upg started", lambda: "upg application started" in self.vm_log("upg"))

    def test_1_first_start_runs_no_upgrade(self):
        self.wait_started()
        self.assertFalse(os.path.exists(os.path.join(self.server.packages_dir, "upg",
                                                     "results.json")))
        self.m.edit_config(target="running", config=(
            '<config><devices xmlns="%s"><device><name>r1</name><address>10.1.0.1</address>'
            '</device><device><name>r2</name></device></devices></config>' % NCS_NS))
        with open(os.path.join(self.server.state_dir, "package-versions.json")) as f:
            self.assertEqual(json.load(f), {"upg": "1.0"})

    def test_2_a_new_version_runs_the_upgrade_before_the_vm_starts(self):
        self.restart_with("2.0", "true")
        r = self.results("upg")
        self.assertEqual(r["seen"], ["r1", "r2"])
        self.assertEqual(self.devices(), {
            "r1": ("10.1.0.1", None, "upgraded-r1"),
            "r2": (None, None, "upgraded-r2"),
            "added-by-upgrade": (None, None, None),
        })
        self.wait_started()
        log = self.vm_log("upg-upgrade")
        self.assertIn("upgrade running in mode true", log)
        self.assertIn("ComponentThread:migrate", log)
        self.assertEqual(vm_pids("upg-upgrade"), [])
        self.assertEqual(self.package_status("upg")[0], "up")
        with open(os.path.join(self.server.state_dir, "package-versions.json")) as f:
            self.assertEqual(json.load(f), {"upg": "2.0"})

    def test_3_a_failed_upgrade_applies_nothing_and_keeps_the_package_down(self):
        before = self.devices()
        self.restart_with("3.0", "raise")
        self.results("upg")
        self.assertEqual(self.devices(), before)
        status, info = self.package_status("upg")
        self.assertEqual(status, "program-code-error")
        self.assertIn("upgrade from 2.0 to 3.0 failed", info)
        self.assertIn("boom in upgrade", info)
        self.assertEqual(vm_pids("upg"), [])
        with open(os.path.join(self.server.state_dir, "package-versions.json")) as f:
            self.assertEqual(json.load(f), {"upg": "2.0"})
        # upgrade() returning False fails too.
        upgrade_package(self.server.packages_dir, "3.0", "false")
        self.reload()
        self.assertIn("returned False", self.package_status("upg")[1])

    def test_4_reload_after_a_fix_runs_the_upgrade_again(self):
        upgrade_package(self.server.packages_dir, "3.0", "true")
        self.reload()
        self.assertEqual(self.results("upg")["mode"], "true")
        self.assertEqual(self.package_status("upg")[0], "up")
        self.wait_for("upg VM", lambda: vm_pids("upg"))
        with open(os.path.join(self.server.state_dir, "package-versions.json")) as f:
            self.assertEqual(json.load(f), {"upg": "3.0"})

    def test_5_a_hung_upgrade_is_killed_at_the_time_limit(self):
        upgrade_package(self.server.packages_dir, "4.0", "hang")
        self.assertTrue(vm_pids("upg"))
        self.reload()
        self.assertFalse(self.results("upg")["old-vm-running"],
                         "the VM of the previous version must be stopped during the upgrade")
        status, info = self.package_status("upg")
        self.assertEqual(status, "program-code-error")
        self.assertIn("did not finish within 3 s", info)
        self.assertEqual(vm_pids("upg-upgrade"), [])
        # The package is down now: the VM of its previous version is stopped.
        self.wait_for("upg VM stopped", lambda: not vm_pids("upg"))
        with open(os.path.join(self.server.state_dir, "package-versions.json")) as f:
            self.assertEqual(json.load(f), {"upg": "3.0"})


if __name__ == "__main__":
    unittest.main()
