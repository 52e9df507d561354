//! The local users of `/sys:system/authentication` (RFC 7317): what a login is checked against,
//! read from running at each login so that a committed change applies to the next one, and
//! the hashing of passwords given in clear.
//!
//! A password is stored as a crypt(3) hash (`iana-crypt-hash`): `$1$` (MD5), `$5$` (SHA-256)
//! or `$6$` (SHA-512). A client may write `$0$<clear text>`; every commit of running replaces
//! such a value with its SHA-512 hash before anything else sees the tree, so the clear text
//! reaches neither the disk nor a reply.

use std::sync::Arc;

use yang5::data::{Data, DataTree};

use super::{DatastoreError, find_xpath, raw};

/// The users' list.
const USERS: &str = "/ietf-system:system/authentication/user";

/// One user of `/sys:system/authentication/user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalUser {
    /// The user name.
    pub name: String,
    /// The password's crypt hash, if the user has a password.
    pub password: Option<String>,
    /// The SSH public keys: algorithm name and the key blob (RFC 4253 §6.6).
    pub keys: Vec<(String, Vec<u8>)>,
}

/// The users in `tree`, and whether password logins are enabled for them: not when
/// `user-authentication-order` is set without `local-users` (RFC 7317 §5: keys still work).
pub fn local_users(tree: &DataTree<'_>) -> (Vec<LocalUser>, bool) {
    let order = find_xpath(
        tree,
        "/ietf-system:system/authentication/user-authentication-order",
    )
    .map(|nodes| {
        nodes
            .iter()
            .filter_map(|n| n.value_canonical())
            .collect::<Vec<_>>()
    })
    .unwrap_or_default();
    let passwords = order.is_empty() || order.iter().any(|m| m.ends_with("local-users"));
    let Ok(entries) = find_xpath(tree, USERS) else {
        return (Vec::new(), passwords);
    };
    let users = entries
        .iter()
        .map(|entry| {
            let mut user = LocalUser {
                name: String::new(),
                password: None,
                keys: Vec::new(),
            };
            for child in entry.children() {
                match child.schema().name() {
                    "name" => user.name = child.value_canonical().unwrap_or_default(),
                    "password" => user.password = child.value_canonical(),
                    "authorized-key" => {
                        let field = |name: &str| {
                            child
                                .children()
                                .find(|c| c.schema().name() == name)
                                .and_then(|c| c.value_canonical())
                        };
                        if let (Some(algorithm), Some(data)) =
                            (field("algorithm"), field("key-data"))
                            && let Some(blob) = base64_decode(&data)
                        {
                            user.keys.push((algorithm, blob));
                        }
                    }
                    _ => {}
                }
            }
            user
        })
        .collect();
    (users, passwords)
}

/// Whether `password` matches the crypt hash `hash` ($1$, $5$ or $6$; anything else never
/// matches). Constant time in the comparison.
pub fn password_matches(password: &str, hash: &str) -> bool {
    if hash.starts_with("$6$") {
        pw_hash::sha512_crypt::verify(password, hash)
    } else if hash.starts_with("$5$") {
        pw_hash::sha256_crypt::verify(password, hash)
    } else if hash.starts_with("$1$") {
        pw_hash::md5_crypt::verify(password, hash)
    } else {
        false
    }
}

/// Replaces each `$0$` password of `tree` by the SHA-512 crypt hash of its text; returns
/// `tree` itself when there is none.
pub(super) fn hash_cleartext_passwords(
    tree: Arc<DataTree<'static>>,
) -> Result<Arc<DataTree<'static>>, DatastoreError> {
    let path = format!("{USERS}/password[starts-with(., '$0$')]");
    if find_xpath(&*tree, &path).map_or(true, |found| found.is_empty()) {
        return Ok(tree);
    }
    let ctx = tree.context();
    raw::clear_errors(ctx);
    let copy = tree.duplicate().map_err(|_| raw::last_error(ctx))?;
    for node in find_xpath(&copy, &path).map_err(|_| raw::last_error(ctx))? {
        let clear = node.value_canonical().unwrap_or_default();
        let clear = clear.strip_prefix("$0$").unwrap_or(&clear);
        let hash = pw_hash::sha512_crypt::hash(clear)
            .map_err(|e| DatastoreError::Internal(format!("hashing a password: {e}")))?;
        // SAFETY: a node of `copy`, which this function owns.
        unsafe { raw::change_term(ctx, node.as_raw(), &hash)? };
    }
    Ok(Arc::new(copy))
}

/// Decodes standard base64 (the YANG `binary` type's canonical form); None if it is not.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(deprecated)] // hashing with MD5 and SHA-256 crypt, to verify such stored hashes
    fn every_supported_hash_verifies() {
        let sha512 = pw_hash::sha512_crypt::hash("secret").unwrap();
        assert!(sha512.starts_with("$6$"));
        assert!(password_matches("secret", &sha512));
        assert!(!password_matches("Secret", &sha512));
        let sha256 = pw_hash::sha256_crypt::hash("secret").unwrap();
        assert!(password_matches("secret", &sha256));
        let md5 = pw_hash::md5_crypt::hash("secret").unwrap();
        assert!(password_matches("secret", &md5));
        // Clear text is never a stored password, nor is anything else.
        assert!(!password_matches("secret", "$0$secret"));
        assert!(!password_matches("secret", "secret"));
    }

    #[test]
    fn base64() {
        assert_eq!(base64_decode("AAAAC3NzaA==").unwrap(), b"\0\0\0\x0bssh");
        assert_eq!(base64_decode("Zm9v").unwrap(), b"foo");
        assert!(base64_decode("Zm9v!").is_none());
    }
}
