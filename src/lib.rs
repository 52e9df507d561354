//! pyvmd: a NETCONF server that hosts NSO-style Python packages in embedded Python VMs.
//!
//! Layers, in the direction data flows:
//! `ssh` (transport) → `netconf` (framing, sessions, rpc dispatch) → `datastore` (libyang trees,
//! transactions, persistence) with `yang` holding the schema context.

pub mod bench;
pub mod client;
pub mod datastore;
pub mod logging;
pub mod netconf;
pub mod notify;
pub mod runtime;
pub mod server;
pub mod ssh;
pub mod state_lock;
pub mod tools;
pub mod vm;
pub mod yang;
