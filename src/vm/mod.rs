//! The child side of a Python VM: a `pyvmd vm` process that embeds CPython.
//!
//! `pyvmd serve` starts one process per VM (re-executing itself as `pyvmd vm`) with one end of a
//! socketpair as fd 3 (`PYVMD_VM_FD`), stdin from `/dev/null` and stdout/stderr into the shared
//! `ncs-python-vm.log`. The conversation ([`protocol`]):
//!
//! ```text
//! server → VM   Start{packages, paths, log file, level, ...}
//! VM → server   ComponentStatus (one per component, in order), Current (whenever it changes),
//!               Ready
//! server → VM   SetLogLevel / SetSelfAssign / SetSourceSettings (any time), Stop
//! VM → server   Stopped, then the VM exits 0
//! ```
//!
//! At any time after the start, Python code may send a `Request` (a transaction operation of
//! `ncs.maapi`/`ncs.maagic`/`_ncs.cdb`) and block until its `Reply`. An upgrade VM gets
//! `Upgrade` instead of `Start`, runs the package's upgrade components with the transactions the
//! server opened for them, answers `Upgraded` and exits.
//!
//! The main thread reads `Start`, initialises Python and starts the components; a reader thread
//! then handles the messages that follow, so a level change applies even while a component's
//! `setup()` is still running. The VM dies with the server: `PR_SET_PDEATHSIG` (SIGKILL), and an
//! end of stream on the socket makes it exit at once. Python is never finalised: the process
//! exits with package threads still running, as a stopped NSO VM does.
//!
//! Modules: [`protocol`] (the messages), `interp` (interpreter start, embedded `ncs` sources),
//! `native` (the `_pyvmd` module and shared state), `vmlog` (the log file). The Python half of the
//! lifecycle is `python/ncs/_vm.py`.

pub mod protocol;

mod interp;
mod native;
mod vmlog;

use std::io::BufReader;
use std::os::fd::{FromRawFd as _, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use pyo3::prelude::*;

use protocol::{FromVm, ImportProblem, PROTOCOL_VERSION, ToVm, VmComponent, VmStart, read_message};
use vmlog::VmLog;

/// The environment variable naming the socket's file descriptor.
pub const VM_FD_ENV: &str = "PYVMD_VM_FD";

/// The socket's file descriptor when [`VM_FD_ENV`] is not set.
pub const DEFAULT_VM_FD: RawFd = 3;

/// Exit status after `Stop`, or when the server closed the socket.
pub const EXIT_OK: i32 = 0;
/// Exit status when the VM cannot talk to the server (no socket, bad first message, wrong
/// protocol version, log file not writable).
pub const EXIT_SETUP: i32 = 2;
/// Exit status when Python cannot run.
pub const EXIT_NO_PYTHON: i32 = 3;

/// How long `Stop` waits for each component's `teardown()`.
pub const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// The thread name of the log lines that the VM itself writes (Python's name of this thread).
const MAIN_THREAD: &str = "MainThread";

/// What the first message asks of this VM.
enum FirstJob {
    /// Run the components until `Stop`.
    Start,
    /// Run the upgrade components with these transactions, then exit.
    Upgrade { th: u64, cdb_th: u64 },
    /// Import the components' classes, report, exit.
    Check,
}

/// Runs a VM: the `pyvmd vm` subcommand. Never returns: the process exits with [`EXIT_OK`],
/// [`EXIT_SETUP`] or [`EXIT_NO_PYTHON`] (returning would run Rust destructors while Python
/// threads still run).
pub fn run_vm() -> ! {
    let code = match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("pyvmd vm: {message}");
            EXIT_SETUP
        }
    };
    // Python's stdio is unbuffered (see `interp::initialize`): nothing is left to flush.
    std::process::exit(code)
}

/// How a component's class is found: `module.Class`, or a bare class name (deprecated) whose
/// module is named after the component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassRef {
    /// The module to import.
    pub module: String,
    /// The class in it.
    pub class: String,
    /// The class name had no module part.
    pub deprecated: bool,
}

/// Splits a `python-class-name` into module and class (at the last dot). Surrounding
/// whitespace, which XML indentation may leave, is ignored.
pub fn split_class_name(component: &str, class_name: &str) -> Result<ClassRef, String> {
    let name = class_name.trim();
    let invalid = || format!("invalid python-class-name {class_name:?}");
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    match name.rsplit_once('.') {
        Some((module, class)) => {
            if class.is_empty() || module.split('.').any(str::is_empty) {
                return Err(invalid());
            }
            Ok(ClassRef {
                module: module.to_owned(),
                class: class.to_owned(),
                deprecated: false,
            })
        }
        None => Ok(ClassRef {
            module: component.to_owned(),
            class: name.to_owned(),
            deprecated: true,
        }),
    }
}

