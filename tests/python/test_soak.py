"""Soak: 100 sessions send 1,000 mixed rpcs each, at once, dropping their connections at random
(between rpcs, and with an rpc in flight), and reconnecting. At the end there must have been no
unexpected error, the server's memory must have stayed bounded, and running must hold exactly
what the acknowledged edits left.

Each session owns one NACM group, `soak-<n>`, and replaces its user-names now and then; what it
was told succeeded is what it expects to read at the end. The mix: filtered get-config and get,
edits (valid, and invalid ones that must be refused and change nothing), lock and unlock of the
candidate (lock-denied is expected while another session holds it), get-schema and validate.

PYVMD_SOAK_SESSIONS and PYVMD_SOAK_RPCS change the size (100 and 1,000).
"""

import os
import random
import socket
import threading
import time

from pyvmd_harness import ServerTestCase, close_quietly, parse, rpc_errors

SESSIONS = int(os.environ.get("PYVMD_SOAK_SESSIONS", "100"))
RPCS = int(os.environ.get("PYVMD_SOAK_RPCS", "1000"))
NACM_NS = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
GROUPS_FILTER = ("subtree", '<nacm xmlns="%s"><groups/></nacm>' % NACM_NS)


def group_filter(name):
    return ("subtree", '<nacm xmlns="%s"><groups><group><name>%s</name></group></groups></nacm>'
            % (NACM_NS, name))


def group_edit(name, users):
    return ('<config><nacm xmlns="%s" xmlns:nc="%s"><groups><group nc:operation="replace">'
            '<name>%s</name>%s</group></groups></nacm></config>'
            % (NACM_NS, NC_NS, name, "".join("<user-name>%s</user-name>" % u for u in users)))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def drop(m):
    """Drops the connection as a crashing client does: no close-session, no SSH goodbye."""
    try:
        transport = m._session._transport
        transport.sock.shutdown(socket.SHUT_RDWR)
        transport.close()
    except Exception:  # noqa: BLE001  (already gone is fine)
        pass


class TestSoak(ServerTestCase):
    server_args = ("--max-sessions", str(SESSIONS * 3), "--max-sessions-per-user",
                   str(SESSIONS * 3))

    def test_sessions_with_mixed_rpcs_and_random_disconnects(self):
        lock = threading.Lock()
        expected = {}
        unexpected = []
        counts = {"rpcs": 0, "edits": 0, "refused": 0, "lock-denied": 0, "drops": 0,
                  "drops-in-flight": 0}

        def count(key, n=1):
            with lock:
                counts[key] += n

        def fail(worker, what, reply):
            with lock:
                unexpected.append("session %d, %s: %s" % (worker, what, reply.xml[:600]))

        def work(worker):
            rng = random.Random(4242 + worker)
            name = "soak-%d" % worker
            m = self.server.connect()
            done = 0
            try:
                while done < RPCS:
                    r = rng.random()
                    if r < 0.015:
                        drop(m)
                        count("drops")
                        m = self.server.connect()
                        continue
                    if r < 0.025:
                        # A read in flight when the connection goes.
                        m.async_mode = True
                        m.get_config(source="running", filter=GROUPS_FILTER)
                        drop(m)
                        count("drops-in-flight")
                        m = self.server.connect()
                        continue
                    done += 1
                    count("rpcs")
                    if r < 0.35:
                        reply = m.get_config(source="running", filter=group_filter(name))
                        if not reply.ok:
                            fail(worker, "get-config", reply)
                    elif r < 0.50:
                        reply = m.get(filter=GROUPS_FILTER)
                        if not reply.ok:
                            fail(worker, "get", reply)
                    elif r < 0.75:
                        users = sorted({"u%d" % rng.randrange(50)
                                        for _ in range(rng.randrange(1, 4))})
                        reply = m.edit_config(target="running", config=group_edit(name, users))
                        if reply.ok:
                            with lock:
                                expected[name] = users
                            count("edits")
                        else:
                            fail(worker, "edit-config", reply)
                    elif r < 0.82:
                        # Invalid: refused, and nothing changes.
                        reply = m.edit_config(target="running", config=(
                            '<config><nacm xmlns="%s"><groups><group><name>%s</name>'
                            '<no-such-leaf>x</no-such-leaf></group></groups></nacm></config>'
                            % (NACM_NS, name)))
                        if reply.ok:
                            fail(worker, "an invalid edit-config", reply)
                        else:
                            count("refused")
                    elif r < 0.90:
                        reply = m.lock(target="candidate")
                        if reply.ok:
                            reply = m.unlock(target="candidate")
                            if not reply.ok:
                                fail(worker, "unlock", reply)
                        elif [e.get("error-tag") for e in rpc_errors(parse(reply.xml))] == [
                                "lock-denied"]:
                            count("lock-denied")
                        else:
                            fail(worker, "lock", reply)
                    elif r < 0.95:
                        reply = m.get_schema("ietf-netconf-acm")
                        if not reply.ok:
                            fail(worker, "get-schema", reply)
                    else:
                        reply = m.validate(source="running")
                        if not reply.ok:
                            fail(worker, "validate", reply)
            except Exception as exc:  # noqa: BLE001  (any exception is an unexpected error)
                with lock:
                    unexpected.append("session %d: %r" % (worker, exc))
            finally:
                close_quietly(m)

        pid = self.server.proc.pid
        samples = []
        finished = threading.Event()

        def sample():
            while not finished.wait(1.0):
                with lock:
                    done = counts["rpcs"]
                samples.append((done, rss_kib(pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        workers = [threading.Thread(target=work, args=(i,)) for i in range(SESSIONS)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        elapsed = time.monotonic() - started
        finished.set()
        sampler.join()
        time.sleep(1)
        final = rss_kib(pid)

        self.assertEqual(unexpected, [], "%d unexpected errors" % len(unexpected))
        self.assertEqual(counts["rpcs"], SESSIONS * RPCS)
        # Running holds exactly what the acknowledged edits left.
        m = self.connect()
        data = parse(m.get_config(source="running", filter=GROUPS_FILTER).xml)
        found = {}
        for group in data.iterfind(".//{%s}group" % NACM_NS):
            group_name = group.findtext("{%s}name" % NACM_NS)
            if group_name.startswith("soak-"):
                found[group_name] = sorted(u.text for u in group.iterfind(
                    "{%s}user-name" % NACM_NS))
        self.assertEqual(found, expected)
        # Every dropped session is gone: only this one is left.
        state = parse(m.get(filter=("subtree", '<netconf-state xmlns="urn:ietf:params:xml:ns:'
                                               'yang:ietf-netconf-monitoring"><sessions/>'
                                               '</netconf-state>')).xml)
        sessions = state.findall(".//{urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring}"
                                 "session")
        self.assertEqual(len(sessions), 1)
        # Memory is bounded: what the server holds once warm (a tenth of the rpcs done) does
        # not keep growing with the rpcs.
        warm = next((rss for done, rss in samples if done >= SESSIONS * RPCS // 10), final)
        peak = max([rss for _, rss in samples] + [final])
        print("\nsoak: %d sessions x %d rpcs in %.0f s (%.0f rpcs/s), %s; server RSS warm "
              "%d MiB, peak %d MiB, end %d MiB"
              % (SESSIONS, RPCS, elapsed, SESSIONS * RPCS / elapsed,
                 ", ".join("%s %d" % kv for kv in counts.items()), warm // 1024, peak // 1024,
                 final // 1024))
        self.assertLess(final, warm * 1.5 + 64 * 1024,
                        "server RSS grew from %d KiB (warm) to %d KiB" % (warm, final))
