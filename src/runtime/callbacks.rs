//! The runtime's side of a commit: the datastore's commit pipeline asks it to run package
//! callbacks ([`CommitCallbacks`]: services, validation points), and it runs them in the VM
//! that registered the point, lending the VM the commit's tree as a server-owned transaction.
//!
//! The pipeline runs on a blocking thread with the commit lock held; the call runs as a task
//! of the async runtime, and the callback's own requests (maagic reads and writes on the lent
//! transaction) are answered by the VM's task meanwhile, so the thread simply waits.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use serde::Deserialize;

use serde_json::{Value, json};

use super::alarms::ManagedObject;
use super::supervisor::Supervisor;
use crate::datastore::{
    CallbackKind, CommitCallbacks, Proplist, ServiceCall, Transaction, ValidationCall,
};
use crate::vm::protocol::Reply;

/// Runs commit callbacks in the VMs (see the module documentation).
pub struct CommitRunner {
    supervisor: Arc<Supervisor>,
    runtime: tokio::runtime::Handle,
    /// Optional service callbacks (pre/post modification) that a VM process said its class
    /// does not have: (VM, process generation, servicepoint, phase). Not asked again.
    absent: Mutex<HashSet<(String, u64, String, &'static str)>>,
}

impl CommitRunner {
    /// Runs callbacks through `supervisor`, waiting on `runtime`.
    pub fn new(supervisor: Arc<Supervisor>, runtime: tokio::runtime::Handle) -> CommitRunner {
        CommitRunner {
            supervisor,
            runtime,
            absent: Mutex::default(),
        }
    }
}

impl CommitRunner {
    /// Calls `vm` (which registered `point`), lending it `trans`; this (blocking) thread waits
    /// while the call runs as a task of the runtime.
    fn call(
        &self,
        vm: String,
        point: &str,
        request: Value,
        trans: Transaction,
    ) -> (Option<Transaction>, Result<Reply, String>) {
        let timeout = self.supervisor.options().action_timeout;
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let supervisor = Arc::clone(&self.supervisor);
        self.runtime.spawn(async move {
            let outcome = supervisor
                .call_with_transaction(&vm, request, trans, timeout)
                .await;
            let _ = sender.send(outcome);
        });
        let Ok((trans, result)) = receiver.recv() else {
            return (None, Err("the server is shutting down".into()));
        };
        let result = match result {
            Ok(reply) if reply.ok => Ok(reply),
            Ok(reply) => Err(reply
                .message
                .unwrap_or_else(|| format!("the callback of {point} failed"))),
            Err(e) => Err(format!("the callback of {point}: {e}")),
        };
        (trans, result)
    }
}

impl CommitCallbacks for CommitRunner {
    fn check_registered(&self, kind: CallbackKind, point: &str) -> Result<(), String> {
        let (name, what) = match kind {
            CallbackKind::Service => ("service", "servicepoint"),
            CallbackKind::Validation => ("validation", "validation point"),
        };
        if self.supervisor.vm_for_point(name, point).is_some() {
            return Ok(());
        }
        if kind == CallbackKind::Service
            && self
                .supervisor
                .vm_for_point("nano service", point)
                .is_some()
        {
            return Err(format!(
                "the servicepoint {point} is registered as a nano service, which pyvmd does not \
                 run"
            ));
        }
        Err(format!(
            "no Python class is registered for the {what} {point} (is its package loaded and \
             its VM running? see /python-vm/status)"
        ))
    }

    fn run_service(
        &self,
        call: &ServiceCall<'_>,
        trans: Transaction,
    ) -> (Option<Transaction>, Result<Option<Proplist>, String>) {
        let Some((vm, generation)) = self.supervisor.vm_process_for_point("service", call.point)
        else {
            let message = format!("nothing is registered for {} any more", call.point);
            return (Some(trans), Err(message));
        };
        let phase = call.phase.as_str();
        let key = (vm, generation, call.point.to_owned(), phase);
        if self.absent().contains(&key) {
            return (Some(trans), Ok(None));
        }
        // What a self-assign alarm raised in cb_create is about: the instance.
        let alarm = trans.data_node(call.path).map(|node| {
            let object = ManagedObject::of_data_node(&node);
            json!({"path": object.path, "prefixes": object.prefixes})
        });
        let request = json!({
            "kind": "service",
            "point": call.point,
            "phase": call.phase.as_str(),
            "op": call.operation as u8,
            "kp": call.keypath,
            "proplist": call.proplist,
            "user": "system",
            "alarm": alarm,
        });
        let (trans, result) = self.call(key.0.clone(), call.point, request, trans);
        let outcome = result.and_then(|reply| {
            let outcome: ServiceOutcome = serde_json::from_value(reply.value)
                .map_err(|e| format!("the answer of {phase} does not parse: {e}"))?;
            if !outcome.defined {
                self.absent().insert(key);
            }
            Ok(outcome.proplist)
        });
        (trans, outcome)
    }

    fn run_validation(
        &self,
        call: &ValidationCall<'_>,
        trans: Transaction,
    ) -> (Option<Transaction>, Result<(), String>) {
        let request = json!({
            "kind": "validation",
            "point": call.point,
            "kp": call.keypath,
            "value": call.value,
            "user": "system",
        });
        let Some(vm) = self.supervisor.vm_for_point("validation", call.point) else {
            let message = format!("nothing is registered for {} any more", call.point);
            return (Some(trans), Err(message));
        };
        let (trans, result) = self.call(vm, call.point, request, trans);
        (trans, result.map(|_| ()))
    }
}

/// What the VM answers to a service call.
#[derive(Debug, Deserialize)]
struct ServiceOutcome {
    /// False when the class has no such callback (pre/post modification are optional).
    defined: bool,
    /// The property list the callback returned, if any: `[[name, value], ...]`.
    proplist: Option<Proplist>,
}

impl CommitRunner {
    fn absent(&self) -> std::sync::MutexGuard<'_, HashSet<(String, u64, String, &'static str)>> {
        self.absent.lock().unwrap_or_else(|p| p.into_inner())
    }
}
