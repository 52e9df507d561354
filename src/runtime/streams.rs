//! Notification streams and sources that packages declare, and the notifications package code
//! sends.
//!
//! NSO declares event streams in `ncs.conf`; pyvmd has no such file, so a package declares its
//! streams, and the options of its notification sources, in its `package-meta-data.xml`, in
//! pyvmd's own namespace (NSO ignores elements of other namespaces, so the file stays valid
//! there):
//!
//! ```xml
//! <ncs-package xmlns="http://tail-f.com/ns/ncs-packages">
//!   ...
//!   <notification-stream xmlns="urn:pyvmd:package:1.0">
//!     <name>ticker</name>
//!     <description>Ticks of the example source</description>
//!     <replay-support>true</replay-support>
//!   </notification-stream>
//!   <component>
//!     <name>ticker</name>
//!     <application><python-class-name>ticker.source.Ticker</python-class-name></application>
//!     <notification-source xmlns="urn:pyvmd:package:1.0">
//!       <stream>ticker</stream>
//!       <option><name>interval</name><value>5</value></option>
//!     </notification-source>
//!   </component>
//! </ncs-package>
//! ```
//!
//! A notification from package code (`ncs.notif`) is validated by libyang against the schema and
//! the running configuration before it is published, so a subscriber only ever receives
//! notifications that its YANG describes.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};

use super::packages::leaf;
use crate::datastore::Datastore;
use crate::netconf::xml::Element;
use crate::notify::{Notifier, StreamSpec};
use crate::vm::protocol::{Reply, SourceSettings};

/// The namespace of pyvmd's elements in `package-meta-data.xml`.
pub const PYVMD_PACKAGE_NS: &str = "urn:pyvmd:package:1.0";

/// The most notifications one request may carry.
const MAX_BATCH: usize = 10_000;

/// The children of `element` in pyvmd's namespace.
fn pyvmd_children(element: &Element) -> impl Iterator<Item = &Element> {
    element.elements().filter(|e| e.ns == PYVMD_PACKAGE_NS)
}

/// The streams a package declares (`notification-stream` elements of `ncs-package`).
pub fn parse_streams(package: &Element) -> Result<Vec<StreamSpec>, String> {
    let mut streams: Vec<StreamSpec> = Vec::new();
    for element in pyvmd_children(package) {
        if element.name != "notification-stream" {
            return Err(format!(
                "unknown element <{}> of namespace {PYVMD_PACKAGE_NS} in <ncs-package>",
                element.name
            ));
        }
        let (mut name, mut description, mut replay) = (None, None, None);
        for child in pyvmd_children(element) {
            let value = leaf(child)?;
            let slot = match child.name.as_str() {
                "name" => &mut name,
                "description" => &mut description,
                "replay-support" => &mut replay,
                other => {
                    return Err(format!(
                        "unknown element <{other}> in <notification-stream>"
                    ));
                }
            };
            if slot.replace(value).is_some() {
                return Err(format!(
                    "<{}> is given twice in <notification-stream>",
                    child.name
                ));
            }
        }
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or("a <notification-stream> has no <name>")?;
        let replay = match replay.as_deref() {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "stream {name}: replay-support must be true or false, not {other:?}"
                ));
            }
        };
        if streams.iter().any(|s| s.name == name) {
            return Err(format!("notification-stream {name} is declared twice"));
        }
        streams.push(StreamSpec {
            description: description.unwrap_or_else(|| format!("events of stream {name}")),
            name,
            replay,
        });
    }
    Ok(streams)
}

/// A component's `notification-source`, if it has one.
pub fn parse_source(component: &Element) -> Result<Option<SourceSettings>, String> {
    let mut settings = None;
    for element in pyvmd_children(component) {
        if element.name != "notification-source" {
            return Err(format!(
                "unknown element <{}> of namespace {PYVMD_PACKAGE_NS} in <component>",
                element.name
            ));
        }
        if settings.is_some() {
            return Err("<notification-source> is given twice".into());
        }
        let mut source = SourceSettings::default();
        for child in pyvmd_children(element) {
            match child.name.as_str() {
                "stream" => {
                    if source.stream.replace(leaf(child)?).is_some() {
                        return Err("<stream> is given twice in <notification-source>".into());
                    }
                }
                "option" => {
                    let mut name = None;
                    let mut value = None;
                    for part in pyvmd_children(child) {
                        match part.name.as_str() {
                            "name" => name = Some(leaf(part)?),
                            "value" => value = Some(leaf(part)?),
                            other => {
                                return Err(format!("unknown element <{other}> in <option>"));
                            }
                        }
                    }
                    let name = name
                        .filter(|n| !n.is_empty())
                        .ok_or("an <option> has no <name>")?;
                    if source
                        .options
                        .insert(name.clone(), value.unwrap_or_default())
                        .is_some()
                    {
                        return Err(format!("option {name} is given twice"));
                    }
                }
                other => {
                    return Err(format!(
                        "unknown element <{other}> in <notification-source>"
                    ));
                }
            }
        }
        settings = Some(source);
    }
    Ok(settings)
}

