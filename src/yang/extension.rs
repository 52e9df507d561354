//! YANG extension statements on compiled schema nodes (`tailf:actionpoint`,
//! `ncs:servicepoint`, `tailf:validate`): libyang compiles them as extension instances, which
//! `yang5` does not expose, so they are read here from the compiled node.

use yang5::schema::SchemaNode;

/// Whether a schema node carries the extension `module:name` (with or without argument).
pub fn has_extension(node: &SchemaNode<'_>, module: &str, name: &str) -> bool {
    find_extension(node, module, name).is_some()
}

/// The argument of the extension `module:name` on a schema node, if it has one.
pub fn extension_argument(node: &SchemaNode<'_>, module: &str, name: &str) -> Option<String> {
    find_extension(node, module, name).flatten()
}

/// `Some(argument)` if the node carries the extension `module:name`.
fn find_extension(node: &SchemaNode<'_>, module: &str, name: &str) -> Option<Option<String>> {
    // SAFETY: `as_raw` is a compiled node of a live context; `exts` is a libyang sized array of
    // compiled extension instances, each with its definition and module.
    unsafe {
        let raw = node.as_raw();
        let exts = (*raw).exts;
        if exts.is_null() {
            return None;
        }
        let count = *(exts as *const u64).sub(1) as usize;
        for i in 0..count {
            let ext = &*exts.add(i);
            if ext.def.is_null() || (*ext.def).name.is_null() || (*ext.def).module.is_null() {
                continue;
            }
            let def_name = std::ffi::CStr::from_ptr((*ext.def).name).to_string_lossy();
            let def_module = std::ffi::CStr::from_ptr((*(*ext.def).module).name).to_string_lossy();
            if def_name == name && def_module == module {
                return Some((!ext.argument.is_null()).then(|| {
                    std::ffi::CStr::from_ptr(ext.argument)
                        .to_string_lossy()
                        .into_owned()
                }));
            }
        }
    }
    None
}
