//! The server side of the Python API's transactions: what `ncs.maapi`, `ncs.maagic` and
//! `_ncs.cdb` in a VM ask for over the VM socket ([`FromVm::Request`]).
//!
//! Each VM process has one [`MaapiSessions`]: its open transactions by handle (`th`, as NSO
//! calls them). A request is a JSON object `{"op": ..., ...}`; the answer a [`Reply`] whose
//! error `code` the Python side maps onto NSO's errno values (`_ncs.ERR_NOEXISTS`, ...). The
//! handles die with the VM process, so a crashed VM leaks nothing.
//!
//! [`FromVm::Request`]: crate::vm::protocol::FromVm::Request

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use yang5::schema::{DataValueType, SchemaNode, SchemaNodeKind};

use crate::datastore::keypath;
use crate::datastore::{Access, Datastore, DatastoreError, ElemValue, Transaction};
use crate::vm::protocol::Reply;

/// Produces the operational data documents that an `operational` transaction reads.
pub type OperationalSource = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// How many transactions one VM may keep open: each holds a copy of running, so a package
/// that never finishes its transactions is stopped here rather than by the memory limit.
const MAX_OPEN_TRANSACTIONS: usize = 256;

/// The datastore a transaction reads.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Db {
    /// The running configuration.
    #[default]
    Running,
    /// Running together with state data.
    Operational,
}

/// Read-only or read-write.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Mode {
    #[default]
    Read,
    Write,
}

/// A value to set: one for a leaf, a list for a whole leaf-list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SetValue {
    One(String),
    Many(Vec<String>),
}

/// The requests, as Python sends them.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
enum Request {
    TransStart {
        #[serde(default)]
        db: Db,
        #[serde(default)]
        mode: Mode,
        /// `start_trans_in_trans`: the transaction to start in.
        #[serde(default)]
        parent: Option<u64>,
        /// NSO's `FLAG_NO_DEFAULTS`.
        #[serde(default, rename = "no-defaults")]
        no_defaults: bool,
        /// The user session of the `Maapi` (see [`UserSession`]); none: the VM's own rights.
        #[serde(default)]
        session: Option<UserSession>,
    },
    TransFinish {
        th: u64,
    },
    Apply {
        th: u64,
    },
    Validate {
        th: u64,
    },
    GetElem {
        th: u64,
        path: String,
    },
    Exists {
        th: u64,
        path: String,
    },
    NumInstances {
        th: u64,
        path: String,
    },
    Keys {
        th: u64,
        path: String,
    },
    SetElem {
        th: u64,
        path: String,
        value: SetValue,
    },
    Create {
        th: u64,
        path: String,
        /// `safe_create`: no error when it exists.
        #[serde(default)]
        safe: bool,
    },
    Delete {
        th: u64,
        path: String,
        /// `safe_delete`: no error when it does not exist.
        #[serde(default)]
        safe: bool,
    },
    Schema {
        path: String,
    },
    /// The loaded modules (for `_ncs.ns2prefix` and friends).
    Modules,
    /// A keypath as an XPath expression (`_ncs.xpath_pp_kpath`).
    Xpath {
        path: String,
    },
}

/// A user session of `ncs.maapi` (`start_user_session`, `single_*_trans(user, context)`).
#[derive(Debug, Deserialize)]
struct UserSession {
    user: String,
    context: String,
    #[serde(default)]
    groups: Vec<String>,
}

impl UserSession {
    /// NSO's rule: a session in the context `system` is the system's own and not checked;
    /// any other runs with the user's rights, the groups it names added to their `/nacm`
    /// groups.
    fn access(&self, datastore: &Datastore) -> Access {
        match self.context.as_str() {
            "system" => Access::unrestricted(),
            _ => datastore.access_for(&self.user, &self.groups),
        }
    }
}

struct Handle {
    trans: Transaction,
    /// Opened by the server for the VM (the upgrade transactions): Python may use it, but the
    /// server applies and finishes it.
    server_owned: bool,
    /// For a transaction started in another (`start_trans_in_trans`): that one, into which
    /// applying it goes.
    parent: Option<u64>,
}

/// One VM's open transactions.
pub struct MaapiSessions {
    datastore: Arc<Datastore>,
    operational: OperationalSource,
    handles: HashMap<u64, Handle>,
    /// Transactions taken out to be applied (see [`MaapiSessions::begin_apply`]).
    applying: std::collections::HashSet<u64>,
    next: u64,
}