/// One notification as package code sends it.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Outgoing {
    /// The notification element as XML.
    Xml { xml: String },
    /// A top-level notification (`/prefix:name` or `/module:name`) and its content: leaves as
    /// strings, numbers or booleans, containers as objects, lists as arrays of objects,
    /// leaf-lists as arrays of values, empty leaves as `null`.
    Values {
        path: String,
        #[serde(default)]
        values: serde_json::Map<String, Value>,
    },
}

/// The `notify` request of a VM: `{"op": "notify", "stream": ..., "notifications": [...]}`.
#[derive(Debug, Deserialize)]
struct NotifyRequest {
    stream: String,
    notifications: Vec<Outgoing>,
}

/// Publishes what package code sends: validates every notification of a request first, and
/// publishes them only if all are valid, in order.
pub struct PackageNotifications {
    notifier: Arc<Notifier>,
    datastore: Arc<Datastore>,
}

impl PackageNotifications {
    /// Sends to `notifier`'s streams, validating against `datastore`'s schema and running.
    pub fn new(notifier: Arc<Notifier>, datastore: Arc<Datastore>) -> PackageNotifications {
        PackageNotifications {
            notifier,
            datastore,
        }
    }

    /// Answers a `notify` request: the `eventTime`s of the published events.
    pub fn handle(&self, request: Value) -> Reply {
        let request: NotifyRequest = match serde_json::from_value(request) {
            Ok(r) => r,
            Err(e) => return Reply::error("badtype", format!("malformed notification: {e}")),
        };
        if !self.notifier.has_stream(&request.stream) {
            let known: Vec<String> = self
                .notifier
                .streams()
                .into_iter()
                .map(|s| s.name)
                .collect();
            return Reply::error(
                "noexists",
                format!(
                    "there is no notification stream {:?} (streams: {}); a package declares its \
                     streams with <notification-stream> in package-meta-data.xml",
                    request.stream,
                    known.join(", ")
                ),
            );
        }
        if request.notifications.len() > MAX_BATCH {
            return Reply::error(
                "badstate",
                format!("a batch holds at most {MAX_BATCH} notifications"),
            );
        }
        let mut bodies = Vec::with_capacity(request.notifications.len());
        for (i, outgoing) in request.notifications.into_iter().enumerate() {
            let xml = match outgoing {
                Outgoing::Xml { xml } => xml,
                Outgoing::Values { path, values } => match self.values_xml(&path, &values) {
                    Ok(xml) => xml,
                    Err(e) => return Reply::error("badpath", e),
                },
            };
            match self.datastore.validate_notification(&xml) {
                Ok(body) => bodies.push(body),
                Err(e) => {
                    let which = if i == 0 {
                        String::new()
                    } else {
                        format!(" (notification {} of the batch)", i + 1)
                    };
                    return Reply::error("validation", format!("invalid notification{which}: {e}"));
                }
            }
        }
        let mut times = Vec::with_capacity(bodies.len());
        for body in &bodies {
            match self.notifier.publish(&request.stream, body) {
                Ok(event) => times.push(crate::notify::event_time(event.time)),
                Err(e) => return Reply::error("internal", e.to_string()),
            }
        }
        Reply::ok(json!({ "event-times": times }))
    }

    /// The XML of a top-level notification given as a path and values.
    fn values_xml(
        &self,
        path: &str,
        values: &serde_json::Map<String, Value>,
    ) -> Result<String, String> {
        let step = path.strip_prefix('/').unwrap_or(path);
        let (module, name) = step.split_once(':').ok_or_else(|| {
            format!("{path:?} is not a notification path of the form /prefix:name")
        })?;
        if name.contains('/') {
            return Err(format!(
                "{path:?}: only top-level notifications can be given as values; send the XML of \
                 a nested one"
            ));
        }
        let namespace = self
            .datastore
            .namespace_of(module)
            .ok_or_else(|| format!("{path:?}: no module or prefix {module:?} is loaded"))?;
        let mut out = String::new();
        write_element(
            &mut out,
            name,
            Some(&namespace),
            &Value::Object(values.clone()),
        )?;
        Ok(out)
    }
}

