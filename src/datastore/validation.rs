//! Validation points: a node with `tailf:validate <point>` is checked by the class a VM
//! registered for the point (`Application.register_validation`): its `cb_validate` runs for
//! every instance of the node, after libyang found the configuration valid, in every commit of
//! running and in `validate`. A callback that raises, or returns `CONFD_ERR`, rejects the
//! configuration with its message; so does a point that no VM registered.
//!
//! NSO narrows down when a point runs with `tailf:dependency`; pyvmd does not read
//! dependencies yet and checks every instance each time, which costs callbacks but never
//! misses one.

use std::sync::Arc;

use yang5::data::DataTree;
use yang5::schema::{SchemaNodeKind, SchemaPathFormat};

use super::callbacks::{CallbackKind, ValidationCall};
use super::keypath::nso_keypath;
use super::{Datastore, DatastoreError, Transaction, ValidationIssue, ValidationKind, raw};

/// A node with `tailf:validate`.
#[derive(Debug, Clone)]
struct ValidationPoint {
    point: String,
    /// The schema node's data path: selects every instance.
    data_path: String,
}

/// The validation points of the schema.
pub(super) struct ValidationPoints {
    points: Vec<ValidationPoint>,
}

impl ValidationPoints {
    /// Finds the validation points of `ctx`.
    pub(super) fn new(ctx: &'static yang5::context::Context) -> ValidationPoints {
        let points = ctx
            .traverse()
            .filter(|node| {
                matches!(
                    node.kind(),
                    SchemaNodeKind::Leaf
                        | SchemaNodeKind::LeafList
                        | SchemaNodeKind::List
                        | SchemaNodeKind::Container
                )
            })
            .filter_map(|node| {
                let point = crate::yang::extension_argument(&node, "tailf-common", "validate")?;
                Some(ValidationPoint {
                    point,
                    data_path: node.path(SchemaPathFormat::DATA),
                })
            })
            .collect();
        ValidationPoints { points }
    }
}

/// One instance to check.
struct Instance {
    point: String,
    path: String,
    keypath: String,
    value: Option<String>,
}

impl Datastore {
    /// Runs the validation points over `tree`, a configuration libyang found valid. The
    /// callbacks get a read-only copy of it.
    pub(super) fn check_validation_points(
        &self,
        tree: &Arc<DataTree<'static>>,
    ) -> Result<(), DatastoreError> {
        let validation = Arc::clone(&self.validation.read().unwrap_or_else(|p| p.into_inner()));
        if validation.points.is_empty() {
            return Ok(());
        }
        let instances: Vec<Instance> = validation
            .points
            .iter()
            .flat_map(|vp| {
                super::find_xpath(&**tree, &vp.data_path)
                    .map(|set| {
                        set.into_iter()
                            .map(|node| Instance {
                                point: vp.point.clone(),
                                path: node.path(),
                                keypath: nso_keypath(&node),
                                value: match node.schema().kind() {
                                    SchemaNodeKind::Leaf | SchemaNodeKind::LeafList => {
                                        node.value_canonical()
                                    }
                                    _ => None,
                                },
                            })
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            })
            .collect();
        if instances.is_empty() {
            return Ok(());
        }
        let reject = |instance: &Instance, message: String| {
            DatastoreError::Validation(vec![ValidationIssue {
                message: format!("{}: {message}", instance.keypath),
                path: Some(instance.path.clone()),
                app_tag: None,
                kind: ValidationKind::Other,
            }])
        };
        raw::clear_errors(self.ctx());
        let mut copy = tree.duplicate().map_err(|_| raw::last_error(self.ctx()))?;
        for instance in &instances {
            let Some(callbacks) = self.callbacks.get() else {
                return Err(reject(
                    instance,
                    format!(
                        "no Python class is registered for the validation point {}",
                        instance.point
                    ),
                ));
            };
            callbacks
                .check_registered(CallbackKind::Validation, &instance.point)
                .map_err(|message| reject(instance, message))?;
            let call = ValidationCall {
                point: &instance.point,
                keypath: &instance.keypath,
                value: instance.value.as_deref(),
            };
            let (trans, outcome) =
                callbacks.run_validation(&call, Transaction::read_only_on(copy, tree));
            let Some(trans) = trans else {
                return Err(reject(
                    instance,
                    format!(
                        "the VM serving the validation point {} ended during cb_validate",
                        instance.point
                    ),
                ));
            };
            copy = trans.into_journaled().0;
            outcome.map_err(|message| reject(instance, message))?;
        }
        Ok(())
    }
}
