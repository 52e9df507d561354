//! The native module `_pyvmd` and the VM state it reaches.
//!
//! Python code (`ncs._vm`, the embedded importer) calls these functions to write the log file,
//! report component statuses and keep `/python-vm/status/current`. The state lives in a
//! process-wide [`OnceLock`] because `#[pyfunction]`s have no other way to reach it; it is set
//! once, before the interpreter starts, by [`install`].

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};

use pyo3::prelude::*;

use super::protocol::{
    ComponentState, CurrentEntry, FromVm, Reply, SelfAssignMode, ThreadState, write_message,
};
use super::vmlog::VmLog;

/// Everything the native functions share with the rest of the VM.
pub struct VmState {
    /// The VM name.
    pub vm_name: String,
    /// The VM's log file.
    pub log: VmLog,
    /// The writing half of the socket to the server; one message at a time.
    writer: Mutex<UnixStream>,
    /// `/python-vm/status/current`, in insertion order.
    current: Mutex<Vec<CurrentEntry>>,
    /// The self-assign check mode (used by the callback dispatch).
    self_assign: Mutex<SelfAssignMode>,
    /// Requests waiting for their reply, by id.
    pending: Mutex<HashMap<u64, mpsc::Sender<Reply>>>,
    /// Requests sent without waiting ([`VmState::send_request`]): where their replies arrive.
    unclaimed: Mutex<HashMap<u64, mpsc::Receiver<Reply>>>,
    next_request: AtomicU64,
}

/// Waits for a reply. The sender goes away only if the reader thread dies; the VM exits then
/// anyway.
fn wait(reply: &mpsc::Receiver<Reply>) -> Reply {
    reply
        .recv()
        .unwrap_or_else(|_| Reply::error("internal", "the connection to the server is gone"))
}

static STATE: OnceLock<VmState> = OnceLock::new();

/// Installs the VM state; later calls are ignored (there is one VM per process).
pub fn install(vm_name: String, log: VmLog, writer: UnixStream, self_assign: SelfAssignMode) {
    let _ = STATE.set(VmState {
        vm_name,
        log,
        writer: Mutex::new(writer),
        current: Mutex::new(Vec::new()),
        self_assign: Mutex::new(self_assign),
        pending: Mutex::new(HashMap::new()),
        unclaimed: Mutex::new(HashMap::new()),
        next_request: AtomicU64::new(1),
    });
}

/// The VM state, once installed.
pub fn state() -> Option<&'static VmState> {
    STATE.get()
}

impl VmState {
    /// Sends a message to the server. A failure means the server is gone; the reader thread
    /// sees the end of the stream and exits the process, so the error is dropped here.
    pub fn send(&self, message: &FromVm) {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let _ = write_message(&mut *writer, message);
    }

    /// Sends a request to the server and waits for its reply (the reader thread delivers it).
    /// Call without the GIL: the reader thread needs it for other messages meanwhile.
    pub fn request(&self, request: serde_json::Value) -> Reply {
        let (_, reply) = self.start_request(request);
        wait(&reply)
    }

    /// Sends a request and returns at once; [`VmState::claim_reply`] waits for its reply. The
    /// server answers one VM's requests in the order they were sent, so a thread can send a
    /// run of writes and collect their replies later.
    pub fn send_request(&self, request: serde_json::Value) -> u64 {
        let (id, reply) = self.start_request(request);
        self.unclaimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, reply);
        id
    }

    /// Waits for the reply of a request sent with [`VmState::send_request`].
    pub fn claim_reply(&self, id: u64) -> Reply {
        let reply = self
            .unclaimed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        match reply {
            Some(reply) => wait(&reply),
            None => Reply::error("internal", format!("no request {id} is waiting")),
        }
    }

    fn start_request(&self, request: serde_json::Value) -> (u64, mpsc::Receiver<Reply>) {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = mpsc::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, reply_tx);
        self.send(&FromVm::Request { id, request });
        (id, reply_rx)
    }

    /// Hands a reply to the thread waiting for it (a reply nobody waits for is dropped).
    pub fn deliver(&self, id: u64, reply: Reply) {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(reply);
        }
    }

    /// Stores the self-assign mode.
    pub fn set_self_assign(&self, mode: SelfAssignMode) {
        *self.self_assign.lock().unwrap_or_else(|e| e.into_inner()) = mode;
    }

    /// The self-assign mode.
    pub fn self_assign(&self) -> SelfAssignMode {
        *self.self_assign.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Updates the current list with `change` and sends it if it changed. The list lock is held
    /// while sending so that the server receives the lists in the order they were made.
    fn update_current(&self, change: impl FnOnce(&mut Vec<CurrentEntry>) -> bool) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if change(&mut current) {
            self.send(&FromVm::Current {
                entries: current.clone(),
            });
        }
    }

    /// Adds or updates an entry of the current list.
    pub fn set_current(&self, package: &str, component: &str, name: &str, state: ThreadState) {
        self.update_current(|entries| {
            match entries
                .iter_mut()
                .find(|e| e.package == package && e.component == component && e.class_name == name)
            {
                Some(entry) if entry.state == state => false,
                Some(entry) => {
                    entry.state = state;
                    true
                }
                None => {
                    entries.push(CurrentEntry {
                        package: package.to_owned(),
                        component: component.to_owned(),
                        class_name: name.to_owned(),
                        state,
                    });
                    true
                }
            }
        });
    }

    /// Removes an entry of the current list.
    pub fn del_current(&self, package: &str, component: &str, name: &str) {
        self.update_current(|entries| {
            let before = entries.len();
            entries.retain(|e| {
                !(e.package == package && e.component == component && e.class_name == name)
            });
            entries.len() != before
        });
    }
}