/// Sets `PR_SET_PDEATHSIG` so the VM is killed when the server dies. The server sets it too
/// (before exec); setting it again here covers a VM started by something else.
fn die_with_parent() {
    // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
    unsafe {
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
}

/// Takes ownership of the socket to the server.
fn take_socket() -> Result<UnixStream, String> {
    let fd = match std::env::var(VM_FD_ENV) {
        Ok(value) => value
            .parse::<RawFd>()
            .map_err(|_| format!("{VM_FD_ENV}={value:?} is not a file descriptor"))?,
        Err(_) => DEFAULT_VM_FD,
    };
    // SAFETY: fcntl on an arbitrary integer is safe: an fd that is not open gives -1 (EBADF).
    // FD_CLOEXEC keeps the socket out of processes that packages start: a long-lived
    // subprocess holding it would hide this VM's death from the server.
    let ok = unsafe {
        libc::fcntl(fd, libc::F_GETFD) >= 0 && libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) >= 0
    };
    if !ok || fd < 0 {
        return Err(format!(
            "file descriptor {fd} is not open: `pyvmd vm` is started by `pyvmd serve` with its \
             socket as fd {fd}"
        ));
    }
    // SAFETY: the fd is open (checked above) and nothing else in this process owns it: it was
    // inherited from the server for this purpose, and it is taken once.
    Ok(unsafe { UnixStream::from_raw_fd(fd) })
}

/// Sends `Fatal` (ignoring a broken socket) and returns the message for stderr.
fn fatal(writer: &mut UnixStream, message: String) -> String {
    let _ = protocol::write_message(
        writer,
        &FromVm::Fatal {
            message: message.clone(),
        },
    );
    message
}

