//! The runtime's side of a commit: the datastore's commit pipeline asks it to run package
//! callbacks ([`CommitCallbacks`]: services, validation points), and it runs them in the VM
//! that registered the point, lending the VM the commit's tree as a server-owned transaction.
//!
//! The pipeline runs on a blocking thread with the commit lock held; the call runs as a task
//! of the async runtime, and the callback's own requests (maagic reads and writes on the lent
//! transaction) are answered by the VM's task meanwhile, so the thread simply waits.

use std::sync::Arc;

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
}

impl CommitRunner {
    /// Runs callbacks through `supervisor`, waiting on `runtime`.
    pub fn new(supervisor: Arc<Supervisor>, runtime: tokio::runtime::Handle) -> CommitRunner {
        CommitRunner {
            supervisor,
            runtime,
        }
    }
}

impl CommitRunner {
    /// Calls the VM that registered `point` (as `kind`), lending it `trans`; this (blocking)
    /// thread waits while the call runs as a task of the runtime.
    fn call(
        &self,
        kind: &str,
        point: &str,
        request: Value,
        trans: Transaction,
    ) -> (Option<Transaction>, Result<Reply, String>) {
        let Some(vm) = self.supervisor.vm_for_point(kind, point) else {
            return (
                Some(trans),
                Err(format!("nothing is registered for {point} any more")),
            );
        };
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
        let (trans, result) = self.call("service", call.point, request, trans);
        (trans, result.and_then(|reply| proplist(&reply.value)))
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
        let (trans, result) = self.call("validation", call.point, request, trans);
        (trans, result.map(|_| ()))
    }
}

/// The property list a callback returned: `null` for none, else `[[name, value], ...]`.
fn proplist(value: &Value) -> Result<Option<Proplist>, String> {
    if value.is_null() {
        return Ok(None);
    }
    serde_json::from_value(value.clone())
        .map(Some)
        .map_err(|e| format!("the returned proplist is not a list of (name, value) strings: {e}"))
}
