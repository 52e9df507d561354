//! The configuration datastores, held as libyang data trees.
//!
//! The running configuration is an immutable snapshot behind an `Arc`: readers clone the `Arc`
//! and print at leisure, so a reader never sees half a commit; writers are serialised by a
//! commit lock, work on a copy, validate it, write it to disk, and only then swap the snapshot.
//! All of this is CPU-bound libyang work, so callers run it on blocking threads.

mod edit;
mod error;
mod filter;
mod persist;
mod raw;

pub use edit::EditOperation;
pub use error::{DatastoreError, ValidationIssue, ValidationKind};
pub use filter::FilterNode;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use yang5::context::Context;
use yang5::data::{Data, DataFormat, DataParserFlags, DataTree, DataValidationFlags};
use yang5::ffi;
use yang5::utils::Binding;

/// How default values are reported (RFC 6243).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WithDefaults {
    /// Only what was set explicitly (our basic mode).
    #[default]
    Explicit,
    /// Everything, defaults included.
    ReportAll,
    /// Everything, defaults marked with `wd:default="true"`.
    ReportAllTagged,
    /// Nothing whose value equals its default.
    Trim,
}

impl WithDefaults {
    /// Parses the value of a `with-defaults` parameter.
    pub fn parse(value: &str) -> Option<WithDefaults> {
        Some(match value {
            "explicit" => WithDefaults::Explicit,
            "report-all" => WithDefaults::ReportAll,
            "report-all-tagged" => WithDefaults::ReportAllTagged,
            "trim" => WithDefaults::Trim,
            _ => return None,
        })
    }

    fn print_flags(self) -> u32 {
        match self {
            WithDefaults::Explicit => ffi::LYD_PRINT_WD_EXPLICIT,
            WithDefaults::ReportAll => ffi::LYD_PRINT_WD_ALL,
            WithDefaults::ReportAllTagged => ffi::LYD_PRINT_WD_ALL_TAG,
            WithDefaults::Trim => ffi::LYD_PRINT_WD_TRIM,
        }
    }
}

/// The `test-option` of an edit (RFC 6241 §7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestOption {
    /// Validate, then apply if valid.
    #[default]
    TestThenSet,
    /// Apply. The result is validated all the same: an invalid running datastore is never
    /// committed, so this behaves like `test-then-set`.
    Set,
    /// Validate only.
    TestOnly,
}

/// One `edit-config` request, as the datastore needs it.
#[derive(Debug, Clone)]
pub struct EditRequest {
    /// The content of `<config>`: XML data with `nc:operation` attributes.
    pub config: String,
    /// `default-operation`.
    pub default_operation: EditOperation,
    /// `test-option`.
    pub test_option: TestOption,
}

/// The running datastore: validated, persisted, shared.
pub struct Datastore {
    ctx: &'static Context,
    running: RwLock<Arc<DataTree<'static>>>,
    /// Serialises transactions: one commit at a time.
    commit: Mutex<()>,
    file: PathBuf,
}

/// The parse flags for configuration data from clients and from disk: unknown elements and
/// state data are errors.
fn config_parse_flags() -> DataParserFlags {
    DataParserFlags::STRICT | DataParserFlags::NO_STATE
}

fn config_validation_flags() -> DataValidationFlags {
    DataValidationFlags::from_bits_retain(
        ffi::LYD_VALIDATE_NO_STATE | ffi::LYD_VALIDATE_MULTI_ERROR,
    )
}

impl Datastore {
    /// Opens the running datastore kept in `state_dir` (`running.xml`), or starts empty.
    pub fn open(ctx: &'static Context, state_dir: &Path) -> Result<Datastore, DatastoreError> {
        std::fs::create_dir_all(state_dir)?;
        let file = state_dir.join("running.xml");
        persist::remove_stale_temp(&file);
        raw::clear_errors(ctx);
        let mut tree = match std::fs::read(&file) {
            Ok(bytes) => DataTree::parse_string(
                ctx,
                bytes,
                DataFormat::XML,
                config_parse_flags() | DataParserFlags::NO_VALIDATION,
                DataValidationFlags::empty(),
            )
            .map_err(|_| raw::last_error(ctx))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DataTree::new(ctx),
            Err(e) => return Err(e.into()),
        };
        tree.validate(config_validation_flags())
            .map_err(|_| raw::last_error(ctx))?;
        Ok(Datastore {
            ctx,
            running: RwLock::new(Arc::new(tree)),
            commit: Mutex::new(()),
            file,
        })
    }

