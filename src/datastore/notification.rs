//! Notifications that package code sends, checked as the YANG of the notification says before
//! they reach any subscriber: parsed strictly (no unknown nodes, values of the right type) and
//! validated against the running configuration (mandatory leaves, `must`, leafrefs).

use yang5::data::Data;
use yang5::data::{DataFormat, DataOperation, DataParserFlags, DataTree};
use yang5::ffi;

use super::{Datastore, DatastoreError, ValidationIssue, ValidationKind, raw};

impl Datastore {
    /// Checks a notification (its element, as XML); gives it back in libyang's canonical form.
    pub fn validate_notification(&self, xml: &str) -> Result<String, DatastoreError> {
        if xml.contains('\0') {
            return Err(DatastoreError::Validation(vec![ValidationIssue {
                message: "a notification cannot contain a NUL character".into(),
                path: None,
                app_tag: None,
                kind: ValidationKind::Syntax,
            }]));
        }
        let ctx = self.ctx();
        let running = self.running();
        raw::clear_errors(ctx);
        let tree = DataTree::parse_op_string(
            ctx,
            xml,
            DataFormat::XML,
            DataParserFlags::STRICT,
            DataOperation::NotificationYang,
        )
        .map_err(|_| raw::last_error(ctx))?;
        // SAFETY: both trees are live trees of `ctx`; libyang only reads `running` and checks
        // the notification in place.
        let rc = unsafe {
            ffi::lyd_validate_op(
                tree.raw(),
                running.raw(),
                ffi::lyd_type::LYD_TYPE_NOTIF_YANG,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::LY_ERR::LY_SUCCESS {
            return Err(raw::last_error(ctx));
        }
        super::print(&tree, super::WithDefaults::Explicit)
    }

    /// The namespace of the module named (or prefixed) `module`.
    pub fn namespace_of(&self, module: &str) -> Option<String> {
        let ctx = self.ctx();
        ctx.get_module_latest(module)
            .or_else(|| ctx.modules(true).find(|m| m.prefix() == module))
            .map(|m| m.namespace().to_owned())
    }
}
