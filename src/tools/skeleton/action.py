"""The @name@ package: the ``@name@-action`` actionpoint."""

from ncs.application import Application
from ncs.dp import Action


class DoubleAction(Action):
    """``/@name@:@name@/double``: one object serves every call, so keep state off ``self``."""

    @Action.action
    def cb_action(self, uinfo, name, kp, input, output, trans):
        self.log.info("action ", name, " by ", uinfo.username, ": ", input.number)
        output.result = 2 * input.number


class Main(Application):
    def setup(self):
        self.log.info("@name@ up")
        self.register_action("@name@-action", DoubleAction)

    def teardown(self):
        self.log.info("@name@ down")
