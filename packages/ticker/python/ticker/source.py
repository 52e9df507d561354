"""A notification source: a tick on the ``ticker`` stream every ``interval`` seconds."""

import os
import socket

import ncs.notif


class Ticker(ncs.notif.Source):
    def init(self, options):
        try:
            self.interval = float(options.get("interval", "5"))
        except ValueError:
            return False  # refuses to start: the server reports the component as failed
        if self.interval <= 0:
            return False
        self.message = options.get("message", "")
        self.count = 0
        return True

    def run(self):
        # exit is set by request_exit() (from another thread) when the VM stops.
        while not self.exit.wait(self.interval):
            self.count += 1
            tick = ncs.notif.Notification("/tick:tick", count=self.count, message=self.message)
            tick.source.host = socket.gethostname()
            tick.source.pid = os.getpid()
            self.post_message(tick)