/// Writes `<name>` with `value` as its content: objects are containers and list entries,
/// arrays repeat the element (list entries, leaf-list values).
fn write_element(
    out: &mut String,
    name: &str,
    namespace: Option<&str>,
    value: &Value,
) -> Result<(), String> {
    use std::fmt::Write as _;
    let xmlns = namespace
        .map(|ns| format!(" xmlns=\"{}\"", quick_xml::escape::escape(ns)))
        .unwrap_or_default();
    let check = |n: &str| {
        if n.is_empty() || n.contains(['<', '>', '&', '"', '\'', ' ', '/']) {
            Err(format!("{n:?} is not a node name"))
        } else {
            Ok(())
        }
    };
    check(name)?;
    match value {
        Value::Null => {
            let _ = write!(out, "<{name}{xmlns}/>");
        }
        Value::Bool(b) => {
            let _ = write!(out, "<{name}{xmlns}>{b}</{name}>");
        }
        Value::Number(n) => {
            let _ = write!(out, "<{name}{xmlns}>{n}</{name}>");
        }
        Value::String(s) => {
            let _ = write!(
                out,
                "<{name}{xmlns}>{}</{name}>",
                quick_xml::escape::escape(s.as_str())
            );
        }
        Value::Array(items) => {
            for item in items {
                write_element(out, name, namespace, item)?;
            }
        }
        Value::Object(children) => {
            let _ = write!(out, "<{name}{xmlns}>");
            for (key, child) in children {
                if key.contains(':') {
                    return Err(format!(
                        "{key:?}: nodes of other modules (augments) cannot be given as values; \
                         send the notification as XML"
                    ));
                }
                write_element(out, key, None, child)?;
            }
            let _ = write!(out, "</{name}>");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netconf::xml;

    #[test]
    fn streams_and_sources_are_read_from_the_metadata() {
        let root = xml::parse(
            br#"<ncs-package xmlns="http://tail-f.com/ns/ncs-packages">
                 <notification-stream xmlns="urn:pyvmd:package:1.0">
                   <name>ticker</name><replay-support>true</replay-support>
                 </notification-stream>
                 <component><name>c</name>
                   <notification-source xmlns="urn:pyvmd:package:1.0">
                     <stream>ticker</stream>
                     <option><name>interval</name><value>5</value></option>
                   </notification-source>
                 </component>
               </ncs-package>"#,
        )
        .unwrap();
        let streams = parse_streams(&root).unwrap();
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].name, "ticker");
        assert!(streams[0].replay);
        let component = root.elements().last().unwrap();
        let source = parse_source(component).unwrap().unwrap();
        assert_eq!(source.stream.as_deref(), Some("ticker"));
        assert_eq!(source.options["interval"], "5");
    }

    #[test]
    fn mistakes_in_the_metadata_are_errors() {
        for bad in [
            r#"<notification-stream xmlns="urn:pyvmd:package:1.0"/>"#,
            r#"<notification-stream xmlns="urn:pyvmd:package:1.0"><name>a</name><replay-support>yes</replay-support></notification-stream>"#,
            r#"<notification-streams xmlns="urn:pyvmd:package:1.0"/>"#,
        ] {
            let doc = format!(
                r#"<ncs-package xmlns="http://tail-f.com/ns/ncs-packages">{bad}</ncs-package>"#
            );
            assert!(
                parse_streams(&xml::parse(doc.as_bytes()).unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn values_become_xml() {
        let mut out = String::new();
        let value = json!({"count": 3, "up": true, "tags": ["a", "b"], "info": {"text": "x<y"}, "flag": null});
        write_element(&mut out, "tick", Some("urn:t"), &value).unwrap();
        assert_eq!(
            out,
            "<tick xmlns=\"urn:t\"><count>3</count><flag/><info><text>x&lt;y</text></info>\
             <tags>a</tags><tags>b</tags><up>true</up></tick>"
        );
        assert!(write_element(&mut String::new(), "a b", None, &Value::Null).is_err());
    }
}
