//! What package code does inside a commit, as the datastore sees it: service callbacks
//! ([`services`](super::services)) and validation points ([`validation`](super::validation)).
//! The runtime implements [`CommitCallbacks`] by calling into the VMs; the datastore knows
//! nothing of Python.

use super::Transaction;

/// The kinds of points package code registers for commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackKind {
    /// A servicepoint (`Application.register_service`).
    Service,
    /// A validation point (`Application.register_validation`).
    Validation,
}

/// What happened to a service instance, with NSO's numbers (`ncs.dp.NCS_SERVICE_CREATE`...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceOperation {
    /// The instance is new.
    Create = 0,
    /// The instance changed (or is re-deployed).
    Update = 1,
    /// The instance is gone.
    Delete = 2,
}

/// Which callback runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServicePhase {
    /// `@Service.pre_modification`: before the previous run's writes are taken back.
    PreModification,
    /// `@Service.create`: its writes are the instance's (FASTMAP).
    Create,
    /// `@Service.post_modification`: after `cb_create`.
    PostModification,
}

impl ServicePhase {
    /// The name the VM knows the phase by.
    pub fn as_str(self) -> &'static str {
        match self {
            ServicePhase::PreModification => "pre_modification",
            ServicePhase::Create => "create",
            ServicePhase::PostModification => "post_modification",
        }
    }
}

/// NSO's property list: (name, value) pairs that `cb_create` returns and gets back next time.
pub type Proplist = Vec<(String, String)>;

/// One callback to run.
#[derive(Debug)]
pub struct ServiceCall<'a> {
    /// The servicepoint.
    pub point: &'a str,
    /// Which callback.
    pub phase: ServicePhase,
    /// What happened to the instance.
    pub operation: ServiceOperation,
    /// The instance's keypath, NSO's form (`/ncs:services/svc:vlan{10}`).
    pub keypath: &'a str,
    /// The instance's libyang data path.
    pub path: &'a str,
    /// The property list of the previous run.
    pub proplist: &'a Proplist,
}

/// One validation callback to run.
#[derive(Debug)]
pub struct ValidationCall<'a> {
    /// The validation point.
    pub point: &'a str,
    /// The keypath of the node to validate, NSO's form.
    pub keypath: &'a str,
    /// The node's value, for a leaf.
    pub value: Option<&'a str>,
}

/// The runtime's side of a commit: runs package callbacks in the VM that registered their
/// point. Each gets the commit's tree as a transaction (`trans`) and gives it back (`None` if
/// it was lost with its VM) with its outcome; an `Err` is the message for the client.
pub trait CommitCallbacks: Send + Sync {
    /// Whether some VM registered a class for `point` now; if not, why (for the client).
    fn check_registered(&self, kind: CallbackKind, point: &str) -> Result<(), String>;

    /// Runs a service callback; its outcome is the property list it returned, if any.
    fn run_service(
        &self,
        call: &ServiceCall<'_>,
        trans: Transaction,
    ) -> (Option<Transaction>, Result<Option<Proplist>, String>);

    /// Runs `cb_validate` of a validation point.
    fn run_validation(
        &self,
        call: &ValidationCall<'_>,
        trans: Transaction,
    ) -> (Option<Transaction>, Result<(), String>);
}
