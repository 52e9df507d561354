"""The candidate datastore (RFC 6241 §8.3) and confirmed commits (§8.4, :confirmed-commit:1.1),
driven by ncclient: edits to the shared candidate, commit, discard-changes, validate, and the
rollback of a confirmed commit on timeout, on cancel-commit and when its session goes away."""

import time

from ncclient.xml_ import to_ele

from pyvmd_harness import (
    CAP_CANDIDATE, CAP_VALIDATE_11, config, leaf_xml, logging_, pvm, vm_level, wait_until,
)
from nc_common import (
    CAP_CONFIRMED_COMMIT, DatastoreTestCase, cancel_commit_rpc, commit_rpc, edit_ds, error_tags,
    level_edit, lock_rpc, session_id_info,
)


class TestCandidate(DatastoreTestCase):

    def test_capabilities(self):
        caps = list(self.m.server_capabilities)
        for cap in (CAP_CANDIDATE, CAP_CONFIRMED_COMMIT, CAP_VALIDATE_11):
            self.assertIn(cap, caps)

    def test_edit_candidate_then_commit(self):
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-debug")))
        self.assertEqual(self.level("candidate"), "level-debug")
        self.assertIsNone(self.level("running"), "running changed before commit")
        self.assertOk(self.m.commit())
        self.assertEqual(self.level("running"), "level-debug")
        self.assertEqual(self.level("candidate"), "level-debug")

    def test_candidate_is_shared_between_sessions(self):
        other = self.connect()
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-error")))
        self.assertEqual(self.level("candidate", other), "level-error")
        self.assertOk(other.commit(), "commit from the other session")
        self.assertEqual(self.level("running"), "level-error")

    def test_discard_changes(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-info")))
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-off")))
        self.assertOk(self.m.discard_changes())
        self.assertEqual(self.level("candidate"), "level-info")
        self.assertEqual(self.level("running"), "level-info")

    def test_unmodified_candidate_follows_running(self):
        self.assertOk(edit_ds(self.m, "running", level_edit("level-warning")))
        self.assertEqual(self.level("candidate"), "level-warning")

    def test_invalid_candidate_edit_rejected(self):
        errors = self.assertRpcError(edit_ds(self.m, "candidate", level_edit("bogus")),
                                     tag="invalid-value")
        self.assertTrue(errors)
        self.assertEqual(self.read("candidate"), {})

    def test_candidate_edit_operations(self):
        self.assertOk(edit_ds(self.m, "candidate", pvm(logging_(vm_level("a", "level-debug")))))
        reply = edit_ds(self.m, "candidate", pvm(logging_(vm_level("a", "level-info", op="create"))))
        self.assertRpcError(reply, tag="data-exists")
        self.assertOk(edit_ds(self.m, "candidate", pvm(logging_(vm_level("a", op="delete")))))
        self.assertEqual(self.read("candidate"), {})

    def test_validate_candidate_running_and_inline(self):
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-debug")))
        for source in ("candidate", "running"):
            self.assertOk(self.m.validate(source=source), "validate %s" % source)
        inline = config(pvm(logging_(leaf_xml("level", "bogus"))))
        self.assertRpcError(self.m.validate(source=to_ele(inline)), tag="invalid-value")

    def test_edit_startup_target_rejected(self):
        self.assertRpcError(edit_ds(self.m, "startup", level_edit("level-debug")),
                            tag="invalid-value")

    def test_commit_resets_candidate_for_lock(self):
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-debug")))
        self.assertRpcError(lock_rpc(self.m, "candidate"), tag="lock-denied")
        self.assertOk(self.m.commit())
        self.assertOk(lock_rpc(self.m, "candidate"), "lock after commit")
        self.assertOk(self.m.unlock("candidate"))

    def test_session_death_discards_its_candidate_changes(self):
        other = self.connect()
        self.assertOk(edit_ds(other, "candidate", level_edit("level-error")))
        other.close_session()
        self.assertTrue(wait_until(lambda: self.level("candidate") is None, 10),
                        "the dead session's candidate change was not discarded")

    def test_locked_candidate_discarded_when_holder_dies(self):
        other = self.connect()
        self.assertOk(lock_rpc(other, "candidate"))
        self.assertOk(edit_ds(other, "candidate", level_edit("level-error")))
        self.assertOk(edit_ds(self.m, "running", level_edit("level-info")))
        other._session.close()  # the transport goes away without close-session
        self.assertTrue(wait_until(lambda: self.level("candidate") == "level-info", 10),
                        "candidate not reset after its lock holder died")
        self.assertOk(lock_rpc(self.m, "candidate"))
        self.assertOk(self.m.unlock("candidate"))


class TestConfirmedCommit(DatastoreTestCase):

    def setUp(self):
        super().setUp()
        self.assertOk(edit_ds(self.m, "running", level_edit("level-info")))

    def confirmed(self, level, m=None, **kwargs):
        m = m or self.m
        self.assertOk(edit_ds(m, "candidate", level_edit(level)))
        self.assertOk(commit_rpc(m, confirmed=True, **kwargs), "confirmed commit")
        self.assertEqual(self.level("running"), level)

    def test_confirming_commit_keeps_change(self):
        self.confirmed("level-debug", timeout=30)
        self.assertOk(commit_rpc(self.m), "confirming commit")
        self.assertEqual(self.level("running"), "level-debug")

    def test_timeout_rolls_back(self):
        self.confirmed("level-debug", timeout=2)
        self.assertTrue(wait_until(lambda: self.level("running") == "level-info", 15),
                        "no rollback after the confirm-timeout")
        self.assertEqual(self.level("candidate"), "level-info")

    def test_cancel_commit_rolls_back(self):
        self.confirmed("level-debug", timeout=60)
        self.assertOk(cancel_commit_rpc(self.m))
        self.assertEqual(self.level("running"), "level-info")

    def test_cancel_without_pending_commit_fails(self):
        self.assertRpcError(cancel_commit_rpc(self.m), tag="operation-failed")

    def test_followup_confirmed_commit_extends_and_rolls_back_to_start(self):
        self.confirmed("level-debug", timeout=60)
        self.confirmed("level-error", timeout=60)
        self.assertOk(cancel_commit_rpc(self.m))
        self.assertEqual(self.level("running"), "level-info",
                         "rollback must return to before the first confirmed commit")

    def test_other_session_cannot_confirm(self):
        self.confirmed("level-debug", timeout=60)
        other = self.connect()
        reply = commit_rpc(other)
        self.assertRpcError(reply, tag="in-use")
        self.assertIn(str(self.m.session_id), session_id_info(reply))
        self.assertOk(cancel_commit_rpc(self.m))

    def test_session_drop_rolls_back(self):
        other = self.connect()
        self.confirmed("level-debug", m=other, timeout=120)
        other._session.close()  # dropped, not closed
        self.assertTrue(wait_until(lambda: self.level("running") == "level-info", 10),
                        "no rollback after the confirming session went away")

    def test_close_session_rolls_back(self):
        other = self.connect()
        self.confirmed("level-debug", m=other, timeout=120)
        other.close_session()
        self.assertTrue(wait_until(lambda: self.level("running") == "level-info", 10))

    def test_kill_session_rolls_back(self):
        other = self.connect()
        self.confirmed("level-debug", m=other, timeout=120)
        self.assertOk(self.m.kill_session(other.session_id))
        self.assertEqual(self.level("running"), "level-info")

    def test_persist_survives_session_and_needs_persist_id(self):
        other = self.connect()
        self.confirmed("level-debug", m=other, timeout=120, persist="tok-1")
        other.close_session()
        time.sleep(0.5)
        self.assertEqual(self.level("running"), "level-debug", "persisted commit rolled back")
        self.assertIn("invalid-value", error_tags(commit_rpc(self.m)))
        self.assertIn("invalid-value", error_tags(commit_rpc(self.m, persist_id="wrong")))
        self.assertOk(commit_rpc(self.m, persist_id="tok-1"), "confirm with persist-id")
        self.assertEqual(self.level("running"), "level-debug")
        self.assertRpcError(cancel_commit_rpc(self.m), tag="operation-failed")

    def test_persist_cancel_with_persist_id(self):
        self.confirmed("level-debug", timeout=120, persist="tok-2")
        self.assertIn("invalid-value", error_tags(cancel_commit_rpc(self.m)))
        self.assertOk(cancel_commit_rpc(self.m, persist_id="tok-2"))
        self.assertEqual(self.level("running"), "level-info")

    def test_restart_during_confirmed_commit_rolls_back(self):
        self.confirmed("level-debug", timeout=600, persist="across-restart")
        self.server.restart()
        m = self.connect()
        self.assertEqual(self.level("running", m), "level-info",
                         "an unconfirmed commit survived a restart")
        self.assertRpcError(cancel_commit_rpc(m, persist_id="across-restart"),
                            tag="operation-failed")

    def test_bad_confirm_timeout(self):
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-debug")))
        self.assertRpcError(commit_rpc(self.m, confirmed=True, timeout="soon"),
                            tag="invalid-value")
        self.assertRpcError(commit_rpc(self.m, timeout=10), tag="invalid-value")
        self.assertEqual(self.level("running"), "level-info")

    def test_ncclient_commit_api(self):
        self.assertOk(edit_ds(self.m, "candidate", level_edit("level-off")))
        self.assertOk(self.m.commit(confirmed=True, timeout="60"))
        self.assertOk(self.m.commit())
        self.assertEqual(self.level("running"), "level-off")