/// The VM proper; `Err` is a message for stderr (the server got it as `Fatal` where possible).
fn run() -> Result<i32, String> {
    die_with_parent();
    let socket = take_socket()?;
    let mut writer = socket
        .try_clone()
        .map_err(|e| format!("cloning the socket: {e}"))?;
    let mut reader = BufReader::new(socket);

    // The first message is read as plain JSON and its version checked before it is decoded:
    // a server of another version may send a start message of another shape, and it should
    // hear "version mismatch", not a decoding error.
    let first = match read_message::<_, serde_json::Value>(&mut reader) {
        Ok(Some(first)) => first,
        // The server went away before it said anything: nothing to do.
        Ok(None) => return Ok(EXIT_OK),
        Err(e) => {
            return Err(fatal(
                &mut writer,
                format!("reading the start message: {e}"),
            ));
        }
    };
    let kind = first.get("type").and_then(serde_json::Value::as_str);
    let versioned = match kind {
        Some("upgrade") => first.get("start"),
        _ => Some(&first),
    };
    let protocol = versioned
        .and_then(|v| v.get("protocol"))
        .and_then(serde_json::Value::as_u64);
    if matches!(kind, Some("start" | "upgrade" | "check"))
        && protocol != Some(u64::from(PROTOCOL_VERSION))
    {
        let theirs = protocol.map_or_else(|| "an unknown version".to_owned(), |v| v.to_string());
        return Err(fatal(
            &mut writer,
            format!(
                "protocol version mismatch: the server speaks {theirs}, this VM speaks \
                 {PROTOCOL_VERSION}"
            ),
        ));
    }
    let (start, first_job) = match serde_json::from_value::<ToVm>(first) {
        Ok(ToVm::Start(start)) => (start, FirstJob::Start),
        Ok(ToVm::Upgrade { start, th, cdb_th }) => (start, FirstJob::Upgrade { th, cdb_th }),
        Ok(ToVm::Check(start)) => (start, FirstJob::Check),
        Ok(other) => {
            return Err(fatal(
                &mut writer,
                format!("expected a start message first, got {other:?}"),
            ));
        }
        Err(e) => {
            return Err(fatal(
                &mut writer,
                format!("decoding the start message: {e}"),
            ));
        }
    };
    let log = VmLog::open(&start.log_file, &start.vm_name, start.log_level).map_err(|e| {
        fatal(
            &mut writer,
            format!("opening the log file {}: {e}", start.log_file.display()),
        )
    })?;
    native::install(start.vm_name.clone(), log, writer, start.self_assign);
    let state = native::state().ok_or("the VM state was not installed")?;

    state.log.write(
        vmlog::INFO,
        MAIN_THREAD,
        &format!(
            "Starting Python VM {} (pid {})",
            start.vm_name,
            std::process::id()
        ),
    );
    if let Err(message) = interp::initialize() {
        state.log.write(vmlog::CRITICAL, MAIN_THREAD, &message);
        state.send(&FromVm::Fatal {
            message: message.clone(),
        });
        eprintln!("pyvmd vm {}: {message}", start.vm_name);
        return Ok(EXIT_NO_PYTHON);
    }
    state.log.write(
        vmlog::INFO,
        MAIN_THREAD,
        &format!("Python {}", Python::version_str().replace('\n', " ")),
    );
    let prepared = Python::attach(|py| {
        interp::prepare(
            py,
            &start.sys_path,
            &start.site_dirs,
            start.log_level.python_level(),
        )
        .map_err(|e| interp::format_traceback(py, &e))
    });
    if let Err(traceback) = prepared {
        let message = format!(
            "no usable Python: preparing the interpreter failed: {}",
            traceback
                .trim_end()
                .lines()
                .last()
                .unwrap_or("unknown error")
        );
        state.log.write(vmlog::CRITICAL, MAIN_THREAD, &traceback);
        eprintln!("pyvmd vm {}: {message}\n{traceback}", start.vm_name);
        state.send(&FromVm::Fatal {
            message: message.clone(),
        });
        return Ok(EXIT_NO_PYTHON);
    }

    let (stop_tx, stop_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("pyvmd-reader".into())
        .spawn(move || read_loop(reader, stop_tx))
        .map_err(|e| format!("starting the reader thread: {e}"))?;

    match first_job {
        FirstJob::Start => {}
        FirstJob::Upgrade { th, cdb_th } => {
            let error = run_upgrades(state, &start, th, cdb_th);
            state.send(&FromVm::Upgraded { error });
            return Ok(EXIT_OK);
        }
        FirstJob::Check => {
            let problems = check_imports(state, &start);
            state.send(&FromVm::Checked { problems });
            return Ok(EXIT_OK);
        }
    }

    start_components(state, &start);
    state.send(&FromVm::Ready);
    state.log.write(vmlog::INFO, MAIN_THREAD, "Started");

    // The reader thread exits the process itself on an end of stream, so the channel only
    // closes if that thread died; then nothing can stop the VM in order any more.
    if stop_rx.recv().is_err() {
        return Ok(EXIT_OK);
    }
    state.log.write(vmlog::INFO, MAIN_THREAD, "Stopping");
    Python::attach(|py| {
        let stopped = py
            .import("ncs._vm")
            .and_then(|vm| vm.call_method1("stop_components", (TEARDOWN_TIMEOUT.as_secs_f64(),)));
        if let Err(e) = stopped {
            state.log.write(
                vmlog::ERROR,
                MAIN_THREAD,
                &format!(
                    "stopping the components: {}",
                    interp::format_traceback(py, &e)
                ),
            );
        }
    });
    state.send(&FromVm::Stopped);
    state.log.write(vmlog::INFO, MAIN_THREAD, "Stopped");
    Ok(EXIT_OK)
}

/// Starts every component in order; each reports its own status from its thread.
fn start_components(state: &native::VmState, start: &VmStart) {
    for package in &start.packages {
        for component in &package.components {
            start_component(state, &start.vm_name, &package.name, component);
        }
    }
}

/// Starts one component and waits until its `setup()` returned (or it failed).
fn start_component(state: &native::VmState, vm_name: &str, package: &str, component: &VmComponent) {
    if component.class_name.trim().is_empty() {
        // An empty python-class-name marks a library package: nothing runs.
        return;
    }
    let class = match split_class_name(&component.name, &component.class_name) {
        Ok(class) => class,
        Err(error) => {
            state.log.write(
                vmlog::ERROR,
                MAIN_THREAD,
                &format!("package {package}, component {}: {error}", component.name),
            );
            state.send(&FromVm::ComponentStatus {
                package: package.to_owned(),
                component: component.name.clone(),
                class_name: component.class_name.clone(),
                state: protocol::ComponentState::Failed,
                error_info: Some(error),
            });
            return;
        }
    };
    let source = component
        .source
        .as_ref()
        .and_then(|s| serde_json::to_string(s).ok());
    let spec = (
        package,
        &component.name,
        class.module,
        class.class,
        component.class_name.trim(),
        class.deprecated,
        source,
    );
    Python::attach(|py| {
        let started = py
            .import("ncs._vm")
            .and_then(|vm| vm.call_method1("start_components", (vm_name, vec![spec])));
        // ncs._vm catches everything package code raises; an error here is a bug of ours, but
        // it must still become a status rather than a hang or a panic.
        if let Err(e) = started {
            let traceback = interp::format_traceback(py, &e);
            state.log.write(vmlog::ERROR, MAIN_THREAD, &traceback);
            state.send(&FromVm::ComponentStatus {
                package: package.to_owned(),
                component: component.name.clone(),
                class_name: component.class_name.clone(),
                state: protocol::ComponentState::Failed,
                error_info: Some(traceback.trim_end().lines().last().unwrap_or("").to_owned()),
            });
        }
    });
}

/// Runs the upgrade components of the package in `start`, in order, until one fails; returns
/// that failure. Each runs in a `ComponentThread:<component>` thread (see `ncs._vm`).
fn run_upgrades(state: &native::VmState, start: &VmStart, th: u64, cdb_th: u64) -> Option<String> {
    for package in &start.packages {
        for component in &package.components {
            let class = match split_class_name(&component.name, &component.class_name) {
                Ok(class) => class,
                Err(error) => return Some(format!("component {}: {error}", component.name)),
            };
            state.log.write(
                vmlog::INFO,
                MAIN_THREAD,
                &format!(
                    "Running upgrade component {} ({}) of package {}",
                    component.name, component.class_name, package.name
                ),
            );
            let outcome = Python::attach(|py| {
                py.import("ncs._vm")
                    .and_then(|vm| {
                        vm.call_method1(
                            "run_upgrade",
                            (
                                &package.name,
                                &component.name,
                                &class.module,
                                &class.class,
                                th,
                                cdb_th,
                            ),
                        )
                    })
                    .and_then(|result| result.extract::<Option<String>>())
                    .map_err(|e| interp::format_traceback(py, &e))
            });
            let error = match outcome {
                Ok(None) => continue,
                Ok(Some(error)) => error,
                Err(traceback) => {
                    state.log.write(vmlog::ERROR, MAIN_THREAD, &traceback);
                    traceback.trim_end().lines().last().unwrap_or("").to_owned()
                }
            };
            return Some(format!("component {}: {error}", component.name));
        }
    }
    None
}

/// Imports every component's module and looks its class up (`ncs._vm.check_imports`),
/// instantiating nothing: what `pyvmd check-packages` asks of a VM.
fn check_imports(state: &native::VmState, start: &VmStart) -> Vec<ImportProblem> {
    let mut problems = Vec::new();
    let mut specs = Vec::new();
    for package in &start.packages {
        for component in &package.components {
            let problem = |message: String| ImportProblem {
                package: package.name.clone(),
                component: component.name.clone(),
                class_name: component.class_name.clone(),
                file: None,
                line: None,
                message,
            };
            match split_class_name(&component.name, &component.class_name) {
                Ok(class) => specs.push((
                    package.name.clone(),
                    component.name.clone(),
                    class.module,
                    class.class,
                    component.class_name.clone(),
                )),
                Err(error) => problems.push(problem(error)),
            }
        }
    }
    let checked = Python::attach(|py| {
        py.import("ncs._vm")
            .and_then(|vm| vm.call_method1("check_imports", (specs,)))
            .and_then(|found| {
                found
                    .extract::<Vec<(String, String, String, Option<String>, Option<u32>, String)>>()
            })
            .map_err(|e| interp::format_traceback(py, &e))
    });
    match checked {
        Ok(found) => problems.extend(found.into_iter().map(
            |(package, component, class_name, file, line, message)| ImportProblem {
                package,
                component,
                class_name,
                file: file.map(PathBuf::from),
                line,
                message,
            },
        )),
        Err(traceback) => {
            state.log.write(vmlog::ERROR, MAIN_THREAD, &traceback);
            problems.push(ImportProblem {
                package: String::new(),
                component: String::new(),
                class_name: String::new(),
                file: None,
                line: None,
                message: format!(
                    "the import check failed: {}",
                    traceback.trim_end().lines().last().unwrap_or("")
                ),
            });
        }
    }
    problems
}

/// Handles the messages after `Start`, on its own thread. Exits the process at the end of the
/// stream (the server is gone); forwards `Stop` to the main thread and goes on delivering
/// replies while it tears down.
fn read_loop(mut reader: BufReader<UnixStream>, stop: mpsc::Sender<()>) {
    let Some(state) = native::state() else {
        return;
    };
    // One Python thread state for the whole loop, released while the thread waits for the
    // socket: attaching afresh for each message would create and destroy a thread state (and
    // its frame stack) every time.
    let mut stopping = false;
    Python::attach(|py| {
        loop {
            match py.detach(|| read_message::<_, ToVm>(&mut reader)) {
                Ok(Some(ToVm::SetLogLevel { level })) => {
                    state.log.set_level(level);
                    let set = py
                        .import("ncs._vm")
                        .and_then(|vm| vm.call_method1("set_log_level", (level.python_level(),)));
                    if let Err(e) = set {
                        state.log.write(
                            vmlog::ERROR,
                            MAIN_THREAD,
                            &format!("setting the log level: {e}"),
                        );
                    }
                }
                Ok(Some(ToVm::SetSelfAssign { mode })) => state.set_self_assign(mode),
                Ok(Some(ToVm::SetSourceSettings {
                    package,
                    component,
                    settings,
                })) => {
                    let settings = serde_json::to_string(&settings).unwrap_or_default();
                    let restarted = py.import("ncs._vm").and_then(|vm| {
                        vm.call_method1("restart_source", (&package, &component, settings))
                    });
                    if let Err(e) = restarted {
                        state.log.write(
                            vmlog::ERROR,
                            MAIN_THREAD,
                            &format!("restarting source {component} of {package}: {e}"),
                        );
                    }
                }
                // Answered with the GIL in hand: what the server checks is that Python code can
                // still run here.
                Ok(Some(ToVm::Ping { id })) => state.send(&FromVm::Pong { id }),
                Ok(Some(ToVm::Stop)) => {
                    // The main thread tears down and exits. Reading goes on, so that teardown
                    // code (teardown(), a source's deinit()) still gets the answers to its
                    // requests; an end of stream from here on must not cut the teardown short
                    // (PDEATHSIG still kills the VM if the server dies).
                    let _ = stop.send(());
                    stopping = true;
                }
                Ok(Some(ToVm::Reply { id, reply })) => state.deliver(id, reply),
                Ok(Some(ToVm::Call { id, call })) => {
                    // ncs._vm.dispatch only hands the call to a thread of its pool and returns.
                    let dispatched = py
                        .import("ncs._vm")
                        .and_then(|vm| vm.call_method1("dispatch", (id, call.to_string())));
                    if let Err(e) = dispatched {
                        state.log.write(
                            vmlog::ERROR,
                            MAIN_THREAD,
                            &format!("dispatching call {id}: {e}"),
                        );
                        state.send(&FromVm::CallResult {
                            id,
                            reply: crate::vm::protocol::Reply::error(
                                "internal",
                                format!("the VM could not dispatch the call: {e}"),
                            ),
                        });
                    }
                }
                Ok(Some(ToVm::Cancel { id })) => {
                    if let Err(e) = py
                        .import("ncs._vm")
                        .and_then(|vm| vm.call_method1("cancel", (id,)))
                    {
                        let message = format!("cancelling call {id}: {e}");
                        state.log.write(vmlog::ERROR, MAIN_THREAD, &message);
                    }
                }
                Ok(Some(ToVm::Start(_) | ToVm::Upgrade { .. } | ToVm::Check(_))) => {
                    state.log.write(
                        vmlog::WARNING,
                        MAIN_THREAD,
                        "ignoring a second start message",
                    );
                }
                Ok(None) | Err(_) if stopping => return,
                Ok(None) => {
                    state.log.write(
                        vmlog::INFO,
                        MAIN_THREAD,
                        "The server closed the connection; exiting",
                    );
                    py.detach(|| std::process::exit(EXIT_OK));
                }
                Err(e) => {
                    state.log.write(
                        vmlog::ERROR,
                        MAIN_THREAD,
                        &format!("reading from the server: {e}; exiting"),
                    );
                    py.detach(|| std::process::exit(EXIT_SETUP));
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_split_at_the_last_dot() {
        assert_eq!(
            split_class_name("main", "l3vpn.l3vpn.Main"),
            Ok(ClassRef {
                module: "l3vpn.l3vpn".into(),
                class: "Main".into(),
                deprecated: false
            })
        );
        assert_eq!(
            split_class_name("main", "  pkg.App\n"),
            Ok(ClassRef {
                module: "pkg".into(),
                class: "App".into(),
                deprecated: false
            })
        );
    }

    #[test]
    fn bare_class_names_use_the_component_as_module() {
        assert_eq!(
            split_class_name("my-comp", "Main"),
            Ok(ClassRef {
                module: "my-comp".into(),
                class: "Main".into(),
                deprecated: true
            })
        );
    }

    #[test]
    fn malformed_class_names_are_errors() {
        for bad in ["", "  ", "pkg.", ".App", "a..App", "a b.App"] {
            assert!(split_class_name("c", bad).is_err(), "{bad:?}");
        }
    }
}
