//! The runtime's side of services: the datastore's commit pipeline asks it to run a
//! servicepoint's callbacks ([`ServiceCallbacks`]), and it runs them in the VM that registered
//! the servicepoint, lending the VM the commit's tree as a server-owned transaction.
//!
//! The pipeline runs on a blocking thread with the commit lock held; the call runs as a task
//! of the async runtime, and the callback's own requests (maagic reads and writes on the lent
//! transaction) are answered by the VM's task meanwhile, so the thread simply waits.

use std::sync::Arc;

use serde_json::{Value, json};

use super::alarms::ManagedObject;
use super::supervisor::Supervisor;
use crate::datastore::{Proplist, ServiceCall, ServiceCallbacks, Transaction};

/// Runs service callbacks in the VMs (see the module documentation).
pub struct ServiceRunner {
    supervisor: Arc<Supervisor>,
    runtime: tokio::runtime::Handle,
}

impl ServiceRunner {
    /// Runs callbacks through `supervisor`, waiting on `runtime`.
    pub fn new(supervisor: Arc<Supervisor>, runtime: tokio::runtime::Handle) -> ServiceRunner {
        ServiceRunner {
            supervisor,
            runtime,
        }
    }
}

impl ServiceCallbacks for ServiceRunner {
    fn check_registered(&self, point: &str) -> Result<(), String> {
        if self.supervisor.vm_for_point("service", point).is_some() {
            return Ok(());
        }
        if self
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
            "no Python class is registered for the servicepoint {point} (is its package loaded \
             and its VM running? see /python-vm/status)"
        ))
    }

    fn run(
        &self,
        call: &ServiceCall<'_>,
        trans: Transaction,
    ) -> (Option<Transaction>, Result<Option<Proplist>, String>) {
        let Some(vm) = self.supervisor.vm_for_point("service", call.point) else {
            let error = self.check_registered(call.point).err().unwrap_or_default();
            return (Some(trans), Err(error));
        };
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
        let timeout = self.supervisor.options().action_timeout;
        // The call runs as a task of the runtime; this (blocking) thread waits for it.
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
        let outcome = match result {
            Ok(reply) if reply.ok => proplist(&reply.value),
            Ok(reply) => Err(reply
                .message
                .unwrap_or_else(|| format!("{} failed", call.phase.as_str()))),
            Err(e) => Err(format!(
                "{} of the servicepoint {}: {e}",
                call.phase.as_str(),
                call.point
            )),
        };
        (trans, outcome)
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
