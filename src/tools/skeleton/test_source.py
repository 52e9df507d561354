
    def test_the_source_posts_events(self):
        with connect() as listener:
            listener.create_subscription(stream_name="@name@")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                notification = listener.take_notification(timeout=5)
                if notification is None:
                    continue
                event = ET.fromstring(notification.notification_xml).find(
                    ".//{%s}@name@-event" % NS)
                if event is not None:
                    self.assertGreater(int(event.findtext("{%s}count" % NS)), 0)
                    return
            self.fail("no @name@-event within 30 s")
