//! Who may log in: the bootstrap user of the server's options, the users of the running
//! configuration (`/sys:system/authentication/user`, through a [`UserDirectory`]) and an
//! OpenSSH `authorized_keys` file.
//!
//! Policy:
//! - **Password**: the user name and password must match the bootstrap user (`--user`,
//!   `NETCONF_USER`; compared in constant time on SHA-256 digests, so lengths do not leak
//!   either), or a configured user whose crypt hash the password matches. The bootstrap user
//!   works whatever the configuration says, so that a configuration that locks everyone out
//!   can always be repaired; its password is the operator's to choose.
//! - **Public key**: one of the configured user's `authorized-key`s, or a key listed in the
//!   `authorized_keys` file, which is re-read on every attempt so that edits take effect
//!   without a restart. A key of the file authenticates the user name it is offered with only
//!   if that user is the bootstrap user or a configured one (or if there are no users at all:
//!   key-only deployments). This keeps the set of user names that can appear in NETCONF
//!   sessions (and thus in NACM decisions) under the operator's control, rather than letting a
//!   key holder pick any name.
//! - **Throttling**: every rejection takes [`AuthConfig::failure_delay`] (russh pads it), each
//!   failure from an address doubles that for the address's next one, and an address that
//!   keeps failing is blocked for a while ([`super::throttle`]). Every login, logout and failed
//!   login is logged with the user and the address.
//! - `authorized_keys` options cannot be honoured by a NETCONF-only server: entries carrying
//!   options that merely forbid things this server never offers (`restrict`, `no-pty`,
//!   `no-port-forwarding`, ...) are accepted, but entries with any other option (`from=`,
//!   `command=`, `expiry-time=`, `cert-authority`, ...) are skipped with a warning, because
//!   ignoring such a restriction would grant more than the file says.
//! - OpenSSH certificates and keyboard-interactive are not offered.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use russh::keys::ssh_key::authorized_keys::Entry;
use russh::keys::{HashAlg, PublicKey};
use russh::server::Auth;
use russh::{MethodKind, MethodSet};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use super::throttle::{LoginThrottle, ThrottleConfig};

/// One user allowed to log in with a password.
#[derive(Clone)]
pub struct UserPassword {
    /// The user name (it becomes the NETCONF session's user).
    pub user: String,
    /// The password, in clear text as configured.
    pub password: String,
}

impl std::fmt::Debug for UserPassword {
    // Keep passwords out of logs and panic messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserPassword")
            .field("user", &self.user)
            .field("password", &"***")
            .finish()
    }
}

/// Users kept outside the server's options (the `ietf-system` users of the running
/// configuration), asked at every login so that a committed change applies to the next one.
pub trait UserDirectory: Send + Sync + std::fmt::Debug {
    /// Whether `password` is the password of `user`.
    fn check_password(&self, user: &str, password: &str) -> bool;
    /// Whether `key` is one of the keys of `user`.
    fn has_key(&self, user: &str, key: &PublicKey) -> bool;
    /// Whether `user` is in the directory.
    fn has_user(&self, user: &str) -> bool;
}

/// How clients authenticate; see the module documentation for the policy.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Users allowed to log in with a password (the bootstrap user of `--user`, which works
    /// whatever the directory holds); also the user names a public key of the
    /// `authorized_keys` file may log in as (any name if this list and the directory are
    /// empty).
    pub users: Vec<UserPassword>,
    /// The configured users, if there is a configuration.
    pub directory: Option<Arc<dyn UserDirectory>>,
    /// When an address that keeps failing is slowed down and blocked.
    pub throttle: ThrottleConfig,
    /// An OpenSSH `authorized_keys` file; `None` disables public-key authentication.
    pub authorized_keys: Option<PathBuf>,
    /// How long a failed attempt takes before the client hears about it (slows down password
    /// guessing). The initial "none" probe that clients send first is not delayed.
    pub failure_delay: Duration,
}

/// `authorized_keys` options that only forbid things this server never offers, so accepting
/// such an entry grants nothing beyond what the file says. Compared case-insensitively, like
/// OpenSSH does.
const HARMLESS_KEY_OPTIONS: &[&str] = &[
    "restrict",
    "no-pty",
    "no-port-forwarding",
    "no-agent-forwarding",
    "no-x11-forwarding",
    "no-user-rc",
];

