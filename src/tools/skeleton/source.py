"""The @name@ package: a notification source that posts an event every ``interval`` seconds
on the ``@name@`` stream."""

import ncs.notif


class Main(ncs.notif.Source):
    def init(self, options):
        # The options of package-meta-data.xml, or of
        # /pyvmd-notifications:notification-sources/source in the configuration.
        try:
            self.interval = float(options.get("interval", "2"))
        except ValueError:
            return False  # refuses to start: the component is reported as failed
        self.message = options.get("message", "")
        self.count = 0
        return self.interval > 0

    def run(self):
        # self.exit is set by request_exit() when the VM stops: run() returns then.
        while not self.exit.wait(self.interval):
            self.count += 1
            event = ncs.notif.Notification("/@name@:@name@-event", count=self.count,
                                           message=self.message)
            self.post_message(event)