    /// The schema context.
    pub fn context(&self) -> &'static Context {
        self.ctx
    }

    /// A consistent snapshot of the running configuration.
    pub fn running(&self) -> Arc<DataTree<'static>> {
        self.running
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Applies an `edit-config` to running: edit a copy, validate, persist, swap. On any error
    /// nothing changes.
    pub fn edit_running(&self, request: &EditRequest) -> Result<(), DatastoreError> {
        let _commit = self.commit.lock().unwrap_or_else(|p| p.into_inner());
        raw::clear_errors(self.ctx);
        let (edit, strict_errors) = self.parse_edit(&request.config)?;
        let current = self.running();
        let copy = current.duplicate().map_err(|_| raw::last_error(self.ctx))?;
        let mut first = copy.into_raw();
        let mut editor = edit::Editor::new(self.ctx, strict_errors);
        let applied = unsafe { editor.apply(&mut first, edit.raw(), request.default_operation) };
        let mut candidate = unsafe { DataTree::from_raw(self.ctx, first) };
        applied?;
        raw::clear_errors(self.ctx);
        candidate
            .validate(config_validation_flags())
            .map_err(|_| raw::last_error(self.ctx))?;
        if request.test_option == TestOption::TestOnly {
            return Ok(());
        }
        persist::write_atomically(
            &self.file,
            print(&candidate, WithDefaults::Explicit)?.as_bytes(),
        )?;
        *self.running.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(candidate);
        Ok(())
    }

    /// Validates a complete configuration given as XML (the inline `<config>` of `validate`).
    pub fn validate_config(&self, config: &str) -> Result<(), DatastoreError> {
        raw::clear_errors(self.ctx);
        DataTree::parse_string(
            self.ctx,
            config,
            DataFormat::XML,
            config_parse_flags(),
            config_validation_flags(),
        )
        .map(|_| ())
        .map_err(|_| raw::last_error(self.ctx))
    }

    /// Prints running, or what `filter` selects of it, as XML.
    pub fn get_config(
        &self,
        filter: Option<&[FilterNode]>,
        defaults: WithDefaults,
    ) -> Result<String, DatastoreError> {
        let snapshot = self.running();
        match filter {
            None => print(&snapshot, defaults),
            Some(filter) => {
                raw::clear_errors(self.ctx);
                let selected = unsafe { filter::select(self.ctx, snapshot.raw(), filter)? };
                print(&selected, defaults)
            }
        }
    }

    /// Parses the content of `<config>` without validating it. When the strict parse fails, a
    /// lenient one keeps unparsable values as opaque nodes (see [`edit::Editor`]) and the strict
    /// errors are returned beside it.
    fn parse_edit(
        &self,
        config: &str,
    ) -> Result<(DataTree<'static>, Option<DatastoreError>), DatastoreError> {
        if config.trim().is_empty() {
            return Ok((DataTree::new(self.ctx), None));
        }
        let flags = config_parse_flags() | DataParserFlags::NO_VALIDATION;
        let parse = |flags| {
            DataTree::parse_string(
                self.ctx,
                config,
                DataFormat::XML,
                flags,
                DataValidationFlags::empty(),
            )
        };
        match parse(DataParserFlags::from_bits_retain(flags.bits())) {
            Ok(tree) => Ok((tree, None)),
            Err(_) => {
                let strict = raw::last_error(self.ctx);
                raw::clear_errors(self.ctx);
                let lenient = DataParserFlags::from_bits_retain(flags.bits() | ffi::LYD_PARSE_OPAQ);
                match parse(lenient) {
                    Ok(tree) => Ok((tree, Some(strict))),
                    Err(_) => Err(strict),
                }
            }
        }
    }
}