/// The state, or a Python `RuntimeError` when the module is used outside a VM.
fn vm() -> PyResult<&'static VmState> {
    state().ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("not running in a pyvmd VM"))
}

/// A request of the Python API, from its JSON text.
fn request_json(request: &str) -> PyResult<serde_json::Value> {
    serde_json::from_str(request).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("a request must be JSON: {e}"))
    })
}

/// A reply as the JSON text Python reads.
fn reply_json(reply: &Reply) -> PyResult<String> {
    serde_json::to_string(reply)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))
}

/// The native half of the VM, imported by `ncs._vm` and the embedded importer.
#[pymodule]
pub mod _pyvmd {
    use super::*;

    /// Writes a log record (`created` is `LogRecord.created`) if the VM's level lets it through.
    #[pyfunction]
    fn log(py: Python<'_>, level: u32, thread: &str, created: f64, message: &str) -> PyResult<()> {
        let vm = vm()?;
        // File I/O without the GIL: other Python threads go on meanwhile.
        py.detach(|| vm.log.write_at(level, created, thread, message));
        Ok(())
    }

    /// The VM name.
    #[pyfunction]
    fn vm_name() -> PyResult<String> {
        Ok(vm()?.vm_name.clone())
    }

    /// Reports the outcome of starting one component.
    #[pyfunction]
    #[pyo3(signature = (package, component, class_name, started, error_info=None))]
    fn component_status(
        py: Python<'_>,
        package: String,
        component: String,
        class_name: String,
        started: bool,
        error_info: Option<String>,
    ) -> PyResult<()> {
        let vm = vm()?;
        let message = FromVm::ComponentStatus {
            package,
            component,
            class_name,
            state: if started {
                ComponentState::Started
            } else {
                ComponentState::Failed
            },
            error_info,
        };
        py.detach(|| vm.send(&message));
        Ok(())
    }

    /// Adds or updates an entry of `/python-vm/status/current` (running or finished).
    #[pyfunction]
    fn set_current(
        py: Python<'_>,
        package: &str,
        component: &str,
        name: &str,
        running: bool,
    ) -> PyResult<()> {
        let vm = vm()?;
        let state = if running {
            ThreadState::Running
        } else {
            ThreadState::Finished
        };
        py.detach(|| vm.set_current(package, component, name, state));
        Ok(())
    }

    /// Removes an entry of `/python-vm/status/current`.
    #[pyfunction]
    fn del_current(py: Python<'_>, package: &str, component: &str, name: &str) -> PyResult<()> {
        let vm = vm()?;
        py.detach(|| vm.del_current(package, component, name));
        Ok(())
    }

    /// Sends a request of the Python API (a JSON object) to the server and returns its reply
    /// as JSON (`{"ok": ..., "value"/"code"/"message": ...}`). Blocks without the GIL.
    #[pyfunction]
    fn request(py: Python<'_>, request: &str) -> PyResult<String> {
        let vm = vm()?;
        let request = request_json(request)?;
        reply_json(&py.detach(|| vm.request(request)))
    }

    /// Sends a request without waiting for its reply; returns the id that [`claim_reply`]
    /// takes.
    #[pyfunction]
    fn send_request(py: Python<'_>, request: &str) -> PyResult<u64> {
        let vm = vm()?;
        let request = request_json(request)?;
        Ok(py.detach(|| vm.send_request(request)))
    }

    /// Waits (without the GIL) for the reply of a request sent with [`send_request`], as JSON.
    #[pyfunction]
    fn claim_reply(py: Python<'_>, id: u64) -> PyResult<String> {
        let vm = vm()?;
        reply_json(&py.detach(|| vm.claim_reply(id)))
    }

    /// Answers a call of the server ([`FromVm::CallResult`]): `reply` is the JSON of a
    /// [`crate::vm::protocol::Reply`].
    #[pyfunction]
    fn call_result(py: Python<'_>, id: u64, reply: &str) -> PyResult<()> {
        let vm = vm()?;
        let reply = serde_json::from_str(reply).map_err(|e| {
            pyo3::exceptions::PyValueError::new_err(format!("a call result must be JSON: {e}"))
        })?;
        py.detach(|| vm.send(&FromVm::CallResult { id, reply }));
        Ok(())
    }

    /// Asks the server to raise the self-assign alarm of `keypath` ([`FromVm::SelfAssignAlarm`]).
    #[pyfunction]
    fn self_assign_alarm(
        py: Python<'_>,
        keypath: String,
        text: String,
        managed_object: String,
        prefixes: Vec<(String, String)>,
    ) -> PyResult<()> {
        let vm = vm()?;
        let message = FromVm::SelfAssignAlarm {
            keypath,
            text,
            managed_object,
            prefixes,
        };
        py.detach(|| vm.send(&message));
        Ok(())
    }

    /// The self-assign check mode: `"alarm"`, `"log"` or `"off"`.
    #[pyfunction]
    fn self_assign_mode() -> PyResult<&'static str> {
        Ok(match vm()?.self_assign() {
            SelfAssignMode::Alarm => "alarm",
            SelfAssignMode::Log => "log",
            SelfAssignMode::Off => "off",
        })
    }

    /// The embedded Python API: `[(module, file name, source, is_package)]`.
    #[pyfunction]
    fn embedded_sources() -> Vec<(&'static str, &'static str, &'static str, bool)> {
        super::super::interp::EMBEDDED_MODULES.to_vec()
    }
}
