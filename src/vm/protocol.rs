//! The messages between the server and a Python VM process.
//!
//! Each message is a 4-byte big-endian length followed by that many bytes of JSON (as NSO does
//! for its Python VMs). JSON keeps the protocol debuggable and versionable: `VmStart.protocol`
//! carries [`PROTOCOL_VERSION`], and a VM refuses a parent that speaks another version.
//! Requests of the VM ([`FromVm::Request`], the transactions of the Python API) carry ids, so
//! that several Python threads can wait for their answers ([`ToVm::Reply`]) at once.

use std::io::{Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Bumped whenever a message changes incompatibly.
pub const PROTOCOL_VERSION: u32 = 3;

/// The largest message either side accepts (a guard against a corrupted stream).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A Python log level, as `/python-vm/logging/level` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// `level-debug`
    LevelDebug,
    /// `level-info`
    LevelInfo,
    /// `level-warning`
    LevelWarning,
    /// `level-error`
    LevelError,
    /// `level-critical`
    LevelCritical,
    /// `level-off`: nothing is logged.
    LevelOff,
}

impl LogLevel {
    /// Parses the YANG enum value (`level-info`, ...).
    pub fn parse(value: &str) -> Option<LogLevel> {
        Some(match value {
            "level-debug" => LogLevel::LevelDebug,
            "level-info" => LogLevel::LevelInfo,
            "level-warning" => LogLevel::LevelWarning,
            "level-error" => LogLevel::LevelError,
            "level-critical" => LogLevel::LevelCritical,
            "level-off" => LogLevel::LevelOff,
            _ => return None,
        })
    }

    /// The Python `logging` level number (`level-off` is above CRITICAL).
    pub fn python_level(self) -> u32 {
        match self {
            LogLevel::LevelDebug => 10,
            LogLevel::LevelInfo => 20,
            LogLevel::LevelWarning => 30,
            LogLevel::LevelError => 40,
            LogLevel::LevelCritical => 50,
            LogLevel::LevelOff => 100,
        }
    }
}

/// `/python-vm/sanity-checks/self-assign-warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SelfAssignMode {
    /// Raise an alarm and log.
    Alarm,
    /// Log a warning.
    Log,
    /// Do nothing.
    Off,
}

/// One component a VM runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmComponent {
    /// The component name from package-meta-data.xml.
    pub name: String,
    /// `module.Class` (or a bare class name, deprecated: then the module is the component name).
    pub class_name: String,
    /// For a notification source: its stream and options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourceSettings>,
}

/// What a component's `notification-source` says: the stream its source posts to by default,
/// and its options.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceSettings {
    /// The stream; `None` leaves it to the class (`stream = "..."`).
    pub stream: Option<String>,
    /// `init(options)` gets these (configuration may override them).
    pub options: std::collections::BTreeMap<String, String>,
}

/// One package a VM loads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmPackage {
    /// The package name.
    pub name: String,
    /// Its application components, started in this order.
    pub components: Vec<VmComponent>,
}

/// Everything a VM needs to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmStart {
    /// Must equal [`PROTOCOL_VERSION`].
    pub protocol: u32,
    /// The VM name (the node-id of `/python-vm/status`).
    pub vm_name: String,
    /// The VM's own log file (`<log-dir>/<prefix>-<vm>.log`).
    pub log_file: PathBuf,
    /// The effective log level of this VM.
    pub log_level: LogLevel,
    /// The self-assign check mode.
    pub self_assign: SelfAssignMode,
    /// Directories prepended to `sys.path`: each package's `python/`, then those of the
    /// packages it requires, transitively.
    pub sys_path: Vec<PathBuf>,
    /// Site-packages directories of virtualenvs named by `python/use_venv`.
    pub site_dirs: Vec<PathBuf>,
    /// The packages, in dependency order.
    pub packages: Vec<VmPackage>,
}

/// The answer to a [`FromVm::Request`], handed to Python as JSON: `{"ok": true, "value": ...}`
/// or `{"ok": false, "code": "noexists", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the request succeeded.
    pub ok: bool,
    /// The result, when it succeeded.
    #[serde(default)]
    pub value: serde_json::Value,
    /// The error class, when it failed (`noexists`, `badpath`, ...; see `runtime::maapi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// What went wrong, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Reply {
    /// A success carrying `value`.
    pub fn ok(value: serde_json::Value) -> Reply {
        Reply {
            ok: true,
            value,
            code: None,
            message: None,
        }
    }

    /// A failure.
    pub fn error(code: &str, message: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            value: serde_json::Value::Null,
            code: Some(code.to_owned()),
            message: Some(message.into()),
        }
    }
}

