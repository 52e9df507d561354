//! Replacing the schema while the server runs (a package reload with changed package YANG):
//! every datastore is read again under the new schema and validated; if one does not fit,
//! nothing changes and the error says which and why.
//!
//! Trees of the old schema that readers or Python transactions still hold stay valid (the old
//! context is never freed); a transaction begun before the swap is replayed onto the new
//! running by path when it is applied, like any transaction that running moved away from.

use std::sync::Arc;

use yang5::context::Context;
use yang5::data::{DataFormat, DataParserFlags, DataTree, DataValidationFlags};

use super::{
    Datastore, DatastoreError, config_parse_flags, config_validation_flags, print_stored, raw,
    services, validation,
};

impl Datastore {
    /// Makes `ctx` the schema of every datastore (see the module documentation). Refused while
    /// a confirmed commit is pending (its rollback point belongs to the old schema).
    pub fn replace_schema(&self, ctx: &'static Context) -> Result<(), DatastoreError> {
        let txn = self.txn();
        if txn.confirmed.is_some() {
            return Err(DatastoreError::NotSupported(
                "a confirmed commit is pending: confirm or cancel it before the schema changes"
                    .into(),
            ));
        }
        let config = |name: &str, tree: &DataTree<'static>| {
            reparse(ctx, tree, config_parse_flags(), config_validation_flags())
                .map_err(|e| mismatch(name, e))
        };
        let running = Arc::new(config("running", &self.running())?);
        let candidate = match self.candidate_tree() {
            Some(tree) => Some(Arc::new(config("candidate", &tree)?)),
            None => None,
        };
        let startup = match self.startup_slot().clone() {
            Some(tree) => Some(Arc::new(config("startup", &tree)?)),
            None => None,
        };
        let operational = reparse(
            ctx,
            &self.operational_tree(),
            DataParserFlags::STRICT | DataParserFlags::NO_VALIDATION,
            DataValidationFlags::empty(),
        )
        .map_err(|e| mismatch("operational", e))?;
        *self.ctx.write().unwrap_or_else(|p| p.into_inner()) = ctx;
        *self.services.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(services::Services::new(ctx));
        *self.validation.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(validation::ValidationPoints::new(ctx));
        *self.candidate_slot_mut() = candidate;
        *self.startup_slot_mut() = startup;
        self.set_operational_tree(operational);
        self.bookkeeping.committed(&running);
        self.running.send_replace(running);
        drop(txn);
        Ok(())
    }
}

/// `tree` printed and parsed again under `ctx`.
fn reparse(
    ctx: &'static Context,
    tree: &DataTree<'static>,
    parse: DataParserFlags,
    validate: DataValidationFlags,
) -> Result<DataTree<'static>, DatastoreError> {
    let xml = print_stored(tree)?;
    raw::clear_errors(ctx);
    if xml.is_empty() {
        return Ok(DataTree::new(ctx));
    }
    DataTree::parse_string(ctx, xml, DataFormat::XML, parse, validate)
        .map_err(|_| raw::last_error(ctx))
}

fn mismatch(datastore: &str, e: DatastoreError) -> DatastoreError {
    let detail = e.detail();
    DatastoreError::NotSupported(format!(
        "the {datastore} datastore does not fit the new schema ({detail}); change it to fit \
         (or restore the package's previous YANG) and reload again"
    ))
}
