//! The NETCONF operations, a module per family. Each takes the parsed request and returns a
//! reply body or the list of `rpc-error`s.

mod action;
mod commit;
mod config;
mod datastore;
mod locks;
mod monitoring;
mod nmda;
mod notifications;
mod session;

use crate::netconf::NetconfServer;
use crate::netconf::error::RpcError;
use crate::netconf::rpc::OpResult;
use crate::netconf::session::SessionState;
use crate::netconf::xml::{Element, NS_BASE};

/// Everything an operation may look at.
pub struct Call<'a> {
    /// The whole `<rpc>` element (for namespace declarations in scope).
    pub rpc: &'a Element,
    /// The operation element, the one child of `<rpc>`.
    pub operation: &'a Element,
    /// The session that sent it.
    pub session: &'a SessionState,
    /// Shared server state.
    pub server: &'a NetconfServer,
    /// What the session's user may do (RFC 8341), read from running once for the whole rpc.
    pub access: crate::datastore::Access,
}

impl Call<'_> {
    /// What this session's user may do (a copy, for work moved off the async threads).
    pub fn access(&self) -> crate::datastore::Access {
        self.access.clone()
    }

    /// Maps a datastore error onto rpc-errors, counting the writes access control refused.
    pub fn datastore_error(
        &self,
    ) -> impl Fn(crate::datastore::DatastoreError) -> Vec<RpcError> + Send + 'static {
        let counters = std::sync::Arc::clone(&self.server.nacm);
        move |e| {
            if matches!(e, crate::datastore::DatastoreError::AccessDenied { .. }) {
                counters
                    .denied_data_writes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            RpcError::from_datastore(e)
        }
    }
}

/// The result of an operation.
pub type OpOutcome = Result<OpResult, Vec<RpcError>>;

/// Runs the operation named by `call.operation`.
pub async fn dispatch(call: &Call<'_>) -> OpOutcome {
    let op = call.operation;
    if action::is_action(op) {
        // Access control checks the action itself (RFC 8341 §3.4.4).
        return action::action(call).await;
    }
    check_exec(call)?;
    if op.is(monitoring::NS_MONITORING, "get-schema") {
        return monitoring::get_schema(call).await;
    }
    if op.is(notifications::NS_NOTIFICATION, "create-subscription") {
        return notifications::create_subscription(call).await;
    }
    if op.is(nmda::NS_NMDA, "get-data") {
        return nmda::get_data(call).await;
    }
    if op.is(nmda::NS_NMDA, "edit-data") {
        return nmda::edit_data(call).await;
    }
    if !(op.ns == NS_BASE || op.ns.is_empty()) {
        if action::is_module_rpc(call) {
            return action::rpc(call).await;
        }
        return Err(vec![RpcError::not_supported(format!(
            "unknown operation <{}> in namespace {}",
            op.name, op.ns
        ))]);
    }
    match op.name.as_str() {
        "get" => datastore::get(call).await,
        "get-config" => datastore::get_config(call).await,
        "edit-config" => datastore::edit_config(call).await,
        "validate" => datastore::validate(call).await,
        "copy-config" => config::copy_config(call).await,
        "delete-config" => config::delete_config(call).await,
        "lock" => locks::lock(call).await,
        "unlock" => locks::unlock(call).await,
        "commit" => commit::commit(call).await,
        "discard-changes" => commit::discard_changes(call).await,
        "cancel-commit" => commit::cancel_commit(call).await,
        "close-session" => Ok(OpResult::Ok),
        "kill-session" => session::kill_session(call).await,
        other => Err(vec![RpcError::not_supported(format!(
            "operation <{other}> is not supported"
        ))]),
    }
}

/// RFC 8341 §3.4.4: may this session's user run the protocol operation? `close-session` is
/// always allowed.
fn check_exec(call: &Call<'_>) -> Result<(), Vec<RpcError>> {
    let op = call.operation;
    if op.is(NS_BASE, "close-session") {
        return Ok(());
    }
    let access = &call.access;
    if access.is_unrestricted() {
        return Ok(());
    }
    let ctx = call.server.datastore.context();
    let module = if op.ns == NS_BASE || op.ns.is_empty() {
        Some("ietf-netconf".to_owned())
    } else {
        ctx.get_module_implemented_ns(&op.ns)
            .map(|m| m.name().to_owned())
    };
    // An operation of no module is refused later as unknown.
    let Some(module) = module else {
        return Ok(());
    };
    let schema = ctx.find_path(&format!("/{module}:{}", op.name)).ok();
    if access.rpc_allowed(&module, &op.name, schema.as_ref()) {
        return Ok(());
    }
    call.server
        .nacm
        .denied_operations
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Err(vec![RpcError::access_denied(format!(
        "access denied: user {} may not run <{}> ({module})",
        call.session.user, op.name
    ))])
}

/// Runs blocking datastore work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Vec<RpcError>> + Send + 'static,
) -> Result<T, Vec<RpcError>> {
    tokio::task::spawn_blocking(work).await.unwrap_or_else(|e| {
        Err(vec![RpcError::new(
            crate::netconf::error::ErrorType::Application,
            crate::netconf::error::ErrorTag::OperationFailed,
            format!("internal error: {e}"),
        )])
    })
}