/// A component whose class cannot be imported, and where the error is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProblem {
    /// The package.
    pub package: String,
    /// The component.
    pub component: String,
    /// Its `python-class-name`.
    pub class_name: String,
    /// The Python file where the error is, when Python names one in the package's code.
    pub file: Option<PathBuf>,
    /// The line in `file`.
    pub line: Option<u32>,
    /// The error: the last line of the traceback.
    pub message: String,
}

/// Messages from the server to a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ToVm {
    /// The first message of a VM: load and start the components.
    Start(VmStart),
    /// The first message of a short-lived upgrade VM: run the upgrade components of the one
    /// package in `start.packages` (in order), answer [`FromVm::Upgraded`], and exit.
    Upgrade {
        /// Paths, log and packages as for a VM (the components are upgrade components).
        start: VmStart,
        /// The handle of the write transaction handed to `upgrade()` as `trans`; the server
        /// applies it when every component succeeded.
        th: u64,
        /// The handle of the read transaction behind `cdbsock`: the data as it was before.
        cdb_th: u64,
    },
    /// The first message of a short-lived check VM (`pyvmd check-packages`): import the module
    /// of every component in `packages` and look its class up, instantiating nothing; answer
    /// [`FromVm::Checked`] and exit.
    Check(VmStart),
    /// The answer to a [`FromVm::Request`].
    Reply {
        /// The request's id.
        id: u64,
        /// The answer.
        reply: Reply,
    },
    /// The effective log level changed; applies at once.
    SetLogLevel {
        /// The new level.
        level: LogLevel,
    },
    /// The self-assign check mode changed.
    SetSelfAssign {
        /// The new mode.
        mode: SelfAssignMode,
    },
    /// A notification source's settings changed (its options in the configuration): the
    /// source runs again with them, on a new object.
    SetSourceSettings {
        /// The package.
        package: String,
        /// The component.
        component: String,
        /// The new settings.
        settings: SourceSettings,
    },
    /// Run a callback of package code (an action's `cb_action`, ...) in a Python thread of its
    /// own, and answer [`FromVm::CallResult`] with the same id. The reader thread must not run
    /// it: the callback's own transaction requests need the reader to deliver their replies.
    Call {
        /// Chosen by the server, unique among its calls to this VM.
        id: u64,
        /// `{"kind": "action", "point": ..., ...}`; see `ncs._vm.dispatch`.
        call: serde_json::Value,
    },
    /// A call ran past its timeout (its caller has had an error): raise `TimeoutError` in
    /// the thread that runs it, so that a callback caught in a Python loop ends.
    Cancel {
        /// The call's id.
        id: u64,
    },
    /// Run every component's `teardown()`, answer [`FromVm::Stopped`], and exit.
    Stop,
    /// A liveness check: the VM answers [`FromVm::Pong`] once it holds the GIL, so a VM whose
    /// interpreter is stuck is found out.
    Ping {
        /// Echoed in the answer.
        id: u64,
    },
}

/// Whether a component started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ComponentState {
    /// `setup()` returned.
    Started,
    /// Import, construction or `setup()` raised.
    Failed,
}

/// Whether an entry of `/python-vm/status/current` is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadState {
    /// Running.
    Running,
    /// Finished.
    Finished,
}

/// One entry of `/python-vm/status/current`: a component thread (`ComponentThread:<name>`), a
/// registered callback (`"<point> (service)"`, `"<point> (action)"`), or a user thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentEntry {
    /// The package.
    pub package: String,
    /// The component.
    pub component: String,
    /// The entry's name (the `class-names` key).
    pub class_name: String,
    /// Running or finished.
    pub state: ThreadState,
}

