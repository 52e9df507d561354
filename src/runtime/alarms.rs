//! The alarm list (`/al:alarms` of `tailf-ncs-alarms`, NSO's shape): alarms raised by the
//! runtime and written by package code, each with its history of status changes and of its
//! handling by operators, rendered for `get`.
//!
//! An alarm is identified by (device, type, managed object, specific problem). Raising it again
//! adds a status change instead of a second alarm; clearing keeps it in the list with
//! `is-cleared` true, as NSO does. Operators acknowledge alarms (`handle-alarm`) and remove
//! them (`purge`, `purge-alarms`). The list is saved in the state directory after every change,
//! so alarms survive a restart; every new, changed and cleared alarm is also published as an
//! `alarm-notification` on the `ncs-alarms` stream.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::escape::escape;
use serde::{Deserialize, Serialize};
use tracing::warn;
use yang5::data::{DataFormat, DataNodeRef, DataParserFlags, DataTree, DataValidationFlags};

use crate::datastore::Transaction;
use crate::datastore::changes::{InstancePath, quote_xpath};
use crate::datastore::keypath::{path_steps, predicate_end};
use crate::notify::{ALARMS_STREAM, Notifier};

/// The namespace of `tailf-ncs-alarms`.
const NS_ALARMS: &str = "http://tail-f.com/ns/ncs-alarms";
/// Where alarm entries live, as a data path.
pub const ALARM_LIST_PATH: &str = "/tailf-ncs-alarms:alarms/alarm-list";

/// Alarm severities, in increasing order (the YANG `severity` enumeration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

/// An alarm type: an identity derived from `al:alarm-type`, of `tailf-ncs-alarms` or of a
/// package's module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmType {
    /// The module that defines the identity.
    pub module: String,
    /// Its namespace.
    pub namespace: String,
    /// The identity's name.
    pub name: String,
}

impl AlarmType {
    /// A type of `tailf-ncs-alarms` (`package-load-failure`, ...).
    pub fn ncs(name: &str) -> AlarmType {
        AlarmType {
            module: "tailf-ncs-alarms".into(),
            namespace: NS_ALARMS.into(),
            name: name.into(),
        }
    }

    /// The prefix the XML rendering declares for the type's namespace.
    fn prefix(&self) -> &str {
        if self.namespace == NS_ALARMS {
            "al"
        } else {
            &self.module
        }
    }
}

/// What an alarm is about: the list key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmKey {
    /// The device; `ncs` for the server itself.
    pub device: String,
    /// The alarm type.
    pub alarm_type: AlarmType,
    /// An instance-identifier (module names as prefixes are declared with their namespaces).
    pub managed_object: ManagedObject,
    /// Empty unless the type needs a refinement.
    pub specific_problem: String,
}

/// The managed object of an alarm: an instance-identifier and the namespaces of its prefixes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedObject {
    /// e.g. `/ncs:packages/ncs:package[ncs:name='l3vpn']`.
    pub path: String,
    /// (prefix, namespace) of every prefix in `path`.
    pub prefixes: Vec<(String, String)>,
}

impl ManagedObject {
    /// The instance-identifier of a data node, every name qualified by its module's name
    /// (`/demo:tools/demo:host[demo:name='h1']`).
    pub fn of_data_node(node: &DataNodeRef<'_>) -> ManagedObject {
        let InstancePath { path, prefixes } = InstancePath::of(node);
        ManagedObject { path, prefixes }
    }

