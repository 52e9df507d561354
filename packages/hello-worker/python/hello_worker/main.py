"""The hello-worker application: logs at setup and runs a worker thread until teardown."""
import threading

from ncs.application import Application

# Seconds between two heartbeats of the worker.
INTERVAL = 10.0


class Main(Application):
    """Starts a worker thread in setup() and stops it in teardown()."""

    def setup(self):
        self.log.info('Main RUNNING')
        # teardown() sets the event; the worker waits on it instead of sleeping, so that it
        # stops at once rather than at the end of its current interval.
        self._stop_event = threading.Event()
        self._worker = threading.Thread(target=self._work, name='Worker', daemon=True)
        self._worker.start()

    def teardown(self):
        self._stop_event.set()
        self._worker.join(timeout=INTERVAL)
        self.log.info('Main FINISHED')

    def _work(self):
        # Registered threads are listed in /python-vm/status/current while they run.
        self.add_running_thread('Worker')
        try:
            self.log.info('Worker started')
            beats = 0
            while not self._stop_event.wait(INTERVAL):
                beats += 1
                self.log.debug('Worker heartbeat ', beats)
            self.log.info('Worker stopping after ', beats, ' heartbeats')
        finally:
            self.del_running_thread('Worker')