/// Prints all top-level nodes of a tree as compact XML.
fn print(tree: &DataTree<'_>, defaults: WithDefaults) -> Result<String, DatastoreError> {
    if tree.raw().is_null() {
        return Ok(String::new());
    }
    let mut out = std::ptr::null_mut();
    let flags = ffi::LYD_PRINT_SIBLINGS | ffi::LYD_PRINT_SHRINK | defaults.print_flags();
    let r = unsafe { ffi::lyd_print_mem(&mut out, tree.raw(), ffi::LYD_FORMAT::LYD_XML, flags) };
    if r != ffi::LY_ERR::LY_SUCCESS {
        return Err(raw::last_error(tree.context()));
    }
    if out.is_null() {
        // Nothing to print, e.g. only defaults in explicit mode.
        return Ok(String::new());
    }
    let text = unsafe { std::ffi::CStr::from_ptr(out) }
        .to_string_lossy()
        .into_owned();
    unsafe { raw::free_c(out as *mut std::ffi::c_void) };
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netconf::capabilities::IETF_NETCONF_FEATURES;
    use crate::yang::YangContext;

    const NCS: &str = "http://tail-f.com/ns/ncs";
    const NC: &str = "urn:ietf:params:xml:ns:netconf:base:1.0";

    fn context() -> &'static Context {
        static CTX: std::sync::OnceLock<&'static Context> = std::sync::OnceLock::new();
        CTX.get_or_init(|| {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("yang");
            YangContext::load(&dir, &[("ietf-netconf", IETF_NETCONF_FEATURES)])
                .expect("the repository's YANG modules load")
                .context()
        })
    }

    fn edit(ds: &Datastore, config: &str) -> Result<(), DatastoreError> {
        ds.edit_running(&EditRequest {
            config: format!("<python-vm xmlns=\"{NCS}\" xmlns:nc=\"{NC}\">{config}</python-vm>"),
            default_operation: EditOperation::Merge,
            test_option: TestOption::TestThenSet,
        })
    }

    fn running(ds: &Datastore) -> String {
        ds.get_config(None, WithDefaults::Explicit).unwrap()
    }

    #[test]
    fn merge_twice_updates_the_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        for level in ["level-debug", "level-info", "level-error"] {
            edit(&ds, &format!("<logging><level>{level}</level></logging>")).unwrap();
            assert!(
                running(&ds).contains(&format!("<level>{level}</level>")),
                "{}",
                running(&ds)
            );
        }
    }

    #[test]
    fn create_delete_remove_and_their_errors() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        let entry = |op: &str| {
            format!(
                "<logging><vm-levels nc:operation=\"{op}\"><node-id>a</node-id><level>level-error</level></vm-levels></logging>"
            )
        };
        edit(&ds, &entry("create")).unwrap();
        assert!(matches!(
            edit(&ds, &entry("create")),
            Err(DatastoreError::DataExists { .. })
        ));
        edit(&ds, &entry("delete")).unwrap();
        assert!(matches!(
            edit(&ds, &entry("delete")),
            Err(DatastoreError::DataMissing { .. })
        ));
        edit(&ds, &entry("remove")).unwrap();
        assert!(!running(&ds).contains("vm-levels"));
        // A delete needs no valid value.
        edit(&ds, "<logging><level>level-debug</level></logging>").unwrap();
        edit(&ds, "<logging><level nc:operation=\"delete\"/></logging>").unwrap();
        assert!(!running(&ds).contains("<level>"));
        assert!(matches!(
            edit(&ds, "<logging><level nc:operation=\"delete\"/></logging>"),
            Err(DatastoreError::DataMissing { .. })
        ));
    }

    #[test]
    fn invalid_edits_change_nothing_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        edit(&ds, "<logging><level>level-warning</level></logging>").unwrap();
        let before = running(&ds);
        assert!(matches!(
            edit(&ds, "<logging><level>bogus</level></logging>"),
            Err(DatastoreError::Validation(_))
        ));
        assert!(matches!(
            edit(
                &ds,
                "<logging><vm-levels><node-id>x</node-id></vm-levels></logging>"
            ),
            Err(DatastoreError::Validation(_))
        ));
        assert_eq!(running(&ds), before);
        drop(ds);
        let ds = Datastore::open(context(), dir.path()).unwrap();
        assert_eq!(running(&ds), before);
    }

    #[test]
    fn replace_and_default_operation_none() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        edit(&ds, "<logging><level>level-debug</level><vm-levels><node-id>a</node-id><level>level-error</level></vm-levels></logging>").unwrap();
        edit(
            &ds,
            "<logging nc:operation=\"replace\"><level>level-warning</level></logging>",
        )
        .unwrap();
        assert!(!running(&ds).contains("vm-levels"));
        let none = |config: &str| {
            ds.edit_running(&EditRequest {
                config: format!(
                    "<python-vm xmlns=\"{NCS}\" xmlns:nc=\"{NC}\">{config}</python-vm>"
                ),
                default_operation: EditOperation::None,
                test_option: TestOption::TestThenSet,
            })
        };
        // Under none, data without an operation changes nothing.
        none("<logging><level>level-error</level></logging>").unwrap();
        assert!(running(&ds).contains("level-warning"));
        none("<logging><level nc:operation=\"merge\">level-error</level></logging>").unwrap();
        assert!(running(&ds).contains("level-error"));
    }

    #[test]
    fn subtree_filters_select_entries_with_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(context(), dir.path()).unwrap();
        edit(&ds, "<logging><vm-levels><node-id>a</node-id><level>level-error</level></vm-levels><vm-levels><node-id>b</node-id><level>level-info</level></vm-levels></logging>").unwrap();
        let node = |name: &str, content: Option<&str>, children: Vec<FilterNode>| FilterNode {
            ns: None,
            name: name.into(),
            content: content.map(String::from),
            children,
        };
        let by_key = vec![node(
            "python-vm",
            None,
            vec![node(
                "logging",
                None,
                vec![node(
                    "vm-levels",
                    None,
                    vec![node("node-id", Some("b"), vec![])],
                )],
            )],
        )];
        let out = ds
            .get_config(Some(&by_key), WithDefaults::Explicit)
            .unwrap();
        assert!(
            out.contains("<node-id>b</node-id><level>level-info</level>"),
            "{out}"
        );
        assert!(!out.contains("<node-id>a</node-id>"), "{out}");
        let levels_only = vec![node(
            "python-vm",
            None,
            vec![node(
                "logging",
                None,
                vec![node("vm-levels", None, vec![node("level", None, vec![])])],
            )],
        )];
        let out = ds
            .get_config(Some(&levels_only), WithDefaults::Explicit)
            .unwrap();
        assert!(
            out.contains("<node-id>a</node-id><level>level-error</level>"),
            "{out}"
        );
        let nothing = vec![node("python-vm", None, vec![node("nope", None, vec![])])];
        assert_eq!(
            ds.get_config(Some(&nothing), WithDefaults::Explicit)
                .unwrap(),
            ""
        );
    }
}