/// A transaction taken out of its session to be applied off the VM's task.
pub struct PendingApply {
    /// Its handle.
    pub th: u64,
    /// The transaction.
    pub trans: Transaction,
}

/// A failed request: the error class and the message.
struct Failure(&'static str, String);

impl Failure {
    fn badstate(message: impl Into<String>) -> Failure {
        Failure("badstate", message.into())
    }
}

/// Maps a datastore error onto an error class. `value_error` is the class of a validation
/// error: a bad value (`badtype`) for a write, a failed validation for apply and validate.
fn failure(e: DatastoreError, value_error: &'static str) -> Failure {
    use DatastoreError as D;
    let code = match &e {
        D::DataMissing { .. } => "noexists",
        D::DataExists { .. } => "exists",
        D::BadPath { .. } => "badpath",
        D::NotWritable(_) => "not-writable",
        D::AccessDenied { .. } => "access-denied",
        D::Locked { .. } => "locked",
        D::Validation(_) => value_error,
        _ => "internal",
    };
    Failure(code, e.detail())
}

impl MaapiSessions {
    /// No transactions open yet.
    pub fn new(datastore: Arc<Datastore>, operational: OperationalSource) -> MaapiSessions {
        MaapiSessions {
            datastore,
            operational,
            handles: HashMap::new(),
            applying: Default::default(),
            next: 1,
        }
    }

    /// The datastore the transactions work on.
    pub fn datastore(&self) -> &Arc<Datastore> {
        &self.datastore
    }

    /// Registers a transaction that the server opened for the VM; returns its handle.
    pub fn open_server_owned(&mut self, trans: Transaction) -> u64 {
        self.insert(trans, true)
    }

    /// Takes a transaction back (the server applies an upgrade transaction this way).
    pub fn take(&mut self, th: u64) -> Option<Transaction> {
        self.handles.remove(&th).map(|h| h.trans)
    }

    /// For an `apply` request: takes its transaction out, to be applied on a blocking thread
    /// (a commit runs service callbacks, whose own requests this VM's task must go on
    /// answering meanwhile) and handed back with [`MaapiSessions::end_apply`]. `None` for any
    /// other request; `Err` with the reply for an apply that cannot start.
    pub fn begin_apply(&mut self, request: &Value) -> Option<Result<PendingApply, Reply>> {
        let Ok(Request::Apply { th }) = serde_json::from_value::<Request>(request.clone()) else {
            return None;
        };
        if self.handles.get(&th).is_some_and(|h| h.server_owned) {
            return Some(Err(Reply::error(
                "badstate",
                "this transaction belongs to the server, which applies it",
            )));
        }
        if let Some(parent) = self.handles.get(&th).and_then(|h| h.parent) {
            // A transaction in a transaction is applied to its parent, here and now.
            return Some(Err(match self.apply_to_parent(th, parent) {
                Ok(()) => Reply::ok(Value::Null),
                Err(Failure(code, message)) => Reply::error(code, message),
            }));
        }
        Some(match self.handles.remove(&th) {
            Some(handle) => {
                self.applying.insert(th);
                Ok(PendingApply {
                    th,
                    trans: handle.trans,
                })
            }
            None => Err(self.missing(th)),
        })
    }

    /// Puts an applied transaction back and gives the apply request's reply.
    pub fn end_apply(
        &mut self,
        pending: PendingApply,
        result: Result<(), DatastoreError>,
    ) -> Reply {
        self.applying.remove(&pending.th);
        self.handles.insert(
            pending.th,
            Handle {
                trans: pending.trans,
                server_owned: false,
                parent: None,
            },
        );
        match result.map_err(|e| failure(e, "validation")) {
            Ok(()) => Reply::ok(Value::Null),
            Err(Failure(code, message)) => Reply::error(code, message),
        }
    }

    /// Applies the child transaction `th` to `parent`.
    fn apply_to_parent(&mut self, th: u64, parent: u64) -> Result<(), Failure> {
        let mut child = self
            .handles
            .remove(&th)
            .ok_or_else(|| self.missing_failure(th))?;
        let result = match self.handles.get_mut(&parent) {
            Some(handle) => handle
                .trans
                .absorb(&mut child.trans)
                .map_err(|e| failure(e, "validation")),
            None => Err(Failure::badstate(format!(
                "the transaction {parent} that {th} was started in is finished"
            ))),
        };
        self.handles.insert(th, child);
        result
    }

    fn missing(&self, th: u64) -> Reply {
        let Failure(code, message) = self.missing_failure(th);
        Reply::error(code, message)
    }

    fn missing_failure(&self, th: u64) -> Failure {
        if self.applying.contains(&th) {
            Failure::badstate(format!("transaction {th} is being applied"))
        } else {
            Failure::badstate(format!("no open transaction {th}"))
        }
    }

    fn insert(&mut self, trans: Transaction, server_owned: bool) -> u64 {
        let th = self.next;
        self.next += 1;
        self.handles.insert(
            th,
            Handle {
                trans,
                server_owned,
                parent: None,
            },
        );
        th
    }

    /// Answers one request.
    pub fn handle(&mut self, request: Value) -> Reply {
        let request = match serde_json::from_value::<Request>(request) {
            Ok(request) => request,
            Err(e) => return Reply::error("internal", format!("malformed request: {e}")),
        };
        match self.run(request) {
            Ok(value) => Reply::ok(value),
            Err(Failure(code, message)) => Reply::error(code, message),
        }
    }

    fn trans(&mut self, th: u64) -> Result<&mut Handle, Failure> {
        if !self.handles.contains_key(&th) {
            return Err(self.missing_failure(th));
        }
        self.handles
            .get_mut(&th)
            .ok_or_else(|| Failure::badstate(format!("no open transaction {th}")))
    }

    fn run(&mut self, request: Request) -> Result<Value, Failure> {
        let read = |e| failure(e, "badtype");
        match request {
            Request::TransStart {
                db,
                mode,
                parent,
                no_defaults,
                session,
            } => {
                if self.handles.len() >= MAX_OPEN_TRANSACTIONS {
                    return Err(Failure::badstate(format!(
                        "too many open transactions ({MAX_OPEN_TRANSACTIONS}): finish some"
                    )));
                }
                let writable = mode == Mode::Write;
                let mut trans = match (parent, db, mode) {
                    (Some(parent), _, _) => self.trans(parent)?.trans.child(writable),
                    (None, Db::Running, _) => self.datastore.transaction(writable),
                    (None, Db::Operational, _) => self
                        .datastore
                        .operational_transaction(&(self.operational)(), writable),
                }
                .map_err(read)?;
                trans.set_no_defaults(no_defaults);
                // A transaction in a transaction has the rights of the one it is in.
                if let (None, Some(session)) = (parent, session) {
                    trans
                        .restrict(session.access(&self.datastore))
                        .map_err(read)?;
                }
                let th = self.insert(trans, false);
                if let Some(handle) = self.handles.get_mut(&th) {
                    handle.parent = parent;
                }
                Ok(json!({ "th": th }))
            }
            Request::TransFinish { th } => {
                if self.trans(th)?.server_owned {
                    return Err(Failure::badstate(
                        "this transaction belongs to the server, which finishes it",
                    ));
                }
                self.handles.remove(&th);
                Ok(Value::Null)
            }
            Request::Apply { th } => {
                if let Some(parent) = self.trans(th)?.parent {
                    self.apply_to_parent(th, parent)?;
                    return Ok(Value::Null);
                }
                let datastore = Arc::clone(&self.datastore);
                let handle = self.trans(th)?;
                if handle.server_owned {
                    return Err(Failure::badstate(
                        "this transaction is applied by the server when upgrade() returns",
                    ));
                }
                datastore
                    .apply_transaction(&mut handle.trans)
                    .map_err(|e| failure(e, "validation"))?;
                Ok(Value::Null)
            }
            Request::Validate { th } => {
                self.trans(th)?
                    .trans
                    .validate()
                    .map_err(|e| failure(e, "validation"))?;
                Ok(Value::Null)
            }
            Request::GetElem { th, path } => match self.trans(th)?.trans.get_elem(&path) {
                Ok(ElemValue::Leaf(value)) => Ok(json!(value)),
                Ok(ElemValue::LeafList(values)) => Ok(json!(values)),
                Ok(ElemValue::Default(value)) => Ok(json!({ "default": value })),
                Err(e) => Err(read(e)),
            },
            Request::Exists { th, path } => {
                Ok(json!(self.trans(th)?.trans.exists(&path).map_err(read)?))
            }
            Request::NumInstances { th, path } => Ok(json!(
                self.trans(th)?.trans.num_instances(&path).map_err(read)?
            )),
            Request::Keys { th, path } => {
                Ok(json!(self.trans(th)?.trans.keys(&path).map_err(read)?))
            }
            Request::SetElem { th, path, value } => {
                let trans = &mut self.trans(th)?.trans;
                match value {
                    SetValue::One(value) => trans.set_elem(&path, &value),
                    SetValue::Many(values) => trans.set_leaf_list(&path, &values),
                }
                .map_err(read)?;
                Ok(Value::Null)
            }
            Request::Create { th, path, safe } => {
                match self.trans(th)?.trans.create(&path) {
                    Err(DatastoreError::DataExists { .. }) if safe => {}
                    result => result.map_err(read)?,
                }
                Ok(Value::Null)
            }
            Request::Delete { th, path, safe } => {
                match self.trans(th)?.trans.delete(&path) {
                    Err(DatastoreError::DataMissing { .. }) if safe => {}
                    result => result.map_err(read)?,
                }
                Ok(Value::Null)
            }
            Request::Schema { path } => {
                let ctx = self.datastore.context();
                let node = keypath::find_schema(ctx, &path).map_err(read)?;
                Ok(describe(ctx, node.as_ref()))
            }
            Request::Modules => Ok(self
                .datastore
                .context()
                .modules(false)
                .filter(|m| m.is_implemented())
                .map(
                    |m| json!({"name": m.name(), "prefix": m.prefix(), "namespace": m.namespace()}),
                )
                .collect()),
            Request::Xpath { path } => {
                let ctx = self.datastore.context();
                let resolved = keypath::resolve(ctx, None, &path).map_err(read)?;
                Ok(json!(keypath::prefixed_xpath(ctx, &resolved.data_path)))
            }
        }
    }
}

/// The kind of a schema node, as `ncs.maagic` names it.
pub(super) fn kind_name(node: &SchemaNode<'_>) -> &'static str {
    match node.kind() {
        SchemaNodeKind::List => "list",
        SchemaNodeKind::Leaf => "leaf",
        SchemaNodeKind::LeafList => "leaf-list",
        SchemaNodeKind::AnyData | SchemaNodeKind::AnyXml => "anydata",
        SchemaNodeKind::Action => "action",
        SchemaNodeKind::Rpc => "rpc",
        SchemaNodeKind::Notification => "notification",
        _ => "container",
    }
}

/// The base type of a leaf or leaf-list (a leafref's target type).
pub(super) fn type_name(node: &SchemaNode<'_>) -> Option<&'static str> {
    let leaf_type = node.leaf_type()?;
    let base = match leaf_type.base_type() {
        DataValueType::LeafRef => leaf_type
            .leafref_real_type()
            .map_or(DataValueType::String, |t| t.base_type()),
        other => other,
    };
    Some(match base {
        DataValueType::Binary => "binary",
        DataValueType::Uint8 => "uint8",
        DataValueType::Uint16 => "uint16",
        DataValueType::Uint32 => "uint32",
        DataValueType::Uint64 => "uint64",
        DataValueType::Bits => "bits",
        DataValueType::Bool => "boolean",
        DataValueType::Dec64 => "decimal64",
        DataValueType::Empty => "empty",
        DataValueType::Enum => "enumeration",
        DataValueType::IdentityRef => "identityref",
        DataValueType::InstanceId => "instance-identifier",
        DataValueType::Union => "union",
        DataValueType::Int8 => "int8",
        DataValueType::Int16 => "int16",
        DataValueType::Int32 => "int32",
        DataValueType::Int64 => "int64",
        DataValueType::String | DataValueType::LeafRef | DataValueType::Unknown => "string",
    })
}

/// Describes a schema node (the root when `None`) for `ncs.maagic`: its kind, module, keys,
/// type, default and children (through choices and cases; actions included).
fn describe(ctx: &'static yang5::context::Context, node: Option<&SchemaNode<'static>>) -> Value {
    // Leaves carry their type and default, so that maagic reads and writes them without
    // asking for their own description.
    let child = |c: &SchemaNode<'_>| {
        let module = c.module();
        json!({
            "name": c.name(),
            "module": module.name(),
            "prefix": module.prefix(),
            "kind": kind_name(c),
            "type": type_name(c),
            "default": keypath::default_value(c),
        })
    };
    let mut children: Vec<Value> = keypath::data_children(ctx, node)
        .iter()
        .map(child)
        .collect();
    let Some(node) = node else {
        return json!({
            "kind": "root", "name": "", "module": null, "prefix": null, "presence": false,
            "config": true, "keys": [], "type": null, "default": null, "children": children,
        });
    };
    children.extend(node.actions().map(|a| child(&a)));
    let module = node.module();
    json!({
        "kind": kind_name(node),
        "name": node.name(),
        "module": module.name(),
        "prefix": module.prefix(),
        "presence": node.kind() == SchemaNodeKind::Container && !node.is_np_container(),
        "config": node.is_config(),
        "keys": node.list_keys().map(|k| k.name().to_owned()).collect::<Vec<_>>(),
        "type": type_name(node),
        "default": keypath::default_value(node),
        "children": children,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions() -> (tempfile::TempDir, MaapiSessions) {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(crate::yang::test_context(), dir.path()).unwrap();
        let operational: OperationalSource = Arc::new(Vec::new);
        (dir, MaapiSessions::new(Arc::new(ds), operational))
    }

    fn ok(s: &mut MaapiSessions, request: Value) -> Value {
        let reply = s.handle(request);
        assert!(reply.ok, "{reply:?}");
        reply.value
    }

    #[test]
    fn a_write_transaction_round_trip() {
        let (_dir, mut s) = sessions();
        let th = ok(&mut s, json!({"op": "trans-start", "mode": "write"}))["th"].clone();
        let level = "/ncs:python-vm/logging/level";
        ok(
            &mut s,
            json!({"op": "set-elem", "th": th, "path": level, "value": "level-debug"}),
        );
        ok(&mut s, json!({"op": "apply", "th": th}));
        ok(&mut s, json!({"op": "trans-finish", "th": th}));
        let th = ok(&mut s, json!({"op": "trans-start"}))["th"].clone();
        assert_eq!(
            ok(&mut s, json!({"op": "get-elem", "th": th, "path": level})),
            json!("level-debug")
        );
        let reply = s.handle(json!({"op": "set-elem", "th": th, "path": level, "value": "x"}));
        assert_eq!(reply.code.as_deref(), Some("not-writable"));
    }

    #[test]
    fn errors_carry_their_class() {
        let (_dir, mut s) = sessions();
        let th = ok(&mut s, json!({"op": "trans-start", "mode": "write"}))["th"].clone();
        let code = |s: &mut MaapiSessions, request| s.handle(request).code;
        assert_eq!(
            code(
                &mut s,
                json!({"op": "get-elem", "th": th, "path": "/ncs:python-vm/logging/vm-levels{x}/level"})
            ),
            Some("noexists".into())
        );
        assert_eq!(
            code(
                &mut s,
                json!({"op": "set-elem", "th": th, "path": "/ncs:python-vm/logging/level", "value": "loud"})
            ),
            Some("badtype".into())
        );
        assert_eq!(
            code(
                &mut s,
                json!({"op": "exists", "th": th, "path": "/ncs:nothing"})
            ),
            Some("badpath".into())
        );
        assert_eq!(
            code(&mut s, json!({"op": "exists", "th": 99, "path": "/"})),
            Some("badstate".into())
        );
        assert_eq!(code(&mut s, json!({"op": "fly"})), Some("internal".into()));
    }

    #[test]
    fn server_owned_transactions_are_not_applied_by_python() {
        let (_dir, mut s) = sessions();
        let trans = s.datastore.transaction(true).unwrap();
        let th = s.open_server_owned(trans);
        assert_eq!(
            s.handle(json!({"op": "apply", "th": th})).code.as_deref(),
            Some("badstate")
        );
        assert_eq!(
            s.handle(json!({"op": "trans-finish", "th": th}))
                .code
                .as_deref(),
            Some("badstate")
        );
        assert!(s.take(th).is_some());
    }

    #[test]
    fn the_schema_is_described_for_maagic() {
        let (_dir, mut s) = sessions();
        let root = ok(&mut s, json!({"op": "schema", "path": "/"}));
        assert_eq!(root["kind"], "root");
        assert!(
            root["children"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "python-vm" && c["prefix"] == "ncs")
        );
        let list = ok(
            &mut s,
            json!({"op": "schema", "path": "/ncs:python-vm/logging/vm-levels{a}"}),
        );
        assert_eq!(list["kind"], "list");
        assert_eq!(list["keys"], json!(["node-id"]));
        let level = ok(
            &mut s,
            json!({"op": "schema", "path": "/ncs:python-vm/logging/level"}),
        );
        assert_eq!(level["type"], "enumeration");
        assert_eq!(level["default"], "level-info");
        let authgroup = ok(
            &mut s,
            json!({"op": "schema", "path": "/ncs:devices/device/authgroup"}),
        );
        assert_eq!(authgroup["default"], Value::Null);
        let vm = ok(&mut s, json!({"op": "schema", "path": "/ncs:python-vm"}));
        assert!(
            vm["children"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == "stop" && c["kind"] == "action")
        );
    }
}
