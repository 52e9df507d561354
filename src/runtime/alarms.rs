//! The alarm list (`/al:alarms` of `tailf-ncs-alarms`, NSO's shape): alarms raised by the
//! runtime, each with its history of status changes, rendered for `get`.
//!
//! An alarm is identified by (device, type, managed object, specific problem). Raising it again
//! adds a status change instead of a second alarm; clearing keeps it in the list with
//! `is-cleared` true, as NSO does.

use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::escape::escape;

/// The namespace of `tailf-ncs-alarms`.
const NS_ALARMS: &str = "http://tail-f.com/ns/ncs-alarms";

/// Alarm severities, in increasing order (the YANG `severity` enumeration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The alarm is cleared.
    Cleared,
    /// `indeterminate`.
    Indeterminate,
    /// `minor`.
    Minor,
    /// `warning`.
    Warning,
    /// `major`.
    Major,
    /// `critical`.
    Critical,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Cleared => "cleared",
            Severity::Indeterminate => "indeterminate",
            Severity::Minor => "minor",
            Severity::Warning => "warning",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }

    /// Parses the YANG enum value.
    pub fn parse(value: &str) -> Option<Severity> {
        Some(match value {
            "cleared" => Severity::Cleared,
            "indeterminate" => Severity::Indeterminate,
            "minor" => Severity::Minor,
            "warning" => Severity::Warning,
            "major" => Severity::Major,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// What an alarm is about: the list key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmKey {
    /// The device; `ncs` for the server itself.
    pub device: String,
    /// The alarm type, an identity of `tailf-ncs-alarms` (e.g. `package-load-failure`).
    pub alarm_type: &'static str,
    /// An instance-identifier (module names as prefixes are declared with their namespaces).
    pub managed_object: ManagedObject,
    /// Empty unless the type needs a refinement.
    pub specific_problem: String,
}

/// The managed object of an alarm: an instance-identifier and the namespaces of its prefixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedObject {
    /// e.g. `/ncs:packages/ncs:package[ncs:name='l3vpn']`.
    pub path: String,
    /// (prefix, namespace) of every prefix in `path`.
    pub prefixes: Vec<(String, String)>,
}

impl ManagedObject {
    /// The instance-identifier of a data node, every name qualified by its module's name
    /// (`/demo:tools/demo:host[demo:name='h1']`).
    pub fn of_data_node(node: &yang5::data::DataNodeRef<'_>) -> ManagedObject {
        let mut path = String::new();
        let mut prefixes: Vec<(String, String)> = Vec::new();
        let nodes: Vec<_> = node.inclusive_ancestors().collect();
        for n in nodes.iter().rev() {
            let schema = n.schema();
            let module = schema.module();
            let prefix = module.name().to_owned();
            if !prefixes.iter().any(|(p, _)| *p == prefix) {
                prefixes.push((prefix.clone(), module.namespace().to_owned()));
            }
            path.push_str(&format!("/{prefix}:{}", schema.name()));
            for key in n.list_keys() {
                let value = key.value_canonical().unwrap_or_default();
                path.push_str(&format!(
                    "[{prefix}:{}={}]",
                    key.schema().name(),
                    quote_xpath(&value)
                ));
            }
        }
        ManagedObject { path, prefixes }
    }

    /// `/ncs:packages/ncs:package[ncs:name='<name>']`.
    pub fn package(name: &str) -> ManagedObject {
        ManagedObject {
            path: format!("/ncs:packages/ncs:package[ncs:name={}]", quote_xpath(name)),
            prefixes: vec![("ncs".into(), "http://tail-f.com/ns/ncs".into())],
        }
    }
}

/// Quotes a string for an XPath predicate.
fn quote_xpath(value: &str) -> String {
    if value.contains('\'') {
        format!("\"{value}\"")
    } else {
        format!("'{value}'")
    }
}

struct StatusChange {
    time: DateTime<Utc>,
    severity: Severity,
    text: String,
}

struct Alarm {
    key: AlarmKey,
    history: Vec<StatusChange>,
}

impl Alarm {
    fn last(&self) -> &StatusChange {
        // An alarm is created with its first status change and never loses it.
        &self.history[self.history.len() - 1]
    }
}

#[derive(Default)]
struct State {
    alarms: Vec<Alarm>,
    last_changed: Option<DateTime<Utc>>,
    filter_level: Option<Severity>,
}

/// The alarm list.
#[derive(Default)]
pub struct AlarmList {
    state: Mutex<State>,
}

/// Status changes kept per alarm; older ones are dropped.
const MAX_HISTORY: usize = 100;

impl AlarmList {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `/al:alarms/control/filter-level`: alarms raised below it are dropped.
    pub fn set_filter_level(&self, level: Severity) {
        self.state().filter_level = Some(level);
    }

    /// Raises (or re-raises) an alarm. A repeated raise with the same severity and text changes
    /// nothing, so a VM that keeps failing the same way does not flood the history.
    pub fn raise(&self, key: AlarmKey, severity: Severity, text: &str) {
        let mut state = self.state();
        if state.filter_level.is_some_and(|level| severity < level) {
            return;
        }
        self.change(&mut state, key, severity, text, false);
    }

    /// Reports an event that raises an alarm each time it happens (a self-assign in a
    /// callback): the first report raises the alarm, each one after adds a status change to
    /// it, even with the same severity and text.
    pub fn report(&self, key: AlarmKey, severity: Severity, text: &str) {
        let mut state = self.state();
        if state.filter_level.is_some_and(|level| severity < level) {
            return;
        }
        self.change(&mut state, key, severity, text, true);
    }

    /// Clears an alarm that is raised; nothing happens when there is none.
    pub fn clear(&self, key: &AlarmKey, text: &str) {
        let mut state = self.state();
        let raised = state
            .alarms
            .iter()
            .any(|a| &a.key == key && a.last().severity != Severity::Cleared);
        if raised {
            self.change(&mut state, key.clone(), Severity::Cleared, text, false);
        }
    }

    fn change(
        &self,
        state: &mut State,
        key: AlarmKey,
        severity: Severity,
        text: &str,
        every_time: bool,
    ) {
        let now = Utc::now();
        let change = StatusChange {
            time: now,
            severity,
            text: text.to_string(),
        };
        match state.alarms.iter_mut().find(|a| a.key == key) {
            Some(alarm) => {
                let last = alarm.last();
                if !every_time && last.severity == severity && last.text == text {
                    return;
                }
                alarm.history.push(change);
                if alarm.history.len() > MAX_HISTORY {
                    alarm.history.remove(0);
                }
            }
            None => state.alarms.push(Alarm {
                key,
                history: vec![change],
            }),
        }
        state.last_changed = Some(now);
    }

    /// `/al:alarms/alarm-list` and `/al:alarms/summary` as XML.
    pub fn to_xml(&self) -> String {
        let state = self.state();
        let mut out = format!("<alarms xmlns=\"{NS_ALARMS}\"><summary>");
        let count = |s: Severity| {
            state
                .alarms
                .iter()
                .filter(|a| a.last().severity == s)
                .count()
        };
        let _ = write!(
            out,
            "<indeterminates>{}</indeterminates><criticals>{}</criticals><majors>{}</majors>\
             <minors>{}</minors><warnings>{}</warnings></summary><alarm-list>\
             <number-of-alarms>{}</number-of-alarms>",
            count(Severity::Indeterminate),
            count(Severity::Critical),
            count(Severity::Major),
            count(Severity::Minor),
            count(Severity::Warning),
            state.alarms.len()
        );
        if let Some(t) = state.last_changed {
            let _ = write!(out, "<last-changed>{}</last-changed>", date_time(t));
        }
        for alarm in &state.alarms {
            let key = &alarm.key;
            let last = alarm.last();
            let decls: String = key
                .managed_object
                .prefixes
                .iter()
                .map(|(p, ns)| format!(" xmlns:{p}=\"{}\"", escape(ns)))
                .collect();
            let _ = write!(
                out,
                "<alarm><device>{}</device><type xmlns:al=\"{NS_ALARMS}\">al:{}</type>\
                 <managed-object{decls}>{}</managed-object><specific-problem>{}</specific-problem>\
                 <is-cleared>{}</is-cleared><last-status-change>{}</last-status-change>\
                 <last-perceived-severity>{}</last-perceived-severity>\
                 <last-alarm-text>{}</last-alarm-text>",
                escape(&key.device),
                key.alarm_type,
                escape(&key.managed_object.path),
                escape(&key.specific_problem),
                last.severity == Severity::Cleared,
                date_time(last.time),
                last.severity.as_str(),
                escape(&last.text),
            );
            for change in &alarm.history {
                let _ = write!(
                    out,
                    "<status-change><event-time>{0}</event-time><received-time>{0}</received-time>\
                     <perceived-severity>{1}</perceived-severity><alarm-text>{2}</alarm-text>\
                     </status-change>",
                    date_time(change.time),
                    change.severity.as_str(),
                    escape(&change.text)
                );
            }
            out.push_str("</alarm>");
        }
        out.push_str("</alarm-list></alarms>");
        out
    }
}

/// A YANG `date-and-time` with microseconds, so that status changes of one alarm in the same
/// second still have distinct keys.
fn date_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> AlarmKey {
        AlarmKey {
            device: "ncs".into(),
            alarm_type: "package-load-failure",
            managed_object: ManagedObject::package(name),
            specific_problem: String::new(),
        }
    }

    #[test]
    fn raise_again_updates_clear_keeps_and_xml_validates() {
        let list = AlarmList::default();
        list.raise(key("p"), Severity::Critical, "VM failed");
        list.raise(key("p"), Severity::Critical, "VM failed");
        list.raise(key("p"), Severity::Critical, "VM failed again");
        list.raise(key("q's"), Severity::Critical, "broken");
        list.clear(&key("p"), "loaded");
        list.clear(&key("none"), "nothing to clear");
        let xml = list.to_xml();
        assert!(
            xml.contains("<number-of-alarms>2</number-of-alarms>"),
            "{xml}"
        );
        assert!(xml.contains("<criticals>1</criticals>"), "{xml}");
        assert_eq!(xml.matches("<status-change>").count(), 4, "{xml}");
        assert!(xml.contains("<is-cleared>true</is-cleared>"));
        use yang5::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};
        DataTree::parse_string(
            crate::yang::test_context(),
            &xml,
            DataFormat::XML,
            DataParserFlags::STRICT,
            DataValidationFlags::PRESENT,
        )
        .unwrap_or_else(|e| panic!("{e}: {xml}"));
    }

    #[test]
    fn the_filter_level_drops_lower_alarms() {
        let list = AlarmList::default();
        list.set_filter_level(Severity::Major);
        list.raise(key("p"), Severity::Minor, "minor");
        list.raise(key("q"), Severity::Critical, "critical");
        assert!(
            list.to_xml()
                .contains("<number-of-alarms>1</number-of-alarms>")
        );
    }
}
