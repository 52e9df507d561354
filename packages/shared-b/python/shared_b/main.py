"""The shared-b application."""
from ncs.application import Application

# Importable because shared-b requires common-lib, whose python/ directory is on the path.
from common_lib.text import greeting


class Main(Application):
    """Logs a greeting built by the common-lib library."""

    def setup(self):
        self.log.info(greeting('shared-b'))

    def teardown(self):
        self.log.info('Main FINISHED')