/// Messages from a VM to the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FromVm {
    /// The outcome of starting one component (one message per component, in start order).
    ComponentStatus {
        /// The package.
        package: String,
        /// The component.
        component: String,
        /// The class it runs.
        class_name: String,
        /// Started or failed.
        state: ComponentState,
        /// Why it failed: the error (last line of the traceback for import errors).
        error_info: Option<String>,
    },
    /// Every component was processed; the VM is up.
    Ready,
    /// The full current list of this VM, sent whenever it changes.
    Current {
        /// All entries.
        entries: Vec<CurrentEntry>,
    },
    /// Teardown finished; the VM exits next.
    Stopped,
    /// The answer to [`ToVm::Ping`].
    Pong {
        /// The ping's id.
        id: u64,
    },
    /// A request of the Python API (a transaction operation, a schema lookup), as the JSON
    /// object Python built; answered by [`ToVm::Reply`] with the same id.
    Request {
        /// Chosen by the VM, unique among its pending requests.
        id: u64,
        /// `{"op": "get-elem", "th": 1, "path": "/ncs:..."}` and the like.
        request: serde_json::Value,
    },
    /// The answer to a [`ToVm::Call`].
    CallResult {
        /// The call's id.
        id: u64,
        /// What the callback gave: its output, or the error (`code` names the kind).
        reply: Reply,
    },
    /// Package code assigned to `self` in a callback while the self-assign check is `alarm`:
    /// the server raises (or updates) the alarm for `keypath`.
    SelfAssignAlarm {
        /// The service instance or action, in NSO keypath form.
        keypath: String,
        /// The warning text.
        text: String,
        /// The alarm's managed object: an instance-identifier (as the server gave it in the
        /// call)...
        managed_object: String,
        /// ...and the (prefix, namespace) pairs its prefixes need.
        prefixes: Vec<(String, String)>,
    },
    /// The upgrade components ran: `error` is `None` when all succeeded.
    Upgraded {
        /// The first failure (component and error).
        error: Option<String>,
    },
    /// The answer to [`ToVm::Check`]: the components whose class cannot be imported.
    Checked {
        /// One per failing component, in start order.
        problems: Vec<ImportProblem>,
    },
    /// The VM cannot run at all (e.g. no usable Python, wrong protocol version).
    Fatal {
        /// What went wrong, for logs and status.
        message: String,
    },
}

/// One message as it goes on the wire: its length (4 bytes, big-endian), then its JSON. Built
/// in one buffer so that a message leaves in one write.
pub fn encode_message<M: Serialize>(message: &M) -> std::io::Result<Vec<u8>> {
    let mut frame = vec![0u8; 4];
    serde_json::to_writer(&mut frame, message)?;
    let len = u32::try_from(frame.len() - 4)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "message too large"))?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

/// Writes one message.
pub fn write_message<W: Write, M: Serialize>(out: &mut W, message: &M) -> std::io::Result<()> {
    out.write_all(&encode_message(message)?)?;
    out.flush()
}

/// Reads one message; `Ok(None)` at a clean end of stream.
pub fn read_message<R: Read, M: for<'de> Deserialize<'de>>(
    input: &mut R,
) -> std::io::Result<Option<M>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let start = ToVm::Start(VmStart {
            protocol: PROTOCOL_VERSION,
            vm_name: "vm".into(),
            log_file: "/tmp/x.log".into(),
            log_level: LogLevel::LevelInfo,
            self_assign: SelfAssignMode::Alarm,
            sys_path: vec!["/p/python".into()],
            site_dirs: vec![],
            packages: vec![VmPackage {
                name: "p".into(),
                components: vec![VmComponent {
                    name: "main".into(),
                    class_name: "m.App".into(),
                    source: None,
                }],
            }],
        });
        let mut buf = Vec::new();
        write_message(&mut buf, &start).unwrap();
        write_message(&mut buf, &ToVm::Stop).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_message::<_, ToVm>(&mut r).unwrap(), Some(start));
        assert_eq!(read_message::<_, ToVm>(&mut r).unwrap(), Some(ToVm::Stop));
        assert_eq!(read_message::<_, ToVm>(&mut r).unwrap(), None);
        assert_eq!(LogLevel::parse("level-off"), Some(LogLevel::LevelOff));
        let json = serde_json::to_string(&ToVm::SetLogLevel {
            level: LogLevel::LevelDebug,
        })
        .unwrap();
        assert_eq!(json, r#"{"type":"set-log-level","level":"level-debug"}"#);
    }
}
