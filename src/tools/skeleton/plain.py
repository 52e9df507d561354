"""The @name@ package: an application that runs as long as its VM does."""

from ncs.application import Application


class Main(Application):
    """Started when the VM starts (``setup``) and stopped when it stops (``teardown``)."""

    def setup(self):
        self.log.info("@name@ up")

    def teardown(self):
        self.log.info("@name@ down")
