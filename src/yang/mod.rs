//! The YANG schema layer: the libyang context that holds every YANG module the server knows.
//!
//! The server builds one [`YangContext`] at start-up from the modules in its `yang/` directory
//! (our own `tailf-ncs` and `tailf-ncs-alarms`, and the standard NETCONF modules) and keeps it
//! for its whole life. Data trees (datastores, rpc payloads) are parsed and validated against
//! it; the NETCONF layer reads [`YangContext::modules`] to build the module capabilities of the
//! `<hello>` and [`YangContext::schema_text`] to answer `<get-schema>`.

pub mod builtin;
pub mod context;
mod extension;
pub mod extra_modules;
pub mod source;

pub use context::{
    ModuleInfo, PackageYang, SubmoduleInfo, YangContext, YangError, module_namespace, raw_context,
};
pub use extension::{extension_argument, has_extension};

/// The repository's `yang/` modules with the server's features, loaded once for the unit tests
/// of every layer.
#[cfg(test)]
pub fn test_context() -> &'static yang5::context::Context {
    static CTX: std::sync::OnceLock<&'static yang5::context::Context> = std::sync::OnceLock::new();
    CTX.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("yang");
        YangContext::load(&dir, crate::netconf::capabilities::MODULE_FEATURES)
            .expect("the repository's YANG modules load")
            .context()
    })
}
