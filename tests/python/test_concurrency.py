"""Several sessions at once: edits are serialised into whole transactions, so concurrent writers
all succeed and a reader never sees half a commit."""

import threading

from pyvmd_harness import leaf_xml, logging_, pvm, snapshot, vm_level
from nc_common import DatastoreTestCase, edit_ds, error_tags

LEVELS = ("level-debug", "level-info", "level-warning", "level-error")
ENTRIES = 40


class TestConcurrency(DatastoreTestCase):

    def test_concurrent_writers_and_a_consistent_reader(self):
        """Writers replace all entries with one level per transaction; a reader must always see
        all entries with the same level (never a mix of two transactions)."""
        writers = [self.connect() for _ in range(4)]
        reader = self.connect()
        errors = []
        stop = threading.Event()

        def write(m, n):
            try:
                for i in range(15):
                    level = LEVELS[(n + i) % len(LEVELS)]
                    body = "".join(vm_level("e%02d" % k, level) for k in range(ENTRIES))
                    reply = edit_ds(m, "running", pvm(logging_(body, op="replace")))
                    if error_tags(reply):
                        errors.append(("write", str(reply)))
            except Exception as e:  # reported below
                errors.append(("write", repr(e)))

        def read():
            try:
                while not stop.is_set():
                    snap = snapshot(self.assertData(reader.get_config(source="running")))
                    levels = set(snap.get("vm-levels", {}).values())
                    count = len(snap.get("vm-levels", {}))
                    if count not in (0, ENTRIES) or len(levels) > 1:
                        errors.append(("torn read", snap))
            except Exception as e:
                errors.append(("read", repr(e)))

        threads = [threading.Thread(target=write, args=(m, n)) for n, m in enumerate(writers)]
        r = threading.Thread(target=read)
        r.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        stop.set()
        r.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(self.read()["vm-levels"]), ENTRIES)

    def test_many_sessions_edit_their_own_entries(self):
        sessions = [self.connect() for _ in range(10)]
        errors = []

        def work(m, n):
            try:
                for i in range(5):
                    reply = edit_ds(m, "running", pvm(logging_(vm_level("s%02d" % n, LEVELS[i % 4]))))
                    if error_tags(reply):
                        errors.append(str(reply))
            except Exception as e:
                errors.append(repr(e))

        threads = [threading.Thread(target=work, args=(m, n)) for n, m in enumerate(sessions)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        levels = self.read()["vm-levels"]
        self.assertEqual(levels, {"s%02d" % n: LEVELS[4 % 4] for n in range(10)})

    def test_candidate_edits_from_several_sessions_commit_together(self):
        a, b = self.connect(), self.connect()
        self.assertOk(edit_ds(a, "candidate", pvm(logging_(vm_level("from-a", "level-debug")))))
        self.assertOk(edit_ds(b, "candidate", pvm(logging_(leaf_xml("level", "level-off")))))
        self.assertOk(b.commit())
        self.assertEqual(self.read(), {"level": "level-off", "vm-levels": {"from-a": "level-debug"}})
