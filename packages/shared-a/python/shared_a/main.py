"""The shared-a application."""
import threading

from ncs.application import Application


class Main(Application):
    """Logs which VM thread it runs in; shared-b's component runs in the same process."""

    def setup(self):
        # Each component has its own thread (ComponentThread:<component>) in the shared VM.
        self.log.info('Main RUNNING in thread ', threading.current_thread().name)

    def teardown(self):
        self.log.info('Main FINISHED')
