//! The NETCONF protocol layer (RFC 6241, RFC 6242): framing, sessions, the rpc envelope, the
//! operations, and the mapping of errors onto `rpc-error`.

pub mod audit;
pub mod capabilities;
pub mod error;
pub mod events;
pub mod filter;
pub mod framing;
pub mod library;
mod ops;
pub mod rpc;
pub mod session;
pub mod sessions;
pub mod subscription;
pub mod xml;

use std::sync::Arc;
use std::time::Duration;

use crate::datastore::Datastore;
use crate::notify::Notifier;
use sessions::Sessions;

/// State shared by all NETCONF sessions.
pub struct NetconfServer {
    /// The running datastore.
    pub datastore: Arc<Datastore>,
    /// The Python VM runtime: operational data and actions.
    pub runtime: Arc<crate::runtime::Runtime>,
    /// Live sessions.
    pub sessions: Arc<Sessions>,
    /// The event streams.
    pub notifier: Arc<Notifier>,
    /// The RFC 6470 events of the `NETCONF` stream.
    pub events: Arc<events::BaseEvents>,
    /// The largest message a client may send, in bytes.
    pub max_message_size: usize,
    /// How long a client has to send its `<hello>`.
    pub hello_timeout: Duration,
    /// What is served of the schema, for the runtime's current one.
    served: std::sync::RwLock<Arc<ServedSchema>>,
    /// The access control counters of `/nacm`.
    pub nacm: Arc<crate::datastore::nacm::Counters>,
    /// How many sessions may be open.
    pub session_limits: sessions::SessionLimits,
}

/// What NETCONF serves of a schema: the modules, their YANG library, the capabilities.
pub struct ServedSchema {
    /// The YANG modules (`<get-schema>` serves their text).
    pub yang: Arc<crate::yang::YangContext>,
    /// The YANG library built from them (monitoring, `/modules-state`, `/yang-library`).
    pub library: library::Library,
    /// What the server's `<hello>` announces.
    pub capabilities: Vec<String>,
}

impl ServedSchema {
    fn new(yang: Arc<crate::yang::YangContext>) -> ServedSchema {
        let library = library::Library::new(&yang);
        let mut capabilities = capabilities::protocol_capabilities();
        capabilities.extend(library.capabilities());
        capabilities.extend(yang.modules().iter().map(|m| m.capability()));
        ServedSchema {
            yang,
            library,
            capabilities,
        }
    }
}

impl NetconfServer {
    /// A server over `datastore` and `runtime`, publishing on `notifier`'s streams. From now
    /// on every configuration change is a `netconf-config-change` event.
    pub fn new(
        datastore: Arc<Datastore>,
        runtime: Arc<crate::runtime::Runtime>,
        notifier: Arc<Notifier>,
        max_message_size: usize,
        hello_timeout: Duration,
    ) -> NetconfServer {
        let served = ServedSchema::new(runtime.yang());
        let sessions = Arc::new(Sessions::default());
        let events = Arc::new(events::BaseEvents::new(
            Arc::clone(&notifier),
            Arc::clone(&sessions),
        ));
        datastore.set_change_listener(Arc::clone(&events) as _);
        NetconfServer {
            datastore,
            runtime,
            sessions,
            notifier,
            events,
            max_message_size,
            hello_timeout,
            served: std::sync::RwLock::new(Arc::new(served)),
            nacm: Arc::default(),
            session_limits: sessions::SessionLimits::default(),
        }
    }

    /// Limits the sessions open at once.
    pub fn with_session_limits(mut self, limits: sessions::SessionLimits) -> NetconfServer {
        self.session_limits = limits;
        self
    }

    /// What `user` may do now, by the `/nacm` rules of running (nothing is checked for the
    /// recovery user: see [`Datastore::set_recovery_user`]).
    pub fn access_for(&self, user: &str) -> crate::datastore::Access {
        self.datastore.access_for(user, &[])
    }

    /// What is served of the schema now (rebuilt when a reload changed the schema; sessions
    /// keep the capabilities of their `<hello>`).
    pub fn schema(&self) -> Arc<ServedSchema> {
        let yang = self.runtime.yang();
        {
            let served = self.served.read().unwrap_or_else(|p| p.into_inner());
            if Arc::ptr_eq(&served.yang, &yang) {
                return Arc::clone(&served);
            }
        }
        let fresh = Arc::new(ServedSchema::new(yang));
        let old = std::mem::replace(
            &mut *self.served.write().unwrap_or_else(|p| p.into_inner()),
            Arc::clone(&fresh),
        );
        self.events
            .capability_change(&old.capabilities, &fresh.capabilities);
        fresh
    }
}