impl AuthConfig {
    /// The methods worth offering with this configuration: `password` if users are configured,
    /// `publickey` if an `authorized_keys` file is. Offering a method that can never succeed
    /// would only make clients try it (and pay [`failure_delay`](Self::failure_delay) for it).
    pub fn methods(&self) -> MethodSet {
        let mut methods = MethodSet::empty();
        if !self.users.is_empty() || self.directory.is_some() {
            methods.push(MethodKind::Password);
        }
        if self.authorized_keys.is_some() || self.directory.is_some() {
            methods.push(MethodKind::PublicKey);
        }
        methods
    }

    /// Whether `user`/`password` match the bootstrap user or a user of the directory.
    pub fn check_password(&self, user: &str, password: &str) -> bool {
        // Both are asked, whatever the first says, so that timing tells little.
        let bootstrap = self.check_bootstrap_password(user, password);
        let configured = self
            .directory
            .as_ref()
            .is_some_and(|d| d.check_password(user, password));
        bootstrap | configured
    }

    /// Whether `user`/`password` match a bootstrap user, in constant time.
    fn check_bootstrap_password(&self, user: &str, password: &str) -> bool {
        let user_digest = Sha256::digest(user.as_bytes());
        let password_digest = Sha256::digest(password.as_bytes());
        // Look at every entry, whatever matches, so timing does not reveal which users exist.
        let mut ok = Choice::from(0);
        for entry in &self.users {
            let user_ok = Sha256::digest(entry.user.as_bytes()).ct_eq(&user_digest);
            let password_ok = Sha256::digest(entry.password.as_bytes()).ct_eq(&password_digest);
            ok |= user_ok & password_ok;
        }
        ok.into()
    }

    /// Whether a public key of the `authorized_keys` file may log in as `user` at all (see the
    /// module documentation).
    pub fn key_user_allowed(&self, user: &str) -> bool {
        let directory_user = self.directory.as_ref().map(|d| d.has_user(user));
        (self.users.is_empty() && directory_user.is_none())
            || self.users.iter().any(|u| u.user == user)
            || directory_user == Some(true)
    }

    /// Whether `key` may log in as `user`: it is one of the user's keys in the directory, or
    /// the user is allowed and the key is listed in the `authorized_keys` file, read now. A
    /// missing file means no keys; an unreadable file is an error (the caller rejects and logs
    /// it).
    pub async fn check_public_key(&self, user: &str, key: &PublicKey) -> std::io::Result<bool> {
        if self
            .directory
            .as_ref()
            .is_some_and(|d| d.has_key(user, key))
        {
            return Ok(true);
        }
        let Some(path) = &self.authorized_keys else {
            return Ok(false);
        };
        if !self.key_user_allowed(user) {
            return Ok(false);
        }
        let text = match tokio::fs::read_to_string(path).await {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::debug!(path = %path.display(), "authorized_keys file does not exist");
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        Ok(authorized_keys_contain(&text, path, key))
    }
}

/// Whether the `authorized_keys` text lists `key` in an entry we can honour. Lines that do not
/// parse, and entries with options we cannot enforce, are skipped with a warning (`path` is
/// only used for those messages).
pub fn authorized_keys_contain(text: &str, path: &Path, key: &PublicKey) -> bool {
    let mut found = false;
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry: Entry = match line.parse() {
            Ok(entry) => entry,
            Err(e) => {
                tracing::warn!(
                    path = %path.display(),
                    line = index + 1,
                    error = %e,
                    "skipping unparsable authorized_keys line"
                );
                continue;
            }
        };
        if entry.public_key().key_data() != key.key_data() {
            continue;
        }
        if let Some(option) = entry.config_opts().iter().find(|o| {
            !HARMLESS_KEY_OPTIONS
                .iter()
                .any(|h| o.eq_ignore_ascii_case(h))
        }) {
            tracing::warn!(
                path = %path.display(),
                line = index + 1,
                option,
                "skipping authorized_keys entry: option not supported by this server"
            );
            continue;
        }
        // Keep scanning instead of returning early only to report unsupported duplicates;
        // the file is small.
        found = true;
    }
    found
}

/// Answers the authentication callbacks of one connection, logging failures.
///
/// The delays are russh's: every rejection is held back until
/// [`AuthConfig::failure_delay`] has passed since the request arrived (the server's russh
/// config sets `auth_rejection_time` from it, and `auth_rejection_time_initial` to zero).
pub(super) struct Authenticator {
    config: Arc<AuthConfig>,
    throttle: Arc<LoginThrottle>,
    peer: SocketAddr,
}