    /// The managed object named by the canonical value of a `managed-object` leaf (libyang's
    /// JSON form of an instance-identifier, `/tailf-ncs:packages/package[name='x']`, or any
    /// other string), with every step qualified by its module, as XML needs it.
    fn from_canonical(ctx: &yang5::context::Context, value: &str) -> ManagedObject {
        let mut path = String::new();
        let mut prefixes: Vec<(String, String)> = Vec::new();
        let mut module = String::new();
        for step in path_steps(value) {
            let (name, predicates) = match step.find('[') {
                Some(i) => (&step[..i], &step[i..]),
                None => (step, ""),
            };
            let name = match name.split_once(':') {
                Some((m, n)) => {
                    module = m.to_owned();
                    n
                }
                None => name,
            };
            let Some(namespace) = ctx
                .get_module_latest(&module)
                .map(|m| m.namespace().to_owned())
            else {
                // Not an instance-identifier of a loaded module: kept as it is.
                return ManagedObject {
                    path: value.to_owned(),
                    prefixes: Vec::new(),
                };
            };
            if !prefixes.iter().any(|(p, _)| *p == module) {
                prefixes.push((module.clone(), namespace));
            }
            let _ = write!(path, "/{module}:{name}");
            // `[key='v']` → `[module:key='v']`; `[.='v']` stays.
            let mut rest = predicates;
            while let Some(open) = rest.find('[') {
                let inner = &rest[open + 1..];
                let close = predicate_end(inner);
                let predicate = &inner[..close];
                if predicate.starts_with('.') || predicate.contains(':') {
                    let _ = write!(path, "[{predicate}]");
                } else {
                    let _ = write!(path, "[{module}:{predicate}]");
                }
                rest = &inner[(close + 1).min(inner.len())..];
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

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StatusChange {
    time: DateTime<Utc>,
    severity: Severity,
    text: String,
}

/// The states an operator puts an alarm in (`handle-alarm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HandlingState {
    /// Not handled.
    None,
    /// Acknowledged.
    Ack,
    /// Being investigated.
    Investigation,
    /// Under observation.
    Observation,
    /// Closed.
    Closed,
}

impl HandlingState {
    fn as_str(self) -> &'static str {
        match self {
            HandlingState::None => "none",
            HandlingState::Ack => "ack",
            HandlingState::Investigation => "investigation",
            HandlingState::Observation => "observation",
            HandlingState::Closed => "closed",
        }
    }

    /// Parses the YANG enum value.
    pub fn parse(value: &str) -> Option<HandlingState> {
        Some(match value {
            "none" => HandlingState::None,
            "ack" => HandlingState::Ack,
            "investigation" => HandlingState::Investigation,
            "observation" => HandlingState::Observation,
            "closed" => HandlingState::Closed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Handling {
    time: DateTime<Utc>,
    state: HandlingState,
    user: String,
    description: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Alarm {
    key: AlarmKey,
    history: Vec<StatusChange>,
    #[serde(default)]
    handling: Vec<Handling>,
}

impl Alarm {
    fn last(&self) -> &StatusChange {
        // An alarm is created with its first status change and never loses it.
        &self.history[self.history.len() - 1]
    }

    /// The severity of the last status change that did not clear the alarm.
    fn last_severity(&self) -> Severity {
        self.history
            .iter()
            .rev()
            .map(|c| c.severity)
            .find(|s| *s != Severity::Cleared)
            .unwrap_or(Severity::Indeterminate)
    }

    fn is_cleared(&self) -> bool {
        self.last().severity == Severity::Cleared
    }

    fn handling_state(&self) -> HandlingState {
        self.handling
            .last()
            .map_or(HandlingState::None, |h| h.state)
    }

    /// The alarm's entry, keys only, as XML (to find its data path).
    fn key_xml(&self) -> String {
        let key = &self.key;
        format!(
            "<alarms xmlns=\"{NS_ALARMS}\"><alarm-list><alarm><device>{}</device>{}{}\
             <specific-problem>{}</specific-problem></alarm></alarm-list></alarms>",
            escape(&key.device),
            type_xml(&key.alarm_type),
            managed_object_xml(&key.managed_object),
            escape(&key.specific_problem),
        )
    }
}

fn type_xml(t: &AlarmType) -> String {
    format!(
        "<type xmlns:{0}=\"{1}\">{0}:{2}</type>",
        t.prefix(),
        escape(&t.namespace),
        t.name
    )
}

fn managed_object_xml(object: &ManagedObject) -> String {
    let decls: String = object
        .prefixes
        .iter()
        .map(|(p, ns)| format!(" xmlns:{p}=\"{}\"", escape(ns)))
        .collect();
    format!(
        "<managed-object{decls}>{}</managed-object>",
        escape(&object.path)
    )
}

#[derive(Default, Serialize, Deserialize)]
struct State {
    alarms: Vec<Alarm>,
    last_changed: Option<DateTime<Utc>>,
    #[serde(skip)]
    filter_level: Option<Severity>,
}

/// The alarm list.
#[derive(Default)]
pub struct AlarmList {
    state: Mutex<State>,
    /// Where it is saved; `None` keeps it in memory only (tests).
    file: Option<PathBuf>,
    /// The schema, to read alarms written by packages and to find alarms by data path.
    ctx: Option<&'static yang5::context::Context>,
    /// Where each `alarm-notification` goes (the `ncs-alarms` stream).
    notifier: Option<Arc<Notifier>>,
}

/// Status changes kept per alarm; older ones are dropped.
const MAX_HISTORY: usize = 100;

/// Which alarms `purge-alarms` removes.
#[derive(Debug, Clone, Default)]
pub struct PurgeFilter {
    /// `Some(true)`: only cleared alarms; `Some(false)`: only alarms that are not cleared.
    pub cleared: Option<bool>,
    /// Only alarms whose last status change is older than this.
    pub older_than: Option<chrono::Duration>,
    /// Only alarms in this handling state.
    pub handling: Option<HandlingState>,
}

impl AlarmList {
    /// The alarm list saved in `state_dir` (`alarms.json`), or an empty one; `ctx` is the
    /// schema. Every change is published as an `alarm-notification` on `notifier`'s
    /// `ncs-alarms` stream.
    pub fn open(
        ctx: &'static yang5::context::Context,
        state_dir: &Path,
        notifier: Arc<Notifier>,
    ) -> AlarmList {
        let file = state_dir.join("alarms.json");
        crate::datastore::remove_stale_temp(&file);
        let state = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                warn!(file = %file.display(), error = %e, "the saved alarms do not parse; starting with none");
                State::default()
            }),
            Err(_) => State::default(),
        };
        AlarmList {
            state: Mutex::new(state),
            file: Some(file),
            ctx: Some(ctx),
            notifier: Some(notifier),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Saves the list (called with the state locked, so saves happen in order).
    fn save(&self, state: &State) {
        let Some(file) = &self.file else {
            return;
        };
        let result = serde_json::to_vec(state)
            .map_err(std::io::Error::other)
            .and_then(|bytes| crate::datastore::write_atomically(file, &bytes));
        if let Err(e) = result {
            warn!(file = %file.display(), error = %e, "cannot save the alarm list");
        }
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
            .any(|a| &a.key == key && !a.is_cleared());
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
        let class = match state.alarms.iter_mut().find(|a| a.key == key) {
            Some(alarm) => {
                let last = alarm.last();
                if !every_time && last.severity == severity && last.text == text {
                    return;
                }
                let class = match (alarm.is_cleared(), severity) {
                    (_, Severity::Cleared) => "cleared-alarm",
                    (true, _) => "new-alarm",
                    (false, _) => "changed-alarm",
                };
                alarm.history.push(change);
                if alarm.history.len() > MAX_HISTORY {
                    alarm.history.remove(0);
                }
                class
            }
            None => {
                state.alarms.push(Alarm {
                    key: key.clone(),
                    history: vec![change],
                    handling: Vec::new(),
                });
                "new-alarm"
            }
        };
        state.last_changed = Some(now);
        self.save(state);
        let Some(notifier) = &self.notifier else {
            return;
        };
        let xml = format!(
            "<alarm-notification xmlns=\"{NS_ALARMS}\"><alarm-class>{class}</alarm-class><device>{}</device>{}{}\
             <specific-problem>{}</specific-problem><event-type>other</event-type>\
             <has-clear>true</has-clear><kind-of-alarm>unknown</kind-of-alarm>\
             <probable-cause>0</probable-cause><event-time>{}</event-time>\
             <perceived-severity>{}</perceived-severity><alarm-text>{}</alarm-text>\
             </alarm-notification>",
            escape(&key.device),
            type_xml(&key.alarm_type),
            managed_object_xml(&key.managed_object),
            escape(&key.specific_problem),
            date_time(now),
            severity.as_str(),
            escape(text),
        );
        // Published with the list locked, so the stream has the changes in their order.
        if let Err(e) = notifier.publish(ALARMS_STREAM, &xml) {
            warn!(error = %e, "cannot publish an alarm-notification");
        }
    }

    /// The index of the alarm whose entry has the data path `path`.
    fn find(&self, state: &State, path: &str) -> Option<usize> {
        let ctx = self.ctx?;
        state.alarms.iter().position(|alarm| {
            DataTree::parse_string(
                ctx,
                alarm.key_xml(),
                DataFormat::XML,
                DataParserFlags::STRICT | DataParserFlags::NO_VALIDATION,
                DataValidationFlags::empty(),
            )
            .ok()
            .and_then(|tree| {
                crate::datastore::find_xpath(&tree, &format!("{ALARM_LIST_PATH}/alarm"))
                    .ok()?
                    .into_iter()
                    .next()
                    .map(|n| n.path())
            })
            .is_some_and(|p| p == path)
        })
    }

    /// `handle-alarm` of the alarm at `path` (its data path): records a handling state.
    /// False if there is no such alarm.
    pub fn handle(
        &self,
        path: &str,
        state_value: HandlingState,
        user: &str,
        description: &str,
    ) -> bool {
        let mut state = self.state();
        let Some(i) = self.find(&state, path) else {
            return false;
        };
        state.alarms[i].handling.push(Handling {
            time: Utc::now(),
            state: state_value,
            user: user.to_owned(),
            description: description.to_owned(),
        });
        if state.alarms[i].handling.len() > MAX_HISTORY {
            state.alarms[i].handling.remove(0);
        }
        state.last_changed = Some(Utc::now());
        self.save(&state);
        true
    }

    /// `purge` of the alarm at `path`: removes it. False if there is no such alarm.
    pub fn purge(&self, path: &str) -> bool {
        let mut state = self.state();
        let Some(i) = self.find(&state, path) else {
            return false;
        };
        state.alarms.remove(i);
        state.last_changed = Some(Utc::now());
        self.save(&state);
        true
    }

    /// `purge-alarms`: removes the alarms that `filter` selects; returns how many.
    pub fn purge_matching(&self, filter: &PurgeFilter) -> usize {
        let mut state = self.state();
        let now = Utc::now();
        let before = state.alarms.len();
        state.alarms.retain(|alarm| {
            let selected = filter.cleared.is_none_or(|c| alarm.is_cleared() == c)
                && filter
                    .older_than
                    .is_none_or(|age| now - alarm.last().time > age)
                && filter.handling.is_none_or(|h| alarm.handling_state() == h);
            !selected
        });
        let purged = before - state.alarms.len();
        if purged > 0 {
            state.last_changed = Some(now);
            self.save(&state);
        }
        purged
    }

    /// Applies what package code wrote under `/al:alarms/alarm-list` in an operational
    /// transaction: an entry written raises (or, with `is-cleared` true, clears) that alarm
    /// with its `last-perceived-severity` and `last-alarm-text`; an entry deleted is purged.
    pub fn apply_package_writes(&self, trans: &Transaction) {
        let prefix = format!("{ALARM_LIST_PATH}/alarm[");
        let mut entries: Vec<String> = Vec::new();
        for path in trans.changed_paths() {
            if !path.starts_with(&prefix) {
                continue;
            }
            // The entry: the first three steps (alarms, alarm-list, alarm[...]).
            let Some(entry) = path_steps(path)
                .get(..3)
                .map(|steps| format!("/{}", steps.join("/")))
            else {
                continue;
            };
            if !entries.contains(&entry) {
                entries.push(entry);
            }
        }
        for entry in entries {
            match trans.data_node(&entry) {
                Some(node) => self.apply_entry(&node),
                None => {
                    self.purge(&entry);
                }
            }
        }
    }

    fn apply_entry(&self, node: &DataNodeRef<'_>) {
        let Some(ctx) = self.ctx else {
            return;
        };
        let leaf = |name: &str| {
            node.children()
                .find(|c| c.schema().name() == name)
                .and_then(|c| c.value_canonical())
        };
        let (Some(device), Some(type_value), Some(object)) =
            (leaf("device"), leaf("type"), leaf("managed-object"))
        else {
            return;
        };
        let Some((module, name)) = type_value.split_once(':') else {
            return;
        };
        let Some(namespace) = ctx
            .get_module_latest(module)
            .map(|m| m.namespace().to_owned())
        else {
            return;
        };
        let key = AlarmKey {
            device,
            alarm_type: AlarmType {
                module: module.to_owned(),
                namespace,
                name: name.to_owned(),
            },
            managed_object: ManagedObject::from_canonical(ctx, &object),
            specific_problem: leaf("specific-problem").unwrap_or_default(),
        };
        let text = leaf("last-alarm-text").unwrap_or_default();
        if leaf("is-cleared").as_deref() == Some("true") {
            self.clear(&key, &text);
        } else {
            let severity = leaf("last-perceived-severity")
                .and_then(|s| Severity::parse(&s))
                .unwrap_or(Severity::Indeterminate);
            self.raise(key, severity, &text);
        }
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
            let _ = write!(
                out,
                "<alarm><device>{}</device>{}{}<specific-problem>{}</specific-problem>\
                 <is-cleared>{}</is-cleared><last-status-change>{}</last-status-change>\
                 <last-perceived-severity>{}</last-perceived-severity>\
                 <last-alarm-text>{}</last-alarm-text>",
                escape(&key.device),
                type_xml(&key.alarm_type),
                managed_object_xml(&key.managed_object),
                escape(&key.specific_problem),
                alarm.is_cleared(),
                date_time(last.time),
                alarm.last_severity().as_str(),
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
            if let Some(last) = alarm.handling.last() {
                let _ = write!(
                    out,
                    "<last-alarm-handling-change>{}</last-alarm-handling-change>",
                    date_time(last.time)
                );
            }
            for handling in &alarm.handling {
                let _ = write!(
                    out,
                    "<alarm-handling><time>{}</time><state>{}</state><user>{}</user>\
                     <description>{}</description></alarm-handling>",
                    date_time(handling.time),
                    handling.state.as_str(),
                    escape(&handling.user),
                    escape(&handling.description)
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
            alarm_type: AlarmType::ncs("package-load-failure"),
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

    #[test]
    fn alarms_are_saved_and_each_change_is_a_notification() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = crate::yang::test_context();
        let notifier = Arc::new(
            Notifier::open(crate::notify::NotifyOptions {
                dir: None,
                limits: Default::default(),
                queue_depth: 100,
            })
            .unwrap(),
        );
        let mut stream = notifier.subscribe(ALARMS_STREAM, None).unwrap();
        let list = AlarmList::open(ctx, dir.path(), Arc::clone(&notifier));
        list.raise(key("p"), Severity::Major, "down");
        list.raise(key("p"), Severity::Critical, "worse");
        list.clear(&key("p"), "up");
        list.raise(key("p"), Severity::Minor, "again");
        let mut classes = Vec::new();
        while let Ok(event) = stream.events.try_recv() {
            let body = event.body();
            classes.push(
                body.split("<alarm-class>")
                    .nth(1)
                    .unwrap_or("")
                    .split('<')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
            // Each is a valid alarm-notification.
            DataTree::parse_op_string(
                ctx,
                body,
                DataFormat::XML,
                DataParserFlags::STRICT,
                yang5::data::DataOperation::NotificationYang,
            )
            .unwrap_or_else(|e| panic!("{e}: {body}"));
        }
        assert_eq!(
            classes,
            ["new-alarm", "changed-alarm", "cleared-alarm", "new-alarm"]
        );
        drop(list);
        let again = AlarmList::open(ctx, dir.path(), notifier);
        let xml = again.to_xml();
        assert!(
            xml.contains("<last-alarm-text>again</last-alarm-text>"),
            "{xml}"
        );
    }
}
