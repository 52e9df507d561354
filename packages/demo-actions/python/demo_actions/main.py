"""The demo-actions package: one Action class per actionpoint of its YANG."""

import time

import ncs
from ncs.application import Application
from ncs.dp import Action

STARTED = time.monotonic()


class Ping(Action):
    """``/da:tools/ping``: fills every kind of output node from the input."""

    @Action.action
    def cb_action(self, uinfo, name, kp, input, output, trans):
        self.log.info("ping ", input.host, " x", input.count, " by ", uinfo.username)
        output.result = "pinged %s %d times" % (input.host, input.count)
        output.sent = input.count
        if input.host != "unreachable.example":
            output.reachable = True
        for seq in range(1, input.count + 1):
            output.reply.create(seq).rtt_ms = 0.5 * seq
        if input.verbose:
            output.notes.append("verbose")
        if input.options.exists() and input.options.ttl is not None:
            output.notes.append("ttl %d" % input.options.ttl)
        output.notes.extend(input.tags)
        output.summary.loss_percent = 0


class Fail(Action):
    """``/da:tools/fail``: fails as asked."""

    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        how = input.how
        if how == "exception":
            raise ValueError("the demo failed on purpose")
        if how == "confd-err":
            return ncs.CONFD_ERR
        if how == "bad-output":
            output.result = 1000  # out of range for a uint8
            return ncs.CONFD_OK
        if how == "slow":
            time.sleep(float(self.slow_seconds))
        output.result = 1
        return None

    def init(self, init_args):
        self.slow_seconds = init_args or 30


class Reboot(Action):
    """``/da:tools/host{name}/reboot``: shows the keypath of the list entry, and assigns to
    ``self`` (which is not thread safe: the self-assign warning reports it)."""

    @Action.action
    def cb_action(self, uinfo, name, kp, input, output, trans):
        self.last_reboot = kp
        address = trans.get_elem(kp + "/address") if trans.exists(kp + "/address") else None
        output.result = "rebooting %s (%s) in %d s" % (kp, address, input.delay)


class Echo(Action):
    """The ``da:echo`` rpc."""

    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        message = input.message or ""
        output.message = message.upper() if input.upper else message


class Uptime(Action):
    """``/dl:system-info/uptime``, a tailf:action."""

    @Action.action
    def cb_action(self, uinfo, name, kp, input, output):
        output.seconds = int(time.monotonic() - STARTED)
        output.vm = "demo-actions"


class Main(Application):
    def setup(self):
        self.register_action("demo-ping", Ping)
        self.register_action("demo-fail", Fail)
        self.register_action("demo-reboot", Reboot)
        self.register_action("demo-echo", Echo)
        self.register_action("demo-uptime", Uptime)
        self.log.info("demo-actions registered its actions")