impl Authenticator {
    /// An authenticator for a connection from `peer`.
    pub(super) fn new(
        config: Arc<AuthConfig>,
        throttle: Arc<LoginThrottle>,
        peer: SocketAddr,
    ) -> Self {
        Authenticator {
            config,
            throttle,
            peer,
        }
    }

    /// The "none" method: never accepted. Not logged: clients send it first to learn the
    /// methods, it is not a failed login.
    pub(super) fn none(&self) -> Auth {
        self.reject()
    }

    /// The "password" method.
    pub(super) async fn password(&self, user: &str, password: &str) -> Auth {
        if let Some(left) = self.throttle.blocked(self.peer.ip()) {
            tracing::debug!(user, peer = %self.peer, left = ?left, "login refused: address blocked");
            return self.reject();
        }
        if self.config.check_password(user, password) {
            self.accepted(user, "password");
            Auth::Accept
        } else {
            tracing::warn!("login failed: user {user} from {} (password)", self.peer);
            self.failed().await
        }
    }

    /// Logs a login and forgets the address's failures.
    fn accepted(&self, user: &str, method: &str) {
        self.throttle.succeeded(self.peer.ip());
        tracing::info!("login: user {user} from {} ({method})", self.peer);
    }

    /// Counts a failure of this address, waits the longer delay it has earned and rejects.
    /// (russh holds every rejection until the failure delay has passed since the request: a
    /// handler that took longer adds nothing to it.)
    async fn failed(&self) -> Auth {
        let failure = self.throttle.failed(self.peer.ip());
        if let Some(blocked_for) = failure.blocked_for {
            tracing::warn!(
                "blocking {} for {} s after {} failed logins",
                self.peer.ip(),
                blocked_for.as_secs(),
                failure.failures
            );
        }
        if failure.delay_factor > 1 {
            tokio::time::sleep(
                self.config
                    .failure_delay
                    .saturating_mul(failure.delay_factor),
            )
            .await;
        }
        self.reject()
    }

    /// A public key offered (before its signature is checked). Checking here spares the
    /// client a signature for a key that would be refused anyway.
    pub(super) async fn publickey_offered(&self, user: &str, key: &PublicKey) -> Auth {
        self.publickey_check(user, key, false).await
    }

    /// A public key whose signature russh has verified: the check that decides. The file is
    /// read again because a client may probe a key and sign with it much later.
    pub(super) async fn publickey(&self, user: &str, key: &PublicKey) -> Auth {
        self.publickey_check(user, key, true).await
    }

    async fn publickey_check(&self, user: &str, key: &PublicKey, verified: bool) -> Auth {
        if self.throttle.blocked(self.peer.ip()).is_some() {
            return self.reject();
        }
        let fingerprint = key.fingerprint(HashAlg::Sha256);
        match self.config.check_public_key(user, key).await {
            Ok(true) => {
                if verified {
                    self.accepted(user, &format!("publickey {fingerprint}"));
                }
                Auth::Accept
            }
            // A client tries each key it has: an offered key that does not fit is no failed
            // login, one whose signature it made is.
            Ok(false) if !verified => {
                tracing::debug!(user, peer = %self.peer, key = %fingerprint, "key not authorized");
                self.reject()
            }
            Ok(false) => {
                tracing::warn!(
                    "login failed: user {user} from {} (publickey {fingerprint} not authorized)",
                    self.peer
                );
                self.failed().await
            }
            Err(e) => {
                tracing::warn!(
                    user,
                    peer = %self.peer,
                    method = "publickey",
                    key = %fingerprint,
                    error = %e,
                    "authentication failed: cannot read authorized_keys"
                );
                self.reject()
            }
        }
    }

