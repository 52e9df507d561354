//! The YANG schema layer: the libyang context that holds every YANG module the server knows.
//!
//! The server builds one [`YangContext`] at start-up from the modules in its `yang/` directory
//! (our own `tailf-ncs` and `tailf-ncs-alarms`, and the standard NETCONF modules) and keeps it
//! for its whole life. Data trees (datastores, rpc payloads) are parsed and validated against
//! it; the NETCONF layer reads [`YangContext::modules`] to build the module capabilities of the
//! `<hello>` and [`YangContext::schema_text`] to answer `<get-schema>`.

pub mod context;

pub use context::{
    ModuleInfo, SubmoduleInfo, YangContext, YangError, module_namespace, raw_context,
};
