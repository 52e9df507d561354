//! One event of a stream, rendered once as the `<notification>` message every subscriber gets.

use chrono::{DateTime, SecondsFormat, Utc};

/// The RFC 5277 notification namespace (`<notification>`, `<eventTime>`).
pub const NS_NOTIFICATION: &str = "urn:ietf:params:xml:ns:netconf:notification:1.0";

const CLOSE: &str = "</notification>";

/// An event: its place in the stream, its time and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its number in the stream (1, 2, …; continues across restarts).
    pub seq: u64,
    /// `eventTime`.
    pub time: DateTime<Utc>,
    /// The whole `<notification>` message.
    message: String,
    /// Where the content starts in `message`.
    body_start: usize,
}

impl Event {
    /// An event whose content (the notification's top element, XML) is `body`.
    pub fn new(seq: u64, time: DateTime<Utc>, body: &str) -> Event {
        let mut message = String::with_capacity(120 + body.len());
        message.push_str("<notification xmlns=\"");
        message.push_str(NS_NOTIFICATION);
        message.push_str("\"><eventTime>");
        message.push_str(&event_time(time));
        message.push_str("</eventTime>");
        let body_start = message.len();
        message.push_str(body);
        message.push_str(CLOSE);
        Event {
            seq,
            time,
            message,
            body_start,
        }
    }

    /// The notification's content, without the envelope.
    pub fn body(&self) -> &str {
        &self.message[self.body_start..self.message.len() - CLOSE.len()]
    }

    /// The `<notification>` message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// A time as `eventTime` and the YANG `date-and-time` type write it (UTC, microseconds).
pub fn event_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_wraps_the_body_with_its_time() {
        let time = DateTime::<Utc>::from_timestamp(1_700_000_000, 5_000).unwrap();
        let event = Event::new(7, time, "<a xmlns=\"urn:a\"/>");
        assert_eq!(event.body(), "<a xmlns=\"urn:a\"/>");
        assert_eq!(
            event.message(),
            "<notification xmlns=\"urn:ietf:params:xml:ns:netconf:notification:1.0\">\
             <eventTime>2023-11-14T22:13:20.000005Z</eventTime><a xmlns=\"urn:a\"/></notification>"
        );
    }
}