    /// A rejection that keeps all configured methods available: without
    /// `proceed_with_methods`, russh removes the failed method from the list and the client
    /// gets no second try.
    fn reject(&self) -> Auth {
        Auth::Reject {
            proceed_with_methods: Some(self.config.methods()),
            partial_success: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use russh::keys::{Algorithm, PrivateKey};

    fn config(users: &[(&str, &str)], keys: Option<PathBuf>) -> AuthConfig {
        AuthConfig {
            users: users
                .iter()
                .map(|(u, p)| UserPassword {
                    user: u.to_string(),
                    password: p.to_string(),
                })
                .collect(),
            authorized_keys: keys,
            directory: None,
            throttle: ThrottleConfig {
                block_after: 0,
                block_for: Duration::from_secs(1),
            },
            failure_delay: Duration::from_millis(10),
        }
    }

    fn new_key() -> PrivateKey {
        PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).expect("key")
    }

    fn line(key: &PrivateKey, comment: &str) -> String {
        let mut public = key.public_key().clone();
        public.set_comment(comment);
        public.to_openssh().expect("encode")
    }

    #[test]
    fn password_matches_only_the_right_pair() {
        let c = config(&[("admin", "secret"), ("oper", "hunter2")], None);
        assert!(c.check_password("admin", "secret"));
        assert!(c.check_password("oper", "hunter2"));
        assert!(!c.check_password("admin", "hunter2"));
        assert!(!c.check_password("oper", "secret"));
        assert!(!c.check_password("admin", "secre"));
        assert!(!c.check_password("admin", "secret "));
        assert!(!c.check_password("nobody", "secret"));
        assert!(!c.check_password("", ""));
        assert!(!config(&[], None).check_password("", ""));
    }

    #[test]
    fn methods_follow_the_configuration() {
        let path = Some(PathBuf::from("/nonexistent"));
        assert_eq!(
            &*config(&[("a", "b")], None).methods(),
            &[MethodKind::Password]
        );
        assert_eq!(
            &*config(&[], path.clone()).methods(),
            &[MethodKind::PublicKey]
        );
        assert_eq!(
            &*config(&[("a", "b")], path).methods(),
            &[MethodKind::Password, MethodKind::PublicKey]
        );
    }

    #[test]
    fn key_users() {
        assert!(config(&[], None).key_user_allowed("anyone"));
        let c = config(&[("admin", "x")], None);
        assert!(c.key_user_allowed("admin"));
        assert!(!c.key_user_allowed("root"));
    }

    #[test]
    fn authorized_keys_parsing() {
        let path = Path::new("authorized_keys");
        let (k1, k2, k3, k4) = (new_key(), new_key(), new_key(), new_key());
        let text = format!(
            "# a comment\n\n\
             {}\n\
             garbage line that is not a key\n\
             restrict,no-pty {}\n\
             from=\"10.0.0.1\" {}\n",
            line(&k1, "alice with spaces in the comment"),
            line(&k2, "bob"),
            line(&k3, "carol"),
        );
        assert!(authorized_keys_contain(&text, path, k1.public_key()));
        assert!(authorized_keys_contain(&text, path, k2.public_key()));
        // An option we cannot enforce: the entry must not grant access.
        assert!(!authorized_keys_contain(&text, path, k3.public_key()));
        assert!(!authorized_keys_contain(&text, path, k4.public_key()));
        assert!(!authorized_keys_contain("", path, k1.public_key()));
    }

    #[tokio::test]
    async fn public_key_check_reads_the_file_each_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("authorized_keys");
        let key = new_key();
        let c = config(&[("admin", "x")], Some(file.clone()));

        // Missing file: no keys, not an error.
        assert!(
            !c.check_public_key("admin", key.public_key())
                .await
                .expect("check")
        );

        std::fs::write(&file, format!("{}\n", line(&key, "k"))).expect("write");
        assert!(
            c.check_public_key("admin", key.public_key())
                .await
                .expect("check")
        );
        // The key only logs in as configured users.
        assert!(
            !c.check_public_key("root", key.public_key())
                .await
                .expect("check")
        );

        std::fs::write(&file, "").expect("write");
        assert!(
            !c.check_public_key("admin", key.public_key())
                .await
                .expect("check")
        );
    }

    #[tokio::test]
    async fn rejections_keep_all_methods() {
        let c = Arc::new(config(&[("admin", "secret")], Some(PathBuf::from("/x"))));
        let throttle = Arc::new(LoginThrottle::new(c.throttle));
        let a = Authenticator::new(c, throttle, SocketAddr::from(([127, 0, 0, 1], 1)));
        assert_eq!(a.password("admin", "secret").await, Auth::Accept);
        assert_eq!(
            a.password("admin", "wrong").await,
            Auth::Reject {
                proceed_with_methods: Some(MethodSet::from(
                    &[MethodKind::Password, MethodKind::PublicKey][..]
                )),
                partial_success: false,
            }
        );
    }
}
