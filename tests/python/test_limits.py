"""Runaway packages: a VM that holds too much memory, keeps a CPU core busy, or runs a callback
long past its timeout is killed, alarmed and restarted, while the server, its sessions and the
other VMs go on serving.

The package `hog` (its own VM) misbehaves on request; `calm` (another VM) is the bystander.
"""

import os
import time

from ncclient.xml_ import to_ele

from pyvmd_harness import NCS_NS, parse
from test_runtime import RuntimeTestCase, package, vm_pids, write

HOG = "urn:pyvmd-test:hog"
AL = "http://tail-f.com/ns/ncs-alarms"
NS = {"al": AL, "ncs": NCS_NS}

HOG_YANG = """
module hog {
  yang-version 1.1;
  namespace "urn:pyvmd-test:hog";
  prefix hog;
  import tailf-common { prefix tailf; }

  container hog {
    tailf:action run {
      tailf:actionpoint hog;
      input { leaf what { type string; } }
      output { leaf result { type string; } }
    }
  }
  container calm {
    tailf:action ping {
      tailf:actionpoint calm;
      output { leaf pid { type uint32; } }
    }
  }
}
"""

HOG_PY = """
import os

import _ncs
import ncs
import threading
import time

from ncs.application import Application
from ncs.dp import Action

hoard = []


def spin():
    while True:
        pass


class Hog(Action):
    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        what = input.what
        if what == "pid":
            pass
        elif what == "nul":
            # A NUL in a value or path: an error for the package, nothing for the server.
            results = []
            for value, path in (("a\\0b", "/ncs:python-vm/logging/level"),
                                ("level-info", "/ncs:python-vm/logging\\0/level")):
                try:
                    with ncs.maapi.single_write_trans("admin", "system") as t:
                        t.set_elem(value, path)
                        t.apply()
                    results.append("written")
                except _ncs.error.Error as e:
                    results.append(str(e.confd_errno))
            output.result = " ".join(results)
            return
        elif what == "memory":
            # A leak: a MiB at a time, for as long as it is let.
            while True:
                hoard.append(bytearray(1 << 20))
                time.sleep(0.001)
        elif what == "cpu":
            # A thread that keeps a core busy; the callback itself returns.
            threading.Thread(target=spin, daemon=True).start()
        elif what == "loop":
            # An endless loop in the callback: TimeoutError ends it.
            n = 0
            while True:
                n += 1
        elif what == "stubborn":
            # An endless loop that swallows TimeoutError: only killing the VM ends it.
            while True:
                try:
                    time.sleep(0.05)
                except BaseException:
                    pass
        output.result = str(os.getpid())


class Calm(Action):
    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        output.pid = os.getpid()


class HogMain(Application):
    def setup(self):
        self.register_action("hog", Hog)


class CalmMain(Application):
    def setup(self):
        self.register_action("calm", Calm)
"""


class TestRunawayPackages(RuntimeTestCase):
    # The CPU window is long enough that the endless loop (ended after 2 s) and a VM's own
    # start stay well under 80% of it.
    server_args = ("--vm-max-memory-mib", "300", "--vm-max-cpu-percent", "80",
                   "--vm-cpu-window-secs", "5", "--vm-action-timeout", "2",
                   "--vm-stop-timeout", "3")

    @classmethod
    def write_packages(cls, root, tmp):
        package(root, "hog", [("main", "hog_pkg.HogMain")])
        write(os.path.join(root, "hog", "src", "yang", "hog.yang"), HOG_YANG)
        write(os.path.join(root, "hog", "python", "hog_pkg.py"), HOG_PY)
        package(root, "calm", [("main", "hog_pkg.CalmMain")], requires=["hog"])

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wait_registered(cls, "hog (action)", "calm (action)")

    def hog(self, what):
        return self.m.dispatch(to_ele(
            '<action xmlns="urn:ietf:params:xml:ns:yang:1"><hog xmlns="%s"><run>'
            '<what>%s</what></run></hog></action>' % (HOG, what)))

    def calm_pid(self):
        reply = self.m.dispatch(to_ele(
            '<action xmlns="urn:ietf:params:xml:ns:yang:1"><calm xmlns="%s"><ping/></calm>'
            '</action>' % HOG))
        self.assertTrue(reply.ok, reply.xml)
        return int(parse(reply.xml).findtext(".//{%s}pid" % HOG))

    def hog_pid(self):
        reply = self.hog("pid")
        return int(parse(reply.xml).findtext(".//{%s}result" % HOG)) if reply.ok else None

    def alarm_text(self):
        """The last text of the hog package's package-operation-failure alarm, if any."""
        data = self.get('<alarms xmlns="%s"/>' % AL)
        for alarm in data.iterfind(".//al:alarm", NS):
            if (alarm.findtext("al:type", namespaces=NS).endswith("package-operation-failure")
                    and "'hog'" in alarm.findtext("al:managed-object", namespaces=NS)):
                return alarm.findtext("al:last-alarm-text", namespaces=NS)
        return None

    def assert_killed_and_back(self, before, reason):
        """The hog VM was killed for `reason` (alarmed), came back, and calm never stopped."""
        calm = self.calm_pid()
        text = self.wait_for("the alarm for " + reason,
                             lambda: reason in (self.alarm_text() or "") and self.alarm_text())
        self.assertIn("Python VM hog was killed", text)
        pid = self.wait_for("the hog VM to come back",
                            lambda: (p := self.hog_pid()) and p != before and p)
        self.assertNotEqual(pid, before)
        self.assertEqual(self.calm_pid(), calm, "the bystander VM was restarted")
        self.assertIn("killed", self.vm_log_tail())

    def read_log(self, name):
        with open(os.path.join(self.server.log_dir, name)) as f:
            return f.read()

    def vm_log_tail(self):
        return self.read_log("pyvmd.log")[-20000:]

    def test_a_vm_over_its_memory_limit_is_killed(self):
        before = self.hog_pid()
        reply = self.hog("memory")
        self.assertFalse(reply.ok)
        self.assert_killed_and_back(before, "resident memory")

    def test_a_vm_that_keeps_a_core_busy_is_killed(self):
        before = self.hog_pid()
        self.assertTrue(self.hog("cpu").ok)
        self.assert_killed_and_back(before, "of a CPU core busy")

    def test_an_endless_loop_in_a_callback_is_ended_by_timeout_error(self):
        before = self.hog_pid()
        started = time.monotonic()
        reply = self.hog("loop")
        self.assertFalse(reply.ok)
        self.assertLess(time.monotonic() - started, 30)
        # The loop ended with TimeoutError: the VM is the same and answers at once.
        self.wait_for("the loop to end", lambda: "TimeoutError" in self.read_log(
            "ncs-python-vm-hog.log"))
        self.assertEqual(self.hog_pid(), before)
        self.assertEqual(vm_pids("hog"), [before])

    def test_a_callback_that_swallows_timeout_error_gets_its_vm_killed(self):
        before = self.hog_pid()
        reply = self.hog("stubborn")
        self.assertFalse(reply.ok)
        self.assert_killed_and_back(before, "went on running 3 s after its timeout")
        # The session that asked is still fine.
        self.assertTrue(self.m.get_config(source="running").ok)

    def test_a_nul_character_from_package_code_is_an_error(self):
        reply = self.hog("nul")
        self.assertTrue(reply.ok, reply.xml)
        self.assertEqual(parse(reply.xml).findtext(".//{%s}result" % HOG), "5 5")
