"""Global locks (RFC 6241 §7.5, §7.6) on running, candidate and startup, across sessions:
lock-denied with the holder's session-id, edits and commits refused to other sessions, and the
release of a lock when its session closes, drops or is killed."""

from pyvmd_harness import wait_until
from nc_common import (
    DatastoreTestCase, commit_rpc, edit_ds, error_tags, level_edit, lock_rpc, session_id_info,
    unlock_rpc,
)

DATASTORES = ("running", "candidate", "startup")


class TestLocks(DatastoreTestCase):

    def test_lock_unlock_every_datastore(self):
        for ds in DATASTORES:
            self.assertOk(lock_rpc(self.m, ds), "lock %s" % ds)
            self.assertOk(unlock_rpc(self.m, ds), "unlock %s" % ds)

    def test_ncclient_locked_context_manager(self):
        with self.m.locked("running"):
            self.assertOk(edit_ds(self.m, "running", level_edit("level-debug")))
        self.assertEqual(self.level("running"), "level-debug")

    def test_lock_denied_names_the_holder(self):
        other = self.connect()
        for ds in DATASTORES:
            self.assertOk(lock_rpc(self.m, ds))
            reply = lock_rpc(other, ds)
            self.assertRpcError(reply, tag="lock-denied", type="protocol")
            self.assertEqual(session_id_info(reply), [str(self.m.session_id)], ds)
            self.assertOk(unlock_rpc(self.m, ds))

    def test_second_lock_by_holder_denied(self):
        self.assertOk(lock_rpc(self.m, "running"))
        self.assertRpcError(lock_rpc(self.m, "running"), tag="lock-denied")
        self.assertOk(unlock_rpc(self.m, "running"))

    def test_unlock_not_held_fails(self):
        other = self.connect()
        self.assertRpcError(unlock_rpc(self.m, "running"), tag="operation-failed")
        self.assertOk(lock_rpc(other, "running"))
        self.assertRpcError(unlock_rpc(self.m, "running"), tag="operation-failed")

    def test_lock_on_modified_candidate_refused(self):
        other = self.connect()
        self.assertOk(edit_ds(other, "candidate", level_edit("level-debug")))
        reply = lock_rpc(self.m, "candidate")
        self.assertRpcError(reply, tag="lock-denied")
        self.assertEqual(session_id_info(reply), ["0"])
        self.assertRpcError(lock_rpc(other, "candidate"), tag="lock-denied")

    def test_edits_of_other_sessions_respect_running_lock(self):
        other = self.connect()
        self.assertOk(lock_rpc(self.m, "running"))
        reply = edit_ds(other, "running", level_edit("level-debug"))
        self.assertRpcError(reply, tag="in-use")
        self.assertEqual(session_id_info(reply), [str(self.m.session_id)])
        self.assertOk(edit_ds(self.m, "running", level_edit("level-error")), "holder edits")
        # A commit changes running too.
        self.assertOk(edit_ds(other, "candidate", level_edit("level-off")))
        self.assertIn("in-use", error_tags(commit_rpc(other)))
        self.assertIn("in-use", error_tags(other.copy_config(source="candidate", target="running")))
        self.assertEqual(self.level("running"), "level-error")
        self.assertOk(unlock_rpc(self.m, "running"))
        self.assertOk(commit_rpc(other))
        self.assertEqual(self.level("running"), "level-off")

    def test_candidate_lock_blocks_other_edits_commit_and_discard(self):
        other = self.connect()
        self.assertOk(lock_rpc(self.m, "candidate"))
        self.assertIn("in-use", error_tags(edit_ds(other, "candidate", level_edit("level-debug"))))
        self.assertIn("in-use", error_tags(commit_rpc(other)))
        self.assertIn("in-use", error_tags(other.discard_changes()))
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-debug")))
        self.assertOk(commit_rpc(self.m))
        self.assertOk(unlock_rpc(self.m, "candidate"))

    def test_startup_lock_blocks_copy(self):
        other = self.connect()
        self.assertOk(lock_rpc(self.m, "startup"))
        self.assertIn("in-use", error_tags(other.copy_config(source="running", target="startup")))
        self.assertIn("in-use", error_tags(other.delete_config(target="startup")))
        self.assertOk(unlock_rpc(self.m, "startup"))

    def test_kill_session_releases_lock(self):
        other = self.connect()
        self.assertOk(lock_rpc(other, "running"))
        self.assertOk(lock_rpc(other, "candidate"))
        self.assertRpcError(lock_rpc(self.m, "running"), tag="lock-denied")
        self.assertOk(self.m.kill_session(other.session_id))
        # Released before the kill-session reply.
        self.assertOk(lock_rpc(self.m, "running"), "lock after kill-session")
        self.assertOk(lock_rpc(self.m, "candidate"))
        self.assertOk(unlock_rpc(self.m, "running"))
        self.assertOk(unlock_rpc(self.m, "candidate"))

    def test_lock_dies_with_dropped_session(self):
        other = self.connect()
        self.assertOk(lock_rpc(other, "running"))
        other._session.close()
        self.assertTrue(wait_until(lambda: not error_tags(lock_rpc(self.m, "running")), 10),
                        "the lock outlived its session")
        self.assertOk(unlock_rpc(self.m, "running"))

    def test_lock_dies_with_closed_session(self):
        other = self.connect()
        self.assertOk(lock_rpc(other, "startup"))
        other.close_session()
        self.assertTrue(wait_until(lambda: not error_tags(lock_rpc(self.m, "startup")), 10))
        self.assertOk(unlock_rpc(self.m, "startup"))

    def test_lock_unknown_datastore(self):
        self.assertRpcError(
            self.m.dispatch(__import__("ncclient.xml_").xml_.to_ele(
                '<lock xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
                '<target><nowhere/></target></lock>')),
            tag="invalid-value")
